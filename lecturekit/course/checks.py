"""The course's registered checks, one block per exercise, and their ``check_<name>`` shortcuts.

Each block: a ``_cases(g)`` function (random inputs from the seeded generator ``g`` plus the
edge cases students get wrong, each with a hint), the known mistakes used to diagnose a wrong
answer, and one ``register_check(Check(...))``. The references are the library's own
implementations, named by ``"module:function"`` and imported only when a check runs.

Exercise ids follow the notebook numbers: 01.1 = the first exercise of notebook 01.
"""

from __future__ import annotations

import torch

from .checking import Case, Check, CheckResult, Mistake, check, register_check


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


# =========================================================================== 04.1 temporal shift
def _shift_cases(g: torch.Generator) -> list[Case]:
    c, t = 8, 5
    ramp = (10.0 * torch.arange(c).view(1, c, 1, 1, 1) + torch.arange(t).view(1, 1, t, 1, 1)).expand(1, c, t, 1, 1)
    base = torch.randn(2, 5, 8, 3, 3, generator=g)       # (B, T, C, H, W) in memory
    return [
        Case("readable video: value = 10 * channel + frame (1, 8, 5, 1, 1), fold_div = 4",
             (ramp.contiguous(),), {"fold_div": 4},
             hint="with fold_div = 4, channels 0-1 take frame t+1, channels 2-3 take frame t-1, 4-7 stay"),
        Case("random video, default fold_div (8)", (torch.randn(2, 16, 6, 3, 4, generator=g),),
             hint="the default must be fold_div=8"),
        Case("random video, fold_div = 4", (torch.randn(2, 8, 4, 2, 2, generator=g),), {"fold_div": 4}),
        Case("T = 1: a single frame", (torch.randn(1, 8, 1, 2, 2, generator=g),), {"fold_div": 4},
             hint="with one frame there is no neighbour: the shifted channels become all zeros"),
        Case("C = 10 is not a multiple of fold_div = 4", (torch.randn(1, 10, 4, 2, 2, generator=g),),
             {"fold_div": 4}, hint="fold = C // fold_div (rounded down): here 2 channels per direction"),
        Case("fewer channels than fold_div: nothing moves", (torch.randn(1, 3, 4, 2, 2, generator=g),),
             {"fold_div": 8}, hint="C // fold_div = 0 here, so the output equals the input"),
        Case("fold_div = 2: all channels move", (torch.randn(1, 6, 4, 1, 2, generator=g),), {"fold_div": 2}),
        Case("float64 video", (torch.randn(1, 8, 3, 2, 2, generator=g, dtype=torch.float64),), {"fold_div": 4},
             hint="create new tensors with torch.zeros_like(x) (or x.new_zeros) so dtype and device follow x"),
        Case("a non-contiguous video (a transposed view)", (base.transpose(1, 2),), {"fold_div": 4},
             hint=".view() needs contiguous memory; slicing (or .reshape) works on any tensor"),
    ]


def _moved(x, fold_div=8, *, first=+1, second=-1, t_axis=2, c_axis=1, cyclic=False, fold=None):
    """Test-free helper for the known mistakes: group 1 takes frame t+first, group 2 t+second."""
    fold = x.shape[c_axis] // fold_div if fold is None else fold
    out = x.clone()
    for group, step in ((slice(0, fold), first), (slice(fold, 2 * fold), second)):
        idx = [slice(None)] * x.dim()
        idx[c_axis] = group
        part = x[tuple(idx)]
        if step == 0:
            continue
        moved = torch.roll(part, -step, dims=t_axis)
        if not cyclic:
            n = part.shape[t_axis]
            pad = [slice(None)] * x.dim()
            pad[t_axis] = slice(max(n - step, 0), n) if step > 0 else slice(0, min(-step, n))
            moved[tuple(pad)] = 0
        out[tuple(idx)] = moved
    return out


register_check(Check(
    exercise="04.1", name="temporal_shift", title="Temporal shift",
    reference="lecturekit.layers:temporal_shift",
    cases=_shift_cases, arg_names=("x",), axes="B C T H W", atol=0.0, rtol=0.0,
    mistakes=(
        Mistake(lambda x, fold_div=8: _moved(x, fold_div, first=-1, second=+1),
                "the shift goes the wrong way: the FIRST C // fold_div channels at frame t take the "
                "value of frame t+1, the NEXT C // fold_div channels the value of frame t-1"),
        Mistake(lambda x, fold_div=8: _moved(x, fold_div, cyclic=True),
                "the frames wrap around (as torch.roll does); the shift must bring in zeros: at the "
                "last frame for the first group, at the first frame for the second"),
        Mistake(lambda x, fold_div=8: _moved(x, fold_div, second=0),
                "only the first group moved: channels fold..2*fold must move the other way (take t-1)"),
        Mistake(lambda x, fold_div=8: _moved(x, fold_div, first=+2, second=-2),
                "the channels moved by two frames; the shift is exactly one frame"),
        Mistake(lambda x, fold_div=8: _moved(x, fold_div, t_axis=3),
                "you shifted along H (axis 3); time is axis 2 of (B, C, T, H, W)"),
        Mistake(lambda x, fold_div=8: _moved(x, fold_div, fold=min(fold_div, x.shape[1] // 2)),
                "fold is the NUMBER of channels per group: fold = C // fold_div"),
    ),
    hint="fold = C // fold_div; channels [0, fold) take frame t+1, channels [fold, 2*fold) take "
         "frame t-1, the others stay; a missing neighbour frame gives zeros",
))


def check_temporal_shift(fn, **kwargs) -> CheckResult:
    """Check exercise 04.1: ``temporal_shift(x (B, C, T, H, W), fold_div=8)``."""
    return check("04.1", fn, **kwargs)


__all__ = ["check_temporal_shift", "check_topk_accuracy"]
