"""The ground every other part stands on: install files, README/CI agreement, import hygiene,
the shape helper, the model name table, the doctor."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

import lecturekit
from lecturekit.layers.shapes import check_sequence, check_shape, check_video, fold_time, unfold_time

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", quick, flags=re.S)]


def test_layout_exists():
    for name in ["lecturekit", "notebooks", "exercises", "solutions", "data", "tests",
                 "environment.yml", "README.md", "pyproject.toml", ".ci/run"]:
        assert (ROOT / name).exists(), name


def test_pyproject_lower_bounds_only():
    project = _pyproject()["project"]
    assert project["requires-python"] == ">=3.10"
    for dep in project["dependencies"]:
        assert "==" not in dep and "<" not in dep, f"{dep}: lower bounds only"
    names = {re.split(r"[<>=!~ \[]", d)[0].lower() for d in project["dependencies"]}
    assert {"torch", "numpy", "matplotlib", "seaborn", "ipywidgets", "tqdm"} <= names
    assert "torchvision" not in names
    extras = project["optional-dependencies"]
    assert any(d.startswith("torchvision") for d in extras["vision"])
    dev = {re.split(r"[<>=!~ \[]", d)[0].lower() for d in extras["dev"]}
    assert {"pytest", "pytest-xdist", "nbval", "jupyterlab", "ipykernel"} <= dev
    # the suite runs in parallel with a whole file per worker, so a notebook's cells share one
    # kernel ("loadgroup" would not do: pytest 9 ignores the node ids xdist rewrites for groups)
    addopts = _pyproject()["tool"]["pytest"]["ini_options"]["addopts"]
    assert addopts[addopts.index("-n") + 1] == "auto" and addopts[addopts.index("--dist") + 1] == "loadfile"
    assert "--no-loadscope-reorder" in addopts       # the run order of conftest.py is kept


def test_lecture_notebooks_are_collected_first():
    """Longest work first keeps both CI workers busy to the end (conftest.py sorts the items)."""
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0",
                          "tests/test_foundation.py", "exercises/01_video_as_data.ipynb", "notebooks/00_tour.ipynb"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    ids = [ln for ln in run.stdout.splitlines() if "::" in ln]
    tops = [ln.split("/")[0] for ln in ids]
    assert run.returncode == 0 and tops == sorted(tops, key=["notebooks", "tests", "exercises"].index), run.stdout[-2000:]
    cells = [int(ln.rsplit(" ", 1)[1]) for ln in ids if ln.startswith("notebooks/")]
    assert cells == sorted(cells) and len(cells) > 3, "a notebook's cells keep their order"


def test_environment_yml_covers_runtime_dependencies():
    yaml = pytest.importorskip("yaml")
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_names = {re.split(r"[<>=! ]", d)[0].lower() for d in conda}
    conda_names |= {"torch"} if "pytorch" in conda_names else set()
    for dep in _pyproject()["project"]["dependencies"]:
        name = re.split(r"[<>=!~ \[]", dep)[0].lower()
        assert name in conda_names, f"environment.yml lacks runtime dependency {name}"
    for name in ["jupyterlab", "ipywidgets", "matplotlib", "seaborn", "nbval", "numpy", "torchvision"]:
        assert name in conda_names
    assert any(p.startswith("-e .") for p in pip), "the package itself, editable, in the pip section"


def test_readme_has_two_quickstart_commands_and_ci_runs_them():
    setup, test = _readme_commands()[:2]
    ci = (ROOT / ".ci" / "run").read_text()
    ci_lines = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    install = setup.split("&&")[0].strip()
    assert install.replace("python -m pip install", "python -m pip install -q") in ci_lines
    assert "jupyter lab notebooks/" in setup
    assert any(ln == test or ln.startswith(test + " ||") for ln in ci_lines), \
        f"CI must run the README's test command {test!r} verbatim"
    assert "torch==2.13.0" in ci, "CI pins torch to the local CPU wheel before the package"
    assert ci.index("torch==2.13.0") < ci.index(install.split()[-1])
    assert "set -euo pipefail" in ci
    # JupyterLab refuses root without --allow-root (containers, CI): the README says what to add
    assert "jupyter lab notebooks/ --allow-root" in (ROOT / "README.md").read_text()


def test_readme_notebook_list_in_sync():
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- notebooks:start -->", 1)[1].split("<!-- notebooks:end -->", 1)[0]
    listed = set(re.findall(r"\]\(notebooks/([^)]+\.ipynb)\)", block))
    present = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert listed == present, f"README lists {sorted(listed)}, notebooks/ has {sorted(present)}"


def test_import_is_light_and_offline():
    code = r"""
