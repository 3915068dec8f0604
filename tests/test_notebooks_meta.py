"""Every course notebook opens in Colab at its own path, installs lecturekit only when missing,
runs in the current environment's python3 kernel, and is stored the way the course promises:
lecture notebooks and solutions with their outputs (produced by the execute command), exercises
without."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lecturekit.course.notebook import INSTALL_SOURCE, colab_badge

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("notebooks", "solutions", "exercises")
NOTEBOOKS = sorted(p for f in FOLDERS for p in (ROOT / f).glob("*.ipynb"))
MAX_BYTES = 1_500_000  # stored outputs stay small: modest dpi, no embedded videos


def _load(path):
    return json.loads(path.read_text())


def _src(cell):
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_badge_install_kernel(path):
    nb = _load(path)
    rel = path.relative_to(ROOT).as_posix()
    first = nb["cells"][0]
    assert first["cell_type"] == "markdown" and colab_badge(rel) in _src(first), \
        f"{rel}: the first cell must carry the Colab badge for {rel}"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and _src(code[0]) == INSTALL_SOURCE, f"{rel}: first code cell must be the guarded install cell"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert path.stat().st_size < MAX_BYTES, f"{rel} is {path.stat().st_size} bytes"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_storage_policy(path):
    nb = _load(path)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    if path.parent.name == "exercises":
        assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    else:
        counts = [c["execution_count"] for c in code]
        assert all(isinstance(n, int) for n in counts), f"{path.name}: run it with the execute command"
        assert counts == list(range(1, len(code) + 1)), f"{path.name}: executed top to bottom once"
        for c in code:
            for out in c["outputs"]:
                assert out.get("output_type") != "error", f"{path.name}: stored error output"
                if out.get("output_type") == "stream":
                    assert out["name"] != "stderr" or "raises-exception" in c["metadata"].get("tags", []), \
                        f"{path.name}: stderr in stored outputs: {''.join(out['text'])[:200]}"
