"""Write videos and annotation rows in the EPIC-KITCHENS-100 layout (the reader is :mod:`lecturekit.data.epic`).

An exported ToyKitchens world and real EK-100 then travel through the same reading code. The
layout and its conventions (file names, columns, 1-based 10-digit frame names, timestamps) are
described in :mod:`lecturekit.data.epic`; this module only writes them.

Pillow is imported only when frames are written. No pandas: the ``csv`` module.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .ek100 import class_counts, tail_classes
from .epic import (
    EPIC_COLUMNS,
    EPIC_TEST_COLUMNS,
    VIDEO_INFO_COLUMNS,
    annotation_file,
    format_timestamp,
    frame_name,
    read_csv,
)

__all__ = ["JPEG_QUALITY", "write_csv", "write_epic_layout"]

#: JPEG quality of write_epic_layout (with 4:4:4 chroma). 100, not the ~90 of the real frames:
#: on small synthetic frames with sharp colour edges quality 95 still errs by up to ~20 grey
#: levels at edges, quality 100 by at most a few (numbers in tests/test_epic.py).
JPEG_QUALITY = 100


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
    """A CSV with a header row, UTF-8, ``\n`` line ends (the format of the official files)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(r)
    path.write_bytes(buf.getvalue().encode("utf-8"))


def _fmt_fps(fps: float) -> str:
    return repr(float(fps))


def _video_dir(root: Path, video_id: str, rgb_frames_dir: bool = True) -> Path:
    participant = video_id.split("_")[0]
    if rgb_frames_dir:
        return root / participant / "rgb_frames" / video_id
    return root / participant / video_id


