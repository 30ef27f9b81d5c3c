"""The instructor's grading command on the example submissions: good, partial, mistakes, hostile and broken.

One batch, graded in the sandbox with two workers in a scratch copy of the course. For every case: the batch
completes, honest submissions keep their exact score, no attack gains anything, and the outcome is recorded with a
reason. Grading the batch again gives the same scores. A missing sandbox fails these tests under CI, never skips.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import nbformat
import pytest

from autograder import gradebook
from test_browser import free_port
from tools.paths import ROOT
from tools.roundtrip import copy_repository

pytestmark = pytest.mark.xdist_group("grading")
FULL = 11.0  # autograded points of notebook 01
FIXED_COLUMNS = gradebook.FIXED_COLUMNS
HOST_FILES = [ROOT / "notebooks" / "PWNED.txt", Path("/tmp/course-PWNED.txt"), Path.home() / "course-PWNED.txt"]


def _require_bwrap():
    if shutil.which("bwrap") is None:
        message = "bubblewrap is not installed: the grading sandbox cannot run (./course setup installs it as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _grade(course: Path, submissions: Path, csv_path: Path, *extra: str) -> dict[str, dict]:
    temporary = course.parent / "tmp"  # every temporary folder of the grader lands here (see the test below)
    temporary.mkdir(exist_ok=True)
    run = subprocess.run([sys.executable, "-m", "autograder.grade", str(submissions), "--cell-timeout", "10",
                          "--cell-cpu-seconds", "5",
                          "--wall-seconds", "300", "--csv", str(csv_path), *extra], cwd=course, capture_output=True,
                         text=True, timeout=3000, env=dict(os.environ, TMPDIR=str(temporary)))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    with csv_path.open() as handle:  # the whole gradebook: this course copy grades only notebook 01
        return {row["student"]: row for row in csv.DictReader(handle) if row["assignment"] == "01-learning-rate"}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    _require_bwrap()
    for path in HOST_FILES:
        path.unlink(missing_ok=True)
    course = copy_repository(tmp_path_factory.mktemp("course") / "course")
    submissions = tmp_path_factory.mktemp("submissions")
    build = subprocess.run([sys.executable, "-c", "import json, sys; from pathlib import Path; "
                            "from autograder import examples; print(json.dumps(examples.build(Path(sys.argv[1]))))",
                            str(submissions)], cwd=course, capture_output=True, text=True, check=True)
    expected = json.loads(build.stdout)
    rows = _grade(course, submissions, course / "autograder" / "grades.csv")
    return course, submissions, expected, rows


def _score(row) -> float:
    return float(row["total"])


def test_every_submission_is_graded_or_rejected_with_a_row(batch):
    _, _, expected, rows = batch
    assert set(rows) == set(expected), f"missing: {set(expected) - set(rows)}"
    assert len(expected) >= 12 + 8


def test_honest_submissions_keep_their_exact_score(batch):
    _, _, expected, rows = batch
    problems = []
    for name, want in expected.items():
        row = rows[name]
        if want.get("full") and _score(row) != FULL:
            problems.append(f"{name}: {row['total']} instead of {FULL} ({row['reasons']})")
        if "score" in want and _score(row) != want["score"]:
            problems.append(f"{name}: {row['total']} instead of {want['score']}")
        if want.get("exact"):
            cells = [c for c in row if c not in FIXED_COLUMNS]
            kept = [c for c in want["lost"] if float(row[c]) != 0.0]
            changed = [c for c in cells if c not in want["lost"] and row[c] != rows["good"][c]]
            if kept or changed:
                problems.append(f"{name}: kept points on {kept}; differs from good on {changed}")
    assert not problems, "\n".join(problems)


def test_no_attack_gains_anything(batch):
    _, _, expected, rows = batch
    problems = []
    for name, want in expected.items():
        if not name.startswith("hostile-"):
            continue
        row = rows[name]
        if _score(row) > FULL or _score(row) > want.get("max_score", FULL):
            problems.append(f"{name}: scored {row['total']}")
        for cell in want.get("lost", []):
            if row.get(cell) not in ("0", "", None):
                problems.append(f"{name}: kept {row[cell]} on {cell}")
    assert not problems, "\n".join(problems)


def test_every_outcome_is_recorded_with_its_reason(batch):
    _, _, expected, rows = batch
    missing = {name: (want["reason"], rows[name]["reasons"]) for name, want in expected.items() if "reason" in want
               and not any(r.lower() in rows[name]["reasons"].lower() for r in want["reason"].split("|"))}
    assert not missing, missing
    for name, want in expected.items():
        if "status" in want:
            assert rows[name]["status"] == want["status"], (name, rows[name])


def test_secrets_network_and_host_files_stay_out_of_reach(batch):
    course, _, _, _ = batch
    leaked = []
    for notebook in (course / "autograder" / "autograded").rglob("*.ipynb"):
        outputs = [o for c in json.loads(notebook.read_text())["cells"] for o in c.get("outputs", [])]
        if "ATTACK SUCCEEDED" in json.dumps(outputs):
            leaked.append(notebook.parent.parent.name)
    assert not leaked, f"an attack read a secret, wrote the gradebook or reached the network: {leaked}"
    assert not [p for p in HOST_FILES if p.exists()], "a submission wrote outside its scratch folder"
    assert not list((course / "notebooks").glob("PWNED*"))


def test_the_gradebook_is_intact_and_holds_every_submission(batch):
    course, _, expected, rows = batch
    with sqlite3.connect(course / "autograder" / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        students = {row[0] for row in db.execute("SELECT id FROM student")}
    assert set(expected) <= students


def test_feedback_shows_messages_but_no_hidden_tests(batch):
    course, _, _, _ = batch
    feedback = course / "autograder" / "feedback" / "mistake-start-point-missing" / "01-learning-rate" / "01-learning-rate.html"
    html = feedback.read_text()
    assert "leaving out the start point" in html
    hidden = [line for line in ("expected_steps(", "default_rng(5)", "BEGIN HIDDEN TESTS") if line in html]
    assert not hidden, f"hidden test code in feedback: {hidden}"
    for released in (course / "notebooks").rglob("*.ipynb"):
        assert "BEGIN HIDDEN TESTS" not in released.read_text()


def test_no_hidden_test_line_in_any_output_or_feedback(batch):
    """Hidden test code never enters the kernel, so no attack can print it; feedback is scanned as well."""
    import html

    from autograder.feedback import hidden_lines

    course, _, _, _ = batch
    source = json.loads((course / "solutions" / "01-learning-rate" / "01-learning-rate.ipynb").read_text())
    lines = set().union(*(hidden_lines("".join(c["source"])) for c in source["cells"]))
    assert len(lines) > 20
    found = []
    for notebook in (course / "autograder" / "autograded").rglob("*.ipynb"):
        outputs = json.dumps([c.get("outputs", []) for c in json.loads(notebook.read_text())["cells"]])
        found += [(notebook.parent.parent.name, line) for line in lines if json.dumps(line)[1:-1] in outputs]
    for page in (course / "autograder" / "feedback").rglob("*.html"):
        text = page.read_text()
        found += [(page.parent.parent.name, line) for line in lines if line in text or html.escape(line) in text]
    assert not found, found[:5]


def test_feedback_pages_carry_nothing_live_from_a_submission(batch):
    """No script, event handler, frame, style or remote load from what a student wrote or printed (the hostile
    active-content example puts them in every place feedback shows); the pages' own MathJax is all that runs."""
    from autograder.examples import PROBE
    from autograder.feedback_page import live_content, own_scripts

    course, _, _, _ = batch
    pages = {p.parent.parent.name: p.read_text() for p in (course / "autograder" / "feedback").rglob("*.html")}
    assert PROBE in pages["hostile-active-content"]  # shown, as text
    found = {name: live for name, page in pages.items() if (live := live_content(page, own_scripts()))}
    assert not found, found


