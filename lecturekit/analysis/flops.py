"""Parameters, FLOPs and latency of a model: the numbers behind "3×3×3 convs are expensive".

The convention, stated once:

    1 multiply-accumulate (MAC) = 2 floating-point operations (FLOPs)

* :func:`count_flops` returns FLOPs exactly as ``torch.utils.flop_counter.FlopCounterMode``
  counts them: **2 FLOPs per MAC** for convolutions, matrix products (``mm``, ``addmm``,
  ``bmm``) and attention; biases, activations, normalisation, pooling, softmax and data movement
  (slicing, ``cat``, the temporal shift) count **zero**.
* :func:`count_macs` = ``count_flops // 2``. Almost every "GFLOPs" figure in video papers, in
  torchvision's model tables and on the lecture slides is really **GMACs**: C3D at 3×16×112×112
  is 38.55 GMACs = 77.10 GFLOPs, and the slide's "39.6 GFLOP" is the MAC count (its FC rows are
  27× too large; see the C3D notebook).
* :func:`flop_table` breaks the count down per module (output shape, parameters, FLOPs, MACs).

Counting a paper-size network on a laptop: build it under ``with torch.device("meta"):`` and
pass a meta tensor; shapes, parameters and FLOPs are computed without memory or arithmetic.

>>> import torch
>>> from torch import nn
>>> conv = nn.Conv3d(3, 64, 3, padding=1)
>>> count_flops(conv, torch.zeros(1, 3, 16, 112, 112, device="meta")) // 2    # conv1a of C3D, MACs
1040449536
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (all of them, or those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _call(model: nn.Module, x):
    return model(*x) if isinstance(x, (tuple, list)) else model(x)


def _flop_counts(model: nn.Module, x) -> tuple[int, dict[str, int]]:
    with torch.no_grad(), FlopCounterMode(display=False, depth=None) as counter:
        _call(model, x)
    per_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    return counter.get_total_flops(), per_module


def count_flops(model: nn.Module, x: Tensor | Sequence[Tensor]) -> int:
    """FLOPs of one forward pass ``model(x)`` (a tuple ``x`` is unpacked), 2 FLOPs per MAC.

    Runs the forward once under ``FlopCounterMode`` and ``torch.no_grad()``; meta tensors work.
    """
    return _flop_counts(model, x)[0]


def count_macs(model: nn.Module, x: Tensor | Sequence[Tensor]) -> int:
    """Multiply-accumulates of one forward pass: ``count_flops(model, x) // 2``."""
    return count_flops(model, x) // 2


def flop_table(model: nn.Module, x: Tensor | Sequence[Tensor]) -> list[dict]:
    """Per-module breakdown of one forward pass, in execution order.

    One row per leaf module (a module without children), plus any module that computes
    something itself (e.g. the ``bmm`` of an attention block). Each row is a dict with
    ``name``, ``type``, ``shape`` (output shape, or None), ``params`` (own parameters),
    ``flops`` (the module's own FLOPs, children excluded) and ``macs`` (= flops // 2).
    Rows add up: ``sum(r["flops"] for r in rows) == count_flops(model, x)``.
    """
    order: list[str] = []
    shapes: dict[str, tuple | None] = {}
    names = {m: n for n, m in model.named_modules()}

    def hook(module, _inputs, output):
        name = names[module]
        if name not in shapes:
            order.append(name)
        shapes[name] = tuple(output.shape) if isinstance(output, Tensor) else None

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        total, counted = _flop_counts(model, x)
    finally:
        for h in handles:
            h.remove()
    root = type(model).__name__
    modules = dict(model.named_modules())

    def flops_of(name: str) -> int:
        return counted.get(f"{root}.{name}" if name else root, 0)

    rows = []
    for name in order:
        module = modules[name]
        children = [f"{name}.{c}" if name else c for c, _ in module.named_children()]
        own = flops_of(name) - sum(flops_of(c) for c in children)
        if children and own == 0:
            continue
        rows.append(dict(name=name or root, type=type(module).__name__, shape=shapes[name],
                         params=sum(p.numel() for p in module.parameters(recurse=not children)),
                         flops=own, macs=own // 2))
    listed = sum(r["flops"] for r in rows)
    if listed != total:   # ops outside any module's forward (e.g. on the input) land in a row of their own
        rows.append(dict(name="(outside modules)", type="", shape=None, params=0, flops=total - listed,
                         macs=(total - listed) // 2))
    return rows


def format_flop_table(rows: list[dict], unit: str = "G") -> str:
    """Plain-text rendering of :func:`flop_table` rows (MACs and FLOPs in ``unit``: "G" or "M")."""
    scale = {"G": 1e9, "M": 1e6}[unit]
    lines = [f"{'module':<28} {'type':<18} {'output':<22} {'params':>12} {unit + 'MACs':>9} {unit + 'FLOPs':>9}"]
    for r in rows:
        shape = "×".join(map(str, r["shape"][1:])) if r["shape"] else ""
        lines.append(f"{r['name']:<28} {r['type']:<18} {shape:<22} {r['params']:>12,} "
                     f"{r['macs'] / scale:>9.3f} {r['flops'] / scale:>9.3f}")
    macs, flops = sum(r["macs"] for r in rows), sum(r["flops"] for r in rows)
    params = sum(r["params"] for r in rows)
    lines.append(f"{'total':<28} {'':<18} {'':<22} {params:>12,} {macs / scale:>9.3f} {flops / scale:>9.3f}")
    return "\n".join(lines)


def conv3d_cost(cin: int, cout: int, kernel: Sequence[int], output: Sequence[int], bias: bool = True) -> tuple[int, int]:
    """(parameters, FLOPs) of ``nn.Conv3d(cin, cout, kernel, bias=bias)`` producing an output of
    ``output`` = (T, H, W) positions for one clip, measured by :func:`count_params` and
    :func:`count_flops` on the meta device (nothing is allocated, so paper-sized layers are free).

    Example (C3D's conv1a, 3 -> 64 channels, 3x3x3, output 16x112x112):
        >>> conv3d_cost(3, 64, (3, 3, 3), (16, 112, 112))
        (5248, 2080899072)
    """
    kt, kh, kw = kernel
    t, h, w = output
    with torch.device("meta"):
        conv = nn.Conv3d(cin, cout, (kt, kh, kw), bias=bias)
        x = torch.zeros(1, cin, t + kt - 1, h + kh - 1, w + kw - 1)
    return count_params(conv), count_flops(conv, x)


def latency(model: nn.Module, x: Tensor | Sequence, repeats: int = 10, warmup: int = 2) -> float:
    """Median wall-clock seconds of one forward pass (``torch.no_grad``), after ``warmup`` calls.

    Synchronises CUDA around every call so GPU timings are real. Put the model in the mode you
    want to time (``model.eval()``) yourself; FLOPs do not predict latency (the temporal shift
    has zero FLOPs but moves memory).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    args = x if isinstance(x, (tuple, list)) else [x]
    # Extra positional arguments need not be tensors (e.g. ``(x, frames)``).
    cuda = any(isinstance(a, Tensor) and a.is_cuda for a in args)
    times = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            _call(model, x)
            if cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


__all__ = ["conv3d_cost", "count_flops", "count_macs", "count_params", "flop_table", "format_flop_table", "latency"]
