"""The paper recipes' dry runs on a small EK-100-shaped set written here (annotation CSVs + LMDB).

``python -m lecturekit.recipes <model> --dry-run`` trains the small preset for a few steps and
must leave everything a real run leaves: last/best checkpoints that load with weights_only, a
log, EK-100 scores, and submissions that pass the official format check (97 verbs, 300 nouns,
100 actions per segment). One recipe runs as a subprocess (as CI and users call it), one under
torchrun with 2 Gloo processes, the others in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

if os.environ.get("LECTUREKIT_CI") != "1":
    pytest.importorskip("lmdb")

from lecturekit.data import EpicKitchens  # noqa: E402
from lecturekit.data.lmdb_features import write_example_features  # noqa: E402
from lecturekit.metrics import read_submission, validate_submission  # noqa: E402
from lecturekit.recipes import RECIPES, main  # noqa: E402
from lecturekit.checkpoint import load_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_example_features(tmp_path_factory.mktemp("ek_small"), width=16, seed=0)


def _args(kind, data, out, *extra):
    return [kind, "--features", str(data["features"]), "--width", "16", "--annotations", str(data["annotations"]),
            "--out", str(out), "--device", "cpu", "--dry-run", *extra]


def _check_outputs(kind, data, out: Path, records: int):
    for name in ("last.pt", "best.pt", "train.log", "log.jsonl", "metrics.json", "validation.json", "test.json"):
        assert (out / name).is_file(), f"{kind}: {name} missing"
    model, info = load_checkpoint(out / "last.pt", device="cpu", with_info=True)   # rebuilt by name, weights_only
    assert info["architecture"] == RECIPES[kind].model and info["metadata"]["recipe"] == kind
    assert info["kwargs"] == {"preset": "small", "feat_in": 16, "num_classes": 120}
    assert len(info["history"]["records"]) == records
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(log) == records and all("val_action_mt5r" in r for r in log)
    for split, name in (("validation", "validation.json"), ("test", "test.json")):
        ids = [s["narration_id"] for s in EpicKitchens(data["annotations"], split).segments]
        validate_submission(read_submission(out / name), ids)      # official sizes: raises if not accepted
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["validation"]) == {"overall", "unseen", "tail"}
    assert 0.0 <= metrics["validation"]["overall"]["verb"] <= 1.0


def test_dry_run_as_a_subprocess(data, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("WORLD_SIZE", None)
    out = tmp_path / "aga"
    proc = subprocess.run([sys.executable, "-m", "lecturekit.recipes", *_args("aga", data, out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "wrote" in proc.stdout and "aga preset=small" in proc.stdout
    _check_outputs("aga", data, out, records=3)


@pytest.mark.parametrize("kind", ["rulstm", "avt"])
def test_dry_run_in_process(kind, data, tmp_path):
    assert main(_args(kind, data, tmp_path / kind)) == 0
    _check_outputs(kind, data, tmp_path / kind, records=3)


def test_resumed_recipe_ends_where_an_uninterrupted_one_does(data, tmp_path):
    torch.set_num_threads(1)
    assert main(_args("rulstm", data, tmp_path / "full", "--steps", "4")) == 0
    assert main(_args("rulstm", data, tmp_path / "cut", "--steps", "2")) == 0
    assert main(_args("rulstm", data, tmp_path / "cut", "--steps", "4", "--resume")) == 0
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 4
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert a["history"]["step_loss"] == b["history"]["step_loss"]


def test_dry_run_under_torchrun_with_two_processes(data, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("WORLD_SIZE", None)
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           "lecturekit.recipes", *_args("rulstm", data, out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert proc.stdout.count("recipe rulstm") == 1                    # rank 0 logs, rank 1 does not
    _check_outputs("rulstm", data, out, records=3)


def test_unsupported_models_and_missing_sls_say_why(data, tmp_path, capsys):
    assert main(["horst"]) == 2
    assert "spatial feature maps" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--sls PT TL TD is required"):
        main([a for a in _args("aga", data, tmp_path / "x") if a != "--dry-run"])
    with pytest.raises(SystemExit, match="one value per --features"):
        main(_args("aga", data, tmp_path / "x", "--width", "16", "16"))


def test_objectives_are_the_papers_losses():
    import torch.nn.functional as F

    from lecturekit.losses import dense_next_step_loss
    from lecturekit.models.avt import avt_losses
    from lecturekit.recipes import build_recipe_model

    torch.manual_seed(0)
    k = 12
    # RU-LSTM: CE averaged over the 8 anticipation steps; eval output = step -4 (1 s)
    m, name, _ = build_recipe_model("rulstm", "small", feat_in=16, num_classes=k)
    x, y = torch.randn(3, 14, 16), torch.randint(0, k, (3, 15))
    m.train()
    torch.manual_seed(1)
    got = m.loss(m(x), y)
    torch.manual_seed(1)
    full = m.net(x)
    want = F.cross_entropy(full[:, -8:].reshape(-1, k), y[:, -1].repeat_interleave(8))
    assert name == "rulstm" and torch.allclose(got, want)
    m.eval()
    assert torch.equal(m(x), m.net(x)[:, -4])
    # AVT: future CE + past CE (per-step actions, -1 ignored) + next-feature MSE
    m, _, _ = build_recipe_model("avt", "small", feat_in=16, num_classes=k)
    x, y = torch.randn(3, 10, 16), torch.randint(0, k, (3, 11))
    y[0, 2] = -1
    m.train()
    torch.manual_seed(2)
    got = m.loss(m(x), y)
    torch.manual_seed(2)
    want = avt_losses(m.net.forward_all(x), x, y[:, -1], y[:, :-1])["total"]
    assert torch.allclose(got, want, atol=1e-6)
    # AGA: dense next-step CE with the class weights
    w = torch.rand(k) + 0.5
    m, _, _ = build_recipe_model("aga", "small", feat_in=16, num_classes=k, class_weight=w)
    x, y = torch.randn(3, 8, 16), torch.randint(-1, k, (3, 9))
    m.train()
    torch.manual_seed(3)
    got = m.loss(m(x), y)
    torch.manual_seed(3)
    want = dense_next_step_loss(m.net(x), y, weight=w)
    assert torch.allclose(got, want)
    m.eval()
    assert torch.equal(m(x), m.net(x)[:, -1])
    # a checkpoint of the recipe model is the bare model's
    assert set(m.state_dict()) == set(m.net.state_dict())


def test_a_wrong_width_or_database_stops_before_training(data, tmp_path, capsys):
    args = _args("rulstm", data, tmp_path / "w")
    args[args.index("--width") + 1] = "1024"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "expected 1024 float32 values (4096 bytes), got 64 bytes (16 float32 values)" in err
    assert not (tmp_path / "w" / "last.pt").exists()
    args = _args("rulstm", data, tmp_path / "m")
    args[args.index("--features") + 1] = str(tmp_path / "nowhere")
    assert main(args) == 2
    assert "expected an LMDB folder containing data.mdb" in capsys.readouterr().err
