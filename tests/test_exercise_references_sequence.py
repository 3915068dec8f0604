"""The references of exercises 06.1, 06.2, 07.1, 07.2, 08.1 and 08.2 are library functions, and the
library runs them itself: ATA's alignment chains greedy_patch_match, ConvLSTMCell steps with
convlstm_step, EideticLSTMCell adds recall_update, ssim_per_frame averages mean_ssim. One
definition of each idea, so the checks test students against the code the course runs."""

from __future__ import annotations

import torch

from lecturekit.course.checks import get_check
from lecturekit.layers import conv_rnn
from lecturekit.layers.conv_rnn import ConvLSTMCell, convlstm_step
from lecturekit.metrics import image
from lecturekit.metrics.image import mean_ssim, ssim_per_frame
from lecturekit.models import ata, e3d_lstm
from lecturekit.models.ata import alignment_permutations, greedy_patch_match
from lecturekit.models.e3d_lstm import EideticLSTMCell, recall_update
from lecturekit.models.rnn_cells import RNNCell, gradient_flow, rnn_gradient_norms
from call_counter import count_calls


def test_the_checks_reference_the_library_functions():
    assert get_check("06.1").reference is greedy_patch_match
    assert get_check("06.2").reference is alignment_permutations
    assert get_check("07.1").reference is convlstm_step
    assert get_check("07.2").reference is rnn_gradient_norms
    assert get_check("08.1").reference is recall_update
    assert get_check("08.2").reference is mean_ssim


def test_ata_aligns_frame_pairs_with_greedy_patch_match(monkeypatch):
    torch.manual_seed(0)
    x = torch.randn(2, 5, 6, 8)
    perm = alignment_permutations(x)
    prev, manual = x[:, 0], [torch.arange(6).expand(2, 6)]
    for t in range(1, 5):
        manual.append(greedy_patch_match(prev, x[:, t]))
        prev = x[:, t].gather(1, manual[-1][..., None].expand(-1, -1, 8))
    assert torch.equal(perm, torch.stack(manual, 1))
    calls = count_calls(monkeypatch, ata, "greedy_patch_match")
    ata.ATA(num_classes=3).eval()(torch.randn(1, 3, 4, 32, 32))
    assert len(calls) == 2 * 3                                   # 2 blocks × (T - 1) frame pairs


def test_convlstm_cell_is_convlstm_step_with_its_weights(monkeypatch):
    torch.manual_seed(0)
    for cell, x in [(ConvLSTMCell(3, 4, 5, state_kernel_size=3, peephole="channel"), torch.randn(2, 3, 6, 7)),
                    (ConvLSTMCell(3, 4, 3), torch.randn(2, 3, 6, 7)),
                    (ConvLSTMCell(0, 4, 3, peephole="channel"), None)]:
        h, c = torch.randn(2, 4, 6, 7), torch.randn(2, 4, 6, 7)
        h_cell, (_, c_cell) = cell(x, (h, c))
        w_x = cell.conv_x.weight if cell.conv_x is not None else None
        h_fn, c_fn = convlstm_step(x, h, c, w_x, cell.conv_h.weight, cell.bias, cell.peep)
        assert torch.equal(h_cell, h_fn) and torch.equal(c_cell, c_fn)
    calls = count_calls(monkeypatch, conv_rnn, "convlstm_step")
    ConvLSTMCell(3, 4)(torch.randn(1, 3, 5, 5))
    assert calls == [1]


def test_rnn_gradient_norms_is_gradient_flow_of_an_rnn_cell():
    g = torch.Generator().manual_seed(0)
    A, B = torch.randn(5, 5, generator=g, dtype=torch.float64) / 3, torch.randn(5, 2, generator=g, dtype=torch.float64)
    b, x = torch.randn(5, generator=g, dtype=torch.float64), torch.randn(7, 2, generator=g, dtype=torch.float64)
    cell = RNNCell(2, 5).double()
    with torch.no_grad():
        cell.A.weight.copy_(A)
        cell.B.weight.copy_(B)
        cell.B.bias.copy_(b)
    assert torch.equal(rnn_gradient_norms(A, B, b, x), gradient_flow(cell, x[None]))


def test_e3d_cell_adds_recall_update(monkeypatch):
    calls = count_calls(monkeypatch, e3d_lstm, "recall_update")
    torch.manual_seed(0)
    cell = EideticLSTMCell(3, 4, (2, 3, 3))
    cell(torch.randn(2, 3, 2, 5, 5), *(torch.randn(2, 4, 2, 5, 5) for _ in range(3)), torch.randn(2, 3, 4, 2, 5, 5))
    assert calls == [1]


def test_ssim_per_frame_averages_mean_ssim(monkeypatch):
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(2, 3, 4, 16, 13, generator=g), torch.rand(2, 3, 4, 16, 13, generator=g)
    per_channel = mean_ssim(pred.transpose(1, 2).double(), target.transpose(1, 2).double())   # (B, T, C)
    assert per_channel.shape == (2, 4, 3) and per_channel.dtype == torch.float64
    assert torch.equal(ssim_per_frame(pred, target), per_channel.mean(dim=2).float())
    one = mean_ssim(pred[0, 0, 0], target[0, 0, 0])
    assert one.shape == () and one.dtype == torch.float32
    assert one.item() == ssim_per_frame(pred[:1, :1, :1], target[:1, :1, :1]).item()
    calls = count_calls(monkeypatch, image, "mean_ssim")
    ssim_per_frame(pred, target)
    assert calls == [1]
