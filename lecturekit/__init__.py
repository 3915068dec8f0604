"""lecturekit: the helper library of the course "From Action Recognition to Action Anticipation".

Floors of the house (a module imports only from floors below it)::

    course                        exercises, graders, notebook execution
    viz, analysis                 plots, widgets, FLOP/parameter tables, AGA analysis
    train, checkpoint, metrics,   the fit loop, the checkpoint file, top-k / mean top-5 recall,
    losses                        anticipation losses
    models                        one file per model family, each a reading of its paper
    layers                        shared blocks (shape checks, temporal shift, conv-RNN cells)
    data                          ToyKitchens, moving glyphs, EPIC-KITCHENS-100 / frame folders

``env`` (device, doctor, headless switch, the cache folder) sits below them all and imports
nothing of the library;
``resources`` (the checkpoints and result tables shipped inside the package) sits beside it too.

Importing ``lecturekit`` is cheap: sub-packages load on first use, so ``import lecturekit``
pulls in neither matplotlib nor ipywidgets and never touches the network.
"""

from __future__ import annotations

import importlib

from .env import device, doctor, headless, in_colab, library_version, set_headless

__version__ = library_version()     # from the package metadata (pyproject.toml), the one place it is set

_SUBMODULES = (
    "data", "layers", "models", "losses", "metrics", "train", "checkpoint",
    "viz", "analysis", "course", "features", "env", "resources",
)

__all__ = ["__version__", "device", "doctor", "headless", "in_colab", "set_headless", *_SUBMODULES]


def __getattr__(name: str):
    # Lazy sub-packages: ``lecturekit.data`` imports lecturekit/data on first access.
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'lecturekit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
