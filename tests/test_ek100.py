"""The EK-100 rules shared by the data readers and the metrics (lecturekit.data.ek100)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import lecturekit
from lecturekit.data import ToyKitchens
from lecturekit.data.ek100 import ACTION_VERB_MULTIPLIER, HEAD_COVERAGE, action_class, class_counts, tail_classes


def test_action_class_for_ints_and_arrays():
    assert ACTION_VERB_MULTIPLIER == 1000
    assert action_class(96, 299) == 96_299 and type(action_class(np.int64(2), 3)) is int
    got = action_class(np.array([0, 1, 96]), np.array([5, 0, 299]))
    assert got.dtype == np.int64 and got.tolist() == [5, 1000, 96_299]


def test_class_counts_checks_its_input():
    assert class_counts([3, 1, 3, 3]) == {3: 3, 1: 1}
    assert class_counts(np.array([2.0, 2.0])) == {2: 2}
    assert class_counts([]) == {} and tail_classes(class_counts([])) == []
    with pytest.raises(ValueError, match="integer class ids"):
        class_counts([0.5, 1.0])
    with pytest.raises(ValueError, match="1-D"):
        class_counts(np.zeros((2, 2), dtype=int))


def test_tail_parameter_is_the_head_coverage():
    counts = {0: 50, 1: 30, 2: 10, 3: 6, 4: 4}
    assert HEAD_COVERAGE == 0.8 and tail_classes(counts) == tail_classes(counts, HEAD_COVERAGE) == [2, 3, 4]
    assert tail_classes(counts, coverage=0.9) == [3, 4]      # a larger head leaves a smaller tail
    assert tail_classes(counts, coverage=1.0) == []
    with pytest.raises(ValueError, match=r"coverage must lie in \[0, 1\]"):
        tail_classes(counts, coverage=80)
    with pytest.raises(ValueError, match="non-negative"):
        tail_classes({0: -1})


def test_every_tail_user_calls_the_one_rule():
    """ToyKitchens, the EPIC reader/writer and the anticipation analysis use data.ek100; no module
    of the package defines its own tail_classes or action-id multiplier."""
    root = Path(lecturekit.__file__).parent
    defined = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name in ("tail_classes", "action_class", "topk_accuracy"):
                defined.append((path.relative_to(root).as_posix(), node.name))
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "ACTION_VERB_MULTIPLIER" for t in node.targets):
                defined.append((path.relative_to(root).as_posix(), "ACTION_VERB_MULTIPLIER"))
    assert sorted(defined) == [("data/ek100.py", "ACTION_VERB_MULTIPLIER"), ("data/ek100.py", "action_class"),
                               ("data/ek100.py", "tail_classes"), ("data/toykitchens/core.py", "tail_classes"),
                               ("metrics/classification.py", "topk_accuracy")]


def test_toykitchens_tail_is_the_rule_on_its_training_labels():
    from lecturekit.analysis.anticipation import epic_tails

    world = ToyKitchens(seed=0, num_kitchens=4, unseen_kitchens=1, videos_per_kitchen=2)
    seg = world.segments("train")
    for kind in ("verb", "noun", "action"):
        assert world.tail_classes(kind) == tail_classes(class_counts(seg[kind]))
    tails = epic_tails({k: seg[k] for k in ("verb", "noun", "action")})
    assert tails.actions.dtype == np.int64 and tails.actions.tolist() == world.tail_classes("action")
