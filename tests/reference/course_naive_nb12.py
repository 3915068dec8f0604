"""Naive, loop-based solutions of the exercises of notebook 12, written independently of the library
(used by tests/test_checks_nb12.py to show that a correct answer written another way passes)."""

from __future__ import annotations

import math

import torch


def _layer_norm(x):
    """(x − mean) / sqrt(var + 1e-5) over one vector (PyTorch's LayerNorm at unit gain, zero bias)."""
    m = sum(x) / len(x)
    v = sum((a - m) ** 2 for a in x) / len(x)
    return [(a - m) / math.sqrt(v + 1e-5) for a in x]


def _matvec(w, x):
    return [sum(w[i][j] * x[j] for j in range(len(x))) for i in range(len(w))]


def _rms(x):
    r = math.sqrt(sum(a * a for a in x) / len(x))
    return [a / r for a in x]


def _encode(x, w):
    """E(x) = W ReLU(LN(x))."""
    return _matvec(w, [max(0.0, a) for a in _layer_norm(x)])


def naive_action_guided_attention(q, keys, values, frame, w_eq, w_ek, w_q, w_k, w_v, w_g1, w_g2, heads):
    """One read of AGA's memory, sample by sample, head by head, slot by slot, in Python floats."""
    lists = [t.detach().double().tolist() for t in (q, keys, values, frame, w_eq, w_ek, w_q, w_k, w_v, w_g1, w_g2)]
    q_, keys_, values_, frame_, w_eq_, w_ek_, w_q_, w_k_, w_v_, w_g1_, w_g2_ = lists
    b_len, s_len = len(keys_), len(keys_[0])
    hidden = len(frame_[0])
    dh = hidden // heads
    zs, attn, gates = [], [], []
    for b in range(b_len):
        qv = _matvec(w_q_, _rms(_encode(q_[b], w_eq_)))
        ks = [_matvec(w_k_, _rms(_encode(keys_[b][s], w_ek_))) for s in range(s_len)]
        vs = [_matvec(w_v_, _rms(values_[b][s])) for s in range(s_len)]
        c = [0.0] * hidden
        weights = []
        for h in range(heads):
            lo, hi = h * dh, (h + 1) * dh
            scores = [sum(qv[i] * ks[s][i] for i in range(lo, hi)) / math.sqrt(dh) for s in range(s_len)]
            top = max(scores)
            e = [math.exp(x - top) for x in scores]
            a = [x / sum(e) for x in e]
            weights.append(a)
            for s in range(s_len):
                for i in range(lo, hi):
                    c[i] += a[s] * vs[s][i]
        norm = math.sqrt(sum(x * x for x in c))
        hist = [x / norm for x in c]
        u = frame_[b] + hist                                                  # [e ; h~]
        mid = [max(0.0, x) for x in _matvec(w_g1_, u)]
        g = [1.0 / (1.0 + math.exp(-x)) for x in _matvec(w_g2_, mid)]
        zs.append([g[i] * hist[i] + (1 - g[i]) * frame_[b][i] for i in range(hidden)])
        attn.append(weights)
        gates.append(g)
    dt = q.dtype
    return torch.tensor(zs, dtype=dt), torch.tensor(attn, dtype=dt), torch.tensor(gates, dtype=dt)


def naive_top_next_actions(m, past, k):
    """Pick the best remaining action k times (the first, i.e. smallest, id among equal values)."""
    column = [float(m[a][past]) for a in range(len(m))]
    chosen = []
    for _ in range(k):
        best = None
        for a, v in enumerate(column):
            if a not in chosen and (best is None or v > column[best]):
                best = a
        chosen.append(best)
    return torch.tensor(chosen, dtype=torch.int64)
