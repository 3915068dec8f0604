"""Checks of notebook 09 (early recognition): 09.1 the anticipation loss of MS-LSTM (Eq. 1),
09.2 CAM action-aware features (Eqs. 2-3)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...losses import anticipation_loss
from ...models.ms_lstm import cam_action_features
from ..checking import Case, Check, Mistake


# =========================================================================== 09.1 anticipation loss
def _wrong_anticipation(logits, target, *, fp="t/T", fn="1", normalise="N", over_time="sum", batch="mean",
                        fp_true=False, softmax_dim=-1):
    """Test-free helper for the known mistakes of 09.1 (each keyword switches one mistake on)."""
    b, t, k = logits.shape
    x = logits if logits.dtype == torch.float64 else logits.float()
    log_p = F.log_softmax(x, dim=softmax_dim)
    log_1mp = torch.log1p(-log_p.exp().clamp(max=1 - 1e-12)) if x.dtype == torch.float64 else \
        torch.log1p(-log_p.exp().clamp(max=1 - 1e-7))
    steps = torch.arange(1, t + 1, dtype=x.dtype)
    weights = {"t/T": steps / t, "1": torch.ones(t, dtype=x.dtype), "(t-1)/T": (steps - 1) / t,
               "(T-t+1)/T": (t - steps + 1) / t}
    onehot = F.one_hot(target, k).to(x.dtype)[:, None, :].expand(b, t, k)
    true_term = (onehot * log_p).sum(-1)                                         # (B, T)
    false_mask = torch.ones_like(onehot) if fp_true else 1 - onehot
    false_term = (false_mask * log_1mp).sum(-1)                                  # (B, T)
    per_step = -(weights[fn] * true_term + weights[fp] * false_term)             # (B, T)
    per_seq = per_step.sum(1) if over_time == "sum" else per_step.mean(1)
    if normalise == "N":
        per_seq = per_seq / k
    return per_seq.mean() if batch == "mean" else per_seq.sum()


def _probs_to_logits(p):
    return torch.log(torch.as_tensor(p, dtype=torch.float64)).float()


def _anticipation_cases(g: torch.Generator) -> list[Case]:
    def rand(b, t, k, scale=1.0, dtype=torch.float32):
        return (scale * torch.randn(b, t, k, generator=g, dtype=torch.float64)).to(dtype)

    def labels(b, k):
        return torch.randint(0, k, (b,), generator=g)

    worked = _probs_to_logits([0.8, 0.2]).expand(1, 2, 2).contiguous()
    hedge = _probs_to_logits([[0.45, 0.45, 0.05, 0.05]] * 4)[None]                # (1, 4, 4)
    late = _probs_to_logits([[0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25], [0.1, 0.7, 0.1, 0.1]])[None]
    return [
        Case("worked example: K = 2, T = 2, ŷ_t = (0.8, 0.2) at both steps, true class 0 (loss = 3.5·(−ln 0.8)/2 = 0.3905)",
             (worked, torch.tensor([0])),
             hint="Σ_t [−ln 0.8 − (t/T) ln(1 − 0.2)] = −ln 0.8 (1 + 1/2 + 1 + 1): the false-positive term is "
                  "weighted t/T = 1/2 at t = 1 and 1 at t = 2; then divide by N = 2 classes"),
        Case("a model that hedges between two actions: K = 4, T = 4, ŷ_t = (0.45, 0.45, 0.05, 0.05), true class 0",
             (hedge, torch.tensor([0])),
             hint="the false negative −ln 0.45 costs the same at every step; the false positives "
                  "−ln(1 − 0.45) − 2 ln(1 − 0.05) are weighted 1/4, 2/4, 3/4, 4/4"),
        Case("uniform, then confident and wrong at the last step: K = 4, T = 3, true class 0",
             (late, torch.tensor([0])),
             hint="t runs from 1 to T: the last step has weight T/T = 1 on the false positives"),
        Case("random logits, B = 3, T = 5, K = 6", (rand(3, 5, 6), labels(3, 6)),
             hint="average over the B sequences of the batch (Eq. 4's 1/V)"),
        Case("one step only: T = 1 (the weight t/T is 1)", (rand(2, 1, 5), labels(2, 5))),
        Case("many classes, K = 20, T = 8, confident logits", (rand(4, 8, 20, scale=4.0), labels(4, 20)),
             hint="1/N divides by the number of CLASSES N = K, not by T"),
        Case("float64 logits (B = 2, T = 4, K = 3)", (rand(2, 4, 3, dtype=torch.float64), labels(2, 3)),
             hint="compute in the dtype of the logits (create new tensors with dtype=logits.dtype)"),
    ]


ANTICIPATION_LOSS = Check(
    exercise="09.1", name="anticipation_loss", title="The anticipation loss (Eq. 1)",
    reference=anticipation_loss,
    cases=_anticipation_cases, arg_names=("logits", "target"),
    atol=1e-5, rtol=1e-4,
    mistakes=(
        Mistake(lambda x, y: _wrong_anticipation(x, y, normalise="none"),
                "the 1/N of Eq. (1) is missing: divide the sum over classes and steps by N, the number of classes"),
        Mistake(lambda x, y: _wrong_anticipation(x, y, over_time="mean"),
                "you averaged over the T steps (or divided by N·T); Eq. (1) SUMS over t = 1..T and divides "
                "by the number of classes N only"),
        Mistake(lambda x, y: _wrong_anticipation(x, y, fp="1"),
                "the false-positive term has weight 1 at every step; in Eq. (1) it grows as t/T (1/T at the "
                "first step, 1 at the last)"),
        Mistake(lambda x, y: _wrong_anticipation(x, y, fn="t/T", fp="t/T"),
                "you weighted the false negatives by t/T too: that is the linearly growing loss (Eq. 9). In "
                "Eq. (1) the true-class term has weight 1 at every step"),
        Mistake(lambda x, y: _wrong_anticipation(x, y, fn="t/T", fp="1"),
                "the weights are swapped: t/T belongs on the false-positive term (1 − y) log(1 − ŷ), weight 1 "
                "on the true-class term"),
        Mistake(lambda x, y: _wrong_anticipation(x, y, fp="(t-1)/T"),
                "your steps start at t = 0: in Eq. (1) t runs from 1 to T, so the weights are 1/T, ..., T/T = 1"),
        Mistake(lambda x, y: _wrong_anticipation(x, y, fp="(T-t+1)/T"),
                "the false-positive weight decreases over time; it must GROW as t/T"),
        Mistake(lambda x, y: _wrong_anticipation(x, y, fp_true=True),
                "the false-positive term runs over the wrong classes only: (1 − y_t(k)) is 0 for the true class"),
        Mistake(lambda x, y: _wrong_anticipation(x, y, batch="sum"),
                "you summed over the batch; average over the B sequences"),
        Mistake(lambda x, y: _wrong_anticipation(x, y, softmax_dim=1),
                "the softmax ran over time; ŷ_t is a distribution over the K classes (the last axis)"),
    ),
    hint="ŷ = softmax(logits) over the classes; per step −[log ŷ_t(y) + (t/T) Σ_{k≠y} log(1 − ŷ_t(k))]; "
         "sum over t = 1..T, divide by N = K classes, average over the batch",
)


# =========================================================================== 09.2 CAM action-aware features
def _wrong_cam(conv5_3, cam_maps, weight, k, *, relu="relu", mask_what="conv", which="own", normalise=None,
               combine="mul"):
    """Test-free helper for the known mistakes of 09.2."""
    if which == "own":
        w = weight[k]
    elif which == "first":
        w = weight[k[:1]].expand(len(k), -1)
    elif which == "all":
        w = weight.sum(0, keepdim=True).expand(len(k), -1)
    else:                                                                  # class 0 for every frame
        w = weight[torch.zeros_like(k)]
    cam = torch.einsum("nl,nlhw->nhw", w, cam_maps)
    if relu == "relu":
        mask = F.relu(cam)
    elif relu == "sigmoid":
        mask = torch.sigmoid(cam)
    elif relu == "abs":
        mask = cam.abs()
    else:
        mask = cam
    if normalise == "max":
        mask = mask / mask.flatten(1).max(1).values.clamp_min(1e-12)[:, None, None]
    elif normalise == "softmax":
        mask = torch.softmax(cam.flatten(1), -1).view_as(cam)
    maps = conv5_3 if mask_what == "conv" else cam_maps
    return maps * mask[:, None] if combine == "mul" else maps + mask[:, None]


def _cam_cases(g: torch.Generator) -> list[Case]:
    def maps(n, c, h, w, dtype=torch.float32):
        return F.relu(torch.randn(n, c, h, w, generator=g, dtype=torch.float64)).to(dtype)

    def weights(kk, ll, dtype=torch.float32):
        return torch.randn(kk, ll, generator=g, dtype=torch.float64).to(dtype)

    def classes(n, kk):
        return torch.randint(0, kk, (n,), generator=g)

    # hand-made: one frame, 2×2 grid, L = 2 CAM channels, C = 1 map, K = 2 classes
    f = torch.tensor([[[[1.0, 0.0], [2.0, 0.0]], [[0.0, 1.0], [0.0, 3.0]]]])          # (1, 2, 2, 2)
    conv = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])                                 # (1, 1, 2, 2)
    w = torch.tensor([[1.0, -1.0], [0.5, 0.5]])                                       # (K=2, L=2)
    return [
        Case("by hand: one frame, 2×2 grid, CAM of class 0 = f_1 − f_2 = [[1, −1], [2, −3]]",
             (conv, f, w, torch.tensor([0])),
             hint="M_0 = 1·f_1 − 1·f_2 = [[1, −1], [2, −3]]; ReLU keeps [[1, 0], [2, 0]]; times conv5_3 "
                  "[[1, 2], [3, 4]] gives [[1, 0], [6, 0]]"),
        Case("by hand: the same frame, class 1 (M_1 = 0.5 f_1 + 0.5 f_2)", (conv, f, w, torch.tensor([1]))),
        Case("two frames with different classes (N = 2, C = 3, L = 4, K = 5, 3×3)",
             (maps(2, 3, 3, 3), maps(2, 4, 3, 3), weights(5, 4), torch.tensor([4, 1])),
             hint="every frame uses the classifier row of ITS class k: weight[k] has shape (N, L)"),
        Case("random (N = 4, C = 6, L = 5, K = 7, 4×4)", (maps(4, 6, 4, 4), maps(4, 5, 4, 4), weights(7, 5), classes(4, 7))),
        Case("non-square maps (N = 3, C = 2, L = 3, K = 4, 2×5)",
             (maps(3, 2, 2, 5), maps(3, 3, 2, 5), weights(4, 3), classes(3, 4))),
        Case("C = L (the mask must multiply conv5_3, not f)", (maps(2, 4, 3, 3), maps(2, 4, 3, 3), weights(3, 4), classes(2, 3)),
             hint="Eq. (3) masks conv5_3 (the first argument); f (cam_maps) only builds the CAM"),
        Case("float64 maps", (maps(2, 3, 2, 2, torch.float64), maps(2, 2, 2, 2, torch.float64),
                              weights(3, 2, torch.float64), classes(2, 3))),
    ]


CAM_ACTION_FEATURES = Check(
    exercise="09.2", name="cam_action_features", title="Action-aware features: CAM masking (Eqs. 2-3)",
    reference=cam_action_features,
    cases=_cam_cases, arg_names=("conv5_3", "cam_maps", "weight", "k"), axes="N C H W",
    atol=1e-5, rtol=1e-4,
    mistakes=(
        Mistake(lambda *a: _wrong_cam(*a, relu="none"),
                "the ReLU is missing: Eq. (3) multiplies by ReLU(M_k), so negative evidence masks to 0"),
        Mistake(lambda *a: _wrong_cam(*a, relu="sigmoid"),
                "you squashed the CAM with a sigmoid; Eq. (3) uses ReLU(M_k)"),
        Mistake(lambda *a: _wrong_cam(*a, relu="abs"),
                "you took |M_k|; Eq. (3) uses ReLU(M_k): negative values become 0"),
        Mistake(lambda *a: _wrong_cam(*a, mask_what="cam"),
                "you masked the CAM layer's maps f; Eq. (3) masks conv5_3 (the first argument)"),
        Mistake(lambda *a: _wrong_cam(*a, which="first"),
                "every frame used the class of the first frame; frame n uses weight[k[n]]"),
        Mistake(lambda *a: _wrong_cam(*a, which="zero"),
                "every frame used class 0; frame n uses the classifier row of its own class k[n]"),
        Mistake(lambda *a: _wrong_cam(*a, which="all"),
                "you summed the CAMs of all classes; Eq. (2) is the map of ONE class k per frame"),
        Mistake(lambda *a: _wrong_cam(*a, normalise="max"),
                "you rescaled the CAM to a maximum of 1; Eq. (3) multiplies by the raw ReLU(M_k)"),
        Mistake(lambda *a: _wrong_cam(*a, normalise="softmax"),
                "you turned the CAM into a softmax over positions; Eq. (3) multiplies by the raw ReLU(M_k)"),
        Mistake(lambda *a: _wrong_cam(*a, combine="add"),
                "you added the mask; Eq. (3) MULTIPLIES conv5_3 by ReLU(M_k) at every position"),
    ),
    hint="M = Σ_l weight[k, l] · cam_maps[:, l] (one (h, w) map per frame, e.g. with torch.einsum); "
         "return conv5_3 * ReLU(M) broadcast over the C channels",
)


# the worked example of 09.1 in closed form (used by the tests and quoted in the notebook)
WORKED_EXAMPLE = -3.5 * math.log(0.8) / 2
