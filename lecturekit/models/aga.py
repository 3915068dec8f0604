"""AGA: Action-Guided Attention, and its ablation ladder (pixel attention, IAM-style, no gate).

Paper: T.-M. Tai, S. Casarin, A. Pilzer, W. Nutt, O. Lanz, "Action-Guided Attention for Video
Action Anticipation", ICLR 2026. https://arxiv.org/abs/2603.01743. Official code:
github.com/CorcovadoMing/AGA (``model.py``, class ``AGA``; snapshot cb46630).
Predecessor: T.-M. Tai et al., "Inductive Attention for Video Action Anticipation" (IAM),
https://arxiv.org/abs/2212.08830 -- here a configuration of the same module.

The idea: attention over the past is computed between ACTION PREDICTIONS, not between pixel
features. A recurrent head runs over frozen per-frame features f_0..f_{T-1}; at every step it
predicts the next action, and stores (key = its prediction, value = the frame embedding) in a
FIFO memory of the last S steps. The query is a moving average of its own recent predictions.
Because queries and keys live in action space, the trained attention can be probed with
hand-picked actions (``lecturekit.analysis.aga``). The steps below are numbered by us (they are
not the paper's equation numbers) and follow the released code (``AGA.forward`` and
``AGA.grab_state`` in model.py), which the default ``variant="released"`` reproduces layer for
layer (the query rule of step (3) aside, see below):

    (1) e_t = SN_e( W_e Drop(ReLU(LN(f_t))) )                       frame embedding, (B, H)
    (2) t = 0: memory empty, no attention, no gate:  z_0 = SN_h(e_0)
    (3) q_t = α p_{t-1} + (1 − α) q_{t-1},  p = softmax(y),  q_0 = 0   EMA query, (B, K)
    (4) memory read: keys y_{t-S'..t-1} (logits), values e_{t-S'..t-1},  S' = min(t, S)
    (5) E_Q(q) = W_q ReLU(Drop(LN_K(q))),  E_K(y) = W_k ReLU(Drop(LN_K(y)))   K -> d
    (6) a^h_j = softmax_j( Q^h · K^h_j / sqrt(d_h) ),  Q = W_Q RMS(E_Q(q_t)),
        K = W_K RMS(E_K(y_j)),  V = W_V RMS(e_j);   c = Drop_a(W_O concat_h Σ_j a^h_j V^h_j)
        c <- c + FFN(RMS(c));   h~_t = SN_h(c)                         history context, (B, H)
    (7) g_t = σ( W_g2 Drop(ReLU(W_g1 [e_t ; h~_t])) ),  z_t = g_t ⊙ h~_t + (1 − g_t) ⊙ e_t
    (8) y_t = W_c Drop(ReLU(LN(z_t)))                                  logits, (B, K)
    (9) memory write: push (y_t, e_t); keep the last S. y_t is NOT detached: gradients flow
        back through every stored prediction (full back-propagation through time).

LN = LayerNorm, RMS(x) = g ⊙ x / sqrt(mean(x²)), SN(x) = g ⊙ x / ‖x‖₂ (ScaleNorm with a
gain vector, initialised to 1 as in the code). FFN = Linear(H, H/2), GELU, Drop_a,
Linear(H/2, H), Drop_a. Drop has rate ``dropout``, Drop_a rate ``attention_dropout`` (the
code's names; both 0.6): the attention weights a^h_j themselves are not dropped. No
positional encoding anywhere: the memory is an unordered set.

The ablation ladder (constructor switches; table rows ``aga_pixel``, ``aga_iam``, ``aga_nogate``):
    attention="pixel"   dot-product attention over frames: query = W_p e_t (H -> d), keys =
                        values = past frame embeddings (the code's ``iam=False``)
    query="last"        q_t = p_{t-1} (the IAM query); values="state" stores z_t instead of e_t
                        (IAM: recurrent states as values; the code's ``recurrent_h=True``)
    gate=False          z_t = h~_t + e_t (the code's ``gate_x=False``)

Where code and paper disagree, and what we chose
    - EMA query. The paper (and poster) describe a moving average, which we implement by
      default (``query="ema"``). The released code computes
      q_t = α p_{t-1} + (1 − α) softmax(q_{t-1}): softmax of a probability vector over K
      classes is nearly uniform, so older predictions are practically erased (after two
      one-hot steps the older action keeps ~1e-4 of the mass, 0.16 with the textbook EMA).
      ``query="ema_released"`` reproduces the code. This is the only default that departs
      from the released code.
    - Keys are logits (the code's ``key_prob=False``); after LN_K this equals log-probabilities.
      The query is a probability vector.
Parameter count (paper configuration)
    The released module has 31,670,358 parameters (``PUBLISHED["params"]``), and so has ours. Its
    forward pass uses 31,666,262 of them (``PUBLISHED["used_params"]``): the FFN of step (6) is
    wrapped in the same pre-norm block as the attention, which builds RMSNorm gains for a
    query, a key and a value input, but the FFN is called with one input only, so the key and
    value gains (2·H = 4,096) are never read. We keep them, as
    ``retrieve.unused_ffn_k_gain`` and ``retrieve.unused_ffn_v_gain``, so that the counts and
    the parameter lists match the code one to one; they never receive a gradient
    (``PARAMETERS_WITHOUT_GRADIENT``; ``num_parameters(used_only=True)`` leaves them out).
    Our pixel baseline has 31,953,118 parameters; the released ``iam=False`` module has
    33,909,914 (``PUBLISHED["pixel_params"]``), exactly one action encoder (LN_K + K -> d,
    1,956,796) more, which it builds but pixel attention never calls: we build only the
    modules pixel attention uses.
History: the earlier reconstruction (``variant="legacy"``)
    This module was first written before the released code was checked layer by layer;
    ``variant="legacy"`` is that first version, kept unchanged so that anything trained with it
    can be rerun. It differs from the released model (the default) in four places:

        gate input     legacy: RMSNorm(2H) on [e_t ; h~_t]           released: no norm
        ScaleNorm      legacy: SN_e and SN_h gains start at sqrt(H)  released: at 1
        dropout        legacy: on the attention weights a^h_j (rate ``attention_dropout``),
                       rate ``dropout`` after W_O and in the FFN
                       released: none on the weights, rate ``attention_dropout`` after W_O
                       and in the FFN
        RMSNorm eps    legacy: PyTorch's default (machine epsilon)   released: 1e-30

    The gate norm's 4,096 gains took the place of the released module's two unused gains, so the
    total parameter count is the same. With the same weights the two variants compute the same
    function but for the gate's RMSNorm (and the epsilon): that norm is the identity while both
    ScaleNorm gains are uniform at sqrt(H), legacy's initialisation ([e_t ; h~_t] then has RMS 1
    already), and multiplies the gate input by sqrt(H) at the released gains 1. In the paper
    configuration, from the same random weights, each variant with its own initialisation: max
    |logit difference| 0.22 over a 30-step clip (logits up to 1.8).
    No result stored under ``lecturekit/resources/results`` was produced with the legacy
    variant: no script of the repository and no analysis of the library selects it, and seed 0
    of the ``aga`` rows of ``anticipation_toykitchens.json`` and
    ``anticipation_toykitchens_frame_cnn.json`` retrains to the stored action MT5R digit for digit
    with the released variant (the legacy one gives another value).
Training (the released train.py; the losses live in ``lecturekit.losses``)
    ``dense_next_step_loss``: every step predicts the action in progress at the next sampled
    frame, the last step the annotated future action (counted twice); class weights
    ``inverse_sqrt_class_weights`` (1/sqrt(n_c + 1), mean 1); AdamW lr 2e-4, weight decay 1e-2,
    cosine schedule, 50 epochs, batch 128; 30 frames at 1 fps before tau_a = 1 s.
Simplified
    - The RMSNorms add eps = 1e-30 under the square root (the code adds nothing), so that an
      all-zero input gives zeros rather than NaN; for any other input it vanishes in rounding
      (a unit-norm vector of width H has mean square 1/H). PyTorch's default, the dtype's
      machine epsilon (1.2e-7 in float32), does not: at the released ScaleNorm gains it moves
      the logits by ~1e-4 in float32. ``variant="legacy"`` keeps that default.
    - ``top1_only``, ``key_prob``, ``random_inductive_perturb``, teacher forcing (``gt=``),
      the scalar gate (``single_value_gate``), ``down_ratio`` other than 4 for the gate, and the
      LSTM query of the code are not implemented; ``bottleneck`` sets d separately from the
      gate's H/4.
Shapes (letters defined in lecturekit/layers/shapes.py; S = memory slots)
    features (B, T, D) -> logits (B, T, K); the anticipation is the LAST step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.shapes import check_sequence
from .published import Published

QUERIES = ("ema", "ema_released", "last")
VARIANTS = ("released", "legacy")


class ScaleNorm(nn.Module):
    """SN(x) = g ⊙ x / ‖x‖₂ over the last axis, with a learned gain vector g.

    The gain starts at ``init`` (1, as released; the ``legacy`` variant passes sqrt(dim)). The
    norm is guarded by max(‖x‖₂, 1e-12) (``F.normalize``, as released).
    """

    def __init__(self, dim: int, init: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: Tensor) -> Tensor:
        return self.weight * F.normalize(x, p=2.0, dim=-1)


def _action_encoder(num_classes: int, bottleneck: int, dropout: float) -> nn.Sequential:
    """E(a) = W ReLU(Drop(LN(a))): an action vector (K) -> the attention bottleneck (d). Step (5)."""
    return nn.Sequential(nn.LayerNorm(num_classes), nn.Dropout(dropout), nn.ReLU(), nn.Linear(num_classes, bottleneck))


class Retrieve(nn.Module):
    """One query against S' memory entries: RMS-pre-normed multi-head attention + FFN. Step (6).

    No residual around the attention (the query lives in another space than the values);
    a pre-norm residual FFN follows. ``dropout`` acts after the output projection W_O and twice
    in the FFN (the released placement; AGA passes its ``attention_dropout`` here);
    ``weight_dropout`` (the ``legacy`` variant only) also drops attention weights. ``norm_eps``
    is the RMSNorms' guard (None: PyTorch's machine epsilon, the ``legacy`` variant).

    ``ffn_kv_gains=True`` adds ``unused_ffn_k_gain`` and ``unused_ffn_v_gain`` (H each, ones):
    the released FFN sits in the same pre-norm wrapper as the attention, which builds RMSNorm
    gains for a query, a key and a value input, and is then called with its query input only.
    The two gains are kept so that the parameter count equals the released module's; the
    forward pass never reads them and they never receive a gradient.

    Shape: query (B, d_q), keys (B, S', d_k), values (B, S', H) -> context (B, H),
    weights (B, heads, S') summing to 1 over S'.
    """

    def __init__(self, query_dim: int, key_dim: int, hidden: int, heads: int, dropout: float,
                 weight_dropout: float | None = None, ffn_kv_gains: bool = True, norm_eps: float | None = 1e-30):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden {hidden} must be divisible by heads {heads}")
        self.heads = heads
        self.norm_q, self.norm_k, self.norm_v = (nn.RMSNorm(n, eps=norm_eps) for n in (query_dim, key_dim, hidden))
        self.w_q = nn.Linear(query_dim, hidden)
        self.w_k = nn.Linear(key_dim, hidden)
        self.w_v = nn.Linear(hidden, hidden)
        self.w_o = nn.Linear(hidden, hidden)
        self.attn_drop = nn.Identity() if weight_dropout is None else nn.Dropout(weight_dropout)
        self.drop = nn.Dropout(dropout)
        self.norm_ffn = nn.RMSNorm(hidden, eps=norm_eps)
        if ffn_kv_gains:                                                # built, never used (see above)
            self.unused_ffn_k_gain = nn.Parameter(torch.ones(hidden))
            self.unused_ffn_v_gain = nn.Parameter(torch.ones(hidden))
        self.ffn = nn.Sequential(nn.Linear(hidden, hidden // 2), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden // 2, hidden), nn.Dropout(dropout))

    def _split(self, x: Tensor) -> Tensor:
        *lead, h = x.shape
        return x.reshape(*lead, self.heads, h // self.heads)            # (..., heads, d_h)

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        """Scaled dot products Q^h · K^h_j / sqrt(d_h) before the softmax: (B, heads, S').

        Leading axes broadcast: query (N, d_q) with keys (1, S', d_k) scores N queries against
        one shared key set (the dependency analysis does this).
        """
        q = self._split(self.w_q(self.norm_q(query)))                   # (B, heads, d_h)
        k = self._split(self.w_k(self.norm_k(keys)))                    # (B, S', heads, d_h)
        return torch.einsum("...hc,...shc->...hs", q, k) / math.sqrt(q.shape[-1])

    def forward(self, query: Tensor, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        weights = self.scores(query, keys).softmax(-1)                  # (B, heads, S')
        v = self._split(self.w_v(self.norm_v(values)))                  # (B, S', heads, d_h)
        read = torch.einsum("bhs,bshc->bhc", self.attn_drop(weights), v)  # (B, heads, d_h)
        c = self.drop(self.w_o(read.flatten(1)))                        # (B, H)
        c = c + self.ffn(self.norm_ffn(c))                              # pre-norm residual FFN
        return c, weights


class Gate(nn.Module):
    """g = σ(W_2 Drop(ReLU(W_1 [e ; h~]))): element-wise, 2H -> H/4 -> H. Step (7).

    ``mlp`` is the released gate (the code's ``selector``): Linear(2H, H/4), ReLU, Dropout,
    Linear(H/4, H), Sigmoid. ``norm=True`` (the ``legacy`` variant) puts an RMSNorm(2H) on the
    input first; ``self.norm`` is None otherwise.
    """

    def __init__(self, hidden: int, dropout: float, norm: bool = False):
        super().__init__()
        self.norm = nn.RMSNorm(2 * hidden) if norm else None
        self.mlp = nn.Sequential(nn.Linear(2 * hidden, hidden // 4), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden // 4, hidden), nn.Sigmoid())

    def forward(self, frame: Tensor, history: Tensor) -> Tensor:
        u = torch.cat([frame, history], dim=-1)                                  # (B, 2H)
        return self.mlp(u if self.norm is None else self.norm(u))                # (B, H)


def action_guided_attention(query: Tensor, keys: Tensor, values: Tensor, frame: Tensor, *,
                            query_encoder: Callable[[Tensor], Tensor], key_encoder: Callable[[Tensor], Tensor],
                            retrieve: Callable, history_norm: Callable[[Tensor], Tensor],
                            gate: Callable[[Tensor, Tensor], Tensor] | None
                            ) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
    """One read of AGA's memory with the gate: steps (5)-(7) of this module's docstring (our
    numbering of the released ``AGA.forward``; Tai et al., "Action-Guided Attention for Video
    Action Anticipation", ICLR 2026, https://arxiv.org/abs/2603.01743):

        (5) E_Q(q_t), E_K(y_j)                                          the action encoders, K -> d
        (6) a^h_j = softmax_j( Q^h · K^h_j / sqrt(d_h) ),  Q = W_Q RMS(E_Q(q_t)),
            K_j = W_K RMS(E_K(y_j)),  V_j = W_V RMS(v_j);  c = W_O concat_h Σ_j a^h_j V^h_j,
            c <- c + FFN(RMS(c));  h~_t = SN_h(c)                        the history context
        (7) g_t = σ( W_g2 ReLU(W_g1 [e_t ; h~_t]) ),  z_t = g_t ⊙ h~_t + (1 − g_t) ⊙ e_t

    (dropout as in the module docstring, inside the pieces). The pieces are the model's own
    modules, or any callables of the same interface:

    Args:
        query: the query source (B, K): the query state q_t (for pixel attention: e_t (B, H)).
        keys: the stored keys (B, S', K) (pixel attention: frame embeddings (B, S', H)).
        values: the stored values v_j (B, S', H).
        frame: the current frame embedding e_t (B, H).
        query_encoder, key_encoder: E_Q and E_K (pixel attention: W_p and the identity).
        retrieve: step (6) up to c: ``(E_Q(q) (B, d), E_K(keys) (B, S', d), values) -> (c (B, H),
            a (B, heads, S'))`` (:class:`Retrieve`).
        history_norm: SN_h.
        gate: ``(e_t, h~_t) -> g_t (B, H)`` (:class:`Gate`); None: z_t = h~_t + e_t (the no-gate
            ablation) and no g_t.

    Returns:
        (z_t (B, H), a (B, heads, S'), g_t (B, H) or None, h~_t (B, H)).

    :meth:`AGA.read` runs it on the model's own modules; exercise 12.1 checks students against it
    (on modules holding the exercise's weights, with zero biases, W_O = I, a zero FFN and unit
    gains).
    """
    context, weights = retrieve(query_encoder(query), key_encoder(keys), values)   # (5)-(6)
    history = history_norm(context)                                                # h~_t (B, H)
    if gate is None:
        return history + frame, weights, None, history                             # z = h~ + e
    g = gate(frame, history)                                                       # (B, H)
    return g * history + (1.0 - g) * frame, weights, g, history                    # (7)


class AGAStep(NamedTuple):
    """One step's results (see :meth:`AGA.read`)."""

    logits: Tensor     # (B, K)        y_t
    state: Tensor      # (B, H)        z_t
    context: Tensor    # (B, H)        h~_t
    gate: Tensor | None  # (B, H)      g_t (None without a gate)
    weights: Tensor    # (B, heads, S') attention over the memory


class AGAMemory(NamedTuple):
    """What step t reads (see :meth:`AGA.memory_at`): the memory and the query state before it."""

    query_start: Tensor  # (B, K)  q before the first slot's prediction entered the EMA
    keys: Tensor         # (B, S', K) logits, or (B, S', H) frame embeddings for pixel attention
    values: Tensor       # (B, S', H)
    frame: Tensor        # (B, H)  e_t
    start: int           # the time step of the first slot (t − S')


class AGAOutput(NamedTuple):
    logits: Tensor     # (B, T, K)
    states: Tensor     # (B, T, H)            z_t, what the classifier head reads
    frames: Tensor     # (B, T, H)            e_t
    contexts: Tensor   # (B, T, H)            h~_t (NaN at t = 0: nothing to read)
    gates: Tensor | None  # (B, T, H)         g_t (NaN at t = 0; None without a gate)
    attention: Tensor  # (B, heads, T, T)     row t: weights over the steps in memory (0 elsewhere)


class AGA(nn.Module):
    """The AGA head over a feature sequence, with the switches of the ablation ladder.

    Args:
        num_classes: K actions (3,806 on EK-100; verbs/nouns by marginalisation at evaluation).
        feat_in: D of the per-frame features (1024: TSN RGB or Swin-B).
        hidden: H, the width of embeddings and states (2048).
        bottleneck: d, the width of the action encoders E_Q, E_K (H/4 = 512).
        heads: attention heads (16, width H/heads = 128).
        order: S, the memory length (30).
        dropout: in the frame encoder, the action encoders, the gate and the classifier ``head``
            (0.6 in the paper configuration).
        attention_dropout: inside the attention block: after W_O and in the FFN (0.6 in the paper
            configuration; default: ``dropout``). Never on the attention weights, except in the ``legacy`` variant.
        alpha: α, the EMA weight of the newest prediction (0.8).
        query: "ema" (textbook EMA, default), "ema_released" (the code's re-softmaxed EMA),
            "last" (q_t = p_{t-1}, IAM).
        attention: "action" (AGA) or "pixel" (frame embeddings as queries and keys).
        values: "frame" (store e_t, AGA) or "state" (store z_t, IAM).
        gate: the sigmoid gate (True) or the plain sum z = h~ + e (False).
        detach_memory: stop gradients at everything stored (an ablation; the code does not).
        variant: "released" (default): the released module's layers, initialisation and dropout
            placement, including its two unused gains (``PARAMETERS_WITHOUT_GRADIENT``).
            "legacy": history, this library's first version, written before the released code
            was checked layer by layer (see "History" in the module docstring): an RMSNorm on the gate input,
            ScaleNorm gains starting at sqrt(H), dropout (rate ``attention_dropout``) on the
            attention weights and rate ``dropout`` after W_O and in the FFN, PyTorch's RMSNorm
            epsilon, no unused gains; same total parameter count. Kept unchanged to rerun what
            was trained with it; no stored result was.

    Shape:
        features (B, T, D) -> logits (B, T, K); row T-1 is the anticipation.

    Example:
        >>> model = AGA(5, feat_in=8, hidden=16, heads=2, order=4).eval()
        >>> tuple(model(torch.randn(2, 6, 8)).shape)
        (2, 6, 5)
    """

    PRESETS = {
        "small": dict(feat_in=32, num_classes=10, hidden=64, heads=4, order=8, dropout=0.1),
        # released train.py defaults (EK-100, 1024-d features, 30 steps at 1 fps)
        "paper": dict(feat_in=1024, num_classes=3806, hidden=2048, bottleneck=512, heads=16, order=30,
                      dropout=0.6, alpha=0.8),
    }
    PUBLISHED = {
        "params": Published(31_670_358, "parameters", "preset 'paper' (the released train.py defaults: "
                            "1024-d features, H = 2048, d = 512, 16 heads, S = 30, 3,806 EK-100 actions)",
                            "official code github.com/CorcovadoMing/AGA (model.py, class AGA, snapshot "
                            "cb46630), counted by instantiating it; the paper gives no count"),
        "used_params": Published(31_666_262, "parameters the forward pass reads",
                                 "as 'params', without the two unused FFN gains (2·H = 4,096)",
                                 "official code github.com/CorcovadoMing/AGA (model.py), read from its forward"),
        "pixel_params": Published(33_909_914, "parameters", "as 'params' with iam=False (pixel attention); "
                                  "includes one action encoder (LN_K + K -> d) that pixel attention never calls",
                                  "official code github.com/CorcovadoMing/AGA (model.py), counted by "
                                  "instantiating it"),
    }
    SUPPORTS_ANY_T = True
    EXAMPLE_FRAMES = 8

    def __init__(self, num_classes: int = 10, *, feat_in: int = 32, hidden: int = 64, bottleneck: int | None = None,
                 heads: int = 4, order: int = 8, dropout: float = 0.1, attention_dropout: float | None = None,
                 alpha: float = 0.8, query: str = "ema", attention: str = "action", values: str = "frame",
                 gate: bool = True, detach_memory: bool = False, variant: str = "released"):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
        if query not in QUERIES:
            raise ValueError(f"query: expected one of {QUERIES}, got {query!r}")
        if attention not in ("action", "pixel"):
            raise ValueError(f"attention: expected 'action' or 'pixel', got {attention!r}")
        if values not in ("frame", "state"):
            raise ValueError(f"values: expected 'frame' or 'state', got {values!r}")
        if order < 1 or not 0.0 <= alpha <= 1.0:
            raise ValueError(f"expected order >= 1 and 0 <= alpha <= 1, got order={order}, alpha={alpha}")
        d = bottleneck or hidden // 4
        self.feat_in, self.num_classes, self.hidden, self.order = feat_in, num_classes, hidden, order
        self.alpha, self.query, self.attention, self.values = alpha, query, attention, values
        self.detach_memory, self.variant = detach_memory, variant
        released = variant == "released"
        att_drop = dropout if attention_dropout is None else attention_dropout
        sn_init = 1.0 if released else math.sqrt(hidden)
        # (1) frame encoder
        self.encoder = nn.Sequential(nn.LayerNorm(feat_in), nn.ReLU(), nn.Dropout(dropout), nn.Linear(feat_in, hidden),
                                     ScaleNorm(hidden, sn_init))
        # (5) what turns the query source and the stored keys into attention inputs
        if attention == "action":
            self.query_encoder = _action_encoder(num_classes, d, dropout)     # E_Q: K -> d
            self.key_encoder = _action_encoder(num_classes, d, dropout)       # E_K: K -> d
            key_dim = d
        else:
            self.query_encoder = nn.Linear(hidden, d)                          # W_p: e_t -> d
            self.key_encoder = nn.Identity()                                   # keys are e_j
            key_dim = hidden
        if released:                                                             # (6)
            self.retrieve = Retrieve(d, key_dim, hidden, heads, att_drop, None, ffn_kv_gains=True, norm_eps=1e-30)
        else:
            self.retrieve = Retrieve(d, key_dim, hidden, heads, dropout, att_drop, ffn_kv_gains=False, norm_eps=None)
        self.history_norm = ScaleNorm(hidden, sn_init)                           # SN_h
        self.gate = Gate(hidden, dropout, norm=not released) if gate else None   # (7)
        self.head = nn.Sequential(nn.LayerNorm(hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, num_classes))                # (8)

    @classmethod
    def example_input(cls, preset: str = "small", batch: int = 2) -> Tensor:
        """Random features (B, 8, D) of the preset's width."""
        g = torch.Generator().manual_seed(0)
        return torch.randn(batch, cls.EXAMPLE_FRAMES, cls.PRESETS[preset]["feat_in"], generator=g)

    @property
    def heads(self) -> int:
        return self.retrieve.heads

    @property
    def PARAMETERS_WITHOUT_GRADIENT(self) -> tuple[str, ...]:   # noqa: N802 (the contract tests' name)
        """Parameters that exist (as in the released module) but that the forward pass never reads."""
        return tuple(f"retrieve.{n}" for n in ("unused_ffn_k_gain", "unused_ffn_v_gain") if hasattr(self.retrieve, n))

    def num_parameters(self, used_only: bool = False) -> int:
        """Number of parameters; ``used_only`` leaves out ``PARAMETERS_WITHOUT_GRADIENT``."""
        skip = set(self.PARAMETERS_WITHOUT_GRADIENT) if used_only else set()
        return sum(p.numel() for n, p in self.named_parameters() if n not in skip)

    # ----------------------------------------------------------------- the pieces of one step
    def embed(self, x: Tensor) -> Tensor:
        """Step (1) on every frame at once: features (B, T, D) -> embeddings e (B, T, H)."""
        check_sequence(x, dim=self.feat_in)
        return self.encoder(x)

    def update_query(self, q: Tensor, prev_logits: Tensor) -> Tensor:
        """Step (3): the query state after prediction y_{t-1}; (B, K) -> (B, K)."""
        p = prev_logits.softmax(-1)
        if self.query == "last":
            return p
        if self.query == "ema_released":
            q = q.softmax(-1)                                    # the code's extra softmax
        return self.alpha * p + (1.0 - self.alpha) * q

    def read(self, query: Tensor, keys: Tensor, values: Tensor, frame: Tensor) -> AGAStep:
        """Steps (5)-(8) for t >= 1 from explicit ingredients (the code's ``att_forward``).

        Args:
            query: the query state q_t (B, K) (ignored by pixel attention, which queries with
                ``frame``).
            keys: stored logits (B, S', K), or frame embeddings (B, S', H) for pixel attention.
            values: stored embeddings or states (B, S', H).
            frame: the current embedding e_t (B, H).
        """
        source = frame if self.attention == "pixel" else query
        state, weights, g, history = action_guided_attention(
            source, keys, values, frame, query_encoder=self.query_encoder, key_encoder=self.key_encoder,
            retrieve=self.retrieve, history_norm=self.history_norm, gate=self.gate)   # (5)-(7)
        return AGAStep(self.head(state), state, history, g, weights)          # (8)

    # ----------------------------------------------------------------- the recurrence
    def _run(self, x: Tensor, stop: int | None = None):
        b, t, _ = check_sequence(x, dim=self.feat_in)
        e = self.embed(x)                                                     # (B, T, H)
        keys: list[Tensor] = []
        vals: list[Tensor] = []
        queries = [e.new_zeros(b, self.num_classes)]                          # q_0 = 0; queries[j] = q_j
        steps: list[AGAStep] = []
        for step in range(t if stop is None else stop):
            frame = e[:, step]                                                # (B, H)
            if step == 0:                                                     # (2) empty memory
                z = self.history_norm(frame)
                out = AGAStep(self.head(z), z, None, None, None)
            else:
                prev = steps[-1].logits.detach() if self.detach_memory else steps[-1].logits
                queries.append(self.update_query(queries[-1], prev))          # (3) q_t
                out = self.read(queries[-1], torch.stack(keys, 1), torch.stack(vals, 1), frame)   # read before write
            steps.append(out)
            key = frame if self.attention == "pixel" else out.logits          # (9) write
            value = frame if self.values == "frame" else out.state
            if self.detach_memory:
                key, value = key.detach(), value.detach()
            keys.append(key)
            vals.append(value)
            if len(keys) > self.order:                                        # FIFO: keep the last S
                keys.pop(0)
                vals.pop(0)
        return e, steps, keys, vals, queries

    def forward_all(self, x: Tensor) -> AGAOutput:
        """Every intermediate of the recurrence (for plots and the analysis)."""
        e, steps, *_ = self._run(x)
        b, t, _ = e.shape
        nan = torch.full_like(e[:, 0], float("nan"))
        att = []
        for step, out in enumerate(steps):
            if out.weights is None:
                att.append(e.new_zeros(b, self.heads, t))
            else:
                n = out.weights.shape[-1]                                     # S' slots: steps t-S'..t-1
                att.append(F.pad(out.weights, (step - n, t - step)))          # (B, heads, T)
        gates = None if self.gate is None else torch.stack([nan if o.gate is None else o.gate for o in steps], 1)
        return AGAOutput(
            logits=torch.stack([o.logits for o in steps], 1),                 # (B, T, K)
            states=torch.stack([o.state for o in steps], 1),                  # (B, T, H)
            frames=e,
            contexts=torch.stack([nan if o.context is None else o.context for o in steps], 1),
            gates=gates,
            attention=torch.stack(att, 2),                                    # (B, heads, T, T)
        )

    def memory_at(self, x: Tensor, step: int = -1) -> AGAMemory:
        """The memory and query state that step ``step`` reads (step >= 1; negative counts back)."""
        _, t, _ = check_sequence(x, dim=self.feat_in)
        s = step % t if -t <= step < t else None
        if s is None or s == 0:
            raise ValueError(f"step: expected 1 <= step < T={t} (or a negative index), got {step}; "
                             "step 0 reads an empty memory")
        e, _, keys, vals, queries = self._run(x, stop=s)
        n = len(keys)                                                         # S' = min(s, S)
        return AGAMemory(queries[s - n], torch.stack(keys, 1), torch.stack(vals, 1), e[:, s], s - n)

    def forward_features(self, x: Tensor) -> Tensor:
        """Features (B, T, D) -> fused states z (B, T, H)."""
        return self.forward_all(x).states

    def forward_head(self, states: Tensor) -> Tensor:
        """States z (B, T, H) -> logits (B, T, K); equals :meth:`forward` in eval mode."""
        return self.head(states)

    def forward(self, x: Tensor) -> Tensor:
        e, steps, *_ = self._run(x)
        return torch.stack([o.logits for o in steps], 1)                      # (B, T, K)


__all__ = ["AGA", "AGAMemory", "AGAOutput", "AGAStep", "Gate", "Retrieve", "ScaleNorm", "QUERIES", "VARIANTS",
           "action_guided_attention"]
