"""The widgets of the lecture notebooks are real controls in JupyterLab, and moving them changes
what they show.

For the notebooks in ``QUICK`` the test runs only the cells its widget needs (found by
``browser_cells.cells_needed``), as a student who jumps to the widget would, then moves the slider with
the arrow keys and the mouse and presses play.

The widgets of the notebooks in ``SMALL_INPUTS`` show models trained for minutes (05, 08, 09; those
cells are executed in full, with their claims, by nbval). Here the test opens a two-cell notebook
written next to the copied course: a cell that builds *small, quickly computed inputs of the same
shapes* (a few dataset clips and untrained models, see ``SMALL_INPUTS``) under the names the
notebook's widget cell reads, then **the notebook's own widget cell, verbatim**. So it tests that the
library widget the notebook calls, called the way the notebook calls it, renders as controls and
reacts in the browser; it does not test the trained models' numbers. ``LECTUREKIT_BROWSER_ALL=1``
runs those notebooks' real cells (training included, minutes) instead.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from browser_cells import ROOT, _source, bound_and_read, cells_needed, load, widget_cells


pytestmark = pytest.mark.browser

# Every notebook with a widget is in exactly one of these (checked below).
QUICK = {  # the widget's cells run in seconds
    "notebooks/04_temporal_shift.ipynb",
    "notebooks/06_attention_ata.ipynb",
    "notebooks/01_video_as_data.ipynb",
    "notebooks/10_action_anticipation.ipynb",
    "notebooks/12_action_guided_attention.ipynb",
}
# The widget shows models trained for minutes on 2 cores: small inputs of the same shapes under the
# names the widget cell reads (untrained models, a few clips), then the notebook's widget cell itself.
SMALL_INPUTS = {
    "notebooks/05_motion_and_long_term.ipynb": """\
import ipywidgets
import torch
from lecturekit import viz
from lecturekit.data import ToyKitchens
from lecturekit.models import build_model

torch.manual_seed(0)
device = torch.device("cpu")
REVERSAL = ["take", "put", "open", "close", "turn-cw", "turn-ccw"]
val = ToyKitchens(seed=0).clips("val", frames=8, verbs=["take"])
x_val = torch.stack([val[i][0] for i in range(2)])               # uint8 (2, 3, 8, 32, 32)
take = 0


def prep(x):
    return x.float().div(127.5).sub(1.0)


lrcn = build_model("lrcn", "small", num_classes=6, average="logits")   # untrained
""",
    "notebooks/08_video_prediction.ipynb": """\
import torch
from lecturekit import viz
from lecturekit.data import MovingGlyphs
from lecturekit.models import build_model

torch.manual_seed(0)
test_clips = MovingGlyphs(seed=200, num_samples=4, size=32, glyphs=1, augment=False).tensors()  # (4, 1, 20, 32, 32)
MODELS = {"ConvLSTM": ("convlstm_predictor", {}), "PredRNN": ("predrnn", {}),
          "E3D-LSTM": ("e3d_lstm", {"hidden": (16,)}), "Conv-TT-LSTM": ("conv_tt_lstm", {})}
with torch.no_grad():                                   # untrained models, frames 0-9 -> 10-19
    predictions = {name: build_model(key, **extra).eval()(test_clips[:, :, :10])
                   for name, (key, extra) in MODELS.items()}
clip = 3
""",
    "notebooks/09_early_recognition.ipynb": """\
import torch
from lecturekit.analysis.early_recognition import EarlyData
from lecturekit.data.toykitchens import ToyKitchens
from lecturekit.models.ms_lstm import TwoStageLSTM, temporal_average_pool
from lecturekit.viz.early import early_models_scrubber

torch.manual_seed(0)
world = ToyKitchens(seed=0)
ACTIONS = world.actions
clip, labels = world.clips("test", frames=20)[0]                 # uint8 (3, 20, 32, 32)
i = 0
test = EarlyData(context=torch.randn(1, 20, 64), action=torch.randn(1, 20, 64),
                 label=torch.tensor([int(labels["action"])]))
