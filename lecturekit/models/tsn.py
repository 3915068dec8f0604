"""TSN: Temporal Segment Networks.

Paper: L. Wang, Y. Xiong, Z. Wang, Y. Qiao, D. Lin, X. Tang, L. Van Gool, "Temporal Segment
Networks: Towards Good Practices for Deep Action Recognition", ECCV 2016 (TPAMI 2018
extension). https://arxiv.org/abs/1608.00859

Implements
    segment_indices   sparse sampling: split T frames into S equal segments, one snippet each
                      (random position in training, the segment centre in testing:
                      ``centre_segment_indices``, exercise 05.2)
    segment_consensus the consensus G = average over segments (exercise 05.3)
    RGB difference    the RGB-difference modality: L+1 frames -> L differences -> 3L channels
                      (``lecturekit.layers.motion.difference_stack``)
    inflate_first_conv  cross-modality initialisation of a first conv with more input channels
    TSN               the network, Eq. (1):

        TSN(T_1, ..., T_S) = H( G( F(T_1; W), ..., F(T_S; W) ) )

    F = one 2D ConvNet shared by all snippets (``lecturekit.layers.ResNet2d``), G = the segmental
    consensus (average of the snippet LOGITS, as ``before_softmax=True`` in the released code),
    H = softmax, which lives in the loss (the model returns logits).
Simplified
    - Backbone: a small ResNet (CPU) or ResNet-50 (``paper``), not BN-Inception. The ``paper``
      preset is the ResNet-50 TSN of the TSM repository (8 segments, Kinetics-400): 24,327,632
      parameters (``TSN.PUBLISHED``).
    - Sampling happens inside ``forward`` on the clip it is given (ToyKitchens clips are short);
      one random offset per (video, segment) in ``train()`` mode, the centre in ``eval()``.
    - Optical-flow TSN is not built here; stacked flow lives in ``lecturekit.models.twostream``.
    - No test-time 25-snippet × 10-crop protocol; corner cropping and scale jitter belong in data.
Shapes (letters defined in lecturekit/layers/shapes.py)
    video (B, 3, T, H, W) -> snippets (B*S, C_in, H, W) -> features (B, S, D) -> logits (B, K)
    C_in = 3 (RGB) or 3L (RGB difference of L+1 frames)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..layers.motion import difference_stack
from ..layers.resnet2d import ResNet2d
from ..layers.shapes import check_shape, check_video
from .published import Published

MODALITIES = ("rgb", "rgb_diff")


def _segment_length(num_frames: int, segments: int, snippet: int) -> int:
    """T // S, after checking that every segment holds a snippet (else ValueError)."""
    seg_len = num_frames // segments if segments > 0 else 0
    if segments < 1 or snippet < 1 or seg_len < snippet:
        raise ValueError(
            f"TSN sampling needs T >= S*snippet: got T={num_frames} frames, S={segments} "
            f"segments of snippet length {snippet}"
        )
    return seg_len


def centre_segment_indices(num_frames: int, segments: int, snippet: int = 1, *,
                           device: torch.device | str | None = None) -> Tensor:
    """TSN's test-time sampling of one video: the centred snippet of each of S segments.

    Sparse sampling (Wang et al., "Temporal Segment Networks: Towards Good Practices for Deep
    Action Recognition", ECCV 2016, https://arxiv.org/abs/1608.00859: the snippets T_1, ...,
    T_S of Eq. (1)), with integer segments: the T frames are split into S segments of
    ``T // S`` frames (a remainder at the end is never used); segment s offers
    ``room = T // S - snippet + 1`` valid starts and its snippet starts at the lower middle one,

        start_s = s · (T // S) + (room − 1) // 2,   row s = start_s + [0, 1, ..., snippet − 1].

    :func:`segment_indices` returns these rows for every video in ``eval()`` mode, so they are
    the frames :class:`TSN` reads at test time. Exercise 05.2 checks students against this
    function.

    Returns: LongTensor (S, snippet).
    Raises: ValueError when a segment is shorter than a snippet.

    >>> centre_segment_indices(10, 3).tolist()
    [[1], [4], [7]]
    """
    seg_len = _segment_length(num_frames, segments, snippet)
    room = seg_len - snippet + 1                                              # valid offsets
    first = torch.arange(segments, device=device) * seg_len + (room - 1) // 2  # (S,)
    return first[:, None] + torch.arange(snippet, device=first.device)         # (S, snippet)


