"""Naive reference for the EK-100 metrics, written for clarity with plain Python loops.

Used only by tests, to check lecturekit.metrics.classification against an independent
implementation. Ties follow the official scorer (ascending sort, reversed: on equal scores
the higher class id ranks first); here that rule is written out as a sort key.
"""

from __future__ import annotations


def ranked_classes(row):
    """Classes of one score row, best first; equal scores: higher class id first."""
    return sorted(range(len(row)), key=lambda c: (row[c], c), reverse=True)


def topk_accuracy(scores, labels, k):
    hits = 0
    for row, y in zip(scores, labels):
        if y in ranked_classes(list(row))[:k]:
            hits += 1
    return hits / len(labels)


def mean_topk_recall(scores, labels, k):
    per_class = {}
    for row, y in zip(scores, labels):
        got, total = per_class.get(int(y), (0, 0))
        hit = int(y) in ranked_classes(list(row))[:k]
        per_class[int(y)] = (got + int(hit), total + 1)
    recalls = [got / total for got, total in per_class.values()]
    return sum(recalls) / len(recalls)


def marginalize(action_probs, action_to_class, num_classes):
    out = []
    for row in action_probs:
        acc = [0.0] * num_classes
        for a, p in enumerate(row):
            acc[int(action_to_class[a])] += float(p)
        out.append(acc)
    return out
