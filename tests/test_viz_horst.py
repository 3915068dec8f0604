"""The HORST pictures of notebook 11 draw from plain arrays and refuse inconsistent input."""

import numpy as np
import pytest
import torch

from lecturekit.viz.horst import cost_curves, statt_window


def _attention(steps=6, order=3):
    sizes = [1] + [min(t, order) for t in range(1, steps)]     # the queue lengths HORST reads
    s_maps = [torch.rand(n, 2, 2) for n in sizes]
    t_weights = [torch.softmax(torch.randn(n), 0) for n in sizes]
    return s_maps, t_weights


def test_statt_window_draws_frames_and_weights():
    s_maps, t_weights = _attention()
    fig = statt_window(torch.zeros(3, 6, 16, 16, dtype=torch.uint8), s_maps, t_weights, title="t")
    titles = [ax.get_title() for ax in fig.axes]
    assert sum("S map" in t for t in titles) == 3                # the three slots of the last step
    assert any("temporal weights" in t for t in titles)


def test_statt_window_rejects_wrong_lengths():
    s_maps, t_weights = _attention()
    with pytest.raises(ValueError, match="expected 6 steps"):
        statt_window(torch.zeros(3, 6, 16, 16), s_maps[:-1], t_weights)
    with pytest.raises(ValueError, match=r"expected \(S, h, w\)"):
        statt_window(torch.zeros(3, 6, 16, 16), s_maps[:-1] + [torch.rand(2, 2, 2)], t_weights)


def test_cost_curves_one_panel_per_quantity():
    orders = [1, 2, 4]
    fig = cost_curves(orders, {"a": {"x": [1, 2, 4], "y": [1, 4, 16]}, "b": {"x": [1, 1, 1]}})
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="expected 3 values"):
        cost_curves(orders, {"a": {"x": np.ones(2)}})
