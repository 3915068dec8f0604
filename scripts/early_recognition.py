"""MS-LSTM's Fig. 5 and Fig. 6 on ToyKitchens: accuracy against the observed fraction of an action
for five training losses, with and without temporal average pooling.

Usage: python scripts/early_recognition.py [--frames 20] [--epochs 40] [--seeds 0 1 2 3 4]
                                           [--quick] [--out PATH] [--figure PATH]

Every action segment of ToyKitchens(seed=0) is sampled at ``--frames`` evenly spread frames and read
as two frozen feature streams (single-frame CNN = context, online TSM = action); a two-stage LSTM is
trained on the train split with each loss of ``lecturekit.analysis.early_recognition.EARLY_LOSSES``
and scored on val and test after every step. ``--quick`` (CI smoke test): 2 epochs, one seed, two
losses, writes nothing unless ``--out`` is given. All the experiment code lives in
``lecturekit.analysis.early_recognition``; this script only wires it and writes
``lecturekit/resources/results/early_recognition_toykitchens.json`` (every per-seed curve, the
summary computed from them, the CPU time, the settings) and a figure next to it.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy / torch start their thread pools
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from lecturekit.analysis.early_recognition import (  # noqa: E402
    EARLY_LOSSES, early_summary, load_early_data, run_early_recognition,
)
from lecturekit.data.toykitchens import ToyKitchens  # noqa: E402
from lecturekit.resources import write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "lecturekit" / "resources" / "results"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20, help="steps per action (observed fraction = step / frames)")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--losses", nargs="+", default=list(EARLY_LOSSES), choices=list(EARLY_LOSSES))
    ap.add_argument("--early", type=float, default=0.1, help="'small observed fractions': up to this fraction")
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 epochs, seed 0, two losses, no output file")
    ap.add_argument("--out", default=None, help="default: lecturekit/resources/results/early_recognition_toykitchens.json")
    ap.add_argument("--figure", default=None, help="default: next to --out, .png")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs, args.seeds, args.losses = 2, [0, 1], ["anticipation", "lgl"]
    if args.out is None and not args.quick:
        args.out = str(RESULTS / "early_recognition_toykitchens.json")
    torch.set_num_threads(1)

    start = time.perf_counter()
    world = ToyKitchens(seed=0)
    data = load_early_data(world, frames=args.frames)
    result = run_early_recognition(data, loss_names=args.losses, seeds=args.seeds, epochs=args.epochs,
                                   num_classes=world.num_classes["action"], log=print)
    total = time.perf_counter() - start
    summary = early_summary(result, split="test", early=args.early)
    result["summary"] = {"test": summary, "val": early_summary(result, split="val", early=args.early)}
    result["settings"].update(
        world="ToyKitchens(seed=0)", frames=args.frames, target="action",
        features="context = toykitchens_frame_cnn, action = toykitchens_tsm_online (frozen)",
        model="TwoStageLSTM(hidden=64, dropout=0.5), loss on both stages (Eqs. 4-6)",
        optimizer="Adam lr 1e-3, batch 32", threads=1, total_seconds=round(total, 1),
        losses={n: EARLY_LOSSES[n][1] for n in args.losses}, torch=torch.__version__,
        python=platform.python_version())

    print(f"\ntest accuracy (mean over {len(args.seeds)} seeds) after observing a fraction of the action:")
    fr = result["fractions"]
    cols = [i for i, f in enumerate(fr) if f <= 0.1 + 1e-9 or round(f * 10, 6) == int(round(f * 10, 6))]
    print(f"{'loss':<13}{'kind':<8}" + "".join(f"{fr[i]:>7.2f}" for i in cols))
    for name in args.losses:
        for kind in ("raw", "pooled"):
            m = summary["mean"][name][kind]
            print(f"{name:<13}{kind:<8}" + "".join(f"{m[i]:>7.3f}" for i in cols))
    for name, d in summary["versus"].items():
        print(f"anticipation - {name:<12} at fractions <= {args.early}: {d['mean']:+.3f} +- {d['se']:.3f} (s.e.), "
              f"t = {d['t']:.1f}, anticipation >= {name} in {d['a_at_least_b']}/{d['n']} seeds")
    for name, d in summary["pooling"].items():
        print(f"pooled - raw, {name:<12} all steps {d['all_steps']['mean']:+.3f} +- {d['all_steps']['se']:.3f}, "
              f"early steps {d['early_steps']['mean']:+.3f} +- {d['early_steps']['se']:.3f}")
    print(f"total {total:.0f} s")
    if args.out is None:
        return result
    out = Path(args.out)
    write_json(out, result)
    print(f"wrote {out}")
    figure = Path(args.figure) if args.figure else out.with_suffix(".png")
    from lecturekit.viz.plots import early_recognition_figure

    fig = early_recognition_figure(result, split="test")
    fig.savefig(figure, dpi=80, bbox_inches="tight")
    print(f"wrote {figure}")
    return result


if __name__ == "__main__":
    main()
