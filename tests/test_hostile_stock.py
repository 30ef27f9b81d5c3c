"""The same attacks under stock ``nbgrader autograde`` run from the course root (no grading command around it).

The verdict is computed by the execute step configured in autograder/nbgrader_config.py, so the stock path is
as safe as ``./course grade``: every attack on the verdict and every lying answer loses the attacked exercise,
the honest submission beside them keeps full marks, files planted next to the notebook shadow nothing, and no
line of hidden test code reaches an output or the feedback. CPU hogs, CPU burners and fork bombs cost only their own
submission; metadata of the wrong types is repaired; a file nested too deeply or too large to read is reported as
an error for that student before nbgrader parses it, and the batch goes on; nothing is left in the temporary folder.
"""
from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder import examples, sandbox
from autograder.feedback import hidden_lines
from tools.release import nbgrader
from tools.roundtrip import copy_course, scores

pytestmark = pytest.mark.xdist_group("grading")
ASSIGNMENT = examples.ASSIGNMENT
PLANTED = {"ipykernel_launcher.py": "open('/tmp/course-PWNED.txt', 'w').write('x')\nraise SystemExit(0)\n",
           "numpy.py": "allclose = lambda *a, **k: True\n", "helpers.py": "raise SystemExit(0)\n"}


@pytest.fixture(scope="module")
def stock(tmp_path_factory):
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is not installed: the grading sandbox cannot run")
    Path("/tmp/course-PWNED.txt").unlink(missing_ok=True)
    course = copy_course(tmp_path_factory.mktemp("stock") / "course")
    built = tmp_path_factory.mktemp("built")
    expected = examples.build(built)
    chosen = ["good", "mistake-start-point-missing"] + ["hostile-" + n for n in (*examples.VERDICT_ATTACKS,
                                                                               *examples.LYING_ANSWERS)]
    chosen += ["hostile-blank-plus-transformer", "hostile-print-history", "hostile-active-content",
               "hostile-plant-runtime-folder", "hostile-plant-runtime-folder-again", "hostile-cpu-hog-children",
               "hostile-cpu-burner", "hostile-fork-bomb", "broken-metadata-types", "broken-deep-json",
               "broken-huge-json"]
    for name in chosen:
        folder = course / "autograder" / "submitted" / name / ASSIGNMENT
        folder.mkdir(parents=True)
        shutil.copy2(built / name / f"{ASSIGNMENT}.ipynb", folder / f"{ASSIGNMENT}.ipynb")
    planted = course / "autograder" / "submitted" / "planted-files" / ASSIGNMENT
    planted.mkdir(parents=True)
    shutil.copy2(built / "good" / f"{ASSIGNMENT}.ipynb", planted / f"{ASSIGNMENT}.ipynb")
    for name, text in PLANTED.items():
        (planted / name).write_text(text)
    expected["planted-files"] = {"full": True}
    generate = nbgrader("generate_assignment", ASSIGNMENT, "--force", root=course, check=False)
    assert generate.returncode == 0, generate.stderr[-2000:]
    temporary = tmp_path_factory.mktemp("tmp")  # every temporary folder of nbgrader and the sandbox lands here
    run = nbgrader("autograde", ASSIGNMENT, "--force", "--Execute.timeout=10", "--GradeOutsideKernel.test_timeout=10",
                   "--GradeOutsideKernel.cell_cpu_seconds=5", root=course, check=False, timeout=3000,
                   env={"TMPDIR": str(temporary)})
    left = sorted(p.name for p in temporary.iterdir())
    feedback = nbgrader("generate_feedback", ASSIGNMENT, "--force", root=course, check=False, timeout=600)
    return (course, {name: expected[name] for name in [*chosen, "planted-files"]}, scores(course, ASSIGNMENT), run,
            feedback, left)


def test_every_submission_is_graded(stock):
    _, expected, got, run, _, _ = stock
    assert set(got) == set(expected), (sorted(set(expected) - set(got)), run.stderr[-3000:])


def test_attacks_lose_the_attacked_exercise_and_honest_work_keeps_full_marks(stock):
    _, expected, got, _, _, _ = stock
    problems = []
    for name, want in expected.items():
        cells = got.get(name, {})
        total = sum(score for score, _ in cells.values())
        if want.get("full") and total != examples_full(cells):
            problems.append(f"{name}: {total}")
        lost = want.get("lost", [])
        if [c for c in lost if cells.get(c, (0, 0))[0] != 0]:
            problems.append(f"{name}: kept points on {lost}")
        if total > want.get("max_score", 11.0):
            problems.append(f"{name}: {total} above {want['max_score']}")
    assert not problems, problems


def examples_full(cells) -> float:
    return sum(maximum for _, maximum in cells.values())


def test_planted_files_shadow_nothing(stock):
    """Files next to the notebook shadow no module; files left in a kernel's socket folder, /tmp or /dev/shm reach
    no later kernel (the two runtime-folder examples look for each other's)."""
    course = stock[0]
    assert not Path("/tmp/course-PWNED.txt").exists()
    leaked = [notebook.parent.parent.name for notebook in (course / "autograder" / "autograded").rglob("*.ipynb")
              if examples.LEAK in json.dumps([c.get("outputs", []) for c in json.loads(notebook.read_text())["cells"]])]
    assert not leaked, leaked


def test_feedback_pages_carry_nothing_live_from_a_submission(stock):
    from autograder.feedback_page import live_content, own_scripts

    course = stock[0]
    pages = {p.parent.parent.name: p.read_text() for p in (course / "autograder" / "feedback").rglob("*.html")}
    assert examples.PROBE in pages["hostile-active-content"]
    found = {name: live for name, page in pages.items() if (live := live_content(page, own_scripts()))}
    assert not found, found


def test_no_hidden_test_line_in_outputs_or_feedback(stock):
    course, expected, _, _, feedback, _ = stock
    source = nbformat.read(course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    lines = set().union(*(hidden_lines(c.source) for c in source.cells))
    found = []
    for notebook in (course / "autograder" / "autograded").rglob("*.ipynb"):
        outputs = json.dumps([c.get("outputs", []) for c in json.loads(notebook.read_text())["cells"]])
        found += [(notebook.parent.parent.name, line) for line in lines if json.dumps(line)[1:-1] in outputs]
    pages = list((course / "autograder" / "feedback").rglob("*.html"))
    assert len(pages) == len([w for w in expected.values() if w.get("status") != "rejected"]), feedback.stderr[-2000:]
    for page in pages:
        text = page.read_text()
        found += [(page.parent.parent.name, line) for line in lines if line in text or html.escape(line) in text]
    assert not found, found[:5]


def test_unreadable_files_are_reported_before_parsing_and_the_batch_goes_on(stock):
    course, expected, got, run, _, _ = stock
    log = run.stdout + run.stderr
    assert "nested 3000 levels deep" in log and "read at all" in log, log[-3000:]
    for name in ("broken-deep-json", "broken-huge-json"):
        assert not (course / "autograder" / "autograded" / name).exists()
        assert sum(score for score, _ in got[name].values()) == 0
    assert "nbgrader metadata malformed" in log
    assert sum(score for score, _ in got["good"].values()) == examples_full(got["good"])


def test_nothing_is_left_in_the_temporary_folder_or_the_cgroups(stock):
    _, _, _, _, _, left = stock
    assert not left, left[:5]
    assert not sandbox.Cgroup.stale()