@pytest.fixture(scope="module")
def formgrader(batch, tmp_path_factory):
    """``./course formgrader`` on the graded batch's course: (base URL, token, submission ids by student)."""
    course, _, _, _ = batch
    scratch = tmp_path_factory.mktemp("formgrader")
    port, token = free_port(), "formgrader-test-token"
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(scratch / "runtime"), JUPYTER_DATA_DIR=str(scratch / "data"),
               JUPYTERLAB_WORKSPACES_DIR=str(scratch / "workspaces"))
    server = subprocess.Popen([sys.executable, "-m", "tools.formgrader", f"--ServerApp.port={port}",
                               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"], cwd=course,
                              env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        lines = []
        for line in server.stdout:  # the command prints its URL last, then waits (or exits, saying why)
            lines.append(line.rstrip("\n"))
            if line.startswith("http://"):
                break
        assert lines and lines[-1] == f"http://127.0.0.1:{port}/formgrader?token={token}", "\n".join(lines)
        with sqlite3.connect(course / "autograder" / "gradebook.db") as db:
            ids = dict((student, notebook) for notebook, student in db.execute(
                "select n.id, a.student_id from submitted_notebook n join submitted_assignment a "
                "on n.assignment_id = a.id"))
        yield f"http://127.0.0.1:{port}", token, ids
    finally:
        server.send_signal(2)  # Ctrl-C, as the instructor stops it
        server.wait(timeout=60)
        server.stdout.close()


def test_formgrader_shows_submissions_with_nothing_live_from_them(formgrader):
    """Formgrader (the instructor's browser) shows each submission with its outputs and written answers; nothing a
    student wrote or printed runs there: the hostile page has only what the page of an honest one has."""
    from autograder.examples import PROBE
    from autograder.feedback_page import live_content

    base, token, ids = formgrader
    pages = {}
    for student in ("good", "hostile-active-content"):
        with urllib.request.urlopen(f"{base}/formgrader/submissions/{ids[student]}/?token={token}",
                                    timeout=60) as response:
            assert response.status == 200
            pages[student] = response.read().decode()
    graded = [c.metadata["nbgrader"]["grade_id"] for c in nbformat.read(ROOT / "notebooks" / "01-learning-rate" /
              "01-learning-rate.ipynb", as_version=4).cells if c.metadata.get("nbgrader", {}).get("grade")]
    for student, page in pages.items():  # a score box for every graded cell, written answers included
        assert [g for g in graded if f'class="score tabbable" id="{g}"' not in page] == [], student
    assert 'src="data:image/png;base64,' in pages["good"]  # the figures are shown
    assert PROBE in pages["hostile-active-content"]  # shown, as text
    live = {student: [f.replace(ids[student], "ID") for f in live_content(page)] for student, page in pages.items()}
    student_made = [f for f in live["hostile-active-content"] if PROBE in f or "evil.example" in f]
    assert not student_made, student_made
    assert sorted(live["hostile-active-content"]) == sorted(live["good"])


def test_stored_files_stay_under_their_caps_and_nothing_is_left_on_the_host(batch):
    course, _, _, _ = batch
    sizes = {p.parent.parent.name: p.stat().st_size for p in (course / "autograder" / "autograded").rglob("*.ipynb")}
    sizes.update({"feedback " + p.parent.parent.name: p.stat().st_size
                  for p in (course / "autograder" / "feedback").rglob("*.html")})
    assert max(sizes.values()) < 12 << 20, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
    left = list((course.parent / "tmp").iterdir())
    assert not left, left[:5]
    from autograder import sandbox

    assert not sandbox.Cgroup.stale(), "a sandbox's cgroup outlived its launcher"


def test_grading_again_gives_the_same_scores(batch, tmp_path):
    course, submissions, _, rows = batch
    subset = tmp_path / "again"
    for name in ("good", "partial", "mistake-start-point-missing", "hostile-monkeypatch-numpy", "hostile-infinite-loop",
                 "hostile-lying-eq"):
        shutil.copytree(submissions / name, subset / name)
    again = _grade(course, subset, tmp_path / "again.csv", "--no-feedback")
    for name, row in again.items():
        assert (row["total"], row["status"]) == (rows[name]["total"], rows[name]["status"]), name


def test_a_missing_sandbox_stops_grading_with_a_message(batch, tmp_path):
    course, submissions, _, _ = batch
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))  # no /usr/bin: bwrap cannot be found
    run = subprocess.run([sys.executable, "-m", "autograder.grade", str(submissions / "good")], cwd=course, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "bubblewrap" in run.stderr and "nothing was graded" in run.stderr
    stock = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", "01-learning-rate"], cwd=course, env=env,
                           capture_output=True, text=True, timeout=120)
    assert stock.returncode != 0 and "bubblewrap" in stock.stdout + stock.stderr
