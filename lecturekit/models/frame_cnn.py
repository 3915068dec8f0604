"""Single-frame CNN: classify every frame on its own, average the predictions over time.

Paper: A. Karpathy, G. Toderici, S. Shetty, T. Leung, R. Sukthankar, L. Fei-Fei,
"Large-scale Video Classification with Convolutional Neural Networks", CVPR 2014 (the
"single-frame" baseline, Sec. 2.1 and Table 1). https://cs.stanford.edu/people/karpathy/deepvideo/

The lecture's first video model and "often a very strong baseline": an image CNN f applied to
every frame x_t independently, with the frame predictions averaged at test time,

    p(k | clip) = (1/T) Σ_t softmax(W f(x_t) + b)_k

Implements
    FrameCNN   per-frame 2D network + per-frame classifier + test-time averaging
    average_predictions   frame logits (B, T, K) -> clip logits (B, K): what FrameCNN returns
    average_frame_probs   the same average as probabilities (B, K) (exercise 01.2)
Backbones
    ``backbone="resnet"``    the shared small ResNet of ``lecturekit.layers.resnet2d`` (CPU default)
    ``backbone="karpathy"``  the paper's AlexNet-style network (the conv tower of
                             ``lecturekit.layers.conv_tower`` with temporal extent 1, then FC6, FC7)
Returned logits
    ``average="probs"`` (the slide's "average predicted probs"): the model returns
    log((1/T) Σ_t softmax(z_t)), computed stably as logsumexp_t(log_softmax(z_t)) - log T. These
    are log-probabilities, i.e. valid logits: their softmax is exactly the averaged probability.
    ``average="logits"`` returns (1/T) Σ_t z_t instead. Train either way on clip labels with
    cross-entropy, or frame by frame with :meth:`FrameCNN.frame_logits`.
Simplified
    - the paper averages over 20 clips per video; here over the frames of one clip.
Shapes (letters defined in lecturekit/layers/shapes.py)
    video (B, C, T, H, W) -> logits (B, K); features (B, T, D)

>>> import torch
>>> model = FrameCNN(num_classes=10).eval()
>>> model.forward_features(torch.zeros(2, 3, 5, 32, 32)).shape      # any T
torch.Size([2, 5, 64])
>>> probs = model(torch.zeros(2, 3, 5, 32, 32)).exp()                # averaged probabilities
>>> torch.allclose(probs.sum(-1), torch.ones(2))
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..layers.conv_tower import PAPER_CONVS, SMALL_CONVS, ConvSpec, FCLayers, Tower
from ..layers.resnet2d import ResNet2d
from ..layers.shapes import check_sequence, check_video, fold_time, unfold_time


def average_predictions(frame_logits: Tensor, average: str = "probs") -> Tensor:
    """Per-frame logits (B, T, K) -> clip logits (B, K) by averaging probabilities or logits."""
    if average == "probs":
        t = frame_logits.shape[1]
        return torch.logsumexp(torch.log_softmax(frame_logits.float(), dim=-1), dim=1) - math.log(t)
    if average == "logits":
        return frame_logits.mean(dim=1)
    raise ValueError(f"average must be 'probs' or 'logits', got {average!r}")


def average_frame_probs(frame_logits: Tensor) -> Tensor:
    """Test-time averaging as probabilities: p(k | clip) = (1/T) Σ_t softmax(z_t)_k.

    The single-frame model's clip prediction (Karpathy et al., "Large-scale Video Classification
    with Convolutional Neural Networks", CVPR 2014, Sec. 2.1; the formula of the module
    docstring): the logits z_t of every frame are turned into probabilities, then averaged over
    time. Computed as ``exp(average_predictions(frame_logits, "probs"))``, i.e. from exactly the
    clip logits ``FrameCNN(average="probs")`` returns, and cast back to the input's dtype.
    Exercise 01.2 checks students against this function.

    Shape: frame logits (B, T, K) -> probabilities (B, K); every row sums to 1.
    """
    return average_predictions(frame_logits, "probs").exp().to(frame_logits.dtype)


class KarpathyFrameEncoder(nn.Module):
    """Karpathy's single-frame network up to FC7: frames (N, C, H, W) -> (N, D)."""

    def __init__(self, in_channels: int, size: int, convs: Sequence[ConvSpec], fc: Sequence[int], dropout: float,
                 norm: str):
        super().__init__()
        self.size = size
        self.tower = Tower(in_channels, convs, norm=norm)
        _, h, w = self.tower.out_shape(1, size)
        self.fc = FCLayers(self.tower.out_channels * h * w, fc, dropout)
        self.out_features = self.fc.out_features

    def forward(self, x: Tensor) -> Tensor:
        x = self.tower(x.unsqueeze(2))          # (N, C5, 1, H', W'): a 2D net written as Conv3d with extent 1
        return self.fc(x.flatten(1))            # (N, D)


