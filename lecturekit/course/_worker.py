"""The grading worker: runs ONE submitted notebook in this (separate) process.

    python -m lecturekit.course._worker NOTEBOOK INPUTS.pt OUTPUTS.pt

Started by :mod:`lecturekit.course.grading`, never by hand. It

1. loads the cases the grader sent (``weights_only=True``: plain tensors and numbers),
2. wraps the library references of the graded exercises, so that a student function calling
   the reference is recognised,
3. runs the notebook's code cells in order in an IPython shell (no Jupyter kernel), going on
   after a failing cell,
4. calls each student function on private copies of the cases and saves the outputs as plain
   data for the grader, which does all the comparing in its own process.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import torch

from .checking import MISSING, Case, Outcome, answer_candidate, call_candidate


class _Guard:
    """Wraps a reference function; records calls made while a student function is graded."""

    def __init__(self):
        self.active: str | None = None     # the exercise being graded
        self.used: set[str] = set()

    def install(self, exercise: str, reference: str) -> None:
        module_name, _, attr = reference.partition(":")
        try:
            module = importlib.import_module(module_name)
            original = getattr(module, attr)
        except (ImportError, AttributeError):
            return
        guard = self

        def wrapped(*args, **kwargs):
            if guard.active == exercise:
                guard.used.add(exercise)
            return original(*args, **kwargs)

        wrapped.__name__, wrapped.__doc__ = getattr(original, "__name__", attr), getattr(original, "__doc__", None)
        homes = {module, sys.modules.get(getattr(original, "__module__", ""), None)}
        for home in homes:
            if home is not None and getattr(home, attr, None) is original:
                setattr(home, attr, wrapped)


def _cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    sources = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            src = cell.get("source", "")
            sources.append("".join(src) if isinstance(src, list) else src)
    return sources


def main(argv: list[str]) -> int:
    notebook, inputs, outputs = (Path(a) for a in argv[:3])
    payload = torch.load(inputs, weights_only=True)
    guard = _Guard()
    for ex_id, item in payload.items():
        if item.get("reference"):
            guard.install(ex_id, item["reference"])

    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    cell_errors = []
    for index, source in enumerate(_cells(notebook)):
        result = shell.run_cell(source, store_history=False)
        err = result.error_in_exec or result.error_before_exec
        if err is not None:
            cell_errors.append(f"cell {index}: {type(err).__name__}: {str(err)[:200]}")

    results = {}
    for ex_id, item in payload.items():
        fn = shell.user_ns.get(item["name"])
        if item.get("answer") and item["name"] in shell.user_ns:
            fn = answer_candidate(fn)           # an experiment's answer: a value, not a function
        if not callable(fn):
            results[ex_id] = {"status": MISSING, "error": f"{item['name']} is {type(fn).__name__}"}
            continue
        outcomes = []
        for args, kwargs in item["cases"]:
            guard.active = ex_id
            try:
                outcome = call_candidate(fn, Case("", tuple(args), dict(kwargs)))
            finally:
                guard.active = None
            if ex_id in guard.used:
                outcome = Outcome("used reference")
            outcomes.append({"status": outcome.status, "output": outcome.output,
                             "args_after": outcome.args_after, "error": outcome.error})
        results[ex_id] = {"status": "ran", "outcomes": outcomes}
    torch.save({"results": results, "cell_errors": cell_errors}, outputs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
