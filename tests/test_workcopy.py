"""The student's side without a browser: the working copy (tools/workcopy.py), what ``./course start`` runs
(tools/start.py) with the students' Jupyter settings (tools/student-config/), Binder's files, and the grading
sandbox's kernelspec staying out of every command but ``nbgrader autograde``.

The same things in the real JupyterLab, driven in chromium: tests/test_start.py."""
from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools import start, workcopy
from tools.paths import ROOT

DAY = datetime.date(2026, 3, 4)


def _course(tmp_path: Path, notebooks: dict[str, str]) -> Path:
    """A course folder with notebooks/<id>/<id>.ipynb holding the given text."""
    for name, text in notebooks.items():
        path = tmp_path / "notebooks" / name / f"{name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_first_sync_copies_every_notebook_and_records_its_release(tmp_path):
    course = _course(tmp_path, {"01-a": "release 1 of a", "02-b": "release 1 of b"})
    (course / "notebooks" / "01-a" / ".ipynb_checkpoints").mkdir()
    (course / "notebooks" / "01-a" / ".ipynb_checkpoints" / "01-a-checkpoint.ipynb").write_text("x")
    notes = workcopy.sync(course, DAY)
    assert [(n.kind, n.path.as_posix()) for n in notes] == [("new", "work/01-a/01-a.ipynb"), ("new", "work/02-b/02-b.ipynb")]
    assert (course / "work" / "01-a" / "01-a.ipynb").read_text() == "release 1 of a"
    assert not (course / "work" / "01-a" / ".ipynb_checkpoints").exists()
    state = json.loads((course / "work" / ".course" / "releases.json").read_text())
    assert set(state["copied"]) == {"01-a/01-a.ipynb", "02-b/02-b.ipynb"}
    assert workcopy.sync(course, DAY) == []  # nothing new: nothing to say


def test_a_students_notebook_is_never_overwritten_and_a_new_release_goes_beside_it(tmp_path):
    course = _course(tmp_path, {"01-a": "release 1"})
    workcopy.sync(course, DAY)
    mine = course / "work" / "01-a" / "01-a.ipynb"
    mine.write_text("release 1 + my answers")
    assert workcopy.sync(course, DAY) == []  # my edits alone are not a new release

    (course / "notebooks" / "01-a" / "01-a.ipynb").write_text("release 2")
    notes = workcopy.sync(course, DAY)
    assert [(n.kind, n.path.as_posix(), n.beside.as_posix()) for n in notes] == [
        ("release", "work/01-a/01-a.ipynb", "work/01-a/01-a.release-2026-03-04.ipynb")]
    assert "has a newer release" in str(notes[0]) and "your work/01-a/01-a.ipynb is unchanged" in str(notes[0])
    assert mine.read_text() == "release 1 + my answers"
    assert (course / "work" / "01-a" / "01-a.release-2026-03-04.ipynb").read_text() == "release 2"
    assert workcopy.sync(course, DAY) == []  # said once

    (course / "notebooks" / "01-a" / "01-a.ipynb").write_text("release 3")  # the same day: a name of its own
    notes = workcopy.sync(course, DAY)
    assert [n.beside.name for n in notes] == ["01-a.release-2026-03-04-2.ipynb"]
    assert (course / "work" / "01-a" / "01-a.release-2026-03-04.ipynb").read_text() == "release 2"
    assert mine.read_text() == "release 1 + my answers"


def test_new_notebooks_are_added_and_a_deleted_one_comes_back_from_the_release(tmp_path):
    course = _course(tmp_path, {"01-a": "a"})
    workcopy.sync(course, DAY)
    _course(tmp_path, {"02-b": "b"})
    (course / "work" / "01-a" / "01-a.ipynb").unlink()
    assert sorted((n.kind, n.path.name) for n in workcopy.sync(course, DAY)) == [("new", "01-a.ipynb"), ("new", "02-b.ipynb")]


