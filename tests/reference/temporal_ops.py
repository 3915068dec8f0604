"""Naive references for the temporal operators of TSM, GSM/GSF, TSN and ATA.

Written for clarity, with explicit loops over batch, channel, frame and position, straight from
the papers and the official code (TSN: arXiv:1608.00859; TSM: arXiv:1811.08383 and
github.com/mit-han-lab/temporal-shift-module; GSM/GSF: arXiv:1912.00381, arXiv:2203.08897 and
github.com/swathikirans/GSF; ATA: arXiv:2210.00132). Used only by tests, as independent checks of
the vectorised library code. Nothing here imports lecturekit.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F


# --- TSM ------------------------------------------------------------------------------------

def naive_temporal_shift(x, fold_div=8, mode="offline"):
    """x (B, C, T, H, W). Offline: channels [0, fold) at t take t+1, [fold, 2 fold) take t-1.
    Online: channels [0, fold) take t-1. Zeros where the source frame does not exist."""
    b, c, t, h, w = x.shape
    fold = 0 if fold_div is None else c // fold_div
    out = torch.zeros_like(x)
    for n in range(b):
        for ch in range(c):
            for f in range(t):
                if mode == "offline" and ch < fold:
                    src = f + 1
                elif mode == "offline" and ch < 2 * fold:
                    src = f - 1
                elif mode == "online" and ch < fold:
                    src = f - 1
                else:
                    src = f
                if 0 <= src < t:
                    out[n, ch, f] = x[n, ch, src]
    return out


def shift_as_depthwise_conv(x, fold_div=8):
    """The offline shift as a depthwise temporal convolution with fixed kernels, zero padding 1:
    [0, 0, 1] (take t+1), [1, 0, 0] (take t-1) and [0, 1, 0] (stay) on the three channel groups."""
    b, c, t, h, w = x.shape
    fold = c // fold_div
    k = torch.zeros(c, 1, 3, 1, 1, dtype=x.dtype)
    k[:fold, 0, 2] = 1
    k[fold:2 * fold, 0, 0] = 1
    k[2 * fold:, 0, 1] = 1
    return F.conv3d(x, k, padding=(1, 0, 0), groups=c)


# --- GSM / GSF ------------------------------------------------------------------------------

def naive_gate_shift(x, gate_weight, gate_bias, bn, fuse_convs=None, ch_ratio_channels=None):
    """GSM (fuse_convs None) or GSF on x (B, C, T, H, W), from the description of the papers and the released gsf.py.

    bn: a BatchNorm3d module (applied as a function); gate conv: F.conv3d(groups=2).
    Returns (B, C, T, H, W) in the interleaved channel order, passthrough channels last.
    """
    b, c, t, h, w = x.shape
    cp = c if ch_ratio_channels is None else ch_ratio_channels
    xa = x[:, :cp]
    g = torch.tanh(F.conv3d(F.relu(bn(xa)), gate_weight, gate_bias, padding=1, groups=2))
    half = cp // 2
    z = torch.zeros_like(xa)
    for grp in range(2):
        xg = xa[:, grp * half:(grp + 1) * half]
        y = g[:, grp:grp + 1] * xg
        r = xg - y
        s = torch.zeros_like(y)
        for f in range(t):
            src = f + 1 if grp == 0 else f - 1       # group 0 left (from t+1), group 1 right (t-1)
            if 0 <= src < t:
                s[:, :, f] = y[:, :, src]
        if fuse_convs is None:
            zg = s + r
        else:
            pooled = torch.stack([s.mean(dim=(3, 4)), r.mean(dim=(3, 4))], dim=1)   # (B, 2, C/2, T)
            wgt = torch.sigmoid(fuse_convs[grp](pooled))[:, 0]                        # (B, C/2, T)
            zg = wgt[..., None, None] * s + (1 - wgt[..., None, None]) * r
        # interleave: output j of the group takes input (j % 2) * C/4 + j // 2
        for j in range(half):
            z[:, grp * half + j] = zg[:, (j % 2) * (half // 2) + j // 2]
    return torch.cat([z, x[:, cp:]], dim=1)


# --- TSN ------------------------------------------------------------------------------------

def naive_segment_centres(num_frames, segments):
    """Test-time TSN sampling: the centre frame (lower middle) of each of S equal segments."""
    seg = num_frames // segments
    return [s * seg + (seg - 1) // 2 for s in range(segments)]


# --- ATA ------------------------------------------------------------------------------------

def brute_force_assignment(sim):
    """argmax over all permutations π of Σ_p sim[p, π(p)] (tiny P only)."""
    p = sim.shape[0]
    best, best_val = None, -math.inf
    for perm in itertools.permutations(range(p)):
        val = sum(sim[i, perm[i]].item() for i in range(p))
        if val > best_val:
            best, best_val = perm, val
    return list(best)


def naive_ata_temporal(x, norm, attn):
    """ATA's temporal layer for x (B, T, P, D), written with loops and brute-force matching.

    1. h = LN(x); chain: frame 0 as is; frame t+1 matched to the ALIGNED frame t by cosine
       similarity, one-to-one (brute force); 2. attention along each trajectory (one sequence at
       a time through ``attn``); 3. every output returns to its own token, plus the residual.
    """
    b, t, p, d = x.shape
    out = x.clone()
    h = norm(x)
    for n in range(b):
        perms = [list(range(p))]
        for f in range(1, t):
            prev = torch.stack([h[n, f - 1, perms[-1][i]] for i in range(p)])
            sim = torch.zeros(p, p)
            for i in range(p):
                for j in range(p):
                    sim[i, j] = F.cosine_similarity(prev[i], h[n, f, j], dim=0)
            perms.append(brute_force_assignment(sim))
        for i in range(p):
            seq = torch.stack([h[n, f, perms[f][i]] for f in range(t)])[None]    # (1, T, D)
            z = attn(seq, seq, seq, need_weights=False)[0][0]                    # (T, D)
            for f in range(t):
                out[n, f, perms[f][i]] = x[n, f, perms[f][i]] + z[f]
    return out
