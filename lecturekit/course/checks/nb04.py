"""Checks of notebook 04 (temporal shift: TSM and GSF)."""

from __future__ import annotations

import torch

from ...layers.temporal_shift import temporal_shift
from ...models.gsf import gated_shift
from ..checking import Case, Check, Mistake


# =========================================================================== 04.1 temporal shift
def _shift_cases(g: torch.Generator) -> list[Case]:
    c, t = 8, 5
    ramp = (10.0 * torch.arange(c).view(1, c, 1, 1, 1) + torch.arange(t).view(1, 1, t, 1, 1)).expand(1, c, t, 1, 1)
    base = torch.randn(2, 5, 8, 3, 3, generator=g)       # (B, T, C, H, W) in memory
    return [
        Case("readable video: value = 10 * channel + frame (1, 8, 5, 1, 1), fold_div = 4",
             (ramp.contiguous(),), {"fold_div": 4},
             hint="with fold_div = 4, channels 0-1 take frame t+1, channels 2-3 take frame t-1, 4-7 stay"),
        Case("random video, default fold_div (8)", (torch.randn(2, 16, 6, 3, 4, generator=g),),
             hint="the default must be fold_div=8"),
        Case("random video, fold_div = 4", (torch.randn(2, 8, 4, 2, 2, generator=g),), {"fold_div": 4}),
        Case("T = 1: a single frame", (torch.randn(1, 8, 1, 2, 2, generator=g),), {"fold_div": 4},
             hint="with one frame there is no neighbour: the shifted channels become all zeros"),
        Case("C = 10 is not a multiple of fold_div = 4", (torch.randn(1, 10, 4, 2, 2, generator=g),),
             {"fold_div": 4}, hint="fold = C // fold_div (rounded down): here 2 channels per direction"),
        Case("fewer channels than fold_div: nothing moves", (torch.randn(1, 3, 4, 2, 2, generator=g),),
             {"fold_div": 8}, hint="C // fold_div = 0 here, so the output equals the input"),
        Case("fold_div = 2: all channels move", (torch.randn(1, 6, 4, 1, 2, generator=g),), {"fold_div": 2}),
        Case("float64 video", (torch.randn(1, 8, 3, 2, 2, generator=g, dtype=torch.float64),), {"fold_div": 4},
             hint="create new tensors with torch.zeros_like(x) (or x.new_zeros) so dtype and device follow x"),
        Case("a non-contiguous video (a transposed view)", (base.transpose(1, 2),), {"fold_div": 4},
             hint=".view() needs contiguous memory; slicing (or .reshape) works on any tensor"),
    ]


def _moved(x, fold_div=8, *, first=+1, second=-1, t_axis=2, c_axis=1, cyclic=False, fold=None):
    """Test-free helper for the known mistakes: group 1 takes frame t+first, group 2 t+second."""
    fold = x.shape[c_axis] // fold_div if fold is None else fold
    out = x.clone()
    for group, step in ((slice(0, fold), first), (slice(fold, 2 * fold), second)):
        idx = [slice(None)] * x.dim()
        idx[c_axis] = group
        part = x[tuple(idx)]
        if step == 0:
            continue
        moved = torch.roll(part, -step, dims=t_axis)
        if not cyclic:
            n = part.shape[t_axis]
            pad = [slice(None)] * x.dim()
            pad[t_axis] = slice(max(n - step, 0), n) if step > 0 else slice(0, min(-step, n))
            moved[tuple(pad)] = 0
        out[tuple(idx)] = moved
    return out


