"""Naive references for the exercise checks (tests only; nothing here imports lecturekit).

Written for clarity with explicit loops, straight from the exercise texts:
* top-k accuracy: a row is a hit when fewer than k classes rank above its label; a class ranks
  above it with a higher score, or with the same score and a larger class id (the exercise's
  tie rule);
* temporal shift: channels [0, fold) at frame t take frame t+1, [fold, 2*fold) take t-1, the
  others stay; fold = C // fold_div; zeros where the source frame does not exist.
"""

from __future__ import annotations

import torch


def naive_topk_accuracy(scores, labels, k):
    n, num_classes = scores.shape
    hits = 0
    for i in range(n):
        label = int(labels[i])
        mine = float(scores[i, label])
        above = sum(1 for j in range(num_classes)
                    if float(scores[i, j]) > mine or (float(scores[i, j]) == mine and j > label))
        hits += above < k
    return hits / n


def naive_temporal_shift(x, fold_div=8):
    b, c, t, h, w = x.shape
    fold = c // fold_div
    out = torch.zeros_like(x)
    for ch in range(c):
        for f in range(t):
            src = f + 1 if ch < fold else f - 1 if ch < 2 * fold else f
            if 0 <= src < t:
                out[:, ch, f] = x[:, ch, src]
    return out
