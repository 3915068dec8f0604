"""Checks of notebook 03: an independent naive solution passes every check, the library's own
reference agrees with the naive code (roles swapped), and typical wrong answers are rejected with
the matching hint."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from lecturekit.course import check, get_check
from lecturekit.course.checking import run_check
from lecturekit.layers.factorised_conv import Conv2Plus1d, conv2plus1d, mid_channels
from reference.course_naive_nb03_nb04 import naive_conv2plus1d, naive_conv3d_cost, naive_mid_channels


@pytest.mark.parametrize("ex_id, naive", [("03.1", naive_conv2plus1d), ("03.2", naive_conv3d_cost),
                                          ("03.3", naive_mid_channels)])
def test_naive_solution_passes(ex_id, naive):
    assert check(ex_id, naive, verbose=False).passed


@pytest.mark.parametrize("ex_id, naive", [("03.1", naive_conv2plus1d), ("03.2", naive_conv3d_cost),
                                          ("03.3", naive_mid_channels)])
def test_reference_agrees_with_naive_code(ex_id, naive):
    spec = get_check(ex_id)
    library = spec.reference
    result = run_check(dataclasses.replace(spec, reference=naive), lambda *a, _f=library, **k: _f(*a, **k))
    assert result.passed, result.message


def test_conv2plus1d_reference_is_the_library_block():
    """The check's reference is lecturekit's conv2plus1d, the function Conv2Plus1d runs: given
    the block's S and T weights (no BN, a ReLU between) it returns exactly the block's output."""
    assert get_check("03.1").reference is conv2plus1d
    block = Conv2Plus1d(4, 6, norm_layer=torch.nn.Identity, act=torch.nn.ReLU)
    assert block.mid == mid_channels(4, 6) and block.spatial.weight.shape == (block.mid, 4, 1, 3, 3)
    assert block.temporal.weight.shape == (6, block.mid, 3, 1, 1)
    x = torch.randn(2, 4, 5, 6, 7, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(conv2plus1d(x, block.spatial.weight, block.temporal.weight), block(x))


# --------------------------------------------------------------------------- wrong answers
def c21_no_relu(x, ws, wt):
    return F.conv3d(F.conv3d(x, ws, padding=(0, 1, 1)), wt, padding=(1, 0, 0))


def c21_relu_after(x, ws, wt):
    return torch.relu(F.conv3d(torch.relu(F.conv3d(x, ws, padding=(0, 1, 1))), wt, padding=(1, 0, 0)))


def c21_no_time_pad(x, ws, wt):
    return F.conv3d(torch.relu(F.conv3d(x, ws, padding=(0, 1, 1))), wt)


def c21_full_padding(x, ws, wt):            # pads time for S too: T grows by 2
    return F.conv3d(torch.relu(F.conv3d(x, ws, padding=1)), wt, padding=(1, 0, 0))


def c21_order_swapped(x, ws, wt):           # T first: weight shapes do not fit, raises
    return F.conv3d(torch.relu(F.conv3d(x, wt, padding=(1, 0, 0))), ws, padding=(0, 1, 1))


@pytest.mark.parametrize("wrong, expected", [
    (c21_no_relu, "no ReLU between S and T"),
    (c21_relu_after, "ReLU after T as well"),
    (c21_no_time_pad, "pad (1, 0, 0)"),
    (c21_full_padding, "wrong shape"),
    (c21_order_swapped, "raised"),
])
def test_conv2plus1d_rejects_mistakes(wrong, expected):
    result = check("03.1", wrong, verbose=False)
    assert not result.passed
    assert expected in result.message, result.message


def cost_macs(cin, cout, kernel, output, bias=True):
    v = kernel[0] * kernel[1] * kernel[2]
    return cin * cout * v + (cout if bias else 0), cin * cout * v * output[0] * output[1] * output[2]


def cost_bias_flops(cin, cout, kernel, output, bias=True):
    v, n = kernel[0] * kernel[1] * kernel[2], output[0] * output[1] * output[2]
    return cin * cout * v + (cout if bias else 0), 2 * cin * cout * v * n + (cout * n if bias else 0)


def cost_one_position(cin, cout, kernel, output, bias=True):
    v = kernel[0] * kernel[1] * kernel[2]
    return cin * cout * v + (cout if bias else 0), 2 * cin * cout * v


def cost_2d_kernel(cin, cout, kernel, output, bias=True):
    v = kernel[1] * kernel[2]
    return cin * cout * v + (cout if bias else 0), 2 * cin * cout * v * output[0] * output[1] * output[2]


def cost_no_bias_param(cin, cout, kernel, output, bias=True):
    v = kernel[0] * kernel[1] * kernel[2]
    return cin * cout * v, 2 * cin * cout * v * output[0] * output[1] * output[2]


@pytest.mark.parametrize("wrong, expected", [
    (cost_macs, "2 FLOPs per MAC"),
    (cost_bias_flops, "bias additions"),
    (cost_one_position, "ONE output position"),
    (cost_2d_kernel, "temporal extent"),
    (cost_no_bias_param, "miss the bias"),
])
def test_conv3d_cost_rejects_mistakes(wrong, expected):
    result = check("03.2", wrong, verbose=False)
    assert not result.passed
    assert expected in result.message, result.message


@pytest.mark.parametrize("wrong, expected", [
    (lambda i, o, t=3, d=3: round(t * d * d * i * o / (d * d * i + t * o)), "NEAREST"),
    (lambda i, o, t=3, d=3: -(-(t * d * d * i * o) // (d * d * i + t * o)), "rounded UP"),
    (lambda i, o, t=3, d=3: (t * d * d * i * o) // (d * d * o + t * i), "swapped"),
    (lambda i, o, t=3, d=3: t * d * d * i * o / (d * d * i + t * o), "return an int"),
    (lambda i, o, t=3, d=3: (27 * i * o) // (9 * i + 3 * o), "wrong value"),   # ignores t and d
])
def test_mid_channels_rejects_mistakes(wrong, expected):
    result = check("03.3", wrong, verbose=False)
    assert not result.passed
    assert expected in result.message, result.message


# --------------------------------------------------------------------------- 03.4 experiment answer
def test_answer_03_4_is_the_window_a_gradient_probe_measures():
    from lecturekit.course import check
    from lecturekit.layers.factorised_conv import Conv2Plus1d

    torch.manual_seed(0)
    stack = torch.nn.Sequential(*[Conv2Plus1d(2, 2, norm_layer=torch.nn.Identity) for _ in range(8)])
    x = torch.randn(1, 2, 32, 5, 5, requires_grad=True)
    stack(x)[0, :, 16].sum().backward()
    seen = int((x.grad.abs().sum(dim=(0, 1, 3, 4)) > 0).sum())
    assert seen == 17
    assert check("03.4", seen, verbose=False).passed
    for wrong, expected in [(24, "not k = 3"), (16, "forgot the output frame"), (3 ** 8, "not by multiplying"),
                            (9, "into the past AND"), (17.5, "not what the experiment shows"), ("17", "a number")]:
        result = check("03.4", wrong, verbose=False)
        assert not result.passed and expected in result.message, result.message
