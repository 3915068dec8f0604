"""Classification and anticipation metrics: top-k accuracy, EK-100 class-mean top-k recall.

Reference: the official EPIC-KITCHENS-100 anticipation scorer,
``epic-kitchens/C3-Action-Anticipation/evaluate_anticipation_json_ek100.py`` (functions
``mean_topk_recall`` and ``compute_anticipation_metrics``), and D. Damen et al., "Rescaling
Egocentric Vision", IJCV 2022, https://arxiv.org/abs/2006.13256 (the EK-100 protocol).

Implements
    topk_accuracy            fraction of rows whose label is among the k best-scored classes
    mean_topk_recall         EK-100 "mean top-5 recall": per-class top-k recall, averaged over
                             the classes PRESENT in the evaluated rows (unweighted)
    per_class_topk_recall    the per-class numbers behind that mean
    epic_subsets             the 9 numbers of the leaderboard: {overall, unseen, tail} x
                             {verb, noun, action}; tail action = tail verb OR tail noun (the
                             tail lists come from :func:`lecturekit.data.ek100.tail_classes`)
    confusion_counts         (K, K) counts of true class x predicted class
    marginalize              action probabilities -> verb (or noun) probabilities
    accuracy_vs_observed     early-recognition curve: a metric per observed fraction

The submission file of the EK-100 server (make, write, read, validate, score) is in
:mod:`lecturekit.metrics.submission`.

Conventions
    * ``scores`` are ``(N, K)`` (logits or probabilities: only their order matters),
      ``labels`` are ``(N,)`` class ids. torch tensors (any device, any float dtype) and numpy
      arrays are both accepted; every metric returns a Python ``float`` in [0, 1] (the
      leaderboard prints 100 x this number).
    * Ties. The official scorer ranks with ``scores.argsort(axis=-1)[:, ::-1]``: ascending
      argsort, reversed, so among equal scores the HIGHER class id comes first. We do the same
      with a stable ascending argsort, which makes the rule exact and platform-independent: a
      constant row ranks classes K-1, K-2, ... first. That is why a chance baseline must use
      random, not constant, scores.
    * Empty subsets (no unseen rows, no tail rows) give ``nan`` in :func:`epic_subsets`; the
      official scorer would fail there. Every other function raises ``ValueError`` on empty
      input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ..data.ek100 import class_ids


# --------------------------------------------------------------------------- input handling
def _scores_np(scores, name: str = "scores") -> np.ndarray:
    """(N, K) scores as a float64 numpy array (torch tensors are detached and moved to CPU)."""
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (N, K), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty (N, K) array, got shape {arr.shape}")
    return arr


def _labels_np(labels, n: int | None = None, num_classes: int | None = None, name: str = "labels") -> np.ndarray:
    """(N,) integer labels as an int64 numpy array, checked against N and K."""
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    arr = class_ids(labels, name)
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} labels (one per row of scores), got {arr.shape[0]}")
    if num_classes is not None and arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(
            f"{name}: class ids must lie in [0, {num_classes}) (K={num_classes} score columns), "
            f"got min {arr.min()} and max {arr.max()}"
        )
    return arr


def _mask_np(mask, n: int, name: str) -> np.ndarray:
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    arr = np.asarray(mask)
    if arr.shape != (n,) or arr.dtype != np.bool_:
        raise ValueError(f"{name}: expected a boolean mask of shape ({n},), got {arr.dtype} {arr.shape}")
    return arr


# --------------------------------------------------------------------------- ranking
def topk_ranks(scores, k: int) -> np.ndarray:
    """The k best classes per row, best first, ties broken as the official scorer: ``(N, k)``.

    >>> topk_ranks(np.array([[0.1, 0.5, 0.5, 0.2]]), 3).tolist()
    [[2, 1, 3]]
    """
    s = _scores_np(scores)
    if not 1 <= k:
        raise ValueError(f"k must be >= 1, got {k}")
    order = np.argsort(s, axis=1, kind="stable")[:, ::-1]  # descending; equal scores: high id first
    return order[:, :k]


def topk_hits(scores, labels, k: int = 5) -> np.ndarray:
    """Boolean ``(N,)``: is ``labels[i]`` among the ``k`` best-scored classes of row ``i``?"""
    s = _scores_np(scores)
    y = _labels_np(labels, s.shape[0], s.shape[1])
    return (topk_ranks(s, k) == y[:, None]).any(axis=1)


def topk_accuracy(scores, labels, k: int = 1) -> float:
    """Top-k accuracy: the fraction of rows whose label is among the k best-scored classes.

    Args:
        scores: ``(N, K)`` logits or probabilities.
        labels: ``(N,)`` class ids in ``[0, K)``.
        k: how many ranked classes count as a hit.

    >>> topk_accuracy(np.array([[0.9, 0.1], [0.8, 0.2]]), np.array([0, 1]), k=1)
    0.5
    """
    return float(topk_hits(scores, labels, k).mean())


def per_class_topk_recall(scores, labels, k: int = 5) -> dict[int, float]:
    """Top-k recall of every class present in ``labels``: ``{class id: hits / count}``."""
    return _per_class_recall(topk_hits(scores, labels, k), _labels_np(labels))


def _per_class_recall(hits: np.ndarray, y: np.ndarray) -> dict[int, float]:
    """{class: mean of hits over the rows of that class} for the classes present in y."""
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    per_class_hits = np.bincount(inverse, weights=hits.astype(np.float64), minlength=len(classes))
    return {int(c): float(h / n) for c, h, n in zip(classes, per_class_hits, counts)}


def mean_topk_recall(scores, labels, k: int = 5, classes: Sequence[int] | None = None) -> float:
    """Class-mean top-k recall, exactly as the official EK-100 anticipation scorer.

    For every class ``c`` that occurs in ``labels``: the fraction of rows labelled ``c`` whose
    label is among the ``k`` best-scored classes; then the unweighted mean over those classes.
    Classes that never occur in ``labels`` do not enter the mean (a class absent from a subset
    cannot be recalled). With ``classes`` given, the mean runs over ``classes ∩ present``
    (RULSTM's many-shot variant of EK-55); rows of other classes are simply ignored.

    Args:
        scores: ``(N, K)`` logits or probabilities.
        labels: ``(N,)`` class ids.
        k: 5 on the leaderboard.
        classes: optional subset of class ids to average over.

    Raises:
        ValueError: on bad shapes, or when no class is left to average over.

    >>> s = np.eye(6)[[0, 0, 0, 5]]            # rows 0-2 score class 0 best, row 3 class 5
    >>> mean_topk_recall(s, np.array([0, 0, 0, 1]), k=1)   # class 0: 3/3, class 1: 0/1
    0.5
    """
    recalls = per_class_topk_recall(scores, labels, k)
    if classes is not None:
        wanted = {int(c) for c in (classes.tolist() if hasattr(classes, "tolist") else classes)}
        recalls = {c: r for c, r in recalls.items() if c in wanted}
    if not recalls:
        raise ValueError("mean_topk_recall: none of the requested classes occurs in labels")
    return float(np.mean(list(recalls.values())))


# --------------------------------------------------------------------------- confusion counts
def confusion_counts(labels, predictions, num_classes: int | None = None) -> np.ndarray:
    """Confusion counts ``(K, K)``: row = true class, column = predicted class.

    ``predictions`` are class ids ``(N,)`` or scores ``(N, K)`` (the arg-max is the prediction);
    ``K`` is ``num_classes``, else the score columns, else the largest id + 1.

    >>> confusion_counts(np.array([0, 1, 1]), np.array([0, 0, 1])).tolist()
    [[1, 0], [1, 1]]
    """
    def as_array(x):
        if isinstance(x, torch.Tensor):
            x = x.detach().to("cpu")
            return (x.float() if x.dtype in (torch.bfloat16, torch.float16) else x).numpy()
        return np.asarray(x)

    y = as_array(labels).astype(np.int64).ravel()
    p = as_array(predictions)
    if p.ndim == 2:  # scores (N, K) -> predicted class
        num_classes = num_classes or p.shape[1]
        p = p.argmax(1)
    p = p.astype(np.int64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels and predictions must have the same length, got {y.shape} and {p.shape}")
    k = int(num_classes or (max(y.max(initial=0), p.max(initial=0)) + 1))
    if y.size and (y.min() < 0 or p.min() < 0 or y.max() >= k or p.max() >= k):
        raise ValueError(f"class ids must lie in [0, {k})")
    return np.bincount(y * k + p, minlength=k * k).reshape(k, k)


# --------------------------------------------------------------------------- EK-100 subsets
def epic_subsets(
    verb_scores,
    noun_scores,
    action_scores,
    verb_labels,
    noun_labels,
    action_labels,
    *,
    tail_verbs: Sequence[int],
    tail_nouns: Sequence[int],
    unseen=None,
    k: int = 5,
) -> dict[str, dict[str, float]]:
    """The 9 numbers of the EK-100 anticipation leaderboard (fractions, not percent).

    Rows are filtered, then :func:`mean_topk_recall` is recomputed over the classes present in
    each filtered set:

    * ``overall``: all rows;
    * ``unseen``: rows where ``unseen`` is True (participants absent from training);
    * ``tail``: verb metric on rows with a tail verb, noun metric on rows with a tail noun,
      action metric on rows with a tail verb OR a tail noun (union, as the official scorer).

    Args:
        verb_scores, noun_scores, action_scores: ``(N, K_verb)``, ``(N, K_noun)``, ``(N, K_action)``.
        verb_labels, noun_labels, action_labels: ``(N,)`` each; action ids index the columns of
            ``action_scores`` (any action vocabulary, e.g. RULSTM's 3,806 classes).
        tail_verbs, tail_nouns: tail class ids (see :func:`lecturekit.data.ek100.tail_classes`).
        unseen: optional boolean ``(N,)`` mask; ``None`` gives ``nan`` for the unseen row.
        k: 5 on the leaderboard.

    Returns:
        ``{"overall": {"verb", "noun", "action"}, "unseen": {...}, "tail": {...}}``; a subset with
        no rows gives ``nan``.
    """
    scores = {
        "verb": _scores_np(verb_scores, "verb_scores"),
        "noun": _scores_np(noun_scores, "noun_scores"),
        "action": _scores_np(action_scores, "action_scores"),
    }
    n = scores["verb"].shape[0]
    for t, s in scores.items():
        if s.shape[0] != n:
            raise ValueError(f"{t}_scores: expected {n} rows like verb_scores, got {s.shape[0]}")
    labels = {
        t: _labels_np(y, n, scores[t].shape[1], f"{t}_labels")
        for t, y in (("verb", verb_labels), ("noun", noun_labels), ("action", action_labels))
    }
    hits = {t: topk_hits(scores[t], labels[t], k) for t in scores}
    return _subset_table(hits, labels, tail_verbs, tail_nouns, unseen)


def _subset_table(hits, labels, tail_verbs, tail_nouns, unseen) -> dict[str, dict[str, float]]:
    """Class-mean recall of per-row hits over the overall / unseen / tail row filters."""
    n = len(labels["verb"])
    tail_v = np.isin(labels["verb"], np.asarray(list(tail_verbs), dtype=np.int64))
    tail_n = np.isin(labels["noun"], np.asarray(list(tail_nouns), dtype=np.int64))
    rows = {
        "overall": {t: np.ones(n, dtype=bool) for t in hits},
        "unseen": {t: (None if unseen is None else _mask_np(unseen, n, "unseen")) for t in hits},
        "tail": {"verb": tail_v, "noun": tail_n, "action": tail_v | tail_n},   # union for actions
    }
    out: dict[str, dict[str, float]] = {}
    for subset, masks in rows.items():
        out[subset] = {}
        for task in hits:
            m = masks[task]
            if m is None or not m.any():
                out[subset][task] = math.nan
            else:
                out[subset][task] = float(np.mean(list(_per_class_recall(hits[task][m], labels[task][m]).values())))
    return out


# --------------------------------------------------------------------------- marginalisation
def marginalize(action_probs, action_to_class, num_classes: int):
    """Sum action probabilities into verb (or noun) probabilities: ``p(v) = Σ_{a: verb(a)=v} p(a)``.

    RULSTM derives its verb and noun scores this way from the softmaxed action scores. Pass
    probabilities (softmax the logits first); the output rows sum to 1 whenever the input rows
    do. A class that no action maps to gets probability 0 (RULSTM's code gives it p(action 0),
    a harmless quirk we do not copy).

    Args:
        action_probs: ``(N, A)`` probabilities over actions (torch or numpy; the output has the
            same type, device and dtype).
        action_to_class: ``(A,)`` the verb (or noun) id of every action.
        num_classes: number of verbs (or nouns).

    Returns:
        ``(N, num_classes)`` probabilities.

    >>> marginalize(np.array([[0.5, 0.2, 0.3]]), np.array([1, 0, 1]), 2).tolist()
    [[0.2, 0.8]]
    """
    is_torch = isinstance(action_probs, torch.Tensor)
    probs = action_probs if is_torch else torch.as_tensor(np.asarray(action_probs, dtype=np.float64))
    if probs.dim() != 2:
        raise ValueError(f"action_probs: expected (N, A), got shape {tuple(probs.shape)}")
    index = torch.as_tensor(
        action_to_class.detach().cpu().numpy() if isinstance(action_to_class, torch.Tensor) else np.asarray(action_to_class),
        dtype=torch.long,
    )
    if index.shape != (probs.shape[1],):
        raise ValueError(f"action_to_class: expected shape ({probs.shape[1]},) (one id per action), got {tuple(index.shape)}")
    if index.numel() and (index.min() < 0 or index.max() >= num_classes):
        raise ValueError(f"action_to_class: ids must lie in [0, {num_classes}), got {int(index.min())}..{int(index.max())}")
    out = probs.new_zeros(probs.shape[0], num_classes)                  # (N, K_verb)
    out.index_add_(1, index.to(probs.device), probs)
    return out if is_torch else out.numpy()


# --------------------------------------------------------------------------- early recognition curve
def accuracy_vs_observed(
    scores,
    labels,
    *,
    k: int = 1,
    fractions: Sequence[float] | None = None,
    metric: str = "accuracy",
    average_pool: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Early-recognition curve: the metric of the prediction made after each observed step.

    Args:
        scores: ``(N, T, K)`` one score vector per observation step (e.g. per observed frame
            or per observed fraction of the action).
        labels: ``(N,)`` class ids.
        k: top-k.
        fractions: the observed fraction of each step; default ``(1..T)/T``.
        metric: ``"accuracy"`` (:func:`topk_accuracy`) or ``"mean_recall"``
            (:func:`mean_topk_recall`).
        average_pool: MS-LSTM's temporal average pooling: the prediction at step t is the mean
            of the softmax outputs of steps 1..t (``scores`` are then treated as logits).

    Returns:
        ``(fractions (T,), values (T,))``.
    """
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().to("cpu", torch.float64).numpy()
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 3:
        raise ValueError(f"scores: expected (N, T, K) scores per observation step, got shape {s.shape}")
    n, t, _ = s.shape
    if average_pool:
        p = np.exp(s - s.max(axis=2, keepdims=True))
        p /= p.sum(axis=2, keepdims=True)
        s = np.cumsum(p, axis=1) / np.arange(1, t + 1)[None, :, None]
    frac = np.arange(1, t + 1) / t if fractions is None else np.asarray(fractions, dtype=np.float64)
    if frac.shape != (t,):
        raise ValueError(f"fractions: expected {t} values (one per step), got shape {frac.shape}")
    fn = {"accuracy": topk_accuracy, "mean_recall": mean_topk_recall}
    if metric not in fn:
        raise ValueError(f"metric: expected one of {sorted(fn)}, got {metric!r}")
    values = np.array([fn[metric](s[:, i], labels, k=k) for i in range(t)])
    return frac, values


__all__ = [
    "accuracy_vs_observed",
    "confusion_counts",
    "epic_subsets",
    "marginalize",
    "mean_topk_recall",
    "per_class_topk_recall",
    "topk_accuracy",
    "topk_hits",
    "topk_ranks",
]
