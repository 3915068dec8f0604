"""Does the dependency matrix of a trained AGA recover the grammar of ToyKitchens?

Usage: python scripts/aga_dependency.py [--settings default long_range] [--threads 1 2] [--seeds 0 1 2 3 4]
                                        [--quick] [--out PATH]

For every setting and thread count, :func:`lecturekit.analysis.aga.dependency_study` trains AGA
(the ``aga+aux`` recipe of the benchmark: 30 epochs, dense labels tau_a ahead) with every seed and
measures the rank correlation of its dependency matrix with the world's exact transitions (and,
for the long-range world, with the lag-2 dependency), the attention it actually pays on the test
windows (with its position-only part as control), action MT5R and, for the default setting, the
counterfactual search's success over non-degenerate test windows (target: the true next action).

Settings:
    default     ToyKitchens(seed=0), the benchmark's windows (tau_o = 2 s, 8 frames)
    window8     the same world, 8 s windows (16 frames; AGA's memory holds all of them)
    long_range  ToyKitchens(seed=0, long_range=True, extra_train_videos=8), tau_o = 4 s, 8 frames:
                recipes where the step after a shared "hub" is decided by the action before it

Writes ``lecturekit/resources/results/aga_dependency_toykitchens.json``. ``--quick``: 2 epochs,
seed 0, one thread, no counterfactual, nothing written unless ``--out``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from lecturekit.analysis.aga import dependency_study  # noqa: E402
from lecturekit.env import machine_info  # noqa: E402
from lecturekit.resources import write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "lecturekit" / "resources" / "results" / "aga_dependency_toykitchens.json"
SETTINGS = {
    "default": dict(counterfactual_windows=40),
    "window8": dict(tau_o=8.0, frames=16, counterfactual_windows=0),
    "long_range": dict(world_kwargs={"long_range": True, "extra_train_videos": 8}, tau_o=4.0, frames=8,
                       counterfactual_windows=0),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", nargs="+", default=["default", "long_range"], choices=sorted(SETTINGS))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    seeds, threads = (args.seeds, args.threads) if not args.quick else ([0], [1])
    runs, wall0 = {}, time.perf_counter()
    for name in args.settings:
        for t in threads:
            torch.set_num_threads(t)
            kw = dict(SETTINGS[name])
            if args.quick:
                kw.update(epochs=2, counterfactual_windows=0, lag_videos=2000)
            print(f"== {name}, {t} thread(s)", flush=True)
            res = dependency_study(seeds, log=print, **kw)
            res["settings"]["threads"] = t
            runs[f"{name}/threads={t}"] = res
    out = {"command": "python scripts/aga_dependency.py " + " ".join(sys.argv[1:]), "machine": machine_info(),
           "runs": runs, "wall_seconds": round(time.perf_counter() - wall0, 1)}
    path = Path(args.out) if args.out else (None if args.quick else OUT)
    if path is not None:
        write_json(path, out)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
