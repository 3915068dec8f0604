"""Paper-size recipes: RU-LSTM, AVT-h and AGA on RU-LSTM's EPIC-KITCHENS-100 features.

One command per model trains the paper configuration with the paper's schedule on the published
LMDB features, keeps the best checkpoint by validation action mean top-5 recall at tau_a = 1 s,
and writes the EK-100 scores and a submission JSON that passes the official format check::

    python -m lecturekit.recipes rulstm --features data/ek100/rgb --annotations epic-kitchens-100-annotations --out runs/rulstm
    torchrun --standalone --nproc_per_node=8 -m lecturekit.recipes aga --features ... --annotations ... --out runs/aga

``--dry-run`` does the same with the CPU-sized ``small`` preset for a few optimizer steps (CI
runs it on a small database written by :func:`lecturekit.data.lmdb_features.write_example_features`;
``python -m lecturekit.recipes example DIR`` writes one). ``throughput`` measures training
samples/s of the paper presets.

Which models, and why
    ============  =====================================================================  ==========
    recipe        model (``build_model(name, "paper")``) and schedule                    input
    ============  =====================================================================  ==========
    ``rulstm``    ``rulstm`` (one branch; RU-LSTM ``main.py`` / ``train_anticipation_     14 steps,
                  ek100.sh``): SGD lr 0.01, momentum 0.9, batch 128, 100 epochs; loss:    0.25 s,
                  cross-entropy averaged over the 8 anticipation steps (2 s .. 0.25 s      3.5 s to
                  before the action); the scored 1 s output is step -4, which the         0.25 s
                  causal rolling LSTM computes from frames up to 1 s before the action.    before ``--sequence-completion`` builds ``rulstm_sci`` (RU-LSTM's
                  SCI pre-training); ``--init`` starts from its checkpoint.
    ``avt``       ``avt_head`` (AVT-h on TSN features; AVT ``expts/02_ek100_avt_tsn``):  10 steps,
                  SGD + Nesterov lr 1e-3, weight decay 1e-6, batch 64, 50 epochs,        1 s
                  cosine after 20 warm-up epochs; loss: future CE + past CE (the action
                  in progress at each observed step) + next-feature MSE, weights 1, 1.
    ``aga``       ``aga`` (AGA released ``train.py``): AdamW lr 2e-4, weight decay 1e-2,  30 steps,
                  cosine, batch 128, 50 epochs, AMP; loss: dense next-step CE with       1 s
                  class weights 1/sqrt(n+1) (``lecturekit.losses.dense_next_step_loss``).
    ============  =====================================================================  ==========

HORST has no recipe: it reads spatial feature maps (B, C, T, H, W) and RU-LSTM's features are
one pooled vector per frame, so it cannot run on them (its EK-100 numbers come from Swin-B /
ConvNeXt maps, which are not published). The fusion of three RU-LSTM branches is not a recipe
either (train the rgb, flow and obj branches with ``--features`` of each, then fuse with
``lecturekit.models.RULSTMFusion``).

Every recipe is scored at the official tau_a = 1 s, with the observation rule of
:func:`lecturekit.data.anticipation_indices` (no frame at or after the cut). AVT's and AGA's
windows end 1 s before the action; RU-LSTM's ends 0.25 s before it, as in RU-LSTM, and its step
-4 is scored, which depends on frames up to 1 s before the action only (a sample with no such
frame is too early and scored on zeros). Multi-GPU: launch with ``torchrun``;
:func:`lecturekit.train.fit` runs DistributedDataParallel with the same global batch. Checkpoints
(``last.pt`` every epoch, ``best.pt``) are read with ``torch.load(weights_only=True)``;
``--resume`` continues from ``last.pt``.

Verb and noun scores come from marginalising the softmaxed action scores (RU-LSTM's rule).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .env import machine_info
from .data.lmdb_features import (
    RULSTM_FRAME_RATE,
    EpicFeatures,
    FeatureKeyError,
    FeatureWidthError,
    LMDBFeatures,
    write_example_features,
)
from .losses import dense_next_step_loss, inverse_sqrt_class_weights
from .metrics import epic_subsets, make_submission, marginalize, mean_topk_recall, validate_submission, write_submission
from .models import build_model
from .checkpoint import load_checkpoint, save_checkpoint
from .train import Callback, fit, predict, seed_everything

__all__ = ["RECIPES", "Recipe", "RecipeModel", "build_recipe_model", "main", "run_recipe", "throughput"]


@dataclass(frozen=True)
class Recipe:
    """A model with the paper's input windows and schedule."""

    model: str              # name in lecturekit.models
    steps: int              # observed samples per window
    tau_o: float            # observation length (s); samples tau_o / steps apart
    optimizer: str          # "sgd", "sgd_nesterov" or "adamw"
    lr: float
    weight_decay: float
    momentum: float
    batch_size: int
    epochs: int
    scheduler: str | None   # None, "cosine" or "warmup_cosine"
    warmup_epochs: int = 0
    amp: bool = False       # bf16 autocast on CUDA
    source: str = ""
    tau_a: float = 1.0      # where the window ends (s before the action); scored at 1 s in every recipe


