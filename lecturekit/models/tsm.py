"""TSM: Temporal Shift Module networks.

Paper: J. Lin, C. Gan, S. Han, "TSM: Temporal Shift Module for Efficient Video Understanding",
ICCV 2019. https://arxiv.org/abs/1811.08383
Official code: github.com/mit-han-lab/temporal-shift-module (``ops/temporal_shift.py``).

Implements
    ShiftedBasicBlock, ShiftedBottleneck
          a plain ResNet block (``lecturekit.layers.resnet2d``) that shifts part of its
          channels along time, either on the residual branch only or on the whole block
          (Sec. 3.3, Fig. 3):

              y = ReLU( S(x) + F(shift(x)) )           residual shift (``place="residual"``, default)
              y = ReLU( S(x') + F(x') ), x' = shift(x)   in-place shift (``place="block"``; worse in the paper)

          with F the residual branch and S the shortcut. ``shift`` moves C/8 channels to the next
          frame and C/8 to the previous one with zero padding (the operator, its directions and
          its online variant: ``lecturekit.layers.temporal_shift``). The official code does the
          same by wrapping the first conv of the block (``make_temporal_shift``, ``blockres``).
    TSM   a 2D ResNet with shifted blocks, a per-frame classifier and TSN's average of the frame
          logits over T (the shared driver ``lecturekit.models.drivers.PerFrameClassifier``).

    Which blocks shift: in every stage, blocks 0, n, 2n, ... with n = ``shift_every``
    (the official ``n_round``: 1, i.e. every block, except for ResNet-101 and deeper, where the
    official code uses 2). See :func:`shifted_blocks`.
Simplified
    - Backbone: small ResNet for the CPU; ResNet-50 in the ``paper`` preset (8 frames,
      Kinetics-400): 24,327,632 parameters and 32.7 GMACs at 8×224², the same as TSN: the shift
      adds no parameter and no multiply-add (see ``TSM.PUBLISHED``).
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

from ..layers.resnet2d import BasicBlock, Bottleneck, NormLayer, ResNet2d
from ..layers.temporal_shift import TemporalShift
from .drivers import PerFrameClassifier
from .published import Published

PLACES = ("residual", "block")


class _Shifted:
    """The shifted version of a plain ResNet block (mixed into BasicBlock and Bottleneck below).

    Args:
        cin, width, stride, norm_layer: the plain block.
        shift: the temporal module, called as ``shift(x, frames)`` on (B*T, C, H, W).
        place: ``"residual"`` or ``"block"`` (see the module docstring).

    Shape: (B*T, cin, H, W) with ``frames = T`` -> (B*T, cout, H/stride, W/stride)
    """

    def __init__(self, cin: int, width: int, stride: int = 1, *, shift: nn.Module, place: str = "residual",
                 norm_layer: NormLayer = nn.BatchNorm2d):
        super().__init__(cin, width, stride, norm_layer=norm_layer)
        if place not in PLACES:
            raise ValueError(f"place must be one of {PLACES}, got {place!r}")
        self.temporal, self.place = shift, place

    def forward(self, x: Tensor, frames: int) -> Tensor:
        if self.place == "block":                          # in-place: the identity path is shifted too
            x = self.temporal(x, frames)
            return self.act(self.residual(x) + self.shortcut(x))
        shifted = self.temporal(x, frames)                 # (B*T, cin, H, W), the residual branch only
        return self.act(self.residual(shifted) + self.shortcut(x))


class ShiftedBasicBlock(_Shifted, BasicBlock):
    """:class:`~lecturekit.layers.resnet2d.BasicBlock` with a temporal shift (see ``_Shifted``)."""


class ShiftedBottleneck(_Shifted, Bottleneck):
    """:class:`~lecturekit.layers.resnet2d.Bottleneck` with a temporal shift (see ``_Shifted``)."""


SHIFTED = {BasicBlock: ShiftedBasicBlock, Bottleneck: ShiftedBottleneck}


def shifted_blocks(depths: Sequence[int], shift_every: int = 1) -> list[tuple[int, int]]:
    """(stage, index within the stage) of the blocks TSM shifts: every ``shift_every``-th block of
    each stage, starting with its first one (the official ``n_round`` rule).

    >>> shifted_blocks((2, 3), shift_every=2)
    [(0, 0), (1, 0), (1, 2)]
    """
    if not isinstance(shift_every, int) or shift_every < 1:
        raise ValueError(f"shift_every must be a positive int, got {shift_every!r}")
    return [(stage, i) for stage, depth in enumerate(depths) for i in range(depth) if i % shift_every == 0]


def _make_block(block_cls: type, cin: int, width: int, stride: int, *, stage: int, index: int,
                norm_layer: NormLayer, fold_div: int | None, mode: str, place: str, shift_every: int) -> nn.Module:
    """ResNet2d's ``make_block`` for TSM: a shifted block where :func:`shifted_blocks` says so."""
    if index % shift_every:
        return block_cls(cin, width, stride, norm_layer=norm_layer)
    return SHIFTED[block_cls](cin, width, stride, shift=TemporalShift(fold_div, mode), place=place,
                              norm_layer=norm_layer)


