"""The lessons ToyKitchens must make measurable, verified on the rendered default world.

Probes are deliberately simple (logistic regression on a handful of statistics, 5-fold
cross-validation over all clips of the default world, balanced accuracy so chance is 0.5).
The folds are groups of *kitchens*: a probe is always scored on kitchens it did not see. With
folds of single clips, appearance features identify the kitchen, and since every kitchen holds
(nearly) as many clips of one verb of a pair as of the other, the verbs a fold leaves out are
the opposite of what the probe learnt for that kitchen: a no-signal probe then scores *below*
chance (measured 0.43-0.46 on all three pairs), an artefact of the estimator, not of the world.

* per-frame appearance features (a 4x4 grid of mean colours plus the mean/std of R, G, B: 54
  numbers), frames pooled without their time index: a single frame cannot tell the members of
  a time-reversal pair apart;
* the same statistics averaged over time (order-free pooling): near chance as well;
* six motion statistics of the clip (temporal difference x spatial gradient: translation,
  divergence, curl ...), which change sign under time reversal: order-aware, they separate
  the pairs.

And at the label level: the Bayes-optimal next-action distribution of the grammar beats the
n-gram on the last action (the latent recipe matters), checked against Monte-Carlo sampling.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lecturekit.data import ToyKitchens
from lecturekit.data.baselines import (
    NGram,
    bayes_from_history,
    bayes_next_action,
    ngram_next_action,
)
from lecturekit.metrics import topk_accuracy
from lecturekit.data.toykitchens.world import sample_actions

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def tk(tmp_path_factory):
    torch.set_num_threads(1)
    # the default notebook world; rendered once per test session (shared .npz cache)
    return ToyKitchens(seed=0, cache_dir=tmp_path_factory.getbasetemp() / "toykitchens-default")


# ---------------------------------------------------------------------------------------------
# probes


def frame_stats(video: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, T, H, W) -> (N, T, 6): per-frame mean and std of each colour channel."""
    x = video.float() / 255
    return torch.cat([x.mean((3, 4)), x.std((3, 4))], 1).permute(0, 2, 1)


def frame_features(video: torch.Tensor) -> torch.Tensor:
    """(N, C, T, H, W) -> (N, T, 54): a 4x4 grid of mean colours and the colour mean/std."""
    x = video.float() / 255
    N, C, T, H, W = x.shape
    grid = torch.nn.functional.adaptive_avg_pool2d(x.permute(0, 2, 1, 3, 4).reshape(N * T, C, H, W), 4)
    return torch.cat([grid.reshape(N, T, -1), frame_stats(video)], 2)


def motion_stats(video: torch.Tensor) -> torch.Tensor:
    """(N, C, T, H, W) -> (N, 6): sums of dI * (gradient . field) for translation x/y,
    divergence, curl and the two axis divergences, around the motion centroid. Reversing time
    negates dI and leaves the mid-frame gradients unchanged: every statistic flips sign."""
    g = video.float().mean(1) / 255  # (N, T, H, W)
    d = g[:, 1:] - g[:, :-1]
    m = (g[:, 1:] + g[:, :-1]) / 2
    gx = torch.zeros_like(m)
    gy = torch.zeros_like(m)
    gx[..., 1:-1] = (m[..., 2:] - m[..., :-2]) / 2
    gy[..., 1:-1, :] = (m[..., 2:, :] - m[..., :-2, :]) / 2
    H, W = g.shape[-2:]
    yy, xx = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    e = d.abs().sum(1)
    tot = e.sum((1, 2)) + 1e-6
    cx = (e * xx).sum((1, 2)) / tot
    cy = (e * yy).sum((1, 2)) / tot
    X = xx[None, None] - cx[:, None, None, None]
    Y = yy[None, None] - cy[:, None, None, None]
    fields = [d * gx, d * gy, d * (gx * X + gy * Y), d * (gx * Y - gy * X), d * gx * X, d * gy * Y]
    norm = (d.abs() * (gx.abs() + gy.abs())).sum((1, 2, 3)) + 1e-6
    return torch.stack([f.sum((1, 2, 3)) / norm for f in fields], 1)