def segment_indices(num_frames: int, segments: int, snippet: int = 1, *, random: bool = False,
                    batch: int = 1, generator: torch.Generator | None = None,
                    device: torch.device | str | None = None) -> Tensor:
    """Frame indices of TSN's sparse sampling.

    The T frames are split into S equal segments of ``T // S`` frames (a remainder at the end is
    never used); inside each segment a snippet of ``snippet`` consecutive frames starts at a
    uniformly random offset (``random=True``, training) or is centred (testing,
    :func:`centre_segment_indices` for every video).

    Returns: LongTensor (batch, S, snippet); row ``b`` is the sampling of video ``b``.
    Raises: ValueError when a segment is shorter than a snippet.

    >>> segment_indices(8, 4).tolist()
    [[[0], [2], [4], [6]]]
    """
    if not random:
        return centre_segment_indices(num_frames, segments, snippet, device=device).repeat(batch, 1, 1)
    seg_len = _segment_length(num_frames, segments, snippet)
    starts = torch.arange(segments, device=device) * seg_len                  # (S,)
    room = seg_len - snippet + 1                                              # valid offsets
    offset = torch.randint(room, (batch, segments), generator=generator,
                           device="cpu" if generator is not None else device).to(starts.device)
    first = starts + offset                                                   # (batch, S)
    return first[..., None] + torch.arange(snippet, device=starts.device)     # (batch, S, snippet)


def segment_consensus(scores: Tensor) -> Tensor:
    """TSN's segmental consensus G: the average of the snippet class scores over the segments.

    Wang et al., "Temporal Segment Networks: Towards Good Practices for Deep Action
    Recognition", ECCV 2016, https://arxiv.org/abs/1608.00859, Eq. (1) with G = average:
    G(F(T_1; W), ..., F(T_S; W)) = (1/S) Σ_s F(T_s; W), taken on the scores before the softmax
    (``before_softmax=True`` in the released code); H = softmax lives in the loss.
    :meth:`TSN.forward_head` applies it to the snippet logits, and the per-frame classifiers
    TSM and GSM/GSF (``lecturekit.models.drivers.PerFrameClassifier``) to their frame logits.
    Exercise 05.3 checks students against this function.

    Shape: (B, S, K) -> (B, K)
    """
    return scores.mean(dim=1)


def inflate_first_conv(weight: Tensor, in_channels: int) -> Tensor:
    """Cross-modality initialisation ("good practice" of Sec. 3.2): average an RGB kernel over
    its input channels and replicate it ``in_channels`` times.

    Shape: (out, 3, kh, kw) -> (out, in_channels, kh, kw); every input slice = ``weight.mean(1)``.
    """
    check_shape(weight, "K C H W", name="weight")
    return weight.mean(dim=1, keepdim=True).expand(-1, in_channels, -1, -1).clone()


