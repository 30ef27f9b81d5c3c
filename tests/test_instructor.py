"""The instructor's flow with real exports: every file accounted for, one gradebook, written answers, stock nbgrader.

Collecting is checked on exports built here the way Canvas, Moodle, Blackboard, macOS's "Compress" and nbgrader
write them (no grading: fast). Then one course copy, made a git repository like a fresh clone, is graded twice
(three submissions in all, graded once and reused by the tests that follow, in file order): the CSV holds both
runs; the table, the CSV, ``nbgrader export`` and the feedback agree before and after a manual grade entered through
nbgrader's API; the demo leaves that course's gradebook byte-identical; the README's stock commands run as typed.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import collect, examples
from tools.paths import ROOT
from tools.roundtrip import copy_repository

pytestmark = pytest.mark.xdist_group("instructor")
ASSIGNMENT = "01-learning-rate"
MONDAY, TUESDAY = (2026, 3, 2, 10, 0, 0), (2026, 3, 3, 9, 30, 0)


def _require_bwrap():
    if shutil.which("bwrap") is None:
        message = "bubblewrap is not installed: the grading sandbox cannot run (./course setup installs it as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory) -> dict[str, bytes]:
    """Notebook 01 as a student hands it in: solved, untouched, half done."""
    folder = tmp_path_factory.mktemp("examples")
    examples.build(folder)
    return {name: (folder / name / f"{ASSIGNMENT}.ipynb").read_bytes() for name in ("good", "blank", "partial")}


def _zip(path: Path, entries: list[tuple[str, bytes, tuple]]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data, when in entries:
            archive.writestr(zipfile.ZipInfo(name, date_time=when), data)
    return path


def canvas_zip(folder: Path, nb: dict) -> Path:
    """Canvas's "Download Submissions": a resubmission (Canvas renames it -1), a late one, another file name."""
    return _zip(folder / "canvas.zip", [
        (f"smithjohn_12345_678901_{ASSIGNMENT}.ipynb", nb["blank"], MONDAY),
        (f"smithjohn_12345_678901_{ASSIGNMENT}-1.ipynb", nb["good"], TUESDAY),
        (f"doejane_late_23456_678902_{ASSIGNMENT}.ipynb", nb["partial"], MONDAY),
        ("leeanna_34567_678903_my homework.ipynb", nb["good"], MONDAY)])


def moodle_zip(folder: Path, nb: dict) -> Path:
    """Moodle's "Download all submissions" in folders; an online text beside the file; another file name."""
    return _zip(folder / "moodle.zip", [
        (f"Anna Müller_1001_assignsubmission_file_/{ASSIGNMENT}.ipynb", nb["good"], MONDAY),
        ("Bob Stone_1002_assignsubmission_file_/Untitled.ipynb", nb["partial"], MONDAY),
        ("Bob Stone_1002_assignsubmission_onlinetext_/onlinetext.html", b"<p>see my notebook</p>", MONDAY)])


def folder_zip(folder: Path, nb: dict, students=("alice", "bob")) -> Path:
    """A submissions/ folder compressed on a Mac: one top folder, __MACOSX, .DS_Store, a checkpoint."""
    entries = [(f"submissions/{s}/{ASSIGNMENT}.ipynb", nb["good" if i == 0 else "blank"], MONDAY)
               for i, s in enumerate(students)]
    entries += [("submissions/.DS_Store", b"\0\0\0\1Bud1", MONDAY),
                (f"submissions/{students[0]}/.ipynb_checkpoints/{ASSIGNMENT}-checkpoint.ipynb", nb["blank"], MONDAY),
                (f"__MACOSX/submissions/{students[0]}/._{ASSIGNMENT}.ipynb", b"\0\5\26\7\0\2", MONDAY)]
    return _zip(folder / "folder.zip", entries)


def blackboard_zip(folder: Path, nb: dict) -> Path:
    """Blackboard's naming, which nbgrader zip_collect's documentation uses: two attempts and a receipt."""
    return _zip(folder / "blackboard.zip", [
        (f"{ASSIGNMENT}_jdoe_attempt_2026-03-02-10-00-00_{ASSIGNMENT}.ipynb", nb["blank"], MONDAY),
        (f"{ASSIGNMENT}_jdoe_attempt_2026-03-03-08-00-00_{ASSIGNMENT}.ipynb", nb["good"], MONDAY),
        (f"{ASSIGNMENT}_jdoe_attempt_2026-03-03-08-00-00.txt", b"Name: J Doe", MONDAY)])