def balanced_cv(X: torch.Tensor, y: torch.Tensor, groups: torch.Tensor | None = None, folds: int = 5) -> float:
    """Balanced accuracy of an L2-regularised logistic regression, ``folds``-fold CV.

    ``groups`` (N,) keeps all rows of a group (a clip) in the same fold."""
    g = groups if groups is not None else torch.arange(len(y))
    uniq = torch.unique(g)
    perm = uniq[torch.randperm(len(uniq), generator=torch.Generator().manual_seed(0))]
    accs = []
    for f in range(folds):
        te = torch.isin(g, perm[f::folds])
        tr = ~te
        mu, sd = X[tr].mean(0), X[tr].std(0) + 1e-6
        Xtr, Xte = (X[tr] - mu) / sd, (X[te] - mu) / sd
        ytr = y[tr].float()
        w = torch.zeros(X.shape[1], requires_grad=True)
        b = torch.zeros(1, requires_grad=True)
        wts = torch.where(ytr > 0, 0.5 / ytr.mean(), 0.5 / (1 - ytr.mean()))
        opt = torch.optim.LBFGS([w, b], max_iter=200)

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(Xtr @ w + b, ytr, weight=wts)
            loss = loss + 1e-3 * (w * w).sum()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            pred = (Xte @ w + b) > 0
        yt = y[te].bool()
        accs.append(0.5 * (pred[yt].float().mean() + (~pred[~yt]).float().mean()).item())
    return float(np.mean(accs))


def pair_clips(tk, pair, frames=8):
    """Clips of one reversal pair over all splits: uint8 video, label (1 = second verb), kitchen."""
    vs, ys, ks = [], [], []
    for split in SPLITS:
        v, lab = tk.clips(split, frames=frames, verbs=list(pair)).tensors()
        vs.append(v)
        ys.append((lab["verb"] == tk.verbs.index(pair[1])).long())
        ks.append(lab["kitchen"])
    return torch.cat(vs), torch.cat(ys), torch.cat(ks)


@pytest.fixture(scope="module")
def pair_results(tk):
    out = {}
    for pair in tk.reversal_pairs:
        video, y, kitchen = pair_clips(tk, pair)
        fs = frame_features(video)  # (N, T, 54)
        N, T, D = fs.shape
        frames = fs.reshape(N * T, D)
        single = balanced_cv(frames, y.repeat_interleave(T), groups=kitchen.repeat_interleave(T))
        out[pair] = {
            "n": N,
            "single": single,
            "average": balanced_cv(fs.mean(1), y, groups=kitchen),
            "order": balanced_cv(motion_stats(video), y, groups=kitchen),
        }
    return out


def test_single_frame_is_near_chance_within_reversal_pairs(pair_results):
    for pair, r in pair_results.items():
        assert r["n"] >= 100, (pair, r)  # enough clips per pair in the default world
        # chance +- 0.07 (measured: 0.501, 0.507, 0.496 with kitchen-grouped folds; objects 20 %
        # larger in put/close/turn-ccw
        # alone, a label-correlated nuisance, already give 0.62 / 0.55 / 0.58)
        assert abs(r["single"] - 0.5) <= 0.07, (pair, r)


def test_frame_averaging_is_near_chance_and_order_aware_probe_separates(pair_results):
    for pair, r in pair_results.items():
        assert abs(r["average"] - 0.5) <= 0.07, (pair, r)
        assert r["order"] >= 0.70, (pair, r)  # order-aware statistics separate every pair
        assert r["order"] - r["average"] >= 0.2, (pair, r)
    assert np.mean([r["order"] for r in pair_results.values()]) >= 0.8


def test_recipes_balance_every_reversal_pair_per_noun(tk):
    """Inside every recipe, each noun is expected as often with one verb of a reversal pair as
    with the other (optional steps count 1 - skip_prob). Exact arithmetic on the templates."""
    skip = tk.grammar.skip_prob
    for recipe in tk.recipes:
        expected = np.zeros((len(tk.verbs), len(tk.nouns)))
        for step in recipe.steps:
            for a, w in zip(step.alternatives, step.weights):
                v, n = tk.actions_table[a]
                expected[v, n] += w * ((1 - skip) if step.optional else 1.0)
        for first, second in tk.reversal_pairs:
            i, j = tk.verbs.index(first), tk.verbs.index(second)
            assert np.allclose(expected[i], expected[j], atol=1e-12), (recipe.name, first, second)


def test_noun_does_not_tell_the_verb_within_reversal_pairs(tk):
    """The best rule that sees only the noun: per noun, the verb of the pair with the higher
    class-normalised frequency in train. Scored on val + test it must stay near chance.
    (The first recipe set failed this: 0.64-0.68 within take/put, the shortcut the order-free
    models of notebooks 01-03 found.)"""
    train = tk.segments("train")
    held = {k: np.concatenate([tk.segments(s)[k] for s in ("val", "test")]) for k in ("verb", "noun")}
    for first, second in tk.reversal_pairs:
        i, j = tk.verbs.index(first), tk.verbs.index(second)
        ci = np.bincount(train["noun"][train["verb"] == i], minlength=len(tk.nouns)) / np.sum(train["verb"] == i)
        cj = np.bincount(train["noun"][train["verb"] == j], minlength=len(tk.nouns)) / np.sum(train["verb"] == j)
        rule = np.where(ci >= cj, i, j)
        sel = np.isin(held["verb"], [i, j])
        pred, y = rule[held["noun"][sel]], held["verb"][sel]
        balanced = 0.5 * (np.mean(pred[y == i] == i) + np.mean(pred[y == j] == j))
        assert abs(balanced - 0.5) <= 0.07, (first, second, balanced)


