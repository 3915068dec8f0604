"""Training and evaluation: one small loop the whole course shares.

>>> import torch
>>> from lecturekit.train import fit, seed_everything
>>> seed_everything(0)       # returns the seed
0
>>> model = torch.nn.Linear(4, 2)
>>> x, y = torch.randn(64, 4), (torch.arange(64) % 2)
>>> history = fit(model, (x, y), (x, y), epochs=2, batch_size=16, device="cpu")
>>> len(history)
2

What :func:`fit` owns and what it does not
    It owns the loop only: batches, forward under autocast, loss, backward, gradient clipping,
    optimizer and scheduler steps, one evaluation per epoch (or every ``eval_every`` steps), a
    :class:`History`, progress and callbacks. Models know nothing about it; plots are callbacks
    from :mod:`lecturekit.viz` (``viz.LiveCurves``).

Data it accepts (``train_data``, ``val_data``, and the data of :func:`evaluate`, :func:`predict`)
    * a map-style ``torch.utils.data.Dataset`` whose items are ``(input, label)``. ``input`` is
      a video ``(C, T, H, W)`` (uint8 or float) or any tensor; ``label`` is an int or a dict
      of ints (the ToyKitchens / EPIC convention: ``{"verb", "noun", "action", ...}``, pick one
      with ``target="verb"``);
    * a tuple ``(inputs, labels)`` of tensors (first dimension = samples);
    * a ready ``DataLoader`` (used as it is; ``batch_size`` and shuffling are then its own).
    uint8 inputs become float in [0, 1] (divided by 255) on the device, at the boundary.

Headless mode (:func:`lecturekit.env.headless`; CI, nbval and the execute command set it): no
progress bars; callbacks such as ``viz.LiveCurves`` draw one final figure instead of a live one.

Checkpoints: ``fit(checkpoint=path)`` saves the model, optimizer, scheduler, history and RNG
state after each record, and ``fit(resume=path)`` continues from such a file; the file format,
its safety checks and :func:`~lecturekit.checkpoint.save_checkpoint` /
:func:`~lecturekit.checkpoint.load_checkpoint` live in :mod:`lecturekit.checkpoint`.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .checkpoint import load_training_state, save_training_state
from .env import device as default_device
from .env import headless
from .metrics.classification import topk_hits

__all__ = [
    "Callback",
    "FitState",
    "GlobalBatchSampler",
    "History",
    "evaluate",
    "fit",
    "predict",
    "seed_everything",
]


# =========================================================================== seeds
def seed_everything(seed: int, *, deterministic: bool = False) -> int:
    """Seed Python, NumPy and torch (CPU and every GPU) from one number; return it.

    ``deterministic=True`` also asks torch for deterministic kernels
    (``torch.use_deterministic_algorithms(True, warn_only=True)``) and turns off cuDNN
    autotuning; on the CPU the default kernels are already deterministic run to run.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if hasattr(torch.backends, "cudnn"):
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
    return seed


# =========================================================================== history
@dataclass
class History:
    """What a training run measured: one record per evaluation point (an epoch by default).

    Each record is a dict with ``epoch``, ``step`` (optimizer steps so far), ``train_loss``
    (mean over the steps since the previous record), ``lr`` and, with validation data,
    ``val_loss`` and ``val_<metric>`` for every metric. ``step_loss`` keeps the loss of every
    optimizer step; ``seconds`` the wall time at each record (kept apart from the records, so
    two seeded runs on the CPU give equal records).

    ``history["val_accuracy"]`` is the list of that column; ``history.best("val_accuracy")``
    its best record; ``lecturekit.viz.plot_history(history)`` draws the curves.
    """

    records: list[dict] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        if not self.records:
            return "History(empty)"
        last = ", ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in self.records[-1].items() if k != "by_epoch"
        )
        return f"History({len(self.records)} records, {len(self.step_loss)} steps; last: {last})"

    def __getitem__(self, key: str) -> list:
        if not self.records or key not in self.records[-1]:
            known = sorted(self.records[-1]) if self.records else []
            raise KeyError(f"history has no column {key!r}; columns: {known}")
        return [r.get(key, float("nan")) for r in self.records]

    def __contains__(self, key: str) -> bool:
        return bool(self.records) and key in self.records[-1]

    @property
    def columns(self) -> list[str]:
        return list(self.records[-1]) if self.records else []

    @property
    def last(self) -> dict:
        if not self.records:
            raise ValueError("history is empty: nothing was trained yet")
        return dict(self.records[-1])

    def best(self, key: str, mode: str | None = None) -> dict:
        """The record with the best ``key``; ``mode`` "min" or "max" (default: min for losses)."""
        values = self[key]
        mode = mode or ("min" if "loss" in key else "max")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        finite = [(v, i) for i, v in enumerate(values) if not math.isnan(v)]
        if not finite:
            raise ValueError(f"history column {key!r} has no finite value")
        _, i = (min if mode == "min" else max)(finite)
        return dict(self.records[i])

    def to_dict(self) -> dict:
        """Plain lists and dicts (stored inside checkpoints, loadable with weights_only)."""
        return {"records": [dict(r) for r in self.records], "step_loss": list(self.step_loss),
                "seconds": list(self.seconds)}

    @classmethod
    def from_dict(cls, d: Mapping) -> History:
        return cls(records=[dict(r) for r in d.get("records", [])], step_loss=list(d.get("step_loss", [])),
                   seconds=list(d.get("seconds", [])))

    def metric_names(self) -> list[str]:
        """Validation metrics recorded (the ``val_`` columns other than the loss)."""
        return [c[4:] for c in self.columns if c.startswith("val_") and c != "val_loss"]

    def by_epoch(self) -> bool:
        """True when every record closes an epoch (False when records were taken every n steps)."""
        return not self.records or all(r.get("by_epoch", True) for r in self.records)