def test_a_lost_record_saves_beside_only_what_differs(tmp_path):
    course = _course(tmp_path, {"01-a": "a", "02-b": "b"})
    workcopy.sync(course, DAY)
    (course / "work" / "02-b" / "02-b.ipynb").write_text("b + my answers")
    (course / "work" / ".course" / "releases.json").write_text("not json")
    notes = workcopy.sync(course, DAY)
    assert [(n.kind, n.path.name) for n in notes] == [("release", "02-b.ipynb")]  # 01-a equals its release


def test_the_command_line_says_where_the_work_lives(tmp_path):
    course = _course(tmp_path, {"01-a": "a"})
    result = subprocess.run([sys.executable, "-m", "tools.workcopy", "--root", str(course)], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    assert "copied 1 file(s) from notebooks/ into your working copy work/ (git ignores it" in result.stderr
    assert (course / "work" / "01-a" / "01-a.ipynb").is_file()


def test_git_ignores_the_working_copy():
    result = subprocess.run(["git", "check-ignore", "-q", "work/01-learning-rate/01-learning-rate.ipynb"], cwd=ROOT)
    assert result.returncode == 0, "work/ must be git-ignored (.gitignore)"
    assert subprocess.run(["git", "check-ignore", "-q", "notebooks/01-learning-rate/01-learning-rate.ipynb"],
                          cwd=ROOT).returncode == 1


# --- ./course start --------------------------------------------------------------------------------------------

def test_course_start_runs_the_student_launcher():
    text = (ROOT / "course").read_text()
    assert "exec python -m tools.start \"$@\"" in text


def test_the_launcher_puts_the_student_settings_first_and_serves_the_working_copy(tmp_path):
    env = start.student_environment({"JUPYTER_CONFIG_PATH": "/elsewhere", "OTHER": "1"})
    assert env["JUPYTER_CONFIG_PATH"].split(os.pathsep) == [str(start.STUDENT_CONFIG), "/elsewhere"]
    assert start.student_environment({})["JUPYTER_CONFIG_PATH"] == str(start.STUDENT_CONFIG)
    command = start.lab_command(tmp_path / "work", ["--port", "9999"])
    assert command[:3] == [sys.executable, "-m", "jupyterlab"] and command[-2:] == ["--port", "9999"]
    assert f"--ServerApp.root_dir={tmp_path / 'work'}" in command and "--no-browser" in command


def test_the_instructors_launcher_takes_the_student_settings_off_and_serves_the_course_root():
    from tools import formgrader

    elsewhere = os.pathsep.join([str(start.STUDENT_CONFIG), "/elsewhere"])
    assert formgrader.instructor_environment({"JUPYTER_CONFIG_PATH": elsewhere})["JUPYTER_CONFIG_PATH"] == "/elsewhere"
    text = (ROOT / "course").read_text()
    assert "exec python -m tools.formgrader \"$@\"" in text


def test_student_settings_hide_the_instructor_tools_and_the_news():
    page = json.loads((start.STUDENT_CONFIG / "labconfig" / "page_config.json").read_text())["disabledExtensions"]
    for plugin in ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                   "@jupyter/nbgrader:course-list", "@jupyterlab/apputils-extension:announcements",
                   "@jupyterlite/pyodide-kernel-extension"):
        assert page.get(plugin) is True, plugin
    assert not any(page.get(p) for p in ("@jupyter/nbgrader:validate-assignment", "@jupyter/nbgrader:assignment-list",
                                         "@jupyter/nbgrader:menu"))
    server = json.loads((start.STUDENT_CONFIG / "jupyter_server_config.json").read_text())
    extensions = server["ServerApp"]["jpserver_extensions"]
    assert extensions == {"nbgrader.server_extensions.formgrader": False,
                          "nbgrader.server_extensions.course_list": False}


class _FakeServer:
    def __init__(self, pid, code=None):
        self.pid, self.code = pid, code

    def poll(self):
        return self.code


