"""Checks of notebook 11 (HORST): 11.1 STATT's factorised spatial-temporal attention (Eqs. 4-7),
11.2 the update of HORST's queue of past states."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...models.horst import push_queue, statt_attend
from ..checking import Case, Check, Mistake


# =========================================================================== 11.1 STATT
def _wrong_statt(q, k, v, w_q, b_q, w_k, b_k, *, pool_order="mean,max", t_scale="CHW", s_scale="none",
                 t_norm="softmax_slots", s_act="sigmoid", t_filter=True, q_hat="filtered", filters="own",
                 mask_v=True):
    """Test-free helper for the known mistakes of 11.1 (each keyword switches one mistake on)."""
    if filters == "swapped":
        w_q, b_q, w_k, b_k = w_k, b_k, w_q, b_q

    def f(x, w, b):                                                        # Eq. (4)
        mean, mx = x.mean(1, keepdim=True), x.amax(1, keepdim=True)
        pooled = torch.cat([mean, mx] if pool_order == "mean,max" else [mx, mean], dim=1)
        return torch.sigmoid(F.conv2d(pooled, w, b, padding=1))

    s, b = k.shape[:2]
    c, h, w = q.shape[1:]
    fk = f(k.flatten(0, 1), w_k, b_k).unflatten(0, (s, b))                 # (S, B, 1, H, W)
    fq = f(q, w_q, b_q)                                                     # (B, 1, H, W)
    q_h = (fk * q).mean((-2, -1)) if q_hat == "filtered" else q.mean((-2, -1)).expand(s, b, c)
    logits = torch.einsum("sbc,sbchw->sbhw", q_h, k)
    if s_scale == "C":
        logits = logits / math.sqrt(c)
    s_map = (torch.sigmoid(logits) if s_act == "sigmoid" else
             torch.softmax(logits.flatten(2), -1).view_as(logits))[:, :, None]
    q_vec = ((fq * q) if t_filter else q).flatten(1)
    k_vec = ((fk * k) if t_filter else k).flatten(2)
    scores = torch.einsum("bd,sbd->sb", q_vec, k_vec)
    scores = scores / {"CHW": math.sqrt(c * h * w), "C": math.sqrt(c), "none": 1.0}[t_scale]
    t_w = (torch.softmax(scores, 0) if t_norm == "softmax_slots" else
           torch.sigmoid(scores) if t_norm == "sigmoid" else torch.softmax(scores, 1))
    vv = v * s_map if mask_v else v
    a = torch.einsum("sb,sbchw->bchw", t_w, vv)
    return a, s_map, t_w


def _statt_cases(g: torch.Generator) -> list[Case]:
    def rand(*shape, scale=1.0, dtype=torch.float32):
        return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype)

    def case_args(s, b, c, h, w, *, scale=1.0, dtype=torch.float32):
        return (rand(b, c, h, w, scale=scale, dtype=dtype), rand(s, b, c, h, w, scale=scale, dtype=dtype),
                rand(s, b, c, h, w, dtype=dtype), rand(1, 2, 3, 3, scale=0.5, dtype=dtype), rand(1, dtype=dtype),
                rand(1, 2, 3, 3, scale=0.5, dtype=dtype), rand(1, dtype=dtype))

    # one slot, zero filter weights: f = σ(b) everywhere, T = 1 exactly
    one = list(case_args(1, 1, 2, 2, 2))
    one[3], one[5] = torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 3)
    one[4], one[6] = torch.zeros(1), torch.zeros(1)
    return [
        Case("one slot (S = 1), zero filter weights: f_Q = f_K = σ(0) = 0.5 everywhere and T = 1",
             tuple(one),
             hint="with one slot the softmax over slots is exactly 1; the spatial map is "
                  "S(x, y) = σ(q̂ · K(:, x, y)) with q̂ = mean_xy(0.5 · Q)"),
        Case("S = 3 slots, B = 2, C = 4, 3×3 maps", case_args(3, 2, 4, 3, 3),
             hint="T is a softmax over the S slots (dim 0 of the (S, B) scores): each column sums to 1"),
        Case("S = 4, B = 1, C = 8, non-square 2×5 maps", case_args(4, 1, 8, 2, 5),
             hint="the temporal scores are divided by sqrt(C·H·W), the length of the flattened maps"),
        Case("larger values (scale 3): the scaling of the scores matters", case_args(5, 2, 3, 4, 4, scale=3.0)),
        Case("S = 2, B = 3, C = 2, 4×4 maps", case_args(2, 3, 2, 4, 4)),
        Case("float64 inputs", case_args(3, 2, 3, 3, 3, dtype=torch.float64),
             hint="compute in the dtype of the inputs"),
    ]


STATT = Check(
    exercise="11.1", name="statt", title="STATT: factorised spatial-temporal attention (Eqs. 4-7)",
    reference=statt_attend,
    cases=_statt_cases, arg_names=("q", "k", "v", "w_q", "b_q", "w_k", "b_k"),
    atol=1e-5, rtol=1e-4,
    mistakes=(
        Mistake(lambda *a: _wrong_statt(*a, pool_order="max,mean"),
                "the two channels of the spatial filter are swapped: Eq. (4) stacks [mean_c X ; max_c X], "
                "the mean first"),
        Mistake(lambda *a: _wrong_statt(*a, filters="swapped"),
                "the two filters are swapped: f_Q (w_q, b_q) filters the query, f_K (w_k, b_k) every key"),
        Mistake(lambda *a: _wrong_statt(*a, t_scale="C"),
                "the temporal scores are divided by sqrt(C); HORST divides by sqrt(C·H·W), the length of the "
                "flattened maps it compares"),
        Mistake(lambda *a: _wrong_statt(*a, t_scale="none"),
                "the temporal scores are not scaled: divide them by sqrt(C·H·W) before the softmax"),
        Mistake(lambda *a: _wrong_statt(*a, s_scale="C"),
                "you divided the spatial logits by sqrt(C): the slides write it, but HORST's code (which we "
                "follow) has no scaling in the spatial branch"),
        Mistake(lambda *a: _wrong_statt(*a, t_norm="sigmoid"),
                "T went through a sigmoid; Eq. (6) is a softmax over the S slots"),
        Mistake(lambda *a: _wrong_statt(*a, t_norm="softmax_batch"),
                "the softmax of Eq. (6) ran over the batch; it runs over the S slots (dim 0)"),
        Mistake(lambda *a: _wrong_statt(*a, s_act="softmax"),
                "the spatial map is a softmax over positions; Eq. (5) uses a sigmoid per position"),
        Mistake(lambda *a: _wrong_statt(*a, t_filter=False),
                "the temporal branch compares the raw Q and K; Eq. (6) compares f_Q(Q) ⊙ Q with f_K(K_s) ⊙ K_s"),
        Mistake(lambda *a: _wrong_statt(*a, q_hat="plain"),
                "q̂_s is the plain spatial mean of Q; Eq. (5) pools Q under the key's filter: mean_xy(f_K(K_s) ⊙ Q)"),
        Mistake(lambda *a: _wrong_statt(*a, mask_v=False),
                "the values are not masked: Eq. (7) sums T_s · (S_s ⊙ V_s)"),
    ),
    hint="f(X) = σ(conv3x3([mean_c X ; max_c X]; w, b), padding 1); q̂_s = mean_xy(f_K(K_s) ⊙ Q); "
         "S_s = σ(q̂_s · K_s(:, x, y)); T = softmax over s of (f_Q(Q)⊙Q)·(f_K(K_s)⊙K_s) / sqrt(C·H·W); "
         "a = Σ_s T_s S_s ⊙ V_s",
)


# =========================================================================== 11.2 queue update
def _wrong_push(queue, x, order, *, where="end", keep="last", size="S", first="drop_zero"):
    if queue is None:
        return torch.cat([torch.zeros_like(x)[None], x[None]]) if first == "keep_zero" else x[None].clone()
    q = torch.cat([queue, x[None]]) if where == "end" else torch.cat([x[None], queue])
    n = order if size == "S" else order + 1
    return q[-n:] if keep == "last" else q[:n]


def _push_cases(g: torch.Generator) -> list[Case]:
    def rand(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)

    steps = torch.arange(1.0, 4.0).view(3, 1, 1, 1, 1)                        # slots hold 1, 2, 3
    return [
        Case("the first step: no queue yet (None), S = 4", (None, rand(2, 3, 2, 2), 4),
             hint="at the first step the cell read one all-zero slot; that slot is replaced, so the new "
                  "queue holds the one new state: x[None], shape (1, B, C, H, W)"),
        Case("a queue that is not full: S' = 2 slots, S = 4", (rand(2, 2, 3, 2, 2), rand(2, 3, 2, 2), 4),
             hint="while S' < S nothing is dropped: append the new state at the end (newest last)"),
        Case("a full queue of S = 3 slots holding 1, 2, 3; the new state is 4 -> 2, 3, 4",
             (steps, torch.full((1, 1, 1, 1), 4.0), 3),
             hint="oldest first: drop slot 0 (the oldest) and append the new state at the end"),
        Case("a full queue, S = 4, random maps", (rand(4, 2, 3, 3, 3), rand(2, 3, 3, 3), 4)),
        Case("order S = 1: a first-order recurrence keeps only the newest state",
             (rand(1, 2, 2, 2, 2), rand(2, 2, 2, 2), 1)),
        Case("float64 states", (rand(3, 1, 2, 2, 2, dtype=torch.float64), rand(1, 2, 2, 2, dtype=torch.float64), 2)),
    ]


PUSH_QUEUE = Check(
    exercise="11.2", name="push_queue", title="HORST's queue update",
    reference=push_queue,
    cases=_push_cases, arg_names=("queue", "x", "order"), axes="S B C H W",
    atol=0.0, rtol=0.0,
    mistakes=(
        Mistake(lambda q, x, s: _wrong_push(q, x, s, where="front", keep="first"),
                "you put the new state in FRONT; the queue is kept oldest first, so the newest goes at the end"),
        Mistake(lambda q, x, s: _wrong_push(q, x, s, keep="first"),
                "you kept the first S slots and so dropped the NEWEST state; drop the oldest (slot 0) instead"),
        Mistake(lambda q, x, s: _wrong_push(q, x, s, size="S+1"),
                "the queue grew to S + 1 slots; keep at most S (the order)"),
        Mistake(lambda q, x, s: _wrong_push(q, x, s, first="keep_zero"),
                "at the first step you kept the zero slot; HORST replaces it by the first real state"),
    ),
    hint="None -> x[None]; otherwise torch.cat([queue, x[None]])[-order:]",
)

