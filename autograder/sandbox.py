"""The grading sandbox: every kernel that runs a student's submission starts inside it.

nbgrader (``Execute.kernel_name = "course-sandbox"``, set in autograder/nbgrader_config.py) starts the kernelspec
written by ``install_kernelspec``; its command is this file, ``python autograder/sandbox.py kernel -f <conn>``.
That launcher starts ipykernel under bubblewrap (Debian's ``bwrap``) with:

- a read-only view of only what the kernel needs: the system's /usr, the Python installation, the virtual
  environment and the ``helpers`` package (with the assignment's reference answers removed, see ``MASKS``: the
  masked modules are laid over the originals from memory and every ``__pycache__`` is hidden);
  no view of solutions/, the gradebook, submitted work or anything else of the repository or home folders;
- no network (a new network namespace; the kernel talks to nbgrader over Unix sockets, ``transport = "ipc"``);
- an empty working and home folder, /tmp and /dev/shm, each memory of a fixed size (``disk_mb``), discarded
  afterwards: nothing the kernel writes reaches the host's disk, and the launcher itself writes nothing there;
- an isolated Python start (``python -I``: no working folder on sys.path, no PYTHON* variables);
- writes confined by Landlock (``CONFINE``, applied before ipykernel starts, inherited by every process of the
  submission): files, folders, links and renames only beneath the working folder, /tmp and /dev/shm (the bounded
  memory above); in the kernel's socket folder, which is the host's, only the kernel's own sockets; in /dev only
  writes to the existing devices. Where the host's kernel has no Landlock the launcher says so and the kernel
  runs without it (the README says what that leaves open);
- one CPU core: the sandbox is pinned to core ``COURSE_SANDBOX_CPU`` (an index modulo the cores this process may
  use; the grading command gives each worker its own core, or, with fewer workers than cores, alternates them),
  and a seccomp filter makes ``sched_setaffinity`` fail inside, so no process of the submission can leave it;
  where the launcher may create cgroups (root), the sandbox also gets a cgroup of its own with a CPU quota of one
  core, ``pids.max`` and, where the memory controller exists, the memory limit for all of its processes together
  (shared memory and memfd files included, which the address-space limit misses), removed with everything in it
  afterwards;
- a lower priority (nice 10) than the grader's own processes: the grading of one submission (its tests, nbgrader's
  steps) goes first on a core where another submission's kernel is busy;
- limits: address space (``--memory-mb``, default 2048), processes (``max_processes``, per sandbox: as root each
  kernel runs as an unprivileged uid of its own, as a normal user in a user namespace of its own, where the
  kernel counts RLIMIT_NPROC apart from the user's other processes), file size, open files, CPU seconds per
  process, and the wall time of the whole notebook (``--wall-seconds``); CPU time per cell across all of the
  sandbox's processes is bounded by the execute step (autograder/execute.py, with ``cpu_seconds`` below).

When the sandbox cannot start, the kernel does not start: grading fails with the reason, never unsandboxed.
Everything the grader leaves in temporary folders is named after its owner process (``owned_tempdir``) and
removed by ``sweep`` once that process is gone, also after a kill -9.
"""
from __future__ import annotations

import argparse
import ast
import functools
import json
import os
import platform
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

KERNEL_NAME = "course-sandbox"
ROOT = Path(__file__).resolve().parent.parent
KERNELS = ROOT / "autograder" / "jupyter"  # on JUPYTER_PATH while grading (set in nbgrader_config.py)
UID_BASE, UID_SPAN = 200_000, 100_000  # as root, each kernel runs as a uid of its own from this unused range
DEFAULTS = {"memory_mb": 2048, "max_processes": 64, "wall_seconds": 900, "file_mb": 64, "open_files": 256,
            "disk_mb": 128, "cpu_seconds": 900}
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Where the kernel's private socket folder (a folder of the host's) appears inside the sandbox: outside /tmp, the
# working folder and /dev/shm, so that Landlock lets the kernel make only sockets there (``CONFINE``).
SOCKETS = Path("/run/course-sockets")
OWNED_PREFIXES = ("course-sandbox-", "course-kernel-", "course-grading-", "course-gradebook-")

