"""The course where students meet it: the real JupyterLab server, driven in Debian's chromium by Playwright.

A student opens notebook 01 and runs every cell, one after the other as a person does (JupyterLab's "Run All"
stops at the first error): every cell gives the same outcome as in a headless kernel (the check cells raise
NotImplementedError, every other cell runs), and the figures render. Then the student types one exercise's
solution, runs it and its checks (they pass), asks ``selfcheck.report()`` for the score, fills in the remaining
exercises and runs the whole notebook: no error, every figure drawn, every visible check passed.
Screenshots go to _output/screenshots/ (git-ignored).

The browser is /usr/bin/chromium (Debian's package; ./course installs it when run as root), never a downloaded
one. Without it, or without playwright, these tests skip locally with the reason, and fail under CI (CI=true).
Also used by tests/test_site.py: ``browser_context``.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from tools import nbexec
from tools.paths import ROOT, solution_notebook, student_notebook

CHROMIUM = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "_output" / "screenshots"
ASSIGNMENT = "01-learning-rate"
MIN_PLOTS = 3
TOKEN = "course-browser-test"
VIEWPORT = {"width": 1400, "height": 1000}
CHROMIUM_ARGS = ["--headless", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 # nothing leaves the machine: every host name but loopback fails to resolve
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]

pytestmark = pytest.mark.xdist_group("browser-lab")  # one worker: the module's server and browser are shared


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_browser() -> None:
    """Skip (locally) or fail (under CI) when Debian's chromium or playwright is missing."""
    problems = []
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        problems.append(f"Debian's chromium at {CHROMIUM} (apt-get install chromium; ./course installs it as root)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("playwright (.venv/bin/pip install -e '.[course,dev]')")
    if problems:
        message = "the browser tests need " + " and ".join(problems) + ", not found"
        if under_ci():
            pytest.fail(f"{message}; under CI a missing browser is a failure, not a skip")
        pytest.skip(message)


@contextlib.contextmanager
def browser_context(profile: Path, viewport: dict = VIEWPORT):
    """A Playwright browser context in Debian's chromium, with a fresh profile folder; closed on exit."""
    from playwright.sync_api import sync_playwright

    args = list(CHROMIUM_ARGS)
    if os.geteuid() == 0:
        args.append("--no-sandbox")  # chromium's sandbox refuses to run as root
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=args, viewport=viewport,
            chromium_sandbox=False)
        context.set_default_timeout(60_000)
        try:
            yield context
        finally:
            context.close()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_settings(folder: Path) -> None:
    """User settings for a quiet, fully rendered JupyterLab: no news or update checks, every cell in the DOM."""
    settings = {
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    }
    for name, values in settings.items():
        path = folder / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The real JupyterLab server on a loopback port, on a scratch copy of notebooks/: (base URL, root folder)."""
    require_browser()
    scratch = tmp_path_factory.mktemp("lab")
    root = scratch / "notebooks"
    shutil.copytree(ROOT / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    _write_settings(scratch / "settings")
    port = free_port()
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(scratch / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(scratch / "workspaces"), JUPYTER_RUNTIME_DIR=str(scratch / "runtime"))
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
               f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = (scratch / "jupyter.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start:\n{(scratch / 'jupyter.log').read_text()[-3000:]}")
                time.sleep(0.2)
        yield base, root
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


# --- talking to JupyterLab like a person -------------------------------------------------------------------------

PROMPT_DONE = re.compile(r"\[\d+\]")
STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'


def open_notebook(page, base: str, path: str, n_cells: int):
    page.goto(f"{base}/lab/tree/{path}?token={TOKEN}")
    page.wait_for_function(f"() => document.querySelectorAll('.jp-Notebook .jp-Cell').length === {n_cells}")
    page.wait_for_function("() => document.querySelector('.jp-Notebook-ExecutionIndicator')"
                           "?.getAttribute('data-status') === 'idle'")
    return page.locator(".jp-Notebook .jp-Cell")


def run_cell(cell) -> None:
    """Select the cell, press Ctrl+Enter (run in place), and wait until its prompt shows an execution count."""
    cell.locator(".jp-InputPrompt").first.click()
    cell.page.keyboard.press("Control+Enter")
    cell.locator(".jp-InputPrompt").first.filter(has_text=PROMPT_DONE).wait_for()


def set_cell_text(cell, text: str) -> None:
    """Replace the cell's text as a student would: click into it, select all, type (paste) the new text."""
    cell.locator(".cm-content").first.click()
    cell.page.keyboard.press("Control+a")
    cell.page.keyboard.insert_text(text)
    cell.page.keyboard.press("Escape")


def error_text(cell) -> str:
    errors = cell.locator(STDERR)
    return "\n".join(errors.nth(i).inner_text() for i in range(errors.count()))


EXECUTION_COUNT_MAX = ("() => Math.max(0, ...[...document.querySelectorAll('.jp-Notebook .jp-InputPrompt')]"
                       ".map(p => parseInt((p.textContent.match(/\\[(\\d+)\\]/) || [0, 0])[1])))")
# A run is over when some cell got a newer execution count, none is queued or running ("[*]"), the kernel is idle.
RUN_FINISHED = ("(before) => { const prompts = [...document.querySelectorAll('.jp-Notebook .jp-InputPrompt')]"
                ".map(p => p.textContent);"
                " return prompts.some(t => parseInt((t.match(/\\[(\\d+)\\]/) || [0, 0])[1]) > before)"
                " && !prompts.some(t => t.includes('*'))"
                " && document.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status') === 'idle'; }")


def rendered_images(page) -> int:
    """How many output images the browser has decoded and laid out with a non-zero size."""
    return page.evaluate("() => [...document.querySelectorAll('.jp-OutputArea-output img')]"
                         ".filter(img => img.complete && img.naturalWidth > 0 && img.getBoundingClientRect().width > 0)"
                         ".length")


