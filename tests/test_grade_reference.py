"""Reference detection by what runs (issue 18): while the grader's worker calls a student function
on the test cases it traces every Python call and flags the execution of the exercise's reference
code, of the private helpers of its module, and of the library code the reference runs, whatever
route reached it (a closure, importlib.reload, a private helper, a thread, a reference defined in
lecturekit.course.checks). Such an exercise gets the status "uses the reference", never a pass;
correct work next to it is not flagged."""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from lecturekit.course.checking import USES_REFERENCE
from lecturekit.course.checks import CHECKS, get_check
from lecturekit.course.exercises import build_exercises
from lecturekit.course.grading import reference_code
from test_grade_hostile import FIXTURE, RIGHT, _fill, _grade


SHIFT_MODULE = 'sys.modules["lecturekit.layers.temporal_shift"]'
BYPASSES = {
    # the library function itself, imported under another name
    "direct": {"topk_accuracy": "from lecturekit.metrics import topk_accuracy as mine\nreturn mine(scores, labels, k)",
               "temporal_shift": "import lecturekit.layers\nreturn lecturekit.layers.temporal_shift(x, fold_div)"},
    # kept in a closure (one built in an earlier cell, one read back through __closure__)
    "closure": {"topk_accuracy": "return _kept(scores, labels, k)",
                "temporal_shift": "import lecturekit.layers\ngrab = (lambda f: lambda: f)(lecturekit.layers.temporal_shift)\n"
                                  "return grab.__closure__[0].cell_contents(x, fold_div)"},
    # a fresh copy of the module: new function objects, the same code
    "reload": {"topk_accuracy": "import importlib, lecturekit.metrics.classification as m\n"
                                "return importlib.reload(m).topk_accuracy(scores, labels, k)",
               "temporal_shift": f"import importlib, sys\nm = importlib.reload({SHIFT_MODULE})\n"
                                 "return m.temporal_shift(x, fold_div)"},
    # the helpers that do the work, not the reference
    "helper": {"topk_accuracy": "from lecturekit.metrics.classification import topk_hits\n"
                                "return float(topk_hits(scores, labels, k).mean())",
               "temporal_shift": f"import sys\nm = {SHIFT_MODULE}\n"
                                 "return m._shift_time_axis(x, x.shape[1] // fold_div, 'offline', 2)"},
    # another thread
    "thread": {"topk_accuracy": "import threading, lecturekit.metrics as lm\nbox = []\n"
                                "t = threading.Thread(target=lambda: box.append(lm.topk_accuracy(scores, labels, k)))\n"
                                "t.start()\nt.join()\nreturn box[0]",
               "temporal_shift": RIGHT["temporal_shift"]},
}
CLOSURE_PRELUDE = "import lecturekit.metrics\n_kept = (lambda f: lambda *a, **k: f(*a, **k))(lecturekit.metrics.topk_accuracy)"


