"""AGA (Action-Guided Attention) and its ablation ladder: counts, memory, causality, variants.

The name-table contract (shapes, gradients to all parameters, bf16, bad input) runs in
tests/test_models_contract.py; this file pins AGA's own claims.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

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
    "aga_legacy": {"variant": "legacy"},
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
UNUSED = ("retrieve.unused_ffn_k_gain", "retrieve.unused_ffn_v_gain")


def test_paper_preset_has_the_released_parameter_count():
    """build_model('aga', 'paper') has 31,670,358 parameters, the count of the released module,
    of which the forward pass uses 31,666,262: all but the 2·H = 4,096 gains of the key and
    value RMSNorms that the released FFN's pre-norm wrapper builds and never applies."""
    with torch.device("meta"):
        model = build_model("aga", preset="paper")
    assert _count(model) == model.num_parameters() == AGA.PUBLISHED["params"].value == 31_670_358
    assert model.num_parameters(used_only=True) == AGA.PUBLISHED["used_params"].value == 31_666_262
    assert model.PARAMETERS_WITHOUT_GRADIENT == UNUSED
    assert sum(model.get_parameter(n).numel() for n in UNUSED) == 2 * 2048 == 4_096
    blocks = {name: _count(child) for name, child in model.named_children()}
    assert blocks == {
        "encoder": 2_103_296,          # LN(1024) + Linear(1024, 2048) + ScaleNorm(2048)
        "query_encoder": 1_956_796,    # LN(3806) + Linear(3806, 512)
        "key_encoder": 1_956_796,
        "retrieve": 14_700_544,        # RMS q/k/v, W_Q, W_K, W_V, W_O, RMS + FFN 2048-1024-2048, 2 unused gains
        "history_norm": 2_048,
        "gate": 3_148_288,             # Linear(4096, 512) + Linear(512, 2048)
        "head": 7_802_590,             # LN(2048) + Linear(2048, 3806)
    }
    with torch.device("meta"):
        legacy = build_model("aga", preset="paper", variant="legacy")
    # the earlier reconstruction: the same total, all of it used (RMS(4096) on the gate input instead)
    assert legacy.num_parameters() == legacy.num_parameters(used_only=True) == AGA.PUBLISHED["params"].value
    assert legacy.PARAMETERS_WITHOUT_GRADIENT == ()


def test_paper_pixel_baseline_count_differs_from_released_by_one_action_encoder():
    """Our pixel baseline: 31,953,118. The released iam=False module has 33,909,914, exactly one
    action encoder (LN(3806) + Linear(3806, 512) = 1,956,796) more, which it instantiates
    although pixel attention has no action inputs; we do not build that dead encoder."""
    with torch.device("meta"):
        model = build_model("aga_pixel", preset="paper")
    encoder = 3806 * 2 + 3806 * 512 + 512
    assert encoder == 1_956_796
    assert _count(model) == 31_953_118 == AGA.PUBLISHED["pixel_params"].value - encoder


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
        g_logits, g_bias = torch.autograd.grad(loss, [logits, model.head[3].bias])
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
        expected = base.head(z)
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
            model.head[3].weight.mul_(-2.0)
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


