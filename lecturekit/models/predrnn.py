"""PredRNN: the spatiotemporal LSTM (ST-LSTM) with a zig-zag memory.

Paper: Y. Wang, M. Long, J. Wang, Z. Gao, P. S. Yu, "PredRNN: Recurrent Neural Networks for
Predictive Learning using Spatiotemporal LSTMs", NeurIPS 2017.
https://papers.nips.cc/paper/6689-predrnn   (official PyTorch code: thuml/predrnn-pytorch)

Stacked ConvLSTMs keep each layer's memory private. The ST-LSTM adds a second memory M that
flows *vertically*: up through the layers within a time step and from the top layer at t-1 to
the bottom layer at t ("zig-zag", M_t^0 = M_{t-1}^L). Equations (paper, Eq. 3), for layer l::

    g_t = tanh(W_xg*X_t + W_hg*H_{t-1}^l)          i_t = σ(W_xi*X_t + W_hi*H_{t-1}^l)
    f_t = σ(W_xf*X_t + W_hf*H_{t-1}^l + 1)           C_t^l = f_t ⊙ C_{t-1}^l + i_t ⊙ g_t
    g'_t = tanh(W'_xg*X_t + W_mg*M_t^{l-1})         i'_t = σ(W'_xi*X_t + W_mi*M_t^{l-1})
    f'_t = σ(W'_xf*X_t + W_mf*M_t^{l-1} + 1)         M_t^l = f'_t ⊙ M_t^{l-1} + i'_t ⊙ g'_t
    o_t = σ(W_xo*X_t + W_ho*H_{t-1}^l + W_co*C_t^l + W_mo*M_t^l)
    H_t^l = o_t ⊙ tanh(W_1×1 * [C_t^l, M_t^l])

Follows the official code (departures from the paper's typography)
    - No learned biases; a constant +1 is added to f and f' (``forget_bias``). The paper writes
      biases b_g, b_i, ...; the official convs have ``bias=False``. Followed, because the
      published parameter count (23,838,720) depends on it.
    - Stacked splits: ``conv_x`` → 7C as (i, f, g, i', f', g', o), ``conv_h`` → 4C as
      (i, f, g, o), ``conv_m`` → 3C as (i', f', g'); ``conv_o`` on [C_t, M_t] is W_co*C + W_mo*M.
    - The frame head is a 1×1 conv without bias (``VideoPredictor(head_bias=False)``).
Rejected
    - The optional ``nn.LayerNorm([kC, W, W])`` of the official cell (ties the model to square
      frames of one size; the MNIST script does not use it: 27,770,880 parameters with it).
    - ``reverse_input`` augmentation and PredRNN-V2's reverse scheduled sampling: trainer
      matters, not model.

Parameter count: ``PredRNN.PRESETS["paper"]`` (4 layers × 128 channels, 5×5 kernels, patch 4
on 64×64×1 frames → 16 input channels) has 23,838,720 parameters, the count of the official
module in its Moving MNIST configuration (``PredRNN.PUBLISHED["params"]``).

Shapes: video (B, C, T, H, W) -> frames (B, C, predict, H, W) (see ``drivers.VideoPredictor``); the
cell works on (B, C, H', W') maps inside the time loop.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .published import Published
from .drivers import VideoPredictor


class SpatioTemporalLSTMCell(nn.Module):
    """One ST-LSTM step (PredRNN Eq. 3).

    Shape: x (B, C_in, H, W), h, c, m (B, C_h, H, W) -> h, c, m (B, C_h, H, W).
    """

    def __init__(self, in_channels: int, hidden: int, kernel_size: int = 5, *, forget_bias: float = 1.0):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd to keep H×W, got {kernel_size}")
        p = kernel_size // 2
        self.hidden, self.forget_bias = hidden, forget_bias
        self.conv_x = nn.Conv2d(in_channels, 7 * hidden, kernel_size, padding=p, bias=False)
        self.conv_h = nn.Conv2d(hidden, 4 * hidden, kernel_size, padding=p, bias=False)
        self.conv_m = nn.Conv2d(hidden, 3 * hidden, kernel_size, padding=p, bias=False)
        self.conv_o = nn.Conv2d(2 * hidden, hidden, kernel_size, padding=p, bias=False)   # W_co, W_mo
        self.conv_last = nn.Conv2d(2 * hidden, hidden, 1, bias=False)                     # W_1×1

    def forward(self, x: Tensor, h: Tensor, c: Tensor, m: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        xi, xf, xg, xi2, xf2, xg2, xo = self.conv_x(x).chunk(7, dim=1)
        hi, hf, hg, ho = self.conv_h(h).chunk(4, dim=1)
        mi, mf, mg = self.conv_m(m).chunk(3, dim=1)
        i = torch.sigmoid(xi + hi)
        f = torch.sigmoid(xf + hf + self.forget_bias)
        g = torch.tanh(xg + hg)
        c = f * c + i * g                                                # temporal memory C_t^l
        i2 = torch.sigmoid(xi2 + mi)
        f2 = torch.sigmoid(xf2 + mf + self.forget_bias)
        g2 = torch.tanh(xg2 + mg)
        m = f2 * m + i2 * g2                                             # spatiotemporal memory M_t^l
        cm = torch.cat([c, m], dim=1)                                    # (B, 2C, H, W)
        o = torch.sigmoid(xo + ho + self.conv_o(cm))
        h = o * torch.tanh(self.conv_last(cm))
        return h, c, m


class PredRNNCore(nn.Module):
    """A stack of ST-LSTMs with the zig-zag M (core protocol of ``drivers.VideoPredictor``).

    state = (hs, cs, m): per-layer H and C, and the single M threaded through layer 0..L-1 and
    carried from the top at t-1 to the bottom at t.
    """

    def __init__(self, in_channels: int, hidden: tuple[int, ...] = (32, 32), kernel_size: int = 3, *,
                 forget_bias: float = 1.0):
        super().__init__()
        if len(set(hidden)) != 1:
            raise ValueError(f"PredRNN threads one M through every layer: all layers need the same width, got {hidden}")
        self.in_channels, self.out_channels = in_channels, hidden[-1]
        chans = (in_channels, *hidden)
        self.cells = nn.ModuleList(SpatioTemporalLSTMCell(chans[i], chans[i + 1], kernel_size,
                                                          forget_bias=forget_bias) for i in range(len(hidden)))

    def init_state(self, x: Tensor):
        b, _, h, w = x.shape
        z = [x.new_zeros(b, cell.hidden, h, w) for cell in self.cells]
        return z, [t.clone() for t in z], z[0].clone()

    def step(self, x: Tensor, state):
        hs, cs, m = state
        hs, cs = list(hs), list(cs)
        for l, cell in enumerate(self.cells):
            hs[l], cs[l], m = cell(x, hs[l], cs[l], m)                   # M goes up the stack (zig-zag)
            x = hs[l]
        return x, (hs, cs, m)                                            # m: M_t^L, fed to layer 0 at t+1


class PredRNN(VideoPredictor):
    """PredRNN frame predictor: observe 10, predict 10 (see ``VideoPredictor`` for the protocol).

    Shape: video (B, C, T, H, W) -> frames (B, C, predict, H, W).
    """

    PRESETS = {
        "small": dict(channels=1, patch=4, hidden=(32, 32), kernel_size=3),
        # thuml/predrnn-pytorch mnist_script/predrnn_mnist_train.sh: 4×128, filter 5, patch 4.
        "paper": dict(channels=1, patch=4, hidden=(128, 128, 128, 128), kernel_size=5),
    }
    PUBLISHED = {
        "params": Published(23_838_720, "parameters", "preset 'paper' (Moving MNIST: 4 layers × 128 channels, "
                            "5×5 kernels, patch 4, no layer norm)", "official code "
                            "github.com/thuml/predrnn-pytorch (mnist_script/predrnn_mnist_train.sh), counted by "
                            "instantiating it"),
    }

    def __init__(self, *, channels: int = 1, patch: int = 4, hidden: tuple[int, ...] = (32, 32),
                 kernel_size: int = 3, observe: int = 10, predict: int = 10, output: str = "sigmoid"):
        core = PredRNNCore(channels * patch * patch, hidden, kernel_size)
        super().__init__(core, channels=channels, patch=patch, observe=observe, predict=predict,
                         head_bias=False, output=output)


__all__ = ["SpatioTemporalLSTMCell", "PredRNNCore", "PredRNN"]
