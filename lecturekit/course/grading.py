"""Grade a folder of submitted notebooks: ``python -m lecturekit.course grade SUBMISSIONS``.

Design (what a submission can and cannot change):

* The grader process (this module) builds each exercise's test cases and computes the expected
  outputs with ITS OWN copy of the library reference, before any student code runs, and it
  never runs student code itself. The comparison (:func:`lecturekit.course.checking.evaluate`)
  happens here, on the plain data the worker sends back.
* Each notebook runs in a worker of its own (:mod:`lecturekit.course._worker`): a supervisor
  process that keeps every process the notebook starts in its tree and kills them all when the
  worker ends (also on timeout, Ctrl-C and SIGTERM), and below it the runner, which executes
  the code cells in the notebook's own folder (working directory and ``sys.path``), with a
  memory limit (``--memory``). The runner has no results file: it talks to the grader over
  inherited pipes moved to unpredictable descriptors; the grader sends the test cases and a
  one-time token only after the runner has finished the last cell and shown the secret it sent
  before any student code ran. Anything else on the channel (a second "finished", a wrong
  secret or token, an unreadable message) marks the notebook "error: interfered with grading".
* An exercise whose function is still the unchanged stub (its every definition in the notebook
  starts by raising ``NotImplementedError``) is never reported as passed, whatever the worker
  says.
* Reference detection by what runs: the grader lists the code of each exercise's reference
  (:func:`reference_code`: the reference, its module's private helpers, the library code it runs
  on the test cases); the worker traces the student function's calls on the cases and reports a
  case that ran any of it. Such an exercise gets the status "uses the reference", never a pass.
* Each exercise is graded on its own: the runner reports case by case, so an exception
  (``SystemExit`` and ``KeyboardInterrupt`` included) fails that case only, and a worker that
  dies or runs out of time in one exercise keeps the verdicts of the exercises graded before.
* The CSV and the summary are written by the grader alone, after every worker has ended,
  atomically (a temporary file renamed over the target).

Submissions: every file below SUBMISSIONS is accounted for. A file directly in SUBMISSIONS
belongs to the student named by the file (``alice.ipynb`` -> ``alice``); a file deeper down
belongs to the student folder, the shallowest folder on its path that directly holds a file,
named by its path relative to SUBMISSIONS (``sectionB/alice``). Files that are not notebooks
get a row "not a notebook", notebooks that are not valid JSON a row "unreadable notebook".
The expected exercises are those named by ``--exercises``, otherwise every exercise any
submitted notebook contains (listed in its metadata by build-exercises, which survives deleted
cells, or named by an ``Exercise NN.M`` heading); every student gets a row for every expected
exercise ("missing" when none of their notebooks has it); a notebook in which no exercise can
be recognised is graded on every expected exercise. An exercise without a registered check gets
a row "manual" for grading by hand. The grader's own output files are skipped when ``--out``
lies inside SUBMISSIONS.

Robustness of a batch: a cell that ends the worker (``os._exit``, a crash) is skipped in a fresh
worker (at most ``MAX_SKIPPED_CELLS`` per notebook); an exercise that ends the worker or runs out
of time leaves the exercises after it to a fresh worker (so a notebook may take up to one
``--timeout`` per exercise). Each student's rows are appended to ``<out>.partial.jsonl`` as soon
as the student is graded; ``--resume`` keeps the students of an earlier run and grades the rest.

Output: a CSV with one row per (student, exercise): ``student, exercise, passed, status,
message``; and a summary per student and per exercise, printed and written next to the CSV
(``<out>.summary.txt``).

Student code runs with your user's rights: grade untrusted submissions inside a container or a
throw-away virtual machine.
"""

from __future__ import annotations

import ast
import csv
import inspect
import json
import os
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import torch

from . import _worker
from .checking import (ERROR, FAILED, MISSING, NOT_IMPLEMENTED, PASSED, TIMEOUT, USES_REFERENCE, CheckResult,
                       Outcome, _clone, _one_line, error_result, evaluate, expected_outputs)
from .checks import get_check
from .exercises import HEADING_RE

MANUAL = "manual"
NOT_A_NOTEBOOK = "not a notebook"
DEFAULT_MEMORY = 4 << 30           # bytes of address space per worker
LOG_TAIL = 16 << 10                # bytes of a worker's printed output kept for messages
IGNORED = {".ipynb_checkpoints", "__pycache__", "__MACOSX"}
MAX_SKIPPED_CELLS = 3              # cells that end the worker, run again without them (per notebook)


