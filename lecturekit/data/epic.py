"""EPIC-KITCHENS-100: the official annotation files and frame folders, and a reader for them.

Dataset: D. Damen et al., "Rescaling Egocentric Vision: Collection, Pipeline and Challenges for
EPIC-KITCHENS-100", IJCV 2022. https://arxiv.org/abs/2006.13256 . Annotations:
github.com/epic-kitchens/epic-kitchens-100-annotations (CC BY-NC 4.0; nothing of them ships here).

:class:`EpicKitchens` reads the layout below as recognition clips or anticipation windows;
:func:`lecturekit.data.epic_writer.write_epic_layout` writes it, so real EK-100 and an exported
ToyKitchens world travel through the same reading code.

The layout (the official one after extracting ``P01/rgb_frames/P01_01.tar``)::

    <root>/EPIC_100_train.csv                     15 columns, see EPIC_COLUMNS
    <root>/EPIC_100_validation.csv
    <root>/EPIC_100_video_info.csv                video_id, duration, fps, resolution
    <root>/EPIC_100_tail_verbs.csv, ..._tail_nouns.csv              (optional)
    <root>/EPIC_100_unseen_participant_ids_validation.csv          (optional)
    <root>/EPIC_100_verb_classes.csv, ..._noun_classes.csv         (optional)
    <root>/actions.csv                            id, verb, noun, action  (optional, RULSTM style)
    <root>/P01/rgb_frames/P01_01/frame_0000000001.jpg                10 digits, 1-based
    (also accepted: <root>/P01/P01_01/frame_0000000001.jpg)

Conventions kept from the official tools:

* ``start_frame`` / ``stop_frame`` index the frame folders (inclusive, 1-based; a start of 0 is
  clamped to 1 because the files start at 1). For real EK-100 the folders run at 50 frames/s for
  the 50-fps videos and at 60 for all others (59.94, but also 29.97, 47.95 and 90 fps). Frame
  arithmetic is anchored at ``start_frame``, so 59.94 vs 60 is negligible (0.06 frame at 1 s);
  a larger mismatch is detected from the timestamps and corrected (``frame_rate_corrected``).
* ``action_class = verb_class * 1000 + noun_class`` (the official evaluator's id,
  :func:`lecturekit.data.ek100.action_class`); the contiguous
  ``action`` id is the row of ``actions.csv`` if present, else the index of the (verb, noun) pair
  in the sorted list of distinct pairs of the train and validation CSVs found (RULSTM's 3,806).
* Tail classes: the smallest classes (fewest training instances) outside the head that holds
  80 % of the training instances (:func:`lecturekit.data.ek100.tail_classes`). Unseen participants: from
  ``EPIC_100_unseen_participant_ids_<split>.csv`` or the ``unseen`` argument.
* Anticipation: observe ``[t_s - tau_a - tau_o, t_s - tau_a)``; see
  :func:`lecturekit.data.samplers.anticipation_indices` for the exact frame rule.

Pillow is imported only when frames are read. No pandas: the ``csv`` module.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .ek100 import action_class, class_counts, tail_classes
from .samplers import anticipation_indices, uniform_indices
from .transforms import apply_transform

#: The 15 columns of EPIC_100_train.csv / EPIC_100_validation.csv, in order.
EPIC_COLUMNS = (
    "narration_id",
    "participant_id",
    "video_id",
    "narration_timestamp",
    "start_timestamp",
    "stop_timestamp",
    "start_frame",
    "stop_frame",
    "narration",
    "verb",
    "verb_class",
    "noun",
    "noun_class",
    "all_nouns",
    "all_noun_classes",
)
#: The 8 columns of EPIC_100_test_timestamps.csv (no labels).
EPIC_TEST_COLUMNS = EPIC_COLUMNS[:8]
VIDEO_INFO_COLUMNS = ("video_id", "duration", "fps", "resolution")

_SPLIT_FILES = {
    "train": "EPIC_100_train.csv",
    "validation": "EPIC_100_validation.csv",
    "test": "EPIC_100_test_timestamps.csv",
}


def annotation_file(split: str) -> str:
    """The official annotation file name of a split (``train``, ``validation`` or ``test``)."""
    if split not in _SPLIT_FILES:
        raise ValueError(f"split must be one of {sorted(_SPLIT_FILES)}, got {split!r}")
    return _SPLIT_FILES[split]


def frame_name(index: int, ext: str = "jpg") -> str:
    """``frame_0000000001.jpg`` for index 1: 10 digits, 1-based (the official frame names)."""
    if index < 1:
        raise ValueError(f"frame indices are 1-based, got {index}")
    return f"frame_{index:010d}.{ext}"


# ---------------------------------------------------------------------------------------------
# timestamps


def format_timestamp(seconds: float, decimals: int = 2) -> str:
    """``HH:MM:SS.ss`` (``decimals`` digits after the point), as in the EK-100 CSVs."""
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"timestamp must be a finite non-negative number of seconds, got {seconds}")
    unit = 10**decimals
    ticks = int(round(seconds * unit))
    whole, frac = divmod(ticks, unit)
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.{frac:0{decimals}d}"


def parse_timestamp(text: str) -> float:
    """Seconds from ``HH:MM:SS.ss``; ``nan`` for an empty or ``NaN`` field (EPIC-55 narrations)."""
    text = text.strip()
    if text == "" or text.lower() == "nan":
        return float("nan")
    parts = text.split(":")
    if len(parts) != 3:
        raise ValueError(f"timestamp {text!r} is not HH:MM:SS.ss")
    h, m, s = parts
    return int(h) * 3600 + int(m) * 60 + float(s)


# ---------------------------------------------------------------------------------------------
# CSV


def read_csv(path: str | Path, columns: Sequence[str] | None = None) -> list[dict[str, str]]:
    """Rows of a CSV with a header as dicts; with ``columns``, reject a file that lacks any of them.

    Raises ``FileNotFoundError`` / ``ValueError`` naming the file (and the missing columns).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        if columns is not None:
            missing = [c for c in columns if c not in header]
            if missing:
                raise ValueError(
                    f"{path}: missing column(s) {missing}; expected the columns {list(columns)}, "
                    f"found {list(header)}"
                )
        return list(reader)


