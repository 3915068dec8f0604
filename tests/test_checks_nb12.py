"""Checks of notebook 12 (12.1 action-guided attention with the gate; 12.2 reading the dependency
matrix): independent naive solutions pass, the checks' references agree with the naive code, with
the library (``AGA.read`` and the whole recurrence of ``AGA`` on the same weights) and with the
world's grammar, and typical wrong answers are rejected with the matching hint."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from lecturekit.analysis.aga import dependency_matrix
from lecturekit.course import check, get_check
from lecturekit.course.checking import run_check
from lecturekit.analysis.dependency import top_next_actions as reference_top_next_actions
from lecturekit.data.toykitchens import ToyKitchens
from lecturekit.models.aga import AGA
from reference.course_naive_nb12 import naive_action_guided_attention, naive_top_next_actions

# the check's reference: the library's action_guided_attention on an AGA's modules holding the exercise's weights
reference_action_guided_attention = get_check("12.1").reference


# --------------------------------------------------------------------------- 12.1 action-guided attention
def test_naive_action_guided_attention_passes():
    assert check("12.1", naive_action_guided_attention, verbose=False).passed


def test_action_guided_attention_reference_agrees_with_naive_code():
    spec = get_check("12.1")
    result = run_check(dataclasses.replace(spec, reference=naive_action_guided_attention),
                       reference_action_guided_attention)
    assert result.passed, result.message


def _exercise_weights(model):
    """The weights the exercise takes, read from a library AGA."""
    r = model.retrieve
    return (model.query_encoder[3].weight, model.key_encoder[3].weight, r.w_q.weight, r.w_k.weight, r.w_v.weight,
            model.gate.mlp[0].weight, model.gate.mlp[3].weight)


def _plumbing_off(model):
    """What the exercise leaves out, switched off in the module: biases 0, W_O = I, FFN output 0."""
    r = model.retrieve
    with torch.no_grad():
        for layer in (model.query_encoder[3], model.key_encoder[3], r.w_q, r.w_k, r.w_v, model.gate.mlp[0],
                      model.gate.mlp[3], r.w_o, r.ffn[3]):
            layer.bias.zero_()
        r.w_o.weight.copy_(torch.eye(model.hidden))
        r.ffn[3].weight.zero_()
    return model


def test_exercise_runs_the_whole_recurrence_of_the_library():
    """Step by step over 6 steps (EMA query, FIFO memory of S = 4), the exercise's function and the
    library classifier give exactly the logits, attention and gates of ``AGA.forward_all``."""
    torch.manual_seed(0)
    model = _plumbing_off(AGA(feat_in=5, num_classes=7, hidden=16, bottleneck=8, heads=4, order=4, dropout=0.0)).eval()
    x = torch.randn(3, 6, 5)
    with torch.no_grad():
        out = model.forward_all(x)
        e = model.embed(x)
        q = torch.zeros(3, 7)
        keys, vals = [model.head(model.history_norm(e[:, 0]))], [e[:, 0]]
        for t in range(1, 6):
            q = model.update_query(q, keys[-1])
            for fn in (naive_action_guided_attention, reference_action_guided_attention):
                z, a, g = fn(q, torch.stack(keys[-4:], 1), torch.stack(vals[-4:], 1), e[:, t],
                             *_exercise_weights(model), model.heads)
                assert torch.allclose(model.head(z.float()), out.logits[:, t], atol=1e-5)
                assert torch.allclose(g.float(), out.gates[:, t], atol=1e-5)
                n = min(t, 4)
                assert torch.allclose(a.float(), out.attention[:, :, t, t - n:t], atol=1e-5)
            keys.append(out.logits[:, t])
            vals.append(e[:, t])


def test_one_slot_by_hand():
    """S = 1: the weight is 1, so c = W_V RMS(v); h~ = c / ‖c‖ and z = g h~ + (1 − g) e."""
    torch.manual_seed(1)
    q, keys = torch.softmax(torch.randn(2, 5), -1), torch.randn(2, 1, 5)
    values, frame = torch.randn(2, 1, 8), torch.randn(2, 8)
    w = (torch.randn(4, 5), torch.randn(4, 5), torch.randn(8, 4), torch.randn(8, 4), torch.randn(8, 8),
         torch.randn(2, 16), torch.randn(8, 2))
    z, a, g = reference_action_guided_attention(q, keys, values, frame, *w, 2)
    assert torch.equal(a, torch.ones(2, 2, 1))
    v = values[:, 0]
    hist = F.normalize((v / v.pow(2).mean(-1, keepdim=True).sqrt()) @ w[4].T, dim=-1)
    gate = torch.sigmoid(F.relu(torch.cat([frame, hist], -1) @ w[5].T) @ w[6].T)
    assert torch.allclose(g, gate, atol=1e-6)
    assert torch.allclose(z, gate * hist + (1 - gate) * frame, atol=1e-6)


def _read(q, keys, values, frame, w_eq, w_ek, w_q, w_k, w_v, w_g1, w_g2, heads, *, softmax_dim=-1, scale=True,
          swap_gate=False, swap_encoders=False):
    def enc(x, w):
        return F.relu(F.layer_norm(x, x.shape[-1:])) @ w.T

    def rms(x):
        return x / x.pow(2).mean(-1, keepdim=True).sqrt()

    if swap_encoders:
        w_eq, w_ek = w_ek, w_eq
    b, s, _ = keys.shape
    h = frame.shape[-1]
    qq = (rms(enc(q, w_eq)) @ w_q.T).view(b, heads, h // heads)
    kk = (rms(enc(keys, w_ek)) @ w_k.T).view(b, s, heads, h // heads)
    vv = (rms(values) @ w_v.T).view(b, s, heads, h // heads)
    scores = torch.einsum("bhc,bshc->bhs", qq, kk) / (math.sqrt(h // heads) if scale else 1.0)
    a = scores.softmax(softmax_dim)
    hist = F.normalize(torch.einsum("bhs,bshc->bhc", a, vv).reshape(b, h), dim=-1)
    g = torch.sigmoid(F.relu(torch.cat([frame, hist], -1) @ w_g1.T) @ w_g2.T)
    z = g * frame + (1 - g) * hist if swap_gate else g * hist + (1 - g) * frame
    return z, a, g


def read_gate_swapped(*args):
    return _read(*args, swap_gate=True)


def read_softmax_over_heads(*args):
    return _read(*args, softmax_dim=1)


def read_unscaled(*args):
    return _read(*args, scale=False)


def read_encoders_swapped(*args):
    return _read(*args, swap_encoders=True)


def read_one_head(*args):
    return _read(*args[:-1], 1)


def read_sum_instead_of_gate(*args):
    z, a, g = _read(*args)
    hist = (z - (1 - g) * args[3]) / g                                       # back from z to h~
    return hist + args[3], a, g                                              # the no-gate ablation: z = h~ + e


def test_a_correct_vectorised_answer_passes():
    assert check("12.1", _read, verbose=False).passed


@pytest.mark.parametrize("wrong, expected", [
    (read_gate_swapped, "the other way round"),
    (read_softmax_over_heads, "ran over the heads"),
    (read_unscaled, "not scaled"),
    (read_encoders_swapped, "encoders are swapped"),
    (read_one_head, "single head"),
    (read_sum_instead_of_gate, "wrong values"),
])
def test_action_guided_attention_rejects_mistakes(wrong, expected):
    result = check("12.1", wrong, verbose=False)
    assert not result.passed
    assert expected in result.message, result.message


# --------------------------------------------------------------------------- 12.2 reading the dependency matrix
@pytest.fixture(scope="module")
def world():
    return ToyKitchens(seed=0)


def test_naive_top_next_actions_passes():
    assert check("12.2", naive_top_next_actions, verbose=False).passed


def test_top_reference_agrees_with_naive_code():
    spec = get_check("12.2")
    result = run_check(dataclasses.replace(spec, reference=naive_top_next_actions), reference_top_next_actions)
    assert result.passed, result.message


def test_top_reference_reads_the_grammar_the_way_the_world_writes_it(world):
    """In the dependency orientation G = transition_matrix().T, the top-1 next action after b is the
    arg-max of the world's row b, P(next | previous b), for every past action b."""
    p = torch.as_tensor(world.transition_matrix("train"))
    g = p.T
    for b in range(p.shape[0]):
        best = reference_top_next_actions(g, b, 3)
        assert int(best[0]) == int(torch.argmax(p[b]))
        assert torch.all(p[b, best[:-1]] >= p[b, best[1:]])


