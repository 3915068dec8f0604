"""Checks of notebook 04 (temporal shift: TSM and GSF)."""

from __future__ import annotations

import torch

from ..checking import Case, Check, CheckResult, Mistake, check, register_check


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


register_check(Check(
    exercise="04.1", name="temporal_shift", title="Temporal shift",
    reference="lecturekit.layers:temporal_shift",
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
))


def check_temporal_shift(fn, **kwargs) -> CheckResult:
    """Check exercise 04.1: ``temporal_shift(x (B, C, T, H, W), fold_div=8)``."""
    return check("04.1", fn, **kwargs)