RECIPES: dict[str, Recipe] = {
    "rulstm": Recipe("rulstm", 14, 3.5, "sgd", 0.01, 0.0, 0.9, 128, 100, None, tau_a=0.25,
                     source="RU-LSTM main.py defaults and scripts/train_anticipation_ek100.sh (github.com/fpv-iplab/rulstm)"),
    "avt": Recipe("avt_head", 10, 10.0, "sgd_nesterov", 1e-3, 1e-6, 0.9, 64, 50, "warmup_cosine", warmup_epochs=20,
                  source="AVT expts/02_ek100_avt_tsn.txt and its base config (github.com/facebookresearch/AVT)"),
    "aga": Recipe("aga", 30, 30.0, "adamw", 2e-4, 1e-2, 0.9, 128, 50, "cosine", amp=True,
                  source="AGA released train.py defaults (github.com/CorcovadoMing/AGA)"),
}
UNSUPPORTED = {
    "horst": "HORST reads spatial feature maps (B, C, T, H, W); RU-LSTM's features are one pooled vector per "
             "frame, so there is no HORST recipe on them",
    "rulstm_fusion": "train the rgb, flow and obj branches with the rulstm recipe, then fuse them with "
                     "lecturekit.models.RULSTMFusion (no single-command recipe)",
}


# =========================================================================== model + objective
def _masked_ce(logits: Tensor, labels: Tensor, weight: Tensor | None = None) -> Tensor:
    """Cross-entropy over the rows whose label is >= 0 (0 when there is none)."""
    valid = labels >= 0
    if not bool(valid.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[valid].float(), labels[valid], weight=weight)


