"""A class on JupyterHub, end to end: the course's hub (tools/hub/) with one instructor and two students.

Real JupyterHub, real configurable-http-proxy, on loopback; the three users are Unix users made here (useradd,
homes 0700), each user's server a process of that user (LocalProcessSpawner). The assignment goes round with stock
nbgrader over its exchange: the instructor releases it; the students log in through the proxy, fetch, edit and
submit it through their own servers (nbgrader's assignment-list REST handlers, /user/<name>/assignments/...); the
instructor collects, grades with stock `nbgrader autograde` (the course's sandboxed execute step), generates and
releases feedback; the students fetch it. Students see neither solutions nor hidden tests nor each other's work.

It fails (never skips) when a part is missing: jupyterhub, the proxy, bubblewrap, useradd. It needs root to make
users: as another user it skips, except under CI. Each step's time is printed and written to
_output/hub-timings.txt.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from autograder.feedback import hidden_lines
from tools.hub import user_env
from tools.paths import ROOT, solution_notebook
from tools.roundtrip import copy_course, copy_repository, load_mistakes, scores

try:
    import requests  # a dependency of jupyterhub
except ImportError:  # reported by the fixture ``parts`` as a missing part
    requests = None

ASSIGNMENT = "01-learning-rate"
COURSE_ID = "normalization-course"
pytestmark = pytest.mark.xdist_group("hub")  # one set of Unix users and one hub for the module

INSTRUCTOR = "course-instructor"
STUDENTS = ("course-alice", "course-bob")
MARK = "normalization-course hub test user"  # the GECOS field of the users this test makes (and may remove)
PASSWORD = "hub-test-shared-password"
PROXY = ROOT / ".venv" / "hub-proxy" / "node_modules" / ".bin" / "configurable-http-proxy"
TIMINGS = ROOT / "_output" / "hub-timings.txt"


def _missing_parts() -> list[str]:
    missing = [] if requests else ["requests (a dependency of jupyterhub)"]
    if shutil.which("jupyterhub", path=str(Path(sys.executable).parent)) is None:
        missing.append("jupyterhub (the 'hub' extra of pyproject.toml; ./course setup installs it)")
    if not PROXY.is_file():
        missing.append(f"configurable-http-proxy at {PROXY} (./course setup installs it with npm)")
    for tool, package in (("bwrap", "bubblewrap"), ("useradd", "passwd"), ("userdel", "passwd"),
                          ("runuser", "util-linux")):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (Debian package {package})")
    return missing


@pytest.fixture(scope="module")
def parts():
    missing = _missing_parts()
    if missing:
        pytest.fail("the hub test cannot run: missing " + "; ".join(missing))
    if os.geteuid() != 0:
        message = "the hub test makes Unix users: it needs root"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)


# ---- steps and their times ------------------------------------------------------------------------------------

class Steps:
    """Times of the lifecycle's steps, in order."""

    def __init__(self):
        self.times: list[tuple[str, float]] = []
        self.notes: list[str] = []

    @contextlib.contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        yield
        self.times.append((name, time.perf_counter() - start))

    def table(self) -> str:
        width = max(len(name) for name, _ in self.times)
        lines = [f"{name:<{width}}  {seconds:6.2f} s" for name, seconds in self.times]
        total = sum(seconds for _, seconds in self.times)
        return "\n".join(lines + [f"{'total':<{width}}  {total:6.2f} s", *self.notes])


# ---- Unix users ---------------------------------------------------------------------------------------------------

def _pids_of(user: str) -> list[int]:
    uid = pwd.getpwnam(user).pw_uid
    pids = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                pids.append(int(entry.name))
    return pids


def _remove_user(user: str) -> None:
    """Remove a user this test made (its processes first, by pid); refuse any other user."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return
    if entry.pw_gecos != MARK:
        raise RuntimeError(f"user {user} exists and was not made by this test: not touching it")
    for pid in _pids_of(user):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    subprocess.run(["userdel", "-r", user], capture_output=True)


@pytest.fixture(scope="module")
def users(parts):
    names = (INSTRUCTOR, *STUDENTS)
    for name in names:
        _remove_user(name)  # left over from an interrupted run
        subprocess.run(["useradd", "--create-home", "--comment", MARK, "--shell", "/bin/bash", name], check=True,
                       capture_output=True)
        os.chmod(pwd.getpwnam(name).pw_dir, 0o700)  # as HOME_MODE 0700 makes them; Debian's default is 0755
    yield {name: pwd.getpwnam(name) for name in names}
    for name in names:
        _remove_user(name)


def resident_mb(user: str) -> float:
    """The resident memory of all of ``user``'s processes, in MB."""
    total = 0
    for pid in _pids_of(user):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def run_as(user: str, argv: list[str], env: dict, cwd: Path | str | None = None, timeout: float = 600,
           check: bool = True) -> subprocess.CompletedProcess:
    """``argv`` as ``user`` (its uid, gid and no other group), with exactly ``env`` plus HOME, USER and LOGNAME."""
    entry = pwd.getpwnam(user)
    full_env = {**env, "HOME": entry.pw_dir, "USER": user, "LOGNAME": user, "LANG": "C.UTF-8"}
    result = subprocess.run(argv, user=entry.pw_uid, group=entry.pw_gid, extra_groups=[], env=full_env,
                            cwd=cwd or entry.pw_dir, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} as {user} exited {result.returncode}:\n"
                             f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result


