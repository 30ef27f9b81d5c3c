"""nbgrader's execute step, with the verdict outside the kernel: ``GradeOutsideKernel``.

Stock ``nbgrader autograde`` runs every cell, tests included, in the kernel that runs the student's code, and
scores each test cell from what that kernel reports. Here (configured in autograder/nbgrader_config.py, so stock
``nbgrader autograde`` and ``./course grade`` take the same path):
- the student's cells and the locked demo cells run in the sandboxed kernel (autograder/sandbox.py), as before;
- test cells never enter it: their source is taken from the gradebook (hidden tests included) and run in this
  process by autograder/remote.py, with the student's functions called in the kernel through the agent
  (autograder/agent.py) and plain data (autograder/wire.py) coming back;
- each test cell's outputs are written here: none when it passed, one error output with the check's message when
  it failed; nbgrader's SaveAutoGrades then scores them as usual;
- hidden cases are drawn from a seed made of the course secret and the submission (``grading_seed``);
- kernel outputs are capped in bytes (per output message, per cell, per notebook, display data included) while
  they arrive; what was cut is recorded in the notebook's metadata (``course.reasons``); displays keep only their
  inert forms (text, PNG, JPEG: autograder/feedback.py), so no view of the autograded notebook (formgrader's
  included) runs HTML or JavaScript a submission produced;
- each kernel gets a private socket folder of its own, removed when it stops (and, after a crash, by the next
  sweep: autograder/sandbox.py names it after its owner process);
- a cell's CPU time, across every process of the sandbox, is bounded as well as its wall time
  (``cell_cpu_seconds``): past the bound the cell is interrupted and what it started is killed (the kernel too if
  it ignores the interrupt), and the reason is recorded.
"""
from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import queue
import secrets
import select
import shutil
import signal
import socket
import struct
import threading
import time
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode, from_dict
from nbgrader.preprocessors import Execute
from traitlets import Integer, Unicode

from autograder import feedback, preflight, remote, sandbox, wire

HERE = Path(__file__).resolve().parent
SECRET_FILE = HERE / "course-secret"  # git-ignored; made on first use
FRAME = struct.Struct(">Q")  # the length before each request and reply on the agent's socket


