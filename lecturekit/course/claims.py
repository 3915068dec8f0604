"""A lesson's claim: a measured number next to the threshold it must pass, asserted.

Every training notebook states what it shows as claims, e.g.::

    claim("TSM take/put", tsm_pairs["take/put"], ">", 0.85)

prints ``claim  TSM take/put: 0.990 > 0.85  holds`` and raises an ``AssertionError``
(:class:`ClaimFailed`) that names the claim, the measured value and the threshold when it does not
hold; in Jupyter the student sees that message and their own line, no frame of this file. The thresholds are not
guesses from one run: ``python -m lecturekit.course robustness`` re-executes a notebook for
several training seeds (the ``SEED`` parameter cell) and intra-op thread counts, collects every
claim's value, and the table it writes (``data/results/claims_robustness.json``) is what a unit
test compares each threshold with (see :func:`required_margin`).

Two environment variables serve the robustness command (students never set them):

* ``LECTUREKIT_CLAIMS_LOG``: a file; every claim appends one JSON line to it.
* ``LECTUREKIT_CLAIMS_RECORD_ONLY=1``: record and print, never raise, so one run measures every
  claim of a notebook even when an early one would fail.
"""

from __future__ import annotations

import json
import math
import os
import operator

from .failures import ClaimFailed, show_failures_without_library_frames

LOG_ENV = "LECTUREKIT_CLAIMS_LOG"
RECORD_ONLY_ENV = "LECTUREKIT_CLAIMS_RECORD_ONLY"

OPERATORS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def required_margin(threshold: float) -> float:
    """The distance a threshold must keep from the worst measured value (the stated margin).

    0.02 in absolute terms or 5 % of the threshold, whichever is larger: a threshold of 0.8 on an
    accuracy must lie at least 0.04 below the lowest of the measured runs, a ratio threshold of
    10 at least 0.5 below.
    """
    return max(0.02, 0.05 * abs(float(threshold)))


def claim(name: str, value, op: str, threshold: float) -> float:
    """Assert ``value <op> threshold`` for the lesson's claim ``name``; print and return the value.

    ``value`` may be a Python number, a NumPy scalar or a one-element tensor. ``op`` is one of
    ``>``, ``>=``, ``<``, ``<=``. A value that is not finite never holds.
    """
    if op not in OPERATORS:
        raise ValueError(f"claim {name!r}: op must be one of {sorted(OPERATORS)}, got {op!r}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"claim: name must be a non-empty string, got {name!r}")
    if hasattr(value, "item"):
        value = value.item()
    value = float(value)
    threshold = float(threshold)
    holds = math.isfinite(value) and OPERATORS[op](value, threshold)
    print(f"claim  {name}: {value:.3f} {op} {threshold:g}  {'holds' if holds else 'DOES NOT HOLD'}")
    log = os.environ.get(LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"name": name, "value": value, "op": op, "threshold": threshold,
                                 "holds": holds}) + "\n")
    if not holds and os.environ.get(RECORD_ONLY_ENV, "") != "1":
        __tracebackhide__ = True  # noqa: F841 - the student sees the message and their own line
        show_failures_without_library_frames()
        raise ClaimFailed(f"claim {name!r} does not hold: measured {value:.4f}, "
                          f"expected {op} {threshold:g}")
    return value
