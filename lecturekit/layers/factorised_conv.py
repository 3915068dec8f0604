"""Factorised 3D convolutions: a t×d×d conv split into a spatial 1×d×d and a temporal t×1×1 conv.

Papers:
    Z. Qiu, T. Yao, T. Mei, "Learning Spatio-Temporal Representation with Pseudo-3D Residual
    Networks", ICCV 2017. https://arxiv.org/abs/1711.10305
    D. Tran, H. Wang, L. Torresani, J. Ray, Y. LeCun, M. Paluri, "A Closer Look at Spatiotemporal
    Convolutions for Action Recognition", CVPR 2018. https://arxiv.org/abs/1711.11248

Used by ``lecturekit.models.factorised`` (P3D ResNet and R(2+1)D).

The parameter arithmetic of the lecture's slide ("27C vs 11C")
    A 3×3×3 conv C -> C has 27·C² weights; S (1×3×3) followed by T (3×1×1) has 9·C² + 3·C² =
    12·C² (2.25× fewer). The slide's "3×3+3 = 11" is an arithmetic slip: 9 + 3 = 12.

R(2+1)D's width rule (Sec. 3.5 of Tran et al.)
    The spatial conv maps N_{i-1} channels to M_i, the temporal conv M_i to N_i, with

        M_i = floor( t·d²·N_{i-1}·N_i / (d²·N_{i-1} + t·N_i) )

    so that the pair has (about) as many parameters as the t×d×d conv it replaces:
    d²·N_{i-1}·M_i + t·M_i·N_i <= t·d²·N_{i-1}·N_i, with equality when the division is exact
    (e.g. 64 -> 64: M = 144 and 9·64·144 + 3·144·64 = 27·64·64 = 110,592).

P3D's three blocks (Fig. 3 of Qiu et al.), acting on the bottleneck's middle tensor x; S and T
are each followed by BN + ReLU, as in the official prototxt:

    P3D-A (cascade)              T(S(x))
    P3D-B (parallel)             S(x) + T(x)
    P3D-C (cascade + shortcut)   S(x) + T(S(x))

Implements
    mid_channels, SpatialConv (S), TemporalConv (T), Conv2Plus1d, P3DMiddle
    conv2plus1d   the (2+1)D computation T(σ(S(x))) that Conv2Plus1d runs (exercise 03.1)
Shapes (letters defined in lecturekit/layers/shapes.py)
    (B, C, T, H, W) -> (B, C', T', H', W')
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NormLayer = Callable[[int], nn.Module]


def mid_channels(cin: int, cout: int, t: int = 3, d: int = 3) -> int:
    """R(2+1)D's M_i: the spatial conv's width that matches a t×d×d conv cin -> cout.

    >>> [mid_channels(i, o) for i, o in [(64, 64), (64, 128), (128, 128), (256, 512), (512, 512)]]
    [144, 230, 288, 921, 1152]
    """
    return (t * d * d * cin * cout) // (d * d * cin + t * cout)


def _pair(stride: int | tuple[int, int]) -> tuple[int, int]:
    return (stride, stride) if isinstance(stride, int) else tuple(stride)


class SpatialConv(nn.Conv3d):
    """S: a 1×d×d conv (a 2D conv shared by all frames), padding (0, d//2, d//2), no bias.

    Shape: (B, cin, T, H, W) -> (B, cout, T, H/s, W/s)
    """

    def __init__(self, cin: int, cout: int, d: int = 3, stride: int = 1):
        super().__init__(cin, cout, (1, d, d), stride=(1, stride, stride), padding=(0, d // 2, d // 2), bias=False)


class TemporalConv(nn.Conv3d):
    """T: a t×1×1 conv (a 1D conv over time at every pixel), padding (t//2, 0, 0), no bias.

    Shape: (B, cin, T, H, W) -> (B, cout, T/s, H, W)
    """

    def __init__(self, cin: int, cout: int, t: int = 3, stride: int = 1):
        super().__init__(cin, cout, (t, 1, 1), stride=(stride, 1, 1), padding=(t // 2, 0, 0), bias=False)


def conv2plus1d(x: Tensor, spatial: Tensor | Callable[[Tensor], Tensor], temporal: Tensor | Callable[[Tensor], Tensor],
                between: Callable[[Tensor], Tensor] = torch.relu) -> Tensor:
    """A (2+1)D convolution: the spatial conv S, a nonlinearity, then the temporal conv T.

    R(2+1)D (Tran et al., "A Closer Look at Spatiotemporal Convolutions for Action Recognition",
    CVPR 2018, Sec. 3.5, https://arxiv.org/abs/1711.11248) replaces a t×d×d conv by S, a 1×d×d
    conv N_{i-1} -> M_i, and T, a t×1×1 conv M_i -> N_i, with a ReLU between them:

        y = T( ReLU( S(x) ) )

    ``spatial`` and ``temporal`` are either the weights, (M, Cin, 1, d, d) and (Cout, M, t, 1, 1),
    applied with stride 1, no bias and the padding that keeps T, H and W, (0, d//2, d//2) and
    (t//2, 0, 0); or the conv modules themselves (:class:`SpatialConv`, :class:`TemporalConv`),
    which apply their own stride. ``between`` is what sits between S and T: the ReLU by default,
    BN + ReLU in :class:`Conv2Plus1d`, whose forward is this function with its own modules.
    Exercise 03.1 checks students against it (weights given, ReLU between, no normalisation).

    Shape: x (B, Cin, T, H, W) -> (B, Cout, T, H, W) (with weights; modules may stride)
    """
    if isinstance(spatial, Tensor):                         # S: 1×d×d -> (B, M, T, H, W)
        d = spatial.shape[-1]
        x = F.conv3d(x, spatial, padding=(0, d // 2, d // 2))
    else:
        x = spatial(x)
    x = between(x)
    if isinstance(temporal, Tensor):                        # T: t×1×1 -> (B, Cout, T, H, W)
        return F.conv3d(x, temporal, padding=(temporal.shape[2] // 2, 0, 0))
    return temporal(x)


class Conv2Plus1d(nn.Module):
    """A t×d×d conv factorised as S (1×d×d, cin -> mid), BN + ReLU, then T (t×1×1, mid -> cout).

    Args:
        cin, cout: channels in and out.
        mid: width of the intermediate tensor; ``None`` applies the M_i rule
            (:func:`mid_channels`).
        t, d: temporal and spatial kernel size of the conv being replaced.
        stride: ``s`` or ``(s_time, s_space)``; the spatial stride sits on S, the temporal on T.
        norm_layer, act: what sits between S and T (``nn.Identity`` for both turns the block
            into a plain rank-factorised 3D conv, which the tests compare with a 3D conv).

    Shape: (B, cin, T, H, W) -> (B, cout, T/s_t, H/s_s, W/s_s). There is no norm or activation
    after T: the network that uses the block adds them.
    """

    def __init__(self, cin: int, cout: int, mid: int | None = None, *, t: int = 3, d: int = 3,
                 stride: int | tuple[int, int] = 1, norm_layer: NormLayer = nn.BatchNorm3d,
                 act: Callable[[], nn.Module] = lambda: nn.ReLU(inplace=True)):
        super().__init__()
        st, ss = _pair(stride)
        self.mid = mid if mid is not None else mid_channels(cin, cout, t, d)
        self.spatial = SpatialConv(cin, self.mid, d, ss)
        self.norm = norm_layer(self.mid)
        self.act = act()
        self.temporal = TemporalConv(self.mid, cout, t, st)

    def _between(self, x: Tensor) -> Tensor:
        return self.act(self.norm(x))

    def forward(self, x: Tensor) -> Tensor:
        # S: 1×d×d, stride (1, s, s) -> (B, M, T, H/s, W/s); BN + ReLU; T: t×1×1, stride (s, 1, 1)
        return conv2plus1d(x, self.spatial, self.temporal, self._between)   # (B, cout, T/s, H/s, W/s)


class P3DMiddle(nn.Module):
    """The middle of a P3D bottleneck: S and T wired as block A, B or C (or S alone, "2D").

    Args:
        channels: C of the middle tensor (in = out).
        kind: ``"A"``, ``"B"``, ``"C"``, or ``"2D"`` (S only: the purely spatial res5 of P3D-199).
        norm_layer: BN after S and after T.

    Shape: (B, C, T, H, W) -> (B, C, T, H, W)
    """

    KINDS = ("A", "B", "C", "2D")

    def __init__(self, channels: int, kind: str, norm_layer: NormLayer = nn.BatchNorm3d):
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"P3D block kind must be one of {self.KINDS}, got {kind!r}")
        self.kind = kind
        self.s = nn.Sequential(SpatialConv(channels, channels), norm_layer(channels), nn.ReLU(inplace=True))
        self.t = None
        if kind != "2D":
            self.t = nn.Sequential(TemporalConv(channels, channels), norm_layer(channels), nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "A":
            return self.t(self.s(x))           # cascade: T(S(x))
        if self.kind == "B":
            return self.s(x) + self.t(x)       # parallel: S(x) + T(x)
        s = self.s(x)
        if self.kind == "C":
            return s + self.t(s)               # cascade + shortcut: S(x) + T(S(x))
        return s                               # "2D": S(x)


__all__ = ["Conv2Plus1d", "P3DMiddle", "SpatialConv", "TemporalConv", "conv2plus1d", "mid_channels"]