def course_secret(path: Path = SECRET_FILE) -> bytes:
    """The course's grading secret (created with mode 0600 on first use)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip().encode()


def grading_seed(secret: bytes, student: str, assignment: str, notebook: str, answers: list[str]) -> tuple[int, ...]:
    """Four 32-bit words from the secret and the submission (its id and its answer cells' text)."""
    digest = hashlib.sha256(secret)
    for part in (student, assignment, notebook, *answers):
        digest.update(len(part.encode()).to_bytes(8, "little") + part.encode())
    raw = digest.digest()
    return tuple(int.from_bytes(raw[i:i + 4], "little") for i in range(0, 16, 4))


def agent_code() -> str:
    """The code that installs the agent in the kernel (wire.py and agent.py as source; no test code)."""
    wire_source = (HERE / "wire.py").read_text()
    agent_source = (HERE / "agent.py").read_text()
    return ("def __course_boot__(wire_source, agent_source):\n"
            "    import types\n"
            "    wire = types.ModuleType('course_wire')\n"
            "    exec(compile(wire_source, '<course wire>', 'exec'), wire.__dict__)\n"
            "    agent = types.ModuleType('course_agent')\n"
            "    agent.__dict__['wire'] = wire\n"
            "    exec(compile(agent_source, '<course agent>', 'exec'), agent.__dict__)\n"
            "    return agent.Agent(get_ipython().user_ns)\n"
            f"__course_agent__ = __course_boot__({wire_source!r}, {agent_source!r})\n"
            "del __course_boot__\n")


class SandboxKernelManager(AsyncKernelManager):
    """A kernel manager that gives every kernel a private socket folder (mode 0700) and removes it afterwards."""

    private_folder: str | None = None

    async def _async_pre_start_kernel(self, **kw):
        self.private_folder = str(sandbox.owned_tempdir("course-kernel-"))
        self.transport = "ipc"
        self.ip = os.path.join(self.private_folder, "kernel")
        self.connection_file = os.path.join(self.private_folder, "kernel.json")
        return await super()._async_pre_start_kernel(**kw)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart and self.private_folder:
            sandbox.remove_tree(self.private_folder)
            self.private_folder = None
            sandbox.sweep()  # a launcher killed with its kernel (shutdown_kernel(now=True)) leaves its cgroup

    cleanup_resources = _async_cleanup_resources


class KernelAhead:
    """A sandboxed kernel started before its submission is known, so that it boots while the grader is busy.

    ``./course grade`` grades each submission in a process of its own, which starts its kernel this way as soon as
    it exists. The kernel starts with nothing of any submission: an empty working folder named after the
    assignment (the sandbox masks that assignment's reference answers), no code run in it. ``take`` hands it to
    the first notebook graded in this process, and to no other: a kernel runs one submission only. One that has
    waited longer than ``MAX_WAIT`` seconds is ended instead (its wall-time limit started with it), and nbgrader
    starts a kernel as usual."""

    MAX_WAIT = 60.0
    waiting: "KernelAhead | None" = None  # this process's kernel, until a notebook takes it
    started: list["KernelAhead"] = []  # every one this process started, to end them all on the way out
    ending: list = []  # how to end those taken (their notebook's client and kernel), once no longer needed

    def __init__(self, assignment: str, manager: SandboxKernelManager):
        self.assignment, self.manager, self.since = assignment, manager, time.monotonic()

    @classmethod
    def start(cls, assignment: str, folder: Path, wall_seconds: int) -> "KernelAhead":
        if cls.waiting is not None or cls.started:
            raise RuntimeError("a grading process starts one kernel ahead, once")
        manager = SandboxKernelManager(kernel_name=sandbox.KERNEL_NAME)
        env = dict(os.environ, COURSE_SANDBOX_WALL_SECONDS=str(int(wall_seconds + cls.MAX_WAIT)))
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(sandbox.KERNELS),
                                                                   os.environ.get("JUPYTER_PATH")]))
        ahead = cls(assignment, manager)
        cls.started.append(ahead)
        run_sync(manager.start_kernel)(cwd=str(folder), env=env)  # as nbclient starts it, in another folder
        cls.waiting = ahead
        return ahead

    @classmethod
    def take(cls, assignment: str) -> SandboxKernelManager | None:
        """The kernel for this notebook, once: None after the first call, for another assignment or when stale."""
        ahead, cls.waiting = cls.waiting, None
        if ahead is None:
            return None
        if ahead.assignment != assignment or time.monotonic() - ahead.since > cls.MAX_WAIT:
            ahead.end()
            return None
        return ahead.manager

    def end(self) -> None:
        for now in (False, True):  # asked to stop, then killed
            try:
                if self.manager.has_kernel:
                    run_sync(self.manager.shutdown_kernel)(now=now)
            except Exception:  # noqa: BLE001: a kernel that is gone already
                pass
        run_sync(self.manager.cleanup_resources)()  # its private socket folder

    @classmethod
    def end_all(cls) -> None:
        """End every kernel this process started: the grading process calls it after it has sent its result."""
        cls.waiting = None
        while cls.ending:
            try:
                cls.ending.pop()()
            except Exception:  # noqa: BLE001: killed below
                pass
        for ahead in cls.started:
            ahead.end()


