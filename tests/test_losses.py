"""Tests of lecturekit.losses: MS-LSTM Eq. (1) and its baselines (Eqs. 7-9), the ranking loss on
the detection score, and AGA's dense next-step loss with 1/sqrt(n+1) class weights."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lecturekit.losses import (
    anticipation_loss,
    anticipation_loss_per_step,
    cross_entropy_per_step,
    dense_next_step_loss,
    ece_loss,
    final_step_bce,
    inverse_sqrt_class_weights,
    lgl_loss,
    ranking_detection_loss,
)
from reference import anticipation_losses as ref


def _constant_probs(p, steps):
    """Logits whose softmax is ``p`` at every step: (1, T, K)."""
    return torch.log(torch.tensor(p, dtype=torch.float64)).expand(1, steps, len(p)).clone()


def test_digest_worked_example():
    """K=2, T=2, y=(1,0), ŷ=(0.8,0.2): L = -[ln .8 + ½ ln .8] - [ln .8 + ln .8] = -3.5 ln 0.8."""
    logits = _constant_probs([0.8, 0.2], 2)
    y = torch.tensor([0])
    expected = -3.5 * math.log(0.8)                   # 0.7810024... (the digest rounds it to 0.78101)
    assert anticipation_loss(logits, y, class_normalize=False).item() == pytest.approx(expected, abs=1e-6)
    # the paper's 1/N with N = 2 classes
    assert anticipation_loss(logits, y).item() == pytest.approx(expected / 2, abs=1e-6)
    per_step = anticipation_loss_per_step(logits, y)
    assert per_step[0].tolist() == pytest.approx([-1.5 * math.log(0.8), -2.0 * math.log(0.8)], abs=1e-6)


def test_last_step_equals_full_binary_cross_entropy():
    """At t = T the false-positive weight is 1: the summand is the full BCE over classes."""
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 6, dtype=torch.float64)
    y = torch.tensor([0, 3, 5])
    p = logits[:, -1].softmax(-1)
    bce = F.binary_cross_entropy(p, F.one_hot(y, 6).double(), reduction="none").sum(-1)
    torch.testing.assert_close(anticipation_loss_per_step(logits, y)[:, -1], bce, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(final_step_bce(logits, y, reduction="none"), bce, atol=1e-10, rtol=1e-10)


def test_first_step_false_positive_weight_is_one_over_T():
    logits = _constant_probs([0.5, 0.3, 0.2], 4)
    per_step = anticipation_loss_per_step(logits, torch.tensor([0]))[0]
    fn, fp = -math.log(0.5), -(math.log(0.7) + math.log(0.8))
    assert per_step.tolist() == pytest.approx([fn + fp * t / 4 for t in (1, 2, 3, 4)], abs=1e-6)


def test_per_step_loss_grows_with_t_for_a_fixed_wrong_probability():
    logits = _constant_probs([0.4, 0.35, 0.25], 6)
    per_step = anticipation_loss_per_step(logits, torch.tensor([0]))[0]
    assert (per_step.diff() > 0).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_losses_equal_naive_reference(seed):
    """Eq. (1), (8) and (9) against a loop-over-t, loop-over-k reference with Python floats."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(4, 5, 7, generator=g, dtype=torch.float64) * 2
    y = torch.randint(0, 7, (4,), generator=g)
    lg, ly = logits.tolist(), y.tolist()
    assert anticipation_loss(logits, y).item() == pytest.approx(ref.anticipation_loss(lg, ly), rel=1e-5)
    assert anticipation_loss(logits, y, class_normalize=False).item() == pytest.approx(
        ref.anticipation_loss(lg, ly, class_normalize=False), rel=1e-5)
    assert ece_loss(logits, y).item() == pytest.approx(ref.ece_loss(lg, ly), rel=1e-5)
    assert lgl_loss(logits, y).item() == pytest.approx(ref.lgl_loss(lg, ly), rel=1e-5)


def test_anticipation_loss_penalises_early_hedging_less_than_lgl_penalises_early_misses():
    """The design contrast of Sec. 4.4.1: Eq. (1) tolerates early false positives; LGL tolerates
    early false negatives. A wrong early guess costs Eq. (1) more at the first step than LGL."""
    wrong_first = torch.log(torch.tensor([[[0.1, 0.9], [0.9, 0.1], [0.9, 0.1]]]))
    y = torch.tensor([0])
    ours = anticipation_loss_per_step(wrong_first, y)[0, 0].item()
    lgl_first = (1 / 3) * -(math.log(0.1) + math.log(0.1))
    assert ours > lgl_first


