"""Test-suite wide settings (repository root, so they reach notebooks/, solutions/, exercises/).

* Headless mode for the kernels nbval starts (environment variables set here before
  collection are inherited by those kernels): no progress bars, one final figure per training,
  one intra-op thread (the same environment as the execute command).
* Every notebook cell is marked ``notebooks`` so ``pytest -m "not notebooks"`` runs the fast
  unit suite alone.
* Volatile mime types are never compared (PNG is already skipped by nbval).
* Notebooks run from the built wheel in a fresh environment outside the checkout, as on Colab
  (``tests/outside_checkout.py``; ``--notebooks-in-checkout`` runs them in this environment).
* Parallel by default (pytest-xdist, ``-n auto --dist loadfile`` in pyproject.toml): one worker
  per CPU, at most 4 (every worker runs one single-threaded kernel or test at a time). A file is
  the unit of distribution, so all cells of a notebook run in order in one kernel of one worker.
  ``-n 0`` runs everything in this process.
"""

import importlib.util
import os
import sys
from pathlib import Path

from lecturekit.env import HEADLESS_ENV  # imports neither torch nor the course tooling

# Exactly the environment of ``python -m lecturekit.course execute`` (headless, one intra-op
# thread), so nbval re-runs the very computation whose outputs are stored in the notebooks.
for _key, _value in HEADLESS_ENV.items():
    os.environ.setdefault(_key, _value)
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

# The out-of-checkout run (tests/outside_checkout.py): its hooks and the ``outside_env`` fixture
# are re-exported here; tests import its helpers as ``lecturekit_outside_checkout``.
_spec = importlib.util.spec_from_file_location(
    "lecturekit_outside_checkout", Path(__file__).resolve().parent / "tests" / "outside_checkout.py")
sys.modules[_spec.name] = _outside = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_outside)
pytest_addoption = _outside.pytest_addoption
pytest_runtest_setup = _outside.pytest_runtest_setup
BROWSER_SKIP = "browser tests:"   # how tests/browser/browser_lab.py (require_browser) starts its skip reason
_browser_skips: list[str] = []


def pytest_runtest_logreport(report):
    # Seen in the process that prints the summary (the controller of a parallel run, whose
    # workers send it their reports): the reason tests/browser skipped, kept once.
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        if reason.startswith(BROWSER_SKIP) and reason not in _browser_skips:
            _browser_skips.append(reason)


def pytest_terminal_summary(terminalreporter, config):
    _outside.pytest_terminal_summary(terminalreporter, config)
    for line in _browser_skips:        # one clear line, even without -rs
        terminalreporter.write_line(f"SKIPPED {line}", yellow=True)


pytest_configure = _outside.pytest_configure
outside_env = _outside.outside_env


def pytest_collectstart(collector):
    path = getattr(collector, "path", None)
    if path is not None and path.suffix == ".ipynb" and hasattr(collector, "skip_compare"):
        collector.skip_compare += (
            "image/svg+xml",
            "text/html",
            "application/javascript",
            "application/vnd.jupyter.widget-view+json",
            "application/vnd.jupyter.widget-state+json",
        )


MAX_WORKERS = 4   # memory: a worker may hold a kernel that trains a model


def pytest_xdist_auto_num_workers(config):
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cpus))


# Run order: the lecture notebooks first (they hold the longest cells, minutes each), then the
# unit tests, solutions and exercises, which fill the other workers' time meanwhile (longest first
# is what keeps parallel workers busy until the end; xdist's own reordering by number of tests
# is switched off in pyproject.toml). A stable sort: each notebook's cells keep their order.
_ORDER = {"notebooks": 0, "tests": 1, "solutions": 2, "exercises": 3}


def _run_order(item) -> int:
    try:
        top = Path(item.path).resolve().relative_to(Path(__file__).resolve().parent).parts[0]
    except ValueError:
        return len(_ORDER)
    return _ORDER.get(top, len(_ORDER))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.__class__.__name__ == "IPyNbCell":
            item.add_marker(pytest.mark.notebooks)
    items.sort(key=_run_order)
