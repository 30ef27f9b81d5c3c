"""Benchmark: execute each solution notebook in a fresh kernel; print wall time and peak memory per notebook.

Usage: python -m tools.bench [assignment ...]   (numbers are printed, not asserted; the course's budgets are
at most 30 s and 1 GB per notebook, 90 s for the whole course, on a 2-core machine.)
"""
from __future__ import annotations

import sys
import time

from tools import nbexec
from tools.paths import assignments, solution_notebook


def bench_notebook(assignment: str) -> tuple[float, float]:
    """(wall seconds, kernel peak RSS in MB) of one top-to-bottom run of the solution notebook."""
    start = time.perf_counter()
    nb = nbexec.execute(solution_notebook(assignment), timeout=600, probe_memory=True)
    seconds = time.perf_counter() - start
    return seconds, nbexec.peak_memory_mb(nb)


def main(argv: list[str]) -> int:
    names = argv or assignments()
    print(f"{'notebook':<34}{'wall time (s)':>14}{'peak memory (MB)':>18}")
    total = 0.0
    peak = 0.0
    for name in names:
        seconds, mb = bench_notebook(name)
        total += seconds
        peak = max(peak, mb)
        print(f"{name:<34}{seconds:>14.1f}{mb:>18.0f}", flush=True)
    print(f"{'total':<34}{total:>14.1f}{peak:>18.0f}  (memory: largest single notebook)")
    extra = []
    try:
        from tools import bench_normalization  # forward+backward timings of the reference modules
        extra.append(bench_normalization)
    except ImportError:
        pass
    for module in extra:
        print()
        module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
