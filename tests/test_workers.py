"""The grading command's workers (autograder/grade.py) and kernels started ahead (autograder/execute.py).

Each submission is graded in a process of its own, forked from the command's warm process: one that crashes,
raises or hangs costs only its own submission, and the rest of the batch is graded. A kernel started ahead serves
one notebook at most, and sees nothing of any submission before it is given one.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from autograder import execute, grade

ASSIGNMENT = "01-learning-rate"


def _submissions(names: list[str]) -> list[grade.Submission]:
    return [grade.Submission(name, ASSIGNMENT, Path("/nonexistent") / name) for name in names]


def _fake_grade_one(submission, course, cell_timeout, log):
    """Instead of nbgrader: misbehaves as the student's name says; otherwise answers with its process id."""
    if submission.student.startswith("crash"):
        os._exit(3)
    if submission.student.startswith("raise"):
        raise RuntimeError("the grader broke")
    if submission.student.startswith("hang"):
        child = subprocess.Popen(["sleep", "600"])
        (course / "tmp" / "hang.pid").write_text(str(child.pid))
        time.sleep(600)
    return grade.Result(submission.student, submission.assignment, {"cell": (1.0, 1.0)}, [str(os.getpid())], 0.0)


@pytest.fixture
def fake_workers(monkeypatch, tmp_path):
    monkeypatch.setattr(grade, "grade_one", _fake_grade_one)
    monkeypatch.setattr(grade, "start_kernel_ahead", lambda course, assignment, limits: None)
    monkeypatch.setattr(grade, "GRACE_SECONDS", 3)
    monkeypatch.setattr(grade.tempfile, "tempdir", str(tmp_path))  # the workers' scratch courses land here
    gradebook = tmp_path / "gradebook.db"
    gradebook.write_bytes(b"")
    return gradebook


def _run(gradebook: Path, names: list[str], workers: int) -> dict[str, grade.Result]:
    limits = dict(grade.sandbox.DEFAULTS, wall_seconds=1)
    results = list(grade.grade_in_workers(_submissions(names), workers, gradebook, limits, cell_timeout=10))
    assert sorted(r.student for r in results) == sorted(names)
    return {r.student: r for r in results}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_crash_a_raise_and_a_hang_cost_only_their_own_submission(fake_workers, tmp_path, workers):
    names = ["a", "crash", "b", "raise", "c", "hang", "d", "e"]
    start = time.monotonic()
    results = _run(fake_workers, names, workers)
    assert time.monotonic() - start < 60
    for name in "abcde":
        assert results[name].status == "graded" and results[name].scores == {"cell": (1.0, 1.0)}, results[name]
    assert results["crash"].status == "failed" and "exit code 3" in results["crash"].reasons[0]
    assert results["raise"].status == "failed" and "RuntimeError: the grader broke" in results["raise"].reasons[0]
    assert results["hang"].status == "failed" and "did not answer" in results["hang"].reasons[0]
    for name in ("crash", "raise", "hang"):
        assert results[name].reasons[0].endswith("score 0"), results[name].reasons
    assert not list(tmp_path.glob("course-grading-*")), "a worker's scratch course was left behind"


def test_every_submission_gets_a_process_of_its_own(fake_workers):
    results = _run(fake_workers, [f"s{i}" for i in range(6)], workers=2)
    pids = [r.reasons[0] for r in results.values()]
    assert len(set(pids)) == len(pids) and str(os.getpid()) not in pids


def test_a_hung_grader_is_ended_with_everything_it_started(fake_workers, tmp_path, monkeypatch):
    seen = []
    real_end = grade.Grader.end

    def end(self):
        pid_file = self.course / "tmp" / "hang.pid"
        if pid_file.exists():
            seen.append(int(pid_file.read_text()))
        real_end(self)

    monkeypatch.setattr(grade.Grader, "end", end)
    _run(fake_workers, ["hang", "a"], workers=1)
    assert seen, "the hung grader's child was not found"
    time.sleep(0.2)
    assert not Path(f"/proc/{seen[0]}").exists() or "Z" in Path(f"/proc/{seen[0]}/stat").read_text().split()[2]


def test_kill_tree_ends_grandchildren():
    shell = subprocess.Popen(["sh", "-c", "sleep 600 & sleep 600 & wait"])
    time.sleep(0.3)
    children = [int(p) for p in subprocess.run(["pgrep", "-P", str(shell.pid)], capture_output=True,
                                                 text=True).stdout.split()]
    assert len(children) == 2
    grade.kill_tree(shell.pid)
    shell.wait(10)
    time.sleep(0.2)
    for pid in children:
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().split()[2] == "Z"


class _FakeManager:
    """Stands in for SandboxKernelManager: records starts and shutdowns, runs nothing."""

    instances: list["_FakeManager"] = []

    def __init__(self, kernel_name):
        self.kernel_name, self.has_kernel, self.cwd = kernel_name, False, None
        self.ended = False
        _FakeManager.instances.append(self)

    async def start_kernel(self, cwd, env):
        self.has_kernel, self.cwd, self.env = True, cwd, env

    async def shutdown_kernel(self, now=False):
        self.has_kernel, self.ended = False, True

    async def cleanup_resources(self, restart=False):
        pass


@pytest.fixture
def fake_ahead(monkeypatch):
    monkeypatch.setattr(execute, "SandboxKernelManager", _FakeManager)
    monkeypatch.setattr(execute.KernelAhead, "waiting", None)
    monkeypatch.setattr(execute.KernelAhead, "started", [])
    _FakeManager.instances = []
    yield
    execute.KernelAhead.end_all()


