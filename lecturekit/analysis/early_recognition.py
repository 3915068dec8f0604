"""Early recognition on ToyKitchens: which training loss lets an LSTM name an action soonest?

Paper: M. S. Aliakbarian, F. S. Saleh, M. Salzmann, B. Fernando, L. Petersson, L. Andersson,
"Encouraging LSTMs to Anticipate Actions Very Early", ICCV 2017. https://arxiv.org/abs/1703.07023

The paper's Fig. 5 trains the same multi-stage LSTM with different losses and plots accuracy
against the number of observed frames; Fig. 6 does the same with *temporal average pooling* of
the per-step predictions (its inference rule, Sec. 3.2.2). This module runs that experiment on
ToyKitchens:

* **data** (:func:`load_early_data`): every trimmed action segment sampled at ``frames`` evenly
  spread frames (``world.clips``), read as two per-frame feature streams of
  :mod:`lecturekit.features`: the *context* stream from the single-frame CNN (what the whole
  frame looks like) and the *action* stream from the online TSM (what is moving; causal, so the
  feature of step t depends on no later frame). Step t of T therefore means "the first t/T of
  the action has been observed".
* **model**: :class:`lecturekit.models.ms_lstm.TwoStageLSTM` (Fig. 2): stage 1 reads the context
  stream, stage 2 the action stream and stage 1's hidden state; both stages get the loss
  (Eqs. (4)-(6): L = L(stage 2) + L(stage 1)).
* **losses** (:data:`EARLY_LOSSES`, all from :mod:`lecturekit.losses`): the anticipation loss
  (Eq. (1), false positives weighted t/T, with the paper's 1/N over the N classes), the
  cross-entropy on the last step only (Eq. (7)), the exponentially weighted cross-entropy of
  Jain et al. (Eq. (8)), the linearly growing loss (Eq. (9)) and Ma et al.'s ranking loss on
  the detection score (the paper's "[21]").
* **curves** (:func:`early_accuracy`): top-1 action accuracy after each step, read from the
  stage-2 prediction of that step ("raw", Fig. 5) or from the average of the softmax outputs of
  steps 1..t (``pooled=True``, Fig. 6, :func:`lecturekit.models.ms_lstm.temporal_average_pool`).

Simplified: the features are frozen (the paper also trains the LSTMs on frozen features, after
training the feature network); the action-aware stream is a temporal encoder instead of
CAM-masked conv maps (ToyKitchens' actions are told apart by motion, which a single masked frame
does not see); small LSTMs (64 cells) trained for a fixed number of epochs with Adam.

>>> from lecturekit.data.toykitchens import ToyKitchens                            # doctest: +SKIP
>>> data = load_early_data(ToyKitchens(seed=0))                                     # doctest: +SKIP
>>> result = run_early_recognition(data, seeds=[0, 1], epochs=40)                   # doctest: +SKIP
>>> result["curves"]["anticipation"]["test"]["raw"][0]   # per-step accuracy, seed 0  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from .. import losses
from ..features import FRAME_ENCODER, TEMPORAL_ENCODER, video_features, view_features
from ..models.ms_lstm import TwoStageLSTM, temporal_average_pool
from .stats import paired_difference_test

__all__ = [
    "EARLY_LOSSES",
    "EarlyData",
    "early_accuracy",
    "early_summary",
    "load_early_data",
    "paired_difference",
    "run_early_recognition",
    "train_early",
]

# name -> (loss(logits (B, T, K), target (B,)) -> scalar, where it comes from)
EARLY_LOSSES: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], str]] = {
    "anticipation": (losses.anticipation_loss, "MS-LSTM Eq. (1): FN weight 1, FP weight t/T, / N classes"),
    "ce": (losses.final_step_bce, "Eq. (7): binary cross-entropy at the last step only"),
    "ece": (losses.ece_loss, "Eq. (8): exponentially weighted cross-entropy, e^{-(T-t)} (Jain et al.)"),
    "lgl": (losses.lgl_loss, "Eq. (9): linearly growing loss, t/T on false negatives and positives"),
    "ranking": (losses.ranking_detection_loss, "Ma et al. (CVPR 2016): per-step cross-entropy + ranking"),
}


class EarlyData(NamedTuple):
    """One split of the early-recognition data: context (N, T, D_c), action (N, T, D_a), label (N,)."""

    context: Tensor
    action: Tensor
    label: Tensor

    @property
    def steps(self) -> int:
        return self.context.shape[1]

    def fractions(self) -> np.ndarray:
        """The observed fraction after each step: (1/T, 2/T, ..., 1)."""
        return np.arange(1, self.steps + 1) / self.steps


def load_early_data(world, splits: Sequence[str] = ("train", "val", "test"), *, frames: int = 20,
                    context_encoder: str = FRAME_ENCODER, action_encoder: str = TEMPORAL_ENCODER,
                    target: str = "action") -> dict[str, EarlyData]:
    """Every action segment of each split as ``frames`` evenly spread steps of two feature streams.

    Features come from :func:`lecturekit.features.video_features` (cached on disk); the label is
    the segment's ``target`` ("action", "verb" or "noun") id.
    """
    if frames < 2:
        raise ValueError(f"frames: an early-recognition curve needs at least 2 steps, got {frames}")
    if target not in ("action", "verb", "noun"):
        raise ValueError(f"target: expected 'action', 'verb' or 'noun', got {target!r}")
    ctx = video_features(world, context_encoder)
    act = video_features(world, action_encoder)
    out = {}
    for split in splits:
        view = world.clips(split, frames=frames)
        label = torch.as_tensor(np.asarray(view.labels[target]), dtype=torch.long)
        out[split] = EarlyData(view_features(view, ctx), view_features(view, act), label)
    return out


def _check_data(data: EarlyData, name: str) -> None:
    c, a, y = data
    if c.dim() != 3 or a.dim() != 3 or y.dim() != 1:
        raise ValueError(f"{name}: expected context (N, T, D_c), action (N, T, D_a) and label (N,), "
                         f"got shapes {tuple(c.shape)}, {tuple(a.shape)}, {tuple(y.shape)}")
    if c.shape[:2] != a.shape[:2] or c.shape[0] != y.shape[0]:
        raise ValueError(f"{name}: context, action and label must agree on N (and T), got shapes "
                         f"{tuple(c.shape)}, {tuple(a.shape)}, {tuple(y.shape)}")


def train_early(loss: str, train: EarlyData, num_classes: int, *, seed: int = 0, epochs: int = 40,
                lr: float = 1e-3, batch_size: int = 32, hidden: int = 64, dropout: float = 0.5) -> TwoStageLSTM:
    """Train a :class:`TwoStageLSTM` on ``train`` with one of :data:`EARLY_LOSSES` on both stages.

    ``seed`` fixes the initialisation, the dropout masks and the batch order. Returns the model
    in eval mode.
    """
    if loss not in EARLY_LOSSES:
        raise ValueError(f"loss: expected one of {sorted(EARLY_LOSSES)}, got {loss!r}")
    _check_data(train, "train")
    fn = EARLY_LOSSES[loss][0]
    c, a, y = train
    torch.manual_seed(seed)
    model = TwoStageLSTM(num_classes, context_dim=c.shape[-1], action_dim=a.shape[-1], hidden=hidden, dropout=dropout)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=order).split(batch_size):
            out = model(c[idx], a[idx])
            value = fn(out.logits, y[idx]) + fn(out.stage1, y[idx])        # Eqs. (4)-(6)
            opt.zero_grad()
            value.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def early_accuracy(model: TwoStageLSTM, data: EarlyData, *, pooled: bool = False) -> np.ndarray:
    """Top-1 accuracy after each observed step, shape (T,): entry t-1 is the accuracy of the
    prediction made after steps 1..t (the stage-2 output of step t, or with ``pooled`` the mean
    of the softmax outputs of steps 1..t)."""
    _check_data(data, "data")
    model.eval()
    logits = model(data.context, data.action).logits                       # (N, T, K)
    scores = temporal_average_pool(logits) if pooled else logits
    return (scores.argmax(-1) == data.label[:, None]).float().mean(0).numpy().astype(np.float64)


def run_early_recognition(data: Mapping[str, EarlyData], *, loss_names: Sequence[str] = tuple(EARLY_LOSSES),
                          seeds: Sequence[int] = (0, 1, 2, 3, 4), epochs: int = 40,
                          eval_splits: Sequence[str] = ("val", "test"), num_classes: int | None = None,
                          log: Callable[[str], None] | None = None, **train_kwargs) -> dict:
    """Fig. 5 and Fig. 6 of MS-LSTM on ``data``: for every loss named in ``loss_names`` (keys of
    :data:`EARLY_LOSSES`) and seed, train on ``data["train"]``
    and record the raw and the pooled accuracy curves on each evaluation split.

    Returns ``{"fractions": [...], "curves": {loss: {split: {"raw": [[per step] per seed],
    "pooled": [...]}}}, "seeds": [...], "seconds": {loss: [per seed]}, "settings": {...}}``.
    """
    if "train" not in data:
        raise ValueError(f"data: needs a 'train' split, got {sorted(data)}")
    missing = [s for s in eval_splits if s not in data]
    if missing:
        raise ValueError(f"data: evaluation split(s) {missing} not loaded, have {sorted(data)}")
    unknown = [n for n in loss_names if n not in EARLY_LOSSES]
    if unknown:
        raise ValueError(f"loss_names: unknown {unknown}; expected names from {sorted(EARLY_LOSSES)}")
    if num_classes is None:
        num_classes = int(max(int(d.label.max()) for d in data.values())) + 1
    curves: dict = {n: {s: {"raw": [], "pooled": []} for s in eval_splits} for n in loss_names}
    seconds: dict = {n: [] for n in loss_names}
    for name in loss_names:
        for seed in seeds:
            start = time.process_time()
            model = train_early(name, data["train"], num_classes, seed=seed, epochs=epochs, **train_kwargs)
            for split in eval_splits:
                curves[name][split]["raw"].append(early_accuracy(model, data[split]).tolist())
                curves[name][split]["pooled"].append(early_accuracy(model, data[split], pooled=True).tolist())
            seconds[name].append(round(time.process_time() - start, 2))
            if log is not None:
                first = curves[name][eval_splits[-1]]["raw"][-1]
                log(f"{name:<13} seed {seed}: {eval_splits[-1]} accuracy after 1/{len(first)} "
                    f"{first[0]:.3f}, after all {first[-1]:.3f} ({seconds[name][-1]:.0f} s CPU)")
    return {"fractions": data["train"].fractions().tolist(), "curves": curves, "seeds": list(seeds),
            "seconds": seconds,
            "settings": {"epochs": epochs, "num_classes": num_classes, "train_rows": len(data["train"].label),
                         **{f"{s}_rows": len(data[s].label) for s in eval_splits}, **train_kwargs}}


def paired_difference(a: Sequence[float], b: Sequence[float]) -> dict:
    """Paired comparison of two per-seed values, in the short form the summary stores: mean and
    sample std of a - b, its standard error, t = mean / s.e., the number of seeds where a >= b
    and n (computed by :func:`lecturekit.analysis.stats.paired_difference_test`)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"paired_difference: need two 1-D sequences of equal length >= 2, got {a.shape} and {b.shape}")
    r = paired_difference_test(a, b)
    t = 0.0 if r["se_diff"] == 0 and r["mean_diff"] == 0 else r["t"]
    return {"mean": r["mean_diff"], "std": r["std_diff"], "se": r["se_diff"], "t": t,
            "a_at_least_b": r["positives"] + r["ties"], "n": r["n"]}


