"""Checks of notebook 08 (08.1 the eidetic recall update, 08.2 SSIM of one frame): independent naive
solutions pass, the checks' references agree with the naive code and with the library (the E3D-LSTM
cell, ``ssim_per_frame`` on real predictions), and typical wrong answers are rejected with the
matching hint."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from lecturekit.course import check, get_check
from lecturekit.course.checking import run_check
from lecturekit.metrics import ssim_per_frame
from lecturekit.metrics.image import mean_ssim
from lecturekit.models.e3d_lstm import EideticLSTMCell, recall_update
from reference.course_naive_nb08 import naive_recall_update, naive_ssim_frame


# --------------------------------------------------------------------------- 08.1 recall update
def test_naive_recall_update_passes():
    assert check("08.1", naive_recall_update, verbose=False).passed


def test_recall_reference_agrees_with_naive_code():
    spec = get_check("08.1")
    result = run_check(dataclasses.replace(spec, reference=naive_recall_update),
                       lambda *a: recall_update(*a))
    assert result.passed, result.message


def test_recall_reference_is_what_the_e3d_cell_adds_to_i_times_g():
    """C_t = I ⊙ G + LayerNorm(C_{t-1} + RECALL): subtracting I ⊙ G (recomputed from the cell's own
    convolutions) from the cell's C_t leaves exactly the exercise's function with the cell's γ, β."""
    torch.manual_seed(0)
    cell = EideticLSTMCell(3, 4, (2, 3, 3)).eval()
    with torch.no_grad():
        cell.norm_c.weight.uniform_(0.5, 1.5)
        cell.norm_c.bias.uniform_(-0.5, 0.5)
    x, h, c, m = torch.randn(2, 3, 2, 5, 5), torch.randn(2, 4, 2, 5, 5), torch.randn(2, 4, 2, 5, 5), torch.randn(2, 4, 2, 5, 5)
    history = torch.randn(2, 3, 4, 2, 5, 5)
    with torch.no_grad():
        _, c_new, _ = cell(x, h, c, m, history)
        xr, xi, xg, *_ = cell.norm_x(cell._conv(cell.conv_x, x)).chunk(7, dim=1)
        hr, hi, hg, _ = cell.norm_h(cell._conv(cell.conv_h, h)).chunk(4, dim=1)
        r, i, g = torch.sigmoid(xr + hr), torch.sigmoid(xi + hi), torch.tanh(xg + hg)
        expected = recall_update(r, c, history, cell.norm_c.weight, cell.norm_c.bias)
        assert torch.allclose(c_new - i * g, expected, atol=1e-5)
        assert torch.allclose(naive_recall_update(r, c, history, cell.norm_c.weight, cell.norm_c.bias),
                              expected, atol=1e-5)


def _tok(x):
    return x.permute(0, 2, 3, 4, 1).reshape(x.shape[0], -1, x.shape[1])


def _hist_tok(h):
    return h.permute(0, 1, 3, 4, 5, 2).reshape(h.shape[0], -1, h.shape[2])


def _back(y, like):
    b, c, t, hh, w = like.shape
    return y.reshape(b, t, hh, w, c).permute(0, 4, 1, 2, 3)


def _ln(z, weight, bias):
    return F.group_norm(z, 1, weight, bias, 1e-5)


def recall_softmax_over_queries(r, c_prev, history, weight, bias):
    kv = _hist_tok(history)
    a = torch.softmax(_tok(r) @ kv.transpose(1, 2), dim=1)
    return _ln(c_prev + _back(a @ kv, r), weight, bias)


def recall_scaled(r, c_prev, history, weight, bias):
    kv = _hist_tok(history)
    a = torch.softmax(_tok(r) @ kv.transpose(1, 2) / r.shape[1] ** 0.5, dim=-1)
    return _ln(c_prev + _back(a @ kv, r), weight, bias)


def recall_reshape_without_permute(r, c_prev, history, weight, bias):
    kv = history.reshape(history.shape[0], -1, history.shape[2])
    a = torch.softmax(_tok(r) @ kv.transpose(1, 2), dim=-1)
    return _ln(c_prev + _back(a @ kv, r), weight, bias)


def recall_last_memory_only(r, c_prev, history, weight, bias):
    return naive_recall_update(r, c_prev, history[:, -1:], weight, bias)


def recall_norm_over_channels(r, c_prev, history, weight, bias):
    kv = _hist_tok(history)
    z = c_prev + _back(torch.softmax(_tok(r) @ kv.transpose(1, 2), dim=-1) @ kv, r)
    return F.layer_norm(z.movedim(1, -1), (z.shape[1],), weight, bias, 1e-5).movedim(-1, 1)


