"""Naive loop solutions of exercises 05.1, 05.2, 06.1 and 06.2, written independently of lecturekit."""

from __future__ import annotations

import torch


def naive_difference_stack(video):
    """(B, C, T, H, W) -> (B, C*(T-1), H, W); channel k*C + c = x[:, c, k+1] - x[:, c, k]."""
    b, c, t, h, w = video.shape
    out = video.new_zeros(b, c * (t - 1), h, w)
    for k in range(t - 1):
        for ch in range(c):
            out[:, k * c + ch] = video[:, ch, k + 1] - video[:, ch, k]
    return out


def naive_segment_indices(num_frames, segments, snippet=1):
    """Test-time TSN sampling, one row per segment."""
    seg_len = num_frames // segments
    rows = []
    for s in range(segments):
        room = seg_len - snippet + 1
        start = s * seg_len + (room - 1) // 2
        rows.append([start + i for i in range(snippet)])
    return torch.tensor(rows, dtype=torch.long)


def naive_greedy_match(prev, nxt):
    """Greedy one-to-one matching by cosine similarity, one item at a time, plain Python loops."""
    n, p, _ = prev.shape
    out = torch.empty(n, p, dtype=torch.long)
    for i in range(n):
        a = prev[i] / prev[i].norm(dim=-1, keepdim=True).clamp_min(1e-12)
        b = nxt[i] / nxt[i].norm(dim=-1, keepdim=True).clamp_min(1e-12)
        sim = (a @ b.T).tolist()
        free_rows, free_cols = set(range(p)), set(range(p))
        while free_rows:
            best = max(((sim[r][c], -r, -c) for r in free_rows for c in free_cols))
            r, c = -best[1], -best[2]
            out[i, r] = c
            free_rows.remove(r)
            free_cols.remove(c)
    return out


def naive_trajectories(tokens):
    """Chained alignment: frame t+1 matched to the ALIGNED frame t; perm[:, 0] = identity."""
    b, t, p, d = tokens.shape
    perms = [torch.arange(p).expand(b, p)]
    prev = tokens[:, 0]
    for i in range(1, t):
        perm = naive_greedy_match(prev, tokens[:, i])
        perms.append(perm)
        prev = torch.stack([tokens[j, i][perm[j]] for j in range(b)])
    return torch.stack(perms, dim=1)


def naive_segment_consensus(scores):
    """(B, S, K) -> (B, K): the average of the segments' scores, summed one segment at a time."""
    b, s, k = scores.shape
    total = scores.new_zeros(b, k)
    for i in range(s):
        total = total + scores[:, i]
    return total / s
