"""Naive, loop-based solutions of the exercises of notebook 10, written independently of the library
(used by tests/test_checks_nb10.py to show that a correct answer written another way passes)."""

from __future__ import annotations

import math

import torch


def naive_mean_topk_recall(scores, labels, k):
    """EK-100 class-mean top-k recall, one row and one class at a time: a row is a hit when fewer
    than k classes rank above its label (a higher score, or an equal score and a larger id)."""
    per_class: dict[int, list[int]] = {}
    for row, y in zip(scores.tolist(), labels.tolist()):
        above = sum(1 for c, v in enumerate(row) if v > row[y] or (v == row[y] and c > y))
        per_class.setdefault(int(y), []).append(int(above < k))
    recalls = [sum(h) / len(h) for h in per_class.values()]
    return sum(recalls) / len(recalls)


def _sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


def _lstm_step(x, h, c, w_ih, w_hh, b):
    """One LSTM step on Python lists (gates i, f, g, o as in PyTorch)."""
    hid = len(h)
    z = [sum(w_ih[r][j] * x[j] for j in range(len(x))) + sum(w_hh[r][j] * h[j] for j in range(hid)) + b[r]
         for r in range(4 * hid)]
    i, f, g, o = (z[q * hid:(q + 1) * hid] for q in range(4))
    c = [_sigmoid(f[j]) * c[j] + _sigmoid(i[j]) * math.tanh(g[j]) for j in range(hid)]
    h = [_sigmoid(o[j]) * math.tanh(c[j]) for j in range(hid)]
    return h, c


def naive_rolling_unrolling(x, rolling, unrolling, w_cls, b_cls):
    """RU-LSTM in plain Python floats: roll over f_1..f_T; from the state after f_t, unroll with
    f_t repeated T - t + 1 times (0-based t); classify the last unrolled hidden state."""
    rolling = [w.tolist() for w in rolling]
    unrolling = [w.tolist() for w in unrolling]
    wc, bc = w_cls.tolist(), b_cls.tolist()
    b_size, t_len, _ = x.shape
    hid = len(rolling[1][0])
    out = []
    for s in range(b_size):
        feats = x[s].tolist()
        h, c = [0.0] * hid, [0.0] * hid
        states = []
        for t in range(t_len):
            h, c = _lstm_step(feats[t], h, c, *rolling)
            states.append((h, c))
        rows = []
        for t in range(t_len):
            hu, cu = states[t]
            for _ in range(t_len - t + 1):
                hu, cu = _lstm_step(feats[t], hu, cu, *unrolling)
            rows.append([sum(wc[q][j] * hu[j] for j in range(hid)) + bc[q] for q in range(len(bc))])
        out.append(rows)
    return torch.tensor(out, dtype=x.dtype)
