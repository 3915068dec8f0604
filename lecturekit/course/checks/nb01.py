"""Checks of notebook 01 (video as data, the single-frame CNN)."""

from __future__ import annotations

import torch

from ...metrics import topk_accuracy
from ...models.frame_cnn import average_frame_probs
from ..checking import Case, Check, Mistake


# =========================================================================== 01.1 top-k accuracy
def _topk_scores(g: torch.Generator, n: int, k: int, dtype=torch.float32, boost: float = 1.0):
    """Random logits (N, K) where the true class gets a random boost, so accuracy is mid-range."""
    labels = torch.randint(0, k, (n,), generator=g)
    scores = torch.randn(n, k, generator=g, dtype=torch.float64)
    scores[torch.arange(n), labels] += boost * torch.rand(n, generator=g, dtype=torch.float64) * 2
    return scores.to(dtype), labels


def _topk_cases(g: torch.Generator) -> list[Case]:
    s64, y64 = _topk_scores(g, 64, 10)
    hand = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])
    hand_y = torch.tensor([2, 1, 0, 1])  # k=2 hits: rows 0 and 1 -> 0.5
    s6, y6 = _topk_scores(g, 9, 6)
    s1, y1 = _topk_scores(g, 1, 5, boost=0.0)
    s_neg, y_neg = _topk_scores(g, 40, 8)
    s_dbl, y_dbl = _topk_scores(g, 17, 7, dtype=torch.float64)
    s_wide, y_wide = _topk_scores(g, 3, 20)
    s_tall, y_tall = _topk_scores(g, 50, 4)
    # Ties (hand-made, no random draws, so the cases above stay as they were): equal scores rank
    # the LARGER class id first, the rule of lecturekit.metrics.topk_ranks (a stable ascending
    # sort, reversed). The rows are chosen so that the other usual rules give other values:
    # smaller id first 0.625, "a tie counts as a hit" 1.0, "a tie counts as a miss" 0.125.
    tied = torch.tensor([[0.9, 0.5, 0.5, 0.1], [0.9, 0.5, 0.5, 0.1], [0.4, 0.4, 0.4, 0.4], [0.4, 0.4, 0.4, 0.4],
                         [0.1, 0.7, 0.3, 0.7], [0.2, 0.6, 0.6, 0.6], [0.3, 0.3, 0.9, 0.1], [0.3, 0.3, 0.9, 0.1]])
    tied_y = torch.tensor([1, 2, 3, 0, 1, 1, 1, 0])                     # k = 2 hits: rows 1, 2, 4, 6 -> 0.5
    flat_y = torch.tensor([4, 3, 3, 0, 2, 1])                           # all equal: the top 2 are {4, 3} -> 0.5
    tie_hint = ("equal scores rank the LARGER class id first (the rule of lecturekit.metrics); torch.topk "
                "promises no order among equal scores, so break the ties yourself, e.g. count the classes "
                "ranked above the label: a higher score, or the same score and a larger id")
    return [
        Case("random logits, k = 1", (s64, y64, 1)),
        Case("random logits, k = 5", (s64, y64, 5),
             hint="a hit is a label anywhere among the k best classes, not only the best one"),
        Case("a hand-made batch of 4 rows, k = 2", (hand, hand_y, 2),
             hint="rows 0 and 1 have their label among their 2 best classes, rows 2 and 3 do not"),
        Case("k equals the number of classes", (s6, y6, 6),
             hint="when k = K every class is among the k best, so the accuracy must be 1.0"),
        Case("a single row (N = 1)", (s1, y1, 3),
             hint="keep the batch axis: squeeze() also removes N when N = 1"),
        Case("logits of both signs, shifted by -10", (s_neg - 10.0, y_neg, 2),
             hint="only the order of the scores matters; scores need not be probabilities"),
        Case("float64 scores", (s_dbl, y_dbl, 3)),
        Case("fewer rows than classes (N = 3, K = 20), k = 5", (s_wide, y_wide, 5),
             hint="rank the classes of each ROW (dim=1), not the rows of each class"),
        Case("more rows than classes (N = 50, K = 4), k = 2", (s_tall, y_tall, 2),
             hint="rank the classes of each ROW (dim=1), not the rows of each class"),
        Case("tied scores around the k-th place, k = 2", (tied, tied_y, 2), hint=tie_hint),
        Case("all scores equal (a constant model), k = 2", (torch.zeros(6, 5), flat_y, 2), hint=tie_hint),
    ]