TEMPORAL_SHIFT = Check(
    exercise="04.1", name="temporal_shift", title="Temporal shift",
    reference=temporal_shift,
    cases=_shift_cases, arg_names=("x",), axes="B C T H W", atol=0.0, rtol=0.0,
    mistakes=(
        Mistake(lambda x, fold_div=8: _moved(x, fold_div, first=-1, second=+1),
                "the shift goes the wrong way: the FIRST C // fold_div channels at frame t take the "
                "value of frame t+1, the NEXT C // fold_div channels the value of frame t-1"),
        Mistake(lambda x, fold_div=8: _moved(x, fold_div, cyclic=True),
                "the frames wrap around (as torch.roll does); the shift must bring in zeros: at the "
                "last frame for the first group, at the first frame for the second"),
        Mistake(lambda x, fold_div=8: _moved(x, fold_div, second=0),
                "only the first group moved: channels fold..2*fold must move the other way (take t-1)"),
        Mistake(lambda x, fold_div=8: _moved(x, fold_div, first=+2, second=-2),
                "the channels moved by two frames; the shift is exactly one frame"),
        Mistake(lambda x, fold_div=8: _moved(x, fold_div, t_axis=3),
                "you shifted along H (axis 3); time is axis 2 of (B, C, T, H, W)"),
        Mistake(lambda x, fold_div=8: _moved(x, fold_div, fold=min(fold_div, x.shape[1] // 2)),
                "fold is the NUMBER of channels per group: fold = C // fold_div"),
    ),
    hint="fold = C // fold_div; channels [0, fold) take frame t+1, channels [fold, 2*fold) take "
         "frame t-1, the others stay; a missing neighbour frame gives zeros",
)


# =========================================================================== 04.2 gated shift
def _gs_cases(g: torch.Generator) -> list[Case]:
    def gate(b, t, h, w, dtype=torch.float32):
        return torch.tanh(2 * torch.randn(b, 2, t, h, w, generator=g, dtype=torch.float64)).to(dtype)

    ramp = (10.0 * torch.arange(4).view(1, 4, 1, 1, 1) + torch.arange(5).view(1, 1, 5, 1, 1)).expand(1, 4, 5, 1, 1)
    base = torch.randn(2, 5, 6, 3, 3, generator=g)                 # (B, T, C, H, W) in memory
    return [
        Case("readable video: value = 10 * channel + frame (1, 4, 5, 1, 1), gate = 1 everywhere",
             (ramp.contiguous(), torch.ones(1, 2, 5, 1, 1)),
             hint="with gate 1 all of group 1 (channels 0-1) takes frame t+1 and all of group 2 takes "
                  "frame t-1; zeros where that frame does not exist"),
        Case("gate = 0 everywhere: nothing moves", (torch.randn(2, 6, 4, 3, 3, generator=g), torch.zeros(2, 2, 4, 3, 3)),
             hint="with a zero gate the output must equal the input"),
        Case("random video and gate in (-1, 1)", (torch.randn(2, 8, 6, 4, 4, generator=g), gate(2, 6, 4, 4))),
        Case("one channel per group (C = 2)", (torch.randn(3, 2, 5, 2, 3, generator=g), gate(3, 5, 2, 3)),
             hint="group 1 is gated by gate[:, 0], group 2 by gate[:, 1]"),
        Case("T = 1: a single frame", (torch.randn(1, 4, 1, 3, 3, generator=g), gate(1, 1, 3, 3)),
             hint="the moved part g·x has nowhere to go: only the residual x - g·x remains"),
        Case("float64", (torch.randn(1, 4, 3, 2, 2, generator=g, dtype=torch.float64), gate(1, 3, 2, 2, torch.float64)),
             hint="create new tensors with torch.zeros_like (or x.new_zeros) so dtype and device follow x"),
        Case("a non-contiguous video (a transposed view)", (base.transpose(1, 2), gate(2, 5, 3, 3))),
    ]


def _gs_wrong(x, gate, *, swap_dir=False, residual=True, gate_after=False, swap_gate=False, cyclic=False):
    half = x.shape[1] // 2
    x1, x2 = x[:, :half], x[:, half:]
    g1, g2 = (gate[:, 1:2], gate[:, 0:1]) if swap_gate else (gate[:, 0:1], gate[:, 1:2])

    def move(v, step):          # frame t takes t+step
        out = torch.roll(v, -step, dims=2)
        if not cyclic:
            if step > 0:
                out[:, :, -step:] = 0
            else:
                out[:, :, :-step] = 0
        return out

    s1, s2 = (-1, +1) if swap_dir else (+1, -1)
    if gate_after:
        z1 = g1 * move(x1, s1) + (1 - g1) * x1
        z2 = g2 * move(x2, s2) + (1 - g2) * x2
    else:
        y1, y2 = g1 * x1, g2 * x2
        z1 = move(y1, s1) + ((x1 - y1) if residual else 0)
        z2 = move(y2, s2) + ((x2 - y2) if residual else 0)
    return torch.cat([z1, z2], dim=1)


GATED_SHIFT = Check(
    exercise="04.2", name="gated_shift", title="A gated shift",
    reference=gated_shift,
    cases=_gs_cases, arg_names=("x", "gate"), axes="B C T H W", atol=1e-6, rtol=1e-5,
    mistakes=(
        Mistake(lambda x, g: _gs_wrong(x, g, swap_dir=True),
                "the shifts go the wrong way: group 1 (the first C/2 channels) takes frame t+1, "
                "group 2 takes frame t-1"),
        Mistake(lambda x, g: _gs_wrong(x, g, residual=False),
                "the residual is missing: what the gate does not move (x - g·x) stays at its frame"),
        Mistake(lambda x, g: _gs_wrong(x, g, gate_after=True),
                "you gated AFTER shifting (g·shift(x)); the gate at frame t decides how much of frame t "
                "leaves it, so multiply first and shift the product: shift(g·x)"),
        Mistake(lambda x, g: _gs_wrong(x, g, swap_gate=True),
                "the gates are swapped: gate[:, 0] gates the first half of the channels, gate[:, 1] the second"),
        Mistake(lambda x, g: _gs_wrong(x, g, cyclic=True),
                "the frames wrap around (as torch.roll does); the shift must bring in zeros"),
    ),
    hint="split C in two halves; y = g·x per half; shift y1 so frame t takes t+1 and y2 so frame t "
         "takes t-1 (zeros at the ends); out = shift(y) + (x - y)",
)


# =========================================================================== 04.3 experiment: the shift sees time
def _order_blind_network() -> str:
    """What is true for every seed: without the shift the network is a per-frame classifier with
    average consensus, so a clip and its reversal get the same scores and it is at exactly 1/2 on
    the mirrored test set, whatever its weights. The network with the shift is not order-blind."""
    return "no shift"


ANSWER_04_3 = Check(
    exercise="04.3", name="answer_04_3", title="Experiment: your shift inside TSM",
    reference=_order_blind_network, answer=True,
    cases=lambda g: [Case("your answer", hint="answer with 'shift' or 'no shift'")],
    mistakes=(
        Mistake(lambda: "shift",
                "with your shift, frame t's features carry part of frames t-1 and t+1, so playing the clip "
                "backwards changes what each frame sees; which network cannot notice the reversal at all?"),
        Mistake(lambda: "both", "one of the two networks tells take from put well above chance"),
        Mistake(lambda: "neither", "one network gives a clip and its reversal the same scores, whatever its "
                                   "weights: which one has nothing that mixes frames?"),
    ),
)

