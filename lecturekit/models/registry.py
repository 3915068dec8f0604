"""The name table's machinery: ``build_model(name, preset=...)`` and ``list_models()``.

Convention every model family follows (no config framework):

* the model is a plain ``nn.Module``: ``Model(num_classes, *, everything_else)`` for classifiers,
  all keyword-only for models without classes (video predictors);
* the class carries ``PRESETS = {"small": {...}, "paper": {...}}``: keyword arguments of the
  CPU default and of the published configuration (the paper's table named in a comment); the
  constructor's defaults are the "small" preset, so ``Model()`` is ``build_model(name)`` up to
  the random weights;
* the final classifier is the attribute ``head``;
* numbers a paper or its official code publishes (parameter counts, GMACs) are in
  ``PUBLISHED: dict[str, Published]`` (:mod:`lecturekit.models.published`);
* a table entry may fix extra keyword arguments (``p3d_a`` = ``P3D`` with ``block="A"``).

``build_model(name, preset, **overrides)`` merges, in this order: the preset, the entry's fixed
arguments, then your overrides (``num_classes=...`` and any constructor argument).

Two class attributes the contract tests (tests/test_models_contract.py) read:

* ``SUPPORTS_ANY_T`` (bool): ``True`` if the model accepts clips of any length T (it is then
  tested with T/2 and 2T frames); ``False`` if T is fixed by the configuration (the model must
  then reject another T with a ``ValueError``). An instance may override it when it depends on
  constructor arguments (late fusion with order-free pooling). Absent: not tested either way.
* ``example_input(preset="small", batch=2)`` (classmethod, optional): a random input the model
  built from that preset accepts, for models whose input is NOT a video (feature sequences,
  tuples of tensors: ``model(*x)``). Without it the input is a video (B, C, T, H, W) with
  C = ``in_channels`` (or ``channels``; default 3), T = ``frames`` (8) and H = W = ``size`` (32), read from the preset,
  else from the constructor's defaults. :func:`example_input` applies this rule.
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class ModelEntry:
    """One row of the name table."""

    cls: type
    fixed: dict[str, Any] = field(default_factory=dict)
    summary: str = ""

    @property
    def presets(self) -> tuple[str, ...]:
        return tuple(getattr(self.cls, "PRESETS", {"small": {}}))


def build_from_table(table: dict[str, ModelEntry], name: str, preset: str = "small", **overrides) -> nn.Module:
    if name not in table:
        close = difflib.get_close_matches(name, table, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"unknown model {name!r}.{hint} Known models: {', '.join(sorted(table))}")
    entry = table[name]
    presets = getattr(entry.cls, "PRESETS", {"small": {}})
    if preset not in presets:
        raise KeyError(f"model {name!r} has no preset {preset!r}; presets: {', '.join(presets)}")
    kwargs = {**presets[preset], **entry.fixed, **overrides}
    return entry.cls(**kwargs)


def example_input(entry: ModelEntry, preset: str = "small", batch: int = 2, seed: int = 0, **overrides):
    """A random input (seeded) for the model ``entry`` builds with ``preset`` and ``overrides``.

    Uses the class's ``example_input(preset, batch)`` when it has one, else a video
    (B, C, T, H, W) sized from the merged keyword arguments (see the module docstring).
    """
    custom = getattr(entry.cls, "example_input", None)
    if custom is not None:
        torch.manual_seed(seed)
        return custom(preset=preset, batch=batch)
    kwargs = {**getattr(entry.cls, "PRESETS", {}).get(preset, {}), **entry.fixed, **overrides}
    defaults = {k: p.default for k, p in inspect.signature(entry.cls).parameters.items()
                if p.default is not inspect.Parameter.empty}

    def value(name: str, fallback: int) -> int:
        return kwargs.get(name, defaults.get(name, fallback))

    size = value("size", 32)
    channels = value("in_channels", value("channels", 3))
    shape = (batch, channels, value("frames", 8), size, size)
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))
