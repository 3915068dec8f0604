"""Naive embedded-Gaussian non-local operation (Wang et al. 2018, Eq. 1 and 3), loops over positions.

Takes plain weight matrices, not modules, so it shares no code with lecturekit:
theta_w, phi_w, g_w: (C', C) and biases (C',); w_w: (C, C') and w_b (C,); the BN after W_z is
given as an affine (scale, shift) per channel (BN in eval mode).
"""

from __future__ import annotations

import math

import torch


def _pool_1x2x2(x):
    """(C, T, H, W) -> (C, T, H//2, W//2), max over non-overlapping 2×2 windows, by loops."""
    c, t, h, w = x.shape
    out = torch.empty(c, t, h // 2, w // 2, dtype=x.dtype)
    for i in range(h // 2):
        for j in range(w // 2):
            out[:, :, i, j] = x[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].reshape(c, t, 4).max(dim=-1).values
    return out


def nonlocal_block(x, theta_w, theta_b, phi_w, phi_b, g_w, g_b, w_w, w_b, bn_scale, bn_shift,
                   subsample=True, scale=True):
    """x (B, C, T, H, W) -> z (B, C, T, H, W), one position at a time."""
    b, c, t, h, w = x.shape
    inner = theta_w.shape[0]
    out = torch.empty_like(x)
    for n in range(b):
        xs = x[n]                                             # (C, T, H, W)
        keys_src = _pool_1x2x2(xs) if subsample else xs
        queries = xs.reshape(c, -1).T                         # (M, C)
        keys = keys_src.reshape(c, -1).T                      # (M', C)
        theta = [theta_w @ q + theta_b for q in queries]
        phi = [phi_w @ k + phi_b for k in keys]
        g = [g_w @ k + g_b for k in keys]
        ys = []
        for i in range(len(queries)):
            logits = torch.stack([theta[i] @ phi[j] for j in range(len(keys))])
            if scale:
                logits = logits / math.sqrt(inner)
            weights = torch.exp(logits - logits.max())
            weights = weights / weights.sum()                 # C(x) normalisation of Eq. (1)
            y = sum(weights[j] * g[j] for j in range(len(keys)))
            ys.append((w_w @ y + w_b) * bn_scale + bn_shift + queries[i])
        out[n] = torch.stack(ys).T.reshape(c, t, h, w)
    return out