def write_epic_layout(
    root: str | Path,
    videos: Mapping[str, np.ndarray],
    rows: Sequence[Mapping],
    fps: float | Mapping[str, float],
    split: str = "train",
    *,
    quality: int = JPEG_QUALITY,
    image_format: str = "jpg",
    rgb_frames_dir: bool = True,
    tail: bool | None = None,
    unseen_participants: Sequence[str] | None = None,
    verb_names: Sequence[str] | None = None,
    noun_names: Sequence[str] | None = None,
    actions: Sequence[tuple[int, int]] | None = None,
    ignore_extra: bool = False,
) -> Path:
    """Write videos and annotation rows in the official EK-100 layout; return ``root``.

    Args:
        root: output folder (created). May already hold other splits: ``EPIC_100_video_info.csv``
            is merged (rows of other videos are kept, sorted by video id).
        videos: ``video_id -> uint8 array (T, H, W, 3)``; frame ``t`` (0-based in the array) is
            written as ``frame_{t+1:010d}.jpg``.
        rows: one dict per action segment. Required keys: ``video_id``, ``start_frame``,
            ``stop_frame`` (1-based, inclusive), ``verb_class``, ``noun_class``. Optional (filled
            in when absent): ``narration_id`` (``<video>_<running index>``), ``participant_id``
            (the video id before the first ``_``), ``verb`` / ``noun`` (from ``verb_names`` /
            ``noun_names`` or the class number), ``narration`` (``"verb noun"``), timestamps
            (``frame / fps`` seconds, official formats), ``all_nouns`` / ``all_noun_classes``.
            Other keys raise ``ValueError`` unless ``ignore_extra``.
        fps: one frame rate for all videos or ``video_id -> fps``.
        split: ``train`` / ``validation`` / ``test``; the test split is written as
            ``EPIC_100_test_timestamps.csv`` with the 8 unlabelled columns.
        quality: JPEG quality (default 100) with 4:4:4 chroma (no subsampling): the round trip
            of ToyKitchens-like frames (flat colours, sharp edges) is near-exact, mean absolute
            error about 0.3 and at most a few grey levels (tests/test_epic.py pins the bound).
            Bytes are deterministic for a given Pillow/libjpeg build.
        image_format: ``"jpg"`` (official) or ``"png"`` (lossless).
        rgb_frames_dir: ``<P>/rgb_frames/<video>/`` (official download) or ``<P>/<video>/``.
        tail: write ``EPIC_100_tail_verbs.csv`` / ``_tail_nouns.csv`` computed from these rows
            (default: when ``split == "train"``).
        unseen_participants: write ``EPIC_100_unseen_participant_ids_<split>.csv``.
        verb_names, noun_names: class names; written as ``EPIC_100_verb_classes.csv`` /
            ``EPIC_100_noun_classes.csv`` (``id, key, instances, category``).
        actions: the action vocabulary as (verb, noun) pairs, written as ``actions.csv`` so the
            contiguous action ids survive the round trip.
    """
    from PIL import Image  # lazily: Pillow only when frames are written

    root = Path(root)
    columns = EPIC_TEST_COLUMNS if split == "test" else EPIC_COLUMNS
    annotation = annotation_file(split)
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    fps_of = dict(fps) if isinstance(fps, Mapping) else {v: float(fps) for v in videos}
    for vid, arr in videos.items():
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
            got = f"{getattr(arr, 'dtype', type(arr).__name__)} {getattr(arr, 'shape', '')}"
            raise ValueError(f"video {vid!r}: expected a uint8 array (T, H, W, 3), got {got}")
        if vid not in fps_of or not fps_of[vid] > 0:
            raise ValueError(f"video {vid!r}: no positive fps given")
        if "_" not in vid:
            raise ValueError(f"video id {vid!r} must look like '<participant>_<index>' (e.g. P01_01)")

    # --- annotation rows --------------------------------------------------------------------
    required = ("video_id", "start_frame", "stop_frame") + (() if split == "test" else ("verb_class", "noun_class"))
    running: Counter = Counter()
    out_rows = []
    for i, r in enumerate(rows):
        missing = [k for k in required if k not in r]
        if missing:
            raise ValueError(f"row {i}: missing key(s) {missing}")
        extra = sorted(set(r) - set(EPIC_COLUMNS))
        if extra and not ignore_extra:
            raise ValueError(
                f"row {i}: unknown key(s) {extra}; the EK-100 CSV has only the columns "
                f"{list(EPIC_COLUMNS)} (pass ignore_extra=True to drop them)"
            )
        vid = str(r["video_id"])
        if vid not in videos:
            raise ValueError(f"row {i}: video {vid!r} is not among the videos given")
        n_frames = videos[vid].shape[0]
        start, stop = int(r["start_frame"]), int(r["stop_frame"])
        if not 1 <= start <= stop <= n_frames:
            raise ValueError(
                f"row {i}: frames [{start}, {stop}] must satisfy 1 <= start <= stop <= {n_frames} "
                f"(the frames of video {vid!r})"
            )
        f = fps_of[vid]
        rec = {
            "narration_id": r.get("narration_id", f"{vid}_{running[vid]}"),
            "participant_id": r.get("participant_id", vid.split("_")[0]),
            "video_id": vid,
            "narration_timestamp": r.get("narration_timestamp", format_timestamp(start / f, 3)),
            "start_timestamp": r.get("start_timestamp", format_timestamp(start / f)),
            "stop_timestamp": r.get("stop_timestamp", format_timestamp(stop / f)),
            "start_frame": start,
            "stop_frame": stop,
        }
        running[vid] += 1
        if split != "test":
            vc, nc = int(r["verb_class"]), int(r["noun_class"])
            verb = r.get("verb", verb_names[vc] if verb_names is not None else str(vc))
            noun = r.get("noun", noun_names[nc] if noun_names is not None else str(nc))
            rec.update(
                narration=r.get("narration", f"{verb} {noun}"),
                verb=verb,
                verb_class=vc,
                noun=noun,
                noun_class=nc,
                all_nouns=r.get("all_nouns", repr([noun])),
                all_noun_classes=r.get("all_noun_classes", repr([nc])),
            )
        out_rows.append([rec[c] for c in columns])

    root.mkdir(parents=True, exist_ok=True)
    write_csv(root / annotation, columns, out_rows)

    # --- frames -------------------------------------------------------------------------------
    for vid in sorted(videos):
        arr = videos[vid]
        folder = _video_dir(root, vid, rgb_frames_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for t in range(arr.shape[0]):
            img = Image.fromarray(np.ascontiguousarray(arr[t]), mode="RGB")
            path = folder / frame_name(t + 1, image_format)
            if image_format == "jpg":
                img.save(path, format="JPEG", quality=int(quality), subsampling=0, optimize=False)
            else:
                img.save(path, format="PNG", optimize=False, compress_level=6)

    # --- video info (merged with what is there) ------------------------------------------------
    info_path = root / "EPIC_100_video_info.csv"
    info = {}
    if info_path.is_file():
        for r in read_csv(info_path, VIDEO_INFO_COLUMNS):
            info[r["video_id"]] = [r[c] for c in VIDEO_INFO_COLUMNS]
    for vid, arr in videos.items():
        t, h, w = arr.shape[:3]
        info[vid] = [vid, repr(t / fps_of[vid]), _fmt_fps(fps_of[vid]), f"{w}x{h}"]
    write_csv(info_path, VIDEO_INFO_COLUMNS, [info[v] for v in sorted(info)])

    # --- optional side files ------------------------------------------------------------------
    if tail is None:
        tail = split == "train"
    if tail:
        if split == "test":
            raise ValueError("tail classes come from labelled training rows, not the test split")
        for col, name in (("verb_class", "verb"), ("noun_class", "noun")):
            counts = class_counts([int(r[col]) for r in rows])
            write_csv(root / f"EPIC_100_tail_{name}s.csv", (name,), [[c] for c in tail_classes(counts)])
    if unseen_participants is not None:
        write_csv(
            root / f"EPIC_100_unseen_participant_ids_{split}.csv",
            ("participant_id",),
            [[p] for p in sorted(unseen_participants)],
        )
    for names, kind in ((verb_names, "verb"), (noun_names, "noun")):
        if names is not None:
            write_csv(
                root / f"EPIC_100_{kind}_classes.csv",
                ("id", "key", "instances", "category"),
                [[i, n, repr([n]), ""] for i, n in enumerate(names)],
            )
    if actions is not None:
        pairs = [(int(v), int(n)) for v, n in actions]
        if len(set(pairs)) != len(pairs):
            raise ValueError("actions: the (verb, noun) pairs must be distinct")

        def _name(names, c):
            return names[c] if names is not None else str(c)

        write_csv(
            root / "actions.csv",
            ("id", "verb", "noun", "action"),
            [[i, v, n, f"{_name(verb_names, v)} {_name(noun_names, n)}"] for i, (v, n) in enumerate(pairs)],
        )
    return root