class FrameCNN(nn.Module):
    """A 2D CNN applied to every frame; frame predictions averaged over time.

    Args:
        num_classes: K.
        in_channels: C of the input video.
        backbone: ``"resnet"`` (shared ResNet2d) or ``"karpathy"`` (the paper's network).
        widths, depths: ResNet2d stages (``backbone="resnet"``).
        size: frame size H = W; needed by ``"karpathy"`` (FC6 depends on it), ignored by ResNet.
        convs, fc, dropout, norm: the Karpathy network (see ``lecturekit.layers.conv_tower``).
        average: ``"probs"`` (paper/slide) or ``"logits"``, see the module docstring.

    Shape:
        ``forward``: (B, C, T, H, W) -> (B, K), any T >= 1.
        ``forward_features``: (B, C, T, H, W) -> (B, T, D).  ``forward_head``: (B, T, D) -> (B, K).
    """

    SUPPORTS_ANY_T = True
    PRESETS = {
        "small": dict(num_classes=10, backbone="resnet", widths=(16, 32, 64), depths=(1, 1, 1)),
        # Karpathy et al. single-frame network on 170×170 crops, Sports-1M (487 classes)
        "paper": dict(num_classes=487, backbone="karpathy", size=170, convs=PAPER_CONVS, fc=(4096, 4096),
                      dropout=0.5, norm="lrn"),
    }

    def __init__(self, num_classes: int = 10, *, in_channels: int = 3, backbone: str = "resnet",
                 widths: Sequence[int] = (16, 32, 64), depths: Sequence[int] = (1, 1, 1), size: int = 32,
                 convs: Sequence[ConvSpec] = SMALL_CONVS, fc: Sequence[int] = (256, 256), dropout: float = 0.2,
                 norm: str = "batch", average: str = "probs"):
        super().__init__()
        if average not in ("probs", "logits"):
            raise ValueError(f"average must be 'probs' or 'logits', got {average!r}")
        self.num_classes, self.in_channels, self.average, self.backbone_name = num_classes, in_channels, average, backbone
        if backbone == "resnet":
            self.size = None
            self.backbone = ResNet2d(in_channels, widths=widths, depths=depths)
        elif backbone == "karpathy":
            self.size = size
            self.backbone = KarpathyFrameEncoder(in_channels, size, convs, fc, dropout, norm)
        else:
            raise ValueError(f"backbone must be 'resnet' or 'karpathy', got {backbone!r}")
        self.out_features = self.backbone.out_features
        self.head = nn.Linear(self.out_features, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """Video (B, C, T, H, W) -> per-frame features (B, T, D)."""
        _, _, t, _, _ = check_video(x, channels=self.in_channels, size=self.size, name="FrameCNN")
        f = self.backbone(fold_time(x))         # (B*T, D), frames of one video contiguous
        return unfold_time(f, t)                # (B, T, D)

    def frame_logits(self, x: Tensor) -> Tensor:
        """Video (B, C, T, H, W) -> per-frame logits (B, T, K), for frame-level training."""
        return self.head(self.forward_features(x))

    def forward_head(self, features: Tensor) -> Tensor:
        """Per-frame features (B, T, D) -> clip logits (B, K) (test-time averaging)."""
        check_sequence(features, dim=self.out_features, name="FrameCNN features")
        return average_predictions(self.head(features), self.average)   # (B, T, K) -> (B, K)

    def forward(self, x: Tensor) -> Tensor:
        """Video (B, C, T, H, W) -> logits (B, K)."""
        return self.forward_head(self.forward_features(x))


__all__ = ["FrameCNN", "KarpathyFrameEncoder", "average_frame_probs", "average_predictions"]
