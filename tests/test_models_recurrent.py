"""Recurrent convolutional and video-prediction models: ConvLSTM/ConvGRU cells, Shi et al.'s
encoder-forecaster, GRU-RCN, LSTA, PredRNN, E3D-LSTM, Conv-TT-LSTM, the frame-prediction
wrapper and the early-recognition head.

Correctness comes from independent oracles (torch.nn.LSTM / GRU, numpy loops in
tests/reference/recurrent.py, analytic special cases) and from published parameter counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference.recurrent import ballas_gru, recall_channels_last, recall_openstl_reshape

from lecturekit.layers.conv_rnn import ConvGRUCell, ConvLSTMCell, run_cell
from lecturekit.models import MODELS, build_model
from lecturekit.models.conv_tt_lstm import ConvTTLSTM, ConvTTLSTMCell
from lecturekit.models.convlstm import TABLE1_ROWS, ConvLSTMEncoderForecaster
from lecturekit.models.e3d_lstm import E3DLSTM, ChannelLayerNorm, E3DLSTMCore, eidetic_recall
from lecturekit.models.lsta import LSTA, LSTACell
from lecturekit.models.predrnn import PredRNN, PredRNNCore
from lecturekit.models.rcn import GRURCN
from lecturekit.models.drivers import EarlyRecognizer, VideoPredictor
from lecturekit.models.video_prediction import scheduled_teacher_prob

RECURRENT = ["convlstm", "convgru", "convlstm_predictor", "predrnn", "e3d_lstm", "conv_tt_lstm", "gru_rcn", "lsta"]
CLASSIFIERS = ["gru_rcn", "lsta"]


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _meta(fn):
    """Build on the meta device: parameter counts of paper-sized models without allocating memory."""
    with torch.device("meta"):
        return fn()


# ---------------------------------------------------------------------------------------------
# ConvLSTM / ConvGRU cells against torch's own recurrent layers


def test_convlstm_1x1_on_1x1_maps_equals_nn_lstm():
    """1×1 kernels on 1×1 maps, gate order (i, f, g, o), biases summed: ConvLSTM == nn.LSTM."""
    torch.manual_seed(0)
    B, T, I, H = 3, 5, 4, 6
    lstm = torch.nn.LSTM(I, H, batch_first=True)
    cell = ConvLSTMCell(I, H, 1)
    with torch.no_grad():
        cell.conv_x.weight.copy_(lstm.weight_ih_l0.view(4 * H, I, 1, 1))
        cell.conv_h.weight.copy_(lstm.weight_hh_l0.view(4 * H, H, 1, 1))
        cell.bias.copy_(lstm.bias_ih_l0 + lstm.bias_hh_l0)
    x = torch.randn(B, T, I)
    ref, (h_ref, c_ref) = lstm(x)
    out, (h, c) = run_cell(cell, x.view(B, T, I, 1, 1))
    assert (out.view(B, T, H) - ref).abs().max() < 1e-5
    assert (h.view(B, H) - h_ref[0]).abs().max() < 1e-5
    assert (c.view(B, H) - c_ref[0]).abs().max() < 1e-5
    step = torch.nn.LSTMCell(I, H)                               # one step against nn.LSTMCell too
    step.load_state_dict({k[:-3]: v for k, v in lstm.state_dict().items()})
    h1, c1 = step(x[:, 0])
    h_c, (_, c_c) = cell(x[:, 0].view(B, I, 1, 1))
    assert (h_c.view(B, H) - h1).abs().max() < 1e-5 and (c_c.view(B, H) - c1).abs().max() < 1e-5
    # the same weights read in the (i, f, o, g) split of other ports give a different function
    perm = torch.cat([torch.arange(0, 2 * H), torch.arange(3 * H, 4 * H), torch.arange(2 * H, 3 * H)])
    with torch.no_grad():
        cell.conv_x.weight.copy_(cell.conv_x.weight[perm])
        cell.conv_h.weight.copy_(cell.conv_h.weight[perm])
        cell.bias.copy_(cell.bias[perm])
    wrong, _ = run_cell(cell, x.view(B, T, I, 1, 1))
    assert (wrong.view(B, T, H) - ref).abs().max() > 1e-2


def _gru_pair(I=4, H=6, seed=0):
    torch.manual_seed(seed)
    gru = torch.nn.GRU(I, H, batch_first=True)
    cells = {}
    for conv in ("torch", "ballas"):
        cell = ConvGRUCell(I, H, 1, convention=conv)
        with torch.no_grad():
            cell.conv_x.weight.copy_(gru.weight_ih_l0.view(3 * H, I, 1, 1))
            cell.conv_x.bias.copy_(gru.bias_ih_l0)
            cell.conv_h.weight.copy_(gru.weight_hh_l0.view(3 * H, H, 1, 1))
            cell.conv_h.bias.copy_(gru.bias_hh_l0)
        cells[conv] = cell
    return gru, cells


def test_convgru_torch_convention_equals_nn_gru():
    gru, cells = _gru_pair()
    x = torch.randn(3, 5, 4)
    ref, _ = gru(x)
    out, _ = run_cell(cells["torch"], x.view(3, 5, 4, 1, 1))
    assert (out.view(3, 5, 6) - ref).abs().max() < 1e-5


def test_convgru_ballas_convention_is_the_papers_gru_and_not_nn_gru():
    """Ballas et al. (reset before U, z gates the candidate) == a numpy loop of their equations,
    and != nn.GRU with the same weights: the two conventions are different functions."""
    gru, cells = _gru_pair()
    x = torch.randn(3, 5, 4, dtype=torch.float32)
    ref, _ = gru(x)
    out, _ = run_cell(cells["ballas"], x.view(3, 5, 4, 1, 1))
    out = out.view(3, 5, 6)
    c = cells["ballas"]
    for b in range(3):
        hand = ballas_gru(x[b].double().numpy(), c.conv_x.weight.detach().view(18, 4).double().numpy(),
                          c.conv_h.weight.detach().view(18, 6).double().numpy(),
                          c.conv_x.bias.detach().double().numpy(), c.conv_h.bias.detach().double().numpy())
        np.testing.assert_allclose(out[b].detach().numpy(), hand, atol=1e-5)
    assert (out - ref).abs().max() > 1e-2


def test_peephole_weights_zero_give_the_plain_cell():
    torch.manual_seed(0)
    plain = ConvLSTMCell(3, 5, 3)
    peep = ConvLSTMCell(3, 5, 3, peephole="channel")
    peep.load_state_dict({**plain.state_dict(), "peep": torch.zeros(3, 5, 1, 1)})
    x = torch.randn(2, 4, 3, 7, 9)
    # equal up to float rounding (contiguous vs strided gate tensors take different SIMD paths)
    torch.testing.assert_close(run_cell(plain, x)[0], run_cell(peep, x)[0], rtol=0, atol=1e-6)
    with torch.no_grad():
        peep.peep.fill_(0.5)
    assert (run_cell(plain, x)[0] - run_cell(peep, x)[0]).abs().max() > 1e-3
    assert _count(peep) - _count(plain) == 3 * 5                # one weight per channel and gate


def test_conv_cells_keep_odd_sizes_and_reject_bad_input():
    cell = ConvLSTMCell(3, 8, 5)
    out, _ = run_cell(cell, torch.randn(2, 3, 3, 7, 9))
    assert out.shape == (2, 3, 8, 7, 9)
    gru = ConvGRUCell(3, 8, 3)
    assert gru(torch.randn(2, 3, 7, 9))[0].shape == (2, 8, 7, 9)
    with pytest.raises(ValueError, match="odd"):
        ConvLSTMCell(3, 8, 4)
    with pytest.raises(ValueError, match="C=3"):
        cell(torch.randn(2, 4, 7, 9))
    with pytest.raises(ValueError, match="convention"):
        ConvGRUCell(3, 8, 3, convention="cho")


def test_zero_input_state_and_bias_give_zero_hidden_states():
    cell = ConvLSTMCell(3, 4, 3, peephole="channel")
    with torch.no_grad():
        cell.bias.zero_()
    out, _ = run_cell(cell, torch.zeros(2, 5, 3, 6, 6))
    assert torch.count_nonzero(out) == 0


@pytest.mark.parametrize("make", [lambda: ConvLSTMCell(2, 4, 3, peephole="channel"), lambda: ConvGRUCell(2, 4, 3),
                                  lambda: ConvGRUCell(2, 4, 3, convention="ballas")])
def test_cells_are_causal(make):
    torch.manual_seed(0)
    cell = make()
    x = torch.randn(2, 6, 2, 5, 5)
    y = x.clone()
    y[:, 4] += 1.0
    a, _ = run_cell(cell, x)
    b, _ = run_cell(cell, y)
    torch.testing.assert_close(a[:, :4], b[:, :4], rtol=0, atol=0)
    assert (a[:, 4] - b[:, 4]).abs().max() > 0


# ---------------------------------------------------------------------------------------------
# Published parameter counts (paper presets; configuration stated in each model's docstring)


def test_shi_table1_rows_are_the_published_rows():
    assert list(TABLE1_ROWS) == list(ConvLSTMEncoderForecaster.PUBLISHED) and len(TABLE1_ROWS) == 6


@pytest.mark.parametrize("row", list(TABLE1_ROWS))
def test_shi_table1_parameter_counts(row):
    """Shi et al. 2015, Table 1 (Moving MNIST, 64×64 frames in 4×4 patches, per-channel
    peepholes, input-free first forecaster layer, 1×1 head over all forecaster states)."""
    expected = {"FC-LSTM-2048-2048": 142_667_776, "ConvLSTM(5x5)-5x5-256": 13_524_496,
                "ConvLSTM(5x5)-5x5-128-5x5-128": 10_042_896, "ConvLSTM(5x5)-5x5-128-5x5-64-5x5-64": 7_585_296,
                "ConvLSTM(9x9)-1x1-128-1x1-128": 11_550_224, "ConvLSTM(9x9)-1x1-128-1x1-64-1x1-64": 8_830_480}[row]
    model = _meta(lambda: ConvLSTMEncoderForecaster(**{**ConvLSTMEncoderForecaster.PRESETS["paper"], **TABLE1_ROWS[row]}))
    assert _count(model) == ConvLSTMEncoderForecaster.PUBLISHED[row].value == expected


def test_convlstm_paper_preset_is_the_best_table1_row():
    model = _meta(lambda: build_model("convlstm", "paper"))
    assert _count(model) == ConvLSTMEncoderForecaster.PUBLISHED["ConvLSTM(5x5)-5x5-128-5x5-64-5x5-64"].value == 7_585_296


def test_predrnn_paper_parameter_count():
    """thuml/predrnn-pytorch Moving MNIST: 4 × 128 ST-LSTM, 5×5, patch 4, no layer norm."""
    assert _count(_meta(lambda: build_model("predrnn", "paper"))) == PredRNN.PUBLISHED["params"].value == 23_838_720


def test_e3d_lstm_official_configuration_parameter_count():
    """google/e3d_lstm Moving MNIST: 4 × 64, kernel (2, 5, 5), τ' = 2, patch 4, TF layer norm,
    the code's 4-chunk M conv (paper_mode=False)."""
    model = _meta(lambda: build_model("e3d_lstm", "paper", paper_mode=False))
    assert _count(model) == E3DLSTM.PUBLISHED["params"].value == 12_898_832
    per_layer = [_count(c) for c in model.core.cells]
    assert per_layer == [2_417_792, 3_492_992, 3_492_992, 3_492_992] and _count(model.head) == 2_064
    # paper mode drops the 4th M chunk (a C→C 3D conv and its 2C layer-norm parameters per layer)
    paper = _meta(lambda: build_model("e3d_lstm", "paper"))
    assert _count(model) - _count(paper) == 4 * (64 * 64 * 50 + 64 + 2 * 64)


