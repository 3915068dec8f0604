"""Checks of notebook 07: 07.1 one ConvLSTM step with given weights, 07.2 the gradient norms of a
vanilla RNN. Independent naive solutions pass, the checks' references agree with them and with
torch's own LSTM cell, and the typical wrong answers are rejected with the matching hint."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from lecturekit.course import check, get_check
from lecturekit.course.checking import run_check
from lecturekit.layers.conv_rnn import convlstm_step
from lecturekit.models.rnn_cells import rnn_gradient_norms
from reference.course_naive_nb07 import naive_convlstm_step, naive_gradient_norms


# --------------------------------------------------------------------------- 07.1 ConvLSTM step
def test_naive_convlstm_step_passes():
    assert check("07.1", naive_convlstm_step, verbose=False).passed


def test_convlstm_reference_agrees_with_naive_code():
    spec = get_check("07.1")
    result = run_check(dataclasses.replace(spec, reference=naive_convlstm_step),
                       lambda *a: convlstm_step(*a))
    assert result.passed, result.message


def test_convlstm_reference_is_nn_lstm_cell_on_1x1_maps():
    """1×1 kernels on 1×1 maps without peepholes: the reference is torch.nn.LSTMCell with the
    same weights (its two biases summed)."""
    torch.manual_seed(0)
    ref = torch.nn.LSTMCell(3, 4)
    x, h, c = torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 4)
    h_ref, c_ref = ref(x, (h, c))
    h_new, c_new = convlstm_step(x.view(2, 3, 1, 1), h.view(2, 4, 1, 1), c.view(2, 4, 1, 1),
                                 ref.weight_ih.detach().view(16, 3, 1, 1),
                                 ref.weight_hh.detach().view(16, 4, 1, 1),
                                 (ref.bias_ih + ref.bias_hh).detach())
    torch.testing.assert_close(h_new.view(2, 4), h_ref.detach())
    torch.testing.assert_close(c_new.view(2, 4), c_ref.detach())


def _gates(x, h, w_x, w_h, bias):
    return (F.conv2d(x, w_x, padding=w_x.shape[-1] // 2) + F.conv2d(h, w_h, padding=w_h.shape[-1] // 2)
            + bias.view(1, -1, 1, 1)).chunk(4, dim=1)


def lstm_ifog(x, h, c, w_x, w_h, bias, peep=None):
    a_i, a_f, a_o, a_g = _gates(x, h, w_x, w_h, bias)             # another port's split
    p = torch.zeros(3, 1, 1, 1) if peep is None else peep
    c2 = torch.sigmoid(a_f + p[1] * c) * c + torch.sigmoid(a_i + p[0] * c) * torch.tanh(a_g)
    return torch.sigmoid(a_o + p[2] * c2) * torch.tanh(c2), c2


def lstm_o_peeps_old_cell(x, h, c, w_x, w_h, bias, peep=None):
    a_i, a_f, a_g, a_o = _gates(x, h, w_x, w_h, bias)
    p = torch.zeros(3, 1, 1, 1) if peep is None else peep
    c2 = torch.sigmoid(a_f + p[1] * c) * c + torch.sigmoid(a_i + p[0] * c) * torch.tanh(a_g)
    return torch.sigmoid(a_o + p[2] * c) * torch.tanh(c2), c2


def lstm_ignores_peepholes(x, h, c, w_x, w_h, bias, peep=None):
    return naive_convlstm_step(x, h, c, w_x, w_h, bias, None)


def lstm_no_tanh(x, h, c, w_x, w_h, bias, peep=None):
    a_i, a_f, a_g, a_o = _gates(x, h, w_x, w_h, bias)
    p = torch.zeros(3, 1, 1, 1) if peep is None else peep
    c2 = torch.sigmoid(a_f + p[1] * c) * c + torch.sigmoid(a_i + p[0] * c) * torch.tanh(a_g)
    return torch.sigmoid(a_o + p[2] * c2) * c2, c2


def lstm_no_padding(x, h, c, w_x, w_h, bias, peep=None):
    a = F.conv2d(x, w_x) + F.conv2d(h, w_h) + bias.view(1, -1, 1, 1)
    a_i, a_f, a_g, a_o = a.chunk(4, dim=1)
    c = c[..., : a.shape[-2], : a.shape[-1]]
    c2 = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_g)
    return torch.sigmoid(a_o) * torch.tanh(c2), c2


def lstm_h_only(x, h, c, w_x, w_h, bias, peep=None):
    return naive_convlstm_step(x, h, c, w_x, w_h, bias, peep)[0]


@pytest.mark.parametrize("wrong, expected", [
    (lstm_ifog, "(i, f, o, g)"),
    (lstm_o_peeps_old_cell, "NEW cell"),
    (lstm_ignores_peepholes, "peepholes are missing"),
    (lstm_no_tanh, "tanh of the cell is missing"),
    (lstm_no_padding, "wrong shape"),
    (lstm_h_only, "tuple of length 2"),
])
def test_convlstm_rejects_mistakes(wrong, expected):
    result = check("07.1", wrong, verbose=False)
    assert not result.passed
    assert expected in result.message, result.message


# --------------------------------------------------------------------------- 07.2 gradient norms
def test_naive_gradient_norms_pass():
    assert check("07.2", naive_gradient_norms, verbose=False).passed


def test_gradient_reference_agrees_with_finite_differences():
    spec = get_check("07.2")
    result = run_check(dataclasses.replace(spec, reference=naive_gradient_norms),
                       lambda *a: rnn_gradient_norms(*a))
    assert result.passed, result.message


def norms_forward(A, B, b, x):
    """||dh_k/dh_0|| instead of ||dh_T/dh_(T-k)||."""
    A, B, b, x = (v.double() for v in (A, B, b, x))
    h, J, out = torch.zeros(A.shape[0], dtype=torch.float64), torch.eye(A.shape[0], dtype=torch.float64), [1.0]
    for t in range(x.shape[0]):
        h = torch.tanh(A @ h + B @ x[t] + b)
        J = torch.diag(1 - h ** 2) @ A @ J
        out.append(torch.linalg.matrix_norm(J, ord=2).item())
    return torch.tensor(out, dtype=torch.float64)


def norms_frobenius(A, B, b, x):
    A, B, b, x = (v.double() for v in (A, B, b, x))
    hs, h = [], torch.zeros(A.shape[0], dtype=torch.float64)
    for t in range(x.shape[0]):
        h = torch.tanh(A @ h + B @ x[t] + b)
        hs.append(h)
    J, out = torch.eye(A.shape[0], dtype=torch.float64), [torch.linalg.matrix_norm(torch.eye(A.shape[0]).double())]
    for k in range(1, x.shape[0] + 1):
        J = J @ torch.diag(1 - hs[-k] ** 2) @ A
        out.append(torch.linalg.matrix_norm(J))
    return torch.stack(out)


def norms_powers_of_A(A, B, b, x):
    A = A.double()
    return torch.stack([torch.linalg.matrix_norm(torch.linalg.matrix_power(A, k), ord=2) for k in range(x.shape[0] + 1)])


def norms_without_k0(A, B, b, x):
    return naive_gradient_norms(A, B, b, x)[1:]


def norms_float32(A, B, b, x):
    return naive_gradient_norms(A, B, b, x).float()


@pytest.mark.parametrize("wrong, expected", [
    (norms_forward, "forward from the start"),
    (norms_frobenius, "Frobenius"),
    (norms_powers_of_A, "tanh derivative is missing"),
    (norms_without_k0, "wrong shape"),
    (norms_float32, "dtype"),
])
def test_gradient_norms_reject_mistakes(wrong, expected):
    result = check("07.2", wrong, verbose=False)
    assert not result.passed
    assert expected in result.message, result.message


def test_gradient_norms_in_the_linear_regime_are_powers_of_rho():
    """The first case of 07.2 (zero input and bias, symmetric A of radius 0.5): the reference gives 0.5^k."""
    case = get_check("07.2").make_cases()[0]
    norms = rnn_gradient_norms(*case.args)
    torch.testing.assert_close(norms, torch.tensor([0.5 ** k for k in range(len(norms))], dtype=torch.float64))
