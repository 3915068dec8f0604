"""claim() and the robustness command that measures claims over seeds and thread counts."""

from __future__ import annotations

import json
import math

import nbformat
import pytest

from lecturekit.course import claim
from lecturekit.course.claims import LOG_ENV, RECORD_ONLY_ENV
from lecturekit.course.robustness import RobustnessError, measure, with_seed


def test_claim_prints_returns_and_asserts(capsys, monkeypatch):
    monkeypatch.delenv(LOG_ENV, raising=False)
    monkeypatch.delenv(RECORD_ONLY_ENV, raising=False)
    assert claim("TSM within take/put", 0.9876, ">", 0.9) == pytest.approx(0.9876)
    assert capsys.readouterr().out == "claim  TSM within take/put: 0.988 > 0.9  holds\n"
    with pytest.raises(AssertionError, match=r"'noise' does not hold: measured 0\.7000, expected < 0\.65"):
        claim("noise", 0.7, "<", 0.65)
    assert "DOES NOT HOLD" in capsys.readouterr().out
    with pytest.raises(AssertionError):
        claim("nan never holds", math.nan, "<", 1.0)
    claim("boundary", 0.5, ">=", 0.5)
    with pytest.raises(ValueError, match="op must be one of"):
        claim("bad op", 1.0, "==", 1.0)
    with pytest.raises(ValueError, match="name"):
        claim("", 1.0, ">", 0.0)


def test_claim_accepts_tensors_and_numpy():
    torch = pytest.importorskip("torch")
    import numpy as np

    assert claim("tensor", torch.tensor(0.75), ">", 0.5) == 0.75
    assert claim("numpy", np.float32(0.25), "<", 0.5) == 0.25


def test_claim_log_and_record_only(tmp_path, monkeypatch):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv(LOG_ENV, str(log))
    monkeypatch.setenv(RECORD_ONLY_ENV, "1")
    claim("fails but is recorded", 0.1, ">", 0.5)
    claim("holds", 2.0, ">=", 1.0)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["name"], r["holds"]) for r in rows] == [("fails but is recorded", False), ("holds", True)]
    assert rows[0] == {"name": "fails but is recorded", "value": 0.1, "op": ">", "threshold": 0.5, "holds": False}


def _notebook(path, cells, params="SEED = 0"):
    nb = nbformat.v4.new_notebook()
    first = nbformat.v4.new_code_cell(params)
    first.metadata["tags"] = ["parameters"]
    nb.cells = [first] + cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_with_seed_injects_after_the_parameters_cell(tmp_path):
    nb = nbformat.read(_notebook(tmp_path / "a.ipynb", [nbformat.v4.new_code_cell("x = SEED")]), 4)
    injected = with_seed(nb, 3)
    assert [c.source.split("  #")[0] for c in injected.cells] == ["SEED = 0", "SEED = 3", "x = SEED"]
    assert injected.cells[1].metadata["tags"] == ["injected-parameters"]
    assert len(nb.cells) == 2                                              # the original is untouched
    with pytest.raises(RobustnessError, match="parameters"):
        with_seed(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("SEED = 0")]), 1)
    with pytest.raises(RobustnessError, match="SEED"):
        with_seed(nbformat.read(_notebook(tmp_path / "b.ipynb", [], params="STEPS = 3"), 4), 1)


