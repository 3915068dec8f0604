"""The LMDB feature reader on databases these tests write themselves (RU-LSTM's layout, no download).

Layout (github.com/fpv-iplab/rulstm, RULSTM/dataset.py): one LMDB environment per modality, key
``<video>_frame_<10 digits>.jpg`` (1-based), value the raw float32 bytes of one vector. One
database here is written with the ``lmdb`` package directly (not with our writer), so the reader
is checked against the layout, not against itself.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest
import torch

if os.environ.get("LECTUREKIT_CI") != "1":
    pytest.importorskip("lmdb")
import lmdb  # noqa: E402

from lecturekit.data import EpicKitchens, anticipation_indices  # noqa: E402
from lecturekit.data.epic import EPIC_COLUMNS, VIDEO_INFO_COLUMNS  # noqa: E402
from lecturekit.data.epic_writer import write_csv  # noqa: E402
from lecturekit.data.lmdb_features import (  # noqa: E402
    EpicFeatures,
    FeatureKeyError,
    FeatureWidthError,
    LMDBFeatures,
    feature_key,
    write_example_features,
    write_lmdb_features,
)


def _raw_lmdb(path, vectors: dict[str, np.ndarray]) -> None:
    """Write key -> float32 bytes with the lmdb package itself, as RU-LSTM's databases are."""
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for key, v in vectors.items():
            txn.put(key.encode("utf-8"), np.asarray(v, dtype=np.float32).tobytes())
    env.close()


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    root = tmp_path_factory.mktemp("ek_features")
    info = write_example_features(root, width=8, videos=4, seconds=40.0, segments_per_video=10, seed=1)
    return info


def test_reads_a_database_written_with_lmdb_itself(tmp_path):
    rng = np.random.default_rng(0)
    vecs = {f"P07_03_frame_{f:010d}.jpg": rng.standard_normal(1024).astype(np.float32) for f in (1, 2, 3, 250)}
    _raw_lmdb(tmp_path / "rgb", vecs)
    feats = LMDBFeatures(tmp_path / "rgb", 1024)
    assert len(feats) == 4 and ("P07_03", 250) in feats and ("P07_03", 4) not in feats
    np.testing.assert_array_equal(feats.get("P07_03", 250), vecs["P07_03_frame_0000000250.jpg"])
    many = feats.get_many("P07_03", [3, 1, 3])
    assert many.shape == (3, 1024) and many.dtype == np.float32
    np.testing.assert_array_equal(many[0], vecs["P07_03_frame_0000000003.jpg"])
    np.testing.assert_array_equal(many[1], vecs["P07_03_frame_0000000001.jpg"])
    # a second reader of the same database in the same process shares the environment
    assert LMDBFeatures(tmp_path / "rgb", 1024).get("P07_03", 1).tolist() == vecs["P07_03_frame_0000000001.jpg"].tolist()


def test_writer_produces_the_published_layout(tmp_path):
    arr = np.arange(3 * 352, dtype=np.float32).reshape(3, 352)
    write_lmdb_features(tmp_path / "obj", {"P01_01": arr})
    env = lmdb.open(str(tmp_path / "obj"), readonly=True, lock=False)
    with env.begin() as txn:
        keys = [bytes(k).decode() for k, _ in txn.cursor()]
        raw = txn.get(b"P01_01_frame_0000000002.jpg")
    env.close()
    assert keys == ["P01_01_frame_0000000001.jpg", "P01_01_frame_0000000002.jpg", "P01_01_frame_0000000003.jpg"]
    assert len(raw) == 4 * 352 and np.frombuffer(raw, "<f4").tolist() == arr[1].tolist()
    assert feature_key("P01_01", 2) == "P01_01_frame_0000000002.jpg"
    with pytest.raises(ValueError, match="1-based"):
        feature_key("P01_01", 0)


def test_missing_database_names_expected_and_got(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"expected an LMDB folder containing data.mdb .* got nothing at that path"):
        LMDBFeatures(tmp_path / "absent", 1024)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileNotFoundError, match="got a file, not a folder"):
        LMDBFeatures(tmp_path / "file", 1024)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"got a folder without data.mdb \(it holds: \['readme.txt'\]\)"):
        LMDBFeatures(tmp_path / "empty", 1024)
    with pytest.raises(ValueError, match="width must be a positive int"):
        LMDBFeatures(tmp_path / "empty", 0)


