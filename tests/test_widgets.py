"""Widgets build without a browser, use core ipywidgets only (Colab), and moving a slider
updates the state and the picture through the exposed callback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lecturekit import viz


@pytest.fixture(scope="module")
def clip():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (3, 10, 8, 8), generator=g, dtype=torch.uint8)


def _descendants(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _descendants(child)


def _core_only(widget):
    for w in _descendants(widget):
        assert w._model_module in ("@jupyter-widgets/controls", "@jupyter-widgets/base"), (type(w), w._model_module)
        assert w._view_module in ("@jupyter-widgets/controls", "@jupyter-widgets/base"), (type(w), w._view_module)


def test_clip_scrubber_follows_the_slider(clip):
    scores = torch.zeros(10, 4)
    scores[:5, 1] = 5.0   # the model first believes class 1 ...
    scores[5:, 3] = 5.0   # ... and switches to class 3 after frame 5
    w = viz.clip_scrubber(clip, scores, class_names=["a", "b", "c", "d"], label=3, fps=5)
    _core_only(w)
    assert isinstance(w, viz.widgets.ClipScrubber)
    assert w.state["frame"] == 0 and w.state["prediction"] == 1 and w.state["correct"] is False
    first_png = w.image.value
    w.slider.value = 7
    assert w.state["frame"] == 7 and w.state["time"] == pytest.approx(1.4)
    assert w.state["prediction"] == 3 and w.state["correct"] is True
    assert w.state["topk"][0][1] == "d" and w.state["topk"][0][2] > 0.9
    assert w.image.value != first_png and "d" in w.info.value
    assert w.update(2)["prediction"] == 1  # the callback itself
    with pytest.raises(ValueError, match=r"\(T=10, K\)"):
        viz.clip_scrubber(clip, torch.zeros(9, 4))
    with pytest.raises(ValueError, match="not a class id"):
        viz.clip_scrubber(clip, scores, label=7)


def test_clip_scrubber_calls_a_model_once_per_frame(clip):
    calls = []

    def predict(t):
        calls.append(t)
        return torch.nn.functional.one_hot(torch.tensor(t % 3), 3).float() * 4

    w = viz.clip_scrubber(clip, predict)
    for t in (4, 5, 4, 4):
        w.slider.value = t
    assert calls == [0, 4, 5]
    assert w.state["prediction"] == 1  # 4 % 3
    w = viz.clip_scrubber(clip)  # no predictions: frames only
    w.slider.value = 3
    assert w.state == {"frame": 3, "time": None}


def test_early_recognition_explorer(clip):
    fractions = [0.25, 0.5, 1.0]
    scores = np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 5.0, 0.0]])  # evidence for class 1 grows
    w = viz.early_recognition_explorer(clip, scores, fractions=fractions, label=1, class_names=["x", "y", "z"])
    _core_only(w)
    assert w.state["fraction"] == 1.0 and w.state["observed_frames"] == 10 and w.state["correct"] is True
    full_png = w.image.value
    w.slider.value = 0.25
    assert w.state["observed_frames"] == 3 and w.state["prediction"] == 0 and w.state["correct"] is False
    assert w.image.value != full_png
    probs = []
    for f in fractions:
        w.slider.value = f
        probs.append(w.state["true_prob"])
    assert probs == sorted(probs) and probs[-1] > 0.95
    with pytest.raises(ValueError, match="increasing"):
        viz.early_recognition_explorer(clip, scores, fractions=[0.5, 0.25, 1.0])

    seen = []
    w = viz.early_recognition_explorer(clip, lambda f: (seen.append(f), torch.tensor([f, 1 - f]))[1],
                                       fractions=[0.2, 0.6, 1.0])
    w.slider.value = 0.2
    assert seen == [1.0, 0.2] and w.state["prediction"] == 1


def test_anticipation_explorer_moves_the_window():
    windows = []

    def predict(start, end):
        windows.append((start, end))
        return torch.tensor([end - 3.0, 3.0 - end])  # nearer the action, class 0 wins

    w = viz.anticipation_explorer(5.0, tau_o=2.0, tau_a=1.0, tau_a_values=[0.5, 1.0, 2.0, 3.0],
                                  action_label=0, class_names=["pour", "stir"], predict=predict)
    _core_only(w)
    assert w.state["observed"] == (2.0, 4.0) and w.state["prediction"] == 0 and w.state["correct"] is True
    png = w.image.value
    w.slider.value = 3.0
    assert w.state["tau_a"] == 3.0 and w.state["observed"] == (0.0, 2.0)
    assert w.state["prediction"] == 1 and w.state["correct"] is False
    assert w.image.value != png and "0.00 s .. 2.00 s" in w.info.value
    assert windows == [(2.0, 4.0), (0.0, 2.0)]
    with pytest.raises(ValueError, match="tau_a"):
        viz.anticipation_explorer(5.0, tau_a=0.7)
