"""Checks of notebook 05 (motion and long-term structure): 05.1 frame differences, 05.2 TSN sampling."""

from __future__ import annotations

import torch

from ...layers.motion import difference_stack
from ...models.tsn import centre_segment_indices, segment_consensus
from ..checking import Case, Check, Mistake


# =========================================================================== 05.1 difference stack
def _diff_cases(g: torch.Generator) -> list[Case]:
    c, t = 2, 4
    # value = 100 * channel + frame^2: differences 1, 3, 5 per channel, readable in messages
    readable = (100.0 * torch.arange(c).view(1, c, 1, 1, 1)
                + (torch.arange(t) ** 2).view(1, 1, t, 1, 1).float()).expand(1, c, t, 1, 1).contiguous()
    base = torch.randn(2, 5, 3, 4, 4, generator=g)                      # (B, T, C, H, W) in memory
    return [
        Case("readable video: value = 100 * channel + frame^2, (1, 2, 4, 1, 1)", (readable,),
             hint="channel k*C + c of the output is x[:, c, k+1] - x[:, c, k]: all channels of "
                  "difference 0 first, then all channels of difference 1, ..."),
        Case("random RGB video (2, 3, 8, 5, 5)", (torch.randn(2, 3, 8, 5, 5, generator=g),)),
        Case("T = 2: a single difference", (torch.randn(1, 3, 2, 4, 4, generator=g),)),
        Case("one channel (gray video)", (torch.randn(2, 1, 5, 3, 3, generator=g),)),
        Case("a static video: all differences are zero", (torch.ones(1, 3, 4, 2, 2).mul(0.7),)),
        Case("float64 video", (torch.randn(1, 3, 3, 2, 2, generator=g, dtype=torch.float64),)),
        Case("a non-contiguous video (a transposed view)", (base.transpose(1, 2),),
             hint=".view() needs contiguous memory; use .reshape() (or .contiguous() first)"),
    ]


def _diff_channel_major(x):
    b, c, t, h, w = x.shape
    return (x[:, :, 1:] - x[:, :, :-1]).reshape(b, c * (t - 1), h, w)


def _diff_backward(x):
    b, c, t, h, w = x.shape
    return (x[:, :, :-1] - x[:, :, 1:]).transpose(1, 2).reshape(b, c * (t - 1), h, w)


def _diff_unstacked(x):
    return x[:, :, 1:] - x[:, :, :-1]


def _diff_abs(x):
    b, c, t, h, w = x.shape
    return (x[:, :, 1:] - x[:, :, :-1]).abs().transpose(1, 2).reshape(b, c * (t - 1), h, w)


def _diff_wrong_axis(x):
    b, c, t, h, w = x.shape
    return (x[..., 1:, :] - x[..., :-1, :])


DIFFERENCE_STACK = Check(
    exercise="05.1", name="difference_stack", title="Frame-difference stream input",
    reference=difference_stack,
    cases=_diff_cases, arg_names=("video",), axes="B C H W", atol=1e-6, rtol=1e-6,
    mistakes=(
        Mistake(_diff_channel_major,
                "the values are right but the channel order is channel-major; stack difference-major: "
                "the C channels of difference 0, then those of difference 1 (move T before C with "
                ".transpose(1, 2) before reshaping)"),
        Mistake(_diff_backward, "the sign is flipped: the difference is x[t+1] - x[t] (later minus earlier)"),
        Mistake(_diff_unstacked, "you returned (B, C, T-1, H, W); the stream's input stacks the differences on "
                                 "the channel axis: (B, C*(T-1), H, W)"),
        Mistake(_diff_abs, "keep the sign of the differences (no .abs()): the sign is what tells a take from a put"),
        Mistake(_diff_wrong_axis, "you took differences along H (axis 3); time is axis 2 of (B, C, T, H, W)"),
    ),
    hint="d = x[:, :, 1:] - x[:, :, :-1] is (B, C, T-1, H, W); put T-1 before C and merge the two axes",
)


