"""Every lesson's claim holds on every machine, not only on the one that stored the outputs.

The notebooks assert their claims with ``claim(name, value, op, threshold)``, which prints
``claim  <name>: <value> <op> <threshold>  holds``. ``python -m lecturekit.course robustness``
re-executes a notebook for training seeds 0-4 and 1 and 2 intra-op threads and records every
claim's values in data/results/claims_robustness.json. This test reads the claims a notebook
makes from its stored outputs and checks them against that table:

* the notebook was measured (>= 5 seeds x threads {1, 2}, every run finished);
* the table was measured on this notebook's code (every code cell, claim thresholds masked:
  they do not change what is measured), and its claims are the notebook's claims;
* each threshold lies on the safe side of the worst measured value by the stated margin
  (``required_margin``: 0.02 or 5 % of the threshold, whichever is larger);
* the cells nbval compares printed the same text in every run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lecturekit.course.claims import required_margin
from lecturekit.course.robustness import code_hash, keeps_margin

ROOT = Path(__file__).resolve().parents[1]
TABLE_PATH = ROOT / "data" / "results" / "claims_robustness.json"
NOTEBOOKS = sorted(p for f in ("notebooks", "solutions") for p in (ROOT / f).glob("*.ipynb"))
CLAIM_LINE = re.compile(r"^claim  (?P<name>.+): (?P<value>\S+) (?P<op>>=|<=|>|<) (?P<threshold>\S+)  "
                        r"(?P<verdict>holds|DOES NOT HOLD)$", re.M)


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _src(cell):
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


def stored_claims(path) -> dict[str, dict]:
    """The claims a notebook made in its stored outputs: name -> {value, op, threshold, holds}."""
    found = {}
    for cell in _cells(path):
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            for m in CLAIM_LINE.finditer(text):
                assert m["name"] not in found, f"{path.name}: claim {m['name']!r} is made twice"
                found[m["name"]] = dict(value=float(m["value"]), op=m["op"], threshold=float(m["threshold"]),
                                        holds=m["verdict"] == "holds")
    return found


def _makes_claims(path) -> bool:
    return any(c["cell_type"] == "code" and "claim(" in _src(c) for c in _cells(path))


CLAIMING = [p for p in NOTEBOOKS if _makes_claims(p)]
IDS = [p.relative_to(ROOT).as_posix() for p in CLAIMING]


@pytest.fixture(scope="module")
def table():
    assert TABLE_PATH.is_file(), "run `python -m lecturekit.course robustness NOTEBOOK` to create the table"
    return json.loads(TABLE_PATH.read_text())["notebooks"]


def test_the_course_makes_claims():
    assert len(CLAIMING) >= 6, [p.name for p in CLAIMING]


@pytest.mark.parametrize("path", CLAIMING, ids=IDS)
def test_claims_were_measured_over_seeds_and_threads(path, table):
    key = path.relative_to(ROOT).as_posix()
    assert key in table, f"{key} makes claims but was never measured: python -m lecturekit.course robustness {key}"
    entry = table[key]
    assert len(entry["seeds"]) >= 5 and set(entry["threads"]) >= {1, 2}, (entry["seeds"], entry["threads"])
    assert all(r["error"] is None for r in entry["runs"]), [r for r in entry["runs"] if r["error"]]
    assert len(entry["runs"]) == len(entry["seeds"]) * len(entry["threads"])
    for name, c in entry["claims"].items():
        assert c["n"] == len(entry["runs"]), f"{key}: claim {name!r} was not made in every run"
    assert entry["unstable_check_outputs"] == [], \
        f"{key}: cells compared by nbval print different text for other seeds or threads: {entry['unstable_check_outputs']}"
    for field in ("date", "cpu", "torch"):
        assert entry["measured"].get(field), f"{key}: the table must say on what it was measured ({field})"


@pytest.mark.parametrize("path", CLAIMING, ids=IDS)
def test_every_threshold_keeps_its_margin_from_the_measured_distribution(path, table):
    key = path.relative_to(ROOT).as_posix()
    stored = stored_claims(path)
    assert stored, f"{key} calls claim() but its stored outputs show none: execute it with the execute command"
    measured = table[key]["claims"]
    assert set(stored) == set(measured), (f"{key}: claims in the notebook and in the table differ; measure again. "
                                          f"only in the notebook: {sorted(set(stored) - set(measured))}; "
                                          f"only in the table: {sorted(set(measured) - set(stored))}")
    for name, s in stored.items():
        m = measured[name]
        assert s["holds"], f"{key}: stored claim {name!r} does not hold"
        assert s["op"] == m["op"], f"{key}: {name!r} asserts {s['op']} but {m['op']} was measured"
        worst = m["min"] if m["op"] in (">", ">=") else m["max"]
        assert keeps_margin(s["op"], s["threshold"], worst), (
            f"{key}: {name!r} {s['op']} {s['threshold']:g} is too close to the worst of {m['n']} runs ({worst:.4f}); "
            f"it needs a margin of {required_margin(s['threshold']):.3f}: make the lesson stronger")


@pytest.mark.parametrize("path", CLAIMING, ids=IDS)
def test_the_table_was_measured_on_this_code(path, table):
    """The measured code is this notebook's code: every code cell, with the claims' thresholds
    masked (they do not change what is measured). Edit a cell and the table must be measured again."""
    import nbformat

    key = path.relative_to(ROOT).as_posix()
    assert table[key].get("code_sha256") == code_hash(nbformat.read(path, as_version=4)), \
        f"{key} changed since it was measured: python -m lecturekit.course robustness {key}"


@pytest.mark.parametrize("path", CLAIMING, ids=IDS)
def test_training_follows_the_seed_parameter(path):
    cells = _cells(path)
    params = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1 and re.search(r"^SEED\s*=\s*0\b", _src(params[0]), re.M), \
        f"{path.name}: one cell tagged 'parameters' holding SEED = 0"
    for c in cells:
        if c["cell_type"] != "code":
            continue
        src = _src(c)
        assert not re.search(r"seed_everything\(\s*\d+\s*\)", src), f"{path.name}: seed_everything(<number>) ignores SEED"
        if "claim(" in src:
            assert "nbval-check-output" not in c.get("metadata", {}).get("tags", []), \
                f"{path.name}: a claim's value depends on the machine; nbval must not compare its cell"


def test_margin_rule():
    assert required_margin(0.8) == pytest.approx(0.04)
    assert required_margin(0.1) == pytest.approx(0.02)
    assert required_margin(-10) == pytest.approx(0.5)
    assert keeps_margin(">", 0.8, 0.85) and not keeps_margin(">", 0.8, 0.83)
    assert keeps_margin("<", 0.65, 0.6) and not keeps_margin("<=", 0.65, 0.64)
