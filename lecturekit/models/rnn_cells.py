"""Vanilla RNN, GRU and LSTM cells written out for teaching, and the gradient-flow probe.

Sources
    O. Lanz, lecture slides "From Action Recognition to Action Anticipation" (vision.inf.unibz.it),
    part "Improving Gradient Flow": the vanilla RNN h_t = tanh(A h_{t-1} + B x_t), the GRU with
    update gate u, and the argument ∂h_t/∂h_{t-k} ≈ A^k = Q Λ^k Qᵀ.
    K. Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder", EMNLP 2014
    (the GRU). https://arxiv.org/abs/1406.1078
    S. Hochreiter, J. Schmidhuber, "Long Short-Term Memory", Neural Computation 1997, with the
    forget gate of F. Gers et al. 2000 (the LSTM of ``torch.nn.LSTM``).
    Y. Bengio, P. Simard, P. Frasconi, "Learning long-term dependencies with gradient descent
    is difficult", IEEE TNN 1994; R. Pascanu, T. Mikolov, Y. Bengio, "On the difficulty of
    training recurrent neural networks", ICML 2013. https://arxiv.org/abs/1211.5063

Equations (slide notation; ``sigm`` = σ)::

    RNN   h_t = tanh(A h_{t-1} + B x_t + b)
    GRU   r_t = σ(A_r h_{t-1} + B_r x_t + b_r)         u_t = σ(A_u h_{t-1} + B_u x_t + b_u)
          s_t = tanh(A_s (r_t ⊙ h_{t-1}) + B_s x_t + b_s)
          h_t = u_t ⊙ h_{t-1} + (1 − u_t) ⊙ s_t        (u ≈ 1: h is copied, "like a skip")
    LSTM  [i, f, g, o] = [σ, σ, tanh, σ](A h_{t-1} + B x_t + b)    (torch's gate order)
          c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                 h_t = o_t ⊙ tanh(c_t)

The GRU here is the slide's (Cho et al. 2014): reset before A_s, u gates the old state. It is
not ``torch.nn.GRU``, which applies the reset after the recurrent product (see
``lecturekit.layers.conv_rnn`` for both conventions side by side).

Gradient flow. By the chain rule ∂h_T/∂h_{T-k} = Π_{j} ∂h_j/∂h_{j-1}. For the vanilla RNN each
factor is diag(1 − h_j²) A; where tanh is near its linear regime (h ≈ 0) the product is A^k,
and for a symmetric A = Q Λ Qᵀ its spectral norm is exactly ρ(A)^k: the gradient vanishes
geometrically for ρ < 1 and explodes for ρ > 1. tanh' ≤ 1 makes ρ(A)^k an upper bound for any
input when A is symmetric. Gated cells add an additive path: for the GRU
∂h_t/∂h_{t-1} = diag(u_t) + (terms through the gates and s_t), so u ≈ 1 keeps the norm near 1
whatever A is; for the LSTM the same holds for the cell, ∂c_t/∂c_{t-1} ⊇ diag(f_t).

:func:`gradient_flow` measures ||∂s_T/∂s_{T-k}||₂ for k = 0..T-1 where s is the whole
recurrent state (h for RNN and GRU, [h, c] for the LSTM), by exact autograd Jacobians.

Shapes: x (B, T, D_in) feature sequences; states (B, D).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..layers.shapes import check_sequence


class _Cell(nn.Module):
    """Common parts: A (hidden → gates) and B (input → gates) as plain Linear layers."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.A = nn.Linear(hidden_size, self.gates * hidden_size, bias=False)   # A_r, A_u, A_s, ...
        self.B = nn.Linear(input_size, self.gates * hidden_size, bias=True)     # B_* and the biases b_*

    def init_state(self, x: Tensor):
        return x.new_zeros(x.shape[0], self.hidden_size)

    def forward(self, x: Tensor, state=None):
        """One step: x (B, D_in), state -> new state (a tensor, or (h, c) for the LSTM)."""
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: expected x (B, D_in={self.input_size}), got {tuple(x.shape)}")
        return self.step(x, state if state is not None else self.init_state(x))

    @staticmethod
    def hidden(state) -> Tensor:
        return state[0] if isinstance(state, tuple) else state


class RNNCell(_Cell):
    """Vanilla RNN step h_t = tanh(A h_{t-1} + B x_t + b). ``A.weight`` is the recurrent matrix."""

    gates = 1

    def step(self, x: Tensor, h: Tensor) -> Tensor:
        return torch.tanh(self.A(h) + self.B(x))


class GRUCell(_Cell):
    """The slide's GRU (Cho et al. 2014): reset before A_s, update gate u gates the old state."""

    gates = 3

    def step(self, x: Tensor, h: Tensor) -> Tensor:
        A_r, A_u, A_s = self.A.weight.chunk(3, dim=0)
        bx_r, bx_u, bx_s = self.B(x).chunk(3, dim=1)                 # B_* x_t + b_*
        r = torch.sigmoid(h @ A_r.T + bx_r)
        u = torch.sigmoid(h @ A_u.T + bx_u)
        s = torch.tanh((r * h) @ A_s.T + bx_s)
        return u * h + (1 - u) * s


