"""Course tooling: notebook execution, exercise generation, checks and grading.

The top floor: it may import anything of lecturekit; nothing imports it.

Students use the checks in their notebooks::

    from lecturekit.course import check
    check("04.1", temporal_shift)                  # prints a verdict, returns a CheckResult

Instructors use the command line (``python -m lecturekit.course --help``):
``execute`` (store notebook outputs), ``build-exercises`` (solutions/ -> exercises/, ``--check``
for drift and leaks) and ``grade`` (a folder of submissions -> CSV) and ``robustness`` (every claim of a notebook
measured over training seeds and thread counts).
"""

from .checking import Case, Check, CheckResult, Mistake
from .checks import CHECKS, check, check_temporal_shift, check_topk_accuracy, get_check
from .claims import claim, required_margin
from .failures import CheckFailed, ClaimFailed


def build_exercises(*args, **kwargs):
    """Generate exercises/ from solutions/ (see :mod:`lecturekit.course.exercises`)."""
    from .exercises import build_exercises as _build

    return _build(*args, **kwargs)


def grade(*args, **kwargs):
    """Grade a folder of submitted notebooks (see :mod:`lecturekit.course.grading`)."""
    from .grading import grade as _grade

    return _grade(*args, **kwargs)


__all__ = ["CHECKS", "Case", "Check", "CheckFailed", "CheckResult", "ClaimFailed", "Mistake", "build_exercises",
           "check", "check_temporal_shift", "check_topk_accuracy", "claim", "get_check", "grade",
           "required_margin"]