# ---- the hub ------------------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def scratch(parts):
    """A folder every user can traverse (pytest's tmp_path is root's only): exchange, hub state, users' env."""
    folder = Path(tempfile.mkdtemp(prefix="course-hub-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def install(scratch) -> Path:
    """The course as the hub runs it: this repository when every user can read it, else a copy they can read."""
    if user_env.readable_by_others(ROOT / "tools" / "hub" / "jupyterhub_config.py"):
        return ROOT
    copy = copy_repository(scratch / "course-install")
    subprocess.run(["chmod", "-R", "a+rX", str(copy)], check=True)
    return copy


@pytest.fixture(scope="module")
def users_python(scratch, install) -> Path:
    """The environment the users' servers run from: the course's own when others can run it, else a hard-linked
    copy they can run (tools/hub/user_env.py)."""
    python = Path(sys.prefix) / "bin" / "python"
    if install == ROOT and user_env.runnable_by_others(python):
        return python
    return user_env.build(scratch / "users-env", course=None if install == ROOT else install)


@pytest.fixture(scope="module")
def hub(users, scratch, install, users_python):
    port = _free_port()
    env = {**os.environ,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "COURSE_HUB_INSTRUCTORS": INSTRUCTOR, "COURSE_HUB_STUDENTS": ",".join(STUDENTS),
           "COURSE_HUB_PASSWORD": PASSWORD, "COURSE_HUB_PORT": str(port),
           "COURSE_HUB_API_PORT": str(_free_port()), "COURSE_HUB_PROXY_API_PORT": str(_free_port()),
           "COURSE_HUB_STATE": str(scratch / "hub-state"), "COURSE_HUB_EXCHANGE": str(scratch / "exchange"),
           "COURSE_HUB_USER_ENV": str(users_python.parent.parent), "COURSE_HUB_PROXY": str(PROXY)}
    log = open(scratch / "hub.log", "w")
    start = time.perf_counter()
    process = subprocess.Popen([str(Path(sys.executable).parent / "jupyterhub"), "-f",
                                str(install / "tools" / "hub" / "jupyterhub_config.py")],
                               cwd=scratch, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"the hub exited with {process.returncode}:\n{(scratch / 'hub.log').read_text()[-4000:]}")
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{url}/hub/api", timeout=5).status_code == 200:  # through the proxy
                    break
            if time.perf_counter() - start > 120:
                pytest.fail(f"the hub did not answer in 120 s:\n{(scratch / 'hub.log').read_text()[-4000:]}")
            time.sleep(0.2)
        yield {"url": url, "exchange": scratch / "exchange", "python": users_python, "install": install,
               "started": time.perf_counter() - start, "log": scratch / "hub.log"}
    finally:
        process.send_signal(signal.SIGTERM)  # the hub stops the users' servers and its proxy
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


class HubUser:
    """One user in a browser: logged in through the proxy, talking to their own server over its REST API."""

    def __init__(self, url: str, name: str):
        self.url, self.name = url, name
        self.session = requests.Session()

    def log_in_and_start(self, timeout: float = 180) -> None:
        self.session.get(f"{self.url}/hub/login", timeout=30)
        login = self.session.post(f"{self.url}/hub/login", timeout=60,
                                  data={"username": self.name, "password": PASSWORD,
                                        "_xsrf": self.session.cookies.get("_xsrf", path="/hub/")})
        assert login.status_code == 200 and "/hub/login" not in login.url, (login.status_code, login.url)
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:  # the server starts; then the hub's OAuth lets the browser in
            page = self.session.get(f"{self.url}/user/{self.name}/lab", timeout=60)
            if page.status_code == 200 and page.url.endswith(f"/user/{self.name}/lab"):
                return
            time.sleep(0.5)
        raise AssertionError(f"{self.name}'s server did not start in {timeout} s (last: {page.status_code} "
                             f"{page.url})")

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        xsrf = self.session.cookies.get("_xsrf", path=f"/user/{self.name}/")
        headers = {"X-XSRFToken": xsrf} if xsrf else {}
        return self.session.request(method, f"{self.url}/user/{self.name}/{path}", headers=headers, timeout=300,
                                    **kwargs)

    def assignments(self, action: str | None = None) -> list[dict]:
        """nbgrader's assignment list (GET /assignments) or one of its actions (fetch, submit, fetch_feedback)."""
        if action is None:
            answer = self.request("GET", "assignments", params={"course_id": COURSE_ID})
        else:
            answer = self.request("POST", f"assignments/{action}",
                                  data={"course_id": COURSE_ID, "assignment_id": ASSIGNMENT})
        assert answer.status_code == 200, (action, answer.status_code, answer.text[:2000])
        body = answer.json()
        assert body["success"], (action, body)
        return body["value"]

    def read(self, path: str) -> str:
        answer = self.request("GET", f"api/contents/{path}", params={"type": "file", "format": "text"})
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:500])
        return answer.json()["content"]

    def listing(self, path: str) -> list[str]:
        answer = self.request("GET", f"api/contents/{path}")
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:500])
        return [entry["name"] for entry in answer.json()["content"]]

    def save_notebook(self, path: str, nb) -> None:
        answer = self.request("PUT", f"api/contents/{path}",
                              data=json.dumps({"type": "notebook", "format": "json", "content": nb}))
        assert answer.status_code in (200, 201), (path, answer.status_code, answer.text[:500])