class LSTMCell(_Cell):
    """LSTM step in torch's gate order (i, f, g, o); state is (h, c)."""

    gates = 4

    def init_state(self, x: Tensor):
        z = x.new_zeros(x.shape[0], self.hidden_size)
        return z, z.clone()

    def step(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, c = state
        i, f, g, o = (self.A(h) + self.B(x)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


def unroll(cell: _Cell, x: Tensor, state=None):
    """Run a cell over x (B, T, D_in); return hidden states (B, T, D) and the final state."""
    check_sequence(x, dim=cell.input_size, name=f"{type(cell).__name__} input")
    hs = []
    for t in range(x.shape[1]):
        state = cell(x[:, t], state)
        hs.append(cell.hidden(state))
    return torch.stack(hs, dim=1), state


def _flat(state) -> Tensor:
    return torch.cat(state, dim=1) if isinstance(state, tuple) else state


def _unflat(v: Tensor, like):
    return tuple(v.split([s.shape[1] for s in like], dim=1)) if isinstance(like, tuple) else v


def gradient_flow(cell: _Cell, x: Tensor, state=None) -> Tensor:
    """||∂s_T/∂s_{T-k}||₂ (spectral norm) for k = 0..T; s is the full recurrent state.

    ``x`` is one sequence (1, T, D_in) (a single sample: the Jacobian is per sample). Index k of
    the result is the norm after k steps of backpropagation; k = 0 is ||I|| = 1. Computed
    exactly: the D rows of each Jacobian come from one backward pass over D copies of the
    sequence (copy j back-propagates component j of s_T).

    Returns: (T + 1,) float64 tensor.
    """
    check_sequence(x, dim=cell.input_size, name="gradient_flow x")
    if x.shape[0] != 1:
        raise ValueError(f"gradient_flow: expected one sequence (1, T, D_in), got batch {x.shape[0]}")
    T = x.shape[1]
    s = state if state is not None else cell.init_state(x)
    D = _flat(s).shape[1]
    xs = x.expand(D, -1, -1)                                         # D copies, one per output row
    s_flat = _flat(s).detach().expand(D, -1).clone()
    leaves = []
    with torch.enable_grad():
        for t in range(T):
            s_flat = s_flat.detach().requires_grad_(True) if t == 0 else s_flat
            s_flat.retain_grad()
            leaves.append(s_flat)                                    # s_{t}, input of step t+1
            s_new = cell.step(xs[:, t], _unflat(s_flat, s))
            s_flat = _flat(s_new)
        # sum_j s_T[j, j] selects row j of the Jacobian in copy j.
        s_flat.diagonal().sum().backward()
    norms = []
    for k in range(T + 1):
        J = leaves[T - k].grad if k > 0 else torch.eye(D, dtype=x.dtype, device=x.device)   # (D, D) = ∂s_T/∂s_{T-k}
        norms.append(torch.linalg.matrix_norm(J.double(), ord=2))
    return torch.stack(norms)


def rnn_gradient_norms(A: Tensor, B: Tensor, b: Tensor, x: Tensor) -> Tensor:
    """||∂h_T/∂h_{T-k}||₂, k = 0..T, of the vanilla RNN h_t = tanh(A h_{t-1} + B x_t + b), h_0 = 0.

    The product of Jacobians ∂h_T/∂h_{T-k} = Π_j diag(1 − h_j²) A whose norm vanishes or
    explodes with k (Y. Bengio, P. Simard, P. Frasconi, IEEE TNN 1994; R. Pascanu, T. Mikolov,
    Y. Bengio, "On the difficulty of training recurrent neural networks", ICML 2013,
    https://arxiv.org/abs/1211.5063), for given weights: :func:`gradient_flow` of an
    :class:`RNNCell` holding A, B and b, in float64. Exercise 07.2 checks students against it.

    Args:
        A: recurrent matrix (D, D).
        B: input matrix (D, D_in).
        b: bias (D,).
        x: one input sequence (T, D_in).

    Returns: (T + 1,) float64; entry 0 is ||I||₂ = 1.
    """
    cell = RNNCell(B.shape[1], A.shape[0]).to(torch.float64)
    with torch.no_grad():
        cell.A.weight.copy_(A)
        cell.B.weight.copy_(B)
        cell.B.bias.copy_(b)
    return gradient_flow(cell, x.to(torch.float64)[None])


def recurrent_spectrum(cell: RNNCell) -> Tensor:
    """Eigenvalues of the vanilla RNN's recurrent matrix A (complex, sorted by modulus, largest first)."""
    ev = torch.linalg.eigvals(cell.A.weight.detach().double())
    return ev[ev.abs().argsort(descending=True)]


def symmetric_matrix(size: int, spectral_radius: float, *, seed: int = 0) -> Tensor:
    """A random symmetric A = Q Λ Qᵀ whose largest |eigenvalue| equals ``spectral_radius``."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(size, size, generator=g, dtype=torch.float64))
    lam = torch.rand(size, generator=g, dtype=torch.float64) * 2 - 1
    lam = lam / lam.abs().max() * spectral_radius
    return (q * lam) @ q.T


__all__ = ["RNNCell", "GRUCell", "LSTMCell", "unroll", "gradient_flow", "rnn_gradient_norms", "recurrent_spectrum", "symmetric_matrix"]
