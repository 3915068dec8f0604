"""Pre-extracted per-frame features in LMDB (RU-LSTM's published EPIC-KITCHENS-100 features).

RU-LSTM (A. Furnari, G. M. Farinella, ICCV 2019 / TPAMI 2020, https://arxiv.org/abs/2005.02190;
code and download scripts: github.com/fpv-iplab/rulstm) published per-frame features of
EPIC-KITCHENS-100 that most anticipation papers reuse (AVT's "TSN" rows, AGA's "TSN, RGB" rows):

* ``rgb``  1024 float32 per frame (TSN BN-Inception trained on RGB frames);
* ``flow`` 1024 float32 per frame (TSN on optical flow);
* ``obj``   352 float32 per frame (per EK-55 noun class, the summed Faster R-CNN confidences).

Each modality is one LMDB environment (a folder holding ``data.mdb``). A key is the frame's file
name prefixed by its video, ``P01_01_frame_0000000001.jpg`` (10 digits, 1-based), and its value
the raw bytes of one float32 vector (little-endian, 4 x width bytes, no header). RU-LSTM
re-encoded every video at 30 fps before extracting, so the frame numbers of these keys count
frames at **30 fps**, not at the 50 / 60 frames/s of the official frame folders; that is the
``frame_rate=30`` default of :class:`EpicFeatures` (pass ``frame_rate=None`` for features you
extracted from the official frame folders yourself, numbered like them).

Three pieces:

* :class:`LMDBFeatures` reads one database (opened lazily, once per process, read-only);
* :class:`EpicFeatures` turns the official annotation CSVs into anticipation windows (the rule of
  :func:`~lecturekit.data.samplers.anticipation_indices`: ``steps`` samples covering
  ``[t_s - tau_a - tau_o, t_s - tau_a)``, no frame at or after the cut) and reads their features;
* :func:`write_lmdb_features` / :func:`write_example_features` write the same layout (tests and
  dry runs build a small database with them; nothing is downloaded).

``lmdb`` is an optional dependency (``pip install "lecturekit[epic]"``), imported only when a
database is opened or written.

>>> feature_key("P01_01", 1)
'P01_01_frame_0000000001.jpg'
>>> RULSTM_WIDTHS["obj"]
352
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .epic import (
    EPIC_COLUMNS,
    EPIC_TEST_COLUMNS,
    VIDEO_INFO_COLUMNS,
    EpicKitchens,
    annotation_file,
    format_timestamp,
)
from .epic_writer import write_csv
from .samplers import anticipation_indices

#: Widths of RU-LSTM's EPIC-KITCHENS-100 features per modality.
RULSTM_WIDTHS = {"rgb": 1024, "flow": 1024, "obj": 352}
#: RU-LSTM numbered its feature frames after re-encoding every video at 30 fps.
RULSTM_FRAME_RATE = 30.0
INSTALL_HINT = 'pip install "lecturekit[epic]"  (or: pip install lmdb)'

__all__ = [
    "RULSTM_FRAME_RATE",
    "RULSTM_WIDTHS",
    "EpicFeatures",
    "FeatureKeyError",
    "FeatureWidthError",
    "LMDBFeatures",
    "feature_key",
    "write_example_features",
    "write_lmdb_features",
]


def _lmdb():
    try:
        import lmdb  # noqa: PLC0415 - optional dependency, imported when used
    except ImportError as err:
        raise ImportError(f"reading or writing LMDB features needs the optional package 'lmdb': {INSTALL_HINT}") from err
    return lmdb


def feature_key(video: str, frame: int) -> str:
    """The LMDB key of a frame: ``<video>_frame_<10 digits>.jpg`` (1-based frame numbers)."""
    frame = int(frame)
    if frame < 1:
        raise ValueError(f"frame numbers are 1-based, got {frame}")
    return f"{video}_frame_{frame:010d}.jpg"


_OPEN: dict[tuple[str, int], object] = {}   # (database folder, process id) -> open environment


def _close_all() -> None:
    """Close every environment this process opened (before a fork: LMDB handles must not cross it)."""
    pid = os.getpid()
    for key in [k for k in _OPEN if k[1] == pid]:
        try:
            _OPEN.pop(key).close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
    for key in [k for k in _OPEN if k[1] != pid]:
        _OPEN.pop(key, None)        # inherited entries of a parent: never used


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_close_all)


class FeatureKeyError(KeyError):
    """A frame whose key is not in the database (the message names the key and the database)."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0]) if self.args else ""


