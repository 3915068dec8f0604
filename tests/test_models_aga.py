"""AGA (Action-Guided Attention) and its ablation ladder: counts, memory, causality, variants.

The name-table contract (shapes, gradients to all parameters, bf16, bad input) runs in
tests/test_models_contract.py; this file pins AGA's own claims.
"""

from __future__ import annotations

import pytest
import torch

from lecturekit.models import MODELS, build_model
from lecturekit.models.aga import AGA

from reference.aga_loop import aga_loop

SMALL = dict(feat_in=12, num_classes=9, hidden=16, heads=2, order=3, dropout=0.0)
VARIANTS = {
    "aga": {},
    "aga_released_ema": {"query": "ema_released"},
    "aga_last": {"query": "last"},
    "aga_iam": {"query": "last", "values": "state"},
    "aga_pixel": {"attention": "pixel"},
    "aga_nogate": {"gate": False},
}


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    return AGA(**{**SMALL, **kw}).eval()


def _x(b=2, t=8, seed=1):
    return torch.randn(b, t, SMALL["feat_in"], generator=torch.Generator().manual_seed(seed))


def _count(module):
    return sum(p.numel() for p in module.parameters())


def _force_gate(model, value: float):
    """Make g_t exactly 0 (closed: z = e) or 1 (open: z = h~) for every input."""
    last = model.gate.mlp[3]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(1e4 if value == 1.0 else -1e4)


def _share(dst, src):
    """Copy every parameter the two variants have in common (same name and shape)."""
    own = dst.state_dict()
    common = {k: v for k, v in src.state_dict().items() if k in own and own[k].shape == v.shape}
    dst.load_state_dict(common, strict=False)
    return dst


# ----------------------------------------------------------------------------- parameter counts
def test_paper_preset_has_the_released_parameter_count():
    """build_model('aga', 'paper') == 31,670,358 parameters, the count of the released module."""
    model = build_model("aga", preset="paper")
    assert _count(model) == AGA.PAPER_PARAMS == 31_670_358
    blocks = {name: _count(child) for name, child in model.named_children()}
    assert blocks == {
        "encoder": 2_103_296,          # LN(1024) + Linear(1024, 2048) + ScaleNorm(2048)
        "query_encoder": 1_956_796,    # LN(3806) + Linear(3806, 512)
        "key_encoder": 1_956_796,
        "retrieve": 14_696_448,        # RMS q/k/v, W_Q, W_K, W_V, W_O, RMS + FFN 2048-1024-2048
        "history_norm": 2_048,
        "gate": 3_152_384,             # RMS(4096) + Linear(4096, 512) + Linear(512, 2048)
        "classifier": 7_802_590,       # LN(2048) + Linear(2048, 3806)
    }


def test_paper_pixel_baseline_count_differs_from_released_by_one_action_encoder():
    """Our pixel baseline: 31,953,118. The released iam=False module has 33,909,914, exactly one
    action encoder (LN(3806) + Linear(3806, 512) = 1,956,796) more, which it instantiates
    although pixel attention has no action inputs; we do not build that dead encoder."""
    model = build_model("aga_pixel", preset="paper")
    encoder = 3806 * 2 + 3806 * 512 + 512
    assert encoder == 1_956_796
    assert _count(model) == 31_953_118 == AGA.PAPER_PIXEL_PARAMS - encoder


def test_table_rows_fix_the_ablation_switches():
    expect = {"aga": {}, "aga_pixel": {"attention": "pixel"}, "aga_iam": {"query": "last", "values": "state"},
              "aga_nogate": {"gate": False}}
    for name, fixed in expect.items():
        assert MODELS[name].cls is AGA and MODELS[name].fixed == fixed
    m = build_model("aga_iam")
    assert (m.query, m.values, m.attention, m.gate is not None) == ("last", "state", "action", True)