def recall_without_norm(r, c_prev, history, weight, bias):
    kv = _hist_tok(history)
    return c_prev + _back(torch.softmax(_tok(r) @ kv.transpose(1, 2), dim=-1) @ kv, r)


def recall_without_residual(r, c_prev, history, weight, bias):
    return naive_recall_update(r, torch.zeros_like(c_prev), history, weight, bias)


def recall_in_place(r, c_prev, history, weight, bias):
    out = naive_recall_update(r, c_prev, history, weight, bias)
    c_prev.add_(1.0)
    return out


@pytest.mark.parametrize("wrong, expected", [
    (recall_softmax_over_queries, "wrong axis"),
    (recall_scaled, "√C"),
    (recall_reshape_without_permute, "permute"),
    (recall_last_memory_only, "all n stored"),
    (recall_norm_over_channels, "over the channels at each location"),
    (recall_without_norm, "layer norm is missing"),
    (recall_without_residual, "C_{t-1} is missing"),
    (recall_in_place, "modified"),
])
def test_recall_update_rejects_mistakes(wrong, expected):
    result = check("08.1", wrong, verbose=False)
    assert not result.passed
    assert expected in result.message, result.message


# --------------------------------------------------------------------------- 08.2 SSIM of one frame
def test_naive_ssim_passes():
    assert check("08.2", naive_ssim_frame, verbose=False).passed


def test_ssim_reference_agrees_with_naive_code():
    spec = get_check("08.2")
    result = run_check(dataclasses.replace(spec, reference=naive_ssim_frame), mean_ssim)
    assert result.passed, result.message


def test_ssim_reference_is_the_library_metric_on_predicted_frames():
    """Frame by frame, on a blurred and shifted 'prediction' of glyph frames, the one-frame SSIM is
    the library's per-frame SSIM of the video."""
    from lecturekit.data import MovingGlyphs

    video = MovingGlyphs(seed=3, size=32, glyphs=1, num_samples=2, augment=False).tensors()[:, :, :4]
    pred = F.avg_pool3d(video.roll(1, dims=-1), (1, 3, 3), 1, (0, 1, 1))
    per_frame = ssim_per_frame(pred, video)                               # (2, 4)
    for b in range(2):
        for t in range(4):
            got = mean_ssim(pred[b, 0, t], video[b, 0, t])
            assert abs(got.item() - per_frame[b, t].item()) < 1e-6
            assert abs(naive_ssim_frame(pred[b, 0, t], video[b, 0, t]).item() - per_frame[b, t].item()) < 1e-5


def _win(kind):
    if kind == "box":
        return torch.full((11, 11), 1 / 121, dtype=torch.float64)
    g = torch.exp(-(torch.arange(11, dtype=torch.float64) - 5) ** 2 / 4.5)
    return torch.outer(g, g) / g.sum() ** 2


def _ssim_map(x, y, win, padding=0, c1=1e-4, c2=9e-4):
    k = win[None, None]
    x, y = x.double()[None, None], y.double()[None, None]
    mx, my = F.conv2d(x, k, padding=padding), F.conv2d(y, k, padding=padding)
    vx = F.conv2d(x * x, k, padding=padding) - mx ** 2
    vy = F.conv2d(y * y, k, padding=padding) - my ** 2
    cxy = F.conv2d(x * y, k, padding=padding) - mx * my
    return (2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))


def ssim_box_window(x, y):
    return _ssim_map(x, y, _win("box")).mean()


def ssim_zero_padded(x, y):
    return _ssim_map(x, y, _win("gauss"), padding=5).mean()


def ssim_constants_for_255(x, y):
    return _ssim_map(x, y, _win("gauss"), c1=(0.01 * 255) ** 2, c2=(0.03 * 255) ** 2).mean()


def ssim_global(x, y):
    x, y = x.double(), y.double()
    mx, my = x.mean(), y.mean()
    vx, vy, cxy = x.var(unbiased=False), y.var(unbiased=False), ((x - mx) * (y - my)).mean()
    return (2 * mx * my + 1e-4) * (2 * cxy + 9e-4) / ((mx ** 2 + my ** 2 + 1e-4) * (vx + vy + 9e-4))


@pytest.mark.parametrize("wrong, expected", [
    (ssim_box_window, "Gaussian"),
    (ssim_zero_padded, "valid"),
    (ssim_constants_for_255, "L = 255"),
    (ssim_global, "LOCAL"),
])
def test_ssim_rejects_mistakes(wrong, expected):
    result = check("08.2", wrong, verbose=False)
    assert not result.passed
    assert expected in result.message, result.message