def test_the_url_comes_from_the_servers_runtime_file(tmp_path):
    (tmp_path / "jpserver-42.json").write_text(json.dumps({"url": "http://127.0.0.1:8890/", "token": "abc"}))
    assert start.wait_for_url(_FakeServer(42), tmp_path, timeout=5) == "http://127.0.0.1:8890/lab?token=abc"
    assert start.wait_for_url(_FakeServer(43, code=1), tmp_path, timeout=5) is None  # exited before listening


# --- Binder and conda ------------------------------------------------------------------------------------------

def test_binder_makes_the_same_working_copy_and_settings():
    post_build = (ROOT / "binder" / "postBuild").read_text()
    assert "python -m tools.workcopy" in post_build
    start_script = ROOT / "binder" / "start"
    assert start_script.stat().st_mode & 0o111, "binder/start must be executable"
    result = subprocess.run([str(start_script), sys.executable, "-c",
                             "import os; print(os.environ['JUPYTER_CONFIG_PATH'])"],
                            capture_output=True, text=True, check=True, env={**os.environ, "JUPYTER_CONFIG_PATH": "/x"})
    assert result.stdout.strip().split(os.pathsep) == [str(ROOT / "tools" / "student-config"), "/x"]
    readme = (ROOT / "README.md").read_text()
    assert "?urlpath=lab/tree/work" in readme
    assert "conda activate normalization-course" in readme and "python -m tools.start" in readme


# --- the grading sandbox's kernel ------------------------------------------------------------------------------

LOAD_CONFIG = """
import json, os, sys
sys.argv = json.loads(sys.argv[1])
from traitlets.config import Config
config = Config()
before = os.environ.get("JUPYTER_PATH")
namespace = {"get_config": lambda: config, "__file__": os.path.join("autograder", "nbgrader_config.py")}
exec(compile(open(namespace["__file__"]).read(), namespace["__file__"], "exec"), namespace)
print(json.dumps({"jupyter_path": os.environ.get("JUPYTER_PATH") != before,
                  "kernel_name": config.Execute.get("kernel_name"),
                  "grading": namespace["GRADING"]}))
"""


@pytest.mark.parametrize("argv", [["/venv/bin/jupyter-lab"], ["/venv/bin/nbgrader", "validate", "x.ipynb"],
                                  ["/venv/bin/nbgrader", "generate_assignment", "01-learning-rate"],
                                  ["/venv/bin/jupyter-lab", "autograde"]])
def test_loading_the_nbgrader_config_outside_autograde_leaves_kernels_alone(argv):
    """JupyterLab's nbgrader extension, the Validate button and generate_assignment load this config too."""
    result = subprocess.run([sys.executable, "-c", LOAD_CONFIG, json.dumps(argv)], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    assert json.loads(result.stdout) == {"jupyter_path": False, "kernel_name": None, "grading": False}


@pytest.mark.parametrize("argv", [["/venv/bin/nbgrader", "autograde", "01-learning-rate"],
                                  ["/venv/lib/python3.11/site-packages/nbgrader/__main__.py", "autograde"]])
def test_nbgrader_autograde_gets_the_sandbox_kernel(argv, tmp_path):
    """In a scratch copy of autograder/ (the kernelspec goes into its own autograder/jupyter/)."""
    shutil.copytree(ROOT / "autograder", tmp_path / "autograder", ignore=shutil.ignore_patterns(
        "__pycache__", "jupyter", "submitted", "autograded", "feedback", "*.db", "*.csv"))
    result = subprocess.run([sys.executable, "-c", LOAD_CONFIG, json.dumps(argv)], cwd=tmp_path, capture_output=True,
                            text=True)
    if result.returncode != 0 and "bubblewrap" in result.stderr + result.stdout:
        pytest.skip("bubblewrap is not installed: autograde stops before grading (tests/test_grading.py checks it)")
    assert json.loads(result.stdout) == {"jupyter_path": True, "kernel_name": "course-sandbox", "grading": True}
    assert (tmp_path / "autograder" / "jupyter" / "kernels" / "course-sandbox" / "kernel.json").is_file()