# Reference answers guarded while an assignment is graded: module -> functions that raise when a notebook cell calls
# them (other helpers still may). A submission that delegates an exercise to them fails it, with this message.
MASKS = {
    "01-learning-rate": {"helpers/gradient_descent.py": ["gradient_descent", "classify_learning_rate",
                                                          "max_stable_learning_rate", "best_learning_rate",
                                                          "condition_number", "steps_to_converge"]},
    "02-input-normalization": {"helpers/input_normalization.py": [
        "fit_standardizer", "standardize", "standardize_split", "least_squares_hessian", "steps_to_target_loss",
        "fit_whitening", "whiten"]},
    "03-variance-propagation": {"helpers/initializers.py": ["init_std", "xavier_uniform"],
                                "helpers/propagation.py": ["mlp_forward_stats", "mlp_backward_stats",
                                                           "predicted_pre_activation_std"]},
    "05-training": {"helpers/network.py": ["make_mlp", "evaluate", "update_to_data_ratio"]},
    "04-normalization-modules": {"helpers/normalization.py": [
        "support_axes", "moments", "normalize_forward", "normalize_backward", "compensate_forward",
        "compensate_backward", "group_norm_forward", "batch_norm_forward", "update_running_stats",
        "fold_batchnorm_into_linear"]},
    "06-scale-invariance": {"helpers/scale_invariance.py": [
        "normalized_linear_backward", "effective_learning_rate", "equilibrium_angular_update", "rms_norm_forward",
        "rms_norm_backward", "residual_stream"]},
}
MASK_MESSAGE = "reference implementations are not available while grading: write the exercise yourself"


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot start here; the message says why and what to install."""


def bwrap_path() -> str:
    path = shutil.which("bwrap")
    if not path:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed, so submissions cannot be graded safely. "
            "Install it with: sudo apt-get install bubblewrap (Debian/Ubuntu) or your system's package.")
    return path


def masked_source(source: str, functions: list[str]) -> str:
    """``source`` with the body of each named top-level function removed: it keeps its signature and docstring
    and raises ``RuntimeError(MASK_MESSAGE)``. Nothing of the reference answer stays in the sandbox's view, so
    neither a notebook cell nor a helper that would call it can run it."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    for node in sorted((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in functions),
                       key=lambda n: n.lineno, reverse=True):
        first = node.body[0]
        docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
        start = first.end_lineno if docstring else first.lineno - 1
        indent = " " * first.col_offset
        lines[start:node.end_lineno] = [f"{indent}raise RuntimeError({MASK_MESSAGE!r})\n"]
    return "".join(lines)


@functools.lru_cache(maxsize=1)
def helpers_location() -> Path:
    """The folder of the ``helpers`` package the kernel's Python imports (from its environment, not the cwd)."""
    probe = subprocess.run([str(Path(sys.prefix) / "bin" / "python"), "-I", "-c",
                            "import helpers, os; print(os.path.dirname(helpers.__file__))"],
                           cwd="/", capture_output=True, text=True)
    if probe.returncode != 0:
        raise SandboxUnavailable("the course's helpers package is not installed in this environment "
                                 "(run ./course setup)")
    return Path(probe.stdout.strip()).resolve()


def masked_files(assignment: str) -> dict[Path, bytes]:
    """Path in the helpers package (as the kernel sees it) -> the masked module's text, for the assignment."""
    location = helpers_location()
    masked = {}
    for relative, functions in MASKS.get(assignment, {}).items():
        target = location / Path(relative).relative_to("helpers")
        masked[target] = masked_source(target.read_text(), functions).encode()
    return masked


def _ancestors(path: Path) -> list[Path]:
    return [p for p in reversed(path.parents) if p != Path("/")]


def free_uid() -> int:
    """A uid from the sandbox range that no running process uses."""
    import random

    used = set()
    for entry in Path("/proc").iterdir():
        try:
            used.add(entry.stat().st_uid) if entry.name.isdigit() else None
        except OSError:
            pass
    while True:
        uid = UID_BASE + random.randrange(UID_SPAN)
        if uid not in used:
            return uid


