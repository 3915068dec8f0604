"""The name table's machinery: ``build_model(name, preset=...)`` and ``list_models()``.

Convention every model family follows (no config framework):

* the model is a plain ``nn.Module`` with keyword constructor arguments and CPU-sized defaults;
* the class carries ``PRESETS = {"small": {...}, "paper": {...}}``: keyword arguments of the
  CPU default and of the published configuration (the paper's table named in a comment);
* a table entry may fix extra keyword arguments (``p3d_a`` = ``P3D`` with ``block="A"``).

``build_model(name, preset, **overrides)`` merges, in this order: the preset, the entry's fixed
arguments, then your overrides (``num_classes=...`` and any constructor argument).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

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
