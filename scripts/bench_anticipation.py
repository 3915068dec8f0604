"""Benchmark every anticipation model of the table on ToyKitchens with one yardstick.

Usage: python scripts/bench_anticipation.py [--encoder toykitchens_tsm_online] [--epochs 30] [--seeds 0 1 2]
                                             [--aga-seeds 0 1 2 3 4] [--models rulstm aga ...] [--no-horst]
                                             [--aux-models aga+aux ...] [--aux-weight 1]
                                             [--extra-train-videos N] [--tau-o S] [--frames T]
                                             [--quick] [--out PATH]
       python scripts/bench_anticipation.py --merge A.json B.json ... --out PATH

Trains (train split, tau_a = 1 s, tau_o = 2 s, 8 frames) every feature-reading model of the table
from the cached features of ``--encoder`` (the online TSM by default: features with time in them;
``toykitchens_frame_cnn`` for the single-frame baseline), HORST on the temporal encoder's feature
maps, the cascade "recognise the last action, then bigram" on the same features, and scores them
on the test split next to the n-gram on TRUE past labels, the Bayes-optimal label-only predictor
and random scores: EK-100 class-mean top-5 recall overall / unseen / tail (action, verb, noun)
plus top-1 / top-5. The ``+aux`` rows (``--aux-models``) train the same models also on the actions
they observe (dense per-frame labels; ``lecturekit.analysis.anticipation.ObservedActionAux``).
``--quick`` (CI smoke test): 2 epochs, one seed, writes nothing by default.
All the evaluation code lives in ``lecturekit.analysis.anticipation``; this script only wires it.
``--extra-train-videos N`` (``ToyKitchens(extra_train_videos=N)``: more training videos, val and test
unchanged), ``--tau-o`` and ``--frames`` (longer observed windows; AGA's memory then holds every frame)
measure what more data or longer windows buy; any of them requires ``--out`` so that the stored default table stays as is.
``--merge`` joins tables of runs over disjoint ``--models`` lists (a long setting split over processes;
``lecturekit.analysis.anticipation.merge_benchmarks``). The stored table with more training videos,
``anticipation_toykitchens_more_data.json``, was made that way from three runs of
``--extra-train-videos 16 --tau-o 8 --frames 16 --aga-seeds 0 1 2``.
Writes ``lecturekit/resources/results/anticipation_toykitchens.json`` (per-seed scores + settings), shipped
inside the package so that a notebook can read it with ``lecturekit.resources.load_json``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy / torch start their thread pools
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from lecturekit.analysis.anticipation import (  # noqa: E402
    FEATURE_MODELS, format_table, load_anticipation_data, merge_benchmarks, run_benchmark, summarize,
)
from lecturekit.data.toykitchens import ToyKitchens  # noqa: E402
from lecturekit.features import ENCODERS, TEMPORAL_ENCODER  # noqa: E402
from lecturekit.resources import write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HORST_KWARGS = {"hidden": (32,)}   # on the encoder's 64 x 4 x 4 maps
# rows that also learn the actions they observe (train_anticipation's aux_weight, ObservedActionAux):
# AGA's per-step predictions the released way, AVT-h's own past-action + feature losses, RU-LSTM with
# a benchmark-side auxiliary head on its rolling state
AUX_ROWS = ("aga+aux", "aga_pixel+aux", "avt_head+aux", "rulstm+aux")
# AGA's per-step targets: the action in progress tau_a = 1 s after each observed frame (the paper's
# "label of the next sampled frame" at 1 fps); AVT-h and RU-LSTM recognise the action in progress
AUX_KWARGS = {"aga+aux": {"aux_labels": "frame_action_ahead"}, "aga_pixel+aux": {"aux_labels": "frame_action_ahead"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", default=TEMPORAL_ENCODER, choices=sorted(ENCODERS), help="whose features")
    ap.add_argument("--epochs", type=int, default=30, help="epochs of every feature model")
    ap.add_argument("--horst-epochs", type=int, default=15)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--aga-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds of aga and aga_pixel")
    ap.add_argument("--models", nargs="+", default=list(FEATURE_MODELS))
    ap.add_argument("--no-horst", action="store_true")
    ap.add_argument("--aux-models", nargs="*", default=list(AUX_ROWS),
                    help="rows trained also on the observed actions (model+aux); none: --aux-models")
    ap.add_argument("--aux-weight", type=float, default=1.0, help="weight of the observed-action loss")
    ap.add_argument("--split", default="test")
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 epochs, seed 0, no output file")
    ap.add_argument("--out", default=None, help="default: lecturekit/resources/results/anticipation_toykitchens.json")
    ap.add_argument("--extra-train-videos", type=int, default=0,
                    help="ToyKitchens(extra_train_videos=N): N more training videos per seen kitchen (val/test unchanged)")
    ap.add_argument("--tau-o", type=float, default=2.0, help="observed seconds before the cut (default 2)")
    ap.add_argument("--frames", type=int, default=8, help="frames per window (default 8); AGA's memory holds them all")
    ap.add_argument("--merge", nargs="+", metavar="JSON", default=None,
                    help="instead of training: merge tables written by runs over disjoint --models lists "
                         "(same world and window) into --out")
    args = ap.parse_args()
    if args.merge:
        if args.out is None:
            ap.error("--merge needs --out")
        merged = merge_benchmarks([json.loads(Path(p).read_text()) for p in args.merge])
        print(format_table(merged))
        print(f"wrote {write_json(args.out, merged)}")
        return
    default_view = args.extra_train_videos == 0 and args.tau_o == 2.0 and args.frames == 8
    if args.out is None and not args.quick and not default_view:
        ap.error("a non-default world or window needs --out (the stored default benchmark is not overwritten)")
    if args.quick:
        args.epochs, args.horst_epochs, args.seeds, args.aga_seeds = 2, 2, [0], [0]
    if args.out is None and not args.quick:
        args.out = str(ROOT / "lecturekit" / "resources" / "results" / "anticipation_toykitchens.json")
    torch.set_num_threads(1)

    start = time.perf_counter()
    world_kwargs = {"extra_train_videos": args.extra_train_videos} if args.extra_train_videos else {}
    world = ToyKitchens(seed=0, **world_kwargs)
    models = list(args.models) + ([] if args.no_horst else ["horst"]) + list(args.aux_models)
    data = load_anticipation_data(world, ("train", args.split), tau_a=1.0, tau_o=args.tau_o, frames=args.frames,
                                  encoder=args.encoder, maps="horst" in models)
    epochs = {m: (args.horst_epochs if m == "horst" else args.epochs) for m in models}
    seeds_for = {m: args.aga_seeds for m in ("aga", "aga_pixel", "aga+aux", "aga_pixel+aux")}
    model_kwargs = {"horst": HORST_KWARGS, **AUX_KWARGS}
    if args.frames != 8:                            # AGA's memory (order, 8 in the small preset) holds the window
        for m in models:
            if m.split("+")[0] in ("aga", "aga_pixel", "aga_iam", "aga_nogate"):
                model_kwargs[m] = {**model_kwargs.get(m, {}), "order": args.frames}
    result = run_benchmark(world, data, models, eval_split=args.split, epochs=epochs, seeds=args.seeds,
                           seeds_for=seeds_for, model_kwargs=model_kwargs,
                           cascade_epochs=args.epochs, aux_weight=args.aux_weight, log=print)
    total = time.perf_counter() - start

    print()
    print(f"ToyKitchens(seed=0{''.join(f', {k}={v}' for k, v in world_kwargs.items())}) anticipation, tau_a=1 s, "
          f"tau_o={args.tau_o:g} s, {args.frames} frames; train {result['settings']['train_rows']}"
          f" rows, {args.split} {result['settings']['eval_rows']} rows; numbers in %, mean over seeds")
    print("A/V/N = action/verb/noun class-mean top-5 recall (EK-100 MT5R); gap = seen - unseen action MT5R")
    print(format_table(result))
    rows = result["rows"]
    for name in ("aga", "aga_pixel", "aga+aux", "aga_pixel+aux"):
        if name in rows:
            s = summarize(rows[name])
            print(f"{name:<10} seen {100 * s['seen_action']:.1f}  unseen {100 * s['unseen_action']:.1f}  "
                  f"gap {100 * s['gap_action']:.1f} +- {100 * s['gap_action_std']:.1f} (std over {s['n_seeds']} seeds)")
    print(f"total {total:.0f} s")

    result["summary"] = {name: summarize(row) for name, row in rows.items()}
    world_name = "ToyKitchens(seed=0" + "".join(f", {k}={v}" for k, v in world_kwargs.items()) + ")"
    result["settings"].update(world=world_name, features=f"{args.encoder} (lecturekit/resources/checkpoints)",
                              loss="cross-entropy vs the upcoming action at every step, last step scored",
                              aux_loss=(f"rows '+aux': also the observed actions (per-frame labels), weight "
                                        f"{args.aux_weight:g}: AGA's per-step predictions trained the released way "
                                        "(step t -> the action in progress tau_a = 1 s after frame t, the last step "
                                        "the upcoming action, counted twice), AVT-h's own L_past (action in progress "
                                        "at each frame) + L_feat, RU-LSTM a benchmark-side auxiliary head on its "
                                        "rolling cell state (action in progress at each frame)"),
                              optimizer="AdamW wd 1e-2, cosine", batch_size=32, threads=1,
                              horst_kwargs={k: list(v) if isinstance(v, tuple) else v for k, v in HORST_KWARGS.items()},
                              total_seconds=round(total, 1), torch=torch.__version__, python=platform.python_version())
    if args.out is None:
        return
    out = Path(args.out)
    write_json(out, result)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
