"""One yardstick for every anticipation model: ToyKitchens next-action benchmark, EK-100 metrics.

Every model of the anticipation table that reads per-frame features (RULSTM, its modality
fusion, AVT-h, AGA and its ablation ladder, MS-LSTM's two-stage head), HORST on pixels, the
n-gram on TRUE past labels and the Bayes-optimal label-only predictor are scored with the same
function, :func:`score_anticipation`:

* EK-100 class-mean top-5 recall (MT5R) of action, verb and noun, overall / unseen / tail
  (``lecturekit.metrics.epic_subsets``; tail = EK-100's rule on the TRAIN split: the classes
  outside the most frequent ones covering 80% of the training instances; tail action rows = tail
  verb OR tail noun), plus MT5R on the seen rows (for the seen-vs-unseen gap);
* verb and noun scores by marginalising the softmaxed action scores (RULSTM's rule);
* top-1 and top-5 action accuracy.

Training is one recipe for all models (no per-model tuning): AdamW, cosine schedule, a fixed
number of epochs, cross-entropy against the upcoming action at EVERY observed step
(RULSTM's recipe: every step anticipates the same action; for AVT-h the one future output), the
anticipation read at the LAST step. Models adapted to this interface by
:class:`AnticipationHead`:

    sequence models   (B, T, D) -> (B, T, K)                 rulstm, aga, aga_pixel, aga_iam, aga_nogate
    two streams       (B, T, 2D) = [RGB ; Δ] split in two      rulstm_fusion (MATT over the two RU branches),
                                                                ms_lstm_head (context = RGB, action = Δ)
    avt_head          (B, T, D) -> (B, 1, K)                   the future logits
    horst             maps (B, C, T, h, w): the encoder's last feature maps (``maps=True``),
                      or pixels (B, 3, T, H, W); average-pooled by ``pool`` -> (B, T, K)

Features: ``load_anticipation_data(world, encoder=...)`` reads the per-frame features of either
encoder of :mod:`lecturekit.features`: the single-frame CNN (the weak baseline: it cannot tell
the reversal pairs apart) or the online TSM (features with time in them, causal).

Baselines next to the learned models: the label-only rows read the TRUE past labels (an
oracle no video model has); :func:`cascade_next_action` is the realistic two-stage version,
"recognise the last past action from the same features, then apply the bigram".

Observed actions (``train_anticipation(..., aux_weight=w)``, rows ``model+aux``): the benchmark's
loss trains every step on the upcoming action only. The papers also supervise what the window
shows: AGA's per-step predictions (its memory keys and query) are trained on dense labels one
sampled frame ahead (1 s at its 1 fps), AVT-h classifies every observed frame. The dense labels are
``labels["frame_action"]`` etc. (:func:`observed_frame_actions`); :class:`ObservedActionAux` says
what each model learns from them (RU-LSTM: a benchmark-side auxiliary head, not in its paper).

The second stream Δ is the temporal difference of the cached frame features
(Δ_t = f_t − f_{t−1}, Δ_1 = 0): a cheap "motion" stream, NOT optical flow; it is a function of the
RGB stream, so fusion can add little information beyond what the RGB branch already has.

>>> from lecturekit.data.toykitchens import ToyKitchens                 # doctest: +SKIP
>>> world = ToyKitchens(seed=0)                                          # doctest: +SKIP
>>> data = load_anticipation_data(world)                                 # doctest: +SKIP
>>> result = run_benchmark(world, data, ["rulstm", "aga"], epochs=20)    # doctest: +SKIP
>>> print(format_table(result))                                          # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..data.baselines import NGram, bayes_next_action, ngram_next_action
from ..layers.shapes import check_sequence, check_video
from ..losses import cross_entropy_per_step
from ..data.ek100 import HEAD_COVERAGE, class_counts, tail_classes
from ..metrics.classification import epic_subsets, marginalize, mean_topk_recall, topk_accuracy
from ..models import build_model
from ..train import fit, seed_everything
from .dependency import dependency_grammar_correlation

__all__ = [
    "MERGE_SETTINGS",
    "FEATURE_MODELS",
    "PIXEL_MODELS",
    "AnticipationData",
    "AUX_MODELS",
    "AnticipationHead",
    "ObservedActionAux",
    "PastActionRecogniser",
    "bigram_after",
    "cascade_next_action",
    "EpicTails",
    "epic_tails",
    "feature_difference",
    "format_table",
    "merge_benchmarks",
    "label_baselines",
    "load_anticipation_data",
    "observed_frame_actions",
    "predict_probs",
    "run_benchmark",
    "score_anticipation",
    "summarize",
    "train_anticipation",
]

FEATURE_MODELS = ("rulstm", "rulstm_fusion", "ms_lstm_head", "avt_head", "aga", "aga_pixel", "aga_iam", "aga_nogate")
PIXEL_MODELS = ("horst",)
#: the models ``train_anticipation(..., aux_weight > 0)`` can train with the observed actions (see ObservedActionAux)
AUX_MODELS = ("rulstm", "avt_head", "aga", "aga_pixel", "aga_iam", "aga_nogate")
_AGA_FAMILY = ("aga", "aga_pixel", "aga_iam", "aga_nogate")
_TWO_STREAM = ("rulstm_fusion", "ms_lstm_head")


# =========================================================================== data
@dataclass
class AnticipationData:
    """One split of an anticipation view in the forms the models read.

    features (N, T, D) float32 RGB frame features of ``encoder``; delta (N, T, D) their temporal
    difference; video (N, 3, T, H, W) uint8 or None; maps (N, C, T, h, w) float32 feature maps
    of the temporal encoder or None; labels: the view's label arrays (numpy).
    """

    split: str
    features: Tensor
    delta: Tensor
    video: Tensor | None
    labels: dict[str, np.ndarray]
    tau_a: float = 1.0
    tau_o: float = 2.0
    encoder: str = "toykitchens_frame_cnn"
    maps: Tensor | None = None

    def __len__(self) -> int:
        return self.features.shape[0]

    def inputs(self, name: str) -> Tensor:
        """What model ``name`` reads: (N, T, D), (N, T, 2D) = [RGB ; Δ], or for HORST the feature
        maps (when loaded) else the uint8 pixels."""
        if name in PIXEL_MODELS:
            if self.maps is not None:
                return self.maps
            if self.video is None:
                raise ValueError(f"{name} reads feature maps or pixels; load the data with maps=True or pixels=True")
            return self.video
        if name in _TWO_STREAM:
            return torch.cat([self.features, self.delta], dim=-1)
        return self.features


def feature_difference(x: Tensor) -> Tensor:
    """Δ_t = f_t − f_{t−1} with Δ_1 = 0: (N, T, D) -> (N, T, D)."""
    n, t, d = check_sequence(x, name="features")
    return torch.cat([x.new_zeros(n, 1, d), x[:, 1:] - x[:, :-1]], dim=1)


def load_anticipation_data(world, splits: Sequence[str] = ("train", "val", "test"), *, tau_a: float = 1.0,
                           tau_o: float = 2.0, frames: int = 8, encoder: str = "toykitchens_frame_cnn",
                           pixels: bool = False, maps: bool = False, maps_pool: int = 1, table=None,
                           **feature_kwargs) -> dict[str, AnticipationData]:
    """``world.anticipation(split, tau_a, tau_o, frames)`` of every split as the cached frame
    features of ``encoder`` (:func:`lecturekit.features.view_features`; ``table`` /
    ``feature_kwargs`` go there), their temporal difference, optionally the uint8 pixels and
    the same encoder's last feature maps (:func:`lecturekit.features.view_maps`, pooled by
    ``maps_pool``; HORST reads them)."""
    from ..features import load_encoder, video_features, view_features, view_maps

    if table is None:
        table = video_features(world, encoder, **feature_kwargs)
    map_encoder = load_encoder(encoder, device=feature_kwargs.get("device")) if maps else None
    out = {}
    for split in splits:
        view = world.anticipation(split, tau_a=tau_a, tau_o=tau_o, frames=frames)
        feats = view_features(view, table)
        video = view.tensors()[0] if pixels else None
        fmaps = view_maps(view, pool=maps_pool, encoder=map_encoder, device=feature_kwargs.get("device")) if maps else None
        labels = {k: np.asarray(v) for k, v in view.labels.items()}
        labels["frame_action"] = observed_frame_actions(world, view)
        labels["frame_latest_action"] = observed_frame_actions(world, view, rule="latest")
        labels["frame_action_ahead"] = observed_frame_actions(world, view, ahead=tau_a)
        labels["frame_upcoming_ahead"] = observed_frame_actions(world, view, rule="upcoming", ahead=tau_a)
        out[split] = AnticipationData(split, feats, feature_difference(feats), video, labels, tau_a, tau_o,
                                      encoder=encoder, maps=fmaps)
    return out


def observed_frame_actions(world, view, *, rule: str = "in_progress", ahead: float = 0.0) -> np.ndarray:
    """Per-frame action labels of the window of a view: (N, T) int64, -1 where none.

    The auxiliary targets of :func:`train_anticipation` (``aux_weight``, ``aux_labels``):

    * ``rule="in_progress"`` (the AGA / AVT papers' frame labels): frame
      ``view.frame_index[i, t]`` of video ``view.video_index[i]`` shows action ``a`` when it lies
      inside that action's segment ``[start, stop]`` of the video's script; idle frames between
      actions and black frames (index -1) get -1;
    * ``rule="latest"``: the latest action STARTED at or before the frame, also during the idle
      gap after it (-1 only before the video's first action and on black frames); at the
      window's last frame this is the cascade's "last past action" whenever it has started;
    * ``rule="upcoming"``: the action in progress, else (idle frame) the next one to start; -1
      after the video's last action and on black frames.

    ``ahead`` (seconds) reads the label ``round(ahead · fps)`` frames AFTER each observed frame
    (frames past the video's end get -1): dense anticipation labels. The AGA paper samples 1
    frame per second with tau_a = 1 s, so its "label of the next sampled frame" is the label
    tau_a ahead; ToyKitchens windows sample 4 frames per second, where the two differ. On
    ToyKitchens an idle gap always follows the cut, so tau_a after the window's last frame no
    action is in progress yet (``in_progress`` gives -1 there) and the ``upcoming`` one is the
    benchmark's target.

    ``load_anticipation_data`` stores ``labels["frame_action"]`` (in progress),
    ``labels["frame_latest_action"]``, ``labels["frame_action_ahead"]`` (in progress, tau_a
    ahead) and ``labels["frame_upcoming_ahead"]`` (upcoming, tau_a ahead).
    """
    if rule not in ("in_progress", "latest", "upcoming"):
        raise ValueError(f"rule: expected 'in_progress', 'latest' or 'upcoming', got {rule!r}")
    if ahead < 0:
        raise ValueError(f"ahead: expected >= 0 seconds, got {ahead}")
    shift = int(round(ahead * float(world.fps)))
    idx = np.asarray(view.frame_index)
    vids = np.asarray(view.video_index)
    out = np.full(idx.shape, -1, dtype=np.int64)
    for v in np.unique(vids):
        rows = np.nonzero(vids == v)[0]
        script = world.scripts[int(v)]
        f = np.where(idx[rows] >= 0, idx[rows] + shift, -1)                    # (n, T)
        f = np.where(f < script.num_frames, f, -1)                             # past the video's end: none
        seg = np.searchsorted(np.asarray(script.start), f, side="right") - 1   # last segment started by f
        inside = (f >= 0) & (seg >= 0)
        segc = np.clip(seg, 0, None)
        acts = np.asarray(script.action)
        if rule == "upcoming":                       # in progress, else the next one to start
            busy = inside & (f <= np.asarray(script.stop)[segc])
            nxt = np.where(busy, segc, seg + 1)
            ok = (f >= 0) & (nxt < len(acts))
            out[rows] = np.where(ok, acts[np.clip(nxt, 0, len(acts) - 1)], -1)
            continue
        if rule == "in_progress":
            inside &= f <= np.asarray(script.stop)[segc]
        out[rows] = np.where(inside, acts[segc], -1)
    return out


# =========================================================================== scoring
@dataclass(frozen=True)
class EpicTails:
    """EK-100 tail classes computed on the training labels (80% coverage head)."""

    verbs: np.ndarray
    nouns: np.ndarray
    actions: np.ndarray


def epic_tails(train_labels: Mapping[str, np.ndarray], coverage: float = HEAD_COVERAGE) -> EpicTails:
    """Tail verbs / nouns / actions of the training rows (:func:`lecturekit.data.ek100.tail_classes`)."""
    return EpicTails(*(np.asarray(tail_classes(class_counts(train_labels[k]), coverage), dtype=np.int64)
                       for k in ("verb", "noun", "action")))


def score_anticipation(action_probs, labels: Mapping[str, np.ndarray], actions_table, tails: EpicTails,
                       k: int = 5) -> dict:
    """Every number of the benchmark for (N, A) action probabilities.

    Returns ``{"mt5r": {"overall"|"unseen"|"tail"|"seen": {"verb", "noun", "action"}},
    "top1": action top-1 accuracy, "top5": action top-5 accuracy, "n": rows, "n_unseen": ...}``
    (fractions, not percent). Verb and noun probabilities are marginals of the action ones.
    """
    p = np.asarray(action_probs, dtype=np.float64)
    table = np.asarray(actions_table)
    if p.ndim != 2 or p.shape[1] != table.shape[0]:
        raise ValueError(f"action_probs: expected (N, {table.shape[0]}) (one column per action), got {p.shape}")
    yv, yn, ya = (np.asarray(labels[key]) for key in ("verb", "noun", "action"))
    if not np.array_equal(table[ya, 0], yv) or not np.array_equal(table[ya, 1], yn):
        raise ValueError("labels: verb / noun labels disagree with actions_table[action]")
    pv = marginalize(p, table[:, 0], int(table[:, 0].max()) + 1)
    pn = marginalize(p, table[:, 1], int(table[:, 1].max()) + 1)
    unseen = np.asarray(labels["unseen"]).astype(bool)
    mt5r = epic_subsets(pv, pn, p, yv, yn, ya, tail_verbs=tails.verbs, tail_nouns=tails.nouns,
                        unseen=unseen, k=k)
    seen = ~unseen
    mt5r["seen"] = {name: (mean_topk_recall(s[seen], y[seen], k) if seen.any() else math.nan)
                    for name, s, y in (("verb", pv, yv), ("noun", pn, yn), ("action", p, ya))}
    return {"mt5r": mt5r, "top1": topk_accuracy(p, ya, 1), "top5": topk_accuracy(p, ya, 5),
            "n": int(len(ya)), "n_unseen": int(unseen.sum())}


def label_baselines(world, split: str, *, tau_a: float = 1.0, tau_o: float = 2.0, frames: int = 8,
                    ngram_orders: Sequence[int] = (1, 2, 3)) -> dict[str, np.ndarray]:
    """(N, A) probabilities of the label-only references on a split (rows as the benchmark's):
    ``ngram{n}`` (fitted on the train videos, reading the TRUE past labels; ``ngram1`` is the
    training class prior, which reads nothing) and ``bayes`` (the
    grammar's Bayes-optimal next action given the true past labels, kitchen unknown)."""
    view = world.anticipation(split, tau_a=tau_a, tau_o=tau_o, frames=frames)
    out = {f"ngram{n}": ngram_next_action(world, view, n=n) for n in ngram_orders}
    out["bayes"] = bayes_next_action(world, view)
    return out


# =========================================================================== the cascade baseline
class PastActionRecogniser(nn.Module):
    """Stage 1 of the cascade: the observed window's features -> the LAST action before the
    window's end. A two-layer perceptron over the flattened window:

        (B, T, D) -> LN -> Linear(T·D, hidden) -> ReLU -> Dropout -> Linear(hidden, A + 1)

    Class ``A`` is "nothing yet" (the window precedes the first action of the video), the
    bigram's start-of-video context.
    """

    def __init__(self, frames: int, feat_dim: int, num_actions: int, hidden: int = 256, dropout: float = 0.2):
        super().__init__()
        self.frames, self.feat_dim = frames, feat_dim
        self.net = nn.Sequential(nn.Flatten(1), nn.LayerNorm(frames * feat_dim), nn.Linear(frames * feat_dim, hidden),
                                 nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_actions + 1))

    def forward(self, x: Tensor) -> Tensor:
        check_sequence(x, length=self.frames, dim=self.feat_dim, name="observed features")
        return self.net(x)                                                    # (B, A + 1)


def _last_past_action(labels: Mapping[str, np.ndarray], num_actions: int) -> np.ndarray:
    last = np.asarray(labels["history"])[:, -1]
    return np.where(last < 0, num_actions, last)                              # A = nothing yet


def cascade_next_action(world, train: AnticipationData, ev: AnticipationData, *, epochs: int = 30, lr: float = 1e-3,
                        weight_decay: float = 1e-2, batch_size: int = 32, k: float = 0.1, seed: int = 0,
                        device=None) -> tuple[np.ndarray, dict]:
    """The realistic two-stage baseline: recognise the last past action from the same
    features the models read, then apply the bigram of the training videos.

        P(next = b | window) = Σ_a P(last = a | window) · P_bigram(b | a)

    Stage 1 is :class:`PastActionRecogniser`, trained with cross-entropy against the true last
    action (the label-only rows' input) with the benchmark's recipe; stage 2 is
    ``NGram(n=2, k)``, fitted on the training action sequences, exactly the ``ngram2`` row,
    which reads the TRUE last action: the gap between the two rows is what recognising it costs.

    Returns ``(N, A)`` probabilities of ``ev`` and ``{"recognition_top1", "seconds"}``.
    """
    num_actions = len(world.actions)
    seed_everything(seed)
    n, t, d = check_sequence(train.features, name="train features")
    rec = PastActionRecogniser(t, d, num_actions)
    target = torch.as_tensor(_last_past_action(train.labels, num_actions))
    start = time.perf_counter()
    fit(rec, (train.features, target), epochs=epochs, lr=lr, weight_decay=weight_decay, scheduler="cosine",
        batch_size=batch_size, seed=seed, metrics=(), device=device, progress=False)
    seconds = time.perf_counter() - start
    rec = rec.cpu().eval()
    with torch.no_grad():
        p_last = rec(ev.features).double().softmax(-1).numpy()               # (N, A + 1)
    truth = _last_past_action(ev.labels, num_actions)
    info = {"recognition_top1": float((p_last.argmax(1) == truth).mean()), "seconds": round(seconds, 2)}
    return bigram_after(world, p_last, k=k), info


def bigram_after(world, last_action_probs, *, k: float = 0.1) -> np.ndarray:
    """Stage 2 of the cascade: ``(N, A + 1)`` probabilities of the last past action (column A =
    nothing yet) -> ``(N, A)`` probabilities of the next one under the bigram of the training
    videos (``NGram(2, k)``). With one-hot rows of the true last action this is the ``ngram2`` row."""
    num_actions = len(world.actions)
    p = np.asarray(last_action_probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != num_actions + 1:
        raise ValueError(f"last_action_probs: expected (N, {num_actions + 1}) (A actions + 'nothing yet'), got {p.shape}")
    bigram = NGram(2, k, num_actions).fit(world.action_sequences("train"))
    contexts = np.append(np.arange(num_actions), -1)[:, None]                # (A + 1, 1); -1 = start
    return p @ bigram.predict(contexts)                                       # (A + 1, A) transition


# =========================================================================== models
class AnticipationHead(nn.Module):
    """A table model behind one interface: inputs -> logits (B, T', K); the anticipation is
    ``[:, -1]``. See the module docstring for what each model reads."""

    def __init__(self, name: str, feat_dim: int, num_classes: int, *, preset: str = "small", pool: int = 1,
                 **overrides):
        super().__init__()
        self.name, self.feat_dim = name, feat_dim
        # HORST only: average-pool every map / frame by ``pool`` (keeps it within a CPU-minute budget)
        self.pool = nn.AvgPool3d((1, pool, pool)) if pool > 1 else nn.Identity()
        if name in ("rulstm", "avt_head", "aga", "aga_pixel", "aga_iam", "aga_nogate"):
            kw = dict(feat_in=feat_dim)
        elif name == "rulstm_fusion":
            kw = dict(feat_dims=(feat_dim, feat_dim))
        elif name == "ms_lstm_head":
            kw = dict(context_dim=feat_dim, action_dim=feat_dim)
        elif name == "horst":
            kw = dict(in_channels=3)          # pixels; the feature maps' channels come in overrides
        else:
            raise ValueError(f"no benchmark adapter for model {name!r}; known: {FEATURE_MODELS + PIXEL_MODELS}")
        self.model = build_model(name, preset, num_classes=num_classes, **{**kw, **overrides})

    def forward(self, x: Tensor) -> Tensor:
        if self.name == "horst":
            check_video(x, channels=self.model.in_channels, name="horst input (maps or pixels)")
            return self.model(self.pool(x))                                   # (B, T, K)
        width = 2 * self.feat_dim if self.name in _TWO_STREAM else self.feat_dim
        check_sequence(x, dim=width, name=f"{self.name} input")
        if self.name == "avt_head":
            return self.model(x)[:, None]                                     # (B, 1, K)
        if self.name == "rulstm_fusion":
            return self.model(x[..., : self.feat_dim], x[..., self.feat_dim :])   # (B, T, K)
        if self.name == "ms_lstm_head":
            return self.model(x[..., : self.feat_dim], x[..., self.feat_dim :]).logits   # stage 2
        return self.model(x)                                                  # (B, T, K)


def _anticipation_ce(logits: Tensor, target: Tensor) -> Tensor:
    return cross_entropy_per_step(logits, target)


def _observed_ce(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy over the labelled entries (label >= 0) of (B, T, K) logits and (B, T)
    labels; 0 when a batch has none (PyTorch's mean would be NaN)."""
    k = logits.shape[-1]
    ce = nn.functional.cross_entropy(logits.float().reshape(-1, k), labels.reshape(-1), ignore_index=-1,
                                     reduction="sum")
    return ce / (labels >= 0).sum().clamp(min=1)


class ObservedActionAux(nn.Module):
    """Training-time wrapper: what an :class:`AnticipationHead` needs to ALSO learn the actions
    it observes (``train_anticipation(..., aux_weight=w)``). Labels: (B, T + 1) = the action in
    progress at each of the T observed frames (-1 = none, :func:`observed_frame_actions`), then
    the upcoming action. What is supervised with them depends on the model:

    * AGA and its ablations: nothing is added. The model's own per-step predictions y_t (its
      memory keys and query) are trained the released way (``train.py`` of the official code,
      ``lecturekit.losses.dense_next_step_loss``): step t predicts the label of the NEXT
      observed frame (``shift=1``), the last step the upcoming action, counted once more:
      ``L = CE(y_{T-1}, a) + w · mean_{b,t} CE(y_t, label_{t+1})`` (ignored entries count 0 in
      the mean, as released; at w = 1 this is ``dense_next_step_loss`` without class weights).
      With labels already read tau_a ahead (``"frame_action_ahead"``) step t takes label t
      (``shift=0``): the paper's 1 fps makes "the next frame" and "tau_a ahead" the same thing.
      The benchmark's default trains every step on the upcoming action instead.
    * avt_head: AVT's own L_past and L_feat (``lecturekit.models.avt.avt_losses``; the paper
      trains with them, weights 1): the classifier on [z_1, ẑ_2, ..., ẑ_T] against the action
      at each observed frame, and the next-feature regression; ``L = CE_future + w (L_past + L_feat)``.
    * rulstm: not in the paper. A benchmark-side auxiliary head, LN + Linear(H, K), on the
      R-LSTM's cell state at every step (what the rolling LSTM has read so far) predicts the
      action in progress at that frame; ``L = benchmark loss + w · CE_aux``. The head is used
      in training only; :func:`train_anticipation` returns the plain head.

    Forward: inputs -> a tuple the matching loss (:meth:`loss`) reads.
    """

    def __init__(self, head: AnticipationHead, weight: float, *, shift: int = 1):
        super().__init__()
        if shift not in (0, 1):
            raise ValueError(f"shift: expected 0 or 1, got {shift}")
        self.shift = shift
        if head.name not in AUX_MODELS:
            raise ValueError(f"aux_weight: the observed-action loss is defined for {AUX_MODELS}, got {head.name!r}")
        if not weight > 0:
            raise ValueError(f"aux_weight: expected > 0, got {weight}")
        self.head, self.weight = head, float(weight)
        if head.name == "rulstm":
            hidden, num_classes = head.model.hidden, head.model.head[-1].out_features
            self.aux = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, num_classes))
        else:
            self.aux = None

    def forward(self, x: Tensor):
        name, model = self.head.name, self.head.model
        check_sequence(x, dim=self.head.feat_dim, name=f"{name} input")
        if name == "avt_head":
            return model.forward_all(x), x
        if name == "rulstm":
            h_u, c_r = model.forward_features(x)
            return model.forward_head((h_u, c_r)), self.aux(c_r)               # (B, T, K) each
        return model(x)                                                       # AGA: (B, T, K)

    def loss(self, out, labels: Tensor) -> Tensor:
        """The loss of the model's kind (see the class docstring); labels (B, T + 1)."""
        from ..models.avt import avt_losses   # models sit below analysis

        frame, target = labels[:, :-1], labels[:, -1]
        name, w = self.head.name, self.weight
        if name == "avt_head":
            avt_out, x = out                       # L_past by _observed_ce: a batch may hold no labelled frame
            parts = avt_losses(avt_out, x, target, None, feat_weight=w)
            return parts["total"] + w * _observed_ce(avt_out.past_logits, frame)
        if name == "rulstm":
            logits, aux = out
            return cross_entropy_per_step(logits, target) + w * _observed_ce(aux, frame)
        b, t, k = out.shape                           # AGA: step t -> frame label t + shift, the last -> target
        steps = torch.cat([frame[:, self.shift : self.shift + t - 1], target[:, None]], dim=1)    # (B, T)
        dense = nn.functional.cross_entropy(out.float().reshape(b * t, k), steps.reshape(b * t),
                                            ignore_index=-1, reduction="none").reshape(b, t)
        return dense[:, -1].mean() + w * dense.mean()


@torch.no_grad()
def predict_probs(head: nn.Module, x: Tensor, batch_size: int = 128) -> np.ndarray:
    """Softmax of the last-step logits: (N, A) float64 numpy (eval mode, no gradients)."""
    head.eval()
    dev = next(head.parameters()).device
    out = []
    for i in range(0, x.shape[0], batch_size):
        xb = x[i : i + batch_size].to(dev)
        xb = xb.float().div_(255.0) if xb.dtype == torch.uint8 else xb
        out.append(head(xb)[:, -1].float().softmax(-1).cpu())
    return torch.cat(out).double().numpy()


def train_anticipation(name: str, train: AnticipationData, num_classes: int, *, epochs: int, lr: float = 1e-3,
                       weight_decay: float = 1e-2, batch_size: int = 32, seed: int = 0, device=None,
                       aux_weight: float = 0.0, aux_labels: str = "frame_action",
                       **overrides) -> tuple[AnticipationHead, dict]:
    """Build ``name`` (small preset, seeded) and train it with the benchmark recipe.

    ``aux_weight`` > 0 also trains on the OBSERVED actions (``train.labels[aux_labels]``,
    dense per-frame labels: ``"frame_action"``, the action in progress, as the papers,
    ``"frame_latest_action"``, or ``"frame_action_ahead"``, the action in progress tau_a after
    each frame; see :func:`observed_frame_actions`), with weight ``aux_weight``:
    for AGA its per-step predictions the released way, for AVT-h its own past-action and
    feature losses, for RU-LSTM a benchmark-side auxiliary head (:class:`ObservedActionAux`;
    models in ``AUX_MODELS``). Default 0: the benchmark's loss only.

    Returns the trained :class:`AnticipationHead` (without any auxiliary head) and
    ``{"seconds", "params", "final_loss"}`` (+ ``"aux_weight"`` when > 0; ``params`` counts the
    returned head).
    """
    seed_everything(seed)
    x, y = train.inputs(name), torch.as_tensor(train.labels["action"])
    if name in PIXEL_MODELS:
        overrides = {"in_channels": int(x.shape[1]), **overrides}
    head = AnticipationHead(name, train.features.shape[-1], num_classes, **overrides)
    module, loss = head, _anticipation_ce
    if aux_weight:
        if aux_labels not in train.labels:
            raise ValueError(f"aux_labels: expected train.labels[{aux_labels!r}] (N, T), observed actions "
                             "(load_anticipation_data adds 'frame_action' and 'frame_latest_action'; see "
                             f"observed_frame_actions), got keys {sorted(train.labels)}")
        frame = torch.as_tensor(np.asarray(train.labels[aux_labels]), dtype=torch.long)
        if frame.shape != (x.shape[0], train.features.shape[1]):
            raise ValueError(f"{aux_labels}: expected shape {(x.shape[0], train.features.shape[1])}, "
                             f"got {tuple(frame.shape)}")
        module = ObservedActionAux(head, aux_weight, shift=0 if aux_labels.endswith("_ahead") else 1)
        y, loss = torch.cat([frame, y[:, None]], dim=1), module.loss            # (N, T + 1)
    start = time.perf_counter()
    hist = fit(module, (x, y), loss=loss, epochs=epochs, lr=lr, weight_decay=weight_decay,
               scheduler="cosine", batch_size=batch_size, seed=seed, metrics=(), device=device, progress=False)
    seconds = time.perf_counter() - start
    info = {"seconds": round(seconds, 2), "params": sum(p.numel() for p in head.parameters()),
            "final_loss": float(hist["train_loss"][-1]) if "train_loss" in hist else math.nan}
    if aux_weight:
        info.update(aux_weight=float(aux_weight), aux_labels=aux_labels)
    return head, info


# =========================================================================== the benchmark
def run_benchmark(world, data: Mapping[str, AnticipationData], models: Sequence[str], *, eval_split: str = "test",
                  epochs: int | Mapping[str, int] = 20, seeds: Sequence[int] = (0,),
                  seeds_for: Mapping[str, Sequence[int]] | None = None,
                  model_kwargs: Mapping[str, Mapping] | None = None, lr: float = 1e-3,
                  ngram_orders: Sequence[int] = (1, 2, 3), chance_seed: int = 0, cascade: bool = True,
                  cascade_epochs: int = 30, aux_weight: float = 1.0, log=None) -> dict:
    """Train every model of ``models`` on ``data["train"]``, score it on ``data[eval_split]`` next to
    the label-only references and a random-score chance row, with :func:`score_anticipation`.

    ``epochs``: one number or per model; ``seeds_for``: per-model seed lists overriding ``seeds``;
    ``model_kwargs``: per-model overrides (e.g. ``{"horst": {"pool": 4, "hidden": (16,)}}``);
    ``cascade``: add the row of :func:`cascade_next_action` (trained with every seed of ``seeds``).
    A model name with the suffix ``+aux`` (e.g. ``"aga+aux"``, models of ``AUX_MODELS``) is a row
    of that model trained also on the observed actions (``train_anticipation(...,
    aux_weight=aux_weight)``, :class:`ObservedActionAux`); ``epochs`` / ``seeds_for`` /
    ``model_kwargs`` are looked up under the row name.
    For the action-guided AGA rows each seed's ``train`` entry also holds ``dependency_spearman``:
    :func:`lecturekit.analysis.dependency.dependency_grammar_correlation` of the trained model against
    the world's true transitions (``world.transition_matrix("train")``).
    Returns ``{"rows": {row name: {"scores": [per-seed score dicts], "kind", "seeds", "train": [...]}},
    "tails": {...}, "settings": {...}}``.
    """
    tr, ev = data["train"], data[eval_split]
    tails = epic_tails(tr.labels)
    table = np.asarray(world.actions_table)
    num_actions = len(world.actions)
    info = ev.labels
    rows: dict[str, dict] = {}
    rng = np.random.default_rng(chance_seed)
    rows["chance"] = {"kind": "random scores", "scores": [score_anticipation(rng.random((len(ev), num_actions)),
                                                                            info, table, tails)]}
    for ref, probs in label_baselines(world, eval_split, tau_a=ev.tau_a, tau_o=ev.tau_o,
                                      frames=ev.features.shape[1], ngram_orders=ngram_orders).items():
        kind = ("labels only: training class prior" if ref == "ngram1" else
                "labels only: TRUE past labels" + (", grammar-optimal" if ref == "bayes" else ""))
        rows[ref] = {"kind": kind, "scores": [score_anticipation(probs, info, table, tails)]}
    if cascade:
        entry = {"kind": "features: recognise the last action, then bigram", "seeds": list(seeds),
                 "epochs": cascade_epochs, "scores": [], "train": []}
        for s in seeds:
            probs, cinfo = cascade_next_action(world, tr, ev, epochs=cascade_epochs, lr=lr, seed=s)
            entry["scores"].append(score_anticipation(probs, info, table, tails))
            entry["train"].append(cinfo)
            if log is not None:
                log(f"cascade seed {s}: last action recognised {100 * cinfo['recognition_top1']:.1f}%, action MT5R "
                    f"{100 * entry['scores'][-1]['mt5r']['overall']['action']:.1f}")
        rows["cascade"] = entry
    for name in models:
        n_epochs = epochs[name] if isinstance(epochs, Mapping) else epochs
        run_seeds = list((seeds_for or {}).get(name, seeds))
        kw = dict((model_kwargs or {}).get(name, {}))
        model, aux = (name[: -len("+aux")], aux_weight) if name.endswith("+aux") else (name, 0.0)
        kind = ("feature maps" if tr.maps is not None else "pixels") if model in PIXEL_MODELS else "frame features"
        entry = {"kind": kind + (" + observed-action loss" if aux else ""), "seeds": run_seeds,
                 "epochs": n_epochs, "kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()},
                 "scores": [], "train": []}
        if aux:
            entry["aux_weight"] = aux
        for s in run_seeds:
            head, tinfo = train_anticipation(model, tr, num_actions, epochs=n_epochs, lr=lr, seed=s,
                                             **({"aux_weight": aux} if aux else {}), **kw)
            entry["scores"].append(score_anticipation(predict_probs(head, ev.inputs(model)), info, table, tails))
            if model in ("aga", "aga_iam", "aga_nogate"):                    # attention over actions
                tinfo["dependency_spearman"] = dependency_grammar_correlation(head.model.eval(),
                                                                              world.transition_matrix("train"))
            entry["train"].append(tinfo)
            if log is not None:
                m = entry["scores"][-1]["mt5r"]
                log(f"{name} seed {s}: {tinfo['seconds']:.1f} s, action MT5R overall {100 * m['overall']['action']:.1f}"
                    f" unseen {100 * m['unseen']['action']:.1f}")
        rows[name] = entry
    return {"rows": rows, "tails": {k: getattr(tails, k).tolist() for k in ("verbs", "nouns", "actions")},
            "settings": {"eval_split": eval_split, "epochs": epochs if not isinstance(epochs, Mapping) else dict(epochs),
                         "lr": lr, "seeds": list(seeds), "tau_a": ev.tau_a, "tau_o": ev.tau_o,
                         "frames": int(ev.features.shape[1]), "ngram_orders": list(ngram_orders),
                         "train_rows": len(tr), "eval_rows": len(ev), "num_actions": num_actions,
                         "encoder": tr.encoder}}


def _mean(xs: Sequence[float]) -> float:
    return float(np.mean(xs)) if len(xs) else math.nan


def summarize(row: dict) -> dict:
    """Mean over seeds of the numbers of one row (plus the std of action MT5R overall / unseen)."""
    sc = row["scores"]
    out = {f"{sub}_{task}": _mean([s["mt5r"][sub][task] for s in sc])
           for sub in ("overall", "unseen", "tail", "seen") for task in ("action", "verb", "noun")}
    out["top1"] = _mean([s["top1"] for s in sc])
    out["top5"] = _mean([s["top5"] for s in sc])
    gaps = [s["mt5r"]["seen"]["action"] - s["mt5r"]["unseen"]["action"] for s in sc]
    out["gap_action"] = _mean(gaps)
    out["gap_action_std"] = float(np.std(gaps)) if len(gaps) > 1 else 0.0
    out["overall_action_std"] = float(np.std([s["mt5r"]["overall"]["action"] for s in sc])) if len(sc) > 1 else 0.0
    out["n_seeds"] = len(sc)
    return out


MERGE_SETTINGS = ("eval_split", "tau_a", "tau_o", "frames", "train_rows", "eval_rows", "num_actions", "encoder", "lr",
                  "world")


def merge_benchmarks(tables: Sequence[dict]) -> dict:
    """One benchmark table from runs of :func:`run_benchmark` over disjoint rows (or seeds).

    A long benchmark can run as several processes, each with its own ``--models`` list; every
    row re-seeds its own training, so a row does not depend on which rows ran before it. The
    runs must share the world and the window (``MERGE_SETTINGS``); rows found in several runs
    must agree seed by seed (the label rows and the cascade are computed by every run). Seeds
    of one row from different runs are joined in order of appearance. ``summary`` is recomputed;
    ``settings["total_seconds"]`` is the sum over the runs.

    Raises ``ValueError`` when the runs differ in a shared setting or disagree on a row.
    """
    if not tables:
        raise ValueError("merge_benchmarks: expected at least one table, got none")
    base = tables[0]["settings"]
    rows: dict[str, dict] = {}
    for t in tables:
        for key in MERGE_SETTINGS:
            if t["settings"].get(key) != base.get(key):
                raise ValueError(f"merge_benchmarks: setting {key!r} differs between runs: "
                                 f"{base.get(key)!r} vs {t['settings'].get(key)!r}")
        for name, row in t["rows"].items():
            if name not in rows:
                rows[name] = copy.deepcopy(row)
                continue
            have = rows[name]
            if "seeds" not in row:                                       # label rows: no seeds, deterministic
                if row["scores"] != have["scores"]:
                    raise ValueError(f"merge_benchmarks: row {name!r} differs between runs")
                continue
            for seed, score, info in zip(row["seeds"], row["scores"], row["train"]):
                if seed in have["seeds"]:
                    if have["scores"][have["seeds"].index(seed)] != score:
                        raise ValueError(f"merge_benchmarks: row {name!r} seed {seed} differs between runs")
                else:
                    have["seeds"].append(seed)
                    have["scores"].append(score)
                    have["train"].append(info)
    settings = copy.deepcopy(base)
    settings["epochs"] = {}
    for t in tables:
        epochs = t["settings"]["epochs"]
        settings["epochs"].update(epochs if isinstance(epochs, Mapping) else {n: epochs for n in t["rows"]})
    settings["seeds"] = sorted({s for r in rows.values() for s in r.get("seeds", [])})
    settings["total_seconds"] = round(sum(t["settings"].get("total_seconds", 0.0) for t in tables), 1)
    settings["merged_runs"] = len(tables)
    return {**copy.deepcopy(tables[0]), "rows": rows, "settings": settings,
            "summary": {name: summarize(row) for name, row in rows.items()}}


def format_table(result: dict) -> str:
    """Plain-text table (percent): action MT5R overall / unseen / tail / seen, verb and noun MT5R
    overall / unseen / tail, action top-1 / top-5, the seen − unseen action gap, seeds."""
    head = (f"{'row':<14}{'input':<15}{'A all':>7}{'A uns':>7}{'A tail':>7}{'A seen':>7}{'V all':>7}{'V uns':>7}"
            f"{'V tail':>7}{'N all':>7}{'N uns':>7}{'N tail':>7}{'top1':>7}{'top5':>7}{'gap':>7}{'seeds':>6}")
    lines = [head, "-" * len(head)]
    short = {"random scores": "-", "frame features": "features", "pixels": "pixels", "feature maps": "maps",
             "labels only: training class prior": "train prior",
             "features: recognise the last action, then bigram": "feat. cascade",
             "frame features + observed-action loss": "feat. + obs."}
    for name, row in result["rows"].items():
        s = summarize(row)
        kind = short.get(row["kind"], "true labels")
        vals = [s[k] for k in ("overall_action", "unseen_action", "tail_action", "seen_action", "overall_verb",
                               "unseen_verb", "tail_verb", "overall_noun", "unseen_noun", "tail_noun", "top1",
                               "top5", "gap_action")]
        lines.append(f"{name:<14}{kind:<15}" + "".join(f"{100 * v:>7.1f}" for v in vals) + f"{s['n_seeds']:>6}")
    return "\n".join(lines)
