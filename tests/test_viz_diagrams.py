"""viz.fusion_diagram: one panel per fusion network, and the receptive fields it writes in the
boxes are those of the course's small presets (8 frames; slow fusion 2 -> 4 -> 8)."""

import pytest

from lecturekit import viz
from lecturekit.viz.diagrams import _models


def test_fusion_diagram_panels():
    fig = viz.fusion_diagram()
    assert [ax.get_title() for ax in fig.axes] == [
        "single frame", "late fusion (paper)", "late fusion, pooled", "early fusion", "slow fusion"]


def test_receptive_fields():
    rows = {name: r for name, _, r in _models(8, 4, 2, ((2, 2), (2, 2), (2, 2)), (0, 7))}
    seen = {name: [sorted({len(u.seen) for u in row}) for row in r] for name, r in rows.items()}
    assert seen["slow fusion"][:4] == [[2], [4], [8], [8]]
    assert seen["early fusion"][0] == [8]
    assert seen["late fusion (paper)"][4] == [2] and rows["late fusion (paper)"][4][0].seen == {0, 7}
    assert all(s == [1] for s in seen["single frame"][:-1]) and seen["single frame"][-1] == [8]
    assert seen["late fusion, pooled"][3] == [1] and seen["late fusion, pooled"][4] == [8]
    # the paper's slow fusion: 10 frames, extent 4 stride 2, then 2/2: 4 -> 2 -> 1 time steps
    paper = {name: r for name, _, r in _models(10, 5, 2, ((4, 2), (2, 2), (2, 2)), (0, 9))}["slow fusion"]
    assert [len(row) for row in paper[:3]] == [4, 2, 1]


def test_bad_arguments():
    with pytest.raises(ValueError):
        viz.fusion_diagram(frames=8, late_frames=(0, 8))
    with pytest.raises(ValueError):
        viz.fusion_diagram(frames=4, slow=((4, 2), (2, 2)))