def test_conv_tt_lstm_paper_parameter_counts():
    """NVlabs/conv-tt-lstm: blocks (3,3,3,3) × (32,48,48,32), skip 2, k = 5, order 3, steps 3,
    rank 8, 64×64×1 frames: 2,687,281; the same network of ConvLSTM cells: 3,973,201."""
    assert _count(_meta(lambda: build_model("conv_tt_lstm", "paper"))) == ConvTTLSTM.PUBLISHED["params"].value == 2_687_281
    base = _meta(lambda: build_model("conv_tt_lstm", "paper", cell="convlstm"))
    assert _count(base) == ConvTTLSTM.PUBLISHED["params_convlstm"].value == 3_973_201


def test_lsta_cell_parameter_count():
    """swathikirans/LSTA MyConvLSTACell(512, 512, c_cam_classes=100, kernel 3)."""
    assert _count(_meta(lambda: LSTACell(512, 512, 100, 3))) == LSTA.PUBLISHED["cell_params"].value == 18_978_892
    model = _meta(lambda: build_model("lsta", "paper"))
    assert _count(model.cell) == 18_978_892


# ---------------------------------------------------------------------------------------------
# Contract over the name table


def _clip(name: str, t: int = 10) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if name in CLASSIFIERS:
        return torch.rand(2, 3, 4, 32, 32, generator=g)
    return torch.rand(2, 1, t, 32, 32, generator=g)


