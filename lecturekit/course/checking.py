"""The check framework: compare a student's function with the library's reference implementation.

A *check* is a small declarative record (:class:`Check`) for one exercise id ("04.1") and the
name of the function the student writes ("temporal_shift"); the table of all of them is
:data:`lecturekit.course.checks.CHECKS`. Running a check

1. builds the test cases from a fixed seed (random inputs plus hand-picked edge cases, including
   the shapes students typically get wrong),
2. computes the expected output of each case with the reference, a function of the library,
3. calls the candidate on a private copy of each case's inputs, catching every exception,
4. compares output type, shape, dtype and values within the check's tolerance, and verifies
   that no input was modified in place,
5. returns a :class:`CheckResult` and prints a short verdict: how many cases passed, the first
   failing case with expected vs got, and a hint. The verdict never contains the reference's
   source code, only values.

A wrong answer never raises (``result.passed`` is False); ``assert_pass=True`` turns a failure
into an ``AssertionError`` so that solution notebooks fail loudly in CI.

A check in a few lines (``lecturekit/course/checks/nb04.py`` holds the complete one)::

    def _cases(g):                                 # g: a seeded torch.Generator
        x = torch.randn(2, 8, 4, 3, 3, generator=g)
        return [Case("random video", (x,)), Case("T = 1: a single frame", (x[:, :, :1],), hint="...")]

    TEMPORAL_SHIFT = Check(exercise="04.1", name="temporal_shift", title="Temporal shift",
                           reference=temporal_shift,  # lecturekit.layers.temporal_shift
                           cases=_cases, arg_names=("x",), atol=0.0, rtol=0.0, hint="...")

and one row ``"04.1": nb04.TEMPORAL_SHIFT`` in the table.

The instructor's grader (``grading.py``) runs the student's function in a separate process and
evaluates the outputs it sends back with the same :func:`evaluate` in the grader's own process,
against the grader's own copy of the reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

UNSUPPORTED = "__lecturekit_unsupported__"

# Status words of a CheckResult (also used in the graders' CSV).
PASSED, FAILED, NOT_IMPLEMENTED, ERROR, MISSING, TIMEOUT = (
    "passed", "failed", "not implemented", "error", "missing", "timeout")
USES_REFERENCE = "uses the reference"     # the grader saw the reference's code run (never a pass)


# --------------------------------------------------------------------------- declarations
@dataclass(frozen=True)
class Case:
    """One test input: positional ``args`` and keyword ``kwargs`` for the function under test.

    ``label`` says in plain words what the case is ("T = 1: a single frame"); ``hint`` is shown
    when this case is the first to fail.
    """

    label: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    hint: str = ""


@dataclass(frozen=True)
class Mistake:
    """A known wrong answer: when the candidate's output equals ``wrong(*args)`` on the failing
    case, ``hint`` is shown. Used for diagnosis only; a mistake never makes a case pass."""

    wrong: Callable
    hint: str


@dataclass(frozen=True)
class Check:
    """Everything needed to grade one exercise.

    Args:
        exercise: the exercise id, "NN.M" (NN = notebook number).
        name: the name of the function students define (the grader looks it up by this name).
        title: the exercise title, as in its markdown heading.
        reference: the reference implementation, a function of the library.
        cases: ``cases(generator) -> list[Case]``; the generator is seeded, so cases are the
            same on every run and every machine.
        arg_names: names of the positional arguments, used in messages ("x", "scores").
        axes: shape letters of tensor outputs ("B C T H W"), used to say where values differ.
        atol, rtol: tolerances of the value comparison (0, 0 = exact).
        check_dtype: a tensor output must have the reference's dtype.
        mistakes: known wrong answers with their hints, for diagnosis.
        hint: a general hint shown with any failure.
        answer: the student gives a value (the answer to an experiment's question), not a
            function: ``name`` is the variable, ``reference`` a function of no arguments that
            returns what is true, ``cases`` one ``Case`` without arguments, and mistakes are
            functions of no arguments returning a wrong answer. Strings are compared without
            case and surrounding spaces; a failure never shows the expected value.
    """

    exercise: str
    name: str
    title: str
    reference: Callable
    cases: Callable[[torch.Generator], list[Case]]
    arg_names: tuple[str, ...] = ()
    axes: str = ""
    atol: float = 1e-6
    rtol: float = 1e-5
    check_dtype: bool = True
    mistakes: tuple[Mistake, ...] = ()
    hint: str = ""
    answer: bool = False

    def make_cases(self, seed: int = 0) -> list[Case]:
        return list(self.cases(torch.Generator().manual_seed(seed)))


@dataclass
class Outcome:
    """What happened when the candidate ran on one case (plain data only: it crosses processes).

    status: "ok", "raised", "not implemented", "used reference", "unsendable" (the grader's
    worker could not send the value the candidate returned), "untraceable" (the candidate
    switched off the worker's call tracing)."""

    status: str
    output: Any = None
    args_after: list = field(default_factory=list)
    error: str = ""


@dataclass
class CheckResult:
    """The verdict of one check: ``passed`` plus everything a person or a CSV needs."""

    exercise: str
    name: str
    title: str
    passed: bool
    status: str
    message: str                # the printed multi-line verdict
    summary: str                # one line, for CSV files and AssertionError
    cases_passed: int = 0
    cases_total: int = 0
    first_failure: dict | None = None

    @property
    def details(self) -> dict:
        """Counts and the first failing case (case, inputs, problem, expected, got, hints)."""
        return {"status": self.status, "cases_passed": self.cases_passed, "cases_total": self.cases_total,
                "first_failure": self.first_failure}

    def __bool__(self) -> bool:  # ``if check_x(f):`` reads naturally
        return self.passed

    def __repr__(self) -> str:
        return (f"CheckResult(exercise={self.exercise!r}, passed={self.passed}, status={self.status!r}, "
                f"cases={self.cases_passed}/{self.cases_total})")

    def __str__(self) -> str:
        return self.message


def answer_candidate(value: Any) -> Callable[[], Any]:
    """The student's answer to an experiment's question as a function of no arguments (how an
    answer check calls it); strings are normalised (case, surrounding spaces)."""
    if isinstance(value, str):
        value = " ".join(value.split()).lower()

    def answer():
        return value

    return answer


def _answer_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "True or False"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return describe(value)


# --------------------------------------------------------------------------- plain data
def to_plain(value: Any) -> Any:
    """Copy a returned value into plain data (plain tensors on CPU, Python numbers, lists,
    tuples, dicts). Anything else becomes ``{UNSUPPORTED: type name}``: a tensor subclass or
    an object with a clever ``__eq__`` cannot take part in the comparison."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().as_subclass(torch.Tensor).to("cpu").clone()
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        np = None
    if np is not None:
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                return {UNSUPPORTED: "numpy object array"}
            return torch.from_numpy(np.array(value, copy=True))
        if isinstance(value, np.generic):
            return to_plain(value.item())
    if type(value) in (list, tuple):
        return type(value)(to_plain(v) for v in value)
    if type(value) is dict:
        return {str(k): to_plain(v) for k, v in value.items()}
    return {UNSUPPORTED: type(value).__name__}


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.clone()  # keeps strides, so a non-contiguous case stays non-contiguous
    if isinstance(value, (list, tuple)):
        return type(value)(_clone(v) for v in value)
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    return value


def call_candidate(fn: Callable, case: Case) -> Outcome:
    """Run ``fn`` on a private copy of the case's inputs; never raises for the candidate's sake."""
    args, kwargs = _clone(case.args), _clone(case.kwargs)
    try:
        out = fn(*args, **kwargs)
    except NotImplementedError as err:
        return Outcome(NOT_IMPLEMENTED, error=str(err) or "NotImplementedError")
    except Exception as err:  # the student's bug is the check's data
        return Outcome("raised", error=_one_line(f"{type(err).__name__}: {err}"))
    after = [to_plain(a) for a in args] + [to_plain(kwargs[k]) for k in sorted(kwargs)]
    return Outcome("ok", output=to_plain(out), args_after=after)


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- comparison
def describe(value: Any) -> str:
    """A short description of a value's type and shape (never its full content)."""
    if value is None:
        return "None (did you forget `return`?)"
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).replace('torch.', '')} tensor of shape {tuple(value.shape)}"
    if isinstance(value, bool):
        return f"the bool {value}"
    if isinstance(value, (int, float)):
        return f"the number {value:.6g}"
    if isinstance(value, dict) and UNSUPPORTED in value:
        return f"an object of type {value[UNSUPPORTED]}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"a {type(value).__name__}"


