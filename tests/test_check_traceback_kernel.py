"""A failing check or claim, run in a real Jupyter kernel (ipykernel, as JupyterLab and Colab run
it), shows the verdict, the error message and the student's own line, and no frame of the library:
the check functions and ``claim`` set ``__tracebackhide__`` (honoured by IPython), and the frame
that raises is dropped by their exception handler."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import lecturekit.course.checks as checks_pkg

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LIBRARY = ("checking.py", "claims.py", "lecturekit/course", "lecturekit\\course")

CELLS = [
    ("from lecturekit.course import check, check_temporal_shift\n"
     "def temporal_shift(x, fold_div=8):\n    return x.clone()", None),
    ('check("04.1", temporal_shift, assert_pass=True)', "CheckFailed: Exercise 04.1"),
    ("check_temporal_shift(temporal_shift, assert_pass=True)", "CheckFailed: Exercise 04.1"),
    ('check("04.3", "no shift at all", assert_pass=True)', "CheckFailed: Exercise 04.3"),
    ("def gated_shift(x, gate):\n    raise NotImplementedError('Exercise 04.2: gate, then shift')", None),
    ('check("04.2", gated_shift, assert_pass=True)', "CheckFailed: Exercise 04.2"),
]


def _run(client, code: str) -> tuple[str, str]:
    """(everything printed, the traceback shown) for one cell."""
    msg_id = client.execute(code)
    printed, traceback = [], []
    while True:
        msg = client.get_iopub_msg(timeout=120)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            printed.append(content["text"])
        elif kind == "error":
            traceback.append("\n".join(content["traceback"]))
        elif kind == "status" and content["execution_state"] == "idle":
            break
    return ANSI.sub("", "".join(printed)), ANSI.sub("", "\n".join(traceback))


@pytest.fixture(scope="module")
def kernel():
    manager = pytest.importorskip("jupyter_client.manager")
    km, client = manager.start_new_kernel(kernel_name="python3")
    try:
        yield client
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)


def test_failing_checks_in_a_kernel_show_no_library_frames(kernel):
    for code, error in CELLS:
        printed, traceback = _run(kernel, code)
        if error is None:
            assert not traceback, traceback
            continue
        assert error in traceback, f"{code!r}:\n{traceback}"
        assert code.split("\n")[-1] in traceback, f"the student's line is not shown:\n{traceback}"
        for library in LIBRARY:
            assert library not in traceback, f"{code!r} shows a library frame ({library}):\n{traceback}"
        if "check" in code:
            assert re.search(r"(FAILED|NOT DONE)  Exercise 04\.\d", printed), printed
    printed, _ = _run(kernel, 'check("04.2", gated_shift)')
    assert "NOT DONE" in printed and "gate, then shift" in printed       # the stub's hint


def test_a_failing_claim_in_a_kernel_shows_its_message_and_the_students_line_only(kernel):
    """As a lesson shows it: the claim's line, its message, no frame of claims.py; still an
    AssertionError (nbval and the robustness command rely on that), also after a failing check
    (both share IPython's one custom-exception slot) and inside the student's own function."""
    printed, traceback = _run(kernel, "from lecturekit.course import claim\nacc = 0.5")
    assert not traceback, traceback
    failing = 'claim("val accuracy", acc, ">", 0.9)'
    for round_ in range(2):
        printed, traceback = _run(kernel, failing)
        assert "claim  val accuracy: 0.500 > 0.9  DOES NOT HOLD" in printed, printed
        assert "claim 'val accuracy' does not hold: measured 0.5000, expected > 0.9" in traceback, traceback
        assert failing in traceback, f"the student's line is not shown:\n{traceback}"
        for library in LIBRARY:
            assert library not in traceback, f"a failing claim shows a library frame ({library}):\n{traceback}"
        if round_ == 0:       # a failing check in between: both keep hiding the library
            _, check_tb = _run(kernel, "from lecturekit.course import check\n"
                                       "check('04.1', lambda x, fold_div=8: x.clone(), assert_pass=True)")
            assert "CheckFailed: Exercise 04.1" in check_tb and not any(lib in check_tb for lib in LIBRARY), check_tb
    printed, traceback = _run(kernel, "def report(a):\n    return claim('val accuracy', a, '>', 0.9)\n\nreport(0.25)")
    assert "report(0.25)" in traceback and "return claim('val accuracy', a, '>', 0.9)" in traceback, traceback
    assert not any(lib in traceback for lib in LIBRARY), traceback
    printed, traceback = _run(kernel, f"try:\n    {failing}\nexcept AssertionError as err:\n"
                                      f"    print('caught', isinstance(err, AssertionError))")
    assert not traceback and "caught True" in printed, (printed, traceback)
    printed, traceback = _run(kernel, 'print(claim("val accuracy", acc, "<", 0.9))')
    assert not traceback and "holds" in printed and "0.5" in printed, (printed, traceback)


def _check_functions():
    modules = [checks_pkg] + [importlib.import_module(f"{checks_pkg.__name__}.{info.name}")
                              for info in pkgutil.iter_modules(checks_pkg.__path__)]
    for module in modules:
        for name, fn in vars(module).items():
            if ((name == "check" or name.startswith("check_")) and inspect.isfunction(fn)
                    and fn.__module__ == module.__name__):
                yield f"{module.__name__}.{name}", fn


@pytest.mark.parametrize("name,fn", list(_check_functions()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_check_function_hides_its_frame(name, fn):
    """A new check_* helper without ``__tracebackhide__`` would show its frame to the student."""
    assert "__tracebackhide__" in fn.__code__.co_varnames, f"{name} does not set __tracebackhide__"


def test_check_itself_hides_its_frame():
    assert "__tracebackhide__" in checks_pkg.check.__code__.co_varnames
