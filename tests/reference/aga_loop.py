"""Naive reference of the AGA recurrence and of its dependency matrix, for tests only.

Written from the steps numbered in lecturekit/models/aga.py (which follow the released code,
github.com/CorcovadoMing/AGA) as plain loops: one sample at a time,
one time step at a time, one head at a time, the memory a ``deque(maxlen=S)``, every norm
written out as its formula. Only the WEIGHTS are borrowed from a lecturekit ``AGA`` (by
parameter name, eval mode, no dropout); none of its methods are called.
"""

from __future__ import annotations

import math
from collections import deque

import torch


def _linear(p, name, x):
    return x @ p[name + ".weight"].T + p[name + ".bias"]


def _layer_norm(p, name, x, eps=1e-5):
    mu = x.mean()
    var = ((x - mu) ** 2).mean()
    return (x - mu) / torch.sqrt(var + eps) * p[name + ".weight"] + p[name + ".bias"]


def _rms_norm(p, name, x, eps=None):
    if eps is None:
        eps = torch.finfo(x.dtype).eps        # nn.RMSNorm(eps=None) uses the machine epsilon
    return x / torch.sqrt((x * x).mean() + eps) * p[name + ".weight"]


def _scale_norm(p, name, x):
    return p[name + ".weight"] * x / max(float(torch.sqrt((x * x).sum())), 1e-12)


def _gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _softmax(v):
    ex = torch.exp(v - v.max())
    return ex / ex.sum()


def _action_encoder(p, name, a):
    """W ReLU(LN(a)) (dropout is off)."""
    return _linear(p, name + ".3", torch.relu(_layer_norm(p, name + ".0", a)))


def _attend(p, cfg, query_in, keys_in, values_in):
    """One query against the memory; returns (context (H,), weights [heads][S'])."""
    heads = cfg["heads"]
    q = _linear(p, "retrieve.w_q", _rms_norm(p, "retrieve.norm_q", query_in, cfg["eps"]))
    ks = [_linear(p, "retrieve.w_k", _rms_norm(p, "retrieve.norm_k", k, cfg["eps"])) for k in keys_in]
    vs = [_linear(p, "retrieve.w_v", _rms_norm(p, "retrieve.norm_v", v, cfg["eps"])) for v in values_in]
    dh = q.shape[0] // heads
    read, weights = [], []
    for h in range(heads):
        sl = slice(h * dh, (h + 1) * dh)
        scores = torch.stack([torch.dot(q[sl], k[sl]) / math.sqrt(dh) for k in ks])
        w = _softmax(scores)
        weights.append(w)
        acc = torch.zeros(dh, dtype=q.dtype)
        for j, v in enumerate(vs):
            acc = acc + w[j] * v[sl]
        read.append(acc)
    c = _linear(p, "retrieve.w_o", torch.cat(read))
    hdn = _linear(p, "retrieve.ffn.0", _rms_norm(p, "retrieve.norm_ffn", c, cfg["eps"]))
    c = c + _linear(p, "retrieve.ffn.3", _gelu(hdn))
    return c, weights


def aga_loop(model, x):
    """Features (B, T, D) -> logits (B, T, K) of ``model``'s configuration, computed naively."""
    p = {k: v.detach() for k, v in model.state_dict().items()}
    cfg = dict(heads=model.retrieve.heads, eps=model.retrieve.norm_q.eps,    # eps: 1e-30, or None (legacy)
               order=model.order, alpha=model.alpha, query=model.query,
               attention=model.attention, values=model.values, gate=model.gate is not None)
    k_classes = model.num_classes
    out = torch.zeros(x.shape[0], x.shape[1], k_classes, dtype=x.dtype)
    for b in range(x.shape[0]):
        memory = deque(maxlen=cfg["order"])           # (key, value) pairs, oldest first
        q_state = torch.zeros(k_classes, dtype=x.dtype)
        prev_logits = None
        for t in range(x.shape[1]):
            f = x[b, t]
            e = _linear(p, "encoder.3", torch.relu(_layer_norm(p, "encoder.0", f)))
            e = _scale_norm(p, "encoder.4", e)
            if t == 0:
                z = _scale_norm(p, "history_norm", e)
            else:
                prob = _softmax(prev_logits)
                if cfg["query"] == "last":
                    q_state = prob
                elif cfg["query"] == "ema":
                    q_state = cfg["alpha"] * prob + (1 - cfg["alpha"]) * q_state
                else:                                  # the released code's variant
                    q_state = cfg["alpha"] * prob + (1 - cfg["alpha"]) * _softmax(q_state)
                if cfg["attention"] == "action":
                    query_in = _action_encoder(p, "query_encoder", q_state)
                    keys_in = [_action_encoder(p, "key_encoder", k) for k, _ in memory]
                else:
                    query_in = _linear(p, "query_encoder", e)
                    keys_in = [k for k, _ in memory]
                c, _ = _attend(p, cfg, query_in, keys_in, [v for _, v in memory])
                hist = _scale_norm(p, "history_norm", c)
                if cfg["gate"]:
                    u = torch.cat([e, hist])
                    if "gate.norm.weight" in p:            # variant="legacy" only
                        u = _rms_norm(p, "gate.norm", u)
                    g = torch.sigmoid(_linear(p, "gate.mlp.3", torch.relu(_linear(p, "gate.mlp.0", u))))
                    z = g * hist + (1 - g) * e
                else:
                    z = hist + e
            logits = _linear(p, "head.3", torch.relu(_layer_norm(p, "head.0", z)))
            out[b, t] = logits
            key = e if cfg["attention"] == "pixel" else logits
            value = e if cfg["values"] == "frame" else z
            memory.append((key, value))                # deque drops the oldest beyond S
            prev_logits = logits
    return out


def dependency_naive(model, queries, candidates, reduce="mean_of_softmax"):
    """M[i, j] from one-hot actions, one (query, candidate, head) triple at a time."""
    p = {k: v.detach() for k, v in model.state_dict().items()}
    heads, k_classes = model.retrieve.heads, model.num_classes
    eps = model.retrieve.norm_q.eps
    eye = torch.eye(k_classes)
    qs = [_linear(p, "retrieve.w_q", _rms_norm(p, "retrieve.norm_q", _action_encoder(p, "query_encoder", eye[a]), eps))
          for a in queries]
    ks = [_linear(p, "retrieve.w_k", _rms_norm(p, "retrieve.norm_k", _action_encoder(p, "key_encoder", eye[c]), eps))
          for c in candidates]
    dh = qs[0].shape[0] // heads
    m = torch.zeros(len(queries), len(candidates))
    for i, q in enumerate(qs):
        per_head = []
        for h in range(heads):
            sl = slice(h * dh, (h + 1) * dh)
            per_head.append(torch.stack([torch.dot(q[sl], k[sl]) / math.sqrt(dh) for k in ks]))
        if reduce == "mean_of_softmax":
            m[i] = sum(_softmax(s) for s in per_head) / heads
        else:
            m[i] = _softmax(sum(per_head) / heads)
    return m