# ---- what must stay unseen ----------------------------------------------------------------------------------------

def _secrets_of_solution() -> dict[str, set[str]]:
    """Lines that must never reach a student: hidden test lines and the solutions' own lines."""
    nb = nbformat.read(solution_notebook(ASSIGNMENT), as_version=4)
    hidden, solution = set(), set()
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        hidden |= hidden_lines(cell.source)
        if meta.get("solution") and cell.cell_type == "code":
            inside = cell.source.split("### BEGIN SOLUTION", 1)[-1].split("### END SOLUTION", 1)[0]
            solution |= {line.strip() for line in inside.splitlines() if len(line.strip()) >= 24}
    assert hidden and solution
    return {"hidden": hidden, "solution": solution}


def _answers(assignment_nb: dict, mistake: dict | None = None) -> dict:
    """The fetched notebook with its answer cells filled from the solution (one of them wrong, with a mistake)."""
    from tools.roundtrip import apply_mistake

    solution = nbformat.read(solution_notebook(ASSIGNMENT), as_version=4)
    sources = {c.metadata["nbgrader"]["grade_id"]: c.source for c in solution.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in assignment_nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if cell["metadata"].get("nbgrader", {}).get("solution"):
            cell["source"] = sources[grade_id]
            if mistake and grade_id == mistake["cell"]:
                cell["source"] = apply_mistake(cell["source"], mistake)
    return assignment_nb


PROBE = r"""
import json, os, sys
outcomes = {}
for kind, path in json.loads(sys.argv[1]).items():
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").read(1)
        outcomes[kind] = "read"
    except OSError as error:
        outcomes[kind] = type(error).__name__
print(json.dumps(outcomes))
"""


def probe_as(user: str, python: Path, paths: dict[str, Path]) -> dict[str, str]:
    """For each path, what ``user`` gets when listing or reading it: "read" or the error's name."""
    result = run_as(user, [str(python), "-I", "-c", PROBE, json.dumps({k: str(v) for k, v in paths.items()})],
                    env={"PATH": "/usr/bin:/bin"}, cwd="/")
    return json.loads(result.stdout)


# ---- the lifecycle ------------------------------------------------------------------------------------------------

def test_a_class_on_jupyterhub(hub, users):
    steps = Steps()
    steps.times.append(("hub and proxy up (answering through the proxy)", hub["started"]))
    python, exchange = hub["python"], hub["exchange"]
    instructor_home = Path(users[INSTRUCTOR].pw_dir)
    course = instructor_home / "course"
    # The instructor's course folder: the course's nbgrader layout (config, solutions, releases, autograder/).
    copy_course(course)
    subprocess.run(["chown", "-R", f"{INSTRUCTOR}:{INSTRUCTOR}", str(course)], check=True)
    instructor_env = {"PATH": f"{python.parent}:/usr/bin:/bin",
                      "JUPYTER_CONFIG_PATH": str(hub["install"] / "tools" / "hub" / "jupyter-config"),
                      "COURSE_HUB_EXCHANGE": str(exchange)}

    def nbgrader(*args: str) -> subprocess.CompletedProcess:
        return run_as(INSTRUCTOR, [str(python.parent / "nbgrader"), *args], env=instructor_env, cwd=course)

    secrets = _secrets_of_solution()
    mistake = load_mistakes(ASSIGNMENT)[0]
    alice, bob = (HubUser(hub["url"], name) for name in STUDENTS)

    with steps("instructor: nbgrader generate_assignment"):
        nbgrader("generate_assignment", ASSIGNMENT, "--force")
    with steps("instructor: nbgrader release_assignment"):
        nbgrader("release_assignment", ASSIGNMENT, "--force")
    assert (exchange / COURSE_ID / "outbound" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()

    for student in (alice, bob):
        with steps(f"{student.name}: log in through the proxy, server started"):
            student.log_in_and_start()
    for student in (alice, bob):
        steps.notes.append(f"memory of {student.name}'s server (no kernel running): "
                           f"{resident_mb(student.name):.0f} MB resident")
    with steps("students: list assignments (GET /user/<name>/assignments)"):
        for student in (alice, bob):
            listed = student.assignments()
            assert [(a["assignment_id"], a["status"]) for a in listed] == [(ASSIGNMENT, "released")], listed
    with steps("students: fetch (POST /user/<name>/assignments/fetch)"):
        for student in (alice, bob):
            listed = student.assignments("fetch")
            assert [a["status"] for a in listed if a["assignment_id"] == ASSIGNMENT] == ["fetched"], listed

    notebook_path = f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
    fetched = alice.read(notebook_path)
    assert "BEGIN HIDDEN TESTS" not in fetched and "BEGIN SOLUTION" not in fetched
    leaked = {line for line in secrets["hidden"] | secrets["solution"] if line in fetched}
    assert not leaked, f"the released notebook shows solution or hidden-test lines: {sorted(leaked)[:5]}"

    with steps("students: answer and save (PUT /user/<name>/api/contents)"):
        alice.save_notebook(notebook_path, _answers(json.loads(fetched)))
        bob.save_notebook(notebook_path, _answers(json.loads(bob.read(notebook_path)), mistake))
    with steps("students: submit (POST /user/<name>/assignments/submit)"):
        for student in (alice, bob):
            listed = student.assignments("submit")
            assert any(a["assignment_id"] == ASSIGNMENT and a["status"] == "submitted" for a in listed), listed

    # Students never see each other's work, the instructor's course folder or another student's server.
    inbound = exchange / COURSE_ID / "inbound"
    submissions = {path.name.split("+")[0]: path for path in inbound.iterdir()}
    assert set(submissions) == set(STUDENTS), sorted(submissions)
    assert (inbound.stat().st_mode & 0o7777, inbound.stat().st_uid) == (0o2733, users[INSTRUCTOR].pw_uid)
    bob_name = submissions[bob.name].name
    assert len(bob_name.split("+")) == 4, bob_name  # student+assignment+timestamp+random: not to be guessed
    seen = probe_as(alice.name, python, {
        "the exchange's inbound folder (everyone's submissions)": inbound,
        "bob's submission without its random part": inbound / bob_name.rsplit("+", 1)[0] / f"{ASSIGNMENT}.ipynb",
        "bob's home (his working copy, nbgrader's cache)": Path(users[bob.name].pw_dir),
        "bob's working copy": Path(users[bob.name].pw_dir) / notebook_path,
        "the instructor's home": instructor_home,
        "the instructor's solution": course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
        "the released assignment (to compare)": exchange / COURSE_ID / "outbound" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
    })
    expected = {kind: "PermissionError" for kind in seen}
    expected["bob's submission without its random part"] = "FileNotFoundError"
    expected["the released assignment (to compare)"] = "read"
    assert seen == expected
    other = alice.session.get(f"{hub['url']}/user/{bob.name}/api/contents/{notebook_path}", timeout=60)
    assert other.status_code == 403 and '"content"' not in other.text, (other.status_code, other.url, other.text[:300])

    with steps("instructor: nbgrader collect"):
        nbgrader("collect", ASSIGNMENT)
    for student in STUDENTS:
        assert (course / "autograder" / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()
    with steps("instructor: nbgrader autograde (2 submissions, sandboxed)"):
        nbgrader("autograde", ASSIGNMENT, "--force")
    got = scores(course, ASSIGNMENT)
    assert all(score == top for score, top in got[alice.name].values()), got[alice.name]
    for cell in mistake["loses"]:
        score, top = got[bob.name][cell]
        assert score < top, (cell, got[bob.name])
    assert 0 < sum(s for s, _ in got[bob.name].values()) < sum(t for _, t in got[bob.name].values())

    with steps("instructor: nbgrader generate_feedback"):
        nbgrader("generate_feedback", ASSIGNMENT, "--force")
    with steps("instructor: nbgrader release_feedback"):
        nbgrader("release_feedback", ASSIGNMENT)
    with steps("students: fetch feedback (POST /user/<name>/assignments/fetch_feedback)"):
        for student in (alice, bob):
            student.assignments("fetch_feedback")

    for student, phrase in ((alice, None), (bob, mistake["message"])):
        stamps = student.listing(f"{ASSIGNMENT}/feedback")
        assert len(stamps) == 1, stamps
        page = student.read(f"{ASSIGNMENT}/feedback/{stamps[0]}/{ASSIGNMENT}.html")
        assert "Score" in page or "score" in page
        leaked = {line for line in secrets["hidden"] if line in page}
        assert not leaked, f"{student.name}'s feedback shows hidden-test lines: {sorted(leaked)[:5]}"
        if phrase:
            assert phrase in page, f"bob's feedback does not name his mistake ({phrase!r})"
    seen = probe_as(alice.name, python, {"everyone's released feedback": exchange / COURSE_ID / "feedback"})
    assert seen == {"everyone's released feedback": "PermissionError"}

    report = steps.table()
    print("\n" + report)
    TIMINGS.parent.mkdir(parents=True, exist_ok=True)
    TIMINGS.write_text(report + "\n")


def test_the_instructor_grades_hostile_work_as_a_normal_user(users, users_python):
    """``./course grade`` run by a normal user (the hub's instructor, no root): the sandbox's non-root path (a user
    namespace of its own per kernel, its process limit counted there), with an honest submission beside a fork
    bomb and a CPU hog with busy children. The batch completes, the honest one keeps full marks, the hostile ones
    are graded with the reason, and nothing of the instructor's is left running or in the temporary folder."""
    from autograder import examples

    home = Path(users[INSTRUCTOR].pw_dir)
    course = copy_repository(home / "course-grading")
    built = home / "examples"
    expected = examples.build(built)
    submissions = home / "export"
    chosen = ("good", "hostile-fork-bomb", "hostile-cpu-hog-children")
    for name in chosen:
        shutil.copytree(built / name, submissions / name)
    subprocess.run(["chown", "-R", f"{INSTRUCTOR}:{INSTRUCTOR}", str(course), str(built), str(submissions)],
                   check=True)
    before = {path.name for path in Path(tempfile.gettempdir()).iterdir()}
    running = set(_pids_of(INSTRUCTOR))  # the hub's server of the instructor, if the lifecycle test left one
    grades = course / "autograder" / "grades.csv"
    run = run_as(INSTRUCTOR, [str(users_python), "-m", "autograder.grade", str(submissions), "--workers", "2",
                              "--no-feedback", "--cell-timeout", "10", "--cell-cpu-seconds", "5", "--wall-seconds",
                              "300", "--csv", str(grades)],
                 env={"PATH": f"{users_python.parent}:/usr/bin:/bin"}, cwd=course, timeout=1200, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    with grades.open() as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle) if row["assignment"] == examples.ASSIGNMENT}
    assert set(rows) == set(chosen), sorted(rows)
    assert float(rows["good"]["total"]) == 11.0, rows["good"]
    for name in chosen[1:]:
        want = expected[name]
        assert float(rows[name]["total"]) <= want.get("max_score", 11.0), rows[name]
        assert any(r.lower() in rows[name]["reasons"].lower() for r in want["reason"].split("|")), rows[name]
    time.sleep(1)
    assert not set(_pids_of(INSTRUCTOR)) - running, "processes the grading command started still run"
    uid = users[INSTRUCTOR].pw_uid
    left = sorted(path.name for path in Path(tempfile.gettempdir()).iterdir()
                  if path.name not in before and path.lstat().st_uid == uid)
    assert not left, f"left in the temporary folder: {left}"


def test_relocatable_runpath_keeps_the_size():
    binary = b"\x7fELF....libpython3.11.so.1.0\0/root/.pyenv/versions/3.11.7/lib\0libc.so.6\0"
    patched = user_env.relocatable_runpath(binary, "/root/.pyenv/versions/3.11.7/lib")
    assert len(patched) == len(binary)
    assert b"\0$ORIGIN/../lib\0" in patched and b"/root" not in patched and patched.endswith(b"\0libc.so.6\0")
    assert user_env.relocatable_runpath(binary, "/elsewhere/lib") == binary