# =========================================================================== callbacks
@dataclass
class FitState:
    """What callbacks see: the run in progress. Set ``stop = True`` to end training early."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: History
    epoch: int = 0
    step: int = 0
    total_steps: int = 0
    epochs: int | None = None
    last_loss: float = float("nan")
    stop: bool = False


class Callback:
    """Hooks of :func:`fit`; override the ones you need (all receive the :class:`FitState`)."""

    def on_fit_start(self, state: FitState) -> None:
        pass

    def on_step_end(self, state: FitState) -> None:
        pass

    def on_eval_end(self, state: FitState) -> None:
        """After each record is appended to ``state.history`` (every epoch by default)."""

    def on_fit_end(self, state: FitState) -> None:
        pass


# =========================================================================== data plumbing
def _as_dataset(data, name: str):
    if isinstance(data, (DataLoader, Dataset)):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        x, y = data
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                f"{name}: inputs and labels must have the same first dimension, got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        return TensorDataset(x, y)
    raise TypeError(
        f"{name}: expected a torch Dataset of (input, label) items, a DataLoader, or a tuple "
        f"(inputs, labels) of tensors; got {type(data).__name__}"
    )


def _loader(data, name: str, batch_size: int, shuffle: bool, seed: int | None, num_workers: int = 0) -> DataLoader:
    ds = _as_dataset(data, name)
    if isinstance(ds, DataLoader):
        return ds
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    generator = None
    if shuffle:
        generator = torch.Generator()
        generator.manual_seed(seed if seed is not None else int(torch.empty((), dtype=torch.int64).random_()))
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=num_workers)


def _to_input(x, dev: torch.device):
    """Move an input batch to the device; uint8 becomes float in [0, 1] there (after the copy)."""
    if isinstance(x, torch.Tensor):
        x = x.to(dev, non_blocking=True)
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        return x
    if isinstance(x, Mapping):
        return {k: _to_input(v, dev) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_to_input(v, dev) for v in x)
    return x


def _pick_target(y, target: str | None, name: str):
    if isinstance(y, Mapping):
        if target is None:
            raise ValueError(
                f"{name}: labels are a dict with keys {sorted(y)}; pass target=<one of them> "
                "(for example target='verb') to choose what to train on"
            )
        if target not in y:
            raise KeyError(f"{name}: target {target!r} not among the label keys {sorted(y)}")
        y = y[target]
    elif target is not None and not isinstance(y, torch.Tensor):
        raise ValueError(f"{name}: target={target!r} given but the labels are {type(y).__name__}, not a dict")
    if not isinstance(y, torch.Tensor):
        y = torch.as_tensor(y)
    return y


def _split_batch(batch, target, name: str):
    if isinstance(batch, (list, tuple)) and len(batch) == 2:
        return batch[0], _pick_target(batch[1], target, name)
    got = f"{type(batch).__name__} of length {len(batch)}" if isinstance(batch, (list, tuple)) else type(batch).__name__
    raise ValueError(f"{name}: each batch must be (inputs, labels), got a {got}")


# =========================================================================== loss, metrics, amp
def _resolve_loss(loss) -> Callable:
    if loss is None or loss == "cross_entropy":
        return nn.functional.cross_entropy
    if loss == "mse":
        return nn.functional.mse_loss
    if callable(loss):
        return loss
    raise ValueError(f"loss must be 'cross_entropy', 'mse' or a callable(outputs, target), got {loss!r}")


def _topk_metric(k: int) -> Callable:
    """The built-in top-k accuracy: hits by :func:`lecturekit.metrics.topk_hits` (ties broken as
    the official EK-100 scorer), averaged as a float32 mask on the torch side."""

    def metric(scores: torch.Tensor, labels: torch.Tensor) -> float:
        if scores.ndim != 2:
            raise ValueError(
                f"built-in top-{k} accuracy expects (N, K) scores, got {tuple(scores.shape)}; "
                "pass your own metric callable for other outputs (e.g. (N, T, K) per-step logits)"
            )
        hits = topk_hits(scores, labels, min(k, scores.shape[1]))
        return torch.from_numpy(hits).float().mean().item()

    metric.__name__ = "accuracy" if k == 1 else f"top{k}"
    return metric


_BUILTIN_METRICS = {"accuracy": _topk_metric(1), "top1": _topk_metric(1), "top5": _topk_metric(5)}


def _resolve_metrics(metrics) -> dict[str, Callable]:
    if metrics is None:
        return {}
    if isinstance(metrics, str) or callable(metrics):
        metrics = [metrics]
    if isinstance(metrics, Mapping):
        items = list(metrics.items())
    else:
        items = []
        for m in metrics:
            if isinstance(m, str):
                items.append((m, m))
            elif callable(m):
                items.append((getattr(m, "__name__", "metric"), m))
            else:
                raise ValueError(f"metrics: expected names or callables, got {m!r}")
    out = {}
    for name, m in items:
        if isinstance(m, str):
            if m not in _BUILTIN_METRICS:
                raise ValueError(f"unknown metric {m!r}; built in: {sorted(_BUILTIN_METRICS)} (or pass a callable)")
            m = _BUILTIN_METRICS[m]
        out[name] = m
    return out


def _amp_dtype(amp, dev: torch.device) -> torch.dtype | None:
    """``amp``: False/None (off), True (bf16 on CPU, fp16 on CUDA/MPS), "bf16" or "fp16"."""
    if amp in (False, None):
        return None
    if amp is True:
        return torch.bfloat16 if dev.type == "cpu" else torch.float16
    names = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
    if isinstance(amp, torch.dtype):
        dtype = amp
    elif isinstance(amp, str) and amp.lower() in names:
        dtype = names[amp.lower()]
    else:
        raise ValueError(f"amp must be False, True, 'bf16' or 'fp16', got {amp!r}")
    if dev.type == "cpu" and dtype != torch.bfloat16:
        raise ValueError("amp on the CPU supports bf16 only (amp='bf16' or amp=True); fp16 needs a GPU")
    return dtype


def _autocast(dev: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=dev.type, dtype=dtype)


def _resolve_device(device) -> torch.device:
    return default_device() if device is None else torch.device(device)


# =========================================================================== optimizer, scheduler
def _make_optimizer(optimizer, model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if isinstance(optimizer, str):
        name = optimizer.lower()
        if name == "adamw":
            return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        if name == "adam":
            return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        if name == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
        raise ValueError(f"unknown optimizer {optimizer!r}; use 'adamw', 'adam', 'sgd', an Optimizer or a callable")
    if callable(optimizer):
        return optimizer(params)
    raise ValueError(f"optimizer must be a name, an Optimizer or a callable(params), got {optimizer!r}")


def _make_scheduler(scheduler, optimizer, total_steps: int):
    if scheduler is None:
        return None
    if scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    if scheduler == "onecycle":
        lrs = [g["lr"] for g in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lrs, total_steps=max(1, total_steps))
    if isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler):
        return scheduler
    if callable(scheduler):
        return scheduler(optimizer, total_steps)
    raise ValueError(
        f"scheduler must be None, 'cosine', 'onecycle', an LRScheduler or a callable(optimizer, total_steps), got {scheduler!r}"
    )


# =========================================================================== evaluation
@torch.no_grad()
def _run_eval(model, loader, dev, loss_fn, metric_fns, target, amp_dtype, name) -> dict:
    was_training = model.training
    model.eval()
    outs, ys = [], []
    total, n = 0.0, 0
    try:
        for batch in loader:
            x, y = _split_batch(batch, target, name)
            x, y = _to_input(x, dev), y.to(dev)
            with _autocast(dev, amp_dtype):
                out = model(x)
            out = out.float()
            if loss_fn is not None:
                total += loss_fn(out, y).item() * y.shape[0]
            n += y.shape[0]
            outs.append(out.cpu())
            ys.append(y.cpu())
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError(f"{name}: no samples to evaluate")
    scores, labels = torch.cat(outs), torch.cat(ys)
    result = {}
    if loss_fn is not None:
        result["loss"] = total / n
    for mname, fn in metric_fns.items():
        result[mname] = float(fn(scores, labels))
    return result


def evaluate(
    model: nn.Module,
    data,
    *,
    loss="cross_entropy",
    metrics=("accuracy",),
    target: str | None = None,
    batch_size: int = 64,
    device=None,
    amp=False,
) -> dict:
    """Loss and metrics of ``model`` on ``data`` (the whole set at once, so class-mean metrics
    such as mean top-5 recall are exact). Returns ``{"loss": .., "<metric>": ..}``; the model
    is evaluated in ``eval()`` mode and returned to its previous mode.
    A metric is a name ("accuracy", "top5") or a callable ``(scores (N, K), labels (N,)) -> float``.
    """
    dev = _resolve_device(device)
    model.to(dev)
    loader = _loader(data, "data", batch_size, shuffle=False, seed=None)
    loss_fn = None if loss is None else _resolve_loss(loss)
    return _run_eval(model, loader, dev, loss_fn, _resolve_metrics(metrics), target, _amp_dtype(amp, dev), "data")


@torch.no_grad()
def predict(
    model: nn.Module,
    data,
    *,
    batch_size: int = 64,
    device=None,
    amp=False,
    target: str | None = None,
    return_labels: bool = False,
):
    """Model outputs (logits) for every sample, concatenated on the CPU as float32.

    ``data`` may also be a bare input tensor (first dimension = samples). With
    ``return_labels=True`` returns ``(outputs, labels)`` (labels picked by ``target``).
    """
    dev = _resolve_device(device)
    model.to(dev)
    if isinstance(data, torch.Tensor):
        data = TensorDataset(data)
        bare = True
    else:
        bare = False
    loader = _loader(data, "data", batch_size, shuffle=False, seed=None)
    amp_dtype = _amp_dtype(amp, dev)
    was_training = model.training
    model.eval()
    outs, ys = [], []
    try:
        for batch in loader:
            if bare:
                x, y = batch[0], None
            else:
                x, y = _split_batch(batch, target, "data")
            with _autocast(dev, amp_dtype):
                out = model(_to_input(x, dev))
            outs.append(out.float().cpu())
            if y is not None:
                ys.append(y.cpu())
    finally:
        model.train(was_training)
    outputs = torch.cat(outs)
    if return_labels:
        if bare:
            raise ValueError("return_labels=True needs data with labels, got a bare input tensor")
        return outputs, torch.cat(ys)
    return outputs


# =========================================================================== several processes
class GlobalBatchSampler(torch.utils.data.Sampler):
    """The distributed sampler of :func:`fit`: rank ``r``'s share of every single-process batch.

    The order of epoch ``e`` is the one a single process's shuffled DataLoader produces with a
    generator seeded ``seed`` (fit passes ``seed + e``), obtained by running exactly that
    DataLoader over the sample indices, so it stays right whatever the DataLoader draws from its
    generator. Each global batch of ``batch_size`` indices is cut into ``world`` contiguous
    shares; rank ``r`` yields share ``r`` (a list of indices) as its batch. A last global batch
    smaller than ``world`` gives the empty shares its first index, so every rank runs the same
    number of steps. When the last global batch does not split evenly, the ranks' mean losses
    are averaged with equal weights, which differs slightly from one process's mean over that
    batch (every other step is the same). torch's ``DistributedSampler`` is not used because it pads the epoch and
    interleaves a permutation of its own, so its batches are not those of one process.

    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> [b.tolist() for b in DataLoader(range(6), batch_size=4, shuffle=True, generator=g)]
    [[5, 1, 0, 3], [2, 4]]
    >>> [b for b in GlobalBatchSampler(6, 4, 0, rank=0, world=2)]
    [[5, 1], [2]]
    >>> [b for b in GlobalBatchSampler(6, 4, 0, rank=1, world=2)]
    [[0, 3], [4]]
    """

    def __init__(self, n: int, batch_size: int, seed: int, *, rank: int, world: int):
        if not 0 <= rank < world:
            raise ValueError(f"rank must lie in [0, {world}), got {rank}")
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world

    def _order(self) -> torch.Tensor:
        g = torch.Generator()
        g.manual_seed(self.seed)
        single = DataLoader(range(self.n), batch_size=self.batch_size, shuffle=True, generator=g)
        return torch.cat([torch.as_tensor(b) for b in single]) if self.n else torch.zeros(0, dtype=torch.long)

    def __iter__(self):
        order = self._order()
        for chunk in order.split(self.batch_size):
            share = chunk.tensor_split(self.world)[self.rank]
            yield (share if len(share) else chunk[:1]).tolist()

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)


def _leave_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        with contextlib.suppress(Exception):
            # all ranks leave together: a rank that tears down its Gloo pairs while another is
            # still talking to it can abort ("terminate called without an active exception").
            # If a rank died instead, torchrun stops the others, so this never waits forever.
            dist.barrier()
            dist.destroy_process_group()


class _Distributed:
    """What :func:`fit` needs from ``torch.distributed``: rank, world, device, sharding, reductions.

    Launch: ``torchrun --nproc_per_node=N script.py`` (``--standalone`` picks a free port on one
    machine). The default process group is initialised here when torchrun's environment is set
    and no group exists yet: NCCL when training on CUDA (each process on ``cuda:<LOCAL_RANK>``),
    Gloo on the CPU.
    """

    def __init__(self, rank: int, world: int, device: torch.device):
        self.rank, self.world, self.device = rank, world, device
        self.has_callbacks = False

    @classmethod
    def setup(cls, distributed: bool | None, dev: torch.device):
        if distributed not in (None, True, False):
            raise ValueError(f"distributed must be None, True or False, got {distributed!r}")
        if distributed is False:
            return None
        import torch.distributed as dist

        env_world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        ready = dist.is_available() and dist.is_initialized()
        if not ready and env_world <= 1:
            if distributed:
                raise RuntimeError(
                    "fit(distributed=True) found no process group and no torchrun environment (WORLD_SIZE); "
                    "launch with: torchrun --nproc_per_node=N your_script.py"
                )
            return None
        if not dist.is_available():
            raise RuntimeError("this torch build has no torch.distributed; train in one process (distributed=False)")
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        if not ready:
            dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
            atexit.register(_leave_process_group)  # a group left open at exit aborts the process
        world, rank = dist.get_world_size(), dist.get_rank()
        if world == 1 and not distributed:
            return None  # a group of one: the single-process path, bit for bit
        backend = dist.get_backend()
        if dev.type == "cuda" and backend != "nccl" or dev.type == "cpu" and backend != "gloo":
            raise RuntimeError(f"training on {dev.type} needs the {'nccl' if dev.type == 'cuda' else 'gloo'} "
                               f"backend, but the process group uses {backend!r}")
        return cls(rank, world, dev)

    def local_batch(self, batch_size: int) -> int:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if batch_size % self.world:
            raise ValueError(
                f"batch_size is the global batch and must be divisible by the {self.world} processes, got {batch_size} "
                f"(use {batch_size - batch_size % self.world or self.world} or {batch_size + self.world - batch_size % self.world})"
            )
        return batch_size // self.world

    def steps_per_epoch(self, ds, batch_size: int) -> int:
        if isinstance(ds, DataLoader):
            raise TypeError(
                "under torch.distributed fit shards the data itself: pass a Dataset or (inputs, labels) tensors, "
                "not a ready DataLoader"
            )
        self.local_batch(batch_size)
        return math.ceil(len(ds) / batch_size)  # global batches, as one process

    def loader(self, ds, batch_size: int, seed: int, epoch: int, num_workers: int) -> DataLoader:
        sampler = GlobalBatchSampler(len(ds), batch_size, seed + epoch, rank=self.rank, world=self.world)
        return DataLoader(ds, batch_sampler=sampler, num_workers=num_workers)

    def wrap(self, model: nn.Module) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        # parameters that exist but are never read (e.g. AGA's unused gains) need the slower search
        unused = any(getattr(m, "PARAMETERS_WITHOUT_GRADIENT", ()) for m in model.modules())
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=unused)

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        v = value.detach().float().clone()
        dist.all_reduce(v)
        return v / self.world

    def broadcast_flag(self, flag: bool) -> bool:
        import torch.distributed as dist

        t = torch.tensor([1 if flag else 0], device=self.device)
        dist.broadcast(t, src=0)
        return bool(t.item())

    def shared_random_seed(self) -> int:
        import torch.distributed as dist

        t = torch.randint(0, 2**31 - 1, (1,), device=self.device) if self.rank == 0 else torch.zeros(1, dtype=torch.long, device=self.device)
        dist.broadcast(t, src=0)
        return int(t.item())

    def gather_rng_states(self) -> list:
        import torch.distributed as dist

        states = [None] * self.world
        dist.all_gather_object(states, torch.get_rng_state())
        return [torch.as_tensor(s) for s in states]

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()


# =========================================================================== the loop
def fit(
    model: nn.Module,
    train_data,
    val_data=None,
    *,
    loss="cross_entropy",
    epochs: int | None = None,
    steps: int | None = None,
    optimizer="adamw",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    scheduler=None,
    device=None,
    amp=False,
    grad_clip: float | None = None,
    metrics=("accuracy",),
    callbacks: Iterable[Callback] = (),
    batch_size: int = 32,
    target: str | None = None,
    eval_every: int | None = None,
    seed: int | None = 0,
    num_workers: int = 0,
    progress: bool | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_meta: Mapping | None = None,
    resume: str | os.PathLike | None = None,
    distributed: bool | None = None,
) -> History:
    """Train ``model`` and return its :class:`History`.

    Length: exactly one of ``epochs`` (full passes; one record per epoch) or ``steps``
    (optimizer steps; a record every ``eval_every`` steps, default ``steps // 10``).

    Arguments
        loss        "cross_entropy" (default), "mse" or ``callable(outputs, target) -> scalar``.
        optimizer   "adamw" (default), "adam", "sgd" (momentum 0.9), an Optimizer, or
                    ``callable(params) -> Optimizer``; ``lr`` and ``weight_decay`` feed the names.
        scheduler   None, "cosine", "onecycle", an LRScheduler, or
                    ``callable(optimizer, total_steps)``; stepped after every optimizer step.
        device      default :func:`lecturekit.env.device` (CUDA, then MPS, then CPU).
        amp         False; True = bf16 autocast on the CPU, fp16 on CUDA (with a GradScaler);
                    or "bf16" / "fp16" explicitly.
        grad_clip   max global gradient norm (``clip_grad_norm_``), off by default.
        metrics     validation metrics: names ("accuracy", "top5") or callables
                    ``(scores (N, K), labels (N,)) -> float``, or a dict name -> either.
        callbacks   :class:`Callback` objects, e.g. ``viz.LiveCurves()``.
        target      the label key to train on when labels are dicts ("verb", "noun", "action").
        seed        seeds the shuffling (epoch ``e`` uses ``seed + e``) and torch's global RNG
                    (dropout) at the start; ``None`` leaves both random. Seed the model's
                    initialisation yourself (:func:`seed_everything`) before building it.
        progress    a progress bar (``tqdm.auto``); default: on unless headless.
        checkpoint  a path: after each record the model, optimizer, scheduler, history and RNG
                    state are saved there (atomically); ``checkpoint_meta`` (architecture name and
                    kwargs, see :func:`lecturekit.checkpoint.save_checkpoint`) is stored with them.
        resume      a checkpoint written by ``checkpoint=``: training continues after its last
                    record with the same optimizer state; on the CPU the resumed run gives the
                    same history as an uninterrupted one (epoch mode).
        distributed None (default): data-parallel when launched by ``torchrun`` with more than one
                    process (or when a process group of size > 1 is already initialised), a
                    single process otherwise; False forces one process, True requires several.

    Several processes (``torchrun --nproc_per_node=N script.py``)
        The model is wrapped in ``DistributedDataParallel`` (NCCL on GPUs, each process on
        ``cuda:<LOCAL_RANK>``; Gloo on the CPU). ``batch_size`` stays the GLOBAL batch: each process
        takes ``batch_size / N`` samples (it must divide) through a :class:`GlobalBatchSampler`
        that shuffles with the same seeds as one process does, so one step sees the same samples
        as a single process with the same ``batch_size`` and, the gradients being averaged,
        computes the same update (to floating-point reduction order). The recorded losses are averaged
        over processes; validation runs on the whole set in every process (identical records);
        dropout is seeded with ``seed + rank``. Only rank 0 shows progress, runs the callbacks
        (its ``state.stop`` is sent to all) and writes the checkpoint (with the RNG state of
        every rank, so a resumed run continues each rank's stream). ``fit`` initialises the
        default process group if needed and leaves it initialised for the rest of the program.
        A ready ``DataLoader`` is refused (it cannot be sharded); pass a Dataset or tensors.
    """
    _check_length(epochs, steps)
    dev = _resolve_device(device)
    amp_dtype = _amp_dtype(amp, dev)
    loss_fn = _resolve_loss(loss)
    metric_fns = _resolve_metrics(metrics)
    callbacks = _checked_callbacks(callbacks)

    ddp = _Distributed.setup(distributed, dev)
    if ddp is not None:
        dev = ddp.device
    if seed is not None:
        torch.manual_seed(seed if ddp is None else seed + ddp.rank)
    model.to(dev)
    train_ds = _as_dataset(train_data, "train_data")
    val_loader = None if val_data is None else _loader(val_data, "val_data", max(batch_size, 64), False, None)
    if ddp is None:
        steps_per_epoch = len(train_ds) if isinstance(train_ds, DataLoader) else math.ceil(len(train_ds) / batch_size)
    else:
        steps_per_epoch = ddp.steps_per_epoch(train_ds, batch_size)
        if seed is None:
            seed = ddp.shared_random_seed()  # every rank must shuffle alike
    if steps_per_epoch == 0:
        raise ValueError("train_data is empty")
    total_steps = epochs * steps_per_epoch if epochs is not None else steps
    if eval_every is None:
        eval_every = steps_per_epoch if epochs is not None else max(1, steps // 10)
    by_epoch = epochs is not None and eval_every == steps_per_epoch  # every record closes an epoch

    opt = _make_optimizer(optimizer, model, lr, weight_decay)
    sched = _make_scheduler(scheduler, opt, total_steps)
    scaler = torch.amp.GradScaler(dev.type) if (amp_dtype == torch.float16 and dev.type == "cuda") else None

    state = FitState(model=model, optimizer=opt, history=History(), total_steps=total_steps, epochs=epochs)
    if resume is not None:
        ck = load_training_state(resume, model, architecture=(checkpoint_meta or {}).get("architecture"))
        _restore_training_state(ck, state, sched, scaler, ddp)
    history = state.history
    train_model = model if ddp is None else ddp.wrap(model)
    lead = ddp is None or ddp.rank == 0  # the process that logs, calls back and checkpoints
    if ddp is not None:
        ddp.has_callbacks = bool(callbacks)  # the same on every rank: decides the stop broadcasts
    if not lead:
        callbacks = []
    bar = _progress_bar(progress, lead, state)

    time_offset = history.seconds[-1] if history.seconds else 0.0
    start = time.perf_counter()
    _call(callbacks, "on_fit_start", state)

    train_model.train()
    running, running_n = 0.0, 0  # train losses since the last record
    try:
        while state.step < total_steps and not state.stop:
            # Shuffling of epoch e is seeded by (seed + e): a resumed run sees the same batches.
            if ddp is None:
                loader = _loader(train_ds, "train_data", batch_size, True, None if seed is None else seed + state.epoch, num_workers)
            else:
                loader = ddp.loader(train_ds, batch_size, seed, state.epoch, num_workers)
            skip = state.step - state.epoch * steps_per_epoch  # steps of this pass already done
            for i, batch in enumerate(loader):
                if i < skip:
                    continue
                # --- one optimizer step
                loss_value, shown = _forward_loss(train_model, batch, target, dev, amp_dtype, loss_fn, ddp, state.step)
                _backward_and_step(loss_value, model, opt, scaler, grad_clip)
                if sched is not None:
                    sched.step()
                state.step += 1
                state.last_loss = shown.item()
                history.step_loss.append(state.last_loss)
                running += state.last_loss
                running_n += 1
                if bar is not None:
                    bar.update(1)
                _call(callbacks, "on_step_end", state)
                if ddp is not None and ddp.has_callbacks:
                    state.stop = ddp.broadcast_flag(state.stop)
                if i + 1 == steps_per_epoch:
                    state.epoch += 1
                # --- a record: train loss, learning rate, validation; then checkpoint and callbacks
                if state.step % eval_every == 0 or state.step == total_steps or state.stop:
                    record = {
                        "epoch": state.epoch if by_epoch else state.step / steps_per_epoch,
                        "step": state.step,
                        "by_epoch": by_epoch,
                        "train_loss": running / max(1, running_n),
                        "lr": opt.param_groups[0]["lr"],
                    }
                    running, running_n = 0.0, 0
                    if val_loader is not None:
                        val = _run_eval(model, val_loader, dev, loss_fn, metric_fns, target, amp_dtype, "val_data")
                        record.update({f"val_{k}": v for k, v in val.items()})
                    history.records.append(record)
                    history.seconds.append(time_offset + time.perf_counter() - start)
                    if bar is not None:
                        bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k.startswith(("train_loss", "val_"))})
                    if checkpoint is not None:
                        _save_checkpoint(checkpoint, checkpoint_meta, state, sched, scaler, ddp, lead)
                    _call(callbacks, "on_eval_end", state)
                    if ddp is not None and ddp.has_callbacks:
                        state.stop = ddp.broadcast_flag(state.stop)
                if state.step >= total_steps or state.stop:
                    break
    finally:
        if bar is not None:
            bar.close()
    _call(callbacks, "on_fit_end", state)
    return history


# =========================================================================== the parts of fit
def _check_length(epochs: int | None, steps: int | None) -> None:
    if (epochs is None) == (steps is None):
        raise ValueError(f"give exactly one of epochs= or steps=, got epochs={epochs!r}, steps={steps!r}")
    length = epochs if epochs is not None else steps
    if not isinstance(length, int) or length < 1:
        raise ValueError(f"{'epochs' if epochs is not None else 'steps'} must be a positive int, got {length!r}")


_HOOKS = ("on_fit_start", "on_step_end", "on_eval_end", "on_fit_end")


def _checked_callbacks(callbacks: Iterable) -> list:
    callbacks = list(callbacks)
    for cb in callbacks:
        if not any(hasattr(cb, h) for h in _HOOKS):
            raise TypeError(f"callback {cb!r} has none of the Callback hooks")
    return callbacks


def _call(callbacks: list, hook: str, state: FitState) -> None:
    """Run one hook of every callback (a callback may define only some of them)."""
    for cb in callbacks:
        getattr(cb, hook, lambda s: None)(state)


def _restore_training_state(ck: Mapping, state: FitState, sched, scaler, ddp: _Distributed | None) -> None:
    """Continue from a training checkpoint: optimizer, scheduler, scaler, history, counters, RNG."""
    state.optimizer.load_state_dict(ck["optimizer"])
    if sched is not None and ck.get("scheduler") is not None:
        sched.load_state_dict(ck["scheduler"])
    if scaler is not None and ck.get("scaler") is not None:
        scaler.load_state_dict(ck["scaler"])
    state.history = History.from_dict(ck.get("history", {}))
    state.epoch, state.step = int(ck.get("epoch", 0)), int(ck.get("step", 0))
    ranks = ck.get("rng_torch_ranks")
    if ddp is not None and isinstance(ranks, list) and len(ranks) == ddp.world:
        torch.set_rng_state(ranks[ddp.rank])
    elif "rng_torch" in ck:
        torch.set_rng_state(ck["rng_torch"])


def _progress_bar(progress: bool | None, lead: bool, state: FitState):
    """A tqdm bar over the optimizer steps (default: on unless headless; rank 0 only), or None."""
    show = (not headless()) if progress is None else bool(progress)
    if not (show and lead and state.step < state.total_steps):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=state.total_steps, initial=state.step, desc="fit", unit="step", leave=True)


def _forward_loss(train_model, batch, target, dev, amp_dtype, loss_fn, ddp: _Distributed | None, step: int):
    """Forward one training batch under autocast: ``(loss, loss shown)``, the second averaged
    over processes (the same on every rank). A non-finite loss stops training with advice."""
    x, y = _split_batch(batch, target, "train_data")
    x, y = _to_input(x, dev), y.to(dev)
    with _autocast(dev, amp_dtype):
        out = train_model(x)
        loss_value = loss_fn(out.float() if amp_dtype is not None else out, y)
    shown = loss_value if ddp is None else ddp.mean(loss_value)
    if not torch.isfinite(shown):
        raise FloatingPointError(
            f"loss became {shown.item()} at step {step + 1}; lower lr, clip gradients "
            "(grad_clip=1.0) or check the inputs"
        )
    return loss_value, shown


def _backward_and_step(loss_value: torch.Tensor, model: nn.Module, opt, scaler, grad_clip: float | None) -> None:
    """Backward, optional gradient clipping, optimizer step (through the GradScaler with fp16)."""
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss_value).backward()
        if grad_clip is not None:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(opt)
        scaler.update()
    else:
        loss_value.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()


def _save_checkpoint(path, meta, state: FitState, sched, scaler, ddp: _Distributed | None, lead: bool) -> None:
    """Write the training state (rank 0, with every rank's RNG state); all ranks wait for the file."""
    rng_ranks = None if ddp is None else ddp.gather_rng_states()
    if lead:
        save_training_state(path, state.model, state.optimizer, scheduler=sched, scaler=scaler,
                            history=state.history.to_dict(), epoch=state.epoch, step=state.step,
                            meta=meta, rng_ranks=rng_ranks)
    if ddp is not None:
        ddp.barrier()  # the file is complete before any rank goes on (and may resume from it)
