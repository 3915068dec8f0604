"""C3D: a VGG-style network made only of 3×3×3 convolutions and 3D max-pooling.

Paper: D. Tran, L. Bourdev, R. Fergus, L. Torresani, M. Paluri,
"Learning Spatiotemporal Features with 3D Convolutional Networks", ICCV 2015.
https://arxiv.org/abs/1412.0767  (official Caffe code: github.com/facebookarchive/C3D)

Every conv is 3×3×3, stride 1, padding 1 (Sec. 3.2 of the paper: the best kernel depth was 3);
pool1 is 1×2×2 so that time is not merged too early, every other pool is 2×2×2:

    conv1a(64) pool1(1×2×2) conv2a(128) pool2 conv3a,b(256) pool3 conv4a,b(512) pool4
    conv5a,b(512) pool5 fc6(4096) fc7(4096) fc8(K)
    16×112×112 -> T: 16, 16, 8, 4, 2, 1 after the pools; fc6 sees 512×1×4×4 = 8192 values

Implements
    C3D    the network of the official deploy prototxt (Sports-1M: 487 classes)
The pool5 trap
    Caffe's 3D pooling starts its windows at multiples of the stride and clips the last one at
    the border, i.e. ``ceil_mode=True``: 7 -> 4 with windows {0,1},{2,3},{4,5},{6}. Popular
    PyTorch ports write ``MaxPool3d(2, 2, padding=(0, 1, 1))`` instead: the same 4×4 shape, but
    other windows ({-1,0},{1,2},...) and other outputs. ``pool5="ceil"`` is Caffe (default),
    ``"pad"`` is the port, ``"floor"`` drops the border (512×1×3×3 = 4608, the lecture slide's
    table). The choice moves the parameter count by 14.7 M (fc6) and the MACs by 0.015 G.
Published numbers (``C3D.PUBLISHED``)
    paper preset: 79,991,015 parameters; 38,496,632,832 conv MACs and 38,548,959,232 conv+fc
    MACs per 3×16×112×112 clip (= 77.10 GFLOPs, 2 FLOPs per MAC). The slide's "39.6 GFLOP" is
    38.5 GMACs with the FC rows inflated 27× (see lecturekit.analysis.flops).
Simplified
    - ``batch_norm=True`` (the small preset) adds BatchNorm after every conv: NOT in the paper,
      an educational option so that the net trains from scratch in seconds on a CPU.
    - ``caffe_init=True`` (paper preset) reproduces the prototxt initialisation (Gaussian std
      0.01 convs, 0.005 fc6/fc7; biases 0 for conv1a and fc8, 1 otherwise).
Shapes (letters defined in lecturekit/layers/shapes.py)
    video (B, C, T, H, W) -> logits (B, K); T, H, W fixed by ``frames`` and ``size`` (fc6 depends on them)

>>> import torch
>>> C3D(num_classes=10)(torch.zeros(2, 3, 8, 32, 32)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

from torch import Tensor, nn

from ..layers.shapes import check_video
from .published import Published

# (name, conv widths of the stage, pool kernel after the stage) of the official prototxt
_STAGES = (("1", 1, (1, 2, 2)), ("2", 1, (2, 2, 2)), ("3", 2, (2, 2, 2)), ("4", 2, (2, 2, 2)), ("5", 2, (2, 2, 2)))
PAPER_WIDTHS = (64, 128, 256, 512, 512)
POOL5_MODES = ("ceil", "pad", "floor")


def _pool_out(n: int, k: int, mode: str, pad: int = 0) -> int:
    """Length after a max-pool with kernel = stride = k (``ceil_mode`` for Caffe's "ceil")."""
    if mode == "ceil":
        return math.ceil((n + 2 * pad - k) / k) + 1
    return (n + 2 * pad - k) // k + 1


class C3D(nn.Module):
    """C3D (Tran et al. 2015): 8 convs 3×3×3, 5 max-pools, 3 FC layers.

    Args:
        num_classes: K (487 for Sports-1M, 101 for UCF-101).
        in_channels: C.
        frames, size: the clip the network is built for (paper 16 and 112); fc6's input
            size is computed from them, and forward rejects other clip sizes.
        widths: channels of the five conv stages (paper 64, 128, 256, 512, 512).
        fc: widths of fc6 and fc7 (paper 4096, 4096).
        pool5: ``"ceil"`` (Caffe), ``"pad"`` (PyTorch ports) or ``"floor"``.
        dropout: after fc6 and fc7 (paper 0.5).
        batch_norm: BN after every conv (not in the paper).
        caffe_init: the prototxt's Gaussian initialisation.

    Shape: (B, C, frames, size, size) -> (B, K)
    """

    SUPPORTS_ANY_T = False
    PRESETS = {
        "small": dict(num_classes=10, frames=8, size=32, widths=(8, 16, 32, 64, 64), fc=(128, 128),
                      dropout=0.2, batch_norm=True),
        # official prototxt c3d_sport1m_feature_extractor_frm.prototxt (Sports-1M, 487 classes)
        "paper": dict(num_classes=487, frames=16, size=112, widths=PAPER_WIDTHS, fc=(4096, 4096),
                      dropout=0.5, pool5="ceil", batch_norm=False, caffe_init=True),
    }
    PUBLISHED = {
        "params": Published(79_991_015, "parameters", "preset 'paper' (487-way Sports-1M head, pool5 'ceil')",
                            "the official deploy prototxt of github.com/facebookarchive/C3D "
                            "(c3d_sport1m_feature_extractor_frm.prototxt), counted layer by layer"),
        "conv_macs": Published(38_496_632_832, "multiply-adds", "preset 'paper', convolutions only, one "
                               "3×16×112×112 clip", "the official deploy prototxt of "
                               "github.com/facebookarchive/C3D, counted layer by layer"),
        "macs": Published(38_548_959_232, "multiply-adds", "preset 'paper', convolutions and fc6-fc8, one "
                          "3×16×112×112 clip (77.10 GFLOPs at 2 FLOPs per multiply-add)",
                          "the official deploy prototxt of github.com/facebookarchive/C3D, counted layer by layer"),
    }

    def __init__(self, num_classes: int = 10, *, in_channels: int = 3, frames: int = 8, size: int = 32,
                 widths: Sequence[int] = (8, 16, 32, 64, 64), fc: Sequence[int] = (128, 128), pool5: str = "ceil",
                 dropout: float = 0.2, batch_norm: bool = True, caffe_init: bool = False):
        super().__init__()
        if pool5 not in POOL5_MODES:
            raise ValueError(f"pool5 must be one of {POOL5_MODES}, got {pool5!r}")
        if len(widths) != 5:
            raise ValueError(f"C3D has 5 conv stages, got widths {tuple(widths)}")
        self.num_classes, self.in_channels, self.frames, self.size = num_classes, in_channels, frames, size
        layers, cin, t, h = [], in_channels, frames, size
        for (stage, n_convs, pool), width in zip(_STAGES, widths):
            for i in range(n_convs):
                name = f"conv{stage}{'ab'[i]}"
                layers.append((name, nn.Conv3d(cin, width, 3, padding=1)))
                if batch_norm:
                    layers.append((f"bn{stage}{'ab'[i]}", nn.BatchNorm3d(width)))
                layers.append((f"relu{stage}{'ab'[i]}", nn.ReLU(inplace=True)))
                cin = width
            last = stage == "5"
            mode = pool5 if last else "floor"
            layers.append((f"pool{stage}", nn.MaxPool3d(pool, stride=pool, ceil_mode=mode == "ceil",
                                                         padding=(0, 1, 1) if mode == "pad" else 0)))
            t, h = _pool_out(t, pool[0], mode), _pool_out(h, pool[1], mode, 1 if mode == "pad" else 0)
            if t < 1 or h < 1:
                raise ValueError(f"a {frames}×{size}×{size} clip is too small for C3D's five pools")
        self.features = nn.Sequential(OrderedDict(layers))
        self.pool5_shape = (cin, t, h, h)                       # (512, 1, 4, 4) in the paper preset
        dims = [cin * t * h * h, *fc]
        self.fc = nn.Sequential()
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            self.fc.add_module(f"fc{6 + i}", nn.Linear(a, b))
            self.fc.add_module(f"relu{6 + i}", nn.ReLU(inplace=True))
            self.fc.add_module(f"drop{6 + i}", nn.Dropout(dropout))
        self.out_features = dims[-1]
        self.head = nn.Sequential(OrderedDict(fc8=nn.Linear(dims[-1], num_classes)))   # the classifier, fc8
        if caffe_init:
            self._caffe_init()

    def _caffe_init(self) -> None:
        convs = [m for m in self.features if isinstance(m, nn.Conv3d)]
        for i, m in enumerate(convs):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.constant_(m.bias, 0.0 if i == 0 else 1.0)
        for m in self.fc:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.005)
                nn.init.constant_(m.bias, 1.0)
        nn.init.normal_(self.head.fc8.weight, std=0.01)
        nn.init.zeros_(self.head.fc8.bias)

    def forward_maps(self, x: Tensor) -> Tensor:
        """Video (B, C, T, H, W) -> pool5 maps (B, 512, 1, 4, 4) in the paper preset."""
        check_video(x, channels=self.in_channels, frames=self.frames, size=self.size, name="C3D")
        return self.features(x)

    def forward_features(self, x: Tensor) -> Tensor:
        """Video (B, C, T, H, W) -> fc7 features (B, D), the "C3D features" of the paper (D = 4096)."""
        return self.fc(self.forward_maps(x).flatten(1))      # channel-major flatten (C, T, H, W), as Caffe

    def forward_head(self, features: Tensor) -> Tensor:
        """fc7 features (B, D) -> logits (B, K)."""
        return self.head(features)

    def forward(self, x: Tensor) -> Tensor:
        """Video (B, C, T, H, W) -> logits (B, K)."""
        return self.forward_head(self.forward_features(x))


__all__ = ["C3D"]
