"""The exercise checks: the reference solution passes, typical wrong answers are rejected with a
useful verdict, a wrong answer never raises (unless assert_pass=True), and no verdict quotes the
reference's code."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect

import pytest
import torch

shift_module = importlib.import_module("lecturekit.layers.temporal_shift")
metrics_module = importlib.import_module("lecturekit.metrics.classification")
from lecturekit.course import (CHECKS, Case, Check, Mistake, check, check_temporal_shift, check_topk_accuracy,
                               get_check)
import lecturekit.course.checks as checks
from lecturekit.course.checking import run_check
from reference.course_naive import naive_temporal_shift, naive_topk_accuracy


# --------------------------------------------------------------------------- reference passes
def test_naive_references_pass_both_checks():
    """An independent loop implementation agrees with the library reference on every case."""
    assert check_topk_accuracy(naive_topk_accuracy, verbose=False).passed
    assert check_temporal_shift(naive_temporal_shift, verbose=False).passed


def test_checks_are_consistent_when_the_naive_code_is_the_reference():
    """Swapping roles (naive code as reference, library as candidate) also passes, so the cases
    do not depend on a quirk of the library implementation (e.g. its tie rule)."""
    for ex_id, naive, library in [("01.1", naive_topk_accuracy, metrics_module.topk_accuracy),
                                  ("04.1", naive_temporal_shift, shift_module.temporal_shift)]:
        spec = dataclasses.replace(get_check(ex_id), reference=naive)
        result = run_check(spec, lambda *a, _f=library, **k: _f(*a, **k))
        assert result.passed, result.message


def test_softmax_inside_topk_is_not_a_mistake():
    """Softmax keeps the order of the scores, so top-k accuracy on probabilities is correct."""
    def with_softmax(scores, labels, k):
        probs = torch.softmax(scores.double(), dim=1)
        mine = probs.gather(1, labels[:, None])
        ids = torch.arange(probs.shape[1])
        above = (probs > mine) | ((probs == mine) & (ids > labels[:, None]))   # the exercise's tie rule
        return (above.sum(dim=1) < k).double().mean().item()

    assert check_topk_accuracy(with_softmax, verbose=False).passed


# --------------------------------------------------------------------------- wrong answers: top-k
def _topk_hits(idx, labels):
    return (idx == labels[:, None]).any(dim=1)


def tk_smallest(scores, labels, k):           # wrong direction
    return _topk_hits(scores.topk(k, dim=1, largest=False).indices, labels).float().mean().item()


def tk_wrong_axis(scores, labels, k):         # ranks the rows of each class
    idx = torch.topk(scores, k, dim=0).indices
    return (idx == labels).any(dim=0).float().mean().item()


def tk_ignores_k(scores, labels, k):          # top-1 only
    return (scores.argmax(dim=1) == labels).float().mean().item()


def tk_count(scores, labels, k):              # missing division by N
    return _topk_hits(scores.topk(k, dim=1).indices, labels).sum().item()


def tk_percent(scores, labels, k):
    return 100 * _topk_hits(scores.topk(k, dim=1).indices, labels).float().mean().item()


def tk_k_plus_one(scores, labels, k):         # off by one
    return _topk_hits(scores.topk(min(k + 1, scores.shape[1]), dim=1).indices, labels).float().mean().item()


def tk_in_place(scores, labels, k):           # "numerical stability" done in place
    scores -= scores.max(dim=1, keepdim=True).values
    return _topk_hits(scores.topk(k, dim=1).indices, labels).float().mean().item()


def tk_squeeze(scores, labels, k):            # squeeze() drops N when N = 1
    return _topk_hits(torch.topk(scores.squeeze(), k, dim=1).indices, labels).float().mean().item()


def tk_no_mean(scores, labels, k):            # per-row hits instead of the accuracy
    return _topk_hits(scores.topk(k, dim=1).indices, labels).float()


TOPK_WRONG = [
    (tk_smallest, "SMALLEST"),
    (tk_wrong_axis, "raised RuntimeError"),
    (tk_ignores_k, "does not depend on k"),
    (tk_count, "number of hits"),
    (tk_percent, "percentage"),
    (tk_k_plus_one, "k+1"),
    (tk_in_place, "in place"),
    (tk_squeeze, "squeeze"),
    (tk_no_mean, "single number"),
]


@pytest.mark.parametrize("wrong,expected", TOPK_WRONG, ids=[f.__name__ for f, _ in TOPK_WRONG])
def test_topk_check_rejects_typical_mistakes(wrong, expected):
    result = check_topk_accuracy(wrong, verbose=False)
    assert not result.passed and result.status == "failed"
    assert expected in result.message, result.message


# --------------------------------------------------------------------------- wrong answers: shift
def _shift(x, fold_div, first, second, *, cyclic=False, t_axis=2, c_axis=1):
    """Student-style shift with the group offsets as parameters (used to write wrong answers)."""
    fold = x.shape[c_axis] // fold_div
    out = x.clone()
    for lo, step in ((0, first), (fold, second)):
        sel = [slice(None)] * 5
        sel[c_axis] = slice(lo, lo + fold)
        part = x[tuple(sel)]
        rolled = torch.roll(part, -step, dims=t_axis)
        if not cyclic and step:
            n = part.shape[t_axis]
            edge = [slice(None)] * 5
            edge[t_axis] = slice(max(n - step, 0), n) if step > 0 else slice(0, min(-step, n))
            rolled[tuple(edge)] = 0
        out[tuple(sel)] = rolled
    return out


def ts_wrong_direction(x, fold_div=8):
    return _shift(x, fold_div, -1, +1)


def ts_cyclic(x, fold_div=8):                  # torch.roll wraps the frames around
    return _shift(x, fold_div, +1, -1, cyclic=True)


def ts_two_frames(x, fold_div=8):              # off by one in time
    return _shift(x, fold_div, +2, -2)


def ts_one_group(x, fold_div=8):               # missing term: the backward group
    return _shift(x, fold_div, +1, 0)


def ts_along_h(x, fold_div=8):                 # wrong axis
    return _shift(x, fold_div, +1, -1, t_axis=3)


def ts_btchw(x, fold_div=8):                   # thinks the video is (B, T, C, H, W)
    return _shift(x, fold_div, +1, -1, t_axis=1, c_axis=2)


def ts_in_place(x, fold_div=8):
    fold = x.shape[1] // fold_div
    x[:, :fold, :-1] = x[:, :fold, 1:].clone()
    x[:, :fold, -1] = 0
    x[:, fold:2 * fold, 1:] = x[:, fold:2 * fold, :-1].clone()
    x[:, fold:2 * fold, 0] = 0
    return x


def ts_fold_is_fold_div(x, fold_div=8):        # fold_div channels per group
    out = torch.zeros_like(x)
    f = fold_div
    out[:, :f, :-1] = x[:, :f, 1:]
    out[:, f:2 * f, 1:] = x[:, f:2 * f, :-1]
    out[:, 2 * f:] = x[:, 2 * f:]
    return out


def ts_float32_zeros(x, fold_div=8):           # dtype (and, on a GPU, device) not followed
    fold = x.shape[1] // fold_div
    out = torch.zeros(x.shape)
    out[:, :fold, :-1] = x[:, :fold, 1:]
    out[:, fold:2 * fold, 1:] = x[:, fold:2 * fold, :-1]
    out[:, 2 * fold:] = x[:, 2 * fold:]
    return out


def ts_view(x, fold_div=8):                    # shifts a flattened copy made with .view()
    b, c, t, h, w = x.shape
    fold, hw = c // fold_div, h * w
    flat = x.view(b, c, t * hw)                # needs contiguous memory
    out = torch.zeros_like(flat)
    out[:, :fold, :-hw] = flat[:, :fold, hw:]
    out[:, fold:2 * fold, hw:] = flat[:, fold:2 * fold, :-hw]
    out[:, 2 * fold:] = flat[:, 2 * fold:]
    return out.view(b, c, t, h, w)


def ts_no_zero_padding(x, fold_div=8):         # boundary frames keep their old values
    fold = x.shape[1] // fold_div
    out = x.clone()
    out[:, :fold, :-1] = x[:, :fold, 1:]
    out[:, fold:2 * fold, 1:] = x[:, fold:2 * fold, :-1]
    return out


def ts_default_4(x, fold_div=4):               # wrong default
    return naive_temporal_shift(x, fold_div)


SHIFT_WRONG = [
    (ts_wrong_direction, "wrong way"),
    (ts_cyclic, "wrap around"),
    (ts_two_frames, "two frames"),
    (ts_one_group, "only the first group"),
    (ts_along_h, "along H"),
    (ts_btchw, "wrong values"),
    (ts_in_place, "in place"),
    (ts_fold_is_fold_div, "NUMBER of channels"),
    (ts_float32_zeros, "dtype"),
    (ts_view, "view"),
    (ts_no_zero_padding, "wrong values"),
    (ts_default_4, "fold_div=8"),
]


@pytest.mark.parametrize("wrong,expected", SHIFT_WRONG, ids=[f.__name__ for f, _ in SHIFT_WRONG])
def test_temporal_shift_check_rejects_typical_mistakes(wrong, expected):
    result = check_temporal_shift(wrong, verbose=False)
    assert not result.passed and result.status == "failed"
    assert expected in result.message, result.message


def test_first_failure_shows_expected_and_got_for_the_readable_case():
    """The frame-index video makes a direction error readable: both (C x T) tables are shown."""
    result = check_temporal_shift(ts_wrong_direction, verbose=False)
    first = result.first_failure
    assert first["case"].startswith("readable video")
    assert first["expected"].startswith("[[1, 2, 3, 4, 0], [11, 12, 13, 14, 0], [0, 20, 21, 22, 23]")
    assert first["got"].startswith("[[0, 0, 1, 2, 3]")
    assert "C in {0..3}" in first["problem"]


# --------------------------------------------------------------------------- behaviour of check()
def test_wrong_answer_raises_nothing_and_assert_pass_raises(capsys):
    result = check_temporal_shift(ts_cyclic)           # prints, returns, raises nothing
    out = capsys.readouterr().out
    assert out.startswith("FAILED  Exercise 04.1 (temporal_shift)") and "first failing case" in out
    assert result.passed is False and not result
    with pytest.raises(AssertionError, match=r"Exercise 04\.1 \(temporal_shift\): \d+/9 cases passed"):
        check_temporal_shift(ts_cyclic, assert_pass=True, verbose=False)
    assert check_temporal_shift(naive_temporal_shift, assert_pass=True, verbose=False).passed
    check_topk_accuracy(naive_topk_accuracy, verbose=False)
    assert capsys.readouterr().out == ""


def test_exceptions_not_implemented_and_non_functions_are_verdicts():
    def broken(x, fold_div=8):
        raise ValueError("boom")

    def stub(x, fold_div=8):
        raise NotImplementedError("Exercise 04.1: implement the shift")

    r = check_temporal_shift(broken, verbose=False)
    assert r.status == "failed" and "your function raised ValueError: boom" in r.message
    r = check_temporal_shift(stub, verbose=False)
    assert r.status == "not implemented" and "Exercise 04.1: implement the shift" in r.message
    r = check("04.1", None, verbose=False)
    assert r.status == "missing" and not r.passed
    with pytest.raises(AssertionError):
        check("04.1", stub, verbose=False, assert_pass=True)


def test_returning_none_or_a_fooling_object_fails():
    class AlwaysEqual(float):
        def __eq__(self, other):
            return True

        __hash__ = float.__hash__

    class Liar:
        def __eq__(self, other):
            return True

    assert "forget `return`" in check_topk_accuracy(lambda s, y, k: None, verbose=False).message
    assert not check_topk_accuracy(lambda s, y, k: AlwaysEqual(0.123), verbose=False).passed
    assert not check_topk_accuracy(lambda s, y, k: Liar(), verbose=False).passed


def test_passing_the_library_reference_itself_is_refused():
    r = check_temporal_shift(shift_module.temporal_shift, verbose=False)
    assert not r.passed and "reference" in r.message


def test_lookup_by_id_or_name_and_deterministic_verdicts():
    assert get_check("temporal_shift") is get_check("04.1")
    assert get_check("topk_accuracy").exercise == "01.1"
    with pytest.raises(KeyError, match="known: 01.1") as err:
        get_check("99.9")
    assert all(ex in str(err.value) for ex in CHECKS)
    a = check_topk_accuracy(tk_percent, verbose=False).message
    b = check_topk_accuracy(tk_percent, verbose=False).message
    assert a == b


def test_the_table_holds_exactly_the_exercises_the_solutions_check():
    """Every ``check("NN.M", ...)`` of solutions/ has a row in the table, every row is used by a
    solution, and each row's key is its check's own exercise id; references are functions."""
    import json
    import re
    from pathlib import Path

    used = set()
    for path in sorted((Path(__file__).resolve().parents[1] / "solutions").glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "code":
                used |= set(re.findall(r"""\bcheck\(\s*["'](\d\d\.\d+)["']""", "".join(cell["source"])))
    assert len(used) >= 30
    assert used - set(CHECKS) == set(), "exercises checked in solutions/ without a row in the table"
    assert set(CHECKS) - used == set(), "rows of the table no solution notebook checks"
    for ex, spec in CHECKS.items():
        assert spec.exercise == ex and callable(spec.reference) and not isinstance(spec.reference, str), ex


def _code_lines(module) -> set[str]:
    """Code lines (no docstrings) of every function of a module, at least 16 characters long."""
    source = inspect.getsource(module)
    lines = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body[1:] if (node.body and isinstance(node.body[0], ast.Expr)
                                     and isinstance(node.body[0].value, ast.Constant)) else node.body
            for stmt in body:
                for line in ast.get_source_segment(source, stmt).splitlines():
                    code = line.split("#")[0].strip()
                    if len(code) >= 16:
                        lines.add(code)
    return lines


def test_verdicts_never_quote_the_reference_code():
    secret = _code_lines(shift_module) | _code_lines(metrics_module)
    assert len(secret) > 20
    for wrong, _ in TOPK_WRONG:
        message = check_topk_accuracy(wrong, verbose=False).message
        assert not [s for s in secret if s in message]
    for wrong, _ in SHIFT_WRONG:
        message = check_temporal_shift(wrong, verbose=False).message
        assert not [s for s in secret if s in message]


def test_adding_a_check_takes_a_few_lines(monkeypatch):
    """The framework as notebook authors use it: reference, cases, tolerance, hints, one row in
    the table."""
    monkeypatch.setattr("lecturekit.course.checks.CHECKS", dict(CHECKS))

    def cases(g):
        x = torch.randn(3, 5, generator=g)
        return [Case("random (3, 5)", (x,)), Case("one row", (x[:1],), hint="keep the row axis")]

    row_mean = Check(exercise="99.1", name="row_mean", title="Row mean",
                     reference=lambda x: x.mean(dim=1), cases=cases, arg_names=("x",), axes="N D",
                     mistakes=(Mistake(lambda x: x.mean(dim=0), "you averaged the wrong axis"),))
    checks.CHECKS["99.1"] = row_mean
    assert check("99.1", lambda x: x.sum(dim=1) / x.shape[1], verbose=False).passed
    bad = check("row_mean", lambda x: x.mean(dim=0), verbose=False)
    assert not bad.passed and "wrong shape" in bad.message
    assert "99.1" not in CHECKS  # it went into the test's private copy of the table
    bad = check_topk_accuracy(tk_percent, verbose=False).details
    assert bad["cases_total"] == 11 and bad["first_failure"]["case"] == "random logits, k = 1"


# --------------------------------------------------------------------------- tracebacks in a notebook
def test_a_failing_check_shows_the_message_and_the_students_line_not_library_frames():
    """IPython honours ``__tracebackhide__``: the student sees the verdict, the AssertionError and
    their own check line, and no frame of lecturekit/course."""
    import re

    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    shell = InteractiveShell.instance(colors="nocolor")
    try:
        cells = ["from lecturekit.course import check, check_temporal_shift\n"
                 "def temporal_shift(x, fold_div=8):\n    return x.clone()",
                 "check_temporal_shift(temporal_shift, assert_pass=True)",
                 'check("04.3", "shift", assert_pass=True)']
        shell.run_cell(cells[0], store_history=False)
        for cell in cells[1:]:
            with capture_output() as captured:
                result = shell.run_cell(cell, store_history=False)
            assert isinstance(result.error_in_exec, AssertionError)
            text = re.sub(r"\x1b\[[0-9;]*m", "", captured.stdout + captured.stderr)
            assert "FAILED  Exercise" in text and "CheckFailed: Exercise 0" in text
            assert cell in text                                          # the student's own line
            for library in ("checking.py", "checks/nb04.py", "lecturekit/course"):
                assert library not in text, text
    finally:
        InteractiveShell.clear_instance()


# --------------------------------------------------------------------------- answers through the grader
def test_experiment_answers_and_new_functions_are_graded(tmp_path):
    """An experiment's answer is a value, not a function: the grader reads it from the student's
    notebook and compares it in its own process; a stub left unanswered is 'missing'."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    from lecturekit.course.grading import grade

    def submission(name, answer, consensus):
        nb = new_notebook(cells=[new_markdown_cell("### Exercise 04.3: Experiment\n\n### Exercise 05.3: Consensus"),
                                 new_code_cell("import torch\n" + answer),
                                 new_code_cell(f"def segment_consensus(scores):\n    return {consensus}")])
        nbformat.write(nb, tmp_path / f"{name}.ipynb")

    submission("right", 'answer_04_3 = "No shift"', "scores.mean(dim=1)")
    submission("wrong", 'answer_04_3 = "shift"', "scores.sum(dim=1)")
    submission("stub", 'raise NotImplementedError("Exercise 04.3: ...")', "scores.amax(1)")
    rows = {(r.student, r.exercise): r for r in grade(tmp_path, out=None, timeout=60, jobs=2, verbose=False)}
    assert rows[("right", "04.3")].passed and rows[("right", "05.3")].passed
    assert rows[("wrong", "04.3")].status == "failed" and "playing the clip backwards" in rows[("wrong", "04.3")].message
    assert "no shift" not in rows[("wrong", "04.3")].message.split("hint:")[0]
    assert rows[("wrong", "05.3")].status == "failed" and "summed" in rows[("wrong", "05.3")].message
    assert rows[("stub", "04.3")].status == "missing" and "variable answer_04_3" in rows[("stub", "04.3")].message
    assert "max consensus" in rows[("stub", "05.3")].message


def test_every_exercise_reference_is_library_code():
    """One home per idea: a check compares students with the function of the library that
    computes the idea (answer checks excepted: they state facts about the course's experiments).
    Two exercises hand students plain weight tuples where the model holds modules; their
    references only put those weights into the library's modules and call the library function
    (tests/test_exercise_references_anticipation.py counts those calls)."""
    from lecturekit.course.checks import CHECKS

    adapters = {"10.2", "12.1"}
    for exercise, spec in CHECKS.items():
        module = getattr(spec.reference, "__module__", "")
        if spec.answer:
            continue
        if exercise in adapters:
            assert module.startswith("lecturekit.course.checks."), exercise
        else:
            assert module.startswith("lecturekit.") and not module.startswith("lecturekit.course"), (exercise, module)
