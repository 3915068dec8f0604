"""RU-LSTM: rolling-unrolling LSTMs for egocentric action anticipation, with modality attention.

Papers: A. Furnari, G. M. Farinella, "What Would You Expect? Anticipating Egocentric Actions
with Rolling-Unrolling LSTMs and Modality Attention", ICCV 2019, https://arxiv.org/abs/1905.09035;
"Rolling-Unrolling LSTMs for Action Anticipation from First-Person Video", TPAMI 2020,
https://arxiv.org/abs/2005.02190. Official code: github.com/fpv-iplab/rulstm (``RULSTM/models.py``).

The input is a feature sequence sampled every α = 0.25 s before the action: S_enc = 6 encoding
plus S_ant = 8 anticipation steps, T = 14. At every step t (1-based, t = 1..T):

    (h^R_t, c^R_t) = R-LSTM(f_t, (h^R_{t-1}, c^R_{t-1}))        the rolling LSTM summarises the past
    U-LSTM starts from (h^R_t, c^R_t) and reads f_t repeated n_t = T − t + 2 times
                                                                (T + 1, T, ..., 2: even the last step
                                                                is unrolled twice, as the code does)
    s_t = W · Dropout(h^U_t) + b                                  action logits at step t

The last 8 steps correspond to anticipation times 2.0, 1.75, ..., 0.25 s; the 1 s prediction is
``logits[:, -4]``. Training: mean cross-entropy over the last S_ant steps (label replicated).

Sequence-completion pre-training (SCI): the U-LSTM first reads the TRUE future features
(f_t, f_{t+1}, ..., f_T) (lengths T, T−1, ..., 1), learning to continue a sequence; then the
switch ``sequence_completion=False`` turns the same weights into the anticipation model.

Modality attention (MATT): one branch per modality (RGB, flow, objects). For each branch the
context q_{m,t} = [h^U_{m,t} ; c^R_{m,t}] (2H), the concatenation over branches goes through an
MLP (in → in/4 → in/8 → M, ReLU, dropout) and a softmax over modalities λ_{m,t}; the fused
LOGITS are s_t = Σ_m λ_{m,t} s_{m,t}. (The code uses the unrolled hidden state and the rolling
cell state; that is what we do.)

Implements
    rolling_unrolling   the loop above for any pair of LSTMs (what ``RULSTM`` runs on its own two)
    unroll_lengths      n_t of every step (anticipation or SCI)
    RULSTM          one branch: rolling + unrolling LSTM, SCI switch, classifier ``head``
    RULSTMFusion    several branches fused by MATT
Simplified
    - nothing in the computation. The unrolling is vectorised: all T unrolls run as one batch of
      B·T sequences padded to the longest length, and the output of each is read at its own
      length n_t (the LSTM is causal, so the padding after n_t never matters). Tests check it
      against the official step-by-step loop.
    - the official code's ``c.squeeze()`` bug with batch size 1 is not reproduced.
Shapes (letters defined in lecturekit/layers/shapes.py)
    features (B, T, D) -> logits (B, T, K)   (fusion: one (B, T, D_m) per modality)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from ..layers.shapes import check_sequence
from .published import Published


def unroll_lengths(steps: int, sequence_completion: bool = False) -> list[int]:
    """How many inputs the U-LSTM reads at each step t = 0..T-1 (0-based): T − t + 1, i.e. T+1 .. 2
    (anticipation), or T − t, i.e. T .. 1 (sequence-completion pre-training)."""
    if sequence_completion:
        return [steps - t for t in range(steps)]
    return [steps - t + 1 for t in range(steps)]


def rolling_unrolling(x: Tensor, rolling: Callable, unrolling: Callable, *, sequence_completion: bool = False,
                      dropout: Callable[[Tensor], Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """The rolling-unrolling loop of RU-LSTM (Furnari & Farinella, "What Would You Expect?
    Anticipating Egocentric Actions with Rolling-Unrolling LSTMs and Modality Attention", ICCV
    2019, https://arxiv.org/abs/1905.09035; official code github.com/fpv-iplab/rulstm,
    ``RULSTM/models.py``), with 0-based steps t = 0..T-1:

        (h^R_t, c^R_t) = R-LSTM(f_t, (h^R_{t-1}, c^R_{t-1}))      from zero states
        U-LSTM starts from (h^R_t, c^R_t) and reads f_t n_t = T − t + 1 times   (T + 1 .. 2)
        h^U_t = its last hidden state                              what the classifier reads

    With ``sequence_completion`` the U-LSTM reads the true future f_t, f_{t+1}, .., f_{T-1}
    instead (n_t = T − t, the SCI pre-training). The rolling LSTM runs one step at a time; the T
    unrollings run as one batch of B·T sequences padded to the longest length, each read at its
    own length n_t (an LSTM is causal: the padding after n_t never matters).

    Args:
        x: features (B, T, D).
        rolling, unrolling: the two LSTMs, as callables with the interface of
            ``nn.LSTM(..., batch_first=True)``: ``(inputs (N, L, D), state or None) ->
            (outputs (N, L, H), (h, c) each (layers, N, H))``.
        sequence_completion: the SCI input schedule (above).
        dropout: applied to the inputs of the R-LSTM and, separately, of the U-LSTM (None: none).

    Returns:
        (h^U (B, T, H), c^R (B, T, H)): the last unrolled hidden state of every step, and the
        rolling cell state of every step (of the last layer); the pair is MATT's context.

    :meth:`RULSTM.forward_features` is this function on the branch's own LSTMs and dropout;
    exercise 10.2 checks students against it (one-layer LSTMs given as weight tuples, no dropout,
    then the classifier).
    """
    b, t, d = x.shape
    drop = dropout if dropout is not None else (lambda z: z)
    # rolling: one step at a time, keeping h and c of every layer at every step
    x_r, hs, cs, state = drop(x), [], [], None
    for step in range(t):                                              # loop over time, not batch
        _, state = rolling(x_r[:, step : step + 1], state)             # state: (L, B, H) each
        hs.append(state[0])
        cs.append(state[1])
    h_r, c_r = torch.stack(hs, 2), torch.stack(cs, 2)                  # (L, B, T, H)
    layers, hidden = h_r.shape[0], h_r.shape[-1]
    # unrolling: the T unrolls as one batch of B·T sequences of the longest length
    lengths = torch.tensor(unroll_lengths(t, sequence_completion), device=x.device)
    width = int(lengths.max())
    if sequence_completion:
        # start t reads f_t, f_{t+1}, ..., f_{T-1}; pad by repeating f_{T-1} (never read)
        idx = (torch.arange(t, device=x.device)[:, None] + torch.arange(width, device=x.device)).clamp(max=t - 1)
        seqs = x[:, idx]                                               # (B, T, width, D)
    else:
        seqs = x[:, :, None].expand(b, t, width, d)                    # f_t repeated
    seqs = drop(seqs.reshape(b * t, width, d))                         # (B*T, width, D)
    h0 = h_r.reshape(layers, b * t, hidden).contiguous()               # start t from (h^R_t, c^R_t)
    c0 = c_r.reshape(layers, b * t, hidden).contiguous()
    out, _ = unrolling(seqs, (h0, c0))                                 # (B*T, width, H)
    last = (lengths - 1).repeat(b)                                     # read each unroll at its length
    h_u = out[torch.arange(b * t, device=x.device), last].reshape(b, t, hidden)
    return h_u, c_r[-1]                                                # (B, T, H) each


class RULSTM(nn.Module):
    """One RU-LSTM branch over a feature sequence.

    Args:
        num_classes: K (2,513 actions on EK-55, 3,806 on EK-100).
        feat_in: feature width D (1024 for the TSN RGB/flow features, 352 for the EK-55 object
            detector scores).
        hidden: LSTM width H (1024).
        dropout: on the inputs of both LSTMs and before the classifier ``head`` (0.8 in the paper
            configuration).
        depth: LSTM layers (1).
        sequence_completion: SCI pre-training mode (the U-LSTM reads the true future features).

    Shape:
        features (B, T, D) -> logits (B, T, K)

    Example:
        >>> model = RULSTM(4, feat_in=8, hidden=16).eval()
        >>> tuple(model(torch.randn(2, 14, 8)).shape)
        (2, 14, 4)
    """

    PRESETS = {
        "small": dict(feat_in=32, num_classes=10, hidden=64, dropout=0.5),
        # RULSTM main.py defaults, EK-100 RGB/flow branch (TSN features)
        "paper": dict(feat_in=1024, num_classes=3806, hidden=1024, dropout=0.8),
    }
    PUBLISHED = {
        "params": Published(20_694_750, "parameters", "preset 'paper': one 1024-d RGB or flow branch, "
                            "3,806 EK-100 actions", "official code github.com/fpv-iplab/rulstm "
                            "(RULSTM/models.py, main.py defaults), counted by instantiating it"),
    }
    STEPS = 14       # S_enc + S_ant = 6 + 8 time stamps, 0.25 s apart
    ONE_SECOND = -4  # index of the tau_a = 1 s prediction among the 14 steps

    def __init__(self, num_classes: int = 10, *, feat_in: int = 32, hidden: int = 64, dropout: float = 0.5,
                 depth: int = 1, sequence_completion: bool = False):
        super().__init__()
        self.feat_in, self.hidden, self.depth = feat_in, hidden, depth
        inner = dropout if depth > 1 else 0.0
        self.rolling = nn.LSTM(feat_in, hidden, num_layers=depth, dropout=inner, batch_first=True)
        self.unrolling = nn.LSTM(feat_in, hidden, num_layers=depth, dropout=inner, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, num_classes))
        self.sequence_completion = sequence_completion

    @classmethod
    def example_input(cls, preset: str = "small", batch: int = 2) -> Tensor:
        """Random features (B, 14, D) of the preset's width."""
        g = torch.Generator().manual_seed(0)
        return torch.randn(batch, cls.STEPS, cls.PRESETS[preset]["feat_in"], generator=g)

    def unroll_lengths(self, steps: int) -> list[int]:
        """How many inputs the U-LSTM reads at each step: T+1 .. 2 (anticipation) or T .. 1 (SCI)."""
        return unroll_lengths(steps, self.sequence_completion)

    def forward_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Features (B, T, D) -> (final U-LSTM hidden state (B, T, H), R-LSTM cell state (B, T, H)).

        The pair is MATT's context vector. :func:`rolling_unrolling` on this branch's two LSTMs,
        with its dropout on their inputs.
        """
        check_sequence(x, dim=self.feat_in)
        return rolling_unrolling(x, self.rolling, self.unrolling, sequence_completion=self.sequence_completion,
                                 dropout=self.dropout)

    def forward_head(self, features: tuple[Tensor, Tensor]) -> Tensor:
        """The pair of :meth:`forward_features` -> logits (B, T, K), from the unrolled state."""
        return self.head(features[0])                                  # (B, T, K)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


class RULSTMFusion(nn.Module):
    """Several RU-LSTM branches fused by modality attention (MATT).

    Args:
        num_classes: K.
        feat_dims: the feature width of each modality, e.g. (1024, 1024, 352) for RGB, flow, obj.
        hidden: H of every branch (MATT's input is 2·H·M).
        dropout: as in :class:`RULSTM`, and inside the MATT MLP.
        branches: pre-trained :class:`RULSTM` branches to fuse (the official recipe); built from
            ``feat_dims`` when omitted.

    Shape:
        forward(x_1 (B, T, D_1), ..., x_M (B, T, D_M)) -> fused logits (B, T, K);
        a single tuple/list of the M tensors is accepted too.
        ``forward(..., return_weights=True)`` also returns λ (B, T, M), summing to 1 over M.
    """

    PRESETS = {
        "small": dict(feat_dims=(32, 32, 16), num_classes=10, hidden=64, dropout=0.5),
        # EK-100: RGB and flow (1024-d TSN) and objects (352-d)
        "paper": dict(feat_dims=(1024, 1024, 352), num_classes=3806, hidden=1024, dropout=0.8),
    }
    PUBLISHED = {
        "params": Published(67_200_669, "parameters", "preset 'paper': RGB, flow (1024-d) and object "
                            "(352-d) branches with MATT, 3,806 EK-100 actions", "official code "
                            "github.com/fpv-iplab/rulstm (RULSTM/models.py), counted by instantiating it"),
    }

    def __init__(self, num_classes: int = 10, *, feat_dims: Sequence[int] = (32, 32, 16), hidden: int = 64,
                 dropout: float = 0.5, branches: Sequence[RULSTM] | None = None):
        super().__init__()
        if branches is None:
            branches = [RULSTM(num_classes, feat_in=width, hidden=hidden, dropout=dropout) for width in feat_dims]
        elif [br.feat_in for br in branches] != list(feat_dims):
            raise ValueError(f"branches read widths {[br.feat_in for br in branches]}, feat_dims says {list(feat_dims)}")
        self.branches = nn.ModuleList(branches)
        self.feat_dims = tuple(feat_dims)
        m = len(self.branches)
        size = 2 * m * hidden
        self.matt = nn.Sequential(
            nn.Linear(size, size // 4), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(size // 4, size // 8), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(size // 8, m),
        )

    @property
    def head(self) -> nn.ModuleList:
        """The final classifiers: each branch's ``head`` (one per modality); MATT weighs their logits."""
        return nn.ModuleList(branch.head for branch in self.branches)

    @classmethod
    def example_input(cls, preset: str = "small", batch: int = 2) -> tuple[Tensor, ...]:
        """One random (B, 14, D_m) feature sequence per modality."""
        g = torch.Generator().manual_seed(0)
        return tuple(torch.randn(batch, RULSTM.STEPS, d, generator=g) for d in cls.PRESETS[preset]["feat_dims"])

    def _streams(self, streams) -> tuple[Tensor, ...]:
        if len(streams) == 1 and isinstance(streams[0], (tuple, list)):
            streams = tuple(streams[0])
        if len(streams) != len(self.branches):
            raise ValueError(f"expected {len(self.branches)} feature sequences (one per modality, widths "
                             f"{self.feat_dims}), got {len(streams)}")
        return streams

    def forward(self, *streams: Tensor, return_weights: bool = False):
        streams = self._streams(streams)
        logits, contexts = [], []
        for branch, x in zip(self.branches, streams):
            h_u, c_r = branch.forward_features(x)                      # (B, T, H) each
            logits.append(branch.forward_head((h_u, c_r)))             # (B, T, K)
            contexts.append(torch.cat([h_u, c_r], dim=-1))             # (B, T, 2H)
        weights = self.matt(torch.cat(contexts, dim=-1)).softmax(-1)   # (B, T, M): λ_{m,t}
        fused = (torch.stack(logits, dim=-1) * weights[..., None, :]).sum(-1)   # Σ_m λ_m s_m: (B, T, K)
        return (fused, weights) if return_weights else fused


__all__ = ["RULSTM", "RULSTMFusion", "rolling_unrolling", "unroll_lengths"]
