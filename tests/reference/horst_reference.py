"""Naive references for HORST's space-time attention, written with explicit loops over the
queue slots and the pixels, and a first-order cell without any temporal branch.

They borrow the conv/GroupNorm weights of a lecturekit STATT / HORSTCell and recompute
everything else (pooling, sigmoid maps, dot products, softmax) by hand. Used only by tests.
"""

from __future__ import annotations

import math

import torch


def spatial_filter(conv, x):
    """Eq. (4) by hand: channel mean and max maps, then the borrowed 3×3 conv and a sigmoid."""
    mean = x.sum(1, keepdim=True) / x.shape[1]
    mx = x.max(1, keepdim=True).values
    return torch.sigmoid(conv(torch.cat([mean, mx], 1)))


def _slot_terms(statt, query, kv_slot):
    q = statt.q_pre(query)
    k = statt.k_pre(kv_slot)
    v = statt.v_pre(kv_slot)
    fk = spatial_filter(statt.f_k.conv, k)
    b, c, h, w = q.shape
    q_hat = (fk * q).sum((2, 3)) / (h * w)                       # (B, C)
    s_map = torch.zeros(b, 1, h, w, dtype=q.dtype)
    for y in range(h):
        for x in range(w):
            s_map[:, 0, y, x] = torch.sigmoid((q_hat * k[:, :, y, x]).sum(1))
    return q, k, v, fk, s_map


def statt_naive(statt, query, kv):
    """a_t, S maps (S, B, 1, H, W) and T weights (S, B) with loops over slots and pixels."""
    n_slots = kv.shape[0]
    values, maps, scores = [], [], []
    for s in range(n_slots):
        q, k, v, fk, s_map = _slot_terms(statt, query, kv[s])
        fq = spatial_filter(statt.f_q.conv, q)
        b = q.shape[0]
        score = ((fq * q).reshape(b, -1) * (fk * k).reshape(b, -1)).sum(1) / math.sqrt(q[0].numel())
        values.append(v * s_map)
        maps.append(s_map)
        scores.append(score)
    scores = torch.stack(scores)                                  # (S, B)
    e = torch.exp(scores - scores.max(0).values)
    weights = e / e.sum(0)
    a = sum(weights[s][:, None, None, None] * values[s] for s in range(n_slots))
    return a, torch.stack(maps), weights


def first_order_sequence(cell, xs):
    """A first-order recurrence on the state (h_{t-1}, a_{t-1}): a_t = S ⊙ V, no temporal softmax.

    Returns the list of o_t for the inputs xs (each (B, C_in, H, W)).
    """
    h_prev = a_prev = None
    outs = []
    for x in xs:
        h = cell.encoder(x)
        if h_prev is None:
            h_prev, a_prev = torch.zeros_like(h), torch.zeros_like(h)
        _, _, v, _, s_map = _slot_terms(cell.statt, h, torch.cat([h_prev, a_prev], 1))
        a = v * s_map
        outs.append(cell.out(torch.cat([x, a + h], 1)))
        h_prev, a_prev = h, a
    return outs
