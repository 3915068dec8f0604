"""LRCN: an LSTM over per-frame CNN features.

Paper: J. Donahue, L. A. Hendricks, S. Guadarrama, M. Rohrbach, S. Venugopalan, K. Saenko,
T. Darrell, "Long-term Recurrent Convolutional Networks for Visual Recognition and Description",
CVPR 2015. https://arxiv.org/abs/1411.4389

The lecture's "process local features using recurrent networks": a 2D CNN φ encodes every
frame, an LSTM reads the features in order, and each time step predicts the action; the
clip prediction averages the per-step predictions (activity-recognition setting, Sec. 4):

    x_t = φ(frame_t)                                    per-frame CNN features
    i_t = σ(W_xi x_t + W_hi h_{t-1} + b_i)              input gate
    f_t = σ(W_xf x_t + W_hf h_{t-1} + b_f)              forget gate
    o_t = σ(W_xo x_t + W_ho h_{t-1} + b_o)              output gate
    g_t = tanh(W_xc x_t + W_hc h_{t-1} + b_c)           candidate
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t,   h_t = o_t ⊙ tanh(c_t)   (the LSTM equations of Sec. 2)
    p(k | clip) = (1/T) Σ_t softmax(W h_t + b)_k

The LSTM is ``torch.nn.LSTM`` (gate order i, f, g, o in its weight rows; it keeps two bias
vectors b_ih + b_hh where the equations have one). Unlike late fusion's average, the LSTM
depends on the order of the frames; step t only sees frames 1..t (causal).

Implements
    LRCN   encoder ("resnet": the shared small ResNet; "karpathy": an AlexNet-style tower + FC6)
           -> LSTM -> per-step classifier -> average
Simplified
    - the paper's encoder is a CaffeNet variant whose fc6 feeds a 256-unit LSTM; the paper
      preset uses the Karpathy AlexNet-style tower with one 4096-d FC layer
      in its place. The paper also fuses an optical-flow LRCN; not here.
Shapes (letters defined in lecturekit/layers/shapes.py)
    video (B, C, T, H, W) -> logits (B, K); features (B, T, D) with D = hidden size
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..layers.conv_tower import PAPER_CONVS, SMALL_CONVS, ConvSpec
from ..layers.resnet2d import ResNet2d
from ..layers.shapes import check_sequence, check_video, fold_time, unfold_time
from .frame_cnn import KarpathyFrameEncoder, average_predictions


class LRCN(nn.Module):
    """Per-frame CNN -> LSTM -> per-step logits, averaged over time.

    Args:
        num_classes: K.
        in_channels: C.
        backbone: ``"resnet"`` (ResNet2d with ``widths``/``depths``) or ``"karpathy"`` (with
            ``size``, ``convs``, ``fc``, ``norm``).
        hidden: LSTM hidden size (paper 256).
        layers: stacked LSTM layers (paper 1).
        dropout: on the LSTM outputs before the classifier.
        average: ``"probs"`` (paper) or ``"logits"`` (see ``lecturekit.models.frame_cnn``).

    Shape:
        ``forward``: (B, C, T, H, W) -> (B, K), any T >= 1.
        ``forward_features``: -> (B, T, hidden); ``step_logits``: -> (B, T, K).
    """

    SUPPORTS_ANY_T = True
    PRESETS = {
        "small": dict(num_classes=10, backbone="resnet", widths=(16, 32, 64), depths=(1, 1, 1), hidden=64),
        # UCF-101, 16-frame clips, 256-unit LSTM on a 4096-d per-frame feature (see "Simplified")
        "paper": dict(num_classes=101, backbone="karpathy", size=227, convs=PAPER_CONVS, fc=(4096,), norm="lrn",
                      hidden=256, dropout=0.5),
    }

    def __init__(self, num_classes: int = 10, *, in_channels: int = 3, backbone: str = "resnet",
                 widths: Sequence[int] = (16, 32, 64), depths: Sequence[int] = (1, 1, 1), size: int = 32,
                 convs: Sequence[ConvSpec] = SMALL_CONVS, fc: Sequence[int] = (256,), norm: str = "batch",
                 hidden: int = 64, layers: int = 1, dropout: float = 0.0, average: str = "probs"):
        super().__init__()
        if average not in ("probs", "logits"):
            raise ValueError(f"average must be 'probs' or 'logits', got {average!r}")
        self.num_classes, self.in_channels, self.average = num_classes, in_channels, average
        if backbone == "resnet":
            self.size = None
            self.encoder = ResNet2d(in_channels, widths=widths, depths=depths)
        elif backbone == "karpathy":
            self.size = size
            self.encoder = KarpathyFrameEncoder(in_channels, size, convs, fc, dropout=0.0, norm=norm)
        else:
            raise ValueError(f"backbone must be 'resnet' or 'karpathy', got {backbone!r}")
        self.lstm = nn.LSTM(self.encoder.out_features, hidden, num_layers=layers, batch_first=True)
        self.out_features = hidden
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """Video (B, C, T, H, W) -> LSTM outputs h_1..h_T (B, T, hidden)."""
        _, _, t, _, _ = check_video(x, channels=self.in_channels, size=self.size, name="LRCN")
        f = unfold_time(self.encoder(fold_time(x)), t)     # (B, T, D_frame)
        h, _ = self.lstm(f)                                # (B, T, hidden), step t sees frames 1..t
        return h

    def step_logits(self, x: Tensor) -> Tensor:
        """Video (B, C, T, H, W) -> per-step logits (B, T, K)."""
        return self.head(self.dropout(self.forward_features(x)))

    def forward_head(self, features: Tensor) -> Tensor:
        """LSTM outputs (B, T, hidden) -> clip logits (B, K), averaging the per-step predictions."""
        check_sequence(features, dim=self.out_features, name="LRCN features")
        return average_predictions(self.head(self.dropout(features)), self.average)

    def forward(self, x: Tensor) -> Tensor:
        """Video (B, C, T, H, W) -> logits (B, K)."""
        return self.forward_head(self.forward_features(x))


__all__ = ["LRCN"]
