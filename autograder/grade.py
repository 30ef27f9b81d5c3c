"""The instructor's grading command: ``./course grade SUBMISSIONS [--assignment ID] [--workers N]``.

SUBMISSIONS is a folder or a zip file. Inside, a submission is found in any of these layouts:
  <student>/<assignment>/<assignment>.ipynb     (nbgrader's submitted/ layout)
  <student>/<name>.ipynb                        (one folder per student)
  <assignment>_<student>_attempt_<timestamp>_<file>.ipynb   (nbgrader zip_collect's example naming; --regexp)

Each submission is checked (autograder/preflight.py), then graded by stock ``nbgrader autograde`` in a scratch copy
of the course of its own, its kernel in the sandbox (autograder/sandbox.py), on all cores in parallel. Results are
merged one at a time into the course's gradebook (autograder/gradebook.db) and autograded/ folder, feedback is
generated (hidden tests and tracebacks removed) and grades are exported to CSV. A crash, hang or bomb costs only
its own submission; every outcome is recorded with its reason. Running it again on the same input gives the same
scores and replaces the earlier results.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder import preflight, sandbox
from tools.release import nbgrader

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "autograder"
ZIP_REGEXP = r"(?P<assignment>[\w-]+?)_(?P<student_id>\w+)_attempt_(?P<timestamp>[0-9\-]+)_(?P<file_id>[\w-]+)\.ipynb$"
COURSE_MODULES = ("nbgrader_config.py", "sandbox.py", "feedback.py", "feedback_page.py", "overwrite_cells.py")
TIMESTAMP = "2000-01-01 00:00:00.000000 UTC"


@dataclass
class Submission:
    student: str
    assignment: str
    path: Path
    timestamp: str = TIMESTAMP
    reasons: list[str] = field(default_factory=list)


@dataclass
class Result:
    student: str
    assignment: str
    scores: dict[str, tuple[float, float]]  # test cell -> (score, max)
    reasons: list[str]
    seconds: float
    autograded: Path | None = None  # the scratch course holding the autograded folder and gradebook
    status: str = "graded"

    @property
    def total(self) -> float:
        return sum(score for score, _ in self.scores.values())


def known_assignments() -> list[str]:
    """Assignments with a solution and a released student notebook."""
    return sorted(p.name for p in (ROOT / "solutions").iterdir()
                  if (p / f"{p.name}.ipynb").is_file() and (ROOT / "notebooks" / p.name / f"{p.name}.ipynb").is_file())


# --- collecting ---------------------------------------------------------------------------------------------------

def collect(source: Path, assignment: str | None, regexp: str = ZIP_REGEXP) -> list[Submission]:
    """The submissions in a folder or zip file (see the module docstring for the layouts)."""
    if source.is_file() and zipfile.is_zipfile(source):
        folder = Path(tempfile.mkdtemp(prefix="course-submissions-"))
        with zipfile.ZipFile(source) as archive:
            for member in archive.infolist():  # no absolute paths or .. in member names
                target = (folder / member.filename).resolve()
                if folder.resolve() in target.parents and not member.is_dir():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(member))
        source = folder
    if not source.is_dir():
        raise SystemExit(f"grade: {source} is neither a folder nor a zip file")
    names = known_assignments()
    found: dict[tuple[str, str], Submission] = {}
    for path in sorted(source.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        relative = path.relative_to(source)
        match = re.match(regexp, path.name)
        if match:
            student, guess = match.group("student_id"), match.group("assignment")
            timestamp = match.groupdict().get("timestamp") or TIMESTAMP
        elif len(relative.parts) >= 2:
            student, guess, timestamp = relative.parts[0], (relative.parts[1] if len(relative.parts) > 2
                                                            else path.stem), TIMESTAMP
        else:
            print(f"grade: skipped {relative}: cannot tell whose it is (see --help for the layouts)", file=sys.stderr)
            continue
        target = assignment or (guess if guess in names else identify(path, names))
        submission = Submission(re.sub(r"[^\w.-]", "_", student), target or "", path,
                                _nbgrader_timestamp(timestamp))
        if target is None:
            print(f"grade: skipped {relative}: unknown assignment {guess!r}; use --assignment", file=sys.stderr)
            continue
        if path.name != f"{target}.ipynb":
            submission.reasons.append(f"notebook named {path.name}; graded as {target}.ipynb")
        found[(submission.student, target)] = submission
    return list(found.values())


def identify(path: Path, names: list[str]) -> str | None:
    """The assignment whose released cells (by grade_id) the notebook at ``path`` shares most, or None."""
    try:
        cells = json.loads(path.read_text()).get("cells", [])
        ids = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in cells if isinstance(c, dict)}
    except (OSError, ValueError, AttributeError):
        return None
    overlap = {}
    for name in names:
        release = json.loads((ROOT / "notebooks" / name / f"{name}.ipynb").read_text())
        released = {c["metadata"].get("nbgrader", {}).get("grade_id") for c in release["cells"]} - {None}
        overlap[name] = len(ids & released) / max(1, len(released))
    best = max(overlap, key=overlap.get, default=None)
    return best if best and overlap[best] >= 0.5 else None


def _nbgrader_timestamp(text: str) -> str:
    parts = re.findall(r"\d+", text)
    if len(parts) >= 6:
        y, mo, d, h, mi, s = parts[:6]
        return f"{y}-{mo}-{d} {h}:{mi}:{s}.000000 UTC"
    return TIMESTAMP


# --- grading one submission (in a worker process) -----------------------------------------------------------------

def scratch_course(assignment: str, gradebook: Path) -> Path:
    """A course directory of its own: configuration, the assignment's source and a copy of the gradebook."""
    course = Path(tempfile.mkdtemp(prefix="course-grading-"))
    (course / "autograder").mkdir()
    shutil.copy2(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    for name in COURSE_MODULES:
        shutil.copy2(COURSE / name, course / "autograder" / name)
    shutil.copytree(COURSE / "templates", course / "autograder" / "templates")
    shutil.copytree(ROOT / "solutions" / assignment, course / "solutions" / assignment)
    shutil.copy2(gradebook, course / "autograder" / "gradebook.db")
    return course


def grade_one(submission: Submission, gradebook: Path, limits: dict, cell_timeout: int) -> Result:
    """Pre-flight, then stock nbgrader autograde in a scratch course; never raises for a bad submission."""
    start = time.perf_counter()
    release = ROOT / "notebooks" / submission.assignment / f"{submission.assignment}.ipynb"
    checked = preflight.check(submission.path, release)
    reasons = submission.reasons + checked.reasons
    if checked.rejected:
        return Result(submission.student, submission.assignment, {}, reasons, time.perf_counter() - start,
                      status="rejected")
    course = scratch_course(submission.assignment, gradebook)
    folder = course / "autograder" / "submitted" / submission.student / submission.assignment
    folder.mkdir(parents=True)
    nbformat.write(checked.notebook, folder / f"{submission.assignment}.ipynb")
    (folder / "timestamp.txt").write_text(submission.timestamp)
    env = {f"COURSE_SANDBOX_{key.upper()}": str(value) for key, value in limits.items()}
    try:
        run = nbgrader("autograde", submission.assignment, "--student", submission.student, "--force",
                       f"--Execute.timeout={cell_timeout}", root=course, env=env, check=False,
                       timeout=limits["wall_seconds"] + 120)
        log = run.stdout + run.stderr
    except subprocess.TimeoutExpired:
        log = "nbgrader did not finish in time"
    autograded = course / "autograder" / "autograded" / submission.student / submission.assignment
    scores = read_scores(course, submission.assignment, submission.student) if autograded.is_dir() else {}
    reasons += outcome_reasons(course, submission, log, scores)
    status = "graded" if scores else "failed"
    return Result(submission.student, submission.assignment, scores, reasons, time.perf_counter() - start,
                  course, status)


def read_scores(course: Path, assignment: str, student: str) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{course / 'autograder' / 'gradebook.db'}") as gradebook:
        try:
            submission = gradebook.find_submission(assignment, student)
        except MissingEntry:
            return {}
        return {grade.name: (grade.auto_score or 0.0, grade.max_score) for nb in submission.notebooks
                for grade in nb.grades if grade.cell.cell_type == "code"}


def outcome_reasons(course: Path, submission: Submission, log: str, scores: dict) -> list[str]:
    """What went wrong while the notebook ran, in words: timeouts, a dead kernel, limits, a failed run."""
    reasons = []
    autograded = course / "autograder" / "autograded" / submission.student / submission.assignment
    notebook = autograded / f"{submission.assignment}.ipynb"
    if notebook.exists():
        nb = json.loads(notebook.read_text())
        for cell in nb["cells"]:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "a student cell")
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error" and out.get("ename") in ("CellTimeoutError", "DeadKernelError",
                                                                              "MemoryError", "BlockingIOError"):
                    reasons.append(f"{out['ename']} in {grade_id}")
                if out.get("output_type") == "error" and sandbox.MASK_MESSAGE in out.get("evalue", ""):
                    reasons.append(f"{grade_id} called a reference implementation of the course (not available "
                                   "while grading)")
                if out.get("output_type") == "stream" and "... Output truncated ..." in out.get("text", ""):
                    reasons.append(f"output of {grade_id} truncated (over nbgrader's line limit)")
    if "Kernel died" in log or "DeadKernelError" in log:
        reasons.append("the kernel died (os._exit, a crash or the memory limit); later cells scored 0")
    if "ran longer than" in log:
        reasons.append("the notebook hit the sandbox's wall-time limit")
    if not scores:
        errors = re.findall(r"^\s*(?:[\w.]+\.)?(\w+(?:Error|Exception)): (.{0,160})", log, flags=re.M)
        detail = f"{errors[-1][0]}: {errors[-1][1]}" if errors else "nbgrader failed"
        reasons.append(f"not graded: the notebook could not be run to the end ({detail}); score 0")
    return reasons


