"""Checks of notebook 10 (10.1 EK-100 class-mean top-k recall, 10.2 RU-LSTM's rolling-unrolling
loop): independent naive solutions pass, the checks' references agree with the naive code, with the
independent EK-100 reference of tests/reference/ek100_recall.py and with the library's RULSTM, and
typical wrong answers are rejected with the matching hint."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lecturekit.course import check, get_check
from lecturekit.course.checking import run_check
from lecturekit.course.checks.nb10 import _wrong_recall, _wrong_ru, lstm_step
from lecturekit.metrics import mean_topk_recall, topk_accuracy
from lecturekit.models.rulstm import RULSTM
from reference import ek100_recall
from reference.course_naive_nb10 import naive_mean_topk_recall, naive_rolling_unrolling
from reference.rulstm_loop import rulstm_forward_loop

# the check's reference: the library's rolling_unrolling on LSTMs holding the exercise's weights
reference_rolling_unrolling = get_check("10.2").reference


# --------------------------------------------------------------------------- 10.1 class-mean top-k recall
def test_naive_recall_passes():
    assert check("10.1", naive_mean_topk_recall, verbose=False).passed


def test_recall_reference_agrees_with_naive_code():
    spec = get_check("10.1")
    result = run_check(dataclasses.replace(spec, reference=naive_mean_topk_recall), mean_topk_recall)
    assert result.passed, result.message


def test_recall_cases_agree_with_the_ek100_reference():
    """The independent EK-100 reference (a sort key that ranks equal scores by larger id first)."""
    for case in get_check("10.1").make_cases():
        scores, labels, k = case.args
        expected = ek100_recall.mean_topk_recall(scores.tolist(), labels.tolist(), k)
        assert abs(mean_topk_recall(scores, labels, k) - expected) < 1e-12, case.label


def test_recall_by_hand_and_accuracy_differ():
    hand = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.9, 0.05, 0.05]])
    y = torch.tensor([0, 0, 0, 1])
    assert mean_topk_recall(hand, y, 1) == 0.5
    assert topk_accuracy(hand, y, 1) == 0.75


def test_tie_cases_separate_the_rules():
    """Every tie rule other than the official one gives another value on the tie cases."""
    cases = {c.label: c.args for c in get_check("10.1").make_cases()}
    for label in ("tied scores around the k-th place, k = 2", "all scores equal (a constant model), k = 2"):
        s, y, k = cases[label]
        right = mean_topk_recall(s, y, k)
        for rule in ("smaller id first", "hit", "miss"):
            assert abs(_wrong_recall(s, y, k, ties=rule) - right) > 0.1, (label, rule)


@pytest.mark.parametrize("kwargs, expected", [
    (dict(mean_over="rows"), "top-k ACCURACY"),
    (dict(mean_over="all classes"), "averaged over all K classes"),
    (dict(ties="smaller id first"), "LARGER class id ranks first"),
    (dict(ties="hit"), "counted only the strictly higher"),
    (dict(ties="miss"), "not every tied class"),
    (dict(largest=False), "SMALLEST"),
    (dict(scale=100.0), "percentage"),
])
def test_recall_rejects_mistakes(kwargs, expected):
    result = check("10.1", lambda s, y, k: _wrong_recall(s, y, k, **kwargs), verbose=False)
    assert not result.passed
    assert expected in result.message


def test_recall_rejects_torch_topk_with_unbroken_ties():
    def with_topk(scores, labels, k):
        top = scores.topk(k, dim=1).indices
        hits = (top == labels[:, None]).any(1)
        return float(np.mean([hits[labels == c].double().mean().item() for c in labels.unique()]))
    # torch.topk on tied scores does not follow the official rule on at least one tie case
    assert not check("10.1", with_topk, verbose=False).passed


# --------------------------------------------------------------------------- 10.2 rolling-unrolling loop
def test_naive_rolling_unrolling_passes():
    assert check("10.2", naive_rolling_unrolling, verbose=False).passed


def test_rolling_unrolling_reference_agrees_with_naive_code():
    spec = get_check("10.2")
    result = run_check(dataclasses.replace(spec, reference=naive_rolling_unrolling), reference_rolling_unrolling)
    assert result.passed, result.message


def test_reference_copies_a_trained_models_weights():
    """Weights taken from a library RULSTM give back that model's output, and the official
    step-by-step loop (tests/reference/rulstm_loop.py) agrees."""
    torch.manual_seed(0)
    model = RULSTM(4, feat_in=5, hidden=6, dropout=0.0).eval()
    x = torch.randn(3, 7, 5)

    def weights(lstm):
        return (lstm.weight_ih_l0.detach(), lstm.weight_hh_l0.detach(), (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach())

    got = reference_rolling_unrolling(x, weights(model.rolling), weights(model.unrolling),
                                      model.head[1].weight.detach(), model.head[1].bias.detach())
    with torch.no_grad():
        assert torch.allclose(got, model(x), atol=1e-5)
        lengths = []
        assert torch.allclose(got, rulstm_forward_loop(model, x, lengths), atol=1e-5)
    assert lengths == [8, 7, 6, 5, 4, 3, 2]


def test_lstm_step_matches_torch():
    torch.manual_seed(1)
    cell = torch.nn.LSTMCell(3, 4)
    x, h, c = torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 4)
    want = cell(x, (h, c))
    got = lstm_step(x, h, c, cell.weight_ih, cell.weight_hh, cell.bias_ih + cell.bias_hh)
    assert torch.allclose(got[0], want[0], atol=1e-6) and torch.allclose(got[1], want[1], atol=1e-6)


@pytest.mark.parametrize("kwargs, expected", [
    (dict(extra=0), "one more than the steps left"),
    (dict(extra=2), "not T − t + 2"),
    (dict(start="zero"), "started from zeros"),
    (dict(start="last"), "LAST rolling state"),
    (dict(unroll=False), "classified the rolling state"),
    (dict(inputs="future"), "sequence-completion"),
    (dict(swap=True), "swapped"),
])
def test_rolling_unrolling_rejects_mistakes(kwargs, expected):
    result = check("10.2", lambda *a: _wrong_ru(*a, **kwargs), verbose=False)
    assert not result.passed
    assert expected in result.message
