"""The AlexNet-style conv tower of Karpathy et al. and its FC6/FC7 layers, with time per layer.

Paper: A. Karpathy, G. Toderici, S. Shetty, T. Leung, R. Sukthankar, L. Fei-Fei,
"Large-scale Video Classification with Convolutional Neural Networks", CVPR 2014 (Sec. 2.1).
https://cs.stanford.edu/people/karpathy/deepvideo/

Shared by the single-frame model (``lecturekit.models.frame_cnn``), the fusion models
(``lecturekit.models.fusion``) and LRCN's frame encoder (``lecturekit.models.lrcn``).

    base network   C(96,11,3)-N-P-C(256,5,1)-N-P-C(384,3,1)-C(384,3,1)-C(256,3,1)-P-FC(4096)-FC(4096)
                   C(d,f,s): d filters f×f, stride s (+ReLU); N: local response norm; P: 2×2 max-pool

Implements
    ConvSpec     one C(d, f, s)[-N][-P] row of the paper's notation
    PAPER_CONVS  the paper's five conv layers; SMALL_CONVS a CPU size for 32×32 frames
    Tower        the conv layers, written as Conv3d with a temporal extent e and stride s per
                 layer; e = 1 means "a 2D conv shared by every frame"
    FCLayers     FC6 -> FC7 (ReLU + dropout each), the feature MLP before the classifier
Choices
    - Spatial padding is not given in the paper; conv1 pad 5, conv2 pad 2, conv3-5 pad 1 make a
      170×170 crop end at 7×7×256 (12,544 FC6 inputs), as the paper's multiresolution section
      implies.
    - ``norm="batch"`` puts BatchNorm after every conv instead of LRN so the network trains from
      scratch on the CPU in seconds; ``norm="lrn"`` is the paper.
Shapes (letters defined in lecturekit/layers/shapes.py)
    Tower: (B, C, T, H, W) -> (B, C5, T', H', W');  FCLayers: (B, F) -> (B, D)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn


@dataclass(frozen=True)
class ConvSpec:
    """One conv layer C(channels, kernel, stride), then optional N (norm) and P (2×2 max-pool)."""

    channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    norm: bool = False
    pool: bool = False


# Sec. 2.1 of the paper; paddings are our choice (see the module docstring).
PAPER_CONVS = (
    ConvSpec(96, 11, 3, 5, norm=True, pool=True),
    ConvSpec(256, 5, 1, 2, norm=True, pool=True),
    ConvSpec(384, 3, 1, 1),
    ConvSpec(384, 3, 1, 1),
    ConvSpec(256, 3, 1, 1, pool=True),
)
# CPU size for 32×32 frames: 32 -> 16 -> 8 -> 8 -> 4, ending at 64×4×4.
SMALL_CONVS = (
    ConvSpec(32, 5, 1, 2, norm=True, pool=True),
    ConvSpec(64, 3, 1, 1, norm=True, pool=True),
    ConvSpec(64, 3, 1, 1),
    ConvSpec(64, 3, 1, 1, pool=True),
)


def _out(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


class _Unit(nn.Module):
    """conv -> ReLU -> [LRN or BN] -> [max-pool 1×2×2] on (B, C, T, H, W)."""

    def __init__(self, cin: int, spec: ConvSpec, extent: int, tstride: int, norm: str):
        super().__init__()
        k, s, p = spec.kernel, spec.stride, spec.padding
        self.conv = nn.Conv3d(cin, spec.channels, (extent, k, k), stride=(tstride, s, s), padding=(0, p, p))
        self.act = nn.ReLU(inplace=True)
        if norm == "batch":
            self.norm = nn.BatchNorm3d(spec.channels)
        elif norm == "lrn" and spec.norm:
            # AlexNet's LRN constants (Krizhevsky et al. 2012), over 5 neighbouring channels
            self.norm = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
        else:
            self.norm = nn.Identity()
        self.pool = nn.MaxPool3d((1, 2, 2)) if spec.pool else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.norm(self.act(self.conv(x))))


class Tower(nn.Module):
    """The conv layers of the base network, each with its own temporal extent and stride.

    Args:
        in_channels: input channels (3 for RGB).
        convs: one :class:`ConvSpec` per layer.
        temporal: one ``(extent, stride)`` per layer; ``(1, 1)`` everywhere is the single-frame
            tower applied to every frame with shared weights. Temporal convs are valid (no padding).
        norm: ``"lrn"`` (paper: LRN where the spec says N) or ``"batch"`` (BN after every conv).

    Shape: (B, C, T, H, W) -> (B, C5, T', H', W'), sizes from :meth:`out_shape`.
    """

    def __init__(self, in_channels: int, convs: Sequence[ConvSpec], temporal: Sequence[tuple[int, int]] | None = None,
                 *, norm: str = "lrn"):
        super().__init__()
        if norm not in ("lrn", "batch"):
            raise ValueError(f"norm must be 'lrn' or 'batch', got {norm!r}")
        temporal = tuple(temporal) if temporal is not None else ((1, 1),) * len(convs)
        if len(temporal) != len(convs):
            raise ValueError(f"need one (extent, stride) per conv: {len(convs)} convs, {len(temporal)} given")
        self.convs, self.temporal = tuple(convs), temporal
        units, cin = [], in_channels
        for spec, (e, st) in zip(convs, temporal):
            units.append(_Unit(cin, spec, e, st, norm))
            cin = spec.channels
        self.units = nn.ModuleList(units)
        self.out_channels = cin

    def out_shape(self, frames: int, size: int) -> tuple[int, int, int]:
        """(T', H', W') of the output for a (frames, size, size) input; sizes < 1 are errors."""
        t, h = frames, size
        for spec, (e, st) in zip(self.convs, self.temporal):
            t, h = _out(t, e, st, 0), _out(h, spec.kernel, spec.stride, spec.padding)
            h = h // 2 if spec.pool else h
            if t < 1 or h < 1:
                raise ValueError(f"a clip of {frames}×{size}×{size} is too small for this tower")
        return t, h, h

    def forward(self, x: Tensor) -> Tensor:
        for unit in self.units:
            x = unit(x)          # (B, C_l, T_l, H_l, W_l)
        return x


class FCLayers(nn.Module):
    """FC6 -> FC7 (ReLU + dropout each): the feature MLP, not the classifier; ``out_features`` =
    last width (the clip embedding D)."""

    def __init__(self, in_features: int, widths: Sequence[int], dropout: float):
        super().__init__()
        layers, cin = [], in_features
        for w in widths:
            layers += [nn.Linear(cin, w), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            cin = w
        self.layers = nn.Sequential(*layers)
        self.out_features = cin

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)



__all__ = ["PAPER_CONVS", "SMALL_CONVS", "ConvSpec", "FCLayers", "Tower"]
