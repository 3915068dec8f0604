"""A plain 2D ResNet: residual blocks and a backbone, run on single images (or frames).

Paper: K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition",
CVPR 2016. https://arxiv.org/abs/1512.03385

The 2D video families (frame CNN, TSN, TSM, GSM/GSF, the two streams of the two-stream
network) run one of these on every frame of a video folded into the batch, ``(B*T, C, H, W)``.
Nothing here knows about time: TSM and GSF build their own blocks from these ones
(``lecturekit.models.tsm``, ``lecturekit.models.gsf``) and pass them in with ``make_block``.

Implements
    BasicBlock   y = ReLU(F(x) + S(x)), F = two 3×3 convs (ResNet-18/34 block), expansion 1
    Bottleneck   F = 1×1 → 3×3 → 1×1 (ResNet-50 block), expansion 4; the stride sits on the
                 3×3 conv (the "v1.5" placement of torchvision; it changes no count)
    ResNet2d     stem → stages of blocks → global average pool; ``forward_features`` -> (N, D)

    S(x) is the identity, or a strided 1×1 conv + BN when the shape changes (the projection
    shortcut, option B of Sec. 3.3). Each block exposes its parts, so that a model can put
    something between them: ``residual(x)`` = F(x), ``shortcut(x)`` = S(x), and F split at its
    last BN, ``residual(x) = last_bn(residual_convs(x))``.

Presets
    ``ResNet2d()`` is the CPU default for 32×32 frames: widths (16, 32, 64), one BasicBlock per
    stage, a 3×3 stride-2 stem (feature maps 16, 8, 4 pixels wide), 77,392 parameters.
    ``ResNet2d.resnet50()`` is the ImageNet ResNet-50 trunk (7×7/2 stem + 3×3/2 max-pool,
    Bottleneck, depths (3, 4, 6, 3), widths (64, 128, 256, 512)): 23,508,032 parameters
    without a classifier, i.e. 25,557,032 with the 1000-way fc (He et al., Table 1; the
    torchvision ``resnet50`` count).

Shapes (letters defined in lecturekit/layers/shapes.py)
    frames (N, C, H, W) with N = B*T -> features (N, D);  D = ``out_features``
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from .shapes import check_frames

NormLayer = Callable[[int], nn.Module]


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


def projection_shortcut(cin: int, cout: int, stride: int, norm_layer: NormLayer = nn.BatchNorm2d) -> nn.Module | None:
    """S(x) of a block: ``None`` (identity) when the shape is kept, else 1×1 conv (stride) + norm."""
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(_conv1x1(cin, cout, stride), norm_layer(cout))


class _Residual(nn.Module):
    """What both blocks share: y = ReLU(F(x) + S(x)) and the accessors of F and S."""

    expansion = 1
    downsample: nn.Module | None

    def residual_convs(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    @property
    def last_bn(self) -> nn.Module:
        raise NotImplementedError

    def residual(self, x: Tensor) -> Tensor:
        """F(x): the residual branch."""
        return self.last_bn(self.residual_convs(x))

    def shortcut(self, x: Tensor) -> Tensor:
        """S(x): identity or projection."""
        return x if self.downsample is None else self.downsample(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.residual(x) + self.shortcut(x))


class BasicBlock(_Residual):
    """ResNet basic block: F(x) = BN(conv3×3(ReLU(BN(conv3×3(x))))).

    Args:
        cin: input channels.
        width: channels of both 3×3 convs (output = ``width``).
        stride: spatial stride of the first conv (and of the projection shortcut).
        norm_layer: normalisation callable, ``norm_layer(channels)``.

    Shape: (N, cin, H, W) -> (N, width, H/stride, W/stride)
    """

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1, *, norm_layer: NormLayer = nn.BatchNorm2d):
        super().__init__()
        self.build_residual(cin, width, stride, norm_layer)
        self.downsample = projection_shortcut(cin, width * self.expansion, stride, norm_layer)
        self.act = nn.ReLU(inplace=True)

    def build_residual(self, cin: int, width: int, stride: int, norm_layer: NormLayer) -> None:
        """The layers of F, registered in forward order."""
        self.conv1 = _conv3x3(cin, width, stride)
        self.bn1 = norm_layer(width)
        self.conv2 = _conv3x3(width, width * self.expansion)
        self.bn2 = norm_layer(width * self.expansion)

    def residual_convs(self, x: Tensor) -> Tensor:
        """F up to (not including) its last BN: (N, cin, H, W) -> (N, width, H/s, W/s)."""
        return self.conv2(self.act(self.bn1(self.conv1(x))))

    @property
    def last_bn(self) -> nn.Module:
        return self.bn2


class Bottleneck(_Residual):
    """ResNet bottleneck: F(x) = BN(1×1 expand ×4 (ReLU(BN(3×3, stride (ReLU(BN(1×1 reduce (x)))))))).

    Arguments as :class:`BasicBlock`.

    Shape: (N, cin, H, W) -> (N, 4*width, H/stride, W/stride)
    """

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, *, norm_layer: NormLayer = nn.BatchNorm2d):
        super().__init__()
        self.build_residual(cin, width, stride, norm_layer)
        self.downsample = projection_shortcut(cin, width * self.expansion, stride, norm_layer)
        self.act = nn.ReLU(inplace=True)

    def build_residual(self, cin: int, width: int, stride: int, norm_layer: NormLayer) -> None:
        """The layers of F, registered in forward order."""
        self.conv1 = _conv1x1(cin, width)
        self.bn1 = norm_layer(width)
        self.conv2 = _conv3x3(width, width, stride)
        self.bn2 = norm_layer(width)
        self.conv3 = _conv1x1(width, width * self.expansion)
        self.bn3 = norm_layer(width * self.expansion)

    def residual_convs(self, x: Tensor) -> Tensor:
        """F up to (not including) its last BN: (N, cin, H, W) -> (N, 4*width, H/s, W/s)."""
        out = self.act(self.bn1(self.conv1(x)))      # (N, width, H, W)
        out = self.act(self.bn2(self.conv2(out)))    # (N, width, H/s, W/s)
        return self.conv3(out)                       # (N, 4*width, H/s, W/s)

    @property
    def last_bn(self) -> nn.Module:
        return self.bn3


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
BlockFactory = Callable[..., nn.Module]


def plain_block(block_cls: type, cin: int, width: int, stride: int, *, stage: int, index: int,
                norm_layer: NormLayer) -> nn.Module:
    """The default ``make_block`` of :class:`ResNet2d`: the plain block, whatever its position."""
    return block_cls(cin, width, stride, norm_layer=norm_layer)


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
        make_block: builds each block, ``make_block(block_cls, cin, width, stride, *, stage,
            index, norm_layer)`` with ``index`` counted within the stage; the default
            :func:`plain_block` returns ``block_cls(cin, width, stride)``. A model that changes
            some blocks (TSM, GSF) passes its own.
        zero_init_residual: zero the last BN's gamma of every block (each block starts as the
            identity), a common trick for small-data training.
        norm_layer: normalisation callable.

    Shape:
        ``forward_maps``: (N, C, H, W) -> (N, D, H', W');  ``forward_features``: -> (N, D)
    """

    def __init__(self, in_channels: int = 3, *, widths: Sequence[int] = (16, 32, 64),
                 depths: Sequence[int] = (1, 1, 1), block: str = "basic", stem: str = "small",
                 stem_stride: int = 2, make_block: BlockFactory = plain_block, zero_init_residual: bool = False,
                 norm_layer: NormLayer = nn.BatchNorm2d):
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
        blocks, cin = [], c0
        for stage, (width, depth) in enumerate(zip(widths, depths)):
            for i in range(depth):
                stride = 2 if (stage > 0 and i == 0) else 1
                blocks.append(make_block(block_cls, cin, width, stride, stage=stage, index=i, norm_layer=norm_layer))
                cin = width * block_cls.expansion
        self.blocks = nn.ModuleList(blocks)
        self.out_features = cin
        self.pool = nn.AdaptiveAvgPool2d(1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            for b in self.blocks:
                nn.init.zeros_(b.last_bn.weight)

    @classmethod
    def resnet50(cls, in_channels: int = 3, **overrides) -> ResNet2d:
        """The ImageNet ResNet-50 trunk (He et al. 2016, Table 1): 23,508,032 params for 3 channels."""
        kwargs = dict(widths=(64, 128, 256, 512), depths=(3, 4, 6, 3), block="bottleneck", stem="imagenet")
        return cls(in_channels, **{**kwargs, **overrides})

    def forward_maps(self, x: Tensor) -> Tensor:
        """Frames (N, C, H, W) -> last feature maps (N, D, H', W')."""
        check_frames(x, channels=self.in_channels)
        x = self.stem(x)                              # (N, widths[0], H or H/4, ...)
        for blk in self.blocks:
            x = blk(x)
        return x                                      # (N, D, H', W')

    def forward_features(self, x: Tensor) -> Tensor:
        """Frames (N, C, H, W) -> globally average-pooled features (N, D)."""
        return self.pool(self.forward_maps(x)).flatten(1)   # (N, D)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x)


__all__ = ["BLOCKS", "BasicBlock", "Bottleneck", "ResNet2d", "plain_block", "projection_shortcut"]