class RecipeModel(nn.Module):
    """A paper model plus its training objective, in the form :func:`lecturekit.train.fit` wants.

    ``forward`` in eval mode gives the (B, K) action logits at tau_a = 1 s (what is scored); in
    training mode what :meth:`loss` needs. Labels are the ``(B, steps + 1)`` ``"steps"`` of
    :class:`~lecturekit.data.EpicFeatures` (per-step actions in progress, then the target).
    ``state_dict`` / ``load_state_dict`` are the wrapped model's, so a checkpoint saved from this
    object loads with ``load_checkpoint(path)`` as the bare model.
    """

    def __init__(self, kind: str, net: nn.Module, class_weight: Tensor | None = None):
        super().__init__()
        if kind not in RECIPES:
            raise ValueError(f"kind must be one of {sorted(RECIPES)}, got {kind!r}")
        self.kind, self.net = kind, net
        self.register_buffer("class_weight", class_weight, persistent=False)
        self._aux: Tensor | None = None

    def state_dict(self, *args, **kwargs):
        return self.net.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.net.load_state_dict(state_dict, strict=strict, assign=assign)

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "rulstm":
            logits = self.net(x)                                   # (B, 14, K)
            return logits[:, -8:] if self.training else logits[:, type(self.net).ONE_SECOND]
        if self.kind == "avt":
            if not self.training:
                return self.net(x)                                 # (B, K) from the last predicted feature
            out = self.net.forward_all(x)
            # next-feature MSE over positions 1..T-1 (position t predicts feature t+1)
            self._aux = F.mse_loss(out.predicted[:, :-1].float(), x[:, 1:].float()) if x.shape[1] > 1 else None
            return torch.cat([out.past_logits, out.future_logits[:, None]], 1)   # (B, T+1, K)
        logits = self.net(x)                                       # aga: (B, T, K)
        return logits if self.training else logits[:, -1]

    def loss(self, out: Tensor, labels: Tensor) -> Tensor:
        target = labels[:, -1] if labels.dim() == 2 else labels
        if out.dim() == 2:                                         # eval outputs: the 1 s prediction
            return _masked_ce(out, target)
        if self.kind == "rulstm":                                  # the label repeated over the 8 steps
            b, s, k = out.shape
            return _masked_ce(out.reshape(b * s, k), target.repeat_interleave(s))
        if self.kind == "avt":
            b, s, k = out.shape
            loss = _masked_ce(out[:, -1], target) + _masked_ce(out[:, :-1].reshape(b * (s - 1), k),
                                                              labels[:, :-1].reshape(-1))
            if self._aux is not None:
                loss = loss + self._aux
            return loss
        w = None if self.class_weight is None else self.class_weight.to(out.device)
        return dense_next_step_loss(out, labels, weight=w)


def _mt5r(scores: Tensor, labels: Tensor) -> float:
    """Action mean top-5 recall of the 1 s predictions (rows without a known action left out)."""
    y = labels[:, -1] if labels.dim() == 2 else labels
    keep = y >= 0
    if not bool(keep.any()):
        return float("nan")
    return float(mean_topk_recall(scores[keep].float(), y[keep], k=5))


_mt5r.__name__ = "action_mt5r"


def build_recipe_model(kind: str, preset: str, *, feat_in: int, num_classes: int, sequence_completion: bool = False,
                       class_weight: Tensor | None = None) -> tuple[RecipeModel, str, dict]:
    """(model, registry name, build kwargs) of a recipe; ``feat_in`` / ``num_classes`` from the data."""
    name = RECIPES[kind].model
    if kind == "rulstm" and sequence_completion:
        name = "rulstm_sci"
    overrides = {"feat_in": feat_in, "num_classes": num_classes}
    net = build_model(name, preset, **overrides)
    return RecipeModel(kind, net, class_weight), name, {"preset": preset, **overrides}


def _optimizer(r: Recipe, lr: float):
    if r.optimizer == "adamw":
        return lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=r.weight_decay)
    nesterov = r.optimizer == "sgd_nesterov"
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=r.momentum, weight_decay=r.weight_decay,
                                          nesterov=nesterov)


def _scheduler(r: Recipe, epochs: int):
    if r.scheduler is None:
        return None
    if r.scheduler == "cosine":
        return "cosine"
    warm_share = r.warmup_epochs / max(1, r.epochs)             # the paper's warm-up share of the run

    def make(optimizer, total_steps):
        warm = max(1, int(round(warm_share * total_steps)))

        def factor(step):
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, total_steps - warm)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    return make


