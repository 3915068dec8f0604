"""Checks of notebook 05 (05.1 frame-difference stack, 05.2 TSN segment sampling): an independent
naive solution passes, the checks' references agree with the naive code and with the models that
use them (TwoStream, TSN), and typical wrong answers are rejected with the matching hint."""

from __future__ import annotations

import dataclasses

import torch

from lecturekit.course import check, get_check
from lecturekit.course.checking import run_check
from lecturekit.models.tsn import TSN, centre_segment_indices, segment_consensus
from lecturekit.models.twostream import TwoStream, difference_stack
from reference.course_naive_nb05_nb06 import naive_difference_stack, naive_segment_indices


def test_naive_solutions_pass():
    assert check("05.1", naive_difference_stack, verbose=False).passed
    assert check("05.2", naive_segment_indices, verbose=False).passed


def test_references_agree_with_naive_code():
    for ex, naive, lib in [("05.1", naive_difference_stack, difference_stack),
                           ("05.2", naive_segment_indices, centre_segment_indices)]:
        result = run_check(dataclasses.replace(get_check(ex), reference=naive), lambda *a, _f=lib, **k: _f(*a, **k))
        assert result.passed, result.message


def test_difference_stack_is_what_the_models_feed_their_motion_streams():
    x = torch.randn(2, 3, 8, 16, 16)
    model = TwoStream(num_classes=4, motion="diff", stack=7)
    torch.testing.assert_close(model.motion_input(x), naive_difference_stack(x))
    tsn = TSN(modality="rgb_diff", diff_frames=x.shape[2] - 1, segments=1)
    torch.testing.assert_close(tsn.snippets(x), naive_difference_stack(x))


def test_segment_indices_are_the_frames_tsn_reads_in_eval_mode():
    model = TSN(num_classes=4, segments=4).eval()
    video = torch.arange(20.).view(1, 1, 20, 1, 1).expand(1, 3, 20, 4, 4).contiguous()
    frames = model.snippets(video)[:, 0, 0, 0]                     # (S,) frame numbers read
    assert frames.long().tolist() == naive_segment_indices(20, 4)[:, 0].tolist()


# --------------------------------------------------------------------------- wrong answers: 05.1
def d_channel_major(video):
    b, c, t, h, w = video.shape
    return (video[:, :, 1:] - video[:, :, :-1]).reshape(b, c * (t - 1), h, w)


def d_backward(video):
    b, c, t, h, w = video.shape
    return (video[:, :, :-1] - video[:, :, 1:]).transpose(1, 2).reshape(b, c * (t - 1), h, w)


def d_unstacked(video):
    return video[:, :, 1:] - video[:, :, :-1]


def d_abs(video):
    b, c, t, h, w = video.shape
    return (video[:, :, 1:] - video[:, :, :-1]).abs().transpose(1, 2).reshape(b, c * (t - 1), h, w)


def d_view(video):                                     # fails on non-contiguous input only
    b, c, t, h, w = video.shape
    return (video[:, :, 1:] - video[:, :, :-1]).transpose(1, 2).contiguous().view(b, -1, h, w) \
        if video.is_contiguous() else (video[:, :, 1:] - video[:, :, :-1]).view(b, -1, h, w)


def d_in_place(video):
    b, c, t, h, w = video.shape
    video[:, :, 1:] -= video[:, :, :-1].clone()
    return video[:, :, 1:].transpose(1, 2).reshape(b, c * (t - 1), h, w)


WRONG_05_1 = [(d_channel_major, "channel order"), (d_backward, "sign is flipped"),
              (d_unstacked, "(B, C*(T-1), H, W)"), (d_abs, "no .abs()"), (d_view, None), (d_in_place, "in place")]


def test_wrong_difference_stacks_are_rejected():
    for fn, phrase in WRONG_05_1:
        result = check("05.1", fn, verbose=False)
        assert not result.passed, fn.__name__
        if phrase:
            assert phrase in result.message, (fn.__name__, result.message)


# --------------------------------------------------------------------------- wrong answers: 05.2
def s_start(num_frames, segments, snippet=1):
    seg = num_frames // segments
    return (torch.arange(segments) * seg)[:, None] + torch.arange(snippet)


def s_upper(num_frames, segments, snippet=1):
    seg = num_frames // segments
    return (torch.arange(segments) * seg + (seg - snippet + 1) // 2)[:, None] + torch.arange(snippet)


def s_linspace(num_frames, segments, snippet=1):
    return torch.linspace(0, num_frames - snippet, segments).round().long()[:, None] + torch.arange(snippet)


def s_float(num_frames, segments, snippet=1):
    return naive_segment_indices(num_frames, segments, snippet).float()


def s_ceil(num_frames, segments, snippet=1):          # segments of ceil(T / S) frames
    seg = -(-num_frames // segments)
    room = seg - snippet + 1
    return (torch.arange(segments) * seg + (room - 1) // 2)[:, None] + torch.arange(snippet)


WRONG_05_2 = [(s_start, "first frame of each segment"), (s_upper, "LOWER middle"), (s_linspace, "linspace"),
              (s_float, None), (s_ceil, None)]


def test_wrong_segment_samplers_are_rejected():
    for fn, phrase in WRONG_05_2:
        result = check("05.2", fn, verbose=False)
        assert not result.passed, fn.__name__
        if phrase:
            assert phrase in result.message, (fn.__name__, result.message)


# --------------------------------------------------------------------------- 05.3 segment consensus
def test_segment_consensus_naive_passes_and_is_what_tsn_does():
    from reference.course_naive_nb05_nb06 import naive_segment_consensus

    assert check("05.3", naive_segment_consensus, verbose=False).passed
    result = run_check(dataclasses.replace(get_check("05.3"), reference=naive_segment_consensus),
                       segment_consensus)
    assert result.passed, result.message
    torch.manual_seed(0)
    tsn = TSN(num_classes=5, segments=4).eval()
    video = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        per_segment = tsn.head(tsn.forward_features(video))                 # (B, S, K) snippet scores
        torch.testing.assert_close(tsn(video), segment_consensus(per_segment))


def test_wrong_consensus_is_rejected_with_its_diagnosis():
    cases = [
        (lambda s: s.sum(dim=1), "summed over the segments"),
        (lambda s: s.amax(dim=1), "max consensus"),
        (lambda s: s.mean(dim=0), "axis 0"),
        (lambda s: s.mean(dim=2), "axis 2"),
        (lambda s: torch.softmax(s, dim=-1).mean(dim=1), "averaged probabilities"),
        (lambda s: s.mean(dim=1, keepdim=True), "keepdim"),
        (lambda s: s[:, 0], "mean of column k"),
        (lambda s: s.double().mean(dim=1), "dtype"),
    ]
    for wrong, expected in cases:
        result = check("05.3", wrong, verbose=False)
        assert not result.passed
        assert expected in result.message, (expected, result.message)


# --------------------------------------------------------------------------- 05.4 experiment answer
def test_answer_05_4_accepts_the_truth_and_rejects_the_rest():
    assert check("05.4", "differences", verbose=False).passed
    assert check("05.4", "  Differences ", verbose=False).passed          # case and spaces do not matter
    for wrong, expected in [("rgb", "same four frames"), ("both", "exactly at 1/2"),
                            ("neither", "changes sign"), (1, "should be a string")]:
        result = check("05.4", wrong, verbose=False)
        assert not result.passed and expected in result.message, result.message
        assert "'differences'" not in result.message.split("hint:")[0]      # the truth is never shown