def test_motion_probe_sees_a_reversed_clip_as_the_other_verb(tk):
    """Reversing take clips in time makes the order-aware probe call them put."""
    video, _, _ = pair_clips(tk, ("take", "put"))
    f = motion_stats(video)
    f_rev = motion_stats(video.flip(2))
    assert torch.allclose(f_rev, -f, atol=1e-5)  # every statistic flips sign
    # and the frame statistics of a reversed clip are the same multiset
    assert torch.allclose(frame_stats(video.flip(2)).mean(1), frame_stats(video).mean(1), atol=1e-6)


def energy_profile(video: torch.Tensor) -> torch.Tensor:
    """(N, C, T, H, W) -> (N, T-1): how the clip's motion energy (mean |frame difference|) is
    spread over time, normalised to sum 1, so object size and colour (the noun) hardly enter."""
    g = video.float().mean(1) / 255
    e = (g[:, 1:] - g[:, :-1]).abs().mean((2, 3))
    return e / (e.sum(1, keepdim=True) + 1e-6)


def test_early_observation_is_ambiguous_and_accuracy_rises(tk):
    """take vs pour share the approach: an order-aware probe of the motion over time is near
    chance on the first 30 % of the action and gains >= 0.1 on the whole action.

    All nouns are kept. An earlier version restricted the clips to bottle/jar/pan and used the
    motion statistics above; it scored 0.68 at 30 % although those frames are identical for
    take and pour of the same object: pan is taken in two recipes and poured in none, so the
    probe was reading the noun, not the motion."""
    accs = {}
    for frac in (0.3, 1.0):
        vs, ys, ks = [], [], []
        for split in SPLITS:
            v, lab = tk.early(split, frac, verbs=["take", "pour"]).tensors()
            vs.append(v)
            ys.append((lab["verb"] == tk.verbs.index("pour")).long())
            ks.append(lab["kitchen"])
        v, y = torch.cat(vs), torch.cat(ys)
        accs[frac] = balanced_cv(energy_profile(v), y, groups=torch.cat(ks))
    # measured: 0.558 at 30 %, 0.774 on the whole action
    assert accs[1.0] - accs[0.3] >= 0.1, accs
    assert accs[0.3] <= 0.65, accs


# ---------------------------------------------------------------------------------------------
# label level: grammar, Bayes bound, n-grams


def test_bayes_matches_monte_carlo_sampling_of_the_grammar(tk):
    """The forward filter agrees with frequencies of the generator itself (total variation
    < 0.05 on 12,000 sampled videos; the sampling noise is ~0.03 with 1,000 matching videos and
    10 likely next actions) after the histories [], [most likely first], [.., most likely second]."""
    k = 3
    rng = np.random.default_rng(123)
    seqs = [sample_actions(tk.grammar, k, rng)[0] for _ in range(12000)]
    prior = np.zeros(len(tk.kitchens))
    prior[k] = 1.0
    A = len(tk.actions)
    first = np.bincount([s[0] for s in seqs], minlength=A)
    h1 = int(np.argmax(first))
    second = np.bincount([s[1] for s in seqs if s[0] == h1 and len(s) > 1], minlength=A)
    h2 = int(np.argmax(second))
    for hist in ([], [h1], [h1, h2]):
        emp = np.bincount([s[len(hist)] for s in seqs if s[: len(hist)] == hist and len(s) > len(hist)], minlength=A)
        assert emp.sum() > 1000
        emp = emp / emp.sum()
        exact = bayes_from_history(tk, hist, prior)
        assert abs(exact.sum() - 1) < 1e-9
        assert 0.5 * np.abs(emp - exact).sum() < 0.05, (hist, 0.5 * np.abs(emp - exact).sum())


