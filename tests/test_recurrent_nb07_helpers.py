"""Library pieces added for notebook 07: the ungated ConvRNN cell and LSTA's attention maps."""

from __future__ import annotations

import pytest
import torch

from lecturekit.layers.conv_rnn import ConvRNNCell, run_cell
from lecturekit.models.lsta import LSTA


def test_conv_rnn_1x1_on_1x1_maps_equals_nn_rnn_cell():
    """1×1 kernels on 1×1 maps: H_t = tanh(W_x X_t + W_h H_{t-1} + b) is torch.nn.RNNCell (tanh)."""
    torch.manual_seed(0)
    ref = torch.nn.RNNCell(3, 5)
    cell = ConvRNNCell(3, 5, kernel_size=1)
    with torch.no_grad():
        cell.conv_x.weight.copy_(ref.weight_ih.view(5, 3, 1, 1))
        cell.conv_x.bias.copy_(ref.bias_ih + ref.bias_hh)
        cell.conv_h.weight.copy_(ref.weight_hh.view(5, 5, 1, 1))
    x = torch.randn(4, 6, 3)
    out, h_last = run_cell(cell, x.view(4, 6, 3, 1, 1))
    h = torch.zeros(4, 5)
    for t in range(6):
        h = ref(x[:, t], h)
        torch.testing.assert_close(out[:, t].view(4, 5), h, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h_last.view(4, 5), h, atol=1e-6, rtol=1e-5)


def test_conv_rnn_keeps_the_map_size_and_is_causal():
    torch.manual_seed(0)
    cell = ConvRNNCell(2, 4, kernel_size=3)
    x = torch.randn(2, 5, 2, 7, 9)
    y = x.clone()
    y[:, 3] += 1.0
    a, _ = run_cell(cell, x)
    b, _ = run_cell(cell, y)
    assert a.shape == (2, 5, 4, 7, 9)
    torch.testing.assert_close(a[:, :3], b[:, :3], rtol=0, atol=0)
    assert (a[:, 3] - b[:, 3]).abs().max() > 0


def test_conv_rnn_bad_inputs_raise():
    with pytest.raises(ValueError, match="odd"):
        ConvRNNCell(2, 4, kernel_size=2)
    with pytest.raises(ValueError):
        ConvRNNCell(2, 4)(torch.zeros(1, 3, 5, 5))                     # 3 channels, expected 2


def test_lsta_attention_maps_are_distributions_over_space():
    torch.manual_seed(0)
    model = LSTA(num_classes=3, in_channels=1).eval()
    video = torch.rand(2, 1, 5, 32, 32)
    maps = model.attention_maps(video)
    assert maps.shape == (2, 5, 8, 8)
    assert (maps >= 0).all()
    torch.testing.assert_close(maps.sum(dim=(2, 3)), torch.ones(2, 5))


def test_lsta_attention_maps_are_the_weights_the_cell_applies():
    """With the attention recurrence zeroed, s_t = 0 and u_t = softmax(ν_t); and x̂_t = u_t ⊙ x_t
    is what the cell returns, so the maps are the weights actually used."""
    torch.manual_seed(1)
    model = LSTA(num_classes=3, in_channels=1, zero_attention=True).eval()
    video = torch.rand(2, 1, 4, 32, 32)
    maps = model.attention_maps(video)
    from lecturekit.layers.shapes import fold_time, unfold_time
    from lecturekit.models.lsta import cam
    import torch.nn.functional as F

    with torch.no_grad():
        x = model.backbone(fold_time(video))
        nu = unfold_time(cam(F.relu(model.bn(x)), model.frame_dictionary.weight), 4)   # (B, T, 1, h, w)
        x = unfold_time(x, 4)
        expected = torch.softmax(nu.flatten(2), dim=2).view(2, 4, 8, 8)
        torch.testing.assert_close(maps, expected)
        state = None
        for t in range(4):
            x_att, state = model.cell(x[:, t], nu[:, t], state)
            torch.testing.assert_close(x_att, maps[:, t, None] * x[:, t])


def test_lsta_attention_maps_check_the_input():
    with pytest.raises(ValueError):
        LSTA(num_classes=3, in_channels=1).attention_maps(torch.rand(2, 3, 4, 32, 32))
