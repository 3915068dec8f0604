"""Naive, loop-based solutions of the exercises of notebook 09, written independently of the library
(used by tests/test_checks_nb09.py to show that a correct answer written another way passes)."""

from __future__ import annotations

import math

import torch


def naive_anticipation_loss(logits, target):
    """MS-LSTM Eq. (1), one sequence, step and class at a time, in float64; mean over the batch."""
    b, t_len, k = logits.shape
    total = 0.0
    for s in range(b):
        y = int(target[s])
        value = 0.0
        for t in range(1, t_len + 1):
            row = [float(v) for v in logits[s, t - 1]]
            top = max(row)
            z = sum(math.exp(v - top) for v in row)
            p = [math.exp(v - top) / z for v in row]
            for c in range(k):
                if c == y:
                    value += math.log(p[c])
                else:
                    value += (t / t_len) * math.log(1.0 - p[c])
        total += -value / k
    return torch.tensor(total / b, dtype=logits.dtype)


def naive_cam_action_features(conv5_3, cam_maps, weight, k):
    """Eqs. (2)-(3) position by position: A(x, y) = conv5_3(x, y) · max(0, Σ_l w_l^k f_l(x, y))."""
    n, c, h, w = conv5_3.shape
    out = torch.empty(n, c, h, w, dtype=torch.float64)
    for i in range(n):
        row = weight[int(k[i])].double()
        for y in range(h):
            for x in range(w):
                m = float((row * cam_maps[i, :, y, x].double()).sum())
                out[i, :, y, x] = conv5_3[i, :, y, x].double() * max(0.0, m)
    return out.to(conv5_3.dtype)
