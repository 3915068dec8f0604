"""Grade a folder of submitted notebooks: ``python -m lecturekit.course grade SUBMISSIONS``.

Design (why a submission cannot change the verdict's reference):

* The grader process (this module) builds each exercise's test cases and computes the expected
  outputs with ITS OWN copy of the library reference, before any student code runs, and it
  never runs student code itself.
* Each submission runs headless in a separate process (``python -m lecturekit.course._worker``):
  an IPython shell without a Jupyter kernel executes the notebook's code cells in order (a
  failing cell does not stop the rest, exactly as "Run all" with errors allowed), then calls
  the student's functions (looked up by the checks' function names) on the cases the grader
  sent, and writes back their outputs as plain data (tensors, numbers, lists). The grader reads
  them with ``torch.load(..., weights_only=True)``, so a submission cannot smuggle code into it,
  and compares them with :func:`lecturekit.course.checking.evaluate`.
* Inside the worker the library references of the graded exercises are wrapped before the
  notebook runs; a student function that simply calls the reference is reported as such.
* Every worker runs in its own process group with a wall-time limit (``--timeout``, including
  start-up); on timeout the whole group is killed and the submission is reported "timeout",
  while the other submissions are graded as usual. ``--jobs`` runs several workers at once.

Submissions: ``SUBMISSIONS/<student>.ipynb`` (the student is the file name) or
``SUBMISSIONS/<student>/*.ipynb`` (the folder name). The exercises graded in a notebook are
those listed in its metadata by build-exercises plus those named by its ``Exercise NN.M``
headings (or the ``--exercises`` list); an exercise without a registered check gets a row
"no automatic check" for grading by hand.

Output: a CSV with one row per (student, exercise): ``student, exercise, passed, status,
message``; and a summary per student and per exercise, printed and written next to the CSV
(``<out>.summary.txt``).

Student code runs with your user's rights: grade untrusted submissions inside a container or a
throw-away virtual machine.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from .checking import (ERROR, FAILED, MISSING, NOT_IMPLEMENTED, PASSED, TIMEOUT, CheckResult, Outcome,
                       error_result, evaluate, expected_outputs, get_check)
from .exercises import HEADING_RE

MANUAL = "manual"


@dataclass
class Row:
    student: str
    exercise: str
    passed: bool | None
    status: str
    message: str
    notebook: str = ""


def find_submissions(folder: str | Path) -> list[tuple[str, Path]]:
    """``(student, notebook)`` pairs, sorted: top-level notebooks and one level of folders."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"grade: no folder {folder}")
    found = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_file() and path.suffix == ".ipynb":
            found.append((path.stem, path))
        elif path.is_dir():
            for nb in sorted(path.rglob("*.ipynb")):
                if ".ipynb_checkpoints" not in nb.parts:
                    found.append((path.name, nb))
    return found


def exercises_in(path: Path) -> list[str]:
    """Exercise ids a notebook contains (metadata from build-exercises, then headings)."""
    import json

    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    ids = list(nb.get("metadata", {}).get("lecturekit", {}).get("exercises", []))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            src = cell.get("source", "")
            src = "".join(src) if isinstance(src, list) else src
            ids += [m["id"] for m in HEADING_RE.finditer(src)]
    return list(dict.fromkeys(str(i) for i in ids))


class _Prepared:
    """Cases and expected outputs of one exercise, computed once in the grader."""

    def __init__(self, ex_id: str, seed: int):
        self.spec = get_check(ex_id)
        self.cases = self.spec.make_cases(seed)
        self.expected = expected_outputs(self.spec, self.cases)
        ref = self.spec.reference
        self.payload = {"name": self.spec.name, "reference": ref if isinstance(ref, str) else "",
                        "answer": self.spec.answer,
                        "cases": [(c.args, c.kwargs) for c in self.cases]}


def _run_worker(notebook: Path, payload: dict, timeout: float) -> tuple[str, dict | None, str]:
    """Run one submission in a fresh process; ``(status, results, log tail)``."""
    with tempfile.TemporaryDirectory(prefix="lecturekit-grade-") as tmp:
        tmp = Path(tmp)
        inputs, outputs, work = tmp / "inputs.pt", tmp / "outputs.pt", tmp / "work"
        work.mkdir()
        torch.save(payload, inputs)
        env = dict(os.environ)
        env.update({"LECTUREKIT_HEADLESS": "1", "TQDM_DISABLE": "1", "MPLBACKEND": "Agg",
                    "PYDEVD_DISABLE_FILE_VALIDATION": "1", "IPYTHONDIR": str(tmp / "ipython")})
        cmd = [sys.executable, "-m", "lecturekit.course._worker", str(notebook.resolve()), str(inputs), str(outputs)]
        kwargs = {"start_new_session": True} if os.name == "posix" else {}
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, **kwargs)
        tail: deque[bytes] = deque(maxlen=64)   # keep only the end of what the notebook prints

        def drain():
            for line in iter(proc.stdout.readline, b""):
                tail.append(line[:500])

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            proc.wait(timeout=timeout)
            status = "done"
        except subprocess.TimeoutExpired:
            _kill(proc)
            status = TIMEOUT
        reader.join(timeout=5)
        log = b"".join(tail).decode("utf-8", "replace")
        if status == TIMEOUT:
            return TIMEOUT, None, log
        if proc.returncode != 0 or not outputs.is_file():
            return "crashed", None, log + f"\n(exit code {proc.returncode})"
        try:
            return "done", torch.load(outputs, weights_only=True), log
        except Exception as err:  # a file the worker did not write properly
            return "crashed", None, log + f"\n(unreadable results: {type(err).__name__})"


def _kill(proc: subprocess.Popen) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover
            proc.kill()
    except ProcessLookupError:
        pass
    proc.wait()


