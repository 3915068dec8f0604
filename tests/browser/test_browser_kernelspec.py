"""Opening a notebook in JupyterLab marks it modified when its stored kernelspec differs from the
one JupyterLab writes (every save is then a diff in git); the course's kernelspec does not.
This is the negative control of the ``dirty_tabs() == 0`` check of the other browser tests.

JupyterLab also rewrites ``language_info`` from the running kernel, so a notebook stored with
another Python version (e.g. opened on a machine with a different Python) shows as modified
whatever its kernelspec: the last case records that limit."""

from __future__ import annotations

import json
import platform

import pytest

from lecturekit.course.notebook import KERNELSPEC

pytestmark = pytest.mark.browser

# What ipykernel reports for this interpreter (as stored by the execute command).
LANGUAGE_INFO = {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                 "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                 "pygments_lexer": "ipython3", "version": platform.python_version()}


def _tiny(kernelspec: dict, language_info: dict) -> str:
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "c0", "metadata": {},
                     "outputs": [], "source": "1 + 1"}],
          "metadata": {"kernelspec": kernelspec, "language_info": language_info},
          "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb, indent=1) + "\n"


@pytest.mark.parametrize("name,kernelspec,language_info,dirty", [
    ("course", KERNELSPEC, LANGUAGE_INFO, 0),
    ("old_display_name", dict(KERNELSPEC, display_name="Python 3"), LANGUAGE_INFO, 1),
    ("other_python", KERNELSPEC, dict(LANGUAGE_INFO, version="3.0.0"), 1),
])
def test_opening_marks_a_notebook_modified_only_when_its_metadata_differs(student, name, kernelspec,
                                                                         language_info, dirty):
    scratch = student.lab.root / "scratch"
    scratch.mkdir(exist_ok=True)
    (scratch / f"{name}.ipynb").write_text(_tiny(kernelspec, language_info))
    student.open(f"scratch/{name}.ipynb")
    student.shot(name)
    assert student.dirty_tabs() == dirty, f"{name}: expected {'a' if dirty else 'no'} modified mark on opening"
    assert student.console_errors() == []