def test_last_action_alone_is_a_weak_predictor(tk):
    """Top-1 of the n-gram on the last action (n=2) and of the prior (n=1) stay >= 10 points
    below the Bayes-optimal bound, on val and on test; longer n-grams do not beat the bound."""
    for split in ("val", "test"):
        ant = tk.anticipation(split)
        y = ant.labels["action"]
        bayes = bayes_next_action(tk, ant)
        np.testing.assert_allclose(bayes.sum(1), 1.0, atol=1e-9)
        b1 = topk_accuracy(bayes, y, 1)
        for n in (1, 2):
            assert b1 - topk_accuracy(ngram_next_action(tk, ant, n=n), y, 1) >= 0.10, (split, n)
        for n in (3, 4):
            assert topk_accuracy(ngram_next_action(tk, ant, n=n), y, 1) <= b1 + 0.02, (split, n)
        assert topk_accuracy(bayes, y, 5) >= 0.85  # the bound is high but not trivial at top-1
        assert b1 <= 0.92  # pitfall 6: the grammar is not deterministic


def test_ngram_counts_and_smoothing():
    m = NGram(n=2, k=1.0, num_actions=3).fit([[0, 1, 0, 1, 2]])
    p = m.predict(np.array([[-1, 0], [-1, 2], [5, 7]]))
    # after 0: counts (0, 2, 0) + 1 -> (1, 3, 1) / 5; after 2: never seen as context -> (0,0,0)+1
    np.testing.assert_allclose(p[0], [0.2, 0.6, 0.2])
    np.testing.assert_allclose(p[1], [1 / 3] * 3)
    np.testing.assert_allclose(p[2], [1 / 3] * 3)  # unseen context -> uniform
    start = NGram(n=2, k=0.0, num_actions=3).fit([[2, 1], [2, 0]]).predict(np.array([[-1, -1]]))
    np.testing.assert_allclose(start[0], [0, 0, 1])  # the beginning-of-video context
    # ties are broken as the official scorer (higher id first): [0.3, 0.4, 0.3] ranks 1, 2, 0,
    # so label 2 is in the top 2 and label 0 is not
    assert topk_accuracy(np.array([[0.1, 0.5, 0.4], [0.3, 0.4, 0.3]]), np.array([2, 2]), 2) == 1.0
    assert topk_accuracy(np.array([[0.3, 0.4, 0.3]]), np.array([0]), 2) == 0.0


def test_kitchen_appearance_predicts_recipes_on_seen_kitchens(tk):
    """The kitchen is visible (background colour) and tells the likely recipe: a kitchen ->
    majority-recipe table from train beats the global majority by >= 10 points on val videos
    of seen kitchens; a nearest-centroid on mean frame colour recognises the kitchen >= 90 %."""
    tr, va = tk.segments("train"), tk.segments("val")
    R = len(tk.recipes)
    keep_tr, keep_va = tr["recipe"] >= 0, (va["recipe"] >= 0) & (va["unseen"] == 0)
    table = np.zeros((len(tk.kitchens), R))
    np.add.at(table, (tr["kitchen"][keep_tr], tr["recipe"][keep_tr]), 1)
    per_kitchen = (table.argmax(1)[va["kitchen"][keep_va]] == va["recipe"][keep_va]).mean()
    glob = (np.bincount(tr["recipe"][keep_tr], minlength=R).argmax() == va["recipe"][keep_va]).mean()
    assert per_kitchen - glob >= 0.10, (per_kitchen, glob)

    def mean_colour(split):
        v, lab = tk.clips(split, frames=2).tensors()
        return v.float().mean((2, 3, 4)), lab["kitchen"], lab["unseen"]

    xtr, ktr, _ = mean_colour("train")
    xva, kva, uva = mean_colour("val")
    cent = torch.stack([xtr[ktr == k].mean(0) for k in range(8)])
    pred = torch.cdist(xva[uva == 0], cent).argmin(1)
    assert (pred == kva[uva == 0]).float().mean() >= 0.9


def test_the_hand_reaches_for_the_next_object_before_it_starts(tk):
    """A genuine but partial anticipation cue: for 20-90 % of the actions the hand has started
    its reach before the default cut (tau_a = 1 s = 8 frames), and then the last observed frame
    already shows it closer to where it grips than when the reach began."""
    from lecturekit.data.toykitchens.render import instances

    early, total = 0, 0
    for s in tk.scripts[:16]:
        _, hand = instances(s)
        for i in range(len(s.action)):
            a, reach = int(s.start[i]), int(s.nuisance["reach"][i])
            last = a - 9  # the last frame before the cut a - 8
            if a - reach - 1 < 0:
                continue
            total += 1
            if a - reach <= last:
                early += 1
                grip = hand[a]
                assert np.linalg.norm(hand[last] - grip) < np.linalg.norm(hand[a - reach - 1] - grip)
    assert total > 150 and 0.2 <= early / total <= 0.9, (early, total)
