"""Benchmark the temporal shift: "zero FLOPs, zero parameters, but not zero latency".

Usage: python scripts/bench_temporal_shift.py [--repeats 20]

Prints, on one CPU thread (median of ``--repeats`` calls, no autograd), for realistic TSM
ResNet-50 feature maps of one 8-frame clip at 224×224 ((B*T, C, H, W) = (8, 256, 56, 56), the
output of layer1, and (8, 64, 56, 56), the input of its first block):

  * identity (return the tensor: the "zero FLOPs" ideal),
  * clone (one full copy: the memory-traffic floor of any out-of-place operator),
  * the offline shift ``shift_folded(x, frames=8)``,
  * a 1×1 convolution C -> C/4 for scale (what the shift replaces in a 3D/(2+1)D network is
    far more expensive than that).

Also prints the FLOPs FlopCounterMode counts for the shift (0) and the 1×1 conv.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch starts its thread pool

import argparse  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from lecturekit.layers import shift_folded  # noqa: E402


def median_ms(fn, x, repeats: int) -> float:
    for _ in range(3):
        fn(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for shape in [(8, 256, 56, 56), (8, 64, 56, 56)]:
        x = torch.randn(*shape)
        conv = torch.nn.Conv2d(shape[1], shape[1] // 4, 1, bias=False)
        with torch.no_grad():
            rows = {
                "identity": median_ms(lambda z: z, x, args.repeats),
                "clone": median_ms(lambda z: z.clone(), x, args.repeats),
                "shift (T=8, fold_div=8)": median_ms(lambda z: shift_folded(z, 8), x, args.repeats),
                "1x1 conv C->C/4": median_ms(conv, x, args.repeats),
            }
            with FlopCounterMode(display=False) as c_shift:
                shift_folded(x, 8)
            with FlopCounterMode(display=False) as c_conv:
                conv(x)
        print(f"(B*T, C, H, W) = {shape}")
        for name, ms in rows.items():
            print(f"  {name:26s} {ms:8.2f} ms")
        print(f"  FLOPs counted: shift {c_shift.get_total_flops()}, 1x1 conv {c_conv.get_total_flops():,}")


if __name__ == "__main__":
    main()
