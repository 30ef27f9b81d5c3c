"""``./course start`` as a student meets it: the real launcher (tools/start.py) and JupyterLab, driven in Debian's
chromium by Playwright, in a scratch git clone of the course.

- The command prints the URL last, on its own line; JupyterLab serves the working copy ``work/``.
- The Launcher lists exactly one Python kernel, even with the grading sandbox's kernelspec installed and after
  nbgrader's server extension has read the course's settings; the Nbgrader menu has the assignment list but no
  formgrader or course list, there is no Create Assignment panel and no news pop-up; the notebook has Validate.
- A failing check shows its message alone (no traceback frame from helpers/), for the scalar w0 of notebook 01
  too; ``selfcheck.report()`` mid-way says "not run yet" for the exercises below; saving leaves ``git status``
  clean; Validate runs; Ctrl-C stops the server.
- A second start after a new release keeps the student's edits and shows the new release beside them.
Screenshots go to _output/screenshots/ (git-ignored). Without chromium or playwright: skipped locally, failed
under CI (see tests/test_browser.py).
"""
from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from test_browser import (browser_context, error_text, free_port, require_browser, run_cell, screenshot,
                          set_cell_text)
from tools.paths import ROOT, assignments, solution_notebook

pytestmark = pytest.mark.xdist_group("browser-start")  # one worker: JupyterLab servers and browsers are heavy

ASSIGNMENT = "01-learning-rate"
NOTEBOOK = f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
URL = re.compile(r"^http://127\.0\.0\.1:\d+/lab\?token=[0-9a-f]+$")
# A first attempt the exercise allows: w0 stays a scalar (the helpers' gradient then takes a scalar too).
SCALAR_W0 = '''def gradient_descent(grad, w0, eta, n_steps):
    w = w0
    trajectory = [w]
    for _ in range(n_steps):
        w = w - eta * grad(w)
        trajectory.append(w)
    return np.array(trajectory)'''


def _git(course: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=course, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def course(tmp_path):
    """A scratch git repository holding the course's files (what a student's clone has), with the grading
    sandbox's kernelspec installed in it as after a grading run."""
    require_browser()
    course = tmp_path / "course"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (course / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, course / name)
    _git(course, "init", "-q")
    _git(course, "add", "-A")
    _git(course, "-c", "user.name=Student", "-c", "user.email=student@example.org", "commit", "-q", "-m", "clone")
    subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, 'autograder'); import sandbox; "
                    "sandbox.install_kernelspec()"], cwd=course, check=True)
    assert (course / "autograder" / "jupyter" / "kernels" / "course-sandbox" / "kernel.json").is_file()
    return course