# --- merging into the course's gradebook (main process, one at a time) -------------------------------------------

def merge(result: Result, gradebook: Path) -> None:
    """Copy a scratch course's grades and autograded folder into the course; replaces an earlier result."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{gradebook}") as main:
        main.update_or_create_student(result.student)
        try:
            main.remove_submission(result.assignment, result.student)
        except MissingEntry:
            pass
    with Gradebook(f"sqlite:///{gradebook}") as main:
        if result.autograded is None or not result.scores:
            main.add_submission(result.assignment, result.student)
            for nb in main.find_submission(result.assignment, result.student).notebooks:
                for grade in nb.grades:
                    grade.auto_score = 0.0 if grade.cell.cell_type == "code" else grade.auto_score
            main.db.commit()
            return
        with Gradebook(f"sqlite:///{result.autograded / 'autograder' / 'gradebook.db'}") as scratch:
            graded = scratch.find_submission(result.assignment, result.student)
            main.add_submission(result.assignment, result.student, timestamp=graded.timestamp)
            for nb in graded.notebooks:
                for grade in nb.grades:
                    target = main.find_grade(grade.name, nb.name, result.assignment, result.student)
                    for column in ("auto_score", "manual_score", "extra_credit", "needs_manual_grade"):
                        setattr(target, column, getattr(grade, column))
                for comment in nb.comments:
                    target = main.find_comment(comment.name, nb.name, result.assignment, result.student)
                    target.auto_comment, target.manual_comment = comment.auto_comment, comment.manual_comment
            main.db.commit()
    destination = COURSE / "autograded" / result.student / result.assignment
    shutil.rmtree(destination, ignore_errors=True)
    shutil.copytree(result.autograded / "autograder" / "autograded" / result.student / result.assignment, destination)


# --- the command --------------------------------------------------------------------------------------------------

def prepare_gradebook(assignment: str) -> Path:
    """Register the assignment's cells in the course gradebook (without touching notebooks/)."""
    with tempfile.TemporaryDirectory() as release:
        run = nbgrader("generate_assignment", assignment, "--force",
                       f"--CourseDirectory.release_directory={release}", root=ROOT, check=False)
    if run.returncode != 0:
        raise SystemExit(f"grade: nbgrader generate_assignment {assignment} failed:\n{run.stderr[-2000:]}")
    return COURSE / "gradebook.db"