# ----------------------------------------------------------------------------- the released module
# Written for these tests from a reading of the released code (github.com/CorcovadoMing/AGA,
# model.py at cb46630, class AGA and the blocks it builds); nothing of it is imported or run.
# Each released parameter name is paired with the lecturekit parameter that plays its role.
def released_names(model) -> dict[str, str]:
    """{released parameter name: lecturekit parameter name} for an AGA in the released variant."""
    pairs = {"encoder.4.g": "encoder.4.weight", "hx_norm.g": "history_norm.weight"}
    for i in (0, 3):
        for t in ("weight", "bias"):
            pairs[f"encoder.{i}.{t}"] = f"encoder.{i}.{t}"
            pairs[f"anticipation_classifier.{i}.{t}"] = f"head.{i}.{t}"
            if model.gate is not None:
                pairs[f"selector.{i}.{t}"] = f"gate.mlp.{i}.{t}"
            if model.attention == "action":
                pairs[f"encode_q.{i}.{t}"] = f"query_encoder.{i}.{t}"
                pairs[f"encode_k.{i}.{t}"] = f"key_encoder.{i}.{t}"
    att, ffn = "state_transform.target_f1.", "state_transform.target_f2.fn."
    for x in "qkv":
        pairs[f"{att}{x}_norm.g"] = f"retrieve.norm_{x}.weight"
    pairs[f"{ffn}q_norm.g"] = "retrieve.norm_ffn.weight"
    pairs[f"{ffn}k_norm.g"] = "retrieve.unused_ffn_k_gain"
    pairs[f"{ffn}v_norm.g"] = "retrieve.unused_ffn_v_gain"
    for t in ("weight", "bias"):
        for x in "qkv":
            pairs[f"{att}fn.{x}_f.{t}"] = f"retrieve.w_{x}.{t}"
        pairs[f"{att}fn.to_out.0.{t}"] = f"retrieve.w_o.{t}"
        pairs[f"{ffn}fn.net.0.{t}"] = "retrieve.ffn.0." + t
        pairs[f"{ffn}fn.net.3.{t}"] = "retrieve.ffn.3." + t
        if model.attention == "pixel":                            # iam=False: encode_q is one Linear(H, H/4)
            pairs[f"encode_q.{t}"] = f"query_encoder.{t}"
    return pairs


def _rms(x, g):
    """The released RMSNorm: g * x / sqrt(mean(x^2)), no epsilon."""
    return g * x / x.pow(2).mean(-1, keepdim=True).sqrt()


def _sn(x, g):
    """The released ScaleNorm: g * x / ||x||_2 (F.normalize's 1e-12 floor)."""
    return g * x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _lin(w, name, x):
    return x @ w[name + ".weight"].T + w[name + ".bias"]


def _ln(w, name, x):
    return F.layer_norm(x, x.shape[-1:], w[name + ".weight"], w[name + ".bias"], eps=1e-5)


def released_forward(w, x, *, heads, order, ma_ratio=0.8, recurrent_query="ma", recurrent_h=False,
                     iam=True, gate_x=True):
    """The released AGA.forward in eval mode (no dropout, no teacher forcing, no perturbation),
    with weights ``w`` under the released names; features (B, T, D) -> logits (B, T, K)."""
    b, t, _ = x.shape
    k = w["anticipation_classifier.3.bias"].shape[0]
    keys, values, logits = [], [], []
    for i in range(t):
        e = _sn(_lin(w, "encoder.3", torch.relu(_ln(w, "encoder.0", x[:, i]))), w["encoder.4.g"])   # (B, H)
        if i == 0:
            q = x.new_zeros(b, k)
        else:                                                    # query_prob=True: probabilities
            prev = logits[-1].softmax(-1)
            q = q.softmax(-1) * (1 - ma_ratio) + prev * ma_ratio if recurrent_query == "ma" else prev
        if not keys:                                             # empty memory: only the history norm
            state = _sn(e, w["hx_norm.g"])
        else:
            mem_k, mem_v = torch.stack(keys, 1), torch.stack(values, 1)          # (B, S', K), (B, S', H)
            if iam:
                qe = _lin(w, "encode_q.3", torch.relu(_ln(w, "encode_q.0", q)))
                ke = _lin(w, "encode_k.3", torch.relu(_ln(w, "encode_k.0", mem_k)))
            else:                                                # pixel attention: keys are the values
                qe, ke = _lin(w, "encode_q", e), mem_v
            a = "state_transform.target_f1."
            qh = _lin(w, a + "fn.q_f", _rms(qe, w[a + "q_norm.g"]))              # (B, H)
            kh = _lin(w, a + "fn.k_f", _rms(ke, w[a + "k_norm.g"]))              # (B, S', H)
            vh = _lin(w, a + "fn.v_f", _rms(mem_v, w[a + "v_norm.g"]))
            s, h = kh.shape[1], qh.shape[-1]
            dh = h // heads
            qh, kh, vh = qh.view(b, heads, dh), kh.view(b, s, heads, dh), vh.view(b, s, heads, dh)
            att = (torch.einsum("bhd,bshd->bhs", qh, kh) * dh ** -0.5).softmax(-1)
            c = _lin(w, a + "fn.to_out.0", torch.einsum("bhs,bshd->bhd", att, vh).reshape(b, h))
            f = "state_transform.target_f2.fn."                  # residual around RMS(q) -> FFN only
            c = c + _lin(w, f + "fn.net.3", F.gelu(_lin(w, f + "fn.net.0", _rms(c, w[f + "q_norm.g"]))))
            hist = _sn(c, w["hx_norm.g"])
            if gate_x:
                g = torch.sigmoid(_lin(w, "selector.3", torch.relu(_lin(w, "selector.0", torch.cat([e, hist], -1)))))
                state = g * hist + (1 - g) * e
            else:
                state = hist + e
        y = _lin(w, "anticipation_classifier.3", torch.relu(_ln(w, "anticipation_classifier.0", state)))
        logits.append(y)
        keys, values = (keys + [y])[-order:], (values + [state if recurrent_h else e])[-order:]
    return torch.stack(logits, 1)


