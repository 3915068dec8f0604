"""Losses for recognition over time and for action anticipation.

Papers:
    M. S. Aliakbarian, F. S. Saleh, M. Salzmann, B. Fernando, L. Petersson, L. Andersson,
    "Encouraging LSTMs to Anticipate Actions Very Early", ICCV 2017.
    https://arxiv.org/abs/1703.07023                      (Eq. 1 anticipation loss; Eqs. 7-9 CE, ECE, LGL)
    S. Ma, L. Sigal, S. Sclaroff, "Learning Activity Progression in LSTMs for Activity Detection
    and Early Detection", CVPR 2016.                       (ranking loss on the detection score)
    T.-M. Tai, G. Casarin, A. Pilzer, W. Nutt, O. Lanz, "Action-Guided Attention", ICLR 2026,
    https://arxiv.org/abs/2603.01743                      (dense next-step loss, 1/sqrt(n+1) weights)

Implements
    cross_entropy_per_step     softmax cross-entropy at every step of a (B, T, K) sequence
    anticipation_loss          MS-LSTM Eq. (1): false negatives weighted 1, false positives t/T
    anticipation_loss_per_step the (B, T) per-step terms of Eq. (1), before the 1/N normalisation
    final_step_bce             MS-LSTM Eq. (7): binary cross-entropy over all classes at t = T only
    ece_loss                   MS-LSTM Eq. (8): exponentially weighted cross-entropy, e^{-(T-t)}
    lgl_loss                   MS-LSTM Eq. (9): linearly growing loss, weight t/T on both terms
    ranking_detection_loss     Ma et al.: the true-class score must not fall below its running max
    inverse_sqrt_class_weights AGA's class weights w_c ∝ 1/sqrt(n_c + 1), mean 1
    dense_next_step_loss       AGA's "label one step ahead" sequence loss

Notation (MS-LSTM, Sec. 3.1): ``y_t(k)`` one-hot label, ``ŷ_t(k) = softmax(logits_t)_k``, t = 1..T
(1-based, as in the paper), N = number of classes (we write K in shapes).

Normalisation (state it whenever you quote a number):
    * Eq. (1) carries 1/N with N the number of CLASSES; :func:`anticipation_loss` applies it by
      default (``class_normalize=True``), then averages over the batch (Eq. (4)'s 1/V over
      sequences). The released Keras code instead hard-codes T = 150, 1/21 and a batch of 32,
      and starts t at 0; none of that is copied.
    * Eqs. (7)-(9) are printed without 1/N, and we follow the print (``class_normalize=False``
      by default); batch reduction is again the mean over sequences.
    * Eqs. (7)-(9) are printed without the leading minus sign on (7) and with ``log y_t(k)``
      in (9); both are typos (the losses must be negative log-likelihoods of ŷ), read here as
      ``-[... log ŷ ...]``.
    * ECE and LGL are sometimes quoted with the true-class term only; the paper's Eqs. (8)-(9)
      print both the true-class and the false-positive terms, and that is what we implement.

Shapes: logits (B, T, K), target (B,) (one label per sequence, replicated over time) or (B, T).
All losses take logits and compute log-probabilities in float32 with ``log_softmax``, so they are
stable under autocast and for confident predictions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from lecturekit.layers.shapes import check_shape


# --------------------------------------------------------------------------- helpers
def _check(logits: Tensor, target: Tensor, *, allow_negative: bool = False) -> tuple[int, int, int, Tensor]:
    """Validate (B, T, K) logits and a (B,) or (B, T) target; return B, T, K and a (B, T) target.

    Negative ids (an ``ignore_index``) are refused unless ``allow_negative``.
    """
    d = check_shape(logits, "B T K", name="logits")
    b, t, k = d["B"], d["T"], d["K"]
    if not isinstance(target, Tensor):
        raise TypeError(f"target: expected a torch.Tensor of class ids, got {type(target).__name__}")
    if target.dtype.is_floating_point:
        raise ValueError(f"target: expected integer class ids (B,) or (B, T), got dtype {target.dtype}")
    if target.shape == (b,):
        target = target[:, None].expand(b, t)                        # (B, T)
    elif target.shape != (b, t):
        raise ValueError(f"target: expected shape (B={b},) or (B={b}, T={t}), got {tuple(target.shape)}")
    if not allow_negative and target.numel() and int(target.min()) < 0:
        raise ValueError(f"target: class ids must be >= 0, got {int(target.min())}")
    valid = target[target >= 0]
    if valid.numel() and int(valid.max()) >= k:
        raise ValueError(f"target: class ids must be < K={k}, got {int(valid.max())}")
    return b, t, k, target


def _upcast(x: Tensor) -> Tensor:
    """Half-precision logits (autocast) are promoted to float32; float32/float64 are kept."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _log_probs(logits: Tensor) -> tuple[Tensor, Tensor]:
    """log ŷ and log(1 - ŷ), both (B, T, K) in float32, without forming 1 - ŷ directly."""
    log_p = F.log_softmax(_upcast(logits), dim=-1)
    # log(1 - e^x) for x <= 0, the stable "log1mexp": two branches around x = -ln 2.
    x = log_p.clamp(max=-torch.finfo(log_p.dtype).tiny)
    log_1mp = torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))
    return log_p, log_1mp