class TSN(nn.Module):
    """Temporal Segment Network: S snippets, one shared 2D ConvNet, average consensus.

    Args:
        num_classes: K.
        segments: S, snippets sampled per video (the paper uses 3; the TSM repo's TSN uses 8).
        modality: ``"rgb"`` (1 frame per snippet) or ``"rgb_diff"`` (``diff_frames + 1`` frames
            per snippet -> ``3 * diff_frames`` channels).
        diff_frames: L, number of differences per RGB-difference snippet (5 in the paper).
        widths, depths, block, stem: the :class:`ResNet2d` backbone.
        dropout: dropout before the classifier (0.8 in the paper; the small default uses 0).
        partial_bn: the paper's "partial BN": in ``train()`` every BatchNorm except the first is
            kept in eval mode with frozen affine parameters.

    Shape: video (B, 3, T, H, W) with T >= S * snippet -> logits (B, K)

    Example:
        >>> model = TSN(num_classes=10)
        >>> model(torch.randn(2, 3, 8, 32, 32)).shape
        torch.Size([2, 10])
    """

    PRESETS = {
        "small": dict(num_classes=10, segments=4),
        # TSM repository's TSN ResNet-50 on Kinetics-400 (8 segments); 24,327,632 params.
        "paper": dict(num_classes=400, segments=8, widths=(64, 128, 256, 512), depths=(3, 4, 6, 3),
                      block="bottleneck", stem="imagenet", dropout=0.8),
    }
    PUBLISHED = {
        "paper_params": Published(24_327_632, "parameters", "preset 'paper': ResNet-50 with a 400-way head "
                                  "(Kinetics-400)", "the ResNet-50 TSN of github.com/mit-han-lab/temporal-shift-module "
                                  "(torchvision resnet50 trunk), counted by instantiating it"),
    }

    def __init__(self, num_classes: int = 10, *, segments: int = 4, modality: str = "rgb",
                 diff_frames: int = 1, in_channels: int = 3, widths: Sequence[int] = (16, 32, 64),
                 depths: Sequence[int] = (1, 1, 1), block: str = "basic", stem: str = "small",
                 dropout: float = 0.0, partial_bn: bool = False):
        super().__init__()
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
        self.segments, self.modality, self.diff_frames = segments, modality, diff_frames
        self.in_channels, self.partial_bn = in_channels, partial_bn
        self.snippet = 1 if modality == "rgb" else diff_frames + 1
        if modality == "rgb":   # any T >= S works; RGB difference needs T >= S*(L+1): not declared
            self.SUPPORTS_ANY_T = True
        net_in = in_channels if modality == "rgb" else in_channels * diff_frames
        self.backbone = ResNet2d(net_in, widths=widths, depths=depths, block=block, stem=stem)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.backbone.out_features, num_classes)

    def snippets(self, video: Tensor) -> Tensor:
        """Sample and build the network input: (B, C, T, H, W) -> (B*S, C_in, H, W)."""
        b, c, t, h, w = check_video(video, channels=self.in_channels)
        idx = segment_indices(t, self.segments, self.snippet, random=self.training, batch=b,
                              device=video.device)                          # (B, S, L')
        flat = idx.reshape(b, 1, -1, 1, 1).expand(b, c, -1, h, w)
        x = video.gather(2, flat)                                           # (B, C, S*L', H, W)
        x = x.view(b, c, self.segments, self.snippet, h, w).transpose(1, 2)  # (B, S, C, L', H, W)
        x = x.reshape(b * self.segments, c, self.snippet, h, w)             # (B*S, C, L', H, W)
        if self.modality == "rgb":
            return x[:, :, 0]                                               # (B*S, C, H, W)
        return difference_stack(x)                                          # (B*S, C*L, H, W)

    def forward_features(self, video: Tensor) -> Tensor:
        """F(T_s; W) before the classifier: video -> per-snippet features (B, S, D)."""
        x = self.snippets(video)                                            # (B*S, C_in, H, W)
        f = self.backbone.forward_features(x)                               # (B*S, D)
        return f.view(-1, self.segments, f.shape[-1])                       # (B, S, D)

    def forward_head(self, features: Tensor) -> Tensor:
        """Classifier per snippet, then the consensus G = average over segments: (B, S, D) -> (B, K)."""
        check_shape(features, "B S D", name="features", D=self.head.in_features)
        return segment_consensus(self.head(self.dropout(features)))         # (B, S, K) -> (B, K)

    def forward(self, video: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(video))

    def train(self, mode: bool = True) -> TSN:
        super().train(mode)
        if mode and self.partial_bn:
            bns = [m for m in self.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
            for bn in bns[1:]:
                bn.eval()
                bn.weight.requires_grad_(False)
                bn.bias.requires_grad_(False)
        return self


__all__ = ["TSN", "centre_segment_indices", "inflate_first_conv", "segment_consensus", "segment_indices"]