class Started:
    """``python -m tools.start`` (what ``./course start`` runs) in ``course``, its output read line by line."""

    def __init__(self, course: Path, scratch: Path):
        scratch.mkdir(parents=True, exist_ok=True)
        settings = scratch / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(json.dumps({"windowingMode": "none"}))  # every cell in the DOM; nothing else is set
        env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH")}
        env.update(JUPYTERLAB_SETTINGS_DIR=str(scratch / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(scratch / "ws"),
                   JUPYTER_RUNTIME_DIR=str(scratch / "runtime"), JUPYTER_CONFIG_DIR=str(scratch / "config"),
                   JUPYTER_DATA_DIR=str(scratch / "data"), PYTHONUNBUFFERED="1")
        self.port = free_port()
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tools.start", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0"],
            cwd=course, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def url(self, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines if URL.match(line)]
            if found:
                return found[0]
            assert self.process.poll() is None, "the start command exited:\n" + "\n".join(self.lines)
            time.sleep(0.2)
        raise AssertionError("no URL within the timeout:\n" + "\n".join(self.lines))

    def api(self, path: str):
        url = self.url()
        token = url.split("token=")[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}?token={token}", timeout=30) as response:
            return json.loads(response.read())

    def stop(self) -> int:
        """Ctrl-C, as a student stops it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=60)
        self.close()
        return code

    def close(self) -> None:
        """Join the reader and close the pipe (left to the garbage collector, it warns inside a later test)."""
        self._reader.join(timeout=10)
        self.process.stdout.close()


@pytest.fixture
def started(course, tmp_path):
    runs = []

    def launch() -> Started:
        runs.append(Started(course, tmp_path / f"jupyter-{len(runs)}"))
        return runs[-1]

    yield launch
    for run in runs:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait(timeout=60)
        run.close()


def _output_text(cell) -> str:
    outputs = cell.locator(".jp-OutputArea-output")
    return "\n".join(outputs.nth(i).inner_text() for i in range(outputs.count()))


def _meta(path: Path) -> list[dict]:
    return [c.metadata.get("nbgrader", {}) for c in nbformat.read(path, as_version=4).cells]


def _solutions() -> dict[str, str]:
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nbformat.read(solution_notebook(ASSIGNMENT), 4).cells
            if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}


def test_start_gives_a_student_their_own_copy_one_kernel_messages_not_tracebacks(course, started, tmp_path):
    lab = started()
    url = lab.url()
    time.sleep(3)  # nothing may come after the URL
    assert lab.lines[-1] == url, lab.lines
    assert any(f"copied {len(assignments())} file(s) from notebooks/ into work/" in line for line in lab.lines), lab.lines
    assert (course / "work" / NOTEBOOK).is_file()

    meta = _meta(course / "work" / NOTEBOOK)
    answers = [i for i, m in enumerate(meta) if m.get("solution") and not m.get("grade") and "grade_id" in m
               and m["grade_id"] in _solutions()]
    checks = [i for i, m in enumerate(meta) if m.get("grade") and not m.get("solution")]
    first_checks = [i for i in checks if answers[0] < i < answers[1]]

    with browser_context(tmp_path / "profile") as context:
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(url)

        # 1. The Launcher: one Python kernel (the sandbox's kernelspec is installed in this course, not listed).
        cards = page.locator(".jp-LauncherCard[data-category='Notebook']")
        cards.first.wait_for()
        page.wait_for_timeout(2000)
        assert cards.count() == 1 and "Python 3" in cards.first.get_attribute("title"), cards.all_inner_texts()
        screenshot(page, "start-1-launcher")

        # 2. The Nbgrader menu: the assignment list (opening it makes nbgrader read the course's settings), no
        #    formgrader or course list; no Create Assignment panel; no news pop-up.
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Nbgrader$")).click()
        items = page.locator(".lm-Menu-content .lm-Menu-itemLabel").all_inner_texts()
        assert "Assignment List" in items and not {"Formgrader", "Course List"} & set(items), items
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Assignment List$")).click()
        page.locator(".lm-TabBar-tabLabel", has_text="Assignments").first.wait_for()
        page.wait_for_timeout(3000)
        assert set(lab.api("/api/kernelspecs")["kernelspecs"]) == {"python3"}
        assert page.get_by_text("Create Assignment").count() == 0
        assert page.get_by_text("official Jupyter news").count() == 0
        screenshot(page, "start-2-assignment-list")

        # 3. The notebook of the working copy, with the Validate button.
        page.goto(url.replace("/lab?", f"/lab/tree/{NOTEBOOK}?"))
        page.wait_for_function(f"() => document.querySelectorAll('.jp-Notebook .jp-Cell').length === {len(meta)}")
        page.wait_for_function("() => document.querySelector('.jp-Notebook-ExecutionIndicator')"
                               "?.getAttribute('data-status') === 'idle'")
        cells = page.locator(".jp-Notebook .jp-Cell")
        validate = page.locator(".jp-NotebookPanel-toolbar .jp-ToolbarButtonComponent-label",
                                has_text=re.compile(r"^Validate$"))
        assert validate.count() == 1
        assert page.get_by_text("official Jupyter news").count() == 0

        # 4. A first attempt that keeps the scalar w0: its check fails with a message, not a traceback.
        code = [i for i in range(len(meta)) if "jp-CodeCell" in (cells.nth(i).get_attribute("class") or "")]
        for i in (i for i in code if i < answers[0]):
            run_cell(cells.nth(i))
            assert not error_text(cells.nth(i)), error_text(cells.nth(i))
        set_cell_text(cells.nth(answers[0]), SCALAR_W0)
        for i in (i for i in code if answers[0] <= i <= first_checks[0]):
            run_cell(cells.nth(i))
        failure = error_text(cells.nth(first_checks[0]))
        assert "has shape (4,), expected (4, 1)" in failure, failure
        assert failure.startswith("CheckFailure: gradient_descent(E = w^2/2, w0=4, eta=0.5, n_steps=3)"), failure
        for frame in ("helpers/", "checks.py", "Traceback", "File ", "matmul", "np.float64"):
            assert frame not in failure, f"{frame!r} in the failure output:\n{failure}"
        assert len(failure.splitlines()) <= 3, failure
        cells.nth(first_checks[0]).scroll_into_view_if_needed()
        screenshot(page, "start-3-failed-check")

        # 5. The exercise solved; then selfcheck.report() right below its checks, mid-way through the notebook.
        set_cell_text(cells.nth(answers[0]), _solutions()[meta[answers[0]]["grade_id"]])
        for i in (i for i in code if answers[0] <= i <= first_checks[-1]):
            run_cell(cells.nth(i))
            assert not error_text(cells.nth(i)), error_text(cells.nth(i))
        cells.nth(first_checks[-1]).locator(".jp-InputPrompt").first.click()
        page.keyboard.press("Escape")
        page.keyboard.press("b")
        report_cell = page.locator(".jp-Notebook .jp-Cell").nth(first_checks[-1] + 1)
        set_cell_text(report_cell, "selfcheck.report()")
        page.keyboard.press("Control+s")  # saved, the report knows which cell it runs in
        page.wait_for_function("() => !document.querySelector('.jp-mod-dirty')")
        run_cell(report_cell)
        report = _output_text(report_cell)
        later = len(checks) - len(first_checks)
        assert f"Visible checks passed: {len(first_checks)} of {len(checks)}," in report, report
        assert f"Failed: 0. Not run yet: {later} " in report, report
        assert report.count("not run yet\n") == later and "FAILED" not in report, report
        assert "(below this cell)" in report, report
        assert not error_text(report_cell)
        report_cell.scroll_into_view_if_needed()
        screenshot(page, "start-4-selfcheck-mid-way")

        # 6. Saved work lives in work/, which git ignores.
        assert _git(course, "status", "--porcelain") == ""
        saved = nbformat.read(course / "work" / NOTEBOOK, as_version=4)
        assert saved.cells[answers[0]].source == _solutions()[meta[answers[0]]["grade_id"]]
        assert saved.cells[first_checks[-1] + 1].source == "selfcheck.report()"

        # 7. Validate runs the notebook in a fresh kernel (no sandbox kernel needed) and reports.
        validate.click()
        dialog = page.locator(".jp-Dialog-content")
        dialog.wait_for(timeout=240_000)
        text = dialog.inner_text()
        assert "No such kernel" not in text and "course-sandbox" not in text, text
        assert "failed" in text.lower() or "NotImplementedError" in text, text
        screenshot(page, "start-5-validate")
        page.locator(".jp-Dialog button", has_text="Ok").click()

        # 8. Validate read the course's nbgrader settings in the server (the grading settings once added the
        #    sandbox's kernel there): still one kernel, in the server and in a new Launcher.
        assert set(lab.api("/api/kernelspecs")["kernelspecs"]) == {"python3"}
        page.reload()
        page.wait_for_function("() => document.querySelector('.jp-Notebook-ExecutionIndicator')"
                               "?.getAttribute('data-status') === 'idle'")
        page.wait_for_timeout(2000)  # the restored layout settles
        page.locator(".lm-DockPanel-tabBar .lm-TabBar-addButton").first.click()  # the "+" of the tabs: a Launcher
        shown = page.locator(".jp-LauncherCard[data-category='Notebook']:visible")
        shown.first.wait_for()
        page.wait_for_timeout(1000)
        screenshot(page, "start-6-launcher-after-validate")
        assert shown.count() == 1, shown.all_inner_texts()
        screenshot(page, "start-6-launcher-after-validate")

    assert lab.stop() == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{lab.port}/api/status", timeout=5)


def test_second_start_after_a_new_release_keeps_the_students_edits_and_shows_the_release_beside(course, started,
                                                                                                 tmp_path):
    first = started()
    first.url()
    assert first.stop() == 0
    mine = course / "work" / NOTEBOOK
    nb = nbformat.read(mine, as_version=4)
    answer = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "gradient_descent")
    nb.cells[answer].source = _solutions()["gradient_descent"]  # the student's saved work
    nbformat.write(nb, mine)

    release = nbformat.read(course / "notebooks" / NOTEBOOK, as_version=4)  # a new release, pulled
    release.cells[0].source += "\n\nRelease two: this paragraph is new."
    nbformat.write(release, course / "notebooks" / NOTEBOOK)
    _git(course, "-c", "user.name=Teacher", "-c", "user.email=teacher@example.org", "commit", "-q", "-am", "release 2")

    second = started()
    url = second.url()
    beside = f"{ASSIGNMENT}.release-{datetime.date.today().isoformat()}.ipynb"
    said = "\n".join(second.lines)
    assert (f"{NOTEBOOK} has a newer release: it is saved beside your copy as work/{ASSIGNMENT}/{beside}; "
            f"your work/{NOTEBOOK} is unchanged") in said, said
    assert second.lines[-1] == url
    assert _git(course, "status", "--porcelain") == ""

    with browser_context(tmp_path / "profile") as context:
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(url.replace("/lab?", f"/lab/tree/{NOTEBOOK}?"))
        cells = page.locator(".jp-Notebook .jp-Cell")
        cells.nth(answer).locator(".cm-content").wait_for()
        assert "trajectory.append(w)" in cells.nth(answer).locator(".cm-content").inner_text()
        assert "Release two" not in cells.first.inner_text()
        listing = page.locator(".jp-DirListing-content .jp-DirListing-itemName")
        listing.filter(has_text=beside).wait_for()
        assert {f"{ASSIGNMENT}.ipynb", beside} <= set(listing.all_inner_texts())
        screenshot(page, "start-7-release-beside")

        page.goto(url.replace("/lab?", f"/lab/tree/{ASSIGNMENT}/{beside}?"))
        page.locator(".jp-NotebookPanel:visible .jp-RenderedMarkdown", has_text="Release two").first.wait_for()
        stub = page.locator(".jp-NotebookPanel:visible .jp-Cell").nth(answer).locator(".cm-content").inner_text()
        assert "raise NotImplementedError" in stub
        screenshot(page, "start-8-new-release")
    assert second.stop() == 0
    assert nbformat.read(mine, as_version=4).cells[answer].source == _solutions()["gradient_descent"]
