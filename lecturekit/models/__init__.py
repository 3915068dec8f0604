"""Models: one file per family, each a reading of its paper, and the name table.

>>> from lecturekit.models import build_model, list_models
>>> model = build_model("c3d", preset="small", num_classes=10)   # doctest: +SKIP

Every entry is ``name -> ModelEntry(class, fixed kwargs, one-line summary)``; the class holds
its ``PRESETS`` ("small" for the CPU, "paper" for the published sizes). Explicit imports only,
so one look at this file shows every model of the course.
"""

from __future__ import annotations

from torch import nn

from .registry import ModelEntry, build_from_table

# --- recognition models (issue: recognition) ---

# --- recurrent and video-prediction models (issue: recurrent) ---

# --- anticipation models (issue: anticipation) ---

MODELS: dict[str, ModelEntry] = {
    # --- recognition table rows ---
    # --- recurrent table rows ---
    # --- anticipation table rows ---
}


def list_models() -> list[str]:
    """Every registered model name, sorted."""
    return sorted(MODELS)


def build_model(name: str, preset: str = "small", **overrides) -> nn.Module:
    """Build a registered model by name.

    ``preset`` is ``"small"`` (the CPU default used by the notebooks) or ``"paper"`` (the
    published configuration); ``overrides`` (e.g. ``num_classes=10``, ``frames=16``) go to the
    constructor last. Unknown names or presets raise ``KeyError`` listing the known ones.
    """
    return build_from_table(MODELS, name, preset, **overrides)


__all__ = ["MODELS", "ModelEntry", "build_model", "list_models"]