def early_summary(result: Mapping, *, split: str = "test", early: float = 0.1, reference: str = "anticipation") -> dict:
    """What the curves say, computed from them:

    * ``mean`` / ``std``: per loss and curve kind, the mean and std over seeds at every step;
    * ``early``: per-seed accuracy averaged over the steps with observed fraction <= ``early``
      ("small observed fractions"), and for each other loss the paired difference
      ``reference - other`` (:func:`paired_difference`);
    * ``pooling``: per loss, the paired difference pooled - raw, averaged over all steps and over
      the early steps (Fig. 6).
    """
    fr = np.asarray(result["fractions"])
    first = fr <= early + 1e-9
    if not first.any():
        raise ValueError(f"early={early}: no step has an observed fraction that small (first is {fr[0]:.3f})")
    out: dict = {"split": split, "early_fraction": early, "early_steps": int(first.sum()), "mean": {}, "std": {},
                 "early": {}, "versus": {}, "pooling": {}}
    for name, per_split in result["curves"].items():
        kinds = per_split[split]
        out["mean"][name] = {k: np.mean(v, axis=0).round(4).tolist() for k, v in kinds.items()}
        out["std"][name] = {k: np.std(v, axis=0, ddof=1 if len(v) > 1 else 0).round(4).tolist() for k, v in kinds.items()}
        raw, pooled = np.asarray(kinds["raw"]), np.asarray(kinds["pooled"])
        out["early"][name] = raw[:, first].mean(1).round(4).tolist()
        if len(raw) > 1:
            out["pooling"][name] = {"all_steps": paired_difference(pooled.mean(1), raw.mean(1)),
                                    "early_steps": paired_difference(pooled[:, first].mean(1), raw[:, first].mean(1))}
    if reference in out["early"] and len(result["seeds"]) > 1:
        for name in out["early"]:
            if name != reference:
                out["versus"][name] = paired_difference(out["early"][reference], out["early"][name])
    return out
