"""Drivers: the forward passes that several model families share, in one place.

A family file (``tsm.py``, ``gsf.py``, ``convlstm.py``, ...) builds the part that is its own
(a backbone with temporal modules, a recurrent core) and hands it to one of these drivers, which
runs it over a video:

``PerFrameClassifier``
    a 2D backbone run on every frame of the video folded into the batch (B*T, C, H, W), a
    per-frame linear classifier, and TSN's average consensus of the frame logits over T
    (L. Wang et al., "Temporal Segment Networks", ECCV 2016, https://arxiv.org/abs/1608.00859,
    Eq. (1) with G = average, ``lecturekit.models.tsn.segment_consensus``). Used by TSM and
    GSM/GSF. A block of the backbone that mixes frames carries a ``temporal`` module and is
    called as ``block(x, frames)``; the other blocks as ``block(x)``. The number of frames is
    passed at run time, so one model works for any T.
``VideoPredictor``
    frame prediction around a recurrent core: observe 10 frames, predict 10 (the protocol of
    PredRNN, E3D-LSTM and Conv-TT-LSTM). Used by ``ConvLSTMPredictor``, ``PredRNN``,
    ``E3DLSTM``, ``ConvTTLSTM``.
``EarlyRecognizer``
    logits at every step from a recurrent core (early recognition curves).

The frame-prediction protocol, per step t:

* frames are cut into p×p patches and stacked as channels ("space to depth"): a 64×64×1
  frame with p = 4 becomes a 16×16×16 tensor, so the recurrence runs on a 16×16 grid;
* the core reads one frame and a 1×1 convolution of its features predicts frame t + 1; the
  first ``observe`` inputs are ground truth;
* during the ``predict`` steps the input is either the ground-truth frame (teacher forcing),
  the model's own previous prediction (free running, the only choice at test time), or, per
  sequence and per step, the ground truth with probability ``teacher_prob`` (scheduled
  sampling, S. Bengio, O. Vinyals, N. Jaitly, N. Shazeer, NeurIPS 2015,
  https://arxiv.org/abs/1506.03099; the decay schedule is
  ``lecturekit.models.video_prediction.scheduled_teacher_prob``).

A *core* is any module with

    in_channels, out_channels                 channels of one (patched) input and of its features
    init_state(x0) -> state                    x0 (B, in_channels, H', W') the first input
    step(x_t, state) -> (features, state)      x_t (B, in_channels, H', W') -> (B, out_channels, H', W')

(``ConvLSTMNet``, ``PredRNNCore``, ``E3DLSTMCore``, ``ConvTTLSTMNet`` in their files). Inside
the loop frames are (B, C, H, W); every public forward takes and returns (B, C, T, H, W).

Simplified / chosen here
    - The frame head applies a sigmoid (``output="sigmoid"``, pixels as Bernoulli means as in
      Shi et al.; frames fed back stay in [0, 1]). The official PredRNN / E3D heads are linear
      and their trainers clip; ``output="linear"`` gives that.
    - The loss is left to the caller.

Shapes (letters defined in lecturekit/layers/shapes.py)
    PerFrameClassifier  video (B, C, T, H, W) -> features (B, T, D) -> logits (B, K)
    VideoPredictor      video (B, C, T, H, W), T = observe (or observe + predict with ground
                        truth for teacher forcing) -> frames (B, C, predict, H, W)
                        (``return_all=True``: the next-frame predictions of steps 0..T_total-2,
                        (B, C, observe + predict - 1, H, W))
    EarlyRecognizer     video (B, C, T, H, W) -> logits (B, T, K), logits[:, t] sees frames 0..t
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..layers.resnet2d import ResNet2d
from ..layers.shapes import check_shape, check_video, fold_time
from .tsn import segment_consensus
from .video_prediction import from_patches, predictor_example_input, to_patches


class PerFrameClassifier(nn.Module):
    """A 2D backbone on every frame, a per-frame classifier, average consensus over frames.

    Subclasses set ``in_channels``, ``backbone`` (a :class:`ResNet2d` whose time-mixing blocks
    have a ``temporal`` module), ``dropout`` and ``head``.

    Shape: video (B, C, T, H, W) -> features (B, T, D) -> logits (B, K).
    """

    in_channels: int
    backbone: ResNet2d
    dropout: nn.Module
    head: nn.Linear

    def forward_maps(self, video: Tensor) -> Tensor:
        """video (B, C, T, H, W) -> last feature maps of every frame (B*T, D, h, w), frames mixed
        by the blocks that have a ``temporal`` module."""
        _, _, t, _, _ = check_video(video, channels=self.in_channels)
        x = self.backbone.stem(fold_time(video))                            # (B*T, C0, H', W')
        for block in self.backbone.blocks:
            x = block(x, t) if hasattr(block, "temporal") else block(x)      # time-mixing blocks need T
        return x                                                            # (B*T, D, h, w)

    def forward_features(self, video: Tensor) -> Tensor:
        """video (B, C, T, H, W) -> per-frame features (B, T, D)."""
        b, _, t, _, _ = check_video(video, channels=self.in_channels)
        f = self.backbone.pool(self.forward_maps(video)).flatten(1)         # (B*T, D)
        return f.view(b, t, -1)                                             # (B, T, D)

    def forward_head(self, features: Tensor) -> Tensor:
        """Per-frame classifier and average consensus: (B, T, D) -> (B, K)."""
        check_shape(features, "B T D", name="features", D=self.head.in_features)
        return segment_consensus(self.head(self.dropout(features)))         # (B, T, K) -> (B, K)

    def forward(self, video: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(video))


class VideoPredictor(nn.Module):
    """Observe ``observe`` frames, predict ``predict`` frames with a recurrent core.

    Args:
        core: a recurrent core (see module docstring) whose ``in_channels`` is channels·patch².
        channels: C of the frames.
        patch: p of the space-to-depth reshape (H and W must be multiples of p).
        observe, predict: the 10 → 10 protocol by default.
        head_bias: bias of the 1×1 frame head (PredRNN's has none).
        output: ``"sigmoid"`` or ``"linear"``.

    Shape:
        video (B, C, T, H, W) -> frames (B, C, predict, H, W) in [0, 1] with ``"sigmoid"``.
    """

    def __init__(self, core: nn.Module, *, channels: int = 1, patch: int = 4, observe: int = 10,
                 predict: int = 10, head_bias: bool = True, output: str = "sigmoid"):
        super().__init__()
        if output not in ("sigmoid", "linear"):
            raise ValueError(f"output: expected 'sigmoid' or 'linear', got {output!r}")
        if core.in_channels != channels * patch * patch:
            raise ValueError(f"core reads {core.in_channels} channels, but frames give "
                             f"C·p² = {channels}·{patch}² = {channels * patch * patch}")
        self.core, self.channels, self.patch = core, channels, patch
        self.observe, self.predict, self.output = observe, predict, output
        self.head = nn.Conv2d(core.out_channels, channels * patch * patch, 1, bias=head_bias)

    example_input = classmethod(predictor_example_input)

    def _check(self, video: Tensor) -> Tensor | None:
        _, _, t, h, w = check_video(video, channels=self.channels, name=f"{type(self).__name__} video")
        if t not in (self.observe, self.observe + self.predict):
            raise ValueError(f"{type(self).__name__}: expected T = observe ({self.observe}) or observe + predict "
                             f"({self.observe + self.predict}) frames, got T = {t}")
        if h % self.patch or w % self.patch:
            raise ValueError(f"frame size {h}×{w} is not a multiple of the patch size {self.patch}")
        return video[:, :, self.observe:] if t > self.observe else None

    def forward(self, video: Tensor, *, teacher_prob: float = 0.0, return_all: bool = False) -> Tensor:
        future = self._check(video)
        if teacher_prob > 0 and future is None:
            raise ValueError("teacher forcing needs the ground-truth future: pass observe + predict frames")
        b = video.shape[0]
        total = self.observe + self.predict
        state, outs, prev = None, [], None
        for t in range(total - 1):
            if t < self.observe:
                frame = video[:, :, t]                                   # (B, C, H, W) ground truth
            elif teacher_prob > 0:
                use_truth = (torch.rand(b, 1, 1, 1, device=video.device) < teacher_prob).to(prev.dtype)
                frame = use_truth * future[:, :, t - self.observe] + (1 - use_truth) * prev
            else:
                frame = prev                                             # free running
            x = to_patches(frame, self.patch)                            # (B, C·p², H/p, W/p)
            if state is None:
                state = self.core.init_state(x)
            feat, state = self.core.step(x, state)                       # (B, D, H/p, W/p)
            y = from_patches(self.head(feat), self.patch)                # (B, C, H, W) frame t+1
            prev = torch.sigmoid(y) if self.output == "sigmoid" else y
            outs.append(prev)
        out = torch.stack(outs, dim=2)                                   # (B, C, total-1, H, W)
        return out if return_all else out[:, :, self.observe - 1:]


class EarlyRecognizer(nn.Module):
    """Logits at every step from any recurrent core: early recognition / anticipation curves.

    features_t = GAP over space of the core's features at step t, logits_t = W features_t + b.
    Causal by construction: logits[:, t] depends on frames 0..t only.

    Shape:
        video (B, C, T, H, W) -> logits (B, T, K); ``forward_features`` -> (B, T, D).
    """

    def __init__(self, core: nn.Module, num_classes: int, *, channels: int = 3, patch: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        if core.in_channels != channels * patch * patch:
            raise ValueError(f"core reads {core.in_channels} channels, but frames give {channels * patch * patch}")
        self.core, self.channels, self.patch = core, channels, patch
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(core.out_channels, num_classes)

    @classmethod
    def from_predictor(cls, predictor: VideoPredictor, num_classes: int, **kwargs) -> "EarlyRecognizer":
        """Put the head on the core of any ``VideoPredictor`` (shares its weights)."""
        return cls(predictor.core, num_classes, channels=predictor.channels, patch=predictor.patch, **kwargs)

    def forward_features(self, video: Tensor) -> Tensor:
        check_video(video, channels=self.channels, name="EarlyRecognizer video")
        state, feats = None, []
        for t in range(video.shape[2]):
            x = to_patches(video[:, :, t], self.patch)
            if state is None:
                state = self.core.init_state(x)
            f, state = self.core.step(x, state)                          # (B, D, h, w)
            feats.append(f.mean(dim=(2, 3)))
        return torch.stack(feats, dim=1)                                 # (B, T, D)

    def forward_head(self, features: Tensor) -> Tensor:
        return self.head(self.drop(features))                           # (B, T, K)

    def forward(self, video: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(video))



__all__ = ["EarlyRecognizer", "PerFrameClassifier", "VideoPredictor"]
