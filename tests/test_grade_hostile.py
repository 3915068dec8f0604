"""The grader against careless and hostile submissions (issue 18): processes that outlive their
worker, a CSV rewritten after the grader ends, forged results, exits inside a student function,
values that cannot be sent, broken cells and notebooks, student folders, memory.

Each test grades one small batch of notebooks filled in from the fixture's exercises, as a
student would (see tests/test_course_grade.py)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from grading_helpers import csv_rows, processes_mentioning
from lecturekit.course.exercises import build_exercises
from lecturekit.course.grading import find_files, grade, stub_only

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "course"
TIMEOUT = 40   # seconds per worker; a healthy one needs 3-5 s here (2 shared cores)


RIGHT = {
    "topk_accuracy": """
        # equal scores: the larger class id ranks first (a stable sort of the flipped columns)
        best = scores.shape[1] - 1 - scores.flip(1).argsort(dim=1, descending=True, stable=True)[:, :k]
        hits = (best == labels.unsqueeze(1)).any(dim=1)
        return hits.double().mean().item()
    """,
    "temporal_shift": """
        out = x.clone()
        out[:, :2 * fold] = 0
        out[:, :fold, :-1] = x[:, :fold, 1:]
        out[:, fold:2 * fold, 1:] = x[:, fold:2 * fold, :-1]
        return out
    """,
}


@pytest.fixture(scope="module")
def exercise(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("exercises")
    build_exercises(FIXTURE / "solutions", folder, verbose=False)
    return folder / "90_example.ipynb"


def _fill(exercise: Path, target: Path, bodies: dict[str, str], *, append: str = "", prelude: str = "",
          replace_cell: tuple[str, str] | None = None) -> None:
    """Replace stubs by the given bodies; optionally add a cell after the set-up cells, append a
    cell at the end, or replace the whole cell that defines a function."""
    nb = nbformat.read(exercise, as_version=4)
    for cell in nb.cells:
        for name, body in bodies.items():
            if cell.cell_type == "code" and f"def {name}(" in cell.source:
                lines = cell.source.split("\n")
                at = lines.index("    # YOUR CODE HERE")
                lines[at:at + 2] = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ").split("\n")
                cell.source = "\n".join(lines)
        if replace_cell and cell.cell_type == "code" and f"def {replace_cell[0]}(" in cell.source:
            cell.source = textwrap.dedent(replace_cell[1]).strip("\n")
    if prelude:
        nb.cells.insert(3, new_code_cell(textwrap.dedent(prelude).strip()))
    if append:
        nb.cells.append(new_code_cell(textwrap.dedent(append).strip()))
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)


def _grade(subs: Path, out: Path, monkeypatch, tmp_path: Path, **kw) -> dict:
    """Grade with the grader's temporary folders in a folder of the test's own (to count them)."""
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    grade(subs, out=out, timeout=kw.pop("timeout", TIMEOUT), jobs=kw.pop("jobs", 2), verbose=False, **kw)
    assert [p.name for p in scratch.iterdir()] == [], "the grader left temporary folders behind"
    return csv_rows(out)


# --------------------------------------------------------------------------- processes and the CSV
def test_processes_a_submission_starts_die_with_its_worker_and_cannot_rewrite_the_csv(exercise, tmp_path,
                                                                                         monkeypatch):
    subs, out = tmp_path / "submitted", tmp_path / "grades.csv"
    marker = f"{os.getpid()}{time.monotonic_ns() % 100000}"
    detach = f"""
        import os, subprocess, sys
        # a plain child, one in a new session, and a double-forked daemon that rewrites the CSV later
        pids = open("pids.txt", "a")
        pids.write(f"{{subprocess.Popen(['sleep', '3{marker}']).pid}}\\n")
        pids.write(f"{{subprocess.Popen(['sleep', '4{marker}'], start_new_session=True).pid}}\\n")
        pids.close()
        subprocess.Popen(["sh", "-c", "(echo $(sh -c 'echo $PPID') >> pids.txt; sleep 6; echo hacked > {out}; "
                                      "sleep 5{marker}) &"], start_new_session=True)
        pid = os.fork()
        if pid == 0:
            os.setsid()
            if os.fork() == 0:
                os.execvp("sh", ["sh", "-c", "echo $$ >> pids.txt; sleep 6; "
                                 "echo mallory,01.1,True,passed,forged >> {out}; sleep 6{marker}"])
            os._exit(0)
        os.waitpid(pid, 0)
        import time
        time.sleep(1)
    """
    _fill(exercise, subs / "mallory.ipynb", RIGHT, prelude=detach)
    _fill(exercise, subs / "alice.ipynb", RIGHT)

    rows = _grade(subs, out, monkeypatch, tmp_path)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert rows[("mallory", "01.1")]["passed"] == "True" and rows[("alice", "04.1")]["passed"] == "True"
    assert not processes_mentioning(marker), "a process the notebook started outlived its worker"
    started = [int(p) for p in (subs / "pids.txt").read_text().split()]
    assert len(started) == 4, started                 # the four processes did start ...
    for pid in started:                               # ... and none is left, not even as a zombie
        assert not Path(f"/proc/{pid}").exists(), pid
    time.sleep(8)   # longer than the daemons would have waited
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    assert "hacked" not in out.read_text() and "forged" not in out.read_text()
    assert not list(tmp_path.glob("grades.csv.*tmp"))          # the atomic write left nothing behind


# --------------------------------------------------------------------------- forged results
FORGE = textwrap.dedent("""
    import glob, io, os, sys, torch
    from lecturekit.course import _worker, checking
    from lecturekit.course.checking import Outcome, expected_outputs
    from lecturekit.course.checks import get_check

    forged = {}
    for ex in ("01.1", "04.1"):
        spec = get_check(ex)
        cases = spec.make_cases(0)
        forged[ex] = {"status": "ran", "outcomes": [
            {"status": "ok", "output": out, "args_after": list(c.args), "error": ""}
            for c, out in zip(cases, expected_outputs(spec, cases))]}
    # 1. the results file of the old worker, next to every argument and in every temporary folder
    for place in sys.argv + [os.getcwd(), os.environ.get("TMPDIR", "/tmp")]:
        for path in (place, os.path.join(str(place), "outputs.pt")):
            try:
                torch.save({"results": forged, "cell_errors": []}, path)
            except Exception:
                pass
    # 2. what the worker would send, on every pipe this process holds
    for fd in map(int, os.listdir("/proc/self/fd") if SEND else []):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:"):
                for message in ({"kind": "cells-done", "secret": "guess", "errors": []},
                                *({"kind": "exercise-done", "token": None, "exercise": ex} for ex in forged),
                                {"kind": "bye", "token": None}):
                    buf = io.BytesIO()
                    torch.save(message, buf)
                    _worker.write_frame(fd, buf.getvalue())
        except OSError:
            pass
    # 3. patch what the old worker used to call the candidates
    checking.call_candidate = lambda fn, case: Outcome("ok", forged["01.1"]["outcomes"][0]["output"])
    torch.save = lambda *a, **k: None
