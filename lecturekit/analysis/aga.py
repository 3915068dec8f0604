"""Post-training analysis of Action-Guided Attention (AGA): what the trained attention learned.

Paper: T.-M. Tai et al., "Action-Guided Attention for Video Action Anticipation", ICLR 2026,
https://arxiv.org/abs/2603.01743 (the forward and backward analyses of its poster). The model:
:mod:`lecturekit.models.aga`.

Because AGA's queries and keys are action vectors, its attention can be asked questions without
any video:

    dependency_matrix    forward analysis (defined in :mod:`lecturekit.analysis.dependency`, with
                         its check against a grammar, ``dependency_grammar_correlation``): which
                         candidate past action b the model links to a current action a.
    counterfactual_past  backward analysis. For one real clip, the past-prediction slots that
                         step t reads (its keys, and through the EMA its query) become free
                         variables; gradient descent makes the frozen model predict a chosen
                         action at t; the top-k actions of the optimised slots are "the past that
                         would have led there". Frame embeddings (values) and e_t stay fixed.
    lagged_transitions   the same check further back: P(next = a | the action ``lag`` steps
                         before = b), for the longer-range dependency of
                         ``ToyKitchens(long_range=True)``.
    counterfactual_success
                         the backward analysis over many windows: how often the search reaches
                         its target (with :func:`non_degenerate_windows` to pick the windows).
    gate_trace           the gate g_t averaged over the H channels at every step: near 1 the
                         state is taken from the history, near 0 from the current frame.
    aga_generalisation   the paper's central claim (pixel attention overfits to visual cues of the
                         past frames, AGA generalises to unseen kitchens) measured on
                         ``ToyKitchens(cues=C)``: seen-vs-unseen action MT5R gap of AGA and of its
                         pixel-attention ablation over seeds, compared by
                         :func:`lecturekit.analysis.stats.paired_difference_test` (paired t-test
                         and sign test).

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

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.aga import AGA
from .dependency import check_action_guided, dependency_grammar_correlation, dependency_matrix, eval_mode
from .stats import paired_difference_test, spearman


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
    check_action_guided(model, "counterfactual_past")
    if clip.dim() == 2:
        clip = clip[None]
    if clip.dim() != 3 or clip.shape[0] != 1:
        raise ValueError(f"clip: expected one feature sequence (T, D) or (1, T, D), got shape {tuple(clip.shape)}")
    if not 0 <= int(target) < model.num_classes:
        raise ValueError(f"target: expected an action id in [0, {model.num_classes}), got {target}")
    target = int(target)
    with eval_mode(model):
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
def lagged_transitions(world, split: str = "train", *, lag: int = 2, videos: int = 20_000, seed: int = 0) -> np.ndarray:
    """P(next = a | the action ``lag`` steps before it = b) of a ToyKitchens world: (A, A), row b.

    ``lag = 1`` is the grammar's bigram (:meth:`ToyKitchens.transition_matrix`, computed there
    exactly); ``lag = 2`` is the dependency of ``ToyKitchens(long_range=True)``, where the step
    after a shared "hub" is decided by the action before the hub. Estimated by Monte Carlo:
    ``videos`` action sequences drawn from the world's own automaton
    (:func:`lecturekit.data.toykitchens.world.sample_actions`, seeded by ``seed``) with the
    kitchens weighted by their share of the split's videos, pairs pooled over all sequences
    (ratio of sums, as the exact bigram). Rows of actions never seen ``lag`` steps before
    another are 0. Pass it to :func:`dependency_grammar_correlation` like the transitions.
    """
    from ..data.toykitchens.world import sample_actions

    if lag < 1 or videos < 1:
        raise ValueError(f"expected lag >= 1 and videos >= 1, got lag={lag}, videos={videos}")
    kitchens = [k for k, sp in zip(world.video_kitchen, world.video_split) if sp == world._split(split)]
    if not kitchens:
        raise ValueError(f"split {split!r} has no videos in this world")
    prior = np.bincount(kitchens, minlength=len(world.kitchens)).astype(np.float64)
    cum = np.cumsum(prior / prior.sum())
    rng = np.random.default_rng(seed)
    a = len(world.actions)
    counts = np.zeros((a, a))
    for _ in range(int(videos)):
        k = min(int(np.searchsorted(cum, rng.random(), side="right")), len(cum) - 1)
        seq = np.asarray(sample_actions(world.grammar, k, rng)[0], dtype=np.int64)
        if len(seq) > lag:
            np.add.at(counts, (seq[:-lag], seq[lag:]), 1.0)
    return counts / np.maximum(counts.sum(1, keepdims=True), 1.0)


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
    check_action_guided(model, "counterfactual_success")
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
    with eval_mode(model):
        return model.forward_all(x).gates.float().mean(-1)                  # (B, T)


# ----------------------------------------------------------------------------- the dependency study
def attention_by_action(model: AGA, features: Tensor, next_actions, slot_actions, num_actions: int) -> dict:
    """What the trained attention does on real windows, grouped by action (empirical check).

    The last step's attention over its memory slots (mean over heads), averaged per pair (a, b)
    over the slots that show action b (``slot_actions[:, j]``, -1 = none) in windows whose next
    action is a: ``observed[a, b]``. AGA has no positional encoding, yet its keys change along a
    window (recent frames predict other actions than old ones), so the attention can prefer
    recent slots by content; ``position_only[a, b]`` replaces every window's weights by the mean
    weight of each slot position over all windows, the part of ``observed`` that recency alone
    explains. Entries of pairs never seen are NaN. Also returns ``entropy``: the mean normalised
    entropy of the (head-mean) weights (1 = uniform).
    """
    check_action_guided(model, "attention_by_action")
    with eval_mode(model), torch.no_grad():
        att = model.forward_all(features).attention[:, :, -1, :-1].mean(1).double().cpu()     # (N, T-1)
    nxt = np.asarray(next_actions).reshape(-1)
    slots = np.asarray(slot_actions)[:, : att.shape[1]]
    if slots.shape != tuple(att.shape) or nxt.shape[0] != att.shape[0]:
        raise ValueError(f"expected next_actions (N,) and slot_actions (N, >= T-1) for {tuple(att.shape)} weights, "
                         f"got {nxt.shape} and {np.asarray(slot_actions).shape}")
    w = att.numpy()
    prof = np.broadcast_to(w.mean(0), w.shape)
    rows, cols = np.nonzero(slots >= 0)
    a, b = nxt[rows], slots[rows, cols]
    obs, pos, cnt = (np.zeros((num_actions, num_actions)) for _ in range(3))
    np.add.at(obs, (a, b), w[rows, cols])
    np.add.at(pos, (a, b), prof[rows, cols])
    np.add.at(cnt, (a, b), 1.0)
    seen = cnt > 0
    ent = -(att * att.clamp_min(1e-12).log()).sum(-1) / math.log(att.shape[-1])
    return {"observed": np.where(seen, obs / np.maximum(cnt, 1), np.nan),
            "position_only": np.where(seen, pos / np.maximum(cnt, 1), np.nan), "entropy": float(ent.mean())}


def dependency_study(seeds: Sequence[int] = (0, 1, 2, 3, 4), *, world_seed: int = 0, world_kwargs: dict | None = None,
                     tau_o: float = 2.0, frames: int = 8, epochs: int = 30, lr: float = 1e-3,
                     aux_weight: float = 1.0, aux_labels: str = "frame_action_ahead", encoder: str | None = None,
                     counterfactual_windows: int | None = 0, counterfactual_search: dict | None = None,
                     lag_videos: int = 20_000, log=None) -> dict:
    """Does the dependency matrix of a trained AGA recover the grammar of the world it was trained on?

    One world ``ToyKitchens(seed=world_seed, **world_kwargs)``, its anticipation windows
    (tau_a = 1 s, ``tau_o``, ``frames``; AGA's memory holds the whole window, ``order=frames``)
    as the frozen ``encoder``'s features, and per seed an AGA trained by the benchmark's recipe
    (:func:`lecturekit.analysis.anticipation.train_anticipation`, ``aux_weight`` /
    ``aux_labels`` as the ``aga+aux`` row). Per seed:

    * ``rho_bigram``: :func:`dependency_grammar_correlation` of :func:`dependency_matrix`
      against the exact transitions (``world.transition_matrix("train")``); ``rho_bigram_offdiag``
      without the diagonal; ``rho_lag2``: against :func:`lagged_transitions` (lag 2, the
      dependency of ``long_range=True`` worlds); ``diag_ratio``: mean diagonal / mean off-diagonal
      of the matrix; ``row_max``: its mean row maximum (uniform = 1/A);
    * ``attention``: :func:`attention_by_action` on the test windows: normalised entropy,
      Spearman of the observed per-pair attention with P(a | b) and of its position-only part,
      and of their difference (``rho_beyond_position``);
    * ``test_mt5r``: action class-mean top-5 recall on test;
    * ``counterfactual`` (``counterfactual_windows`` != 0; None = all): :func:`counterfactual_success`
      with the TRUE next action as target over the non-degenerate test windows
      (:func:`non_degenerate_windows`: wrong prediction, some frame observed), the first
      ``counterfactual_windows`` of them.

    Returns a JSON-ready dict with ``settings``, ``per_seed``, ``summary`` (min / median / max
    per number) and ``seconds``.
    """
    from ..data.toykitchens import ToyKitchens
    from ..features import TEMPORAL_ENCODER
    from ..metrics.classification import mean_topk_recall
    from .anticipation import load_anticipation_data, predict_probs, train_anticipation

    encoder = encoder or TEMPORAL_ENCODER
    wk = dict(world_kwargs or {})
    say = log or (lambda *_: None)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    world = ToyKitchens(seed=world_seed, **wk)
    data = load_anticipation_data(world, ("train", "test"), tau_a=1.0, tau_o=tau_o, frames=frames, encoder=encoder)
    tr, te = data["train"], data["test"]
    num_actions = len(world.actions)
    bigram = world.transition_matrix("train")
    lag2 = lagged_transitions(world, "train", lag=2, videos=lag_videos, seed=world_seed)
    pairs = torch.as_tensor(bigram, dtype=torch.float64).T.numpy()                          # [a, b] = P(a | b)
    y = torch.as_tensor(te.labels["action"])
    observed = torch.as_tensor(te.labels["unobserved"] == 0)
    per_seed = []
    for s in seeds:
        head, info = train_anticipation("aga", tr, num_actions, epochs=epochs, lr=lr, seed=int(s), order=frames,
                                        **({"aux_weight": aux_weight, "aux_labels": aux_labels} if aux_weight else {}))
        model = head.model.eval()
        m = dependency_matrix(model).double()
        off = ~torch.eye(num_actions, dtype=torch.bool)
        entry = {"seed": int(s), "train_seconds": info["seconds"],
                 "rho_bigram": dependency_grammar_correlation(m, bigram),
                 "rho_bigram_offdiag": dependency_grammar_correlation(m, bigram, exclude_diagonal=True),
                 "rho_lag2": dependency_grammar_correlation(m, lag2),
                 "diag_ratio": float(m.diagonal().mean() / m[off].mean()),
                 "row_max": float(m.max(1).values.mean())}
        att = attention_by_action(model, te.features, te.labels["action"], te.labels["frame_action"], num_actions)
        ok = ~np.isnan(att["observed"])
        entry["attention"] = {
            "entropy": att["entropy"], "pairs": int(ok.sum()),
            "rho_observed": spearman(att["observed"][ok], pairs[ok]),
            "rho_position_only": spearman(att["position_only"][ok], pairs[ok]),
            "rho_beyond_position": spearman(att["observed"][ok] - att["position_only"][ok], pairs[ok])}
        probs = predict_probs(head, te.features)
        entry["test_mt5r"] = mean_topk_recall(probs, te.labels["action"], 5)
        if counterfactual_windows != 0:
            pred = torch.as_tensor(probs.argmax(1))
            mask = non_degenerate_windows(pred, y, observed)
            c0 = time.perf_counter()
            summ = counterfactual_success(model, te.features, y, mask=mask, max_windows=counterfactual_windows,
                                          **(counterfactual_search or {}))
            entry["counterfactual"] = {"target": "true next action", "non_degenerate": int(mask.sum()),
                                       "searched": len(summ.results), "reached": int(sum(summ.reached)),
                                       "fraction": summ.fraction,
                                       "mean_iterations": float(np.mean([r.iterations for r in summ.results]))
                                       if summ.results else float("nan"),
                                       "seconds": round(time.perf_counter() - c0, 1)}
        per_seed.append(entry)
        say(f"seed {s}: rho bigram {entry['rho_bigram']:+.3f} (off-diag {entry['rho_bigram_offdiag']:+.3f}), lag 2 "
            f"{entry['rho_lag2']:+.3f}; attention entropy {att['entropy']:.3f}, observed "
            f"{entry['attention']['rho_observed']:+.3f}"
            f" position-only {entry['attention']['rho_position_only']:+.3f}; MT5R {entry['test_mt5r']:.3f}"
            + (f"; counterfactual {entry['counterfactual']['reached']}/{entry['counterfactual']['searched']}"
               if "counterfactual" in entry else "") + f" ({info['seconds']:.1f} s)")
    result = {"settings": {"world_seed": world_seed, "world_kwargs": wk, "tau_a": 1.0, "tau_o": tau_o, "frames": frames,
                           "order": frames, "epochs": epochs, "lr": lr, "aux_weight": aux_weight,
                           "aux_labels": aux_labels, "encoder": encoder, "seeds": [int(s) for s in seeds],
                           "train_rows": len(tr), "test_rows": len(te), "num_actions": num_actions,
                           "lag_videos": lag_videos, "dependency_matrix": "mean_of_softmax, all actions x all actions"},
              "per_seed": per_seed}
    result["summary"] = summarize_dependency(result)
    result["seconds"] = {"cpu": round(time.process_time() - cpu0, 1), "wall": round(time.perf_counter() - wall0, 1)}
    return result


def _flat_numbers(entry: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in entry.items():
        if isinstance(v, dict):
            out.update(_flat_numbers(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and k != "seed":
            out[prefix + k] = float(v)
    return out


def summarize_dependency(result: dict) -> dict:
    """min / median / max over the seeds of every number in ``result["per_seed"]`` (recomputable)."""
    flat = [_flat_numbers(e) for e in result["per_seed"]]
    keys = [k for k in flat[0] if all(k in f for f in flat)]
    return {k: {"min": min(f[k] for f in flat), "median": float(np.median([f[k] for f in flat])),
                "max": max(f[k] for f in flat)} for k in keys}


# ----------------------------------------------------------------------------- the generalisation claim
# The AGA paper's central claim: dot-product attention over pixel features overfits to explicit
# visual cues of the past frames, attention over predicted actions generalises to unseen
# kitchens. ToyKitchens(cues=C) builds such a cue (a wall poster whose colour predicts the
# upcoming action in the seen kitchens only); :func:`aga_generalisation` measures both models'
# seen-to-unseen gap over seeds and :func:`paired_difference_test` compares them.

def cue_visible(world, view) -> np.ndarray:
    """(N, T) bool: which frames of an anticipation ``view`` of a world with cues show the cue
    of the row's own action (``ToyKitchens(cues=C)``)."""
    if getattr(world, "cue_map", None) is None:
        raise ValueError("cue_visible: expected a ToyKitchens world built with cues > 0, got one without cues")
    first = np.array([world.scripts[v].cue["first"][p] for v, p in zip(view.video_index, view.labels["position"])])
    last = np.array([world.scripts[v].cue["last"][p] for v, p in zip(view.video_index, view.labels["position"])])
    idx = view.frame_index
    return (idx >= first[:, None]) & (idx <= last[:, None]) & (idx >= 0)


def linear_probe(x_train, y_train, x_eval, y_eval, num_classes: int, *, l2: float = 1e-4,
                 max_iter: int = 300) -> float:
    """Balanced accuracy of a linear softmax classifier (standardised inputs, L2 ``l2``, L-BFGS
    from zero weights: deterministic) trained on (x_train, y_train), scored on (x_eval, y_eval):
    the mean over the classes present in ``y_eval`` of their recall."""
    xa = torch.as_tensor(x_train, dtype=torch.float32)
    xb = torch.as_tensor(x_eval, dtype=torch.float32)
    ya = torch.as_tensor(y_train, dtype=torch.long)
    yb = torch.as_tensor(y_eval, dtype=torch.long)
    if xa.dim() != 2 or xb.dim() != 2 or xa.shape[1] != xb.shape[1] or len(xa) != len(ya) or len(xb) != len(yb):
        raise ValueError(f"expected x (N, D) with one label per row and the same D, got {tuple(xa.shape)}, "
                         f"{tuple(ya.shape)}, {tuple(xb.shape)}, {tuple(yb.shape)}")
    mu, sd = xa.mean(0), xa.std(0) + 1e-6
    xa, xb = (xa - mu) / sd, (xb - mu) / sd
    lin = torch.nn.Linear(xa.shape[1], num_classes)
    torch.nn.init.zeros_(lin.weight)
    torch.nn.init.zeros_(lin.bias)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(lin(xa), ya) + l2 * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = lin(xb).argmax(1)
    return float(np.mean([(pred[yb == c] == c).float().mean().item() for c in torch.unique(yb).tolist()]))


def cue_consistent_mass(probs, cue_shown, cue_map) -> np.ndarray:
    """Per row, the probability a model puts on the actions whose cue colour is the one shown:
    sum_a p[n, a] · [cue_map[a] = cue_shown[n]], (N,). Where the cue is independent of the
    action (unseen kitchens), a model that ignores it puts about the share of those actions
    in its predictions there; a model that follows it, more."""
    p = np.asarray(probs, dtype=np.float64)
    cmap = np.asarray(cue_map)
    cue = np.asarray(cue_shown)
    if p.ndim != 2 or p.shape[1] != cmap.shape[0] or cue.shape != (p.shape[0],):
        raise ValueError(f"expected probs (N, A), cue_shown (N,), cue_map (A,), got {p.shape}, {cue.shape}, "
                         f"{cmap.shape}")
    return (p * (cmap[None, :] == cue[:, None])).sum(1)


GENERALISATION_WORLD = {"heldout_videos": 2, "unseen_videos": 6}


def _sequence_inputs(data, inputs: str):
    """Replace each split's features by what both models read: the encoder's vectors (as loaded)
    or its last feature maps flattened per frame, (N, T, C·h·w)."""
    import dataclasses

    from .anticipation import feature_difference

    if inputs == "vectors":
        return data
    out = {}
    for split, d in data.items():
        flat = d.maps.permute(0, 2, 1, 3, 4).flatten(2).contiguous()            # (N, T, C·h·w)
        out[split] = dataclasses.replace(d, features=flat, delta=feature_difference(flat), maps=None,
                                         encoder=f"{d.encoder} maps")
    return out


def aga_generalisation(seeds: Sequence[int] = (0, 1, 2, 3, 4), *, world_seeds: Sequence[int] | None = None,
                       cues: int = 8, cue_strength: float = 1.0, world_kwargs: dict | None = None,
                       inputs: str = "maps", maps_pool: int = 1, encoder: str | None = None, epochs: int = 30,
                       lr: float = 1e-3, models: tuple[str, str] = ("aga", "aga_pixel"), aux_weight: float = 0.0,
                       aux_labels: str = "frame_action_ahead", log=None) -> dict:
    """The AGA paper's generalisation claim on ToyKitchens with a visual shortcut.

    For every seed s: a world ``ToyKitchens(seed=world_seeds[i], cues=cues, cue_strength=...,
    **world_kwargs)`` (default world seed = s; ``world_kwargs`` default
    :data:`GENERALISATION_WORLD`: more held-out videos, for steadier MT5R), its anticipation
    windows (tau_a = 1 s, tau_o = 2 s, 8 frames) as the frozen ``encoder``'s ``inputs``
    ("maps": its last feature maps flattened per frame; "vectors": its pooled per-frame
    features), and the two ``models`` (AGA and its pixel-attention ablation), each trained with
    seed s by the benchmark's recipe (:func:`lecturekit.analysis.anticipation.train_anticipation`,
    ``epochs``, ``lr``: the same budget for both; ``aux_weight`` > 0: both models' per-step
    predictions are also supervised with dense labels the released way, by default the action
    in progress tau_a after each observed frame (``aux_labels``; see
    :class:`lecturekit.analysis.anticipation.ObservedActionAux`). Measured per model:

    * seen = action MT5R on the val rows of the seen kitchens (held-out videos of kitchens
      whose cue follows the map), unseen = action MT5R on the test rows of the unseen kitchens
      (cue independent of the action); gap = seen − unseen;
    * cue mass: :func:`cue_consistent_mass` on those rows (how much the model follows the cue).

    Then :func:`paired_difference_test` of the gaps (pixel − AGA: positive = AGA's gap smaller),
    and of the unseen cue masses. Also a :func:`linear_probe` of the cue colour from the model
    inputs (frames of the windows that show it; train rows -> val rows) of the first world.

    Returns a JSON-ready dict: ``settings``, ``probe``, ``per_seed``, ``summary``, ``gap_test``,
    ``cue_mass_test``, ``claim`` (the paper's direction, shown or not, from the numbers), ``seconds``.
    """
    from ..data.toykitchens import ToyKitchens
    from ..features import TEMPORAL_ENCODER
    from ..metrics.classification import mean_topk_recall
    from .anticipation import load_anticipation_data, predict_probs, train_anticipation

    encoder = encoder or TEMPORAL_ENCODER
    seeds = [int(s) for s in seeds]
    world_seeds = seeds if world_seeds is None else [int(s) for s in world_seeds]
    if len(world_seeds) != len(seeds) or len(seeds) < 2:
        raise ValueError(f"expected >= 2 seeds and one world seed per seed, got {len(seeds)} seeds and "
                         f"{len(world_seeds)} world seeds")
    if inputs not in ("maps", "vectors"):
        raise ValueError(f"inputs: expected 'maps' or 'vectors', got {inputs!r}")
    if cues < 1:
        raise ValueError(f"cues: expected >= 1 (the experiment needs the cue), got {cues}")
    wk = dict(GENERALISATION_WORLD if world_kwargs is None else world_kwargs)
    say = log or (lambda *_: None)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    per_seed, probe = [], None
    for s, ws in zip(seeds, world_seeds):
        world = ToyKitchens(seed=ws, cues=cues, cue_strength=cue_strength, **wk)
        raw = load_anticipation_data(world, ("train", "val", "test"), tau_a=1.0, tau_o=2.0, frames=8,
                                     encoder=encoder, maps=inputs == "maps", maps_pool=maps_pool)
        data = _sequence_inputs(raw, inputs)
        num_actions = len(world.actions)
        seen = data["val"].labels["unseen"] == 0
        unseen = data["test"].labels["unseen"] == 1
        if probe is None:
            views = {sp: world.anticipation(sp, tau_a=1.0, tau_o=2.0, frames=8) for sp in ("train", "val")}
            xs, ys = {}, {}
            for sp, view in views.items():
                vis = torch.from_numpy(cue_visible(world, view))
                xs[sp] = data[sp].features[vis]
                ys[sp] = torch.as_tensor(view.labels["cue"])[:, None].expand_as(vis)[vis]
            probe = {"inputs": inputs, "dim": int(xs["train"].shape[1]), "train_frames": int(len(ys["train"])),
                     "eval_frames": int(len(ys["val"])), "chance": 1.0 / cues,
                     "balanced_accuracy": linear_probe(xs["train"], ys["train"], xs["val"], ys["val"], cues)}
            say(f"probe: cue colour from the {inputs} ({probe['dim']} dims) of the frames that show it: balanced "
                f"accuracy {probe['balanced_accuracy']:.3f} (chance {1 / cues:.3f})")
        entry = {"seed": s, "world_seed": ws, "rows": {"train": len(data["train"]), "val_seen": int(seen.sum()),
                                                        "test_unseen": int(unseen.sum())}, "models": {}}
        for name in models:
            head, info = train_anticipation(name, data["train"], num_actions, epochs=epochs, lr=lr, seed=s,
                                            **({"aux_weight": aux_weight, "aux_labels": aux_labels} if aux_weight
                                               else {}))
            pv = predict_probs(head, data["val"].features)
            pt = predict_probs(head, data["test"].features)
            yv, yt = data["val"].labels["action"], data["test"].labels["action"]
            m = {"seen": mean_topk_recall(pv[seen], yv[seen], 5), "unseen": mean_topk_recall(pt[unseen], yt[unseen], 5),
                 "val_overall": mean_topk_recall(pv, yv, 5), "test_overall": mean_topk_recall(pt, yt, 5),
                 "cue_mass_seen": float(cue_consistent_mass(pv[seen], data["val"].labels["cue"][seen],
                                                            world.cue_map).mean()),
                 "cue_mass_unseen": float(cue_consistent_mass(pt[unseen], data["test"].labels["cue"][unseen],
                                                              world.cue_map).mean()),
                 "seconds": info["seconds"], "params": info["params"], "final_loss": info["final_loss"]}
            m["gap"] = m["seen"] - m["unseen"]
            entry["models"][name] = m
            say(f"seed {s} {name}: seen {100 * m['seen']:.1f} unseen {100 * m['unseen']:.1f} gap "
                f"{100 * m['gap']:.1f}; cue mass seen {m['cue_mass_seen']:.3f} unseen {m['cue_mass_unseen']:.3f} "
                f"({info['seconds']:.1f} s)")
        per_seed.append(entry)
    result = {"settings": {"seeds": seeds, "world_seeds": world_seeds, "cues": cues, "cue_strength": cue_strength,
                           "world_kwargs": wk, "inputs": inputs, "maps_pool": maps_pool, "encoder": encoder,
                           "epochs": epochs, "lr": lr, "models": list(models), "tau_a": 1.0, "tau_o": 2.0,
                           "frames": 8, "seen": "val rows of the seen kitchens",
                           "unseen": "test rows of the unseen kitchens",
                           "metric": "action MT5R (class-mean top-5 recall)"},
              "probe": probe, "per_seed": per_seed}
    if aux_weight:                                      # only when used: the stored default run stays as it was
        result["settings"].update(aux_weight=float(aux_weight), aux_labels=aux_labels,
                                  loss=f"the released dense loss: step t predicts labels[{aux_labels!r}] (shifted "
                                       "as ObservedActionAux does), the last step the upcoming action")
    result.update(summarize_generalisation(result))
    result["seconds"] = {"cpu": round(time.process_time() - cpu0, 1), "wall": round(time.perf_counter() - wall0, 1)}
    return result


def summarize_generalisation(result: dict) -> dict:
    """From ``result["per_seed"]`` (and ``settings["models"]`` = (AGA, pixel)): per-model mean
    and std (ddof = 1) of seen / unseen / gap / cue masses, the paired tests and the claim.
    Recomputable from the stored per-seed numbers (the tests of the JSON do exactly that)."""
    aga, pixel = result["settings"]["models"]
    per = result["per_seed"]
    summary = {}
    for name in (aga, pixel):
        summary[name] = {}
        for key in ("seen", "unseen", "gap", "cue_mass_seen", "cue_mass_unseen", "val_overall", "test_overall"):
            vals = [e["models"][name][key] for e in per]
            m = sum(vals) / len(vals)
            sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
            summary[name][key] = {"mean": m, "std": sd}
    gap_test = paired_difference_test([e["models"][pixel]["gap"] for e in per], [e["models"][aga]["gap"] for e in per],
                                      names=(f"{pixel} gap", f"{aga} gap"))
    cue_test = paired_difference_test([e["models"][pixel]["cue_mass_unseen"] for e in per],
                                      [e["models"][aga]["cue_mass_unseen"] for e in per],
                                      names=(f"{pixel} cue mass", f"{aga} cue mass"))
    shown = gap_test["mean_diff"] > 2 * gap_test["se_diff"]
    claim = {
        "paper_direction": f"{aga}'s seen - unseen gap smaller than {pixel}'s by more than 2 s.e. of the paired "
                           f"difference",
        "shown": bool(shown),
        "gap_difference": gap_test["mean_diff"],
        "two_se": 2 * gap_test["se_diff"],
        "statement": (f"shown: {aga}'s gap is smaller than {pixel}'s by {100 * gap_test['mean_diff']:.1f} points "
                      f"(> 2 s.e. = {200 * gap_test['se_diff']:.1f})" if shown else
                      f"not shown: {pixel} gap - {aga} gap = {100 * gap_test['mean_diff']:.1f} points, 2 s.e. = "
                      f"{200 * gap_test['se_diff']:.1f} ({gap_test['verdict']})"),
    }
    return {"summary": summary, "gap_test": gap_test, "cue_mass_test": cue_test, "claim": claim}


__all__ = ["Counterfactual", "CounterfactualSummary", "GENERALISATION_WORLD", "aga_generalisation",
           "attention_by_action", "counterfactual_past", "counterfactual_success", "cue_consistent_mass",
           "cue_visible", "dependency_study", "gate_trace",
           "lagged_transitions", "linear_probe", "non_degenerate_windows", "summarize_dependency",
           "summarize_generalisation"]
