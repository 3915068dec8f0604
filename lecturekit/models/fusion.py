"""Early, late and slow fusion: where does a frame CNN merge time?

Paper: A. Karpathy, G. Toderici, S. Shetty, T. Leung, R. Sukthankar, L. Fei-Fei,
"Large-scale Video Classification with Convolutional Neural Networks", CVPR 2014.
https://cs.stanford.edu/people/karpathy/deepvideo/

The paper keeps one AlexNet-style image network (its "single-frame" base, Sec. 2.1) and
changes only *where* the information of several frames is merged (Sec. 2.1, Fig. 1):

    base network   C(96,11,3)-N-P-C(256,5,1)-N-P-C(384,3,1)-C(384,3,1)-C(256,3,1)-P-FC(4096)-FC(4096)
                   C(d,f,s): d filters f×f, stride s (+ReLU); N: local response norm; P: 2×2 max-pool
    early fusion   conv1 becomes 11×11×3×T with T = 10 frames: time is merged in the first layer
    late fusion    two towers with SHARED weights on two frames 15 apart, merged at FC6
    slow fusion    conv1-conv3 become 3D with temporal extent 4, 2, 2 and stride 2 (valid in time),
                   so 10 frames become 4 -> 2 -> 1 time steps

Implements
    ConvSpec     one C(d, f, s)[-N][-P] row of the paper's notation
    Tower        the conv layers, written as Conv3d with a temporal extent e and stride s per
                 layer; e = 1 means "a 2D conv shared by every frame"
    EarlyFusion, LateFusion, SlowFusion   the three multi-frame models of the paper
Simplified / choices
    - Spatial padding is not given in the paper; conv1 pad 5, conv2 pad 2, conv3-5 pad 1 make a
      170×170 crop end at 7×7×256 (12,544 FC6 inputs), as the paper's multiresolution section
      implies. The multiresolution (fovea + context) network is not implemented.
    - ``pool="avg"``/``"max"`` for late fusion is an option, not the paper: pooling the per-frame
      features over time (instead of concatenating them) makes the model blind to frame order.
    - ``norm="batch"`` (the small preset) puts BatchNorm after every conv instead of LRN so the
      network trains from scratch on the CPU in seconds; ``norm="lrn"`` is the paper.
Shapes (letters defined in lecturekit/layers/shapes.py)
    video (B, C, T, H, W) -> logits (B, K)
Course: the single-frame baseline is ``lecturekit.models.frame_cnn`` (it reuses :class:`Tower`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from ..layers.shapes import check_video


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


class FCHead(nn.Module):
    """FC6 -> FC7 (ReLU + dropout each); ``out_features`` = last width (the clip embedding D)."""

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


class _Fusion(nn.Module):
    """Shared plumbing: tower -> (time merge) -> FC6/FC7 -> classifier."""

    SUPPORTS_ANY_T = False
    PRESETS: dict = {}

    def __init__(self, temporal, *, num_classes: int, in_channels: int, frames: int, size: int,
                 convs: Sequence[ConvSpec], fc: Sequence[int], dropout: float, norm: str, tower_frames: int | None = None):
        super().__init__()
        self.num_classes, self.in_channels, self.frames, self.size = num_classes, in_channels, frames, size
        self.tower = Tower(in_channels, convs, temporal, norm=norm)
        t, h, w = self.tower.out_shape(tower_frames or frames, size)
        self.tower_out = (self.tower.out_channels, t, h, w)
        self.fc = FCHead(self._fc_inputs(), fc, dropout)
        self.classifier = nn.Linear(self.fc.out_features, num_classes)

    def _fc_inputs(self) -> int:
        c, t, h, w = self.tower_out
        return c * t * h * w

    def _check(self, x: Tensor) -> None:
        check_video(x, channels=self.in_channels, frames=None if self.SUPPORTS_ANY_T else self.frames,
                    size=self.size, name=type(self).__name__)

    def forward_head(self, features: Tensor) -> Tensor:
        """Clip embedding (B, D) -> logits (B, K)."""
        return self.classifier(features)

    def forward(self, x: Tensor) -> Tensor:
        """Video (B, C, T, H, W) -> logits (B, K)."""
        return self.forward_head(self.forward_features(x))


class EarlyFusion(_Fusion):
    """Early fusion: conv1 spans all T frames (11×11×3×T filters); the rest is the 2D tower.

    Equivalent to a Conv2d over the C·T channels of the stacked frames (tested).

    Args:
        num_classes: K. frames: T (the paper: 10). size: H = W of the crop (paper 170).
        convs, fc, dropout, norm: the base network (see :class:`Tower`, :class:`FCHead`).

    Shape: (B, C, T, H, W) -> (B, K); T must equal ``frames``.
    """

    PRESETS = {
        "small": dict(num_classes=10, frames=8, size=32, convs=SMALL_CONVS, fc=(256, 256), dropout=0.2, norm="batch"),
        "paper": dict(num_classes=487, frames=10, size=170, convs=PAPER_CONVS, fc=(4096, 4096), dropout=0.5, norm="lrn"),
    }

    def __init__(self, num_classes: int = 10, *, in_channels: int = 3, frames: int = 8, size: int = 32,
                 convs: Sequence[ConvSpec] = SMALL_CONVS, fc: Sequence[int] = (256, 256), dropout: float = 0.2,
                 norm: str = "batch"):
        temporal = ((frames, 1),) + ((1, 1),) * (len(convs) - 1)
        super().__init__(temporal, num_classes=num_classes, in_channels=in_channels, frames=frames, size=size,
                         convs=convs, fc=fc, dropout=dropout, norm=norm)

    def forward_features(self, x: Tensor) -> Tensor:
        """Video (B, C, T, H, W) -> clip embedding (B, D)."""
        self._check(x)
        x = self.tower(x)                      # (B, C5, 1, H', W'): conv1 consumed the time axis
        return self.fc(x.flatten(1))           # (B, D)


class SlowFusion(_Fusion):
    """Slow fusion: conv1-conv3 are 3D convs (valid in time) that merge time gradually.

    Args:
        temporal: ``(extent, stride)`` for each of the first layers; the paper's
            ((4, 2), (2, 2), (2, 2)) turns 10 frames into 4 -> 2 -> 1 time steps.
        Others as :class:`EarlyFusion`.

    Shape: (B, C, T, H, W) -> (B, K); T must equal ``frames``.
    """

    PRESETS = {
        "small": dict(num_classes=10, frames=8, size=32, convs=SMALL_CONVS, temporal=((2, 2), (2, 2), (2, 2)),
                      fc=(256, 256), dropout=0.2, norm="batch"),
        "paper": dict(num_classes=487, frames=10, size=170, convs=PAPER_CONVS, temporal=((4, 2), (2, 2), (2, 2)),
                      fc=(4096, 4096), dropout=0.5, norm="lrn"),
    }

    def __init__(self, num_classes: int = 10, *, in_channels: int = 3, frames: int = 8, size: int = 32,
                 convs: Sequence[ConvSpec] = SMALL_CONVS, temporal: Sequence[tuple[int, int]] = ((2, 2), (2, 2), (2, 2)),
                 fc: Sequence[int] = (256, 256), dropout: float = 0.2, norm: str = "batch"):
        temporal = tuple(temporal) + ((1, 1),) * (len(convs) - len(temporal))
        super().__init__(temporal, num_classes=num_classes, in_channels=in_channels, frames=frames, size=size,
                         convs=convs, fc=fc, dropout=dropout, norm=norm)

    def forward_features(self, x: Tensor) -> Tensor:
        """Video (B, C, T, H, W) -> clip embedding (B, D)."""
        self._check(x)
        x = self.tower(x)                      # (B, C5, T', H', W'); T' = 1 in the paper
        return self.fc(x.flatten(1))           # (B, D), channel-major flatten


class LateFusion(_Fusion):
    """Late fusion: one tower (shared weights) per frame, frames merged at FC6.

    Args:
        frame_indices: which frames of the clip enter the towers; the paper uses two frames
            15 apart, ``(0, 15)`` of a 16-frame clip. ``None`` = every frame.
        pool: ``"concat"`` (paper: FC6 sees the concatenated per-frame maps), or ``"avg"`` /
            ``"max"`` over time (order-free: a shuffled clip gives the same logits).
        Others as :class:`EarlyFusion`.

    Shape: (B, C, T, H, W) -> (B, K). T must equal ``frames`` unless ``pool`` is order-free and
    ``frame_indices`` is None (then any T works: ``SUPPORTS_ANY_T`` is True on the instance).
    """

    PRESETS = {
        "small": dict(num_classes=10, frames=8, size=32, frame_indices=(0, 7), pool="concat", convs=SMALL_CONVS,
                      fc=(256, 256), dropout=0.2, norm="batch"),
        "paper": dict(num_classes=487, frames=16, size=170, frame_indices=(0, 15), pool="concat", convs=PAPER_CONVS,
                      fc=(4096, 4096), dropout=0.5, norm="lrn"),
    }

    def __init__(self, num_classes: int = 10, *, in_channels: int = 3, frames: int = 8, size: int = 32,
                 frame_indices: Sequence[int] | None = (0, 7), pool: str = "concat",
                 convs: Sequence[ConvSpec] = SMALL_CONVS, fc: Sequence[int] = (256, 256), dropout: float = 0.2,
                 norm: str = "batch"):
        if pool not in ("concat", "avg", "max"):
            raise ValueError(f"pool must be 'concat', 'avg' or 'max', got {pool!r}")
        if frame_indices is not None and not all(0 <= i < frames for i in frame_indices):
            raise ValueError(f"frame_indices {tuple(frame_indices)} must lie in [0, frames={frames})")
        self.pool = pool
        self.frame_indices = tuple(frame_indices) if frame_indices is not None else None
        self.towers = len(self.frame_indices) if self.frame_indices is not None else frames
        super().__init__(None, num_classes=num_classes, in_channels=in_channels, frames=frames, size=size,
                         convs=convs, fc=fc, dropout=dropout, norm=norm, tower_frames=1)
        self.SUPPORTS_ANY_T = pool != "concat" and self.frame_indices is None

    def _fc_inputs(self) -> int:
        c, _, h, w = self.tower_out
        return c * h * w * (self.towers if self.pool == "concat" else 1)

    def forward_features(self, x: Tensor) -> Tensor:
        """Video (B, C, T, H, W) -> clip embedding (B, D)."""
        self._check(x)
        if self.frame_indices is not None:
            x = x[:, :, list(self.frame_indices)]   # (B, C, F, H, W), F = len(frame_indices)
        x = self.tower(x)                            # (B, C5, F, H', W'): the same 2D tower on every frame
        x = x.transpose(1, 2).flatten(2)             # (B, F, C5*H'*W'), one vector per frame
        if self.pool == "concat":
            x = x.flatten(1)                         # (B, F*C5*H'*W'), frame-major concatenation
        elif self.pool == "avg":
            x = x.mean(dim=1)                        # (B, C5*H'*W'), order-free
        else:
            x = x.amax(dim=1)
        return self.fc(x)                            # (B, D)


__all__ = ["ConvSpec", "EarlyFusion", "FCHead", "LateFusion", "PAPER_CONVS", "SMALL_CONVS", "SlowFusion", "Tower"]
