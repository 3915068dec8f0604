"""The browser suite's own machinery, without a browser: what happens where Chromium is missing,
that CI installs and runs it, that the README's test command collects it, and the static analysis
that picks the cells a widget needs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

import pytest

import browser_lab
from browser_cells import ROOT, bound_and_read, cells_needed, load, widget_cells

pytestmark = pytest.mark.browser


# --------------------------------------------------------------------------- no Chromium
def test_without_chromium_the_tests_skip_with_what_to_install(monkeypatch):
    monkeypatch.setenv(browser_lab.CHROMIUM_ENV, "/nonexistent/chromium")
    monkeypatch.delenv(browser_lab.CI_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        browser_lab.require_browser()
    line = str(skipped.value)
    assert "\n" not in line
    assert "apt-get install chromium" in line and "pip install playwright" in line
    assert "LECTUREKIT_CHROMIUM=/nonexistent/chromium is not a file" in line


@pytest.mark.parametrize("value", ["1", "true"])
def test_under_ci_a_missing_chromium_is_a_failure_not_a_skip(monkeypatch, value):
    monkeypatch.setenv(browser_lab.CHROMIUM_ENV, "/nonexistent/chromium")
    monkeypatch.setenv(browser_lab.CI_ENV, value)
    with pytest.raises(pytest.fail.Exception, match="CI runs the browser tests, it never skips them"):
        browser_lab.require_browser()


def test_missing_playwright_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)     # import fails
    monkeypatch.delenv(browser_lab.CHROMIUM_ENV, raising=False)
    assert "Playwright is not installed" in (browser_lab.missing() or "")


def test_the_skip_is_one_summary_line_in_a_plain_pytest_run(tmp_path):
    """A student's laptop without Chromium: ``pytest tests/browser`` says once what to install."""
    env = dict(os.environ, **{browser_lab.CHROMIUM_ENV: str(tmp_path / "no-chromium")})
    env.pop(browser_lab.CI_ENV, None)
    run = subprocess.run([sys.executable, "-m", "pytest", "tests/browser/test_browser_tour.py", "-q",
                          "-p", "no:randomly"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("SKIPPED browser tests:")]
    assert len(lines) == 1 and "apt-get install chromium" in lines[0], run.stdout[-3000:]
    env[browser_lab.CI_ENV] = "1"
    run = subprocess.run([sys.executable, "-m", "pytest", "tests/browser/test_browser_tour.py", "-q",
                          "-p", "no:randomly"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "never skips them" in run.stdout, run.stdout[-3000:]


# --------------------------------------------------------------------------- CI and the README
def test_ci_installs_chromium_and_playwright_and_runs_the_browser_tests():
    ci = (ROOT / ".ci" / "run").read_text()
    lines = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    test_line = next(i for i, ln in enumerate(lines) if re.match(r"python -m pytest( \|\||$)", ln))
    export = next(i for i, ln in enumerate(lines) if ln == f"export {browser_lab.CI_ENV}=1")
    assert export < test_line, "LECTUREKIT_CI=1 must be set before the tests run"
    assert re.search(r"apt-get install -y(q| -q|qq| -qq)? .*chromium", ci), "CI installs chromium with apt"
    assert "command -v apt-get" in ci, "apt only where there is apt"
    assert "playwright install" not in ci, "never download Playwright's own browser"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(re.match(r"playwright\b", d) for d in extras["dev"]), "the dev extra installs Playwright"


def test_the_readme_test_command_collects_the_browser_tests():
    """``python -m pytest`` (the README's command, run by CI) collects tests/browser: tests/ is a
    test path, nothing is deselected by default, and the folder's tests carry the marker."""
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "tests" in options["testpaths"]
    assert not any(o == "-m" or o.startswith("-m ") for o in options["addopts"]), "no marker deselected by default"
    assert "browser" not in str(options.get("norecursedirs", ""))
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "browser", "tests/browser"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    collected = [ln for ln in run.stdout.splitlines() if ln.startswith("tests/browser/")]
    for name in ("test_browser_tour.py", "test_browser_exercise.py", "test_browser_widgets.py"):
        assert any(name in ln for ln in collected), f"{name} not collected:\n{run.stdout[-2000:]}"


@pytest.mark.skipif(not browser_lab.is_root(), reason="only root needs --allow-root")
def test_as_root_jupyterlab_needs_allow_root(tmp_path):
    """Why the suite (and the README's note) add --allow-root: without it JupyterLab refuses root."""
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"))
    run = subprocess.run([sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
                          f"--port={browser_lab.free_port()}", f"--ServerApp.root_dir={tmp_path}"],
                         env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert run.returncode != 0
    assert "--allow-root" in run.stdout + run.stderr


# --------------------------------------------------------------------------- the cells a widget needs
def _nb(*sources):
    return {"cells": [{"cell_type": "code", "source": s, "outputs": []} for s in sources]}


def test_bound_and_read():
    bound, needs = bound_and_read(
        "x = x + 1\ny = [i for i in x]\ndef f(a):\n    return a + z\nq[0] = 1\nfor k in y:\n    print(k)\n"
        "w += 1\nwith open(p) as fh:\n    fh.read()\n%time f(2)\n")
    assert bound == {"x", "y", "f", "q", "k", "w", "fh"}
    assert needs == {"x", "z", "q", "w", "p"}          # i, a, k, fh, y, f are the cell's own


def test_cells_needed_follows_names_back_and_skips_the_rest():
    nb = _nb("%pip install lecturekit", "import torch", "data = torch.zeros(3)", "model = train(data)",
             "unrelated = 5", "data[0] = 1.0", "show(data)")
    assert cells_needed(nb, 6) == [0, 1, 2, 5, 6]
    assert cells_needed(nb, 3) == [0, 1, 2, 3]


def test_cells_needed_of_notebook_04_is_its_setup_and_the_scrubber():
    nb = load(ROOT / "notebooks" / "04_temporal_shift.ipynb")
    target = widget_cells(nb)[0]
    needed = cells_needed(nb, target)
    assert needed[0] == 1 and needed[-1] == target
    assert all("train(" not in "".join(nb["cells"][i]["source"]) for i in needed), "no training before the widget"
