"""Dataset views of a ToyKitchens world: clips, early observations, anticipation windows.

A view is a precomputed table -- which video, which frame indices, which labels -- over the
long videos that the world renders once and caches. Items are ``(video uint8 (C, T, H, W),
labels dict)``; :meth:`ToyView.tensors` returns the whole view at once for fast CPU training.
torch appears only here, at the boundary.
"""

from __future__ import annotations

import io
from typing import NamedTuple

import numpy as np
import torch

from .world import NOUNS, RECIPES, VERBS

_NOUN_NAMES = [n for n, _, _ in NOUNS]


def _title(labels: dict, recipe_names=None) -> str:
    def g(k):
        v = labels.get(k, -1)
        return int(v[0]) if isinstance(v, torch.Tensor) and v.dim() > 0 else int(v)

    verb, noun = g("verb"), g("noun")
    text = f"{VERBS[verb] if 0 <= verb < len(VERBS) else verb} {_NOUN_NAMES[noun] if 0 <= noun < len(_NOUN_NAMES) else noun}"
    extra = [f"kitchen P{g('kitchen'):02d}"]
    if "start" in labels:
        extra.append(f"frames {g('start')}-{g('stop')}")
    rec = g("recipe") if "recipe" in labels else -1
    names = [name for name, _ in RECIPES] if recipe_names is None else recipe_names   # a world's own set
    if 0 <= rec < len(names):
        extra.append(f"recipe {names[rec]} (hidden)")
    if "too_early" in labels and g("too_early"):
        extra.append("too early")
    return text + "  |  " + ", ".join(extra)


def storyboard_png(videos: np.ndarray, titles: list[str], dpi: int = 60) -> bytes:
    """PNG bytes of a storyboard: one row of frames per video ``(N, C, T, H, W)`` uint8."""
    from matplotlib.figure import Figure  # lazily: the data layer never needs matplotlib otherwise

    n, _, t = videos.shape[:3]
    fig = Figure(figsize=(1.1 * t, 1.35 * n), dpi=dpi)
    for i in range(n):
        for j in range(t):
            ax = fig.add_subplot(n, t, i * t + j + 1)
            ax.imshow(videos[i, :, j].transpose(1, 2, 0), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_title(titles[i], fontsize=8, loc="left")
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.9 if n == 1 else 0.95, wspace=0.05, hspace=0.4)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


class ToyClip(NamedTuple):
    """One item: ``video`` uint8 (C, T, H, W) and ``labels``; shows itself as a storyboard."""

    video: torch.Tensor
    labels: dict

    def _repr_png_(self) -> bytes:
        v = self.video.numpy() if isinstance(self.video, torch.Tensor) else np.asarray(self.video)
        if v.ndim == 5:  # a collated batch: the first four clips
            n = min(4, v.shape[0])
            labels = [{k: (val[i] if isinstance(val, torch.Tensor) else val) for k, val in self.labels.items()} for i in range(n)]
            return storyboard_png(v[:n], [_title(lab) for lab in labels])
        return storyboard_png(v[None], [_title(self.labels)])


class ToyView(torch.utils.data.Dataset):
    """A view of a ToyKitchens world (see ``ToyKitchens.clips / early / anticipation``).

    Attributes:
        kind: ``clips``, ``early`` or ``anticipation``.
        frame_index: int64 (N, T): frames of each sample in its long video (-1: a black frame).
        video_index: int64 (N,): which long video (index into ``world.video_ids``).
        labels: name -> int64 array (N,) (``history``: (N, L)).
    """

    def __init__(self, world, kind: str, split: str, video_index, frame_index, labels: dict, info: dict):
        self.world = world
        self.kind = kind
        self.split = split
        self.video_index = np.asarray(video_index, dtype=np.int64)
        self.frame_index = np.asarray(frame_index, dtype=np.int64).reshape(len(self.video_index), -1)
        self.labels = {k: np.asarray(v, dtype=np.int64) for k, v in labels.items()}
        self.info = dict(info)

    @property
    def frames(self) -> int:
        return self.frame_index.shape[1]

    @property
    def num_classes(self) -> dict[str, int]:
        return self.world.num_classes

    def __len__(self) -> int:
        return int(self.video_index.shape[0])

    def _gather(self, rows: np.ndarray) -> np.ndarray:
        """uint8 (n, C, T, H, W) of the given sample rows."""
        size = self.world.size
        out = np.zeros((rows.shape[0], self.frames, size, size, 3), dtype=np.uint8)
        vids = self.video_index[rows]
        for v in np.unique(vids):
            sel = np.nonzero(vids == v)[0]
            arr = self.world.long_video(int(v))
            idx = self.frame_index[rows[sel]]
            block = arr[np.maximum(idx, 0)]
            block[idx < 0] = 0
            out[sel] = block
        return np.ascontiguousarray(out.transpose(0, 4, 1, 2, 3))

    def __getitem__(self, i: int) -> ToyClip:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for a view of {n} samples")
        i = int(i) % n
        video = torch.from_numpy(self._gather(np.array([i]))[0])
        labels = {k: (torch.from_numpy(v[i].copy()) if v.ndim > 1 else int(v[i])) for k, v in self.labels.items()}
        labels["index"] = i
        return ToyClip(video, labels)

    def tensors(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The whole view: uint8 videos (N, C, T, H, W) and a dict of LongTensors (N,) / (N, L)."""
        video = torch.from_numpy(self._gather(np.arange(len(self))))
        return video, {k: torch.from_numpy(v.copy()) for k, v in self.labels.items()}

    def counts(self, key: str = "verb") -> np.ndarray:
        """Samples per class of ``key`` (verb / noun / action)."""
        return np.bincount(self.labels[key], minlength=self.world.num_classes[key])

    def _repr_png_(self) -> bytes:
        n = min(4, len(self))
        if n == 0:
            return storyboard_png(np.zeros((1, 3, self.frames, self.world.size, self.world.size), np.uint8), ["(empty view)"])
        rows = np.linspace(0, len(self) - 1, n).astype(np.int64)
        vids = self._gather(rows)
        titles = [_title({k: int(v[r]) for k, v in self.labels.items() if v.ndim == 1}, self.world.recipe_names)
                  for r in rows]
        return storyboard_png(vids, titles)

    def __repr__(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.info.items())
        return (
            f"ToyView(kind={self.kind!r}, split={self.split!r}, samples={len(self)}, frames={self.frames}, "
            f"size={self.world.size}{', ' + extra if extra else ''})"
        )
