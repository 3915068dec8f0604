"""Benchmark ToyKitchens: rendering speed (frames/s, one thread) and the default dataset's cost.

Usage: python scripts/bench_toykitchens.py [--repeats 3]

Prints
  * frames/s of the renderer at 32x32 and 64x64 on one thread (best of ``--repeats`` runs over
    every long video of the default world, caches bypassed);
  * the wall time to build the default notebook dataset from nothing: ``ToyKitchens(seed=0)``,
    all long videos rendered, train/val/test clip tensors (8 frames) and the anticipation views;
  * its sizes (videos, frames, segments per split).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy / torch start their thread pools
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from lecturekit.data import ToyKitchens  # noqa: E402


def render_speed(size: int, repeats: int) -> tuple[float, int]:
    world = ToyKitchens(seed=0, size=size)
    frames = sum(s.num_frames for s in world.scripts)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for v in range(len(world.video_ids)):
            world.render_video(v)  # no caching: the renderer alone
        best = min(best, time.perf_counter() - t)
    return frames / best, frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)

    for size in (32, 64):
        fps, n = render_speed(size, args.repeats)
        print(f"render {size}x{size}: {fps:,.0f} frames/s on one thread ({n:,} frames per pass)")

    t0 = time.perf_counter()
    world = ToyKitchens(seed=0)
    t_world = time.perf_counter() - t0
    for split in ("train", "val", "test"):
        world.long_videos(split)
    t_render = time.perf_counter() - t0
    sizes = {}
    for split in ("train", "val", "test"):
        v, _ = world.clips(split, frames=8).tensors()
        a, _ = world.anticipation(split).tensors()
        sizes[split] = (len(v), len(a))
    t_all = time.perf_counter() - t0
    print(
        f"default dataset: world {t_world:.2f} s, all long videos {t_render:.2f} s, "
        f"+ clip and anticipation tensors of every split {t_all:.2f} s in total"
    )
    print(world)
    frames = {sp: sum(s.num_frames for s, x in zip(world.scripts, world.video_split) if x == sp) for sp in sizes}
    for sp, (nc, na) in sizes.items():
        print(f"  {sp:5s}: {frames[sp]:6,} frames, {nc} clips, {na} anticipation samples")
    print(f"  actions: {len(world.actions)}, tail actions (train): {len(world.tail_classes('action'))}")


if __name__ == "__main__":
    main()
