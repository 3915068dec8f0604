"""Contract tests over the WHOLE name table: every registered model, whoever added it.

For each name, the small preset is built (seeded) and fed the input of
``lecturekit.models.registry.example_input`` (a video (B, C, T, H, W) unless the class declares
``example_input``). Checked: presets exist; the output batch size and (for classifiers) width K;
finite outputs; every parameter receives a gradient; eval mode is deterministic;
``forward_head(forward_features(x)) == forward(x)``; a bf16 CPU autocast forward works; T/2 and
2T frames work where ``SUPPORTS_ANY_T`` is True and another T is rejected where it is False;
a wrong rank (and, for videos, a wrong channel count) raises ValueError naming what was
expected and what was received.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from lecturekit.models import MODELS, build_model
from lecturekit.models.registry import example_input

NAMES = sorted(MODELS)
# The recognition families (issue "recognition", parts 1 and 2): video in, logits (B, K) out.
RECOGNITION_MODULES = ("frame_cnn", "fusion", "c3d", "factorised", "nonlocal_net", "lrcn",
                       "tsn", "tsm", "gsf", "twostream", "ata")
RECOGNITION = [n for n in NAMES if MODELS[n].cls.__module__.rsplit(".", 1)[-1] in RECOGNITION_MODULES]


def _build(name, **overrides):
    torch.manual_seed(0)
    return build_model(name, "small", **overrides)


def _input(name, **overrides):
    return example_input(MODELS[name], "small", batch=2, **overrides)


def _num_classes(name):
    """K from the merged build arguments (preset, fixed, constructor default); None if not a classifier."""
    entry = MODELS[name]
    kwargs = {**entry.cls.PRESETS.get("small", {}), **entry.fixed}
    default = inspect.signature(entry.cls).parameters.get("num_classes")
    return kwargs.get("num_classes", default.default if default is not None else None)


def _call(model, x):
    return model(*x) if isinstance(x, (tuple, list)) else model(x)


def _tensors(out):
    """Every tensor in a (possibly nested) output."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    return []


def _first(x):
    return x[0] if isinstance(x, (tuple, list)) else x


def _any_t(model):
    return getattr(model, "SUPPORTS_ANY_T", None)


@pytest.mark.parametrize("name", NAMES)
def test_presets_small_and_paper(name):
    presets = getattr(MODELS[name].cls, "PRESETS", {})
    assert {"small", "paper"} <= set(presets), f"{name}: PRESETS needs 'small' and 'paper', has {list(presets)}"


@pytest.mark.parametrize("name", NAMES)
def test_forward_shape_finite_and_all_parameters_get_gradients(name):
    model = _build(name).train()
    x = _input(name)
    outs = _tensors(_call(model, x))
    assert outs, f"{name}: forward returned no tensor"
    main = outs[0]
    assert main.shape[0] == _first(x).shape[0], f"{name}: batch size {main.shape[0]} != input batch"
    k = _num_classes(name)
    if k is not None:
        assert main.shape[-1] == k, f"{name}: output {tuple(main.shape)} does not end in K={k}"
    for o in outs:
        assert torch.isfinite(o).all(), f"{name}: non-finite output"
    sum(o.float().mean() for o in outs if o.is_floating_point()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    # A model may declare parameters that, by its paper's design, never get a gradient (LSTA's
    # coupling layer only feeds an argmax); exactly those, and no others, may lack one.
    declared = set(getattr(model, "PARAMETERS_WITHOUT_GRADIENT", ()))
    assert set(missing) == declared, (
        f"{name}: parameters without gradient: {sorted(set(missing) - declared)[:5]}; "
        f"declared gradient-free but got one: {sorted(declared - set(missing))}")


@pytest.mark.parametrize("name", NAMES)
def test_eval_is_deterministic(name):
    model = _build(name).eval()
    x = _input(name)
    with torch.no_grad():
        a, b = _tensors(_call(model, x)), _tensors(_call(model, x))
    for u, v in zip(a, b):
        assert torch.equal(u, v), f"{name}: eval forward is not deterministic"


@pytest.mark.parametrize("name", RECOGNITION)
def test_recognition_models_split_into_features_and_head(name):
    """Video classifiers: forward(x) == forward_head(forward_features(x)) and logits are (B, K)."""
    model = _build(name).eval()
    x = _input(name)
    with torch.no_grad():
        logits = model(x)
        torch.testing.assert_close(model.forward_head(model.forward_features(x)), logits)
    assert logits.shape == (x.shape[0], _num_classes(name))


@pytest.mark.parametrize("name", NAMES)
def test_bf16_autocast_forward(name):
    model = _build(name).eval()
    x = _input(name)
    with torch.no_grad(), torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        outs = _tensors(_call(model, x))
    assert outs and all(torch.isfinite(o.float()).all() for o in outs), f"{name}: autocast output not finite"


DECLARES_T = [n for n in NAMES if hasattr(MODELS[n].cls, "SUPPORTS_ANY_T") and not hasattr(MODELS[n].cls, "example_input")]


@pytest.mark.parametrize("name", DECLARES_T)
def test_other_clip_lengths(name):
    """SUPPORTS_ANY_T True: T/2 and 2T work; False: T+2 raises a ValueError naming T+2."""
    model = _build(name).eval()
    x = _input(name)
    assert x.dim() == 5
    t = x.shape[2]
    with torch.no_grad():
        if _any_t(model):
            for other in (max(1, t // 2), 2 * t):
                y = _tensors(model(torch.randn(2, x.shape[1], other, *x.shape[3:])))[0]
                assert y.shape[0] == 2 and torch.isfinite(y).all(), f"{name}: failed at T={other}"
        else:
            with pytest.raises(ValueError, match=str(t + 2)):
                model(torch.randn(2, x.shape[1], t + 2, *x.shape[3:]))


@pytest.mark.parametrize("name", NAMES)
def test_wrong_shapes_raise_value_errors_naming_expected_and_received(name):
    model = _build(name).eval()
    x = _input(name)
    first = _first(x)
    rest = list(x[1:]) if isinstance(x, (tuple, list)) else []
    bad = first[0]                                        # batch axis dropped
    with pytest.raises(ValueError) as err:
        _call(model, [bad, *rest] if rest else bad)
    msg = str(err.value)
    assert "expected" in msg.lower() and str(tuple(bad.shape)) in msg, f"{name}: unhelpful message {msg!r}"
    if not rest and first.dim() == 5:
        c = first.shape[1]
        wrong = torch.randn(first.shape[0], c + 1, *first.shape[2:])
        with pytest.raises(ValueError) as err:
            model(wrong)
        assert str(tuple(wrong.shape)) in str(err.value) and str(c) in str(err.value), f"{name}: {err.value!r}"