@dataclass
class Row:
    student: str
    exercise: str
    passed: bool | None
    status: str
    message: str
    notebook: str = ""


# --------------------------------------------------------------------------- finding submissions
def _visible(path: Path, root: Path) -> bool:
    return not any(p.startswith(".") or p in IGNORED for p in path.relative_to(root).parts)


def find_files(folder: str | Path) -> list[tuple[str, Path]]:
    """``(student, file)`` for every file below ``folder`` (hidden files and checkpoints aside),
    sorted. See the module docstring for how the student is named."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"grade: no folder {folder}")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and _visible(p, folder))
    holders = {p.parent for p in files}
    found = []
    for path in files:
        rel = path.relative_to(folder)
        if len(rel.parts) == 1:
            name = path.name
            for _ in range(2):          # alice.ipynb, alice.pdf, alice.ipynb.txt -> alice
                stem, dot, suffix = name.rpartition(".")
                if dot and stem and suffix.lower() in ("ipynb", "txt", "pdf", "py", "html", "json", "zip", "md"):
                    name = stem
            found.append((name, path))
            continue
        student = next(folder.joinpath(*rel.parts[:i]) for i in range(1, len(rel.parts))
                       if folder.joinpath(*rel.parts[:i]) in holders)
        found.append((student.relative_to(folder).as_posix(), path))
    return found


def find_submissions(folder: str | Path) -> list[tuple[str, Path]]:
    """``(student, notebook)`` pairs, sorted (only the ``.ipynb`` files of :func:`find_files`)."""
    return [(s, p) for s, p in find_files(folder) if p.suffix == ".ipynb"]


def read_notebook(path: Path) -> dict:
    """The notebook's JSON; ``ValueError("unreadable notebook: <why>, line N")`` if it is not one."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"unreadable notebook: {err.msg}, line {err.lineno} column {err.colno}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"unreadable notebook: {type(err).__name__}: {err}") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells", []), list):
        raise ValueError("unreadable notebook: valid JSON but not a notebook (no list of cells)")
    return nb


def _ids_in(nb: dict) -> list[str]:
    ids = list(nb.get("metadata", {}).get("lecturekit", {}).get("exercises", []))
    for cell in nb.get("cells", []):
        if isinstance(cell, dict) and cell.get("cell_type") == "markdown":
            ids += [m["id"] for m in HEADING_RE.finditer(_source(cell))]
    return list(dict.fromkeys(str(i) for i in ids))


def exercises_in(path: Path) -> list[str]:
    """Exercise ids a notebook contains (metadata from build-exercises, then headings)."""
    try:
        return _ids_in(read_notebook(Path(path)))
    except ValueError:
        return []


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _code_cells(nb: dict) -> list[str]:
    return [_source(c) for c in nb.get("cells", []) if isinstance(c, dict) and c.get("cell_type") == "code"]


# --------------------------------------------------------------------------- unchanged stubs
def _python(source: str) -> ast.Module | None:
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - without IPython, magics simply make the cell unparsable
        pass
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def _is_stub(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """The function always raises ``NotImplementedError``: one of its top-level statements does,
    and nothing before it can return or yield."""
    for stmt in fn.body:
        if isinstance(stmt, ast.Raise):
            exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
            return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
        if any(isinstance(node, (ast.Return, ast.Yield, ast.YieldFrom, ast.Await)) for node in ast.walk(stmt)):
            return False
    return False


def stub_only(cells: list[str], name: str) -> bool:
    """True when the notebook binds ``name`` only by function definitions that start by raising
    ``NotImplementedError`` (the exercise stub, unchanged). Any other binding (an assignment,
    an import, a ``def`` doing something first, ``exec``/``globals``/``setattr`` anywhere)
    makes it False: the grader then relies on what the function does."""
    seen_stub = False
    for source in cells:
        if any(word in source for word in ("exec(", "globals(", "setattr(", "__dict__", "__builtins__")):
            return False
        tree = _python(source)
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
                if not _is_stub(node):
                    return False
                seen_stub = True
            elif isinstance(node, ast.ClassDef) and node.name == name:
                return False
            elif isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, (ast.Store, ast.Del)):
                return False
            elif isinstance(node, ast.alias) and (node.asname or node.name.split(".")[0]) == name:
                return False
            elif isinstance(node, (ast.Global, ast.Nonlocal)) and name in node.names:
                return False
    return seen_stub


