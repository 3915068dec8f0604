"""Checks of notebook 01 (video as data, the single-frame CNN)."""

from __future__ import annotations

import torch

from ..checking import Case, Check, CheckResult, Mistake, check, register_check


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
    ]


def _topk_hits(scores, labels, k, largest=True):
    idx = torch.topk(scores.double(), k, dim=1, largest=largest).indices
    return (idx == labels[:, None]).any(dim=1)


register_check(Check(
    exercise="01.1", name="topk_accuracy", title="Top-k accuracy",
    reference="lecturekit.metrics:topk_accuracy",
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
    hint="for each row (dim=1), a hit means its label is among the k classes with the highest scores; "
         "return hits / N as a Python float",
))


def check_topk_accuracy(fn, **kwargs) -> CheckResult:
    """Check exercise 01.1: ``topk_accuracy(scores (N, K), labels (N,), k) -> float``."""
    return check("01.1", fn, **kwargs)
