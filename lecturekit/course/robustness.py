"""Measure a notebook's claims over training seeds and thread counts.

    python -m lecturekit.course robustness notebooks/04_temporal_shift.ipynb --seeds 5 --threads 1 2

A claim that holds on one machine and fails on the next is not a lesson. This command
re-executes a notebook once per setting (training seed x intra-op threads) in a fresh kernel,
headless, with the seed injected after the notebook's ``parameters`` cell (a cell tagged
``parameters`` that holds ``SEED = 0``) and ``OMP_NUM_THREADS`` set, and records every
:func:`~lecturekit.course.claims.claim` the notebook makes (in record-only mode, so a failing
claim is measured rather than stopping the run). It prints, per claim, the measured values
(min / median / max) next to the asserted threshold and whether the threshold keeps the stated
margin (:func:`~lecturekit.course.claims.required_margin`) from the worst run, and merges the
distribution into a JSON table (``--out``, default ``data/results/claims_robustness.json``).

It also compares the outputs of the cells nbval compares (tag ``nbval-check-output``) across
all settings, after the repository's nbval sanitiser: such a cell must print the same text for
every seed and thread count, or CI would depend on the last bit of one machine's arithmetic.

Different thread counts give (slightly) different floating-point results on CPUs, just as
other CPUs, GPUs and library versions do; seeds change the initialisation and the batch order.
Together they stand in for the machines students use.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..env import machine_info
from .claims import LOG_ENV, RECORD_ONLY_ENV, required_margin

DEFAULT_OUT = Path("data/results/claims_robustness.json")
DEFAULT_SANITIZE = Path("tests/nbval/sanitize.cfg")


class RobustnessError(RuntimeError):
    """A notebook cannot be measured (no parameters cell, unreadable file, ...)."""


def parameters_cell_index(nb) -> int:
    """Index of the cell tagged ``parameters`` (it must define ``SEED``)."""
    found = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(found) != 1:
        raise RobustnessError(f"expected exactly one cell tagged 'parameters' (with SEED = ...), found {len(found)}")
    if not re.search(r"^SEED\s*=", nb.cells[found[0]].source, flags=re.M):
        raise RobustnessError("the cell tagged 'parameters' does not define SEED")
    return found[0]


def with_seed(nb, seed: int):
    """A copy of ``nb`` with ``SEED = seed`` injected right after its parameters cell."""
    import copy

    import nbformat

    nb = copy.deepcopy(nb)
    i = parameters_cell_index(nb)
    cell = nbformat.v4.new_code_cell(f"SEED = {int(seed)}  # injected by the robustness command")
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(i + 1, cell)
    return nb


def load_sanitizers(path: Path | None) -> list[tuple[re.Pattern, str]]:
    """The regex replacements of an nbval sanitiser file (``[section]`` with regex/replace)."""
    if path is None or not Path(path).is_file():
        return []
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(path)
    return [(re.compile(cfg[s]["regex"]), cfg[s]["replace"]) for s in cfg.sections()]


def _cell_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            parts.append(out["text"])
        elif "data" in out and "text/plain" in out["data"]:
            parts.append(out["data"]["text/plain"])
    return "".join(parts)


def run_once(path: str, seed: int, threads: int, result_file: str, timeout: int = 900) -> None:
    """Execute one setting in this process's kernel children; write a JSON result file."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from ..env import HEADLESS_ENV

    log = Path(result_file).with_suffix(".claims.jsonl")
    os.environ.update(HEADLESS_ENV)
    os.environ.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
                       LOG_ENV: str(log), RECORD_ONLY_ENV: "1"})
    # Several settings may share the cores (--jobs): threads that sleep instead of spinning while
    # they wait keep an oversubscribed machine usable. It changes timing, never the arithmetic.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    nb = with_seed(nbformat.read(path, as_version=4), seed)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(Path(path).parent.resolve())}})
    start, error = time.perf_counter(), None
    try:
        client.execute()
    except (CellExecutionError, TimeoutError) as err:       # nbclient's CellTimeoutError is a TimeoutError
        error = str(err).strip().splitlines()[-1][:500] if str(err).strip() else repr(err)
    wall = time.perf_counter() - start
    claims = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    injected = parameters_cell_index(nb) + 1                    # report the notebook's own cell numbers
    checked = {str(i if i < injected else i - 1): _cell_text(c) for i, c in enumerate(nb.cells)
               if "nbval-check-output" in c.get("metadata", {}).get("tags", [])}
    Path(result_file).write_text(json.dumps({"seed": seed, "threads": threads, "wall_s": round(wall, 1),
                                             "error": error, "claims": claims, "check_outputs": checked}))


