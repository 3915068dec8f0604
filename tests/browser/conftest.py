"""The course as students see it: JupyterLab in headless Chromium, driven by Playwright.

Fixtures:

* ``lab`` (once per session): copies notebooks/ and exercises/ into a temporary folder (nothing
  in the repository is touched) and starts ``jupyter lab`` on a free loopback port with a random
  token, its own settings, workspaces and runtime folders, and ``--allow-root`` when running as
  root (JupyterLab refuses root otherwise). Stopped by its own process id at the end.
* ``chromium`` (once per session): the system's Chromium (never a browser downloaded by
  Playwright): ``$LECTUREKIT_CHROMIUM`` or the first of chromium, chromium-browser,
  google-chrome on the PATH (or Chrome/Chromium in /Applications on macOS).
* ``student``: a fresh browser page per test with helpers to open a notebook, run cells, read
  outputs, take screenshots (under the test's tmp dir; the folder is printed when a test fails)
  and list the browser console's errors.

Without Chromium or Playwright the tests skip with one line saying what to install; with
``LECTUREKIT_CI=1`` (set by .ci/run) that is a failure instead, so CI never skips them silently.
"""

from __future__ import annotations

import pytest

from browser_lab import Lab, Student, is_root, require_browser


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "browser: JupyterLab in headless Chromium (tests/browser; deselect with -m 'not browser')")


@pytest.fixture(scope="session")
def chromium_path():
    return require_browser()


@pytest.fixture(scope="session")
def lab(chromium_path, tmp_path_factory):
    server = Lab(tmp_path_factory.mktemp("jupyterlab"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def chromium(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, headless=True,
                                    args=["--no-sandbox"] if is_root() else [])
        yield browser
        browser.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    shots = getattr(item, "_lecturekit_shots", None)
    if shots is not None and report.failed:
        item._lecturekit_failed = True
        report.sections.append(("browser screenshots", f"screenshots of each step: {shots}"))


@pytest.fixture
def student(request, lab, chromium, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    request.node._lecturekit_shots = shots
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    person = Student(page, lab, shots)
    try:
        yield person
    finally:
        try:
            if getattr(request.node, "_lecturekit_failed", False):
                person.shot("at_failure")
        finally:
            context.close()
            lab.shutdown_kernels()       # a test's kernels do not compete with the next test