# lecturekit switches -> the released constructor's switches (query="ema" has no released twin)
RELEASED_CONFIGS = {
    "ema_released": ({"query": "ema_released"}, {}),
    "last": ({"query": "last"}, {"recurrent_query": "last"}),
    "iam": ({"query": "last", "values": "state"}, {"recurrent_query": "last", "recurrent_h": True}),
    "pixel": ({"query": "ema_released", "attention": "pixel"}, {"iam": False}),
    "nogate": ({"query": "ema_released", "gate": False}, {"gate_x": False}),
}


def _perturb_gains(model, seed=11):
    """Move every norm gain off its initial value, so that a missing or misplaced gain shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and not name.endswith("bias"):
                p.copy_(1.0 + 0.5 * torch.rand(p.shape, generator=g, dtype=p.dtype))
    return model


def test_gate_is_the_released_selector():
    """Linear(2H, H/4) -> ReLU -> Dropout -> Linear(H/4, H) -> Sigmoid on [e ; h~], nothing else."""
    model = AGA(**{**SMALL, "dropout": 0.3})
    h = SMALL["hidden"]
    gate = model.gate
    assert gate.norm is None
    assert [type(m) for m in gate.mlp] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.Sigmoid]
    assert (gate.mlp[0].in_features, gate.mlp[0].out_features) == (2 * h, h // 4)
    assert (gate.mlp[3].in_features, gate.mlp[3].out_features) == (h // 4, h)
    assert gate.mlp[2].p == 0.3
    assert [n for n, _ in gate.named_parameters()] == ["mlp.0.weight", "mlp.0.bias", "mlp.3.weight", "mlp.3.bias"]
    e, hist = torch.randn(3, h), torch.randn(3, h)
    gate.eval()
    torch.testing.assert_close(gate(e, hist), gate.mlp(torch.cat([e, hist], -1)), rtol=0, atol=0)
    # released initialisation: ScaleNorm gains start at 1
    assert torch.equal(model.encoder[4].weight, torch.ones(h)) and torch.equal(model.history_norm.weight, torch.ones(h))


def test_parameters_pair_one_to_one_with_the_released_module():
    for kw in ({}, {"attention": "pixel"}, {"gate": False}):
        model = _model(**kw)
        pairs = released_names(model)
        assert sorted(pairs.values()) == sorted(n for n, _ in model.named_parameters())
        assert len(set(pairs.values())) == len(pairs)


@pytest.mark.parametrize("config", sorted(RELEASED_CONFIGS))
def test_forward_equals_a_hand_written_released_forward(config):
    """Same weights (gains perturbed off 1), float64, S=3 < T=8 so the FIFO drops: the logits of
    the released-variant module equal the released forward written out above."""
    ours, theirs = RELEASED_CONFIGS[config]
    model = _perturb_gains(_model(**ours)).double()
    x = _x().double()
    params = dict(model.named_parameters())
    w = {rel: params[mine].detach() for rel, mine in released_names(model).items()}
    with torch.no_grad():
        got = model(x)
        want = released_forward(w, x, heads=SMALL["heads"], order=SMALL["order"], ma_ratio=model.alpha, **theirs)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)          # measured: <= 1e-15


@pytest.mark.parametrize("variant", ["aga", "aga_pixel", "aga_iam", "aga_nogate"])
def test_unused_gains_get_no_gradient(variant):
    """The two released-but-unused gains stay without a gradient after a backward in train mode;
    every other parameter gets one; the module declares exactly these two."""
    model = _model(**VARIANTS[variant]).train()
    model(_x()).logsumexp(-1).mean().backward()
    missing = sorted(n for n, p in model.named_parameters() if p.grad is None)
    assert missing == sorted(UNUSED) == sorted(model.PARAMETERS_WITHOUT_GRADIENT)
    assert model.num_parameters() - model.num_parameters(used_only=True) == 2 * SMALL["hidden"]


def test_dropout_sits_after_the_output_projection_and_in_the_ffn():
    """Released: attention_dropout acts after W_O and in the FFN, never on the attention weights;
    dropout does not act inside the attention block. Legacy: the other way round."""
    torch.manual_seed(0)
    q, keys, vals = torch.randn(4, 4), torch.randn(4, 3, 4), torch.randn(4, 3, SMALL["hidden"])

    def retrieve(**kw):
        r = AGA(**{**SMALL, "bottleneck": 4, **kw}).retrieve
        return r.eval()(q, keys, vals), r.train()(q, keys, vals), r

    (c_eval, w_eval), (c_train, w_train), r = retrieve(dropout=0.5, attention_dropout=0.0)
    assert torch.equal(c_eval, c_train) and torch.equal(w_eval, w_train)
    (c_eval, w_eval), (c_train, w_train), r = retrieve(dropout=0.0, attention_dropout=0.5)
    assert not torch.allclose(c_eval, c_train)
    assert isinstance(r.attn_drop, nn.Identity)
    assert [m.p for m in (r.drop, r.ffn[2], r.ffn[4])] == [0.5, 0.5, 0.5]
    legacy = retrieve(dropout=0.5, attention_dropout=0.0, variant="legacy")
    assert not torch.allclose(legacy[0][0], legacy[1][0])
    assert legacy[2].attn_drop.p == 0.0 and legacy[2].drop.p == 0.5


def test_legacy_variant_keeps_the_earlier_reconstruction():
    """variant='legacy': RMS on the gate input, ScaleNorm gains sqrt(H), no unused gains. With the
    same weights it differs from the released module only by the gate's RMSNorm, which is the
    identity while both ScaleNorm gains are uniform at sqrt(H) (legacy's initialisation: then
    [e ; h~] already has RMS 1) and rescales the gate input by sqrt(H) at the released gains 1."""
    h = SMALL["hidden"]
    legacy = _model(variant="legacy")
    assert isinstance(legacy.gate.norm, nn.RMSNorm) and legacy.gate.norm.weight.shape == (2 * h,)
    assert torch.allclose(legacy.history_norm.weight, torch.full((h,), h ** 0.5))
    assert not any("unused" in n for n, _ in legacy.named_parameters())
    x = _x()
    with torch.no_grad():
        released = _share(_model(seed=4), legacy)                # legacy's weights, gains sqrt(H) included
        torch.testing.assert_close(legacy(x), released(x))
        released = _model(seed=4)                                # the released gains 1 ...
        legacy = _share(_model(seed=5, variant="legacy"), released)   # ... and its weights in legacy
        a, b = legacy(x), released(x)
        torch.testing.assert_close(a[:, 0], b[:, 0])            # t = 0: no gate
        assert not torch.allclose(a[:, 1:], b[:, 1:])
        legacy.gate.norm = None                                  # without it, the two are the same function
        torch.testing.assert_close(legacy(x), b)
    with pytest.raises(ValueError, match="variant"):
        AGA(**{**SMALL, "variant": "paper"})
