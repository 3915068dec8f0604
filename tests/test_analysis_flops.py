"""lecturekit.analysis.flops: parameter counts, FLOPs (2 per MAC, FlopCounterMode), MACs, per-module
table, latency; and the C3D slide audit (RECOGNITION.md §2 and §11)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lecturekit.analysis import count_flops, count_macs, count_params, flop_table, latency
from lecturekit.analysis.flops import format_flop_table
from lecturekit.models.c3d import C3D


def _hook_macs(model, x):
    """Independent MAC count with forward hooks: conv = out.numel() * Cin/groups * prod(kernel),
    linear = out.numel() * in_features (the [V-comp] method of the digest)."""
    total = []

    def conv_hook(m, i, o):
        total.append(o.numel() * (m.in_channels // m.groups) * int(torch.tensor(m.kernel_size).prod()))

    def linear_hook(m, i, o):
        total.append(o.numel() * m.in_features)

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            m.register_forward_hook(conv_hook)
        elif isinstance(m, nn.Linear):
            m.register_forward_hook(linear_hook)
    with torch.no_grad():
        model(x)
    return sum(total)


def test_count_params_all_and_trainable():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    model[0].weight.requires_grad_(False)
    assert count_params(model) == 4 * 3 + 3 + 3 * 2 + 2
    assert count_params(model, trainable_only=True) == 3 + 3 * 2 + 2


def test_flops_are_two_per_mac_against_hook_count():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv3d(8, 4, (1, 3, 3), stride=2),
                          nn.Flatten(), nn.LazyLinear(5))
    x = torch.randn(2, 3, 4, 9, 9)
    model(x)                                    # materialise the lazy layer
    macs = _hook_macs(model, x)
    assert count_flops(model, x) == 2 * macs
    assert count_macs(model, x) == macs


def test_linear_flops_formula():
    assert count_flops(nn.Linear(10, 7), torch.zeros(3, 10)) == 2 * 3 * 10 * 7


def test_flop_table_rows_add_up_and_follow_execution_order():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    x = torch.randn(1, 3, 8, 8)
    rows = flop_table(model, x)
    assert [r["type"] for r in rows] == ["Conv2d", "ReLU", "Flatten", "Linear"]
    assert sum(r["flops"] for r in rows) == count_flops(model, x)
    assert rows[0]["shape"] == (1, 4, 6, 6) and rows[0]["params"] == 3 * 4 * 9 + 4
    assert "total" in format_flop_table(rows)


def test_flop_table_keeps_computation_of_non_leaf_modules():
    """A module that computes itself (a bmm in its forward) gets a row with its own FLOPs."""

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(4, 4)

        def forward(self, x):
            q = self.proj(x)
            return q @ q.transpose(1, 2)

    model = Attention()
    x = torch.randn(2, 5, 4)
    rows = flop_table(model, x)
    own = [r for r in rows if r["type"] == "Attention"]
    assert own and own[0]["flops"] == 2 * 2 * 5 * 5 * 4
    assert sum(r["flops"] for r in rows) == count_flops(model, x)


def test_counting_on_the_meta_device_equals_a_real_forward():
    torch.manual_seed(0)
    real = C3D()
    with torch.device("meta"):
        fake = C3D()
    x = torch.randn(1, 3, 8, 32, 32)
    assert count_flops(real, x) == count_flops(fake, x.to("meta"))


def test_c3d_slide_audit():
    """The slide's per-layer "MFLOPs" are GMACs; its FC rows are the floor-mode FC MACs times 27
    (the 3×3×3 kernel volume); its entries sum to 39.50, not 39.6; the real total is 38.55 GMACs =
    77.10 GFLOPs."""
    slide_conv = [1.04, 11.10, 5.55, 11.10, 2.77, 5.55, 0.69, 0.69]
    slide_fc = [0.51, 0.45, 0.05]
    with torch.device("meta"):
        ceil, floor = C3D(**C3D.PRESETS["paper"]), C3D(**{**C3D.PRESETS["paper"], "pool5": "floor"})
    x = torch.empty(1, 3, 16, 112, 112, device="meta")
    rows = flop_table(floor, x)
    conv = [r["macs"] / 1e9 for r in rows if r["type"] == "Conv3d"]
    fc = [r["macs"] / 1e9 for r in rows if r["type"] == "Linear"]
    assert [round(v, 2) for v in conv] == pytest.approx(slide_conv, abs=0.011)   # slide rounds 2.7745 down
    assert [round(27 * v, 2) for v in fc] == slide_fc
    assert round(sum(slide_conv + slide_fc), 2) == 39.50
    assert round(count_macs(ceil, x) / 1e9, 2) == 38.55 and round(count_flops(ceil, x) / 1e9, 1) == 77.1


def test_latency_is_a_positive_median():
    model = nn.Linear(8, 8)
    assert latency(model, torch.zeros(2, 8), repeats=3, warmup=1) > 0
    with pytest.raises(ValueError, match="repeats"):
        latency(model, torch.zeros(2, 8), repeats=0)


def test_latency_accepts_non_tensor_arguments():
    """(x, frames) as for the folded temporal shift: the extra int is passed through."""
    from lecturekit.layers import TemporalShift

    x = torch.randn(2 * 4, 16, 5, 5)
    assert latency(TemporalShift(), (x, 4), repeats=2, warmup=0) > 0