def test_top_reference_reads_a_dependency_matrix_like_the_analysis(world):
    """On a (random) AGA's dependency matrix, column b ranks the current actions that attend to b."""
    torch.manual_seed(0)
    m = dependency_matrix(AGA(feat_in=4, num_classes=6, hidden=16, heads=2))
    for b in range(6):
        assert reference_top_next_actions(m, b, 6).tolist() == torch.argsort(m[:, b], descending=True, stable=True).tolist()


def top_transposed(m, past, k):
    return torch.sort(torch.as_tensor(m)[past, :], descending=True, stable=True).indices[:k]


def top_ascending(m, past, k):
    return torch.sort(torch.as_tensor(m)[:, past], stable=True).indices[:k]


def top_larger_id_first(m, past, k):
    return torch.sort(torch.as_tensor(m)[:, past], stable=True).indices.flip(0)[:k]


def top_values(m, past, k):
    return torch.sort(torch.as_tensor(m)[:, past], descending=True, stable=True).values[:k]


def top_one_too_many(m, past, k):
    return torch.sort(torch.as_tensor(m)[:, past], descending=True, stable=True).indices[:k + 1]


@pytest.mark.parametrize("wrong, expected", [
    (top_transposed, "transposed reading"),
    (top_ascending, "LEAST likely"),
    (top_larger_id_first, "SMALLER action id"),
    (top_values, "wrong dtype"),
    (top_one_too_many, "wrong shape"),
])
def test_top_next_actions_rejects_mistakes(wrong, expected):
    result = check("12.2", wrong, verbose=False)
    assert not result.passed
    assert expected in result.message, result.message
