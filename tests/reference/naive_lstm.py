"""Naive LSTM (the equations of Hochreiter & Schmidhuber as written in the LRCN paper), one step at a time.

Weights are passed as the four gate blocks in the row order of torch.nn.LSTM's packed
matrices (i, f, g, o); the code below unpacks them by name and writes every gate out.
"""

from __future__ import annotations

import torch


def lstm(x, w_ih, w_hh, b_ih, b_hh):
    """x (B, T, D) -> h (B, T, H) for one layer, zero initial state."""
    b, t, _ = x.shape
    hid = w_hh.shape[1]
    wi, wf, wg, wo = w_ih.split(hid)
    ui, uf, ug, uo = w_hh.split(hid)
    bias = b_ih + b_hh
    bi, bf, bg, bo = bias.split(hid)
    h = torch.zeros(b, hid, dtype=x.dtype)
    c = torch.zeros(b, hid, dtype=x.dtype)
    outs = []
    for step in range(t):
        xt = x[:, step]
        i = torch.sigmoid(xt @ wi.T + h @ ui.T + bi)
        f = torch.sigmoid(xt @ wf.T + h @ uf.T + bf)
        g = torch.tanh(xt @ wg.T + h @ ug.T + bg)
        o = torch.sigmoid(xt @ wo.T + h @ uo.T + bo)
        c = f * c + i * g
        h = o * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs, dim=1)
