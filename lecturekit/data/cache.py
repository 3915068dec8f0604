"""Where generated data (ToyKitchens renders, per-frame features) is cached.

Order: the ``LECTUREKIT_CACHE`` environment variable; ``data/generated/`` of a source checkout
(git-ignored); otherwise ``~/.cache/lecturekit``. Nothing here downloads anything.
"""

from __future__ import annotations

import os
from pathlib import Path

_CACHE_ENV = "LECTUREKIT_CACHE"


def repo_root() -> Path | None:
    """The course checkout holding this package, or None for a plain pip install."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "data").is_dir():
        return root
    return None


def cache_dir(create: bool = False) -> Path:
    """The folder for generated data; created when ``create`` is true."""
    env = os.environ.get(_CACHE_ENV)
    if env:
        path = Path(env).expanduser()
    elif (root := repo_root()) is not None:
        path = root / "data" / "generated"
    else:
        path = Path.home() / ".cache" / "lecturekit"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