# =========================================================================== 05.2 segment sampling
def _seg_cases(g: torch.Generator) -> list[Case]:
    del g  # the cases are hand-picked
    return [
        Case("T = 8, S = 4, one frame per snippet", (8, 4),
             hint="4 segments of 2 frames: 2 valid positions, the lower middle one is offset 0"),
        Case("T = 64, S = 4", (64, 4), hint="segments of 16 frames; offset (16 - 1) // 2 = 7"),
        Case("T = 10, S = 3: the last frame is never used", (10, 3),
             hint="segment length = T // S = 3 (rounded down); the remainder at the end is dropped"),
        Case("T = S = 5: every frame is its own segment", (5, 5)),
        Case("T = 16, S = 2, snippets of 3 frames", (16, 2, 3),
             hint="room = seg_len - snippet + 1 valid starts; start = segment start + (room - 1) // 2; "
                  "then snippet consecutive frames"),
        Case("T = 30, S = 3, snippets of 6 frames (TSN's RGB-difference input)", (30, 3), {"snippet": 6}),
        Case("T = 7, S = 1: one segment", (7, 1), hint="the centre of frames 0..6 is frame 3"),
    ]


def _seg_linspace(num_frames, segments, snippet=1):
    first = torch.linspace(0, num_frames - snippet, segments).round().long()
    return first[:, None] + torch.arange(snippet)


def _seg_start(num_frames, segments, snippet=1):
    seg = num_frames // segments
    return (torch.arange(segments) * seg)[:, None] + torch.arange(snippet)


