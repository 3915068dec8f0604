"""The temporal shift (TSM, Lin et al. 2019): which channels move, in which direction, with what
padding; zero parameters and zero FLOPs; offline vs online; both tensor layouts."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from lecturekit.layers import TemporalShift, fold_time, online_shift_step, shift_folded, temporal_shift
from reference.temporal_ops import naive_temporal_shift, shift_as_depthwise_conv


def _frame_index_video(b=2, c=16, t=8, h=2, w=3):
    """Value = 1000*frame + channel + 1 (never zero), so every moved value names its origin."""
    f = torch.arange(t, dtype=torch.float32).view(1, 1, t, 1, 1) * 1000
    ch = torch.arange(c, dtype=torch.float32).view(1, c, 1, 1, 1) + 1
    return (f + ch).expand(b, c, t, h, w).clone()


def test_offline_shift_index_semantics():
    """The official TemporalShift.shift: channel 0 at frame t holds channel 0 of frame t+1; channel fold holds
    frame t-1; the rest stay; the last frame of the first fold and the first frame of the second
    fold are zero. T = 8, C = 16, fold = C/8 = 2."""
    x = _frame_index_video()
    y = temporal_shift(x, fold_div=8)
    t, fold = 8, 2
    for f in range(t):
        if f < t - 1:
            assert torch.equal(y[:, :fold, f], x[:, :fold, f + 1])
        else:
            assert torch.all(y[:, :fold, f] == 0)
        if f > 0:
            assert torch.equal(y[:, fold:2 * fold, f], x[:, fold:2 * fold, f - 1])
        else:
            assert torch.all(y[:, fold:2 * fold, f] == 0)
        assert torch.equal(y[:, 2 * fold:, f], x[:, 2 * fold:, f])
    assert y[0, 0, 3, 0, 0].item() == 4 * 1000 + 1          # channel 0 at t=3 came from t=4
    assert y[0, 2, 3, 0, 0].item() == 2 * 1000 + 3          # channel fold=2 at t=3 came from t=2


@pytest.mark.parametrize("mode", ["offline", "online"])
@pytest.mark.parametrize("c,fold_div", [(16, 8), (13, 4), (8, 8), (7, 8), (24, 3)])
def test_shift_matches_naive_loop_reference(mode, c, fold_div):
    """Vectorised shift == per-index loop, for (B, C, T, H, W) and the folded (B*T, C, H, W)
    layout, including C not divisible by fold_div and fold = 0."""
    x = torch.randn(2, c, 5, 3, 4, generator=torch.Generator().manual_seed(c))
    want = naive_temporal_shift(x, fold_div, mode)
    torch.testing.assert_close(temporal_shift(x, fold_div, mode=mode), want, rtol=0, atol=0)
    torch.testing.assert_close(shift_folded(fold_time(x), 5, fold_div, mode=mode), fold_time(want), rtol=0, atol=0)


def test_shift_sum_identity():
    """Mass is preserved except the two boundary slices that fall off the ends (TSM, Sec. 3)."""
    x = torch.randn(3, 16, 8, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    fold = 2
    y = temporal_shift(x)
    want = x.sum() - x[:, :fold, 0].sum() - x[:, fold:2 * fold, -1].sum()
    torch.testing.assert_close(y.sum(), want)


def test_shift_equals_fixed_depthwise_temporal_conv():
    """The shift is a depthwise temporal conv with kernels [0,0,1], [1,0,0], [0,1,0] (TSM, Sec. 3)."""
    x = torch.randn(2, 16, 6, 3, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(temporal_shift(x), shift_as_depthwise_conv(x), rtol=0, atol=1e-6)


def test_backward_shifts_gradients_the_opposite_way():
    """d(out)/d(in): a gradient on channel 0 at frame t lands on frame t+1 of the input, and
    the library's gradients equal the naive reference's."""
    x = torch.randn(1, 8, 5, 2, 2, requires_grad=True)
    g = torch.zeros(1, 8, 5, 2, 2)
    g[0, 0, 2] = 1.0                                      # upstream gradient on channel 0, t = 2
    (temporal_shift(x) * g).sum().backward()
    assert torch.all(x.grad[0, 0, 3] == 1) and x.grad.abs().sum() == 4
    x2 = x.detach().clone().requires_grad_(True)
    gr = torch.randn_like(g)
    (temporal_shift(x2, 4) * gr).sum().backward()
    x3 = x.detach().clone().requires_grad_(True)
    (naive_temporal_shift(x3, 4) * gr).sum().backward()
    torch.testing.assert_close(x2.grad, x3.grad, rtol=0, atol=0)


def test_shift_has_no_parameters_and_counts_zero_flops():
    """The slide's claim "zero-FLOPs, zero-params": nothing to learn, no multiply-add
    (FlopCounterMode has no formula for copies and slicing)."""
    mod = TemporalShift(8)
    assert sum(p.numel() for p in mod.parameters()) == 0 and len(list(mod.buffers())) == 0
    x = torch.randn(2, 64, 8, 14, 14)
    with FlopCounterMode(display=False) as counter:
        temporal_shift(x)
        mod(fold_time(x), 8)
    assert counter.get_total_flops() == 0


def test_online_streaming_reproduces_online_mode_and_is_causal():
    """Feeding frames one by one with the cache == the offline computation of the online
    (uni-directional) shift; it differs from the bidirectional shift and never reads the future."""
    x = torch.randn(2, 16, 6, 3, 3, generator=torch.Generator().manual_seed(2))
    cache, outs = None, []
    for t in range(x.shape[2]):
        o, cache = online_shift_step(x[:, :, t], cache, fold_div=8)
        outs.append(o)
    streamed = torch.stack(outs, dim=2)
    torch.testing.assert_close(streamed, temporal_shift(x, mode="online"), rtol=0, atol=0)
    assert not torch.equal(streamed, temporal_shift(x, mode="offline"))
    x_future = x.clone()
    x_future[:, :, -1] += 1.0
    torch.testing.assert_close(temporal_shift(x_future, mode="online")[:, :, :-1],
                               temporal_shift(x, mode="online")[:, :, :-1], rtol=0, atol=0)


def test_fold_div_none_is_identity_and_bad_inputs_raise():
    x = torch.randn(1, 8, 4, 2, 2)
    assert torch.equal(temporal_shift(x, None), x)
    with pytest.raises(ValueError, match="fold_div"):
        temporal_shift(x, 0)
    with pytest.raises(ValueError, match="mode"):
        temporal_shift(x, mode="sideways")
    with pytest.raises(ValueError, match="5-D"):
        temporal_shift(x[0])
    with pytest.raises(ValueError, match="multiple of frames"):
        shift_folded(torch.randn(7, 8, 2, 2), frames=2)


def test_shift_under_bfloat16_autocast():
    x = torch.randn(2, 16, 4, 3, 3)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        y = temporal_shift(x.bfloat16())
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), naive_temporal_shift(x.bfloat16()).float(), rtol=0, atol=0)
