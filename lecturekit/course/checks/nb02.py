"""Checks of notebook 02 (fusion: early, late, slow)."""

from __future__ import annotations

import torch

from ...models.fusion import stack_frames, temporal_pool
from ..checking import Case, Check, Mistake


# =========================================================================== 02.1 stacking frames into channels


def _stack_cases(g: torch.Generator) -> list[Case]:
    c, t = 3, 4
    readable = (10 * torch.arange(c).view(1, c, 1, 1, 1) + torch.arange(t).view(1, 1, t, 1, 1)).float()
    frames_first = torch.randn(2, 5, 3, 4, 4, generator=g)     # (B, T, C, H, W) in memory
    return [
        Case("readable video: value = 10 * channel + frame (1, 3, 4, 1, 1)", (readable,),
             hint="channel c of frame t goes to output channel c*T + t: [c0t0, c0t1, c0t2, c0t3, c1t0, ...]"),
        Case("random video (2, 3, 8, 5, 5)", (torch.randn(2, 3, 8, 5, 5, generator=g),)),
        Case("C = 2, T = 3 (1, 2, 3, 2, 2)", (torch.randn(1, 2, 3, 2, 2, generator=g),)),
        Case("a single frame (T = 1)", (torch.randn(2, 3, 1, 4, 4, generator=g),),
             hint="with T = 1 the output is the frame itself, shape (B, C, H, W)"),
        Case("a grey video (C = 1)", (torch.randn(1, 1, 6, 3, 3, generator=g),)),
        Case("a non-contiguous video (a transposed view)", (frames_first.transpose(1, 2),),
             hint=".view() needs contiguous memory; .reshape (or .flatten) works on any tensor"),
        Case("float64 video", (torch.randn(1, 3, 2, 2, 2, generator=g, dtype=torch.float64),)),
        Case("uint8 video straight from the dataset", (torch.randint(0, 256, (2, 3, 4, 2, 2), generator=g,
                                                                      dtype=torch.uint8),),
             hint="stacking only moves values: keep the dtype (no float conversion, no division by 255)"),
    ]


def _frame_major(x):
    b, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(b, t * c, h, w)


STACK_FRAMES = Check(
    exercise="02.1", name="stack_frames", title="Early fusion: stacking frames into channels",
    reference=stack_frames,
    cases=_stack_cases, arg_names=("x",), axes="B C H W", atol=0.0, rtol=0.0,
    mistakes=(
        Mistake(_frame_major,
                "frame-major order (all channels of frame 0, then of frame 1, ...; what torch.cat over "
                "the frames gives). It is a valid early fusion, but not the library's: EarlyFusion's "
                "conv weight (O, C, T, k, k) flattens to channel index c*T + t, so stack channel-major"),
        Mistake(lambda x: x.mean(dim=2),
                "you averaged the frames; early fusion keeps every frame, as separate input channels"),
        Mistake(lambda x: x.flatten(2, 3),
                "you merged T with H (frames stacked vertically); merge C with T: (B, C*T, H, W)"),
        Mistake(lambda x: x.permute(0, 1, 3, 2, 4).reshape(x.shape[0], x.shape[1] * x.shape[3], x.shape[2],
                                                         x.shape[4]),
                "the axes got mixed up: only C and T merge, H and W stay as they are"),
        Mistake(lambda x: stack_frames(x).float() / 255,
                "you converted the values; stacking only rearranges them"),
        Mistake(lambda x: stack_frames(x).float(),
                "keep the input's dtype (uint8 stays uint8)"),
    ),
    hint="x.reshape(B, C*T, H, W) merges C and T with T varying fastest: channel c of frame t lands at c*T + t",
)


