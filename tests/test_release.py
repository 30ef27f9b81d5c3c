"""notebooks/ is exactly what nbgrader generates from solutions/; committed notebooks carry no outputs; every
notebook follows the course's anatomy (points that add up, tests with docstrings, hidden tests, a written answer)."""
import json
import re
import subprocess

import nbformat
import pytest

from tools import release, roundtrip
from tools.paths import ROOT, assignments, solution_notebook, student_notebook

ASSIGNMENTS = assignments()


def tracked_notebooks():
    out = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    return out or [str(p.relative_to(ROOT)) for p in ROOT.glob("*/*/*.ipynb")]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_notebook_is_in_sync_with_its_solution(assignment, tmp_path):
    course = roundtrip.copy_course(tmp_path)
    fresh = release.release(assignment, root=course)
    assert student_notebook(assignment).read_text() == fresh.read_text(), (
        f"notebooks/{assignment} is out of date: run ./course release")


def test_no_released_notebook_without_a_solution():
    released = sorted(p.name for p in (ROOT / "notebooks").iterdir() if p.is_dir())
    assert released == ASSIGNMENTS


@pytest.mark.parametrize("path", tracked_notebooks())
def test_committed_notebooks_carry_no_outputs(path):
    nb = json.loads((ROOT / path).read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path}: cells {dirty} have outputs; strip them (and regenerate with ./course release)"


def _cells(assignment):
    nb = nbformat.read(solution_notebook(assignment), as_version=4)
    return [(c, c.metadata.get("nbgrader", {})) for c in nb.cells]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_anatomy_of_the_solution_notebook(assignment):
    cells = _cells(assignment)
    answers = [c for c, m in cells if m.get("solution") and c.cell_type == "code"]
    tests = [c for c, m in cells if m.get("grade") and c.cell_type == "code"]
    written = [c for c, m in cells if m.get("solution") and m.get("grade") and c.cell_type == "markdown"]
    assert len(answers) >= 3 and len(tests) >= 4 and written, "an assignment has >= 3 exercises and a written answer"
    for cell in answers:
        assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source
    for cell in tests:
        first = cell.source.lstrip().splitlines()[0]
        assert first.startswith('"""') and first.endswith('"""'), f"test cell without a one-line docstring: {first}"
    assert any("### BEGIN HIDDEN TESTS" in c.source for c in tests), "no hidden tests"
    ids = [m["grade_id"] for _, m in cells if m]
    assert len(ids) == len(set(ids)), "duplicate grade_id"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_part_headings_carry_the_points_their_cells_add_up_to(assignment):
    parts, current = {}, None
    for cell, meta in _cells(assignment):
        heading = re.search(r"^## (Part [A-Z]).*\((\d+) points?\)", cell.source, flags=re.M) if cell.cell_type == "markdown" else None
        if heading:
            current = heading.group(1)
            parts[current] = [int(heading.group(2)), 0]
        elif meta.get("grade") and current:
            parts[current][1] += meta.get("points", 0)
    assert parts, "no '## Part X · ... (N points)' headings"
    wrong = {part: f"heading says {said}, cells give {given}" for part, (said, given) in parts.items() if said != given}
    assert not wrong, wrong


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_notebook_hides_solutions_and_hidden_tests(assignment):
    text = student_notebook(assignment).read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "Model answer"):
        assert marker not in text, f"{marker!r} reached the student version"
    solution_text = solution_notebook(assignment).read_text()
    hidden = re.findall(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", solution_text, flags=re.S)
    for block in hidden:
        for line in block.split("\\n"):
            line = line.strip()
            if len(line) > 25:
                assert line not in text, f"hidden test line reached the student version: {line}"