class FeatureWidthError(ValueError):
    """A stored vector whose size is not the width the reader was told to expect."""


class LMDBFeatures:
    """One LMDB database of per-frame float32 features (RU-LSTM's layout).

    Args:
        path: the database folder (the one that holds ``data.mdb``), e.g. ``data/ek100/rgb``.
        width: float32 values per frame (1024 for RU-LSTM's rgb / flow, 352 for obj); every
            vector read is checked against it.
        name: a label for messages (default: the folder name).

    ``get(video, frame)`` returns one ``(width,)`` vector, ``get_many(video, frames)`` a
    ``(len(frames), width)`` array read in one transaction. The environment is opened
    read-only on first use, and again in every process that uses the object (DataLoader workers,
    forked or spawned, each get their own).
    """

    def __init__(self, path: str | os.PathLike, width: int, *, name: str | None = None):
        self.path = Path(path)
        if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
            raise ValueError(f"width must be a positive int (1024 for RU-LSTM rgb/flow, 352 for obj), got {width!r}")
        self.width = int(width)
        self.name = name or self.path.name
        if not self.path.is_dir() or not (self.path / "data.mdb").is_file():
            if not self.path.exists():
                got = "nothing at that path"
            elif self.path.is_file():
                got = "a file, not a folder (pass the folder that holds data.mdb)"
            else:
                got = f"a folder without data.mdb (it holds: {sorted(p.name for p in self.path.iterdir())[:5]})"
            raise FileNotFoundError(
                f"feature database {self.name!r}: expected an LMDB folder containing data.mdb at {self.path}, got {got}. "
                "Download RU-LSTM's EK-100 features with its scripts/download_data_ek100_full.sh "
                "(github.com/fpv-iplab/rulstm) or write one with write_lmdb_features"
            )
        self._key = str(self.path.resolve())

    # --- environment, one per process -------------------------------------------------------
    def _environment(self):
        # LMDB allows one open environment per database and process: readers of the same folder share
        # it, and it is closed before every fork (see _close_all) so that a child opens its own.
        key = (self._key, os.getpid())
        env = _OPEN.get(key)
        if env is None:
            env = _OPEN[key] = _lmdb().open(str(self.path), readonly=True, lock=False, readahead=False,
                                            max_readers=512, subdir=True)
        return env

    def close(self) -> None:
        """Close the environment (for every reader of this database in this process)."""
        env = _OPEN.pop((self._key, os.getpid()), None)
        if env is not None:
            env.close()

    def __len__(self) -> int:
        return int(self._environment().stat()["entries"])

    def __contains__(self, key) -> bool:
        if isinstance(key, tuple):
            key = feature_key(*key)
        with self._environment().begin(buffers=False) as txn:
            return txn.get(str(key).encode()) is not None

    def __repr__(self) -> str:
        return f"LMDBFeatures({str(self.path)!r}, width={self.width}, name={self.name!r})"

    # --- reading ---------------------------------------------------------------------------------
    def _decode(self, key: str, raw: bytes | None, txn) -> np.ndarray:
        if raw is None:
            near = None
            cur = txn.cursor()
            if cur.set_range(key.encode()):
                near = bytes(cur.key()).decode(errors="replace")
            hint = f"; the nearest key after it is {near!r}" if near else ""
            raise FeatureKeyError(
                f"feature {key!r} not found in {self.name!r} ({self.path}){hint}. Keys are "
                "'<video>_frame_<10 digits>.jpg'; RU-LSTM's EK-100 features number frames at 30 fps "
                "(EpicFeatures(frame_rate=30)), features extracted from the official frame folders use "
                "the folders' numbers (frame_rate=None)"
            )
        n = len(raw)
        if n != 4 * self.width:
            values = f"{n // 4} float32 values" if n % 4 == 0 else "not a whole number of float32 values"
            raise FeatureWidthError(
                f"feature {key!r} in {self.name!r} ({self.path}): expected {self.width} float32 values "
                f"({4 * self.width} bytes), got {n} bytes ({values}); is width= right for this modality "
                f"(RU-LSTM: {RULSTM_WIDTHS})?"
            )
        return np.frombuffer(raw, dtype="<f4").copy()

    def get(self, video: str, frame: int) -> np.ndarray:
        """The ``(width,)`` float32 vector of one frame."""
        key = feature_key(video, frame)
        with self._environment().begin(buffers=False) as txn:
            return self._decode(key, txn.get(key.encode()), txn)

    def get_many(self, video: str, frames: Sequence[int]) -> np.ndarray:
        """``(len(frames), width)`` float32, one transaction; repeated frames are read once."""
        frames = [int(f) for f in frames]
        out = np.empty((len(frames), self.width), dtype=np.float32)
        seen: dict[int, np.ndarray] = {}
        with self._environment().begin(buffers=False) as txn:
            for i, f in enumerate(frames):
                if f not in seen:
                    key = feature_key(video, f)
                    seen[f] = self._decode(key, txn.get(key.encode()), txn)
                out[i] = seen[f]
        return out