# =========================================================================== logging, best checkpoint
class _RecipeLog(Callback):
    """Rank 0: one JSON line per record in log.jsonl, a readable line in train.log, best.pt by mt5r."""

    def __init__(self, out: Path, model: RecipeModel, name: str, kwargs: dict, meta: dict):
        self.out, self.model, self.name, self.kwargs, self.meta = out, model, name, kwargs, meta
        self.best = -math.inf

    def on_eval_end(self, state) -> None:
        rec = dict(state.history.records[-1])
        rec["seconds"] = state.history.seconds[-1]
        with open(self.out / "log.jsonl", "a", encoding="utf8") as f:
            f.write(json.dumps(rec) + "\n")
        _log(self.out, " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()))
        score = rec.get("val_action_mt5r", float("nan"))
        if not math.isnan(score) and score > self.best:
            self.best = score
            save_checkpoint(self.model, self.out / "best.pt", architecture=self.name, kwargs=self.kwargs,
                            metadata={**self.meta, "epoch": rec["epoch"], "val_action_mt5r": score})


def _log(out: Path, line: str) -> None:
    line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}"
    print(line, flush=True)
    with open(out / "train.log", "a", encoding="utf8") as f:
        f.write(line + "\n")


def _rank() -> int:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


# =========================================================================== scoring and submission
def _scores(model: RecipeModel, ds: EpicFeatures, batch_size: int, device) -> dict[str, np.ndarray]:
    logits = predict(model, ds, batch_size=batch_size, device=device, target="steps")
    probs = torch.softmax(logits.double(), dim=1)
    pairs = np.asarray(ds.actions, dtype=np.int64)
    nv, nn_ = ds.num_classes["verb"], ds.num_classes["noun"]
    return {"action": probs.numpy(), "verb": marginalize(probs, pairs[:, 0], nv).numpy(),
            "noun": marginalize(probs, pairs[:, 1], nn_).numpy()}


def _evaluate(scores: dict, ds: EpicFeatures) -> dict:
    segs = ds.segments
    keep = np.array([s["action"] >= 0 for s in segs])
    lab = {k: np.array([s[k] for s in segs])[keep] for k in ("verb", "noun", "action")}
    return epic_subsets(scores["verb"][keep], scores["noun"][keep], scores["action"][keep],
                        lab["verb"], lab["noun"], lab["action"],
                        tail_verbs=sorted(ds.base.tail_verbs or []), tail_nouns=sorted(ds.base.tail_nouns or []),
                        unseen=np.array([s["unseen"] for s in segs])[keep])


def _submission(scores: dict, ds: EpicFeatures, sls, path: Path) -> Path:
    sub = make_submission(ds.narration_ids, scores["verb"], scores["noun"], scores["action"], ds.actions,
                          sls=tuple(sls))
    validate_submission(sub, ds.narration_ids)                 # the official sizes: 97 verbs, 300 nouns, 100 actions
    return write_submission(path, sub)