def _is_scalar(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
        isinstance(value, torch.Tensor) and value.dim() == 0)


def _fmt(x: float) -> str:
    if float(x).is_integer() and abs(x) < 1e9:
        return str(int(x))
    return f"{x:.6g}"


def _ranges(indices: list[int]) -> str:
    parts, start = [], None
    for i, v in enumerate(indices):
        if start is None:
            start = v
        if i + 1 == len(indices) or indices[i + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}..{v}")
            start = None
    return "{" + ", ".join(parts) + "}"


def _small(t: torch.Tensor, axes: Sequence[str]) -> str:
    """A small tensor written out, singleton axes squeezed (names of the kept axes shown)."""
    kept = [a for a, n in zip(axes, t.shape) if n != 1] if len(axes) == t.dim() else []
    values = t.squeeze().tolist()

    def fmt(v):
        return "[" + ", ".join(fmt(u) for u in v) + "]" if isinstance(v, list) else _fmt(v)

    label = f" ({' x '.join(kept)})" if kept and len(kept) > 1 else ""
    return f"{fmt(values)}{label}"


def compare(expected: Any, got: Any, *, atol: float, rtol: float, check_dtype: bool = True,
            axes: str = "", path: str = "output") -> dict | None:
    """None when ``got`` matches ``expected``; otherwise a dict describing the first difference
    (keys ``problem``, ``expected``, ``got``)."""
    if _is_scalar(expected):
        if not _is_scalar(got):
            return {"problem": f"{path} should be a single number", "expected": describe(expected),
                    "got": describe(got)}
        e, g = float(expected), float(got)
        if math.isnan(g) or not math.isclose(g, e, rel_tol=rtol, abs_tol=atol):
            return {"problem": f"{path} has the wrong value", "expected": _fmt(e), "got": _fmt(g)}
        return None
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return {"problem": f"{path} should be a tensor", "expected": describe(expected),
                    "got": describe(got)}
        if tuple(got.shape) != tuple(expected.shape):
            return {"problem": f"{path} has the wrong shape", "expected": str(tuple(expected.shape)),
                    "got": str(tuple(got.shape))}
        if check_dtype and got.dtype != expected.dtype:
            return {"problem": f"{path} has the wrong dtype (it should follow the input's dtype)",
                    "expected": str(expected.dtype), "got": str(got.dtype)}
        if expected.numel() == 0:
            return None
        e, g = expected.to(torch.float64), got.to(torch.float64)
        bad = ~torch.isclose(g, e, rtol=rtol, atol=atol)
        if not bool(bad.any()):
            return None
        where = bad.nonzero()
        first = tuple(int(i) for i in where[0])
        letters = axes.split()
        problem = (f"{path} has wrong values at {int(bad.sum())} of {bad.numel()} positions; first at "
                   f"index {list(first)}: expected {_fmt(float(e[first]))}, got {_fmt(float(g[first]))}")
        if len(letters) == e.dim():
            spots = [f"{a} in {_ranges(sorted(set(where[:, d].tolist())))}"
                     for d, a in enumerate(letters) if e.shape[d] > 1]
            if spots:
                problem += "; the wrong values sit at " + ", ".join(spots)
        if expected.numel() <= 48:
            return {"problem": problem, "expected": _small(expected, letters), "got": _small(got, letters)}
        return {"problem": problem, "expected": describe(expected), "got": describe(got)}
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)) or len(got) != len(expected):
            return {"problem": f"{path} should be a {type(expected).__name__} of length {len(expected)}",
                    "expected": describe(expected), "got": describe(got)}
        for i, (e, g) in enumerate(zip(expected, got)):
            diff = compare(e, g, atol=atol, rtol=rtol, check_dtype=check_dtype, axes=axes, path=f"{path}[{i}]")
            if diff:
                return diff
        return None
    if expected != got:
        return {"problem": f"{path} differs", "expected": describe(expected), "got": describe(got)}
    return None


