"""FrameFolder (UCF-101 / HMDB-style frame folders) and the optional video-file decoders."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from lecturekit.data import FrameFolder, LabelMap, RandomHorizontalFlip, TSNSampler, read_video_file


def make_folders(root, n_frames=(12, 7), classes=("Punch", "ApplyEyeMakeup")):
    """Two classes x two videos; frame f of video v has every pixel equal to (f, v, class) so a
    read frame tells which file it came from. Names without zero padding: natural order matters."""
    truth = {}
    for ci, cls in enumerate(classes):
        for vi, n in enumerate(n_frames):
            vid = f"v_{cls}_g{vi + 3:02d}_c01"
            d = root / cls / vid
            d.mkdir(parents=True)
            for f in range(n):
                arr = np.zeros((6, 10, 3), np.uint8)
                arr[...] = (f, vi, ci)
                Image.fromarray(arr).save(d / f"img_{f + 1}.png")
            truth[f"{cls}/{vid}"] = n
    return truth


def test_labels_order_and_sampling(tmp_path):
    make_folders(tmp_path)
    ds = FrameFolder(tmp_path, frames=4)
    assert ds.classes == ["ApplyEyeMakeup", "Punch"] and ds.num_classes == 2 and len(ds) == 4
    video, lab = ds[0]
    assert video.shape == (3, 4, 6, 10) and video.dtype == torch.uint8
    assert lab["label"] == 0 and lab["class_name"] == "ApplyEyeMakeup" and lab["group"] == 3
    # 12 frames, uniform T=4: positions 1, 4, 7, 10 in natural order (img_2 before img_10)
    assert lab["frames"].tolist() == [1, 4, 7, 10]
    assert video[0, :, 0, 0].tolist() == [1, 4, 7, 10]  # pixel value = frame number - 1
    assert (video[2] == 1).all()  # class code of ApplyEyeMakeup as written (index 1 in make_folders)
    v2, lab2 = ds[3]
    assert lab2["label"] == 1 and lab2["group"] == 4 and v2[0, :, 0, 0].tolist() == lab2["frames"].tolist()
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch[0].shape == (4, 3, 4, 6, 10) and batch[1]["label"].tolist() == [0, 0, 1, 1]


def test_training_sampler_size_and_label_transform(tmp_path):
    make_folders(tmp_path)
    ds = FrameFolder(tmp_path, sampler=TSNSampler(3, train=True, seed=0), size=(4, 4),
                     transform=RandomHorizontalFlip({"label": LabelMap()}, p=1.0))
    v, lab = ds[1]
    assert v.shape == (3, 3, 4, 4) and lab["flipped"] and lab["label"] == 0
    parts = [[0, 1], [2, 3, 4], [5, 6]]  # 7 frames into 3 TSN parts
    assert all(i in p for i, p in zip(lab["frames"].tolist(), parts))


def test_split_file_and_errors(tmp_path):
    truth = make_folders(tmp_path)
    split = tmp_path.parent / f"{tmp_path.name}_trainlist01.txt"
    split.write_text("Punch/v_Punch_g03_c01.avi 2\nApplyEyeMakeup/v_ApplyEyeMakeup_g04_c01.avi 1\n")
    ds = FrameFolder(tmp_path, split_file=split)
    assert [(v["class_name"], v["video"]) for v in ds.videos] == [
        ("ApplyEyeMakeup", "v_ApplyEyeMakeup_g04_c01"), ("Punch", "v_Punch_g03_c01")]
    assert len(truth) == 4
    split.write_text("Punch/v_Punch_g99_c01.avi 2\n")
    with pytest.raises(FileNotFoundError, match="v_Punch_g99_c01"):
        FrameFolder(tmp_path, split_file=split)
    (tmp_path / "Punch" / "v_Punch_g07_c01").mkdir()
    with pytest.raises(ValueError, match="without frames.*v_Punch_g07_c01"):
        FrameFolder(tmp_path)


def test_corrupt_frame_is_named(tmp_path):
    make_folders(tmp_path)
    bad = tmp_path / "Punch" / "v_Punch_g03_c01" / "img_2.png"
    bad.write_bytes(b"\x89PNG broken")
    ds = FrameFolder(tmp_path, frames=12)
    with pytest.raises(ValueError, match=str(bad)):
        ds[2]


def test_optional_decoders_fail_clearly_when_missing(tmp_path, monkeypatch):
    f = tmp_path / "clip.mp4"
    f.write_bytes(b"\x00" * 16)
    monkeypatch.setitem(sys.modules, "torchcodec", None)  # import -> ImportError, installed or not
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ImportError, match="pip install torchcodec"):
        read_video_file(f, backend="torchcodec")
    with pytest.raises(ImportError, match="pip install av"):
        read_video_file(f, backend="pyav")
    with pytest.raises(ValueError, match="backend"):
        read_video_file(f, backend="decord")
    with pytest.raises(FileNotFoundError):
        read_video_file(tmp_path / "nope.mp4")