@pytest.mark.parametrize("name", RECURRENT)
def test_registered_model_contract(name):
    torch.manual_seed(0)
    assert name in MODELS
    kwargs = {"num_classes": 5} if name in CLASSIFIERS else {}
    model = build_model(name, **kwargs)
    x = _clip(name)
    out = model(x)
    assert out.shape == ((2, 5) if name in CLASSIFIERS else (2, 1, 10, 32, 32))
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    # LSTA's coupling layer only enters an argmax (as in the official code): never a gradient
    expected = ["cell.coupling.weight"] if name == "lsta" else []
    assert missing == expected, f"parameters without gradient: {missing}"
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)
    with pytest.raises(ValueError):
        model(x.transpose(1, 2))                                 # (B, T, C, H, W) by mistake
    with pytest.raises(ValueError):
        model(x[:, :, 0])                                        # no time axis


@pytest.mark.parametrize("name", RECURRENT)
def test_autocast_bfloat16_forward(name):
    torch.manual_seed(0)
    model = build_model(name, **({"num_classes": 5} if name in CLASSIFIERS else {})).eval()
    with torch.no_grad(), torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = model(_clip(name, 10)[:, :, :10] if name not in CLASSIFIERS else _clip(name))
    assert torch.isfinite(out.float()).all()