# --- processes: who owns what, CPU time of a process tree ----------------------------------------------------------

def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 is the state), or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def process_tag(pid: int | None = None) -> str:
    """``<pid>-<start time>``: names a process unambiguously (a pid may be reused, its start time not)."""
    pid = os.getpid() if pid is None else pid
    fields = _stat(pid)
    return f"{pid}-{fields[19] if fields else 0}"


def _tag_alive(tag: str) -> bool:
    pid, _, start = tag.partition("-")
    return pid.isdigit() and process_tag(int(pid)) == tag


def remove_tree(path: Path | str) -> None:
    """Remove a folder and everything in it, whatever it holds: Python's rmtree recurses once per level and stops
    at folders without permissions; then coreutils (iterative) makes every folder the owner's and removes it."""
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return
    except (OSError, RecursionError):
        subprocess.run(["chmod", "-R", "u+rwx", "--", str(path)], capture_output=True)
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], capture_output=True)


def owned_tempdir(prefix: str) -> Path:
    """A private temporary folder whose name says which process owns it (``sweep`` removes it once it is gone)."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{process_tag()}-"))


def _owner_tag(name: str, prefix: str) -> str | None:
    """The owner's tag in ``<prefix><pid>-<start time>[-<suffix>]``, or None for any other name."""
    rest = name[len(prefix):].split("-")
    return f"{rest[0]}-{rest[1]}" if len(rest) >= 2 and rest[0].isdigit() and rest[1].isdigit() else None


def sweep(folder: Path | None = None) -> list[Path]:
    """Remove the grader's temporary folders (in ``folder``, default the temporary folder) and sandbox cgroups
    whose owner process is gone, for example after a kill -9; returns what was removed."""
    removed = []
    folder = Path(folder or tempfile.gettempdir())
    for prefix in OWNED_PREFIXES:
        for path in folder.glob(f"{prefix}*"):
            tag = _owner_tag(path.name, prefix)
            if tag and not _tag_alive(tag) and path.is_dir() and not path.is_symlink():
                remove_tree(path)
                removed.append(path)
    for group in Cgroup.stale():
        group.remove()
        removed.append(group.folders[0])
    return removed


def stop_with_parent(grace: float = 30.0) -> None:
    """In nbgrader: when the process that started it is gone (a grading worker killed with kill -9), stop as if
    interrupted (nbgrader removes the failed result, the kernel is shut down, the sweep runs at exit); if that
    does not end it within ``grace`` seconds, exit (the launcher then stops its kernel by itself)."""
    import _thread
    import threading

    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1)
        _thread.interrupt_main()
        time.sleep(grace)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="course-parent-watch").start()


def process_tree() -> dict[int, list[int]]:
    """parent pid -> child pids, of every process."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def descendants(pid: int, tree: dict[int, list[int]] | None = None) -> list[int]:
    """``pid``'s descendants, nearest first."""
    tree = process_tree() if tree is None else tree
    found, queue = [], list(tree.get(pid, []))
    while queue:
        child = queue.pop(0)
        found.append(child)
        queue += tree.get(child, [])
    return found


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(launcher: int) -> float:
    """CPU seconds used by the sandbox of the launcher process ``launcher``: every process in it, those that ended
    included (their time is in their parent's, as the pid namespace's init reaps every orphan)."""
    total = 0
    for pid in [launcher, *descendants(launcher)]:
        fields = _stat(pid)
        if fields:
            total += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return total / TICKS


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _is_kernel(cmdline: bytes) -> bool:
    """Python running ipykernel (not bubblewrap, whose own command line names it too)."""
    argv = cmdline.split(b"\0")
    return os.path.basename(argv[0]).startswith(b"python") and b"ipykernel_launcher" in argv


def kernel_process(launcher: int) -> tuple[int | None, list[int]]:
    """The sandbox's ipykernel process and the other processes in the sandbox below the launcher's own
    (bubblewrap, its init), which are what the student's code started."""
    tree = process_tree()
    below = descendants(launcher, tree)
    kernel = next((pid for pid in below if _is_kernel(_cmdline(pid))), None)
    if kernel is None:
        return None, []
    keep = {kernel}
    for pid in below:  # the kernel's ancestors: bubblewrap and the namespace's init
        if kernel in descendants(pid, tree):
            keep.add(pid)
    return kernel, [pid for pid in below if pid not in keep]


