"""Checks of notebook 12 (Action-Guided Attention): 12.1 one read of AGA's memory, action-guided
attention with the gate (against the library's ``action_guided_attention``, the read ``AGA`` runs,
on an ``AGA``'s modules holding the same weights); 12.2 reading the dependency matrix: the top-k
likely next actions after a past action (against the world's grammar)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...analysis.dependency import top_next_actions
from ...models.aga import AGA, action_guided_attention
from ..checking import Case, Check, Mistake


# =========================================================================== 12.1 action-guided attention
def _action_guided_attention_with(q, keys, values, frame, w_eq, w_ek, w_q, w_k, w_v, w_g1, w_g2, heads):
    """The library's :func:`lecturekit.models.aga.action_guided_attention` (steps (5)-(7), what
    :meth:`lecturekit.models.aga.AGA.read` runs) on the modules of an ``AGA`` holding these weights.

    q (B, K) the query state; keys (B, S, K) past logits; values (B, S, H) past frame embeddings;
    frame (B, H) e_t; w_eq, w_ek (d, K) the action encoders E_Q, E_K; w_q, w_k (H, d), w_v (H, H) the
    projections; w_g1 (H/4, 2H), w_g2 (H, H/4) the gate; heads divides H.
    -> z (B, H), attention weights (B, heads, S), gate g (B, H).

    The exercise leaves out what is transformer plumbing rather than AGA's idea, and the module is
    set up to match: every bias is 0, the output projection W_O is the identity, the FFN's last
    layer is 0 (so c + FFN(RMS(c)) = c) and every normalisation keeps its initial unit gain.
    """
    k_classes, hidden, d = q.shape[-1], frame.shape[-1], w_eq.shape[0]
    model = AGA(feat_in=1, num_classes=k_classes, hidden=hidden, bottleneck=d, heads=int(heads),
                order=max(1, keys.shape[1]), dropout=0.0).to(q.dtype).eval()
    r = model.retrieve
    with torch.no_grad():
        for layer, w in ((model.query_encoder[3], w_eq), (model.key_encoder[3], w_ek), (r.w_q, w_q), (r.w_k, w_k),
                         (r.w_v, w_v), (model.gate.mlp[0], w_g1), (model.gate.mlp[3], w_g2)):
            layer.weight.copy_(w)
            layer.bias.zero_()
        r.w_o.weight.copy_(torch.eye(hidden, dtype=q.dtype))
        r.w_o.bias.zero_()
        r.ffn[3].weight.zero_()
        r.ffn[3].bias.zero_()
        z, weights, g, _ = action_guided_attention(q, keys, values, frame, query_encoder=model.query_encoder,
                                                   key_encoder=model.key_encoder, retrieve=model.retrieve,
                                                   history_norm=model.history_norm, gate=model.gate)
    return z, weights, g


def _wrong_aga(q, keys, values, frame, w_eq, w_ek, w_q, w_k, w_v, w_g1, w_g2, heads, *, gate="history",
               softmax="slots", scale="head", encoders="own", key_input="logits", ln=True, sn=True,
               gate_input="frame,history", rms=True):
    """Test-free helper for the known mistakes of 12.1 (each keyword switches one mistake on)."""
    def enc(x, w):
        x = F.layer_norm(x, x.shape[-1:]) if ln else x
        return F.relu(x) @ w.T

    def norm(x):
        return x / x.pow(2).mean(-1, keepdim=True).sqrt() if rms else x

    if encoders == "swapped":
        w_eq, w_ek = w_ek, w_eq
    k_in = keys.softmax(-1) if key_input == "probs" else keys
    b, s, _ = keys.shape
    hidden = frame.shape[-1]
    dh = hidden // heads
    qq = (norm(enc(q, w_eq)) @ w_q.T).reshape(b, heads, dh)
    kk = (norm(enc(k_in, w_ek)) @ w_k.T).reshape(b, s, heads, dh)
    vv = (norm(values) @ w_v.T).reshape(b, s, heads, dh)
    scores = torch.einsum("bhc,bshc->bhs", qq, kk)
    scores = scores / {"head": math.sqrt(dh), "width": math.sqrt(hidden), "none": 1.0}[scale]
    a = scores.softmax(-1 if softmax == "slots" else 1)
    c = torch.einsum("bhs,bshc->bhc", a, vv).reshape(b, hidden)
    hist = F.normalize(c, dim=-1) if sn else c
    u = torch.cat([frame, hist] if gate_input == "frame,history" else [hist, frame], dim=-1)
    g = torch.sigmoid(F.relu(u @ w_g1.T) @ w_g2.T)
    z = g * hist + (1 - g) * frame if gate == "history" else g * frame + (1 - g) * hist
    return z, a, g


def _aga_cases(g: torch.Generator) -> list[Case]:
    def rand(*shape, scale=1.0, dtype=torch.float32):
        return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype)

    def case_args(b, s, k, d, h, heads, *, scale=1.0, peaked=False, dtype=torch.float32):
        q = torch.softmax(rand(b, k, scale=2.0), -1).to(dtype)                        # a distribution over actions
        keys = rand(b, s, k, scale=(6.0 if peaked else 1.5) * scale, dtype=dtype)     # past logits
        values = F.normalize(rand(b, s, h), dim=-1).to(dtype)                         # frame embeddings (unit norm)
        frame = F.normalize(rand(b, h), dim=-1).to(dtype)
        w = dict(w_eq=rand(d, k, scale=scale / math.sqrt(k), dtype=dtype), w_ek=rand(d, k, scale=scale / math.sqrt(k), dtype=dtype),
                 w_q=rand(h, d, scale=scale / math.sqrt(d), dtype=dtype), w_k=rand(h, d, scale=scale / math.sqrt(d), dtype=dtype),
                 w_v=rand(h, h, scale=1 / math.sqrt(h), dtype=dtype), w_g1=rand(h // 4, 2 * h, scale=2 / math.sqrt(h), dtype=dtype),
                 w_g2=rand(h, h // 4, scale=2 / math.sqrt(h), dtype=dtype))
        return (q, keys, values, frame, *w.values(), heads)

    return [
        Case("one slot (S = 1): every head gives the one slot weight 1", case_args(2, 1, 5, 4, 8, 2),
             hint="the softmax runs over the S memory slots (the last axis of the scores): with one slot it is 1"),
        Case("B = 2, S = 3 slots, K = 6 actions, d = 4, H = 8, 2 heads", case_args(2, 3, 6, 4, 8, 2),
             hint="split Q, K and V into heads of width H / heads and divide the scores by sqrt(H / heads)"),
        Case("4 heads of width 4 (H = 16, d = 8), S = 5, K = 10", case_args(3, 5, 10, 8, 16, 4)),
        Case("a single head (heads = 1, H = 8)", case_args(2, 4, 6, 4, 8, 1)),
        Case("confident past predictions (peaked logits)", case_args(2, 4, 7, 4, 8, 2, peaked=True),
             hint="keys are the stored LOGITS, encoded as they are (E_K's LayerNorm removes their offset)"),
        Case("larger weights (scale 3): the scaling of the scores matters", case_args(2, 3, 6, 4, 8, 2, scale=3.0)),
        Case("float64 inputs and weights", case_args(2, 3, 5, 4, 8, 2, dtype=torch.float64),
             hint="compute in the dtype of the inputs"),
    ]


def _aga_mistake(**switch):
    return lambda *a: _wrong_aga(*a, **switch)


ACTION_GUIDED_ATTENTION = Check(
    exercise="12.1", name="action_guided_attention", title="Action-guided attention with the gate",
    reference=_action_guided_attention_with,
    cases=_aga_cases,
    arg_names=("q", "keys", "values", "frame", "w_eq", "w_ek", "w_q", "w_k", "w_v", "w_g1", "w_g2", "heads"),
    atol=1e-5, rtol=1e-4,
    mistakes=(
        Mistake(_aga_mistake(gate="frame"),
                "the gate is the other way round: z = g ⊙ h~ + (1 − g) ⊙ e, so g near 1 takes the HISTORY"),
        Mistake(_aga_mistake(softmax="heads"),
                "the softmax ran over the heads; each head's weights are a distribution over the S memory slots"),
        Mistake(_aga_mistake(scale="none"),
                "the scores are not scaled: divide Q^h · K^h_j by sqrt(d_h), d_h = H / heads"),
        Mistake(_aga_mistake(scale="width"),
                "the scores were divided by sqrt(H); the scale is the width of ONE head, sqrt(H / heads)"),
        Mistake(_aga_mistake(encoders="swapped"),
                "the two action encoders are swapped: E_Q (w_eq) encodes the query q, E_K (w_ek) the stored keys"),
        Mistake(_aga_mistake(key_input="probs"),
                "you turned the stored logits into probabilities first; AGA's keys are the logits themselves "
                "(E_K's LayerNorm makes that the same as log-probabilities)"),
        Mistake(_aga_mistake(ln=False),
                "the action encoders miss their LayerNorm: E(x) = W ReLU(LN(x)), LN over the K actions"),
        Mistake(_aga_mistake(rms=False),
                "Q, K and V are projected without the RMS normalisation: W_Q RMS(E_Q(q)), W_K RMS(E_K(y_j)), "
                "W_V RMS(v_j)"),
        Mistake(_aga_mistake(sn=False),
                "the history context is not normalised: h~ = c / ‖c‖₂ before the gate"),
        Mistake(_aga_mistake(gate_input="history,frame"),
                "the gate reads [h~ ; e]; it reads the current frame first: [e ; h~]"),
        Mistake(lambda *a: _wrong_aga(*a[:-1], 1),
                "you used a single head; split the H features into `heads` heads of width H / heads"),
    ),
    hint="E(x) = W ReLU(LN(x)); RMS(x) = x / sqrt(mean(x²)); Q = W_Q RMS(E_Q(q)), K_j = W_K RMS(E_K(y_j)), "
         "V_j = W_V RMS(v_j); per head a_j = softmax_j(Q·K_j / sqrt(H / heads)); c = concat_h Σ_j a_j V_j; "
         "h~ = c / ‖c‖; g = σ(W_g2 ReLU(W_g1 [e ; h~])); z = g ⊙ h~ + (1 − g) ⊙ e; return (z, a, g)",
)


# =========================================================================== 12.2 reading the dependency matrix
def _wrong_top(m, past, k, *, read="column", order="descending", ties="smaller"):
    m = torch.as_tensor(m)
    line = m[:, past] if read == "column" else m[past, :]
    if order == "ascending":
        return torch.sort(line, stable=True).indices[:k]
    if ties == "larger":                                     # a stable ascending sort, reversed
        return torch.sort(line, stable=True).indices.flip(0)[:k]
    return torch.sort(line, descending=True, stable=True).indices[:k]


def _grammar() -> torch.Tensor:
    """The true next-action probabilities of ``ToyKitchens(seed=0)`` in the dependency orientation:
    G[a, b] = P(next = a | previous = b) (the transpose of ``transition_matrix("train")``)."""
    from ...data.toykitchens import ToyKitchens

    return torch.as_tensor(ToyKitchens(seed=0).transition_matrix("train")).T.contiguous()


def _top_cases(g: torch.Generator) -> list[Case]:
    grammar = _grammar()
    a = grammar.shape[0]
    top = torch.sort(grammar, dim=0, descending=True).values[:5]            # (5, A): each column's 5 largest
    tied = int(torch.nonzero((top[1:] == top[:-1]).any(0))[0])              # a past action with a tie among them
    spread = int(torch.argmax((grammar > 1e-3).sum(0)))                     # the one with the most likely successors
    rand = torch.rand(6, 6, generator=g, dtype=torch.float64)
    square = torch.tensor([[0.5, 0.1, 0.2, 0.2],
                         [0.1, 0.3, 0.2, 0.2],
                         [0.2, 0.3, 0.4, 0.2],
                         [0.2, 0.3, 0.2, 0.4]], dtype=torch.float64)
    return [
        Case("the world's grammar (ToyKitchens seed 0, G[a, b] = P(next a | previous b)), past action 0, k = 3",
             (grammar, 0, 3),
             hint="M[a, b]: row a is the current / next action, column b the past one; what follows `past` "
                  "is read down column `past`"),
        Case(f"the grammar, past action {spread} (the one with the most likely successors), k = 5",
             (grammar, spread, 5)),
        Case(f"the grammar, past action {tied}: two next actions are exactly equally likely, k = 5",
             (grammar, tied, 5),
             hint="among equal values the smaller action id comes first: a stable sort in descending order"),
        Case(f"the grammar, the last past action ({a - 1}), k = 1", (grammar, a - 1, 1)),
        Case("a random 6 x 6 matrix (float64), past action 2, k = 2", (rand, 2, 2)),
        Case("a 4 x 4 matrix with ties, past action 3, k = 4 (the full ranking)", (square, 3, 4),
             hint="ties: the smaller action id first"),
        Case("float32 random 5 x 5, past action 4, k = 3", (torch.rand(5, 5, generator=g), 4, 3)),
    ]


TOP_NEXT_ACTIONS = Check(
    exercise="12.2", name="top_next_actions", title="Reading the dependency matrix",
    reference=top_next_actions,
    cases=_top_cases, arg_names=("m", "past", "k"), atol=0.0, rtol=0.0,
    mistakes=(
        Mistake(lambda m, p, k: _wrong_top(m, p, k, read="row"),
                "you read ROW `past`: M[past, :] is how strongly the current action `past` links to each past "
                "action. What follows `past` is column `past`, M[:, past] (the transposed reading)"),
        Mistake(lambda m, p, k: _wrong_top(m, p, k, order="ascending"),
                "you returned the LEAST likely actions first; sort in descending order"),
        Mistake(lambda m, p, k: _wrong_top(m, p, k, ties="larger"),
                "ties: among equal values the SMALLER action id comes first (torch.sort(..., descending=True, "
                "stable=True))"),
        Mistake(lambda m, p, k: _wrong_top(m, p, k, read="row", ties="larger"),
                "you read ROW `past` (the transposed reading) and put larger ids first among ties; read column "
                "`past`, M[:, past], smaller ids first"),
    ),
    hint="torch.sort(m[:, past], descending=True, stable=True).indices[:k]",
)