def _inputs_changed(case: Case, after: list) -> list[int]:
    before = list(case.args) + [case.kwargs[k] for k in sorted(case.kwargs)]
    changed = []
    for i, (b, a) in enumerate(zip(before, after)):
        if isinstance(b, torch.Tensor):
            if not isinstance(a, torch.Tensor) or a.shape != b.shape or not torch.equal(a.to(b.dtype), b):
                changed.append(i)
    return changed


def describe_case(spec: Check, case: Case) -> str:
    parts = []
    for i, a in enumerate(case.args):
        name = spec.arg_names[i] if i < len(spec.arg_names) else f"arg{i}"
        if isinstance(a, torch.Tensor):
            layout = "" if a.is_contiguous() else ", not contiguous"
            parts.append(f"{name}: {str(a.dtype).replace('torch.', '')} {tuple(a.shape)}{layout}")
        else:
            parts.append(f"{name}={a!r}")
    parts += [f"{k}={v!r}" for k, v in case.kwargs.items()]
    return ", ".join(parts)


# --------------------------------------------------------------------------- evaluation
def expected_outputs(spec: Check, cases: list[Case]) -> list[Any]:
    """The reference's outputs, as plain data (the reference runs on private copies)."""
    reference = spec.reference
    return [to_plain(reference(*_clone(c.args), **_clone(c.kwargs))) for c in cases]