# ---------------------------------------------------------------------------------------------
# reader


def _participant_number(pid: str, fallback: int) -> int:
    m = re.fullmatch(r"[A-Za-z]*(\d+)", pid)
    return int(m.group(1)) if m else fallback


def load_frame(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """One RGB frame as a uint8 array (H, W, 3), resized to ``size = (H, W)`` if given.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a file that is not a
    decodable image (a corrupt or truncated JPEG), both naming the file.
    """
    from PIL import Image  # lazily: Pillow only when frames are read

    path = Path(path)
    try:
        with Image.open(path) as img:
            if size is not None and img.format == "JPEG":
                img.draft("RGB", (size[1], size[0]))  # libjpeg DCT scaling: decode at >= size, cheaply
            img = img.convert("RGB")  # forces the full decode: truncated data fails here
            if size is not None and (img.height, img.width) != tuple(size):
                img = img.resize((size[1], size[0]), Image.BILINEAR)
            return np.array(img, dtype=np.uint8)  # a writable copy (torch.from_numpy warns otherwise)
    except FileNotFoundError:
        raise FileNotFoundError(f"frame file missing: {path}") from None
    except Exception as e:  # PIL.UnidentifiedImageError, OSError("image file is truncated"), ...
        raise ValueError(f"cannot decode frame file {path}: {type(e).__name__}: {e}") from None


class EpicKitchens(torch.utils.data.Dataset):
    """EPIC-KITCHENS-100 (or anything written by :func:`write_epic_layout`) as a torch Dataset.

    Args:
        root: folder with the annotation CSVs and the ``<participant>/[rgb_frames/]<video>/``
            frame folders.
        split: ``train``, ``validation`` or ``test`` (test: ``EPIC_100_test_timestamps.csv``,
            labels -1).
        mode: ``recognition`` (frames inside ``[start_frame, stop_frame]``) or ``anticipation``
            (frames of ``[t_s - tau_a - tau_o, t_s - tau_a)``, see :func:`anticipation_indices`).
        frames: frames per clip (T). Ignored for recognition when ``sampler`` is given.
        tau_a, tau_o: anticipation time and observation length in seconds (official tau_a = 1 s).
        size: ``None`` (frames as stored), an int (square) or ``(H, W)``: frames are resized on
            load (JPEGs decoded at reduced scale first).
        sampler: ``sampler(start, stop) -> (T,) indices`` for recognition (default: uniform, the
            TSN test rule); e.g. :class:`~lecturekit.data.samplers.TSNSampler` for training.
        transform: applied to the uint8 video ``(C, T, H, W)`` of every item (with the labels
            dict too when it has ``changes_labels``, e.g. a label-mapping flip).
        unseen: participant ids treated as unseen (default: read from
            ``EPIC_100_unseen_participant_ids_<split>.csv`` when present, else none).
        fps: override the per-video frame rate (float or dict). Default: ``EPIC_100_video_info.csv``,
            except where the annotations show that the frame folder runs at another rate (EK-100
            extracted its 29.97 / 47.95 / 90 fps videos at 60 frames/s): see ``_check_frame_rates``.

    Items: ``(video uint8 (C=3, T, H, W), labels)`` with labels ``verb``, ``noun``, ``action``
    (contiguous id, -1 if the pair is outside the vocabulary), ``action_class``
    (``verb * 1000 + noun``), ``participant``, ``kitchen`` (the participant number: P01 -> 1),
    ``video``, ``narration_id``, ``start_frame``, ``stop_frame``, ``frames`` (the indices read),
    ``fps``, ``unseen``, ``tail_verb``, ``tail_noun``, ``tail_action`` (verb or noun tail, as the
    evaluator), ``too_early`` (anticipation: nothing observable; the video is black) and
    ``index``. ToyKitchens items follow the same convention.

    Segments too early for anticipation are kept and flagged, never dropped; their number is
    ``too_early_count`` and appears in :meth:`summary`.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        mode: str = "recognition",
        frames: int = 8,
        tau_a: float = 1.0,
        tau_o: float = 2.0,
        size: int | tuple[int, int] | None = None,
        *,
        sampler=None,
        transform=None,
        unseen: Sequence[str] | None = None,
        fps: float | Mapping[str, float] | None = None,
    ):
        self.root = Path(root)
        if mode not in ("recognition", "anticipation"):
            raise ValueError(f"mode must be 'recognition' or 'anticipation', got {mode!r}")
        self.split, self.mode = split, mode
        self.frames, self.tau_a, self.tau_o = int(frames), float(tau_a), float(tau_o)
        if size is not None:
            size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.size = size
        self.sampler = sampler
        if sampler is not None and mode == "recognition":
            self.frames = int(getattr(sampler, "frames", self.frames))
        self.transform = transform
        if not self.root.is_dir():
            raise FileNotFoundError(f"EPIC-KITCHENS root folder not found: {self.root}")

        labelled = split != "test"
        rows = read_csv(self.root / annotation_file(split), EPIC_COLUMNS if labelled else EPIC_TEST_COLUMNS)
        self._fps = self._read_fps(fps, {r["video_id"] for r in rows})
        self.frame_rate_corrected: dict[str, tuple[float, float]] = {}
        if fps is None:
            self._check_frame_rates(rows)
        self._read_vocabularies(rows, labelled, unseen)
        self.segments = self._make_segments(rows, labelled)
        self._make_anticipation_windows()
        self._dirs: dict[str, tuple[Path, str]] = {}

    # --- the steps of __init__ -----------------------------------------------------------------

    def _read_vocabularies(self, rows, labelled: bool, unseen) -> None:
        """Class names, the action vocabulary, the tail classes and the unseen participants."""
        self.verb_names = self._read_names("verb")
        self.noun_names = self._read_names("noun")
        train_rows = rows if self.split == "train" else self._maybe_rows("train")
        self.actions = self._read_actions(rows if labelled else [], train_rows)
        self._action_id = {p: i for i, p in enumerate(self.actions)}
        self.tail_verbs = self._read_tail("verb", train_rows)
        self.tail_nouns = self._read_tail("noun", train_rows)
        if unseen is None:
            f = self.root / f"EPIC_100_unseen_participant_ids_{self.split}.csv"
            unseen = [r["participant_id"] for r in read_csv(f, ("participant_id",))] if f.is_file() else []
        self.unseen_participants = sorted(set(unseen))

    def _make_segments(self, rows, labelled: bool) -> list[dict]:
        """One label dict per annotation row (counting clamped starts and unknown actions)."""
        participants = sorted({r["participant_id"] for r in rows})
        segments: list[dict] = []
        self.clamped_start_count = 0
        self.unknown_action_count = 0
        for r in rows:
            start, stop = int(r["start_frame"]), int(r["stop_frame"])
            if start < 1:  # the README says 0-indexed, the files start at 1: clamp
                start = 1
                self.clamped_start_count += 1
            stop = max(stop, start)
            verb = int(r["verb_class"]) if labelled else -1
            noun = int(r["noun_class"]) if labelled else -1
            action = self._action_id.get((verb, noun), -1) if labelled else -1
            self.unknown_action_count += labelled and action < 0
            pid = r["participant_id"]
            tv = labelled and self.tail_verbs is not None and verb in self.tail_verbs
            tn = labelled and self.tail_nouns is not None and noun in self.tail_nouns
            segments.append(
                {
                    "verb": verb,
                    "noun": noun,
                    "action": action,
                    "action_class": action_class(verb, noun) if labelled else -1,
                    "participant": pid,
                    "kitchen": _participant_number(pid, participants.index(pid)),
                    "video": r["video_id"],
                    "narration_id": r["narration_id"],
                    "start_frame": start,
                    "stop_frame": stop,
                    "fps": self._fps.get(r["video_id"], float("nan")),
                    "unseen": pid in self.unseen_participants,
                    "tail_verb": bool(tv),
                    "tail_noun": bool(tn),
                    "tail_action": bool(tv or tn),
                }
            )
        return segments

    def _make_anticipation_windows(self) -> None:
        """Anticipation mode: the frame indices of every segment's window, computed once (vectorised)."""
        self.too_early_count = self.clamped_window_count = 0
        if self.mode != "anticipation" or not self.segments:
            return
        missing = sorted({s["video"] for s in self.segments if s["video"] not in self._fps})
        if missing:
            raise ValueError(
                f"{self.root / 'EPIC_100_video_info.csv'}: no fps for video(s) {missing[:5]}"
                f"{' ...' if len(missing) > 5 else ''} (needed for anticipation)"
            )
        idx, early, clamped = anticipation_indices(
            torch.tensor([s["start_frame"] for s in self.segments]),
            torch.tensor([s["fps"] for s in self.segments], dtype=torch.float64),
            self.frames,
            self.tau_a,
            self.tau_o,
        )
        self._windows = idx
        self._too_early = early
        self.too_early_count = int(early.sum())
        self.clamped_window_count = int(clamped.sum())

    # --- reading the side files ---------------------------------------------------------------

    def _maybe_rows(self, split: str) -> list[dict] | None:
        f = self.root / annotation_file(split)
        return read_csv(f, EPIC_COLUMNS) if f.is_file() else None

    def _check_frame_rates(self, rows) -> None:
        """Use the frame rate of the frame folders where ``video_info`` fps disagrees with it.

        EK-100's frame folders run at 60 frames/s for every video whose video_info fps is not 50,
        including the 29.97, 47.95 and 90 fps ones; anticipation there needs 60, not the video's
        fps. Per video, the frames-per-second of the annotations (least squares through the
        origin of start/stop frame on start/stop timestamp, snapped to a whole number within
        0.5 %) replaces the fps when they differ by more than 2 % (59.94 vs 60 stays: 0.1 %). Corrections are listed in
        ``frame_rate_corrected`` (video -> (video_info fps, rate used)) and counted by summary().
        """
        sums: dict[str, list[float]] = {}
        for r in rows:
            for fk, tk in (("start_frame", "start_timestamp"), ("stop_frame", "stop_timestamp")):
                try:
                    t = parse_timestamp(r[tk])
                except ValueError:
                    continue
                if math.isfinite(t) and t > 0:
                    acc = sums.setdefault(r["video_id"], [0.0, 0.0, 0.0])
                    acc[0] += int(r[fk]) * t
                    acc[1] += t * t
                    acc[2] = max(acc[2], t)
        for vid, (ft, tt, t_max) in sums.items():
            info = self._fps.get(vid)
            if info is None or t_max < 1.0:  # too short to estimate against 0.01 s timestamps
                continue
            rate = ft / tt
            # timestamps carry 0.01 s: snap to a whole rate (EK-100's 50 / 60) when within 0.5 %
            rate = float(round(rate)) if abs(rate - round(rate)) <= 0.005 * rate else round(rate, 2)
            if abs(rate - info) > 0.02 * info:
                self.frame_rate_corrected[vid] = (info, rate)
                self._fps[vid] = rate

    def _read_fps(self, override, videos) -> dict[str, float]:
        if override is not None:
            if isinstance(override, Mapping):
                return {k: float(v) for k, v in override.items()}
            return {v: float(override) for v in videos}
        f = self.root / "EPIC_100_video_info.csv"
        if not f.is_file():
            return {}
        return {r["video_id"]: float(r["fps"]) for r in read_csv(f, VIDEO_INFO_COLUMNS)}

    def _read_names(self, kind: str) -> list[str] | None:
        f = self.root / f"EPIC_100_{kind}_classes.csv"
        if not f.is_file():
            return None
        rows = read_csv(f, ("id", "key"))
        names = {int(r["id"]): r["key"] for r in rows}
        return [names.get(i, str(i)) for i in range(max(names) + 1)] if names else []

    def _read_actions(self, rows, train_rows) -> list[tuple[int, int]]:
        f = self.root / "actions.csv"
        if f.is_file():
            return [(int(r["verb"]), int(r["noun"])) for r in read_csv(f, ("id", "verb", "noun"))]
        pairs = set()
        sources = [rows, train_rows]
        if self.split != "validation":
            sources.append(self._maybe_rows("validation"))
        for src in sources:
            for r in src or []:
                pairs.add((int(r["verb_class"]), int(r["noun_class"])))
        return sorted(pairs)

    def _read_tail(self, kind: str, train_rows) -> set[int] | None:
        f = self.root / f"EPIC_100_tail_{kind}s.csv"
        if f.is_file():
            return {int(r[kind]) for r in read_csv(f, (kind,))}
        if train_rows is None:
            return None  # no training CSV: tail flags unavailable (reported by summary())
        return set(tail_classes(class_counts([int(r[f"{kind}_class"]) for r in train_rows])))

    # --- frames ---------------------------------------------------------------------------------

    def _video_folder(self, video: str, participant: str, probe: int) -> tuple[Path, str]:
        if video in self._dirs:
            return self._dirs[video]
        candidates = [self.root / participant / "rgb_frames" / video, self.root / participant / video]
        for d in candidates:
            if d.is_dir():
                for ext in ("jpg", "png"):
                    if (d / frame_name(probe, ext)).is_file():
                        self._dirs[video] = (d, ext)
                        return d, ext
                raise FileNotFoundError(f"frame file missing: {d / frame_name(probe, 'jpg')} (nor .png)")
        raise FileNotFoundError(
            f"frame folder of video {video!r} not found: looked for {candidates[0]} and {candidates[1]}"
        )

    def frame_indices(self, i: int) -> Tensor:
        """The frame indices item ``i`` reads (anticipation: 0 marks 'nothing observable')."""
        s = self.segments[i]
        if self.mode == "anticipation":
            return self._windows[i].clone()
        if self.sampler is None:
            return uniform_indices(s["start_frame"], s["stop_frame"], self.frames)
        idx = torch.as_tensor(self.sampler(s["start_frame"], s["stop_frame"])).long()
        if idx.dim() != 1 or (idx < s["start_frame"]).any() or (idx > s["stop_frame"]).any():
            raise ValueError(
                f"sampler {self.sampler!r} returned {idx.tolist()} for segment "
                f"[{s['start_frame']}, {s['stop_frame']}]: expected 1-D indices inside it"
            )
        return idx

    def read_frames(self, video: str, participant: str, indices: Sequence[int]) -> Tensor:
        """uint8 ``(C, T, H, W)`` of the given 1-based frame indices of one video."""
        indices = [int(i) for i in indices]
        folder, ext = self._video_folder(video, participant, max(1, min(indices)))
        cache: dict[int, np.ndarray] = {}
        for i in indices:
            if i not in cache:
                cache[i] = load_frame(folder / frame_name(i, ext), self.size)
        shapes = {a.shape for a in cache.values()}
        if len(shapes) > 1:
            raise ValueError(f"frames of {folder} have different sizes {sorted(shapes)}; pass size=")
        clip = np.stack([cache[i] for i in indices])  # (T, H, W, C)
        return torch.from_numpy(clip).permute(3, 0, 1, 2).contiguous()  # (C, T, H, W)

    def __len__(self) -> int:
        return len(self.segments)

    def __getitem__(self, i: int):
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} segments")
        i = i % len(self)
        s = self.segments[i]
        idx = self.frame_indices(i)
        too_early = self.mode == "anticipation" and bool(self._too_early[i])
        if too_early:
            # nothing before the cut exists: black frames of the right size, flagged
            probe = self.read_frames(s["video"], s["participant"], [1])
            video = torch.zeros(probe.shape[0], len(idx), *probe.shape[2:], dtype=torch.uint8)
        else:
            video = self.read_frames(s["video"], s["participant"], idx.tolist())
        labels = dict(s)
        labels.update(frames=idx, too_early=too_early, index=i)
        return apply_transform(self.transform, video, labels)

    # --- reporting ------------------------------------------------------------------------------

    @property
    def num_classes(self) -> dict[str, int]:
        """Vocabulary sizes: verb / noun (from the class CSVs, else the largest id seen + 1), action."""

        def size(names, key):
            if names is not None:
                return len(names)
            return max((s[key] for s in self.segments), default=-1) + 1

        return {"verb": size(self.verb_names, "verb"), "noun": size(self.noun_names, "noun"), "action": len(self.actions)}

    def summary(self) -> dict:
        """Counts worth printing before training: segments, classes, flags, dropped (always 0)."""
        seg = self.segments
        out = {
            "split": self.split,
            "mode": self.mode,
            "segments": len(seg),
            "videos": len({s["video"] for s in seg}),
            "participants": len({s["participant"] for s in seg}),
            "num_classes": self.num_classes,
            "unseen_segments": sum(s["unseen"] for s in seg),
            "tail_available": self.tail_verbs is not None,
            "tail_verb_segments": sum(s["tail_verb"] for s in seg),
            "tail_noun_segments": sum(s["tail_noun"] for s in seg),
            "tail_action_segments": sum(s["tail_action"] for s in seg),
            "unknown_action_segments": self.unknown_action_count,
            "clamped_start_frames": self.clamped_start_count,
            "frame_rate_corrected_videos": len(self.frame_rate_corrected),
            "dropped": 0,
        }
        if self.mode == "anticipation":
            out.update(
                tau_a=self.tau_a,
                tau_o=self.tau_o,
                too_early=self.too_early_count,
                clamped_windows=self.clamped_window_count,
            )
        return out

    def __repr__(self) -> str:
        s = self.summary()
        extra = f", too_early={s['too_early']}" if self.mode == "anticipation" else ""
        return (
            f"EpicKitchens(root={str(self.root)!r}, split={self.split!r}, mode={self.mode!r}, "
            f"segments={s['segments']}, videos={s['videos']}, frames={self.frames}{extra})"
        )
