"""Opening a course notebook in JupyterLab does not mark it modified: the stored kernelspec is the
one JupyterLab writes for the default Python kernel, and every tool that writes notebooks
(execute, build-exercises) writes exactly that. (tests/test_notebooks_meta.py checks the stored
notebooks; tests/browser checks in a real JupyterLab that opening them leaves them unmodified.)"""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from lecturekit.course.exercises import build_exercises
from lecturekit.course.notebook import KERNELSPEC

OLD = {"name": "python3", "display_name": "Python 3", "language": "python"}


def test_kernelspec_is_the_one_of_the_installed_python3_kernel():
    """JupyterLab copies name, display_name and language of the kernel it starts into the
    notebook; for ``python3`` that is ipykernel's own kernelspec."""
    kernelspec = pytest.importorskip("jupyter_client.kernelspec")
    spec = kernelspec.KernelSpecManager().get_kernel_spec(KERNELSPEC["name"])
    assert {"name": KERNELSPEC["name"], "display_name": spec.display_name, "language": spec.language} == KERNELSPEC


def test_build_exercises_writes_jupyterlabs_kernelspec(tmp_path):
    nb = new_notebook(metadata={"kernelspec": dict(OLD)}, cells=[
        new_markdown_cell("## Exercise 90.1: Double it\n\nReturn twice the input."),
        new_code_cell("def double(x):\n    ### BEGIN SOLUTION\n    return x + x\n    ### END SOLUTION")])
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i}"
    (tmp_path / "solutions").mkdir()
    nbformat.write(nb, tmp_path / "solutions" / "90_x.ipynb")
    build_exercises(tmp_path / "solutions", tmp_path / "exercises", verbose=False)
    written = json.loads((tmp_path / "exercises" / "90_x.ipynb").read_text())
    assert written["metadata"]["kernelspec"] == KERNELSPEC


def test_execute_writes_jupyterlabs_kernelspec(tmp_path):
    from lecturekit.course.execute import execute_notebook

    nb = new_notebook(metadata={"kernelspec": dict(OLD)}, cells=[new_code_cell("print(6 * 7)")])
    nb.cells[0]["id"] = "c0"
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    execute_notebook(path, timeout=120)
    written = json.loads(path.read_text())
    assert written["metadata"]["kernelspec"] == KERNELSPEC
    assert "".join(written["cells"][0]["outputs"][0]["text"]) == "42\n"