class TSM(PerFrameClassifier):
    """A ResNet with temporal shifts in its blocks, TSN average consensus over frames.

    Args:
        num_classes: K.
        fold_div: ``C // fold_div`` channels shift each way (8 in the paper, i.e. 1/4 moves);
            ``None`` disables the shift, which turns TSM into TSN with the same weights.
        mode: ``"offline"`` (bidirectional) or ``"online"`` (past only, for streaming).
        place: ``"residual"`` (default, the paper's choice) or ``"block"`` (in-place shift).
        in_channels, widths, depths, block, stem: the :class:`ResNet2d` backbone.
        shift_every: shift blocks 0, n, 2n, ... of every stage (:func:`shifted_blocks`; the
            official code uses 2 for ResNet-101).
        dropout: dropout before the classifier (0 here; the ``paper`` preset uses 0.5, the value
            of the Kinetics training command in the official repository's README).

    Shape: video (B, C, T, H, W), any T >= 1 -> logits (B, K)

    Example:
        >>> TSM(num_classes=10)(torch.randn(2, 3, 8, 32, 32)).shape
        torch.Size([2, 10])
    """

    SUPPORTS_ANY_T = True
    PRESETS = {
        "small": dict(num_classes=10),
        # README of the official code: TSM ResNet-50, 8 frames, Kinetics-400.
        "paper": dict(num_classes=400, widths=(64, 128, 256, 512), depths=(3, 4, 6, 3),
                      block="bottleneck", stem="imagenet", dropout=0.5),
    }
    PUBLISHED = {
        "paper_params": Published(24_327_632, "parameters", "preset 'paper': ResNet-50 with a 400-way head "
                                  "(Kinetics-400); the shift adds none",
                                  "the ResNet-50 TSM of github.com/mit-han-lab/temporal-shift-module "
                                  "(torchvision resnet50 trunk), counted by instantiating it"),
        "paper_params_174": Published(23_864_558, "parameters", "preset 'paper' with a 174-way head "
                                      "(Something-Something)",
                                      "the ResNet-50 TSM of github.com/mit-han-lab/temporal-shift-module, "
                                      "counted by instantiating it"),
        "paper_gmacs": Published(32.7, "GMACs", "preset 'paper', one clip of 8 frames at 224×224 "
                                 "(8 × 4.089 GMACs of ResNet-50), the same as TSN",
                                 "Lin et al., arXiv:1811.08383 (its '33G' for the 8-frame TSM ResNet-50)"),
    }

    def __init__(self, num_classes: int = 10, *, fold_div: int | None = 8, mode: str = "offline",
                 place: str = "residual", in_channels: int = 3, widths: Sequence[int] = (16, 32, 64),
                 depths: Sequence[int] = (1, 1, 1), block: str = "basic", stem: str = "small",
                 shift_every: int = 1, dropout: float = 0.0):
        super().__init__()
        if place not in PLACES:
            raise ValueError(f"place must be one of {PLACES}, got {place!r}")
        shifted_blocks(depths, shift_every)                                   # validates shift_every
        self.in_channels = in_channels
        make_block = partial(_make_block, fold_div=fold_div, mode=mode, place=place, shift_every=shift_every)
        self.backbone = ResNet2d(in_channels, widths=widths, depths=depths, block=block, stem=stem,
                                 make_block=make_block)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.backbone.out_features, num_classes)


__all__ = ["TSM", "ShiftedBasicBlock", "ShiftedBottleneck", "shifted_blocks"]
