"""The table of the course's exercise checks, and ``check(exercise, fn)`` that reads it.

One module per notebook (``nb01`` ... ``nb12``) defines its checks as plain :class:`Check` records:
the cases (random inputs from a seeded generator plus the edge cases students get wrong, each
with a hint), the known mistakes used to diagnose a wrong answer, and the reference: a function
of the library that computes what is right. :data:`CHECKS` below lists every check by exercise
id, as the model table lists every model: a check that is not in this table does not exist.

Exercise ids follow the notebook numbers: 01.1 = the first exercise of notebook 01.
"""

from __future__ import annotations

from typing import Any

from ..checking import Check, CheckResult, run_check
from ..failures import CheckFailed, show_failures_without_library_frames
from . import nb01, nb02, nb03, nb04, nb05, nb06, nb07, nb08, nb09, nb10, nb11, nb12

CHECKS: dict[str, Check] = {
    "01.1": nb01.TOPK_ACCURACY,
    "01.2": nb01.AVERAGE_FRAME_PROBS,
    "01.3": nb01.ANSWER_01_3,
    "02.1": nb02.STACK_FRAMES,
    "02.2": nb02.TEMPORAL_POOL,
    "02.3": nb02.ANSWER_02_3,
    "03.1": nb03.CONV2PLUS1D,
    "03.2": nb03.CONV3D_COST,
    "03.3": nb03.MID_CHANNELS,
    "03.4": nb03.ANSWER_03_4,
    "04.1": nb04.TEMPORAL_SHIFT,
    "04.2": nb04.GATED_SHIFT,
    "04.3": nb04.ANSWER_04_3,
    "05.1": nb05.DIFFERENCE_STACK,
    "05.2": nb05.SEGMENT_INDICES,
    "05.3": nb05.SEGMENT_CONSENSUS,
    "05.4": nb05.ANSWER_05_4,
    "06.1": nb06.GREEDY_MATCH,
    "06.2": nb06.TRAJECTORIES,
    "06.3": nb06.ANSWER_06_3,
    "07.1": nb07.CONVLSTM_STEP,
    "07.2": nb07.GRADIENT_NORMS,
    "08.1": nb08.RECALL_UPDATE,
    "08.2": nb08.SSIM_FRAME,
    "09.1": nb09.ANTICIPATION_LOSS,
    "09.2": nb09.CAM_ACTION_FEATURES,
    "10.1": nb10.MEAN_TOPK_RECALL,
    "10.2": nb10.ROLLING_UNROLLING,
    "11.1": nb11.STATT,
    "11.2": nb11.PUSH_QUEUE,
    "12.1": nb12.ACTION_GUIDED_ATTENTION,
    "12.2": nb12.TOP_NEXT_ACTIONS,
}


def get_check(exercise: str) -> Check:
    """The check of an exercise, by id ("04.1") or by the name of the function students write
    ("temporal_shift"). An unknown id raises a ``KeyError`` that lists every known one."""
    if exercise in CHECKS:
        return CHECKS[exercise]
    by_name = [c for c in CHECKS.values() if c.name == exercise]
    if len(by_name) == 1:
        return by_name[0]
    known = ", ".join(f"{ex} ({c.name})" for ex, c in sorted(CHECKS.items()))
    raise KeyError(f"no check for exercise {exercise!r}; known: {known}")


def check(exercise: str, candidate: Any, *, assert_pass: bool = False, verbose: bool = True,
          seed: int = 0) -> CheckResult:
    """Check a student's function against the reference of ``exercise`` and print the verdict.

    Args:
        exercise: the exercise id ("04.1") or the function's name ("temporal_shift").
        candidate: the student's function (for an answer check: the student's answer).
        assert_pass: raise ``AssertionError`` (:class:`CheckFailed`) when the check does not pass
            (solution notebooks use this so CI fails loudly). Without it a wrong answer raises nothing.
        verbose: print the verdict.
        seed: seed of the random test inputs.

    Returns:
        a :class:`CheckResult` (``result.passed``, ``result.status``, ``result.first_failure``).
    """
    __tracebackhide__ = True  # noqa: F841 - IPython hides this frame: the student sees the message
    result = run_check(get_check(exercise), candidate, seed=seed)
    if verbose:
        print(result.message)
    if assert_pass and not result.passed:
        show_failures_without_library_frames()
        raise CheckFailed(f"Exercise {result.exercise} ({result.name}): {result.summary}")
    return result


def check_topk_accuracy(fn, **kwargs) -> CheckResult:
    """``check("01.1", fn, **kwargs)``: ``topk_accuracy(scores (N, K), labels (N,), k) -> float``.

    Ties: among equal scores the larger class id ranks first (as ``lecturekit.metrics.topk_ranks``
    and the official EPIC-KITCHENS scorer: an ascending sort, reversed); two cases test it."""
    __tracebackhide__ = True  # noqa: F841 - IPython hides this frame from the student
    return check("01.1", fn, **kwargs)


def check_temporal_shift(fn, **kwargs) -> CheckResult:
    """``check("04.1", fn, **kwargs)``: ``temporal_shift(x (B, C, T, H, W), fold_div=8)``."""
    __tracebackhide__ = True  # noqa: F841 - IPython hides this frame from the student
    return check("04.1", fn, **kwargs)


__all__ = ["CHECKS", "check", "check_temporal_shift", "check_topk_accuracy", "get_check"]