# A claim's operator and threshold never change what is measured: they are masked in code_hash,
# so setting thresholds from a finished measurement does not invalidate it.
_THRESHOLD = re.compile(r"""(claim\(.*,\s*)(["'](?:>=|<=|>|<)["']\s*,\s*[^,()]+?)(\s*\))""")


def code_hash(nb) -> str:
    """sha256 of a notebook's code cells (claim thresholds masked): what a measured value can
    depend on. Prose, outputs and thresholds are not part of it."""
    import hashlib

    h = hashlib.sha256()
    for c in nb.cells:
        if c.cell_type == "code":
            h.update(_THRESHOLD.sub(r"\1<threshold>\3", c.source).encode() + b"\0")
    return h.hexdigest()


def _run_setting(path: Path, seed: int, threads: int, tmp: Path, timeout: int, cache: Path | None = None,
                 code_sha: str = "") -> dict:
    if cache is not None:
        kept = cache / f"{path.stem}-{code_sha[:16]}-seed{seed}-threads{threads}.json"
        if kept.is_file():
            return json.loads(kept.read_text())
    result = tmp / f"seed{seed}_threads{threads}.json"
    cmd = [sys.executable, "-m", "lecturekit.course.robustness", str(path), str(seed), str(threads),
           str(result), str(timeout)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if not result.is_file():
        return {"seed": seed, "threads": threads, "wall_s": None, "claims": [], "check_outputs": {},
                "error": f"the run did not finish (exit {proc.returncode}): {proc.stderr.strip()[-500:]}"}
    run = json.loads(result.read_text())
    if cache is not None and not run["error"]:
        cache.mkdir(parents=True, exist_ok=True)
        kept.write_text(json.dumps(run))                  # a finished setting is never run again
    return run


_CLAIM_CALL = re.compile(r"""claim\(\s*(["'])(?P<name>[^"'{}]+?)\1\s*,.*?,\s*["'](?P<op>>=|<=|>|<)["']\s*,"""
                         r"""\s*(?P<threshold>[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?)\s*\)""")


def asserted_thresholds(nb) -> dict[str, tuple[str, float]]:
    """``{claim name: (op, threshold)}`` of every ``claim("name", value, "op", number)`` written
    with a literal name and threshold in the notebook's code cells, as the notebook asserts them NOW."""
    out = {}
    for c in nb.cells:
        if c.cell_type == "code":
            for m in _CLAIM_CALL.finditer(c.source):
                out[m["name"]] = (m["op"], float(m["threshold"].replace("_", "")))
    return out


def summarise(runs: list[dict], sanitizers=(), asserted: dict | None = None) -> tuple[dict, list[str]]:
    """Per-claim distributions and the check-output cells whose text differs between runs.

    ``asserted`` (:func:`asserted_thresholds`): the thresholds the notebook asserts now. They win
    over the ones recorded in the runs, which may come from the cache and predate a threshold
    change (thresholds are masked in :func:`code_hash`: changing one does not re-run anything)."""
    asserted = asserted or {}
    claims: dict[str, dict] = {}
    for run in runs:
        for c in run["claims"]:
            op, threshold = asserted.get(c["name"], (c["op"], c["threshold"]))
            entry = claims.setdefault(c["name"], {"op": op, "threshold": threshold, "values": []})
            if c["name"] not in asserted and (entry["op"] != c["op"] or entry["threshold"] != c["threshold"]):
                raise RobustnessError(f"claim {c['name']!r} is made twice with different thresholds")
            entry["values"].append(c["value"])
    for entry in claims.values():
        v = entry["values"]
        entry.update(min=min(v), median=statistics.median(v), max=max(v), n=len(v))
        worst = entry["min"] if entry["op"] in (">", ">=") else entry["max"]
        entry["margin"] = required_margin(entry["threshold"])
        entry["keeps_margin"] = keeps_margin(entry["op"], entry["threshold"], worst)

    def clean(text):
        for pattern, repl in sanitizers:
            text = pattern.sub(repl, text)
        return text

    unstable = []
    cells = sorted({k for r in runs for k in r["check_outputs"]}, key=int)
    for k in cells:
        texts = {clean(r["check_outputs"].get(k, "")) for r in runs if not r["error"]}
        if len(texts) > 1:
            unstable.append(k)
    return claims, unstable


def keeps_margin(op: str, threshold: float, worst: float) -> bool:
    """True when ``threshold`` lies on the safe side of the worst measured value by the margin."""
    m = required_margin(threshold)
    return worst - threshold >= m if op in (">", ">=") else threshold - worst >= m


def measure(path, seeds=5, threads=(1, 2), jobs=1, timeout=900, out=DEFAULT_OUT,
            sanitize=DEFAULT_SANITIZE, key: str | None = None, file=None, cache=None) -> dict:
    """Run every (seed, threads) setting of one notebook; print the table; merge it into ``out``.

    ``cache``: a folder that keeps every finished setting, keyed by the notebook's code
    (:func:`code_hash`): an interrupted measurement resumes where it stopped, and editing prose
    does not force a re-run. Changing any code cell does.
    """
    import nbformat

    file = file or sys.stdout
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"robustness: no notebook at {path}")
    nb = nbformat.read(path, as_version=4)
    parameters_cell_index(nb)                                          # fail early and clearly
    code_sha = code_hash(nb)
    cache = Path(cache) if cache else None
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    settings = [(s, t) for t in threads for s in seed_list]
    print(f"{path}: {len(settings)} runs (seeds {seed_list}, threads {list(threads)}, {jobs} at a time)",
          file=file, flush=True)
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(_run_setting, path, s, t, Path(tmp), timeout, cache, code_sha) for s, t in settings]
        runs = []
        for f in futures:
            r = f.result()
            runs.append(r)
            status = "ok" if not r["error"] else f"ERROR {r['error']}"
            print(f"  seed {r['seed']} threads {r['threads']}: {r['wall_s']} s, {len(r['claims'])} claims, {status}",
                  file=file, flush=True)
    claims, unstable = summarise(runs, load_sanitizers(sanitize), asserted_thresholds(nb))
    report = {"measured": machine_info(), "code_sha256": code_sha, "seeds": seed_list, "threads": list(threads),
              "runs": [{k: r[k] for k in ("seed", "threads", "wall_s", "error")} for r in runs],
              "claims": claims, "unstable_check_outputs": unstable}
    print_report(str(path), report, file=file)
    if out:
        out = Path(out)
        table = json.loads(out.read_text()) if out.is_file() else {}
        table.setdefault("about", "Claims of the course notebooks measured over training seeds and "
                         "intra-op thread counts by `python -m lecturekit.course robustness`; "
                         "tests/test_claims_robustness.py checks every asserted threshold against it.")
        table.setdefault("notebooks", {})[key or path.as_posix()] = report
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(table, indent=1, sort_keys=False) + "\n")
        print(f"written to {out}", file=file)
    return report