def test_missing_key_and_wrong_width_are_clear(tmp_path):
    _raw_lmdb(tmp_path / "flow", {"P02_01_frame_0000000010.jpg": np.zeros(1024), "P02_01_frame_0000000020.jpg": np.zeros(1024)})
    feats = LMDBFeatures(tmp_path / "flow", 1024)
    with pytest.raises(FeatureKeyError) as err:
        feats.get("P02_01", 15)
    msg = str(err.value)
    assert "'P02_01_frame_0000000015.jpg' not found" in msg and "nearest key after it is 'P02_01_frame_0000000020.jpg'" in msg
    assert isinstance(err.value, KeyError)
    with pytest.raises(FeatureWidthError, match=r"expected 352 float32 values \(1408 bytes\), got 4096 bytes \(1024 float32 values\)"):
        LMDBFeatures(tmp_path / "flow", 352).get("P02_01", 10)
    _raw_lmdb(tmp_path / "odd", {})
    env = lmdb.open(str(tmp_path / "odd"))
    with env.begin(write=True) as txn:
        txn.put(b"P02_01_frame_0000000001.jpg", b"\x00" * 10)
    env.close()
    with pytest.raises(FeatureWidthError, match="got 10 bytes \\(not a whole number of float32 values\\)"):
        LMDBFeatures(tmp_path / "odd", 4).get("P02_01", 1)


def test_lmdb_is_optional_and_its_absence_says_what_to_install(tmp_path, monkeypatch):
    write_lmdb_features(tmp_path / "db", {"P01_01": np.zeros((2, 4), np.float32)})
    monkeypatch.setitem(sys.modules, "lmdb", None)        # as if lmdb were not installed
    feats = LMDBFeatures(tmp_path / "db", 4)              # constructing needs no lmdb: only reading does
    with pytest.raises(ImportError, match=r'pip install "lecturekit\[epic\]"'):
        feats.get("P01_01", 1)


def test_windows_end_before_the_cut_and_read_the_right_rows(example):
    root, path, width = example["annotations"], example["features"], example["width"]
    feats = LMDBFeatures(path, width)
    ds = EpicFeatures(root, feats, "train", steps=6, tau_a=1.0, tau_o=3.0)     # features at 30 fps, CSVs at 60
    ann = EpicKitchens(root, "train")
    assert len(ds) == len(ann) == 20                                           # too-early samples are kept
    checked = early = 0
    for i in range(len(ds)):
        x, y = ds[i]
        seg = ann.segments[i]
        assert x.shape == (6, width) and y["narration_id"] == seg["narration_id"]
        if y["too_early"]:
            early += 1
            assert x.abs().sum() == 0
            continue
        t_s = seg["start_frame"] / seg["fps"]                                  # action start in seconds
        times = y["frames"].double() / 30.0
        assert (times < t_s - 1.0).all(), "a frame at or after the cut"
        assert times[-1] > t_s - 1.0 - 2 / 30                                  # the last step sits at the cut
        gaps = times.diff()
        assert ((gaps - 0.5).abs() <= 1 / 30 + 1e-9).all()                     # tau_o / steps = 0.5 s apart
        for step, f in enumerate(y["frames"].tolist()):
            np.testing.assert_array_equal(x[step].numpy(), feats.get(seg["video"], f))
        checked += 1
    assert early == ds.too_early_count >= 1 and checked >= 15


def test_frame_rate_none_uses_the_annotation_numbers(tmp_path):
    # features numbered like the official frame folders (here 8 frames/s)
    rows = [["P01_01_0", "P01", "P01_01", "00:00:05.000", "00:00:05.00", "00:00:06.00", 40, 48, "take cup",
             "take", 0, "cup", 3, "['cup']", "[3]"]]
    write_csv(tmp_path / "EPIC_100_train.csv", EPIC_COLUMNS, rows)
    write_csv(tmp_path / "EPIC_100_video_info.csv", VIDEO_INFO_COLUMNS, [["P01_01", "10.0", "8.0", "456x256"]])
    write_lmdb_features(tmp_path / "rgb", {"P01_01": np.arange(80 * 4, dtype=np.float32).reshape(80, 4)})
    ds = EpicFeatures(tmp_path, LMDBFeatures(tmp_path / "rgb", 4), "train", steps=4, tau_a=1.0, tau_o=2.0, frame_rate=None)
    x, y = ds[0]
    expected, _, _ = anticipation_indices(40, 8.0, 4, 1.0, 2.0)
    assert y["frames"].tolist() == expected.tolist() == [19, 23, 27, 31]
    assert x[:, 0].tolist() == [4.0 * (f - 1) for f in expected.tolist()]     # row f-1 holds frame f


