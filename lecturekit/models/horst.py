"""HORST: a higher-order recurrent layer whose state is read by space-time attention (STATT).

Paper: T.-M. Tai, G. Fiameni, C.-K. Lee, O. Lanz, "Higher Order Recurrent Space-Time
Transformer for Video Action Prediction", arXiv 2021. https://arxiv.org/abs/2104.08665
Official code: github.com/CorcovadoMing/HORST (``horst.py``; the equation numbers below are the
ones its comments use).

A first-order recurrent cell (ConvLSTM) computes its new state from the previous one only. HORST
keeps a FIFO of the last S states and reads it with attention, factorised into a *temporal*
branch (which past step, a softmax over the S slots) and a *spatial* branch (where in each past
map, a sigmoid map per slot), so the cost grows linearly in S. Per step t, with x_t the input
map and C the hidden width:

    h_t = SiLU(GN(Conv3x3(x_t)))                                    encoder, the query source
    KV  = [H_q ; A_q]       (S', B, 2C, H, W)   the queues of past h and past attention outputs a
    Q = GN(Conv(h_t)),  K = GN(Conv_K(KV)),  V = GN(Conv_V(KV))     pre-transforms, no activation
    f(X) = σ(w ∗ [mean_c X ; max_c X])                              Eq. (4), spatial filter (f_Q, f_K)
    q̂_s = mean_xy(f_K(K_s) ⊙ Q),  S_s(x, y) = σ(q̂_s · K_s(:, x, y)),  V_s ← S_s ⊙ V_s   Eq. (5)
    T_s = softmax_s( vec(f_Q(Q) ⊙ Q) · vec(f_K(K_s) ⊙ K_s) / sqrt(C·H·W) )               Eq. (6)
    a_t = Σ_s T_s · V_s                                              Eq. (7), STATT(Q, K, V)
    o_t = SSE(SiLU(GN(Conv3x3([x_t ; a_t + h_t]))))                  output, SSE(z) = z + z ⊙ SE(z)
    push h_t into H_q and a_t into A_q, keep the last S of each.

Queue start (as the official code): at t = 1 both queues hold one all-zero slot; that slot is
then replaced by the first real state, so from t = 2 on the queues hold the last min(t−1, S)
states. Scaling conventions (as the code, not the slides): no 1/sqrt(C) in the spatial branch,
1/sqrt(C·H·W) in the temporal one. The official ``STAtt`` also builds ``v_sa``, ``v_post_f`` and
``agg_f`` that the final forward never uses; they are left out here.

Implements
    spatial_filter Eq. (4) as a function of the filter's weights; SpatialFilter, the module holding them
    STATT          Eqs. (5)-(7), optionally returning the S maps and T weights
    statt_attend   STATT after its pre-transforms, as a function of (Q, K, V) and the two filters' weights
    push_queue     the FIFO update of a queue of past states (newest last, keep the last S)
    HORSTCell      one higher-order recurrent layer (explicit queue state, no hidden attributes)
    HORST          a stack of cells over feature maps + a per-step action classifier on the pooled
                   (o_t, h_t, a_t), as the EPIC head ``cls-epic.py`` (action logits only)
    FullSpaceTimeAttention  not in the paper: joint attention over all S·H·W queue tokens, the
                   quadratic-in-S baseline the factorisation avoids (used only for cost comparisons)
Simplified
    - one block of stacked cells (no input shortcut between blocks, no 2×2 max-pool stride,
      no per-sample length mask); the verb/noun heads of ``cls-epic.py`` are omitted.
Shapes (letters defined in lecturekit/layers/shapes.py)
    feature maps (B, C, T, H, W) -> logits (B, T, K); inside the cells time is a loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.shapes import check_video
from .published import Published

QueueState = tuple[list[Tensor], list[Tensor]]   # (past h's, past a's), oldest first


def _conv_gn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.GroupNorm(1, cout))


def spatial_filter(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """Eq. (4): ``f(X) = σ(w ∗ [mean_c X ; max_c X] + b)`` (mean first), a 3×3 conv 2 -> 1, padding 1.

    Shape: x (N, C, H, W), weight (1, 2, 3, 3), bias (1,) -> (N, 1, H, W) in (0, 1).
    """
    pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)   # (N, 2, H, W)
    return torch.sigmoid(F.conv2d(pooled, weight, bias, padding=1))


class SpatialFilter(nn.Module):
    """Eq. (4) with its own weights: :func:`spatial_filter` with ``conv.weight``, ``conv.bias``.

    Shape: (N, C, H, W) -> (N, 1, H, W) in (0, 1).
    """

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return spatial_filter(x, self.conv.weight, self.conv.bias)


class STATT(nn.Module):
    """Space-time attention of a query map over S' past slots, Eqs. (5)-(7).

    Shape:
        query (B, C, H, W), kv (S', B, 2C, H, W) -> a (B, C, H, W), S maps (S', B, 1, H, W),
        T weights (S', B) summing to 1 over the slots.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.q_pre = _conv_gn(channels, channels)
        self.k_pre = _conv_gn(2 * channels, channels)
        self.v_pre = _conv_gn(2 * channels, channels)
        self.f_q = SpatialFilter()
        self.f_k = SpatialFilter()

    def forward(self, query: Tensor, kv: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        s, b = kv.shape[:2]
        q = self.q_pre(query)                                             # (B, C, H, W)
        k = self.k_pre(kv.flatten(0, 1)).unflatten(0, (s, b))             # (S, B, C, H, W)
        v = self.v_pre(kv.flatten(0, 1)).unflatten(0, (s, b))             # (S, B, C, H, W)
        return statt_attend(q, k, v, self.f_q.conv.weight, self.f_q.conv.bias,
                            self.f_k.conv.weight, self.f_k.conv.bias)


def statt_attend(q: Tensor, k: Tensor, v: Tensor, w_q: Tensor, b_q: Tensor, w_k: Tensor,
                 b_k: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """STATT after its pre-transforms, Eqs. (4)-(7) of Tai et al., "Higher Order Recurrent
    Space-Time Transformer for Video Action Prediction" (https://arxiv.org/abs/2104.08665; the
    equation numbers of the official code's comments, github.com/CorcovadoMing/HORST):

        f(X) = σ(w ∗ [mean_c X ; max_c X] + b)                           Eq. (4), f_Q: (w_q, b_q), f_K: (w_k, b_k)
        q̂_s = mean_xy(f_K(K_s) ⊙ Q),  S_s(x, y) = σ(q̂_s · K_s(:, x, y))   Eq. (5), no scaling
        T_s = softmax_s( vec(f_Q(Q) ⊙ Q) · vec(f_K(K_s) ⊙ K_s) / sqrt(C·H·W) )   Eq. (6)
        a = Σ_s T_s · (S_s ⊙ V_s)                                          Eq. (7)

    Args:
        q: the query map Q (B, C, H, W).
        k, v: the keys and values of the S slots (S, B, C, H, W).
        w_q, b_q: the query's spatial filter f_Q, weight (1, 2, 3, 3) and bias (1,).
        w_k, b_k: the keys' spatial filter f_K, same shapes.

    Returns:
        a (B, C, H, W), S maps (S, B, 1, H, W), T weights (S, B) summing to 1 over the slots.

    :class:`STATT` calls it with its own filters' weights; exercise 11.1 checks students against it.
    """
    s, b = k.shape[:2]
    fk = spatial_filter(k.flatten(0, 1), w_k, b_k).unflatten(0, (s, b))   # (S, B, 1, H, W)
    fq = spatial_filter(q, w_q, b_q)                                      # (B, 1, H, W)
    # Eq. (5), spatial branch: the query pooled under each key's saliency, matched per pixel
    q_hat = (fk * q).mean((-2, -1))                                       # (S, B, C)
    s_map = torch.sigmoid(torch.einsum("sbc,sbchw->sbhw", q_hat, k))[:, :, None]   # (S, B, 1, H, W)
    v = v * s_map
    # Eq. (6), temporal branch: one weight per slot from the filtered, flattened maps
    q_vec = (fq * q).flatten(1)                                           # (B, C·H·W)
    k_vec = (fk * k).flatten(2)                                           # (S, B, C·H·W)
    t_w = torch.softmax(torch.einsum("bd,sbd->sb", q_vec, k_vec) / math.sqrt(q_vec.shape[1]), dim=0)
    # Eq. (7): a = Σ_s T_s · (S_s ⊙ V_s)
    a = torch.einsum("sb,sbchw->bchw", t_w, v)                             # (B, C, H, W)
    return a, s_map, t_w


def push_queue(queue: Tensor | list[Tensor] | None, x: Tensor, order: int) -> Tensor | list[Tensor]:
    """HORST's FIFO update of one queue of past states (H_q or A_q): append the new state at the
    end (the queue is kept oldest first) and keep the last S = ``order``.

    At the first step the cell reads one all-zero slot, and that slot is then replaced by the first
    real state (as the official code): it is never kept, so the first push is into an empty queue.

    Args:
        queue: the past states, oldest first: a tensor (S', B, C, H, W), or a list of S' maps
            (B, C, H, W) (what :class:`HORSTCell` keeps, so that its state holds the very tensors
            it computed); None at the first step (no queue yet).
        x: the new state (B, C, H, W).
        order: S.

    Returns:
        the last min(S' + 1, S) states, oldest first, of the queue's kind: a tensor
        (min(S' + 1, S), B, C, H, W) (for None too) or a list.

    :class:`HORSTCell` updates its two queues with it; exercise 11.2 checks students against it
    (the tensor form).
    """
    if queue is None:                                                     # no queue yet
        return x[None].clone()
    if isinstance(queue, Tensor):
        return torch.cat([queue, x[None]], dim=0)[-order:]
    return [*queue, x][-order:]


class _ShortcutSE(nn.Module):
    """``z + z ⊙ σ(W_2 ReLU(W_1 GAP(z)))``, reduction 4 (the official "shortcut squeeze-excitation")."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        mid = max(1, channels // reduction)                               # at least one unit for tiny widths
        self.f = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, mid, 1), nn.ReLU(),
                               nn.Conv2d(mid, channels, 1), nn.Sigmoid())

    def forward(self, z: Tensor) -> Tensor:
        return z + z * self.f(z)


class HORSTCell(nn.Module):
    """One HORST layer of order S.

    Args:
        in_channels: C_in of the input map x_t.
        hidden: C.
        order: S, the queue length (8 in the official code).

    ``forward(x_t, state)`` returns ``((o_t, h_t, a_t), new_state, (S maps, T weights))``;
    ``state`` is ``None`` at the first step, then the ``(H_q, A_q)`` lists returned before.
    Shape: x_t (B, C_in, H, W) -> o_t, h_t, a_t (B, C, H, W).
    """

    def __init__(self, in_channels: int, hidden: int, order: int = 8):
        super().__init__()
        if order < 1:
            raise ValueError(f"order S must be >= 1, got {order}")
        self.order = order
        self.encoder = nn.Sequential(_conv_gn(in_channels, hidden), nn.SiLU())
        self.statt = STATT(hidden)
        self.out = nn.Sequential(_conv_gn(in_channels + hidden, hidden), nn.SiLU(), _ShortcutSE(hidden))

    def forward(self, x: Tensor, state: QueueState | None = None):
        h = self.encoder(x)                                               # (B, C, H, W)
        hq, aq = state if state is not None else ([torch.zeros_like(h)], [torch.zeros_like(h)])
        kv = torch.cat([torch.stack(hq), torch.stack(aq)], dim=2)         # (S', B, 2C, H, W)
        a, s_map, t_w = self.statt(h, kv)
        o = self.out(torch.cat([x, a + h], dim=1))                        # residual r_t = a_t + h_t
        kept = state if state is not None else ([], [])                   # the zero slot is replaced
        new_state = (push_queue(kept[0], h, self.order), push_queue(kept[1], a, self.order))
        return (o, h, a), new_state, (s_map, t_w)


class HORST(nn.Module):
    """A stack of HORST cells over per-frame feature maps, with a per-step action classifier.

    Args:
        num_classes: K.
        in_channels: C of the input feature maps (e.g. a 2D backbone's last stage).
        hidden: width of each stacked cell.
        order: S, the queue length of every cell.

    Shape:
        maps (B, C, T, H, W) -> logits (B, T, K): at every step, GAP of the last cell's
        (o_t, h_t, a_t), concatenated (3C), then a linear layer (``head``).
    """

    PRESETS = {
        "small": dict(in_channels=16, num_classes=10, hidden=(32,), order=4),
        # README example: 256-channel input maps, one block of two 512-wide cells, S = 8
        "paper": dict(in_channels=256, num_classes=3806, hidden=(512, 512), order=8),
    }
    PUBLISHED = {
        "cell_params": Published(35_663_180, "parameters of the stacked cells that the forward pass uses",
                                 "preset 'paper' (the README example: 256-channel input maps, two 512-wide "
                                 "cells, S = 8), classifier head excluded; the official module also builds "
                                 "v_post_f and agg_f, never called (37,240,140 instantiated)",
                                 "official code github.com/CorcovadoMing/HORST (horst.py), counted by "
                                 "instantiating it and leaving out the modules its forward never calls"),
    }
    SUPPORTS_ANY_T = True   # a recurrence: any number of steps

    def __init__(self, num_classes: int = 10, *, in_channels: int = 16, hidden: Sequence[int] = (32,),
                 order: int = 4):
        super().__init__()
        self.in_channels = in_channels
        widths = [in_channels, *hidden]
        self.cells = nn.ModuleList(HORSTCell(widths[i], widths[i + 1], order) for i in range(len(hidden)))
        self.head = nn.Linear(3 * widths[-1], num_classes)

    def forward_features(self, maps: Tensor, return_attention: bool = False):
        """Maps (B, C, T, H, W) -> (o, h, a) of the last cell, each (B, C', T, H, W).

        With ``return_attention`` also the last cell's S maps and T weights of every step.
        """
        _, _, t, _, _ = check_video(maps, channels=self.in_channels, name="feature maps")
        states: list[QueueState | None] = [None] * len(self.cells)
        outs, attn = [], []
        for step in range(t):                                             # time is a loop
            x = maps[:, :, step]                                          # (B, C, H, W)
            for i, cell in enumerate(self.cells):
                triple, states[i], att = cell(x, states[i])
                x = triple[0]                                             # o_t feeds the next cell
            outs.append(triple)
            attn.append(att)
        feats = tuple(torch.stack(z, dim=2) for z in zip(*outs))          # 3 × (B, C', T, H, W)
        return (feats, attn) if return_attention else feats

    def forward_head(self, feats: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        pooled = torch.cat([z.mean((-2, -1)) for z in feats], dim=1)      # (B, 3C', T)
        return self.head(pooled.transpose(1, 2))                          # (B, T, K)

    def forward(self, maps: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(maps))


class FullSpaceTimeAttention(nn.Module):
    """The unfactorised alternative HORST avoids, for cost comparisons only (not a table model).

    Joint softmax self-attention over all S·H·W tokens of the queue (every position of every
    slot attends to every position of every slot), single head, 1×1 projections:

        X = tokens of (S, B, C, H, W) -> (B, N, C), N = S·H·W
        A = softmax(X W_Q (X W_K)ᵀ / sqrt(C)),  Y = A X W_V            (B, N, C)

    Its two N×N products cost 2·N²·C multiply-accumulates, quadratic in S; STATT's cost is
    linear in S (per-slot convolutions plus one query-vs-slot score per slot).
    ``tests/test_horst_cost.py`` compares the two with ``FlopCounterMode``.

    Shape: (S, B, C, H, W) -> (S, B, C, H, W).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.qkv = nn.Linear(channels, 3 * channels, bias=False)

    def forward(self, queue: Tensor) -> Tensor:
        if queue.dim() != 5:
            raise ValueError(f"queue: expected (S, B, C, H, W), got shape {tuple(queue.shape)}")
        s, b, c, h, w = queue.shape
        x = queue.permute(1, 0, 3, 4, 2).reshape(b, s * h * w, c)        # (B, N, C)
        q, k, v = self.qkv(x).split(c, dim=-1)                            # (B, N, C) each
        attn = torch.softmax(torch.bmm(q, k.transpose(1, 2)) / math.sqrt(c), dim=-1)   # (B, N, N)
        y = torch.bmm(attn, v)                                            # (B, N, C)
        return y.reshape(b, s, h, w, c).permute(1, 0, 4, 2, 3)            # (S, B, C, H, W)


__all__ = ["FullSpaceTimeAttention", "HORST", "HORSTCell", "STATT", "SpatialFilter", "push_queue", "spatial_filter",
           "statt_attend"]
