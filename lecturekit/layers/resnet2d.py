"""A small ResNet-style 2D backbone shared by the 2D video families.

Paper: K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition",
CVPR 2016. https://arxiv.org/abs/1512.03385

Used by the frame CNN, TSN, TSM, GSM/GSF and both streams of the two-stream network: all of
them run one 2D network on every frame of a video folded into the batch, ``(B*T, C, H, W)``,
with the frames of one video contiguous (row ``b*T + t``).

Implements
    BasicBlock   two 3×3 convs + identity (ResNet-18/34 block), expansion 1
    Bottleneck   1×1 → 3×3 → 1×1 + identity (ResNet-50 block), expansion 4; the stride sits on
                 the 3×3 conv (the "v1.5" placement of torchvision; it changes no count)
    ResNet2d     stem → stages → global average pool; ``forward_features`` returns (N, D)

The temporal hook
    A block may carry a *temporal module*, built by a factory ``temporal(channels) -> Module``.
    Its forward is ``module(x, frames)`` on ``x`` of shape (B*T, C, H, W) with ``frames = T``
    and it returns the same shape. ``temporal_place`` says where it sits:

    * ``"residual"``: on the residual branch, before ``conv1`` (TSM's "residual shift",
      ``place='blockres'`` in the official code). The identity path is untouched.
    * ``"before_last_bn"``: on the residual branch after the last conv and before its BN (GSF's
      placement in ResNet-50: after ``conv3``, before ``bn3``).
    * ``"block"``: on the block input, before the split into identity and residual (TSM's
      "in-place shift", ``place='block'``): the identity path is shifted too.

    ``T`` is passed down at run time (``forward_features(x, frames=T)``), so one model works for
    any number of frames; nothing stores T.

Presets
    ``ResNet2d()`` is the CPU default for 32×32 frames: widths (16, 32, 64), one BasicBlock per
    stage, a 3×3 stride-2 stem (feature maps 16, 8, 4 pixels wide), 77,392 parameters.
    ``ResNet2d.resnet50()`` is the ImageNet ResNet-50 trunk (7×7/2 stem + 3×3/2 max-pool,
    Bottleneck, depths (3, 4, 6, 3), widths (64, 128, 256, 512)): 23,508,032 parameters
    without a classifier, i.e. 25,557,032 with the 1000-way fc [V-comp, RECOGNITION.md §10].

Shapes (letters defined in lecturekit/layers/shapes.py)
    frames (N, C, H, W) with N = B*T -> features (N, D);  D = ``out_features``
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from .shapes import check_frames, check_shape, check_video, fold_time

TemporalFactory = Callable[[int], nn.Module]
PLACES = ("residual", "before_last_bn", "block")


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class _Block(nn.Module):
    """Shared plumbing: the optional temporal module and the projection shortcut."""

    expansion = 1

    def _setup_common(self, cin: int, cout: int, stride: int, norm_layer) -> None:
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(_conv1x1(cin, cout, stride), norm_layer(cout))
        self.act = nn.ReLU(inplace=True)

    def _temporal(self, x: Tensor, frames: int | None) -> Tensor:
        if frames is None:
            raise ValueError(
                f"{type(self).__name__} has a temporal module ({type(self.temporal).__name__}) and "
                "needs the number of frames: call forward_features(x, frames=T)"
            )
        return self.temporal(x, frames)


class BasicBlock(_Block):
    """ResNet basic block: y = ReLU(x' + BN(conv3×3(ReLU(BN(conv3×3(x)))))).

    Args:
        cin: input channels.
        width: channels of both 3×3 convs (output = ``width``).
        stride: spatial stride of the first conv (and of the projection shortcut).
        temporal: optional factory ``channels -> Module`` for the temporal hook.
        temporal_place: ``"residual"`` (before conv1), ``"before_last_bn"`` (before bn2) or
            ``"block"`` (before the identity split).
        norm_layer: normalisation callable, ``norm_layer(channels)``.

    Shape: (N, cin, H, W) -> (N, width, H/stride, W/stride)
    """

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1, *, temporal: TemporalFactory | None = None,
                 temporal_place: str = "residual", norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d):
        super().__init__()
        if temporal_place not in PLACES:
            raise ValueError(f"temporal_place must be one of {PLACES}, got {temporal_place!r}")
        cout = width * self.expansion
        self.conv1 = _conv3x3(cin, width, stride)
        self.bn1 = norm_layer(width)
        self.conv2 = _conv3x3(width, cout)
        self.bn2 = norm_layer(cout)
        self.temporal_place = temporal_place
        channels = cout if temporal_place == "before_last_bn" else cin
        self.temporal = temporal(channels) if temporal is not None else None
        self._setup_common(cin, cout, stride, norm_layer)

    def forward(self, x: Tensor, frames: int | None = None) -> Tensor:
        if self.temporal is not None and self.temporal_place == "block":
            x = self._temporal(x, frames)            # in-place: identity path sees it too
        identity = x if self.downsample is None else self.downsample(x)
        out = x
        if self.temporal is not None and self.temporal_place == "residual":
            out = self._temporal(out, frames)        # (N, cin, H, W), residual branch only
        out = self.act(self.bn1(self.conv1(out)))    # (N, width, H/s, W/s)
        out = self.conv2(out)
        if self.temporal is not None and self.temporal_place == "before_last_bn":
            out = self._temporal(out, frames)
        out = self.bn2(out)
        return self.act(out + identity)              # (N, width, H/s, W/s)


class Bottleneck(_Block):
    """ResNet bottleneck: 1×1 (reduce) → 3×3 (stride) → 1×1 (expand ×4) + identity.

    Arguments as :class:`BasicBlock`; ``"before_last_bn"`` puts the temporal module after
    ``conv3`` and before ``bn3`` (GSF's ResNet-50 placement).

    Shape: (N, cin, H, W) -> (N, 4*width, H/stride, W/stride)
    """

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, *, temporal: TemporalFactory | None = None,
                 temporal_place: str = "residual", norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d):
        super().__init__()
        if temporal_place not in PLACES:
            raise ValueError(f"temporal_place must be one of {PLACES}, got {temporal_place!r}")
        cout = width * self.expansion
        self.conv1 = _conv1x1(cin, width)
        self.bn1 = norm_layer(width)
        self.conv2 = _conv3x3(width, width, stride)
        self.bn2 = norm_layer(width)
        self.conv3 = _conv1x1(width, cout)
        self.bn3 = norm_layer(cout)
        self.temporal_place = temporal_place
        channels = cout if temporal_place == "before_last_bn" else cin
        self.temporal = temporal(channels) if temporal is not None else None
        self._setup_common(cin, cout, stride, norm_layer)

    def forward(self, x: Tensor, frames: int | None = None) -> Tensor:
        if self.temporal is not None and self.temporal_place == "block":
            x = self._temporal(x, frames)            # in-place: identity path sees it too
        identity = x if self.downsample is None else self.downsample(x)
        out = x
        if self.temporal is not None and self.temporal_place == "residual":
            out = self._temporal(out, frames)        # (N, cin, H, W), residual branch only
        out = self.act(self.bn1(self.conv1(out)))    # (N, width, H, W)
        out = self.act(self.bn2(self.conv2(out)))    # (N, width, H/s, W/s)
        out = self.conv3(out)                        # (N, 4*width, H/s, W/s)
        if self.temporal is not None and self.temporal_place == "before_last_bn":
            out = self._temporal(out, frames)
        out = self.bn3(out)
        return self.act(out + identity)


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet2d(nn.Module):
    """A configurable 2D ResNet trunk without classifier, run on frames (N, C, H, W).

    Args:
        in_channels: input channels (3 RGB, 15 for TSN's RGB difference, 2L for stacked flow).
        widths: base width of each stage (a Bottleneck stage outputs 4× this).
        depths: blocks per stage.
        block: ``"basic"`` or ``"bottleneck"``.
        stem: ``"small"`` (one 3×3 conv of stride ``stem_stride``, no pooling; for 32×32 frames)
            or ``"imagenet"`` (7×7 conv stride 2 + 3×3 max-pool stride 2), width ``widths[0]``.
        stem_stride: stride of the small stem. The default 2 (32×32 -> 16×16 -> 8×8 -> 4×4)
            makes a training step on 8 clips × 8 frames about 4× cheaper than stride 1
            (≈16 ms vs ≈70 ms on one CPU core); use 1 for CIFAR-style full resolution.
        temporal: optional factory ``channels -> Module`` inserted in every block (see the
            module docstring); ``temporal_every`` > 1 keeps only every n-th block (TSM does this
            for ResNet-101).
        temporal_place: ``"residual"``, ``"before_last_bn"`` or ``"block"``.
        zero_init_residual: zero the last BN's gamma of every block (each block starts as the
            identity), a common trick for small-data training.
        norm_layer: normalisation callable.

    Shape:
        ``forward_maps``: (N, C, H, W) -> (N, D, H', W');  ``forward_features``: -> (N, D)
    """

    def __init__(self, in_channels: int = 3, *, widths: Sequence[int] = (16, 32, 64),
                 depths: Sequence[int] = (1, 1, 1), block: str = "basic", stem: str = "small",
                 stem_stride: int = 2, temporal: TemporalFactory | None = None, temporal_place: str = "residual",
                 temporal_every: int = 1, zero_init_residual: bool = False,
                 norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d):
        super().__init__()
        if len(widths) != len(depths):
            raise ValueError(f"widths {tuple(widths)} and depths {tuple(depths)} need the same length")
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {tuple(BLOCKS)}, got {block!r}")
        if stem not in ("small", "imagenet"):
            raise ValueError(f"stem must be 'small' or 'imagenet', got {stem!r}")
        self.in_channels = in_channels
        block_cls = BLOCKS[block]
        c0 = widths[0]
        if stem == "small":
            self.stem = nn.Sequential(_conv3x3(in_channels, c0, stem_stride), norm_layer(c0), nn.ReLU(inplace=True))
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, c0, 7, stride=2, padding=3, bias=False), norm_layer(c0),
                nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1),
            )
        blocks, cin, index = [], c0, 0
        for stage, (width, depth) in enumerate(zip(widths, depths)):
            for i in range(depth):
                stride = 2 if (stage > 0 and i == 0) else 1
                use_t = temporal is not None and index % temporal_every == 0
                blocks.append(block_cls(cin, width, stride, temporal=temporal if use_t else None,
                                        temporal_place=temporal_place, norm_layer=norm_layer))
                cin = width * block_cls.expansion
                index += 1
        self.blocks = nn.ModuleList(blocks)
        self.out_features = cin
        self.pool = nn.AdaptiveAvgPool2d(1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            for b in self.blocks:
                nn.init.zeros_(b.bn3.weight if isinstance(b, Bottleneck) else b.bn2.weight)

    @classmethod
    def resnet50(cls, in_channels: int = 3, **overrides) -> ResNet2d:
        """The ImageNet ResNet-50 trunk (He et al. 2016, Table 1): 23,508,032 params for 3 channels."""
        kwargs = dict(widths=(64, 128, 256, 512), depths=(3, 4, 6, 3), block="bottleneck", stem="imagenet")
        return cls(in_channels, **{**kwargs, **overrides})

    def forward_maps(self, x: Tensor, frames: int | None = None) -> Tensor:
        """Frames (N, C, H, W) -> last feature maps (N, D, H', W'); ``frames`` = T if temporal."""
        check_frames(x, channels=self.in_channels)
        x = self.stem(x)                              # (N, widths[0], H or H/4, ...)
        for blk in self.blocks:
            x = blk(x, frames)
        return x                                      # (N, D, H', W')

    def forward_features(self, x: Tensor, frames: int | None = None) -> Tensor:
        """Frames (N, C, H, W) -> globally average-pooled features (N, D)."""
        return self.pool(self.forward_maps(x, frames)).flatten(1)   # (N, D)

    def forward(self, x: Tensor, frames: int | None = None) -> Tensor:
        return self.forward_features(x, frames)


class PerFrameClassifier(nn.Module):
    """The 2D-backbone video classifier shared by TSM and GSF: a ``ResNet2d`` whose blocks mix
    time through a temporal hook, a per-frame linear classifier, and average consensus.

    Subclasses set ``in_channels``, ``backbone`` (a ResNet2d), ``dropout`` and ``fc``.

    Shape: video (B, C, T, H, W) -> features (B, T, D) -> logits (B, K).
    """

    in_channels: int
    backbone: "ResNet2d"
    dropout: nn.Module
    fc: nn.Linear

    def forward_features(self, video: Tensor) -> Tensor:
        """video (B, C, T, H, W) -> per-frame features (B, T, D), frames mixed by the hook."""
        b, _, t, _, _ = check_video(video, channels=self.in_channels)
        f = self.backbone.forward_features(fold_time(video), frames=t)      # (B*T, D)
        return f.view(b, t, -1)                                             # (B, T, D)

    def forward_head(self, features: Tensor) -> Tensor:
        """Per-frame classifier and average consensus: (B, T, D) -> (B, K)."""
        check_shape(features, "B T D", name="features", D=self.fc.in_features)
        return self.fc(self.dropout(features)).mean(dim=1)                  # (B, K)

    def forward(self, video: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(video))


__all__ = ["BasicBlock", "Bottleneck", "PerFrameClassifier", "ResNet2d", "TemporalFactory"]
