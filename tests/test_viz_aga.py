"""The AGA pictures and widget of notebook 12 (lecturekit.viz.aga): they draw from plain arrays, refuse
inconsistent input, and the widget runs the counterfactual search it is given for the window and
target its controls pick."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lecturekit.analysis.aga import counterfactual_past, dependency_matrix
from lecturekit.models.aga import AGA
from lecturekit.viz.aga import aga_window, counterfactual_explorer, cue_windows, dependency_vs_grammar


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return AGA(feat_in=6, num_classes=5, hidden=16, heads=2, order=4, dropout=0.0).eval()


def test_cue_windows_frames_the_cue():
    clips = [torch.zeros(3, 4, 8, 8, dtype=torch.uint8), torch.ones(3, 4, 8, 8)]
    visible = np.array([[1, 1, 0, 0], [0, 1, 1, 0]], bool)
    fig = cue_windows(clips, visible, row_titles=["a", "b"], title="t")
    assert len(fig.axes) == 8
    framed = [ax.spines["top"].get_visible() for ax in fig.axes]
    assert framed == visible.ravel().tolist()                       # exactly the frames that show the cue
    with pytest.raises(ValueError, match=r"visible \(R, T\)"):
        cue_windows(clips, visible[:, :3])
    with pytest.raises(ValueError, match="row_titles"):
        cue_windows(clips, visible, row_titles=["a"])


def test_aga_window_from_a_real_forward(model):
    with torch.no_grad():
        out = model.forward_all(torch.randn(1, 6, 6))
    fig = aga_window(torch.zeros(3, 6, 8, 8), out.attention[0], out.gates[0], title="t")
    assert len(fig.axes) == 6 + 3 + 3                               # frames, three panels, three colour bars
    titles = " ".join(ax.get_title() for ax in fig.axes)
    assert "gate" in titles and "per head" in titles
    ratio = fig.axes[6].images[0].get_array()                       # weight x slots read: rows of 1 when uniform
    assert np.isfinite(ratio[1, 0]) and not np.isfinite(ratio[0, 0])   # step 0 reads nothing, step 1 one slot
    assert ratio[1, 0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="attention"):
        aga_window(torch.zeros(3, 5, 8, 8), out.attention[0], out.gates[0])
    with pytest.raises(ValueError, match="gates"):
        aga_window(torch.zeros(3, 6, 8, 8), out.attention[0], out.gates[0, :3])


def test_dependency_vs_grammar(model):
    m = dependency_matrix(model)
    grammar = torch.softmax(torch.randn(5, 5), 0)                   # columns: P(next | previous b)
    fig = dependency_vs_grammar(m, grammar, title="t")
    assert len(fig.axes) == 5                                       # two maps, their colour bars, the scatter
    assert len(fig.axes[2].collections[0].get_offsets()) == 25      # every pair (a, b)
    with pytest.raises(ValueError, match="square"):
        dependency_vs_grammar(m, grammar[:, :4])


def test_counterfactual_explorer_searches_what_the_controls_pick(model):
    torch.manual_seed(1)
    feats = torch.randn(3, 5, 6)
    clips = torch.zeros(3, 3, 5, 8, 8, dtype=torch.uint8)
    labels = np.array([4, 0, 2])
    calls = []

    def search(i, target):
        calls.append((i, target))
        return counterfactual_past(model, feats[i], target, iters=5)

    w = counterfactual_explorer(clips, search, labels=labels, class_names=list("abcde"))
    assert w.state["window"] == 0 and w.state["target"] == 4 and w.state["true_action"] == 4   # the true next action
    first = w.image.value
    w.slider.value = 2
    assert w.state["window"] == 2 and w.state["target"] == 2 and w.image.value != first
    w.dropdown.value = 1
    assert w.state["target"] == 1 and calls[-1] == (2, 1)
    assert set(w.state) >= {"prediction_before", "prediction_after", "reached", "changed_slots", "iterations"}
    assert w.state["reached"] == (w.state["prediction_after"] == 1)
    n = len(calls)
    w.update(window=0, target=-1)                                   # seen before: from the cache
    assert len(calls) == n and w.state["target"] == 4
    assert "window 0" in w.info.value and "true next action" in w.info.value
    with pytest.raises(ValueError, match="window"):
        w.update(window=3)
    with pytest.raises(ValueError, match="target"):
        w.update(target=7)


def test_counterfactual_explorer_rejects_bad_input(model):
    def search(i, target):
        return counterfactual_past(model, torch.randn(5, 6), target, iters=2)

    with pytest.raises(ValueError, match=r"\(N, C, T, H, W\)"):
        counterfactual_explorer(torch.zeros(3, 5, 8, 8), search)
    with pytest.raises(ValueError, match="labels"):
        counterfactual_explorer(torch.zeros(2, 3, 5, 8, 8), search, labels=[1, 2, 3], class_names=list("abcde"))
    with pytest.raises(ValueError, match="window"):
        counterfactual_explorer(torch.zeros(2, 3, 5, 8, 8), search, labels=[1, 2], class_names=list("abcde"), window=2)
    w = counterfactual_explorer(torch.zeros(2, 3, 5, 8, 8), search, class_names=list("abcde"))   # no labels: action 0
    assert w.state["target"] == 0 and w.state["true_action"] is None
