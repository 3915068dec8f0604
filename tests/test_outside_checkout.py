"""The course runs from the installed package alone, as on Colab (no clone of the repository).

The root conftest.py makes nbval execute every notebook of notebooks/, solutions/ and exercises/
from the built wheel, in a fresh environment, in copies outside the checkout
(tests/outside_checkout.py). These tests check that set-up itself:

* the wheel carries every module and every shipped resource, and stays small;
* the installed package knows nothing of the checkout, and finds its checkpoint and tables inside
  itself;
* the negative case: a notebook that reads a file only the checkout has (a path relative to the
  repository, or the checkout found through the library) passes in the checkout and FAILS when run
  the way the course notebooks are run, while a shipped file is found in both.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lecturekit import resources
from lecturekit_outside_checkout import NOTEBOOK_FOLDERS, ENV_VAR, package_sources

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "notebooks_fixture" / "needs_checkout.ipynb"
MAX_WHEEL_BYTES = 3_000_000      # checkpoints of a few MB at most; today about 0.7 MB
MAX_RESOURCE_BYTES = 2_000_000

pytestmark = [pytest.mark.slow, pytest.mark.notebooks]


def test_wheel_carries_every_module_and_resource_and_stays_small(outside_env):
    size = outside_env.wheel_bytes
    print(f"{outside_env.wheel.name}: {size / 1e6:.2f} MB")
    assert size < MAX_WHEEL_BYTES, f"the wheel is {size / 1e6:.1f} MB: keep shipped files small"
    with zipfile.ZipFile(outside_env.wheel) as whl:
        names = set(whl.namelist())
    modules = {p.as_posix() for p in package_sources() if p.parts[0] == "lecturekit" and p.suffix == ".py"}
    assert modules and modules <= names, f"modules missing from the wheel: {sorted(modules - names)}"
    shipped = resources.shipped_files()  # what the checkout's lecturekit/resources/ holds
    assert {"checkpoints/toykitchens_frame_cnn.pt", "results/anticipation_toykitchens.json"} <= set(shipped)
    missing = [f for f in shipped if f"lecturekit/resources/{f}" not in names]
    assert not missing, f"not in the wheel (package-data in pyproject.toml?): {missing}"
    for f in shipped:
        assert resources.shipped_path(f).stat().st_size < MAX_RESOURCE_BYTES, f"{f} is too big to ship"


PROBE = r"""
import json, os, sys
import lecturekit, lecturekit.data
from lecturekit import features, resources
enc = features.load_encoder(features.TEMPORAL_ENCODER, device="cpu")
print(json.dumps({
    "package": lecturekit.__file__, "cwd": os.getcwd(), "sys_path": sys.path,
    "repo_root": str(lecturekit.data.repo_root()), "checkpoint": str(features.checkpoint_path()),
    "shipped": resources.shipped_files(), "encoder": type(enc).__name__,
    "table": sorted(resources.load_json("results/anticipation_toykitchens.json")),
}))
"""


def test_installed_package_lives_outside_and_finds_its_files(outside_env):
    env = {**os.environ, "PYTHONPATH": "", "LECTUREKIT_CACHE": str(outside_env.cache), "LECTUREKIT_CHECKPOINTS": ""}
    out = subprocess.run([str(outside_env.python), "-c", PROBE], cwd=outside_env.work / "notebooks",
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    venv = outside_env.root / "venv"
    for key in ("package", "checkpoint", "cwd"):
        assert not Path(got[key]).resolve().is_relative_to(ROOT), f"{key} is in the checkout: {got[key]}"
    assert Path(got["package"]).resolve().is_relative_to(venv)
    assert Path(got["checkpoint"]).resolve().is_relative_to(venv), "the checkpoint must come from the wheel"
    assert got["repo_root"] == "None"
    assert not any(p and Path(p).resolve().is_relative_to(ROOT) for p in got["sys_path"])
    assert got["shipped"] == resources.shipped_files()
    assert got["encoder"] and got["table"]
    # every course notebook was copied into the empty folder the kernels run in
    for folder in NOTEBOOK_FOLDERS:
        assert sorted(p.name for p in (outside_env.work / folder).glob("*.ipynb")) == \
            sorted(p.name for p in (ROOT / folder).glob("*.ipynb"))


def _pytest_fixture(*args, env_dir=None):
    """Run nbval on the fixture notebook exactly as ``python -m pytest`` runs the course notebooks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "LECTUREKIT_OUTSIDE_"))}
    if env_dir is not None:
        env[ENV_VAR] = str(env_dir)   # reuse the session's environment (rebuilt only if sources changed)
    # -n 0: one notebook, run in this process (its summary lines come from the process that ran it)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "-rA", *args,
                          str(FIXTURE)], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    return out.returncode, out.stdout + out.stderr


def _counts(text):
    tail = text.strip().splitlines()
    summary = next((ln for ln in reversed(tail) if re.search(r"\d+ (passed|failed)", ln)), "")
    return {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|error)", summary)}


def test_a_notebook_that_needs_the_checkout_fails_outside_it(outside_env):
    rc, text = _pytest_fixture("--notebooks-in-checkout")
    assert rc == 0 and _counts(text) == {"passed": 3}, f"in the checkout every cell runs:\n{text[-3000:]}"

    rc, text = _pytest_fixture(env_dir=outside_env.root)
    assert rc == 1, f"outside the checkout the fixture must fail:\n{text[-3000:]}"
    assert _counts(text) == {"failed": 2, "passed": 1}, text[-3000:]
    assert "FileNotFoundError" in text and "data/README.md" in text   # the relative path
    assert "no course checkout around this installation" in text      # the library's checkout lookup
    assert "notebooks ran from the wheel" in text


def test_parallel_workers_share_one_environment_and_own_their_copies(outside_env, monkeypatch):
    """pytest-xdist workers build the environment once (under a lock) and never share a cache."""
    from lecturekit_outside_checkout import prepare

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    shared = os.environ.get("LECTUREKIT_OUTSIDE_XDIST_ROOT")
    if worker and shared and not os.environ.get(ENV_VAR):      # this very session runs in parallel
        assert outside_env.root == Path(shared).resolve()
        assert outside_env.work.parent.name == worker and outside_env.cache.parent.name == worker
    # two more slots on the session's environment: nothing rebuilt, everything of their own
    built = (outside_env.root / "source.sha256").stat().st_mtime_ns
    a, b = (prepare(outside_env.root, log=lambda *_: None, slot=f"probe-{s}") for s in "ab")
    try:
        assert not a.rebuilt and not b.rebuilt and a.wheel == b.wheel == outside_env.wheel
        assert (outside_env.root / "source.sha256").stat().st_mtime_ns == built
        assert len({outside_env.cache, a.cache, b.cache}) == 3 and len({outside_env.work, a.work, b.work}) == 3
        for env in (a, b):
            spec = json.loads((env.jupyter_path / "kernels" / "lecturekit-outside" / "kernel.json").read_text())
            assert spec["env"]["LECTUREKIT_CACHE"] == str(env.cache)
            launcher = Path(spec["argv"][1])
            assert launcher.parent == env.root / env.work.parent.name and str(env.work) in launcher.read_text()
            assert sorted(p.name for p in (env.work / "notebooks").glob("*.ipynb")) == \
                sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    finally:
        for env in (a, b):
            shutil.rmtree(env.work.parent, ignore_errors=True)