# ----------------------------------------------------------------------------- reference loop
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_matches_naive_reference_loop(variant):
    """The batched recurrence equals a per-sample, per-step, per-head loop (S=3 < T=8: the FIFO drops)."""
    model = _model(**VARIANTS[variant])
    x = _x()
    with torch.no_grad():
        torch.testing.assert_close(model(x), aga_loop(model, x), atol=2e-5, rtol=1e-4)


# ----------------------------------------------------------------------------- the memory
@pytest.mark.parametrize("variant", ["aga", "aga_pixel", "aga_iam"])
def test_memory_empty_at_t0_read_before_write_at_most_S_entries(variant):
    model = _model(**VARIANTS[variant])
    t, s = 8, SMALL["order"]
    with torch.no_grad():
        out = model.forward_all(_x(t=t))
    att = out.attention                                             # (B, heads, T, T)
    assert att.shape == (2, SMALL["heads"], t, t)
    assert torch.equal(att[:, :, 0], torch.zeros_like(att[:, :, 0])), "t=0 must read an empty memory"
    assert torch.isnan(out.contexts[:, 0]).all() and torch.isnan(out.gates[:, 0]).all()
    rows = torch.arange(t)[:, None]
    cols = torch.arange(t)[None, :]
    outside = (cols >= rows) | (cols < rows - s)                    # own step (not yet written) and older than S
    assert (att[..., outside] == 0).all()
    torch.testing.assert_close(att[:, :, 1:].sum(-1), torch.ones(2, SMALL["heads"], t - 1))
    assert (att[:, :, s:][..., :].gt(0).sum(-1) == s).all(), "a full memory holds exactly S entries"


