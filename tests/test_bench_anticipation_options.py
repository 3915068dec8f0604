"""scripts/bench_anticipation.py's issue-14 levers (``--extra-train-videos``, ``--tau-o``, ``--frames``):
a non-default world or window never overwrites the stored default table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("flags", [["--extra-train-videos", "2"], ["--tau-o", "8"], ["--frames", "16"]])
def test_non_default_benchmark_needs_an_explicit_out(flags):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_anticipation.py"), *flags],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "needs --out" in proc.stderr, proc.stderr[-500:]
