"""AVT-h: the causal transformer head of the Anticipative Video Transformer.

Paper: R. Girdhar, K. Grauman, "Anticipative Video Transformer", ICCV 2021.
https://arxiv.org/abs/2106.02036. Official code: github.com/facebookresearch/AVT
(``models/future_prediction.py``, class ``AVTh``; ``expts/01_ek100_avt.txt``).

AVT turns anticipation into "predict the next frame's feature". Per-frame features z_1..z_T
(from a frozen or trained backbone, AVT-b) go through a GPT-2-style causal transformer; at every
position t it predicts the NEXT feature ẑ_{t+1}. The future action is classified from the last
prediction, and the intermediate predictions are supervised as well (symbols ours):

    e_t      = E z_t                                    E ∈ R^{D×d}, no bias
    ê_t      = Transformer_causal(e_1 + p_1, ..., e_t + p_t)_t   learned positions p, pre-LN blocks
    ẑ_{t+1}  = Dec ê_t                                  Dec ∈ R^{d×D}, no bias
    ŷ_{T+1}  = Cls(Dropout(ẑ_{T+1}))                    future action logits
    L_feat   = mean_{t=1..T−1} ‖ẑ_{t+1} − z_{t+1}‖²     (MSE over all elements; no target after T)
    L_past   = CE(Cls(Dropout(z̃_t)), y_t),  z̃ = [z_1, ẑ_2, ..., ẑ_T]   (the real first feature)
    L        = CE(ŷ_{T+1}, y) + L_past + L_feat          (weights 1, 1 in the released configs)

Each block is GPT-2's: x + Attn(LN(x)), then x + MLP(LN(x)) with a 4D hidden layer and the tanh
approximation of GELU; a final LN; dropout 0.1 on embeddings, attention and residuals. Causality
comes from the attention mask only: the output at t never depends on inputs after t.

Implements
    AVTHead      (B, T, d) features -> future logits (B, K); ``forward_all`` gives every output
    AVTOutput    future logits, past logits, predicted features
    avt_losses   the three losses above
Simplified
    - the backbone AVT-b (a ViT per frame) is not part of this class: pass any per-frame
      features, e.g. from ``lecturekit.features``.
    - one future step (``output_len=1``, the released EK-100 setting); no multi-step roll-out.
    - the feature target is detached here (the official code does not detach it; with frozen
      features, as in the TSN configuration, this makes no difference).
Shapes (letters defined in lecturekit/layers/shapes.py)
    features (B, T, D) -> future logits (B, K); past logits (B, T, K); predicted (B, T, D)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.shapes import check_sequence
from .published import Published


class _CausalSelfAttention(nn.Module):
    """GPT-2 attention: one D -> 3D projection (c_attn), masked softmax, D -> D (c_proj)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)                          # (B, T, D) each
        q, k, v = (z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,     # (B, heads, T, D/heads)
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(b, t, d)))


