"""Tests of the anticipation models: MS-LSTM, RU-LSTM (+ MATT) and the AVT head."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lecturekit.losses import anticipation_loss
from lecturekit.models import MODELS, build_model
from lecturekit.models.registry import example_input
from lecturekit.models.avt import AVTHead, AVTOutput, avt_losses
from lecturekit.models.horst import HORST, STATT, HORSTCell
from lecturekit.models.ms_lstm import MSLSTM, TwoStageLSTM, temporal_average_pool
from lecturekit.models.rulstm import RULSTM, RULSTMFusion
from reference.horst_reference import first_order_sequence, statt_naive
from reference.rulstm_loop import rulstm_forward_loop


def count(module, skip: str | None = None) -> int:
    return sum(p.numel() for n, p in module.named_parameters() if not (skip and n.startswith(skip)))


def lstm_params(d_in: int, h: int) -> int:
    """nn.LSTM, one layer: 4 gates × (W_ih (H×D) + W_hh (H×H) + two biases)."""
    return 4 * h * (d_in + h) + 8 * h


# --------------------------------------------------------------------------- MS-LSTM
@pytest.fixture(scope="module")
def ms_lstm():
    torch.manual_seed(0)
    return build_model("ms_lstm", num_classes=5).eval()


def _video(batch=2, frames=4):
    return torch.randn(batch, 3, frames, 32, 32, generator=torch.Generator().manual_seed(0))


def test_ms_lstm_shapes_and_stages(ms_lstm):
    x = _video()
    out = ms_lstm(x, torch.tensor([1, 3]))
    assert out.logits.shape == out.stage1.shape == (2, 4, 5)
    assert {k: tuple(v.shape) for k, v in out.frames.items()} == {k: (2, 4, 5) for k in ("context", "cam", "action")}
    head = ms_lstm.forward_head(ms_lstm.forward_features(x, torch.tensor([1, 3])))
    torch.testing.assert_close(head.logits, out.logits)
    torch.testing.assert_close(head.stage1, out.stage1)


def test_ms_lstm_training_outputs_reach_every_parameter():
    """The training outputs (both stages + per-frame logits) reach every parameter; the
    prediction alone does not reach the auxiliary classifiers, hence they are returned."""
    model = build_model("ms_lstm")
    x, y = _video(), torch.tensor([1, 2])
    out = model(x, y)
    (out.logits.sum() + out.stage1.sum() + sum(v.sum() for v in out.frames.values())).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=True)
    model(x, y).logits.sum().backward()
    assert model.head["stage1"].weight.grad is None and model.stages.head["stage1"] is model.head["stage1"] and model.features.context_head.weight.grad is None


def test_ms_lstm_stage2_input_is_action_features_plus_hidden():
    """Stage-2 LSTM input width = action-feature dim + 2048 in the paper preset."""
    with torch.device("meta"):
        head = TwoStageLSTM(**TwoStageLSTM.PRESETS["paper"])
        model = MSLSTM(**MSLSTM.PRESETS["paper"])
    assert head.lstm2.input_size == 4096 + 2048
    assert count(head.lstm1) == lstm_params(4096, 2048) == 50_348_032
    assert count(head.lstm2) == lstm_params(6144, 2048) == 67_125_248
    assert model.stages.lstm2.input_size == 4096 + 2048


def test_ms_lstm_paper_context_path_is_vgg16():
    """The shared trunk + context sub-model with a 1000-way fc8 is exactly VGG-16 (138,357,544
    parameters, the count torchvision documents for vgg16)."""
    with torch.device("meta"):
        model = MSLSTM(**{**MSLSTM.PRESETS["paper"], "num_classes": 1000})
    f = model.features
    n = count(f.trunk) + count(f.context_conv) + count(f.context_fc) + count(f.context_head)
    assert n == 138_357_544


def test_cam_is_eq2_and_mask_uses_the_requested_class(ms_lstm):
    """Eq. (2): M_k = Σ_l w_l^k f_l, checked with an explicit loop over l; the label picks k, and
    the label changes the action-aware feature but never the context feature."""
    f = ms_lstm.features
    frames = torch.randn(3, 3, 32, 32)
    labels = torch.tensor([0, 2, 4])
    out = f(frames, labels)
    maps = f.cam_conv(f.action_conv(f.trunk.forward_maps(frames)))          # (N, L, h, w)
    w = f.cam_head.weight
    expect = torch.zeros_like(out.cam)
    for i in range(3):
        for l in range(maps.shape[1]):
            expect[i] += w[labels[i], l] * maps[i, l]
    torch.testing.assert_close(out.cam, expect, atol=1e-5, rtol=1e-5)
    other = f(frames, torch.tensor([1, 1, 1]))
    torch.testing.assert_close(other.context, out.context)
    assert not torch.allclose(other.action, out.action)
    # without labels the CAM classifier's own top class is used
    auto = f(frames)
    torch.testing.assert_close(auto.action, f(frames, auto.cam_logits.argmax(-1)).action)


def test_ms_lstm_is_causal_over_frames(ms_lstm):
    x = _video(batch=1, frames=5)
    y = x.clone()
    y[:, :, 3:] += torch.randn_like(y[:, :, 3:])
    a, b = ms_lstm(x).logits, ms_lstm(y).logits
    assert (a[:, :3] - b[:, :3]).abs().max() < 1e-6
    assert (a[:, 3:] - b[:, 3:]).abs().max() > 1e-4


def test_temporal_average_pool_is_the_running_mean_of_softmax():
    logits = torch.randn(2, 6, 4)
    pooled = temporal_average_pool(logits)
    for t in range(6):
        torch.testing.assert_close(pooled[:, t], logits[:, : t + 1].softmax(-1).mean(1))
    changed = logits.clone()
    changed[:, 4:] = 100.0
    torch.testing.assert_close(temporal_average_pool(changed)[:, :4], pooled[:, :4])


def test_two_stage_lstm_learns_with_the_anticipation_loss():
    """A few steps of Eq. (4) = L(stage 1) + L(stage 2) fit a toy problem."""
    torch.manual_seed(0)
    model = TwoStageLSTM(context_dim=8, action_dim=8, num_classes=3, hidden=16, dropout=0.0)
    y = torch.tensor([0, 1, 2, 0])
    ctx = F.one_hot(y, 8).float()[:, None].expand(4, 5, 8) + 0.1 * torch.randn(4, 5, 8)
    act = torch.randn(4, 5, 8)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(40):
        out = model(ctx, act)
        loss = anticipation_loss(out.stage1, y) + anticipation_loss(out.logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    assert (model(ctx, act).logits[:, -1].argmax(-1) == y).all()


def test_ms_lstm_rejects_btchw_video(ms_lstm):
    with pytest.raises(ValueError, match="permute"):
        ms_lstm(torch.randn(2, 4, 3, 32, 32))
    with pytest.raises(ValueError, match="action features"):
        TwoStageLSTM()(torch.randn(2, 4, 32), torch.randn(2, 5, 32))


# --------------------------------------------------------------------------- RU-LSTM
@pytest.mark.parametrize("sci", [False, True])
def test_rulstm_matches_the_step_by_step_official_loop(sci):
    """Vectorised unrolling == the official per-step loop; lengths 15..2 (anticipation) and
    14..1 (sequence completion) for T = 14."""
    torch.manual_seed(0)
    model = RULSTM(feat_in=6, num_classes=5, hidden=8, sequence_completion=sci).eval()
    x = torch.randn(3, 14, 6)
    lengths: list[int] = []
    expect = rulstm_forward_loop(model, x, lengths)
    torch.testing.assert_close(model(x), expect, atol=1e-6, rtol=1e-5)
    want = list(range(14, 0, -1)) if sci else list(range(15, 1, -1))
    assert lengths == want
    assert model.unroll_lengths(14) == want


def test_rulstm_sci_switch_keeps_weights_and_changes_the_inputs():
    torch.manual_seed(0)
    model = RULSTM(feat_in=6, num_classes=5, hidden=8).eval()
    x = torch.randn(2, 14, 6)
    ant = model(x)
    model.sequence_completion = True
    sci = model(x)
    assert ant.shape == sci.shape == (2, 14, 5)
    assert not torch.allclose(ant[:, :-1], sci[:, :-1])
    # anticipation never looks at later features; sequence completion does
    y = x.clone()
    y[:, 10:] += 1.0
    model.sequence_completion = False
    torch.testing.assert_close(model(y)[:, :10], ant[:, :10])
    model.sequence_completion = True
    assert not torch.allclose(model(y)[:, :10], sci[:, :10])


def test_rulstm_output_layout_and_batch_of_one():
    model = build_model("rulstm").eval()
    out = model(RULSTM.example_input(batch=1))
    assert out.shape == (1, 14, 10)
    assert RULSTM.ONE_SECOND == -4 and out[:, RULSTM.ONE_SECOND].shape == (1, 10)


def test_rulstm_paper_parameter_counts():
    """EK-100 counts of the official modules (instantiated from github.com/fpv-iplab/rulstm)."""
    with torch.device("meta"):
        rgb = RULSTM(**RULSTM.PRESETS["paper"])
        obj = RULSTM(3806, feat_in=352, hidden=1024, dropout=0.8)
        fusion = RULSTMFusion(**RULSTMFusion.PRESETS["paper"])
        ek55 = RULSTM(2513, feat_in=1024, hidden=1024, dropout=0.8)
    assert count(rgb) == RULSTM.PUBLISHED["params"].value == 20_694_750
    assert count(obj) == 15_189_726
    assert count(fusion.matt) == 10_621_443
    assert count(fusion) == RULSTMFusion.PUBLISHED["params"].value == 67_200_669
    assert count(ek55) == 19_369_425


def test_matt_weights_sum_to_one_and_zeroed_matt_averages_branch_logits():
    torch.manual_seed(0)
    model = RULSTMFusion(feat_dims=(6, 6, 4), num_classes=5, hidden=8).eval()
    xs = tuple(torch.randn(2, 14, d) for d in (6, 6, 4))
    fused, w = model(*xs, return_weights=True)
    assert w.shape == (2, 14, 3)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 14))
    torch.testing.assert_close(model(xs), fused)                        # a tuple works too
    with torch.no_grad():
        model.matt[-1].weight.zero_()
        model.matt[-1].bias.zero_()
    mean = torch.stack([br(x) for br, x in zip(model.branches, xs)]).mean(0)
    torch.testing.assert_close(model(*xs), mean)


def test_rulstm_bad_inputs():
    with pytest.raises(ValueError, match="D=32"):
        build_model("rulstm")(torch.randn(2, 14, 31))
    with pytest.raises(ValueError, match="3 feature sequences"):
        build_model("rulstm_fusion")(torch.randn(2, 14, 32))


# --------------------------------------------------------------------------- AVT
def test_avt_causality():
    """Perturbing z_{t'} for t' > t leaves ẑ_{t+1} (and the past logits up to t) unchanged."""
    torch.manual_seed(0)
    model = build_model("avt_head").eval()
    z = AVTHead.example_input()
    w = z.clone()
    w[:, 6:] += torch.randn_like(w[:, 6:])
    a, b = model.forward_all(z), model.forward_all(w)
    assert (a.predicted[:, :6] - b.predicted[:, :6]).abs().max() < 1e-6
    assert (a.past_logits[:, :7] - b.past_logits[:, :7]).abs().max() < 1e-6
    assert (a.predicted[:, 6:] - b.predicted[:, 6:]).abs().max() > 1e-4


def test_avt_shapes_and_past_input_keeps_the_real_first_feature():
    model = AVTHead(feat_in=12, num_classes=7, dim=32, layers=1, heads=4).eval()
    z = torch.randn(2, 10, 12)
    out = model.forward_all(z)
    assert out.future_logits.shape == (2, 7) and out.past_logits.shape == (2, 10, 7)
    assert out.predicted.shape == (2, 10, 12)
    torch.testing.assert_close(out.past_logits[:, 0], model.head(z[:, 0]))
    torch.testing.assert_close(out.past_logits[:, 1:], model.head(out.predicted[:, :-1]))
    torch.testing.assert_close(model(z), out.future_logits)
    torch.testing.assert_close(model.forward_head(model.forward_features(z)), out.future_logits)


def test_avt_feature_loss_alignment():
    """ẑ at position t is compared with z_{t+1}: an oracle scores 0, a copy-the-input head
    scores the MSE between consecutive real features."""
    z = torch.randn(2, 5, 3)
    dummy = dict(future_logits=torch.zeros(2, 4), past_logits=torch.zeros(2, 5, 4))
    oracle = AVTOutput(predicted=torch.cat([z[:, 1:], torch.zeros(2, 1, 3)], 1), **dummy)
    assert avt_losses(oracle, z, torch.tensor([0, 1]))["feat"].item() == 0.0
    copy = AVTOutput(predicted=z.clone(), **dummy)
    expect = ((z[:, 1:] - z[:, :-1]) ** 2).mean()
    torch.testing.assert_close(avt_losses(copy, z, torch.tensor([0, 1]))["feat"], expect)


def test_avt_losses_backpropagate_and_autocast():
    torch.manual_seed(0)
    model = build_model("avt_head")
    z = AVTHead.example_input()
    losses = avt_losses(model.forward_all(z), z, torch.tensor([1, 2]), torch.randint(-1, 10, (2, 10)))
    losses["total"].backward()
    assert all(p.grad is not None for p in model.parameters())
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = model.eval()(z)
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_avt_paper_parameter_count():
    """AVT-h with GPT-2 defaults, classifier excluded: 308,445,184 (1024-d in), 307,396,608 (768-d in);
    one block is 12D² + 13D."""
    with torch.device("meta"):
        tsn = AVTHead(**AVTHead.PRESETS["paper"])
        vit = AVTHead(**{**AVTHead.PRESETS["paper"], "feat_in": 768})
    d = 2048
    assert count(tsn.blocks[0]) == 12 * d * d + 13 * d == 50_358_272
    assert count(tsn, skip="head") == AVTHead.PUBLISHED["params_without_head"].value == 308_445_184
    assert count(vit, skip="head") == AVTHead.PUBLISHED["params_without_head_768"].value == 307_396_608


def test_avt_rejects_too_long_sequences():
    with pytest.raises(ValueError, match="max_len"):
        AVTHead(feat_in=4, num_classes=2, dim=8, heads=2, max_len=4)(torch.randn(1, 5, 4))


ANTICIPATION_MODELS = ["ms_lstm", "ms_lstm_head", "rulstm", "rulstm_sci", "rulstm_fusion", "avt_head", "horst"]


def _main(out):
    """The prediction: the tensor itself, or ``.logits`` of MS-LSTM's output tuple."""
    return out.logits if hasattr(out, "logits") else out


def test_example_inputs_run_through_the_registered_models():
    for name in ANTICIPATION_MODELS:
        model = build_model(name).eval()
        x = example_input(MODELS[name], "small", batch=2)
        out = _main(model(*x) if isinstance(x, tuple) else model(x))
        assert out.shape[0] == 2 and out.shape[-1] == 10 and torch.isfinite(out).all(), name


@pytest.mark.parametrize("name", ANTICIPATION_MODELS)
def test_models_train_under_bf16_autocast(name):
    torch.manual_seed(0)
    model = build_model(name)
    x = example_input(MODELS[name], "small", batch=2)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = _main(model(*x) if isinstance(x, tuple) else model(x))
        out.float().sum().backward()
    assert torch.isfinite(out.float()).all()


# --------------------------------------------------------------------------- HORST
def test_statt_equals_naive_loops():
    """Eqs. (4)-(7) vectorised == explicit loops over slots and pixels (3 slots)."""
    torch.manual_seed(0)
    statt = STATT(4).double()
    q, kv = torch.randn(2, 4, 5, 5, dtype=torch.float64), torch.randn(3, 2, 8, 5, 5, dtype=torch.float64)
    a, s_map, t_w = statt(q, kv)
    ra, rs, rt = statt_naive(statt, q, kv)
    torch.testing.assert_close(a, ra)
    torch.testing.assert_close(s_map, rs)
    torch.testing.assert_close(t_w, rt)
    torch.testing.assert_close(t_w.sum(0), torch.ones(2, dtype=torch.float64))


def test_horst_order_one_reduces_to_a_first_order_cell():
    """S = 1: the queue holds only the previous (h, a) and the slot softmax is 1, so the cell is
    the first-order recurrence a_t = S(Q_t, K_{t-1}) ⊙ V_{t-1} (no temporal branch at all)."""
    torch.manual_seed(0)
    cell = HORSTCell(3, 4, order=1).double().eval()
    xs = [torch.randn(2, 3, 5, 5, dtype=torch.float64) for _ in range(5)]
    state, outs = None, []
    for x in xs:
        (o, _, _), state, (_, t_w) = cell(x, state)
        outs.append(o)
        assert t_w.shape == (1, 2)
    for got, want in zip(outs, first_order_sequence(cell, xs)):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("order,steps", [(1, 4), (3, 7), (8, 5)])
def test_horst_queue_holds_exactly_the_last_S_states(order, steps):
    torch.manual_seed(order)
    cell = HORSTCell(2, 4, order=order).eval()
    state, hs, as_ = None, [], []
    for t in range(steps):
        (_, h, a), state, (_, t_w) = cell(torch.randn(1, 2, 4, 4), state)
        hs.append(h)
        as_.append(a)
        assert t_w.shape[0] == (1 if t == 0 else min(t, order))   # slots read at step t
        keep = hs[max(0, t + 1 - order):]
        assert len(state[0]) == len(state[1]) == len(keep) == min(t + 1, order)
        assert all(x is y for x, y in zip(state[0], keep))
        assert all(x is y for x, y in zip(state[1], as_[max(0, t + 1 - order):]))


def test_horst_is_causal_and_returns_attention():
    torch.manual_seed(0)
    model = build_model("horst").eval()
    x = torch.randn(2, 16, 6, 8, 8, generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[:, :, 4:] += torch.randn_like(y[:, :, 4:])
    a, b = model(x), model(y)
    assert (a[:, :4] - b[:, :4]).abs().max() < 1e-6
    assert (a[:, 4:] - b[:, 4:]).abs().max() > 1e-4
    (o, h, att), maps = model.forward_features(x, return_attention=True)
    assert o.shape == h.shape == att.shape == (2, 32, 6, 8, 8)
    s_map, t_w = maps[-1]
    assert s_map.shape == (4, 2, 1, 8, 8) and t_w.shape == (4, 2)
    assert ((s_map > 0) & (s_map < 1)).all()


def test_horst_paper_parameter_count():
    """README configuration (256-channel input, two 512-wide cells, S = 8): 35,663,180 parameters
    in the cells, the used part of the official module."""
    with torch.device("meta"):
        model = HORST(**HORST.PRESETS["paper"])
    assert count(model.cells) == HORST.PUBLISHED["cell_params"].value == 35_663_180
    assert count(model.cells[0].statt) == 11_799_590      # 11.80 M without the unused v_post_f