@pytest.mark.parametrize("name", ["predrnn", "e3d_lstm", "conv_tt_lstm", "convlstm_predictor"])
def test_frame_predictors_are_causal(name):
    """Perturbing frame t+1 leaves every next-frame prediction made at steps 0..t unchanged."""
    torch.manual_seed(0)
    model = build_model(name)
    model.eval()
    x = _clip(name)
    y = x.clone()
    y[:, :, 5] += 0.5
    with torch.no_grad():
        a, b = model(x, return_all=True), model(y, return_all=True)
    assert a.shape == (2, 1, 19, 32, 32)
    torch.testing.assert_close(a[:, :, :5], b[:, :, :5], rtol=0, atol=0)
    assert (a[:, :, 5] - b[:, :, 5]).abs().max() > 0


@pytest.mark.parametrize("name", ["convlstm", "convgru"])
def test_encoder_forecaster_reads_only_the_observed_frames(name):
    """Shi et al.'s forecaster has no input: frames after the observed 10 cannot change the
    prediction, and the last observed frame does."""
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = _clip(name, 20)
    y = x.clone()
    y[:, :, 10:] = torch.rand_like(y[:, :, 10:])
    z = x.clone()
    z[:, :, 9] += 0.5
    with torch.no_grad():
        a, b, c = model(x), model(y), model(z)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (a - c).abs().max() > 0
    assert model.forecaster[0].conv_x is None if name == "convlstm" else True


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_step_logits_of_classifiers_are_causal(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=5).eval()
    x = _clip(name)
    y = x.clone()
    y[:, :, 2] += 0.5
    with torch.no_grad():
        a, b = model.forward_steps(x), model.forward_steps(y)
    assert a.shape == (2, 4, 5)
    torch.testing.assert_close(a[:, :2], b[:, :2], rtol=0, atol=0)
    assert (a[:, 2] - b[:, 2]).abs().max() > 0