def nbgrader_zip(folder: Path, nb: dict) -> Path:
    """nbgrader's submitted/ folder zipped, a timestamp.txt per submission; a student's zip inside."""
    inner = folder / "inner.zip"
    _zip(inner, [("work/01 final.ipynb", nb["partial"], MONDAY)])
    return _zip(folder / "nbgrader.zip", [
        (f"submitted/kim/{ASSIGNMENT}/{ASSIGNMENT}.ipynb", nb["good"], MONDAY),
        (f"submitted/kim/{ASSIGNMENT}/timestamp.txt", b"2026-03-02 10:00:00.000000 UTC", MONDAY),
        (f"submitted/lou/{ASSIGNMENT}/{ASSIGNMENT}.ipynb", nb["blank"], MONDAY),
        ("submitted/max/handin.zip", inner.read_bytes(), MONDAY)])


def _collect(export: Path, mapping: dict | None = None) -> collect.Collection:
    names = sorted(p.name for p in (ROOT / "notebooks").iterdir() if p.is_dir())
    with collect.opened(export) as folder:
        return collect.collect(folder, ROOT, names, mapping=mapping)


def _outcomes(found: collect.Collection) -> dict[str, tuple]:
    return {f.relative: (f.outcome, f.student, f.assignment) for f in found.files}


def test_canvas_export_every_file_accounted_for(notebooks, tmp_path):
    found = _collect(canvas_zip(tmp_path, notebooks))
    assert _outcomes(found) == {
        f"smithjohn_12345_678901_{ASSIGNMENT}.ipynb": ("superseded", "smithjohn", ASSIGNMENT),
        f"smithjohn_12345_678901_{ASSIGNMENT}-1.ipynb": ("submission", "smithjohn", ASSIGNMENT),
        f"doejane_late_23456_678902_{ASSIGNMENT}.ipynb": ("submission", "doejane", ASSIGNMENT),
        "leeanna_34567_678903_my homework.ipynb": ("submission", "leeanna", ASSIGNMENT)}
    assert collect.summary(found) == "found 4 notebooks: 3 submissions, 1 superseded, 0 skipped"
    by_name = {f.relative: f for f in found.files}
    assert "marked late by Canvas" in by_name[f"doejane_late_23456_678902_{ASSIGNMENT}.ipynb"].notes
    assert f"-1.ipynb" in by_name[f"smithjohn_12345_678901_{ASSIGNMENT}.ipynb"].detail


def test_a_student_list_maps_lms_ids(notebooks, tmp_path):
    ids = tmp_path / "ids.csv"
    ids.write_text("lms_id,student_id\n12345,s1001\n23456,s1002\n")
    found = _collect(canvas_zip(tmp_path, notebooks), collect.read_student_map(ids))
    students = {f.relative: f.student for f in found.submissions}
    assert sorted(students.values()) == ["leeanna", "s1001", "s1002"]
    leeanna = next(f for f in found.submissions if f.student == "leeanna")
    assert any("not in the student list" in note for note in leeanna.notes)


def test_moodle_export_every_file_accounted_for(notebooks, tmp_path):
    found = _collect(moodle_zip(tmp_path, notebooks))
    assert _outcomes(found) == {
        f"Anna Müller_1001_assignsubmission_file_/{ASSIGNMENT}.ipynb": ("submission", "anna-muller", ASSIGNMENT),
        "Bob Stone_1002_assignsubmission_file_/Untitled.ipynb": ("submission", "bob-stone", ASSIGNMENT),
        "Bob Stone_1002_assignsubmission_onlinetext_/onlinetext.html": ("ignored", "", "")}
    assert collect.summary(found) == "found 2 notebooks: 2 submissions, 0 superseded, 0 skipped; 1 other file ignored"


