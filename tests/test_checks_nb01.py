"""Exercise 01.2 (test-time averaging of frame predictions): an independent loop implementation
passes, typical wrong answers are rejected with the hint that names the mistake, and the
reference agrees with what FrameCNN(average="probs") returns. (01.1 is tested in
tests/test_course_checks.py.)"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from lecturekit.course import check, get_check
from lecturekit.course.checking import run_check
from lecturekit.models import build_model


def naive_average_frame_probs(frame_logits):
    """p(k | clip) = (1/T) sum_t exp(z_tk) / sum_j exp(z_tj), with loops (max subtracted per frame)."""
    b, t, k = frame_logits.shape
    out = torch.zeros(b, k, dtype=frame_logits.dtype)
    for i in range(b):
        for f in range(t):
            z = [float(v) for v in frame_logits[i, f]]
            m = max(z)
            e = [math.exp(v - m) for v in z]
            s = sum(e)
            for c in range(k):
                out[i, c] += e[c] / s / t
    return out


def test_naive_reference_passes():
    assert check("01.2", naive_average_frame_probs, verbose=False).passed


def test_check_is_consistent_when_the_naive_code_is_the_reference():
    spec = dataclasses.replace(get_check("01.2"), reference=naive_average_frame_probs)
    ref = get_check("01.2").reference
    assert run_check(spec, lambda z: ref(z)).passed


def test_check_is_found_by_id_and_by_name():
    assert get_check("01.2") is get_check("average_frame_probs")


def test_reference_is_what_frame_cnn_returns():
    """softmax of FrameCNN's clip logits (average="probs") = the reference on its frame logits."""
    from lecturekit.models.frame_cnn import average_frame_probs

    torch.manual_seed(0)
    model = build_model("frame_cnn", "small", num_classes=5).eval()
    x = torch.rand(3, 3, 6, 16, 16)
    ref = get_check("01.2").reference
    assert ref is average_frame_probs
    with torch.no_grad():
        clip = torch.softmax(model(x), dim=-1)
        frames = model.frame_logits(x)
    torch.testing.assert_close(ref(frames), clip, atol=1e-6, rtol=1e-5)
    with torch.no_grad():
        assert torch.equal(ref(frames), model(x).exp())     # the very numbers the model returns, exponentiated
    torch.testing.assert_close(ref(frames), naive_average_frame_probs(frames), atol=1e-6, rtol=1e-5)


def avg_logits_then_softmax(z):          # averages logits, the slide asks for probabilities
    return torch.softmax(z.mean(dim=1), dim=-1)


def no_softmax(z):                       # forgets the softmax
    return z.mean(dim=1)


def wrong_axis_batch(z):                 # averages over the clips of the batch
    return torch.softmax(z, dim=-1).mean(dim=0)


def wrong_axis_classes(z):
    return torch.softmax(z, dim=-1).mean(dim=-1)


def softmax_over_time(z):
    return torch.softmax(z, dim=1).mean(dim=1)


def keeps_t(z):                          # no reduction at all
    return torch.softmax(z, dim=-1)


def keepdim(z):
    return torch.softmax(z, dim=-1).mean(dim=1, keepdim=True)


def log_probs(z):                        # what FrameCNN.forward returns
    return torch.softmax(z, dim=-1).mean(dim=1).log()


def sums(z):
    return torch.softmax(z, dim=-1).sum(dim=1)


def naive_exp(z):                        # overflows for large logits
    e = z.exp()
    return (e / e.sum(dim=-1, keepdim=True)).mean(dim=1)


def squeezes(z):                         # squeeze() drops B when B = 1
    return torch.softmax(z.squeeze(), dim=-1).mean(dim=-2)


def float32_always(z):
    return torch.softmax(z.float(), dim=-1).mean(dim=1)


def in_place(z):
    z -= z.amax(dim=-1, keepdim=True)
    return torch.softmax(z, dim=-1).mean(dim=1)


WRONG = [
    (avg_logits_then_softmax, "averaged the LOGITS"),
    (no_softmax, "forgot the softmax"),
    (wrong_axis_batch, "axis 0"),
    (wrong_axis_classes, "wrong shape"),
    (softmax_over_time, "normalised over time"),
    (keeps_t, "kept the time axis"),
    (keepdim, "keepdim=True"),
    (log_probs, "log-probabilities"),
    (sums, "summed over time"),
    (naive_exp, "overflows"),
    (squeezes, "squeeze"),
    (float32_always, "dtype"),
    (in_place, "in place"),
]


@pytest.mark.parametrize("wrong,expected", WRONG, ids=[f.__name__ for f, _ in WRONG])
def test_average_check_rejects_typical_mistakes(wrong, expected):
    result = check("01.2", wrong, verbose=False)
    assert not result.passed and result.status == "failed"
    assert expected in result.message, result.message


def test_logit_averaging_fails_on_the_loud_frame_case_at_the_latest():
    """The hand-made case separates the two averages even by their argmax."""
    spec = get_check("01.2")
    loud = next(c for c in spec.make_cases() if c.label.startswith("one loud frame")).args[0]
    probs = spec.reference(loud)
    assert probs.argmax(dim=1).tolist() == [1, 1]
    assert avg_logits_then_softmax(loud).argmax(dim=1).tolist() == [0, 0]


# --------------------------------------------------------------------------- 01.3 experiment answer
def test_answer_01_3_accepts_the_truth_and_rejects_the_rest():
    from lecturekit.course import check

    assert check("01.3", "pair", verbose=False).passed
    assert check("01.3", "Pair ", verbose=False).passed
    for wrong, expected in [("verb", "played the other way round"), ("both", "stays near its chance"),
                            ("neither", "far above its chance"), (True, "should be a string"),
                            ("the pair", "not what the experiment shows")]:
        result = check("01.3", wrong, verbose=False)
        assert not result.passed and expected in result.message, result.message
        assert "'pair'" not in result.message.split("hint:")[0]