# --------------------------------------------------------------------------- one worker
class _Prepared:
    """Cases and expected outputs of one exercise, computed once in the grader."""

    def __init__(self, ex_id: str, seed: int):
        self.spec = get_check(ex_id)
        self.cases = self.spec.make_cases(seed)
        self.expected = expected_outputs(self.spec, self.cases)
        self.forbidden = [] if self.spec.answer else sorted(reference_code(self.spec, self.cases))
        self.payload = {"name": self.spec.name, "answer": self.spec.answer, "forbidden": self.forbidden,
                        "cases": [(c.args, c.kwargs) for c in self.cases]}


# --------------------------------------------------------------------------- reference detection
_PACKAGE = Path(os.path.abspath(__file__)).parents[1]  # .../lecturekit (as in code objects' file names)
_GRADING_ITSELF = {"checking.py", "grading.py", "_worker.py"}
# Shared input checks (shape and dtype messages) that nearly every library layer runs: part of a
# reference's footprint only when they are the reference's own module.
_SHARED = {str(_PACKAGE / "layers" / "shapes.py")}


def _code_keys(code: types.CodeType, into: set, root: str) -> None:
    """(file relative to the folder holding lecturekit, first line, name) of ``code`` and of the
    functions, lambdas and comprehensions defined inside it."""
    if code.co_filename.startswith(root):
        into.add((os.path.relpath(code.co_filename, root), code.co_firstlineno, code.co_name))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_keys(const, into, root)


def _functions_in(obj) -> list:
    """The plain functions an attribute of a module stands for (itself, or a class's methods)."""
    try:
        obj = inspect.unwrap(obj) if callable(obj) else obj
    except Exception:  # noqa: BLE001 - an odd object (a cycle of __wrapped__): taken as it is
        pass
    if isinstance(obj, types.FunctionType):
        return [obj]
    if isinstance(obj, type):
        found = []
        for value in vars(obj).values():
            value = getattr(value, "__func__", value)                  # staticmethod, classmethod
            for part in (value, getattr(value, "fget", None), getattr(value, "fset", None)):
                if isinstance(part, types.FunctionType):
                    found.append(part)
        return found
    return []


def reference_code(spec, cases) -> set[tuple[str, int, str]]:
    """The code a student function may not run while it is graded, as ``(file relative to the
    folder holding lecturekit, first line, name)``: the reference itself (and everything defined
    inside it), the private helpers (names starting with ``_``) of the reference's module and of the check's
    module (its known mistakes), and
    every function of the lecturekit package the reference runs on the test cases (so a
    reference that wraps a library function forbids that function too). Module-level code and
    the grading machinery are never part of it."""
    root = str(_PACKAGE.parent) + os.sep
    keys: set = set()
    reference = spec.reference
    for fn in _functions_in(reference) or _functions_in(type(reference)):
        _code_keys(fn.__code__, keys, root)
    home = sys.modules.get(getattr(inspect.unwrap(reference), "__module__", None) or "")
    home_file = getattr(home, "__file__", None)
    # the check's own module too: its known-mistake helpers compute the right answer with their
    # default arguments, so a student must not import them either
    checks = [m for n, m in list(sys.modules.items()) if n.startswith(f"{_PACKAGE.name}.course.checks.")
              and any(v is spec for v in vars(m).values())]
    for module in [home, *checks]:
        module_file = getattr(module, "__file__", None)
        if module is None or not module_file:
            continue
        for name, value in list(vars(module).items()):
            if name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
                for fn in _functions_in(value):
                    if fn.__code__.co_filename == module_file:
                        _code_keys(fn.__code__, keys, root)
    ran: set = set()
    package = str(_PACKAGE) + os.sep
    own = {str(_PACKAGE / "course" / name) for name in _GRADING_ITSELF} | (_SHARED - {home_file})

    def tracer(frame, event, arg):  # noqa: ARG001
        code = frame.f_code
        if (code.co_filename.startswith(package) and code.co_filename not in own
                and code.co_name not in ("<module>", "__getattr__", "__dir__")):
            ran.add((os.path.relpath(code.co_filename, root), code.co_firstlineno, code.co_name))
        return None

    before = sys.gettrace()
    sys.settrace(tracer)
    try:
        for case in cases:    # (expected_outputs ran them once already: imports are done)
            try:
                reference(*_clone(case.args), **_clone(case.kwargs))
            except Exception:  # noqa: BLE001 - the expected outputs already succeeded once
                pass
    finally:
        sys.settrace(before)
    return keys | ran


