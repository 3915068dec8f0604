"""Naive references for the EK-100 data conventions, used only by tests.

* ``tail_by_enumeration``: the tail as the complement of the smallest "upward closed" head that
  holds 80 % of the instances, found by enumerating every subset of classes.
* ``anticipation_frame``: the anticipation frame rule in exact rational arithmetic.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction


def tail_by_enumeration(counts: dict[int, int], fraction: str = "0.2") -> list[int]:
    """Enumerate all subsets H of the classes seen in training; H is a valid head when it holds
    at least (1 - fraction) of the instances and, with a class, also every class ranked above it
    (more instances, or as many and a smaller id). The head is the smallest valid H."""
    seen = [c for c, n in counts.items() if n > 0]
    total = sum(counts[c] for c in seen)
    need = (1 - Fraction(fraction)) * total

    def above(a, b):  # a ranks above b
        return counts[a] > counts[b] or (counts[a] == counts[b] and a < b)

    best = None
    for r in range(len(seen) + 1):
        for head in itertools.combinations(seen, r):
            hs = set(head)
            if sum(counts[c] for c in hs) < need:
                continue
            if any(above(o, c) and o not in hs for c in hs for o in seen):
                continue
            best = hs
            break
        if best is not None:
            break
    return sorted(c for c in seen if c not in best)


def anticipation_frame(start_frame: int, fps: str, tau_a: str, tau_o: str, frames: int, j: int) -> int:
    """Index of sample j (0 = earliest) of the window before an action at ``start_frame``:
    the largest integer strictly below ``start - (tau_a + (frames-1-j) * tau_o / frames) * fps``,
    computed with fractions (the arguments are decimal strings)."""
    pos = Fraction(start_frame) - (Fraction(tau_a) + (frames - 1 - j) * Fraction(tau_o) / frames) * Fraction(fps)
    return math.ceil(pos) - 1
