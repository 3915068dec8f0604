"""The two failures a lesson raises on purpose, and how Jupyter shows them.

:class:`CheckFailed` (a check run with ``assert_pass=True`` did not pass) and :class:`ClaimFailed`
(a measured number missed its threshold) are ``AssertionError`` subclasses, so nbval, CI and the
robustness command see a failing cell as any failing assertion. In IPython / Jupyter the student
should see the message and their own line, not the library's frames: the library's functions set
``__tracebackhide__`` (IPython skips those frames), and :func:`show_failures_without_library_frames`
installs a handler that also drops the frame that raised, which IPython always shows.
"""

from __future__ import annotations


class CheckFailed(AssertionError):
    """Raised by ``check(..., assert_pass=True)`` when the check does not pass."""


class ClaimFailed(AssertionError):
    """Raised by ``claim(...)`` when the claim does not hold."""


FAILURES = (CheckFailed, ClaimFailed)


def _without_hidden_frames(tb):
    """The traceback ``tb`` without the frames that set ``__tracebackhide__`` (kept whole if that
    would leave nothing)."""
    kept = []
    while tb is not None:
        if not tb.tb_frame.f_locals.get("__tracebackhide__", False):
            kept.append(tb)
        tb = tb.tb_next
    first = None
    for entry in reversed(kept):
        entry.tb_next = first
        first = entry
    return first


def show_failures_without_library_frames() -> None:
    """In IPython / Jupyter, show a :class:`CheckFailed` or :class:`ClaimFailed` as its message plus
    the student's own line (the cell still fails). IPython has a single custom-exception slot: the
    handler is installed only when the slot is free (or already ours), never over someone else's."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return
    if tuple(getattr(shell, "custom_exceptions", ())) not in ((), FAILURES):
        return

    def handler(self, etype, value, tb, tb_offset=None):
        self.showtraceback((etype, value, _without_hidden_frames(tb)), tb_offset=tb_offset)

    shell.set_custom_exc(FAILURES, handler)


__all__ = ["CheckFailed", "ClaimFailed", "show_failures_without_library_frames"]