def _seg_upper_middle(num_frames, segments, snippet=1):
    seg = num_frames // segments
    return (torch.arange(segments) * seg + (seg - snippet + 1) // 2)[:, None] + torch.arange(snippet)


def _seg_tsn_float(num_frames, segments, snippet=1):
    tick = (num_frames - snippet + 1) / segments
    first = torch.tensor([int(tick / 2 + tick * s) for s in range(segments)])
    return first[:, None] + torch.arange(snippet)


def _seg_flat(num_frames, segments, snippet=1):
    return centre_segment_indices(num_frames, segments, snippet).reshape(-1)


SEGMENT_INDICES = Check(
    exercise="05.2", name="segment_indices", title="Segment sampling",
    reference=centre_segment_indices,
    cases=_seg_cases, arg_names=("num_frames", "segments", "snippet"), axes="S L", atol=0.0, rtol=0.0,
    mistakes=(
        Mistake(_seg_start, "you took the first frame of each segment; take the middle valid start: "
                            "segment start + (room - 1) // 2"),
        Mistake(_seg_upper_middle, "off by one: with an even number of valid starts take the LOWER middle one, "
                                   "(room - 1) // 2, not room // 2"),
        Mistake(_seg_linspace, "evenly spaced frames over the whole video (linspace) is not TSN's rule: split "
                               "into S segments of T // S frames, then take the middle of each"),
        Mistake(_seg_tsn_float, "that is the released TSN code's float rule; this exercise (and lecturekit) uses "
                                "integer segments of T // S frames and the lower middle start"),
        Mistake(_seg_flat, "return one row per segment: shape (S, snippet), not a flat list"),
    ),
    hint="seg_len = T // S; room = seg_len - snippet + 1; start_s = s * seg_len + (room - 1) // 2; "
         "row s = start_s + [0, 1, ..., snippet - 1]; a LongTensor of shape (S, snippet)",
)


# =========================================================================== 05.3 segment consensus


def _cons_cases(g: torch.Generator) -> list[Case]:
    def scores(b, s, k, dtype=torch.float32):
        return (3 * torch.randn(b, s, k, generator=g, dtype=torch.float64)).to(dtype)

    ramp = (10.0 * torch.arange(4).view(1, 4, 1) + torch.arange(3).view(1, 1, 3))   # 10 * segment + class
    loud = torch.zeros(2, 4, 3)
    loud[:, 0, 0] = 20.0            # one segment shouts class 0, three whisper class 1
    loud[:, 1:, 1] = 2.0
    base = torch.randn(3, 5, 4, generator=g)                        # (B, K, S) in memory
    return [
        Case("readable scores: value = 10 * segment + class (1, 4, 3)", (ramp,),
             hint="the consensus of class k is the mean of column k over the 4 segments"),
        Case("random scores (B=3, S=4, K=6)", (scores(3, 4, 6),)),
        Case("B = S = K = 4", (scores(4, 4, 4),),
             hint="with B = S = K a wrong axis still gives the right shape; segments are axis 1 of (B, S, K)"),
        Case("one loud segment among four (B=2, S=4, K=3)", (loud,),
             hint="TSN averages the scores as they are (logits, before any softmax) and weighs every "
                  "segment the same; a max or a vote is a different consensus"),
        Case("a single segment (S = 1)", (scores(2, 1, 5),),
             hint="with one segment the consensus is that segment's scores, still of shape (B, K)"),
        Case("a single clip (B = 1)", (scores(1, 3, 4),), hint="keep the batch axis: squeeze() also removes B"),
        Case("float64 scores", (scores(2, 3, 4, torch.float64),), hint="the output should follow the input's dtype"),
        Case("a non-contiguous (B, S, K) view", (base.transpose(1, 2),)),
    ]


SEGMENT_CONSENSUS = Check(
    exercise="05.3", name="segment_consensus", title="Segment consensus",
    reference=segment_consensus,
    cases=_cons_cases, arg_names=("scores",), axes="B K", atol=1e-6, rtol=1e-5,
    mistakes=(
        Mistake(lambda s: s.sum(dim=1), "you summed over the segments; TSN averages them (divide by S)"),
        Mistake(lambda s: s.amax(dim=1), "that is max consensus; TSN's consensus is the average over segments"),
        Mistake(lambda s: s.mean(dim=0), "you averaged over axis 0 (the clips); segments are axis 1 of (B, S, K)"),
        Mistake(lambda s: s.mean(dim=2), "you averaged over axis 2 (the classes); segments are axis 1 of (B, S, K)"),
        Mistake(lambda s: torch.softmax(s.double(), dim=-1).mean(dim=1),
                "you averaged probabilities; TSN averages the class scores themselves (softmax comes after)"),
        Mistake(lambda s: s.mean(dim=1, keepdim=True), "keepdim=True left a segment axis of size 1; return (B, K)"),
        Mistake(lambda s: s[:, s.shape[1] // 2], "you kept the middle segment; every segment has a vote"),
    ),
    hint="G = (1/S) Σ_s F(T_s): the mean of the scores over the segment axis (axis 1); output (B, K)",
)


# =========================================================================== 05.4 experiment: what TSN's input can tell
def _order_aware_input() -> str:
    """What is true for every seed: with one RGB frame per snippet, a symmetric sampling and an
    order-free consensus, a clip and its reversal feed TSN the same snippets in the opposite order,
    so they get the same scores: exactly 1/2 on the mirrored set, whatever the weights. Frame
    differences change sign under reversal, so only the difference input can tell take from put."""
    return "differences"


ANSWER_05_4 = Check(
    exercise="05.4", name="answer_05_4", title="Experiment: which input lets TSN tell take from put",
    reference=_order_aware_input, answer=True,
    cases=lambda g: [Case("your answer", hint="answer with 'rgb', 'differences', 'both' or 'neither'")],
    mistakes=(
        Mistake(lambda: "rgb",
                "the RGB network sees the same four frames for a clip and its reversal, only in another "
                "order, and your consensus ignores the order"),
        Mistake(lambda: "both", "one of the two networks is exactly at 1/2 on the mirrored set, whatever its weights"),
        Mistake(lambda: "neither", "one of the two networks is well above 1/2: a difference changes sign when the "
                                   "clip is played backwards"),
    ),
)

