"""Convolutional recurrent cells: ConvLSTM (with optional per-channel peepholes), ConvGRU and the
ungated ConvRNN baseline.

Papers
    X. Shi, Z. Chen, H. Wang, D.-Y. Yeung, W.-K. Wong, W.-C. Woo, "Convolutional LSTM Network:
    A Machine Learning Approach for Precipitation Nowcasting", NeurIPS 2015.
    https://arxiv.org/abs/1506.04214
    N. Ballas, L. Yao, C. Pal, A. Courville, "Delving Deeper into Convolutional Networks for
    Learning Video Representations", ICLR 2016. https://arxiv.org/abs/1511.06432
    (the ConvGRU of the GRU-RCN; X. Shi et al., NeurIPS 2017 (TrajGRU) use the torch form).

An FC-LSTM in which every matrix product becomes a convolution: the input X_t and the states
H_t, C_t are (C, H, W) maps, so the recurrence keeps the spatial layout. ConvLSTM equations
(Shi et al., Eq. 3, with peepholes ``⊙`` on the cell)::

    i_t = σ(W_xi * X_t + W_hi * H_{t-1} + w_ci ⊙ C_{t-1} + b_i)
    f_t = σ(W_xf * X_t + W_hf * H_{t-1} + w_cf ⊙ C_{t-1} + b_f)
    C_t = f_t ⊙ C_{t-1} + i_t ⊙ tanh(W_xc * X_t + W_hc * H_{t-1} + b_c)
    o_t = σ(W_xo * X_t + W_ho * H_{t-1} + w_co ⊙ C_t + b_o)          (the NEW cell C_t)
    H_t = o_t ⊙ tanh(C_t)

Conventions (named because sources disagree)
    - Gate order of the stacked convolution output is **(i, f, g, o)**, the order of
      ``torch.nn.LSTM``; g is the candidate written tanh(...) above. ndrplz/ConvLSTM_pytorch
      and NVlabs' Conv-TT-LSTM split as (i, f, o, g) instead.
    - One bias vector of 4·C_h entries (``bias``); ``nn.LSTM`` has two (``bias_ih + bias_hh``),
      which sum to this one. With one bias the parameter counts of Shi et al.'s Table 1 come
      out exactly (see ``lecturekit.models.convlstm``).
    - Peepholes: ``peephole="channel"`` gives one scalar per channel per gate (3·C_h weights,
      broadcast over H×W) — the reading of the paper's Hadamard products that reproduces its
      parameter counts. ``"none"`` drops them. Full H×W maps (as in Hzzone's port, which also
      forgets to register them as parameters) are not offered: they tie the cell to one size.
    - ``in_channels=0`` builds a cell with no input-to-state convolution: the first layer of
      Shi et al.'s forecaster receives no input.
    - Padding is ``k // 2`` on both sides; only odd kernels keep H×W, so even ones are refused.

ConvGRU, two conventions that are NOT the same function (``convention=``)::

    "torch"  (torch.nn.GRU, TrajGRU):  r = σ(W_xr*X + W_hr*H + b_r),  z = σ(W_xz*X + W_hz*H + b_z)
             n = tanh(W_xn*X + b_xn + r ⊙ (W_hn*H + b_hn));    H_t = (1 − z) ⊙ n + z ⊙ H_{t-1}
    "ballas" (the GRU-RCN equations of Ballas et al.; Cho et al. 2014 up to z ↔ 1 − z):
             h̃ = tanh(W_xn*X + b_xn + W_hn*(r ⊙ H) + b_hn);   H_t = (1 − z) ⊙ H_{t-1} + z ⊙ h̃

The reset is applied after the recurrent convolution in "torch" and before it in "ballas",
and z gates the old state in one and the candidate in the other. Both conventions own the
same parameters (so one set of weights can be run both ways and the difference shown); the
gate order of the stacked output is torch's (r, z, n). The lecture slide's GRU (u gates the
old state, reset before A_s) is Cho's original form, i.e. "ballas" with z renamed 1 − u.

Shapes (letters of ``lecturekit.layers.shapes``)
    one step      x (B, C_in, H, W), state -> h (B, C_h, H, W), new state
    a sequence    x (B, T, C_in, H, W) -> (B, T, C_h, H, W)    (time-major only inside this
                  loop; public models take (B, C, T, H, W) and slice ``x[:, :, t]``)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .shapes import check_shape


def _odd(kernel_size: int, what: str) -> int:
    if kernel_size % 2 != 1:
        raise ValueError(f"{what}: expected an odd kernel size (padding k // 2 keeps H×W), got {kernel_size}")
    return kernel_size


def convlstm_gates(x: Tensor | None, h: Tensor, w_x: Tensor | None, w_h: Tensor, bias: Tensor) -> Tensor:
    """Pre-activations W_x * X_t + W_h * H_{t-1} + b of the four gates, stacked (i, f, g, o).

    Convolutions with padding k // 2 (odd kernels keep H×W); ``w_x=None`` (and ``x=None``) for a
    cell without input. Shape: x (B, C_in, H, W), h (B, C_h, H, W), w_x (4·C_h, C_in, k, k),
    w_h (4·C_h, C_h, k', k'), bias (4·C_h,) -> (B, 4·C_h, H, W).
    """
    a = F.conv2d(h, w_h, padding=w_h.shape[-1] // 2) + bias.view(1, -1, 1, 1).to(h.dtype)
    if w_x is not None:
        a = a + F.conv2d(x, w_x, padding=w_x.shape[-1] // 2)
    return a


def convlstm_step(x: Tensor | None, h: Tensor, c: Tensor, w_x: Tensor | None, w_h: Tensor, bias: Tensor,
                  peep: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One ConvLSTM step with explicit weights (X. Shi et al., "Convolutional LSTM Network: A Machine
    Learning Approach for Precipitation Nowcasting", NeurIPS 2015, https://arxiv.org/abs/1506.04214,
    Eq. 3; the equations are in this module's docstring)::

        [a_i, a_f, a_g, a_o] = W_x * X_t + W_h * H_{t-1} + b            (:func:`convlstm_gates`)
        C_t = σ(a_f + w_cf ⊙ C_{t-1}) ⊙ C_{t-1} + σ(a_i + w_ci ⊙ C_{t-1}) ⊙ tanh(a_g)
        H_t = σ(a_o + w_co ⊙ C_t) ⊙ tanh(C_t)

    :class:`ConvLSTMCell` runs it with its own weights; exercise 07.1 checks students against it.

    Args:
        x: X_t (B, C_in, H, W), or None with ``w_x=None`` (a cell without input).
        h, c: H_{t-1}, C_{t-1} (B, C_h, H, W).
        w_x: (4·C_h, C_in, k, k) and w_h: (4·C_h, C_h, k', k'), odd kernels, stacked in the gate
            order (i, f, g, o) of ``torch.nn.LSTM``.
        bias: (4·C_h,), one bias per gate channel.
        peep: (3, C_h, 1, 1) = (w_ci, w_cf, w_co), one weight per channel, or None (no peepholes).

    Returns: (H_t, C_t), each (B, C_h, H, W).
    """
    a_i, a_f, a_g, a_o = convlstm_gates(x, h, w_x, w_h, bias).chunk(4, dim=1)   # 4 × (B, C_h, H, W)
    if peep is not None:
        a_i = a_i + peep[0] * c                                      # w_ci ⊙ C_{t-1}
        a_f = a_f + peep[1] * c                                      # w_cf ⊙ C_{t-1}
    c = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_g)   # Eq. (3), cell update
    if peep is not None:
        a_o = a_o + peep[2] * c                                      # w_co ⊙ C_t (new cell)
    h = torch.sigmoid(a_o) * torch.tanh(c)                           # (B, C_h, H, W)
    return h, c


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step (Shi et al. 2015, Eq. 3), gate order (i, f, g, o).

    Args:
        in_channels: channels of X_t; 0 means the cell has no input (Shi's first forecaster).
        hidden_channels: C_h, channels of H_t and C_t.
        kernel_size: input-to-state kernel (odd).
        state_kernel_size: state-to-state kernel (odd); defaults to ``kernel_size``.
        peephole: ``"channel"`` (one weight per channel and gate) or ``"none"``.
        forget_bias: added to the initial bias of f (1.0, R. Jozefowicz et al., ICML 2015, and
            the +1 of PredRNN / E3D-LSTM); an initialisation only, the bias stays learnable.

    Shape:
        x (B, C_in, H, W) or None when ``in_channels == 0``; state ``(h, c)`` each
        (B, C_h, H, W) or None (zeros) -> ``h`` (B, C_h, H, W) and ``(h, c)``.

    Example:
        >>> cell = ConvLSTMCell(3, 8, kernel_size=3)
        >>> h, (h, c) = cell(torch.zeros(2, 3, 7, 9))
        >>> tuple(h.shape)
        (2, 8, 7, 9)
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3, *,
                 state_kernel_size: int | None = None, peephole: str = "none", forget_bias: float = 1.0):
        super().__init__()
        if peephole not in ("none", "channel"):
            raise ValueError(f"peephole: expected 'none' or 'channel', got {peephole!r}")
        k_x = _odd(kernel_size, "ConvLSTMCell kernel_size")
        k_h = _odd(state_kernel_size if state_kernel_size is not None else kernel_size,
                   "ConvLSTMCell state_kernel_size")
        self.in_channels, self.hidden_channels, self.peephole = in_channels, hidden_channels, peephole
        # W_x* and W_h* of all four gates stacked along the output channels: (i, f, g, o).
        self.conv_x = nn.Conv2d(in_channels, 4 * hidden_channels, k_x, padding=k_x // 2, bias=False) \
            if in_channels > 0 else None
        self.conv_h = nn.Conv2d(hidden_channels, 4 * hidden_channels, k_h, padding=k_h // 2, bias=False)
        bound = 1.0 / math.sqrt(hidden_channels)
        bias = torch.empty(4 * hidden_channels).uniform_(-bound, bound)
        bias[hidden_channels:2 * hidden_channels] += forget_bias          # the f block of (i, f, g, o)
        self.bias = nn.Parameter(bias)
        if peephole == "channel":
            # w_ci, w_cf, w_co: one scalar per channel, broadcast over H×W.
            self.peep = nn.Parameter(torch.empty(3, hidden_channels, 1, 1).uniform_(-bound, bound))
        else:
            self.register_parameter("peep", None)

    def init_state(self, x_or_shape, height: int | None = None, width: int | None = None):
        """Zero (h, c) for a batch: pass a tensor (B, *, H, W) or (batch, H, W) integers."""
        if isinstance(x_or_shape, Tensor):
            b, h, w = x_or_shape.shape[0], x_or_shape.shape[-2], x_or_shape.shape[-1]
            ref = x_or_shape
        else:
            b, h, w, ref = x_or_shape, height, width, self.conv_h.weight
        z = ref.new_zeros(b, self.hidden_channels, h, w)
        return z, z.clone()

    def _w_x(self) -> Tensor | None:
        return self.conv_x.weight if self.conv_x is not None else None

    def gates(self, x: Tensor | None, h: Tensor) -> Tensor:
        """Pre-activations W_x * X + W_h * H + b of the four gates: (B, 4·C_h, H, W)."""
        return convlstm_gates(x, h, self._w_x(), self.conv_h.weight, self.bias)

    def forward(self, x: Tensor | None, state: tuple[Tensor, Tensor] | None = None):
        if self.conv_x is None:
            if x is not None:
                raise ValueError("ConvLSTMCell built with in_channels=0 takes x=None")
            if state is None:
                raise ValueError("an input-free ConvLSTMCell needs a state (it has nothing to size zeros by)")
        else:
            check_shape(x, "B C H W", C=self.in_channels, name="ConvLSTMCell x")
        h, c = state if state is not None else self.init_state(x)
        h, c = convlstm_step(x, h, c, self._w_x(), self.conv_h.weight, self.bias, self.peep)
        return h, (h, c)


class ConvGRUCell(nn.Module):
    """One ConvGRU step in the ``"torch"`` or the ``"ballas"`` convention (see module docstring).

    Args:
        in_channels: channels of X_t.
        hidden_channels: C_h.
        kernel_size: kernel of every convolution (odd).
        convention: ``"torch"`` (reset after the recurrent conv, z gates the old state) or
            ``"ballas"`` (reset before it, z gates the candidate).

    Shape:
        x (B, C_in, H, W), h (B, C_h, H, W) or None -> h (B, C_h, H, W) and the same h as state.
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3, *,
                 convention: str = "torch"):
        super().__init__()
        if convention not in ("torch", "ballas"):
            raise ValueError(f"convention: expected 'torch' or 'ballas', got {convention!r}")
        k = _odd(kernel_size, "ConvGRUCell kernel_size")
        self.in_channels, self.hidden_channels, self.convention = in_channels, hidden_channels, convention
        # (r, z, n) stacked, as in nn.GRU's weight_ih / weight_hh.
        self.conv_x = nn.Conv2d(in_channels, 3 * hidden_channels, k, padding=k // 2, bias=True)
        self.conv_h = nn.Conv2d(hidden_channels, 3 * hidden_channels, k, padding=k // 2, bias=True)

    def init_state(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], self.hidden_channels, x.shape[-2], x.shape[-1])

    def forward(self, x: Tensor, state: Tensor | None = None):
        check_shape(x, "B C H W", C=self.in_channels, name="ConvGRUCell x")
        h = state if state is not None else self.init_state(x)
        x_r, x_z, x_n = self.conv_x(x).chunk(3, dim=1)              # 3 × (B, C_h, H, W)
        w_h, b_h = self.conv_h.weight, self.conv_h.bias
        C = self.hidden_channels
        pad = self.conv_h.padding
        h_rz = F.conv2d(h, w_h[: 2 * C], b_h[: 2 * C], padding=pad)  # U_r * H, U_z * H
        h_r, h_z = h_rz.chunk(2, dim=1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        if self.convention == "torch":
            n = torch.tanh(x_n + r * F.conv2d(h, w_h[2 * C:], b_h[2 * C:], padding=pad))
            h = (1 - z) * n + z * h
        else:                                                        # Ballas et al.: reset before U
            n = torch.tanh(x_n + F.conv2d(r * h, w_h[2 * C:], b_h[2 * C:], padding=pad))
            h = (1 - z) * h + z * n
        return h, h


class ConvRNNCell(nn.Module):
    """One vanilla convolutional RNN step: H_t = tanh(W_x * X_t + W_h * H_{t-1} + b).

    The plain recurrence of the lecture slide (h_t = tanh(A h_{t-1} + B x_t)) with both matrix
    products turned into convolutions, and no gate: the baseline that ConvLSTM and ConvGRU are
    compared with (notebook 07). ``conv_h`` plays the role of A.

    Args:
        in_channels: channels of X_t.
        hidden_channels: C_h.
        kernel_size: kernel of both convolutions (odd).

    Shape:
        x (B, C_in, H, W), h (B, C_h, H, W) or None -> h (B, C_h, H, W) and the same h as state.

    Example:
        >>> cell = ConvRNNCell(3, 8, kernel_size=3)
        >>> h, state = cell(torch.zeros(2, 3, 7, 9))
        >>> tuple(h.shape), state is h
        ((2, 8, 7, 9), True)
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3):
        super().__init__()
        k = _odd(kernel_size, "ConvRNNCell kernel_size")
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.conv_x = nn.Conv2d(in_channels, hidden_channels, k, padding=k // 2, bias=True)    # W_x, b
        self.conv_h = nn.Conv2d(hidden_channels, hidden_channels, k, padding=k // 2, bias=False)  # W_h

    def init_state(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], self.hidden_channels, x.shape[-2], x.shape[-1])

    def forward(self, x: Tensor, state: Tensor | None = None):
        check_shape(x, "B C H W", C=self.in_channels, name="ConvRNNCell x")
        h = state if state is not None else self.init_state(x)
        h = torch.tanh(self.conv_x(x) + self.conv_h(h))              # (B, C_h, H, W)
        return h, h


def run_cell(cell: nn.Module, x: Tensor, state=None):
    """Unroll a cell over a time-major sequence x (B, T, C, H, W) -> (B, T, C_h, H, W), state.

    The one place where (B, T, C, H, W) appears: recurrent cells loop over time.
    """
    check_shape(x, "B T C H W", name="run_cell x")
    outs = []
    for t in range(x.shape[1]):
        h, state = cell(x[:, t], state)
        outs.append(h)
    return torch.stack(outs, dim=1), state                           # (B, T, C_h, H, W)


__all__ = ["ConvRNNCell", "ConvLSTMCell", "ConvGRUCell", "convlstm_gates", "convlstm_step", "run_cell"]
