"""Gradient flow in recurrent cells (lecture slide "Improving Gradient Flow"):
||∂h_T/∂h_{T-k}|| ≈ ||A^k|| = ρ(A)^k for the vanilla RNN; u ≈ 1 (GRU) or f ≈ 1 (LSTM) keeps it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference.recurrent import cho_gru

from lecturekit.models.rnn_cells import (
    GRUCell,
    LSTMCell,
    RNNCell,
    gradient_flow,
    recurrent_spectrum,
    symmetric_matrix,
    unroll,
)

D = 16


def _rnn(rho: float, seed: int = 0) -> RNNCell:
    torch.manual_seed(seed)
    cell = RNNCell(3, D).double()
    with torch.no_grad():
        cell.A.weight.copy_(symmetric_matrix(D, rho, seed=seed))
    return cell


@pytest.mark.parametrize("rho", [0.5, 0.9, 1.5])
def test_vanilla_rnn_gradient_is_exactly_rho_to_the_k_in_the_linear_regime(rho):
    """Zero input and bias, h = 0: every Jacobian factor is A, so ||∂h_T/∂h_{T-k}||₂ = ρ(A)^k."""
    cell = _rnn(rho)
    with torch.no_grad():
        cell.B.weight.zero_()
        cell.B.bias.zero_()
    norms = gradient_flow(cell, torch.zeros(1, 12, 3, dtype=torch.float64))
    expected = torch.tensor([rho ** k for k in range(13)], dtype=torch.float64)
    torch.testing.assert_close(norms, expected, rtol=1e-9, atol=0)
    assert recurrent_spectrum(cell).abs()[0].item() == pytest.approx(rho)


def test_vanilla_rnn_vanishes_at_least_at_the_spectral_rate_with_real_inputs():
    """tanh' ≤ 1: with a symmetric A the norm is bounded by ρ^k and falls below 1e-5 by k = 20."""
    rho = 0.5
    cell = _rnn(rho)
    x = torch.randn(1, 30, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    norms = gradient_flow(cell, x)
    bound = torch.tensor([rho ** k for k in range(31)], dtype=torch.float64)
    assert (norms <= bound * (1 + 1e-9)).all()
    assert norms[20] < 1e-5
    # the decay rate per step is close to ρ: the log-slope over k = 1..10 lies in [log ρ - 0.5, log ρ]
    slope = (norms[10].log() - norms[1].log()) / 9
    assert np.log(rho) - 0.5 <= slope.item() <= np.log(rho) + 1e-9


def test_vanilla_rnn_explodes_with_spectral_radius_above_one():
    cell = _rnn(1.5)
    with torch.no_grad():
        cell.B.weight.zero_()
        cell.B.bias.zero_()
    norms = gradient_flow(cell, torch.zeros(1, 20, 3, dtype=torch.float64))
    assert norms[20] > 1e3


def _gated(cls, gate_bias: float, rho: float = 0.5, seed: int = 0):
    """A GRU / LSTM whose recurrent blocks have spectral radius ρ and whose u / f bias is gate_bias."""
    torch.manual_seed(seed)
    cell = cls(3, D).double()
    gates = cls.gates
    with torch.no_grad():
        blocks = [symmetric_matrix(D, rho, seed=seed + j) for j in range(gates)]
        cell.A.weight.copy_(torch.cat(blocks, dim=0))
        cell.B.bias[D:2 * D].fill_(gate_bias)                  # GRU: u (2nd block); LSTM: f (2nd block)
    return cell


@pytest.mark.parametrize("cls", [GRUCell, LSTMCell])
def test_gates_near_one_keep_the_gradient_where_the_vanilla_rnn_loses_it(cls):
    """Same recurrent matrices (ρ = 0.5): the vanilla RNN is at 0.5^30 ≈ 1e-9 after 30 steps,
    the GRU with u ≈ 1 / the LSTM with f ≈ 1 still has a gradient norm above 0.5."""
    x = torch.randn(1, 30, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    rnn_norms = gradient_flow(_rnn(0.5), x)
    kept = gradient_flow(_gated(cls, +6.0), x)
    lost = gradient_flow(_gated(cls, -6.0), x)
    assert rnn_norms[30] < 1e-8
    assert kept[30] > 0.5
    assert lost[30] < 1e-3                                     # gate near 0: the skip path is gone


def test_probe_equals_an_autograd_jacobian_of_the_unrolled_map():
    """The probe's rows-by-copies trick == torch.autograd.functional.jacobian of h_0 -> h_T."""
    cell = _gated(GRUCell, 1.0)
    x = torch.randn(1, 6, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)

    def run(h0):
        h = h0.unsqueeze(0)
        for t in range(6):
            h = cell.step(x[:, t], h)
        return h[0]

    J = torch.autograd.functional.jacobian(run, torch.zeros(D, dtype=torch.float64))
    norms = gradient_flow(cell, x)
    assert norms[6].item() == pytest.approx(torch.linalg.matrix_norm(J, ord=2).item(), rel=1e-9)


def test_lstm_cell_equals_torch_lstm_cell():
    torch.manual_seed(0)
    ref = torch.nn.LSTMCell(3, 5)
    cell = LSTMCell(3, 5)
    with torch.no_grad():
        cell.A.weight.copy_(ref.weight_hh)
        cell.B.weight.copy_(ref.weight_ih)
        cell.B.bias.copy_(ref.bias_ih + ref.bias_hh)
    x = torch.randn(4, 7, 3)
    hs, _ = unroll(cell, x)
    h = c = torch.zeros(4, 5)
    for t in range(7):
        h, c = ref(x[:, t], (h, c))
        assert (hs[:, t] - h).abs().max() < 1e-6


def test_gru_cell_is_the_slide_gru():
    """The teaching GRU equals a numpy loop of the slide's equations (u gates the old state)."""
    torch.manual_seed(0)
    cell = GRUCell(3, 4).double()
    x = torch.randn(1, 5, 3, dtype=torch.float64)
    hs, _ = unroll(cell, x)
    ref = cho_gru(x[0].numpy(), cell.B.weight.detach().numpy(), cell.A.weight.detach().numpy(),
                  cell.B.bias.detach().numpy())
    np.testing.assert_allclose(hs[0].detach().numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("cls", [RNNCell, GRUCell, LSTMCell])
def test_teaching_cells_are_causal(cls):
    torch.manual_seed(0)
    cell = cls(3, 4)
    x = torch.randn(2, 6, 3)
    y = x.clone()
    y[:, 3] += 1.0
    a, b = unroll(cell, x)[0], unroll(cell, y)[0]
    torch.testing.assert_close(a[:, :3], b[:, :3], rtol=0, atol=0)
    assert (a[:, 3] - b[:, 3]).abs().max() > 0


def test_bad_inputs_raise():
    cell = RNNCell(3, D)
    with pytest.raises(ValueError):
        gradient_flow(cell, torch.zeros(2, 5, 3))               # one sequence only
    with pytest.raises(ValueError):
        unroll(cell, torch.zeros(1, 5, 4))                      # wrong D_in
