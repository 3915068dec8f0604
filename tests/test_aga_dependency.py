"""Issue 14.5: does the dependency matrix of a trained AGA recover the grammar? The analysis pieces
(:func:`lagged_transitions`, :func:`attention_by_action`, :func:`summarize_dependency`) and the
stored study (lecturekit/resources/results/aga_dependency_toykitchens.json).

The stored result is NEGATIVE (the grammar is not recovered); the tests assert it as measured,
so that a change which makes the matrix carry the grammar fails here and the claim is updated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lecturekit.analysis.aga import (
    attention_by_action,
    dependency_study,
    lagged_transitions,
    summarize_dependency,
)
from lecturekit.data.toykitchens import ToyKitchens
from lecturekit.models.aga import AGA

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "lecturekit" / "resources" / "results" / "aga_dependency_toykitchens.json"
SMALL = dict(num_kitchens=5, unseen_kitchens=1, videos_per_kitchen=2, heldout_videos=1, unseen_videos=2,
             recipes_per_video=(2, 3))


def test_lagged_transitions_lag1_is_the_exact_bigram():
    world = ToyKitchens(seed=3, **SMALL)
    est = lagged_transitions(world, lag=1, videos=5000)
    exact = world.transition_matrix("train")
    assert est.shape == exact.shape and np.allclose(est.sum(1)[est.sum(1) > 0], 1.0)
    # Monte Carlo: measured mean |difference| 0.003 (max 0.14 on a rare filler row) at 5,000 videos
    assert np.abs(est - exact).mean() < 0.01
    again = lagged_transitions(world, lag=1, videos=5000)
    assert np.array_equal(est, again)                                          # seeded


def test_lagged_transitions_lag2_finds_the_long_range_dependency():
    world = ToyKitchens(seed=3, long_range=True, **SMALL)
    lag2 = lagged_transitions(world, lag=2, videos=5000)
    bigram = world.transition_matrix("train")
    a = world.actions.index
    # the step after the hub "pour jar" is decided two steps back: take cup -> (pour jar) -> stir cup
    for first, after in (("take cup", "stir cup"), ("take bowl", "stir bowl"), ("take knife", "wash knife")):
        assert lag2[a(first), a(after)] > 0.9                                  # fillers take the rest
    assert 0.15 < bigram[a("pour jar"), a("stir cup")] < 0.85                   # the last action does not decide
    with pytest.raises(ValueError, match="lag"):
        lagged_transitions(world, lag=0)


def test_attention_by_action_groups_the_last_step_weights():
    torch.manual_seed(0)
    model = AGA(feat_in=6, num_classes=5, hidden=16, heads=2, order=4).eval()
    x = torch.randn(3, 5, 6)
    nxt = np.array([0, 1, 0])
    slots = np.array([[2, 2, -1, 3, 0], [2, 4, 4, 4, 0], [3, -1, -1, -1, 0]])
    out = attention_by_action(model, x, nxt, slots, 5)
    w = model.forward_all(x).attention[:, :, -1, :-1].mean(1).double().detach().numpy()       # (3, 4)
    assert out["observed"][0, 2] == pytest.approx(w[0, :2].mean())
    assert out["observed"][0, 3] == pytest.approx((w[0, 3] + w[2, 0]) / 2)
    assert out["observed"][1, 4] == pytest.approx(w[1, 1:].mean())
    prof = w.mean(0)
    assert out["position_only"][0, 3] == pytest.approx((prof[3] + prof[0]) / 2)
    assert np.isnan(out["observed"][2, 2]) and np.isnan(out["observed"][0, 0])      # never seen (col 4 is cut)
    assert 0.0 < out["entropy"] <= 1.0
    with pytest.raises(ValueError, match="expected next_actions"):
        attention_by_action(model, x, nxt[:2], slots, 5)
    with pytest.raises(ValueError, match="action-guided"):
        attention_by_action(AGA(feat_in=6, num_classes=5, hidden=16, heads=2, attention="pixel"), x, nxt, slots, 5)


def test_summarize_dependency_recomputes_min_median_max():
    per = [{"seed": 0, "rho_bigram": 0.1, "attention": {"entropy": 0.9}},
           {"seed": 1, "rho_bigram": -0.2, "attention": {"entropy": 0.7}},
           {"seed": 2, "rho_bigram": 0.0, "attention": {"entropy": 0.8}}]
    s = summarize_dependency({"per_seed": per})
    assert s["rho_bigram"] == {"min": -0.2, "median": 0.0, "max": 0.1}
    assert s["attention.entropy"]["median"] == pytest.approx(0.8) and "seed" not in s


# ---------------------------------------------------------------------------------------------
# the stored study (scripts/aga_dependency.py)

def _stored() -> dict:
    from lecturekit import resources

    return resources.load_json("results/aga_dependency_toykitchens.json")


def _values(run: dict, *path: str) -> np.ndarray:
    out = []
    for e in run["per_seed"]:
        v = e
        for p in path:
            v = v[p]
        out.append(v)
    return np.array(out, dtype=float)


def test_stored_study_is_complete_and_recomputable():
    runs = _stored()["runs"]
    assert {"default/threads=1", "default/threads=2", "long_range/threads=1"} <= set(runs)
    for key, run in runs.items():
        s = run["settings"]
        assert [e["seed"] for e in run["per_seed"]] == [0, 1, 2, 3, 4] == s["seeds"], key
        assert s["threads"] == int(key.split("=")[1]) and s["order"] == s["frames"]
        again = summarize_dependency(run)
        assert set(run["summary"]) == set(again), key
        for name, stats in again.items():
            assert run["summary"][name] == pytest.approx(stats), (key, name)
        for e in run["per_seed"]:
            assert -1 <= e["rho_bigram"] <= 1 and 0 < e["attention"]["entropy"] <= 1
            cf = e.get("counterfactual")
            if cf is not None:
                assert cf["searched"] == min(40, cf["non_degenerate"])
                assert cf["fraction"] == cf["reached"] / cf["searched"]
    assert runs["long_range/threads=1"]["settings"]["world_kwargs"] == {"long_range": True, "extra_train_videos": 8}
    assert runs["default/threads=1"]["settings"]["world_kwargs"] == {}


def test_stored_dependency_matrix_does_not_recover_the_grammar():
    """Measured NEGATIVE on every seed and both thread counts: the rank correlation of the
    matrix with the exact transitions stays near 0 (default world: -0.065 .. 0.021 on one
    thread), also in the long-range world and against its lag-2 dependency. The attention on
    real windows is near-uniform (normalised entropy >= 0.98), and what correlates with the
    grammar there is explained by slot position alone (``rho_beyond_position`` <= 0)."""
    runs = _stored()["runs"]
    for key, run in runs.items():
        rho = _values(run, "rho_bigram")
        assert np.abs(rho).max() < 0.15, (key, rho)
        assert np.abs(_values(run, "rho_lag2")).max() < 0.15, key
        assert _values(run, "attention", "entropy").min() > 0.9, key
        assert _values(run, "attention", "rho_beyond_position").max() < 0.1, key


def test_stored_counterfactual_success_is_not_a_majority():
    """The backward analysis on the default setting, 40 non-degenerate test windows per seed,
    target = the true next action, the library's search (500 Adam steps, lr 0.1): measured
    0.40 .. 0.55 of the windows reached (median 0.46 over 5 seeds x 1 and 2 threads): below the
    issue's majority. (Seed 0 with 2,000 steps or lr 1.0 reached the same 18 of 40: the limit is
    what the frozen model can be steered to, not the search budget.)"""
    runs = _stored()["runs"]
    fr = np.concatenate([_values(runs[k], "counterfactual", "fraction") for k in ("default/threads=1",
                                                                               "default/threads=2")])
    assert len(fr) == 10 and 0.25 < np.median(fr) < 0.5 and fr.max() < 0.7, fr


def test_dependency_study_recomputes_seed_0():
    """One seed of the stored default run again (one thread, ~15 s): same numbers within the
    spread measured between 1 and 2 threads."""
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = dependency_study((0,), counterfactual_windows=0, lag_videos=2000)
    finally:
        torch.set_num_threads(torch_threads)
    ref = _stored()["runs"]["default/threads=1"]["per_seed"][0]
    got = res["per_seed"][0]
    assert got["rho_bigram"] == pytest.approx(ref["rho_bigram"], abs=0.03)
    assert got["test_mt5r"] == pytest.approx(ref["test_mt5r"], abs=0.03)
    assert got["attention"]["entropy"] == pytest.approx(ref["attention"]["entropy"], abs=0.02)
