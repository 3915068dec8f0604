"""Checks of notebook 04 added here (04.2 gated shift; 04.1 is tested in test_course_checks.py):
an independent naive solution passes, the check's reference agrees with the naive code and with
lecturekit's GateShift module, and typical wrong answers are rejected with the matching hint."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lecturekit.course import check, get_check
from lecturekit.course.checking import run_check
from lecturekit.models.gsf import GateShift, gated_shift, interleave_permutation
from reference.course_naive_nb03_nb04 import naive_gated_shift


def test_naive_solution_passes():
    assert check("04.2", naive_gated_shift, verbose=False).passed


def test_reference_agrees_with_naive_code():
    spec = get_check("04.2")
    result = run_check(dataclasses.replace(spec, reference=naive_gated_shift),
                       lambda x, g: gated_shift(x, g))
    assert result.passed, result.message


def test_reference_is_the_gsm_module_up_to_its_interleave():
    """GateShift(fuse=False) = gated_shift (the reference) with the module's own gate, then the fixed
    channel interleave of the released code."""
    torch.manual_seed(0)
    b, c, t, h, w = 2, 8, 5, 3, 3
    module = GateShift(c, fuse=False).eval()
    with torch.no_grad():
        module.gate.weight.normal_(0, 0.5)
        module.gate.bias.normal_(0, 0.5)
    x = torch.randn(b, c, t, h, w)
    frames = x.transpose(1, 2).reshape(b * t, c, h, w)
    got = module(frames, t).view(b, t, c, h, w).transpose(1, 2)
    from lecturekit.models.gsf import gate_conv
    gate = torch.tanh(gate_conv(torch.relu(module.bn(x)), module.gate))
    expected = gated_shift(x, gate)[:, interleave_permutation(c)]
    torch.testing.assert_close(got, expected)


# --------------------------------------------------------------------------- wrong answers
def _move(v, step):
    out = torch.zeros_like(v)
    if step > 0:
        out[:, :, :-step] = v[:, :, step:]
    else:
        out[:, :, -step:] = v[:, :, :step]
    return out


def gs_directions_swapped(x, g):
    h = x.shape[1] // 2
    y1, y2 = g[:, :1] * x[:, :h], g[:, 1:] * x[:, h:]
    return torch.cat([_move(y1, -1) + x[:, :h] - y1, _move(y2, +1) + x[:, h:] - y2], dim=1)


def gs_no_residual(x, g):
    h = x.shape[1] // 2
    return torch.cat([_move(g[:, :1] * x[:, :h], 1), _move(g[:, 1:] * x[:, h:], -1)], dim=1)


def gs_gate_after_shift(x, g):
    h = x.shape[1] // 2
    x1, x2 = x[:, :h], x[:, h:]
    return torch.cat([g[:, :1] * _move(x1, 1) + (1 - g[:, :1]) * x1,
                      g[:, 1:] * _move(x2, -1) + (1 - g[:, 1:]) * x2], dim=1)


def gs_gates_swapped(x, g):
    return naive_gated_shift(x, g.flip(1))


def gs_roll(x, g):
    h = x.shape[1] // 2
    y1, y2 = g[:, :1] * x[:, :h], g[:, 1:] * x[:, h:]
    return torch.cat([torch.roll(y1, -1, 2) + x[:, :h] - y1, torch.roll(y2, 1, 2) + x[:, h:] - y2], dim=1)


def gs_in_place(x, g):
    out = naive_gated_shift(x, g)
    x.mul_(0)
    return out


@pytest.mark.parametrize("wrong, expected", [
    (gs_directions_swapped, "wrong way"),
    (gs_no_residual, "equal the input"),       # the zero-gate case fails first, with its hint
    (gs_gate_after_shift, "gated AFTER shifting"),
    (gs_gates_swapped, "gates are swapped"),
    (gs_roll, "bring in zeros"),
    (gs_in_place, "modified"),
])
def test_gated_shift_rejects_mistakes(wrong, expected):
    result = check("04.2", wrong, verbose=False)
    assert not result.passed
    assert expected in result.message, result.message


# --------------------------------------------------------------------------- 04.3 experiment answer
def test_answer_04_3_the_network_without_shift_is_order_blind_for_any_weights():
    from lecturekit.models import build_model

    torch.manual_seed(0)
    x = torch.rand(3, 3, 8, 32, 32)
    for fold_div, blind in ((None, True), (8, False)):
        net = build_model("tsm", "small", num_classes=2, widths=(8, 16, 32), fold_div=fold_div).eval()
        with torch.no_grad():
            same = torch.allclose(net(x), net(x.flip(2)), atol=1e-5)
        assert same is blind
    assert check("04.3", "no shift", verbose=False).passed
    assert check("04.3", "No Shift", verbose=False).passed
    for wrong, expected in [("shift", "playing the clip backwards"), ("both", "well above chance"),
                            ("neither", "nothing that mixes frames"), (False, "should be a string")]:
        result = check("04.3", wrong, verbose=False)
        assert not result.passed and expected in result.message, result.message