def test_memory_at_reproduces_the_step():
    """read(memory_at(x, t)) with the query re-derived from the slots gives forward's logits at t."""
    model = _model(order=8)
    x = _x(b=1)
    with torch.no_grad():
        logits = model(x)
        for step in (1, 4, 7):
            mem = model.memory_at(x, step)
            q = mem.query_start
            for j in range(mem.keys.shape[1]):
                q = model.update_query(q, mem.keys[:, j])
            torch.testing.assert_close(model.read(q, mem.keys, mem.values, mem.frame).logits, logits[:, step])
    with pytest.raises(ValueError, match="step"):
        model.memory_at(x, 0)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_causal_later_frames_do_not_change_earlier_outputs(variant):
    model = _model(**VARIANTS[variant])
    x = _x()
    y = x.clone()
    y[:, 5] += 3.0 * torch.randn(y[:, 5].shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b = model(x), model(y)
    assert torch.equal(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_gradients_reach_stored_predictions():
    """The final loss's gradient on the classifier bias is dL/dy_{T-1} alone when the memory is
    detached, and differs from it when gradients flow back through the stored predictions."""
    x = _x()
    for detach, same in ((True, True), (False, False)):
        model = _model(detach_memory=detach)
        logits = model(x)
        loss = logits[:, -1].logsumexp(-1).sum()
        g_logits, g_bias = torch.autograd.grad(loss, [logits, model.classifier[3].bias])
        direct = g_logits[:, -1].sum(0)
        assert torch.allclose(g_bias, direct, atol=1e-6) is same


# ----------------------------------------------------------------------------- variants
def test_closed_gate_makes_every_variant_the_memoryless_classifier():
    """g = 0: z_t = e_t for t >= 1, so attention, query and values no longer matter."""
    base = _model()
    _force_gate(base, 0.0)
    x = _x()
    with torch.no_grad():
        e = base.embed(x)
        z = torch.cat([base.history_norm(e[:, :1]), e[:, 1:]], 1)    # z_0 = SN_h(e_0), then e_t
        expected = base.classifier(z)
        for kw in ({}, VARIANTS["aga_iam"], VARIANTS["aga_pixel"], VARIANTS["aga_released_ema"]):
            other = _share(_model(seed=7, **kw), base)
            torch.testing.assert_close(other(x), expected)


def test_open_gate_versus_no_gate():
    """g = 1 gives z = h~; the no-gate variant gives z = h~ + e from the same weights."""
    gated = _model()
    _force_gate(gated, 1.0)
    nogate = _share(_model(seed=3, gate=False), gated)
    x = _x()
    with torch.no_grad():
        a, b = gated.forward_all(x), nogate.forward_all(x)
    torch.testing.assert_close(a.states[:, 1:], a.contexts[:, 1:])
    # step 1 reads the same memory (y_0, e_0) with the same query in both; later steps differ
    torch.testing.assert_close(b.states[:, 1:], b.contexts[:, 1:] + b.frames[:, 1:])
    torch.testing.assert_close(a.contexts[:, 1], b.contexts[:, 1])
    assert not torch.allclose(a.logits[:, 2:], b.logits[:, 2:])


def test_pixel_attention_does_not_read_predictions():
    """Changing the classifier changes AGA's attention (its keys are predictions), not pixel's."""
    x = _x()
    for kw, changes in (({}, True), (VARIANTS["aga_pixel"], False)):
        model = _model(**kw)
        with torch.no_grad():
            before = model.forward_all(x)
            model.classifier[3].weight.mul_(-2.0)
            after = model.forward_all(x)
        assert torch.allclose(before.attention, after.attention) is not changes
        assert torch.allclose(before.contexts[:, 1:], after.contexts[:, 1:]) is not changes


def test_iam_values_are_recurrent_states():
    """IAM vs AGA with the same query (last prediction): the first read sees z_0 = SN_h(e_0) vs
    e_0, equal after the value RMSNorm when SN_h's gain is uniform; from t=2 on IAM reads
    z_1 = h~_1 (gate open) instead of e_1, and the two differ."""
    aga = _model(query="last")
    with torch.no_grad():
        aga.history_norm.weight.fill_(2.0)
    _force_gate(aga, 1.0)
    iam = _share(_model(seed=5, **VARIANTS["aga_iam"]), aga)
    x = _x()
    with torch.no_grad():
        a, b = aga.forward_all(x), iam.forward_all(x)
    torch.testing.assert_close(a.logits[:, :2], b.logits[:, :2], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(a.logits[:, 2:], b.logits[:, 2:], atol=1e-3)


def test_ema_query_textbook_versus_released():
    """After one-hot predictions a then b (K = 3,806): the older action keeps 0.16 of the query
    with the textbook EMA, ~1.2e-4 with the released code's re-softmax; alpha = 1 is 'last'."""
    k = 3806
    y_a, y_b = torch.full((1, k), -1e4), torch.full((1, k), -1e4)
    y_a[0, 0] = y_b[0, 1] = 0.0                               # logits whose softmax is one-hot
    keep = {}
    for query in ("ema", "ema_released", "last"):
        m = AGA(feat_in=4, num_classes=k, hidden=8, heads=2, query=query)
        q = m.update_query(m.update_query(torch.zeros(1, k), y_a), y_b)
        keep[query] = float(q[0, 0])
    assert keep["ema"] == pytest.approx(0.16, abs=1e-6)
    assert keep["ema_released"] == pytest.approx(1.17e-4, rel=0.01)
    assert keep["last"] == 0.0
    x = _x(t=6)
    ones = _model(alpha=1.0)
    last = _share(_model(seed=9, query="last"), ones)
    with torch.no_grad():
        torch.testing.assert_close(ones(x), last(x))


def test_forward_head_of_features_equals_forward_in_eval():
    model = _model()
    x = _x()
    with torch.no_grad():
        torch.testing.assert_close(model.forward_head(model.forward_features(x)), model(x))


def test_any_length_and_bad_arguments():
    model = _model()
    with torch.no_grad():
        assert model(_x(t=1)).shape == (2, 1, SMALL["num_classes"])
        assert model(_x(t=13)).shape == (2, 13, SMALL["num_classes"])
    with pytest.raises(ValueError, match=r"\(2, 8, 5\)"):
        model(torch.randn(2, 8, 5))
    for bad in (dict(query="mean"), dict(attention="conv"), dict(values="logits"), dict(order=0), dict(alpha=1.5)):
        with pytest.raises(ValueError):
            AGA(**{**SMALL, **bad})