import socket, sys
def refuse(*a, **k):
    raise AssertionError("lecturekit opened a socket at import")
socket.socket.__init__ = refuse   # any socket created at all fails the import
socket.create_connection = refuse
import torch, numpy
baseline = set(sys.modules)   # whatever torch and numpy pull in themselves is allowed
import lecturekit, lecturekit.layers, lecturekit.models
heavy = [m for m in ("matplotlib", "seaborn", "ipywidgets", "tqdm", "torchvision", "pandas",
                     "IPython", "nbformat", "PIL") if m in sys.modules and m not in baseline]
assert not heavy, heavy
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_check_video_names_both_layouts_for_btchw():
    x = torch.zeros(2, 8, 3, 32, 32)  # (B, T, C, H, W): the classic mistake
    with pytest.raises(ValueError) as err:
        check_video(x, channels=3)
    msg = str(err.value)
    assert "(B, C, T, H, W)" in msg and "(B, T, C, H, W)" in msg
    assert "(2, 8, 3, 32, 32)" in msg and "permute(0, 2, 1, 3, 4)" in msg


def test_check_video_rank_and_sizes():
    assert check_video(torch.zeros(2, 3, 8, 32, 32), channels=3, frames=8, size=32) == (2, 3, 8, 32, 32)
    with pytest.raises(ValueError, match=r"5-D tensor .*got a 4-D"):
        check_video(torch.zeros(3, 8, 32, 32))
    with pytest.raises(ValueError, match="T \\(frames\\) = 4 instead of 8"):
        check_video(torch.zeros(1, 3, 4, 32, 32), frames=8)
    with pytest.raises(TypeError):
        check_video([[1, 2]])
    assert check_sequence(torch.zeros(2, 5, 7), dim=7) == (2, 5, 7)
    with pytest.raises(ValueError, match="D=8"):
        check_shape(torch.zeros(2, 5, 7), "B T D", D=8)


def test_fold_unfold_roundtrip():
    x = torch.randn(2, 3, 4, 5, 6)
    f = fold_time(x)
    assert f.shape == (8, 3, 5, 6)
    assert torch.equal(f[1 * 4 + 2], x[1, :, 2])  # batch 1, frame 2
    assert torch.equal(unfold_time(f, 4).transpose(1, 2), x)


def test_model_table_api():
    from lecturekit.models import MODELS, build_model, list_models

    assert list_models() == sorted(MODELS)
    with pytest.raises(KeyError, match="unknown model"):
        build_model("no_such_model")


def test_device_and_doctor():
    assert isinstance(lecturekit.device(), torch.device)
    assert lecturekit.device("cpu").type == "cpu"
    buf = io.StringIO()
    report = lecturekit.doctor(file=buf)
    text = buf.getvalue()
    for key in ("lecturekit", "torch", "numpy", "matplotlib", "device", "colab", "cache"):
        assert key in report and key in text
    out = subprocess.run([sys.executable, "-m", "lecturekit", "doctor"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "device" in out.stdout


def test_doctor_warns_on_cpu_colab(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    monkeypatch.setenv("LECTUREKIT_DEVICE", "cpu")
    buf = io.StringIO()
    report = lecturekit.doctor(file=buf)
    assert report["colab"] is True and "WARNING" in buf.getvalue()


def test_version_and_machine_come_from_env_without_importing_the_library():
    """``__version__`` is the installed package's metadata (pyproject.toml, its one home); the
    machine description every measurement stores is one function of env."""
    from importlib.metadata import version

    import lecturekit
    from lecturekit.env import library_version, machine_info

    assert lecturekit.__version__ == library_version() == version("lecturekit") == _pyproject()["project"]["version"]
    info = machine_info()
    assert {"date", "cpu", "cpu_count", "platform", "python", "torch", "device"} <= set(info)
    assert info["cpu_count"] == os.cpu_count() and info["torch"] == str(torch.__version__)
