"""The nbgrader round trip, per assignment, in a scratch copy of the course.

Release the student version; submit the solution, the untouched student version, and one submission per common
wrong answer (autograder/mistakes/<id>.py); autograde them in one stock ``nbgrader autograde`` batch. Then: the
solution gets every autograded point, the blank gets none, and each mistake loses points on its own exercise only,
with a failing check that names it. One more submission never returns from a cell: the per-cell timeout cuts it
off and the batch still grades everyone else.
"""
from __future__ import annotations

import nbformat
import pytest

from tools import release, roundtrip
from tools.paths import assignments

ASSIGNMENTS = assignments()
CELL_TIMEOUT = 15


def contract_cells(assignment: str, answer_cell: str, losing: set[str] = frozenset()) -> set[str]:
    """Test cells whose hidden contract calls a function of ``answer_cell``, or a function that the cells it loses
    test (one built on it): a mistake there may lose them too."""
    import re

    from tools.paths import ROOT
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
    defined = {name for grade_id, source in cells.items() if grade_id and nb_solution(nb, grade_id)
               for name in re.findall(r"^def (\w+)", source, flags=re.M)}
    names = set(re.findall(r"^def (\w+)", cells.get(answer_cell, ""), flags=re.M))
    names |= {name for cell in losing for name in defined if re.search(rf"\b{name}\(", cells.get(cell, "").split("### BEGIN HIDDEN TESTS")[0])}
    found = set()
    for grade_id, source in cells.items():
        hidden = source.split("### BEGIN HIDDEN TESTS", 1)[1] if "### BEGIN HIDDEN TESTS" in source else ""
        if "# contract:" in hidden and any(re.search(rf"\b{name}\b", hidden) for name in names):
            found.add(grade_id)
    return found


def nb_solution(nb, grade_id: str) -> bool:
    return any(c.metadata.get("nbgrader", {}).get("grade_id") == grade_id and c.metadata.get("nbgrader", {}).get("solution")
               for c in nb.cells)


def _student_id(mistake: dict) -> str:
    return "mistake-" + "".join(ch if ch.isalnum() else "-" for ch in mistake["name"].lower())


@pytest.fixture(scope="module", params=[pytest.param(a, marks=pytest.mark.xdist_group(a)) for a in ASSIGNMENTS])
def graded(request, tmp_path_factory):
    """One autograded batch per assignment: (assignment, scores, course copy, mistakes)."""
    assignment = request.param
    course = roundtrip.copy_course(tmp_path_factory.mktemp(assignment))
    release.release(assignment, root=course)
    mistakes = roundtrip.load_mistakes(assignment)
    roundtrip.submit(course, "solution", assignment, roundtrip.build_submission(course, assignment, "solution"))
    roundtrip.submit(course, "blank", assignment, roundtrip.build_submission(course, assignment, "blank"))
    for mistake in mistakes:
        nb = roundtrip.build_submission(course, assignment, mistake)
        roundtrip.submit(course, _student_id(mistake), assignment, nb)
    # A submission whose first answer cell never returns.
    hang = roundtrip.build_submission(course, assignment, "solution")
    first_answer = next(c for c in hang.cells if c.metadata.get("nbgrader", {}).get("solution")
                        and c.cell_type == "code")
    first_answer.source = "while True:\n    pass\n\n" + first_answer.source
    roundtrip.submit(course, "hangs", assignment, hang)
    result = roundtrip.autograde(course, assignment, f"--Execute.timeout={CELL_TIMEOUT}")
    assert result.returncode == 0, result.stdout + result.stderr
    return assignment, roundtrip.scores(course, assignment), course, mistakes


def test_solution_gets_full_marks(graded):
    assignment, scores, course, _ = graded
    lost = {cell: score for cell, score in scores["solution"].items() if score[0] != score[1]}
    assert scores["solution"] and not lost, (
        f"{assignment}: the solution lost points on {lost}\n{roundtrip.cell_outputs(course, 'solution', assignment)}")


def test_blank_gets_zero(graded):
    assignment, scores, _, _ = graded
    earned = {cell: score for cell, score in scores["blank"].items() if score[0] != 0}
    assert not earned, f"{assignment}: the untouched student version earned points on {earned}"


def test_every_exercise_has_at_least_two_mistakes(graded):
    assignment, _, course, mistakes = graded
    nb = nbformat.read(course / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    exercises = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells
                 if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")]
    counts = {exercise: sum(m["cell"] == exercise for m in mistakes) for exercise in exercises}
    assert all(n >= 2 for n in counts.values()), f"{assignment}: mistakes per exercise {counts}"


def test_each_mistake_loses_points_on_its_own_exercise_with_a_named_message(graded):
    assignment, scores, course, mistakes = graded
    problems = []
    for mistake in mistakes:
        student = _student_id(mistake)
        got = scores[student]
        for cell in mistake["loses"]:
            if got[cell][0] >= got[cell][1]:
                problems.append(f"{mistake['name']!r}: kept full marks on {cell}")
        allowed = (set(mistake["loses"]) | set(mistake.get("may_also_lose", []))  # downstream exercises that use it
                   | contract_cells(assignment, mistake["cell"], set(mistake["loses"]) | set(mistake.get("may_also_lose", []))))
        others = {cell: s for cell, s in got.items() if cell not in allowed and s[0] != s[1]}
        if others:
            problems.append(f"{mistake['name']!r}: also lost points on {others}")
        outputs = roundtrip.cell_outputs(course, student, assignment)
        if not any(mistake["message"] in outputs[cell] for cell in mistake["loses"]):
            shown = {cell: outputs[cell][-400:] for cell in mistake["loses"]}
            problems.append(f"{mistake['name']!r}: no failing check says {mistake['message']!r}; it said {shown}")
    assert not problems, f"{assignment}:\n" + "\n".join(problems)


def test_a_cell_that_never_returns_is_cut_off_and_the_batch_completes(graded):
    assignment, scores, course, mistakes = graded
    assert "hangs" in scores, f"{assignment}: the hanging submission was not graded at all"
    assert {"solution", "blank"} | {_student_id(m) for m in mistakes} <= set(scores)
    outputs = roundtrip.cell_outputs(course, "hangs", assignment)
    assert any("CellTimeoutError" in text for text in outputs.values()), outputs
