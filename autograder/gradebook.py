"""The gradebook (autograder/gradebook.db) is the one record of grades: the table, the CSV and feedback read it.

For every student and assignment in the gradebook (as ``nbgrader export`` lists them):
  autograded  points from the test cells (and any cell without a manual score)
  manual      points a grader gave in formgrader (overrides and written answers) plus extra credit
  pending     points of written answers nobody has graded yet (counted as 0 in the total until then)
  total       autograded + manual - late penalty, what ``nbgrader export`` and the feedback say

``python -m autograder.gradebook`` (``./course feedback``) regenerates feedback for everyone graded, writes
autograder/grades.csv and prints the table: run it after grading written answers in formgrader.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "autograder"
GRADEBOOK = COURSE / "gradebook.db"
RECORDS = COURSE / "records"  # <assignment>/<student>.json: how ./course grade graded it (status, reasons, file)
CSV = COURSE / "grades.csv"
FIXED_COLUMNS = ("student", "assignment", "status", "autograded", "manual", "pending", "total", "max_score",
                 "timestamp", "file", "reasons")


@contextlib.contextmanager
def opened(path: Path = GRADEBOOK):
    """nbgrader's Gradebook on ``path``, without the SQLAlchemy autoflush warnings nbgrader's own code triggers
    ("Object of type <SubmittedAssignment> not in session"): they are about backrefs nbgrader adds explicitly."""
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=SAWarning, message=".*not in session.*")
        with Gradebook(f"sqlite:///{path}") as gradebook:
            yield gradebook


def points(value: float) -> str:
    """11 -> '11', 2.5 -> '2.5'."""
    return f"{value:g}"


def plural(value: float, word: str = "point") -> str:
    return f"{points(value)} {word if value == 1 else word + 's'}"


@dataclass
class Row:
    student: str
    assignment: str
    status: str
    autograded: float = 0.0
    manual: float = 0.0
    pending: float = 0.0
    total: float = 0.0
    max_score: float = 0.0
    timestamp: str = ""
    file: str = ""
    reasons: list[str] = field(default_factory=list)
    cells: dict[str, str] = field(default_factory=dict)  # grade id -> score ("" while pending)

    @property
    def score(self) -> str:
        """'11/13', with what is still to grade: '11/13 (2 points pending)'."""
        text = f"{points(self.total)}/{points(self.max_score)}"
        return text + (f" ({plural(self.pending)} pending)" if self.pending else "")


def record_path(assignment: str, student: str) -> Path:
    return RECORDS / assignment / f"{student}.json"


def read_record(assignment: str, student: str) -> dict:
    path = record_path(assignment, student)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write_record(assignment: str, student: str, record: dict) -> None:
    path = record_path(assignment, student)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")


def submission_row(submission, record: dict) -> Row:
    """A graded submission's row: its points by kind, from the gradebook's grades."""
    row = Row(submission.student.id, submission.assignment.name, record.get("status", "graded"),
              timestamp=str(submission.timestamp or ""), file=record.get("file", ""),
              reasons=list(record.get("reasons", [])))
    for notebook in submission.notebooks:
        for grade in notebook.grades:
            row.max_score += grade.max_score
            if grade.manual_score is not None:
                row.manual += grade.manual_score
            else:
                row.autograded += grade.auto_score or 0.0
            if grade.needs_manual_grade and grade.manual_score is None:
                row.pending += grade.max_score
                row.cells[grade.name] = ""
            else:
                row.cells[grade.name] = points(grade.score)
            row.manual += grade.extra_credit or 0.0
    penalty = submission.late_submission_penalty or 0.0
    row.total = max(0.0, submission.score - penalty)
    if penalty:
        row.reasons.append(f"late penalty {points(penalty)}")
    return row


def rows(path: Path = GRADEBOOK) -> list[Row]:
    """A row for every student and assignment in the gradebook, submitted or not, sorted by assignment."""
    from nbgrader.api import MissingEntry

    result = []
    if not path.exists():
        return result
    with opened(path) as gradebook:
        students = sorted(s.id for s in gradebook.students)
        for assignment in sorted(gradebook.assignments, key=lambda a: a.name):
            for student in students:
                try:
                    submission = gradebook.find_submission(assignment.name, student)
                except MissingEntry:
                    result.append(Row(student, assignment.name, "not submitted", max_score=assignment.max_score))
                    continue
                result.append(submission_row(submission, read_record(assignment.name, student)))
    return result


def cell_order(path: Path = GRADEBOOK) -> list[str]:
    """Every graded cell's id, assignment by assignment in notebook order."""
    with opened(path) as gradebook:
        return [cell.name for assignment in sorted(gradebook.assignments, key=lambda a: a.name)
                for notebook in assignment.notebooks for cell in notebook.grade_cells]


