"""Frame-folder datasets (UCF-101 / HMDB-51 style) and optional video-file decoding.

Layout: one folder of frames per video, the class is the parent folder::

    <root>/<class>/<video>/img_00001.jpg  (any names; sorted in natural order: 2 before 10)

UCF-101 (Soomro et al., 2012, https://arxiv.org/abs/1212.0402) names its videos
``v_<Class>_g<group>_c<clip>``; the group (same actor / scene) is parsed into the labels because
the official splits keep groups apart, and random splits that do not leak the scene.

Frames are read with Pillow, nothing else. Decoding video files (``.mp4``, ``.avi``) needs an
optional backend (TorchCodec or PyAV); :func:`read_video_file` imports it only when called and
says how to install it if it is missing. Nothing here requires it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from .epic import load_frame
from .samplers import UniformSampler
from .transforms import apply_transform

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
_GROUP = re.compile(r"_g(\d+)_c\d+")


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


class FrameFolder(torch.utils.data.Dataset):
    """Videos stored as folders of frames, one class folder each.

    Args:
        root: the folder holding one sub-folder per class.
        frames: frames per clip (T); ignored when ``sampler`` is given.
        sampler: ``sampler(start, stop) -> (T,)`` indices into the sorted frame list
            (``start = 0``, ``stop = n - 1``); default: uniform (TSN test rule). Use
            ``TSNSampler(train=True, seed=...)`` for training.
        transform: applied to the uint8 ``(C, T, H, W)`` clip (with the labels when it has
            ``changes_labels``).
        size: ``None``, an int or ``(H, W)``: frames resized on load.
        videos: keep only these ``"<class>/<video>"`` entries. A UCF-101 split file
            (``trainlist01.txt`` lines ``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1``) can be
            passed as ``split_file`` instead; the file extension is ignored.

    Items: ``(video uint8 (3, T, H, W), labels)`` with ``label`` (class index, sorted class
    names), ``class_name``, ``video``, ``group`` (UCF group, -1 if the name has none),
    ``frames`` (indices read) and ``index``.
    """

    def __init__(
        self,
        root: str | Path,
        frames: int = 8,
        sampler=None,
        transform=None,
        *,
        size: int | tuple[int, int] | None = None,
        videos: Sequence[str] | None = None,
        split_file: str | Path | None = None,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"frame-folder root not found: {self.root}")
        self.sampler = sampler if sampler is not None else UniformSampler(frames)
        self.frames = int(getattr(self.sampler, "frames", frames))
        self.transform = transform
        self.size = (size, size) if isinstance(size, int) else (tuple(size) if size is not None else None)
        self.classes = sorted(d.name for d in self.root.iterdir() if d.is_dir())
        if not self.classes:
            raise ValueError(f"{self.root}: no class folders found (expected <root>/<class>/<video>/<frames>)")

        keep = None
        if split_file is not None:
            lines = Path(split_file).read_text().split("\n")
            keep = {str(Path(ln.split()[0]).with_suffix("")) for ln in lines if ln.strip()}
        elif videos is not None:
            keep = {str(Path(v).with_suffix("")) if Path(v).suffix in (".avi", ".mp4") else v for v in videos}

        self.videos: list[dict] = []
        empty = []
        for label, cls in enumerate(self.classes):
            for vdir in sorted((d for d in (self.root / cls).iterdir() if d.is_dir()), key=lambda d: _natural_key(d.name)):
                key = f"{cls}/{vdir.name}"
                if keep is not None and key not in keep:
                    continue
                files = sorted(
                    (f.name for f in vdir.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS), key=_natural_key
                )
                if not files:
                    empty.append(str(vdir))
                    continue
                g = _GROUP.search(vdir.name)
                self.videos.append(
                    {"dir": vdir, "files": files, "label": label, "class_name": cls, "video": vdir.name,
                     "group": int(g.group(1)) if g else -1}
                )
        if empty:
            raise ValueError(f"{len(empty)} video folder(s) without frames, e.g. {empty[:3]} (extraction failed?)")
        if keep is not None:
            found = {f"{v['class_name']}/{v['video']}" for v in self.videos}
            missing = sorted(keep - found)
            if missing:
                raise FileNotFoundError(f"{len(missing)} listed video(s) have no frame folder under {self.root}, e.g. {missing[:3]}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, i: int):
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} videos")
        i = i % len(self)
        v = self.videos[i]
        n = len(v["files"])
        idx = torch.as_tensor(self.sampler(0, n - 1)).long()
        cache = {}
        for j in idx.tolist():
            if j not in cache:
                cache[j] = torch.from_numpy(load_frame(v["dir"] / v["files"][j], self.size))
        shapes = {tuple(a.shape) for a in cache.values()}
        if len(shapes) > 1:
            raise ValueError(f"frames of {v['dir']} have different sizes {sorted(shapes)}; pass size=")
        video = torch.stack([cache[j] for j in idx.tolist()]).permute(3, 0, 1, 2).contiguous()  # (C, T, H, W)
        labels = {"label": v["label"], "class_name": v["class_name"], "video": v["video"], "group": v["group"],
                  "frames": idx, "index": i}
        return apply_transform(self.transform, video, labels)

    def __repr__(self) -> str:
        return f"FrameFolder(root={str(self.root)!r}, classes={len(self.classes)}, videos={len(self)}, frames={self.frames})"


def read_video_file(path: str | Path, backend: str = "torchcodec") -> tuple[Tensor, float]:
    """Decode a whole video file into uint8 ``(C, T, H, W)`` and its fps (optional backends).

    ``backend="torchcodec"`` (recommended; needs FFmpeg shared libraries) or ``"pyav"`` (``pip
    install av``, bundles FFmpeg). Neither is a dependency of lecturekit: a missing backend raises
    ``ImportError`` saying what to install. Whole-video decoding is meant for short clips; for
    datasets, extract frames once (``ffmpeg -i v.mp4 -q:v 4 <video>/frame_%010d.jpg``) and use
    :class:`FrameFolder` or :class:`~lecturekit.data.epic.EpicKitchens`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    if backend == "torchcodec":
        try:
            from torchcodec.decoders import VideoDecoder
        except ImportError as e:
            raise ImportError(
                f"read_video_file(backend='torchcodec') needs torchcodec (pip install torchcodec, plus FFmpeg "
                f"shared libraries); or use backend='pyav' ({e})"
            ) from None
        dec = VideoDecoder(str(path))
        frames = dec[:]  # (T, C, H, W) uint8
        return frames.permute(1, 0, 2, 3).contiguous(), float(dec.metadata.average_fps)
    if backend == "pyav":
        try:
            import av
        except ImportError as e:
            raise ImportError(f"read_video_file(backend='pyav') needs PyAV (pip install av) ({e})") from None
        import numpy as np

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else float("nan")
            arr = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])  # (T, H, W, 3)
        return torch.from_numpy(arr).permute(3, 0, 1, 2).contiguous(), fps
    raise ValueError(f"backend must be 'torchcodec' or 'pyav', got {backend!r}")
