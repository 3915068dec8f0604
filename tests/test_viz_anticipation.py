"""The anticipation pictures and widget of notebook 10 (lecturekit.viz.anticipation): the frames
they show are the frames the datasets read, and the widget reacts to its slider."""

from __future__ import annotations

import numpy as np
import pytest

from lecturekit.data.toykitchens import ToyKitchens
from lecturekit.viz.anticipation import (causal_attention_figure, protocol_timeline, rulstm_diagram, sampled_frames,
                                         tau_a_frames)


@pytest.fixture(scope="module")
def world():
    return ToyKitchens(seed=0)


def test_sampled_frames_are_the_views_frames(world):
    for tau_a in (0.5, 1.0, 2.0):
        view = world.anticipation("test", tau_a=tau_a, tau_o=2.0, frames=8)
        for i in range(0, len(view.labels["action"]), 17):
            idx, too_early, unobserved = sampled_frames(int(view.labels["start"][i]), world.fps, tau_a=tau_a)
            assert idx.tolist() == np.asarray(view.frame_index[i]).tolist()
            assert too_early == bool(view.labels["too_early"][i])
            assert unobserved == bool(view.labels["unobserved"][i])
            assert unobserved or idx.max() < view.labels["start"][i] - tau_a * world.fps   # strictly before the cut


def test_sampled_frames_by_hand():
    # action at 0-based frame 20, 8 fps, tau_a = 1 s: cut at frame 12; 8 samples every 2 frames before it
    idx, too_early, unobserved = sampled_frames(20, 8.0, tau_a=1.0, tau_o=2.0, frames=8)
    assert idx.tolist() == [0, 0, 1, 3, 5, 7, 9, 11]                       # the window starts at -4: clamped
    assert too_early and not unobserved
    idx, too_early, unobserved = sampled_frames(3, 8.0, tau_a=1.0)
    assert unobserved and too_early and (idx == -1).all()


def test_widget_moves_the_window(world):
    seg = world.segments("test")
    rows = np.nonzero(seg["video"] == seg["video"][0])[0]
    w = tau_a_frames(world.long_video(int(seg["video"][0])), seg["start"][rows], seg["stop"][rows],
                     seg["action"][rows], 5, fps=world.fps, class_names=world.actions)
    assert w.state["tau_a"] == 1.0 and w.state["distinct"] == 8
    first = w.image.value
    w.slider.value = 2.0
    assert w.state["tau_a"] == 2.0 and w.image.value != first
    assert max(w.state["indices"]) < w.state["cut"] == seg["start"][rows][5] - 16
    w.slider.value = 0.0
    assert max(w.state["indices"]) == seg["start"][rows][5] - 1          # right up to the action
    with pytest.raises(ValueError, match="tau_a"):
        w.update(5.0)


def test_figures_and_bad_input(world):
    seg = world.segments("test")
    rows = np.nonzero(seg["video"] == seg["video"][0])[0]
    fig = protocol_timeline(seg["start"][rows], seg["stop"][rows], seg["action"][rows], [0, 5], fps=world.fps)
    assert len(fig.axes) == 2
    assert len(rulstm_diagram(3).axes) == 1
    mask = np.tril(np.ones((4, 4), bool))
    assert len(causal_attention_figure(mask, mask / mask.sum(1, keepdims=True)).axes) == 3   # two panels + colour bar
    with pytest.raises(ValueError, match="index"):
        protocol_timeline(seg["start"][rows], seg["stop"][rows], seg["action"][rows], 99, fps=world.fps)
    with pytest.raises(ValueError, match="weights"):
        causal_attention_figure(mask, np.ones((3, 3)))
