"""Instructor grading end to end: build the fixture's exercises, let five "students" fill them in
(right, wrong, endless loop, untouched, cheating), grade the folder in one batch, read the CSV."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

from grading_helpers import csv_rows, processes_mentioning
from lecturekit.course.__main__ import main
from lecturekit.course.exercises import build_exercises

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "course"
TIMEOUT = 20  # seconds per submission; a healthy one needs about 3 s here

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
WRONG = {
    "topk_accuracy": """
        hits = (scores.topk(k, dim=1).indices == labels.unsqueeze(1)).any(dim=1)
        return 100 * hits.double().mean().item()
    """,
    "temporal_shift": """
        out = torch.zeros_like(x)
        out[:, :fold, 1:] = x[:, :fold, :-1]
        out[:, fold:2 * fold, :-1] = x[:, fold:2 * fold, 1:]
        out[:, 2 * fold:] = x[:, 2 * fold:]
        return out
    """,
}
ENDLESS = {"topk_accuracy": "while True:\n    pass", "temporal_shift": RIGHT["temporal_shift"]}
CHEAT = {
    "topk_accuracy": "from lecturekit.metrics import topk_accuracy as ref\nreturn ref(scores, labels, k)",
    "temporal_shift": "return torch.zeros_like(x)",
}
# Tries to change what the grader compares with: the library reference and torch's comparisons.
CHEAT_PRELUDE = """
import torch, lecturekit.layers
lecturekit.layers.temporal_shift = lambda x, fold_div=8: torch.zeros_like(x)
torch.equal = lambda *a, **k: True
torch.allclose = lambda *a, **k: True
torch.isclose = lambda a, b, **k: torch.ones_like(a, dtype=torch.bool)
"""


def _fill(exercise: Path, target: Path, bodies: dict[str, str], prelude: str = "") -> None:
    """What a student does: replace each stub (and only the stub) by their own code."""
    nb = nbformat.read(exercise, as_version=4)
    for cell in nb.cells:
        for name, body in bodies.items():
            if cell.cell_type == "code" and f"def {name}(" in cell.source:
                lines = cell.source.split("\n")
                at = lines.index("    # YOUR CODE HERE")
                assert lines[at + 1].startswith("    raise NotImplementedError(")
                lines[at:at + 2] = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ").split("\n")
                cell.source = "\n".join(lines)
    if prelude:
        nb.cells.insert(2, new_code_cell(prelude.strip()))
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)


def test_grade_a_batch_with_right_wrong_endless_untouched_and_cheating_submissions(tmp_path):
    build_exercises(FIXTURE / "solutions", tmp_path / "exercises", verbose=False)
    exercise = tmp_path / "exercises" / "90_example.ipynb"
    subs = tmp_path / "submitted"
    _fill(exercise, subs / "alice.ipynb", RIGHT)
    _fill(exercise, subs / "bob.ipynb", WRONG)
    _fill(exercise, subs / "carol.ipynb", ENDLESS)
    _fill(exercise, subs / "dave.ipynb", {})
    _fill(exercise, subs / "erin" / "my_work.ipynb", CHEAT, prelude=CHEAT_PRELUDE)   # a student folder
    (subs / "grace.ipynb").write_text("{ not a notebook")

    out = tmp_path / "grades.csv"
    start = time.perf_counter()
    assert main(["grade", str(subs), "--out", str(out), "--timeout", str(TIMEOUT), "--jobs", "5"]) == 0
    elapsed = time.perf_counter() - start
    rows = csv_rows(out)

    assert rows[("alice", "01.1")]["passed"] == "True" and rows[("alice", "04.1")]["passed"] == "True"
    assert rows[("bob", "01.1")]["passed"] == "False" and "percentage" in rows[("bob", "01.1")]["message"]
    assert rows[("bob", "04.1")]["status"] == "failed" and "wrong way" in rows[("bob", "04.1")]["message"]
    # carol's topk_accuracy loops forever, already in her notebook's own check cell: the notebook
    # does not finish, and the message says which cell was running
    for ex in ("01.1", "04.1"):
        assert rows[("carol", ex)]["status"] == "timeout" and rows[("carol", ex)]["passed"] == "False"
        assert f"did not finish within {TIMEOUT} s" in rows[("carol", ex)]["message"]
        assert "(code cell 4 was running)" in rows[("carol", ex)]["message"]
        assert rows[("dave", ex)]["status"] == "not implemented"
    assert "Exercise 01.1: count the classes ranked above each label" in rows[("dave", "01.1")]["message"]
    assert rows[("erin", "01.1")]["status"] == "uses the reference" and rows[("erin", "01.1")]["passed"] == "False"
    assert "runs lecturekit's own reference implementation" in rows[("erin", "01.1")]["message"]
    assert rows[("erin", "04.1")]["status"] == "failed"          # the patched reference did not count
    assert rows[("erin", "04.1")]["message"].startswith("my_work.ipynb: 0/9 cases passed")
    assert rows[("grace", "")]["status"] == "error"
    assert rows[("grace", "")]["message"].startswith("grace.ipynb: unreadable notebook: ")
    assert "line 1 column 3" in rows[("grace", "")]["message"]
    assert rows[("grace", "01.1")]["status"] == rows[("grace", "04.1")]["status"] == "missing"
    assert len(rows) == 13

    summary = Path(str(out) + ".summary.txt").read_text()
    assert "alice    2/2" in summary and "carol    0/2   (01.1 timeout, 04.1 timeout)" in summary
    assert "01.1  1/6" in summary and "04.1  1/6" in summary
    # The endless notebook was killed at its limit while the others were graded alongside it.
    assert elapsed < 2 * TIMEOUT, elapsed
    assert not processes_mentioning(str(subs / "carol.ipynb"))


def test_exercises_without_a_check_are_listed_for_grading_by_hand(tmp_path):
    """No worker is started when nothing can be checked automatically; --exercises overrides."""
    from nbformat.v4 import new_markdown_cell, new_notebook

    nb = new_notebook(cells=[new_markdown_cell("### Exercise 98.1: An essay\n\nWrite it.")])
    nbformat.write(nb, tmp_path / "zoe.ipynb")
    out = tmp_path / "g.csv"
    assert main(["grade", str(tmp_path), "--out", str(out)]) == 0
    row = csv_rows(out)[("zoe", "98.1")]
    assert row["passed"] == "" and row["status"] == "manual" and "grade by hand" in row["message"]
    assert main(["grade", str(tmp_path), "--out", str(out), "--exercises", "98.1,98.2"]) == 0
    assert set(csv_rows(out)) == {("zoe", "98.1"), ("zoe", "98.2")}