def test_stable_for_confident_logits_and_under_autocast():
    logits = torch.tensor([[[300.0, 0.0, 0.0], [0.0, 300.0, 0.0]]], requires_grad=True)
    loss = anticipation_loss(logits, torch.tensor([0]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    x = torch.randn(2, 4, 5)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        lb = anticipation_loss(x.bfloat16(), torch.tensor([1, 2]))
    assert lb.dtype == torch.float32 and torch.isfinite(lb)


def test_target_per_step_equals_replicated_target():
    x = torch.randn(2, 3, 4)
    y = torch.tensor([1, 3])
    torch.testing.assert_close(anticipation_loss(x, y), anticipation_loss(x, y[:, None].expand(2, 3)))
    torch.testing.assert_close(cross_entropy_per_step(x, y), F.cross_entropy(x.reshape(6, 4), y.repeat_interleave(3)))


def test_ece_weights_concentrate_on_the_last_steps():
    logits = _constant_probs([0.6, 0.4], 5)
    y = torch.tensor([0])
    step = -(math.log(0.6) + math.log(0.6))        # BCE at one step
    expected = step * sum(math.exp(-(5 - t)) for t in range(1, 6))
    assert ece_loss(logits, y).item() == pytest.approx(expected, rel=1e-6)


def test_ranking_loss_only_fires_when_the_true_score_drops():
    y = torch.tensor([0])
    rising = torch.log(torch.tensor([[[0.3, 0.7], [0.5, 0.5], [0.8, 0.2]]]))
    falling = torch.log(torch.tensor([[[0.8, 0.2], [0.5, 0.5], [0.3, 0.7]]]))
    ce_r = cross_entropy_per_step(rising, y).item()
    ce_f = cross_entropy_per_step(falling, y).item()
    assert ranking_detection_loss(rising, y).item() == pytest.approx(ce_r, abs=1e-6)
    # drops of 0.3 (step 2) and 0.5 (step 3) below the running max 0.8, averaged over 3 steps
    assert ranking_detection_loss(falling, y).item() == pytest.approx(ce_f + (0.3 + 0.5) / 3, abs=1e-6)


def test_inverse_sqrt_class_weights():
    w = inverse_sqrt_class_weights(torch.tensor([0, 3, 8, 99]))
    raw = torch.tensor([1.0, 0.5, 1 / 3, 0.1])
    torch.testing.assert_close(w, raw / raw.mean())
    assert w.mean().item() == pytest.approx(1.0)


def test_dense_next_step_loss_shifts_labels_and_counts_the_last_step_twice():
    torch.manual_seed(0)
    b, t, k = 2, 3, 5
    logits = torch.randn(b, t, k)
    labels = torch.tensor([[0, 1, -1, 4], [2, 2, 3, 3]])          # (B, T+1); -1 = no action
    w = inverse_sqrt_class_weights(torch.tensor([5, 0, 2, 7, 1]))
    got = dense_next_step_loss(logits, labels, weight=w)
    logp = logits.log_softmax(-1)
    terms = []
    for i in range(b):
        for s in range(t):
            y = int(labels[i, s + 1])
            terms.append(0.0 if y < 0 else -float(w[y] * logp[i, s, y]))
    final = [-float(w[labels[i, t]] * logp[i, t - 1, labels[i, t]]) for i in range(b)]
    expected = sum(terms) / (b * t) + sum(final) / b           # ignored step stays in the denominator
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_bad_inputs_raise_value_error():
    with pytest.raises(ValueError, match=r"\(B, T, K\)"):
        anticipation_loss(torch.randn(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="target"):
        anticipation_loss(torch.randn(2, 3, 5), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="< K=5"):
        anticipation_loss(torch.randn(2, 3, 5), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="integer"):
        anticipation_loss(torch.randn(2, 3, 5), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="labels"):
        dense_next_step_loss(torch.randn(2, 3, 5), torch.zeros(2, 3, dtype=torch.long))
