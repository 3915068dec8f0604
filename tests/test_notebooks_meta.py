"""Every course notebook opens in Colab at its own path, installs lecturekit only when missing,
runs in the current environment's python3 kernel, and is stored the way the course promises:
lecture notebooks and solutions with their outputs (produced by the execute command), exercises
without."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import re

from lecturekit.course.notebook import INSTALL_SOURCE, KERNELSPEC, colab_badge

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
    assert nb["metadata"]["kernelspec"] == KERNELSPEC, \
        f"{rel}: stored kernelspec must be the one JupyterLab writes (else opening it marks it modified)"
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


# A developer's absolute path in a stored output means the notebook printed where it ran.
_ABSOLUTE = re.compile(r"(?<![\w.])/(?:root|home|work|tmp|Users|private|var/folders)/")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_no_absolute_paths_in_outputs(path):
    nb = _load(path)
    for i, c in enumerate(nb["cells"]):
        for out in c.get("outputs", []):
            texts = [out.get("text", "")] + [v for k, v in out.get("data", {}).items() if k.startswith("text/")]
            for t in texts:
                t = "".join(t) if isinstance(t, list) else t
                m = _ABSOLUTE.search(t)
                assert m is None, f"{path.name} cell {i}: stored output shows an absolute path: {t[max(0, m.start() - 40):m.end() + 40]!r}"


_LINK = re.compile(r"\]\(((?:\.\./)?(?:notebooks|solutions|exercises)?/?[\w./-]*\.ipynb)(?:#[^)]*)?\)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_links_to_notebooks_exist(path):
    """The course map (00) and every "Next" link point only at notebooks that exist."""
    nb = _load(path)
    for c in nb["cells"]:
        if c["cell_type"] != "markdown":
            continue
        for m in _LINK.finditer(_src(c)):
            target = m.group(1)
            if target.startswith("http"):
                continue
            assert (path.parent / target).resolve().is_file(), f"{path.name}: link to missing notebook {target}"
