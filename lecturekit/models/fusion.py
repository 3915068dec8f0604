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
    EarlyFusion, LateFusion, SlowFusion   the three multi-frame models of the paper, built from
                 the conv tower of ``lecturekit.layers.conv_tower`` (``Tower``: one temporal
                 extent and stride per conv layer) and its FC6/FC7 layers (``FCLayers``)
    stack_frames   early fusion's input view: the T frames stacked on the channel axis, in the
                 order of EarlyFusion's conv1 weight (exercise 02.1)
    temporal_pool  late fusion's order-free merge, ``LateFusion(pool="avg" | "max")`` (exercise 02.2)
Simplified / choices
    - Spatial padding: see ``lecturekit.layers.conv_tower``. The multiresolution (fovea +
      context) network is not implemented.
    - ``pool="avg"``/``"max"`` for late fusion is an option, not the paper: pooling the per-frame
      features over time (instead of concatenating them) makes the model blind to frame order.
    - ``norm="batch"`` (the small preset) puts BatchNorm after every conv instead of LRN so the
      network trains from scratch on the CPU in seconds; ``norm="lrn"`` is the paper.
Shapes (letters defined in lecturekit/layers/shapes.py)
    video (B, C, T, H, W) -> logits (B, K)
Course: the single-frame baseline is ``lecturekit.models.frame_cnn`` (the same tower, extent 1).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..layers.conv_tower import PAPER_CONVS, SMALL_CONVS, ConvSpec, FCLayers, Tower
from ..layers.shapes import check_video


def stack_frames(x: Tensor) -> Tensor:
    """Early fusion's view of a clip: the T frames stacked on the channel axis, channel-major.

    Output channel c·T + t is channel c of frame t. Early fusion (Karpathy et al., "Large-scale
    Video Classification with Convolutional Neural Networks", CVPR 2014, Sec. 2.1, Fig. 1)
    extends conv1 to 11×11×3×T filters over T frames; ``EarlyFusion`` stores that layer as a
    Conv3d whose weight (O, C, T, k, k) spans all frames, and ``F.conv2d`` on these stacked
    channels with ``weight.reshape(O, C*T, k, k)`` gives the same output (up to float
    rounding): this is the order in which that weight flattens. ``EarlyFusion`` itself runs the
    Conv3d, so that its numbers stay those of the 3D layer. Only moves values (any dtype,
    contiguous or not). Exercise 02.1 checks students against this function.

    Shape: (B, C, T, H, W) -> (B, C*T, H, W)
    """
    b, c, t, h, w = x.shape
    return x.reshape(b, c * t, h, w)


def temporal_pool(features: Tensor, mode: str = "avg") -> Tensor:
    """Order-free late fusion: per-frame features pooled over time, average or maximum.

    ``LateFusion(pool="avg" | "max")`` merges its per-frame tower outputs with this function
    instead of the paper's concatenation at FC6 (Karpathy et al., "Large-scale Video
    Classification with Convolutional Neural Networks", CVPR 2014, Sec. 2.1): h = (1/T) Σ_t f_t
    (``"avg"``) or h_d = max_t f_{t,d} (``"max"``). Both ignore the order of the frames, so a
    shuffled (or reversed) clip gets the same features. Exercise 02.2 checks students against
    this function.

    Shape: (B, T, D) -> (B, D)
    """
    if mode == "avg":
        return features.mean(dim=1)
    if mode == "max":
        return features.amax(dim=1)
    raise ValueError(f"mode must be 'avg' or 'max', got {mode!r}")


class _Fusion(nn.Module):
    """Shared plumbing: tower -> (time merge) -> FC6/FC7 (``fc``) -> classifier (``head``)."""

    SUPPORTS_ANY_T = False
    PRESETS: dict = {}

    def __init__(self, temporal, *, num_classes: int, in_channels: int, frames: int, size: int,
                 convs: Sequence[ConvSpec], fc: Sequence[int], dropout: float, norm: str, tower_frames: int | None = None):
        super().__init__()
        self.num_classes, self.in_channels, self.frames, self.size = num_classes, in_channels, frames, size
        self.tower = Tower(in_channels, convs, temporal, norm=norm)
        t, h, w = self.tower.out_shape(tower_frames or frames, size)
        self.tower_out = (self.tower.out_channels, t, h, w)
        self.fc = FCLayers(self._fc_inputs(), fc, dropout)
        self.head = nn.Linear(self.fc.out_features, num_classes)

    def _fc_inputs(self) -> int:
        c, t, h, w = self.tower_out
        return c * t * h * w

    def _check(self, x: Tensor) -> None:
        check_video(x, channels=self.in_channels, frames=None if self.SUPPORTS_ANY_T else self.frames,
                    size=self.size, name=type(self).__name__)

    def forward_head(self, features: Tensor) -> Tensor:
        """Clip embedding (B, D) -> logits (B, K)."""
        return self.head(features)

    def forward(self, x: Tensor) -> Tensor:
        """Video (B, C, T, H, W) -> logits (B, K)."""
        return self.forward_head(self.forward_features(x))


class EarlyFusion(_Fusion):
    """Early fusion: conv1 spans all T frames (11×11×3×T filters); the rest is the 2D tower.

    Equivalent to a Conv2d over the C·T channels of the stacked frames (tested).

    Args:
        num_classes: K. frames: T (the paper: 10). size: H = W of the crop (paper 170).
        convs, fc, dropout, norm: the base network (see ``lecturekit.layers.conv_tower``).

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
        else:
            x = temporal_pool(x, self.pool)          # (B, C5*H'*W'), order-free: mean or max over F
        return self.fc(x)                            # (B, D)


__all__ = ["EarlyFusion", "LateFusion", "SlowFusion", "stack_frames", "temporal_pool"]
