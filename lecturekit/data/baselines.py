"""Two references for next-action anticipation that look at action labels only (no pixels).

* :func:`bayes_next_action` -- the Bayes-optimal distribution of the next action given the
  history, computed exactly from the ToyKitchens recipe grammar by forward filtering of its
  automaton (hidden: kitchen, recipes still to come, recipe and step). No model that sees only
  the past labels can beat it in expectation; it is the upper bound the course quotes.
* :class:`NGram` -- an n-gram model on past action labels with add-k smoothing, fitted on the
  training videos: n = 1 is the class prior, n = 2 "the last action alone".

The gap between them is what a long history (the latent recipe) adds; the gap between either
and a video model is what the pixels add (the hand reaching, the objects on the counter).

Both return ``(N, num_actions)`` probability arrays aligned with an anticipation view
(``ToyKitchens.anticipation``); score them with :func:`lecturekit.metrics.topk_accuracy`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

__all__ = ["NGram", "bayes_from_history", "bayes_next_action", "ngram_next_action"]


def _check_view(view):
    if getattr(view, "kind", None) != "anticipation":
        raise ValueError(f"expected an anticipation view (ToyKitchens.anticipation(...)), got {view!r}")


def bayes_from_history(world, history: Sequence[int], kitchen_prior: np.ndarray) -> np.ndarray:
    """P(next action | history) under the grammar for a kitchen prior (K,): (A,) float64."""
    g = world.grammar
    kp = np.asarray(kitchen_prior, dtype=np.float64)
    ks = np.nonzero(kp > 0)[0]
    alpha = g.initial(kp / kp.sum())[ks]
    for a in history:
        _, joint = g.next_distribution(alpha, ks)
        alpha = g.update(joint, int(a))
    return g.next_distribution(alpha, ks)[0]


def bayes_next_action(world, view, use_kitchen: bool = False) -> np.ndarray:
    """Bayes-optimal P(next action | all earlier actions of the video) for each sample.

    Args:
        world: the ``ToyKitchens`` that made ``view``.
        view: an anticipation view (its labels ``video`` and ``position`` locate each sample).
        use_kitchen: condition on the sample's kitchen too (its recipe preferences); by default
            the kitchen is unknown, with the prior = share of the split's videos per kitchen
            (the history then also reveals which kitchen it probably is).

    Returns ``(N, A)`` float64 rows summing to 1.
    """
    _check_view(view)
    g = world.grammar
    K = len(world.kitchens)
    split_videos = [v for v, s in enumerate(world.video_split) if s == view.split]
    prior = np.bincount([world.video_kitchen[v] for v in split_videos], minlength=K).astype(np.float64)
    prior /= prior.sum()
    out = np.zeros((len(view), len(world.actions)))
    vids = view.labels["video"]
    pos = view.labels["position"]
    for v in np.unique(vids):
        rows = np.nonzero(vids == v)[0]
        kp = prior
        if use_kitchen:
            kp = np.zeros(K)
            kp[world.video_kitchen[int(v)]] = 1.0
        seq = world.scripts[int(v)].action
        need = int(pos[rows].max()) + 1
        ks = np.nonzero(kp > 0)[0]  # kitchens with zero prior stay at zero: skip them
        alpha = g.initial(kp)[ks]
        preds = []
        for t in range(need):
            p, joint = g.next_distribution(alpha, ks)
            preds.append(p)
            alpha = g.update(joint, int(seq[t]))
        preds = np.stack(preds)
        out[rows] = preds[pos[rows]]
    return out


class NGram:
    """n-gram model of action sequences with add-k smoothing.

    ``P(a | c) = (count(c, a) + k) / (count(c) + k * A)`` where ``c`` is the last ``n - 1``
    actions (sequence starts padded with -1, "beginning of video"); an unseen context gives
    the uniform distribution. ``n = 1`` is the smoothed class prior.
    """

    def __init__(self, n: int = 2, k: float = 0.1, num_actions: int | None = None):
        if n < 1 or k < 0:
            raise ValueError(f"need n >= 1 and k >= 0, got n={n}, k={k}")
        self.n, self.k, self.num_actions = int(n), float(k), num_actions
        self.counts: dict[tuple, np.ndarray] = {}

    def fit(self, sequences: Sequence[Sequence[int]], num_actions: int | None = None) -> NGram:
        A = num_actions or self.num_actions
        if A is None:
            A = 1 + max((max(s) for s in sequences if len(s)), default=0)
        self.num_actions = int(A)
        counts: dict[tuple, np.ndarray] = defaultdict(lambda: np.zeros(self.num_actions))
        for seq in sequences:
            padded = [-1] * (self.n - 1) + [int(a) for a in seq]
            for t in range(self.n - 1, len(padded)):
                counts[tuple(padded[t - self.n + 1 : t])][padded[t]] += 1
        self.counts = dict(counts)
        return self

    def predict(self, histories: np.ndarray) -> np.ndarray:
        """``histories`` (N, L) action ids, most recent last, -1 = nothing -> (N, A)."""
        if self.num_actions is None:
            raise ValueError("NGram.predict before fit")
        h = np.asarray(histories, dtype=np.int64)
        if h.ndim != 2 or (self.n > 1 and h.shape[1] < self.n - 1):
            raise ValueError(f"histories must be (N, L) with L >= n - 1 = {self.n - 1}, got {h.shape}")
        A = self.num_actions
        out = np.empty((h.shape[0], A))
        for i in range(h.shape[0]):
            ctx = tuple(int(x) for x in h[i, h.shape[1] - (self.n - 1) :]) if self.n > 1 else ()
            c = self.counts.get(ctx)
            out[i] = 1.0 / A if c is None else (c + self.k) / (c.sum() + self.k * A)
        return out


def ngram_next_action(world, view, n: int = 2, k: float = 0.1, fit_split: str = "train") -> np.ndarray:
    """Fit an :class:`NGram` on the ``fit_split`` videos and predict ``view``: (N, A)."""
    _check_view(view)
    model = NGram(n, k, len(world.actions)).fit(world.action_sequences(fit_split))
    return model.predict(view.labels["history"])
