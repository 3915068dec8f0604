"""GSM (Gate-Shift Module) and GSF (Gate-Shift-Fuse) networks.

Papers:
    S. Sudhakaran, S. Escalera, O. Lanz, "Gate-Shift Networks for Video Action Recognition",
    CVPR 2020. https://arxiv.org/abs/1912.00381
    S. Sudhakaran, S. Escalera, O. Lanz, "Gate-Shift-Fuse for Video Action Recognition",
    TPAMI 2023. https://arxiv.org/abs/2203.08897

Where TSM shifts a fixed quarter of the channels everywhere, GSM learns WHERE to shift: a
spatio-temporal gate picks, per channel group, frame and pixel, how much of the feature moves
in time; GSF also learns how to MIX the shifted and the unshifted parts. Both are applied to the
first C' channels of a (B*T, C, H, W) feature map (C' = C by default).

Implements (names follow the released code; C' channels split in two groups of C'/2)
    gate          g = tanh( Conv3d_{3×3×3, groups=2}( ReLU( BN3d(x) ) ) )  ∈ (-1, 1)^{2×T×H×W}
                  gate channel i sees only group i's channels
    gating        y_i = g_i ⊙ x_i  (gated part),   r_i = x_i − y_i  (residual part), i = 1, 2
    shift         group 1 shifts LEFT (frame t takes t+1), group 2 RIGHT (t takes t−1), zero pad
    GSM fuse      z_i = shift(y_i) + r_i
    GSF fuse      w_i = σ( Conv2d_{3×3}( [pool_HW shift(y_i), pool_HW r_i] ) )  ∈ (0,1)^{C'/2×T}
                  z_i = w_i ⊙ shift(y_i) + (1 − w_i) ⊙ r_i      (a convex combination)
    interleave    inside each group, channel order [0, C'/4, 1, C'/4+1, ...] (a fixed
                  permutation that is part of the module; without it pretrained weights misalign)

    GSM with a zero gate (its initialisation: conv weight and bias 0) is therefore EXACTLY the
    interleave permutation: out[:, j] = x[:, perm[j]] (see ``interleave_permutation``).

    The shift is TSM's offline shift (``lecturekit.layers.temporal_shift``) applied to the two
    gated groups stacked on channels with ``fold_div=2``: the first half moves left, the
    second half right. Gating, shift and fuse, given the gate, are :func:`gated_shift`.

    Parameters per site: GSM 29·C' + 2 (27·C' + 2 gate conv, 2·C' BN), GSF 29·C' + 40 (plus two
    2→1 3×3 fuse convs with bias, 19 each).

    GSMBasicBlock, GSMBottleneck (one class for GSM and GSF) put the module into a plain ResNet
    block (``lecturekit.layers.resnet2d``) where the released ResNet-50 code puts it: after the
    last conv of the residual branch F and before its last BN,

        y = ReLU( S(x) + BN_last( GSF( F_convs(x) ) ) )

    (``place="residual"`` instead applies it to the block input of F: y = ReLU(S(x) + F(GSF(x)))).
Optimised for the CPU (same parameters, same outputs)
    - The gate's grouped 3×3×3 Conv3d is stored as an ``nn.Conv3d`` (its parameters are the
      paper's) but computed as three 2D convolutions, one per time offset, added with a
      one-frame shift (:func:`gate_conv`): the same linear map, about 3× faster on a CPU, where
      grouped 3D convolutions with one output per group are slow. A test checks it against
      ``F.conv3d`` with the same weights.
Simplified
    - ResNet backbone only (GSF's ResNet-50 placement: one module per block, after the last
      conv and before the last BN). GSM's paper backbone, BN-Inception, is not built.
    - GSM here may also use a channel ratio (the CVPR code applies it to all channels).
Shapes (letters defined in lecturekit/layers/shapes.py)
    module: (B*T, C, H, W) -> (B*T, C, H, W);  network: video (B, 3, T, H, W) -> logits (B, K)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.resnet2d import BasicBlock, Bottleneck, NormLayer, ResNet2d, projection_shortcut
from ..layers.temporal_shift import temporal_shift
from .drivers import PerFrameClassifier
from .published import Published

PLACES = ("before_last_bn", "residual")


def interleave_permutation(channels: int) -> Tensor:
    """The fixed output channel order of GSM/GSF for C' = ``channels`` (divisible by 4).

    ``out[:, j] = in[:, perm[j]]``; within each half of size C'/2 the order is
    [0, C'/4, 1, C'/4+1, ...]. For C' = 16: [0,4,1,5,2,6,3,7, 8,12,9,13,10,14,11,15].
    """
    half, quarter = channels // 2, channels // 4
    j = torch.arange(half)
    within = (j % 2) * quarter + j // 2
    return torch.cat([within, within + half])


def gate_conv(x: Tensor, conv: nn.Conv3d) -> Tensor:
    """The gate's grouped 3×3×3 convolution (C' -> 2, groups=2), computed with 2D convs.

    A CPU speed optimisation with the parameters and outputs of the paper's Conv3d.
    A 3D kernel is three 2D kernels, one per time offset dt ∈ {-1, 0, +1}:
    conv3d(x)[t] = Σ_dt conv2d_dt(x[t + dt]) (zero outside the clip). Each group's three 2D
    outputs are computed on all frames at once and then added with a one-frame shift; this is
    the same linear map as ``F.conv3d(x, w, b, padding=1, groups=2)`` (a test checks it) and
    about 3× faster on a CPU, where grouped 3D convs with one output per group are slow.

    Shape: (B, C', T, H, W) -> (B, 2, T, H, W)
    """
    b, c, t, h, w = x.shape
    frames = x.transpose(1, 2).reshape(b * t, c, h, w)                   # (B*T, C', H, W)
    # weight (2, C'/2, 3, 3, 3) -> per group (3 time offsets, C'/2, 3, 3): offsets as outputs.
    wt = conv.weight.permute(0, 2, 1, 3, 4).reshape(6, c // 2, 3, 3)
    y = F.conv2d(frames, wt, padding=1, groups=2).view(b, t, 2, 3, h, w)  # (B, T, group, dt, H, W)
    zero = torch.zeros_like(y[:, :1, :, 0])
    out = (y[:, :, :, 1]                                                  # dt = 0
           + torch.cat([zero, y[:, :-1, :, 0]], dim=1)                    # dt = -1: from frame t-1
           + torch.cat([y[:, 1:, :, 2], zero], dim=1))                    # dt = +1: from frame t+1
    return out.transpose(1, 2) + conv.bias.view(1, 2, 1, 1, 1)            # (B, 2, T, H, W)


def gated_shift(x: Tensor, gate: Tensor,
                fuse: Callable[[Tensor, Tensor], Tensor] | None = None) -> Tensor:
    """The gate-shift step of GSM/GSF on C' channels, given the gate (before the interleave).

    Sudhakaran, Escalera, Lanz, "Gate-Shift Networks for Video Action Recognition", CVPR 2020
    (https://arxiv.org/abs/1912.00381), as in the released code (the "gating", "shift" and "GSM
    fuse" rows of the module docstring): the channels form two groups, x_1 = channels
    [0, C'/2) gated by ``gate[:, 0]`` and x_2 = [C'/2, C') by ``gate[:, 1]``;

        y_i = g_i ⊙ x_i   (the part that moves),   r_i = x_i − y_i   (the part that stays)
        shift: y_1 moves LEFT (frame t takes t+1), y_2 RIGHT (t takes t−1), zeros at the ends
        GSM:   z_i = shift(y_i) + r_i

    The shift is the library's ``temporal_shift(·, fold_div=2)`` on [y_1, y_2]. ``fuse(shifted,
    residual)`` replaces GSM's sum: GSF (Sudhakaran et al., "Gate-Shift-Fuse for Video Action
    Recognition", TPAMI 2023, https://arxiv.org/abs/2203.08897) passes its learned convex
    combination z_i = w_i ⊙ shift(y_i) + (1 − w_i) ⊙ r_i. :class:`GateShift` runs this function
    with its own gate, then applies the fixed channel interleave. Exercise 04.2 checks students
    against it (GSM's sum).

    Shape: x (B, C', T, H, W) with C' even, gate (B, 2, T, H, W) -> (B, C', T, H, W);
    ``fuse`` gets and returns (B, C', T, H, W).
    """
    half = x.shape[1] // 2
    x1, x2 = x[:, :half], x[:, half:]                               # two groups (B, C'/2, T, H, W)
    y1, y2 = gate[:, 0:1] * x1, gate[:, 1:2] * x2                   # gated parts
    residual = torch.cat([x1 - y1, x2 - y2], dim=1)                 # residual parts r_i
    shifted = temporal_shift(torch.cat([y1, y2], dim=1), 2)         # y1 left, y2 right
    return shifted + residual if fuse is None else fuse(shifted, residual)


def _interleave(z: Tensor) -> Tensor:
    """(B, C/2, T, H, W) group -> the same with channels ordered [0, C/4, 1, C/4+1, ...]."""
    b, c, t, h, w = z.shape
    return z.view(b, 2, c // 2, t, h, w).transpose(1, 2).reshape(b, c, t, h, w)


class GateShift(nn.Module):
    """GSM (``fuse=False``) or GSF (``fuse=True``) on the first C' channels of a feature map.

    Args:
        channels: C, channels of the feature map.
        ch_ratio: percent of channels that go through the module: C' = C·ratio/100, rounded up
            to a multiple of 4 (the released code rounds to even; 4 keeps the interleave exact).
        fuse: GSF's learned fusion instead of GSM's sum.
        zero_init_gate: zero gate conv (GSM's init: the module starts as a permutation). GSF's
            code does not zero it.

    Shape: (B*T, C, H, W) with ``frames = T`` -> (B*T, C, H, W)
    """

    def __init__(self, channels: int, *, ch_ratio: float = 100, fuse: bool = True, zero_init_gate: bool = False):
        super().__init__()
        cp = int(channels * ch_ratio / 100)
        cp += (-cp) % 4
        if not 4 <= cp <= channels:
            raise ValueError(f"GateShift needs 4 <= C' <= C, got C'={cp} from C={channels}, ratio={ch_ratio}")
        self.channels, self.active, self.fuse = channels, cp, fuse
        self.bn = nn.BatchNorm3d(cp)
        self.gate = nn.Conv3d(cp, 2, 3, padding=1, groups=2)           # 27·C' + 2 params
        if zero_init_gate:
            nn.init.zeros_(self.gate.weight)
            nn.init.zeros_(self.gate.bias)
        if fuse:
            self.fuse1 = nn.Conv2d(2, 1, 3, padding=1)                  # over the (C'/2, T) grid
            self.fuse2 = nn.Conv2d(2, 1, 3, padding=1)

    def _fuse(self, conv: nn.Conv2d, shifted: Tensor, residual: Tensor) -> Tensor:
        pooled = torch.stack([shifted.mean(dim=(-2, -1)), residual.mean(dim=(-2, -1))], dim=1)  # (B, 2, C'/2, T)
        w = torch.sigmoid(conv(pooled))[..., None, None]                # (B, 1, C'/2, T, 1, 1)
        w = w.squeeze(1)                                                # (B, C'/2, T, 1, 1)
        return w * shifted + (1 - w) * residual

    def _fuse_groups(self, shifted: Tensor, residual: Tensor) -> Tensor:
        """GSF's fusion of each group with its own conv: (B, C', T, H, W) twice -> (B, C', T, H, W)."""
        s1, s2 = shifted.chunk(2, dim=1)
        r1, r2 = residual.chunk(2, dim=1)
        return torch.cat([self._fuse(self.fuse1, s1, r1), self._fuse(self.fuse2, s2, r2)], dim=1)

    def forward(self, x: Tensor, frames: int) -> Tensor:
        n, c, h, w = x.shape
        if c != self.channels or n % frames:
            raise ValueError(f"GateShift: expected (B*T, {self.channels}, H, W) with T={frames}, got {tuple(x.shape)}")
        b, cp = n // frames, self.active
        v = x.view(b, frames, c, h, w).transpose(1, 2)                  # (B, C, T, H, W)
        xa, rest = v[:, :cp], v[:, cp:]                                 # (B, C', T, H, W), passthrough
        g = torch.tanh(gate_conv(torch.relu(self.bn(xa)), self.gate))    # (B, 2, T, H, W)  gate
        z1, z2 = gated_shift(xa, g, self._fuse_groups if self.fuse else None).chunk(2, dim=1)  # GSF or GSM
        out = torch.cat([_interleave(z1), _interleave(z2), rest], dim=1)  # (B, C, T, H, W)
        return out.transpose(1, 2).reshape(n, c, h, w)                  # (B*T, C, H, W)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, active={self.active}, fuse={self.fuse}"


class _GateShifted:
    """A plain ResNet block with a GateShift module (mixed into BasicBlock and Bottleneck below).

    Args:
        cin, width, stride, norm_layer: the plain block.
        gate_shift: factory ``channels -> GateShift``.
        place: ``"before_last_bn"`` (default) or ``"residual"`` (see the module docstring).

    The layers are created in the order F's convs and BNs, the module, the shortcut, so that the
    parameters (and the random numbers a seeded initialisation draws for them) follow the
    order of the forward pass.

    Shape: (B*T, cin, H, W) with ``frames = T`` -> (B*T, cout, H/stride, W/stride)
    """

    def __init__(self, cin: int, width: int, stride: int = 1, *, gate_shift, place: str = "before_last_bn",
                 norm_layer: NormLayer = nn.BatchNorm2d):
        nn.Module.__init__(self)
        if place not in PLACES:
            raise ValueError(f"place must be one of {PLACES}, got {place!r}")
        cout = width * self.expansion
        self.build_residual(cin, width, stride, norm_layer)                   # F: conv1, bn1, ...
        self.place = place
        self.temporal = gate_shift(cout if place == "before_last_bn" else cin)
        self.downsample = projection_shortcut(cin, cout, stride, norm_layer)   # S
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor, frames: int) -> Tensor:
        if self.place == "residual":
            return self.act(self.residual(self.temporal(x, frames)) + self.shortcut(x))
        out = self.temporal(self.residual_convs(x), frames)    # after the last conv of F
        return self.act(self.last_bn(out) + self.shortcut(x))   # ... and before its last BN


class GSMBasicBlock(_GateShifted, BasicBlock):
    """:class:`~lecturekit.layers.resnet2d.BasicBlock` with GSM/GSF (see ``_GateShifted``)."""


class GSMBottleneck(_GateShifted, Bottleneck):
    """:class:`~lecturekit.layers.resnet2d.Bottleneck` with GSM/GSF (see ``_GateShifted``)."""


GATE_SHIFTED = {BasicBlock: GSMBasicBlock, Bottleneck: GSMBottleneck}


def _make_block(block_cls: type, cin: int, width: int, stride: int, *, stage: int, index: int,
                norm_layer: NormLayer, gate_shift, place: str) -> nn.Module:
    """ResNet2d's ``make_block`` for GSM/GSF: a module in every block."""
    return GATE_SHIFTED[block_cls](cin, width, stride, gate_shift=gate_shift, place=place, norm_layer=norm_layer)


class GSF(PerFrameClassifier):
    """A ResNet with a gate-shift(-fuse) module in every block; average consensus over frames.

    Args:
        num_classes: K.
        fuse: True = GSF (default), False = GSM.
        ch_ratio: percent of channels through the module (the ResNet constructor of the released
            code defaults to 25, its training scripts pass 100).
        zero_init_gate: zero gate at init (default: True for GSM, False for GSF, as released).
        place: ``"before_last_bn"`` (GSF's ResNet placement, default) or ``"residual"``.
        in_channels, widths, depths, block, stem, dropout: backbone and head (the ``paper``
            preset's dropout 0.5 is the usual TSN/TSM value, not checked against GSF's scripts).

    Shape: video (B, C, T, H, W), any T >= 1 -> logits (B, K)

    Example:
        >>> GSF(num_classes=10)(torch.randn(2, 3, 8, 32, 32)).shape
        torch.Size([2, 10])
    """

    SUPPORTS_ANY_T = True
    PRESETS = {
        "small": dict(num_classes=10),
        # GSF ResNet-50 on Something-Something V1 (174 classes), ratio 100 as in the training scripts.
        "paper": dict(num_classes=174, widths=(64, 128, 256, 512), depths=(3, 4, 6, 3),
                      block="bottleneck", stem="imagenet", dropout=0.5),
    }
    PUBLISHED = {
        "overhead_ratio100": Published(438_656, "parameters", "added to ResNet-50 by GSF at its 16 sites "
                                       "(one per bottleneck, before bn3), channel ratio 100",
                                       "the released code github.com/swathikirans/GSF "
                                       "(backbones/resnetGSFModels.py), counted by instantiating it"),
        "overhead_ratio25": Published(110_144, "parameters", "the same with channel ratio 25 (the ResNet "
                                      "constructor's default in the released code)",
                                      "the released code github.com/swathikirans/GSF "
                                      "(backbones/resnetGSFModels.py), counted by instantiating it"),
    }

    def __init__(self, num_classes: int = 10, *, fuse: bool = True, ch_ratio: float = 100,
                 zero_init_gate: bool | None = None, place: str = "before_last_bn", in_channels: int = 3,
                 widths: Sequence[int] = (16, 32, 64), depths: Sequence[int] = (1, 1, 1),
                 block: str = "basic", stem: str = "small", dropout: float = 0.0):
        super().__init__()
        zero = (not fuse) if zero_init_gate is None else zero_init_gate
        if place not in PLACES:
            raise ValueError(f"place must be one of {PLACES}, got {place!r}")
        self.in_channels = in_channels
        gate_shift = partial(GateShift, ch_ratio=ch_ratio, fuse=fuse, zero_init_gate=zero)
        self.backbone = ResNet2d(in_channels, widths=widths, depths=depths, block=block, stem=stem,
                                 make_block=partial(_make_block, gate_shift=gate_shift, place=place))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.backbone.out_features, num_classes)


__all__ = ["GSF", "GSMBasicBlock", "GSMBottleneck", "GateShift", "gate_conv", "gated_shift",
           "interleave_permutation"]
