"""ToyKitchens' opt-in options for issue 14: ``extra_train_videos`` (a larger training set, val and
test untouched) and ``long_range`` (recipes whose next step is decided by the action BEFORE the
last one). The default world must stay byte-identical (same cache key, same videos)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from lecturekit.data.toykitchens import ToyKitchens
from lecturekit.data.toykitchens import world as tk_world

SMALL = dict(num_kitchens=5, unseen_kitchens=1, videos_per_kitchen=2, heldout_videos=1, unseen_videos=2,
             recipes_per_video=(2, 3))
# the default world before these options existed (same constants as tests/test_aga_generalisation.py)
DEFAULT_KEY = "eac36609da10d16f"
DEFAULT_VIDEO0_SHA256 = "9c55810228d6cf5bd2f2e1e7133870e33261c52eb5913a03281ecc6d51c04364"


def test_default_world_is_unchanged_by_the_options():
    world = ToyKitchens(seed=0, extra_train_videos=0, long_range=False)
    assert world.cache_key() == DEFAULT_KEY
    assert "extra_train_videos" not in world.params and "long_range" not in world.params
    assert hashlib.sha256(world.long_video(0).tobytes()).hexdigest() == DEFAULT_VIDEO0_SHA256
    assert [r.name for r in world.recipes] == [name for name, _ in tk_world.RECIPES]


def test_extra_train_videos_only_grow_the_training_split():
    plain = ToyKitchens(seed=3, **SMALL)
    more = ToyKitchens(seed=3, extra_train_videos=2, **SMALL)
    assert more.cache_key() != plain.cache_key()
    n = len(plain.video_ids)
    # every video of the plain world keeps its index, id, split and bytes; the extra ones come last
    assert more.video_ids[:n] == plain.video_ids and more.video_split[:n] == plain.video_split
    seen = [k.id for k in plain.kitchens if k.split == "seen"]
    assert len(more.video_ids) == n + 2 * len(seen)
    assert set(more.video_split[n:]) == {"train"} and sorted(set(more.video_kitchen[n:])) == seen
    assert len(set(more.video_ids)) == len(more.video_ids)                  # no id reused
    for v in (0, n - 1):
        assert np.array_equal(plain.long_video(v), more.long_video(v))
    for split in ("val", "test"):
        a, b = plain.anticipation(split), more.anticipation(split)
        assert np.array_equal(a.frame_index, b.frame_index) and np.array_equal(a.video_index, b.video_index)
        assert all(np.array_equal(a.labels[k], b.labels[k]) for k in a.labels)
    a, b = plain.anticipation("train"), more.anticipation("train")
    assert len(b) > len(a) and np.array_equal(a.labels["action"], b.labels["action"][: len(a)])
    # same kitchen proportions in train: the exact bigram of the training split does not move
    assert np.allclose(plain.transition_matrix("train"), more.transition_matrix("train"))
    # the extra videos are new draws, not copies
    assert not np.array_equal(more.scripts[n].action[:5], more.scripts[0].action[:5]) or \
        not np.array_equal(more.scripts[n].start, more.scripts[0].start)
    with pytest.raises(ValueError, match="extra_train_videos"):
        ToyKitchens(seed=3, extra_train_videos=-1, **SMALL)


def test_long_range_recipes_are_valid_and_balanced():
    names = set(ToyKitchens(seed=0, **SMALL).actions)
    pairs = [tuple(p) for p in tk_world.REVERSAL_PAIRS]
    for name, steps in tk_world.LONG_RANGE_RECIPES:
        assert all(s.lstrip("?") in names for s in steps), name
        for a, b in pairs:                   # the balance rule of RECIPES: each take X has its put X, ...
            for noun in {s.split()[1] for s in steps}:
                assert sum(s == f"{a} {noun}" for s in steps) == sum(s == f"{b} {noun}" for s in steps), (name, noun)


def test_long_range_next_step_is_decided_before_the_last_action():
    world = ToyKitchens(seed=0, long_range=True, **SMALL)
    assert world.params["long_range"] is True and world.cache_key() != ToyKitchens(seed=0, **SMALL).cache_key()
    assert [r.name for r in world.recipes] == [name for name, _ in tk_world.LONG_RANGE_RECIPES]
    act = world.actions.index
    p = world.transition_matrix("train")                                       # row b: P(next | previous b)
    # after each hub the exact bigram is split between the two recipes that share it ...
    hubs = {"pour jar": ("stir cup", "stir bowl"), "pour bottle": ("stir pan", "stir jar"),
            "cut tomato": ("wash knife", "wash plate"), "shake jar": ("turn-cw spoon", "turn-cw lid")}
    for hub, (x, y) in hubs.items():
        assert p[act(hub), act(x)] > 0.15 and p[act(hub), act(y)] > 0.15, hub
        assert p[act(hub), act(x)] + p[act(hub), act(y)] > 0.9, hub
    # ... while in the sampled videos the action two steps back decides it every time
    first = {"stir cup": "take cup", "stir bowl": "take bowl", "stir pan": "take pan", "stir jar": "take jar",
             "wash knife": "take knife", "wash plate": "take plate", "turn-cw spoon": "take spoon",
             "turn-cw lid": "take lid"}
    seen = 0
    for seq in world.action_sequences("train") + world.action_sequences("test"):
        for i in range(2, len(seq)):
            nxt = world.actions[seq[i]]
            if world.actions[seq[i - 1]] in hubs and nxt in first:
                assert world.actions[seq[i - 2]] == first[nxt]
                seen += 1
    assert seen >= 10


def test_storyboard_titles_name_the_worlds_own_recipes():
    from lecturekit.data.toykitchens.views import _title

    world = ToyKitchens(seed=0, long_range=True, **SMALL)
    labels = {"verb": 0, "noun": 0, "kitchen": 1, "recipe": 0}
    assert "recipe cup-jar (hidden)" in _title(labels, world.recipe_names)
    assert "recipe tea (hidden)" in _title(labels)                            # default: the default set
