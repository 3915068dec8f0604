"""Shipped checkpoints and per-frame features.

* The frame encoder shipped in lecturekit/resources/checkpoints/ still reaches the accuracy recorded next to it when
  re-measured on the same ToyKitchens world (behaviour, not bytes), and stays small.
* Features of a view, gathered from the cached per-video table, equal the encoder run on the
  view's pixels; the cache is keyed by world and checkpoint; a missing encoder can be retrained.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from lecturekit import features, resources
from lecturekit.data.toykitchens import ToyKitchens
from lecturekit.features import (
    FRAME_ENCODER,
    checkpoint_path,
    encode_frames,
    features_cache_path,
    file_sha256,
    load_frame_encoder,
    video_features,
    view_features,
)
from lecturekit.train import evaluate, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "lecturekit" / "resources" / "checkpoints" / f"{FRAME_ENCODER}.pt"
RECORD = SHIPPED.with_suffix(".json")
SMALL_WORLD = dict(seed=3, num_kitchens=5, unseen_kitchens=2, videos_per_kitchen=1, heldout_videos=1, unseen_videos=1)


@pytest.fixture(scope="module")
def record():
    assert SHIPPED.is_file() and RECORD.is_file(), "run: python scripts/train_checkpoints.py"
    return json.loads(RECORD.read_text())


def test_shipped_frame_encoder_is_small_and_intact(record):
    assert SHIPPED.stat().st_size < 2_000_000
    assert file_sha256(SHIPPED) == record["sha256"], "checkpoint changed without its JSON record"
    model, info = load_checkpoint(SHIPPED, device="cpu", with_info=True)
    assert info["architecture"] == "frame_cnn" and info["kwargs"] == record["kwargs"]
    assert info["metadata"]["val_accuracy"] == record["val_accuracy"]
    assert sum(p.numel() for p in model.parameters()) == record["params"]


def test_shipped_frame_encoder_reaches_its_recorded_accuracy(record):
    world = ToyKitchens(**record["recipe"]["world"])
    assert world.cache_key() == record["world_cache_key"], (
        "the ToyKitchens generator changed since the checkpoint was trained: rerun scripts/train_checkpoints.py"
    )
    x, y = world.clips("val", frames=record["recipe"]["frames"]).tensors()
    target = record["target"]
    model = load_frame_encoder(device="cpu")
    got = evaluate(model, (x, y[target]), metrics=["accuracy", "top5"], device="cpu")
    n = record["num_val_clips"]
    assert len(x) == n
    same_pixels = hashlib.sha256(x.numpy().tobytes()).hexdigest() == record.get("val_pixels_sha256")
    hint = "" if same_pixels else (
        " (the ToyKitchens rendering changed since the checkpoint was trained: "
        "rerun python scripts/train_checkpoints.py)")
    # identical up to float rounding across machines: at most one clip of n may flip
    assert got["accuracy"] >= record["val_accuracy"] - 1.0 / n - 1e-9, f"{got} vs {record['val_accuracy']}{hint}"
    assert got["top5"] >= record["val_top5"] - 1.0 / n - 1e-9, f"{got} vs {record['val_top5']}{hint}"
    chance = 1.0 / world.num_classes[target]
    assert record["val_accuracy"] > 10 * chance, "the recorded encoder is not much better than chance"


@pytest.fixture()
def small_world():
    return ToyKitchens(**SMALL_WORLD)


def test_view_features_equal_encoding_the_pixels(tmp_path, monkeypatch, small_world):
    monkeypatch.setenv("LECTUREKIT_CACHE", str(tmp_path))
    ckpt = checkpoint_path()
    assert ckpt == SHIPPED
    table = video_features(small_world, device="cpu")
    cached = features_cache_path(small_world, ckpt)
    assert cached.is_file() and cached.parent.parent == tmp_path
    assert small_world.cache_key() in cached.name and file_sha256(ckpt)[:16] in cached.name
    assert set(table) == set(small_world.video_ids) | {"__black__"}
    T0 = small_world.long_video(0).shape[0]
    assert table[small_world.video_ids[0]].shape == (T0, 64)

    view = small_world.anticipation("val", tau_a=1.0, tau_o=2.0)
    view.frame_index[0, :3] = -1  # frames before the video: black in the pixel view
    feats = view_features(view, table)
    assert feats.shape == (len(view), view.frames, 64)
    encoder = load_frame_encoder(device="cpu")
    rows = [0, 1, len(view) - 1]
    clips = torch.stack([view[i].video for i in rows]).float() / 255  # (3, C, T, H, W)
    with torch.no_grad():
        direct = encoder.forward_features(clips)  # the whole clip at once (fold_time path)
    torch.testing.assert_close(feats[rows], direct, atol=1e-5, rtol=1e-4)
    assert torch.equal(feats[0, 0], table["__black__"])

    # the second call reads the cache and encodes nothing
    def no_encoding(*a, **k):
        raise AssertionError("features were recomputed despite the cache")

    monkeypatch.setattr(features, "encode_frames", no_encoding)
    again = video_features(small_world, device="cpu")
    assert all(torch.equal(again[k], table[k]) for k in table)


def test_encode_frames_shapes_and_errors():
    encoder = load_frame_encoder(device="cpu")
    clip = torch.randint(0, 256, (3, 5, 32, 32), dtype=torch.uint8)
    single = encode_frames(encoder, clip, device="cpu", batch_frames=2)
    assert single.shape == (5, 64)
    batch = encode_frames(encoder, clip[None].float() / 255, device="cpu")
    torch.testing.assert_close(batch[0], single, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match=r"\(C, T, H, W\)"):
        encode_frames(encoder, clip[0], device="cpu")
    with pytest.raises(TypeError, match="forward_features"):
        encode_frames(torch.nn.Linear(2, 2), clip, device="cpu")


@pytest.mark.slow
def test_missing_encoder_is_explained_or_retrained(tmp_path, monkeypatch):
    monkeypatch.setenv("LECTUREKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LECTUREKIT_CHECKPOINTS", str(tmp_path / "none"))
    monkeypatch.setattr(resources, "checkout_path", lambda rel: None)  # as a pip install without the checkout
    monkeypatch.setattr(resources, "shipped_path", lambda rel: tmp_path / "not-shipped" / rel)  # nor the file
    with pytest.raises(FileNotFoundError, match="train_checkpoints.py"):
        load_frame_encoder(device="cpu")
    tiny = {**features.FRAME_ENCODER_RECIPE, "world": SMALL_WORLD, "epochs": 1}
    monkeypatch.setattr(features, "FRAME_ENCODER_RECIPE", tiny)
    model = load_frame_encoder(device="cpu", retrain=True)
    saved = tmp_path / "cache" / "checkpoints" / f"{FRAME_ENCODER}.pt"
    assert saved.is_file() and checkpoint_path() == saved
    reloaded = load_frame_encoder(device="cpu")
    x = torch.rand(2, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), reloaded(x))