def _outcomes(raw: list) -> list[Outcome]:
    return [Outcome(r.get("status", "raised"), r.get("output"), list(r.get("args_after", [])), r.get("error", ""))
            for r in raw]


def _grade_one(student: str, notebook: Path, prepared: dict[str, _Prepared], wanted: list[str],
               timeout: float) -> list[Row]:
    auto = [e for e in wanted if e in prepared]
    rows = [Row(student, e, None, MANUAL, "no automatic check for this exercise: grade by hand", notebook.name)
            for e in wanted if e not in prepared]
    if not auto:
        return rows
    status, results, log = _run_worker(notebook, {e: prepared[e].payload for e in auto}, timeout)
    for ex_id in auto:
        p = prepared[ex_id]
        if status == TIMEOUT:
            res = error_result(p.spec, TIMEOUT, f"the notebook did not finish within {timeout:g} s and was "
                                                "stopped (an endless loop?)")
        elif status != "done":
            last = [ln for ln in log.strip().splitlines() if ln.strip()][-1:] or ["no output"]
            res = error_result(p.spec, ERROR, f"the notebook could not be run: {last[0][:200]}")
        else:
            res = _verdict(p, results["results"].get(ex_id, {}))
        rows.append(Row(student, ex_id, res.passed, res.status, res.summary, notebook.name))
    return rows


def _verdict(p: _Prepared, item: dict) -> CheckResult:
    if item.get("status") == MISSING:
        what = f"variable {p.spec.name}" if p.spec.answer else f"function {p.spec.name}(...)"
        return error_result(p.spec, MISSING, f"the notebook defines no {what} "
                                             f"({item.get('error', 'not found')})")
    outcomes = _outcomes(item.get("outcomes", []))
    if len(outcomes) != len(p.cases):
        return error_result(p.spec, ERROR, "the grading process returned incomplete results")
    return evaluate(p.spec, p.cases, p.expected, outcomes)


def grade(submissions: str | Path, *, out: str | Path | None = "grades.csv", timeout: float = 120,
          jobs: int = 1, exercises: list[str] | None = None, seed: int = 0, verbose: bool = True) -> list[Row]:
    """Grade every submission in ``submissions``; write the CSV (unless ``out`` is None) and
    return the rows. See the module docstring for the design."""
    pairs = find_submissions(submissions)
    plan = [(student, nb, list(exercises) if exercises else exercises_in(nb)) for student, nb in pairs]
    prepared: dict[str, _Prepared] = {}
    for ex_id in sorted({e for _, _, ids in plan for e in ids}):
        try:
            prepared[ex_id] = _Prepared(ex_id, seed)
        except KeyError:
            continue  # no registered check: graded by hand
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(_grade_one, s, nb, prepared, ids, timeout) for s, nb, ids in plan]
        per_notebook = [f.result() for f in futures]
    rows = _merge([r for rows in per_notebook for r in rows])
    for student, nb, ids in plan:
        if not ids:
            rows.append(Row(student, "", False, ERROR, f"{nb.name}: no exercise found in this notebook", nb.name))
    rows.sort(key=lambda r: (r.student, r.exercise))
    text = summary(rows, elapsed=time.perf_counter() - start)
    if out is not None:
        write_csv(rows, out)
        Path(str(out) + ".summary.txt").write_text(text, encoding="utf-8")
    if verbose:
        print(text)
        if out is not None:
            print(f"wrote {out} and {out}.summary.txt")
    return rows


def _merge(rows: list[Row]) -> list[Row]:
    """One row per (student, exercise): if a student handed in several notebooks with the same
    exercise, the best verdict counts."""
    rank = {PASSED: 0, FAILED: 1, NOT_IMPLEMENTED: 2, MISSING: 3, ERROR: 4, TIMEOUT: 5, MANUAL: 6}
    best: dict[tuple[str, str], Row] = {}
    for row in rows:
        key = (row.student, row.exercise)
        if key not in best or rank.get(row.status, 9) < rank.get(best[key].status, 9):
            best[key] = row
    return list(best.values())


def write_csv(rows: list[Row], path: str | Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "exercise", "passed", "status", "message"])
        for r in rows:
            writer.writerow([r.student, r.exercise, "" if r.passed is None else r.passed, r.status,
                             f"{r.notebook}: {r.message}" if r.notebook else r.message])


def summary(rows: list[Row], elapsed: float | None = None) -> str:
    students = sorted({r.student for r in rows})
    exercises = sorted({r.exercise for r in rows if r.exercise})
    lines = ["Per student (automatic checks passed):"]
    width = max([len(s) for s in students] + [7])
    for s in students:
        mine = [r for r in rows if r.student == s and r.passed is not None]
        ok = sum(bool(r.passed) for r in mine)
        bad = [f"{r.exercise or '-'} {r.status}" for r in mine if not r.passed]
        lines.append(f"  {s:<{width}}  {ok}/{len(mine)}" + (f"   ({', '.join(bad)})" if bad else ""))
    lines.append("Per exercise (students passing):")
    for e in exercises:
        mine = [r for r in rows if r.exercise == e]
        if all(r.passed is None for r in mine):
            lines.append(f"  {e}  no automatic check ({len(mine)} submissions to grade by hand)")
            continue
        ok = sum(bool(r.passed) for r in mine)
        counts = {}
        for r in mine:
            counts[r.status] = counts.get(r.status, 0) + 1
        detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        lines.append(f"  {e}  {ok}/{len(mine)}   ({detail})")
    if elapsed is not None:
        lines.append(f"graded {len(students)} student(s) in {elapsed:.1f} s")
    return "\n".join(lines) + "\n"


__all__ = ["Row", "exercises_in", "find_submissions", "grade", "summary", "write_csv"]
