"""Checks of notebook 10 (action anticipation): 10.1 EK-100 class-mean top-k recall (absent
classes, the official tie rule), 10.2 RU-LSTM's rolling-unrolling loop (against the library's
``rolling_unrolling``, the loop ``RULSTM`` runs, on LSTMs holding the same weights)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...metrics import mean_topk_recall
from ...models.rulstm import rolling_unrolling
from ..checking import Case, Check, Mistake


# =========================================================================== 10.1 class-mean top-k recall
def _hits(scores, labels, k, *, ties="larger id first", largest=True):
    """Is the label among the k best classes of its row? ``ties``: "larger id first" (the
    official rule), "smaller id first", "hit" (a tie never pushes the label out) or "miss"."""
    s = scores.double()
    y = labels.long()
    own = s.gather(1, y[:, None])                                         # (N, 1)
    better = s > own if largest else s < own
    ids = torch.arange(s.shape[1])[None, :]
    if ties == "larger id first":
        above = better | ((s == own) & (ids > y[:, None]))
    elif ties == "smaller id first":
        above = better | ((s == own) & (ids < y[:, None]))
    elif ties == "hit":
        above = better
    else:                                                                 # "miss": every tie ranks above
        above = better | ((s == own) & (ids != y[:, None]))
    return above.sum(1) < k                                               # (N,) bool


def _class_mean(hits, labels, classes=None):
    y = labels.long()
    present = torch.unique(y) if classes is None else classes
    recalls = [hits[y == c].double().mean() for c in present if (y == c).any()]
    return float(torch.stack(recalls).mean()) if recalls else 0.0


def _wrong_recall(scores, labels, k, *, mean_over="present", ties="larger id first", largest=True, scale=1.0):
    hits = _hits(scores, labels, k, ties=ties, largest=largest)
    if mean_over == "rows":                                               # top-k accuracy
        return scale * float(hits.double().mean())
    if mean_over == "all classes":                                        # absent classes count as 0
        y = labels.long()
        per = [hits[y == c].double().mean() if (y == c).any() else torch.tensor(0.0, dtype=torch.float64)
               for c in range(scores.shape[1])]
        return scale * float(torch.stack(per).mean())
    return scale * _class_mean(hits, labels)


def _recall_scores(g, n, k, boost=1.0, dtype=torch.float32, skew=None):
    """Random logits (N, K) with the true class boosted a random amount; labels drawn from
    ``skew`` (class probabilities) or uniformly."""
    if skew is None:
        labels = torch.randint(0, k, (n,), generator=g)
    else:
        labels = torch.multinomial(torch.as_tensor(skew, dtype=torch.float64), n, replacement=True, generator=g)
    scores = torch.randn(n, k, generator=g, dtype=torch.float64)
    scores[torch.arange(n), labels] += boost * torch.rand(n, generator=g, dtype=torch.float64) * 2
    return scores.to(dtype), labels


def _recall_cases(g: torch.Generator) -> list[Case]:
    s50, y50 = _recall_scores(g, 50, 12)
    head = [0.6, 0.2] + [0.2 / 10] * 10                                   # two head classes, ten rare ones
    s_skew, y_skew = _recall_scores(g, 80, 12, skew=head)
    s_absent, y_absent = _recall_scores(g, 30, 10)
    y_absent = y_absent % 4                                               # only classes 0-3 of 10 occur
    s_dbl, y_dbl = _recall_scores(g, 25, 7, dtype=torch.float64)
    s_one, y_one = _recall_scores(g, 1, 6, boost=0.0)
    # by hand: 4 rows of classes 0, 0, 0, 1; rows 0-2 hit, row 3 misses: class-mean recall 0.5, accuracy 0.75
    hand = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.9, 0.05, 0.05]])
    hand_y = torch.tensor([0, 0, 0, 1])
    # ties (no random draws): equal scores rank the LARGER class id first. Chosen so that the usual
    # other rules give other values (reference 0.625): smaller id first 0.4375, "a tie is a hit" 1.0,
    # "a tie is a miss" 0.0625
    tied = torch.tensor([[0.9, 0.5, 0.5, 0.1], [0.9, 0.5, 0.5, 0.1], [0.4, 0.4, 0.4, 0.4], [0.4, 0.4, 0.4, 0.4],
                         [0.1, 0.7, 0.3, 0.7], [0.2, 0.6, 0.6, 0.6], [0.3, 0.3, 0.9, 0.1], [0.3, 0.3, 0.9, 0.1]])
    tied_y = torch.tensor([1, 2, 3, 0, 1, 1, 1, 0])
    flat_y = torch.tensor([4, 3, 3, 0, 2, 4, 4])         # all equal: the top 2 are {4, 3} -> 0.5 ({0, 1}: 0.25)
    tie_hint = ("equal scores rank the LARGER class id first (the official scorer sorts ascending and reverses); "
                "torch.topk promises no order among equal scores, so count the classes ranked above the label: "
                "a higher score, or the same score and a larger id")
    return [
        Case("by hand: labels (0, 0, 0, 1), rows 0-2 hit and row 3 misses, k = 1 (recall 0.5, accuracy 0.75)",
             (hand, hand_y, 1),
             hint="class 0 has recall 3/3 and class 1 has 0/1; the mean over the two classes is 0.5, not the "
                  "fraction of rows 0.75"),
        Case("random logits, 12 classes, k = 5", (s50, y50, 5)),
        Case("two frequent classes and ten rare ones, k = 5", (s_skew, y_skew, 5),
             hint="every class present counts once, however many rows it has"),
        Case("only 4 of the 10 classes occur in labels, k = 3", (s_absent, y_absent, 3),
             hint="average over the classes PRESENT in labels; a class with no row has no recall"),
        Case("tied scores around the k-th place, k = 2", (tied, tied_y, 2), hint=tie_hint),
        Case("all scores equal (a constant model), k = 2", (torch.zeros(7, 5), flat_y, 2), hint=tie_hint),
        Case("k equals the number of classes", (s_dbl, y_dbl, 7), hint="with k = K every row is a hit: 1.0"),
        Case("float64 scores, k = 1", (s_dbl, y_dbl, 1)),
        Case("a single row (N = 1)", (s_one, y_one, 2), hint="keep the batch axis: squeeze() also removes N when N = 1"),
        Case("logits of both signs, shifted by -10", (s50 - 10.0, y50, 5),
             hint="only the order of the scores matters"),
    ]


MEAN_TOPK_RECALL = Check(
    exercise="10.1", name="mean_topk_recall", title="Class-mean top-k recall (EK-100)",
    reference=mean_topk_recall,
    cases=_recall_cases, arg_names=("scores", "labels", "k"), atol=1e-6, rtol=1e-6,
    mistakes=(
        Mistake(lambda s, y, k: _wrong_recall(s, y, k, mean_over="rows"),
                "you computed top-k ACCURACY (a mean over rows); EK-100 averages the recall of each class, "
                "so every class present counts once"),
        Mistake(lambda s, y, k: _wrong_recall(s, y, k, mean_over="all classes"),
                "you averaged over all K classes; classes absent from labels have no recall and are left out"),
        Mistake(lambda s, y, k: _wrong_recall(s, y, k, ties="smaller id first"),
                "ties: among equal scores the LARGER class id ranks first (you put the smaller one first)"),
        Mistake(lambda s, y, k: _wrong_recall(s, y, k, ties="hit"),
                "ties: a class with the same score and a larger id ranks above the label; you counted only the "
                "strictly higher scores"),
        Mistake(lambda s, y, k: _wrong_recall(s, y, k, ties="miss"),
                "ties: only classes with the same score and a LARGER id rank above the label, not every tied class"),
        Mistake(lambda s, y, k: _wrong_recall(s, y, k, largest=False),
                "you took the k SMALLEST scores; the best classes have the LARGEST scores"),
        Mistake(lambda s, y, k: _wrong_recall(s, y, k, scale=100.0),
                "you returned a percentage; return a fraction in [0, 1] (the leaderboard prints 100 x it)"),
    ),
    hint="per row: a hit when fewer than k classes rank above the label (a higher score, or the same score and a "
         "larger id); per class present in labels: the mean of its rows' hits; return the mean over those "
         "classes as a Python float",
)


# =========================================================================== 10.2 rolling-unrolling loop
def lstm_step(x, h, c, w_ih, w_hh, b):
    """One step of PyTorch's LSTM (gates i, f, g, o): x (B, D), h, c (B, H) -> (h, c). The step the
    notebook gives students; here it builds the known mistakes (``_wrong_ru``)."""
    i, f, g, o = (x @ w_ih.T + h @ w_hh.T + b).chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def _lstm(weights, dtype) -> nn.LSTM:
    """A one-layer ``nn.LSTM`` holding an exercise weight tuple (w_ih (4H, D), w_hh (4H, H), b (4H,)):
    b goes to ``bias_ih``, ``bias_hh`` is 0."""
    w_ih, w_hh, b = weights
    lstm = nn.LSTM(w_ih.shape[1], w_hh.shape[1], batch_first=True).to(dtype)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(w_ih)
        lstm.weight_hh_l0.copy_(w_hh)
        lstm.bias_ih_l0.copy_(b)
        lstm.bias_hh_l0.zero_()
    return lstm


def _rolling_unrolling_logits(x, rolling, unrolling, w_cls, b_cls):
    """The exercise's weight tuples put into the library's loop: ``lecturekit.models.rulstm.rolling_unrolling``
    on two one-layer LSTMs holding them (no dropout), then the classifier -> logits (B, T, K)."""
    with torch.no_grad():
        h_u, _ = rolling_unrolling(x, _lstm(rolling, x.dtype), _lstm(unrolling, x.dtype))
        return F.linear(h_u, w_cls, b_cls)


def _wrong_ru(x, rolling, unrolling, w_cls, b_cls, *, extra=1, start="rolling", unroll=True, inputs="repeat",
              swap=False):
    """Test-free helper for the known mistakes of 10.2 (each keyword switches one mistake on)."""
    if swap:
        rolling, unrolling = unrolling, rolling
    b, t, _ = x.shape
    hid = rolling[1].shape[1]
    h = c = x.new_zeros(b, hid)
    states = []
    for i in range(t):
        h, c = lstm_step(x[:, i], h, c, *rolling)
        states.append((h, c))
    out = []
    for i in range(t):
        hr, cr = states[-1] if start == "last" else states[i]
        if start == "zero":
            hr, cr = torch.zeros_like(hr), torch.zeros_like(cr)
        if not unroll:
            out.append(hr)
            continue
        n = t - i + extra
        hu, cu = hr, cr
        for j in range(n):
            inp = x[:, min(i + j, t - 1)] if inputs == "future" else x[:, i]
            hu, cu = lstm_step(inp, hu, cu, *unrolling)
        out.append(hu)
    return torch.stack(out, 1) @ w_cls.T + b_cls


def _ru_cases(g: torch.Generator) -> list[Case]:
    def weights(d, hid, scale=0.4, dtype=torch.float32):
        def r(*shape):
            return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype)
        return (r(4 * hid, d), r(4 * hid, hid), r(4 * hid))

    def case(b, t, d, hid, k, dtype=torch.float32, scale=0.4):
        x = torch.randn(b, t, d, generator=g, dtype=torch.float64).to(dtype)
        w_cls = (torch.randn(k, hid, generator=g, dtype=torch.float64)).to(dtype)
        b_cls = (0.1 * torch.randn(k, generator=g, dtype=torch.float64)).to(dtype)
        return (x, weights(d, hid, scale, dtype), weights(d, hid, scale, dtype), w_cls, b_cls)

    return [
        Case("B = 2, T = 4 steps, D = 3 features, H = 5 cells, K = 6 classes", case(2, 4, 3, 5, 6),
             hint="the unrolling at step t (0-based) reads f_t repeated T − t + 1 times, starting from the rolling "
                  "state after f_t"),
        Case("one step only (T = 1): the unrolling reads f_1 twice", case(3, 1, 4, 3, 5),
             hint="even the last step is unrolled twice (T − t + 1 with t = T − 1, 0-based), as in the official code"),
        Case("RU-LSTM's own length: T = 14 (6 encoding + 8 anticipation steps)", case(2, 14, 6, 8, 7, scale=0.3)),
        Case("a single window (B = 1)", case(1, 5, 4, 6, 3),
             hint="keep the batch axis: squeeze() also removes B when B = 1"),
        Case("float64 weights and features", case(2, 3, 2, 4, 5, dtype=torch.float64),
             hint="compute in the dtype of x (create new tensors with x.new_zeros)"),
        Case("wide features (D = 16) and a narrow LSTM (H = 2)", case(2, 6, 16, 2, 4)),
    ]


ROLLING_UNROLLING = Check(
    exercise="10.2", name="rolling_unrolling", title="The rolling-unrolling loop of RU-LSTM",
    reference=_rolling_unrolling_logits,
    cases=_ru_cases, arg_names=("x", "rolling", "unrolling", "w_cls", "b_cls"), axes="B T K",
    atol=1e-5, rtol=1e-4,
    mistakes=(
        Mistake(lambda *a: _wrong_ru(*a, extra=0),
                "off by one: the unrolling at step t (0-based) reads f_t T − t + 1 times (T + 1 at the first step, "
                "2 at the last), one more than the steps left"),
        Mistake(lambda *a: _wrong_ru(*a, extra=2),
                "off by one: the unrolling at step t (0-based) reads f_t T − t + 1 times, not T − t + 2"),
        Mistake(lambda *a: _wrong_ru(*a, start="zero"),
                "the unrolling LSTM started from zeros; it starts from the rolling LSTM's state (h_t, c_t) after f_t"),
        Mistake(lambda *a: _wrong_ru(*a, start="last"),
                "every unrolling started from the LAST rolling state; step t starts from the state after f_t "
                "(the past up to t only)"),
        Mistake(lambda *a: _wrong_ru(*a, unroll=False),
                "you classified the rolling state directly; the classifier reads the unrolling LSTM's last hidden state"),
        Mistake(lambda *a: _wrong_ru(*a, inputs="future"),
                "the unrolling read f_t, f_{t+1}, ...: that is sequence-completion pre-training, which needs the "
                "future; at test time it reads the current f_t again and again"),
        Mistake(lambda *a: _wrong_ru(*a, swap=True),
                "the two LSTMs are swapped: `rolling` summarises the past, `unrolling` runs into the future"),
    ),
    hint="roll: (h, c) = lstm_step(f_t, h, c, *rolling) for t = 0..T−1, keeping every state; then for every t "
         "start from that state, apply lstm_step(f_t, ·, ·, *unrolling) T − t + 1 times and classify the last h",
)

