"""lecturekit.viz.early: the early-recognition vs anticipation timeline and the multi-model scrubber
build without a browser, use core ipywidgets only, follow the slider, and refuse bad input with
messages that name what was expected."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from lecturekit.viz.early import EarlyModelsScrubber, early_models_scrubber, task_timeline


@pytest.fixture(scope="module")
def clip():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (3, 6, 8, 8), generator=g, dtype=torch.uint8)


def _descendants(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _descendants(child)


def test_task_timeline_draws_three_rows():
    fig = task_timeline([0.0, 2.0, 4.0], [1.5, 3.5, 5.0], [0, 1, 2], 1, fraction=0.25, tau_a=1.0, tau_o=1.0,
                        class_names=["a", "b", "c"])
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "predict 'b' before it starts" in texts and any("observed 25%" in t for t in texts)


@pytest.mark.parametrize("kwargs, message", [
    (dict(index=3), "0 <= index < 3"),
    (dict(fraction=0.0), "fraction"),
    (dict(tau_a=-1.0), "tau_a >= 0"),
])
def test_task_timeline_rejects_bad_input(kwargs, message):
    args = dict(index=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        task_timeline([0.0, 2.0, 4.0], [1.5, 3.5, 5.0], [0, 1, 2], **args)


def test_scrubber_follows_the_slider(clip):
    late = torch.zeros(6, 3)
    late[:3, 0] = 4.0                                   # wrong for the first half ...
    late[3:, 2] = 4.0                                   # ... then right
    early = torch.full((6, 3), 0.1)
    early[:, 2] = 0.8                                   # probabilities, right from the start
    w = early_models_scrubber(clip, {"late": late, "early": early}, label=2, class_names=["a", "b", "c"], step=2)
    assert isinstance(w, EarlyModelsScrubber)
    for x in _descendants(w):
        assert x._model_module in ("@jupyter-widgets/controls", "@jupyter-widgets/base")
    assert w.state["step"] == 2 and w.state["fraction"] == pytest.approx(2 / 6)
    assert w.state["models"]["late"]["correct"] is False and w.state["models"]["early"]["correct"] is True
    assert w.state["models"]["early"]["true_prob"] == pytest.approx(0.8)
    png = w.image.value
    w.slider.value = 5
    assert w.state["step"] == 5 and w.state["models"]["late"]["prediction"] == 2
    assert w.state["models"]["late"]["topk"][0][1] == "c"
    assert w.image.value != png
    with pytest.raises(ValueError, match="1 <= step <= 6"):
        w.update(7)


@pytest.mark.parametrize("scores, message", [
    ({}, "at least one"),
    ({"m": np.zeros((5, 3))}, "one row per frame of the clip"),
    ({"m": np.zeros((6, 3)), "n": np.zeros((6, 4))}, "same K classes"),
    ({"m": np.zeros(6)}, r"\(T, K\)"),
])
def test_scrubber_rejects_bad_scores(clip, scores, message):
    with pytest.raises(ValueError, match=message):
        early_models_scrubber(clip, scores)


def test_scrubber_rejects_bad_label_and_names(clip):
    with pytest.raises(ValueError, match=r"class id in \[0, 3\)"):
        early_models_scrubber(clip, {"m": np.zeros((6, 3))}, label=3)
    with pytest.raises(ValueError, match="expected 3 names"):
        early_models_scrubber(clip, {"m": np.zeros((6, 3))}, class_names=["a"])