def text_field(value) -> str:
    """Free text (a student id, a file name, reasons) as a CSV field or table column shows it: control characters
    written as escapes, and a leading ``= + - @`` quoted so that a spreadsheet does not read a formula."""
    from autograder.preflight import printable

    text = printable(value, None)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def write_csv(table: list[Row], path: Path, cells: list[str]) -> None:
    """The whole gradebook as CSV: one row per student and assignment; the fixed columns, then each cell's score."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*FIXED_COLUMNS, *cells])
        for r in table:
            writer.writerow([text_field(r.student), r.assignment, r.status, points(r.autograded), points(r.manual),
                             points(r.pending), points(r.total), points(r.max_score), r.timestamp, text_field(r.file),
                             text_field("; ".join(r.reasons)), *(r.cells.get(c, "") for c in cells)])


def print_table(table: list[Row]) -> None:
    if not table:
        return
    width = max(len("student"), *(len(r.student) for r in table)) + 2
    score_width = max(len("score"), *(len(r.score) for r in table)) + 2
    print(f"\n{'student':<{width}}{'assignment':<26}{'score':<{score_width}}{'status':<15}reasons")
    for r in table:
        print(f"{text_field(r.student):<{width}}{r.assignment:<26}{r.score:<{score_width}}{r.status:<15}"
              f"{text_field('; '.join(r.reasons))[:200]}")


def export(path: Path = CSV, gradebook: Path = GRADEBOOK) -> list[Row]:
    """Write the CSV from the whole gradebook; returns its rows."""
    table = rows(gradebook)
    write_csv(table, path, cell_order(gradebook) if gradebook.exists() else [])
    return table


def graded_assignments(root: Path = ROOT) -> list[str]:
    """Assignments with at least one autograded submission."""
    autograded = root / "autograder" / "autograded"
    return sorted({p.name for p in autograded.glob("*/*") if p.is_dir()}) if autograded.is_dir() else []


def regenerate_feedback(assignments: list[str], root: Path = ROOT) -> list[str]:
    """Stock ``nbgrader generate_feedback --force`` for each assignment (everyone graded); returns the failures."""
    from tools.release import nbgrader

    failures = []
    for assignment in assignments:
        run = nbgrader("generate_feedback", assignment, "--force", root=root, check=False)
        if run.returncode != 0:
            failures.append(f"feedback for {assignment} failed:\n{run.stderr[-1500:]}")
    return failures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="./course feedback", description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*", help="only these assignments (default: every one graded)")
    parser.add_argument("--csv", type=Path, default=CSV, help="where to write the grades")
    args = parser.parse_args(argv)
    assignments = args.assignments or graded_assignments()
    if not assignments:
        print("feedback: nothing graded yet (run ./course grade first)", file=sys.stderr)
        return 1
    failures = regenerate_feedback(assignments)
    for failure in failures:
        print(f"feedback: {failure}", file=sys.stderr)
    table = export(args.csv)
    print_table([r for r in table if r.assignment in assignments and r.status != "not submitted"])
    pending = [r for r in table if r.pending]
    print(f"\nfeedback regenerated for {', '.join(assignments)} in {COURSE / 'feedback'}; grades in {args.csv}"
          + (f"; written answers still to grade in {plural(len(pending), 'submission')}" if pending else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
