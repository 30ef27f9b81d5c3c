"""Benchmark the grading command: N copies of the good example of notebook 01, graded with one worker and with
all cores (speed-up), and the sandbox's overhead per kernel start (sandboxed versus plain ipykernel).

Usage: python -m tools.bench_grading [--submissions 50] [--starts 5] [--before COMMIT]
(numbers are printed, not asserted). With ``--before``, the same submissions are also graded, with one worker, by
the course as it was at COMMIT (extracted with git archive), and both times are printed side by side.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jupyter_client.manager import KernelManager

from tools.paths import ROOT
from tools.roundtrip import copy_repository


def grade_seconds(course: Path, submissions: Path, workers: int) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "autograder.grade", str(submissions), "--workers", str(workers),
                    "--no-feedback", "--csv", str(course / "autograder" / f"grades-{workers}.csv")],
                   cwd=course, check=True, capture_output=True)
    return time.perf_counter() - start


def kernel_start_seconds(kernel_name: str, starts: int) -> float:
    """Median seconds to start a kernel, run one cell and shut it down."""
    times = []
    runtime = Path(tempfile.mkdtemp(prefix="course-bench-runtime-"))
    if os.geteuid() == 0:
        os.chmod(runtime, 0o1777)
    os.environ["JUPYTER_RUNTIME_DIR"] = str(runtime)
    os.environ["JUPYTER_PATH"] = str(ROOT / "autograder" / "jupyter")
    for _ in range(starts):
        start = time.perf_counter()
        manager = KernelManager(kernel_name=kernel_name, transport="ipc", ip=str(runtime / "kernel"))
        manager.start_kernel(cwd=tempfile.mkdtemp(prefix="course-bench-cwd-"))
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=120)
        client.execute_interactive("import numpy, helpers.checks", timeout=60)
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=50)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--before", help="a commit to compare with (one worker, same submissions)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "autograder"))
    import sandbox

    sandbox.install_kernelspec()
    plain = kernel_start_seconds("python3", args.starts)
    boxed = kernel_start_seconds(sandbox.KERNEL_NAME, args.starts)
    print(f"kernel start + import + shutdown: plain {plain:.2f} s, sandboxed {boxed:.2f} s, "
          f"overhead {boxed - plain:+.2f} s per submission")
    with tempfile.TemporaryDirectory() as tmp:
        course = copy_repository(Path(tmp) / "course")
        examples = Path(tmp) / "examples"
        subprocess.run([sys.executable, "-m", "autograder.examples", "build", str(examples)], cwd=course,
                       check=True, capture_output=True)
        submissions = Path(tmp) / "submissions"
        for i in range(args.submissions):
            shutil.copytree(examples / "good", submissions / f"student{i:03d}")
        one = grade_seconds(course, submissions, 1)
        if args.before:
            old = Path(tmp) / "before"
            old.mkdir()
            archive = subprocess.run(["git", "archive", args.before], cwd=ROOT, check=True, capture_output=True)
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
            before = grade_seconds(old, submissions, 1)
            print(f"1 worker, {args.submissions} submissions: at {args.before} {before:.1f} s "
                  f"({before / args.submissions:.2f} s each), now {one:.1f} s ({one / args.submissions:.2f} s each); "
                  f"now / before = {one / before:.2f}")
        cores = os.cpu_count() or 1
        many = grade_seconds(course, submissions, cores)
    print(f"{args.submissions} submissions of 01-learning-rate: 1 worker {one:.1f} s ({one / args.submissions:.2f} s "
          f"each), {cores} workers {many:.1f} s; speed-up {one / many:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
