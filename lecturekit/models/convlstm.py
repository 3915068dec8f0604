"""ConvLSTM encoder–forecaster for precipitation nowcasting / Moving MNIST, and its ConvGRU variant.

Paper: X. Shi, Z. Chen, H. Wang, D.-Y. Yeung, W.-K. Wong, W.-C. Woo, "Convolutional LSTM
Network: A Machine Learning Approach for Precipitation Nowcasting", NeurIPS 2015.
https://arxiv.org/abs/1506.04214   (no official code was released)

The cell (Eq. 3, peepholes per channel) lives in ``lecturekit.layers.conv_rnn.ConvLSTMCell``;
this file assembles the network of Sec. 3.2 / Fig. 3:

* every frame is cut into p×p patches (64×64×1 with p = 4 → 16×16×16);
* an **encoder** stack of ConvLSTM layers reads the observed frames;
* a **forecaster** stack of the same depth starts from a copy of the encoder's final (H, C),
  layer by layer, and receives **no input**: its first layer has no input-to-state
  convolution, upper layers read the layer below;
* at each future step a 1×1 convolution over the hidden states of **all** forecaster layers
  gives the p² patch channels, reshaped back to a frame (``head_input="all"``).

The network reproduces the six parameter counts of Table 1 to the digit
(``ConvLSTMEncoderForecaster.PUBLISHED``; ``TABLE1_ROWS`` gives each row as constructor
arguments). ``paper`` is
the best row, ConvLSTM(5×5)-5×5-128-5×5-64-5×5-64: input-to-state kernel 5×5 and three layers
with 5×5 state kernels and 128, 64, 64 channels (7,585,296 parameters). The FC-LSTM-2048-2048
row is the same network with 1×1 kernels on a 1×1 map (p = 64) and a head that reads only the
last forecaster layer (``head_input="last"``).

Also here
    ConvLSTMNet         a plain stack of ConvLSTM (or ConvGRU) layers in the core protocol of
                        ``lecturekit.models.drivers`` (frames in, top-layer features
                        out), used by ``VideoPredictor`` and ``EarlyRecognizer``.
    ConvLSTMPredictor   that stack fed frame by frame (``VideoPredictor``): the "ConvLSTM" row
                        of the PredRNN / E3D-LSTM tables, a different protocol from Shi et al.'s
                        input-free forecaster.

Simplified / chosen
    - Output: sigmoid of the head (pixels as Bernoulli means; the paper trains with cross
      entropy — use ``forward_logits`` with ``BCEWithLogitsLoss`` for that).
    - ``cell="gru"`` swaps every ConvLSTM for a ConvGRU (torch convention, no peepholes); the
      forecaster's first GRU layer then reads a zero input of one channel, because a GRU has
      no input-free form in this library.
    - Training (RMSProp, lr 1e-3, decay 0.9, early stopping) is not part of the model.
    - The forget-gate bias starts at +1 (``ConvLSTMCell(forget_bias=1.0)``, initialisation only;
      the paper does not state its initialisation).

Shapes: video (B, C, T_obs, H, W) -> frames (B, C, predict, H, W); H, W multiples of p.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..layers.conv_rnn import ConvGRUCell, ConvLSTMCell
from ..layers.shapes import check_video
from .published import Published
from .drivers import VideoPredictor
from .video_prediction import from_patches, predictor_example_input, to_patches


def _cell(kind: str, cin: int, hidden: int, k_in: int, k_state: int, peephole: str) -> nn.Module:
    if kind == "lstm":
        return ConvLSTMCell(cin, hidden, k_in, state_kernel_size=k_state, peephole=peephole)
    if kind == "gru":
        return ConvGRUCell(max(cin, 1), hidden, k_state, convention="torch")
    raise ValueError(f"cell: expected 'lstm' or 'gru', got {kind!r}")


class ConvLSTMNet(nn.Module):
    """A stack of ConvLSTM / ConvGRU layers as a recurrent core (features = top hidden state).

    Shape: step(x (B, in_channels, H, W), state) -> (B, hidden[-1], H, W), state.
    """

    def __init__(self, in_channels: int, hidden: tuple[int, ...] = (32, 32), kernel_size: int = 3, *,
                 cell: str = "lstm", peephole: str = "none"):
        super().__init__()
        self.in_channels, self.out_channels, self.kind = in_channels, hidden[-1], cell
        chans = (in_channels, *hidden)
        self.cells = nn.ModuleList(_cell(cell, chans[i], chans[i + 1], kernel_size, kernel_size, peephole)
                                   for i in range(len(hidden)))

    def init_state(self, x: Tensor):
        return [None] * len(self.cells)

    def step(self, x: Tensor, state):
        new = []
        for cell, s in zip(self.cells, state):
            x, s = cell(x, s)                                            # (B, C_l, H, W)
            new.append(s)
        return x, new


class ConvLSTMEncoderForecaster(nn.Module):
    """Shi et al.'s encoder–forecaster (Sec. 3.2); see the module docstring.

    Args:
        channels: C of the frames.
        patch: p of the space-to-depth reshape.
        hidden: channels of each layer (encoder and forecaster alike).
        input_kernel: input-to-state kernel (the "a×a" of "ConvLSTM(a×a)").
        state_kernel: state-to-state kernel (the "b×b" of each layer).
        peephole: ``"channel"`` (paper) or ``"none"``.
        observe, predict: input and output lengths (10 → 10 on Moving MNIST).
        head_input: ``"all"`` forecaster layers (paper) or only the ``"last"`` (FC-LSTM row).
        cell: ``"lstm"`` or ``"gru"``.

    Shape:
        video (B, C, observe, H, W) (or observe + predict frames, the future being ignored)
        -> frames (B, C, predict, H, W)
    """

    example_input = classmethod(predictor_example_input)

    PRESETS = {
        "small": dict(channels=1, patch=4, hidden=(32, 32), input_kernel=3, state_kernel=3,
                      peephole="channel"),
        # Table 1, best ConvLSTM row: ConvLSTM(5×5)-5×5-128-5×5-64-5×5-64 (7,585,296 parameters).
        "paper": dict(channels=1, patch=4, hidden=(128, 64, 64), input_kernel=5, state_kernel=5,
                      peephole="channel"),
    }
    PUBLISHED = {
        row: Published(count, "parameters", f"Table 1 row {row} (Moving MNIST, 64×64×1 frames); "
                       f"constructor arguments TABLE1_ROWS[{row!r}]",
                       "Shi et al., arXiv:1506.04214, Table 1")
        for row, count in (
            ("FC-LSTM-2048-2048", 142_667_776),
            ("ConvLSTM(5x5)-5x5-256", 13_524_496),
            ("ConvLSTM(5x5)-5x5-128-5x5-128", 10_042_896),
            ("ConvLSTM(5x5)-5x5-128-5x5-64-5x5-64", 7_585_296),
            ("ConvLSTM(9x9)-1x1-128-1x1-128", 11_550_224),
            ("ConvLSTM(9x9)-1x1-128-1x1-64-1x1-64", 8_830_480),
        )
    }

    def __init__(self, *, channels: int = 1, patch: int = 4, hidden: tuple[int, ...] = (32, 32),
                 input_kernel: int = 3, state_kernel: int = 3, peephole: str = "channel", observe: int = 10,
                 predict: int = 10, head_input: str = "all", cell: str = "lstm"):
        super().__init__()
        if head_input not in ("all", "last"):
            raise ValueError(f"head_input: expected 'all' or 'last', got {head_input!r}")
        self.channels, self.patch, self.observe, self.predict = channels, patch, observe, predict
        self.head_input, self.kind = head_input, cell
        cin = channels * patch * patch
        enc_in = (cin, *hidden[:-1])
        fc_in = (0, *hidden[:-1])                                       # forecaster layer 0: no input
        self.encoder = nn.ModuleList(_cell(cell, enc_in[i], h, input_kernel, state_kernel, peephole)
                                     for i, h in enumerate(hidden))
        self.forecaster = nn.ModuleList(_cell(cell, fc_in[i], h, input_kernel, state_kernel, peephole)
                                        for i, h in enumerate(hidden))
        head_in = sum(hidden) if head_input == "all" else hidden[-1]
        self.head = nn.Conv2d(head_in, cin, 1)                           # 1×1 conv to the patch channels

    def forward_logits(self, video: Tensor) -> Tensor:
        """Pre-sigmoid frames (B, C, predict, H, W), for a cross-entropy loss as in the paper."""
        _, _, t, h, w = check_video(video, channels=self.channels, name="ConvLSTMEncoderForecaster video")
        if t not in (self.observe, self.observe + self.predict):
            raise ValueError(f"expected T = {self.observe} observed frames (or {self.observe + self.predict}), got {t}")
        if h % self.patch or w % self.patch:
            raise ValueError(f"frame size {h}×{w} is not a multiple of the patch size {self.patch}")
        states = [None] * len(self.encoder)
        for step in range(self.observe):                                 # encoder reads the frames
            x = to_patches(video[:, :, step], self.patch)                # (B, C·p², H/p, W/p)
            for l, cell in enumerate(self.encoder):
                x, states[l] = cell(x, states[l])
        outs = []
        zero = None
        for _ in range(self.predict):                                    # forecaster: no input
            hs, x = [], None
            for l, cell in enumerate(self.forecaster):
                if l == 0 and self.kind == "gru":
                    zero = states[0].new_zeros(states[0].shape[0], 1, *states[0].shape[2:]) if zero is None else zero
                    x = zero
                x, states[l] = cell(x, states[l])                       # (B, C_l, H/p, W/p)
                hs.append(x)
            feat = torch.cat(hs, dim=1) if self.head_input == "all" else hs[-1]
            outs.append(from_patches(self.head(feat), self.patch))       # (B, C, H, W)
        return torch.stack(outs, dim=2)                                  # (B, C, predict, H, W)

    def forward(self, video: Tensor) -> Tensor:
        return torch.sigmoid(self.forward_logits(video))


class ConvLSTMPredictor(VideoPredictor):
    """A frame-fed ConvLSTM stack in the ``VideoPredictor`` protocol (the ConvLSTM baseline of the
    PredRNN / E3D-LSTM tables: every step reads a frame, ground truth or its own prediction).

    Shape: video (B, C, T, H, W) -> frames (B, C, predict, H, W).
    """

    PRESETS = {
        "small": dict(channels=1, patch=4, hidden=(32, 32), kernel_size=3),
        # PredRNN's Moving MNIST sizes with ConvLSTM cells (4 × 128, 5×5, patch 4); no published count.
        "paper": dict(channels=1, patch=4, hidden=(128, 128, 128, 128), kernel_size=5),
    }

    def __init__(self, *, channels: int = 1, patch: int = 4, hidden: tuple[int, ...] = (32, 32),
                 kernel_size: int = 3, cell: str = "lstm", peephole: str = "none", observe: int = 10,
                 predict: int = 10, output: str = "sigmoid"):
        core = ConvLSTMNet(channels * patch * patch, hidden, kernel_size, cell=cell, peephole=peephole)
        super().__init__(core, channels=channels, patch=patch, observe=observe, predict=predict, output=output)


# The rows of Table 1 of Shi et al. (2015) as constructor arguments of ConvLSTMEncoderForecaster;
# their parameter counts are ConvLSTMEncoderForecaster.PUBLISHED[row].
TABLE1_ROWS = {
    "FC-LSTM-2048-2048": dict(patch=64, hidden=(2048, 2048), input_kernel=1, state_kernel=1, head_input="last"),
    "ConvLSTM(5x5)-5x5-256": dict(hidden=(256,), input_kernel=5, state_kernel=5),
    "ConvLSTM(5x5)-5x5-128-5x5-128": dict(hidden=(128, 128), input_kernel=5, state_kernel=5),
    "ConvLSTM(5x5)-5x5-128-5x5-64-5x5-64": dict(hidden=(128, 64, 64), input_kernel=5, state_kernel=5),
    "ConvLSTM(9x9)-1x1-128-1x1-128": dict(hidden=(128, 128), input_kernel=9, state_kernel=1),
    "ConvLSTM(9x9)-1x1-128-1x1-64-1x1-64": dict(hidden=(128, 64, 64), input_kernel=9, state_kernel=1),
}

__all__ = ["ConvLSTMNet", "ConvLSTMEncoderForecaster", "ConvLSTMPredictor", "TABLE1_ROWS"]
