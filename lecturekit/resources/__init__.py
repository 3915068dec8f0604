"""Files that ship inside the package: small pretrained checkpoints and result tables.

On Colab, or for a student who downloaded one notebook, there is no clone of the repository: the
install cell pip-installs lecturekit and nothing else. Everything a notebook reads at run time
therefore lives here, inside the package, and is found with :mod:`importlib.resources`::

    lecturekit/resources/
        checkpoints/toykitchens_frame_cnn.pt / .json   frame encoder (scripts/train_checkpoints.py)
        results/anticipation_toykitchens.json          benchmark table (scripts/bench_anticipation.py)

>>> from lecturekit import resources
>>> path = resources.resource_path("checkpoints/toykitchens_frame_cnn.pt")
>>> table = resources.load_json("results/anticipation_toykitchens.json")

**Checkout override.** In a clone of the repository, ``data/<same relative path>`` (for example
``data/checkpoints/toykitchens_frame_cnn.pt``) wins over the shipped file, so an instructor can
retrain into ``data/`` without touching the package; to ship the new file, write it here (the
scripts' default) and commit it. Keep each file small (a few MB at most): the wheel carries it.

Anything else a notebook needs is regenerated on first use and cached under
``lecturekit.data.cache_dir()`` (ToyKitchens renders, per-frame features).

Where it sits: beside ``env``; it imports only ``env.repo_root`` (lazily), so every floor may use it.
"""

from __future__ import annotations

import json
import math
from importlib import resources as _importlib_resources
from pathlib import Path, PurePosixPath

__all__ = ["checkout_path", "load_json", "resource_path", "shipped_files", "shipped_path", "strict_json", "write_json"]

# Kinds of shipped files: a subfolder here and its override folder under the checkout's data/.
KINDS = ("checkpoints", "results")


def _relative(relpath: str) -> PurePosixPath:
    rel = PurePosixPath(relpath)
    if rel.is_absolute() or ".." in rel.parts or len(rel.parts) < 2 or rel.parts[0] not in KINDS:
        raise ValueError(f"resource path must be '<kind>/<file>' with kind in {KINDS}, got {relpath!r}")
    return rel


def shipped_path(relpath: str) -> Path:
    """The file ``relpath`` (e.g. ``"checkpoints/toykitchens_frame_cnn.pt"``) inside the installed
    package, whether or not it exists. Wheels install unpacked, so this is a real path."""
    return Path(str(_importlib_resources.files(__name__).joinpath(*_relative(relpath).parts)))


def checkout_path(relpath: str) -> Path | None:
    """``data/<relpath>`` of the course checkout holding this package, or None for a pip install."""
    from ..env import repo_root

    root = repo_root()
    return None if root is None else root / "data" / Path(*_relative(relpath).parts)


def resource_path(relpath: str) -> Path:
    """Where ``relpath`` is read from: the checkout's ``data/<relpath>`` when it exists (an
    instructor's override), else the shipped file. ``FileNotFoundError`` names both places."""
    override = checkout_path(relpath)
    if override is not None and override.is_file():
        return override
    shipped = shipped_path(relpath)
    if shipped.is_file():
        return shipped
    where = f"{shipped}" + (f" or {override}" if override is not None else "")
    raise FileNotFoundError(f"no {relpath} at {where}")


def load_json(relpath: str):
    """A shipped JSON table (``results/*.json``, ``checkpoints/*.json``), parsed."""
    return json.loads(resource_path(relpath).read_text())


def strict_json(obj):
    """``obj`` with every non-finite float (NaN, +-inf) replaced by None, recursively through dicts,
    lists and tuples (tuples become lists), so that it serialises as standard JSON (``null``) rather
    than as Python's ``NaN`` / ``Infinity``, which other JSON readers reject.

    >>> strict_json({"t": float("inf"), "p": [0.5, float("nan")]})
    {'t': None, 'p': [0.5, None]}
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def write_json(path, obj) -> Path:
    """Write a result table as the scripts ship them: strict JSON (:func:`strict_json`), indent 1,
    a trailing newline; parent folders are created. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(strict_json(obj), indent=1, allow_nan=False) + "\n")
    return path


def shipped_files() -> list[str]:
    """Every file shipped here, as ``'<kind>/<file>'`` (sorted)."""
    root = _importlib_resources.files(__name__)
    out = []
    for kind in KINDS:
        folder = root.joinpath(kind)
        if folder.is_dir():
            out += [f"{kind}/{f.name}" for f in folder.iterdir() if f.is_file() and not f.name.startswith(".")]
    return sorted(out)
