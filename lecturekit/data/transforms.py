"""Video transforms in plain torch, on ``(C, T, H, W)`` items and ``(B, C, T, H, W)`` batches.

Every function takes either layout and returns the same layout; the same spatial operation is
applied to every frame of a clip (a crop that moved between frames would invent motion). Random
transforms take an explicit ``torch.Generator``; on a batch each clip draws its own crop / flip,
vectorised (no Python loop over the batch).

Two rules the course cares about:

* **One uint8 -> float boundary.** Datasets store uint8 (4x less memory, exact round trips);
  :func:`to_float` is the single place where pixels become floats in ``[0, 1]``. It refuses float
  input, so nothing gets divided by 255 twice. :func:`normalize` then subtracts a mean and
  divides by a standard deviation per channel.
* **Augmentations that change the label say so.** A mirrored "turn clockwise" is a "turn
  counter-clockwise"; a time-reversed "open" is a "close" (MMAction2 ships such a map for
  Something-Something v2's flip: labels 86<->87, 93<->94, 166<->167). :class:`LabelMap` holds
  the swaps and the labels that are direction-sensitive; a flip of a sensitive label without a
  swap raises instead of silently producing a wrong label.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .samplers import SeededRandom

#: ImageNet statistics (RGB, for pixels in [0, 1]): what pretrained 2D backbones expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _check_video(x, name: str = "video") -> int:
    """Validate a (C, T, H, W) or (B, C, T, H, W) tensor; return the channel dimension."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor (C, T, H, W) or (B, C, T, H, W), got {type(x).__name__}")
    if x.dim() not in (4, 5):
        raise ValueError(
            f"{name}: expected a 4-D (C, T, H, W) or 5-D (B, C, T, H, W) tensor, got shape {tuple(x.shape)}"
        )
    return x.dim() - 4


def _pair(size: int | Sequence[int], name: str = "size") -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    if len(size) != 2:
        raise ValueError(f"{name}: expected an int or (H, W), got {size!r}")
    return int(size[0]), int(size[1])


# ---------------------------------------------------------------------------------------------
# dtype boundary and normalisation


