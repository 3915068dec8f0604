"""The course's one shape vocabulary, and the input checks every public forward uses.

Letters (used in every docstring, comment and error message of the library)::

    B  batch            C  channels          T  frames (time)      H, W  height, width
    D  feature width    N  tokens/patches    K  classes            S  segments (TSN) / memory slots
    L  layers

Canonical layouts at public boundaries:

    video                 (B, C, T, H, W)   the Conv3d / torchvision / PyTorchVideo convention
    frames                (B, C, H, W)
    feature sequence      (B, T, D)
    spatial sequence      (B, T, C, H, W)   only inside recurrent cells, where time is a loop

Nothing is ever reshaped silently: a wrong rank or size raises ``ValueError`` naming what was
expected and what came. The most common mistake, a (B, T, C, H, W) clip fed where
(B, C, T, H, W) is expected, gets a hint with the ``permute`` that fixes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

LETTERS = {
    "B": "batch",
    "C": "channels",
    "T": "frames",
    "H": "height",
    "W": "width",
    "D": "feature width",
    "N": "tokens",
    "K": "classes",
    "S": "segments",
    "L": "layers",
}

VIDEO = "B C T H W"
FRAMES = "B C H W"
SEQUENCE = "B T D"
SPATIAL_SEQUENCE = "B T C H W"


def _fmt(layout: Sequence[str]) -> str:
    return "(" + ", ".join(layout) + ")"


def check_shape(x, layout: str, *, name: str = "input", **sizes: int | None) -> dict[str, int]:
    """Check that ``x`` has the rank of ``layout`` and the given sizes; return the sizes by letter.

    ``layout`` is a space-separated string of letters, e.g. ``"B C T H W"``; ``sizes`` pins some
    of them (``C=3``); ``None`` means "any". Raises ``ValueError`` that names the expected
    layout, the pinned sizes and the received shape.

    >>> check_shape(torch.zeros(2, 3, 8, 32, 32), VIDEO, C=3)["T"]
    8
    """
    letters = layout.split()
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor {_fmt(letters)}, got {type(x).__name__}")
    unknown = set(sizes) - set(letters)
    if unknown:
        raise KeyError(f"check_shape: {sorted(unknown)} are not letters of layout {_fmt(letters)}")
    pinned = {k: v for k, v in sizes.items() if v is not None}
    want = _fmt([f"{k}={pinned[k]}" if k in pinned else k for k in letters])
    got = tuple(x.shape)
    if x.dim() != len(letters):
        raise ValueError(
            f"{name}: expected a {len(letters)}-D tensor {want}, got a {x.dim()}-D tensor of "
            f"shape {got}.{_hint(x, letters, pinned)}"
        )
    dims = dict(zip(letters, got))
    bad = [k for k, v in pinned.items() if dims[k] != v]
    if bad:
        detail = ", ".join(f"{k} ({LETTERS.get(k, k)}) = {dims[k]} instead of {pinned[k]}" for k in bad)
        raise ValueError(
            f"{name}: expected shape {want}, got {got}: {detail}.{_hint(x, letters, pinned)}"
        )
    return dims


def _hint(x: Tensor, letters: list[str], pinned: dict[str, int]) -> str:
    """A hint for the classic (B, T, C, H, W) vs (B, C, T, H, W) confusion."""
    if letters == VIDEO.split() and x.dim() == 5:
        c = pinned.get("C")
        swapped = x.shape[2] == c if c is not None else x.shape[2] in (1, 2, 3) and x.shape[1] not in (1, 2, 3)
        if swapped:
            return (
                f" This looks like a (B, T, C, H, W) clip; lecturekit videos are (B, C, T, H, W):"
                f" use x.permute(0, 2, 1, 3, 4)."
            )
    if letters == VIDEO.split() and x.dim() == 4:
        return " A single clip (C, T, H, W) needs a batch axis: x.unsqueeze(0)."
    return ""


def check_video(
    x,
    *,
    channels: int | None = None,
    frames: int | None = None,
    size: int | tuple[int, int] | None = None,
    name: str = "video",
) -> tuple[int, int, int, int, int]:
    """Check a video batch (B, C, T, H, W); return its shape ``(B, C, T, H, W)``.

    The one check every model's public ``forward`` calls on its input.

    >>> check_video(torch.zeros(2, 3, 8, 32, 32), channels=3)
    (2, 3, 8, 32, 32)
    """
    h = w = None
    if size is not None:
        h, w = (size, size) if isinstance(size, int) else size
    d = check_shape(x, VIDEO, name=name, C=channels, T=frames, H=h, W=w)
    return d["B"], d["C"], d["T"], d["H"], d["W"]


def check_sequence(x, *, dim: int | None = None, length: int | None = None, name: str = "features"):
    """Check a feature sequence (B, T, D); return ``(B, T, D)``."""
    d = check_shape(x, SEQUENCE, name=name, D=dim, T=length)
    return d["B"], d["T"], d["D"]


def check_frames(x, *, channels: int | None = None, name: str = "frames"):
    """Check a batch of images (B, C, H, W); return ``(B, C, H, W)``."""
    d = check_shape(x, FRAMES, name=name, C=channels)
    return d["B"], d["C"], d["H"], d["W"]


def fold_time(x: Tensor) -> Tensor:
    """(B, C, T, H, W) -> (B*T, C, H, W): run a 2D network on every frame at once."""
    b, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(b * t, c, h, w)


def unfold_time(x: Tensor, frames: int) -> Tensor:
    """(B*T, ...) -> (B, T, ...): undo :func:`fold_time` on any per-frame output."""
    if x.shape[0] % frames:
        raise ValueError(f"unfold_time: leading size {x.shape[0]} is not a multiple of T={frames}")
    return x.reshape(x.shape[0] // frames, frames, *x.shape[1:])


__all__ = [
    "LETTERS", "VIDEO", "FRAMES", "SEQUENCE", "SPATIAL_SEQUENCE",
    "check_shape", "check_video", "check_sequence", "check_frames", "fold_time", "unfold_time",
]