def stop_cell(launcher: int) -> int:
    """Interrupt the sandbox's kernel (SIGINT: KeyboardInterrupt in the running cell) and kill every other process
    the submission started; returns how many were killed."""
    kernel, others = kernel_process(launcher)
    for pid in others:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if kernel is not None:
        try:
            os.kill(kernel, signal.SIGINT)
        except OSError:
            pass
    return len(others)


def kill_kernel(launcher: int) -> None:
    kernel, others = kernel_process(launcher)
    for pid in [*others, *([kernel] if kernel else [])]:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


# --- one core per sandbox ----------------------------------------------------------------------------------------

def sandbox_core() -> int:
    """The core this sandbox runs on: ``COURSE_SANDBOX_CPU`` (set by the grading command; else the launcher's pid),
    modulo the cores this process may use."""
    allowed = sorted(os.sched_getaffinity(0))
    slot = os.environ.get("COURSE_SANDBOX_CPU", "")
    index = int(slot) if slot.isdigit() else os.getpid()
    return allowed[index % len(allowed)]


# (audit arch, sched_setaffinity's number, whether x32 numbers exist) per machine
SECCOMP_ARCHES = {"x86_64": (0xC000003E, 203, True), "aarch64": (0xC00000B7, 122, False)}


def seccomp_program() -> bytes | None:
    """A classic BPF seccomp filter for bwrap's ``--seccomp``: ``sched_setaffinity`` fails with EPERM, and so does
    every system call of another ABI (i386, x32) that could reach it by another number; all else is allowed.
    None on a machine not listed in SECCOMP_ARCHES."""
    if platform.machine() not in SECCOMP_ARCHES:
        return None
    arch, number, x32 = SECCOMP_ARCHES[platform.machine()]
    load, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_JMP|JGE|K, BPF_RET|K
    allow, eperm = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    program = [(load, 0, 0, 4),  # seccomp_data.arch
               (jeq, 0, 4, arch),  # another ABI: EPERM
               (load, 0, 0, 0),  # seccomp_data.nr
               (jge, 2, 0, 0x40000000 if x32 else 0xFFFFFFFF),  # x32's numbers: EPERM
               (jeq, 1, 0, number),
               (ret, 0, 0, allow),
               (ret, 0, 0, eperm)]
    return b"".join(struct.pack("HBBI", *instruction) for instruction in program)


def _memfd(name: str, data: bytes) -> int:
    descriptor = os.memfd_create(name, 0)  # not close-on-exec: bwrap reads it
    os.write(descriptor, data)
    os.lseek(descriptor, 0, os.SEEK_SET)
    return descriptor


# --- cgroups: a CPU quota of one core and a process limit, where the launcher may create them ----------------------

def _controllers(folder: Path) -> list[str]:
    try:
        return (folder / "cgroup.controllers").read_text().split()
    except OSError:
        return []