class KernelChannel(remote.Channel):
    """Requests to the agent, one test cell at a time, over a Unix socket in the kernel's private folder.

    A test cell's first request sends one silent ``execute_request``, ``__course_agent__.serve(path)``: the agent
    connects to a socket this side listens on (a new path per cell, the listener closed once it is accepted) and
    answers requests on the kernel's main thread, each an 8-byte big-endian length and a JSON text
    (autograder/wire.py), until the cell ends (``end``) and this side closes the connection. A request so costs a
    socket round trip instead of a kernel execution. While it waits, this side drops the kernel's output, checks
    that the kernel lives, and past ``deadline`` interrupts it. Nothing the kernel sends is trusted: replies are
    bounded in size (wire.MAX_BYTES) and decoded as plain data."""

    SLICE = 0.05  # seconds between checks while a reply is awaited

    def __init__(self, client: "GradeOutsideKernel"):
        self.client = client
        self.deadline = float("inf")
        self.busy = False
        self.connection: socket.socket | None = None
        self.serving: str | None = None  # the msg_id of the agent's serve request
        self.cells = 0

    def request(self, message: dict) -> dict:
        if self.client.kernel_gone:
            raise remote.KernelGone(self.client.kernel_gone)
        self.busy = True
        try:
            if self.connection is None:
                self._open()
            try:
                body = wire.dumps(message).encode()
                self.connection.sendall(FRAME.pack(len(body)) + body)
                return wire.loads(self._receive())
            except remote.TestTimeout:  # a TimeoutError, so an OSError: the kernel was interrupted already
                raise
            except OSError as error:
                self.end()
                raise wire.WireError(f"the connection to the kernel's agent broke ({type(error).__name__})") from None
            except wire.WireError:
                self.end()
                raise
        finally:
            self.busy = False

    def _open(self) -> None:
        """Have the agent serve this test cell's requests; RemoteError when it does not connect."""
        self.cells += 1
        path = os.path.join(self.client.km.private_folder, f"agent-{self.cells}.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(path)
            os.chmod(path, 0o666)  # the folder is private to the kernel's user; the kernel may run as another
            listener.listen(1)
            inside = str(sandbox.SOCKETS / os.path.basename(path))  # the folder's path in the sandbox
            self.serving = self.client.kc.execute(f"__course_agent__.serve({inside!r})", silent=True,
                                                  store_history=False, allow_stdin=False, stop_on_error=False)
            self._wait(listener, "the agent to connect")
            self.connection, _ = listener.accept()
        finally:
            listener.close()
            with contextlib.suppress(OSError):
                os.unlink(path)

    def _receive(self) -> str:
        header = self._read(FRAME.size)
        (size,) = FRAME.unpack(header)
        if size > wire.MAX_BYTES:
            raise wire.WireError(f"a reply of {size >> 20} MB is over the {wire.MAX_BYTES >> 20} MB limit")
        try:
            return self._read(size).decode()
        except UnicodeDecodeError:
            raise wire.WireError("the kernel's reply is not text") from None

    def _read(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            self._wait(self.connection, "a reply")
            chunk = self.connection.recv(min(size - len(data), 1 << 20))
            if not chunk:
                raise wire.WireError("the kernel's agent closed the connection (was __course_agent__ replaced?)")
            data += chunk
        return bytes(data)

    def _wait(self, sock: socket.socket, what: str) -> None:
        """Until ``sock`` is readable; meanwhile drop the kernel's output. KernelGone if the kernel dies or its serve
        request ends first, TestTimeout (the kernel interrupted) past the deadline."""
        checked = time.monotonic()
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self._interrupt()
                raise remote.TestTimeout(f"the test ran longer than {self.client.test_timeout} s")
            if select.select([sock], [], [], min(remaining, self.SLICE))[0]:
                return
            ended = run_sync(self._drop_output)()
            if ended:
                self.serving = None
                self.end()
                raise remote.RemoteError("GradingAgentError", f"the kernel's agent stopped before {what}; was "
                                         "__course_agent__ replaced?")
            if time.monotonic() - checked > 2.0:
                checked = time.monotonic()
                if not run_sync(self.client.km.is_alive)():
                    self.client.kernel_gone = "the kernel died (os._exit, a crash or the memory limit)"
                    self.end()
                    raise remote.KernelGone(self.client.kernel_gone)

    DROP_AT_ONCE = 100  # messages dropped per look, so that a kernel sending without pause meets the deadline

    async def _drop_output(self) -> bool:
        """Drop the kernel's output that has arrived (at most ``DROP_AT_ONCE`` messages); True when the serve
        request has already been answered."""
        kc = self.client.kc
        for _ in range(self.DROP_AT_ONCE):
            if not await kc.iopub_channel.msg_ready():
                break
            await kc.iopub_channel.get_msg(timeout=0)
        ended = False
        for _ in range(self.DROP_AT_ONCE):
            if not await kc.shell_channel.msg_ready():
                break
            msg = await kc.shell_channel.get_msg(timeout=0)
            ended = ended or msg.get("parent_header", {}).get("msg_id") == self.serving
        return ended

    def end(self, seconds: float = 10.0) -> None:
        """End this test cell's requests: close the connection and wait for the serve request's reply (the kernel
        is taken as gone when it does not come in ``seconds``)."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None
        if self.serving is not None:
            msg_id, self.serving = self.serving, None
            if not run_sync(self._await_reply)(msg_id, time.monotonic() + seconds):
                self.client.kernel_gone = "the kernel stopped answering after a test"

    def _interrupt(self) -> None:
        try:
            run_sync(self.client.km.interrupt_kernel)()
        except Exception:  # noqa: BLE001: an unresponsive kernel is treated as gone (below)
            pass
        self.end()
        if self.client.kernel_gone:
            self.client.kernel_gone = "the kernel stopped answering after a test timed out"

    def run_quietly(self, code: str, seconds: float) -> dict:
        """Execute ``code`` silently in the kernel (no history, no output kept); returns the reply's content."""
        self.deadline = time.monotonic() + seconds
        msg_id = self.client.kc.execute(code, silent=True, store_history=False, allow_stdin=False,
                                        stop_on_error=False)
        reply = run_sync(self._await_reply)(msg_id, self.deadline)
        if reply is None:
            raise remote.TestTimeout(f"the kernel did not answer in {seconds:g} s")
        return reply

    async def _await_reply(self, msg_id: str, until: float) -> dict | None:
        """The content of the kernel's reply to ``msg_id`` (its output up to its idle status dropped), or None."""
        kc = self.client.kc
        while time.monotonic() < until:
            try:
                msg = await kc.shell_channel.get_msg(timeout=max(0.01, min(until - time.monotonic(), 2.0)))
            except queue.Empty:
                if not await self.client.km.is_alive():
                    self.client.kernel_gone = "the kernel died (os._exit, a crash or the memory limit)"
                    return None
                continue
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                await self._drain(msg_id, time.monotonic() + 5)
                content = msg.get("content", {})
                return content if isinstance(content, dict) else {}
        return None

    async def _drain(self, msg_id: str, until: float) -> None:
        """Read (and drop) the kernel's output for this request, up to its idle status."""
        kc = self.client.kc
        while time.monotonic() < until:
            try:
                msg = await kc.iopub_channel.get_msg(timeout=max(0.01, until - time.monotonic()))
            except queue.Empty:
                return
            if (msg.get("parent_header", {}).get("msg_id") == msg_id and msg.get("msg_type") == "status"
                    and msg.get("content", {}).get("execution_state") == "idle"):
                return


class CpuWatch(threading.Thread):
    """Bounds the CPU time of one cell at a time across all of the sandbox's processes (autograder/sandbox.py's
    ``cpu_seconds`` of the kernel's launcher): past the bound the kernel is interrupted and every other process in
    the sandbox killed; if it still burns CPU a few seconds later, the kernel is killed too."""

    GRACE = 5.0

    def __init__(self):
        super().__init__(daemon=True)
        self.lock = threading.Lock()
        self.finished = threading.Event()
        self.cell = None  # (launcher pid, where, bound, CPU seconds at the start)
        self.stopped_at = None
        self.reason = None

    def begin(self, launcher: int | None, where: str, bound: float) -> None:
        with self.lock:
            self.stopped_at, self.reason = None, None
            self.cell = (launcher, where, bound, sandbox.cpu_seconds(launcher)) if launcher and bound > 0 else None

    def end(self) -> str | None:
        with self.lock:
            self.cell = None
            return self.reason

    def run(self) -> None:
        while not self.finished.wait(0.25):
            with self.lock:
                if self.cell is None:
                    continue
                launcher, where, bound, start = self.cell
                used = sandbox.cpu_seconds(launcher) - start
                if used <= bound:
                    continue
                if self.stopped_at is None:
                    killed = sandbox.stop_cell(launcher)
                    self.stopped_at = used
                    self.reason = (f"CPU time limit in {where}: over {bound:g} CPU seconds across the sandbox's "
                                   f"processes; the cell was interrupted" + (f" and {killed} processes it started "
                                                                             "were killed" if killed else ""))
                elif used > self.stopped_at + self.GRACE:
                    sandbox.kill_kernel(launcher)
                    self.reason += "; the kernel ignored the interrupt and was stopped"
                    self.cell = None


class GradeOutsideKernel(Execute):
    """nbgrader's Execute preprocessor with test cells run in the grader's process (see the module docstring)."""

    test_timeout = Integer(60, help="Seconds a test cell may run, its calls into the kernel included.").tag(config=True)
    output_limit = Integer(1 << 20, help="Bytes one output message of the kernel may have.").tag(config=True)
    cell_output_limit = Integer(2 << 20, help="Bytes of output one cell may have.").tag(config=True)
    notebook_output_limit = Integer(8 << 20, help="Bytes of output the whole notebook may have.").tag(config=True)
    secret_file = Unicode(str(SECRET_FILE), help="The course's grading secret (git-ignored).").tag(config=True)
    cell_cpu_seconds = Integer(0, help="CPU seconds one cell or test cell may use across all of the sandbox's "
                               "processes; 0: COURSE_SANDBOX_CELL_CPU_SECONDS if set, else the cell's wall-time "
                               "limit (Execute.timeout, test_timeout).").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxKernelManager)
        super().__init__(*args, **kwargs)

    # --- the notebook -----------------------------------------------------------------------------------------------

    def preprocess(self, nb, resources=None, km=None):
        self.tests, self.locked_sources, self.answer_names, self.answer_ids = self._from_gradebook(resources)
        self.kernel_gone = ""
        self.agent_ready = False
        self.namespace = None
        self.reasons: list[str] = []
        self.notebook_bytes = 0
        self.channel = KernelChannel(self)
        from helpers import checks  # the grader's own copy

        info = resources.get("nbgrader", {}) if resources else {}
        answers = [cell.source for cell in nb.cells if _grade_id(cell) in self.answer_ids]
        checks._grading_seed = grading_seed(course_secret(Path(self.secret_file)), str(info.get("student", "")),
                                            str(info.get("assignment", "")), str(info.get("notebook", "")), answers)
        taken = km is None and (km := KernelAhead.take(str(info.get("assignment", "")))) is not None
        self.cpu_watch = CpuWatch()
        self.cpu_watch.start()
        try:
            nb, resources = super().preprocess(nb, resources, km)
        finally:
            checks._grading_seed = None
            self.cpu_watch.finished.set()
            if taken:  # ended as nbclient ends a kernel of its own, once this submission's result is out
                KernelAhead.ending.append(self._cleanup_kernel)
        preflight.record_reasons(nb, self.reasons, self.log)
        return nb, resources

    def _from_gradebook(self, resources):
        """Test cells (grade_id -> source, hidden tests included), locked code sources, answer names and ids."""
        from nbgrader.api import Gradebook

        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gradebook:
            notebook = gradebook.find_notebook(info["notebook"], info["assignment"])
            graded = {cell.name for cell in notebook.grade_cells if cell.cell_type == "code"}
            answers = {cell.name for cell in notebook.solution_cells}
            sources = {cell.name: cell for cell in notebook.source_cells}
            tests = {name: sources[name].source for name in graded - answers if name in sources}
            locked = [cell.source for cell in notebook.source_cells
                      if cell.cell_type == "code" and cell.locked and cell.name not in graded | answers]
            stubs = [sources[name].source for name in answers if name in sources and sources[name].cell_type == "code"]
        return tests, locked, remote.defined_names(stubs), answers

    # --- one cell ---------------------------------------------------------------------------------------------------

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        grade_id = _grade_id(cell)
        if grade_id in self.tests:
            self._run_test(cell, grade_id)
            return cell, resources
        if self.kernel_gone:
            cell.outputs = [from_dict({"output_type": "stream", "name": "stdout",
                                       "text": f"(not run: {self.kernel_gone})\n"})]
            return cell, resources
        if not self.agent_ready:
            self._install_agent()
        self.cell_bytes, self.cell_cut = 0, False
        where = grade_id or f"student cell {cell.get('id', index)}"
        self._watch_cpu(where, self.timeout)
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self.kernel_gone = "the kernel died (os._exit, a crash or the memory limit)"
            reason = f"{self.kernel_gone} in {where}; later tests scored 0"
        except CellTimeoutError:
            reason = f"CellTimeoutError in {where}: its output did not arrive in time"
        except Exception as error:  # noqa: BLE001: a kernel that misbehaves costs its own submission only
            self.kernel_gone = f"the kernel stopped working ({type(error).__name__})"
            reason = f"{self.kernel_gone} in {where}; later tests scored 0"
        finally:
            cpu_reason = self.cpu_watch.end()
            if cpu_reason:
                self._record_failure(cell, cpu_reason)
            cell.outputs = [from_dict(kept) for kept in map(feedback.inert_data, cell.outputs) if kept]
            _plain_counts(cell)
        self._record_failure(cell, reason)
        return cell, resources

    def _watch_cpu(self, where: str, wall_limit) -> None:
        bound = self.cell_cpu_seconds or int(os.environ.get("COURSE_SANDBOX_CELL_CPU_SECONDS", "0") or 0)
        bound = bound or (wall_limit if isinstance(wall_limit, (int, float)) and wall_limit > 0 else 0)
        provisioner = getattr(getattr(self, "km", None), "provisioner", None)
        launcher = getattr(getattr(provisioner, "process", None), "pid", None)
        self.cpu_watch.begin(launcher, where, bound)

    def _record_failure(self, cell, reason: str) -> None:
        """Record why ``cell`` did not run to its end, as a reason and as the cell's error output."""
        self.reasons.append(reason)
        cell.outputs.append(from_dict({"output_type": "error", "ename": "GradingError", "evalue": reason,
                                       "traceback": [reason]}))

    def _install_agent(self) -> None:
        self.agent_ready = True
        try:
            content = self.channel.run_quietly(agent_code(), self.startup_timeout)
        except (remote.KernelGone, remote.TestTimeout):
            content = {}
        if content.get("status") != "ok":
            self.reasons.append("the grading agent could not start in the kernel; tests scored 0")
            self.kernel_gone = "the grading agent could not start in the kernel"

    def _run_test(self, cell, grade_id: str) -> None:
        if self.namespace is None:
            self.namespace = remote.build_namespace(self.locked_sources)
        if not self.agent_ready and not self.kernel_gone:
            self._install_agent()
        self.channel.deadline = time.monotonic() + self.test_timeout
        previous = signal.signal(signal.SIGALRM, self._alarm)
        signal.setitimer(signal.ITIMER_REAL, self.test_timeout + 1)
        self._watch_cpu(grade_id, self.test_timeout)
        try:
            outcome = remote.run_test(self.tests[grade_id], self.namespace, self.channel, self.answer_names, grade_id)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            self.channel.end()  # the agent stops serving before the next cell runs
            reason = self.cpu_watch.end()
            if reason:
                self.reasons.append(reason)
        if outcome.ename in ("CellTimeout", "TestTimeout"):
            self.reasons.append(f"{grade_id}: the test ran longer than {self.test_timeout} s")
        cell.outputs = [from_dict(output) for output in outcome.output()]
        cell.execution_count = None

    def _alarm(self, signum, frame):
        if not self.channel.busy:  # a call into the kernel times out by itself (and interrupts the kernel)
            raise remote.CellTimeout(f"the test ran longer than {self.test_timeout} s")

    # --- outputs ------------------------------------------------------------------------------------------------------

    async def async_start_new_kernel_client(self):
        """nbclient's client, without its stdin channel: no request here allows input, and messages the kernel
        sends there would only queue up in this process."""
        kc = await super().async_start_new_kernel_client()
        if kc.stdin_channel.is_alive():
            kc.stdin_channel.stop()
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def _update_display_id(self, display_id, msg):
        """Nothing: a display is never rewritten after it arrived (an update would skip the caps and the filter
        that ``output`` applies; the stored notebook keeps the first version)."""

    def handle_comm_msg(self, outs, msg, cell_index):
        """Nothing: no widget state is stored and no output widget captures outputs (both would skip the caps)."""

    def output(self, outs, msg, display_id, cell_index):
        if msg.get("msg_type") in ("display_data", "execute_result"):
            kept = feedback.inert_data({"output_type": msg["msg_type"], **msg.get("content", {})})
            if kept is None:
                return None
            content = {**msg["content"], "data": kept["data"], "metadata": {}}
            if "execution_count" in content:
                content["execution_count"] = _plain_count(content["execution_count"])
            msg = {**msg, "content": content}
        size = _message_bytes(msg)
        cell = self.nb.cells[cell_index]
        where = _grade_id(cell) or f"student cell {cell.get('id', cell_index)}"
        limit = None
        if size > self.output_limit:
            limit = f"an output of {size} bytes (limit {self.output_limit})"
        elif getattr(self, "cell_bytes", 0) + size > self.cell_output_limit:
            limit = f"over {self.cell_output_limit} bytes of output"
        elif self.notebook_bytes + size > self.notebook_output_limit:
            limit = f"the notebook's output over {self.notebook_output_limit} bytes"
        if limit:
            if not self.cell_cut:
                self.cell_cut = True
                self.reasons.append(f"output of {where} cut: {limit}")
                outs.append(from_dict({"output_type": "stream", "name": "stdout",
                                       "text": f"\n... output cut by the grader: {limit} ...\n"}))
            return None
        self.cell_bytes = getattr(self, "cell_bytes", 0) + size
        self.notebook_bytes += size
        return super().output(outs, msg, display_id, cell_index)


def _plain_count(count):
    """An execution count as an integer or None: a kernel may send any JSON there, a notebook holds an integer or
    null, and the pages that show notebooks print it as it is."""
    return count if type(count) is int else None


def _plain_counts(cell) -> None:
    """The cell's and its outputs' execution counts through ``_plain_count``."""
    cell.execution_count = _plain_count(cell.get("execution_count"))
    for output in cell.get("outputs", []):
        if "execution_count" in output:
            output["execution_count"] = _plain_count(output["execution_count"])


def _message_bytes(msg: dict) -> int:
    content = msg.get("content", {})
    total = len(str(content.get("text", ""))) + len(str(content.get("evalue", "")))
    total += sum(len(str(line)) for line in content.get("traceback", []) or [])
    for bundle in (content.get("data") or {}, content.get("metadata") or {}):
        total += sum(len(value) if isinstance(value, str) else len(json.dumps(value, default=str))
                     for value in bundle.values())
    return total


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
    return grade_id if isinstance(grade_id, str) else None


__all__ = ["GradeOutsideKernel", "SandboxKernelManager", "grading_seed", "course_secret", "NotebookNode"]
