"""Naive 3D convolution and Caffe-style 3D max-pooling, written with explicit loops.

Used only by tests as independent references: no call to torch.nn.functional.conv3d or
max_pool3d. Slow on purpose; keep inputs tiny.
"""

from __future__ import annotations

import math

import torch


def conv3d(x, weight, bias=None, stride=(1, 1, 1), padding=(0, 0, 0)):
    """x (B, Cin, T, H, W), weight (Cout, Cin, kt, kh, kw) -> (B, Cout, T', H', W'); cross-correlation."""
    b, cin, t, h, w = x.shape
    cout, cin_w, kt, kh, kw = weight.shape
    assert cin == cin_w
    pt, ph, pw = padding
    st, sh, sw = stride
    xp = torch.zeros(b, cin, t + 2 * pt, h + 2 * ph, w + 2 * pw, dtype=x.dtype)
    xp[:, :, pt:pt + t, ph:ph + h, pw:pw + w] = x
    to = (t + 2 * pt - kt) // st + 1
    ho = (h + 2 * ph - kh) // sh + 1
    wo = (w + 2 * pw - kw) // sw + 1
    out = torch.zeros(b, cout, to, ho, wo, dtype=x.dtype)
    flat_w = weight.reshape(cout, -1)                       # (Cout, Cin*kt*kh*kw)
    for i in range(to):
        for j in range(ho):
            for k in range(wo):
                patch = xp[:, :, i * st:i * st + kt, j * sh:j * sh + kh, k * sw:k * sw + kw]
                out[:, :, i, j, k] = patch.reshape(b, -1) @ flat_w.T
    if bias is not None:
        out += bias.view(1, -1, 1, 1, 1)
    return out


def caffe_max_pool3d(x, kernel, stride):
    """Max-pooling as in C3D's Caffe ``pool3d_layer``: no padding, window p starts at p*stride,
    the output length is ceil((n - k) / s) + 1 and the last window is clipped at the border."""
    b, c, *sizes = x.shape
    outs = [math.ceil((n - k) / s) + 1 for n, k, s in zip(sizes, kernel, stride)]
    out = torch.empty(b, c, *outs, dtype=x.dtype)
    for i in range(outs[0]):
        for j in range(outs[1]):
            for k in range(outs[2]):
                t0, h0, w0 = i * stride[0], j * stride[1], k * stride[2]
                window = x[:, :, t0:min(t0 + kernel[0], sizes[0]), h0:min(h0 + kernel[1], sizes[1]),
                           w0:min(w0 + kernel[2], sizes[2])]
                out[:, :, i, j, k] = window.reshape(b, c, -1).max(dim=-1).values
    return out