@pytest.mark.parametrize("name", ["predrnn", "e3d_lstm", "conv_tt_lstm"])
def test_early_recognizer_on_any_core_gives_causal_logits_at_every_step(name):
    torch.manual_seed(0)
    head = EarlyRecognizer.from_predictor(build_model(name, channels=3), num_classes=7).eval()
    x = torch.rand(2, 3, 5, 32, 32)
    y = x.clone()
    y[:, :, 3] += 0.5
    with torch.no_grad():
        a, b = head(x), head(y)
    assert a.shape == (2, 5, 7)
    torch.testing.assert_close(a[:, :3], b[:, :3], rtol=0, atol=0)
    assert (a[:, 3] - b[:, 3]).abs().max() > 0


# ---------------------------------------------------------------------------------------------
# The frame-prediction wrapper


def test_teacher_forcing_switch():
    torch.manual_seed(0)
    model = build_model("predrnn").eval()
    x = _clip("predrnn", 20)
    with torch.no_grad():
        teacher = model(x, teacher_prob=1.0)
        all_truth = model(x, return_all=True)                    # 20 frames, p = 0: the future is ignored
        free = model(x[:, :, :10])
    # teacher_prob = 1: every input is ground truth, i.e. the same as observing 19 frames
    model.observe, model.predict = 19, 1
    with torch.no_grad():
        observed = model(x, return_all=True)                     # (B, 1, 19, H, W), all inputs ground truth
    model.observe, model.predict = 10, 10
    torch.testing.assert_close(teacher, observed[:, :, 9:], rtol=0, atol=0)
    torch.testing.assert_close(free, all_truth[:, :, 9:], rtol=0, atol=0)   # future frames ignored at p = 0
    assert (teacher[:, :, 1:] - free[:, :, 1:]).abs().max() > 1e-4
    torch.testing.assert_close(teacher[:, :, 0], free[:, :, 0], rtol=0, atol=0)   # first prediction: same inputs
    with pytest.raises(ValueError, match="ground-truth future"):
        model(x[:, :, :10], teacher_prob=0.5)
    with pytest.raises(ValueError, match="T = observe"):
        model(x[:, :, :12])
    assert scheduled_teacher_prob(0) == 1.0
    assert scheduled_teacher_prob(25_000) == pytest.approx(0.5)
    assert scheduled_teacher_prob(50_000) == 0.0


# ---------------------------------------------------------------------------------------------
# E3D-LSTM: eidetic recall, layer norm, paper vs code


def test_recall_output_has_the_query_shape_for_any_history_length():
    q = torch.randn(2, 4, 2, 3, 5)
    for n in (1, 3):
        assert eidetic_recall(q, torch.randn(2, n, 4, 2, 3, 5)).shape == q.shape
    with pytest.raises(ValueError):
        eidetic_recall(q, torch.randn(2, 3, 5, 2, 3, 5))         # channel mismatch


def test_recall_is_invariant_to_the_order_of_the_history():
    g = torch.Generator().manual_seed(0)
    q, hist = torch.randn(2, 4, 2, 3, 3, generator=g), torch.randn(2, 5, 4, 2, 3, 3, generator=g)
    perm = torch.tensor([3, 0, 4, 2, 1])
    torch.testing.assert_close(eidetic_recall(q, hist), eidetic_recall(q, hist[:, perm]), atol=1e-6, rtol=1e-6)


def test_recall_of_a_single_entry_at_a_single_position_returns_it_exactly():
    q, c = torch.randn(3, 8, 1, 1, 1), torch.randn(3, 1, 8, 1, 1, 1)
    assert torch.equal(eidetic_recall(q, c), c[:, 0])


def test_recall_single_position_equals_hand_computed_softmax_sum():
    g = torch.Generator().manual_seed(1)
    r, cs = torch.randn(6, generator=g), torch.randn(4, 6, generator=g)
    w = torch.softmax(cs @ r, dim=0)
    expected = (w[:, None] * cs).sum(0)
    out = eidetic_recall(r.view(1, 6, 1, 1, 1), cs.view(1, 4, 6, 1, 1, 1))
    torch.testing.assert_close(out.view(6), expected, atol=1e-6, rtol=1e-6)