def _diagnose(spec: Check, case: Case, got: Any) -> str:
    for mistake in spec.mistakes:
        try:
            wrong = to_plain(mistake.wrong(*_clone(case.args), **_clone(case.kwargs)))
        except Exception:
            continue
        if compare(wrong, got, atol=spec.atol, rtol=spec.rtol, check_dtype=False, axes=spec.axes) is None:
            return mistake.hint
    return ""


def _result(spec: Check, status: str, lines: list[str], summary: str, *, passed: bool = False,
            n_ok: int = 0, n: int = 0, first: dict | None = None) -> CheckResult:
    return CheckResult(spec.exercise, spec.name, spec.title, passed, status, "\n".join(lines), summary,
                       n_ok, n, first)


def evaluate(spec: Check, cases: list[Case], expected: list[Any], outcomes: list[Outcome]) -> CheckResult:
    """Turn the candidate's outcomes into a verdict (pure: runs in the grader's own process)."""
    head = f"Exercise {spec.exercise} ({spec.name})"
    for out in outcomes:
        if out.status == NOT_IMPLEMENTED:
            return _result(spec, NOT_IMPLEMENTED,
                           [f"NOT DONE  {head}: not implemented yet.", f"  {out.error}"],
                           f"not implemented: {_one_line(out.error, 160)}", n=len(cases))
        if out.status == "used reference":
            msg = (f"your {spec.name} runs lecturekit's own reference implementation (or one of its "
                   f"helpers) on the test cases; the exercise is to write it yourself")
            return _result(spec, USES_REFERENCE, [f"USES THE REFERENCE  {head}: {msg}."], msg, n=len(cases))
    n_ok, first = 0, None
    for case, exp, out in zip(cases, expected, outcomes):
        if out.status == "unsendable":      # the grader could not receive what the function returned
            diff = {"problem": out.error, "expected": describe(exp), "got": "a value that could not be sent"}
        elif out.status == "untraceable":   # the grader could not watch what the function ran
            diff = {"problem": out.error, "expected": describe(exp), "got": "a case that could not be graded"}
        elif out.status != "ok":
            diff = {"problem": f"your function raised {out.error}", "expected": describe(exp), "got": "an exception"}
        else:
            diff = compare(exp, out.output, atol=spec.atol, rtol=spec.rtol, check_dtype=spec.check_dtype,
                           axes=spec.axes)
            if diff is None:
                changed = _inputs_changed(case, out.args_after)
                if changed:
                    names = [spec.arg_names[i] if i < len(spec.arg_names) else f"argument {i}" for i in changed]
                    diff = {"problem": f"your function modified its input {', '.join(names)} in place",
                            "expected": "the input left unchanged", "got": "a changed input",
                            "hint": "work on a new tensor (e.g. torch.zeros_like(x), x.clone()) instead of "
                                    "assigning into the input"}
        if spec.answer and out.status == "ok" and _answer_kind(exp) != _answer_kind(out.output):
            diff = diff or {"got": repr(out.output)}        # True is not the number 1, nor "True"
        if diff is not None and spec.answer:
            same_kind = out.status == "ok" and _answer_kind(exp) == _answer_kind(out.output)
            diff = {"problem": ("your answer is not what the experiment shows" if same_kind else
                                f"the answer should be {_answer_kind(exp)}"),
                    "expected": f"{_answer_kind(exp)} (your experiment tells which)",
                    "got": repr(out.output) if out.status == "ok" else diff["got"]}
        if diff is None:
            n_ok += 1
        elif first is None:
            hints = [h for h in (diff.pop("hint", ""), case.hint) if h]
            if out.status == "ok":
                diagnosis = _diagnose(spec, case, out.output)
                if diagnosis:
                    hints.insert(0, diagnosis)
            if not hints and spec.hint:
                hints.append(spec.hint)
            first = {"case": case.label, "inputs": describe_case(spec, case), **diff, "hints": hints}
    n = len(cases)
    if first is None:
        labels = "; ".join(c.label for c in cases)
        return _result(spec, PASSED, [f"PASSED  {head}: all {n} test cases match the reference.",
                                      f"  checked: {labels}"],
                       f"all {n} cases passed", passed=True, n_ok=n, n=n)
    lines = [f"FAILED  {head}: {n_ok} of {n} test cases passed.",
             f"  first failing case: {first['case']}" + (f"  [{first['inputs']}]" if first["inputs"] else ""),
             f"    problem:  {first['problem']}",
             f"    expected: {first['expected']}",
             f"    got:      {first['got']}"]
    lines += [f"  hint: {h}" for h in first["hints"]]
    summary = f"{n_ok}/{n} cases passed; first failure '{first['case']}': {first['problem']}"
    if first["hints"]:
        summary += f"; hint: {first['hints'][0]}"
    return _result(spec, FAILED, lines, _one_line(summary, 400), n_ok=n_ok, n=n, first=first)