@dataclass
class _Report:
    """What the grader learnt from one worker (only messages that passed its checks)."""

    status: str = "done"                    # done, timeout, crashed, tampered, stopped
    why: str = ""                           # for tampered / crashed
    cell: int | None = None                 # the code cell (0-based) running last, before cells-done
    cells_done: bool = False
    cell_errors: list = field(default_factory=list)
    exercises: dict = field(default_factory=dict)   # ex -> {"status", "error", "outcomes", "done"}
    running: str | None = None
    returncode: int | None = None
    log: str = ""
    printed: int = 0


class _Live:
    """The workers running now, so that Ctrl-C / SIGTERM can stop them all at once."""

    def __init__(self):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.procs: set[subprocess.Popen] = set()


def _stop_worker(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Ask the supervisor to kill its tree (SIGTERM); if it does not end in time, do it here."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _worker.kill_tree(proc.pid)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.kill()
    proc.wait()
    if os.name == "posix":
        _worker.kill_session(proc.pid)   # what stayed in the worker's session, should the supervisor be gone


def _run_worker(notebook: Path, prepared: dict[str, _Prepared], timeout: float, memory: int,
                live: _Live, skip: dict[int, str] | None = None) -> _Report:
    report = _Report()
    tmp = tempfile.mkdtemp(prefix="lecturekit-grade-")
    r_cmd, w_cmd = os.pipe()
    r_res, w_res = os.pipe()
    proc = None
    events: queue.Queue = queue.Queue()
    tail = bytearray()
    threads: list[threading.Thread] = []
    try:
        env = dict(os.environ)
        env.update({"LECTUREKIT_HEADLESS": "1", "TQDM_DISABLE": "1", "MPLBACKEND": "Agg",
                    "PYDEVD_DISABLE_FILE_VALIDATION": "1", "IPYTHONDIR": str(Path(tmp) / "ipython"),
                    "MPLCONFIGDIR": str(Path(tmp) / "mpl"), "TMPDIR": tmp, "PYTHONUNBUFFERED": "1"})
        runner = [sys.executable, "-c",
                  "import sys; del sys.path[0]; from lecturekit.course._worker import run; run(sys.argv[1:])",
                  str(notebook.resolve()), str(r_cmd), str(w_res), str(int(memory)),
                  json.dumps({str(k): v for k, v in (skip or {}).items()})]
        cmd = [sys.executable, str(Path(_worker.__file__).resolve()), "supervise", str(r_cmd), str(w_res), "--",
               *runner]
        with live.lock:
            if live.stop.is_set():
                report.status = "stopped"
                return report
            proc = subprocess.Popen(cmd, cwd=notebook.resolve().parent, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, pass_fds=(r_cmd, w_res),
                                    start_new_session=True)
            live.procs.add(proc)
        os.close(r_cmd)
        os.close(w_res)
        r_cmd = w_res = -1
        start = time.monotonic()

        def drain():  # keep only the end of what the notebook prints (bounded memory)
            while True:
                chunk = proc.stdout.read1(1 << 16)
                if not chunk:
                    return
                report.printed += len(chunk)
                tail.extend(chunk)
                if len(tail) > 2 * LOG_TAIL:
                    del tail[:-LOG_TAIL]

        def listen():
            while True:
                try:
                    data = _worker.read_frame(r_res)
                except (OSError, ValueError) as err:
                    events.put(("bad", f"{type(err).__name__}: {err}"))
                    return
                if data is None:
                    events.put(("eof", None))
                    return
                try:
                    message = torch.load(BytesIO(data), weights_only=True)
                    if not isinstance(message, dict):
                        raise TypeError(type(message).__name__)
                except Exception as err:  # noqa: BLE001 - whatever it is, it is not ours
                    events.put(("bad", f"an unreadable message ({type(err).__name__})"))
                    return
                events.put(("message", message))

        threads[:] = [threading.Thread(target=drain, daemon=True), threading.Thread(target=listen, daemon=True)]
        for t in threads:
            t.start()
        secret, token = None, None
        while True:
            if live.stop.is_set():
                report.status = "stopped"
                break
            left = timeout - (time.monotonic() - start)
            if left <= 0:
                report.status = TIMEOUT
                break
            try:
                kind, message = events.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            if kind == "eof":
                report.status = "crashed"
                try:                                 # let it end by itself: its own exit code
                    proc.wait(timeout=min(3.0, max(left, 0.1)))
                except subprocess.TimeoutExpired:
                    pass
                break
            if kind == "bad":
                report.status, report.why = "tampered", message
                break
            what = message.get("kind")
            if what == "hello" and secret is None and report.cell is None:
                secret = message.get("secret")
            elif what == "cell" and secret is not None and token is None and isinstance(message.get("index"), int):
                report.cell = message["index"]
            elif what == "cells-done" and secret is not None and token is None and message.get("secret") == secret:
                report.cells_done, report.cell_errors = True, list(message.get("errors", []))
                token = secrets.token_hex(16)
                buf = BytesIO()
                torch.save({"token": token, "exercises": {e: p.payload for e, p in prepared.items()}}, buf)
                threading.Thread(target=_send_quietly, args=(w_cmd, buf.getvalue()), daemon=True).start()
            elif token is not None and message.get("token") == token and what in (
                    "exercise", "outcome", "exercise-done", "bye"):
                ex = message.get("exercise")
                if what == "bye":
                    report.status = "done"
                    break
                if ex not in prepared:
                    report.status, report.why = "tampered", f"a message about an unknown exercise {ex!r}"
                    break
                if what == "exercise":
                    report.exercises[ex] = {"status": message.get("status"), "error": message.get("error", ""),
                                            "outcomes": [], "done": False}
                    report.running = ex
                elif what == "outcome" and ex in report.exercises:
                    report.exercises[ex]["outcomes"].append(message)
                elif what == "exercise-done" and ex in report.exercises:
                    report.exercises[ex]["done"], report.running = True, None
            else:
                report.status = "tampered"
                report.why = f"an unexpected message {what!r}" + ("" if secret is not None else " before the start")
                break
        report.log = bytes(tail).decode("utf-8", "replace")
        return report
    finally:
        if proc is not None:
            _stop_worker(proc)
            report.returncode = proc.returncode
            with live.lock:
                live.procs.discard(proc)
        for t in threads:               # they end when the last holder of the pipe is gone
            t.join(timeout=5)
        if proc is not None and not any(t.is_alive() for t in threads[:1]):
            proc.stdout.close()         # (never under a reading thread: that would block here)
        if len(threads) > 1 and threads[1].is_alive():
            r_res = -1                  # still read by a blocked thread: leave it open
        for fd in (r_cmd, w_cmd, r_res, w_res):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        shutil.rmtree(tmp, ignore_errors=True)
        report.log = bytes(tail).decode("utf-8", "replace")


def _send_quietly(fd: int, data: bytes) -> None:
    try:
        _worker.write_frame(fd, data)
    except OSError:
        pass  # the worker is gone; the grader notices by itself


# --------------------------------------------------------------------------- verdicts
def _cell_error_about(report: _Report, cells: list[str], name: str) -> str:
    """The error of the cell most likely to matter for ``name`` (one that mentions it)."""
    for err in report.cell_errors:
        index = err.get("cell", 0) - 1
        if 0 <= index < len(cells) and name in cells[index]:
            return f"code cell {err['cell']} raised {err['error']}"
    return ""


def _verdict(ex_id: str, p: _Prepared, report: _Report, cells: list[str], timeout: float) -> CheckResult:
    spec = p.spec
    item = report.exercises.get(ex_id)
    last_line = ([ln for ln in report.log.strip().splitlines() if ln.strip()][-1:] or [""])[0]
    if report.status == "tampered":
        return error_result(spec, ERROR, f"the notebook interfered with the grading process ({report.why}); "
                                         "nothing it reported is used")
    if item is not None and item["done"]:
        if item["status"] == "missing":
            what = f"variable {spec.name}" if spec.answer else f"function {spec.name}(...)"
            cause = _cell_error_about(report, cells, spec.name)
            return error_result(spec, MISSING, f"the notebook defines no {what} ({item['error']})"
                                               + (f"; {cause}" if cause else ""))
        outcomes = [Outcome(o.get("status", "raised"), o.get("output"), list(o.get("args_after", [])),
                            str(o.get("error", ""))) for o in item["outcomes"]]
        if len(outcomes) != len(p.cases):
            return error_result(spec, ERROR, "the grading process returned incomplete results")
        return evaluate(spec, p.cases, p.expected, outcomes)
    if item is not None:      # started, not finished: this exercise stopped the worker
        k = len(item["outcomes"]) + 1
        if report.status == TIMEOUT:
            return error_result(spec, TIMEOUT, f"did not finish within {timeout:g} s and was stopped while "
                                               f"{spec.name} ran test case {k} of {len(p.cases)} (an endless loop?)")
        return error_result(spec, ERROR, f"the grading process ended while your {spec.name} ran test case {k} "
                                         f"of {len(p.cases)} (exit code {report.returncode}: os._exit or a crash?)")
    if report.status == TIMEOUT:
        if not report.cells_done:
            where = f" (code cell {report.cell + 1} was running)" if report.cell is not None else ""
            return error_result(spec, TIMEOUT, f"the notebook did not finish within {timeout:g} s and was stopped "
                                               f"(an endless loop?){where}")
        return error_result(spec, TIMEOUT, f"not graded: the time ({timeout:g} s) ran out while exercise "
                                           f"{report.running or '?'} was graded")
    if not report.cells_done:
        where = f" in code cell {report.cell + 1}" if report.cell is not None else " before the first cell"
        return error_result(spec, ERROR, f"the notebook ended the grading process{where} (exit code "
                                         f"{report.returncode})" + (f"; last output: {last_line[:200]}"
                                                                    if last_line else ""))
    return error_result(spec, ERROR, f"not graded: the grading process ended (exit code {report.returncode}) "
                                     f"while exercise {report.running or '?'} was graded")


def _grade_notebook(student: str, notebook: Path, rel: str, nb: dict, wanted: list[str],
                    prepared: dict[str, _Prepared], timeout: float, memory: int, live: _Live) -> list[Row] | None:
    auto = [e for e in wanted if e in prepared]
    rows = [Row(student, e, None, MANUAL, "no automatic check for this exercise: grade by hand", rel)
            for e in wanted if e not in prepared]
    if not auto:
        return rows
    cells = _code_cells(nb)
    verdicts: dict[str, CheckResult] = {}
    todo = list(auto)
    skip: dict[int, str] = {}
    while todo:
        report = _run_worker(notebook, {e: prepared[e] for e in todo}, timeout, memory, live, skip)
        if report.status == "stopped":
            return None
        if (report.status == "crashed" and not report.cells_done and report.cell is not None
                and report.cell not in skip and len(skip) < MAX_SKIPPED_CELLS):
            # A cell ended the process (os._exit, a crash): run the notebook again without it,
            # as if that cell had failed, so that the exercises can still be graded.
            skip[report.cell] = f"it ended the grading process (exit code {report.returncode})"
            continue
        started = [e for e in todo if e in report.exercises]
        # A worker that died or ran out of time inside one exercise after the notebook ran:
        # the exercises after it get a fresh worker of their own (each retry drops at least one).
        retry = (report.status in ("crashed", TIMEOUT) and report.cells_done and report.running is not None)
        for ex_id in todo:
            if ex_id in started or not retry:
                verdicts[ex_id] = _verdict(ex_id, prepared[ex_id], report, cells, timeout)
        todo = [e for e in todo if e not in verdicts]
    for ex_id in auto:
        p = prepared[ex_id]
        res = verdicts[ex_id]
        if res.passed and not p.spec.answer and stub_only(cells, p.spec.name):
            res = error_result(p.spec, NOT_IMPLEMENTED, f"the stub of {p.spec.name} is unchanged (it still "
                                                        "raises NotImplementedError)")
        rows.append(Row(student, ex_id, res.passed, res.status, res.summary, rel))
    return rows


# --------------------------------------------------------------------------- the batch
def grade(submissions: str | Path, *, out: str | Path | None = "grades.csv", timeout: float = 120,
          jobs: int = 1, exercises: list[str] | None = None, seed: int = 0, verbose: bool = True,
          memory: int | None = DEFAULT_MEMORY, resume: bool = False) -> list[Row]:
    """Grade every submission in ``submissions``; write the CSV (unless ``out`` is None) and
    return the rows. ``memory``: bytes of address space per worker (None or 0: no limit).
    While the batch runs, each student's rows are appended to ``<out>.partial.jsonl`` as soon as
    the student is graded (removed once the CSV is written); ``resume=True`` keeps the rows of
    the students found in an existing ``out`` and that file, and grades only the others.
    See the module docstring for the design. Ctrl-C (or SIGTERM) stops every worker at once and
    writes the CSV of the students graded so far before re-raising ``KeyboardInterrupt``."""
    root = Path(submissions)
    own = set()                       # the grader's own files, when --out lies in the folder
    if out is not None:
        base = Path(out).resolve()
        own = {base, Path(str(base) + ".summary.txt"), Path(str(base) + ".partial.jsonl")}
    files = [(s, p) for s, p in find_files(root) if p.resolve() not in own]
    students = sorted({s for s, _ in files})
    notebooks, other_rows = [], []
    for student, path in files:
        rel = path.name if path.parent == root else path.relative_to(root / student).as_posix()
        if path.suffix != ".ipynb":
            other_rows.append(Row(student, "", None, NOT_A_NOTEBOOK, "not a notebook (not graded)", rel))
            continue
        try:
            nb = read_notebook(path)
        except ValueError as err:
            other_rows.append(Row(student, "", False, ERROR, str(err), rel))
            continue
        notebooks.append((student, path, rel, nb, list(exercises) if exercises else _ids_in(nb)))
    expected = list(dict.fromkeys(exercises)) if exercises else sorted({e for *_, ids in notebooks for e in ids})
    # a notebook in which no exercise can be recognised (no metadata, no headings: rewritten from
    # scratch?) is graded on every expected exercise
    notebooks = [(s, p, rel, nb, ids or list(expected)) for s, p, rel, nb, ids in notebooks]
    prepared: dict[str, _Prepared] = {}
    for ex_id in expected:
        try:
            prepared[ex_id] = _Prepared(ex_id, seed)
        except KeyError:
            continue  # no registered check: graded by hand
    memory = int(memory or 0)

    journal = Path(str(out) + ".partial.jsonl") if out is not None else None
    earlier: dict[str, list[Row]] = _earlier_rows(Path(out), journal) if (resume and out is not None) else {}
    notebooks = [n for n in notebooks if n[0] not in earlier]
    if journal is not None:
        if not resume and journal.exists():
            journal.unlink()
        journal_fh = open(journal, "a", encoding="utf-8")
    live = _Live()
    finished: dict[str, list[Row]] = {s: [] for s in students}
    pending = {s: sum(1 for n in notebooks if n[0] == s) for s in students}
    complete = [s for s in students if pending[s] == 0]
    start = time.perf_counter()

    def student_rows(s: str) -> list[Row]:
        if s in earlier:
            return earlier[s]
        mine = _merge(finished[s] + [r for r in other_rows if r.student == s])
        have = {r.exercise for r in mine}
        mine += [Row(s, e, False, MISSING, "none of this student's notebooks contains this exercise", "")
                 for e in expected if e not in have]
        if not any(r.exercise for r in mine) and not any(r.status != NOT_A_NOTEBOOK for r in mine):
            mine.append(Row(s, "", False, MISSING, "no notebook handed in", ""))
        mine += [Row(s, "", False, ERROR, "no exercise found in this notebook", rel)
                 for st, _, rel, _, ids in notebooks if st == s and not ids and not expected]
        return mine

    def record(s: str) -> None:
        complete.append(s)
        if journal is not None and s not in earlier:
            for r in student_rows(s):
                journal_fh.write(json.dumps(r.__dict__) + "\n")
            journal_fh.flush()

    bar = None
    if verbose and notebooks:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(notebooks), unit="notebook", desc="grading", disable=None)
    interrupted = False
    previous = None
    if threading.current_thread() is threading.main_thread():
        def on_term(signum, frame):  # noqa: ARG001
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, on_term)
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = {pool.submit(_grade_notebook, s, path, rel, nb, ids, prepared, timeout, memory, live): s
                   for s, path, rel, nb, ids in notebooks}
        todo = set(futures)
        while todo:
            done, todo = wait(todo, timeout=0.5, return_when=FIRST_COMPLETED)
            for f in done:
                s = futures[f]
                finished[s] += f.result() or []
                pending[s] -= 1
                if bar is not None:
                    bar.update(1)
                if pending[s] == 0:
                    record(s)
    except KeyboardInterrupt:
        interrupted = True
        live.stop.set()
        with live.lock:
            procs = list(live.procs)
        for proc in procs:
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    finally:
        pool.shutdown(wait=True, cancel_futures=True)   # every worker has ended after this line
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if bar is not None:
            bar.close()
        if journal is not None:
            journal_fh.close()

    rows = []
    for s in sorted(complete):
        rows += student_rows(s)
    rows.sort(key=lambda r: (r.student, r.exercise, r.notebook))
    text = summary(rows, elapsed=time.perf_counter() - start)
    if interrupted:
        text += (f"stopped by the user: {len(complete)} of {len(students)} student(s) graded; the others "
                 "have no rows (run again to grade them)\n")
    if out is not None:
        write_csv(rows, out)
        _write_atomically(Path(str(out) + ".summary.txt"), text)
        if not interrupted:
            journal.unlink(missing_ok=True)
    if verbose:
        print(text, end="")
        if out is not None:
            print(f"wrote {out} and {out}.summary.txt")
    if interrupted:
        raise KeyboardInterrupt
    return rows