def test_zipped_folder_with_top_folder_and_macosx(notebooks, tmp_path):
    found = _collect(folder_zip(tmp_path, notebooks))
    assert _outcomes(found) == {
        f"submissions/alice/{ASSIGNMENT}.ipynb": ("submission", "alice", ASSIGNMENT),
        f"submissions/bob/{ASSIGNMENT}.ipynb": ("submission", "bob", ASSIGNMENT),
        "submissions/.DS_Store": ("ignored", "", ""),
        f"submissions/alice/.ipynb_checkpoints/{ASSIGNMENT}-checkpoint.ipynb": ("skipped", "", ""),
        f"__MACOSX/submissions/alice/._{ASSIGNMENT}.ipynb": ("skipped", "", "")}
    assert collect.summary(found) == ("found 4 notebooks: 2 submissions, 0 superseded, 2 skipped (1 macOS metadata "
                                      "(__MACOSX), 1 Jupyter checkpoint); 1 other file ignored")


def test_one_students_folder_zipped_is_that_student(notebooks, tmp_path):
    export = _zip(tmp_path / "one.zip", [(f"alice/{ASSIGNMENT}.ipynb", notebooks["good"], MONDAY)])
    assert _outcomes(_collect(export)) == {f"alice/{ASSIGNMENT}.ipynb": ("submission", "alice", ASSIGNMENT)}


def test_a_file_named_after_another_student_belongs_to_the_folder_it_is_in(notebooks, tmp_path):
    """A student's upload name is the student's choice: in a student's folder (or a folder the LMS named) the
    folder decides, with a note; a timestamp.txt a student handed in says nothing about when."""
    claim = f"{ASSIGNMENT}_victim_attempt_2099-12-31-23-59-59_{ASSIGNMENT}.ipynb"
    export = _zip(tmp_path / "folders.zip", [
        (f"victim/{ASSIGNMENT}.ipynb", notebooks["good"], MONDAY),
        (f"mallory/{claim}", notebooks["blank"], TUESDAY),
        (f"mallory/{ASSIGNMENT}.ipynb", notebooks["partial"], MONDAY),
        ("mallory/timestamp.txt", b"2001-02-03 04:05:06.000000 UTC", MONDAY),
        (f"Eve Doe_1003_assignsubmission_file_/{claim}", notebooks["blank"], MONDAY)])
    found = _collect(export)
    assert {f.relative: (f.outcome, f.student) for f in found.files if f.is_notebook} == {
        f"victim/{ASSIGNMENT}.ipynb": ("submission", "victim"),
        f"mallory/{claim}": ("submission", "mallory"),
        f"mallory/{ASSIGNMENT}.ipynb": ("superseded", "mallory"),
        f"Eve Doe_1003_assignsubmission_file_/{claim}": ("submission", "eve-doe")}
    planted = next(f for f in found.files if f.relative == f"mallory/{claim}")
    assert any("in a student's folder" in note for note in planted.notes), planted.notes
    assert all(f.timestamp.year > 2001 for f in found.submissions)


def test_blackboard_and_nbgrader_layouts(notebooks, tmp_path):
    found = _collect(blackboard_zip(tmp_path, notebooks))
    assert [(f.outcome, f.student) for f in found.files if f.is_notebook] == [("superseded", "jdoe"),
                                                                              ("submission", "jdoe")]
    found = _collect(nbgrader_zip(tmp_path, notebooks))
    assert {f.relative: (f.outcome, f.student) for f in found.files} == {
        f"submitted/kim/{ASSIGNMENT}/{ASSIGNMENT}.ipynb": ("submission", "kim"),
        f"submitted/kim/{ASSIGNMENT}/timestamp.txt": ("ignored", ""),
        f"submitted/lou/{ASSIGNMENT}/{ASSIGNMENT}.ipynb": ("submission", "lou"),
        "submitted/max/handin.zip": ("ignored", ""),
        "submitted/max/handin/work/01 final.ipynb": ("submission", "max")}
    kim = next(f for f in found.submissions if f.student == "kim")
    assert f"{kim.timestamp:%Y-%m-%d %H:%M}" == "2026-03-02 10:00"


# --- one course, graded twice -----------------------------------------------------------------------------------

