"""fit under torchrun: 2 CPU processes with Gloo against one process with the same global batch.

One launch of ``python -m torch.distributed.run --standalone --nproc_per_node=2`` (standalone:
a free port is picked on localhost) runs tests/ddp_fit_worker.py, which trains the model below
(a) for 3 epochs and (b) for 1 epoch with a checkpoint, resumed to 3. Here the same model is
trained in this process. Data-parallel SGD with the global batch split over the two processes
and the gradients averaged computes the same updates; only the order of floating-point sums
differs: measured, weights agree to 2.4e-7 and step losses to 1.2e-7 (tolerance 1e-5; differences printed
on failure). The run moves the weights by up to 1.2, so a split that feeds other samples to a
step, or a gradient that is summed instead of averaged, cannot stay inside the tolerance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from lecturekit.checkpoint import load_checkpoint
from lecturekit.train import fit, seed_everything

HERE = Path(__file__).parent
SETTINGS = dict(epochs=3, batch_size=16, optimizer="sgd", lr=0.2, device="cpu", seed=3, progress=False,
                metrics=("accuracy",))
TOL = 1e-5


def make_data():
    g = torch.Generator().manual_seed(11)
    x = torch.randn(96, 6, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 0.5).long()           # 3 classes
    return x, y


def make_model() -> nn.Module:
    seed_everything(5)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(HERE / "ddp_fit_worker.py"), str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, f"torchrun failed ({seconds:.0f} s):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads((out / "result.json").read_text()), out


def _flat(weights) -> torch.Tensor:
    return torch.cat([torch.tensor(w, dtype=torch.float64) for w in weights])


def test_two_gloo_processes_equal_one_process_with_the_same_global_batch(two_process_run):
    res, _ = two_process_run
    assert [r["world"] for r in res["ranks"]] == [2, 2] and {r["backend"] for r in res["ranks"]} == {"gloo"}
    x, y = make_data()
    single = make_model()
    h = fit(single, (x, y), (x, y), **SETTINGS, distributed=False)
    w1 = torch.cat([p.detach().reshape(-1).double() for p in single.parameters()])
    w2 = _flat(res["full"]["weights"])
    assert len(res["full"]["step_loss"]) == len(h.step_loss) == 3 * 96 // 16
    diff = (w1 - w2).abs().max().item()
    assert diff < TOL, f"weights differ by {diff:.2e} between 2 processes and 1"
    loss_diff = max(abs(a - b) for a, b in zip(h.step_loss, res["full"]["step_loss"]))
    assert loss_diff < TOL, f"step losses differ by {loss_diff:.2e}"
    assert abs(h.last["val_loss"] - res["full"]["records"][-1]["val_loss"]) < TOL
    # the run moved the weights far more than the tolerance (the comparison can fail)
    assert (w1 - torch.cat([p.detach().reshape(-1).double() for p in make_model().parameters()])).abs().max() > 1e-2
    # every rank ends with the same weights and the same (averaged) losses
    r0, r1 = res["ranks"]
    assert _flat(r0["weights"]).equal(_flat(r1["weights"])) and r0["step_loss"] == r1["step_loss"]


def test_two_process_resume_continues_the_run(two_process_run):
    res, out = two_process_run
    full, resumed = res["full"], res["resumed"]
    assert resumed["records"] == full["records"]
    assert _flat(resumed["weights"]).equal(_flat(full["weights"]))
    # rank 0 wrote one checkpoint, with every rank's RNG state; it loads with weights_only=True
    ck = torch.load(out / "resume.pt", weights_only=True)
    assert len(ck["rng_torch_ranks"]) == 2 and ck["epoch"] == 3
    model = load_checkpoint(out / "resume.pt", make_model(), device="cpu")
    assert _flat([p.detach().reshape(-1).tolist() for p in model.parameters()]).equal(_flat(full["weights"]))


def test_distributed_true_without_torchrun_says_how_to_launch(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    x, y = make_data()
    with pytest.raises(RuntimeError, match="torchrun --nproc_per_node"):
        fit(make_model(), (x, y), epochs=1, device="cpu", distributed=True, progress=False)