def write_lmdb_features(path: str | os.PathLike, videos: Mapping[str, np.ndarray], *,
                        map_size: int | None = None) -> Path:
    """Write ``video -> (T, D) float32 array`` as RU-LSTM's layout; row t is frame t + 1.

    Creates ``path/data.mdb`` (and ``lock.mdb``). All arrays must have the same width D.
    ``map_size`` (bytes) defaults to twice the data plus 1 MiB. Returns ``path``.
    """
    lmdb = _lmdb()
    arrays = {}
    widths = set()
    for vid, arr in videos.items():
        a = np.asarray(arr)
        if a.ndim != 2 or not np.issubdtype(a.dtype, np.floating):
            raise ValueError(f"video {vid!r}: expected a float array (T, D), got {a.dtype} {a.shape}")
        arrays[str(vid)] = np.ascontiguousarray(a, dtype="<f4")
        widths.add(a.shape[1])
    if len(widths) > 1:
        raise ValueError(f"every video must have the same feature width, got widths {sorted(widths)}")
    total = sum(a.nbytes + 40 * a.shape[0] for a in arrays.values())
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(str(path), map_size=map_size or 2 * total + (1 << 20), subdir=True)
    try:
        with env.begin(write=True) as txn:
            for vid, a in arrays.items():
                for t in range(a.shape[0]):
                    txn.put(feature_key(vid, t + 1).encode(), a[t].tobytes())
    finally:
        env.close()
    return path


# ---------------------------------------------------------------------------------------------
# anticipation windows over features


def _as_sources(features) -> tuple[list[LMDBFeatures], bool]:
    if isinstance(features, LMDBFeatures):
        return [features], True
    if isinstance(features, Mapping):
        features = list(features.values())
    sources = list(features)
    if not sources or not all(isinstance(f, LMDBFeatures) for f in sources):
        raise TypeError(f"features: expected an LMDBFeatures or a list of them, got {features!r}")
    return sources, False