# =========================================================================== the command
def run_recipe(args: argparse.Namespace) -> dict:
    """Train, select, score and write the submission; returns the summary (rank 0 writes files)."""
    kind = args.command
    r = RECIPES[kind]
    out = Path(args.out)
    lead = _rank() == 0
    if lead:
        out.mkdir(parents=True, exist_ok=True)
    seed_everything(args.seed)
    sources = [LMDBFeatures(p, w) for p, w in zip(args.features, args.width)]
    if len(sources) != 1:
        raise SystemExit(f"the {kind} recipe reads one feature database, got {len(sources)} --features "
                         "(RU-LSTM branches are trained one modality at a time)")
    windows = dict(steps=r.steps, tau_a=r.tau_a, tau_o=r.tau_o, score_tau_a=1.0, step_labels=True,
                   frame_rate=None if args.frame_rate <= 0 else args.frame_rate)
    train = EpicFeatures(args.annotations, sources[0], "train", **windows)
    val = EpicFeatures(args.annotations, sources[0], "validation", **windows)
    k = len(train.actions)
    preset = "small" if args.dry_run and args.preset is None else (args.preset or "paper")
    counts = torch.bincount(torch.tensor([s["action"] for s in train.segments if s["action"] >= 0]), minlength=k)
    model, name, kwargs = build_recipe_model(kind, preset, feat_in=sources[0].width, num_classes=k,
                                             sequence_completion=args.sequence_completion,
                                             class_weight=inverse_sqrt_class_weights(counts) if kind == "aga" else None)
    if args.init:
        model.load_state_dict(load_checkpoint(args.init, device="cpu").state_dict())
    dev = torch.device(args.device) if args.device else None
    from .env import device as default_device

    dev = dev or default_device()
    batch = args.batch_size or (8 if args.dry_run else r.batch_size)
    epochs = args.epochs or (1 if args.dry_run else r.epochs)
    lr = args.lr or r.lr
    length = {"steps": args.steps} if args.steps else {"epochs": epochs}
    amp = "bf16" if (r.amp and dev.type == "cuda") else False
    meta = {"recipe": kind, "preset": preset, "features": [str(p) for p in args.features],
            "steps": r.steps, "window_tau_a": r.tau_a, "score_tau_a": 1.0, "tau_o": r.tau_o, "batch_size": batch, "lr": lr, "seed": args.seed}
    if lead:
        _log(out, f"recipe {kind}: {name} preset={preset} train={len(train)} val={len(val)} actions={k} "
                  f"batch={batch} lr={lr} {length} device={dev} amp={amp} ({r.source})")
    resume = out / "last.pt" if args.resume and (out / "last.pt").is_file() else None
    callbacks = [_RecipeLog(out, model, name, kwargs, meta)]
    history = fit(model, train, val, loss=model.loss, metrics={"action_mt5r": _mt5r}, target="steps",
                  optimizer=_optimizer(r, lr), scheduler=_scheduler(r, epochs), batch_size=batch,
                  device=dev, amp=amp, seed=args.seed, num_workers=args.num_workers, progress=False,
                  callbacks=callbacks, checkpoint=out / "last.pt",
                  checkpoint_meta={"architecture": name, "kwargs": kwargs, **meta}, resume=resume,
                  **length)
    summary = {"recipe": kind, "model": name, "preset": preset, "records": len(history)}
    if not lead:
        return summary
    best = out / "best.pt" if (out / "best.pt").is_file() else out / "last.pt"
    model.load_state_dict(load_checkpoint(best, device="cpu").state_dict())
    sls = args.sls if args.sls is not None else (0, 0, 0)
    scores = _scores(model, val, args.eval_batch_size, dev)
    summary["validation"] = _evaluate(scores, val)
    summary["submissions"] = [str(_submission(scores, val, sls, out / "validation.json"))]
    test_csv = Path(args.annotations) / "EPIC_100_test_timestamps.csv"
    if test_csv.is_file():
        test = EpicFeatures(args.annotations, sources[0], "test", **windows)
        summary["submissions"].append(str(_submission(_scores(model, test, args.eval_batch_size, dev), test, sls,
                                                      out / "test.json")))
    summary.update(checkpoint=str(best), seconds=history.seconds[-1] if history.seconds else 0.0,
                   sls=list(sls), sls_placeholder=args.sls is None)
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    _log(out, "validation mean top-5 recall (overall / unseen / tail): " + json.dumps(summary["validation"]))
    _log(out, f"wrote {', '.join(summary['submissions'])}")
    return summary


