"""TSM: Temporal Shift Module networks.

Paper: J. Lin, C. Gan, S. Han, "TSM: Temporal Shift Module for Efficient Video Understanding",
ICCV 2019. https://arxiv.org/abs/1811.08383

Implements
    TSM   a TSN-style 2D ResNet whose blocks shift part of their channels along time before
          the first conv of the residual branch ("residual shift", Sec. 3.3, Fig. 3b).

    For every block (ResNet basic or bottleneck) with input x (B*T, C, H, W):

        y = x + F( shift(x) )            residual shift (``place="residual"``, the default)
        y = shift(x) + F( shift(x) )     in-place shift (``place="block"``; worse in the paper)

    where ``shift`` moves C/8 channels to the next frame and C/8 to the previous one with zero
    padding (the operator, its directions and its online variant: ``lecturekit.layers.
    temporal_shift``). Frame logits are averaged over T (TSN's consensus).
Simplified
    - Backbone: small ResNet for the CPU; ResNet-50 in the ``paper`` preset (8 frames,
      Kinetics-400): 24,327,632 params, 32.7 GMACs at 8×224² [V-comp, RECOGNITION.md §5], the
      same as TSN: the shift adds no parameter and no multiply-add.
    - No temporal max-pooling variant (``temporal_pool``), no non-local blocks, no MobileNet.
    - Frames are taken as given (sample them with ``lecturekit.models.tsn.segment_indices``).
Shapes (letters defined in lecturekit/layers/shapes.py)
    video (B, 3, T, H, W) -> frames (B*T, 3, H, W) -> features (B, T, D) -> logits (B, K)
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import Tensor, nn

from ..layers.resnet2d import PerFrameClassifier, ResNet2d
from ..layers.temporal_shift import TemporalShift


class TSM(PerFrameClassifier):
    """A ResNet with temporal shifts in every block, TSN average consensus over frames.

    Args:
        num_classes: K.
        fold_div: ``C // fold_div`` channels shift each way (8 in the paper, i.e. 1/4 moves);
            ``None`` disables the shift, which turns TSM into TSN with the same weights.
        mode: ``"offline"`` (bidirectional) or ``"online"`` (past only, for streaming).
        place: ``"residual"`` (default, the paper's choice) or ``"block"`` (in-place shift).
        in_channels, widths, depths, block, stem: the :class:`ResNet2d` backbone.
        shift_every: shift in every n-th block only (the official code uses 2 for ResNet-101).
        dropout: dropout before the classifier (0 here; the ``paper`` preset uses 0.5, the value
            the official Kinetics training command passes [P]).

    Shape: video (B, C, T, H, W), any T >= 1 -> logits (B, K)

    Example:
        >>> TSM(num_classes=10)(torch.randn(2, 3, 8, 32, 32)).shape
        torch.Size([2, 10])
    """

    SUPPORTS_ANY_T = True
    PRESETS = {
        "small": dict(num_classes=10),
        # Table 2 / README of the official code: TSM ResNet-50, 8 frames, Kinetics-400.
        "paper": dict(num_classes=400, widths=(64, 128, 256, 512), depths=(3, 4, 6, 3),
                      block="bottleneck", stem="imagenet", dropout=0.5),
    }
    # [V-comp] RECOGNITION.md §5 and §10: params with a 400-way head; GMACs at 1×3×8×224×224.
    PUBLISHED = {"paper_params": 24_327_632, "paper_params_174": 23_864_558, "paper_gmacs": 32.7,
                 "paper_input": (1, 3, 8, 224, 224)}

    def __init__(self, num_classes: int = 10, *, fold_div: int | None = 8, mode: str = "offline",
                 place: str = "residual", in_channels: int = 3, widths: Sequence[int] = (16, 32, 64),
                 depths: Sequence[int] = (1, 1, 1), block: str = "basic", stem: str = "small",
                 shift_every: int = 1, dropout: float = 0.0):
        super().__init__()
        if place not in ("residual", "block"):
            raise ValueError(f"place must be 'residual' or 'block', got {place!r}")
        self.in_channels = in_channels
        shift = partial(_make_shift, fold_div=fold_div, mode=mode)
        self.backbone = ResNet2d(in_channels, widths=widths, depths=depths, block=block, stem=stem,
                                 temporal=shift, temporal_place=place, temporal_every=shift_every)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.backbone.out_features, num_classes)


def _make_shift(channels: int, *, fold_div: int | None, mode: str) -> nn.Module:
    """Factory for the backbone hook (the shift does not depend on ``channels``)."""
    return TemporalShift(fold_div, mode)


__all__ = ["TSM"]