def test_recall_tokens_are_per_location_channel_vectors():
    """Several positions, C > 1: equals the channels-last reference; a channels-first reshape
    without permute (OpenSTL's port) is a different function."""
    g = torch.Generator().manual_seed(2)
    q, hist = torch.randn(2, 3, 2, 2, 3, generator=g), torch.randn(2, 2, 3, 2, 2, 3, generator=g)
    out = eidetic_recall(q, hist).double().numpy()
    ref = recall_channels_last(q.numpy(), hist.numpy())
    np.testing.assert_allclose(out, ref, atol=1e-5)
    wrong = recall_openstl_reshape(q.numpy(), hist.numpy())
    assert np.abs(wrong - ref).max() > 1e-2


def test_channel_layer_norm_normalises_over_all_non_batch_axes():
    norm = ChannelLayerNorm(4)
    x = torch.randn(3, 4, 2, 5, 5) * 3 + 2
    y = norm(x)
    torch.testing.assert_close(y.mean(dim=(1, 2, 3, 4)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(dim=(1, 2, 3, 4), unbiased=False), torch.ones(3), atol=1e-3, rtol=0)
    assert _count(norm) == 8                                     # γ, β per channel (TF layer_norm)


def test_e3d_memory_propagates_in_paper_mode_and_not_in_code_mode():
    """Official quirk 1 (google/e3d_lstm #29): the cell returns the old M, so M stays zero."""
    torch.manual_seed(0)
    x = torch.rand(2, 16, 8, 8)
    for paper_mode, zero in ((True, False), (False, True)):
        core = E3DLSTMCore(16, (8, 8), (2, 3, 3), paper_mode=paper_mode)
        state = core.init_state(x)
        for _ in range(3):
            _, state = core.step(x, state)
        assert (torch.count_nonzero(state["m"]) == 0) == zero


def test_e3d_window_bounds_the_history():
    torch.manual_seed(0)
    x = torch.rand(1, 16, 4, 4)
    for window, expected in ((2, 2), (None, 6)):
        core = E3DLSTMCore(16, (4,), (2, 3, 3), window=window)
        state = core.init_state(x)
        for _ in range(5):
            _, state = core.step(x, state)
        assert len(state["history"][0]) == expected              # C_0 plus 5 new states when unbounded


# ---------------------------------------------------------------------------------------------
# PredRNN: the zig-zag memory


@pytest.mark.parametrize("layers", [1, 2])
def test_predrnn_memory_zig_zags_from_the_top_at_t_minus_1_to_the_bottom_at_t(layers):
    torch.manual_seed(0)
    core = PredRNNCore(16, (8,) * layers, 3)
    seen = []
    hooks = [cell.register_forward_hook(lambda mod, args, out, l=l: seen.append((l, args[3], out[2])))
             for l, cell in enumerate(core.cells)]
    x = torch.rand(2, 16, 6, 6)
    state = core.init_state(x)
    for _ in range(3):
        _, state = core.step(x, state)
    for hk in hooks:
        hk.remove()
    steps = [seen[i:i + layers] for i in range(0, len(seen), layers)]
    for t in range(1, 3):
        m_in_bottom = steps[t][0][1]
        m_out_top_prev = steps[t - 1][-1][2]
        assert torch.equal(m_in_bottom, m_out_top_prev)
        for l in range(1, layers):                               # within a step M goes up the stack
            assert torch.equal(steps[t][l][1], steps[t][l - 1][2])


def test_predrnn_cell_memory_stays_zero_without_its_gates():
    torch.manual_seed(0)
    core = PredRNNCore(16, (8,), 3)
    cell = core.cells[0]
    with torch.no_grad():
        cell.conv_x.weight[: 3 * 8].zero_()                      # i, f, g from X
        cell.conv_h.weight[: 3 * 8].zero_()                      # i, f, g from H
    x = torch.rand(2, 16, 6, 6)
    state = core.init_state(x)
    for _ in range(3):
        h, state = core.step(x, state)
    assert torch.count_nonzero(state[1][0]) == 0 and torch.count_nonzero(h) > 0


# ---------------------------------------------------------------------------------------------
# Conv-TT-LSTM


def test_conv_tt_lstm_with_order_steps_one_and_identity_kernel_is_a_convlstm():
    torch.manual_seed(0)
    C = 5
    ref = ConvLSTMCell(3, C, 3)
    tt = ConvTTLSTMCell(3, C, order=1, steps=1, rank=C, kernel_size=3)
    with torch.no_grad():
        w = torch.zeros_like(tt.cores[0].weight)                 # (R, C, 1, 3, 3)
        w[torch.arange(C), torch.arange(C), 0, 1, 1] = 1.0       # centred delta: Φ = H_{t-1}
        tt.cores[0].weight.copy_(w)
        tt.cores[0].bias.zero_()
        tt.conv_x.weight.copy_(ref.conv_x.weight)
        tt.conv_phi.weight.copy_(ref.conv_h.weight)
        tt.bias.copy_(ref.bias)
    x = torch.randn(2, 5, 3, 6, 7)
    a, _ = run_cell(ref, x)
    b, _ = run_cell(tt, x)
    assert torch.equal(a, b)


@pytest.mark.parametrize("steps,order,length", [(3, 3, 2), (3, 3, 7), (4, 2, 6), (5, 1, 3)])
def test_conv_tt_lstm_fifo_holds_exactly_the_last_s_states(steps, order, length):
    torch.manual_seed(steps * 10 + length)
    cell = ConvTTLSTMCell(2, 3, order=order, steps=steps, rank=2, kernel_size=3)
    x = torch.randn(1, length, 2, 4, 4)
    state, outs = None, []
    for t in range(length):
        h, state = cell(x[:, t], state)
        outs.append(h)
        fifo = state[0]
        assert len(fifo) == steps
        expected = [torch.zeros_like(h)] * max(0, steps - len(outs)) + outs[-steps:]
        for got, want in zip(fifo, expected):
            assert torch.equal(got, want)


def test_conv_tt_lstm_oldest_state_feeds_the_first_core_and_newest_the_last():
    """With L = 1, perturbing H_{t-S} changes U_1 only and perturbing H_{t-1} changes U_N only."""
    torch.manual_seed(0)
    cell = ConvTTLSTMCell(2, 3, order=3, steps=3, rank=2, kernel_size=3)
    fifo = tuple(torch.randn(1, 3, 4, 4) for _ in range(3))

    def core_outputs(f):
        outs = []
        hooks = [c.register_forward_hook(lambda m, a, o: outs.append(o)) for c in cell.cores]
        cell.aggregate(f)
        for hk in hooks:
            hk.remove()
        return outs

    base = core_outputs(fifo)
    for j in range(3):
        bumped = tuple(s + (1.0 if i == j else 0.0) for i, s in enumerate(fifo))
        changed = [not torch.equal(a, b) for a, b in zip(base, core_outputs(bumped))]
        assert changed == [i == j for i in range(3)]


# ---------------------------------------------------------------------------------------------
# LSTA


def _lsta_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 8, 5, 5, generator=g), torch.randn(2, 1, 5, 5, generator=g)


