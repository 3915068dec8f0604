"""EPIC-KITCHENS-100 layout: writer -> reader round trip, CSV validation, frame errors,
anticipation windows (no frame at or after the cut), tail classes, unseen participants."""

from __future__ import annotations

import csv
import random

import numpy as np
import pytest
import torch

from lecturekit.data import EPIC_COLUMNS, EpicKitchens, action_class, anticipation_indices, tail_classes, write_epic_layout
from lecturekit.data.epic import format_timestamp, parse_timestamp
from reference import epic_reference as ref


def toy_video(rng, T=24, H=32, W=32):
    """ToyKitchens-like frames: a flat background with a checker texture, a moving rectangle
    and a disc in random colours (sharp colour edges: the hard case for JPEG)."""
    v = np.broadcast_to(rng.integers(0, 256, 3), (T, H, W, 3)).astype(np.int16).copy()
    yy, xx = np.mgrid[:H, :W]
    v += ((xx // 4 + yy // 4) % 2 * 20)[None, :, :, None]
    for t in range(T):
        x0, y0 = 3 + t % 10, 5 + t % 7
        v[t, y0 : y0 + 10, x0 : x0 + 8] = rng.integers(0, 256, 3)
        v[t][(yy - 20) ** 2 + (xx - (8 + t % 12)) ** 2 < 25] = rng.integers(0, 256, 3)
    return np.clip(v, 0, 255).astype(np.uint8)


VERBS = ["take", "put", "turn-cw", "turn-ccw"]
NOUNS = ["cup", "plate", "pan"]


def make_world(root, image_format="jpg", rgb_frames_dir=True, seed=0):
    rng = np.random.default_rng(seed)
    train_videos = {"P01_01": toy_video(rng), "P01_02": toy_video(rng), "P02_01": toy_video(rng)}
    val_videos = {"P03_01": toy_video(rng), "P02_02": toy_video(rng)}
    train_rows = [
        dict(video_id="P01_01", start_frame=2, stop_frame=9, verb_class=0, noun_class=0),
        dict(video_id="P01_01", start_frame=12, stop_frame=20, verb_class=1, noun_class=0),
        dict(video_id="P01_02", start_frame=5, stop_frame=24, verb_class=2, noun_class=2),
        dict(video_id="P02_01", start_frame=1, stop_frame=6, verb_class=0, noun_class=1),
        dict(video_id="P02_01", start_frame=16, stop_frame=23, verb_class=0, noun_class=0, narration="take the cup"),
    ]
    val_rows = [
        dict(video_id="P03_01", start_frame=3, stop_frame=11, verb_class=3, noun_class=2),
        dict(video_id="P02_02", start_frame=18, stop_frame=24, verb_class=1, noun_class=1),
    ]
    actions = [(0, 0), (1, 0), (2, 2), (0, 1), (3, 2), (1, 1)]
    kw = dict(image_format=image_format, rgb_frames_dir=rgb_frames_dir, verb_names=VERBS, noun_names=NOUNS, actions=actions)
    write_epic_layout(root, train_videos, train_rows, 8.0, "train", **kw)
    write_epic_layout(root, val_videos, val_rows, {"P03_01": 8.0, "P02_02": 10.0}, "validation",
                      unseen_participants=["P03"], **kw)
    return {**train_videos, **val_videos}, train_rows, val_rows, actions


def all_frames(ds, i):
    """Read every frame of segment i (uniform sampling with T = segment length is the identity)."""
    s = ds.segments[i]
    idx = torch.arange(s["start_frame"], s["stop_frame"] + 1)
    return ds.read_frames(s["video"], s["participant"], idx.tolist()), idx


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("epic")
    return root, *make_world(root)


def test_csv_has_the_official_15_columns_and_formats(world):
    root = world[0]
    with open(root / "EPIC_100_train.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == EPIC_COLUMNS and len(EPIC_COLUMNS) == 15
    r = dict(zip(rows[0], rows[1]))
    assert r["narration_id"] == "P01_01_0" and r["participant_id"] == "P01"
    assert r["start_timestamp"] == "00:00:00.25" and r["stop_timestamp"] == "00:00:01.12"  # 2/8 s, 9/8 s
    assert r["narration_timestamp"] == "00:00:00.250"
    assert r["verb"] == "take" and r["noun"] == "cup" and r["all_nouns"] == "['cup']" and r["all_noun_classes"] == "[0]"
    info = {r[0]: r for r in csv.reader(open(root / "EPIC_100_video_info.csv"))}
    assert info["video_id"] == ["video_id", "duration", "fps", "resolution"]
    assert info["P02_02"][1:] == ["2.4", "10.0", "32x32"] and info["P01_01"][1:] == ["3.0", "8.0", "32x32"]
    assert (root / "P01" / "rgb_frames" / "P01_01" / "frame_0000000001.jpg").is_file()
    assert (root / "P01" / "rgb_frames" / "P01_01" / "frame_0000000024.jpg").is_file()
    assert not (root / "P01" / "rgb_frames" / "P01_01" / "frame_0000000000.jpg").exists()


def test_timestamps_round_trip():
    for s in (0.0, 0.125, 59.99, 3600 + 61.5, 12345.678):
        assert abs(parse_timestamp(format_timestamp(s, 3)) - s) < 5e-4
    assert parse_timestamp("01:02:03.45") == pytest.approx(3723.45)
    assert np.isnan(parse_timestamp("NaN"))


def test_writer_is_byte_deterministic(tmp_path):
    make_world(tmp_path / "a")
    make_world(tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) > 100
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_round_trip_labels(world):
    root, videos, train_rows, val_rows, actions = world
    for split, rows in (("train", train_rows), ("validation", val_rows)):
        ds = EpicKitchens(root, split)
        assert len(ds) == len(rows)
        for i, r in enumerate(rows):
            _, lab = ds[i]
            assert (lab["verb"], lab["noun"]) == (r["verb_class"], r["noun_class"])
            assert lab["action"] == actions.index((r["verb_class"], r["noun_class"]))
            assert lab["action_class"] == r["verb_class"] * 1000 + r["noun_class"]
            assert lab["video"] == r["video_id"] and lab["participant"] == r["video_id"][:3]
            assert lab["kitchen"] == int(r["video_id"][1:3])
            assert (lab["start_frame"], lab["stop_frame"]) == (r["start_frame"], r["stop_frame"])
        assert ds.verb_names == VERBS and ds.noun_names == NOUNS
        assert ds.num_classes == {"verb": 4, "noun": 3, "action": 6}
    assert action_class(96, 299) == 96299


def test_round_trip_jpeg_frames_near_exact(world):
    """Quality 100 with 4:4:4 chroma: on sharp-edged synthetic frames the error stays within a
    few grey levels (measured: mean 0.34, max 4; quality 95 gave mean 1.7, max 22)."""
    root, videos, *_ = world
    ds = EpicKitchens(root, "train")
    errs = []
    for i in range(len(ds)):
        clip, idx = all_frames(ds, i)
        ref_clip = torch.from_numpy(videos[ds.segments[i]["video"]][idx.numpy() - 1]).permute(3, 0, 1, 2)
        assert clip.shape == ref_clip.shape and clip.dtype == torch.uint8
        errs.append((clip.int() - ref_clip.int()).abs())
    err = torch.cat([e.flatten() for e in errs]).float()
    assert err.mean() < 0.5 and err.max() <= 6


def test_round_trip_png_is_exact_and_flat_layout_is_accepted(tmp_path):
    videos, rows, *_ = make_world(tmp_path, image_format="png", rgb_frames_dir=False)
    assert (tmp_path / "P01" / "P01_01" / "frame_0000000003.png").is_file()
    ds = EpicKitchens(tmp_path, "train", frames=5)
    for i in range(len(ds)):
        clip, lab = ds[i]
        expect = torch.from_numpy(videos[lab["video"]][lab["frames"].numpy() - 1]).permute(3, 0, 1, 2)
        assert torch.equal(clip, expect)


def test_recognition_sampling_stays_in_segment_and_collates(world):
    root = world[0]
    ds = EpicKitchens(root, "train", frames=4)
    for i in range(len(ds)):
        s = ds.segments[i]
        idx = ds.frame_indices(i)
        assert len(idx) == 4 and idx.min() >= s["start_frame"] and idx.max() <= s["stop_frame"]
    video, labels = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert video.shape == (3, 3, 4, 32, 32) and video.dtype == torch.uint8
    assert labels["verb"].tolist() == [0, 1, 2] and labels["video"] == ["P01_01", "P01_01", "P01_02"]
    resized = EpicKitchens(root, "train", frames=4, size=(16, 24))[0][0]
    assert resized.shape == (3, 4, 16, 24)


def _rewrite_csv(path, drop=()):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    cols = [c for c in EPIC_COLUMNS if c not in drop]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def test_csv_with_missing_columns_is_rejected(tmp_path):
    make_world(tmp_path)
    _rewrite_csv(tmp_path / "EPIC_100_validation.csv", drop=("noun_class", "stop_frame"))
    with pytest.raises(ValueError, match=r"EPIC_100_validation\.csv.*'stop_frame', 'noun_class'"):
        EpicKitchens(tmp_path, "validation")
    EpicKitchens(tmp_path, "train")  # the intact file still loads


def test_missing_frame_is_named(tmp_path):
    make_world(tmp_path)
    ds = EpicKitchens(tmp_path, "train", frames=8)
    idx = ds.frame_indices(2).tolist()  # P01_02, frames 5..24
    victim = tmp_path / "P01" / "rgb_frames" / "P01_02" / f"frame_{idx[3]:010d}.jpg"
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=str(victim)):
        ds[2]
    ds[0]  # other videos unaffected


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_jpeg_is_named(tmp_path, damage):
    make_world(tmp_path)
    ds = EpicKitchens(tmp_path, "train", frames=8)
    victim = tmp_path / "P02" / "rgb_frames" / "P02_01" / f"frame_{ds.frame_indices(3)[2].item():010d}.jpg"
    data = victim.read_bytes()
    victim.write_bytes(b"not a jpeg at all" * 10 if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(ValueError, match=str(victim)):
        ds[3]


def test_missing_video_folder_names_both_layouts(tmp_path):
    make_world(tmp_path)
    import shutil

    shutil.rmtree(tmp_path / "P03" / "rgb_frames" / "P03_01")
    with pytest.raises(FileNotFoundError, match=r"P03_01.*rgb_frames.*P03[/\\]P03_01"):
        EpicKitchens(tmp_path, "validation")[0]


# --- anticipation ------------------------------------------------------------------------------


def test_anticipation_indices_match_exact_rational_reference():
    rnd = random.Random(0)
    for _ in range(400):
        fps = rnd.choice(["8", "25", "29.97", "50", "59.94", "60"])
        tau_a = rnd.choice(["0.25", "0.5", "1", "2"])
        tau_o = rnd.choice(["0.5", "1.5", "2", "3.5"])
        T = rnd.randint(1, 9)
        start = rnd.randint(1, 400)
        idx, early, clamped = anticipation_indices(start, float(fps), T, float(tau_a), float(tau_o))
        expect = [ref.anticipation_frame(start, fps, tau_a, tau_o, T, j) for j in range(T)]
        if expect[-1] < 1:
            assert early and idx.tolist() == [0] * T
        else:
            assert not early and idx.tolist() == [max(1, e) for e in expect]
            assert bool(clamped) == (expect[0] < 1)


def test_anticipation_never_reads_at_or_after_the_cut_integer_cuts_included():
    # fps = 8, tau_a = 1 s: the cut start - 8 is an integer; floor() would land on it, we must not
    starts = torch.arange(1, 300)
    for fps in (8.0, 10.0, 50.0, 59.94):
        idx, early, _ = anticipation_indices(starts, fps, 8, 1.0, 2.0)
        cut = starts.double() - 1.0 * fps
        ok = ~early
        assert (idx[ok].double() < cut[ok, None]).all()
        assert (idx[ok] >= 1).all()
        assert (early == (cut <= 1)).all()  # nothing strictly before the cut exists iff cut <= 1
        assert (idx[early] == 0).all()
        assert (idx[ok].diff(dim=1) >= 0).all()  # time order kept
    idx, _, _ = anticipation_indices(20, 8.0, 4, 1.0, 2.0)  # cut 12: last frame 11, alpha = 4 frames
    assert idx.tolist() == [1, 3, 7, 11]


def test_anticipation_dataset_flags_and_keeps_too_early_segments(world):
    root, videos, train_rows, *_ = world
    ds = EpicKitchens(root, "train", mode="anticipation", frames=4, tau_a=1.0, tau_o=1.0)
    assert len(ds) == len(train_rows)  # nothing dropped
    # fps 8, tau_a 1 s: a start at frame <= 9 has no frame strictly before the cut (cut <= 1)
    expect_early = [r["start_frame"] - 8 <= 1 for r in train_rows]
    assert expect_early == [True, False, True, True, False]
    assert ds.too_early_count == 3 and ds.summary()["too_early"] == 3 and ds.summary()["dropped"] == 0
    for i, r in enumerate(train_rows):
        video, lab = ds[i]
        assert lab["too_early"] == expect_early[i]
        assert video.shape == (3, 4, 32, 32)
        if lab["too_early"]:
            assert video.sum() == 0
        else:
            cut = r["start_frame"] - 8
            assert lab["frames"].max() < cut and lab["frames"].min() >= 1
            expect = torch.from_numpy(videos[r["video_id"]][lab["frames"].numpy() - 1]).permute(3, 0, 1, 2)
            assert (video.int() - expect.int()).abs().max() <= 6
    # per-video fps from video_info: P02_02 is at 10 fps (cut = 18 - 10 = 8)
    val = EpicKitchens(root, "validation", mode="anticipation", frames=3, tau_a=1.0, tau_o=0.6)
    lab = val[1][1]
    assert lab["fps"] == 10.0 and lab["frames"].tolist() == [3, 5, 7]


# --- tail, unseen, vocabularies --------------------------------------------------------------


def test_tail_classes_hand_computed():
    # 100 instances; descending 40, 25, 15 (80 reached after 3 classes) -> tail {3: 10, 4: 6, 5: 4}
    counts = {0: 40, 1: 25, 2: 15, 3: 10, 4: 6, 5: 4, 6: 0}
    assert tail_classes(counts) == [3, 4, 5]  # 6 never seen in training: in neither list
    # ties at the boundary: 60 + 10 + 10 reaches 80; of the four 10s the smaller ids are head
    assert tail_classes({0: 60, 4: 10, 3: 10, 2: 10, 1: 10}) == [3, 4]
    assert tail_classes({0: 81, 1: 19}) == [1] and tail_classes({0: 79, 1: 21}) == []


def test_tail_classes_equal_brute_force_enumeration():
    rng = np.random.default_rng(1)
    for _ in range(60):
        k = int(rng.integers(1, 10))
        counts = {c: int(n) for c, n in enumerate(rng.integers(0, 12, size=k))}
        if sum(counts.values()) == 0:
            continue
        assert tail_classes(counts) == ref.tail_by_enumeration(counts), counts


def test_tail_classes_of_label_lists_equal_brute_force_enumeration():
    """The path of the metrics (a label list counted by class_counts) gives the enumerated tail."""
    from lecturekit.data.ek100 import class_counts

    rng = np.random.default_rng(2)
    for _ in range(50):
        y = rng.zipf(1.6, size=int(rng.integers(5, 400))) % 30
        classes, n = np.unique(y, return_counts=True)
        counts = dict(zip(classes.tolist(), n.tolist()))
        assert class_counts(y) == counts
        assert tail_classes(class_counts(y)) == ref.tail_by_enumeration(counts)


def test_dataset_tail_flags_from_a_hand_made_train_csv(tmp_path):
    """Tail computed by the loader from the train CSV (tail files deleted) == enumeration."""
    rng = np.random.default_rng(3)
    video = {"P01_01": toy_video(rng, T=4, H=8, W=8)}
    verbs = [0] * 9 + [1] * 5 + [2] * 3 + [3] * 2 + [4]  # 20 rows: 9+5+3 = 85 % is the head
    nouns = [0] * 12 + [1] * 4 + [2] * 4  # 12+4 = 80 % is the head
    rows = [dict(video_id="P01_01", start_frame=1, stop_frame=2, verb_class=v, noun_class=n) for v, n in zip(verbs, nouns)]
    write_epic_layout(tmp_path, video, rows, 8.0, "train", tail=False)
    assert not (tmp_path / "EPIC_100_tail_verbs.csv").exists()
    ds = EpicKitchens(tmp_path, "train")
    from collections import Counter

    assert ds.tail_verbs == set(ref.tail_by_enumeration(dict(Counter(verbs)))) == {3, 4}
    assert ds.tail_nouns == set(ref.tail_by_enumeration(dict(Counter(nouns)))) == {2}
    flags = [(s["tail_verb"], s["tail_noun"], s["tail_action"]) for s in ds.segments]
    assert flags == [(v in {3, 4}, n == 2, v in {3, 4} or n == 2) for v, n in zip(verbs, nouns)]
    # the writer's tail files hold the same lists
    write_epic_layout(tmp_path / "w", video, rows, 8.0, "train")
    assert [r[0] for r in csv.reader(open(tmp_path / "w" / "EPIC_100_tail_verbs.csv"))] == ["verb", "3", "4"]


def test_unseen_participants_and_default_action_vocabulary(tmp_path):
    make_world(tmp_path)
    (tmp_path / "actions.csv").unlink()
    val = EpicKitchens(tmp_path, "validation")
    assert val.unseen_participants == ["P03"]
    assert [s["unseen"] for s in val.segments] == [True, False] and val.summary()["unseen_segments"] == 1
    # without actions.csv: sorted distinct (verb, noun) pairs of train and validation (RULSTM's rule)
    assert val.actions == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (3, 2)]
    assert [s["action"] for s in val.segments] == [5, 3]
    assert EpicKitchens(tmp_path, "validation", unseen=["P02"]).segments[1]["unseen"]


def test_test_split_and_zero_start_frame(tmp_path):
    rng = np.random.default_rng(4)
    video = {"P09_01": toy_video(rng, T=12, H=8, W=8)}
    write_epic_layout(tmp_path, video, [dict(video_id="P09_01", start_frame=3, stop_frame=12)], 8.0, "test")
    with open(tmp_path / "EPIC_100_test_timestamps.csv") as f:
        assert next(csv.reader(f)) == list(EPIC_COLUMNS[:8])
    ds = EpicKitchens(tmp_path, "test", frames=2)
    _, lab = ds[0]
    assert (lab["verb"], lab["noun"], lab["action"]) == (-1, -1, -1)
    # the annotation README says 0-indexed, the files start at 1: a start of 0 is clamped
    p = tmp_path / "EPIC_100_test_timestamps.csv"
    p.write_text(p.read_text().replace(",3,12", ",0,12"))
    ds = EpicKitchens(tmp_path, "test", frames=2)
    assert ds.segments[0]["start_frame"] == 1 and ds.summary()["clamped_start_frames"] == 1


def test_writer_rejects_bad_input(tmp_path):
    v = {"P01_01": np.zeros((4, 8, 8, 3), np.uint8)}
    ok = dict(video_id="P01_01", start_frame=1, stop_frame=4, verb_class=0, noun_class=0)
    with pytest.raises(ValueError, match="start <= stop <= 4"):
        write_epic_layout(tmp_path, v, [dict(ok, stop_frame=5)], 8.0)
    with pytest.raises(ValueError, match="unknown key"):
        write_epic_layout(tmp_path, v, [dict(ok, recipe=3)], 8.0)
    with pytest.raises(ValueError, match=r"uint8 array \(T, H, W, 3\)"):
        write_epic_layout(tmp_path, {"P01_01": np.zeros((4, 8, 8), np.uint8)}, [ok], 8.0)
    with pytest.raises(ValueError, match="missing key"):
        write_epic_layout(tmp_path, v, [{"video_id": "P01_01"}], 8.0)
    write_epic_layout(tmp_path, v, [dict(ok, recipe=3)], 8.0, ignore_extra=True)


def test_frame_rate_of_the_folders_wins_over_a_wrong_video_info_fps(tmp_path):
    """EK-100 extracted its 29.97-fps videos at 60 frames/s: the annotations (frames vs
    timestamps) reveal it and anticipation must use 60. 59.94 vs 60 (0.1 %) is left alone."""
    rng = np.random.default_rng(5)
    videos = {"P01_01": toy_video(rng, T=400, H=4, W=4), "P01_02": toy_video(rng, T=400, H=4, W=4)}
    rows = [dict(video_id=v, start_frame=s, stop_frame=s + 20, verb_class=0, noun_class=0)
            for v in videos for s in (100, 250, 370)]
    write_epic_layout(tmp_path, videos, rows, 60.0)  # timestamps = frame / 60
    info = tmp_path / "EPIC_100_video_info.csv"
    info.write_text(info.read_text().replace("P01_01,6.666666666666667,60.0", "P01_01,13.3,29.97")
                    .replace("P01_02,6.666666666666667,60.0", "P01_02,6.67,59.94"))
    ds = EpicKitchens(tmp_path, "train", mode="anticipation", frames=2, tau_a=1.0, tau_o=1.0)
    assert ds.frame_rate_corrected == {"P01_01": (29.97, 60.0)} and ds.summary()["frame_rate_corrected_videos"] == 1
    assert ds[0][1]["fps"] == 60.0 and ds[0][1]["frames"].tolist() == [9, 39]  # cut 100 - 60 = 40
    assert ds[3][1]["fps"] == 59.94
    fixed = EpicKitchens(tmp_path, "train", mode="anticipation", frames=2, tau_a=1.0, tau_o=1.0, fps=29.97)
    assert fixed.frame_rate_corrected == {} and fixed[0][1]["fps"] == 29.97  # an explicit fps is obeyed
