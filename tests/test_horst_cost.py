"""HORST's factorised space-time attention costs O(S) in the queue length S; joint attention over
all S·H·W tokens costs O(S²). Counted with FlopCounterMode (lecturekit.analysis.count_flops)."""

import pytest
import torch

from lecturekit.analysis import count_flops
from lecturekit.models.horst import STATT, FullSpaceTimeAttention

C, H, W = 16, 8, 8
ORDERS = (2, 4, 8)


def _statt_flops(s: int) -> int:
    statt = STATT(C)
    return count_flops(statt, (torch.zeros(1, C, H, W), torch.zeros(s, 1, 2 * C, H, W)))


def _full_flops(s: int) -> int:
    return count_flops(FullSpaceTimeAttention(C), torch.zeros(s, 1, C, H, W))


def _conv_macs(cin: int, cout: int, k: int = 3) -> int:
    return cin * cout * k * k * H * W


def test_statt_flops_grow_linearly_in_the_queue_length():
    f = {s: _statt_flops(s) for s in ORDERS}
    # ratios: doubling S less than doubles the cost (a constant query part plus a per-slot part)
    assert f[4] / f[2] < 2.0 and f[8] / f[4] < 2.0
    assert f[8] / f[2] < 4.0
    # exactly affine in S: equal cost per added slot between S = 2 -> 4 and S = 4 -> 8
    per_slot_a = (f[4] - f[2]) / 2
    per_slot_b = (f[8] - f[4]) / 4
    assert per_slot_a == per_slot_b
    # the per-slot cost, derived by hand: k_pre and v_pre (3x3, 2C -> C), f_K (3x3, 2 -> 1),
    # Eq. (5) query·key per pixel (C), Eq. (6) one C·H·W dot product, Eq. (7) the weighted sum (C·H·W)
    per_slot_macs = 2 * _conv_macs(2 * C, C) + _conv_macs(2, 1) + C * H * W + C * H * W + C * H * W
    assert per_slot_a == 2 * per_slot_macs


def test_full_space_time_attention_flops_grow_quadratically():
    f = {s: _full_flops(s) for s in ORDERS}
    assert f[4] / f[2] > 3.0 and f[8] / f[4] > 3.5     # -> 4 as the N² term dominates
    assert f[8] / f[2] > 12.0
    # exact: projections 3·N·C² MACs + two N×N products 2·N²·C MACs, N = S·H·W
    for s, flops in f.items():
        n = s * H * W
        assert flops == 2 * (3 * n * C * C + 2 * n * n * C)


def test_full_to_factorised_cost_ratio_grows_with_s():
    # at this small size STATT's per-slot 3x3 convolutions make it the dearer one for S <= 4
    # (ratios 0.47, 0.91, 1.79 at S = 2, 4, 8); the ratio grows about linearly in S, so the
    # joint attention loses from S = 8 on and ever more for longer queues or larger maps
    ratio = {s: _full_flops(s) / _statt_flops(s) for s in ORDERS}
    assert ratio[2] < ratio[4] < ratio[8]
    assert ratio[8] / ratio[2] > 3.0
    assert ratio[8] > 1.0


def test_full_space_time_attention_shapes_and_bad_input():
    attn = FullSpaceTimeAttention(C)
    y = attn(torch.randn(3, 2, C, H, W))
    assert y.shape == (3, 2, C, H, W)
    with pytest.raises(ValueError, match=r"\(S, B, C, H, W\)"):
        attn(torch.randn(2, C, H, W))
