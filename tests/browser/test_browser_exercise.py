"""An exercise as a student works it: the stub's check fails with the hint and without library
frames; the solution typed into the stub cell makes the check print PASSED."""

from __future__ import annotations

import re

import pytest

from browser_cells import ROOT, load


pytestmark = pytest.mark.browser

EXERCISE = "exercises/04_temporal_shift.ipynb"
SOLUTION = "solutions/04_temporal_shift.ipynb"
FUNCTION = "temporal_shift"


def _src(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _find(nb, pattern: str) -> int:
    hits = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and re.search(pattern, _src(c))]
    assert hits, f"no code cell matches {pattern!r}"
    return hits[0]


def _solution_code() -> str:
    """The solution's function cell without the solution markers (what the student types)."""
    nb = load(ROOT / SOLUTION)
    code = _src(nb["cells"][_find(nb, rf"^def {FUNCTION}\(")])
    return "\n".join(ln for ln in code.split("\n") if not ln.strip().startswith("### "))


def test_stub_fails_with_the_hint_and_the_typed_solution_passes(student):
    nb = load(ROOT / EXERCISE)
    stub = _find(nb, rf"^def {FUNCTION}\(")
    check = _find(nb, rf"check\(\"04\.1\", {FUNCTION}")
    hint = re.search(r'raise NotImplementedError\("(.*)"\)', _src(nb["cells"][stub])).group(1)

    student.open(EXERCISE)
    assert student.dirty_tabs() == 0, "opening the notebook marked it modified (kernelspec/metadata changed)"
    student.run_all(timeout_s=180)
    student.cell(check).scroll_into_view_if_needed()
    student.shot("stub_checked")
    verdict = student.output_text(check)
    assert "NOT DONE" in verdict and hint in verdict, verdict[:2000]
    assert "CheckFailed" in verdict
    assert "checking.py" not in verdict and "lecturekit/course" not in verdict, \
        f"the failing check shows library frames:\n{verdict[:3000]}"

    student.type_into(stub, _solution_code())
    student.run_cell(stub)
    assert student.errors_in(stub) == 0, student.output_text(stub)
    student.run_cell(check)
    student.cell(check).scroll_into_view_if_needed()
    student.shot("solution_checked")
    verdict = student.output_text(check)
    assert "PASSED  Exercise 04.1" in verdict and student.errors_in(check) == 0, verdict[:2000]
    following = check + 2                         # "your shift keeps the sum": uses the function
    student.run_cell(following)
    assert student.errors_in(following) == 0, student.output_text(following)
    assert student.console_errors() == []
