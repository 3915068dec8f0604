"""Checks of notebook 07 (recurrent convolutional networks and gradient flow): 07.1 one ConvLSTM
step with given weights, 07.2 the gradient norms ||∂h_T/∂h_{T-k}||₂ of a vanilla RNN."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...layers.conv_rnn import convlstm_step
from ...models.rnn_cells import rnn_gradient_norms
from ..checking import Case, Check, Mistake


# =========================================================================== 07.1 ConvLSTM cell
def _lstm_wrong(x, h, c, w_x, w_h, bias, peep=None, *, order="ifgo", o_reads_old=False, no_peep=False,
                no_tanh_c=False, sigmoid_g=False):
    """Known wrong variants of one ConvLSTM step (for the diagnosis of a failing answer)."""
    a = (F.conv2d(x, w_x, padding=w_x.shape[-1] // 2) + F.conv2d(h, w_h, padding=w_h.shape[-1] // 2)
         + bias.view(1, -1, 1, 1))
    parts = dict(zip(order, a.chunk(4, dim=1)))
    a_i, a_f, a_g, a_o = parts["i"], parts["f"], parts["g"], parts["o"]
    use_peep = peep is not None and not no_peep
    if use_peep:
        a_i, a_f = a_i + peep[0] * c, a_f + peep[1] * c
    g = torch.sigmoid(a_g) if sigmoid_g else torch.tanh(a_g)
    c_new = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * g
    if use_peep:
        a_o = a_o + peep[2] * (c if o_reads_old else c_new)
    h_new = torch.sigmoid(a_o) * (c_new if no_tanh_c else torch.tanh(c_new))
    return h_new, c_new


def _lstm_args(g, b, c_in, c_h, size, k, *, peep, dtype=torch.float32, scale=0.5):
    def r(*shape):
        return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype)

    args = (r(b, c_in, *size), r(b, c_h, *size), r(b, c_h, *size), r(4 * c_h, c_in, k, k), r(4 * c_h, c_h, k, k),
            r(4 * c_h))
    return args + ((r(3, c_h, 1, 1),) if peep else (None,))


def _lstm_cases(g: torch.Generator) -> list[Case]:
    return [
        Case("1x1 kernels on 1x1 maps, no peepholes (= nn.LSTMCell)", _lstm_args(g, 3, 4, 5, (1, 1), 1, peep=False),
             hint="the stacked pre-activations split into (i, f, g, o) in this order, as in torch.nn.LSTM"),
        Case("3x3 kernels on 5x6 maps, no peepholes", _lstm_args(g, 2, 3, 4, (5, 6), 3, peep=False),
             hint="pad by k // 2 so the maps keep their size"),
        Case("3x3 kernels with peepholes", _lstm_args(g, 2, 3, 4, (5, 5), 3, peep=True),
             hint="peep[0] and peep[1] multiply the OLD cell c_{t-1} (gates i, f); peep[2] multiplies the "
                  "NEW cell c_t (gate o)"),
        Case("5x5 kernels, one channel each, peepholes", _lstm_args(g, 1, 1, 1, (7, 7), 5, peep=True, scale=1.0)),
        Case("large pre-activations (saturating gates), peepholes", _lstm_args(g, 2, 2, 3, (3, 4), 3, peep=True,
                                                                                 scale=2.0)),
        Case("float64", _lstm_args(g, 1, 2, 3, (4, 4), 3, peep=True, dtype=torch.float64),
             hint="let every new tensor follow the input's dtype"),
    ]


CONVLSTM_STEP = Check(
    exercise="07.1", name="convlstm_step", title="A ConvLSTM cell",
    reference=convlstm_step,                      # lecturekit.layers.conv_rnn, the step ConvLSTMCell runs
    cases=_lstm_cases, arg_names=("x", "h", "c", "w_x", "w_h", "bias", "peep"), axes="B C H W",
    atol=1e-5, rtol=1e-4,
    mistakes=(
        Mistake(lambda *a: _lstm_wrong(*a, order="ifog"),
                "the gates are split as (i, f, o, g); the stacked channels are in torch's order (i, f, g, o): "
                "the candidate g is the THIRD block, the output gate o the last"),
        Mistake(lambda *a: _lstm_wrong(*a, order="fiog"),
                "the gate order is wrong: the blocks of 4·C_h channels are (i, f, g, o)"),
        Mistake(lambda *a: _lstm_wrong(*a, o_reads_old=True),
                "the output gate's peephole must look at the NEW cell c_t (Shi et al., Eq. 3), not at c_{t-1}"),
        Mistake(lambda *a: _lstm_wrong(*a, no_peep=True),
                "the peepholes are missing: with peep given, add peep[0]·c_{t-1} to i, peep[1]·c_{t-1} to f and "
                "peep[2]·c_t to o"),
        Mistake(lambda *a: _lstm_wrong(*a, no_tanh_c=True), "h_t = o_t ⊙ tanh(c_t): the tanh of the cell is missing"),
        Mistake(lambda *a: _lstm_wrong(*a, sigmoid_g=True), "the candidate g uses tanh, not the sigmoid"),
    ),
    hint="a = W_x * x + W_h * h + b (padding k // 2); split a into (i, f, g, o); c_t = σ(f)·c + σ(i)·tanh(g); "
         "h_t = σ(o)·tanh(c_t); with peepholes, i and f also read c_{t-1}, o reads c_t",
)


# =========================================================================== 07.2 gradient norms
def _rnn_states(A, B, b, x):
    h, hs = torch.zeros(A.shape[0], dtype=torch.float64), []
    for t in range(x.shape[0]):
        h = torch.tanh(A @ h + B @ x[t] + b)
        hs.append(h)
    return hs


def _norms_wrong(A, B, b, x, *, forward=False, frobenius=False, no_tanh=False):
    A, B, b, x = (v.to(torch.float64) for v in (A, B, b, x))
    hs = _rnn_states(A, B, b, x)
    T, D = x.shape[0], A.shape[0]
    factors = [A if no_tanh else torch.diag(1 - h ** 2) @ A for h in hs]      # ∂h_t/∂h_{t-1}, t = 1..T
    J, out = torch.eye(D, dtype=torch.float64), []
    norm = (lambda m: torch.linalg.matrix_norm(m)) if frobenius else (lambda m: torch.linalg.matrix_norm(m, ord=2))
    out.append(norm(J))
    for k in range(1, T + 1):
        J = factors[k - 1] @ J if forward else J @ factors[T - k]              # ∂h_k/∂h_0 or ∂h_T/∂h_{T-k}
        out.append(norm(J))
    return torch.stack(out)


def _sym(g, d, rho):
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    lam = torch.rand(d, generator=g, dtype=torch.float64) * 2 - 1
    return (q * (lam / lam.abs().max() * rho)) @ q.T


def _norm_args(g, d, d_in, t, rho, *, symmetric=True, x_scale=1.0, bias=True):
    A = _sym(g, d, rho) if symmetric else rho * torch.randn(d, d, generator=g, dtype=torch.float64) / d ** 0.5
    B = torch.randn(d, d_in, generator=g, dtype=torch.float64) / d_in ** 0.5
    b = 0.1 * torch.randn(d, generator=g, dtype=torch.float64) if bias else torch.zeros(d, dtype=torch.float64)
    x = x_scale * torch.randn(t, d_in, generator=g, dtype=torch.float64)
    return A, B, b, x


def _norm_cases(g: torch.Generator) -> list[Case]:
    return [
        Case("zero input and bias, symmetric A with radius 0.5 (the linear regime: 0.5^k)",
             _norm_args(g, 6, 2, 8, 0.5, x_scale=0.0, bias=False),
             hint="with h_t = 0 every factor ∂h_t/∂h_{t-1} is A, so the k-th norm is ||A^k||₂ = 0.5^k"),
        Case("random input, symmetric A with radius 0.9, T = 12", _norm_args(g, 8, 3, 12, 0.9),
             hint="∂h_t/∂h_{t-1} = diag(1 - h_t²) A: the tanh derivative at the NEW state h_t"),
        Case("random input, radius 1.5, T = 10", _norm_args(g, 5, 2, 10, 1.5),
             hint="multiply the factors from h_T backwards: ∂h_T/∂h_{T-k} = F_T F_{T-1} ... F_{T-k+1}"),
        Case("a non-symmetric A, T = 9", _norm_args(g, 7, 4, 9, 1.2, symmetric=False),
             hint="the spectral norm (ord=2: the largest singular value), not the Frobenius norm"),
        Case("one step (T = 1)", _norm_args(g, 4, 2, 1, 0.8), hint="the output has T + 1 entries; entry 0 is ||I|| = 1"),
    ]


GRADIENT_NORMS = Check(
    exercise="07.2", name="gradient_norms", title="Experiment: gradient norms through time",
    reference=rnn_gradient_norms,                 # lecturekit.models.rnn_cells: gradient_flow of an RNNCell
    cases=_norm_cases, arg_names=("A", "B", "b", "x"), axes="K", atol=1e-10, rtol=1e-6,
    mistakes=(
        Mistake(lambda *a: _norms_wrong(*a, forward=True),
                "you returned ||∂h_k/∂h_0|| (forward from the start); the exercise asks for ||∂h_T/∂h_{T-k}||, "
                "backwards from the LAST state, as backpropagation from a loss at time T sees it"),
        Mistake(lambda *a: _norms_wrong(*a, frobenius=True),
                "that is the Frobenius norm; use the spectral norm, torch.linalg.matrix_norm(J, ord=2)"),
        Mistake(lambda *a: _norms_wrong(*a, no_tanh=True),
                "you used ||A^k||: the tanh derivative is missing; each factor is diag(1 - h_t²) A"),
    ),
    hint="run the RNN from h_0 = 0 and keep every h_t; J = I; for k = 1..T: J = J @ (diag(1 - h_{T-k+1}²) A); "
         "entry k = torch.linalg.matrix_norm(J, ord=2)",
)


