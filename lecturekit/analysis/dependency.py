"""The forward analysis of Action-Guided Attention: the action-dependency matrix and its check
against a known grammar.

Paper: T.-M. Tai et al., "Action-Guided Attention for Video Action Anticipation", ICLR 2026,
https://arxiv.org/abs/2603.01743 (the forward analysis of its poster). The model:
:mod:`lecturekit.models.aga`.

    dependency_matrix    M[a, b] = mean_h softmax_{b ∈ C}( Q^h(a) · K^h(b) / sqrt(d_h) ) with
                         Q^h(a) = head h of W_Q RMS(E_Q(onehot a)), K^h(b) likewise with W_K, E_K:
                         which candidate past action b the model links to a current action a.
                         Rows are distributions over the candidate set C. Only the weights are
                         involved (no values, no frames).
    dependency_grammar_correlation
                         Spearman's rho between M[a, b] and P(next = a | previous = b).
    top_next_actions     reading M (or the grammar in the same orientation) the other way: the k
                         actions most linked to a given past action.

Heads: the released attention averages per-head softmaxes (``reduce="mean_of_softmax"``, default);
the poster words it "average over heads, then softmax" (``reduce="softmax_of_mean"``). Both give
rows summing to 1.

The rest of the AGA analysis (the backward, counterfactual analysis and the studies over seeds)
is in :mod:`lecturekit.analysis.aga`; the anticipation benchmark (:mod:`lecturekit.analysis.anticipation`)
reports the correlation for every trained AGA.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..models.aga import AGA
from .stats import spearman


def check_action_guided(model, what: str) -> None:
    """Raise unless ``model`` is an action-guided AGA (the analyses read its action encoders)."""
    if not isinstance(model, AGA):
        raise TypeError(f"{what}: expected a lecturekit.models.aga.AGA, got {type(model).__name__}")
    if model.attention != "action":
        raise ValueError(f"{what}: expected an action-guided model (attention='action'), got attention="
                         f"{model.attention!r}; the pixel baseline has no action queries or keys")


def _ids(ids, k: int, name: str) -> Tensor:
    if ids is None:
        return torch.arange(k)
    t = torch.as_tensor(ids, dtype=torch.long).reshape(-1)
    if t.numel() == 0 or t.min() < 0 or t.max() >= k:
        raise ValueError(f"{name}: expected a non-empty list of action ids in [0, {k}), got {t.tolist()}")
    return t


class eval_mode:
    """Put a model in eval mode for a block and restore its previous mode afterwards."""

    def __init__(self, model):
        self.model, self.was = model, model.training

    def __enter__(self):
        self.model.eval()

    def __exit__(self, *exc):
        self.model.train(self.was)


@torch.no_grad()
def dependency_matrix(model: AGA, queries: Sequence[int] | Tensor | None = None,
                      candidates: Sequence[int] | Tensor | None = None, *, reduce: str = "mean_of_softmax") -> Tensor:
    """The action-dependency matrix of a trained AGA (forward analysis).

    Args:
        model: an action-guided :class:`~lecturekit.models.aga.AGA`.
        queries: current actions a (rows); default all K.
        candidates: candidate past actions b (columns, the set C); default all K.
        reduce: "mean_of_softmax" (softmax over C per head, then mean over heads) or
            "softmax_of_mean" (mean of the head scores, then softmax over C).

    Returns:
        M (len(queries), len(candidates)), every row a distribution over the candidates.

    Example:
        >>> model = AGA(feat_in=8, num_classes=6, hidden=16, heads=2)
        >>> m = dependency_matrix(model, [0, 1], [2, 3, 4])        # (2, 3)
        >>> torch.allclose(m.sum(1), torch.ones(2))
        True
    """
    check_action_guided(model, "dependency_matrix")
    if reduce not in ("mean_of_softmax", "softmax_of_mean"):
        raise ValueError(f"reduce: expected 'mean_of_softmax' or 'softmax_of_mean', got {reduce!r}")
    k = model.num_classes
    qi, ci = _ids(queries, k, "queries"), _ids(candidates, k, "candidates")
    param = next(model.parameters())
    eye = torch.eye(k, device=param.device, dtype=param.dtype)
    with eval_mode(model):
        q = model.query_encoder(eye[qi.to(param.device)])                   # (Nq, d)   E_Q(onehot a)
        c = model.key_encoder(eye[ci.to(param.device)])                     # (Nc, d)   E_K(onehot b)
        scores = model.retrieve.scores(q, c[None]).float()                  # (Nq, heads, Nc)
    if reduce == "mean_of_softmax":
        return scores.softmax(-1).mean(1)
    return scores.mean(1).softmax(-1)


def dependency_grammar_correlation(dependency, transitions, *, exclude_diagonal: bool = False) -> float:
    """How well a dependency matrix ranks action pairs like the true grammar does (Spearman).

    The dependency matrix links a current action a (row) to a candidate past action b
    (column); the grammar says how likely a follows b. So entry M[a, b] is paired with
    P(next = a | previous = b) = ``transitions[b, a]`` and the rank correlation of all pairs
    is returned.

    Args:
        dependency: M (A, A) from :func:`dependency_matrix` (all queries x all candidates), or
            an action-guided AGA whose full matrix is computed here (``reduce`` default).
        transitions: P (A, A), row b = P(next action | previous action b), e.g.
            ``ToyKitchens.transition_matrix("train")``.
        exclude_diagonal: leave out the pairs a = b (repeats).

    Returns:
        Spearman's rho over the A*A (or A*(A-1)) pairs.

    Example:
        >>> p = torch.tensor([[0.1, 0.9], [0.6, 0.4]])             # P(next | previous)
        >>> round(dependency_grammar_correlation(p.T, p), 12)        # M[a, b] = P[b, a]
        1.0
    """
    if isinstance(dependency, torch.nn.Module):
        dependency = dependency_matrix(dependency)
    m = torch.as_tensor(dependency, dtype=torch.float64).cpu()
    p = torch.as_tensor(transitions, dtype=torch.float64).cpu()
    if m.dim() != 2 or m.shape[0] != m.shape[1] or p.shape != m.shape:
        raise ValueError(f"expected a square dependency matrix (A, A) and transitions of the same shape, "
                         f"got {tuple(m.shape)} and {tuple(p.shape)}")
    pairs = p.T                                                               # pairs[a, b] = P(a | b)
    if exclude_diagonal:
        keep = ~torch.eye(m.shape[0], dtype=torch.bool)
        return spearman(m[keep], pairs[keep])
    return spearman(m, pairs)



def top_next_actions(m, past: int, k: int) -> Tensor:
    """The k actions a with the largest M[a, past], largest first; ties: the smaller id first.

    ``m`` (A, A) is in the dependency-matrix orientation: M[a, b] links a current (next) action a
    to a past action b, so the candidates for what follows ``past`` are the entries of COLUMN
    ``past``. Returns int64 (k,) action ids.

    Example:
        >>> m = torch.tensor([[0.1, 0.5], [0.7, 0.5]])       # after action 0, action 1 is likelier
        >>> top_next_actions(m, 0, 2).tolist(), top_next_actions(m, 1, 2).tolist()
        ([1, 0], [0, 1])
    """
    column = torch.as_tensor(m)[:, int(past)]
    return torch.sort(column, descending=True, stable=True).indices[: int(k)]


__all__ = ["check_action_guided", "dependency_grammar_correlation", "dependency_matrix", "eval_mode",
           "top_next_actions"]