class Cgroup:
    """A cgroup of the sandbox's own (cgroup v1 ``cpu``, ``cpuacct`` and ``pids`` hierarchies, or cgroup v2 with
    those controllers enabled at the top): CPU quota of one core, ``pids.max``. ``create`` returns None where
    cgroups cannot be created (a normal user, a container); affinity and rlimits then hold on their own."""

    PREFIX = "course-sandbox-"

    def __init__(self, folders: list[Path]):
        self.folders = folders

    @staticmethod
    def hierarchies() -> list[Path]:
        if (CGROUP_ROOT / "cgroup.controllers").exists():  # cgroup v2 mounted at the top
            enabled = (CGROUP_ROOT / "cgroup.subtree_control").read_text().split()
            return [CGROUP_ROOT] if {"cpu", "pids"} <= set(enabled) else []
        found = []
        for name in ("cpu", "cpuacct", "pids"):
            path = (CGROUP_ROOT / name).resolve()  # cpu and cpuacct are often one hierarchy
            if (path / "cgroup.procs").exists() and path not in found:
                found.append(path)
        memory = (CGROUP_ROOT / "memory").resolve()
        if len(found) >= 2 and (memory / "cgroup.procs").exists() and memory not in found:
            found.append(memory)  # where it exists: memory the address-space limit misses (memfd, shared memory)
        return found if len(found) >= 2 else []

    @classmethod
    def create(cls, max_processes: int, memory_mb: int | None = None) -> "Cgroup | None":
        try:
            hierarchies = cls.hierarchies()
        except OSError:
            return None
        if not hierarchies or os.geteuid() != 0:
            return None
        group = cls([])
        name = f"{cls.PREFIX}{process_tag()}"
        try:
            for hierarchy in hierarchies:
                (hierarchy / name).mkdir()
                group.folders.append(hierarchy / name)
            for folder in group.folders:
                if (folder / "cpu.max").exists():
                    (folder / "cpu.max").write_text("100000 100000")
                if (folder / "cpu.cfs_quota_us").exists():
                    (folder / "cpu.cfs_period_us").write_text("100000")
                    (folder / "cpu.cfs_quota_us").write_text("100000")
                if (folder / "pids.max").exists():
                    (folder / "pids.max").write_text(str(max_processes))
                if memory_mb and (folder / "memory.max").exists() and "memory" in _controllers(folder):
                    (folder / "memory.max").write_text(str(memory_mb << 20))
                if memory_mb and (folder / "memory.limit_in_bytes").exists():
                    (folder / "memory.limit_in_bytes").write_text(str(memory_mb << 20))
        except OSError:
            group.remove()
            return None
        return group

    def enter(self) -> None:
        """Move the calling process into the cgroup (in the child, before it runs bwrap)."""
        for folder in self.folders:
            (folder / "cgroup.procs").write_text(str(os.getpid()))

    def processes(self) -> list[int]:
        pids = set()
        for folder in self.folders:
            try:
                pids |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
            except OSError:
                pass
        return sorted(pids)

    def remove(self) -> None:
        """Kill whatever still runs in it, then remove it."""
        for _ in range(50):
            pids = self.processes()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)
        for folder in self.folders:
            try:
                folder.rmdir()
            except OSError:
                pass

    @classmethod
    def stale(cls) -> list["Cgroup"]:
        """Sandbox cgroups whose launcher is gone (a kill -9)."""
        try:
            hierarchies = cls.hierarchies() if os.geteuid() == 0 else []
        except OSError:
            return []
        names = {p.name for h in hierarchies for p in h.glob(f"{cls.PREFIX}*")}
        tags = {n: _owner_tag(n, cls.PREFIX) for n in names}
        return [cls([h / n for h in hierarchies if (h / n).is_dir()]) for n in sorted(names)
                if tags[n] and not _tag_alive(tags[n])]


# --- the command ---------------------------------------------------------------------------------------------------