def test_lsta_attention_sums_to_one_and_keeps_the_feature_shape():
    torch.manual_seed(0)
    cell = LSTACell(8, 6, 4)
    x, nu = _lsta_inputs()
    x_att, (a, s, c, o) = cell(x, nu)
    u = x_att / x                                                # the attention map, broadcast
    torch.testing.assert_close(u[:, 0].sum(dim=(1, 2)), torch.ones(2), atol=1e-5, rtol=0)
    assert x_att.shape == x.shape and a.shape == s.shape == (2, 1, 5, 5) and c.shape == o.shape == (2, 6, 5, 5)


def test_lsta_complete_zero_attention_gives_softmax_of_the_cam():
    """All attention-recurrence weights zero: s ≡ 0 and x̂ = softmax(ν) ⊙ x exactly."""
    torch.manual_seed(0)
    cell = LSTACell(8, 6, 4, zero_attention=True)
    x, nu = _lsta_inputs()
    state = None
    for _ in range(3):
        x_att, state = cell(x, nu, state)
        assert torch.count_nonzero(state[1]) == 0
    u = torch.softmax(nu.flatten(1), dim=1).view_as(nu)
    torch.testing.assert_close(x_att, u * x, rtol=0, atol=0)


def test_lsta_official_partial_zero_init_leaves_attention_nonzero():
    """The official zero_init zeroes every attention conv except CAM → candidate: s ≠ 0."""
    torch.manual_seed(0)
    cell = LSTACell(8, 6, 4)
    with torch.no_grad():
        cell.conv_s.weight.zero_()
        cell.conv_s.bias.zero_()
        cell.conv_nu.weight[[0, 1, 3]].zero_()                   # i, f, o from ν; candidate (row 2) kept
    x, nu = _lsta_inputs()
    _, state = cell(x, nu)
    assert state[1].abs().max() > 1e-3