def to_float(video: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """uint8 pixels in ``[0, 255]`` -> floats in ``[0, 1]`` (``x / 255``): the one conversion.

    Raises ``ValueError`` for anything but uint8, so a clip is never scaled twice. Works on any
    device; convert after cropping (fewer pixels to convert).
    """
    if not isinstance(video, Tensor) or video.dtype != torch.uint8:
        got = video.dtype if isinstance(video, Tensor) else type(video).__name__
        raise ValueError(f"to_float expects a uint8 tensor (pixels 0..255), got {got}")
    return video.to(dtype) / 255.0


def to_uint8(video: Tensor) -> Tensor:
    """Floats in ``[0, 1]`` -> uint8 (``round(x * 255)``, clamped): the inverse of :func:`to_float`."""
    if not video.is_floating_point():
        raise ValueError(f"to_uint8 expects a floating tensor in [0, 1], got {video.dtype}")
    return (video.float() * 255.0).round().clamp(0, 255).to(torch.uint8)


def _channel_view(values: Sequence[float] | Tensor, video: Tensor, cdim: int) -> Tensor:
    v = torch.as_tensor(values, dtype=video.dtype, device=video.device).reshape(-1)
    if v.numel() != video.shape[cdim]:
        raise ValueError(f"{v.numel()} per-channel values given for a video with C={video.shape[cdim]}")
    return v.reshape((-1, 1, 1, 1))  # broadcasts against (C, T, H, W) and (B, C, T, H, W)


def normalize(video: Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> Tensor:
    """``(x - mean[c]) / std[c]`` per channel, for a float video (call :func:`to_float` first)."""
    cdim = _check_video(video)
    if not video.is_floating_point():
        raise ValueError(f"normalize expects a float video (use to_float first), got {video.dtype}")
    return (video - _channel_view(mean, video, cdim)) / _channel_view(std, video, cdim)


def denormalize(video: Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> Tensor:
    """The inverse of :func:`normalize` (for showing a normalised clip)."""
    cdim = _check_video(video)
    return video * _channel_view(std, video, cdim) + _channel_view(mean, video, cdim)


# ---------------------------------------------------------------------------------------------
# geometry


def resize(video: Tensor, size: int | Sequence[int], mode: str = "bilinear", antialias: bool = True) -> Tensor:
    """Resize every frame. ``size``: ``(H, W)``, or an int for the *shorter* side (aspect kept).

    uint8 input gives uint8 output (computed in float32, rounded); float input keeps its dtype
    (bfloat16 / float16 are computed in float32 and cast back).
    """
    _check_video(video)
    h, w = video.shape[-2:]
    if isinstance(size, int):
        if h <= w:
            out = (size, max(1, round(w * size / h)))
        else:
            out = (max(1, round(h * size / w)), size)
    else:
        out = _pair(size)
    if out == (h, w):
        return video
    lead = video.shape[:-2]
    x = video.reshape(1, -1, h, w)  # channels and frames are independent for 2D interpolation
    is_uint8 = video.dtype == torch.uint8
    # uint8 and half types (no antialiased kernels on every device) are computed in float32
    x = x if video.dtype in (torch.float32, torch.float64) else x.float()
    aa = antialias and mode in ("bilinear", "bicubic")
    kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    y = F.interpolate(x, size=out, mode=mode, antialias=aa, **kwargs)
    y = y.round().clamp(0, 255).to(torch.uint8) if is_uint8 else y.to(video.dtype)
    return y.reshape(*lead, *out)


def center_crop(video: Tensor, size: int | Sequence[int]) -> Tensor:
    """The central ``(h, w)`` window of every frame (offsets ``(H - h) // 2``, ``(W - w) // 2``)."""
    _check_video(video)
    h, w = _pair(size)
    H, W = video.shape[-2:]
    if h > H or w > W:
        raise ValueError(f"crop {(h, w)} larger than the frames {(H, W)}")
    top, left = (H - h) // 2, (W - w) // 2
    return video[..., top : top + h, left : left + w]


def random_crop(video: Tensor, size: int | Sequence[int], generator: torch.Generator | None = None) -> Tensor:
    """A random ``(h, w)`` window, the same for all frames of a clip, drawn per clip of a batch."""
    bdim = _check_video(video)
    h, w = _pair(size)
    H, W = video.shape[-2:]
    if h > H or w > W:
        raise ValueError(f"crop {(h, w)} larger than the frames {(H, W)}")
    n = video.shape[0] if bdim else 1
    tops = torch.randint(0, H - h + 1, (n,), generator=generator)
    lefts = torch.randint(0, W - w + 1, (n,), generator=generator)
    if not bdim:
        t, l = int(tops[0]), int(lefts[0])
        return video[..., t : t + h, l : l + w]
    dev = video.device
    rows = (tops[:, None] + torch.arange(h)[None, :]).to(dev)  # (B, h)
    cols = (lefts[:, None] + torch.arange(w)[None, :]).to(dev)  # (B, w)
    b = torch.arange(n, device=dev)[:, None, None]
    out = video[b, :, :, rows[:, :, None], cols[:, None, :]]  # (B, h, w, C, T): advanced dims first
    return out.permute(0, 3, 4, 1, 2)


def hflip(video: Tensor) -> Tensor:
    """Mirror every frame left <-> right (geometry only; labels: see :class:`LabelMap`)."""
    _check_video(video)
    return video.flip(-1)


def reverse_time(video: Tensor) -> Tensor:
    """Play the clip backwards (frames in reverse order; labels: see :class:`LabelMap`)."""
    cdim = _check_video(video)
    return video.flip(cdim + 1)


# ---------------------------------------------------------------------------------------------
# label maps


class LabelMap:
    """What class labels become under a label-changing augmentation (a mirror, a time reversal).

    Args:
        swaps: pairs ``(a, b)`` that exchange (``turn-cw <-> turn-ccw``), or a dict ``{a: b, b: a}``
            that must be its own inverse.
        sensitive: further labels that the augmentation changes but that have no partner in the
            vocabulary (e.g. "push-left" without a "push-right"): mapping one raises.
        names: class names, used in error messages (and by :meth:`from_names`).
        name: what the augmentation is called, for messages.

    ``LabelMap()`` (no swaps, nothing sensitive) states "no class changes": it maps every label to
    itself. Call it on an int or an integer tensor of labels.
    """

    def __init__(
        self,
        swaps: Mapping[int, int] | Iterable[tuple[int, int]] = (),
        sensitive: Iterable[int] = (),
        *,
        names: Sequence[str] | None = None,
        name: str = "flip",
    ):
        mapping: dict[int, int] = {}
        if isinstance(swaps, Mapping):
            mapping = {int(a): int(b) for a, b in swaps.items()}
            bad = [a for a, b in mapping.items() if mapping.get(b) != a]
            if bad:
                raise ValueError(f"{name} label map must be its own inverse (a->b needs b->a); broken at {bad}")
        else:
            for a, b in swaps:
                a, b = int(a), int(b)
                for x, y in ((a, b), (b, a)):
                    if mapping.get(x, y) != y:
                        raise ValueError(f"{name} label map: label {x} is paired with both {mapping[x]} and {y}")
                    mapping[x] = y
        self.mapping = mapping
        self.sensitive = {int(s) for s in sensitive} - set(mapping)
        self.names = list(names) if names is not None else None
        self.name = name

    @classmethod
    def from_names(
        cls, names: Sequence[str], swaps: Iterable[tuple[str, str]] = (), sensitive: Iterable[str] = (), name: str = "flip"
    ) -> "LabelMap":
        """Build from class names: ``LabelMap.from_names(verbs, [("turn-cw", "turn-ccw")])``."""
        index = {n: i for i, n in enumerate(names)}
        missing = [n for pair in swaps for n in pair if n not in index] + [n for n in sensitive if n not in index]
        if missing:
            raise ValueError(f"{name} label map: unknown class name(s) {missing}")
        return cls(
            [(index[a], index[b]) for a, b in swaps], [index[s] for s in sensitive], names=names, name=name
        )

    def _label(self, c: int) -> str:
        return f"{c} ({self.names[c]})" if self.names is not None and 0 <= c < len(self.names) else str(c)

    def __call__(self, labels):
        if isinstance(labels, Tensor):
            if labels.is_floating_point():
                raise ValueError(f"{self.name} label map expects integer labels, got {labels.dtype}")
            if self.sensitive:
                hit = torch.isin(labels, torch.tensor(sorted(self.sensitive), device=labels.device))
                if hit.any():
                    c = int(labels[hit].reshape(-1)[0])
                    raise ValueError(
                        f"{self.name} changes label {self._label(c)} but the label map has no partner for it"
                    )
            out = labels.clone()
            for a, b in self.mapping.items():
                out[labels == a] = b
            return out
        c = int(labels)
        if c in self.sensitive:
            raise ValueError(f"{self.name} changes label {self._label(c)} but the label map has no partner for it")
        return self.mapping.get(c, c)

    def __repr__(self) -> str:
        pairs = sorted((a, b) for a, b in self.mapping.items() if a < b)
        return f"LabelMap({self.name!r}, swaps={pairs}, sensitive={sorted(self.sensitive)})"


def random_hflip(
    video: Tensor,
    labels=None,
    label_map: LabelMap | None = None,
    p: float = 0.5,
    generator: torch.Generator | None = None,
):
    """Mirror each clip with probability ``p``; return ``(video, labels)`` with labels mapped.

    ``labels`` is an int (single clip) or a ``(B,)`` tensor (batch); only the labels of flipped
    clips go through ``label_map``. Passing labels without a map raises: say
    ``LabelMap()`` explicitly when no class is direction-sensitive.
    """
    bdim = _check_video(video)
    if labels is not None and label_map is None:
        raise ValueError("random_hflip got labels but no label_map; pass LabelMap() if no class is mirror-sensitive")
    n = video.shape[0] if bdim else 1
    flip = torch.rand(n, generator=generator) < p  # (B,)
    if not bdim:
        if bool(flip[0]):
            return hflip(video), (label_map(labels) if labels is not None else None)
        return video, labels
    mask = flip.to(video.device).reshape(-1, 1, 1, 1, 1)
    out = torch.where(mask, video.flip(-1), video)
    if labels is None:
        return out, None
    labels = torch.as_tensor(labels)
    new = labels.clone()
    fl = flip.to(labels.device)
    if fl.any():
        new[fl] = label_map(labels[fl])
    return out, new


class RandomHorizontalFlip(SeededRandom):
    """Dataset transform: mirror with probability ``p`` and map the labels named in ``label_maps``.

    ``label_maps`` maps a label key (``"verb"``, ``"action"``) to its :class:`LabelMap`; it is
    required (``{}`` states that no label is mirror-sensitive). Called as
    ``video, labels = t(video, labels)`` with a labels dict; datasets of this package call
    transforms that set ``changes_labels = True`` that way.
    """

    changes_labels = True

    def __init__(self, label_maps: Mapping[str, LabelMap], p: float = 0.5, seed: int = 0):
        super().__init__(seed)  # seeded generator, re-seeded per DataLoader worker
        self.label_maps = dict(label_maps)
        self.p = p

    def __call__(self, video: Tensor, labels: dict):
        _check_video(video)
        if bool(torch.rand(1, generator=self._rng()) >= self.p):
            return video, labels
        labels = dict(labels)
        for key, m in self.label_maps.items():
            if key in labels:
                labels[key] = m(labels[key])
        labels["flipped"] = True
        return hflip(video), labels


class Compose:
    """Apply transforms in order; label-changing ones (``changes_labels``) also get the labels."""

    def __init__(self, *transforms):
        self.transforms = transforms
        self.changes_labels = any(getattr(t, "changes_labels", False) for t in transforms)

    def __call__(self, video: Tensor, labels: dict | None = None):
        for t in self.transforms:
            if getattr(t, "changes_labels", False):
                video, labels = t(video, labels)
            else:
                video = t(video)
        return (video, labels) if self.changes_labels else video


def apply_transform(transform, video: Tensor, labels: dict):
    """How the datasets call a transform: with the labels when it ``changes_labels``."""
    if transform is None:
        return video, labels
    if getattr(transform, "changes_labels", False):
        return transform(video, labels)
    return transform(video), labels