def _run(course: Path, *args: str, tmp: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    env = dict(os.environ, TMPDIR=str(tmp))
    run = subprocess.run([sys.executable, "-m", *args], cwd=course, env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def _csv(path: Path) -> list[dict]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def course(tmp_path_factory, notebooks):
    """A fresh clone of the course (a git repository of its own) graded twice: Canvas, then a zipped folder."""
    _require_bwrap()
    course = copy_repository(tmp_path_factory.mktemp("clone") / "course")
    (course / ".venv").symlink_to(ROOT / ".venv")  # what ./course setup would make
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=course, check=True)
    (course / ".git" / "info" / "exclude").write_text(".venv\n")  # a symlink, which the .venv/ pattern misses
    subprocess.run([*git, "add", "-A"], cwd=course, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "clone"], cwd=course, check=True)
    exports = tmp_path_factory.mktemp("exports")
    tmp = tmp_path_factory.mktemp("tmp")
    first = _zip(exports / "first.zip", [  # Canvas: a resubmission over a blank first try, and a late partial
        (f"smithjohn_12345_678901_{ASSIGNMENT}.ipynb", notebooks["blank"], MONDAY),
        (f"smithjohn_12345_678901_{ASSIGNMENT}-1.ipynb", notebooks["good"], TUESDAY),
        (f"doejane_late_23456_678902_{ASSIGNMENT}.ipynb", notebooks["partial"], MONDAY)])
    runs = [_run(course, "autograder.grade", str(first), "--workers", "2", tmp=tmp)]
    second = folder_zip(exports, notebooks, students=("alice",))
    runs.append(_run(course, "autograder.grade", str(second), "--workers", "2", tmp=tmp))
    return course, runs, tmp


def test_every_run_starts_by_accounting_for_every_file(course):
    _, runs, _ = course
    assert runs[0].stdout.splitlines()[0] == "found 3 notebooks: 2 submissions, 1 superseded, 0 skipped"
    assert runs[1].stdout.splitlines()[0] == ("found 3 notebooks: 1 submission, 0 superseded, 2 skipped (1 macOS "
                                              "metadata (__MACOSX), 1 Jupyter checkpoint); 1 other file ignored")


def test_files_csv_has_a_row_per_file(course):
    path, _, _ = course
    rows = {r["file"]: r for r in _csv(path / "autograder" / "files.csv")}
    assert set(rows) == {f"submissions/alice/{ASSIGNMENT}.ipynb", "submissions/.DS_Store",
                         f"submissions/alice/.ipynb_checkpoints/{ASSIGNMENT}-checkpoint.ipynb",
                         f"__MACOSX/submissions/alice/._{ASSIGNMENT}.ipynb"}
    assert rows[f"submissions/alice/{ASSIGNMENT}.ipynb"]["outcome"] == "graded"


def test_the_csv_after_two_runs_holds_both_runs_students(course):
    path, _, _ = course
    rows = {(r["student"], r["assignment"]): r for r in _csv(path / "autograder" / "grades.csv")}
    graded = {key: r for key, r in rows.items() if r["status"] != "not submitted"}
    assert set(graded) == {("smithjohn", ASSIGNMENT), ("doejane", ASSIGNMENT), ("alice", ASSIGNMENT)}
    assert graded[("smithjohn", ASSIGNMENT)]["file"] == f"smithjohn_12345_678901_{ASSIGNMENT}-1.ipynb"
    for r in graded.values():
        assert float(r["pending"]) == 2 and float(r["total"]) == float(r["autograded"]) + float(r["manual"])
    assert {r["status"] for key, r in rows.items() if key not in graded} <= {"not submitted"}


def test_output_is_quiet_and_counts_right(course):
    _, runs, tmp = course
    for run in runs:
        output = run.stdout + run.stderr
        assert "SAWarning" not in output and not re.search(r"\b1 points", output) and "has changed" not in output
    assert "2 submissions in" in runs[0].stdout and "2 graded, 0 rejected, 0 failed" in runs[0].stdout
    assert not list(tmp.iterdir()), f"left behind: {list(tmp.iterdir())}"


