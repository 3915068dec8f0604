"""Naive references for the MS-LSTM losses, written straight from the printed equations with
Python floats and explicit loops (t = 1..T, probabilities from an explicit softmax).

Used only by tests, as an independent check of lecturekit.losses.
"""

from __future__ import annotations

import math


def softmax(row):
    m = max(row)
    e = [math.exp(v - m) for v in row]
    s = sum(e)
    return [v / s for v in e]


def _sequence_loss(logits, label, weight_fn):
    """Σ_t Σ_k of the MS-LSTM summand with weights (w_fn(t, T) for FN, w_fp(t, T) for FP)."""
    T = len(logits)
    total = 0.0
    for t in range(1, T + 1):
        p = softmax(logits[t - 1])
        w_fn, w_fp = weight_fn(t, T)
        for k, pk in enumerate(p):
            y = 1.0 if k == label else 0.0
            if y:
                total -= w_fn * math.log(pk)
            else:
                total -= w_fp * math.log(1.0 - pk)
    return total


def anticipation_loss(batch_logits, labels, class_normalize=True):
    """Eq. (1): FN weight 1, FP weight t/T, times 1/N; mean over sequences."""
    out = []
    for logits, y in zip(batch_logits, labels):
        v = _sequence_loss(logits, y, lambda t, T: (1.0, t / T))
        out.append(v / len(logits[0]) if class_normalize else v)
    return sum(out) / len(out)


def ece_loss(batch_logits, labels):
    """Eq. (8): weight e^{-(T-t)} on both terms; mean over sequences."""
    out = [_sequence_loss(lg, y, lambda t, T: (math.exp(-(T - t)),) * 2) for lg, y in zip(batch_logits, labels)]
    return sum(out) / len(out)


def lgl_loss(batch_logits, labels):
    """Eq. (9): weight t/T on both terms; mean over sequences."""
    out = [_sequence_loss(lg, y, lambda t, T: (t / T,) * 2) for lg, y in zip(batch_logits, labels)]
    return sum(out) / len(out)
