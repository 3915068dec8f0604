"""Naive references for the recurrent / video-prediction tests, written for clarity with loops.

Used only by tests, to check lecturekit's vectorised code against independent
implementations (numpy or explicit Python loops, no lecturekit import):

* ``ballas_gru`` / ``cho_gru``: GRU steps on vectors written from the equations;
* ``recall_channels_last``: E3D-LSTM's RECALL with explicit per-location channel-vector
  tokens (the official TF layout, channels last), one query token at a time;
* ``recall_openstl_reshape``: the same attention with OpenSTL's channels-first reshape (no
  permute) — the quirk a test must be able to tell apart;
* ``ssim_naive``: Wang et al.'s SSIM of one 2-D image pair with a loop over every valid window.
"""

from __future__ import annotations

import math

import numpy as np


def _sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def ballas_gru(xs, W, U, bw, bu, h0=None):
    """Ballas et al. Eq. 4-7 on a sequence xs (T, I); W (3H, I), U (3H, H) stacked (r, z, n).

    r = σ(W_r x + b_r + U_r h + c_r), z likewise,
    h~ = tanh(W_n x + b_n + U_n (r ⊙ h) + c_n),  h' = (1 − z) ⊙ h + z ⊙ h~.  Returns (T, H).
    """
    H = U.shape[1]
    h = np.zeros(H) if h0 is None else h0
    out = []
    for x in xs:
        a = W @ x + bw
        r = _sig(a[:H] + U[:H] @ h + bu[:H])
        z = _sig(a[H:2 * H] + U[H:2 * H] @ h + bu[H:2 * H])
        cand = np.tanh(a[2 * H:] + U[2 * H:] @ (r * h) + bu[2 * H:])
        h = (1 - z) * h + z * cand
        out.append(h)
    return np.stack(out)


def cho_gru(xs, B, A, b, h0=None):
    """The lecture slide's GRU (Cho et al. 2014) on xs (T, I); B (3H, I), A (3H, H), stacked (r, u, s).

    r = σ(A_r h + B_r x + b_r), u = σ(A_u h + B_u x + b_u), s = tanh(A_s (r ⊙ h) + B_s x + b_s),
    h' = u ⊙ h + (1 − u) ⊙ s.  Returns (T, H).
    """
    H = A.shape[1]
    h = np.zeros(H) if h0 is None else h0
    out = []
    for x in xs:
        bx = B @ x + b
        r = _sig(A[:H] @ h + bx[:H])
        u = _sig(A[H:2 * H] @ h + bx[H:2 * H])
        s = np.tanh(A[2 * H:] @ (r * h) + bx[2 * H:])
        h = u * h + (1 - u) * s
        out.append(h)
    return np.stack(out)


def recall_channels_last(query, history):
    """RECALL with per-location tokens. query (B, C, T, H, W), history (B, N, C, T, H, W) numpy.

    Moves channels last, lists every (t, y, x) location's C-vector as a token, and for each
    query token computes softmax over all history tokens of the dot products, then the weighted
    sum of the history tokens. Returns (B, C, T, H, W).
    """
    Bn, C, T, H, W = query.shape
    out = np.zeros_like(query, dtype=np.float64)
    for b in range(Bn):
        keys = []
        for n in range(history.shape[1]):
            for t in range(T):
                for y in range(H):
                    for x in range(W):
                        keys.append(history[b, n, :, t, y, x].astype(np.float64))
        keys = np.stack(keys)                                            # (N·T·H·W, C)
        for t in range(T):
            for y in range(H):
                for x in range(W):
                    q = query[b, :, t, y, x].astype(np.float64)
                    logits = keys @ q
                    w = np.exp(logits - logits.max())
                    w /= w.sum()
                    out[b, :, t, y, x] = w @ keys
    return out


def recall_openstl_reshape(query, history):
    """The same attention after a channels-first reshape to (B, -1, C) WITHOUT permuting.

    A "token" is then C consecutive values of the flattened (C, T, H, W) array (runs along W
    inside one channel): the OpenSTL port's quirk. Returns (B, C, T, H, W).
    """
    Bn, C = query.shape[:2]
    q = query.reshape(Bn, -1, C).astype(np.float64)
    k = history.reshape(Bn, -1, C).astype(np.float64)
    logits = q @ k.transpose(0, 2, 1)
    w = np.exp(logits - logits.max(axis=-1, keepdims=True))
    w /= w.sum(axis=-1, keepdims=True)
    return (w @ k).reshape(query.shape)


def gaussian(size=11, sigma=1.5):
    g = [math.exp(-((i - (size - 1) / 2) ** 2) / (2 * sigma ** 2)) for i in range(size)]
    s = sum(g)
    return [v / s for v in g]


def ssim_naive(x, y, data_range=1.0, size=11, sigma=1.5):
    """Mean SSIM of two 2-D arrays: a loop over every position where the window fits."""
    g = gaussian(size, sigma)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    Hh, Ww = len(x), len(x[0])
    vals = []
    for i in range(Hh - size + 1):
        for j in range(Ww - size + 1):
            mx = my = sxx = syy = sxy = 0.0
            for a in range(size):
                for b in range(size):
                    w = g[a] * g[b]
                    xv, yv = float(x[i + a][j + b]), float(y[i + a][j + b])
                    mx += w * xv
                    my += w * yv
                    sxx += w * xv * xv
                    syy += w * yv * yv
                    sxy += w * xv * yv
            vx, vy, cxy = sxx - mx * mx, syy - my * my, sxy - mx * my
            vals.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return sum(vals) / len(vals)