def bwrap_command(argv: list[str], connection: bytes | None, cwd: Path, runtime_dir: Path, assignment: str,
                  uid: int | None, disk_mb: int = 128,
                  max_processes: int = DEFAULTS["max_processes"]) -> tuple[list[str], list[int]]:
    """The bubblewrap command line that runs ``argv`` in the sandbox, and the descriptors to pass to it.

    Everything the kernel can write is memory of a fixed size, gone when it exits: the working folder ``cwd``
    (``disk_mb``), /tmp (``disk_mb``) and /dev/shm (16 MB); ``connection`` (the kernel's connection file) is
    visible read-only in ``cwd``. The masked helpers modules and the connection file come from memory: the
    launcher writes nothing to disk. As a normal user (``uid`` None) the sandbox is a user namespace of its own
    with the process limit set inside it.
    """
    python_prefix = Path(sys.base_prefix).resolve()
    venv = Path(sys.prefix)
    fds: list[int] = []
    command = [bwrap_path(), "--die-with-parent", "--new-session", "--unshare-net", "--unshare-pid",
               "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox", "--clearenv"]
    if uid is None:
        command += ["--unshare-user"]
    helpers = helpers_location()
    read_only = [Path("/usr"), python_prefix, venv, helpers]
    for name in ("lib", "lib64", "bin", "sbin"):
        if Path("/", name).is_symlink():
            command += ["--symlink", os.readlink(Path("/", name)), f"/{name}"]
        elif Path("/", name).exists():
            read_only.append(Path("/", name))
    size = str(disk_mb << 20)
    command += ["--proc", "/proc", "--dev", "/dev", "--size", str(16 << 20), "--tmpfs", "/dev/shm",
                "--perms", "1777", "--size", size, "--tmpfs", "/tmp"]
    etc = [Path(p) for p in ("/etc/ld.so.cache", "/etc/localtime", "/etc/fonts") if Path(p).exists()]
    made: set[Path] = set()
    for path in read_only + etc + [SOCKETS, cwd]:
        for parent in _ancestors(path):  # bubblewrap would create missing parents with mode 0700
            inside_bound = any(parent == p or p in parent.parents for p in read_only)
            if parent not in made and not inside_bound and parent != Path("/tmp"):
                command += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
    for path in read_only + etc:
        command += ["--ro-bind", str(path), str(path)]
    for cache in sorted(helpers.rglob("__pycache__")):  # compiled reference answers: hidden
        command += ["--perms", "0555", "--size", "4096", "--tmpfs", str(cache), "--remount-ro", str(cache)]
    for path, text in masked_files(assignment).items():
        fds.append(_memfd(path.name, text))
        command += ["--perms", "0444", "--ro-bind-data", str(fds[-1]), str(path)]
    command += ["--bind", str(runtime_dir), str(SOCKETS), "--perms", "1777", "--size", size, "--tmpfs", str(cwd)]
    if connection is not None:
        fds.append(_memfd("kernel.json", connection))
        command += ["--perms", "0444", "--ro-bind-data", str(fds[-1]), str(cwd / ".kernel.json")]
    program = seccomp_program()
    if program is not None:
        fds.append(_memfd("seccomp", program))
        command += ["--seccomp", str(fds[-1])]
    command += ["--chdir", str(cwd)]
    env = {"HOME": str(cwd), "TMPDIR": "/tmp", "MPLCONFIGDIR": str(cwd / ".matplotlib"), "PYTHONHASHSEED": "0",
           "PYTHONDONTWRITEBYTECODE": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "PATH": f"{venv}/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
           "JPY_PARENT_PID": "1"}  # ipykernel exits when the sandbox's first process (its parent) is gone
    for key, value in env.items():
        command += ["--setenv", key, value]
    if uid is not None:
        command += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--",
                    "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all"]
    else:  # RLIMIT_NPROC counts per user namespace (Linux 5.14): set inside, it counts this sandbox only
        command += ["--", "/usr/bin/prlimit", f"--nproc={max_processes}:{max_processes}", "--"]
    return command + argv, fds


NICE = 10  # the sandbox's priority below the grader's own processes (which grade every submission)

# Run inside the sandbox as ``python -I -c CONFINE <socket folder> <working folder> <program> <args...>``: restrict
# writes with Landlock (syscalls 444-446 on every architecture), then exec the program. Rights (Linux's
# include/uapi/linux/landlock.h): 1 WRITE_FILE, 4 REMOVE_DIR, 5 REMOVE_FILE, 6 MAKE_CHAR, 7 MAKE_DIR, 8 MAKE_REG,
# 9 MAKE_SOCK, 10 MAKE_FIFO, 11 MAKE_BLOCK, 12 MAKE_SYM, 13 REFER (ABI 2), 14 TRUNCATE (ABI 3); reading is not
# restricted.
CONFINE = r"""
import ctypes, os, struct, sys
sockets, cwd, program = sys.argv[1], sys.argv[2], sys.argv[3:]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
abi = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
if abi < 1:
    sys.stderr.write("course sandbox: no Landlock in this kernel: writes are not confined to the sandbox's "
                     "bounded folders\n")
else:
    bit = lambda *n: sum(1 << i for i in n)
    write = bit(1, 4, 5, 6, 7, 8, 9, 10, 11, 12) | (bit(13) if abi >= 2 else 0) | (bit(14) if abi >= 3 else 0)
    ruleset = libc.syscall(444, ctypes.c_char_p(struct.pack("=Q", write)), ctypes.c_size_t(8), ctypes.c_uint32(0))
    if ruleset < 0:
        raise SystemExit(f"course sandbox: Landlock ruleset: {os.strerror(ctypes.get_errno())}")
    rules = [(cwd, write), ("/tmp", write), ("/dev/shm", write), (sockets, bit(9)),
             ("/dev", bit(1) | (bit(14) if abi >= 3 else 0))]
    for path, allowed in rules:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        rule = ctypes.c_char_p(struct.pack("=Qi", allowed, fd))
        if libc.syscall(445, ruleset, ctypes.c_int(1), rule, ctypes.c_uint32(0)) < 0:
            raise SystemExit(f"course sandbox: Landlock rule for {path}: {os.strerror(ctypes.get_errno())}")
        os.close(fd)
    libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS, which Landlock requires of an unprivileged process
    if libc.syscall(446, ruleset, ctypes.c_uint32(0)) < 0:
        raise SystemExit(f"course sandbox: Landlock: {os.strerror(ctypes.get_errno())}")
    os.close(ruleset)
os.execv(program[0], program)
"""