def print_report(name: str, report: dict, file=None) -> None:
    file = file or sys.stdout
    claims = report["claims"]
    print(f"\n{name}", file=file)
    if not claims:
        print("  (no claims recorded)", file=file)
    width = max([len(k) for k in claims] + [5])
    print(f"  {'claim':<{width}}  {'threshold':>12}  {'min':>8} {'median':>8} {'max':>8}  {'n':>3}  margin", file=file)
    for k, c in claims.items():
        thr = f"{c['op']} {c['threshold']:g}"
        ok = "ok" if c["keeps_margin"] else f"THIN (needs {c['margin']:.3f})"
        print(f"  {k:<{width}}  {thr:>12}  {c['min']:8.3f} {c['median']:8.3f} {c['max']:8.3f}  {c['n']:>3}  {ok}",
              file=file)
    errors = [r for r in report["runs"] if r["error"]]
    for r in errors:
        print(f"  run seed {r['seed']} threads {r['threads']} failed: {r['error']}", file=file)
    if report["unstable_check_outputs"]:
        print(f"  check-output cells whose text changes between runs: {report['unstable_check_outputs']}", file=file)
    else:
        print("  every nbval-check-output cell printed the same text in every run", file=file)


if __name__ == "__main__":          # one setting, run by measure() in a subprocess
    nb_path, seed_, threads_, result_, timeout_ = sys.argv[1:6]
    run_once(nb_path, int(seed_), int(threads_), result_, int(timeout_))
