"""Exercises 09.2, 10.2, 11.1, 11.2 and 12.1 are checked against the very functions the models
run: each check's reference is (or wraps only weights into) a function of the model's module, and
the model's forward pass calls that function with its own weights."""

from __future__ import annotations


import pytest
import torch

import lecturekit.course.checks.nb10 as nb10
import lecturekit.course.checks.nb12 as nb12
from lecturekit.course import get_check
from lecturekit.models import aga, horst, ms_lstm, rulstm
from call_counter import count_calls


# --------------------------------------------------------------------------- 09.2 CAM masking
def test_09_2_reference_is_the_function_ms_lstm_masks_with(monkeypatch):
    assert get_check("09.2").reference is ms_lstm.cam_action_features
    torch.manual_seed(0)
    net = ms_lstm.CAMFeatureNet(5, widths=(8, 16, 16), fc_dim=32, cam_dim=12).eval()
    frames, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 3, 3, 1])
    calls = count_calls(monkeypatch, ms_lstm, "cam_action_features")
    with torch.no_grad():
        out = net(frames, labels)
        assert len(calls) == 1
        conv5_3 = net.action_conv(net.trunk.forward_maps(frames))
        f = net.cam_conv(conv5_3)
        masked, cam = ms_lstm.cam_action_features(conv5_3, f, net.cam_head.weight, labels, return_cam=True)
    assert torch.equal(cam, out.cam)
    assert torch.equal(net.action_fc(masked), out.action)
    assert torch.equal(masked, ms_lstm.cam_action_features(conv5_3, f, net.cam_head.weight, labels))


# --------------------------------------------------------------------------- 10.2 rolling-unrolling
def test_10_2_reference_runs_the_loop_rulstm_runs(monkeypatch):
    assert nb10.rolling_unrolling is rulstm.rolling_unrolling
    model_calls = count_calls(monkeypatch, rulstm, "rolling_unrolling")
    check_calls = count_calls(monkeypatch, nb10, "rolling_unrolling")
    torch.manual_seed(0)
    model = rulstm.RULSTM(4, feat_in=5, hidden=6, dropout=0.0).eval()
    x = torch.randn(3, 7, 5)

    def weights(lstm):
        return lstm.weight_ih_l0.detach(), lstm.weight_hh_l0.detach(), (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach()

    with torch.no_grad():
        want = model(x)
    assert len(model_calls) == 1
    got = get_check("10.2").reference(x, weights(model.rolling), weights(model.unrolling),
                                      model.head[1].weight.detach(), model.head[1].bias.detach())
    assert len(check_calls) == 1
    assert torch.allclose(got, want, atol=1e-6)        # the bias split b_ih + b_hh rounds differently


@pytest.mark.parametrize("sequence_completion, depth", [(False, 1), (True, 1), (False, 2)])
def test_10_2_rolling_unrolling_is_rulstm_forward_features_in_train_mode(sequence_completion, depth):
    """Same seed, same dropout draws: the function on the branch's modules is its forward pass, bit for bit."""
    torch.manual_seed(0)
    model = rulstm.RULSTM(4, feat_in=5, hidden=6, depth=depth, sequence_completion=sequence_completion).train()
    x = torch.randn(2, 6, 5)
    torch.manual_seed(1)
    want = model.forward_features(x)
    torch.manual_seed(1)
    got = rulstm.rolling_unrolling(x, model.rolling, model.unrolling, sequence_completion=sequence_completion,
                                   dropout=model.dropout)
    assert all(torch.equal(a, b) for a, b in zip(got, want))
    assert model.unroll_lengths(6) == rulstm.unroll_lengths(6, sequence_completion)


# --------------------------------------------------------------------------- 11.1 STATT, 11.2 queue
def test_11_1_reference_is_what_statt_attends_with(monkeypatch):
    assert get_check("11.1").reference is horst.statt_attend
    calls = count_calls(monkeypatch, horst, "statt_attend")
    torch.manual_seed(0)
    statt = horst.STATT(6).eval()
    query, kv = torch.randn(2, 6, 4, 4), torch.randn(3, 2, 12, 4, 4)
    with torch.no_grad():
        want = statt(query, kv)
        assert len(calls) == 1
        q = statt.q_pre(query)
        k = statt.k_pre(kv.flatten(0, 1)).unflatten(0, (3, 2))
        v = statt.v_pre(kv.flatten(0, 1)).unflatten(0, (3, 2))
        got = horst.statt_attend(q, k, v, statt.f_q.conv.weight, statt.f_q.conv.bias, statt.f_k.conv.weight,
                                 statt.f_k.conv.bias)
        assert torch.equal(statt.f_k(k[0]), horst.spatial_filter(k[0], statt.f_k.conv.weight, statt.f_k.conv.bias))
    assert all(torch.equal(a, b) for a, b in zip(got, want))


def test_11_2_reference_is_the_cells_queue_update(monkeypatch):
    assert get_check("11.2").reference is horst.push_queue
    calls = count_calls(monkeypatch, horst, "push_queue")
    torch.manual_seed(0)
    cell = horst.HORSTCell(3, 4, order=2).eval()
    state, hq, hs = None, None, []
    with torch.no_grad():
        for t in range(4):
            before = len(calls)
            (_, h, _), state, _ = cell(torch.randn(1, 3, 4, 4), state)
            hs.append(h)
            assert len(calls) == before + 2                       # the cell pushed both of its queues
            hq = horst.push_queue(hq, h, 2)                       # the exercise's tensor form
            assert len(state[0]) == min(t + 1, 2) and all(x is y for x, y in zip(state[0], hs[-2:]))
            assert torch.equal(torch.stack(state[0]), hq)


# --------------------------------------------------------------------------- 12.1 action-guided attention
def test_12_1_reference_runs_the_read_aga_runs(monkeypatch):
    assert nb12.action_guided_attention is aga.action_guided_attention
    model_calls = count_calls(monkeypatch, aga, "action_guided_attention")
    check_calls = count_calls(monkeypatch, nb12, "action_guided_attention")
    torch.manual_seed(0)
    model = aga.AGA(feat_in=5, num_classes=7, hidden=16, bottleneck=8, heads=4, order=4).eval()
    with torch.no_grad():
        model(torch.randn(2, 6, 5))
    assert len(model_calls) == 5                                  # every step but the first reads the memory
    case = get_check("12.1").make_cases()[1]
    get_check("12.1").reference(*case.args)
    assert len(check_calls) == 1


@pytest.mark.parametrize("kwargs", [{}, {"gate": False}, {"attention": "pixel"}, {"variant": "legacy"}])
def test_12_1_read_is_action_guided_attention_on_the_models_modules(kwargs):
    torch.manual_seed(0)
    model = aga.AGA(feat_in=5, num_classes=7, hidden=16, bottleneck=8, heads=4, order=4, **kwargs).train()
    mem = model.memory_at(torch.randn(2, 6, 5), 4)
    query = torch.softmax(torch.randn(2, 7), -1)
    torch.manual_seed(1)
    step = model.read(query, mem.keys, mem.values, mem.frame)
    torch.manual_seed(1)
    source = mem.frame if model.attention == "pixel" else query
    z, weights, gate, history = aga.action_guided_attention(
        source, mem.keys, mem.values, mem.frame, query_encoder=model.query_encoder, key_encoder=model.key_encoder,
        retrieve=model.retrieve, history_norm=model.history_norm, gate=model.gate)
    assert torch.equal(z, step.state) and torch.equal(weights, step.weights) and torch.equal(history, step.context)
    assert (gate is None and step.gate is None) or torch.equal(gate, step.gate)
