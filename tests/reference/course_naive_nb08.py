"""Naive, loop-based solutions of the exercises of notebook 08, written independently of the library
(used by tests/test_checks_nb08.py to show that a correct answer written another way passes)."""

from __future__ import annotations

import math

import torch


def naive_recall_update(r, c_prev, history, weight, bias, eps=1e-5):
    """LayerNorm(C_{t-1} + softmax(R Cᵀ) C), one query location at a time, in float64."""
    b, c, t, h, w = r.shape
    n = history.shape[1]
    out = torch.empty(b, c, t, h, w, dtype=torch.float64)
    for s in range(b):
        keys = [history[s, k, :, i, y, x].double() for k in range(n) for i in range(t)
                for y in range(h) for x in range(w)]                      # the n·τ'·H·W memory tokens
        mem = torch.stack(keys)                                           # (M, C)
        for i in range(t):
            for y in range(h):
                for x in range(w):
                    q = r[s, :, i, y, x].double()
                    logits = torch.stack([q @ m for m in mem])
                    a = torch.exp(logits - logits.max())
                    a = a / a.sum()
                    out[s, :, i, y, x] = c_prev[s, :, i, y, x].double() + (a[:, None] * mem).sum(0)
        z = out[s]
        mean = z.mean()
        var = ((z - mean) ** 2).mean()
        out[s] = (z - mean) / math.sqrt(var.item() + eps) * weight.double().view(c, 1, 1, 1) \
            + bias.double().view(c, 1, 1, 1)
    return out.to(r.dtype)


def naive_ssim_frame(x, y, size=11, sigma=1.5, k1=0.01, k2=0.03, data_range=1.0):
    """Mean SSIM over every position where the size×size Gaussian window fits, window by window."""
    x, y = x.double(), y.double()
    half = (size - 1) / 2
    g = torch.tensor([math.exp(-((i - half) ** 2) / (2 * sigma ** 2)) for i in range(size)], dtype=torch.float64)
    win = torch.outer(g, g) / g.sum() ** 2
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    vals = []
    for i in range(x.shape[0] - size + 1):
        for j in range(x.shape[1] - size + 1):
            px, py = x[i:i + size, j:j + size], y[i:i + size, j:j + size]
            mx, my = (win * px).sum(), (win * py).sum()
            vx, vy = (win * (px - mx) ** 2).sum(), (win * (py - my) ** 2).sum()
            cxy = (win * (px - mx) * (py - my)).sum()
            vals.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))
    return torch.stack(vals).mean()