def _binary_terms(logits: Tensor, target: Tensor, fp_weight: Tensor) -> Tensor:
    """Per step: -Σ_k [ y log ŷ + w_t (1 - y) log(1 - ŷ) ]  ->  (B, T). ``fp_weight`` is (T,)."""
    b, t, k, target = _check(logits, target)
    log_p, log_1mp = _log_probs(logits)                               # (B, T, K) each
    onehot = F.one_hot(target, k).bool()                              # (B, T, K)
    true_term = log_p.gather(-1, target[..., None])[..., 0]           # (B, T)
    false_term = torch.where(onehot, torch.zeros_like(log_1mp), log_1mp).sum(-1)  # (B, T)
    return -(true_term + fp_weight.to(false_term) * false_term)


def _reduce(per_seq: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per_seq.mean()
    if reduction == "sum":
        return per_seq.sum()
    if reduction == "none":
        return per_seq
    raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")


def _steps(t: int, device) -> Tensor:
    return torch.arange(1, t + 1, device=device, dtype=torch.float32)  # t = 1..T


# --------------------------------------------------------------------------- cross-entropy
def cross_entropy_per_step(
    logits: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Softmax cross-entropy at every step: ``-log ŷ_t(y_t)``.

    Args:
        logits: ``(B, T, K)``.
        target: ``(B,)`` (replicated over the T steps) or ``(B, T)``.
        weight: optional ``(K,)`` class weights.
        ignore_index: target value that contributes nothing.
        reduction: ``"mean"`` (PyTorch's: weighted mean over non-ignored steps), ``"sum"`` or
            ``"none"`` (``(B, T)``).
    """
    b, t, k, target = _check(logits, target, allow_negative=True)
    loss = F.cross_entropy(
        _upcast(logits).reshape(b * t, k), target.reshape(b * t), weight=weight,
        ignore_index=ignore_index, reduction="none" if reduction == "none" else reduction,
    )
    return loss.reshape(b, t) if reduction == "none" else loss


# --------------------------------------------------------------------------- MS-LSTM, Eq. (1)
def anticipation_loss_per_step(logits: Tensor, target: Tensor) -> Tensor:
    """The summand of MS-LSTM Eq. (1) at every step, summed over classes, BEFORE the 1/N.

        ℓ_t = −Σ_k [ y_t(k) log ŷ_t(k) + (t/T)(1 − y_t(k)) log(1 − ŷ_t(k)) ],   t = 1..T

    Shape: logits (B, T, K), target (B,) or (B, T) -> (B, T).
    """
    t = logits.shape[1] if logits.dim() == 3 else 0
    return _binary_terms(logits, target, _steps(t, logits.device) / max(t, 1))


def anticipation_loss(
    logits: Tensor,
    target: Tensor,
    *,
    class_normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """MS-LSTM anticipation loss, Eq. (1) of Aliakbarian et al. (ICCV 2017).

        L(y, ŷ) = −(1/N) Σ_{k=1..N} Σ_{t=1..T} [ y_t(k) log ŷ_t(k) + (t/T)(1 − y_t(k)) log(1 − ŷ_t(k)) ]

    with ŷ_t = softmax(logits_t), N classes and T steps. False negatives (missing the true
    class) cost the same at every step; false positives (mass on wrong classes) are weighted
    t/T, from 1/T at the first step to 1 at the last, where the summand is the full binary
    cross-entropy. Early on the model may hedge between plausible actions; late it must commit.

    Args:
        logits: ``(B, T, K)`` one prediction per observed step (no softmax applied).
        target: ``(B,)`` class ids (the label of the sequence) or ``(B, T)``.
        class_normalize: apply the paper's 1/N (N = K classes). Off gives the plain sum.
        reduction: over the batch: ``"mean"`` (Eq. (4)'s 1/V), ``"sum"`` or ``"none"`` (``(B,)``).

    Example (worked by hand: K = 2, T = 2, ŷ = (0.8, 0.2), y = class 0):

    >>> logits = torch.log(torch.tensor([0.8, 0.2])).expand(1, 2, 2)
    >>> round(anticipation_loss(logits, torch.tensor([0]), class_normalize=False).item(), 5)  # -3.5 ln 0.8
    0.781
    >>> round(anticipation_loss(logits, torch.tensor([0])).item(), 5)                         # ... / N, N = 2
    0.3905
    """
    per_seq = anticipation_loss_per_step(logits, target).sum(1)      # (B,)
    if class_normalize:
        per_seq = per_seq / logits.shape[-1]
    return _reduce(per_seq, reduction)


# --------------------------------------------------------------------------- MS-LSTM, Eqs. (7)-(9)
def final_step_bce(logits: Tensor, target: Tensor, *, class_normalize: bool = False, reduction: str = "mean") -> Tensor:
    """MS-LSTM Eq. (7): binary cross-entropy over all classes at the last step only.

        L_CE = −Σ_k [ y_T(k) log ŷ_T(k) + (1 − y_T(k)) log(1 − ŷ_T(k)) ]
    """
    t = logits.shape[1] if logits.dim() == 3 else 0
    steps = _binary_terms(logits, target, torch.ones(t, device=logits.device))     # (B, T)
    per_seq = steps[:, -1]                                                         # t = T only
    return _reduce(per_seq / logits.shape[-1] if class_normalize else per_seq, reduction)


def ece_loss(logits: Tensor, target: Tensor, *, class_normalize: bool = False, reduction: str = "mean") -> Tensor:
    """MS-LSTM Eq. (8), exponentially weighted cross-entropy (after Jain et al.):

        L_ECE = Σ_t −e^{−(T−t)} Σ_k [ y_t(k) log ŷ_t(k) + (1 − y_t(k)) log(1 − ŷ_t(k)) ]

    Almost all weight sits on the last few steps (e^{-1} ≈ 0.37 one step before the end).
    """
    t = logits.shape[1] if logits.dim() == 3 else 0
    steps = _binary_terms(logits, target, torch.ones(t, device=logits.device))     # (B, T)
    w = torch.exp(-(t - _steps(t, logits.device)))                                 # e^{-(T-t)}
    per_seq = (steps * w).sum(1)
    return _reduce(per_seq / logits.shape[-1] if class_normalize else per_seq, reduction)


def lgl_loss(logits: Tensor, target: Tensor, *, class_normalize: bool = False, reduction: str = "mean") -> Tensor:
    """MS-LSTM Eq. (9), linearly growing loss: weight t/T on BOTH terms (false negatives too).

        L_LGL = Σ_t −(t/T) Σ_k [ y_t(k) log ŷ_t(k) + (1 − y_t(k)) log(1 − ŷ_t(k)) ]

    (printed with ``log y_t(k)``, a typo). The contrast with Eq. (1): here early false
    negatives are cheap too, so the model is not pushed to be right early.
    """
    t = logits.shape[1] if logits.dim() == 3 else 0
    steps = _binary_terms(logits, target, torch.ones(t, device=logits.device))     # (B, T)
    per_seq = (steps * _steps(t, logits.device) / max(t, 1)).sum(1)
    return _reduce(per_seq / logits.shape[-1] if class_normalize else per_seq, reduction)


# --------------------------------------------------------------------------- Ma et al. ranking loss
def ranking_detection_loss(logits: Tensor, target: Tensor, *, lam: float = 1.0, reduction: str = "mean") -> Tensor:
    """Cross-entropy plus Ma et al.'s ranking loss on the detection score (CVPR 2016).

    The detection score of the true class, p_t = ŷ_t(y), should not decrease while the same
    activity goes on. With p*_t = max_{t' < t} p_{t'} (the best score so far):

        L^t = L_CE^t + λ · max(0, p*_t − p_t),      L = mean over steps (and sequences)

    The first step has no p* and only the cross-entropy. Choices: p* is treated as a constant
    (detached), so the penalty only pushes the current score up, never an earlier one down;
    one label per sequence (δ_t = +1 throughout, so the activity-change case of the paper does
    not arise); λ = 1 by default (the value used by MS-LSTM's comparison is not in our sources).

    Shape: logits (B, T, K), target (B,) -> scalar (or (B,) with ``reduction="none"``).
    """
    b, t, k, target = _check(logits, target)
    log_p = F.log_softmax(_upcast(logits), dim=-1)
    log_true = log_p.gather(-1, target[..., None])[..., 0]            # (B, T)
    p_true = log_true.exp()
    best_so_far = torch.cummax(p_true.detach(), dim=1).values          # (B, T): max over t' <= t
    p_star = torch.cat([p_true.new_zeros(b, 1), best_so_far[:, :-1]], dim=1)       # max over t' < t
    rank = F.relu(p_star - p_true)                                     # 0 at t = 1 since p* = 0
    per_seq = (-log_true + lam * rank).mean(1)
    return _reduce(per_seq, reduction)


# --------------------------------------------------------------------------- AGA dense loss
def inverse_sqrt_class_weights(counts) -> Tensor:
    """AGA's class weights: ``w_c = 1/sqrt(n_c + 1)``, rescaled to mean 1.

    ``counts`` are the training segments per class (``torch.bincount(train_labels,
    minlength=K)``); a class never seen gets the largest weight, 1/sqrt(1).
    """
    n = torch.as_tensor(counts, dtype=torch.float32)
    if n.dim() != 1 or (n < 0).any():
        raise ValueError(f"counts: expected a 1-D tensor of non-negative class counts, got shape {tuple(n.shape)}")
    w = (n + 1.0).rsqrt()
    return w / w.mean()


def dense_next_step_loss(
    logits: Tensor,
    labels: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -1,
) -> Tensor:
    """AGA's dense anticipation loss: every step predicts the label one step ahead.

    ``labels`` holds the action in progress at each of the T observed steps and, as its last
    entry, the annotated future action: ``(B, T + 1)``. Step t is supervised with
    ``labels[:, t + 1]``; the last step, whose next label is the target action, is counted a
    second time on its own:

        L = mean_{b,t} CE_w(logits_t, labels_{t+1}) + mean_b CE_w(logits_T, labels_{T+1})

    Steps whose next label is ``ignore_index`` (no action in progress) contribute 0 but stay in
    the denominator of the mean, as in the released ``train.py``. ``weight`` multiplies each
    term by ``w[label]`` (see :func:`inverse_sqrt_class_weights`); the mean is a plain mean, not
    PyTorch's weight-normalised one.

    Shape: logits (B, T, K), labels (B, T + 1) -> scalar.
    """
    d = check_shape(logits, "B T K", name="logits")
    b, t, k = d["B"], d["T"], d["K"]
    check_shape(labels, "B T", name="labels", B=b, T=t + 1)
    if labels.dtype.is_floating_point:
        raise ValueError(f"labels: expected integer class ids, got dtype {labels.dtype}")
    nxt = labels[:, 1:]                                                 # (B, T): label one step ahead
    dense = F.cross_entropy(
        _upcast(logits).reshape(b * t, k), nxt.reshape(b * t), weight=weight,
        ignore_index=ignore_index, reduction="none",
    ).reshape(b, t)                                                     # ignored entries are 0
    final = dense[:, -1]                                                # the target-action term
    return dense.mean() + final.mean()


__all__ = [
    "anticipation_loss",
    "anticipation_loss_per_step",
    "cross_entropy_per_step",
    "dense_next_step_loss",
    "ece_loss",
    "final_step_bce",
    "inverse_sqrt_class_weights",
    "lgl_loss",
    "ranking_detection_loss",
]
