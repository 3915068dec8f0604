"""Notebook 00 as a student first meets it: opened in JupyterLab, Run All, no error, figures."""

from __future__ import annotations

import json

import pytest

from browser_cells import ROOT



pytestmark = pytest.mark.browser

TOUR = "notebooks/00_tour.ipynb"


def _stored_images(path) -> int:
    nb = json.loads((ROOT / path).read_text())
    return sum("image/png" in o.get("data", {}) for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"])


def test_tour_runs_all_cells_without_error_and_shows_its_figures(student):
    student.open(TOUR)
    student.shot("opened")
    assert student.dirty_tabs() == 0, "opening the notebook marked it modified (kernelspec/metadata changed)"
    code_cells = student.page.locator(".jp-NotebookPanel .jp-CodeCell")
    n_code = code_cells.count()

    student.run_all(timeout_s=120)
    student.shot("after_run_all")

    prompts = [code_cells.nth(i).locator(".jp-InputPrompt").text_content().strip() for i in range(n_code)]
    assert prompts == [f"[{i}]:" for i in range(1, n_code + 1)], f"not every cell ran, in order: {prompts}"
    errors = student.page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    assert errors.count() == 0, "error output after Run All: " + " | ".join(errors.all_text_contents())[:2000]

    figures = student.page.locator(".jp-NotebookPanel .jp-OutputArea-output img")
    expected = _stored_images(TOUR)
    assert expected > 0, "notebook 00 stores figures; the test expects some"
    assert figures.count() >= expected, f"{figures.count()} images rendered, the stored notebook has {expected}"
    for i in range(figures.count()):
        img = figures.nth(i)
        img.scroll_into_view_if_needed()
        size = img.evaluate("el => [el.complete, el.naturalWidth, el.naturalHeight]")
        assert size[0] and size[1] > 50 and size[2] > 50, f"figure {i} did not render as an image: {size}"
    figures.nth(0).scroll_into_view_if_needed()
    student.shot("first_figure")
    assert student.console_errors() == []