@pytest.mark.slow
def test_measure_over_seeds_and_threads(tmp_path):
    """Two seeds x two thread counts: the values, the margin verdicts and an unstable nbval cell."""
    checked = nbformat.v4.new_code_cell("print('seed', SEED)")             # differs between seeds
    checked.metadata["tags"] = ["nbval-check-output"]
    stable = nbformat.v4.new_code_cell("print('always the same')")
    stable.metadata["tags"] = ["nbval-check-output"]
    code = nbformat.v4.new_code_cell(
        "import os, torch\nfrom lecturekit.course import claim\n"
        "claim('seed plus one', SEED + 1, '>', 0.5)\n"                     # min 1 -> margin 0.5: ok
        "claim('threads', torch.get_num_threads(), '<=', 2)\n"             # max 2 = threshold: thin
        "claim('fails for seed 1', 1 - SEED, '>', 0.5)\n")                 # recorded, not raised
    path = _notebook(tmp_path / "t.ipynb", [stable, checked, code])
    out = tmp_path / "table.json"
    report = measure(path, seeds=2, threads=(1, 2), jobs=2, out=out, sanitize=None, key="t.ipynb",
                     file=open(tmp_path / "log.txt", "w"))
    assert [(r["seed"], r["threads"], r["error"]) for r in report["runs"]] == [(0, 1, None), (1, 1, None),
                                                                                (0, 2, None), (1, 2, None)]
    c = report["claims"]
    assert c["seed plus one"]["values"] == [1.0, 2.0, 1.0, 2.0] and c["seed plus one"]["keeps_margin"]
    assert c["threads"]["values"] == [1.0, 1.0, 2.0, 2.0] and not c["threads"]["keeps_margin"]
    assert c["fails for seed 1"]["min"] == 0.0 and not c["fails for seed 1"]["keeps_margin"]
    assert report["unstable_check_outputs"] == ["2"]                      # the cell printing SEED
    table = json.loads(out.read_text())
    assert table["notebooks"]["t.ipynb"]["measured"]["cpu"]
    # a second notebook merges into the same table
    measure(_notebook(tmp_path / "u.ipynb", [code]), seeds=1, threads=(1,), out=out, sanitize=None, key="u.ipynb",
            file=open(tmp_path / "log2.txt", "w"))
    assert set(json.loads(out.read_text())["notebooks"]) == {"t.ipynb", "u.ipynb"}


def test_measure_refuses_a_notebook_without_a_seed_parameter(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("SEED = 0")])
    nbformat.write(nb, tmp_path / "x.ipynb")
    with pytest.raises(RobustnessError, match="parameters"):
        measure(tmp_path / "x.ipynb", seeds=1, threads=(1,), out=None)
    with pytest.raises(FileNotFoundError):
        measure(tmp_path / "missing.ipynb", out=None)


def test_code_hash_ignores_thresholds_and_prose_but_not_code():
    from lecturekit.course.robustness import code_hash

    def nb(*cells):
        return nbformat.v4.new_notebook(cells=list(cells))

    base = nb(nbformat.v4.new_markdown_cell("prose"), nbformat.v4.new_code_cell('claim("a", f(x, 2), ">", 0.8)'))
    same = [nb(nbformat.v4.new_markdown_cell("other prose"), nbformat.v4.new_code_cell('claim("a", f(x, 2), ">", 0.8)')),
            nb(nbformat.v4.new_markdown_cell("prose"), nbformat.v4.new_code_cell('claim("a", f(x, 2), ">=", 0.75)'))]
    other = [nb(nbformat.v4.new_markdown_cell("prose"), nbformat.v4.new_code_cell('claim("a", f(x, 3), ">", 0.8)')),
             nb(nbformat.v4.new_markdown_cell("prose"), nbformat.v4.new_code_cell('claim("b", f(x, 2), ">", 0.8)'))]
    assert all(code_hash(n) == code_hash(base) for n in same)
    assert all(code_hash(n) != code_hash(base) for n in other)


def test_report_uses_the_thresholds_the_notebook_asserts_now():
    """A cached run carries the threshold of its day; the report must use today's."""
    from lecturekit.course.robustness import asserted_thresholds, summarise

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('claim("acc", acc, ">", 0.8)\nclaim("loss ratio", r, "<=", 1_000)\n'
                                          'claim(f"pair {k}", v, ">", 0.5)')]
    assert asserted_thresholds(nb) == {"acc": (">", 0.8), "loss ratio": ("<=", 1000.0)}
    old = {"claims": [{"name": "acc", "value": 0.9, "op": ">", "threshold": 0.5}], "check_outputs": {}, "error": None}
    new = {"claims": [{"name": "acc", "value": 0.86, "op": ">", "threshold": 0.8}], "check_outputs": {}, "error": None}
    claims, _ = summarise([old, new], asserted=asserted_thresholds(nb))
    assert claims["acc"]["threshold"] == 0.8 and claims["acc"]["min"] == 0.86
    assert claims["acc"]["keeps_margin"] is True                   # 0.86 - 0.8 >= max(0.02, 0.04)
    with pytest.raises(RobustnessError, match="different thresholds"):
        summarise([old, new])                                      # nothing says which one holds now