def test_a_kernel_started_ahead_is_taken_once(fake_ahead, tmp_path):
    execute.KernelAhead.start(ASSIGNMENT, tmp_path, wall_seconds=900)
    manager = execute.KernelAhead.take(ASSIGNMENT)
    assert manager is _FakeManager.instances[0] and manager.has_kernel
    assert manager.env["COURSE_SANDBOX_WALL_SECONDS"] == str(900 + int(execute.KernelAhead.MAX_WAIT))
    assert execute.KernelAhead.take(ASSIGNMENT) is None, "a kernel served a second notebook"
    with pytest.raises(RuntimeError):
        execute.KernelAhead.start(ASSIGNMENT, tmp_path, wall_seconds=900)
    execute.KernelAhead.end_all()
    assert manager.ended and len(_FakeManager.instances) == 1


def test_a_kernel_for_another_assignment_or_waiting_too_long_is_ended_not_used(fake_ahead, tmp_path, monkeypatch):
    execute.KernelAhead.start(ASSIGNMENT, tmp_path, wall_seconds=900)
    assert execute.KernelAhead.take("02-input-normalization") is None
    assert _FakeManager.instances[0].ended
    monkeypatch.setattr(execute.KernelAhead, "started", [])
    monkeypatch.setattr(execute.KernelAhead, "MAX_WAIT", 0.0)
    execute.KernelAhead.start(ASSIGNMENT, tmp_path, wall_seconds=900)
    time.sleep(0.01)
    assert execute.KernelAhead.take(ASSIGNMENT) is None and _FakeManager.instances[1].ended


def _in_a_real_kernel(folder: Path, code: str) -> str:
    """What ``code`` prints in a sandboxed kernel started ahead for ``folder`` (its reply must be ok)."""
    if shutil.which("bwrap") is None:
        if os.environ.get("CI"):
            pytest.fail("bubblewrap is not installed")
        pytest.skip("bubblewrap is not installed")
    from jupyter_core.utils import run_sync

    grade.sandbox.install_kernelspec()
    execute.KernelAhead.waiting, execute.KernelAhead.started = None, []
    seen = []
    try:
        execute.KernelAhead.start(ASSIGNMENT, folder, wall_seconds=60)
        manager = execute.KernelAhead.take(ASSIGNMENT)
        client = manager.client()
        client.start_channels()
        run_sync(client.wait_for_ready)(timeout=120)
        reply = run_sync(client.execute_interactive)(code, timeout=60, output_hook=lambda msg: seen.append(msg))
        client.stop_channels()
        private = Path(manager.private_folder)
        left = sorted(p.name for p in private.iterdir() if not p.is_socket())
    finally:
        execute.KernelAhead.end_all()
        execute.KernelAhead.waiting, execute.KernelAhead.started = None, []
    assert reply["content"]["status"] == "ok", reply["content"]
    assert left == ["kernel.json"], left  # nothing but the connection file and the kernel's sockets
    return "".join(m["content"].get("text", "") for m in seen if m["msg_type"] == "stream")


def test_a_real_kernel_writes_only_into_its_bounded_folders(tmp_path):
    """The kernel's socket folder is the host's: there the kernel makes sockets only (no files, folders, links);
    elsewhere it writes only in its working folder and /tmp, which are memory of a fixed size."""
    folder = tmp_path / "kernel" / ASSIGNMENT
    folder.mkdir(parents=True)
    text = _in_a_real_kernel(folder, f"""
import os, socket
sockets = {str(grade.sandbox.SOCKETS)!r}
def attempt(name, act):
    try:
        act()
        print(name, "written")
    except OSError:
        print(name, "refused")
def make_socket():
    s = socket.socket(socket.AF_UNIX)
    s.bind(sockets + "/mine.sock")
    s.close()
attempt("file", lambda: open(sockets + "/fill", "w").write("x"))
attempt("folder", lambda: os.mkdir(sockets + "/deep"))
attempt("link", lambda: os.symlink("/etc/passwd", sockets + "/agent-1.sock"))
attempt("rename", lambda: os.rename(sockets + "/" + sorted(os.listdir(sockets))[0], sockets + "/moved"))
attempt("socket", make_socket)
attempt("root", lambda: open("/planted", "w").write("x"))
attempt("cwd", lambda: open("mine.txt", "w").write("x"))
attempt("tmp", lambda: open("/tmp/mine.txt", "w").write("x"))
""")
    assert text.split("\n")[:-1] == ["file refused", "folder refused", "link refused", "rename refused",
                                     "socket written", "root refused", "cwd written", "tmp written"], text


def test_a_real_kernel_started_ahead_sees_no_submission(tmp_path):
    """The sandboxed kernel started ahead: an empty working folder, nothing run in it, nothing of the course."""
    folder = tmp_path / "kernel" / ASSIGNMENT
    folder.mkdir(parents=True)
    (folder / "planted.txt").write_text("host file")
    text = _in_a_real_kernel(folder,
        "import os\nprint(sorted(os.listdir('.')), len(In), sorted(k for k in globals() if not k.startswith('_')"
        " and k not in ('In', 'Out', 'get_ipython', 'exit', 'quit', 'open')))")
    # its own connection file and IPython folder only (the sandbox's working folder is memory of its own)
    assert text.strip() == "['.ipython', '.kernel.json'] 2 ['os']", text

