"""AGA's post-training analysis: dependency matrix, counterfactual search, gate read-out.

The counterfactual test trains a small AGA on a synthetic feature-sequence task built here,
in which the anticipated action depends on an EARLIER action:

    actions  take_i (0-3), put_i (4-7), result_i (8-11), fillers (12, 13), serve (14)
    a clip   fillers, with "take_c, put_c" at a random step k and "serve" as the last frame;
             the action after "serve" (the anticipation target) is result_c
    features each frame is its action's fixed random prototype (D = 16) plus noise

Nothing in the last frame tells c apart: the model must retrieve it from the past, and the
prediction made at the "take_c" step ("put_c next") is an informative key.
"""

from __future__ import annotations

import math

import pytest
import torch

from lecturekit.analysis import counterfactual_past, dependency_matrix, gate_trace
from lecturekit.analysis.aga import (
    counterfactual_success,
    dependency_grammar_correlation,
    non_degenerate_windows,
)
from lecturekit.analysis.stats import spearman
from lecturekit.losses import dense_next_step_loss
from lecturekit.models.aga import AGA

from reference.aga_loop import dependency_naive

K, T, D = 15, 8, 16
TAKE, PUT, RESULT, SERVE = 0, 4, 8, 14


def _prototypes():
    return torch.randn(K, D, generator=torch.Generator().manual_seed(123))


