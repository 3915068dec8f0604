"""The references of the recognition exercises (01.2, 02.1, 02.2, 03.1, 04.2, 05.2, 05.3) are
functions of the library modules where their idea lives, and the library's own models run them:
one definition, and students are checked against the code the course trains."""

from __future__ import annotations

import pytest
import torch

import lecturekit.layers.factorised_conv as factorised_conv
import lecturekit.models.drivers as drivers
import lecturekit.models.frame_cnn as frame_cnn
import lecturekit.models.fusion as fusion
import lecturekit.models.gsf as gsf
import lecturekit.models.tsn as tsn
from lecturekit.course import get_check
from lecturekit.models import build_model
from call_counter import count_calls


HOMES = {
    "01.2": (frame_cnn, "average_frame_probs"),
    "02.1": (fusion, "stack_frames"),
    "02.2": (fusion, "temporal_pool"),
    "03.1": (factorised_conv, "conv2plus1d"),
    "04.2": (gsf, "gated_shift"),
    "05.2": (tsn, "centre_segment_indices"),
    "05.3": (tsn, "segment_consensus"),
}


@pytest.mark.parametrize("ex", sorted(HOMES))
def test_the_reference_is_the_library_function(ex):
    module, name = HOMES[ex]
    fn = getattr(module, name)
    assert get_check(ex).reference is fn
    assert fn.__module__ == module.__name__ and name in module.__all__
    assert f"Exercise {ex} checks students" in " ".join(fn.__doc__.split()), "the docstring names its exercise"


def _video(t=8, size=32, seed=0):
    return torch.randn(2, 3, t, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_late_fusion_pools_with_temporal_pool(monkeypatch, pool):
    calls = count_calls(monkeypatch, fusion, "temporal_pool")
    torch.manual_seed(0)
    build_model("late_fusion", "small", pool=pool, frame_indices=None).eval()(_video())
    assert calls


def test_conv2plus1d_runs_inside_r2plus1d(monkeypatch):
    calls = count_calls(monkeypatch, factorised_conv, "conv2plus1d")
    torch.manual_seed(0)
    model = build_model("r2plus1d", "small").eval()
    model(_video())
    blocks = sum(isinstance(m, factorised_conv.Conv2Plus1d) for m in model.modules())
    assert blocks and len(calls) == blocks


def test_conv2plus1d_with_strided_modules_is_the_block():
    """Given the modules (as Conv2Plus1d passes them), strides and BN + ReLU are the block's."""
    torch.manual_seed(0)
    block = factorised_conv.Conv2Plus1d(3, 5, stride=2).eval()
    x = _video(t=6, size=8)
    with torch.no_grad():
        expected = block.temporal(block.act(block.norm(block.spatial(x))))
        assert torch.equal(block(x), expected)
        assert expected.shape == (2, 5, 3, 4, 4)


@pytest.mark.parametrize("name", ["gsm", "gsf"])
def test_gate_shift_modules_run_gated_shift(monkeypatch, name):
    calls = count_calls(monkeypatch, gsf, "gated_shift")
    torch.manual_seed(0)
    model = build_model(name, "small").eval()
    model(_video())
    sites = sum(isinstance(m, gsf.GateShift) for m in model.modules())
    assert sites and len(calls) == sites


def test_gsf_module_is_gated_shift_with_its_fusion_then_the_interleave():
    torch.manual_seed(0)
    b, c, t, h, w = 2, 8, 5, 3, 3
    module = gsf.GateShift(c, fuse=True).eval()
    x = torch.randn(b, c, t, h, w)
    with torch.no_grad():
        got = module(x.transpose(1, 2).reshape(b * t, c, h, w), t).view(b, t, c, h, w).transpose(1, 2)
        gate = torch.tanh(gsf.gate_conv(torch.relu(module.bn(x)), module.gate))
        expected = gsf.gated_shift(x, gate, module._fuse_groups)[:, gsf.interleave_permutation(c)]
    assert torch.equal(got, expected)


def test_tsn_samples_with_centre_segment_indices_in_eval_mode(monkeypatch):
    calls = count_calls(monkeypatch, tsn, "centre_segment_indices")
    torch.manual_seed(0)
    model = build_model("tsn", "small").eval()
    model(_video())
    assert calls
    idx = tsn.segment_indices(20, 4, 2, batch=3)
    assert idx.shape == (3, 4, 2) and all(torch.equal(row, tsn.centre_segment_indices(20, 4, 2)) for row in idx)


@pytest.mark.parametrize("name,module", [("tsn", tsn), ("tsm", drivers), ("gsf", drivers)])
def test_segment_consensus_is_the_consensus_of_tsn_and_the_per_frame_classifiers(monkeypatch, name, module):
    calls = count_calls(monkeypatch, module, "segment_consensus")
    torch.manual_seed(0)
    model = build_model(name, "small").eval()
    x = _video()
    with torch.no_grad():
        logits = model(x)
        per_step = model.head(model.dropout(model.forward_features(x)))        # (B, S or T, K)
    assert calls
    assert torch.equal(logits, tsn.segment_consensus(per_step))


def test_average_frame_probs_is_frame_cnns_clip_prediction():
    torch.manual_seed(0)
    model = build_model("frame_cnn", "small").eval()
    x = _video(t=5)
    with torch.no_grad():
        assert torch.equal(frame_cnn.average_frame_probs(model.frame_logits(x)), model(x).exp())