def confined(argv: list[str], sockets: Path, cwd: Path) -> list[str]:
    """``argv`` started inside the sandbox through ``CONFINE``: writes confined by Landlock to ``cwd``, /tmp and
    /dev/shm, and to making sockets in ``sockets`` (paths inside the sandbox)."""
    return [str(Path(sys.prefix) / "bin" / "python"), "-I", "-c", CONFINE, str(sockets), str(cwd), *argv]


def _set_limits(memory_mb: int, max_processes: int, file_mb: int, open_files: int, cpu_seconds: int,
                core: int | None = None, cgroup: Cgroup | None = None) -> None:
    """rlimits, the core, the priority and the cgroup of the sandbox (in the child, before bwrap starts). As root the process
    limit counts per uid (the kernel runs as a uid of its own); as a normal user it is set inside the sandbox's
    user namespace instead (``bwrap_command``), since here it would count all of the user's processes."""
    import resource

    if cgroup is not None:
        cgroup.enter()
    if core is not None:
        os.sched_setaffinity(0, {core})
    os.nice(NICE)
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    if os.geteuid() == 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb << 20, file_mb << 20))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))  # CPU seconds of each process


def limits_from_env() -> dict:
    """Limits, from COURSE_SANDBOX_<NAME> environment variables where set (the grading command sets them)."""
    return {key: int(os.environ.get(f"COURSE_SANDBOX_{key.upper()}", value)) for key, value in DEFAULTS.items()}


ERROR_BYTES = 64 << 10  # of the sandbox's error output passed on to the grader's log; the rest is read and dropped


def forward_errors(stream) -> None:
    """Pass the sandbox's error output (bubblewrap's, the kernel's own) on to this process's, the first
    ``ERROR_BYTES`` of it with control characters escaped: a submission writes there too."""
    passed = 0
    for line in iter(stream.readline, b""):
        if passed < ERROR_BYTES:
            text = line[:ERROR_BYTES - passed].decode(errors="replace").rstrip("\n")
            sys.stderr.write("".join(c if c.isprintable() else repr(c)[1:-1] for c in text) + "\n")
            sys.stderr.flush()
            passed += len(line)
    stream.close()


