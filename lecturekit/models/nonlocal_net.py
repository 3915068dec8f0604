"""Non-local neural networks: self-attention over all space-time positions of a feature map.

Paper: X. Wang, R. Girshick, A. Gupta, K. He, "Non-local Neural Networks", CVPR 2018.
https://arxiv.org/abs/1711.07971  (official code: facebookresearch/video-nonlocal-net)

A convolution sees a small space-time window; a non-local block lets every position i of a
video feature map x (N×C×T×H×W, M = T·H·W positions) read from every position j:

    y_i = (1 / C(x)) Σ_j f(x_i, x_j) g(x_j)                              Eq. (1)
    f(x_i, x_j) = exp(θ(x_i)ᵀ φ(x_j)),  C(x) = Σ_j f(x_i, x_j)           Eq. (3), embedded Gaussian
                 => y_i = Σ_j softmax_j(θ(x_i)ᵀ φ(x_j)) g(x_j)
    z_i = W_z y_i + x_i                                                  Eq. (6), residual

θ, φ, g are 1×1×1 convs C -> C/2 (with bias); W_z is a 1×1×1 conv C/2 -> C followed by BN.

Implements
    NonLocalBlock  the embedded-Gaussian block; works on a video map (B, C, T, H, W) of a 3D
                   backbone, or on frames folded into the batch (B*T, C, H, W) of a 2D backbone
                   when told ``frames=T``
    NonLocalNet    a C2D network (the shared 2D ResNet run on every frame) with non-local blocks
                   inserted after chosen residual blocks, time averaged at the end
Details of the official code kept here (github.com/facebookresearch/video-nonlocal-net)
    - φ and g read a 1×2×2 max-pooled input (``subsample=True``): M' = M/4 keys.
    - logits scaled by (C/2)^(-1/2) (``scale=True``).
    - BN after W_z with γ = 0 at init: the block starts as the identity; convs init N(0, 0.01).
    - Paper placement in ResNet-50: 5 blocks, after blocks {0, 2} of res3 and {0, 2, 4} of res4.
    The widely copied PyTorch port pools AFTER the φ/g convs and does not scale; both are
    switchable (``pool_after_proj=True``, ``scale=False``) to show that they change the output.
Parameters per block: 2C² + 4.5C (θ, φ, g, W_z with biases: 2C² + 2.5C; BN affine: 2C),
    e.g. 2,101,760 at C = 1024; the 5-block ResNet-50 adds 7,358,464 (``NonLocalNet.PUBLISHED``).
Simplified
    - the C2D baseline of the paper also max-pools time after res2 and uses 32-frame clips; here
      time is only merged by the non-local blocks and the final average (as in TSM + NL).
Shapes (letters defined in lecturekit/layers/shapes.py)
    video (B, C, T, H, W) -> logits (B, K); a block maps its input to the same shape

>>> import torch
>>> block = NonLocalBlock(64)
>>> x = torch.randn(2, 64, 4, 8, 8)
>>> torch.equal(block(x), x)                     # zero-initialised BN gamma: identity at init
True
>>> block.affinity(x)[0].shape                    # M = 4·8·8 queries, M/4 keys
torch.Size([2, 256, 64])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..layers.resnet2d import BLOCKS, ResNet2d
from ..layers.shapes import check_video, fold_time, unfold_time
from .published import Published


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block, z = BN(W_z y) + x.

    Args:
        channels: C.
        inner: width of θ, φ, g (default C/2).
        subsample: max-pool 1×2×2 the keys/values (M' = M/4).
        scale: divide the logits by sqrt(inner).
        pool_after_proj: pool after the φ/g convs (the PyTorch port) instead of before (official).
        zero_init: BN γ = 0, so the block is the identity at init.

    Shape: (B, C, T, H, W) -> same; or (B*T, C, H, W) -> same when ``frames=T`` is given.
    """

    def __init__(self, channels: int, inner: int | None = None, *, subsample: bool = True, scale: bool = True,
                 pool_after_proj: bool = False, zero_init: bool = True):
        super().__init__()
        self.channels, self.inner = channels, inner or channels // 2
        self.scale, self.pool_after_proj = scale, pool_after_proj
        self.theta = nn.Conv3d(channels, self.inner, 1)
        self.phi = nn.Conv3d(channels, self.inner, 1)
        self.g = nn.Conv3d(channels, self.inner, 1)
        self.w = nn.Conv3d(self.inner, channels, 1)
        self.bn = nn.BatchNorm3d(channels)
        self.pool = nn.MaxPool3d((1, 2, 2)) if subsample else nn.Identity()
        for conv in (self.theta, self.phi, self.g, self.w):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        if zero_init:
            nn.init.zeros_(self.bn.weight)

    def _video(self, x: Tensor, frames: int | None) -> Tensor:
        if x.dim() == 5:
            check_video(x, channels=self.channels, name="NonLocalBlock input")
            return x
        if x.dim() == 4 and frames is not None:
            if x.shape[1] != self.channels:
                raise ValueError(f"NonLocalBlock: expected (B*T, C={self.channels}, H, W), got {tuple(x.shape)}")
            return unfold_time(x, frames).transpose(1, 2)     # (B*T, C, H, W) -> (B, C, T, H, W)
        raise ValueError(f"NonLocalBlock: expected (B, C={self.channels}, T, H, W), or (B*T, C, H, W) with "
                         f"frames=T, got shape {tuple(x.shape)} and frames={frames}")

    def affinity(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """softmax_j(θ_iᵀφ_j) of a video map (B, C, T, H, W): returns (A (B, M, M'), g (B, M', C/2))."""
        src = x if self.pool_after_proj else self.pool(x)            # official: pool the input of φ, g
        phi, g = self.phi(src), self.g(src)                           # (B, C/2, T, H', W')
        if self.pool_after_proj:
            phi, g = self.pool(phi), self.pool(g)
        q = self.theta(x).flatten(2).transpose(1, 2)                  # (B, M, C/2)
        k = phi.flatten(2)                                            # (B, C/2, M')
        logits = q @ k                                                # (B, M, M')
        if self.scale:
            logits = logits * self.inner ** -0.5
        return torch.softmax(logits, dim=-1), g.flatten(2).transpose(1, 2)   # Eq. (3); (B, M', C/2)

    def forward(self, x: Tensor, frames: int | None = None) -> Tensor:
        """(B, C, T, H, W) -> (B, C, T, H, W); or (B*T, C, H, W) -> same with ``frames=T``."""
        v = self._video(x, frames)
        b, _, t, h, w = v.shape
        a, g = self.affinity(v)
        y = (a @ g).transpose(1, 2).reshape(b, self.inner, t, h, w)  # Eq. (1): (B, M, C/2) -> (B, C/2, T, H, W)
        z = self.bn(self.w(y)) + v                                    # Eq. (6)
        return z if x.dim() == 5 else fold_time(z)


class NonLocalNet(nn.Module):
    """C2D + non-local: a 2D ResNet on every frame, non-local blocks across frames, time averaged.

    Args:
        num_classes: K.
        in_channels: C.
        widths, depths, block, stem: the shared ``ResNet2d`` trunk (paper: ResNet-50).
        nonlocal_after: indices (over all residual blocks, counted from 0) after which a
            non-local block is inserted; ResNet-50's res3 {0, 2} and res4 {0, 2, 4} are (3, 5, 7, 9, 11).
        subsample, scale: passed to every :class:`NonLocalBlock`.
        dropout: before the classifier.

    Shape: (B, C, T, H, W) -> (B, K); any T.
    """

    SUPPORTS_ANY_T = True
    PRESETS = {
        "small": dict(num_classes=10, widths=(16, 32, 64), depths=(1, 1, 1), block="basic", stem="small",
                      nonlocal_after=(1,)),
        # NL C2D ResNet-50, 5 blocks, Kinetics-400 (Wang et al. 2018, Table 2c, the 5-block setting)
        "paper": dict(num_classes=400, widths=(64, 128, 256, 512), depths=(3, 4, 6, 3), block="bottleneck",
                      stem="imagenet", nonlocal_after=(3, 5, 7, 9, 11)),
    }
    PUBLISHED = {
        "block_params_1024": Published(2_101_760, "parameters", "one non-local block at C = 1024 "
                                       "(2C² + 4.5C: θ, φ, g, W_z with biases and the BN affine)",
                                       "the NonLocal block of github.com/facebookresearch/video-nonlocal-net, "
                                       "counted layer by layer"),
        "resnet50_5_blocks": Published(7_358_464, "parameters", "the 5 non-local blocks added to ResNet-50 "
                                       "(after blocks 0, 2 of res3 and 0, 2, 4 of res4)",
                                       "Wang et al., arXiv:1711.07971, Sec. 4.1 (placement) and the official code "
                                       "github.com/facebookresearch/video-nonlocal-net, counted layer by layer"),
    }

    def __init__(self, num_classes: int = 10, *, in_channels: int = 3, widths: Sequence[int] = (16, 32, 64),
                 depths: Sequence[int] = (1, 1, 1), block: str = "basic", stem: str = "small",
                 nonlocal_after: Sequence[int] = (1,), subsample: bool = True, scale: bool = True,
                 dropout: float = 0.0):
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        self.backbone = ResNet2d(in_channels, widths=widths, depths=depths, block=block, stem=stem)
        out_channels = [w * BLOCKS[block].expansion for w, d in zip(widths, depths) for _ in range(d)]
        bad = [i for i in nonlocal_after if not 0 <= i < len(out_channels)]
        if bad:
            raise ValueError(f"nonlocal_after {bad} out of range: the trunk has {len(out_channels)} blocks")
        self.nonlocal_blocks = nn.ModuleDict(
            {str(i): NonLocalBlock(out_channels[i], subsample=subsample, scale=scale) for i in nonlocal_after})
        self.out_features = self.backbone.out_features
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.out_features, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """Video (B, C, T, H, W) -> clip features (B, D)."""
        _, _, t, _, _ = check_video(x, channels=self.in_channels, name="NonLocalNet")
        x = self.backbone.stem(fold_time(x))                 # (B*T, C0, H', W')
        for i, blk in enumerate(self.backbone.blocks):
            x = blk(x)                                       # (B*T, C_i, H_i, W_i), per frame
            if str(i) in self.nonlocal_blocks:
                x = self.nonlocal_blocks[str(i)](x, frames=t)   # mixes all frames and positions
        f = self.backbone.pool(x).flatten(1)                 # (B*T, D)
        return unfold_time(f, t).mean(dim=1)                 # (B, D)

    def forward_head(self, features: Tensor) -> Tensor:
        """Clip features (B, D) -> logits (B, K)."""
        return self.head(self.dropout(features))

    def forward(self, x: Tensor) -> Tensor:
        """Video (B, C, T, H, W) -> logits (B, K)."""
        return self.forward_head(self.forward_features(x))


__all__ = ["NonLocalBlock", "NonLocalNet"]
