"""Measure how much a hostile submission slows an honest one graded beside it: the good example of notebook 01
graded alone, then in a batch of two workers beside a hostile example (busy child processes, a CPU burner, a fork
bomb), with ``./course grade``'s command (``python -m autograder.grade``) in a scratch copy of the course.

Usage: python -m tools.bench_hostile [--hostile cpu-hog-children fork-bomb ...] [--repeat 2] [--before COMMIT]
       python -m tools.bench_hostile --quick [--repeat 3]

Prints the honest submission's grading time alone and beside each hostile one, and their ratio (the requirement:
at most 1.5x). Numbers are printed, not asserted: the machine's other load moves them; run it twice. With
``--before``, the same is measured with the course as it was at COMMIT (extracted with git archive).
``--quick`` measures the sandbox alone (seconds, not minutes): a fixed CPU-bound loop in one sandbox, alone and
beside a sandbox whose four child processes spin, with the sandboxes' core and cgroup as grading gives them
(worker 0 and worker 1) and without them.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.paths import ROOT
from tools.roundtrip import copy_repository, extract_commit

HONEST = "good"


def honest_seconds(course: Path, examples: Path, hostile: str | None, scratch: Path) -> float:
    """Seconds the honest submission took to grade (its own line of the progress output)."""
    batch = Path(tempfile.mkdtemp(prefix="batch-", dir=scratch))
    for name in [HONEST] + ([f"hostile-{hostile}"] if hostile else []):
        shutil.copytree(examples / name, batch / name)
    run = subprocess.run([sys.executable, "-m", "autograder.grade", str(batch), "--workers", "2", "--no-feedback",
                          "--csv", str(batch / "grades.csv"), "--files-csv", str(batch / "files.csv")],
                         cwd=course, capture_output=True, text=True)
    found = re.search(rf"\] {HONEST} \S+: (\S+) points? autograded \((\w+), ([\d.]+) s\)", run.stdout)
    if run.returncode != 0 or not found:
        raise SystemExit(f"bench_hostile: grading failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    return float(found.group(3))


def measure(course: Path, examples: Path, hostiles: list[str], repeat: int, scratch: Path, label: str) -> None:
    for attempt in range(1, repeat + 1):
        alone = honest_seconds(course, examples, None, scratch)
        line = [f"{label} run {attempt}: honest alone {alone:.1f} s"]
        for hostile in hostiles:
            beside = honest_seconds(course, examples, hostile, scratch)
            line.append(f"beside {hostile} {beside:.1f} s ({beside / alone:.2f}x)")
        print("; ".join(line), flush=True)


QUICK_WORK = "import time\nt = time.perf_counter()\ns = 0\nfor i in range(15_000_000):\n    s += i\n" \
             "print(time.perf_counter() - t)"
QUICK_HOG = "import os, time\nfor _ in range(4):\n    if os.fork() == 0:\n        while True:\n            pass\n" \
            "time.sleep(600)"


def quick(repeat: int) -> None:
    """The honest loop's seconds alone and beside the hog, with and without the sandbox's core and cgroup."""
    sys.path.insert(0, str(ROOT))
    from autograder import sandbox

    python = str(Path(sys.prefix) / "bin" / "python")

    def start(code: str, slot: int, isolate: bool, scratch: Path):
        folder = Path(tempfile.mkdtemp(dir=scratch))
        (folder / "runtime").mkdir()
        uid = sandbox.free_uid() if os.geteuid() == 0 else None
        command, fds = sandbox.bwrap_command([python, "-c", code], None, folder / "cwd", folder / "runtime", "", uid)
        group = sandbox.Cgroup.create(64) if isolate else None
        allowed = sorted(os.sched_getaffinity(0))
        core = allowed[slot % len(allowed)] if isolate else None
        process = subprocess.Popen(command, pass_fds=fds, stdout=subprocess.PIPE, text=True, preexec_fn=lambda: (
            sandbox._set_limits(2048, 64, 64, 256, 900, core, group)))
        for descriptor in fds:
            os.close(descriptor)
        return process, group

    with tempfile.TemporaryDirectory() as tmp:
        for attempt in range(1, repeat + 1):
            for isolate in (True, False):
                honest, group = start(QUICK_WORK, 0, isolate, Path(tmp))
                alone = float(honest.communicate()[0])
                group and group.remove()
                hog, hog_group = start(QUICK_HOG, 1, isolate, Path(tmp))
                time.sleep(1)
                honest, group = start(QUICK_WORK, 0, isolate, Path(tmp))
                beside = float(honest.communicate()[0])
                group and group.remove()
                hog.kill()
                hog.wait()
                hog_group and hog_group.remove()
                print(f"run {attempt}, {'one core per sandbox' if isolate else 'no core, no cgroup   '}: honest "
                      f"alone {alone:.2f} s, beside 4 busy children {beside:.2f} s ({beside / alone:.2f}x)", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hostile", nargs="+", default=["cpu-hog-children", "cpu-burner", "fork-bomb"],
                        help="hostile examples of autograder/examples.py (without the 'hostile-' prefix)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--before", help="also measure the course as it was at this commit")
    parser.add_argument("--quick", action="store_true", help="the sandbox alone, with and without its core")
    args = parser.parse_args(argv)
    if args.quick:
        quick(args.repeat)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        course = copy_repository(scratch / "course")
        examples = scratch / "examples"
        subprocess.run([sys.executable, "-m", "autograder.examples", "build", str(examples)], cwd=course,
                       check=True, capture_output=True)
        measure(course, examples, args.hostile, args.repeat, scratch, "now")
        if args.before:
            old = extract_commit(args.before, scratch / "before")
            measure(old, examples, args.hostile, args.repeat, scratch, f"at {args.before}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
