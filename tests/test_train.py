"""The training loop and evaluation of lecturekit.train, and the checkpoint file of lecturekit.checkpoint.

The data are small synthetic video datasets in the ToyKitchens item convention
(uint8 video (C, T, H, W), labels dict with "verb", "noun", "action") whose labels are decodable
from the pixels, so a working loop must beat chance clearly and a broken one cannot.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from lecturekit.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lecturekit.models import MODELS, ModelEntry
from lecturekit.train import (
    Callback,
    History,
    evaluate,
    fit,
    predict,
    seed_everything,
)

NUM_VERBS = 4


class QuadrantVideos(Dataset):
    """Item i: a uint8 clip (3, 4, 8, 8) of noise in which a bright square moves inside quadrant
    ``verb``; ``noun`` is the colour channel of the square. Deterministic per (seed, i)."""

    def __init__(self, n: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.verb = torch.randint(0, NUM_VERBS, (n,), generator=g)
        self.noun = torch.randint(0, 3, (n,), generator=g)
        video = torch.randint(0, 90, (n, 3, 4, 8, 8), generator=g, dtype=torch.uint8)
        for i in range(n):
            r, c = divmod(int(self.verb[i]), 2)
            for t in range(4):
                y, x = 4 * r + (t % 3), 4 * c + (t % 2)
                video[i, int(self.noun[i]), t, y : y + 2, x : x + 2] = 255
        self.video = video

    def __len__(self) -> int:
        return len(self.verb)

    def __getitem__(self, i):
        labels = {"verb": int(self.verb[i]), "noun": int(self.noun[i]),
                  "action": int(self.verb[i]) * 3 + int(self.noun[i])}
        return self.video[i], labels


class TinyNet(nn.Module):
    """Conv3d -> global pool -> linear; logits (B, num_classes)."""

    def __init__(self, num_classes: int = NUM_VERBS, width: int = 8, dropout: float = 0.1):
        super().__init__()
        self.conv = nn.Conv3d(3, width, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(width)  # buffers, including a 0-d counter, must round-trip too
        self.pool = nn.AdaptiveAvgPool3d((1, 2, 2))
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(width * 4, num_classes)

    def forward(self, x):  # (B, C, T, H, W) float
        if x.dtype == torch.uint8:
            raise AssertionError("the loop must convert uint8 to float before the model")
        return self.head(self.drop(self.pool(torch.relu(self.norm(self.conv(x)))).flatten(1)))


@pytest.fixture(scope="module")
def data():
    return QuadrantVideos(160, seed=1), QuadrantVideos(80, seed=2)


def _train(data, **kw):
    seed_everything(0)
    model = TinyNet()
    kw = {"epochs": 3, "batch_size": 16, "lr": 1e-2, "target": "verb", "device": "cpu", "progress": False, **kw}
    return model, fit(model, data[0], data[1], **kw)


def test_fit_beats_chance_on_dict_labelled_videos(data):
    model, history = _train(data, epochs=6)
    chance = 1.0 / NUM_VERBS
    assert len(history) == 6
    assert history["val_accuracy"][-1] >= 0.9, history["val_accuracy"]
    assert history["val_accuracy"][-1] > chance + 0.5
    assert history["train_loss"][-1] < history["train_loss"][0]
    # evaluate() agrees with an independent count from predict()
    logits, labels = predict(model, data[1], target="verb", device="cpu", return_labels=True)
    manual = (logits.argmax(1) == labels).float().mean().item()
    assert evaluate(model, data[1], target="verb", device="cpu")["accuracy"] == pytest.approx(manual)
    assert labels.tolist() == data[1].verb.tolist()


def test_fit_on_tensor_tuples_and_steps_mode():
    seed_everything(0)
    x = torch.randn(256, 6)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 4))
    history = fit(model, (x[:192], y[:192]), (x[192:], y[192:]), steps=60, eval_every=20, batch_size=32,
                  lr=1e-2, device="cpu", progress=False, metrics=["accuracy", "top5"], scheduler="cosine")
    assert [r["step"] for r in history.records] == [20, 40, 60]
    assert len(history.step_loss) == 60
    assert history["val_accuracy"][-1] > 0.75
    assert history["val_top5"][-1] == 1.0  # 4 classes: top-5 always hits
    assert history.records[-1]["lr"] < 1e-4  # cosine schedule reached its end


def test_same_seed_gives_same_history_twice_on_cpu(data):
    _, h1 = _train(data)
    _, h2 = _train(data)
    assert h1.records == h2.records
    assert h1.step_loss == h2.step_loss
    _, h3 = _train(data, seed=1)  # another shuffling seed changes the run
    assert h3.step_loss != h1.step_loss


def test_resume_continues_exactly(tmp_path, data):
    _, full = _train(data, epochs=4)
    ckpt = tmp_path / "run.pt"
    _train(data, epochs=2, checkpoint=ckpt)
    seed_everything(123)  # a different model init: resume must overwrite it
    model = TinyNet()
    resumed = fit(model, data[0], data[1], epochs=4, batch_size=16, lr=1e-2, target="verb", device="cpu",
                  progress=False, resume=ckpt)
    assert len(resumed) == 4
    assert resumed.records == full.records
    assert resumed.step_loss == full.step_loss


def test_uint8_becomes_float_in_unit_range():
    seen = {}

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, x):
            seen["dtype"], seen["max"] = x.dtype, x.max().item()
            return self.lin(x.mean(dim=(2, 3, 4)))

    video = torch.full((4, 2, 1, 1, 1), 255, dtype=torch.uint8)
    predict(Probe(), video, device="cpu")
    assert seen["dtype"] == torch.float32 and seen["max"] == 1.0


def test_label_dicts_need_a_target(data):
    model = TinyNet()
    with pytest.raises(ValueError, match=r"target=.*verb"):
        fit(model, data[0], epochs=1, device="cpu", progress=False)
    with pytest.raises(KeyError, match="kitchen"):
        fit(model, data[0], epochs=1, device="cpu", progress=False, target="kitchen")
    with pytest.raises(ValueError, match="exactly one of epochs= or steps="):
        fit(model, data[0], epochs=1, steps=3, device="cpu", target="verb")
    with pytest.raises(ValueError, match="same first dimension"):
        fit(model, (torch.zeros(4, 3), torch.zeros(5)), epochs=1, device="cpu")


def test_amp_bf16_runs_on_cpu(data):
    seen = []

    class Spy(Callback):
        def on_step_end(self, state):
            seen.append(state.last_loss)

    class AutocastProbe(TinyNet):
        def forward(self, x):
            seen_dtypes.add(self.head(torch.zeros(1, self.head.in_features)).dtype)
            return super().forward(x)

    seen_dtypes: set = set()
    seed_everything(0)
    model = AutocastProbe()
    history = fit(model, data[0], data[1], epochs=2, batch_size=16, lr=1e-2, target="verb", device="cpu",
                  amp=True, grad_clip=1.0, progress=False, callbacks=[Spy()])
    assert seen_dtypes == {torch.bfloat16}, "the forward pass ran outside bf16 autocast"
    assert len(seen) == len(history.step_loss) and all(torch.isfinite(torch.tensor(seen)))
    assert history["val_accuracy"][-1] > 1.0 / NUM_VERBS + 0.2
    with pytest.raises(ValueError, match="bf16 only"):
        fit(model, data[0], epochs=1, target="verb", device="cpu", amp="fp16", progress=False)


def test_callback_can_stop_training(data):
    class StopAfterTwo(Callback):
        def on_eval_end(self, state):
            state.stop = len(state.history) >= 2

    _, history = _train(data, epochs=5, callbacks=[StopAfterTwo()])
    assert len(history) == 2


# --------------------------------------------------------------------------- checkpoints
@pytest.fixture()
def registered(monkeypatch):
    monkeypatch.setitem(MODELS, "tiny_test_net", ModelEntry(TinyNet, {}, "test model"))
    return "tiny_test_net"


def _x():
    return torch.rand(5, 3, 4, 8, 8)


def test_checkpoint_round_trip_identical_outputs(tmp_path, registered):
    seed_everything(0)
    model = TinyNet(num_classes=5, width=6).eval()
    path = save_checkpoint(model, tmp_path / "m.pt", architecture=registered,
                           kwargs={"num_classes": 5, "width": 6}, metadata={"val_accuracy": 0.5, "tags": ["a"]})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"], "no temporary file left behind"
    x = _x()
    rebuilt, info = load_checkpoint(path, device="cpu", with_info=True)  # rebuilt from the stored name + kwargs
    assert type(rebuilt) is TinyNet and not rebuilt.training
    assert torch.equal(rebuilt(x), model(x))
    assert info["architecture"] == registered and info["metadata"] == {"val_accuracy": 0.5, "tags": ["a"]}
    other = TinyNet(num_classes=5, width=6)
    load_checkpoint(path, other, device="cpu")
    assert torch.equal(other(x), model(x))


def test_checkpoint_refuses_other_architecture_and_shapes(tmp_path, registered):
    path = save_checkpoint(TinyNet(num_classes=5), tmp_path / "m.pt", architecture=registered, kwargs={"num_classes": 5})
    with pytest.raises(CheckpointError, match=r"architecture 'tiny_test_net', not 'c3d'"):
        load_checkpoint(path, architecture="c3d")
    with pytest.raises(CheckpointError, match=r"head\.weight: model \(3, 32\) vs checkpoint \(5, 32\)"):
        load_checkpoint(path, TinyNet(num_classes=3))

    class Other(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

    with pytest.raises(CheckpointError, match=r"architecture 'tiny_test_net', not '.*Other'"):
        load_checkpoint(path, Other())


def test_checkpoint_detects_tampering(tmp_path, registered):
    path = save_checkpoint(TinyNet(), tmp_path / "m.pt", architecture=registered)
    # 1. weights changed after saving, digest left as it was
    ck = torch.load(path, weights_only=True)
    ck["state_dict"]["head.bias"] += 1.0
    torch.save(ck, tmp_path / "edited.pt")
    with pytest.raises(CheckpointError, match="altered"):
        load_checkpoint(tmp_path / "edited.pt", TinyNet())
    # 2. bytes flipped inside the file / 3. a truncated file
    raw = bytearray(path.read_bytes())
    for i in range(len(raw) // 2, len(raw) // 2 + 64):
        raw[i] ^= 0xFF
    (tmp_path / "flipped.pt").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "flipped.pt", TinyNet())
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "cut.pt", TinyNet())
    # 4. a plain state_dict is not a lecturekit checkpoint
    torch.save(TinyNet().state_dict(), tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a lecturekit checkpoint"):
        load_checkpoint(tmp_path / "plain.pt", TinyNet())


class Payload:
    """Unpickling this object would run code (it creates a marker file)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_checkpoint_with_pickled_object_is_refused_without_running_it(tmp_path, registered):
    marker = tmp_path / "code_ran"
    path = save_checkpoint(TinyNet(), tmp_path / "m.pt", architecture=registered)
    ck = torch.load(path, weights_only=True)
    ck["metadata"] = {"note": Payload(marker)}
    torch.save(ck, tmp_path / "evil.pt")
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_checkpoint(tmp_path / "evil.pt", TinyNet())
    assert not marker.exists(), "loading executed code from the checkpoint"
    # the check is real: an unrestricted unpickler would have run it
    with (tmp_path / "evil.pt").open("rb"):
        torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.exists()