""")


def test_a_forged_result_is_never_a_pass(exercise, tmp_path, monkeypatch):
    subs, out = tmp_path / "submitted", tmp_path / "grades.csv"
    # untouched stubs, a forging cell appended at the end that then ends the process
    _fill(exercise, subs / "forger.ipynb", {}, append="SEND = True\n" + FORGE + "\nos._exit(0)\n")
    # the same with the names re-bound (so the stub analysis cannot help) and without exiting
    rebind = "\ntopk_accuracy = topk_accuracy\ntemporal_shift = temporal_shift\n"
    _fill(exercise, subs / "patcher.ipynb", {}, append="SEND = False\n" + FORGE + rebind)
    _fill(exercise, subs / "writer.ipynb", {}, append="SEND = True\n" + FORGE + rebind + "os._exit(0)\n")
    rows = _grade(subs, out, monkeypatch, tmp_path)
    for student in ("forger", "patcher", "writer"):
        for ex in ("01.1", "04.1"):
            assert rows[(student, ex)]["passed"] == "False", (student, ex, rows[(student, ex)])
    for ex in ("01.1", "04.1"):
        assert rows[("patcher", ex)]["status"] == "not implemented"         # the stubs still raise
        for student in ("forger", "writer"):
            assert rows[(student, ex)]["status"] == "error"
            assert "interfered with the grading" in rows[(student, ex)]["message"]


def test_an_unchanged_stub_never_passes_even_if_the_worker_says_so(exercise, tmp_path, monkeypatch):
    """The last line of defence, without a worker: a perfect forgery of the worker's report."""
    from lecturekit.course import grading

    def perfect_forgery(notebook, prepared, timeout, memory, live, skip=None):
        report = grading._Report(cells_done=True)
        for ex, p in prepared.items():
            report.exercises[ex] = {"status": "ran", "error": "", "done": True, "outcomes": [
                {"status": "ok", "output": out, "args_after": [*c.args, *(c.kwargs[k] for k in sorted(c.kwargs))]}
                for c, out in zip(p.cases, p.expected)]}
        return report

    monkeypatch.setattr(grading, "_run_worker", perfect_forgery)
    subs = tmp_path / "submitted"
    _fill(exercise, subs / "stubs.ipynb", {})
    _fill(exercise, subs / "right.ipynb", RIGHT)
    rows = {(r.student, r.exercise): r for r in grade(subs, out=None, verbose=False)}
    assert rows[("right", "01.1")].passed and rows[("right", "04.1")].passed     # the forgery is complete
    for ex in ("01.1", "04.1"):
        assert rows[("stubs", ex)].status == "not implemented" and not rows[("stubs", ex)].passed
        assert "stub of" in rows[("stubs", ex)].message