def _topk_hits(scores, labels, k, largest=True):
    """Hits among the k largest (or smallest) scores; equal scores: the larger class id first."""
    order = scores.double().flip(1).argsort(dim=1, descending=largest, stable=True)[:, :k]
    return (scores.shape[1] - 1 - order == labels[:, None]).any(dim=1)


TOPK_ACCURACY = Check(
    exercise="01.1", name="topk_accuracy", title="Top-k accuracy",
    reference=topk_accuracy,
    cases=_topk_cases, arg_names=("scores", "labels", "k"), atol=1e-6, rtol=1e-6,
    mistakes=(
        Mistake(lambda s, y, k: _topk_hits(s, y, k, largest=False).double().mean().item(),
                "you took the k SMALLEST scores; the best classes are the ones with the LARGEST scores"),
        Mistake(lambda s, y, k: (s.argmax(dim=1) == y).double().mean().item(),
                "your result does not depend on k: you only look at the single best class"),
        Mistake(lambda s, y, k: float(_topk_hits(s, y, k).sum()),
                "you returned the number of hits; divide by the number of rows N to get a fraction"),
        Mistake(lambda s, y, k: 100.0 * _topk_hits(s, y, k).double().mean().item(),
                "you returned a percentage; return a fraction in [0, 1]"),
        Mistake(lambda s, y, k: _topk_hits(s, y, min(k + 1, s.shape[1])).double().mean().item(),
                "off by one: you used the k+1 best classes instead of the k best"),
        Mistake(lambda s, y, k: _topk_hits(s, y, max(k - 1, 1)).double().mean().item(),
                "off by one: you used the k-1 best classes instead of the k best"),
    ),
    hint="for each row (dim=1), a hit means its label is among the k classes with the highest scores "
         "(equal scores: the larger class id ranks first); return hits / N as a Python float",
)


# =========================================================================== 01.2 test-time averaging
def _avg_cases(g: torch.Generator) -> list[Case]:
    def logits(b, t, k, scale=2.0, dtype=torch.float32):
        return (scale * torch.randn(b, t, k, generator=g, dtype=torch.float64)).to(dtype)

    # one frame is very sure of class 0, the other five lean mildly to class 1: averaging logits
    # lets the loud frame win, averaging probabilities gives it only a 1/T vote
    loud = torch.zeros(2, 6, 3)
    loud[:, 0, 0] = 12.0
    loud[:, 1:, 1] = 1.5
    loud[1] = loud[1].flip(0)            # the same frames in the opposite order: same answer
    large = 40.0 * torch.randn(2, 4, 5, generator=g)
    large[0, 1, 2], large[1, 3, 0] = 100.0, 95.0
    base = torch.randn(3, 7, 5, generator=g)            # (B, K, T) in memory
    return [
        Case("random logits (B=4, T=8, K=6)", (logits(4, 8, 6),)),
        Case("three different sizes (B=3, T=5, K=7)", (logits(3, 5, 7),),
             hint="the output has shape (B, K): average over T, axis 1 of (B, T, K)"),
        Case("B = T (4 clips of 4 frames, K=6)", (logits(4, 4, 6),),
             hint="with B = T a wrong axis still gives the right shape; average over axis 1 (time)"),
        Case("one loud frame among six quiet ones (B=2, T=6, K=3)", (loud,),
             hint="turn every frame's logits into probabilities FIRST (softmax over K), then average over T"),
        Case("a single frame (T = 1)", (logits(2, 1, 5),),
             hint="with one frame the answer is that frame's softmax, still of shape (B, K): "
                  "squeeze() removes every axis of size 1, not only T"),
        Case("a single clip (B = 1)", (logits(1, 8, 4),),
             hint="keep the batch axis: squeeze() also removes B when B = 1"),
        Case("large logits (up to 100)", (large,),
             hint="exp(100) overflows float32: use torch.softmax (it subtracts the max) instead of exp/sum"),
        Case("float64 logits", (logits(2, 3, 4, dtype=torch.float64),),
             hint="the output should follow the input's dtype"),
        Case("a non-contiguous (B, T, K) view", (base.transpose(1, 2),),
             hint=".view() needs contiguous memory; use .reshape or work along axes directly"),
    ]