def _earlier_rows(out: Path, journal: Path) -> dict[str, list[Row]]:
    """Rows of the students graded by an earlier run (its CSV, then its journal)."""
    found: dict[str, list[Row]] = {}
    if out.is_file():
        with open(out, newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                passed = {"True": True, "False": False}.get(r.get("passed", ""))
                found.setdefault(r["student"], []).append(
                    Row(r["student"], r["exercise"], passed, r["status"], r["message"], ""))
    if journal.is_file():
        from_journal: dict[str, list[Row]] = {}
        for line in journal.read_text(encoding="utf-8").splitlines():
            try:
                row = Row(**json.loads(line))
            except (ValueError, TypeError):
                continue          # a line cut short when the grader was killed
            from_journal.setdefault(row.student, []).append(row)
        found.update(from_journal)
    return found


def _merge(rows: list[Row]) -> list[Row]:
    """One row per (student, exercise): if a student handed in several notebooks with the same
    exercise, the best verdict counts. Rows without an exercise (files) are all kept."""
    rank = {PASSED: 0, FAILED: 1, USES_REFERENCE: 2, NOT_IMPLEMENTED: 3, MISSING: 4, ERROR: 5, TIMEOUT: 6, MANUAL: 7}
    best: dict[tuple[str, str], Row] = {}
    kept = []
    for row in rows:
        if not row.exercise:
            kept.append(row)
            continue
        key = (row.student, row.exercise)
        if key not in best or rank.get(row.status, 9) < rank.get(best[key].status, 9):
            best[key] = row
    return kept + list(best.values())


def _write_atomically(path: Path, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_csv(rows: list[Row], path: str | Path) -> None:
    """Write the rows (atomically: a temporary file renamed over ``path``)."""
    buf = __import__("io").StringIO()
    writer = csv.writer(buf)
    writer.writerow(["student", "exercise", "passed", "status", "message"])
    for r in rows:
        writer.writerow([r.student, r.exercise, "" if r.passed is None else r.passed, r.status,
                         _one_line(f"{r.notebook}: {r.message}" if r.notebook else r.message, 600)])
    _write_atomically(Path(path), buf.getvalue())


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
    others = [r for r in rows if r.status == NOT_A_NOTEBOOK]
    if others:
        lines.append(f"{len(others)} file(s) that are not notebooks were not graded (rows '{NOT_A_NOTEBOOK}')")
    if elapsed is not None:
        lines.append(f"graded {len(students)} student(s) in {elapsed:.1f} s")
    return "\n".join(lines) + "\n"


__all__ = ["DEFAULT_MEMORY", "MANUAL", "NOT_A_NOTEBOOK", "Row", "exercises_in", "find_files", "find_submissions",
           "grade", "read_notebook", "stub_only", "summary", "write_csv"]