def test_lsta_classifier_reads_the_memory_not_the_output_gate():
    """One frame from zero state: the output-gate weights cannot change the logits."""
    torch.manual_seed(0)
    model = build_model("lsta", num_classes=5).eval()
    x = torch.rand(2, 3, 1, 32, 32)
    with torch.no_grad():
        before = model(x)
        model.cell.conv_oh.weight.normal_()
        model.cell.conv_oc.weight.normal_()
        after = model(x)
    torch.testing.assert_close(before, after, rtol=0, atol=0)


def test_lsta_output_gate_ignores_dictionary_rows_other_than_the_selected_one():
    """Lowering the score of every row but k* keeps k* the argmax, and o_t does not change."""
    torch.manual_seed(0)
    cell = LSTACell(8, 6, 4)
    x, nu = _lsta_inputs()
    x, nu = x[:1], nu[:1]
    state = cell(x, nu)[1]
    x_att, ref = cell(x, nu, state)
    pooled_c = ref[2].mean(dim=(2, 3))[0]                        # c_t does not depend on W_cls
    scores = cell.c_classifier(pooled_c) + cell.coupling(x_att.mean(dim=(2, 3))[0])
    k = scores.argmax().item()
    with torch.no_grad():
        for j in range(4):
            if j != k:                                           # score_j drops by exactly 1
                cell.c_classifier.weight[j] -= pooled_c / pooled_c.square().sum()
    _, out = cell(x, nu, state)
    torch.testing.assert_close(out[2], ref[2], rtol=0, atol=0)
    torch.testing.assert_close(out[3], ref[3], rtol=0, atol=0)
    with torch.no_grad():
        cell.c_classifier.weight[k] += 0.5                       # the selected row does matter
    assert (cell(x, nu, state)[1][3] - ref[3]).abs().max() > 0


# ---------------------------------------------------------------------------------------------
# GRU-RCN


def test_gru_rcn_levels_keep_the_size_of_their_percepts():
    torch.manual_seed(0)
    model = build_model("gru_rcn", num_classes=4)
    x = torch.rand(1, 3, 3, 32, 32)
    percepts, states = model.percepts(x), model.level_states(x)
    assert [p.shape[-2:] for p in percepts] == [(16, 16), (8, 8), (4, 4)]
    assert [s.shape[-2:] for s in states] == [p.shape[-2:] for p in percepts]
    assert all(isinstance(c, ConvGRUCell) and c.convention == "ballas" for c in model.rcns)


def test_gru_rcn_paper_preset_levels_on_a_224_input():
    """pool2 .. pool5 of VGG-16 on 224×224: 56, 28, 14, 7 (pool3 of a 224 input is 28×28)."""
    model = _meta(lambda: build_model("gru_rcn", "paper", num_classes=101))
    sizes, s = [], 224
    for i, _ in enumerate(model.stages):
        s //= 2
        if i in model.levels:
            sizes.append(s)
    assert sizes == [56, 28, 14, 7]
    assert [c.hidden_channels for c in model.rcns] == [128, 256, 512, 512]


def test_stacked_gru_rcn_feeds_each_level_the_level_below():
    """Changing level 0's GRU changes level 1's states in the stacked model only."""
    x = torch.rand(2, 3, 3, 32, 32)
    for stacked in (False, True):
        torch.manual_seed(0)
        model = GRURCN(4, stacked=stacked).eval()
        with torch.no_grad():
            before = model.level_states(x)[1]
            model.rcns[0].conv_h.weight.add_(0.5)
            after = model.level_states(x)[1]
        assert torch.equal(before, after) != stacked
    assert model(x).shape == (2, 4)
