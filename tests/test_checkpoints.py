"""Shipped checkpoints and per-frame features.

* Every encoder shipped in lecturekit/resources/checkpoints/ still reaches the accuracy recorded
  next to it when re-measured on the same ToyKitchens world (behaviour, not bytes), and stays small.
* The temporal encoder carries time: it tells the reversal pairs apart where the frame CNN cannot.
* Features of a view, gathered from the cached per-video table, equal the encoder run on the
  view's pixels; the temporal encoder's feature of frame t never depends on a later frame; the
  cache is keyed by world, encoder and checkpoint; a missing encoder can be retrained.
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
    ENCODERS,
    FRAME_ENCODER,
    TEMPORAL_ENCODER,
    checkpoint_path,
    encode_frames,
    features_cache_path,
    file_sha256,
    load_encoder,
    video_features,
    view_features,
)
from lecturekit.checkpoint import load_checkpoint
from lecturekit.train import evaluate

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_DIR = ROOT / "lecturekit" / "resources" / "checkpoints"
SHIPPED = SHIPPED_DIR / f"{FRAME_ENCODER}.pt"
SMALL_WORLD = dict(seed=3, num_kitchens=5, unseen_kitchens=2, videos_per_kitchen=1, heldout_videos=1, unseen_videos=1)


def _record(name):
    pt = SHIPPED_DIR / f"{name}.pt"
    assert pt.is_file() and pt.with_suffix(".json").is_file(), "run: python scripts/train_checkpoints.py"
    return pt, json.loads(pt.with_suffix(".json").read_text())


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_shipped_encoder_is_small_and_intact(name):
    pt, record = _record(name)
    assert pt.stat().st_size < 2_000_000
    assert file_sha256(pt) == record["sha256"], "checkpoint changed without its JSON record"
    model, info = load_checkpoint(pt, device="cpu", with_info=True)
    assert info["architecture"] == ENCODERS[name]["architecture"] == record["architecture"]
    assert info["kwargs"] == record["kwargs"]
    assert record["recipe"] == ENCODERS[name], "the recipe changed since the checkpoint was trained"
    assert info["metadata"]["val_accuracy"] == record["val_accuracy"]
    assert sum(p.numel() for p in model.parameters()) == record["params"]


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_shipped_encoder_reaches_its_recorded_accuracy(name):
    _, record = _record(name)
    world = ToyKitchens(**record["recipe"]["world"])
    assert world.cache_key() == record["world_cache_key"], (
        "the ToyKitchens generator changed since the checkpoint was trained: rerun scripts/train_checkpoints.py"
    )
    x, y = world.clips("val", frames=record["recipe"]["frames"]).tensors()
    target = record["target"]
    model = load_encoder(name, device="cpu")
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
    assert abs(got["accuracy"] - record["clip_accuracy"]["val"]["action"]) <= 1.0 / n + 1e-9
    chance = 1.0 / world.num_classes[target]
    assert record["val_accuracy"] > 10 * chance, "the recorded encoder is not much better than chance"


def test_temporal_encoder_has_time_in_it():
    """The point of the temporal encoder: recognise the actions whose frames a single-frame
    model cannot tell apart (the reversal pairs), on the held-out kitchens too."""
    frame, temporal = (_record(n)[1]["clip_accuracy"] for n in (FRAME_ENCODER, TEMPORAL_ENCODER))
    for split in ("val", "test"):      # the verb: the frame CNN is near "half of each pair right"
        assert temporal[split]["verb"] > frame[split]["verb"] + 0.25, (split, temporal[split], frame[split])
        assert temporal[split]["action"] > frame[split]["action"] + 0.25, (split, temporal[split], frame[split])


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
    encoder = load_encoder(device="cpu")
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


def test_temporal_features_are_causal_and_equal_streaming(tmp_path, monkeypatch, small_world):
    monkeypatch.setenv("LECTUREKIT_CACHE", str(tmp_path))
    table = video_features(small_world, TEMPORAL_ENCODER, device="cpu")
    cached = features_cache_path(small_world, checkpoint_path(TEMPORAL_ENCODER), TEMPORAL_ENCODER)
    assert cached.is_file() and TEMPORAL_ENCODER in cached.name
    video = torch.from_numpy(small_world.long_video(0)).permute(3, 0, 1, 2)      # (C, T, H, W)
    feats = table[small_world.video_ids[0]]
    encoder = load_encoder(TEMPORAL_ENCODER, device="cpu")
    t = 20
    # frame t's feature from the frames up to t only: the same number, the future cut off
    prefix = encode_frames(encoder, video[:, : t + 1], temporal=True, device="cpu")
    torch.testing.assert_close(prefix[t], feats[t], atol=1e-5, rtol=1e-4)
    # ... and changing a later frame changes nothing before it
    changed = video.clone()
    changed[:, t + 1 :] = 255 - changed[:, t + 1 :]
    after = encode_frames(encoder, changed, temporal=True, device="cpu")
    torch.testing.assert_close(after[: t + 1], feats[: t + 1], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(after[t + 1 :], feats[t + 1 :])
    # time is in it: the same frames alone (no past) give another feature
    alone = encode_frames(encoder, video[:, :8], device="cpu")
    assert not torch.allclose(alone[1:], feats[1:8], atol=1e-3)


def test_offline_shift_is_refused_as_a_temporal_encoder():
    from lecturekit.models import build_model

    offline = build_model("tsm", preset="small", num_classes=3)
    with pytest.raises(ValueError, match="causal"):
        encode_frames(offline, torch.zeros(3, 4, 32, 32), temporal=True, device="cpu")


def test_unknown_encoder_name_is_explained():
    with pytest.raises(ValueError, match="unknown encoder"):
        load_encoder("toykitchens_c3d", device="cpu")


def test_encode_frames_shapes_and_errors():
    encoder = load_encoder(device="cpu")
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
        load_encoder(TEMPORAL_ENCODER, device="cpu")
    tiny = {**features.ENCODERS[TEMPORAL_ENCODER], "world": SMALL_WORLD, "epochs": 1}
    monkeypatch.setitem(features.ENCODERS, TEMPORAL_ENCODER, tiny)
    model = load_encoder(TEMPORAL_ENCODER, device="cpu", retrain=True)
    saved = tmp_path / "cache" / "checkpoints" / f"{TEMPORAL_ENCODER}.pt"
    assert saved.is_file() and checkpoint_path(TEMPORAL_ENCODER) == saved
    reloaded = load_encoder(TEMPORAL_ENCODER, device="cpu")
    x = torch.rand(2, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), reloaded(x))


def test_reversed_pair_copies_are_the_partner_actions(small_world):
    from lecturekit.features import reversed_pair_copies

    view = small_world.clips("train", frames=6)
    x, y = view.tensors()
    x_rev, a_rev = reversed_pair_copies(small_world, x, y["action"])
    table = small_world.actions_table
    partner = {}
    for a, b in small_world.reversal_pairs:
        partner[small_world.verbs.index(a)], partner[small_world.verbs.index(b)] = (
            small_world.verbs.index(b), small_world.verbs.index(a))
    vocab = {(int(v), int(n)): a for a, (v, n) in enumerate(table)}
    expected = []                                      # (row, partner action), in row order
    for i, a in enumerate(y["action"].tolist()):
        verb, noun = (int(v) for v in table[a])
        if verb in partner and (partner[verb], noun) in vocab:
            expected.append((i, vocab[(partner[verb], noun)]))
    assert len(expected) > 0 and a_rev.tolist() == [a for _, a in expected]
    for j, (i, _) in enumerate(expected):
        assert torch.equal(x_rev[j], x[i].flip(1))                                  # played backwards


def test_view_maps_average_to_the_view_features(tmp_path, monkeypatch, small_world):
    """HORST's maps and the other models' vectors are one encoder's output: the spatial mean
    of a frame's pooled maps is its feature vector (both are means of the last stage)."""
    from lecturekit.features import view_maps

    monkeypatch.setenv("LECTUREKIT_CACHE", str(tmp_path))
    view = small_world.anticipation("test")
    view.frame_index[0, :2] = -1                                    # before the video: black
    maps = view_maps(view, device="cpu")                            # (N, C, T, h, w)
    feats = view_features(view, video_features(small_world, TEMPORAL_ENCODER, device="cpu"))
    assert maps.shape == (len(view), 64, view.frames, 4, 4)
    torch.testing.assert_close(maps.mean((-2, -1)).transpose(1, 2), feats, atol=1e-5, rtol=1e-4)
    pooled = view_maps(view, pool=2, device="cpu")
    assert pooled.shape == (len(view), 64, view.frames, 2, 2)
    torch.testing.assert_close(pooled.mean((-2, -1)), maps.mean((-2, -1)), atol=1e-5, rtol=1e-4)
    with pytest.raises(TypeError, match="forward_maps"):
        view_maps(view, encoder=torch.nn.Linear(2, 2), device="cpu")