models = {key: TwoStageLSTM(len(ACTIONS), context_dim=64, action_dim=64).eval() for key in ("anticipation", "ce", "lgl")}  # untrained
""",
}
ALL_ENV = "LECTUREKIT_BROWSER_ALL"

_TEXT_REPR = re.compile(r"(ClipScrubber|VBox|HBox|IntSlider|Play)\(")


def _params():
    return [pytest.param(path, id=path.split("/")[-1].split("_")[0]) for path in sorted(QUICK | set(SMALL_INPUTS))]


def _small_notebook(lab, path: str) -> tuple[str, list[int], int]:
    """Write the two-cell notebook for ``path`` (small inputs, then the widget cell) into the copied
    course; (its path there, the cells to run, the widget cell)."""
    nb = load(ROOT / path)
    widget = _source(nb["cells"][widget_cells(nb)[0]])

    def cell(n, source):
        return {"cell_type": "code", "execution_count": None, "id": f"small-{n}", "metadata": {},
                "outputs": [], "source": source}

    small = {"cells": [cell(0, SMALL_INPUTS[path]), cell(1, widget)], "metadata": nb["metadata"],
             "nbformat": 4, "nbformat_minor": max(5, nb.get("nbformat_minor", 5))}
    name = "notebooks/_browser_widget_" + path.split("/")[-1]
    (lab.root / name).write_text(json.dumps(small, indent=1) + "\n", encoding="utf-8")
    return name, [0, 1], 1


_SHOWN = """out => [...out.querySelectorAll('img')].map(i => i.getAttribute('src')).join('|') + '#' +
    [...out.querySelectorAll('.widget-html')].map(e => e.textContent).join('|')"""


def _wait_changed(student, out, before: str, what: str) -> str:
    """Wait until the widget shows something else than ``before`` (pictures or text); return it."""
    try:
        student.page.wait_for_function(f"([out, before]) => ({_SHOWN})(out) !== before",
                                       arg=[out.element_handle(), before], timeout=30_000)
    except Exception as err:
        raise AssertionError(f"{what} did not change what the widget shows") from err
    return out.evaluate(_SHOWN)


@pytest.mark.parametrize("path", _params())
def test_widget_is_a_control_and_moving_it_changes_the_output(student, lab, path):
    if path in SMALL_INPUTS and os.environ.get(ALL_ENV) != "1":
        path, to_run, target = _small_notebook(lab, path)
    else:
        nb = load(ROOT / path)
        target = widget_cells(nb)[0]
        to_run = cells_needed(nb, target)
    student.open(path)
    assert student.dirty_tabs() == 0, "opening the notebook marked it modified (kernelspec/metadata changed)"
    for index in to_run:
        student.run_cell(index, timeout_s=600)
        assert student.errors_in(index) == 0, f"cell {index} failed: {student.output_text(index)[:2000]}"

    out = student.cell(target).locator(".jp-OutputArea").first
    slider = out.locator(".widget-slider").first
    slider.wait_for(timeout=30_000)
    out.scroll_into_view_if_needed()
    student.shot("widget_rendered")
    text = out.text_content()
    assert "Loading widget" not in text and not _TEXT_REPR.search(text), f"widget not rendered: {text[:500]}"
    readout = slider.locator(".widget-readout").first
    handle = slider.locator(".noUi-handle").first
    start = readout.text_content().strip()
    shown = out.evaluate(_SHOWN)

    # the arrow key on the slider's handle
    handle.click()
    student.page.keyboard.press("ArrowRight")
    shown = _wait_changed(student, out, shown, "the arrow key")
    assert readout.text_content().strip() != start
    student.shot("arrow_key")

    # dragging the handle to the far end of the track
    box, track = handle.bounding_box(), slider.locator(".noUi-base").first.bounding_box()
    y = box["y"] + box["height"] / 2
    student.page.mouse.move(box["x"] + box["width"] / 2, y)
    student.page.mouse.down()
    student.page.mouse.move(track["x"] + track["width"] + 20, y, steps=8)
    student.page.mouse.up()
    shown = _wait_changed(student, out, shown, "dragging the slider")
    end = readout.text_content().strip()
    student.shot("dragged")

    # back to the slider's minimum (the start, or below it: 09 starts at step 4), then play (if any)
    handle.click()
    student.page.keyboard.press("Home")
    student.page.wait_for_function("([el, v]) => el.textContent.trim() !== v", arg=[readout.element_handle(), end],
                                   timeout=30_000)
    shown = _wait_changed(student, out, shown, "the Home key")
    play = out.locator(".widget-play button").first
    if play.count():
        play.click()
        _wait_changed(student, out, shown, "the play button")
        student.shot("playing")
    assert end != start and student.errors_in(target) == 0
    assert student.console_errors() == []


def test_every_notebook_with_a_widget_is_listed_here():
    """A new notebook with a widget gets a browser test: list it in QUICK or SMALL_INPUTS."""
    have = {f"notebooks/{p.name}" for p in sorted((ROOT / "notebooks").glob("*.ipynb")) if widget_cells(load(p))}
    listed = QUICK | set(SMALL_INPUTS)
    assert not QUICK & set(SMALL_INPUTS)
    assert have == listed, \
        f"widgets in {sorted(have - listed)} are not tested; listed without a widget: {sorted(listed - have)}"


@pytest.mark.parametrize("path", sorted(SMALL_INPUTS), ids=lambda p: p.split("/")[-1].split("_")[0])
def test_small_inputs_bind_every_name_the_widget_cell_reads(path):
    """The notebook's widget cell runs after the small inputs alone: every name it reads from earlier
    cells is bound there (a widget cell that starts reading a new name fails here, not in the browser)."""
    nb = load(ROOT / path)
    _, reads = bound_and_read(_source(nb["cells"][widget_cells(nb)[0]]))
    bound, needs = bound_and_read(SMALL_INPUTS[path])
    assert not needs, f"the small inputs of {path} read undefined names {sorted(needs)}"
    assert reads <= bound, f"the widget cell of {path} reads {sorted(reads - bound)}, not bound by its small inputs"