def _written_cell() -> str:
    nb = nbformat.read(ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    return next(c.metadata.nbgrader["grade_id"] for c in nb.cells if c.cell_type == "markdown"
                and c.metadata.get("nbgrader", {}).get("grade") and c.metadata["nbgrader"].get("solution"))


def _totals(course: Path, report: str) -> dict[str, dict[str, float]]:
    """Each graded student's total as the table, the CSV, nbgrader export and the feedback page give it."""
    table = {m[1]: float(m[2]) for m in re.finditer(rf"^(\S+)\s+{ASSIGNMENT}\s+([\d.]+)/", report, flags=re.M)}
    grades = {r["student"]: float(r["total"]) for r in _csv(course / "autograder" / "grades.csv")
              if r["assignment"] == ASSIGNMENT and r["status"] != "not submitted"}
    subprocess.run([str(course / ".venv" / "bin" / "nbgrader"), "export"], cwd=course, check=True,
                   capture_output=True)
    export = {r["student_id"]: float(r["score"]) for r in _csv(course / "grades.csv") if r["assignment"] == ASSIGNMENT}
    feedback = {}
    for student in grades:
        html = (course / "autograder" / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
        feedback[student] = float(re.search(r"<h4>[^<]*\(Score: ([\d.]+) /", html)[1])
    return {"table": table, "csv": grades, "export": {s: export[s] for s in grades}, "feedback": feedback}


def test_totals_agree_before_and_after_a_manual_grade(course):
    path, _, tmp = course
    report = _run(path, "autograder.gradebook", tmp=tmp).stdout
    before = _totals(path, report)
    assert len({json.dumps(v, sort_keys=True) for v in before.values()}) == 1, before
    html = (path / "autograder" / "feedback" / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "written answers: not graded yet" in html and "Score: 0 / 2" not in html
    assert not re.search(r'<script[^>]* src="http', html) and "window.MathJax" in html  # MathJax in the page

    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{path / 'autograder' / 'gradebook.db'}") as gradebook:
        grade = gradebook.find_grade(_written_cell(), ASSIGNMENT, ASSIGNMENT, "alice")
        grade.manual_score = 1.5
        grade.needs_manual_grade = False
        gradebook.db.commit()
    report = _run(path, "autograder.gradebook", tmp=tmp).stdout
    after = _totals(path, report)
    assert len({json.dumps(v, sort_keys=True) for v in after.values()}) == 1, after
    assert after["csv"]["alice"] == before["csv"]["alice"] + 1.5
    alice = next(r for r in _csv(path / "autograder" / "grades.csv") if r["student"] == "alice")
    assert (alice["manual"], alice["pending"]) == ("1.5", "0")
    html = (path / "autograder" / "feedback" / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "not graded yet" not in html and "Score: 1.5 / 2" in html


def _tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not {"jupyter", "__pycache__"} & set(p.parts)}


def test_the_demo_leaves_the_course_untouched(course):
    path, _, tmp = course
    before = _tree_digest(path / "autograder")
    run = _run(path, "autograder.demo", "--only", "good,broken-invalid-json", "--workers", "2", tmp=tmp)
    assert "2 submissions in" in run.stdout and "1 graded, 1 rejected, 0 failed" in run.stdout, run.stdout
    assert _tree_digest(path / "autograder") == before
    assert not list(tmp.iterdir()), f"left behind: {list(tmp.iterdir())}"


def test_readme_stock_commands_run_as_typed_after_grading(course):
    path, _, tmp = course
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- stock-nbgrader:[^>]*-->\n```bash\n(.*?)```", readme, flags=re.S)[1]
    notebook = (path / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_bytes()
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=path, capture_output=True, text=True,
                         timeout=900, env=dict(os.environ, TMPDIR=str(tmp)))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    log = run.stdout + run.stderr
    assert "has changed" not in log and "Skipping existing" not in log and "SAWarning" not in log
    assert "autograded" in log and (path / "grades.csv").is_file()
    exported = {r["student_id"] for r in _csv(path / "grades.csv") if r["raw_score"] not in ("", "0.0")}
    assert {"smithjohn", "doejane", "alice"} <= exported
    assert (path / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_bytes() == notebook
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=path,
                            capture_output=True, text=True, check=True).stdout
    assert status == "", f"nbgrader wrote files git does not ignore:\n{status}"
    assert not list(tmp.iterdir()), f"left behind: {list(tmp.iterdir())}"
