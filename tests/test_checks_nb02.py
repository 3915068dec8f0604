"""Exercises 02.1 (stacking frames into channels for early fusion) and 02.2 (order-free temporal
pooling for late fusion): independent loop implementations pass, typical wrong answers are
rejected with the hint that names the mistake, and each reference is tied to the library model
it stands for (EarlyFusion's first Conv3d, LateFusion's average / max pooling)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from lecturekit.course import check, get_check
from lecturekit.course.checking import run_check
from lecturekit.models import build_model


# --------------------------------------------------------------------------- naive references
def naive_stack_frames(x):
    """Output channel c*T + t = channel c of frame t, written with loops."""
    b, c, t, h, w = x.shape
    out = torch.zeros(b, c * t, h, w, dtype=x.dtype)
    for ch in range(c):
        for f in range(t):
            out[:, ch * t + f] = x[:, ch, f]
    return out


def naive_temporal_pool(features, mode="avg"):
    b, t, d = features.shape
    out = torch.zeros(b, d, dtype=features.dtype)
    for i in range(b):
        for j in range(d):
            values = [float(features[i, f, j]) for f in range(t)]
            out[i, j] = sum(values) / t if mode == "avg" else max(values)
    return out


@pytest.mark.parametrize("ex_id,naive", [("02.1", naive_stack_frames), ("02.2", naive_temporal_pool)])
def test_naive_references_pass_and_agree_both_ways(ex_id, naive):
    assert check(ex_id, naive, verbose=False).passed
    spec = get_check(ex_id)
    ref = spec.reference
    swapped = dataclasses.replace(spec, reference=naive)
    assert run_check(swapped, lambda *a, **k: ref(*a, **k)).passed


def test_checks_are_found_by_name():
    assert get_check("stack_frames").exercise == "02.1"
    assert get_check("temporal_pool").exercise == "02.2"


# --------------------------------------------------------------------------- tied to the library models
def test_stacked_frames_with_the_flattened_conv3d_weight_reproduce_early_fusion_conv1():
    """EarlyFusion's conv1 is a Conv3d over all T frames; conv2d on the stacked channels with
    weight.reshape(O, C*T, k, k) gives the same output: the reference's order is the library's."""
    torch.manual_seed(0)
    model = build_model("early_fusion", "small", num_classes=4).eval()
    conv = model.tower.units[0].conv
    o, c, t, k, _ = conv.weight.shape
    assert (c, t) == (3, model.frames)
    x = torch.rand(2, 3, t, 32, 32)
    stack = get_check("02.1").reference
    as_2d = F.conv2d(stack(x), conv.weight.reshape(o, c * t, k, k), conv.bias, stride=conv.stride[1:],
                     padding=conv.padding[1:])
    with torch.no_grad():
        torch.testing.assert_close(as_2d, conv(x).squeeze(2), atol=1e-5, rtol=1e-5)
        # frame-major stacking does not match these weights
        wrong = F.conv2d(x.transpose(1, 2).reshape(2, c * t, 32, 32), conv.weight.reshape(o, c * t, k, k),
                         conv.bias, padding=conv.padding[1:])
        assert (wrong - conv(x).squeeze(2)).abs().max() > 1e-2


@pytest.mark.parametrize("mode", ["avg", "max"])
def test_pool_reference_reproduces_late_fusion_and_is_order_free(mode):
    torch.manual_seed(0)
    model = build_model("late_fusion", "small", num_classes=4, pool=mode, frame_indices=None).eval()
    x = torch.rand(2, 3, 8, 32, 32)
    pool = get_check("02.2").reference
    with torch.no_grad():
        per_frame = model.tower(x).transpose(1, 2).flatten(2)          # (B, T, D)
        logits = model.forward_head(model.fc(pool(per_frame, mode)))
        torch.testing.assert_close(logits, model(x), atol=1e-6, rtol=1e-5)
        shuffled = model(x[:, :, torch.randperm(8)])
    torch.testing.assert_close(shuffled, model(x), atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- wrong answers: 02.1
def st_frame_major(x):                  # torch.cat over the frames
    return torch.cat(list(x.unbind(2)), dim=1)


def st_view(x):
    b, c, t, h, w = x.shape
    return x.view(b, c * t, h, w)


def st_mean(x):
    return x.mean(dim=2)


def st_merge_t_h(x):
    return x.flatten(2, 3)


def st_to_float(x):
    b, c, t, h, w = x.shape
    return x.reshape(b, c * t, h, w).float() / 255 if x.dtype == torch.uint8 else x.reshape(b, c * t, h, w)


def st_float(x):
    b, c, t, h, w = x.shape
    return x.reshape(b, c * t, h, w).float()


def st_squeeze(x):                       # squeeze() drops T = 1 (and C = 1)
    x = x.squeeze()
    return x.reshape(x.shape[0], -1, *x.shape[-2:])


STACK_WRONG = [
    (st_frame_major, "frame-major order"),
    (st_view, "view"),
    (st_mean, "averaged the frames"),
    (st_merge_t_h, "merged T with H"),
    (st_to_float, "converted the values"),
    (st_float, "dtype"),
    (st_squeeze, "raised"),
]


@pytest.mark.parametrize("wrong,expected", STACK_WRONG, ids=[f.__name__ for f, _ in STACK_WRONG])
def test_stack_check_rejects_typical_mistakes(wrong, expected):
    result = check("02.1", wrong, verbose=False)
    assert not result.passed and result.status == "failed"
    assert expected in result.message, result.message


def test_frame_major_failure_shows_the_readable_order():
    first = check("02.1", st_frame_major, verbose=False).first_failure
    assert first["case"].startswith("readable video")
    assert first["expected"].startswith("[0, 1, 2, 3, 10, 11")
    assert first["got"].startswith("[0, 10, 20, 1, 11")


# --------------------------------------------------------------------------- wrong answers: 02.2
def tp_axis0(features, mode="avg"):
    return features.mean(dim=0) if mode == "avg" else features.amax(dim=0)


def tp_axis2(features, mode="avg"):
    return features.mean(dim=2) if mode == "avg" else features.amax(dim=2)


def tp_sum(features, mode="avg"):
    return features.sum(dim=1) if mode == "avg" else features.amax(dim=1)


def tp_concat(features, mode="avg"):
    return features.flatten(1)


def tp_keepdim(features, mode="avg"):
    return features.mean(dim=1, keepdim=True) if mode == "avg" else features.amax(dim=1, keepdim=True)


def tp_max_tuple(features, mode="avg"):   # torch.max with dim returns (values, indices)
    return features.mean(dim=1) if mode == "avg" else torch.max(features, dim=1)


def tp_ignores_mode(features, mode="avg"):
    return features.mean(dim=1)


def tp_default_max(features, mode="max"):
    return naive_temporal_pool(features, mode)


def tp_last_frame(features, mode="avg"):
    return features[:, -1]


POOL_WRONG = [
    (tp_axis0, "axis 0"),
    (tp_axis2, "axis 2"),
    (tp_sum, "summed over time"),
    (tp_concat, "concatenated the frames"),
    (tp_keepdim, "keepdim=True"),
    (tp_max_tuple, "(values, indices)"),
    (tp_ignores_mode, "ignores mode"),
    (tp_default_max, "mode='avg'"),
    (tp_last_frame, "last frame"),
]


@pytest.mark.parametrize("wrong,expected", POOL_WRONG, ids=[f.__name__ for f, _ in POOL_WRONG])
def test_pool_check_rejects_typical_mistakes(wrong, expected):
    result = check("02.2", wrong, verbose=False)
    assert not result.passed and result.status == "failed"
    assert expected in result.message, result.message


# --------------------------------------------------------------------------- 02.3 experiment answer
def test_answer_02_3_is_what_any_late_fusion_network_gets_on_the_mirrored_set():
    """The check's truth (1/2) holds for any weights: an untrained average-pooled late fusion
    network scores a mirrored set exactly 1/2."""
    from lecturekit.course import check
    from lecturekit.models import build_model

    torch.manual_seed(0)
    late = build_model("late_fusion", "small", num_classes=2, pool="avg", frame_indices=None).eval()
    x = torch.rand(6, 3, 8, 32, 32)
    y = torch.tensor([0, 1, 0, 1, 1, 0])
    with torch.no_grad():
        pred = late(torch.cat([x, x.flip(2)])).argmax(1)
    accuracy = (pred == torch.cat([y, 1 - y])).float().mean().item()
    assert accuracy == 0.5
    assert check("02.3", accuracy, verbose=False).passed
    assert check("02.3", 1 / 2, verbose=False).passed
    for wrong, expected in [(50, "not a percentage"), (1.0, "carry different labels"), (0.0, "exactly one of them"),
                            (0.75, "not what the experiment shows"), ("0.5", "should be a number")]:
        result = check("02.3", wrong, verbose=False)
        assert not result.passed and expected in result.message, result.message
        assert "0.5" not in result.message.split("hint:")[0].replace("'0.5'", "")
