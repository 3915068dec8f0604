"""Naive references for the checks of notebooks 03 and 04 (tests only; nothing here imports lecturekit).

* (2+1)D conv: the loop convolution of ``naive_conv3d`` twice, with a ReLU between;
* the cost of a conv: parameters and multiply-accumulates counted by enumerating weights and
  output positions one by one (tiny shapes only);
* R(2+1)D's width M_i: the largest M whose factorised conv has no more weights than the full
  one, found by searching M upwards (no closed formula);
* gated shift: explicit loops over channels and frames.
"""

from __future__ import annotations

import torch

from .naive_conv3d import conv3d


def naive_conv2plus1d(x, w_spatial, w_temporal):
    y = torch.relu(conv3d(x, w_spatial, padding=(0, 1, 1)))
    return conv3d(y, w_temporal, padding=(1, 0, 0))


def naive_conv3d_cost(cin, cout, kernel, output, bias=True):
    params, macs = 0, 0
    for _o in range(cout):
        for _i in range(cin):
            for _k in range(kernel[0] * kernel[1] * kernel[2]):
                params += 1
        params += 1 if bias else 0
    per_position = params - (cout if bias else 0)
    for _t in range(output[0]):
        for _h in range(output[1]):
            macs += per_position * output[2]
    return params, 2 * macs


def naive_mid_channels(cin, cout, t=3, d=3):
    full = t * d * d * cin * cout
    m = 0
    while d * d * cin * (m + 1) + t * (m + 1) * cout <= full:
        m += 1
    return m


def naive_gated_shift(x, gate):
    b, c, t, h, w = x.shape
    half = c // 2
    out = torch.zeros_like(x)
    for ch in range(c):
        g = gate[:, 0] if ch < half else gate[:, 1]
        step = 1 if ch < half else -1          # group 1 at frame f receives from f+1, group 2 from f-1
        for f in range(t):
            out[:, ch, f] += x[:, ch, f] * (1 - g[:, f])     # the part that stays
            src = f + step
            if 0 <= src < t:
                out[:, ch, f] += x[:, ch, src] * g[:, src]  # the part that arrives from src
    return out
