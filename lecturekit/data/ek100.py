"""The EPIC-KITCHENS-100 rules that data readers and metrics share: action ids and tail classes.

Dataset and protocol: D. Damen et al., "Rescaling Egocentric Vision: Collection, Pipeline and
Challenges for EPIC-KITCHENS-100", IJCV 2022, https://arxiv.org/abs/2006.13256 (it defines
the head/tail split of the anticipation challenge). The official scorer (github.com/epic-kitchens/C3-Action-Anticipation,
``evaluate_anticipation_json_ek100.py``) forms action ids as ``verb * 1000 + noun``.

>>> action_class(3, 17)
3017
>>> tail_classes({0: 60, 1: 10, 2: 10, 3: 10, 4: 10})   # head {0, 1, 2} holds 80 %
[3, 4]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from fractions import Fraction

import numpy as np

__all__ = ["ACTION_VERB_MULTIPLIER", "HEAD_COVERAGE", "NUM_NOUNS", "NUM_VERBS", "action_class", "class_counts",
           "class_ids", "tail_classes"]

#: The official scorer's action id is ``verb * ACTION_VERB_MULTIPLIER + noun``.
ACTION_VERB_MULTIPLIER = 1000
#: The head holds at least this share of the training instances; every other seen class is tail.
HEAD_COVERAGE = 0.8
#: Verb and noun classes of EK-100.
NUM_VERBS = 97
NUM_NOUNS = 300


def action_class(verb, noun):
    """The official action id ``verb * 1000 + noun``: an int for two ints, an int64 array for arrays."""
    if np.ndim(verb) == 0 and np.ndim(noun) == 0:
        return int(verb) * ACTION_VERB_MULTIPLIER + int(noun)
    return np.asarray(verb, dtype=np.int64) * ACTION_VERB_MULTIPLIER + np.asarray(noun, dtype=np.int64)


def class_ids(labels: Iterable[int], name: str = "labels") -> np.ndarray:
    """A 1-D sequence of integer class ids as an int64 array (N,); whole floats (2.0) are accepted.

    Raises ``ValueError`` (prefixed by ``name``) for another shape or a non-integer value. The one
    label check of the library: :func:`class_counts` and the metrics of
    ``lecturekit.metrics.classification`` use it.
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array (N,) of class ids, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"{name}: expected integer class ids, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def class_counts(labels: Iterable[int]) -> dict[int, int]:
    """``{class id: number of occurrences}`` of a sequence (or 1-D array) of integer class ids."""
    return dict(Counter(class_ids(labels).tolist()))


def tail_classes(counts: Mapping[int, int], coverage: float = HEAD_COVERAGE) -> list[int]:
    """EK-100's tail classes of a ``{class id: training instances}`` mapping, sorted.

    The *head* is the shortest run of classes, sorted by count (most frequent first, equal counts
    by increasing id), whose instances reach ``coverage`` (80 %) of the total; the tail is every
    other class with at least one training instance (a class never seen in training is in
    neither list). On the EK-100 training counts this gives 11 head verbs (81.1 % of the
    instances) and 86 tail verbs, 61 head nouns and 228 tail nouns, the official lists. The
    comparison is exact (rational arithmetic), so a head reaching exactly 80 % stops there.
    Use :func:`class_counts` to count a label list.
    """
    if not 0 <= coverage <= 1:
        raise ValueError(f"coverage must lie in [0, 1], got {coverage}")
    if any(int(n) < 0 for n in counts.values()):
        raise ValueError("class counts must be non-negative")
    seen = sorted(((int(c), int(n)) for c, n in counts.items() if int(n) > 0), key=lambda cn: (-cn[1], cn[0]))
    need = Fraction(coverage).limit_denominator(10**6) * sum(n for _, n in seen)  # instances the head must hold
    acc, n_head = 0, 0
    for _, n in seen:
        if acc >= need:
            break
        acc += n
        n_head += 1
    return sorted(c for c, _ in seen[n_head:])