def _softmax(z, dim=-1):
    return torch.softmax(z.double(), dim=dim)


AVERAGE_FRAME_PROBS = Check(
    exercise="01.2", name="average_frame_probs", title="Test-time averaging of frame predictions",
    reference=average_frame_probs,
    cases=_avg_cases, arg_names=("frame_logits",), axes="B K", atol=1e-6, rtol=1e-5,
    mistakes=(
        Mistake(lambda z: _softmax(z.mean(dim=1)),
                "you averaged the LOGITS over time and then applied softmax; the slide averages "
                "PROBABILITIES: softmax each frame first, then take the mean over T"),
        Mistake(lambda z: z.mean(dim=1),
                "you forgot the softmax: these are averaged logits, not probabilities (rows must sum to 1)"),
        Mistake(lambda z: _softmax(z).mean(dim=1).log(),
                "you returned log-probabilities (what FrameCNN.forward returns); return the probabilities"),
        Mistake(lambda z: _softmax(z).mean(dim=0),
                "you averaged over axis 0 (the clips of the batch); time is axis 1 of (B, T, K)"),
        Mistake(lambda z: _softmax(z).mean(dim=2),
                "you averaged over axis 2 (the classes); time is axis 1 of (B, T, K)"),
        Mistake(lambda z: _softmax(z, dim=1).mean(dim=1),
                "your softmax normalised over time (dim=1); it must normalise over the classes (dim=-1)"),
        Mistake(lambda z: _softmax(z),
                "you kept the time axis: average the per-frame probabilities over T to get one row per clip"),
        Mistake(lambda z: _softmax(z).mean(dim=1, keepdim=True),
                "keepdim=True left a time axis of size 1; return shape (B, K)"),
        Mistake(lambda z: _softmax(z).sum(dim=1),
                "you summed over time; divide by T (take the mean) so each row sums to 1"),
    ),
    hint="p(k | clip) = (1/T) Σ_t softmax(z_t)_k: softmax over the classes (last axis) for every frame, "
         "then the mean over time (axis 1); output (B, K), rows sum to 1",
)


# =========================================================================== 01.3 experiment: what a frame tells
def _pair_or_verb() -> str:
    """What is true for every seed: a frame of a *take* also occurs in a *put* (the same motion
    played backwards; ToyKitchens balances every reversal pair per object), so no single frame
    says which verb of its pair it shows, while the pairs (take/put, open/close, turn) look
    different. The single-frame CNN gets the pair right and the verb inside it at chance."""
    return "pair"


ANSWER_01_3 = Check(
    exercise="01.3", name="answer_01_3", title="Experiment: what one frame can tell",
    reference=_pair_or_verb, answer=True,
    cases=lambda g: [Case("your answer", hint="answer with one of 'pair', 'verb', 'both', 'neither'")],
    mistakes=(
        Mistake(lambda: "verb",
                "compare each accuracy with its chance level: 1/3 for the pair, 1/2 for the verb inside "
                "it. Every frame of a take also appears in a put, played the other way round"),
        Mistake(lambda: "both",
                "one of the two accuracies stays near its chance level (1/3 for the pair, 1/2 for the verb)"),
        Mistake(lambda: "neither",
                "one of the two accuracies is far above its chance level (1/3 for the pair, 1/2 for the verb)"),
    ),
)