def recipe_clips(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (n, T, D), labels (n, T + 1)); labels[:, T] is the anticipated action."""
    g = torch.Generator().manual_seed(seed)
    labels = 12 + torch.randint(0, 2, (n, T + 1), generator=g)           # fillers everywhere
    c = torch.randint(0, 4, (n,), generator=g)                            # the ingredient
    k = torch.randint(0, T - 3, (n,), generator=g)                        # when it is taken
    rows = torch.arange(n)
    labels[rows, k] = TAKE + c
    labels[rows, k + 1] = PUT + c
    labels[:, T - 1] = SERVE
    labels[:, T] = RESULT + c
    x = _prototypes()[labels[:, :T]] + 0.3 * torch.randn(n, T, D, generator=g)
    return x, labels


@pytest.fixture(scope="module")
def trained():
    """A small AGA trained with the dense next-step loss (100 Adam steps, ~3-4 s on one idle core)."""
    x, y = recipe_clips(1024, seed=0)
    torch.manual_seed(0)
    model = AGA(feat_in=D, num_classes=K, hidden=32, heads=2, order=T, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(100):
        idx = torch.randint(0, len(x), (64,), generator=g)
        loss = dense_next_step_loss(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _small(**kw):
    torch.manual_seed(0)
    return AGA(feat_in=12, num_classes=9, hidden=16, heads=2, order=4, dropout=0.0, **kw).eval()


# ----------------------------------------------------------------------------- dependency matrix
@pytest.mark.parametrize("reduce", ["mean_of_softmax", "softmax_of_mean"])
def test_dependency_rows_are_distributions_over_the_candidates(reduce):
    model = _small()
    queries, candidates = [0, 3, 8], [1, 2, 5, 6]
    m = dependency_matrix(model, queries, candidates, reduce=reduce)
    assert m.shape == (3, 4) and (m > 0).all()
    torch.testing.assert_close(m.sum(1), torch.ones(3))
    full = dependency_matrix(model, reduce=reduce)                        # all K x K
    assert full.shape == (9, 9)
    torch.testing.assert_close(full.sum(1), torch.ones(9))


@pytest.mark.parametrize("reduce", ["mean_of_softmax", "softmax_of_mean"])
def test_dependency_matches_naive_pairwise_reference(reduce):
    model = _small()
    queries, candidates = [0, 3, 8], [1, 2, 5, 6, 7]
    torch.testing.assert_close(dependency_matrix(model, queries, candidates, reduce=reduce),
                               dependency_naive(model, queries, candidates, reduce=reduce), atol=1e-6, rtol=1e-5)


def test_dependency_is_a_property_of_the_weights_only():
    """Changing the frame encoder or the value path does not move the matrix; E_K does."""
    model = _small()
    m0 = dependency_matrix(model, [0, 1], [2, 3, 4])
    with torch.no_grad():
        model.encoder[3].weight.mul_(3.0)
        model.retrieve.w_v.weight.mul_(-1.0)
    torch.testing.assert_close(dependency_matrix(model, [0, 1], [2, 3, 4]), m0)
    with torch.no_grad():
        model.key_encoder[3].weight.mul_(-2.0)
    assert not torch.allclose(dependency_matrix(model, [0, 1], [2, 3, 4]), m0)


def test_analysis_rejects_pixel_attention_and_bad_ids():
    pixel = _small(attention="pixel")
    with pytest.raises(ValueError, match="pixel"):
        dependency_matrix(pixel)
    with pytest.raises(ValueError, match="pixel"):
        counterfactual_past(pixel, torch.randn(6, 12), 0)
    with pytest.raises(ValueError, match=r"\[0, 9\)"):
        dependency_matrix(_small(), [0, 9])
    with pytest.raises(ValueError, match="clip"):
        counterfactual_past(_small(), torch.randn(2, 6, 12), 0)


# ----------------------------------------------------------------------------- counterfactual
@pytest.mark.slow
def test_counterfactual_search_reaches_the_target_on_a_trained_model(trained):
    """Trained on one ingredient per clip, the model anticipates result_c (held-out accuracy).
    On a clip showing TWO ingredients (a at t=1, b at t=4) it picks one; optimising only the
    past-prediction slots (values and frames fixed) makes it predict the other's result."""
    xv, yv = recipe_clips(256, seed=1)
    with torch.no_grad():
        acc = (trained(xv)[:, -1].argmax(-1) == yv[:, T]).float().mean()
    assert acc >= 0.95, f"the synthetic dependency was not learned (accuracy {acc:.3f})"

    labels = torch.tensor([12, TAKE + 0, PUT + 0, 13, TAKE + 2, PUT + 2, 12, SERVE])
    clip = _prototypes()[labels] + 0.3 * torch.randn(T, D, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        before = int(trained(clip[None])[0, -1].argmax())
    assert before in (RESULT + 0, RESULT + 2)
    target = RESULT + 2 if before == RESULT + 0 else RESULT + 0
    params = [p.detach().clone() for p in trained.parameters()]
    result = counterfactual_past(trained, clip, target, iters=400, lr=0.1, k=5)
    assert result.prediction_before == before and result.step == T - 1
    assert result.reached, result.table()
    assert result.target_prob_after > result.target_prob_before
    assert result.after_topk.shape == (T - 1, 5) and result.slot_steps == list(range(T - 1))
    assert all(torch.equal(p, q) for p, q in zip(params, trained.parameters())), "weights must stay frozen"
    assert not trained.training


# ----------------------------------------------------------------------------- gate read-out
def test_gate_trace_reads_the_gate_over_time():
    model = _small()
    x = torch.randn(2, 6, 12, generator=torch.Generator().manual_seed(0))
    trace = gate_trace(model, x)
    assert trace.shape == (2, 6) and torch.isnan(trace[:, 0]).all()
    assert ((trace[:, 1:] > 0) & (trace[:, 1:] < 1)).all()
    for bias, value in ((1e4, 1.0), (-1e4, 0.0)):
        with torch.no_grad():
            model.gate.mlp[3].weight.zero_()
            model.gate.mlp[3].bias.fill_(bias)
        torch.testing.assert_close(gate_trace(model, x)[:, 1:], torch.full((2, 5), value))
    with pytest.raises(ValueError, match="gate"):
        gate_trace(_small(gate=False), x)


# ----------------------------------------------------------------------------- checkable claims
def test_spearman_and_the_grammar_correlation():
    x = torch.tensor([0.1, 0.4, 0.2, 0.9])
    assert spearman(x, x ** 3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    assert spearman([1.0, 1.0, 2.0, 3.0], [5.0, 5.0, 6.0, 7.0]) == pytest.approx(1.0)   # ties: average ranks
    assert math.isnan(spearman([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]))           # a constant side: undefined
    with pytest.raises(ValueError, match="same size"):
        spearman([1.0, 2.0], [1.0, 2.0, 3.0])
    # M[a, b] is paired with P(next = a | previous = b) = P[b, a]
    g = torch.Generator().manual_seed(0)
    P = torch.rand(6, 6, generator=g).softmax(1)
    assert dependency_grammar_correlation(P.T, P) == pytest.approx(1.0)
    assert dependency_grammar_correlation(P.T.exp(), P, exclude_diagonal=True) == pytest.approx(1.0)
    assert dependency_grammar_correlation(P, P) < 0.99                    # the transposed pairing differs
    model = _small()                                                       # a model is read with dependency_matrix
    Q = torch.rand(9, 9, generator=g)
    assert dependency_grammar_correlation(model, Q) == pytest.approx(dependency_grammar_correlation(dependency_matrix(model), Q))
    with pytest.raises(ValueError, match="square"):
        dependency_grammar_correlation(torch.rand(3, 4), torch.rand(3, 4))
    with pytest.raises(ValueError, match="same shape"):
        dependency_grammar_correlation(torch.rand(3, 3), torch.rand(4, 4))


def test_non_degenerate_windows():
    keep = non_degenerate_windows([1, 2, 3, 4], [1, 0, 3, 0], observed=[1, 1, 1, 0])
    assert keep.tolist() == [False, True, False, False]
    assert non_degenerate_windows(torch.tensor([0, 1]), torch.tensor([1, 1])).tolist() == [True, False]
    with pytest.raises(ValueError, match="same length"):
        non_degenerate_windows([0, 1], [0])
    with pytest.raises(ValueError, match="observed"):
        non_degenerate_windows([0, 1], [1, 0], observed=[1])


def test_counterfactual_success_bookkeeping():
    model = _small()
    x = torch.randn(5, 6, 12, generator=torch.Generator().manual_seed(1))
    summary = counterfactual_success(model, x, [0, 1, 2, 3, 4], mask=[True, False, True, True, True], max_windows=2,
                                     iters=3, k=2)
    assert summary.windows == [0, 2] and summary.targets == [0, 2] and len(summary.results) == 2
    assert summary.fraction == sum(summary.reached) / 2
    with pytest.raises(ValueError, match="targets"):
        counterfactual_success(model, x, [0, 1])
    with pytest.raises(ValueError, match="features"):
        counterfactual_success(model, x[:, :1], [0] * 5)
    with pytest.raises(ValueError, match="mask"):
        counterfactual_success(model, x, [0] * 5, mask=[True])


def test_counterfactual_storyboard_smoke():
    import matplotlib

    from lecturekit import viz

    model = _small()
    result = counterfactual_past(model, torch.randn(6, 12, generator=torch.Generator().manual_seed(2)), 3,
                                 iters=5, k=2)
    clip = torch.randint(0, 256, (3, 6, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    fig = viz.counterfactual_storyboard(clip, result.slot_steps, result.before_topk, result.after_topk,
                                        prediction_before=result.prediction_before,
                                        prediction_after=result.prediction_after, target=result.target,
                                        class_names=[f"a{i}" for i in range(9)])
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 6
    assert "(steered)" in fig.axes[-1].get_title()
    assert fig.axes[result.slot_steps[0]].get_title().count("a") >= 2
    with pytest.raises(ValueError, match="before/after"):
        viz.counterfactual_storyboard(clip, [0, 1], [1, 2], [1], prediction_before=0, prediction_after=0, target=0)
    with pytest.raises(ValueError, match="slot_steps"):
        viz.counterfactual_storyboard(clip, [5], [1], [1], prediction_before=0, prediction_after=0, target=0)


@pytest.mark.slow
def test_counterfactual_success_on_the_synthetic_task(trained):
    """On two-ingredient clips (a at t=1, b at t=4; the model picks one), the search steers most
    windows to the other ingredient's result."""
    g = torch.Generator().manual_seed(9)
    clips, targets = [], []
    for _ in range(12):
        a, b = torch.randperm(4, generator=g)[:2].tolist()
        labels = torch.tensor([12, TAKE + a, PUT + a, 13, TAKE + b, PUT + b, 12, SERVE])
        clips.append(_prototypes()[labels] + 0.3 * torch.randn(T, D, generator=g))
        targets.append((a, b))
    x = torch.stack(clips)
    with torch.no_grad():
        pred = trained(x)[:, -1].argmax(-1)
    target = torch.tensor([RESULT + (b if int(p) == RESULT + a else a) for p, (a, b) in zip(pred, targets)])
    keep = non_degenerate_windows(pred, target)
    assert keep.sum() >= 10
    summary = counterfactual_success(trained, x, target, mask=keep, iters=400)
    assert summary.fraction > 0.5, summary.fraction


# ----------------------------------------------------------------------------- issue 14.5 on ToyKitchens
# Measured on the default world, seeds 0-4, first 80 non-degenerate test windows each, default
# search (500 iterations, lr 0.1): 0.388, 0.388, 0.400, 0.388, 0.388 (of 153, 145, 150, 152, 152 non-degenerate windows).
# The target (> 0.5) is not met; the floor guards the present level with a margin for
# the 40 windows searched here (binomial sd ~0.08).
FRACTION_FLOOR = 0.2
@pytest.fixture(scope="module")
def kitchen_aga():
    """The benchmark AGA (seed 0, 30 epochs, online-TSM features) on the default world, ~15 s."""
    from lecturekit.analysis.anticipation import load_anticipation_data, predict_probs, train_anticipation
    from lecturekit.data import ToyKitchens

    torch.set_num_threads(1)
    world = ToyKitchens(seed=0)
    data = load_anticipation_data(world, ("train", "test"), encoder="toykitchens_tsm_online")
    head, _ = train_anticipation("aga", data["train"], len(world.actions), epochs=30, seed=0)
    probs = predict_probs(head, data["test"].features)
    return world, data["test"], head.model.eval(), torch.as_tensor(probs.argmax(1))


@pytest.mark.slow
def test_counterfactual_search_on_kitchen_windows(kitchen_aga):
    """Test windows that show the video and where the model misses the true next action: the
    search over the past slots makes it predict the true action in a share of them."""
    world, test, model, pred = kitchen_aga
    target = torch.as_tensor(test.labels["action"])
    keep = non_degenerate_windows(pred, target, observed=test.labels["too_early"] == 0)
    assert keep.sum() >= 100
    summary = counterfactual_success(model, test.features, target, mask=keep, max_windows=40)
    assert summary.fraction >= FRACTION_FLOOR, summary.fraction
