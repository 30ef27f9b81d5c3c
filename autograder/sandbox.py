"""The grading sandbox: every kernel that runs a student's submission starts inside it.

nbgrader (``Execute.kernel_name = "course-sandbox"``, set in autograder/nbgrader_config.py) starts the kernelspec
written by ``install_kernelspec``; its command is this file, ``python autograder/sandbox.py kernel -f <conn>``.
That launcher starts ipykernel under bubblewrap (Debian's ``bwrap``) with:

- a read-only view of only what the kernel needs: the system's /usr, the Python installation, the virtual
  environment and the ``helpers`` package (with the assignment's reference answers removed, see ``MASKS``);
  no view of solutions/, the gradebook, submitted work or anything else of the repository or home folders;
- no network (a new network namespace; the kernel talks to nbgrader over Unix sockets, ``transport = "ipc"``);
- an empty working and home folder, /tmp and /dev/shm, each memory of a fixed size (``disk_mb``), discarded
  afterwards: nothing the kernel writes reaches the host's disk;
- an isolated Python start (``python -I``: no working folder on sys.path, no PYTHON* variables);
- limits: address space (``--memory-mb``, default 2048), processes (``--max-processes``), file size, open files,
  CPU seconds per process, and the wall time of the whole notebook (``--wall-seconds``); as root it also drops to
  an unprivileged uid of its own (the process limit counts per uid, so a fork bomb exhausts only its own sandbox;
  as a normal user the limit is the user's processes plus ``max_processes``).

When the sandbox cannot start, the kernel does not start: grading fails with the reason, never unsandboxed.
"""
from __future__ import annotations

import argparse
import ast
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

KERNEL_NAME = "course-sandbox"
ROOT = Path(__file__).resolve().parent.parent
KERNELS = ROOT / "autograder" / "jupyter"  # on JUPYTER_PATH while grading (set in nbgrader_config.py)
UID_BASE, UID_SPAN = 200_000, 100_000  # as root, each kernel runs as a uid of its own from this unused range
DEFAULTS = {"memory_mb": 2048, "max_processes": 64, "wall_seconds": 900, "file_mb": 64, "open_files": 256,
            "disk_mb": 128, "cpu_seconds": 900}

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


def masked_helpers(assignment: str, scratch: Path) -> Path:
    """A copy of helpers/ in ``scratch`` with the assignment's reference answers masked."""
    copy = scratch / "helpers"
    shutil.copytree(helpers_location(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    for relative, functions in MASKS.get(assignment, {}).items():
        target = copy / Path(relative).relative_to("helpers")
        target.write_text(masked_source(target.read_text(), functions))
    return copy


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


def bwrap_command(argv: list[str], connection_file: Path | None, cwd: Path, runtime_dir: Path, helpers_dir: Path,
                  uid: int | None, disk_mb: int = 128) -> list[str]:
    """The bubblewrap command line that runs ``argv`` in the sandbox.

    Everything the kernel can write is memory of a fixed size, gone when it exits: the working folder ``cwd``
    (``disk_mb``), /tmp (``disk_mb``) and /dev/shm (16 MB); ``connection_file`` is visible read-only in ``cwd``.
    """
    python_prefix = Path(sys.base_prefix).resolve()
    venv = Path(sys.prefix)
    command = [bwrap_path(), "--die-with-parent", "--new-session", "--unshare-net", "--unshare-pid",
               "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox", "--clearenv"]
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
    for path in read_only + etc + [runtime_dir, cwd]:
        for parent in _ancestors(path):  # bubblewrap would create missing parents with mode 0700
            inside_bound = any(parent == p or p in parent.parents for p in read_only)
            if parent not in made and not inside_bound and parent != Path("/tmp"):
                command += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
    for path in read_only:
        command += ["--ro-bind", str(helpers_dir if path == helpers else path), str(path)]
    for path in etc:
        command += ["--ro-bind", str(path), str(path)]
    command += ["--bind", str(runtime_dir), str(runtime_dir), "--perms", "1777", "--size", size, "--tmpfs", str(cwd)]
    if connection_file is not None:
        command += ["--ro-bind", str(connection_file), str(cwd / ".kernel.json")]
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
    else:
        command += ["--"]
    return command + argv


def _own_process_count() -> int:
    uid = os.getuid()
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            count += entry.name.isdigit() and entry.stat().st_uid == uid
        except OSError:
            pass
    return count


def _set_limits(memory_mb: int, max_processes: int, file_mb: int, open_files: int, cpu_seconds: int) -> None:
    """rlimits for the sandbox. The process limit counts per user: as root the kernel runs as an unprivileged user
    of its own; otherwise the limit is the user's current number of processes plus ``max_processes``."""
    import resource

    if os.geteuid() != 0:
        max_processes += _own_process_count()

    resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb << 20, file_mb << 20))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))  # CPU seconds of each process


def limits_from_env() -> dict:
    """Limits, from COURSE_SANDBOX_<NAME> environment variables where set (the grading command sets them)."""
    return {key: int(os.environ.get(f"COURSE_SANDBOX_{key.upper()}", value)) for key, value in DEFAULTS.items()}


def run_kernel(connection_file: Path) -> int:
    """Start ipykernel for ``connection_file`` inside the sandbox; returns its exit status."""
    limits = limits_from_env()
    info = json.loads(connection_file.read_text())
    if info.get("transport") != "ipc":
        raise SandboxUnavailable("the sandboxed kernel needs KernelManager.transport = 'ipc' (set in "
                                 "autograder/nbgrader_config.py): it has no network to reach a TCP port")
    uid = free_uid() if os.geteuid() == 0 else None
    cwd = Path.cwd()
    assignment = cwd.name
    runtime_dir = Path(info["ip"]).parent  # the Unix sockets' folder (KernelManager.ip is a path prefix for ipc)
    if not runtime_dir.is_absolute():
        raise SandboxUnavailable("KernelManager.ip must be an absolute path prefix for the sandbox's sockets")
    scratch = Path(tempfile.mkdtemp(prefix="course-sandbox-"))
    try:
        helpers_dir = masked_helpers(assignment, scratch / "masked")
        # The working folder starts empty: nothing of the submission's folder (nor the graded notebook) is in view.
        connection = scratch / "kernel.json"
        shutil.copy2(connection_file, connection)
        os.chmod(connection, 0o644)
        if uid is not None:  # the kernel's own uid creates its sockets in the kernel's private folder
            os.chown(runtime_dir, uid, uid)
        # -I: isolated start (no cwd on sys.path, no PYTHON* variables, no user site-packages)
        kernel = [str(Path(sys.prefix) / "bin" / "python"), "-I", "-m", "ipykernel_launcher", "-f",
                  str(cwd / ".kernel.json")]
        command = bwrap_command(kernel, connection, cwd, runtime_dir, helpers_dir, uid, limits["disk_mb"])
        process = subprocess.Popen(command, preexec_fn=lambda: _set_limits(
            limits["memory_mb"], limits["max_processes"], limits["file_mb"], limits["open_files"],
            limits["cpu_seconds"]))
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda *_: process.kill())
        try:
            return process.wait(timeout=limits["wall_seconds"])
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            print(f"course sandbox: the notebook ran longer than {limits['wall_seconds']} s and was stopped",
                  file=sys.stderr)
            return 124
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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
        (tmp_path / "work").mkdir()
        (tmp_path / "masked").mkdir()
        command = bwrap_command([str(Path(sys.prefix) / "bin" / "python"), "-c", "import numpy, helpers"],
                                None, tmp_path / "cwd", tmp_path / "runtime", helpers_location(),
                                free_uid() if os.geteuid() == 0 else None)
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
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
