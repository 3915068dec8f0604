"""Factorised 3D CNNs: P3D ResNet and R(2+1)D.

Papers:
    Z. Qiu, T. Yao, T. Mei, "Learning Spatio-Temporal Representation with Pseudo-3D Residual
    Networks", ICCV 2017. https://arxiv.org/abs/1711.10305
    D. Tran, H. Wang, L. Torresani, J. Ray, Y. LeCun, M. Paluri, "A Closer Look at Spatiotemporal
    Convolutions for Action Recognition", CVPR 2018. https://arxiv.org/abs/1711.11248

Both replace C3D's expensive 3×3×3 conv by a spatial 1×3×3 conv S and a temporal 3×1×1 conv T
(the blocks themselves, the M_i rule and the "27C vs 12C" arithmetic are in
``lecturekit.layers.factorised_conv``).

Implements
    P3D        a bottleneck ResNet whose middle 3×3 conv becomes a P3D-A/B/C block; ``block="ABC"``
               cycles A -> B -> C over all blocks of res2-res4 (P3D-199: 3 + 8 + 36 = 47 blocks,
               152 + 47 = 199 layers); res5 stays 2D; a temporal max-pool (2×1×1) after res2,
               res3 and res4 (official prototxt, via the naviocean/pseudo-3d-pytorch port)
    R2Plus1D   R(2+1)D-18/34: ResNet basic blocks whose 3×3×3 convs are (2+1)D convs; stem 1×7×7
               (3 -> 45) + 3×1×1 (45 -> 64), as in the official VMZ code and torchvision
The two width conventions of R(2+1)D (``mid_rule``)
    ``"per_conv"`` (paper, VMZ): every (2+1)D conv gets its own M_i = M(N_in, N_out).
        R(2+1)D-18, 400 classes: 33,370,839 parameters (R3D-18: 33,371,472).
    ``"per_block"`` (torchvision ``r2plus1d_18``): a block computes M once from (in, out) and
        reuses it for its second conv (out -> out). In the first block of layers 2-4 in = out/2,
        so conv2 gets M = 230/460/921 instead of 288/576/1152: 31,505,325 parameters, exactly
        1,865,514 fewer. Use it to load torchvision weights; use "per_conv" to claim "as many
        parameters as the 3D network".
Simplified
    - P3D: the stride of a stage sits on the first 1×1×1 conv (as in the port); no dropout
      schedule or Caffe initialisation; the P3D-199 parameter count is not checked against a
      published number (none verified).
Shapes (letters defined in lecturekit/layers/shapes.py)
    video (B, C, T, H, W) -> logits (B, K); any T >= 1 (global average pooling at the end)

>>> import torch
>>> with torch.device("meta"):                   # count a paper-size network without memory
...     net = R2Plus1D(**R2Plus1D.PRESETS["paper"])
>>> sum(p.numel() for p in net.parameters())
33370839
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..layers.factorised_conv import Conv2Plus1d, P3DMiddle, mid_channels
from ..layers.shapes import check_video
from .published import Published


def _init(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _shortcut(cin: int, cout: int, stride: tuple[int, int, int]) -> nn.Module | None:
    if cin == cout and stride == (1, 1, 1):
        return None
    return nn.Sequential(nn.Conv3d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm3d(cout))


class _VideoResNet(nn.Module):
    """Shared forward: stem -> stages -> global average pool -> dropout -> fc."""

    SUPPORTS_ANY_T = True

    def forward_features(self, x: Tensor) -> Tensor:
        """Video (B, C, T, H, W) -> pooled features (B, D)."""
        check_video(x, channels=self.in_channels, name=type(self).__name__)
        x = self.stem(x)                       # (B, C0, T', H', W')
        x = self.stages(x)                     # (B, D, T'', H'', W'')
        return self.pool(x).flatten(1)         # (B, D)

    def forward_head(self, features: Tensor) -> Tensor:
        """Pooled features (B, D) -> logits (B, K)."""
        return self.head(self.dropout(features))

    def forward(self, x: Tensor) -> Tensor:
        """Video (B, C, T, H, W) -> logits (B, K)."""
        return self.forward_head(self.forward_features(x))


class P3DBottleneck(nn.Module):
    """1×1×1 (reduce, spatial stride) -> P3D middle (A/B/C/2D) -> 1×1×1 (expand ×4) + shortcut.

    Shape: (B, cin, T, H, W) -> (B, 4*width, T, H/s, W/s)
    """

    expansion = 4

    def __init__(self, cin: int, width: int, kind: str, stride: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv3d(cin, width, 1, stride=(1, stride, stride), bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.middle = P3DMiddle(width, kind)
        self.conv3 = nn.Conv3d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(cout)
        self.downsample = _shortcut(cin, cout, (1, stride, stride))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.act(self.bn1(self.conv1(x)))    # (B, width, T, H/s, W/s)
        out = self.middle(out)                     # (B, width, T, H/s, W/s)
        out = self.bn3(self.conv3(out))            # (B, 4*width, T, H/s, W/s)
        return self.act(out + identity)


class P3D(_VideoResNet):
    """P3D ResNet (Qiu et al. 2017).

    Args:
        num_classes: K.
        in_channels: C.
        depths, widths: bottleneck blocks and base widths of res2..res5 (P3D-199: ResNet-152's
            (3, 8, 36, 3) and (64, 128, 256, 512)).
        block: ``"ABC"`` cycles A -> B -> C over the blocks of res2-res4; ``"A"``, ``"B"`` or
            ``"C"`` uses one kind everywhere (the paper's ablation). res5 is always 2D.
        stem_kernel, stem_stride, stem_pool: 1×k×k stem conv of stride (1, s, s), then (if
            ``stem_pool``) max-pool 2×3×3 stride 2; paper 7, 2, True.
        temporal_pool: max-pool 2×1×1 (stride 2, ceil mode) after res2, res3, res4.
        dropout: before the classifier.

    Shape: (B, C, T, H, W) -> (B, K)
    """

    PRESETS = {
        "small": dict(num_classes=10, depths=(1, 1, 1, 1), widths=(8, 16, 32, 64), block="ABC", stem_kernel=3,
                      stem_stride=2, stem_pool=False, dropout=0.0),
        # P3D-199 of the official Kinetics prototxt: 16×160×160 clips, 400 classes
        "paper": dict(num_classes=400, depths=(3, 8, 36, 3), widths=(64, 128, 256, 512), block="ABC",
                      stem_kernel=7, stem_stride=2, stem_pool=True, dropout=0.5),
    }

    def __init__(self, num_classes: int = 10, *, in_channels: int = 3, depths: Sequence[int] = (1, 1, 1, 1),
                 widths: Sequence[int] = (8, 16, 32, 64), block: str = "ABC", stem_kernel: int = 3,
                 stem_stride: int = 2, stem_pool: bool = False, temporal_pool: bool = True, dropout: float = 0.0):
        super().__init__()
        if block not in ("ABC", "A", "B", "C"):
            raise ValueError(f"block must be 'ABC', 'A', 'B' or 'C', got {block!r}")
        if len(depths) != 4 or len(widths) != 4:
            raise ValueError("P3D has four stages (res2..res5): give four depths and four widths")
        self.num_classes, self.in_channels = num_classes, in_channels
        k, c0 = stem_kernel, widths[0]
        stem = [nn.Conv3d(in_channels, c0, (1, k, k), stride=(1, stem_stride, stem_stride), padding=(0, k // 2, k // 2),
                          bias=False), nn.BatchNorm3d(c0), nn.ReLU(inplace=True)]
        if stem_pool:
            stem.append(nn.MaxPool3d((2, 3, 3), stride=2, padding=(0, 1, 1)))
        self.stem = nn.Sequential(*stem)
        stages, cin, index, self.kinds = [], c0, 0, []
        for s, (depth, width) in enumerate(zip(depths, widths)):
            blocks = []
            for i in range(depth):
                kind = "2D" if s == 3 else (block[index % 3] if block == "ABC" else block)
                index += s < 3
                self.kinds.append(kind)
                blocks.append(P3DBottleneck(cin, width, kind, stride=2 if (s > 0 and i == 0) else 1))
                cin = width * P3DBottleneck.expansion
            if temporal_pool and s < 3:
                blocks.append(nn.MaxPool3d((2, 1, 1), stride=(2, 1, 1), ceil_mode=True))
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.out_features = cin
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(cin, num_classes)
        _init(self)


class R2Plus1dBlock(nn.Module):
    """ResNet basic block with two (2+1)D convs: ReLU(BN(conv2(ReLU(BN(conv1(x))))) + shortcut).

    Args:
        cin, cout: channels; stride: applied in time and space by conv1 (and the shortcut).
        mid_rule: ``"per_conv"`` (M_i for each conv) or ``"per_block"`` (torchvision: conv1's M
            reused by conv2).

    Shape: (B, cin, T, H, W) -> (B, cout, T/s, H/s, W/s)
    """

    def __init__(self, cin: int, cout: int, stride: int = 1, mid_rule: str = "per_conv"):
        super().__init__()
        mid1 = mid_channels(cin, cout)
        mid2 = mid_channels(cout, cout) if mid_rule == "per_conv" else mid1
        self.conv1 = Conv2Plus1d(cin, cout, mid1, stride=stride)
        self.bn1 = nn.BatchNorm3d(cout)
        self.conv2 = Conv2Plus1d(cout, cout, mid2)
        self.bn2 = nn.BatchNorm3d(cout)
        self.downsample = _shortcut(cin, cout, (stride,) * 3)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.act(self.bn1(self.conv1(x)))    # (B, cout, T/s, H/s, W/s)
        out = self.bn2(self.conv2(out))
        return self.act(out + identity)


class R2Plus1D(_VideoResNet):
    """R(2+1)D (Tran et al. 2018): an R3D-18/34 with every 3×3×3 conv factorised into (2+1)D.

    Args:
        num_classes: K.
        in_channels: C.
        depths, widths: basic blocks and widths of conv2_x..conv5_x (R(2+1)D-18: (2, 2, 2, 2) and
            (64, 128, 256, 512); R(2+1)D-34: depths (3, 4, 6, 3)).
        mid_rule: ``"per_conv"`` (paper) or ``"per_block"`` (torchvision), see the module docstring.
        stem_kernel, stem_stride: the 1×k×k stem conv (paper 7, stride (1, 2, 2)).
        stem_mid: channels between the stem's spatial and temporal convs; the official code uses
            45 (the M_i rule would give 83); ``None`` applies the M_i rule.
        dropout: before the classifier (0 in the paper).

    Shape: (B, C, T, H, W) -> (B, K); conv3_1, conv4_1, conv5_1 halve T, H and W.
    """

    PRESETS = {
        "small": dict(num_classes=10, depths=(1, 1, 1, 1), widths=(8, 16, 32, 64), stem_kernel=3, stem_stride=2,
                      stem_mid=None),
        # R(2+1)D-18, Kinetics-400, 16×112×112 clips (Tran et al. 2018, Table 2; VMZ code)
        "paper": dict(num_classes=400, depths=(2, 2, 2, 2), widths=(64, 128, 256, 512), stem_kernel=7, stem_stride=2,
                      stem_mid=45, mid_rule="per_conv"),
    }
    PUBLISHED = {
        "params_per_conv": Published(33_370_839, "parameters", "preset 'paper' (R(2+1)D-18, 400-way head, "
                                     "M_i per conv, stem 45 channels)", "the R(2+1)D-18 of the official code "
                                     "github.com/facebookresearch/VMZ, counted by instantiating it"),
        "params_per_block": Published(31_505_325, "parameters", "preset 'paper' with mid_rule='per_block' "
                                      "(torchvision's M per block)",
                                      "torchvision.models.video.r2plus1d_18 (its documented parameter count)"),
    }

    def __init__(self, num_classes: int = 10, *, in_channels: int = 3, depths: Sequence[int] = (1, 1, 1, 1),
                 widths: Sequence[int] = (8, 16, 32, 64), mid_rule: str = "per_conv", stem_kernel: int = 3,
                 stem_stride: int = 2, stem_mid: int | None = None, dropout: float = 0.0):
        super().__init__()
        if mid_rule not in ("per_conv", "per_block"):
            raise ValueError(f"mid_rule must be 'per_conv' or 'per_block', got {mid_rule!r}")
        self.num_classes, self.in_channels, self.mid_rule = num_classes, in_channels, mid_rule
        k, c0 = stem_kernel, widths[0]
        m = stem_mid if stem_mid is not None else mid_channels(in_channels, c0, t=3, d=k)
        self.stem = nn.Sequential(
            nn.Conv3d(in_channels, m, (1, k, k), stride=(1, stem_stride, stem_stride), padding=(0, k // 2, k // 2),
                      bias=False),
            nn.BatchNorm3d(m), nn.ReLU(inplace=True),
            nn.Conv3d(m, c0, (3, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(c0), nn.ReLU(inplace=True),
        )
        stages, cin = [], c0
        for s, (depth, width) in enumerate(zip(depths, widths)):
            blocks = []
            for i in range(depth):
                blocks.append(R2Plus1dBlock(cin, width, 2 if (s > 0 and i == 0) else 1, mid_rule))
                cin = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.out_features = cin
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(cin, num_classes)
        _init(self)


__all__ = ["P3D", "P3DBottleneck", "R2Plus1D", "R2Plus1dBlock"]
