"""Conv-TT-LSTM: a higher-order ConvLSTM whose aggregation of past states is a convolutional
tensor train.

Paper: J. Su, W. Byeon, J. Kossaifi, F. Huang, J. Kautz, A. Anandkumar, "Convolutional
Tensor-Train LSTM for Spatio-temporal Learning", NeurIPS 2020. https://arxiv.org/abs/2002.09131
Official code: NVlabs/conv-tt-lstm (``code/convlstmcell.py``, ``code/convlstmnet.py``).

A first-order ConvLSTM gates on H_{t-1}. An order-S recurrence gates on an aggregate
Φ(H_{t-1}, ..., H_{t-S}) of the last S hidden states (the slide's "higher-order recurrent
convolutional network"; each past state is used in S predictions, so its gradient collects S
contributions). A full higher-order convolution would need a kernel per lag (and products of
lags); the convolutional tensor-train decomposition (CTTD) factorises it into N cores of rank
R applied as a chain of convolutions, so older states pass through more convolutions and get
a larger receptive field. With steps S, order N ≤ S, rank R and lags L = S − N + 1, what the
official cell computes (the paper indexes the cores backwards, by distance from t)::

    U_l = Conv3d_l(H_{t-S+l-1}, ..., H_{t-S+l+L-2})        C_h → R, kernel L×k×k, time not padded
    T_1 = U_1,   T_l = U_l + Conv2d_{l-1}(T_{l-1})          R → R, k×k        (l = 2..N)
    Φ = T_N
    [i, f, g, o] = W_x * X_t + W_Φ * Φ + b                  (a ConvLSTM with H_{t-1} replaced by Φ)
    C_t = σ(f) ⊙ C_{t-1} + σ(i) ⊙ tanh(g),   H_t = σ(o) ⊙ tanh(C_t)

There is no separate W_h * H_{t-1} path: H_{t-1} enters only through the last core. The cell
memory C stays first order. The state is a FIFO of exactly the last S hidden states, oldest
first, initialised with zeros; after each step the oldest is dropped and H_t appended.

Departures from the official code
    - Gate order (i, f, g, o) (torch's, as in ``layers.conv_rnn``); the code splits (i, f, o, g).
      A permutation of output channels: no count change.
    - The gate conv on [X_t, Φ] is written as two bias-free convs W_x, W_Φ plus one bias (the
      same parameters as the code's single conv on the concatenation, so a ConvLSTM's weights
      copy in directly).
    - The FIFO is a tuple of S tensors (functional state, oldest first) instead of a ring buffer
      with a pointer kept inside the module (the code's ``first_step`` flag must be set on every
      new batch or state leaks; ``eval_paper/`` advances the pointer modulo the order, which
      mis-indexes when S > N). Same sequence of reads.
    - The cores' Conv3d uses the (B, C, T, H, W) layout with kernel (L, k, k); the code stacks time
      last with kernel (k, k, L). Same parameters.
    - Initialisation: PyTorch defaults (the ``code/`` variant; ``eval_paper/`` uses Xavier).

Network (``ConvTTLSTMNet``, the official ``ConvLSTMNet``): blocks of layers; the output of block
b ≥ skip is concatenated with that of block b − skip before going on (into the next block or the
1×1 output conv). Paper preset: 12 layers in blocks (3, 3, 3, 3) of (32, 48, 48, 32) channels,
skip 2, kernel 5, order 3, steps 3, rank 8, frames 64×64×1 without patches: 2,687,281 parameters;
the same network with ConvLSTM cells (``cell="convlstm"``): 3,973,201 (``ConvTTLSTM.PUBLISHED``;
the official README rounds them to "2.69M" and "3.97M"). Training (L1 + L2 loss, Adam, gradient
clip 3, scheduled sampling) is not part of the model.

Shapes: video (B, C, T, H, W) -> frames (B, C, predict, H, W); cells work on (B, C, H, W).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..layers.conv_rnn import ConvLSTMCell
from .published import Published
from .drivers import VideoPredictor


class ConvTTLSTMCell(nn.Module):
    """One Conv-TT-LSTM step with a FIFO of the last ``steps`` hidden states.

    Args:
        in_channels, hidden: channels of X_t and of H_t, C_t.
        order: N, the number of tensor-train cores.
        steps: S, the number of past hidden states aggregated (N ≤ S).
        rank: R, channels between the cores.
        kernel_size: k of every convolution (odd).

    Shape:
        x (B, C_in, H, W), state ``(fifo, c)`` with ``fifo`` a tuple of S tensors (B, C_h, H, W),
        oldest first, and c (B, C_h, H, W) -> h (B, C_h, H, W), new state.
    """

    def __init__(self, in_channels: int, hidden: int, *, order: int = 3, steps: int = 3, rank: int = 8,
                 kernel_size: int = 5):
        super().__init__()
        if not 1 <= order <= steps:
            raise ValueError(f"need 1 <= order <= steps, got order={order}, steps={steps}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd to keep H×W, got {kernel_size}")
        k, p = kernel_size, kernel_size // 2
        self.in_channels, self.hidden, self.order, self.steps, self.rank = in_channels, hidden, order, steps, rank
        self.lags = steps - order + 1
        self.cores = nn.ModuleList(nn.Conv3d(hidden, rank, (self.lags, k, k), padding=(0, p, p))
                                   for _ in range(order))                # U_l
        self.chain = nn.ModuleList(nn.Conv2d(rank, rank, k, padding=p) for _ in range(order - 1))
        self.conv_x = nn.Conv2d(in_channels, 4 * hidden, k, padding=p, bias=False)
        self.conv_phi = nn.Conv2d(rank, 4 * hidden, k, padding=p, bias=False)
        bound = 1.0 / math.sqrt((in_channels + rank) * k * k)
        self.bias = nn.Parameter(torch.empty(4 * hidden).uniform_(-bound, bound))

    def init_state(self, x: Tensor):
        z = x.new_zeros(x.shape[0], self.hidden, x.shape[-2], x.shape[-1])
        return tuple(z.clone() for _ in range(self.steps)), z.clone()

    def aggregate(self, fifo: tuple[Tensor, ...]) -> Tensor:
        """Φ(H_{t-S}, ..., H_{t-1}) = T_N, the tensor-train chain: (B, R, H, W)."""
        phi = None
        for l, core in enumerate(self.cores):
            window = torch.stack(fifo[l: l + self.lags], dim=2)          # (B, C_h, L, H, W)
            u = core(window).squeeze(2)                                  # (B, R, H, W)
            phi = u if l == 0 else u + self.chain[l - 1](phi)
        return phi

    def forward(self, x: Tensor, state=None):
        fifo, c = state if state is not None else self.init_state(x)
        phi = self.aggregate(fifo)
        # summed in the order of ConvLSTMCell.gates, so the S = N = 1 reduction is bit-exact
        a = self.conv_phi(phi) + self.bias.view(1, -1, 1, 1) + self.conv_x(x)
        a_i, a_f, a_g, a_o = a.chunk(4, dim=1)
        c = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_g)
        h = torch.sigmoid(a_o) * torch.tanh(c)                           # (B, C_h, H, W)
        return h, (fifo[1:] + (h,), c)                                   # FIFO: drop H_{t-S}, push H_t


class ConvTTLSTMNet(nn.Module):
    """The official block network of Conv-TT-LSTM (or ConvLSTM) cells with skip concatenations.

    Core protocol: step(x (B, in_channels, H, W), state) -> features (B, out_channels, H, W).
    """

    def __init__(self, in_channels: int, layers_per_block=(1, 1), hidden=(16, 16), *, skip: int | None = None,
                 cell: str = "convttlstm", kernel_size: int = 3, order: int = 3, steps: int = 3, rank: int = 4):
        super().__init__()
        if len(layers_per_block) != len(hidden):
            raise ValueError(f"layers_per_block {layers_per_block} and hidden {hidden} need the same length")
        if cell not in ("convttlstm", "convlstm"):
            raise ValueError(f"cell: expected 'convttlstm' or 'convlstm', got {cell!r}")
        self.in_channels, self.layers_per_block, self.hidden = in_channels, tuple(layers_per_block), tuple(hidden)
        self.skip = len(hidden) + 1 if skip is None else skip
        self.blocks = nn.ModuleList()
        cin = in_channels
        for b, (n, ch) in enumerate(zip(layers_per_block, hidden)):
            layers = nn.ModuleList()
            for _ in range(n):
                layers.append(ConvTTLSTMCell(cin, ch, order=order, steps=steps, rank=rank, kernel_size=kernel_size)
                              if cell == "convttlstm" else ConvLSTMCell(cin, ch, kernel_size))
                cin = ch
            self.blocks.append(layers)
            if b >= self.skip:
                cin += hidden[b - self.skip]                             # concat with block b - skip
        self.out_channels = cin

    def init_state(self, x: Tensor):
        return [[None] * len(layers) for layers in self.blocks]

    def step(self, x: Tensor, state):
        state = [list(s) for s in state]
        outs = []
        for b, layers in enumerate(self.blocks):
            for l, cell in enumerate(layers):
                x, state[b][l] = cell(x, state[b][l])
            outs.append(x)
            if b >= self.skip:
                x = torch.cat([x, outs[b - self.skip]], dim=1)           # skip connection over blocks
        return x, state


class ConvTTLSTM(VideoPredictor):
    """Conv-TT-LSTM frame predictor (``VideoPredictor`` protocol).

    Shape: video (B, C, T, H, W) -> frames (B, C, predict, H, W).
    """

    PRESETS = {
        "small": dict(channels=1, patch=4, layers_per_block=(1, 1), hidden=(16, 16), kernel_size=3,
                      order=3, steps=3, rank=4),
        # NVlabs/conv-tt-lstm code/model_train.py: Moving-MNIST-2, 64×64×1 frames, no patches.
        "paper": dict(channels=1, patch=1, layers_per_block=(3, 3, 3, 3), hidden=(32, 48, 48, 32), skip=2,
                      kernel_size=5, order=3, steps=3, rank=8),
    }
    PUBLISHED = {
        "params": Published(2_687_281, "parameters", "preset 'paper' (Moving MNIST, 12 layers in blocks "
                            "(3, 3, 3, 3) of (32, 48, 48, 32) channels, kernel 5, order 3, steps 3, rank 8)",
                            "official code github.com/NVlabs/conv-tt-lstm (code/model_train.py), counted by "
                            "instantiating it; its README gives 2.69M"),
        "params_convlstm": Published(3_973_201, "parameters", "preset 'paper' with cell='convlstm' (the same "
                                     "network with ConvLSTM cells)", "official code "
                                     "github.com/NVlabs/conv-tt-lstm, counted by instantiating it; its README "
                                     "gives 3.97M"),
    }

    def __init__(self, *, channels: int = 1, patch: int = 4, layers_per_block=(1, 1), hidden=(16, 16),
                 skip: int | None = None, cell: str = "convttlstm", kernel_size: int = 3, order: int = 3,
                 steps: int = 3, rank: int = 4, observe: int = 10, predict: int = 10, output: str = "sigmoid"):
        core = ConvTTLSTMNet(channels * patch * patch, layers_per_block, hidden, skip=skip, cell=cell,
                             kernel_size=kernel_size, order=order, steps=steps, rank=rank)
        super().__init__(core, channels=channels, patch=patch, observe=observe, predict=predict,
                         head_bias=True, output=output)


__all__ = ["ConvTTLSTMCell", "ConvTTLSTMNet", "ConvTTLSTM"]
