"""``./course start``: JupyterLab on the student's own working copy, set up for students, its URL printed last.

Usage: python -m tools.start [JupyterLab options ...]   (from the course root; ``./course start`` runs it)

1. ``work/`` is brought up to date with ``notebooks/`` (tools/workcopy.py): new notebooks are copied, a student's
   notebook is never overwritten, a newer release is saved beside it and reported.
2. JupyterLab starts on ``work/`` with the students' settings in ``tools/student-config/`` (first on
   JUPYTER_CONFIG_PATH): nbgrader's Validate button and assignment list, but not the formgrader, the course list
   or the Create Assignment panel; no news or update pop-ups; not the JupyterLite kernel's extension.
3. Its log goes to ``work/.course/jupyterlab.log``; what this command prints ends with the URL, on its own line.
Ctrl-C (or closing the terminal) stops the server and its kernels.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from jupyter_core.paths import jupyter_runtime_dir

from tools import workcopy

ROOT = Path(__file__).resolve().parent.parent
STUDENT_CONFIG = ROOT / "tools" / "student-config"
LOG = Path(workcopy.WORK) / ".course" / "jupyterlab.log"
START_TIMEOUT = 180  # seconds; a first start on a loaded machine builds caches


def say(message: str) -> None:
    print(f"course: {message}", file=sys.stderr, flush=True)


def student_environment(environ: dict | None = None) -> dict:
    """``environ`` (default: this process's) with the students' Jupyter settings first on JUPYTER_CONFIG_PATH."""
    env = dict(os.environ if environ is None else environ)
    paths = [str(STUDENT_CONFIG), *filter(None, env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep))]
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def lab_command(root: Path, extra: list[str]) -> list[str]:
    """JupyterLab serving ``root`` (a student's ``work/``, or the course root for formgrader) on localhost."""
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.root_dir={root}"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    return command + list(extra)


def wait_for_url(server: subprocess.Popen, runtime_dir: Path, timeout: float = START_TIMEOUT,
                 page: str = "lab") -> str | None:
    """The URL (with its token) of ``page`` on the server once it listens, from the file it writes into the
    runtime folder; None when it exits first or does not come up within ``timeout`` seconds."""
    info = runtime_dir / f"jpserver-{server.pid}.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            data = json.loads(info.read_text())
        except (OSError, ValueError):
            time.sleep(0.2)
            continue
        url = data["url"].rstrip("/") + "/" + page
        return f"{url}?token={data['token']}" if data.get("token") else url
    return None


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def stop(server: subprocess.Popen) -> int:
    """Stop the server as Jupyter expects (SIGTERM shuts its kernels down), then wait; kill it if it hangs."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return server.returncode


def serve(command: list[str], root: Path, log_path: Path, env: dict, what: str, page: str = "lab") -> int:
    """Run the server ``command`` from ``root`` until Ctrl-C, its output appended to ``log_path``; say that
    JupyterLab is running ``what`` and print the URL of ``page`` last, on its own line."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    shown = log_path.relative_to(root) if log_path.is_relative_to(root) else log_path
    with log_path.open("a") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(sys.argv)}\n")
        log.flush()
        # A session of its own: Ctrl-C reaches this process only, which then stops the server cleanly (Jupyter's
        # own Ctrl-C handler would ask a question in the log nobody reads).
        server = subprocess.Popen(command, cwd=root, env=env, stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    try:
        url = wait_for_url(server, Path(jupyter_runtime_dir()), page=page)
        if url is None:
            code = stop(server)
            tail = log_path.read_text(errors="replace").splitlines()[-25:]
            say(f"JupyterLab did not start (exit code {code}); the end of {shown}:\n" + "\n".join(tail))
            return code or 1
        say(f"JupyterLab is running {what} (its log: {shown}); Ctrl-C stops it. Open this URL:")
        print(url, flush=True)
        return server.wait()
    except KeyboardInterrupt:
        say("stopping JupyterLab")
        stop(server)
        return 0


def main(argv: list[str], root: Path = ROOT) -> int:
    notes = workcopy.sync(root)
    new = [n for n in notes if n.kind == "new"]
    if new:
        say(f"copied {len(new)} file(s) from notebooks/ into {workcopy.WORK}/, your working copy: "
            "your notebooks live there (git ignores that folder; a new release never overwrites them)")
    for note in notes:
        if note.kind == "release":
            say(str(note))
    return serve(lab_command(root / workcopy.WORK, argv), root, root / LOG, student_environment(),
                 f"on {workcopy.WORK}/")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