# =========================================================================== throughput
def _measure(kind: str, batch: int, steps: int, device: str = "cpu", ddp: bool = False, preset: str = "paper") -> dict:
    """Training samples/s of one recipe's model (forward, loss, backward, optimizer step) on random inputs."""
    r = RECIPES[kind]
    torch.manual_seed(0)
    feat_in = build_model(r.model, preset).feat_in
    k = 3806 if preset == "paper" else 10
    model, _, _ = build_recipe_model(kind, preset, feat_in=feat_in, num_classes=k,
                                     class_weight=torch.ones(k) if kind == "aga" else None)
    model.to(device).train()
    train_model = model
    world = 1
    if ddp:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        if not dist.is_initialized():
            dist.init_process_group("gloo" if device == "cpu" else "nccl")
        world = dist.get_world_size()
        unused = any(getattr(m, "PARAMETERS_WITHOUT_GRADIENT", ()) for m in model.modules())
        train_model = DistributedDataParallel(model, find_unused_parameters=unused)
    opt = _optimizer(r, r.lr)([p for p in model.parameters() if p.requires_grad])
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, r.steps, feat_in, generator=g).to(device)
    y = torch.randint(0, k, (batch, r.steps + 1), generator=g).to(device)
    times = []
    for i in range(steps + 1):                                    # the first step warms up and is not timed
        if ddp:
            dist.barrier()
        t0 = time.perf_counter()
        loss = model.loss(train_model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ddp:
            dist.barrier()
        if i:
            times.append(time.perf_counter() - t0)
    sec = float(np.median(times))
    return {"model": r.model, "preset": preset, "batch_per_process": batch, "processes": world,
            "seconds_per_step_median": sec, "samples_per_s": batch * world / sec,
            "timed_steps": steps, "parameters": sum(p.numel() for p in model.parameters())}


def throughput(models=("rulstm", "avt", "aga"), threads=(1, 2), batch: int = 4, steps: int = 3,
               scaling: bool = True, out: Path | None = None, preset: str = "paper") -> dict:
    """Samples/s of the paper presets on this CPU, per thread count, and 1 -> 2 Gloo processes.

    The 2-process run uses 1 thread per process and the same per-process batch (weak scaling), so
    ``scaling = samples/s(2 processes) / samples/s(1 process, 1 thread)``.
    """
    result = {"hardware": machine_info(), "what": "training samples/s (forward + loss + backward + optimizer step) "
              "of the paper presets on random inputs of the recipe's window, median over timed steps after one "
              "warm-up step", "cpu": [], "scaling": [], "gpu": "not measured: no GPU was available on the machine that ran this"}
    for kind in models:
        for t in threads:
            torch.set_num_threads(t)
            row = _measure(kind, batch, steps, preset=preset)
            row["threads"] = t
            result["cpu"].append(row)
            print(json.dumps(row), flush=True)
        if scaling:
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            env.pop("WORLD_SIZE", None)
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                   "lecturekit.recipes", "throughput-worker", kind, "--batch", str(batch), "--steps", str(steps),
                   "--preset", preset]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode != 0 or not lines:
                raise RuntimeError(f"2-process throughput run of {kind} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
            two = json.loads(lines[-1])
            one = next(c for c in result["cpu"] if c["model"] == RECIPES[kind].model and c["threads"] == 1)
            row = {"model": two["model"], "backend": "gloo", "threads_per_process": 1,
                   "batch_per_process": batch, "samples_per_s_1_process": one["samples_per_s"],
                   "samples_per_s_2_processes": two["samples_per_s"],
                   "scaling": two["samples_per_s"] / one["samples_per_s"]}
            result["scaling"].append(row)
            print(json.dumps(row), flush=True)
    if out is not None:
        Path(out).write_text(json.dumps(result, indent=1) + "\n")
    return result


# =========================================================================== command line
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lecturekit.recipes", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for kind, r in RECIPES.items():
        q = sub.add_parser(kind, help=f"train {r.model} ({r.source})")
        q.add_argument("--features", nargs="+", required=True, help="LMDB folder(s) holding data.mdb")
        q.add_argument("--width", nargs="+", type=int, default=None,
                       help="float32 values per frame, one per --features (default 1024)")
        q.add_argument("--annotations", required=True, help="folder with the official EK-100 annotation CSVs")
        q.add_argument("--out", default=f"runs/{kind}", help="checkpoints, log, metrics and submissions")
        q.add_argument("--frame-rate", type=float, default=RULSTM_FRAME_RATE,
                       help="frame rate of the LMDB's frame numbers (30 for RU-LSTM's features; 0: the "
                            "annotation frame numbers)")
        q.add_argument("--preset", choices=("paper", "small"), default=None,
                       help="model size (default: paper; small with --dry-run)")
        q.add_argument("--epochs", type=int, default=None, help=f"default: the paper's {r.epochs}")
        q.add_argument("--steps", type=int, default=None, help="train for this many optimizer steps instead")
        q.add_argument("--batch-size", type=int, default=None, help=f"GLOBAL batch (default: the paper's {r.batch_size})")
        q.add_argument("--lr", type=float, default=None, help=f"default: the paper's {r.lr}")
        q.add_argument("--eval-batch-size", type=int, default=256)
        q.add_argument("--device", default=None, help="default: cuda if available, else cpu")
        q.add_argument("--num-workers", type=int, default=0)
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
        q.add_argument("--init", default=None, help="start from the weights of this checkpoint (e.g. SCI pre-training)")
        q.add_argument("--sequence-completion", action="store_true", help="(rulstm) SCI pre-training model")
        q.add_argument("--sls", nargs=3, type=int, default=None, metavar=("PT", "TL", "TD"),
                       help="the challenge's supervision levels written into the submission (required unless --dry-run)")
        q.add_argument("--dry-run", action="store_true",
                       help="small preset, batch 8, 3 steps (unless --preset/--steps say otherwise): checks the "
                            "whole path on a small database")
    for kind in UNSUPPORTED:
        sub.add_parser(kind, help=f"(not supported: {UNSUPPORTED[kind]})")
    ex = sub.add_parser("example", help="write a small EK-100-shaped set (annotation CSVs + one LMDB) into DIR")
    ex.add_argument("dir")
    ex.add_argument("--width", type=int, default=16)
    tp = sub.add_parser("throughput", help="training samples/s of the paper presets on this machine")
    tp.add_argument("--models", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    tp.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    tp.add_argument("--batch", type=int, default=4)
    tp.add_argument("--steps", type=int, default=3)
    tp.add_argument("--no-scaling", action="store_true")
    tp.add_argument("--out", default=None)
    tp.add_argument("--preset", default="paper", choices=("paper", "small"))
    tw = sub.add_parser("throughput-worker", help=argparse.SUPPRESS)
    tw.add_argument("model", choices=list(RECIPES))
    tw.add_argument("--batch", type=int, default=4)
    tw.add_argument("--steps", type=int, default=3)
    tw.add_argument("--preset", default="paper", choices=("paper", "small"))
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command in UNSUPPORTED:
        print(f"no recipe for {args.command}: {UNSUPPORTED[args.command]}", file=sys.stderr)
        return 2
    if args.command == "example":
        info = write_example_features(args.dir, width=args.width)
        print(json.dumps({k: str(v) for k, v in info.items() if k != "splits"}))
        return 0
    if args.command == "throughput":
        throughput(args.models, args.threads, args.batch, args.steps, not args.no_scaling, args.out, args.preset)
        return 0
    if args.command == "throughput-worker":
        torch.set_num_threads(1)
        row = _measure(args.model, args.batch, args.steps, ddp=True, preset=args.preset)
        if _rank() == 0:
            print(json.dumps(row), flush=True)
        import torch.distributed as dist

        dist.destroy_process_group()
        return 0
    if args.width is None:
        args.width = [1024] * len(args.features)
    if len(args.width) != len(args.features):
        raise SystemExit(f"--width: expected one value per --features ({len(args.features)}), got {len(args.width)}")
    if args.sls is None and not args.dry_run:
        raise SystemExit("--sls PT TL TD is required for a real run: the supervision levels of your entry "
                         "(see the EPIC-KITCHENS-100 challenge guidelines); a dry run writes 0 0 0")
    if args.dry_run and args.steps is None and args.epochs is None:
        args.steps = 3
    try:
        run_recipe(args)
    except (FileNotFoundError, FeatureKeyError, FeatureWidthError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
