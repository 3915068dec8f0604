"""Small statistics the course's measurements need, in plain Python/torch (no scipy).

    spearman                    Spearman's rank correlation (ties: average ranks).
    paired_difference_test      two paired per-seed measurements: mean difference, its standard
                                error, the paired t-test and the exact sign test.
    student_t_two_sided         two-sided p-value of Student's t.
    sign_test                   exact two-sided sign test.
    regularized_incomplete_beta I_x(a, b), which both p-values reduce to.

Used by the AGA generalisation study (:mod:`lecturekit.analysis.aga`) and the early-recognition
curves (:mod:`lecturekit.analysis.early_recognition`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["paired_difference_test", "regularized_incomplete_beta", "sign_test", "spearman", "student_t_two_sided"]


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


def _betacf(a: float, b: float, x: float, iters: int = 500, eps: float = 1e-15) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz), converging for
    x < (a + 1) / (a + b + 2)."""
    tiny = 1e-300

    def guard(v: float) -> float:
        return tiny if abs(v) < tiny else v

    c, d = 1.0, 1.0 / guard(1.0 - (a + b) * x / (a + 1.0))
    h = d
    for m in range(1, iters + 1):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1.0) * (a + m2)),                  # even step
                    -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0))):      # odd step
            d = 1.0 / guard(1.0 + num * d)
            c = guard(1.0 + num / c)
            h *= d * c
        if abs(d * c - 1.0) < eps:
            return h
    raise RuntimeError(f"incomplete beta: no convergence for a={a}, b={b}, x={x}")


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) = B(x; a, b) / B(a, b) for a, b > 0 and 0 <= x <= 1 (no scipy needed).

    Example:
        >>> round(regularized_incomplete_beta(1.0, 1.0, 0.3), 12)     # I_x(1, 1) = x
        0.3
    """
    if not (a > 0 and b > 0) or not 0.0 <= x <= 1.0:
        raise ValueError(f"expected a > 0, b > 0 and 0 <= x <= 1, got a={a}, b={b}, x={x}")
    if x == 0.0 or x == 1.0:
        return x
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def student_t_two_sided(t: float, df: float) -> float:
    """Two-sided p-value P(|T| >= |t|) of Student's t with ``df`` degrees of freedom:
    I_{df / (df + t²)}(df / 2, 1 / 2).

    Example:
        >>> round(student_t_two_sided(2.776445, 4), 4)                 # the 5% point of t_4
        0.05
    """
    if not df > 0:
        raise ValueError(f"df: expected > 0, got {df}")
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0
    return regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def sign_test(positives: int, negatives: int) -> float:
    """Exact two-sided sign test: P(a split at least as uneven as ``positives`` : ``negatives``)
    under Binomial(n, 1/2), n = positives + negatives (ties are left out before calling).
    With 5 pairs the smallest possible p is 2/32 = 0.0625.

    Example:
        >>> sign_test(5, 0)
        0.0625
    """
    if positives < 0 or negatives < 0:
        raise ValueError(f"expected counts >= 0, got {positives}, {negatives}")
    n = positives + negatives
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(positives, negatives) + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def paired_difference_test(x, y, *, names: tuple[str, str] = ("x", "y")) -> dict:
    """Compare two paired per-seed measurements: d_i = x_i − y_i.

    Returns mean and sample standard deviation (ddof = 1) of x, y and d, the standard error of
    the mean difference se = sd(d) / sqrt(n), the paired t statistic mean(d) / se with its
    two-sided p (n − 1 degrees of freedom), the sign test (ties dropped), and ``verdict``:
    "<x> > <y> by more than 2 s.e." when mean(d) > 2 se, "<x> < <y> by more than 2 s.e." when
    mean(d) < −2 se, otherwise "within 2 s.e.".

    Example:
        >>> r = paired_difference_test([3.0, 4.0, 5.0], [1.0, 1.0, 1.0], names=("a", "b"))
        >>> r["mean_diff"], r["positives"], r["verdict"]
        (3.0, 3, 'a > b by more than 2 s.e.')
    """
    xs = [float(v) for v in torch.as_tensor(x, dtype=torch.float64).reshape(-1).tolist()]
    ys = [float(v) for v in torch.as_tensor(y, dtype=torch.float64).reshape(-1).tolist()]
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError(f"expected two paired lists of the same length >= 2, got {len(xs)} and {len(ys)}")
    if not all(math.isfinite(v) for v in xs + ys):
        raise ValueError("expected finite values")
    n = len(xs)
    d = [a - b for a, b in zip(xs, ys)]

    def mean(v):
        return sum(v) / len(v)

    def sd(v):
        m = mean(v)
        return math.sqrt(sum((a - m) ** 2 for a in v) / (len(v) - 1))

    md, se = mean(d), sd(d) / math.sqrt(n)
    if se > 0:
        t = md / se
    else:
        t = math.nan if md == 0 else math.copysign(math.inf, md)
    p_t = 1.0 if math.isnan(t) else student_t_two_sided(t, n - 1)
    pos, neg = sum(v > 0 for v in d), sum(v < 0 for v in d)
    if md > 2 * se:
        verdict = f"{names[0]} > {names[1]} by more than 2 s.e."
    elif md < -2 * se:
        verdict = f"{names[0]} < {names[1]} by more than 2 s.e."
    else:
        verdict = "within 2 s.e."
    return {"names": list(names), "n": n, "x": xs, "y": ys, "diff": d,
            "mean_x": mean(xs), "std_x": sd(xs), "mean_y": mean(ys), "std_y": sd(ys),
            "mean_diff": md, "std_diff": sd(d), "se_diff": se, "t": t, "df": n - 1, "p_t": p_t,
            "positives": pos, "negatives": neg, "ties": n - pos - neg, "p_sign": sign_test(pos, neg),
            "verdict": verdict}
