"""Benchmark the grading command against plain execution, side by side in one run.

For N copies of the good example of notebook 01 it prints: the time to execute that notebook plainly in a fresh
kernel (per notebook, nbclient with the python3 kernel, as ``./course bench`` does); the time ``./course grade``
takes for the N submissions with one worker and with all cores (the whole command, its grading phase, and per
submission from the grading phase, which leaves out what a run does once: the sandbox's self-test, registering the
assignment in the gradebook, the CSV); the ratio grading / plain; the speed-up of all cores over one worker, and
over one worker confined to one core (``--one-core``, on by default: the whole command, its kernels included, on
core 0). One worker is not a one-core baseline: it starts its next kernel on the other core while the current
one runs, so it already uses part of the second core; and peak memory (the largest single
process, from ``wait4``, and every process of the command together, sampled every 0.2 s as proportional set
size). CPU seconds are the whole machine's busy time (/proc/stat, nice time included: the sandboxes run niced)
over the run, divided by N, against the same for one plain execution: the command's rusage misses most of the
sandboxed kernels' CPU time (2.0 s per submission of notebook 01 by rusage, 5.3 s by sampling every process), so
only the machine's counter sees all of it; run it on a quiet machine. With ``--before COMMIT`` the same
submissions are also graded by the course as it was at COMMIT (extracted with git archive), in the same run.

Usage: python -m tools.bench_grading [--submissions 8] [--plain 3] [--starts 3] [--before COMMIT] [--no-one-core]
(numbers are printed, not asserted).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tools.paths import ROOT
from autograder import sandbox
from tools.roundtrip import copy_repository, extract_commit

ASSIGNMENT = "01-learning-rate"


@dataclass
class Run:
    label: str
    workers: int
    cores: int  # the cores the command may use
    command: float  # seconds, the whole command
    grading: float  # seconds, from the first submission handed out to the last merged
    cpu: float  # busy CPU seconds of the whole machine during the command
    largest_mb: float  # the largest single process of the command (ru_maxrss)
    total_mb: float  # every process of the command together (PSS), sampled


def _tree_pss_mb(pid: int) -> float:
    """Memory of ``pid`` and all its descendants, in MB: proportional set sizes, so that pages forked processes
    share are counted once."""
    total = 0
    for current in [pid, *sandbox.descendants(pid)]:
        try:
            rollup = Path(f"/proc/{current}/smaps_rollup").read_text()
            total += int(next(line.split()[1] for line in rollup.splitlines() if line.startswith("Pss:"))) * 1024
        except (OSError, ValueError, IndexError, StopIteration):
            pass
    return total / 2 ** 20


def measured(command: list[str], cwd: Path, cores: set[int] | None = None) -> tuple[float, str, float, float, float]:
    """Run ``command`` (on ``cores`` only, when given: its affinity, which its processes inherit); returns
    (seconds, its output, the machine's busy CPU seconds meanwhile, largest process in MB, all its processes in MB)."""
    output = tempfile.TemporaryFile(mode="w+")
    start, busy = time.perf_counter(), machine_busy_seconds()
    confine = (lambda: os.sched_setaffinity(0, cores)) if cores else None
    process = subprocess.Popen(command, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, preexec_fn=confine)
    peak, stop = [0.0], threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            peak[0] = max(peak[0], _tree_pss_mb(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    sampler.join()
    output.seek(0)
    text = output.read()
    if process.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command)} failed:\n{text[-3000:]}")
    return seconds, text, machine_busy_seconds() - busy, usage.ru_maxrss / 1024, peak[0]


def grade(label: str, course: Path, submissions: Path, workers: int, one_core: bool = False) -> Run:
    """``./course grade`` of ``submissions`` with ``workers``, on every core of this process or on the first one."""
    allowed = sorted(os.sched_getaffinity(0))
    cores = {allowed[0]} if one_core else None
    seconds, text, cpu, largest, total = measured(
        [sys.executable, "-m", "autograder.grade", str(submissions), "--workers", str(workers), "--no-feedback",
         "--csv", str(course / "autograder" / f"grades-{workers}.csv")], course, cores)
    progress = re.findall(r"^\[(\d+)/(\d+)\].*elapsed ([\d.]+) s", text, flags=re.M)
    if not progress or progress[-1][0] != progress[-1][1]:
        raise SystemExit(f"bench: no progress lines from {label}:\n{text[-3000:]}")
    return Run(label, workers, 1 if one_core else len(allowed), seconds, float(progress[-1][2]), cpu, largest, total)


def machine_busy_seconds() -> float:
    """CPU seconds the machine has spent busy since boot: every core's user, nice, system, irq, softirq and steal
    time (/proc/stat), idle and I/O wait left out."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def plain_seconds(notebook: Path, runs: int) -> tuple[list[float], list[float], float]:
    """Seconds and the machine's busy CPU seconds to execute ``notebook`` top to bottom in a fresh
    python3 kernel, each run; the kernel's peak MB."""
    from tools import nbexec

    times, cpu, memory = [], [], 0.0
    for _ in range(runs):
        start, used = time.perf_counter(), machine_busy_seconds()
        nb = nbexec.execute(notebook, probe_memory=True)
        times.append(time.perf_counter() - start)
        cpu.append(machine_busy_seconds() - used)
        memory = max(memory, nbexec.peak_memory_mb(nb))
    return times, cpu, memory


def kernel_start_seconds(kernel_name: str, starts: int) -> float:
    """Median seconds to start a kernel, run one cell and shut it down."""
    from jupyter_client.manager import KernelManager

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
    shutil.rmtree(runtime, ignore_errors=True)
    return sorted(times)[len(times) // 2]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=8, help="copies of the good example")
    parser.add_argument("--plain", type=int, default=3, help="plain executions of the notebook")
    parser.add_argument("--starts", type=int, default=3, help="kernel starts timed, plain and sandboxed (0: none)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="the 'all cores' run")
    parser.add_argument("--before", help="a commit to compare with (the same submissions, the same worker counts)")
    parser.add_argument("--no-one-core", dest="one_core", action="store_false",
                        help="leave out the run of one worker confined to one core")
    args = parser.parse_args(argv)
    n = args.submissions
    if args.starts:
        sandbox.install_kernelspec()
        plain = kernel_start_seconds("python3", args.starts)
        boxed = kernel_start_seconds(sandbox.KERNEL_NAME, args.starts)
        print(f"kernel start + import + shutdown: plain {plain:.2f} s, sandboxed {boxed:.2f} s, "
              f"overhead {boxed - plain:+.2f} s per kernel")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        course = copy_repository(Path(tmp) / "course")
        examples = Path(tmp) / "examples"
        subprocess.run([sys.executable, "-m", "autograder.examples", "build", str(examples)], cwd=course,
                       check=True, capture_output=True)
        submissions = Path(tmp) / "submissions"
        for i in range(n):
            shutil.copytree(examples / "good", submissions / f"student{i:03d}")
        notebook = examples / "good" / f"{ASSIGNMENT}.ipynb"
        old = None
        if args.before:
            old = extract_commit(args.before, Path(tmp) / "before")
        times, cpu, kernel_mb = plain_seconds(notebook, args.plain)
        plan = [(1, True)] if args.one_core else []
        for workers, one_core in plan + [(w, False) for w in dict.fromkeys([1, args.workers])]:
            runs.append(grade("now", course, submissions, workers, one_core))
            if old is not None:
                runs.append(grade(f"at {args.before}", old, submissions, workers, one_core))
        more, more_cpu, _ = plain_seconds(notebook, args.plain)  # again after grading: the load may have changed
        times, cpu = times + more, cpu + more_cpu
    plain, plain_cpu = statistics.median(times), statistics.median(cpu)
    print(f"plain execution of {ASSIGNMENT} (the good example, a fresh python3 kernel each time, "
          f"{len(times)} runs): median {plain:.2f} s (from {min(times):.2f} to {max(times):.2f} s), "
          f"{plain_cpu:.2f} CPU s, kernel peak {kernel_mb:.0f} MB")
    print(f"grading {n} copies of it (./course grade --no-feedback); per submission = grading phase / {n}; "
          f"set-up = the rest of the command (self-test, gradebook, CSV), once per run; CPU / sub. = the machine's "
          f"busy CPU seconds during the whole command / {n}, against plain execution's:")
    print("speed-up = grading time of one worker on every core / this run's; vs 1 core = of one worker confined to "
          "one core / this run's")
    print(f"{'':<16}{'workers':>8}{'cores':>6}{'command':>10}{'set-up':>9}{'grading':>10}{'per sub.':>10}{'/ plain':>9}"
          f"{'speed-up':>10}{'vs 1 core':>10}{'CPU/sub.':>10}{'/ plain':>9}{'largest':>10}{'all procs':>11}")
    for run in runs:
        one = next(r for r in runs if r.label == run.label and r.workers == 1 and r.cores > 1)
        single = next((r for r in runs if r.label == run.label and r.cores == 1), None)
        speed = f"{one.grading / run.grading:.2f}x" if run.workers > 1 else "-"
        versus = f"{single.grading / run.grading:.2f}x" if single and run is not single else "-"
        print(f"{run.label:<16}{run.workers:>8}{run.cores:>6}{run.command:>9.1f}s{run.command - run.grading:>8.1f}s"
              f"{run.grading:>9.1f}s{run.grading / n:>9.2f}s{run.grading / n / plain:>8.2f}x{speed:>10}{versus:>10}"
              f"{run.cpu / n:>9.2f}s{run.cpu / n / plain_cpu:>8.2f}x"
              f"{run.largest_mb:>7.0f} MB{run.total_mb:>8.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