def run_kernel(connection_file: Path) -> int:
    """Start ipykernel for ``connection_file`` inside the sandbox; returns its exit status."""
    limits = limits_from_env()
    info = json.loads(connection_file.read_text())
    if info.get("transport") != "ipc":
        raise SandboxUnavailable("the sandboxed kernel needs KernelManager.transport = 'ipc' (set in "
                                 "autograder/nbgrader_config.py): it has no network to reach a TCP port")
    sweep()
    uid = free_uid() if os.geteuid() == 0 else None
    cwd = Path.cwd()
    assignment = cwd.name
    runtime_dir = Path(info["ip"]).parent  # the Unix sockets' folder (KernelManager.ip is a path prefix for ipc)
    if not runtime_dir.is_absolute():
        raise SandboxUnavailable("KernelManager.ip must be an absolute path prefix for the sandbox's sockets")
    if uid is not None:  # the kernel's own uid creates its sockets in the kernel's private folder
        os.chown(runtime_dir, uid, uid)
    # -I: isolated start (no cwd on sys.path, no PYTHON* variables, no user site-packages)
    kernel = confined([str(Path(sys.prefix) / "bin" / "python"), "-I", "-m", "ipykernel_launcher", "-f",
                       str(cwd / ".kernel.json")], SOCKETS, cwd)
    # The working folder starts empty: nothing of the submission's folder (nor the graded notebook) is in view.
    inside = dict(info, ip=str(SOCKETS / Path(info["ip"]).name))  # the same sockets, by their path inside
    command, fds = bwrap_command(kernel, json.dumps(inside).encode(), cwd, runtime_dir, assignment, uid,
                                 limits["disk_mb"], limits["max_processes"])
    cgroup = Cgroup.create(limits["max_processes"], limits["memory_mb"])
    core = sandbox_core()
    parent = os.getppid()
    try:
        process = subprocess.Popen(command, pass_fds=fds, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, preexec_fn=lambda: _set_limits(
            limits["memory_mb"], limits["max_processes"], limits["file_mb"], limits["open_files"],
            limits["cpu_seconds"], core, cgroup))
        threading.Thread(target=forward_errors, args=(process.stderr,), daemon=True).start()
        for descriptor in fds:
            os.close(descriptor)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda *_: process.kill())
        deadline = time.monotonic() + limits["wall_seconds"]
        while process.poll() is None:
            if os.getppid() != parent:  # nbgrader is gone (a kill -9): so is its kernel
                process.kill()
                process.wait()
                return 125
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                print(f"course sandbox: the notebook ran longer than {limits['wall_seconds']} s and was stopped",
                      file=sys.stderr)
                return 124
            try:
                process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
        return process.returncode
    finally:
        if cgroup is not None:
            cgroup.remove()


def kernelspec() -> dict:
    return {"argv": [str(Path(sys.prefix) / "bin" / "python"), str(Path(__file__).resolve()), "kernel", "-f",
                     "{connection_file}"],
            "display_name": "Python 3 (course grading sandbox)", "language": "python",
            "interrupt_mode": "message", "metadata": {"debugger": False}}


def install_kernelspec() -> Path:
    """Write the sandbox kernelspec into autograder/jupyter/kernels/ (idempotent); returns its folder.

    The folder is this course directory's own, so copies of the course (tests, other checkouts) each launch
    their own sandbox.py; it is on JUPYTER_PATH only while nbgrader runs with this course's configuration.
    """
    folder = KERNELS / "kernels" / KERNEL_NAME
    text = json.dumps(kernelspec(), indent=1)
    spec = folder / "kernel.json"
    if not spec.exists() or spec.read_text() != text:
        folder.mkdir(parents=True, exist_ok=True)
        spec.write_text(text)
    return folder


def self_test() -> None:
    """Start a trivial command in the sandbox; raise SandboxUnavailable with the reason if it fails."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "runtime").mkdir()
        command, fds = bwrap_command([str(Path(sys.prefix) / "bin" / "python"), "-c", "import numpy, helpers"],
                                     None, tmp_path / "cwd", tmp_path / "runtime", "",
                                     free_uid() if os.geteuid() == 0 else None)
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=60, pass_fds=fds)
        finally:
            for descriptor in fds:
                os.close(descriptor)
        if result.returncode != 0:
            raise SandboxUnavailable(f"the grading sandbox does not start here: {result.stderr.strip()[-500:]}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="The course's grading sandbox.")
    sub = parser.add_subparsers(dest="command", required=True)
    kernel = sub.add_parser("kernel", help="start a sandboxed kernel (nbgrader does this)")
    kernel.add_argument("-f", dest="connection_file", required=True)
    sub.add_parser("install", help="install the kernelspec and check that the sandbox starts")
    args = parser.parse_args(argv)
    try:
        if args.command == "kernel":
            return run_kernel(Path(args.connection_file))
        print(install_kernelspec())
        self_test()
        print("the grading sandbox works")
        return 0
    except SandboxUnavailable as error:
        print(f"course sandbox: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
