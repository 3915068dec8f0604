"""Post-training analysis of Action-Guided Attention (AGA): what the trained attention learned.

Paper: T.-M. Tai et al., "Action-Guided Attention for Video Action Anticipation", ICLR 2026,
https://arxiv.org/abs/2603.01743 (the forward and backward analyses of its poster). The model:
:mod:`lecturekit.models.aga`.

Because AGA's queries and keys are action vectors, its attention can be asked questions without
any video:

    dependency_matrix    forward analysis. M[a, b] = mean_h softmax_{b ∈ C}( Q^h(a) · K^h(b) / sqrt(d_h) )
                         with Q^h(a) = head h of W_Q RMS(E_Q(onehot a)), K^h(b) likewise with
                         W_K, E_K: which candidate past action b the model links to a current
                         action a. Rows are distributions over the candidate set C. Only the
                         weights are involved (no values, no frames).
    counterfactual_past  backward analysis. For one real clip, the past-prediction slots that
                         step t reads (its keys, and through the EMA its query) become free
                         variables; gradient descent makes the frozen model predict a chosen
                         action at t; the top-k actions of the optimised slots are "the past that
                         would have led there". Frame embeddings (values) and e_t stay fixed.
    dependency_grammar_correlation
                         the check of the forward analysis against a known grammar: Spearman's
                         rho between M[a, b] and P(next = a | previous = b).
    counterfactual_success
                         the backward analysis over many windows: how often the search reaches
                         its target (with :func:`non_degenerate_windows` to pick the windows).
    gate_trace           the gate g_t averaged over the H channels at every step: near 1 the
                         state is taken from the history, near 0 from the current frame.

Choices where the sources are silent or disagree (documented, not published facts)
    - heads: the released attention averages per-head softmaxes (``reduce="mean_of_softmax"``,
      default); the poster words it "average over heads, then softmax"
      (``reduce="softmax_of_mean"``). Both give rows summing to 1.
    - counterfactual: slots start from the original logits; Adam with step size ``lr``; the query
      is re-derived from the optimised slots by the model's own query rule (EMA), starting from
      the query state before the first slot; the search stops when the model predicts the target
      and the top-k of every slot has not changed for ``patience`` iterations (the paper's
      "until the sequence does not change"), or after ``iters`` iterations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.aga import AGA


def _check_action_guided(model, what: str) -> None:
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


class _eval_mode:
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
    _check_action_guided(model, "dependency_matrix")
    if reduce not in ("mean_of_softmax", "softmax_of_mean"):
        raise ValueError(f"reduce: expected 'mean_of_softmax' or 'softmax_of_mean', got {reduce!r}")
    k = model.num_classes
    qi, ci = _ids(queries, k, "queries"), _ids(candidates, k, "candidates")
    param = next(model.parameters())
    eye = torch.eye(k, device=param.device, dtype=param.dtype)
    with _eval_mode(model):
        q = model.query_encoder(eye[qi.to(param.device)])                   # (Nq, d)   E_Q(onehot a)
        c = model.key_encoder(eye[ci.to(param.device)])                     # (Nc, d)   E_K(onehot b)
        scores = model.retrieve.scores(q, c[None]).float()                  # (Nq, heads, Nc)
    if reduce == "mean_of_softmax":
        return scores.softmax(-1).mean(1)
    return scores.mean(1).softmax(-1)


@dataclass
class Counterfactual:
    """Result of :func:`counterfactual_past` (one clip, one steered step)."""

    target: int
    step: int                      # the time step whose prediction was steered
    slot_steps: list[int]          # the time step of every memory slot
    before_topk: Tensor            # (S', k) top-k actions of the original slots
    after_topk: Tensor             # (S', k) top-k actions of the optimised slots
    prediction_before: int
    prediction_after: int
    target_prob_before: float
    target_prob_after: float
    iterations: int
    slots: Tensor                  # (S', K) the optimised slot logits
    losses: list[float] = field(default_factory=list)

    @property
    def reached(self) -> bool:
        """Did the model end up predicting the target (top-1)?"""
        return self.prediction_after == self.target

    def table(self, names: Sequence[str] | None = None) -> str:
        """A text table: one row per slot, original vs counterfactual top-k actions."""
        def name(i: int) -> str:
            return names[i] if names is not None else str(i)
        lines = [f"step {self.step}: predicted {name(self.prediction_before)} -> "
                 f"{name(self.prediction_after)} (target {name(self.target)}, "
                 f"p {self.target_prob_before:.3f} -> {self.target_prob_after:.3f}, {self.iterations} iterations)"]
        for s, b, a in zip(self.slot_steps, self.before_topk.tolist(), self.after_topk.tolist()):
            lines.append(f"  t={s:3d}  {' / '.join(map(name, b))}  ->  {' / '.join(map(name, a))}")
        return "\n".join(lines)


def _predict(model: AGA, memory, slots: Tensor) -> Tensor:
    """Step t's logits (1, K) when the past predictions are ``slots`` (1, S', K)."""
    q = memory.query_start
    for j in range(slots.shape[1]):
        q = model.update_query(q, slots[:, j])                               # the EMA over the slots
    return model.read(q, slots, memory.values, memory.frame).logits


def counterfactual_past(model: AGA, clip: Tensor, target: int, *, step: int = -1, iters: int = 500,
                        lr: float = 0.1, k: int = 5, patience: int = 20) -> Counterfactual:
    """Optimise the past predictions a step reads until the frozen model predicts ``target``.

    Args:
        model: an action-guided AGA (weights are not changed; eval mode during the search).
        clip: one feature sequence (T, D) or (1, T, D).
        target: the action the model should predict at ``step``.
        step: the time step to steer (>= 1; default the last, i.e. the anticipation).
        iters: the most gradient steps.
        lr: Adam's step size on the slot logits.
        k: how many top actions to report per slot.
        patience: stop once the target is predicted and every slot's top-k has been stable this long.
    """
    _check_action_guided(model, "counterfactual_past")
    if clip.dim() == 2:
        clip = clip[None]
    if clip.dim() != 3 or clip.shape[0] != 1:
        raise ValueError(f"clip: expected one feature sequence (T, D) or (1, T, D), got shape {tuple(clip.shape)}")
    if not 0 <= int(target) < model.num_classes:
        raise ValueError(f"target: expected an action id in [0, {model.num_classes}), got {target}")
    target = int(target)
    with _eval_mode(model):
        with torch.no_grad():
            memory = model.memory_at(clip, step)
            logits = _predict(model, memory, memory.keys)
        t_step = memory.start + memory.keys.shape[1]
        before_prob = logits.float().softmax(-1)[0]
        slots = memory.keys.detach().clone().float().requires_grad_(True)   # (1, S', K)
        opt = torch.optim.Adam([slots], lr=lr)
        goal = torch.tensor([target], device=slots.device)
        losses, last_topk, stable, it = [], None, 0, 0
        for it in range(1, iters + 1):
            loss = F.cross_entropy(_predict(model, memory, slots).float(), goal)
            (grad,) = torch.autograd.grad(loss, slots)                       # model weights stay untouched
            slots.grad = grad
            opt.step()
            losses.append(float(loss.detach()))
            with torch.no_grad():
                topk = slots[0].topk(k, dim=-1).indices
                hit = int(_predict(model, memory, slots).argmax(-1)) == target
            stable = stable + 1 if last_topk is not None and torch.equal(topk, last_topk) else 0
            last_topk = topk
            if hit and stable >= patience:
                break
        with torch.no_grad():
            after_prob = _predict(model, memory, slots).float().softmax(-1)[0]
    return Counterfactual(
        target=target, step=t_step,
        slot_steps=list(range(memory.start, t_step)),
        before_topk=memory.keys[0].topk(k, dim=-1).indices.cpu(),
        after_topk=slots[0].detach().topk(k, dim=-1).indices.cpu(),
        prediction_before=int(before_prob.argmax()), prediction_after=int(after_prob.argmax()),
        target_prob_before=float(before_prob[target]), target_prob_after=float(after_prob[target]),
        iterations=it, slots=slots[0].detach(), losses=losses,
    )


# ----------------------------------------------------------------------------- checkable claims
def _rank(x: Tensor) -> Tensor:
    """Ranks 0..n-1 of a 1-D float64 tensor, ties given their average rank."""
    order = torch.argsort(x, stable=True)
    ranks = torch.empty_like(x)
    ranks[order] = torch.arange(x.numel(), dtype=x.dtype)
    _, inverse, counts = torch.unique(x, return_inverse=True, return_counts=True)
    sums = torch.zeros(counts.numel(), dtype=x.dtype).index_add_(0, inverse, ranks)
    return (sums / counts)[inverse]


def spearman(x, y) -> float:
    """Spearman's rank correlation of two equally long sets of numbers (ties: average ranks).

    Args:
        x, y: arrays or tensors of any shape with the same number of elements (flattened).

    Returns:
        rho in [-1, 1] (Pearson correlation of the ranks); NaN when either side is constant.
    """
    a = torch.as_tensor(x, dtype=torch.float64).reshape(-1).cpu()
    b = torch.as_tensor(y, dtype=torch.float64).reshape(-1).cpu()
    if a.numel() != b.numel() or a.numel() < 2:
        raise ValueError(f"spearman: expected two sets of the same size >= 2, got {a.numel()} and {b.numel()}")
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise ValueError("spearman: expected finite values")
    ra, rb = _rank(a), _rank(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = ra.norm() * rb.norm()
    return float("nan") if denom == 0 else float((ra @ rb) / denom)


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
        >>> dependency_grammar_correlation(p.T, p)                   # M[a, b] = P[b, a]
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


@dataclass
class CounterfactualSummary:
    """Result of :func:`counterfactual_success` over many windows."""

    windows: list[int]             # indices (into the given features) of the searched windows
    targets: list[int]             # the target of each searched window
    results: list[Counterfactual]  # one search per window

    @property
    def reached(self) -> list[bool]:
        """Per searched window: did the search make the model predict its target?"""
        return [r.reached for r in self.results]

    @property
    def fraction(self) -> float:
        """Share of the searched windows whose target was reached (NaN when none was searched)."""
        return sum(self.reached) / len(self.results) if self.results else float("nan")


def non_degenerate_windows(predictions, targets, observed=None) -> Tensor:
    """Windows where steering the prediction to the target is a real question: (N,) bool.

    A window is degenerate when the model already predicts the target (nothing to change) or
    when it shows no frame of the video (``observed`` False: a black or padded window).

    Args:
        predictions: (N,) the model's top-1 action per window.
        targets: (N,) the chosen target action per window.
        observed: (N,) bool/0-1, True where the window shows the video; default all True.
    """
    pred = torch.as_tensor(predictions).reshape(-1)
    tgt = torch.as_tensor(targets).reshape(-1)
    if pred.shape != tgt.shape:
        raise ValueError(f"predictions and targets: expected the same length, got {pred.numel()} and {tgt.numel()}")
    keep = pred != tgt
    if observed is not None:
        obs = torch.as_tensor(observed).reshape(-1)
        if obs.shape != pred.shape:
            raise ValueError(f"observed: expected {pred.numel()} entries, got {obs.numel()}")
        keep &= obs.bool()
    return keep


def counterfactual_success(model: AGA, features: Tensor, targets, *, mask=None, max_windows: int | None = None,
                           **search) -> CounterfactualSummary:
    """Run :func:`counterfactual_past` on many windows and count how often the target is reached.

    Args:
        model: an action-guided AGA (frozen; eval mode during the searches).
        features: (N, T, D) the windows' feature sequences, T >= 2.
        targets: (N,) the action to steer each window's last step to.
        mask: (N,) bool, the windows to search (e.g. :func:`non_degenerate_windows`); default all.
        max_windows: search at most this many of the selected windows (the first ones).
        **search: passed to :func:`counterfactual_past` (``iters``, ``lr``, ``k``, ``patience``).

    Returns:
        A :class:`CounterfactualSummary` (``fraction`` = share of searched windows reached).
    """
    _check_action_guided(model, "counterfactual_success")
    if features.dim() != 3 or features.shape[1] < 2:
        raise ValueError(f"features: expected (N, T, D) with T >= 2, got shape {tuple(features.shape)}")
    n = features.shape[0]
    tgt = torch.as_tensor(targets, dtype=torch.long).reshape(-1)
    if tgt.numel() != n:
        raise ValueError(f"targets: expected {n} action ids (one per window), got {tgt.numel()}")
    keep = torch.ones(n, dtype=torch.bool) if mask is None else torch.as_tensor(mask).reshape(-1).bool().cpu()
    if keep.numel() != n:
        raise ValueError(f"mask: expected {n} entries (one per window), got {keep.numel()}")
    if max_windows is not None and max_windows < 1:
        raise ValueError(f"max_windows: expected >= 1 or None, got {max_windows}")
    idx = torch.nonzero(keep).reshape(-1).tolist()[:max_windows]
    results = [counterfactual_past(model, features[i], int(tgt[i]), **search) for i in idx]
    return CounterfactualSummary(idx, [int(tgt[i]) for i in idx], results)


@torch.no_grad()
def gate_trace(model: AGA, x: Tensor) -> Tensor:
    """The gate read-out: g_t averaged over H, (B, T); 1 = history, 0 = current frame; NaN at t = 0.

    Eval mode (no dropout). Raises ValueError for a model without a gate.
    """
    if not isinstance(model, AGA):
        raise TypeError(f"gate_trace: expected a lecturekit.models.aga.AGA, got {type(model).__name__}")
    if model.gate is None:
        raise ValueError("gate_trace: expected a model with a gate (gate=True), got gate=False")
    with _eval_mode(model):
        return model.forward_all(x).gates.float().mean(-1)                  # (B, T)


__all__ = ["Counterfactual", "CounterfactualSummary", "counterfactual_past", "counterfactual_success",
           "dependency_grammar_correlation", "dependency_matrix", "gate_trace", "non_degenerate_windows", "spearman"]
