"""JupyterLab and Chromium for the browser tests: what is installed, the server, the student's page."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CI_ENV = "LECTUREKIT_CI"
CHROMIUM_ENV = "LECTUREKIT_CHROMIUM"
INSTALL = ("install Chromium (Debian/Ubuntu: `apt-get install chromium`; or set LECTUREKIT_CHROMIUM to a "
           "Chrome/Chromium binary) and Playwright (`pip install playwright`; `playwright install` is not needed)")
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_MACOS = ("/Applications/Chromium.app/Contents/MacOS/Chromium",
          "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome")
COPIED = ("notebooks", "exercises")
# The test session runs headless (conftest.py: no progress bars, one figure per training); the
# student's kernel does not: live training curves and progress bars are part of what they see.
STUDENT_UNSET = ("LECTUREKIT_HEADLESS", "TQDM_DISABLE", "MPLBACKEND")
SERVER_START_S = 180


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


# --------------------------------------------------------------------------- what is installed
def find_chromium() -> str | None:
    """The Chromium (or Chrome) binary to drive, or None."""
    given = os.environ.get(CHROMIUM_ENV)
    if given:
        return given if Path(given).is_file() else None
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return next((p for p in _MACOS if Path(p).is_file()), None)


def missing() -> str | None:
    """What the browser tests lack here, in words, or None when they can run."""
    lacking = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        lacking.append("Playwright is not installed")
    if find_chromium() is None:
        given = os.environ.get(CHROMIUM_ENV)
        lacking.append(f"{CHROMIUM_ENV}={given} is not a file" if given else "no Chromium found")
    return "; ".join(lacking) or None


def require_browser() -> str:
    """The Chromium binary; skips the test when there is none (fails under LECTUREKIT_CI=1)."""
    why = missing()
    if why is None:
        return find_chromium()
    line = f"browser tests: {why}: {INSTALL}"
    if os.environ.get(CI_ENV, "").strip() not in ("", "0"):
        pytest.fail(f"{line} ({CI_ENV}=1: CI runs the browser tests, it never skips them)", pytrace=False)
    pytest.skip(line)   # the root conftest.py prints this reason once in the summary


# --------------------------------------------------------------------------- JupyterLab
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A running JupyterLab: ``url(path)`` opens a notebook of the copied course."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.root = workdir / "course"
        self.port = free_port()
        self.token = uuid.uuid4().hex
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "jupyterlab.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        for folder in COPIED:
            shutil.copytree(ROOT / folder, self.root / folder)
        config = self.workdir / "config"
        (config / "labconfig").mkdir(parents=True)
        # No "get notified about Jupyter news?" toast over the notebook (it would fetch news online).
        (config / "labconfig" / "page_config.json").write_text(json.dumps(
            {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
        env = {k: v for k, v in os.environ.items() if k not in STUDENT_UNSET}
        env.update(JUPYTER_CONFIG_DIR=str(config),
                   JUPYTER_RUNTIME_DIR=str(self.workdir / "runtime"),
                   JUPYTERLAB_SETTINGS_DIR=str(self.workdir / "settings"),
                   JUPYTERLAB_WORKSPACES_DIR=str(self.workdir / "workspaces"))
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
               f"--port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.root_dir={self.root}"]
        if is_root():
            cmd.append("--allow-root")      # JupyterLab refuses to start as root without it
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.workdir)
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log()}")
            try:
                self.api("GET", "status")
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        raise RuntimeError(f"jupyter lab did not answer within {SERVER_START_S} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def api(self, method: str, path: str):
        req = urllib.request.Request(f"{self.base}/api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def url(self, path: str) -> str:
        # ?reset: no tabs (and kernels) restored from an earlier test
        return f"{self.base}/lab/tree/{path}?reset&token={self.token}"

    def shutdown_kernels(self) -> None:
        for kernel in self.api("GET", "kernels"):
            self.api("DELETE", f"kernels/{kernel['id']}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()                # its own pid; it shuts its kernels down itself
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


# --------------------------------------------------------------------------- the student
ALLOWED_CONSOLE_ERRORS = ("colab.research.google.com/assets/colab-badge.svg",)  # offline: the badge image


class Student:
    """One browser page on the running JupyterLab, with what a student does there."""

    def __init__(self, page, lab: Lab, shots: Path):
        self.page, self.lab, self.shots = page, lab, shots
        self.console: list[tuple[str, str, str]] = []       # (type, text, url)
        self.n_shots = 0
        page.on("console", lambda m: self.console.append((m.type, m.text, (m.location or {}).get("url", ""))))
        page.on("pageerror", lambda err: self.console.append(("pageerror", str(err), "")))

    # ---- looking
    def shot(self, name: str) -> Path:
        self.n_shots += 1
        path = self.shots / f"{self.n_shots:02d}_{name}.png"
        self.page.wait_for_timeout(300)      # cells just scrolled into view get painted
        self.page.screenshot(path=str(path))
        return path

    def cells(self):
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")

    def cell(self, index: int):
        return self.cells().nth(index)

    def output_text(self, index: int) -> str:
        return self.cell(index).locator(".jp-OutputArea").first.text_content()

    def errors_in(self, index: int) -> int:
        return self.cell(index).locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').count()

    def dirty_tabs(self) -> int:
        return self.page.locator(".lm-TabBar-tab.jp-mod-dirty").count()

    def console_errors(self) -> list[str]:
        """Errors in the browser console other than the offline Colab badge."""
        return [f"{kind}: {text} ({url})" for kind, text, url in self.console
                if kind in ("error", "pageerror") and not any(a in url for a in ALLOWED_CONSOLE_ERRORS)]

    # ---- doing
    def open(self, path: str, timeout_s: float = 120) -> None:
        self.page.goto(self.lab.url(path))
        self.page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for(timeout=timeout_s * 1000)
        self.wait_idle(timeout_s)
        self.page.wait_for_timeout(500)      # let late metadata updates (kernel info) arrive

    def wait_idle(self, timeout_s: float = 120) -> None:
        self.page.locator("#jp-main-statusbar").get_by_text("Idle").wait_for(timeout=timeout_s * 1000)

    def _wait_done(self, timeout_s: float) -> None:
        """Until no cell shows [*] and the kernel is idle."""
        self.page.wait_for_function(
            """() => {
                const busy = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-InputPrompt')]
                    .some(p => p.textContent.includes('*'));
                const idle = (document.querySelector('#jp-main-statusbar') || {textContent: ''}).textContent.includes('Idle');
                return !busy && idle;
            }""", timeout=timeout_s * 1000, polling=100)

    def run_all(self, timeout_s: float = 180) -> None:
        self.page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        self.page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        self._wait_done(timeout_s)

    def run_cell(self, index: int, timeout_s: float = 180) -> None:
        cell = self.cell(index)
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputPrompt").first.click()       # selects the cell (command mode)
        self.page.keyboard.press("Control+Enter")           # run it, stay on it
        self._wait_done(timeout_s)

    def type_into(self, index: int, text: str) -> None:
        """Replace the source of cell ``index`` by ``text``, as typed (no auto-indent)."""
        editor = self.cell(index).locator(".cm-content").first
        editor.click()
        self.page.keyboard.press("ControlOrMeta+A")
        self.page.keyboard.press("Delete")
        self.page.keyboard.insert_text(text)
        self.page.keyboard.press("Escape")                  # back to command mode
