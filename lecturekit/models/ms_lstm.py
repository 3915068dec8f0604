"""MS-LSTM: a multi-stage LSTM over context-aware and action-aware (CAM-masked) frame features.

Paper: M. S. Aliakbarian, F. S. Saleh, M. Salzmann, B. Fernando, L. Petersson, L. Andersson,
"Encouraging LSTMs to Anticipate Actions Very Early", ICCV 2017. https://arxiv.org/abs/1703.07023

The model reads a video frame by frame and outputs an action prediction after every frame, so
that it can be asked "what is happening?" after 1%, 10%, ... of the video. Two ideas:

* two feature streams from one CNN (Fig. 3). The *context-aware* stream describes the whole
  frame (fc7 of a classifier). The *action-aware* stream masks the last conv maps with a class
  activation map (CAM), so that it looks where the action happens:

      M_k(x, y) = Σ_l w_l^k f_l(x, y)                      Eq. (2), CAM of class k
      A_k(x, y) = conv5_3(x, y) × ReLU(M_k(x, y))           Eq. (3), masked conv5_3

  (``f_l`` are the maps of the extra conv layer whose global average feeds the linear
  classifier with weights ``w^k``; the product broadcasts over the channels of conv5_3.)
* two LSTM stages (Fig. 2, Sec. 3.2.2): the first reads the context features; the second reads
  the action-aware features concatenated with the first stage's hidden state. Each stage has
  its own classifier, and each is trained with the anticipation loss, Eq. (4)-(6):

      L_o = (1/V) Σ_i (L_c,i + L_a,i),  L = ``lecturekit.losses.anticipation_loss`` (Eq. (1))

  At inference the prediction after t frames averages the softmax outputs of frames 1..t
  (temporal average pooling, Sec. 3.2.2 "Inference"): :func:`temporal_average_pool`.

Implements
    cam_action_features   Eqs. (2)-(3): conv5_3, CAM layer maps f, classifier w, classes k -> masked conv5_3
    CAMFeatureNet     frames (N, C, H, W) -> context feature, action-aware feature, their logits, CAM
    TwoStageLSTM      (context (B, T, D_c), action (B, T, D_a)) -> stage-1 and stage-2 logits
    MSLSTM            video (B, C, T, H, W) -> stage-2 logits (B, T, K) (the whole pipeline)
    MSLSTMOutput      what both return: ``logits`` (stage 2, the prediction) first, then the
                      stage-1 and per-frame logits that the training losses need
    temporal_average_pool   per-step logits (B, T, K) -> pooled probabilities (B, T, K)
Simplified
    - Backbone: the small preset uses the course's ResNet trunk (``lecturekit.layers.resnet2d``);
      the paper preset a VGG-16 trunk up to conv5_2 (the paper's). Each branch then has its own
      3×3 conv ("conv5_3"), and the fc6 input is an adaptive *average* pool to a fixed grid
      (VGG uses a 2×2 max-pool from 14×14 to 7×7; the parameter count is the same).
    - Which class k masks the features: the ground-truth class when ``labels`` are given
      (training), else the CAM classifier's own top class (inference). The paper does not say;
      the released code uses the ground truth everywhere, which leaks the label at test time.
    - The CAM classifier sees the *mean* of f_l (global average pooling) where Sec. 3.2.1 writes
      a sum; this only rescales w.
    - The paper trains the feature network first (per-frame cross-entropy on both streams), then
      the LSTMs on frozen features. ``MSLSTM`` returns every output those losses need (see
      :class:`MSLSTMOutput`), so it can be trained in those two stages or end to end.
Shapes (letters defined in lecturekit/layers/shapes.py)
    video (B, C, T, H, W) -> MSLSTMOutput; its ``logits`` (B, T, K) hold one prediction per
    observed frame
Course: the anticipation lecture (early action prediction, the anticipation loss).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.resnet2d import ResNet2d
from ..layers.shapes import check_sequence, check_shape, check_video, fold_time, unfold_time

# VGG-16 (Simonyan & Zisserman 2015, configuration D) up to conv5_2: conv widths, "M" = 2×2 max-pool.
VGG16_TO_CONV5_2 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512)


def temporal_average_pool(logits: Tensor) -> Tensor:
    """MS-LSTM's inference rule: ``p̄_t = (1/t) Σ_{τ≤t} softmax(logits_τ)``.

    Shape: (B, T, K) -> (B, T, K) probabilities; step t never uses steps after t, so
    ``p̄_t.argmax(-1)`` is the prediction after observing t frames.
    """
    check_shape(logits, "B T K", name="logits")
    p = logits.float().softmax(-1)                                    # (B, T, K)
    steps = torch.arange(1, logits.shape[1] + 1, device=logits.device, dtype=p.dtype)
    return p.cumsum(1) / steps[None, :, None]


def cam_action_features(conv5_3: Tensor, cam_maps: Tensor, weight: Tensor, k: Tensor, *,
                        return_cam: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """The action-aware maps of MS-LSTM, Eqs. (2)-(3) of Aliakbarian et al., "Encouraging LSTMs
    to Anticipate Actions Very Early", ICCV 2017 (https://arxiv.org/abs/1703.07023):

        M_k(x, y) = Σ_l w_l^k f_l(x, y)                  Eq. (2), the CAM of the class k of each frame
        A_k(x, y) = conv5_3(x, y) × ReLU(M_k(x, y))       Eq. (3), broadcast over the C channels

    Args:
        conv5_3: (N, C, h, w) the action branch's last conv maps.
        cam_maps: (N, L, h, w) the maps f_l of the CAM conv layer.
        weight: (K, L) the linear classifier on the global average of f (its row k is w^k).
        k: (N,) one class per frame.
        return_cam: also return M_k (before the ReLU).

    Returns:
        A (N, C, h, w); with ``return_cam`` the pair (A, M_k (N, h, w)).

    :class:`CAMFeatureNet` computes its action-aware stream with it; exercise 09.2 checks
    students against it.
    """
    cam = torch.einsum("nl,nlhw->nhw", weight[k], cam_maps)               # Eq. (2): M_k(x, y)
    masked = conv5_3 * F.relu(cam)[:, None]                                # Eq. (3): (N, C, h, w)
    return (masked, cam) if return_cam else masked


class _VGGTrunk(nn.Module):
    """Plain 3×3 conv + ReLU stack with 2×2 max-pools (VGG): (N, C, H, W) -> (N, D, H', W')."""

    def __init__(self, in_channels: int, cfg: Sequence[int | str]):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for item in cfg:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c, int(item), 3, padding=1), nn.ReLU(inplace=True)]
                c = int(item)
        self.body = nn.Sequential(*layers)
        self.out_channels = c

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class _FC67(nn.Sequential):
    """pool to a fixed grid -> flatten -> fc6 -> ReLU -> dropout -> fc7 -> ReLU -> dropout."""

    def __init__(self, channels: int, grid: int, dim: int, dropout: float):
        super().__init__(
            nn.AdaptiveAvgPool2d(grid), nn.Flatten(1),
            nn.Linear(channels * grid * grid, dim), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Dropout(dropout),
        )


class MSLSTMOutput(NamedTuple):
    """MS-LSTM's outputs: the prediction first, then what the other training losses need.

    Training (Eq. (4), plus the per-frame stage 0 of Sec. 3.2.1)::

        out = model(video, labels)        # labels choose the CAM class during training
        loss = anticipation_loss(out.logits, labels) + anticipation_loss(out.stage1, labels)
        loss = loss + sum(cross_entropy_per_step(v, labels) for v in out.frames.values())
    """

    logits: Tensor                        # (B, T, K) stage 2 (context + action): the prediction
    stage1: Tensor                        # (B, T, K) stage 1 (context only)
    frames: dict[str, Tensor] | None      # per-frame logits "context", "cam", "action", (B, T, K) each


class CAMFeatures(NamedTuple):
    """Outputs of :class:`CAMFeatureNet` for N frames."""

    context: Tensor          # (N, D) context-aware feature (fc7 of the context sub-model)
    action: Tensor           # (N, D) action-aware feature (fc7 after the CAM mask)
    context_logits: Tensor   # (N, K) per-frame classifier of the context sub-model
    cam_logits: Tensor       # (N, K) the GAP + linear classifier whose weights define the CAMs
    action_logits: Tensor    # (N, K) per-frame classifier on the action-aware feature
    cam: Tensor              # (N, h, w) the CAM M_k used for the mask, before the ReLU


class CAMFeatureNet(nn.Module):
    """The two-stream feature network of Fig. 3: shared trunk, context and action sub-models.

    Args:
        num_classes: actions K (each sub-model is trained as a per-frame action classifier).
        in_channels: image channels.
        backbone: ``"resnet"`` (small ResNet trunk of the course) or ``"vgg16"`` (conv1_1 to conv5_2).
        widths: ResNet stage widths (``backbone="resnet"`` only).
        fc_dim: width of fc6/fc7, i.e. of both features (4096 in the paper).
        cam_dim: channels of the CAM conv layer (1024 in the released code).
        grid: spatial size fed to fc6 (7 for VGG-16).
        dropout: after fc6 and fc7.

    Shape:
        frames (N, C, H, W) [, labels (N,)] -> :class:`CAMFeatures`
    """

    def __init__(self, num_classes: int = 10, *, in_channels: int = 3, backbone: str = "resnet",
                 widths: Sequence[int] = (16, 32, 64), fc_dim: int = 128, cam_dim: int = 64, grid: int = 2,
                 dropout: float = 0.5):
        super().__init__()
        if backbone == "resnet":
            self.trunk = ResNet2d(in_channels, widths=widths)
            c5 = self.trunk.out_features
        elif backbone == "vgg16":
            self.trunk = _VGGTrunk(in_channels, VGG16_TO_CONV5_2)
            c5 = self.trunk.out_channels
        else:
            raise ValueError(f"backbone must be 'resnet' or 'vgg16', got {backbone!r}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        # context sub-model: conv5_3 -> fc6 -> fc7 (the feature) -> fc8 (classifier)
        self.context_conv = nn.Sequential(nn.Conv2d(c5, c5, 3, padding=1), nn.ReLU(inplace=True))
        self.context_fc = _FC67(c5, grid, fc_dim, dropout)
        self.context_head = nn.Linear(fc_dim, num_classes)
        # action sub-model: conv5_3 -> CAM conv -> GAP -> linear (w^k); masked conv5_3 -> fc6 -> fc7
        self.action_conv = nn.Sequential(nn.Conv2d(c5, c5, 3, padding=1), nn.ReLU(inplace=True))
        self.cam_conv = nn.Sequential(nn.Conv2d(c5, cam_dim, 3, padding=1), nn.ReLU(inplace=True))
        self.cam_head = nn.Linear(cam_dim, num_classes)
        self.action_fc = _FC67(c5, grid, fc_dim, dropout)
        self.action_head = nn.Linear(fc_dim, num_classes)
        self.out_features = fc_dim

    def forward(self, frames: Tensor, labels: Tensor | None = None) -> CAMFeatures:
        """Frames (N, C, H, W) -> :class:`CAMFeatures`; ``labels`` (N,) pick the CAM class k."""
        n = check_shape(frames, "B C H W", name="frames", C=self.in_channels)["B"]
        trunk = self.trunk.forward_maps if isinstance(self.trunk, ResNet2d) else self.trunk
        shared = trunk(frames)                                          # (N, C5, h, w)  up to conv5_2
        ctx_maps = self.context_conv(shared)                            # (N, C5, h, w)  conv5_3 (context)
        context = self.context_fc(ctx_maps)                             # (N, D)
        conv5_3 = self.action_conv(shared)                              # (N, C5, h, w)  conv5_3 (action)
        f = self.cam_conv(conv5_3)                                      # (N, L, h, w)   f_l(x, y)
        cam_logits = self.cam_head(f.mean((2, 3)))                      # (N, K)  S_k = Σ_l w_l^k F_l
        if labels is None:
            k = cam_logits.detach().argmax(-1)                          # predicted class at inference
        else:
            if labels.shape != (n,):
                raise ValueError(f"labels: expected shape ({n},) (one per frame), got {tuple(labels.shape)}")
            k = labels
        masked, cam = cam_action_features(conv5_3, f, self.cam_head.weight, k, return_cam=True)   # Eqs. (2)-(3)
        action = self.action_fc(masked)                                 # (N, D)
        return CAMFeatures(context, action, self.context_head(context), cam_logits,
                           self.action_head(action), cam)


class TwoStageLSTM(nn.Module):
    """The multi-stage LSTM of Fig. 2 over precomputed features (Sec. 3.2.2).

        h¹_t = LSTM₁(c_t),                      ŷ¹_t = W₁ · Dropout(h¹_t)     (context stage)
        h²_t = LSTM₂([a_t ; Dropout(h¹_t)]),    ŷ²_t = W₂ · Dropout(h²_t)     (context + action stage)

    Both classifiers are outputs of the paper (each stage has its own loss, Eq. (4)), so ``head``
    holds both: ``head["stage1"]`` is W₁, ``head["stage2"]`` is W₂ (the prediction).

    Args:
        context_dim: D_c of the context features c_t.
        action_dim: D_a of the action-aware features a_t.
        num_classes: K.
        hidden: cells per LSTM (2048 in the released code).
        dropout: on the hidden states (0.5 in the released code).

    Shape:
        context (B, T, D_c), action (B, T, D_a) -> :class:`MSLSTMOutput` with ``logits`` (stage 2)
        and ``stage1``, each (B, T, K) (``frames`` is None). The stage-2 LSTM input width is
        D_a + hidden.
    """

    PRESETS = {
        "small": dict(context_dim=32, action_dim=32, num_classes=10, hidden=64),
        # the released Keras model: fc7 features (4096) and 2048-cell LSTMs; UCF-101 classes
        "paper": dict(context_dim=4096, action_dim=4096, num_classes=101, hidden=2048),
    }

    def __init__(self, num_classes: int = 10, *, context_dim: int = 32, action_dim: int = 32,
                 hidden: int = 64, dropout: float = 0.5):
        super().__init__()
        self.context_dim, self.action_dim = context_dim, action_dim
        self.lstm1 = nn.LSTM(context_dim, hidden, batch_first=True)
        self.lstm2 = nn.LSTM(action_dim + hidden, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.ModuleDict({"stage1": nn.Linear(hidden, num_classes),     # W₁
                                   "stage2": nn.Linear(hidden, num_classes)})    # W₂

    @classmethod
    def example_input(cls, preset: str = "small", batch: int = 2, frames: int = 6) -> tuple[Tensor, Tensor]:
        """A (context, action) pair of random feature sequences for the given preset."""
        p = cls.PRESETS[preset]
        g = torch.Generator().manual_seed(0)
        return (torch.randn(batch, frames, p["context_dim"], generator=g),
                torch.randn(batch, frames, p["action_dim"], generator=g))

    def forward(self, context: Tensor, action: Tensor | None = None) -> MSLSTMOutput:
        if action is None and isinstance(context, (tuple, list)):
            context, action = context
        b, t, _ = check_sequence(context, dim=self.context_dim, name="context features")
        check_shape(action, "B T D", name="action features", B=b, T=t, D=self.action_dim)
        h1, _ = self.lstm1(context)                                     # (B, T, H)
        h1 = self.drop(h1)
        h2, _ = self.lstm2(torch.cat([action, h1], dim=-1))             # (B, T, H), input D_a + H
        return MSLSTMOutput(self.head["stage2"](self.drop(h2)), self.head["stage1"](h1), None)   # (B, T, K) each


class MSLSTM(nn.Module):
    """The whole MS-LSTM: per-frame CAM features, then the two-stage LSTM.

    Args:
        num_classes: K.
        in_channels: image channels.
        backbone, widths, fc_dim, cam_dim, grid: see :class:`CAMFeatureNet`.
        hidden: LSTM cells.
        dropout: on fc6/fc7 and on the LSTM outputs.

    Parts: ``features`` (:class:`CAMFeatureNet`) and ``stages`` (:class:`TwoStageLSTM`);
    ``head`` is the stages' two classifiers (``stages.head``).

    Shape:
        video (B, C, T, H, W) [, labels (B,)] -> :class:`MSLSTMOutput`: ``logits`` (B, T, K) from
        stage 2, one prediction per frame, computed from frames 1..t only (the LSTMs are causal,
        the CNN is per frame); ``stage1`` (B, T, K); ``frames``, the per-frame logits of the
        feature network. The stage-1 and per-frame classifiers only influence ``logits``
        through training, so they are returned for their own losses.

    Example:
        >>> model = MSLSTM(num_classes=5).eval()
        >>> logits = model(torch.randn(2, 3, 4, 32, 32)).logits
        >>> tuple(logits.shape), tuple(temporal_average_pool(logits).shape)
        ((2, 4, 5), (2, 4, 5))
    """

    PRESETS = {
        "small": dict(in_channels=3, num_classes=10, backbone="resnet", widths=(16, 32, 64), fc_dim=128,
                      cam_dim=64, grid=2, hidden=64),
        # Sec. 3.2 and the released code: VGG-16 trunk, 4096-d fc7 features, 1024-channel CAM conv,
        # 2048-cell LSTMs, 224×224 frames; UCF-101 classes.
        "paper": dict(in_channels=3, num_classes=101, backbone="vgg16", fc_dim=4096, cam_dim=1024, grid=7,
                      hidden=2048),
    }
    SUPPORTS_ANY_T = True   # one prediction per frame, any number of frames

    def __init__(self, num_classes: int = 10, *, in_channels: int = 3, backbone: str = "resnet",
                 widths: Sequence[int] = (16, 32, 64), fc_dim: int = 128, cam_dim: int = 64, grid: int = 2,
                 hidden: int = 64, dropout: float = 0.5):
        super().__init__()
        self.in_channels = in_channels
        self.features = CAMFeatureNet(num_classes, in_channels=in_channels, backbone=backbone, widths=widths,
                                      fc_dim=fc_dim, cam_dim=cam_dim, grid=grid, dropout=dropout)
        self.stages = TwoStageLSTM(num_classes, context_dim=fc_dim, action_dim=fc_dim, hidden=hidden, dropout=dropout)

    @property
    def head(self) -> nn.ModuleDict:
        """The final classifiers: the two stages' ``head`` (``head["stage2"]`` gives the prediction)."""
        return self.stages.head

    def _frames(self, video: Tensor, labels: Tensor | None) -> tuple[CAMFeatures, int]:
        b, _, t, _, _ = check_video(video, channels=self.in_channels)
        per_frame = None
        if labels is not None:
            if labels.shape != (b,):
                raise ValueError(f"labels: expected shape ({b},) (one per clip), got {tuple(labels.shape)}")
            per_frame = labels.repeat_interleave(t)                     # (B*T,), frames of a clip contiguous
        return self.features(fold_time(video), per_frame), t           # on (B*T, C, H, W)

    def forward_features(self, video: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Video -> (context features (B, T, D), action-aware features (B, T, D))."""
        out, t = self._frames(video, labels)
        return unfold_time(out.context, t), unfold_time(out.action, t)

    def forward_head(self, features: tuple[Tensor, Tensor]) -> MSLSTMOutput:
        """(context, action) features -> stage-2 and stage-1 logits (``frames`` is None)."""
        return self.stages(*features)

    def forward(self, video: Tensor, labels: Tensor | None = None) -> MSLSTMOutput:
        out, t = self._frames(video, labels)
        stages = self.stages(unfold_time(out.context, t), unfold_time(out.action, t))
        frames = {"context": unfold_time(out.context_logits, t), "cam": unfold_time(out.cam_logits, t),
                  "action": unfold_time(out.action_logits, t)}                 # (B, T, K) each
        return stages._replace(frames=frames)


__all__ = ["CAMFeatureNet", "CAMFeatures", "MSLSTM", "MSLSTMOutput", "TwoStageLSTM", "cam_action_features",
           "temporal_average_pool", "VGG16_TO_CONV5_2"]