@pytest.fixture(scope="module")
def exercise(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("exercises")
    build_exercises(FIXTURE / "solutions", folder, verbose=False)
    return folder / "90_example.ipynb"


def test_every_route_to_the_reference_is_seen_and_correct_work_is_not(exercise, tmp_path, monkeypatch):
    subs, out = tmp_path / "submitted", tmp_path / "grades.csv"
    for student, bodies in BYPASSES.items():
        _fill(exercise, subs / f"{student}.ipynb", bodies, prelude=CLOSURE_PRELUDE if student == "closure" else "")
    _fill(exercise, subs / "honest.ipynb", RIGHT, prelude=CLOSURE_PRELUDE)   # holds the closure, never calls it
    # switching the tracing off inside the function is noticed (the case is not graded)
    _fill(exercise, subs / "blind.ipynb", {
        "topk_accuracy": "import sys\nsys.settrace(None)\nfrom lecturekit.metrics import topk_accuracy as r\n"
                         "return r(scores, labels, k)",
        "temporal_shift": RIGHT["temporal_shift"]})
    rows = _grade(subs, out, monkeypatch, tmp_path)
    for student, bodies in BYPASSES.items():
        for ex, name in (("01.1", "topk_accuracy"), ("04.1", "temporal_shift")):
            row = rows[(student, ex)]
            if bodies[name] is RIGHT.get(name):
                assert row["passed"] == "True", (student, ex, row)
                continue
            assert row["status"] == USES_REFERENCE and row["passed"] == "False", (student, ex, row)
            assert "runs lecturekit's own reference implementation" in row["message"]
    assert rows[("honest", "01.1")]["passed"] == "True" and rows[("honest", "04.1")]["passed"] == "True"
    assert rows[("blind", "01.1")]["status"] == "failed"
    assert "switched off the grader's call tracing" in rows[("blind", "01.1")]["message"]
    assert rows[("blind", "04.1")]["passed"] == "True"


def _notebook(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    for kind, text in cells:
        nb.cells.append(new_markdown_cell(text) if kind == "md" else new_code_cell(textwrap.dedent(text).strip()))
    return nb


def test_every_registered_exercise_detects_its_reference(tmp_path, monkeypatch):
    """One notebook answers every function exercise of the course by calling the registered
    reference (most of them defined in lecturekit.course.checks); another reaches the library
    function that checks-module references wrap, or a private helper of a checks module."""
    exercises = sorted(e for e, spec in CHECKS.items() if not spec.answer)
    assert len(exercises) >= 16
    cells = [("code", "from lecturekit.course.checks import get_check")]
    for ex in exercises:
        spec = get_check(ex)
        assert reference_code(spec, spec.make_cases(0)), ex          # something to watch for, everywhere
        cells += [("md", f"### Exercise {ex}: {spec.title}"),
                  ("code", f"def {spec.name}(*args, **kwargs):\n"
                           f"    return get_check({ex!r}).reference(*args, **kwargs)")]
    subs = tmp_path / "submitted"
    subs.mkdir()
    nbformat.write(_notebook(cells), subs / "everything.ipynb")
    nbformat.write(_notebook([
        ("md", "### Exercise 02.1: Stacking frames"),
        ("code", """
            def stack_frames(x):
                from lecturekit.models.fusion import stack_frames as library_stack
                return library_stack(x)
         """),
        ("md", "### Exercise 05.3: Segment consensus"),
        ("code", """
            import lecturekit.models.tsn as tsn
            def segment_consensus(scores):
                return tsn.segment_consensus(scores)
         """),
        ("md", "### Exercise 08.2: SSIM of one frame"),
        ("code", """
            def ssim_frame(x, y):
                from lecturekit.metrics import ssim_per_frame     # what the checks' reference wraps
                return ssim_per_frame(x[None, None, None], y[None, None, None])[0, 0]
         """),
        ("md", "### Exercise 11.2: HORST's queue update"),
        ("code", """
            def push_queue(queue, x, order):
                from lecturekit.course.checks.nb11 import _wrong_push   # a known mistake, right by default
                return _wrong_push(queue, x, order)
         """),
        ("md", "### Exercise 06.1: Greedy matching"),
        ("code", """
            import torch.nn.functional as F
            def greedy_match(prev, nxt):
                from lecturekit.models.ata import greedy_assignment
                sim = F.normalize(prev.float(), dim=-1) @ F.normalize(nxt.float(), dim=-1).transpose(1, 2)
                return greedy_assignment(sim)
         """),
    ]), subs / "wrappers.ipynb")
    rows = _grade(subs, tmp_path / "grades.csv", monkeypatch, tmp_path, exercises=exercises)
    for ex in exercises:
        row = rows[("everything", ex)]
        assert row["status"] == USES_REFERENCE and row["passed"] == "False", (ex, row)
    for ex in ("02.1", "05.3", "08.2", "06.1", "11.2"):
        row = rows[("wrappers", ex)]
        assert row["status"] == USES_REFERENCE, (ex, row)
    assert rows[("wrappers", "04.1")]["status"] == "missing"


def test_reference_code_is_the_reference_its_private_helpers_and_the_library_code_it_runs():
    spec = get_check("08.2")
    names = {(f, n) for f, _, n in reference_code(spec, spec.make_cases(0))}
    assert ("lecturekit/metrics/image.py", "mean_ssim") in names                # the reference
    assert ("lecturekit/metrics/image.py", "_pair") in names                    # a private helper of its module
    assert ("lecturekit/metrics/image.py", "gaussian_window") in names          # what the reference runs
    assert ("lecturekit/course/checks/nb08.py", "_wrong_ssim") in names         # the check's known mistakes
    # never the grading machinery, shared input checks or module-level code
    assert not any(f.endswith(("checking.py", "grading.py", "_worker.py", "shapes.py")) or n == "<module>"
                   for f, n in names), names
    spec = get_check("01.1")                                                    # a library reference
    names = {(f, n) for f, _, n in reference_code(spec, spec.make_cases(0))}
    assert {("lecturekit/metrics/classification.py", n) for n in ("topk_accuracy", "topk_hits", "_labels_np")} <= names
