"""Checks of notebook 03 (3D convolutions: C3D, P3D, R(2+1)D).

03.1 ``conv2plus1d(x, w_spatial, w_temporal)``: a 3×3×3 conv factorised into S (1×3×3) -> ReLU
     -> T (3×1×1); reference: ``lecturekit.layers.factorised_conv.conv2plus1d`` (what the
     library's ``Conv2Plus1d`` runs with its own S and T), given the weights and a plain ReLU.
03.2 ``conv3d_cost(cin, cout, kernel, output, bias=True) -> (params, flops)``; reference: the
     library's counters (``count_params``, ``count_flops``) on a real ``nn.Conv3d`` built on the
     meta device, so the formula is checked against what the counter measures.
03.3 ``mid_channels(cin, cout, t=3, d=3)``: R(2+1)D's parameter-matching width M_i; reference:
     ``lecturekit.layers.factorised_conv.mid_channels``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...layers.factorised_conv import conv2plus1d, mid_channels
from ...analysis.flops import conv3d_cost
from ..checking import Case, Check, Mistake


# =========================================================================== 03.1 (2+1)D conv
def _c21_cases(g: torch.Generator) -> list[Case]:
    def case(label, b, cin, m, cout, t, h, w, dtype=torch.float32, hint=""):
        x = torch.randn(b, cin, t, h, w, generator=g, dtype=torch.float64).to(dtype)
        ws = (torch.randn(m, cin, 1, 3, 3, generator=g, dtype=torch.float64) / (3 * cin ** 0.5)).to(dtype)
        wt = (torch.randn(cout, m, 3, 1, 1, generator=g, dtype=torch.float64) / (3 * m) ** 0.5).to(dtype)
        return Case(label, (x, ws, wt), hint=hint)

    return [
        case("a small video, Cin = 2, M = 4, Cout = 3, T = 5, 6×6", 2, 2, 4, 3, 5, 6, 6),
        case("C -> C with M = 9C/4 (as the M_i rule gives for 4 -> 4: M = 9)", 1, 4, 9, 4, 6, 5, 5),
        case("non-square frames (H = 4, W = 7)", 2, 3, 5, 2, 4, 4, 7,
             hint="the spatial padding is (0, 1, 1): one pixel on each side of H and W"),
        case("T = 1: a single frame", 1, 3, 4, 2, 1, 5, 5,
             hint="the temporal conv needs padding (1, 0, 0) so that T stays the same, even for T = 1"),
        case("T = 2", 2, 2, 3, 2, 2, 4, 4),
        case("float64 video and weights", 1, 3, 4, 5, 4, 5, 5, dtype=torch.float64),
        case("one input channel, one output channel", 3, 1, 2, 1, 6, 4, 4),
    ]


def _c21_wrong(x, ws, wt, *, relu=True, relu_after=False, t_pad=1, s_pad=1):
    y = F.conv3d(x, ws, padding=(0, s_pad, s_pad))
    if relu:
        y = torch.relu(y)
    y = F.conv3d(y, wt, padding=(t_pad, 0, 0))
    return torch.relu(y) if relu_after else y


CONV2PLUS1D = Check(
    exercise="03.1", name="conv2plus1d", title="Factorise a 3×3×3 convolution",
    reference=conv2plus1d,
    cases=_c21_cases, arg_names=("x", "w_spatial", "w_temporal"), axes="B C T H W", atol=1e-5, rtol=1e-4,
    mistakes=(
        Mistake(lambda x, ws, wt: _c21_wrong(x, ws, wt, relu=False),
                "there is no ReLU between S and T: R(2+1)D puts a nonlinearity between the spatial and "
                "the temporal conv (that extra ReLU is one of its selling points)"),
        Mistake(lambda x, ws, wt: _c21_wrong(x, ws, wt, relu_after=True),
                "you applied a ReLU after T as well; the block ends with the temporal conv (the network "
                "adds BN and ReLU after it)"),
        Mistake(lambda x, ws, wt: _c21_wrong(x, ws, wt, t_pad=0),
                "the temporal conv has no padding, so the clip loses frames: pad (1, 0, 0)"),
    ),
    hint="S: F.conv3d(x, w_spatial, padding=(0, 1, 1)); then ReLU; then T: "
         "F.conv3d(., w_temporal, padding=(1, 0, 0)); no biases",
)


# =========================================================================== 03.2 cost of a conv
def _cost_cases(g: torch.Generator) -> list[Case]:
    del g  # integer cases, chosen by hand
    return [
        Case("C3D conv1a: 3 -> 64, 3×3×3, output 16×112×112", (3, 64, (3, 3, 3), (16, 112, 112))),
        Case("C3D conv2a: 64 -> 128, 3×3×3, output 16×56×56", (64, 128, (3, 3, 3), (16, 56, 56))),
        Case("a spatial conv S: 64 -> 144, 1×3×3, output 8×28×28, no bias", (64, 144, (1, 3, 3), (8, 28, 28)),
             {"bias": False}, hint="the kernel volume is kt·kh·kw = 1·3·3 = 9 here"),
        Case("a temporal conv T: 144 -> 64, 3×1×1, output 8×28×28, no bias", (144, 64, (3, 1, 1), (8, 28, 28)),
             {"bias": False}),
        Case("a 1×1×1 conv with bias: 8 -> 5, output 2×3×4", (8, 5, (1, 1, 1), (2, 3, 4)),
             hint="a bias adds Cout parameters but (by the counter's convention) no FLOPs"),
        Case("an asymmetric kernel 3×5×1, 2 -> 3, output 4×6×5", (2, 3, (3, 5, 1), (4, 6, 5))),
        Case("a single output position: 5 -> 7, 3×3×3, output 1×1×1", (5, 7, (3, 3, 3), (1, 1, 1))),
    ]


def _cost_wrong(cin, cout, kernel, output, bias=True, *, flops_per_mac=2, bias_flops=False, kvol=None, per_pos=True):
    kt, kh, kw = kernel
    vol = kt * kh * kw if kvol is None else kvol(kernel)
    params = cin * cout * vol + (cout if bias else 0)
    positions = output[0] * output[1] * output[2] if per_pos else 1
    macs = cin * cout * vol * positions
    flops = flops_per_mac * macs + (cout * positions if bias and bias_flops else 0)
    return params, flops


CONV3D_COST = Check(
    exercise="03.2", name="conv3d_cost", title="Count parameters and FLOPs by formula",
    reference=conv3d_cost,
    cases=_cost_cases, arg_names=("cin", "cout", "kernel", "output"), atol=0.0, rtol=0.0,
    mistakes=(
        Mistake(lambda *a, **k: _cost_wrong(*a, **k, flops_per_mac=1),
                "your FLOPs are MACs (multiply-accumulates); the counter counts 2 FLOPs per MAC"),
        Mistake(lambda *a, **k: _cost_wrong(*a, **k, bias_flops=True),
                "you counted the bias additions as FLOPs; the counter (like torch's FlopCounterMode) "
                "counts only the multiply-accumulates of the convolution"),
        Mistake(lambda *a, **k: _cost_wrong(*a, **k, per_pos=False),
                "your FLOPs are those of ONE output position: multiply by T·H·W of the output"),
        Mistake(lambda *a, **k: _cost_wrong(*a, **k, kvol=lambda kk: kk[1] * kk[2]),
                "you left the temporal extent kt out of the kernel volume (kt·kh·kw)"),
        Mistake(lambda cin, cout, kernel, output, bias=True: (cin * cout * kernel[0] * kernel[1] * kernel[2],
                                                               _cost_wrong(cin, cout, kernel, output, bias)[1]),
                "the parameters miss the bias: one per output channel when bias=True"),
    ),
    hint="params = Cin·Cout·kt·kh·kw (+ Cout with a bias); FLOPs = 2 · Cin·Cout·kt·kh·kw · T·H·W (output)",
)


# =========================================================================== 03.3 the M_i rule
def _mid_cases(g: torch.Generator) -> list[Case]:
    del g
    return [
        Case("64 -> 64 (exact: M = 144)", (64, 64)),
        Case("64 -> 128", (64, 128), hint="round DOWN (floor) so the factorised conv never has more parameters"),
        Case("128 -> 256", (128, 256)),
        Case("256 -> 512", (256, 512)),
        Case("512 -> 512", (512, 512)),
        Case("the stem: 3 -> 64 with a 3×7×7 kernel (t = 3, d = 7)", (3, 64), {"t": 3, "d": 7}),
        Case("a 5×3×3 kernel, 32 -> 16 (t = 5)", (32, 16), {"t": 5, "d": 3},
             hint="the formula is t·d²·Cin·Cout / (d²·Cin + t·Cout): Cin goes with d², Cout with t"),
        Case("1 -> 1", (1, 1)),
        Case("100 -> 10", (100, 10), hint="the formula is t·d²·Cin·Cout / (d²·Cin + t·Cout): Cin goes with d², Cout with t"),
    ]


MID_CHANNELS = Check(
    exercise="03.3", name="mid_channels", title="R(2+1)D's parameter-matching width",
    reference=mid_channels,
    cases=_mid_cases, arg_names=("cin", "cout"), atol=0.0, rtol=0.0,
    mistakes=(
        Mistake(lambda i, o, t=3, d=3: round(t * d * d * i * o / (d * d * i + t * o)),
                "you rounded to the NEAREST integer; the rule floors (//), so the factorised conv never "
                "has more parameters than the 3D conv it replaces"),
        Mistake(lambda i, o, t=3, d=3: -(-(t * d * d * i * o) // (d * d * i + t * o)),
                "you rounded UP; the rule floors (//)"),
        Mistake(lambda i, o, t=3, d=3: (t * d * d * i * o) // (d * d * o + t * i),
                "Cin and Cout are swapped in the denominator: S maps Cin -> M (d²·Cin·M weights), "
                "T maps M -> Cout (t·M·Cout weights)"),
        Mistake(lambda i, o, t=3, d=3: t * d * d * i * o / (d * d * i + t * o),
                "return an int (floor division //), not a float"),
    ),
    hint="solve d²·Cin·M + t·M·Cout = t·d²·Cin·Cout for M and round down: "
         "M = (t·d²·Cin·Cout) // (d²·Cin + t·Cout)",
)


# =========================================================================== 03.4 experiment: temporal receptive field
RF_BLOCKS = 8          # the question: blocks in the stack
RF_KERNEL_T = 3        # the temporal kernel of conv2plus1d


def _frames_seen(blocks: int = RF_BLOCKS, kernel_t: int = RF_KERNEL_T) -> int:
    """What is true for any weights (and seen by a gradient probe): each temporal conv of size k
    widens the window by k - 1 frames, the spatial convs by none, so after L blocks one output
    frame depends on 1 + L (k - 1) input frames (while the clip is long enough)."""
    return 1 + blocks * (kernel_t - 1)


ANSWER_03_4 = Check(
    exercise="03.4", name="answer_03_4", title="Experiment: how far one output frame sees",
    reference=_frames_seen, answer=True, atol=0.0, rtol=0.0,
    cases=lambda g: [Case("your answer", hint="a whole number of input frames, for a stack of "
                                              f"{RF_BLOCKS} blocks on a long clip")],
    mistakes=(
        Mistake(lambda: RF_BLOCKS * RF_KERNEL_T,
                "each block adds k - 1 = 2 frames to the window, not k = 3: neighbouring windows overlap"),
        Mistake(lambda: RF_BLOCKS * (RF_KERNEL_T - 1),
                "you counted what the blocks add but forgot the output frame's own input frame"),
        Mistake(lambda: RF_KERNEL_T ** RF_BLOCKS,
                "windows grow by adding k - 1 per layer, not by multiplying: look at your measurements "
                "for 1, 2 and 3 blocks"),
        Mistake(lambda: RF_BLOCKS + 1,
                "each temporal conv reaches one frame into the past AND one into the future"),
    ),
)