def test_stub_analysis():
    stub = 'def f(x):\n    """doc"""\n    # YOUR CODE HERE\n    raise NotImplementedError("Exercise 01.1: hint")'
    assert stub_only([stub, "print(1)"], "f")
    assert not stub_only([stub, "f = lambda x: x"], "f")
    assert stub_only([stub.replace("    raise", "    y = x\n    raise")], "f")        # still always raises
    assert not stub_only([stub.replace("    raise", "    if x:\n        return 1\n    raise")], "f")
    assert not stub_only([stub.replace("    raise", "    return x\n    raise")], "f")
    assert not stub_only([stub, "from mymodule import g as f"], "f")
    assert not stub_only([stub, "exec('def f(x): return x')"], "f")
    assert not stub_only(["print(2)"], "f")                      # no definition: "missing", not a stub
    assert stub_only([stub, "%time f\n!ls"], "f")                # magics are fine


# --------------------------------------------------------------------------- one exercise at a time
def test_each_exercise_is_graded_on_its_own_with_clear_messages(exercise, tmp_path, monkeypatch):
    subs, out = tmp_path / "submitted", tmp_path / "grades.csv"
    exits_on_k5 = "if k == 5:\n    import sys\n    sys.exit('bye')\n" + textwrap.dedent(RIGHT["topk_accuracy"])
    interrupts_on_t1 = "if x.shape[2] == 1:\n    raise KeyboardInterrupt\n" + textwrap.dedent(RIGHT["temporal_shift"])
    _fill(exercise, subs / "exits.ipynb", {"topk_accuracy": exits_on_k5, "temporal_shift": RIGHT["temporal_shift"]})
    _fill(exercise, subs / "interrupts.ipynb", {"topk_accuracy": RIGHT["topk_accuracy"],
                                                 "temporal_shift": interrupts_on_t1})
    _fill(exercise, subs / "unsendable.ipynb", {"topk_accuracy": "loop = []\nloop.append(loop)\nreturn loop",
                                                 "temporal_shift": RIGHT["temporal_shift"]})
    _fill(exercise, subs / "dies.ipynb", {"topk_accuracy": "import os\nos._exit(3)",
                                           "temporal_shift": RIGHT["temporal_shift"]})
    _fill(exercise, subs / "syntax.ipynb", {"topk_accuracy": RIGHT["topk_accuracy"],
                                             "temporal_shift": "return x[:, :"})
    _fill(exercise, subs / "cellerror.ipynb", {"topk_accuracy": RIGHT["topk_accuracy"]},
          replace_cell=("temporal_shift", "y = undefined_thing\ndef temporal_shift(x, fold_div=8):\n    return x"))
    good = nbformat.writes(nbformat.read(exercise, as_version=4))
    (subs / "truncated.ipynb").write_text(good[: len(good) // 2])
    rows = _grade(subs, out, monkeypatch, tmp_path)

    assert rows[("exits", "01.1")]["status"] == "failed"
    assert rows[("exits", "01.1")]["message"].startswith("exits.ipynb: 9/11 cases passed")
    assert "SystemExit: bye" in rows[("exits", "01.1")]["message"]
    assert rows[("exits", "04.1")]["passed"] == "True"
    msg = rows[("interrupts", "04.1")]["message"]
    assert rows[("interrupts", "04.1")]["status"] == "failed" and msg.startswith("interrupts.ipynb: 8/9 cases passed")
    assert "KeyboardInterrupt (code cell 6, line 5)" in msg, msg
    assert rows[("interrupts", "01.1")]["passed"] == "True"
    assert rows[("unsendable", "01.1")]["status"] == "failed"
    assert "cannot be sent to the grader" in rows[("unsendable", "01.1")]["message"]
    assert rows[("unsendable", "04.1")]["passed"] == "True"
    # dies: os._exit(3) in topk_accuracy ends the process in the notebook's own check cell, in
    # the cell that prints a toy result, and on the first test case: each time a fresh worker
    # goes on without what ended the last one, so temporal_shift is still graded
    assert rows[("dies", "01.1")]["status"] == "error"
    assert "ended while your topk_accuracy ran test case 1 of 11 (exit code 3" in rows[("dies", "01.1")]["message"]
    assert rows[("dies", "04.1")]["passed"] == "True"
    cell = next(c.source for c in nbformat.read(subs / "syntax.ipynb", as_version=4).cells if "x[:, :" in c.source)
    bad_line = cell.split("\n").index("    return x[:, :") + 1
    msg = rows[("syntax", "04.1")]["message"]
    assert rows[("syntax", "04.1")]["status"] == "missing" and "SyntaxError" in msg, msg
    assert f"(line {bad_line})" in msg, msg
    assert rows[("syntax", "01.1")]["passed"] == "True"
    msg = rows[("cellerror", "04.1")]["message"]
    assert rows[("cellerror", "04.1")]["status"] == "missing", msg
    assert "NameError: name 'undefined_thing' is not defined (code cell" in msg and "line 1)" in msg, msg
    with pytest.raises(json.JSONDecodeError) as err:
        json.loads(good[: len(good) // 2])
    line = err.value.lineno
    assert rows[("truncated", "")]["status"] == "error"
    assert rows[("truncated", "")]["message"].startswith("truncated.ipynb: unreadable notebook: ")
    assert f"line {line}" in rows[("truncated", "")]["message"]
    assert rows[("truncated", "01.1")]["status"] == "missing"       # every expected exercise has a row


# --------------------------------------------------------------------------- students and files
def test_students_are_paths_every_file_has_a_row_and_notebooks_run_in_their_folder(exercise, tmp_path, monkeypatch):
    subs, out = tmp_path / "submitted", tmp_path / "grades.csv"
    _fill(exercise, subs / "sectionA" / "alice" / "work.ipynb", RIGHT)
    _fill(exercise, subs / "sectionB" / "alice" / "work.ipynb", {})
    # bob's notebook imports a helper module and reads a data file that sit next to it
    (subs / "sectionB" / "bob").mkdir(parents=True)
    (subs / "sectionB" / "bob" / "helpers.py").write_text(
        "def fold_of(x, fold_div):\n    return x.shape[1] // fold_div\n")
    (subs / "sectionB" / "bob" / "k.txt").write_text("1\n")
    bob_shift = ("from helpers import fold_of\nassert fold == fold_of(x, fold_div)\n"
                 "assert open('k.txt').read().strip() == '1'\n" + textwrap.dedent(RIGHT["temporal_shift"]).strip())
    _fill(exercise, subs / "sectionB" / "bob" / "04.ipynb", {"temporal_shift": bob_shift, **{
        "topk_accuracy": RIGHT["topk_accuracy"]}})
    (subs / "carl.pdf").write_bytes(b"%PDF-1.4")
    (subs / "dan.ipynb.txt").write_text("{}")
    blank = nbformat.v4.new_notebook()
    nbformat.write(blank, subs / "eve.ipynb")
    (subs / ".hidden.ipynb").write_text("{}")

    students = sorted({s for s, _ in find_files(subs)})
    assert students == ["carl", "dan", "eve", "sectionA/alice", "sectionB/alice", "sectionB/bob"]
    rows = _grade(subs, out, monkeypatch, tmp_path)
    assert rows[("sectionA/alice", "01.1")]["passed"] == "True" and rows[("sectionA/alice", "04.1")]["passed"] == "True"
    assert rows[("sectionB/alice", "01.1")]["status"] == "not implemented"
    assert rows[("sectionB/bob", "04.1")]["passed"] == "True", rows[("sectionB/bob", "04.1")]
    with open(out, newline="") as fh:
        all_rows = list(csv.DictReader(fh))
    files = {(r["student"], r["message"]) for r in all_rows if r["status"] == "not a notebook"}
    assert files == {("carl", "carl.pdf: not a notebook (not graded)"),
                     ("dan", "dan.ipynb.txt: not a notebook (not graded)"),
                     ("sectionB/bob", "helpers.py: not a notebook (not graded)"),
                     ("sectionB/bob", "k.txt: not a notebook (not graded)")}
    for student in students:
        for ex in ("01.1", "04.1"):
            assert (student, ex) in rows, (student, ex)
    assert rows[("carl", "01.1")]["status"] == "missing" and rows[("eve", "04.1")]["status"] == "missing"


# --------------------------------------------------------------------------- memory and output
def test_memory_is_capped_and_huge_output_does_not_reach_the_grader(exercise, tmp_path, monkeypatch):
    import resource

    subs, out = tmp_path / "submitted", tmp_path / "grades.csv"
    greedy = "big = torch.empty(4 << 30, dtype=torch.uint8)\n" + textwrap.dedent(RIGHT["topk_accuracy"])
    _fill(exercise, subs / "greedy.ipynb", {"topk_accuracy": greedy, "temporal_shift": RIGHT["temporal_shift"]})
    _fill(exercise, subs / "loud.ipynb", RIGHT,
          prelude="import sys\nfor _ in range(256):\n    sys.stdout.write('x' * (1 << 20))")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = _grade(subs, out, monkeypatch, tmp_path, memory=3 << 30)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert rows[("greedy", "01.1")]["status"] == "failed" and "allocate" in rows[("greedy", "01.1")]["message"]
    assert rows[("greedy", "04.1")]["passed"] == "True"
    assert rows[("loud", "01.1")]["passed"] == "True" and rows[("loud", "04.1")]["passed"] == "True"
    assert grown_mib < 128, f"256 MiB of prints grew the grader by {grown_mib:.0f} MiB"
    if os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") < 8 << 30:
        return
    # the control: without the cap the same allocation succeeds (Linux overcommits by default)
    (subs / "loud.ipynb").unlink()
    rows = _grade(subs, out, monkeypatch, tmp_path, memory=0)
    assert rows[("greedy", "01.1")]["passed"] == "True"


# --------------------------------------------------------------------------- Ctrl-C
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_at_once_kills_workers_and_keeps_what_was_graded(exercise, tmp_path, sig):
    subs, out = tmp_path / "submitted", tmp_path / "grades.csv"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    _fill(exercise, subs / "alice.ipynb", RIGHT)
    marker = f"7{os.getpid()}{time.monotonic_ns() % 100000}"
    _fill(exercise, subs / "zed.ipynb", RIGHT,
          prelude=f"import subprocess, time\nsubprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
                  "while True:\n    time.sleep(0.1)")
    code = ("import sys; from lecturekit.course.__main__ import main; "
            f"sys.exit(main(['grade', {str(subs)!r}, '--out', {str(out)!r}, '--timeout', '300', '--jobs', '1']))")
    # (a shell's background job ignores SIGINT, and Python keeps an ignored SIGINT ignored:
    # give the grader the default disposition, as in a terminal)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "TMPDIR": str(scratch)},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
    deadline = time.monotonic() + 120
    while not processes_mentioning(marker) and time.monotonic() < deadline:   # alice done, zed running
        time.sleep(0.2)
    assert processes_mentioning(marker), "zed's notebook never started"
    start = time.monotonic()
    proc.send_signal(sig)
    output = proc.communicate(timeout=60)[0].decode()
    assert time.monotonic() - start < 15, output
    assert proc.returncode == 130, output
    assert not processes_mentioning(marker), output
    assert list(scratch.iterdir()) == [], "the stopped worker left its temporary folder behind"
    rows = csv_rows(out)
    assert rows[("alice", "01.1")]["passed"] == "True" and ("zed", "01.1") not in rows
    assert "stopped by the user" in output and "Traceback" not in output, output
    assert (tmp_path / "grades.csv.partial.jsonl").is_file()        # alice's rows, kept as she finished

    # --resume: alice is not graded again (her notebook now holds stubs, her rows stay), zed is
    _fill(exercise, subs / "alice.ipynb", {})
    _fill(exercise, subs / "zed.ipynb", RIGHT)
    from lecturekit.course.__main__ import main

    assert main(["grade", str(subs), "--out", str(out), "--timeout", str(TIMEOUT), "--resume"]) == 0
    rows = csv_rows(out)
    assert rows[("alice", "01.1")]["passed"] == "True" and rows[("zed", "04.1")]["passed"] == "True"
    assert not (tmp_path / "grades.csv.partial.jsonl").exists()


def test_an_exercise_that_runs_out_of_time_leaves_the_others_graded(exercise, tmp_path, monkeypatch):
    """The check cell deleted, topk_accuracy hangs only when the grader calls it: that exercise
    times out, temporal_shift is graded by a fresh worker."""
    subs, out = tmp_path / "submitted", tmp_path / "grades.csv"
    _fill(exercise, subs / "slow.ipynb", {"topk_accuracy": "import time\ntime.sleep(1000)",
                                          "temporal_shift": RIGHT["temporal_shift"]})
    nb = nbformat.read(subs / "slow.ipynb", as_version=4)
    nb.cells = [c for c in nb.cells if "check_topk_accuracy(" not in c.source and "toy_scores" not in c.source]
    nbformat.write(nb, subs / "slow.ipynb")
    start = time.monotonic()
    rows = _grade(subs, out, monkeypatch, tmp_path, timeout=20)
    assert rows[("slow", "01.1")]["status"] == "timeout"
    assert "did not finish within 20 s and was stopped while topk_accuracy ran test case 1 of 11" in \
        rows[("slow", "01.1")]["message"]
    assert rows[("slow", "04.1")]["passed"] == "True"
    assert time.monotonic() - start < 20 + TIMEOUT


def test_a_notebook_that_kills_its_supervisor(exercise, tmp_path, monkeypatch):
    """The cell that SIGKILLs the supervisor is the one skipped on the retry, every time: the runner
    waits for the supervisor's answer after each cell (a SIGKILLed process answers nothing), so it
    never announces a later cell. (Linux only, as the whole grader: process trees come from /proc.)"""
    subs, out = tmp_path / "submitted", tmp_path / "grades.csv"
    marker = f"8{os.getpid()}{time.monotonic_ns() % 100000}"
    _fill(exercise, subs / "oscar.ipynb", RIGHT, prelude=f"import os, signal, subprocess\n"
          f"subprocess.Popen(['sleep', '{marker}'])\nos.kill(os.getppid(), signal.SIGKILL)")
    rows = _grade(subs, out, monkeypatch, tmp_path)
    assert not processes_mentioning(marker), "a process the notebook started outlived its worker"
    assert rows[("oscar", "04.1")]["passed"] == "True"     # graded without the cell that ended the worker
    assert rows[("oscar", "01.1")]["passed"] == "True"