def test_save_refuses_non_plain_metadata_and_is_atomic(tmp_path, registered, monkeypatch):
    with pytest.raises(TypeError, match="plain data"):
        save_checkpoint(TinyNet(), tmp_path / "m.pt", architecture=registered, metadata={"obj": object()})
    good = save_checkpoint(TinyNet(), tmp_path / "m.pt", architecture=registered, metadata={"v": 1})
    before = good.read_bytes()

    def failing_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(TinyNet(), good, architecture=registered, metadata={"v": 2})
    assert good.read_bytes() == before, "a failed save must leave the old checkpoint intact"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_builtin_accuracy_is_the_metrics_top_k_in_float32(data):
    """fit's "accuracy"/"top5" are lecturekit.metrics' top-k hits (official tie rule), averaged
    as a float32 mask: 7 hits of 30 give float32(7/30), not the float64 quotient."""
    from lecturekit.metrics import topk_hits
    from lecturekit.train import _resolve_metrics

    fns = _resolve_metrics(["accuracy", "top5"])
    scores = torch.randn(30, 6, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 6, (30,), generator=torch.Generator().manual_seed(1))
    for name, k in (("accuracy", 1), ("top5", 5)):
        hits = topk_hits(scores, labels, k)
        assert fns[name](scores, labels) == torch.tensor(hits.sum() / 30, dtype=torch.float32).item()
    tied = torch.zeros(2, 4)                                # every class tied: the highest id ranks first
    assert fns["accuracy"](tied, torch.tensor([3, 0])) == 0.5
    with pytest.raises(ValueError, match=r"expects \(N, K\) scores"):
        fns["accuracy"](torch.zeros(2, 3, 4), torch.zeros(2, dtype=torch.long))


