"""Checks of notebook 11 (11.1 STATT's factorised spatial-temporal attention, Eqs. 4-7; 11.2 the
queue update): independent naive solutions pass, the checks' references agree with the naive code
and with the library (``STATT`` and ``HORSTCell`` on the same weights), and typical wrong answers
are rejected with the matching hint."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from lecturekit.course import check, get_check
from lecturekit.course.checking import run_check
from lecturekit.models.horst import HORST, STATT, push_queue, statt_attend
from reference.course_naive_nb11 import naive_push, naive_statt


# --------------------------------------------------------------------------- 11.1 STATT
def test_naive_statt_passes():
    assert check("11.1", naive_statt, verbose=False).passed


def test_statt_reference_agrees_with_naive_code():
    spec = get_check("11.1")
    result = run_check(dataclasses.replace(spec, reference=naive_statt), statt_attend)
    assert result.passed, result.message


def _filter_weights(statt):
    return (statt.f_q.conv.weight, statt.f_q.conv.bias, statt.f_k.conv.weight, statt.f_k.conv.bias)


def test_statt_reference_is_the_library_module_on_copied_weights():
    """The exercise's function, fed the module's pre-transformed Q, K, V and its filter weights,
    gives exactly what ``STATT.forward`` returns (the check the notebook runs on a real window)."""
    torch.manual_seed(0)
    statt = STATT(6).eval()
    query, kv = torch.randn(2, 6, 4, 4), torch.randn(3, 2, 12, 4, 4)
    with torch.no_grad():
        a, s_map, t_w = statt(query, kv)
        q = statt.q_pre(query)
        k = statt.k_pre(kv.flatten(0, 1)).unflatten(0, (3, 2))
        v = statt.v_pre(kv.flatten(0, 1)).unflatten(0, (3, 2))
    for fn in (statt_attend, naive_statt):
        got = fn(q, k, v, *_filter_weights(statt))
        for e, g in zip((a, s_map, t_w), got):
            assert torch.allclose(e, g.float(), atol=1e-5)
    assert torch.allclose(t_w.sum(0), torch.ones(2))


def test_statt_one_slot_by_hand():
    """S = 1, zero filter weights and biases: f = 1/2 everywhere, T = 1, S(x, y) = σ(q̂ · K(x, y))
    with q̂ = mean(Q) / 2, and a = S ⊙ V."""
    q, k, v = torch.randn(1, 3, 2, 2), torch.randn(1, 1, 3, 2, 2), torch.randn(1, 1, 3, 2, 2)
    zw, zb = torch.zeros(1, 2, 3, 3), torch.zeros(1)
    a, s_map, t_w = statt_attend(q, k, v, zw, zb, zw, zb)
    assert torch.equal(t_w, torch.ones(1, 1))
    expect = torch.sigmoid(torch.einsum("c,chw->hw", q[0].mean((1, 2)) / 2, k[0, 0]))
    assert torch.allclose(s_map[0, 0, 0], expect, atol=1e-6)
    assert torch.allclose(a[0], expect * v[0, 0], atol=1e-6)


def _pieces(q, k, w_q, b_q, w_k, b_k, pool=("mean", "max")):
    def f(x, w, b):
        stats = {"mean": x.mean(1, keepdim=True), "max": x.amax(1, keepdim=True)}
        return torch.sigmoid(F.conv2d(torch.cat([stats[p] for p in pool], 1), w, b, padding=1))
    s, b = k.shape[:2]
    return f(q, w_q, b_q), f(k.flatten(0, 1), w_k, b_k).unflatten(0, (s, b))


def statt_sqrt_c(q, k, v, w_q, b_q, w_k, b_k):
    fq, fk = _pieces(q, k, w_q, b_q, w_k, b_k)
    s_map = torch.sigmoid(torch.einsum("sbc,sbchw->sbhw", (fk * q).mean((-2, -1)), k))[:, :, None]
    scores = torch.einsum("bd,sbd->sb", (fq * q).flatten(1), (fk * k).flatten(2)) / math.sqrt(q.shape[1])
    t_w = scores.softmax(0)
    return torch.einsum("sb,sbchw->bchw", t_w, v * s_map), s_map, t_w


def statt_max_first(q, k, v, w_q, b_q, w_k, b_k):
    fq, fk = _pieces(q, k, w_q, b_q, w_k, b_k, pool=("max", "mean"))
    s_map = torch.sigmoid(torch.einsum("sbc,sbchw->sbhw", (fk * q).mean((-2, -1)), k))[:, :, None]
    c, h, w = q.shape[1:]
    t_w = (torch.einsum("bd,sbd->sb", (fq * q).flatten(1), (fk * k).flatten(2)) / math.sqrt(c * h * w)).softmax(0)
    return torch.einsum("sb,sbchw->bchw", t_w, v * s_map), s_map, t_w


def statt_softmax_over_batch(q, k, v, w_q, b_q, w_k, b_k):
    fq, fk = _pieces(q, k, w_q, b_q, w_k, b_k)
    s_map = torch.sigmoid(torch.einsum("sbc,sbchw->sbhw", (fk * q).mean((-2, -1)), k))[:, :, None]
    c, h, w = q.shape[1:]
    t_w = (torch.einsum("bd,sbd->sb", (fq * q).flatten(1), (fk * k).flatten(2)) / math.sqrt(c * h * w)).softmax(1)
    return torch.einsum("sb,sbchw->bchw", t_w, v * s_map), s_map, t_w


def statt_unmasked_values(q, k, v, w_q, b_q, w_k, b_k):
    fq, fk = _pieces(q, k, w_q, b_q, w_k, b_k)
    s_map = torch.sigmoid(torch.einsum("sbc,sbchw->sbhw", (fk * q).mean((-2, -1)), k))[:, :, None]
    c, h, w = q.shape[1:]
    t_w = (torch.einsum("bd,sbd->sb", (fq * q).flatten(1), (fk * k).flatten(2)) / math.sqrt(c * h * w)).softmax(0)
    return torch.einsum("sb,sbchw->bchw", t_w, v), s_map, t_w


def statt_plain_mean_query(q, k, v, w_q, b_q, w_k, b_k):
    fq, fk = _pieces(q, k, w_q, b_q, w_k, b_k)
    s_map = torch.sigmoid(torch.einsum("bc,sbchw->sbhw", q.mean((-2, -1)), k))[:, :, None]
    c, h, w = q.shape[1:]
    t_w = (torch.einsum("bd,sbd->sb", (fq * q).flatten(1), (fk * k).flatten(2)) / math.sqrt(c * h * w)).softmax(0)
    return torch.einsum("sb,sbchw->bchw", t_w, v * s_map), s_map, t_w


@pytest.mark.parametrize("wrong, expected", [
    (statt_sqrt_c, "divided by sqrt(C)"),
    (statt_max_first, "mean first"),
    (statt_softmax_over_batch, "ran over the batch"),
    (statt_unmasked_values, "values are not masked"),
    (statt_plain_mean_query, "plain spatial mean"),
])
def test_statt_rejects_mistakes(wrong, expected):
    result = check("11.1", wrong, verbose=False)
    assert not result.passed
    assert expected in result.message, result.message


# --------------------------------------------------------------------------- 11.2 queue update
def test_naive_push_passes():
    assert check("11.2", naive_push, verbose=False).passed


def test_push_reference_agrees_with_naive_code():
    spec = get_check("11.2")
    result = run_check(dataclasses.replace(spec, reference=naive_push), push_queue)
    assert result.passed, result.message


@pytest.mark.parametrize("order", [1, 3])
def test_push_reference_follows_the_cells_queue(order):
    """Run a HORST cell over 6 steps; the queues it returns equal those built with the exercise's update."""
    torch.manual_seed(0)
    cell = HORST(3, in_channels=4, hidden=(5,), order=order).cells[0].eval()
    state, hq, aq = None, None, None
    with torch.no_grad():
        for _ in range(6):
            (o, h, a), state, _ = cell(torch.randn(2, 4, 3, 3), state)
            hq, aq = push_queue(hq, h, order), push_queue(aq, a, order)
            assert torch.equal(torch.stack(state[0]), hq) and torch.equal(torch.stack(state[1]), aq)
    assert hq.shape[0] == min(6, order)


def push_front(queue, x, order):
    return x[None] if queue is None else torch.cat([x[None], queue])[:order]


def push_keeps_first(queue, x, order):
    return x[None] if queue is None else torch.cat([queue, x[None]])[:order]


def push_keeps_zero(queue, x, order):
    if queue is None:
        return torch.stack([torch.zeros_like(x), x])
    return torch.cat([queue, x[None]])[-order:]


def push_no_limit(queue, x, order):
    return x[None] if queue is None else torch.cat([queue, x[None]])


@pytest.mark.parametrize("wrong, expected", [
    (push_front, "in FRONT"),
    (push_keeps_first, "dropped the NEWEST"),
    (push_keeps_zero, "kept the zero slot"),
    (push_no_limit, "wrong shape"),
])
def test_push_rejects_mistakes(wrong, expected):
    result = check("11.2", wrong, verbose=False)
    assert not result.passed
    assert expected in result.message, result.message