# =========================================================================== 02.2 order-free temporal pooling
def _pool_cases(g: torch.Generator) -> list[Case]:
    t, d = 4, 3
    readable = (10.0 * torch.arange(t).view(1, t, 1) + torch.arange(d).view(1, 1, d))   # (1, T, D)
    base = torch.randn(2, 6, 5, generator=g)                                             # (B, D, T) in memory
    return [
        Case("readable features: value = 10 * frame + feature (1, 4, 3), avg", (readable,), {"mode": "avg"},
             hint="the average of frames 0..3 of feature d is 10 * 1.5 + d"),
        Case("readable features (1, 4, 3), max", (readable,), {"mode": "max"},
             hint="the max over frames 0..3 of feature d is 10 * 3 + d; torch.max(x, dim=...) returns a "
                  "(values, indices) pair: use .values or torch.amax"),
        Case("random features (3, 8, 5), default mode", (torch.randn(3, 8, 5, generator=g),),
             hint="the default must be mode='avg'"),
        Case("random features (2, 5, 7), max", (torch.randn(2, 5, 7, generator=g),), {"mode": "max"},
             hint="torch.max(x, dim=...) returns a (values, indices) pair; use .values or torch.amax"),
        Case("B = T = D = 4, avg", (torch.randn(4, 4, 4, generator=g),), {"mode": "avg"},
             hint="with B = T = D every axis has the same size: pool over axis 1 (time)"),
        Case("B = T = D = 4, max", (torch.randn(4, 4, 4, generator=g),), {"mode": "max"},
             hint="with B = T = D every axis has the same size: pool over axis 1 (time)"),
        Case("a single frame (T = 1)", (torch.randn(2, 1, 6, generator=g),), {"mode": "avg"}),
        Case("a single clip (B = 1)", (torch.randn(1, 6, 3, generator=g),), {"mode": "max"},
             hint="keep the batch axis: the output is (1, D)"),
        Case("float64 features", (torch.randn(2, 3, 4, generator=g, dtype=torch.float64),), {"mode": "avg"}),
        Case("non-contiguous features (a transposed view)", (base.transpose(1, 2),), {"mode": "avg"}),
    ]


def _ignore_mode(x, mode="avg"):
    return x.mean(dim=1)


TEMPORAL_POOL = Check(
    exercise="02.2", name="temporal_pool", title="Order-free late fusion: pooling over time",
    reference=temporal_pool,
    cases=_pool_cases, arg_names=("features",), axes="B D", atol=1e-6, rtol=1e-5,
    mistakes=(
        Mistake(lambda x, mode="avg": temporal_pool(x.transpose(0, 1), mode),
                "you pooled over axis 0 (the clips of the batch); time is axis 1 of (B, T, D)"),
        Mistake(lambda x, mode="avg": temporal_pool(x.transpose(1, 2), mode),
                "you pooled over axis 2 (the features); time is axis 1 of (B, T, D)"),
        Mistake(lambda x, mode="avg": x.sum(dim=1),
                "you summed over time; the average divides by T (a sum is order-free too, but it grows with T)"),
        Mistake(lambda x, mode="avg": x.flatten(1),
                "you concatenated the frames (the paper's late fusion): that keeps the order; pool over T instead"),
        Mistake(lambda x, mode="avg": temporal_pool(x, mode).unsqueeze(1),
                "keepdim=True left a time axis of size 1; return shape (B, D)"),
        Mistake(lambda x, mode="avg": x.amin(dim=1),
                "you took the minimum; mode='max' takes the maximum over time"),
        Mistake(_ignore_mode, "your function ignores mode: 'max' must take the maximum over time"),
        Mistake(lambda x, mode="avg": x[:, -1],
                "you kept only the last frame; pool over all T frames"),
    ),
    hint="mode='avg': features.mean(dim=1); mode='max': the maximum over dim=1 (torch.amax); output (B, D)",
)


# =========================================================================== 02.3 experiment: early vs late fusion
def _late_fusion_mirrored_accuracy() -> float:
    """What is true for every seed and every set of weights: an average-pooled late fusion gives a
    clip and its reversal the same scores (exercise 02.2's proof), hence the same verb. On the
    mirrored test set (each clip once as it is, once reversed with the partner verb) exactly one
    of the two is right: the accuracy is exactly 1/2."""
    return 0.5


ANSWER_02_3 = Check(
    exercise="02.3", name="answer_02_3", title="Experiment: early against late fusion on reversed clips",
    reference=_late_fusion_mirrored_accuracy, answer=True, atol=1e-9, rtol=0.0,
    cases=lambda g: [Case("your answer", hint="a fraction in [0, 1] that holds for ANY weights of the "
                                              "late fusion network, not only for the one you trained")],
    mistakes=(
        Mistake(lambda: 50.0, "give a fraction in [0, 1], not a percentage"),
        Mistake(lambda: 1.0, "look at the pairs of the mirrored set: a clip and its reversal get the same "
                             "scores from the late fusion network, but they carry different labels"),
        Mistake(lambda: 0.0, "a clip and its reversal get the same verb, and exactly one of them carries it"),
    ),
)