def test_checkpoint_module_stands_below_train():
    """lecturekit.checkpoint imports nothing of the training loop (train imports it)."""
    import ast
    import lecturekit.checkpoint as ck

    tree = ast.parse(Path(ck.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "train" not in imported and not any(m.endswith(".train") for m in imported), imported


def test_checkpoint_without_architecture_is_named_by_class(tmp_path, registered):
    """No hidden attribute: the name comes from the argument or from the model table by class."""
    model = TinyNet(num_classes=4)
    model.build_spec = {"name": "c3d", "kwargs": {"num_classes": 99}}   # an attribute is ignored
    path = save_checkpoint(model, tmp_path / "m.pt")
    rebuilt, info = load_checkpoint(path, device="cpu", with_info=True)
    assert info["architecture"] == registered and info["kwargs"] == {} and type(rebuilt) is TinyNet
    assert info["history"] is None
    path = save_checkpoint(model, tmp_path / "n.pt", architecture=registered, kwargs={"num_classes": 4})
    rebuilt = load_checkpoint(path, device="cpu")                     # build_model(name, **kwargs)
    assert rebuilt.head.out_features == 4
    with pytest.raises(CheckpointError, match=r"architecture 'tiny_test_net', not 'c3d'"):
        load_checkpoint(path, device="cpu", architecture="c3d")


def test_checkpoint_of_a_fixed_variant_loads_into_its_class(tmp_path, registered, monkeypatch):
    """A variant registered with fixed arguments (like tsm_online) shares its class: a model of
    that class accepts the checkpoint, a model of another class does not."""
    monkeypatch.setitem(MODELS, "tiny_test_net_wide", ModelEntry(TinyNet, {"width": 8}, "variant"))
    path = save_checkpoint(TinyNet(), tmp_path / "m.pt", architecture="tiny_test_net_wide", kwargs={})
    load_checkpoint(path, TinyNet(), device="cpu")
    with pytest.raises(CheckpointError, match=r"architecture 'tiny_test_net_wide', not 'torch.nn.modules.linear.Linear'"):
        load_checkpoint(path, nn.Linear(2, 2), device="cpu")


def test_training_checkpoint_stores_plain_history(tmp_path, data, registered):
    ckpt = tmp_path / "run.pt"
    _, history = _train(data, epochs=2, checkpoint=ckpt, checkpoint_meta={"kwargs": {}, "note": "x"})
    _, info = load_checkpoint(ckpt, device="cpu", with_info=True)
    assert info["architecture"] == registered and info["metadata"] == {"note": "x"}
    assert History.from_dict(info["history"]) == history
    with pytest.raises(CheckpointError, match="no optimizer state"):
        fit(TinyNet(), data[0], epochs=3, batch_size=16, target="verb", device="cpu", progress=False,
            resume=save_checkpoint(TinyNet(), tmp_path / "bare.pt"))


def test_history_helpers():
    h = History(records=[{"epoch": 1, "train_loss": 2.0, "val_loss": 1.5, "val_accuracy": 0.4},
                         {"epoch": 2, "train_loss": 1.0, "val_loss": 1.7, "val_accuracy": 0.6}])
    assert h["val_accuracy"] == [0.4, 0.6]
    assert h.best("val_loss")["epoch"] == 1 and h.best("val_accuracy")["epoch"] == 2
    assert h.metric_names() == ["accuracy"]
    assert History.from_dict(h.to_dict()) == h
    with pytest.raises(KeyError, match="columns"):
        h["val_top5"]
    from lecturekit.viz import plot_history

    fig = plot_history(h)
    assert len(fig.axes) == 2
    assert not hasattr(h, "plot"), "drawing lives in lecturekit.viz, not in the training loop"
    assert pickle.loads(pickle.dumps(h)) == h
    assert "matplotlib.pyplot" not in sys.modules or not __import__("matplotlib.pyplot").pyplot.get_fignums()


@pytest.mark.slow
def test_fit_on_a_toykitchens_view_beats_chance():
    """The real item convention end to end: a ToyKitchens view (uint8 clips, label dicts) goes
    straight into fit/evaluate; the course's frame CNN learns nouns far above chance."""
    from lecturekit.data.toykitchens import ToyKitchens
    from lecturekit.models import build_model

    world = ToyKitchens(seed=0, num_kitchens=6, unseen_kitchens=1, videos_per_kitchen=2)
    train, val = world.clips("train", frames=4), world.clips("val", frames=4)
    seed_everything(0)
    model = build_model("frame_cnn", num_classes=world.num_classes["noun"], widths=(8, 16, 32))
    history = fit(model, train, val, target="noun", epochs=6, batch_size=16, lr=3e-3, device="cpu", progress=False)
    chance = 1.0 / world.num_classes["noun"]
    assert history["val_accuracy"][-1] > 3 * chance, history["val_accuracy"]
    assert evaluate(model, val, target="noun", device="cpu")["accuracy"] == pytest.approx(history["val_accuracy"][-1])
