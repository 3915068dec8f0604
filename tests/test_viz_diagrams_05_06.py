"""viz.two_stream_diagram (notebook 05) and viz.ata_diagram (notebook 06) draw, and reject bad
arguments with a ValueError."""

import pytest

from lecturekit import viz


def _texts(fig):
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def test_two_stream_diagram_names_both_streams_and_fusion():
    text = _texts(viz.two_stream_diagram())
    assert "spatial stream" in text and "temporal stream" in text and "late fusion" in text
    assert "21 channels" in text                                     # 7 RGB differences, 3 channels each
    assert "14 channels" in _texts(viz.two_stream_diagram(motion="flow"))   # 7 (u, v) fields


def test_ata_diagram_shows_the_three_steps():
    text = _texts(viz.ata_diagram())
    assert "1. align" in text and "2. attend" in text and "3. de-align" in text


@pytest.mark.parametrize("kwargs", [dict(motion="rgb"), dict(frames=8, stack=8), dict(frames=1)])
def test_two_stream_diagram_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        viz.two_stream_diagram(**kwargs)


@pytest.mark.parametrize("kwargs", [dict(frames=1), dict(grid=1), dict(frames=10, grid=3)])
def test_ata_diagram_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        viz.ata_diagram(**kwargs)