class EpicFeatures(torch.utils.data.Dataset):
    """EK-100 anticipation samples whose inputs are per-frame features read from LMDB.

    Args:
        root: the folder with the official annotation CSVs (``EPIC_100_train.csv``,
            ``EPIC_100_validation.csv``, ``EPIC_100_video_info.csv``; optional ``actions.csv``,
            class and tail files), as :class:`~lecturekit.data.EpicKitchens` reads them. No frames
            are needed.
        features: one :class:`LMDBFeatures` (items are ``(steps, D)`` tensors) or a list of them
            (items are a tuple, one ``(steps, D_m)`` per modality, e.g. for RU-LSTM's fusion).
        split: ``train``, ``validation`` or ``test``.
        steps: samples per window (RU-LSTM 14, AVT 10, AGA 30).
        tau_a: anticipation time in seconds (the official 1 s).
        tau_o: observation length in seconds; the samples are ``tau_o / steps`` apart (RU-LSTM
            3.5 s = 14 x 0.25 s; AVT 10 s and AGA 30 s at 1 fps).
        frame_rate: the rate at which the database numbers its frames: 30 for RU-LSTM's
            features (default), ``None`` when the keys use the official frame-folder numbers.
        score_tau_a: the anticipation time at which the sample is scored, when the window ends
            later (RU-LSTM reads 14 steps up to 0.25 s before the action and scores its step -4,
            1 s before: ``tau_a=0.25, score_tau_a=1.0``). A sample with no frame that far before
            the action is ``too_early`` (zeros), so no later frame can stand in for it.
            Default: ``tau_a``.
        step_labels: also return ``"steps"``: ``(steps + 1,)`` action ids, entry t the action
            in progress at observed step t (-1 when none, or outside the vocabulary), the last
            entry the annotated action (AGA's dense targets, AVT's past targets).
        fps, unseen: passed to :class:`~lecturekit.data.EpicKitchens`.
        check: read the first observable sample now, so that a wrong width, a wrong frame
            numbering or a database of other videos fails here rather than mid-training.

    Items: ``(features, labels)``; the labels dict is EpicKitchens' (``verb``, ``noun``,
    ``action``, ``narration_id``, ``unseen``, ``tail_*``, ...), with ``frames`` the database
    frame numbers read and ``too_early`` (nothing observable before the cut: the features are
    zeros; such samples are kept and must be scored, as the official protocol does).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        features,
        split: str = "train",
        *,
        steps: int = 14,
        tau_a: float = 1.0,
        tau_o: float = 3.5,
        frame_rate: float | None = RULSTM_FRAME_RATE,
        step_labels: bool = False,
        score_tau_a: float | None = None,
        fps: float | Mapping[str, float] | None = None,
        unseen: Sequence[str] | None = None,
        check: bool = True,
    ):
        self.sources, self.single = _as_sources(features)
        self.base = EpicKitchens(root, split, mode="anticipation", frames=steps, tau_a=tau_a, tau_o=tau_o,
                                 fps=fps, unseen=unseen)
        self.steps, self.tau_a, self.tau_o, self.split = int(steps), float(tau_a), float(tau_o), split
        self.frame_rate = None if frame_rate is None else float(frame_rate)
        self.score_tau_a = self.tau_a if score_tau_a is None else float(score_tau_a)
        if self.score_tau_a < self.tau_a:
            raise ValueError(f"score_tau_a ({score_tau_a}) must be >= tau_a ({tau_a}): the scored step lies in the window")
        segs = self.base.segments
        if self.frame_rate is None:
            start = torch.tensor([s["start_frame"] for s in segs], dtype=torch.long)
            self._rate = torch.tensor([s["fps"] for s in segs], dtype=torch.float64)
        else:
            if self.frame_rate <= 0:
                raise ValueError(f"frame_rate must be positive or None, got {frame_rate}")
            # the action start in the database's numbering, rounded DOWN: the cut can only move earlier
            start = torch.tensor([math.floor(s["start_frame"] / s["fps"] * self.frame_rate + 1e-6) for s in segs],
                                 dtype=torch.long).clamp(min=1)
            self._rate = torch.full((len(segs),), self.frame_rate, dtype=torch.float64)
        if segs:
            self._windows, self._too_early, _ = anticipation_indices(start, self._rate, steps, tau_a, tau_o)
            if self.score_tau_a > self.tau_a:
                _, early, _ = anticipation_indices(start, self._rate, 1, self.score_tau_a, 1.0)
                self._too_early = self._too_early | early
                self._windows[self._too_early] = 0
        else:
            self._windows = torch.zeros(0, steps, dtype=torch.long)
            self._too_early = torch.zeros(0, dtype=torch.bool)
        self._step_actions = self._in_progress() if step_labels else None
        if check:
            first = next((i for i in range(len(segs)) if not bool(self._too_early[i])), None)
            if first is not None:
                self[first]

    # --- vocabulary and bookkeeping, from the annotations --------------------------------------
    @property
    def actions(self) -> list[tuple[int, int]]:
        return self.base.actions

    @property
    def num_classes(self) -> dict[str, int]:
        return self.base.num_classes

    @property
    def segments(self) -> list[dict]:
        return self.base.segments

    @property
    def narration_ids(self) -> list[str]:
        return [s["narration_id"] for s in self.base.segments]

    @property
    def widths(self) -> list[int]:
        return [f.width for f in self.sources]

    @property
    def too_early_count(self) -> int:
        return int(self._too_early.sum())

    def summary(self) -> dict:
        out = self.base.summary()
        out.update(too_early=self.too_early_count, steps=self.steps, frame_rate=self.frame_rate,
                   features={f.name: f.width for f in self.sources})
        return out

    def __len__(self) -> int:
        return len(self.base.segments)

    def _in_progress(self) -> Tensor:
        """(N, steps) contiguous action id in progress at every observed step (-1: none)."""
        segs = self.base.segments
        out = torch.full((len(segs), self.steps), -1, dtype=torch.long)
        by_video: dict[str, list[int]] = {}
        for i, s in enumerate(segs):
            by_video.setdefault(s["video"], []).append(i)
        times = self._windows.double() / self._rate[:, None]                       # (N, steps) seconds
        for rows in by_video.values():
            idx = np.array(rows)
            start = np.array([segs[i]["start_frame"] / segs[i]["fps"] for i in rows])
            stop = np.array([segs[i]["stop_frame"] / segs[i]["fps"] for i in rows])
            action = np.array([segs[i]["action"] for i in rows])
            for c in range(0, len(idx), 128):                                       # chunks bound the memory
                rows_c = idx[c:c + 128]
                t = times[rows_c].numpy()[..., None]                                # (n, steps, 1)
                inside = (start <= t) & (t <= stop)                                 # (n, steps, S)
                # among the segments in progress, the one that started last
                best = np.where(inside, start, -np.inf).argmax(-1)
                out[rows_c] = torch.from_numpy(np.where(inside.any(-1), action[best], -1))
        out[self._too_early] = -1
        return out

    def __getitem__(self, i: int):
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} segments")
        i = i % len(self)
        s = self.base.segments[i]
        frames = self._windows[i].clone()
        too_early = bool(self._too_early[i])
        if too_early:
            xs = [torch.zeros(self.steps, f.width) for f in self.sources]
        else:
            xs = [torch.from_numpy(f.get_many(s["video"], frames.tolist())) for f in self.sources]
        labels = dict(s)
        labels.update(frames=frames, too_early=too_early, index=i)
        if self._step_actions is not None:
            labels["steps"] = torch.cat([self._step_actions[i], torch.tensor([s["action"]])])
        return (xs[0] if self.single else tuple(xs)), labels

    def __repr__(self) -> str:
        return (f"EpicFeatures(root={str(self.base.root)!r}, split={self.split!r}, segments={len(self)}, "
                f"steps={self.steps}, tau_a={self.tau_a}, tau_o={self.tau_o}, features={[f.name for f in self.sources]})")


# ---------------------------------------------------------------------------------------------
# a small example in the same layout (tests, dry runs)


def write_example_features(
    root: str | os.PathLike,
    *,
    width: int = 16,
    videos: int = 4,
    seconds: float = 48.0,
    fps: float = 60.0,
    frame_rate: float = RULSTM_FRAME_RATE,
    segments_per_video: int = 12,
    num_verbs: int = 97,
    num_nouns: int = 300,
    num_actions: int = 120,
    seed: int = 0,
) -> dict:
    """A small EK-100-shaped set: annotation CSVs (train, validation, test) and one LMDB.

    Writes into ``root``: ``EPIC_100_{train,validation}.csv``, ``EPIC_100_test_timestamps.csv``,
    ``EPIC_100_video_info.csv``, ``EPIC_100_{verb,noun}_classes.csv`` (``num_verbs`` /
    ``num_nouns`` entries: the official 97 / 300 by default, so a submission of this set passes
    the official format check), ``actions.csv`` (``num_actions`` (verb, noun) pairs) and
    ``features/rgb`` (an LMDB of ``width``-d vectors numbered at ``frame_rate``). Annotation
    frames count at ``fps``. Videos alternate between the splits (train gets the first half).
    Features are random but carry a trace of the upcoming action (so a model can fit them a
    little); nothing here is EK-100 data. Returns ``{"annotations": root, "features": path,
    "width": width, "splits": {split: [video ids]}}``.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if num_actions > num_verbs * num_nouns:
        raise ValueError(f"num_actions {num_actions} exceeds num_verbs x num_nouns")
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < num_actions:
        pairs.add((int(rng.integers(num_verbs)), int(rng.integers(num_nouns))))
    actions = sorted(pairs)
    write_csv(root / "actions.csv", ("id", "verb", "noun", "action"),
               [[i, v, n, f"verb{v} noun{n}"] for i, (v, n) in enumerate(actions)])
    for kind, k in (("verb", num_verbs), ("noun", num_nouns)):
        write_csv(root / f"EPIC_100_{kind}_classes.csv", ("id", "key", "instances", "category"),
                   [[i, f"{kind}{i}", repr([f"{kind}{i}"]), ""] for i in range(k)])
    video_ids = [f"P{p:02d}_{v:02d}" for p, v in ((1 + i // 2, 1 + i % 2) for i in range(videos))]
    splits = {"train": video_ids[: max(1, videos // 2)], "validation": [], "test": []}
    rest = video_ids[len(splits["train"]):]
    splits["validation"] = rest[: max(1, len(rest) // 2 + len(rest) % 2)] if rest else []
    splits["test"] = rest[len(splits["validation"]):]
    n_feat = int(seconds * frame_rate)
    proto = rng.standard_normal((len(actions), width)).astype(np.float32)
    feats = {}
    rows: dict[str, list[list]] = {"train": [], "validation": [], "test": []}
    info = []
    for vid in video_ids:
        split = next(k for k, v in splits.items() if vid in v)
        x = rng.standard_normal((n_feat, width)).astype(np.float32)
        # segments: consecutive, with gaps, after the first 2 s (the first one is too early for tau_a = 1 s)
        bounds = np.sort(rng.uniform(0.5, seconds - 1.0, size=2 * segments_per_video))
        bounds[0] = 0.5
        for j in range(segments_per_video):
            t0, t1 = float(bounds[2 * j]), float(bounds[2 * j + 1])
            a = int(rng.integers(len(actions)))
            v, n = actions[a]
            f0, f1 = max(1, int(t0 * fps)), max(1, int(t1 * fps))
            lo = max(0, int((t0 - 2.0) * frame_rate))
            x[lo:int(t0 * frame_rate)] += proto[a]                               # a trace before the action
            rec = [f"{vid}_{j}", vid.split("_")[0], vid, format_timestamp(t0, 3), format_timestamp(t0),
                   format_timestamp(t1), f0, max(f0, f1)]
            if split != "test":
                rec += [f"verb{v} noun{n}", f"verb{v}", v, f"noun{n}", n, f"['noun{n}']", f"[{n}]"]
            rows[split].append(rec)
        feats[vid] = x
        info.append([vid, repr(float(seconds)), repr(float(fps)), "456x256"])
    for split, rs in rows.items():
        if rs or split != "test":
            write_csv(root / annotation_file(split), EPIC_TEST_COLUMNS if split == "test" else EPIC_COLUMNS, rs)
    write_csv(root / "EPIC_100_video_info.csv", VIDEO_INFO_COLUMNS, info)
    path = write_lmdb_features(root / "features" / "rgb", feats)
    return {"annotations": root, "features": path, "width": width, "splits": splits}