def error_result(spec: Check, status: str, message: str) -> CheckResult:
    """A verdict for a candidate that could not be run at all (missing, timeout, crash)."""
    head = f"Exercise {spec.exercise} ({spec.name})"
    return _result(spec, status, [f"{status.upper()}  {head}: {message}"], _one_line(f"{status}: {message}", 400))


# --------------------------------------------------------------------------- the local check
def run_check(spec: Check, candidate: Any, *, seed: int = 0) -> CheckResult:
    """Run ``spec`` on ``candidate`` in this process (what a check cell does); never raises for a
    wrong candidate."""
    if spec.answer:
        candidate = answer_candidate(candidate)
    if not callable(candidate):
        return error_result(spec, MISSING, f"expected a function {spec.name}(...), got {describe(candidate)}")
    reference = spec.reference
    if candidate is reference or getattr(candidate, "__wrapped__", None) is reference:
        return _result(spec, FAILED, [f"FAILED  Exercise {spec.exercise} ({spec.name}): that is lecturekit's own "
                                      "reference implementation; the exercise is to write it yourself."],
                       "the candidate is the library's reference itself")
    cases = spec.make_cases(seed)
    expected = expected_outputs(spec, cases)
    outcomes = []
    for case in cases:
        outcomes.append(call_candidate(candidate, case))
        if outcomes[-1].status == NOT_IMPLEMENTED:
            break
    outcomes += [Outcome("skipped")] * (len(cases) - len(outcomes))
    return evaluate(spec, cases, expected, outcomes)


__all__ = ["USES_REFERENCE", "Case", "Check", "CheckResult", "Mistake", "Outcome", "answer_candidate",
           "call_candidate", "compare", "error_result", "evaluate", "expected_outputs", "run_check", "to_plain"]