def write_csv(results: list[Result], path: Path) -> None:
    cells = sorted({cell for r in results for cell in r.scores})
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "assignment", "status", "score", "max_score", *cells, "reasons"])
        for r in sorted(results, key=lambda r: (r.assignment, r.student)):
            maximum = sum(m for _, m in r.scores.values())
            writer.writerow([r.student, r.assignment, r.status, f"{r.total:g}", f"{maximum:g}",
                             *(f"{r.scores[c][0]:g}" if c in r.scores else "" for c in cells), "; ".join(r.reasons)])


def print_table(results: list[Result]) -> None:
    width = max([len("student"), *(len(r.student) for r in results)]) + 2
    print(f"\n{'student':<{width}}{'assignment':<26}{'score':>9}  status    reasons")
    for r in sorted(results, key=lambda r: (r.assignment, r.student)):
        maximum = sum(m for _, m in r.scores.values())
        score = f"{r.total:g}/{maximum:g}" if r.scores else "0"
        print(f"{r.student:<{width}}{r.assignment:<26}{score:>9}  {r.status:<9} {'; '.join(r.reasons)[:200]}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="./course grade", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("submissions", type=Path, help="a folder or a zip file of submissions")
    parser.add_argument("--assignment", help="grade every notebook found as this assignment")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel submissions (all cores)")
    parser.add_argument("--regexp", default=ZIP_REGEXP, help="file-name pattern of flat (zip_collect) submissions")
    parser.add_argument("--cell-timeout", type=int, default=60, help="seconds a cell may run")
    parser.add_argument("--wall-seconds", type=int, default=sandbox.DEFAULTS["wall_seconds"],
                        help="seconds the whole notebook may run")
    parser.add_argument("--memory-mb", type=int, default=sandbox.DEFAULTS["memory_mb"], help="kernel memory limit")
    parser.add_argument("--csv", type=Path, default=COURSE / "grades.csv", help="where to write the grades")
    parser.add_argument("--no-feedback", action="store_true", help="skip nbgrader generate_feedback")
    args = parser.parse_args(argv)
    try:
        sandbox.install_kernelspec()
        sandbox.self_test()
    except sandbox.SandboxUnavailable as error:
        print(f"grade: stopped, nothing was graded: {error}", file=sys.stderr)
        return 2
    submissions = collect(args.submissions, args.assignment, args.regexp)
    if not submissions:
        print("grade: no submissions found", file=sys.stderr)
        return 1
    limits = dict(sandbox.DEFAULTS, wall_seconds=args.wall_seconds, memory_mb=args.memory_mb)
    gradebooks = {a: prepare_gradebook(a) for a in sorted({s.assignment for s in submissions})}
    snapshot = Path(tempfile.mkdtemp(prefix="course-gradebook-")) / "gradebook.db"
    shutil.copy2(COURSE / "gradebook.db", snapshot)
    print(f"grading {len(submissions)} submission(s) with {args.workers} worker(s) in the sandbox", flush=True)
    results: list[Result] = []
    start = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(grade_one, s, snapshot, limits, args.cell_timeout) for s in submissions]
        for done, future in enumerate(concurrent.futures.as_completed(futures), start=1):
            result = future.result()
            merge(result, gradebooks[result.assignment])
            if result.autograded:
                shutil.rmtree(result.autograded, ignore_errors=True)
            results.append(result)
            elapsed = time.perf_counter() - start
            left = elapsed / done * (len(submissions) - done)
            print(f"[{done}/{len(submissions)}] {result.student} {result.assignment}: {result.total:g} points "
                  f"({result.status}, {result.seconds:.1f} s); elapsed {elapsed:.0f} s, about {left:.0f} s left",
                  flush=True)
    shutil.rmtree(snapshot.parent, ignore_errors=True)
    if not args.no_feedback:
        for assignment in gradebooks:
            run = nbgrader("generate_feedback", assignment, "--force", root=ROOT, check=False)
            if run.returncode != 0:
                print(f"grade: feedback for {assignment} failed:\n{run.stderr[-1500:]}", file=sys.stderr)
    write_csv(results, args.csv)
    print_table(results)
    print(f"\n{len(results)} graded in {time.perf_counter() - start:.1f} s; grades in {args.csv}; "
          f"feedback in {COURSE / 'feedback'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