def _headless_errors(path: Path) -> dict[int, str]:
    """cell index -> exception name, for each cell that raises when every cell runs in a headless kernel."""
    nb = nbexec.execute(path, allow_errors=True)
    return {index: name for index, name, _ in nbexec.errors(nb)}


def _grade_ids(path: Path) -> list[dict]:
    return [c.metadata.get("nbgrader", {}) for c in nbformat.read(path, as_version=4).cells]


def test_student_runs_the_notebook_then_solves_an_exercise(lab, tmp_path):
    base, root = lab
    path = root / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    meta = _grade_ids(path)
    expected_errors = _headless_errors(student_notebook(ASSIGNMENT))
    checks = [i for i, m in enumerate(meta) if m.get("grade") and not m.get("solution")]
    assert checks and all(expected_errors.get(i) == "NotImplementedError" for i in checks), expected_errors

    with browser_context(tmp_path / "profile") as context:
        page = context.pages[0] if context.pages else context.new_page()
        cells = open_notebook(page, base, f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb", len(meta))

        # 1. The untouched student notebook, every code cell in turn.
        code = [i for i in range(len(meta)) if "jp-CodeCell" in (cells.nth(i).get_attribute("class") or "")]
        for i in code:
            run_cell(cells.nth(i))
        seen = {i: error_text(cells.nth(i)) for i in code}
        for i in code:
            if i in expected_errors:
                assert expected_errors[i] in seen[i], f"cell {i}: expected {expected_errors[i]}, the browser shows {seen[i][-300:]!r}"
            else:
                assert not seen[i], f"cell {i} ({meta[i].get('grade_id')}) failed in the browser: {seen[i][-300:]}"
        for i in checks:
            assert "NotImplementedError" in seen[i] and "raise NotImplementedError()" in seen[i]
        assert rendered_images(page) >= MIN_PLOTS, "the figures did not render"
        first_error = cells.nth(checks[0]).locator(STDERR).first
        first_error.scroll_into_view_if_needed()
        screenshot(page, "lab-1-student-notebook-run")

        # 2. One exercise solved: type the solution, run it and its checks.
        solutions = {m["grade_id"]: c.source for c, m in
                     ((c, c.metadata.get("nbgrader", {})) for c in nbformat.read(solution_notebook(ASSIGNMENT), as_version=4).cells)
                     if m.get("solution") and c.cell_type == "code"}
        answers = [i for i, m in enumerate(meta) if m.get("solution") and m.get("grade_id") in solutions]
        exercise = answers[0]
        exercise_checks = [i for i in checks if i > exercise and all(not (exercise < j < i) for j in answers)]
        assert exercise_checks, "the first exercise has no check cell after it"
        set_cell_text(cells.nth(exercise), solutions[meta[exercise]["grade_id"]])
        for i in (i for i in code if exercise <= i <= exercise_checks[-1]):  # the answer, its demo, its checks
            run_cell(cells.nth(i))
            assert not error_text(cells.nth(i)), (
                f"cell {i} ({meta[i].get('grade_id')}) fails with the solution: {error_text(cells.nth(i))[-300:]}")
        cells.nth(exercise_checks[-1]).scroll_into_view_if_needed()
        screenshot(page, "lab-2-exercise-solved")

        # 3. The self-check, in a new cell at the end.
        cells.nth(len(meta) - 1).locator(".jp-InputPrompt, .jp-Cell-inputArea").first.click()
        page.keyboard.press("Escape")
        page.keyboard.press("b")  # a new cell below, as in command mode
        new_cell = page.locator(".jp-Notebook .jp-Cell").nth(len(meta))
        set_cell_text(new_cell, "selfcheck.report()")
        run_cell(new_cell)
        report = new_cell.locator(".jp-OutputArea-output").first.inner_text()
        for i in exercise_checks:
            assert re.search(rf"{meta[i]['grade_id']}\s+\d+\s+passed", report), report
        other_checks = [i for i in checks if i not in exercise_checks]
        assert report.count("FAILED") == len(other_checks), report
        assert "hidden tests are not included" in report.lower()
        assert not error_text(new_cell), "selfcheck.report() wrote to stderr"
        new_cell.scroll_into_view_if_needed()
        screenshot(page, "lab-3-selfcheck-report")

        # 4. Every exercise solved, then the whole notebook once more with Run > Run All Cells.
        for i in answers[1:]:
            set_cell_text(cells.nth(i), solutions[meta[i]["grade_id"]])
        last_count = page.evaluate(EXECUTION_COUNT_MAX)
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        everything = page.locator(".jp-Notebook .jp-CodeCell")
        page.wait_for_function(RUN_FINISHED, arg=last_count, timeout=120_000)
        failures = {i: error_text(everything.nth(i)) for i in range(everything.count()) if error_text(everything.nth(i))}
        assert not failures, f"with every solution typed in, cells still fail: {failures}"
        assert rendered_images(page) >= MIN_PLOTS
        report = new_cell.locator(".jp-OutputArea-output").first.inner_text()
        assert "FAILED" not in report and re.search(r"passed: (\d+) of \1\b", report), report
        page.locator(".jp-OutputArea-output img").nth(1).scroll_into_view_if_needed()
        screenshot(page, "lab-4-all-solved-plots")

        # The student's typing reached the notebook file: save and compare with the solution.
        page.keyboard.press("Control+s")
        page.wait_for_function("() => !document.querySelector('.jp-mod-dirty')")
    saved = nbformat.read(path, as_version=4)
    for i in answers:
        assert saved.cells[i].source == solutions[meta[i]["grade_id"]], f"cell {i} was not typed in verbatim"
