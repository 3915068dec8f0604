"""Naive, loop-based solutions of the exercises of notebook 11, written independently of the library
(used by tests/test_checks_nb11.py to show that a correct answer written another way passes)."""

from __future__ import annotations

import math

import torch


def _filter(x, w, b):
    """Eq. (4), position by position: σ(b + Σ_{j, dy, dx} w[0, j, dy, dx] · pooled_j(y + dy − 1, x + dx − 1))."""
    n, _, h, wd = x.shape
    w, b = w.detach().double(), b.detach().double()
    pooled = [x.double().mean(1), x.double().max(1).values]                 # mean first, then max
    out = torch.empty(n, 1, h, wd, dtype=torch.float64)
    for i in range(n):
        for y in range(h):
            for xx in range(wd):
                acc = float(b[0])
                for j in range(2):
                    for dy in range(3):
                        for dx in range(3):
                            yy, xc = y + dy - 1, xx + dx - 1
                            if 0 <= yy < h and 0 <= xc < wd:
                                acc += float(w[0, j, dy, dx]) * float(pooled[j][i, yy, xc])
                out[i, 0, y, xx] = 1.0 / (1.0 + math.exp(-acc))
    return out


def naive_statt(q, k, v, w_q, b_q, w_k, b_k):
    """Eqs. (4)-(7) slot by slot and sample by sample, in float64."""
    s_len, b_len, c, h, w = k.shape
    qd, kd, vd = q.detach().double(), k.detach().double(), v.detach().double()
    fq = _filter(qd, w_q, b_q)                                               # (B, 1, H, W)
    a = torch.zeros(b_len, c, h, w, dtype=torch.float64)
    s_maps = torch.empty(s_len, b_len, 1, h, w, dtype=torch.float64)
    t_w = torch.empty(s_len, b_len, dtype=torch.float64)
    for bi in range(b_len):
        scores = []
        for s in range(s_len):
            fk = _filter(kd[s, bi][None], w_k, b_k)[0, 0]                    # (H, W)
            q_hat = (fk * qd[bi]).sum((1, 2)) / (h * w)                      # (C,)
            for y in range(h):
                for x in range(w):
                    s_maps[s, bi, 0, y, x] = 1.0 / (1.0 + math.exp(-float((q_hat * kd[s, bi, :, y, x]).sum())))
            dot = float(((fq[bi, 0] * qd[bi]) * (fk * kd[s, bi])).sum())
            scores.append(dot / math.sqrt(c * h * w))
        top = max(scores)
        e = [math.exp(x - top) for x in scores]
        for s in range(s_len):
            t_w[s, bi] = e[s] / sum(e)
            a[bi] += t_w[s, bi] * s_maps[s, bi] * vd[s, bi]
    return a.to(q.dtype), s_maps.to(q.dtype), t_w.to(q.dtype)


def naive_push(queue, x, order):
    """A Python list as the FIFO: append the newest, pop the oldest while longer than ``order``."""
    slots = [] if queue is None else [queue[i].clone() for i in range(queue.shape[0])]
    slots.append(x.clone())
    while len(slots) > order:
        slots.pop(0)
    return torch.stack(slots)