class _Block(nn.Module):
    """Pre-LN GPT-2 block: 12D² + 13D parameters."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = _CausalSelfAttention(dim, heads, dropout)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim),
                                 nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class AVTOutput(NamedTuple):
    future_logits: Tensor   # (B, K)     ŷ_{T+1}, the anticipated action
    past_logits: Tensor     # (B, T, K)  Cls([z_1, ẑ_2, ..., ẑ_T])
    predicted: Tensor       # (B, T, d)  ẑ_2, ..., ẑ_{T+1} (row t predicts feature t+1)


class AVTHead(nn.Module):
    """AVT-h over per-frame features.

    Args:
        num_classes: K (3,806 EK-100 actions).
        feat_in: feature width d of the backbone (768 for AVT-b, 1024 for TSN features).
        dim: transformer width D (2048).
        layers: blocks (6).
        heads: attention heads (4).
        max_len: size of the learned position table (GPT-2's n_positions = 1024).
        dropout: GPT-2 dropout (0.1).
        cls_dropout: before the classifier ``head`` (0.2).

    Shape:
        features (B, T, d) -> future logits (B, K); see :meth:`forward_all` for the rest.

    Example:
        >>> model = AVTHead(5, feat_in=8, dim=16, layers=1, heads=2).eval()
        >>> out = model.forward_all(torch.randn(2, 10, 8))
        >>> tuple(out.future_logits.shape), tuple(out.past_logits.shape), tuple(out.predicted.shape)
        ((2, 5), (2, 10, 5), (2, 10, 8))
    """

    PRESETS = {
        "small": dict(feat_in=32, num_classes=10, dim=64, layers=2, heads=4, max_len=64),
        # expts/02_ek100_avt_tsn.txt: TSN RGB features, n_layer 6, n_head 4, inter_dim 2048
        "paper": dict(feat_in=1024, num_classes=3806, dim=2048, layers=6, heads=4, max_len=1024),
    }
    PUBLISHED = {
        "params_without_head": Published(
            308_445_184, "parameters", "preset 'paper' (1024-d TSN features, D = 2048, 6 blocks, 4 heads, "
            "1,024 positions), classifier head excluded", "official code github.com/facebookresearch/AVT "
            "(expts/02_ek100_avt_tsn.txt, models/future_prediction.py AVTh): Hugging Face's GPT2Model, which "
            "AVTh wraps, instantiated with those sizes, plus AVTh's bias-free encoder and decoder"),
        "params_without_head_768": Published(
            307_396_608, "parameters", "as 'params_without_head' with 768-d AVT-b features",
            "official code github.com/facebookresearch/AVT, counted as 'params_without_head'"),
    }
    EXAMPLE_FRAMES = 10   # tau_o = 10 s at 1 fps

    def __init__(self, num_classes: int = 10, *, feat_in: int = 32, dim: int = 64, layers: int = 2, heads: int = 4,
                 max_len: int = 64, dropout: float = 0.1, cls_dropout: float = 0.2):
        super().__init__()
        self.feat_in, self.max_len = feat_in, max_len
        self.encoder = nn.Linear(feat_in, dim, bias=False)             # E
        self.positions = nn.Embedding(max_len, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(dim, heads, dropout) for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim)
        self.decoder = nn.Linear(dim, feat_in, bias=False)             # Dec
        self.head = nn.Sequential(nn.Dropout(cls_dropout), nn.Linear(feat_in, num_classes))   # Cls
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        # GPT-2's initialisation: N(0, 0.02) weights, zero biases
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    @classmethod
    def example_input(cls, preset: str = "small", batch: int = 2) -> Tensor:
        """Random features (B, 10, d) of the preset's width."""
        g = torch.Generator().manual_seed(0)
        return torch.randn(batch, cls.EXAMPLE_FRAMES, cls.PRESETS[preset]["feat_in"], generator=g)

    def forward_features(self, z: Tensor) -> Tensor:
        """Features z_1..z_T (B, T, d) -> predicted next features ẑ_2..ẑ_{T+1} (B, T, d)."""
        _, t, _ = check_sequence(z, dim=self.feat_in)
        if t > self.max_len:
            raise ValueError(f"features: T={t} exceeds the position table (max_len={self.max_len})")
        pos = self.positions(torch.arange(t, device=z.device))         # (T, D)
        x = self.drop(self.encoder(z) + pos)                           # (B, T, D)
        for blk in self.blocks:
            x = blk(x)                                                 # (B, T, D), causal
        return self.decoder(self.ln_f(x))                              # (B, T, d): row t is ẑ_{t+1}

    def forward_head(self, predicted: Tensor) -> Tensor:
        """Predicted features (B, T, d) -> future logits (B, K), from the last one, ẑ_{T+1}."""
        return self.head(predicted[:, -1])

    def forward_all(self, z: Tensor) -> AVTOutput:
        predicted = self.forward_features(z)                            # (B, T, d)
        past_in = torch.cat([z[:, :1], predicted[:, :-1]], dim=1)      # [z_1, ẑ_2, ..., ẑ_T]
        return AVTOutput(self.forward_head(predicted), self.head(past_in), predicted)

    def forward(self, z: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(z))             # (B, K) from ẑ_{T+1}


def avt_losses(out: AVTOutput, features: Tensor, future_label: Tensor, past_labels: Tensor | None = None,
               *, past_weight: float = 1.0, feat_weight: float = 1.0, ignore_index: int = -1) -> dict[str, Tensor]:
    """AVT's training losses; returns ``{"future", "past", "feat", "total"}``.

    Args:
        out: :meth:`AVTHead.forward_all` on ``features``.
        features: the observed z_1..z_T (B, T, d); their shifted copies are the feature targets.
        future_label: (B,) the anticipated action.
        past_labels: optional (B, T) action at each observed position (``ignore_index`` where
            none); without them L_past is 0.
    """
    b, t, _ = check_sequence(features)
    future = F.cross_entropy(out.future_logits.float(), future_label)
    # position t predicts feature t+1: compare predicted[:, :-1] with z[:, 1:] (T-1 pairs)
    feat = F.mse_loss(out.predicted[:, :-1].float(), features[:, 1:].detach().float()) if t > 1 \
        else out.predicted.sum() * 0.0
    if past_labels is not None:
        past = F.cross_entropy(out.past_logits.float().reshape(b * t, -1), past_labels.reshape(b * t),
                               ignore_index=ignore_index)
    else:
        past = future * 0.0
    return {"future": future, "past": past, "feat": feat,
            "total": future + past_weight * past + feat_weight * feat}


__all__ = ["AVTHead", "AVTOutput", "avt_losses"]