def test_rulstm_numbering_and_the_scored_step(tmp_path):
    # P01_01_1 of EPIC_100_train.csv: start frame 262 at 59.94 fps is frame 131 of RU-LSTM's 30 fps
    # numbering (its training.csv says 131). RU-LSTM reads 14 steps up to 0.25 s before the action;
    # step -4 is 1 s before: position 131 - 30 = 101, and the frame strictly before it is 100 (RU-LSTM
    # floors and reads 101, the frame at the cut; the first step likewise: 25 here, 26 in RU-LSTM).
    rows = [["P01_01_1", "P01", "P01_01", "00:00:04.370", "00:00:04.37", "00:00:06.17", 262, 370, "open door",
             "open", 3, "door", 8, "['door']", "[8]"],
            ["P01_01_0", "P01", "P01_01", "00:00:00.500", "00:00:00.50", "00:00:01.00", 30, 60, "take cup",
             "take", 0, "cup", 3, "['cup']", "[3]"]]
    write_csv(tmp_path / "EPIC_100_train.csv", EPIC_COLUMNS, rows)
    write_csv(tmp_path / "EPIC_100_video_info.csv", VIDEO_INFO_COLUMNS, [["P01_01", "100.0", "59.94", "456x256"]])
    write_lmdb_features(tmp_path / "rgb", {"P01_01": np.ones((200, 4), np.float32)})
    ds = EpicFeatures(tmp_path, LMDBFeatures(tmp_path / "rgb", 4), "train", steps=14, tau_a=0.25, tau_o=3.5,
                      score_tau_a=1.0)
    _, y = ds[0]
    assert y["frames"][-4].item() == 100 and y["frames"][-1].item() == 123 and y["frames"][0].item() == 25
    # the second action starts 0.5 s into the video: nothing 1 s before it exists -> too early (zeros),
    # although its 0.25 s window end would have a frame
    x, y = ds[1]
    assert y["too_early"] and x.abs().sum() == 0 and ds.too_early_count == 1
    with pytest.raises(ValueError, match="score_tau_a"):
        EpicFeatures(tmp_path, LMDBFeatures(tmp_path / "rgb", 4), "train", tau_a=1.0, score_tau_a=0.5)


def test_step_labels_are_the_actions_in_progress(example):
    root, path, width = example["annotations"], example["features"], example["width"]
    ds = EpicFeatures(root, LMDBFeatures(path, width), "train", steps=30, tau_a=1.0, tau_o=30.0, step_labels=True)
    segs = ds.segments
    found = 0
    for i in range(len(ds)):
        _, y = ds[i]
        steps = y["steps"]
        assert steps.shape == (31,) and steps[-1].item() == segs[i]["action"]
        if y["too_early"]:
            assert (steps[:-1] == -1).all()
            continue
        for t, f in enumerate(y["frames"].tolist()):
            sec = f / 30.0
            live = [s for s in segs if s["video"] == segs[i]["video"]
                    and s["start_frame"] / s["fps"] <= sec <= s["stop_frame"] / s["fps"]]
            want = max(live, key=lambda s: s["start_frame"])["action"] if live else -1
            assert steps[t].item() == want
            found += want >= 0
    assert found > 20                                                          # the check saw real actions


def test_loader_with_worker_processes(example):
    ds = EpicFeatures(example["annotations"], LMDBFeatures(example["features"], example["width"]), "validation",
                      steps=4, tau_a=1.0, tau_o=2.0)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)
    x, y = next(iter(loader))
    assert x.shape == (4, 4, example["width"]) and len(y["narration_id"]) == 4
    np.testing.assert_array_equal(x[1].numpy(), ds[1][0].numpy())
    assert math.isclose(float(y["fps"][0]), 60.0)
