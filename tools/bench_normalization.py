"""Benchmark: seconds per forward+backward of the reference normalization modules (helpers.normalization).

Usage: python -m tools.bench_normalization [--repeats R] [--dtype float32|float64]
Numbers are printed, not asserted (the budget: vectorized numpy, no Python loop over elements).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from helpers import normalization as nm


def benchmark_forward_backward(shape=(32, 64, 16, 16), repeats: int = 20, dtype=np.float64,
                               num_groups: int = 32, seed: int = 0) -> dict[str, float]:
    """Median seconds of one training-mode forward+backward per variant: {"BatchNorm": s, "LayerNorm": s, ...}.

    shape: (N, C, H, W) or (N, C). repeats: timed runs per variant (after one warm-up run).
    num_groups: GroupNorm's G (32, Wu & He's default; must divide C).
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    channels = shape[1]
    modules = {"BatchNorm": nm.BatchNorm(channels), "LayerNorm": nm.LayerNorm(shape[1:]),
               "InstanceNorm": nm.InstanceNorm(channels, affine=True), "GroupNorm": nm.GroupNorm(num_groups, channels)}
    if len(shape) == 2:
        del modules["InstanceNorm"]  # needs spatial axes
    timings = {}
    for name, module in modules.items():
        module(x)  # warm-up
        module.backward(dout)
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            module(x)
            module.backward(dout)
            runs.append(time.perf_counter() - start)
        timings[name] = float(np.median(runs))
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--dtype", choices=["float32", "float64"], default=None,
                        help="one dtype (default: both)")
    args = parser.parse_args(argv if argv is not None else [])
    shape = (32, 64, 16, 16)
    dtypes = [args.dtype] if args.dtype else ["float64", "float32"]
    print(f"forward+backward, training mode, x: {shape}, median of {args.repeats} runs")
    print(f"{'variant':<14}" + "".join(f"{d + ' (ms)':>16}" for d in dtypes))
    results = {d: benchmark_forward_backward(shape, args.repeats, np.dtype(d)) for d in dtypes}
    for name in results[dtypes[0]]:
        print(f"{name:<14}" + "".join(f"{results[d][name] * 1e3:>16.2f}" for d in dtypes))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
