"""Naive references for the checks of notebook 07 (tests only; nothing here imports lecturekit).

* one ConvLSTM step: every gate computed on its own, with its own slice of the weights, and the
  convolution written as an explicit sum over kernel offsets on a zero-padded map;
* the gradient norms of a vanilla RNN: the Jacobian ∂h_T/∂h_{T-k} by central finite differences
  in float64 (no chain rule, no autograd), then its largest singular value.
"""

from __future__ import annotations

import torch


def _conv_same(x, w):
    """x (B, C_in, H, W), w (C_out, C_in, k, k) -> (B, C_out, H, W): zero padding k // 2, loops over offsets."""
    b, cin, hh, ww = x.shape
    k = w.shape[-1]
    p = k // 2
    xp = torch.zeros(b, cin, hh + 2 * p, ww + 2 * p, dtype=x.dtype)
    xp[:, :, p:p + hh, p:p + ww] = x
    out = torch.zeros(b, w.shape[0], hh, ww, dtype=x.dtype)
    for dy in range(k):
        for dx in range(k):
            patch = xp[:, :, dy:dy + hh, dx:dx + ww]                      # (B, C_in, H, W)
            out += torch.einsum("bihw,oi->bohw", patch, w[:, :, dy, dx])
    return out


def naive_convlstm_step(x, h, c, w_x, w_h, bias, peep=None):
    ch = h.shape[1]

    def pre(gate):                                                      # gate 0..3 = i, f, g, o
        rows = slice(gate * ch, (gate + 1) * ch)
        return (_conv_same(x, w_x[rows]) + _conv_same(h, w_h[rows]) + bias[rows].view(1, -1, 1, 1))

    zero = torch.zeros(3, ch, 1, 1, dtype=x.dtype) if peep is None else peep
    i = torch.sigmoid(pre(0) + zero[0] * c)
    f = torch.sigmoid(pre(1) + zero[1] * c)
    g = torch.tanh(pre(2))
    c_new = f * c + i * g
    o = torch.sigmoid(pre(3) + zero[2] * c_new)
    return o * torch.tanh(c_new), c_new


def _run(A, B, b, x, h_start, start):
    h = h_start
    for t in range(start, x.shape[0]):
        h = torch.tanh(A @ h + B @ x[t] + b)
    return h


def naive_gradient_norms(A, B, b, x, eps=1e-6):
    A, B, b, x = (v.to(torch.float64) for v in (A, B, b, x))
    d, T = A.shape[0], x.shape[0]
    states = [torch.zeros(d, dtype=torch.float64)]
    for t in range(T):
        states.append(torch.tanh(A @ states[-1] + B @ x[t] + b))          # states[t] = h_t
    norms = [torch.tensor(1.0, dtype=torch.float64)]
    for k in range(1, T + 1):
        J = torch.zeros(d, d, dtype=torch.float64)
        for j in range(d):
            e = torch.zeros(d, dtype=torch.float64)
            e[j] = eps
            J[:, j] = (_run(A, B, b, x, states[T - k] + e, T - k) - _run(A, B, b, x, states[T - k] - e, T - k)) / (2 * eps)
        norms.append(torch.linalg.svdvals(J)[0])
    return torch.stack(norms)
