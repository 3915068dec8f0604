"""Contract tests over the WHOLE name table: every registered model, whoever added it.

For each name, the small preset is built (seeded) and fed the input of
``lecturekit.models.registry.example_input`` (a video (B, C, T, H, W) unless the class declares
``example_input``). Checked: presets exist; the output batch size and (for classifiers) width K;
finite outputs; every parameter receives a gradient; eval mode is deterministic;
``forward_head(forward_features(x)) == forward(x)``; a bf16 CPU autocast forward works; T/2 and
2T frames work where ``SUPPORTS_ANY_T`` is True and another T is rejected where it is False;
a wrong rank (and, for videos, a wrong channel count) raises ValueError naming what was
expected and what was received.

One convention for every model (see ``lecturekit.models.registry``): the class defaults are the
small preset; ``Model(num_classes, *, ...)`` for classifiers, all keyword-only otherwise; the
final classifier is ``model.head``; published numbers are ``PUBLISHED: dict[str, Published]``
and nothing else; ``build_model`` attaches nothing the constructor did not set.
"""

from __future__ import annotations

import inspect
import sys

import pytest
import torch

from lecturekit.models import MODELS, build_model
from lecturekit.models.registry import example_input

NAMES = sorted(MODELS)
# The recognition families: video in, logits (B, K) out.
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


# ---------------------------------------------------------------------------------------------
# One convention for every model: constructor, defaults, head, published numbers, no hidden state
PLAIN = [n for n in NAMES if not MODELS[n].fixed]           # entries that build the class as it is
CLASSIFIERS = [n for n in NAMES if "num_classes" in MODELS[n].cls.PRESETS.get("small", {})]
# Published numbers under any other attribute name than PUBLISHED.
OLD_PUBLISHED_NAMES = ("PAPER_PARAMS", "CODE_PARAMS", "CELL_PAPER_PARAMS", "PAPER_PIXEL_PARAMS",
                       "PAPER_USED_PARAMS", "PAPER_PARAMS_CONVLSTM", "PAPER_TABLE1")


@pytest.mark.parametrize("name", PLAIN)
def test_class_defaults_are_the_small_preset(name):
    """``Model()`` builds what ``build_model(name)`` builds (up to the random weights)."""
    cls = MODELS[name].cls
    params = inspect.signature(cls).parameters
    for key, value in cls.PRESETS["small"].items():
        assert key in params, f"{name}: small preset sets {key!r}, which {cls.__name__} does not take"
        assert params[key].default == value, (
            f"{name}: {cls.__name__}({key}=...) defaults to {params[key].default!r}, the small preset to {value!r}")


@pytest.mark.parametrize("name", NAMES)
def test_constructor_takes_num_classes_first_and_the_rest_by_keyword(name):
    """Classifiers: ``Model(num_classes, *, ...)``; models without classes: all keyword-only."""
    cls = MODELS[name].cls
    params = list(inspect.signature(cls).parameters.values())
    if name in CLASSIFIERS:
        first, rest = params[0], params[1:]
        assert first.name == "num_classes" and first.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, (
            f"{name}: {cls.__name__}'s first parameter is {first.name!r}, expected num_classes")
    else:
        rest = params
    positional = [p.name for p in rest if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert not positional, f"{name}: {cls.__name__} takes {positional} positionally, expected keyword-only"


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_final_classifier_is_the_attribute_head(name):
    """``model.head`` is the final classifier (it produces K outputs and the output depends on it),
    or, for a model whose paper has several distinct classifier outputs, ``head_<suffix>`` for each
    (two-stream's ``head_spatial``, ``head_temporal``); no attribute ``classifier`` or ``fc`` does
    that job."""
    model = _build(name).eval()
    k = _num_classes(name)
    if isinstance(getattr(model, "head", None), torch.nn.Module):
        heads = {"head": model.head}
    else:
        heads = {n: m for n, m in model.named_children() if n.startswith("head_")}
        assert len(heads) >= 2, f"{name}: no module attribute 'head' (nor several 'head_<suffix>')"

    def width(m):
        return getattr(m, "out_features", getattr(m, "out_channels", None))

    for n, head in heads.items():
        assert any(width(m) == k for m in head.modules()), f"{name}: {n} has no layer with K={k} outputs"
    for other in ("classifier", "fc"):
        sub = getattr(model, other, None)
        if isinstance(sub, torch.nn.Module):
            assert not any(width(m) == k for m in sub.modules()), f"{name}: '{other}' is a K-way classifier"
    x = _input(name)
    for n, head in heads.items():
        with torch.no_grad():
            before = _tensors(_call(model, x))
            for p in head.parameters():
                p.add_(1.0)
            after = _tensors(_call(model, x))
        assert any(not torch.equal(u, v) for u, v in zip(before, after)), f"{name}: the output does not read {n}"


@pytest.mark.parametrize("name", NAMES)
def test_published_numbers_live_in_PUBLISHED(name):   # noqa: N802
    from lecturekit.models.published import Published

    cls = MODELS[name].cls
    module = sys.modules[cls.__module__]
    old = [a for a in OLD_PUBLISHED_NAMES if hasattr(cls, a) or hasattr(module, a)]
    assert not old, f"{name}: {cls.__module__} keeps published numbers in {old}; use PUBLISHED"
    published = getattr(cls, "PUBLISHED", None)
    if published is not None:
        assert isinstance(published, dict) and published, f"{name}: PUBLISHED must be a non-empty dict"
        for key, entry in published.items():
            assert isinstance(key, str) and isinstance(entry, Published), (
                f"{name}: PUBLISHED[{key!r}] is {type(entry).__name__}, expected Published")


@pytest.mark.parametrize("name", NAMES)
def test_build_model_sets_no_hidden_attribute(name):
    """What build_model returns is exactly what the constructor returns: nothing attached from outside."""
    cls, entry = MODELS[name].cls, MODELS[name]
    torch.manual_seed(0)
    direct = cls(**{**cls.PRESETS["small"], **entry.fixed})
    built = _build(name)
    assert set(vars(built)) == set(vars(direct)), f"{name}: build_model adds {set(vars(built)) - set(vars(direct))}"
