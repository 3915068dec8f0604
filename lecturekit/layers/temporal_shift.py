"""The temporal shift: move a few channels one frame forward or backward in time.

Paper: J. Lin, C. Gan, S. Han, "TSM: Temporal Shift Module for Efficient Video Understanding",
ICCV 2019. https://arxiv.org/abs/1811.08383  (Sec. 3, Fig. 1)

Used by TSM (``lecturekit.models.tsm``) and, as the "shift" of gate-shift, by GSM/GSF
(``lecturekit.models.gsf``).

The one name for the channel fraction is ``fold_div`` (the official code also calls it
``shift_div`` and ``n_div``): ``fold = C // fold_div`` channels move in each direction, so a
fraction ``2 / fold_div`` of the channels moves in total (1/4 for the default 8).
``fold_div=None`` moves nothing (the shift is the identity; TSM becomes TSN).

Offline, bidirectional (the paper's Fig. 1b; the official ``TemporalShift.shift``)::

    out[t, 0:fold]        = x[t+1, 0:fold]          channels look at the NEXT frame; out[T-1] = 0
    out[t, fold:2*fold]   = x[t-1, fold:2*fold]     channels look at the PREVIOUS frame; out[0] = 0
    out[t, 2*fold:]       = x[t, 2*fold:]           the other channels stay put

Online, unidirectional (Fig. 1c; the official ``online_demo``): nothing may come from the
future, so only the first ``fold`` channels move, and they carry the PREVIOUS frame::

    out[t, 0:fold] = x[t-1, 0:fold]  (zero at t = 0);   out[t, fold:] = x[t, fold:]

Careful: the two modes give the first ``fold`` channels opposite directions, exactly as the
official offline and online code do.

The shift has zero parameters and zero multiply-adds; it still costs time, because the
out-of-place version copies the whole tensor (memory traffic is not free).

Shapes (letters defined in lecturekit/layers/shapes.py)
    temporal_shift:   video (B, C, T, H, W) -> (B, C, T, H, W)
    shift_folded:     frames (B*T, C, H, W) with the T frames of one video contiguous -> same
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .shapes import check_frames, check_video

MODES = ("offline", "online")


def _fold(channels: int, fold_div: int | None) -> int:
    if fold_div is None:
        return 0
    if not isinstance(fold_div, int) or fold_div < 1:
        raise ValueError(f"fold_div must be a positive int or None, got {fold_div!r}")
    return channels // fold_div


def _shift_time_axis(x: Tensor, fold: int, mode: str, t_axis: int) -> Tensor:
    """Shift along ``t_axis`` with channels on axis ``t_axis - 1`` (works for both layouts)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if fold == 0:
        return x
    out = torch.zeros_like(x)
    c = x.shape[t_axis - 1]
    # Index helpers: slice channels on axis t_axis-1 and frames on axis t_axis.
    def sl(ch: slice, t: slice):
        idx = [slice(None)] * x.dim()
        idx[t_axis - 1], idx[t_axis] = ch, t
        return tuple(idx)

    if mode == "offline":
        out[sl(slice(0, fold), slice(0, -1))] = x[sl(slice(0, fold), slice(1, None))]           # t <- t+1
        out[sl(slice(fold, 2 * fold), slice(1, None))] = x[sl(slice(fold, 2 * fold), slice(0, -1))]  # t <- t-1
        out[sl(slice(2 * fold, c), slice(None))] = x[sl(slice(2 * fold, c), slice(None))]
    else:
        out[sl(slice(0, fold), slice(1, None))] = x[sl(slice(0, fold), slice(0, -1))]           # t <- t-1
        out[sl(slice(fold, c), slice(None))] = x[sl(slice(fold, c), slice(None))]
    return out


def temporal_shift(x: Tensor, fold_div: int | None = 8, *, mode: str = "offline") -> Tensor:
    """Shift ``C // fold_div`` channels of a video one frame along time, zero-padded at the ends.

    Args:
        x: video (B, C, T, H, W).
        fold_div: ``fold = C // fold_div`` channels move per direction; ``None`` = no shift.
        mode: ``"offline"`` (bidirectional) or ``"online"`` (unidirectional, past only).

    Shape: (B, C, T, H, W) -> (B, C, T, H, W)

    Example:
        >>> x = torch.arange(8.).view(1, 1, 8, 1, 1).expand(1, 8, 8, 1, 1)  # value = frame index
        >>> temporal_shift(x)[0, :3, :, 0, 0]
        tensor([[1., 2., 3., 4., 5., 6., 7., 0.],
                [0., 0., 1., 2., 3., 4., 5., 6.],
                [0., 1., 2., 3., 4., 5., 6., 7.]])
    """
    _, c, _, _, _ = check_video(x)
    return _shift_time_axis(x, _fold(c, fold_div), mode, t_axis=2)


def shift_folded(x: Tensor, frames: int, fold_div: int | None = 8, *, mode: str = "offline") -> Tensor:
    """The same shift on frames folded into the batch, (B*T, C, H, W), as inside a 2D backbone."""
    n, c, h, w = check_frames(x)
    if frames < 1 or n % frames:
        raise ValueError(f"shift_folded: batch {n} is not a multiple of frames T={frames}")
    y = x.view(n // frames, frames, c, h, w)              # (B, T, C, H, W), frames contiguous
    # In (B, T, C, H, W) channels sit AFTER time; swap to reuse the channel-before-time helper.
    y = _shift_time_axis(y.transpose(1, 2), _fold(c, fold_div), mode, t_axis=2).transpose(1, 2)
    return y.reshape(n, c, h, w)


def online_shift_step(x_t: Tensor, cache: Tensor | None, fold_div: int = 8) -> tuple[Tensor, Tensor]:
    """One streaming step of the online shift, for frame-by-frame inference.

    Keeps the first ``fold`` channels of the current frame as the cache for the next step and
    replaces them with the cached slice of the previous frame (zeros at the first frame).
    Feeding frames one by one reproduces ``temporal_shift(..., mode="online")``.

    Shape: x_t (B, C, H, W), cache (B, fold, H, W) or None -> (out (B, C, H, W), new cache)
    """
    _, c, _, _ = check_frames(x_t, name="x_t")
    fold = _fold(c, fold_div)
    new_cache = x_t[:, :fold]
    if cache is None:
        cache = torch.zeros_like(new_cache)
    return torch.cat([cache, x_t[:, fold:]], dim=1), new_cache


class TemporalShift(nn.Module):
    """The shift as a module for the backbone's temporal hook: ``module(x, frames)``.

    No parameters, no buffers. ``fold_div=None`` makes it the identity.

    Shape: (B*T, C, H, W) -> (B*T, C, H, W)
    """

    def __init__(self, fold_div: int | None = 8, mode: str = "offline"):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        _fold(8, fold_div)  # validates fold_div
        self.fold_div, self.mode = fold_div, mode

    def forward(self, x: Tensor, frames: int) -> Tensor:
        return shift_folded(x, frames, self.fold_div, mode=self.mode)

    def extra_repr(self) -> str:
        return f"fold_div={self.fold_div}, mode={self.mode!r}"


__all__ = ["TemporalShift", "online_shift_step", "shift_folded", "temporal_shift"]
