"""Execute notebooks in place and store their outputs, exactly the way CI runs them.

``python -m lecturekit.course execute notebooks/00_tour.ipynb [...]``

Each notebook runs top to bottom in a fresh kernel of the current Python environment, from its
own folder, in headless mode (no progress bars, one final figure per training run), with the
same environment variables the test suite sets. Outputs are written back into the file; timing
metadata is not recorded, so re-executing an unchanged notebook changes only what really moved.
A per-notebook wall-time report is printed at the end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

from ..env import HEADLESS_ENV
from .notebook import KERNELSPEC



def apply_headless_env() -> None:
    """Set the headless environment for the kernels this process starts (and for itself)."""
    for key, value in HEADLESS_ENV.items():
        os.environ[key] = value


def execute_notebook(path: str | Path, *, timeout: int = 900, allow_errors: bool = False) -> float:
    """Execute one notebook in place; return its wall time in seconds.

    Cells tagged ``raises-exception`` may raise (as nbval allows); any other error stops the run
    with ``nbclient``'s CellExecutionError unless ``allow_errors`` is true.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"execute: no notebook at {path}")
    apply_headless_env()
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=allow_errors,
        record_timing=False,
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    for cell in nb.cells:
        cell.get("metadata", {}).pop("execution", None)
    nbformat.write(nb, path)
    return elapsed


def execute_many(paths: Iterable[str | Path], *, timeout: int = 900) -> dict[str, float]:
    """Execute several notebooks; print and return their wall times."""
    times: dict[str, float] = {}
    for p in paths:
        print(f"executing {p} ...", flush=True)
        times[str(p)] = execute_notebook(p, timeout=timeout)
        print(f"  done in {times[str(p)]:.1f} s", flush=True)
    if times:
        width = max(len(k) for k in times)
        print("\nwall time per notebook")
        for k, v in times.items():
            print(f"  {k:<{width}}  {v:7.1f} s")
        print(f"  {'total':<{width}}  {sum(times.values()):7.1f} s")
    return times
