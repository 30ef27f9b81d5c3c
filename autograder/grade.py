"""The instructor's grading command: ``./course grade SUBMISSIONS [--assignment ID] [--students CSV] [--workers N]``.

SUBMISSIONS is a folder or a zip file as an LMS exports it: Canvas's "Download Submissions", Moodle's "Download all
submissions", Blackboard's (nbgrader zip_collect's naming), nbgrader's submitted/ or exchange folders, or one folder
per student (autograder/collect.py lists the layouts). Every file is accounted for: the run starts with "found N
notebooks: M submissions, K superseded, J skipped (reasons)", and autograder/files.csv has a row for each file.

Each submission is checked (autograder/preflight.py), then graded by stock ``nbgrader autograde`` in a scratch copy
of the course of its own, its kernel in the sandbox (autograder/sandbox.py), on all cores in parallel. Results are
merged one at a time into the course's gradebook (autograder/gradebook.db) and autograded/ folder, the notebook
graded is recorded in autograder/submitted/ (where stock nbgrader looks), manual grades of unchanged written answers
are kept, feedback is regenerated and the whole gradebook is exported to autograder/grades.csv. A crash, hang or
bomb costs only its own submission; every outcome is recorded with its reason. Running it again on the same input
gives the same scores and replaces the earlier results (the output says so).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import csv
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from autograder import collect, execute, gradebook, preflight, sandbox
from tools.release import nbgrader

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "autograder"
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


def nbgrader_timestamp(when: datetime | None) -> str:
    """nbgrader's timestamp.txt format."""
    return f"{when.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S}.000000 UTC" if when else TIMESTAMP


def submission_of(found: collect.Found) -> Submission:
    return Submission(found.student, found.assignment, found.path, nbgrader_timestamp(found.timestamp),
                      list(found.notes))


# --- grading one submission (in a worker process) -----------------------------------------------------------------

def scratch_course(assignment: str, gradebook: Path) -> Path:
    """A course directory of its own: configuration, the assignment's source and a copy of the gradebook."""
    course = sandbox.owned_tempdir("course-grading-")  # removed by sandbox.sweep if this worker is killed
    (course / "autograder").mkdir()
    shutil.copy2(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    for path in COURSE.glob("*.py"):  # the grading code: configuration, sandbox, execute step, wire, agent
        shutil.copy2(path, course / "autograder" / path.name)
    shutil.copytree(COURSE / "templates", course / "autograder" / "templates")
    shutil.copy2(execute.SECRET_FILE, course / "autograder" / execute.SECRET_FILE.name)
    shutil.copytree(ROOT / "solutions" / assignment, course / "solutions" / assignment)
    shutil.copytree(ROOT / "notebooks" / assignment, course / "notebooks" / assignment)
    shutil.copy2(gradebook, course / "autograder" / "gradebook.db")
    return course


def grade_one(submission: Submission, gradebook: Path, limits: dict, cell_timeout: int) -> Result:
    """Pre-flight, then stock nbgrader autograde in a scratch course; never raises for a bad submission."""
    start = time.perf_counter()
    release = ROOT / "notebooks" / submission.assignment / f"{submission.assignment}.ipynb"
    try:
        checked = preflight.check(submission.path, release)
    except Exception as error:  # noqa: BLE001: any file, however malformed, costs only its own submission
        checked = preflight.Preflight(None, [f"rejected: pre-flight could not read it ({type(error).__name__})"])
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
                       f"--Execute.timeout={cell_timeout}", f"--GradeOutsideKernel.test_timeout={cell_timeout}",
                       root=course, env=env, check=False,
                       timeout=limits["wall_seconds"] + 120)
        log = run.stdout + run.stderr
    except subprocess.TimeoutExpired:
        log = "nbgrader did not finish in time"
    autograded = course / "autograder" / "autograded" / submission.student / submission.assignment
    scores = read_scores(course, submission.assignment, submission.student) if autograded.is_dir() else {}
    reasons = list(dict.fromkeys(reasons + outcome_reasons(course, submission, log, scores)))
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
        reasons += [r for r in nb.get("metadata", {}).get("course", {}).get("reasons", []) if isinstance(r, str)]
        for cell in nb["cells"]:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "a student cell")
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error" and out.get("ename") in ("CellTimeoutError", "DeadKernelError",
                                                                              "MemoryError", "BlockingIOError"):
                    reasons.append(f"{out['ename']} in {grade_id}")
                meta = cell.get("metadata", {}).get("nbgrader", {})
                demo = meta.get("locked") and not meta.get("grade")  # a course demo needs the references; not a reason
                if out.get("output_type") == "error" and sandbox.MASK_MESSAGE in out.get("evalue", "") and not demo:
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

def answer_sources(folder: Path | None) -> dict[str, str]:
    """grade_id -> source of every answer cell in the notebooks of an autograded folder."""
    sources: dict[str, str] = {}
    for path in sorted(folder.glob("*.ipynb")) if folder and folder.is_dir() else []:
        try:
            cells = json.loads(path.read_text())["cells"]
        except (OSError, ValueError, KeyError):
            continue
        for cell in cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("solution") and meta.get("grade_id"):
                source = cell.get("source", "")
                sources[meta["grade_id"]] = "".join(source) if isinstance(source, list) else source
    return sources


def manual_grades(main, assignment: str, student: str) -> dict:
    """(notebook, cell) -> (manual score, extra credit, manual comment) a grader entered for this submission."""
    from nbgrader.api import MissingEntry

    try:
        submission = main.find_submission(assignment, student)
    except MissingEntry:
        return {}
    kept = {}
    for nb in submission.notebooks:
        comments = {c.name: c.manual_comment for c in nb.comments}
        for grade in nb.grades:
            if grade.manual_score is not None or grade.extra_credit or comments.get(grade.name):
                kept[(nb.name, grade.name)] = (grade.manual_score, grade.extra_credit, comments.get(grade.name))
    return kept


def merge(result: Result, gradebook_path: Path) -> list[str]:
    """Copy a scratch course's grades and autograded folder into the course, replacing an earlier result.

    Manual grades (formgrader) of answers that did not change are kept; returns notes on what was replaced."""
    from nbgrader.api import MissingEntry

    notes = []
    destination = COURSE / "autograded" / result.student / result.assignment
    graded = (result.autograded / "autograder" / "autograded" / result.student / result.assignment
              if result.autograded is not None and result.scores else None)
    before, after = answer_sources(destination), answer_sources(graded)
    with gradebook.opened(gradebook_path) as main:
        main.update_or_create_student(result.student)
        manual = manual_grades(main, result.assignment, result.student)
        try:
            main.remove_submission(result.assignment, result.student)
        except MissingEntry:
            pass
    with gradebook.opened(gradebook_path) as main:
        if graded is None:
            main.add_submission(result.assignment, result.student)
            for nb in main.find_submission(result.assignment, result.student).notebooks:
                for grade in nb.grades:
                    grade.auto_score = 0.0 if grade.cell.cell_type == "code" else grade.auto_score
        else:
            with gradebook.opened(result.autograded / "autograder" / "gradebook.db") as scratch:
                submission = scratch.find_submission(result.assignment, result.student)
                main.add_submission(result.assignment, result.student, timestamp=submission.timestamp)
                for nb in submission.notebooks:
                    for grade in nb.grades:
                        target = main.find_grade(grade.name, nb.name, result.assignment, result.student)
                        for column in ("auto_score", "manual_score", "extra_credit", "needs_manual_grade"):
                            setattr(target, column, getattr(grade, column))
                    for comment in nb.comments:
                        target = main.find_comment(comment.name, nb.name, result.assignment, result.student)
                        target.auto_comment, target.manual_comment = comment.auto_comment, comment.manual_comment
        for (notebook, cell), (score, extra, comment) in manual.items():
            if cell in after and after[cell] == before.get(cell):
                grade = main.find_grade(cell, notebook, result.assignment, result.student)
                grade.manual_score, grade.extra_credit = score, extra
                grade.needs_manual_grade = False
                if comment:
                    main.find_comment(cell, notebook, result.assignment, result.student).manual_comment = comment
            else:
                notes.append(f"the manual grade of {cell} was dropped: the answer changed since it was graded")
        main.db.commit()
    shutil.rmtree(destination, ignore_errors=True)
    if graded is not None:
        shutil.copytree(graded, destination)
    else:  # no feedback of an earlier result may contradict this one
        shutil.rmtree(COURSE / "feedback" / result.student / result.assignment, ignore_errors=True)
    return notes


def record(result: Result, submission: Submission, found: collect.Found, export: Path) -> None:
    """What was graded and how: autograder/records/ (for the CSV) and autograder/submitted/ (for stock nbgrader)."""
    gradebook.write_record(result.assignment, result.student, {
        "status": result.status, "reasons": result.reasons, "file": found.relative, "export": str(export),
        "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "seconds": round(result.seconds, 1)})
    folder = COURSE / "submitted" / result.student / result.assignment
    shutil.rmtree(folder, ignore_errors=True)
    if result.status == "rejected":
        return
    release = ROOT / "notebooks" / submission.assignment / f"{submission.assignment}.ipynb"
    try:
        checked = preflight.check(submission.path, release)  # the notebook as graded: repaired
    except Exception:  # noqa: BLE001: already recorded as rejected by grade_one
        return
    if checked.rejected:
        return
    folder.mkdir(parents=True)
    nbformat.write(checked.notebook, folder / f"{submission.assignment}.ipynb")
    (folder / "timestamp.txt").write_text(submission.timestamp)


def previous_result(assignment: str, student: str) -> str | None:
    earlier = gradebook.read_record(assignment, student)
    if not earlier:
        return None
    return f"replaces the result graded {earlier.get('graded_at', '?')} from {earlier.get('file') or 'an earlier run'}"


# --- the command --------------------------------------------------------------------------------------------------

def prepare_gradebook(assignment: str) -> Path:
    """Register the assignment's cells in the course gradebook (without touching notebooks/)."""
    with tempfile.TemporaryDirectory() as release:
        run = nbgrader("generate_assignment", assignment, "--force",
                       f"--CourseDirectory.release_directory={release}", root=ROOT, check=False)
    if run.returncode != 0:
        raise SystemExit(f"grade: nbgrader generate_assignment {assignment} failed:\n{run.stderr[-2000:]}")
    return COURSE / "gradebook.db"


def write_files_csv(collection: collect.Collection, results: dict[tuple[str, str], Result],
                    table: dict[tuple[str, str], gradebook.Row], path: Path) -> None:
    """One row per file of the export: what became of it."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "outcome", "student", "assignment", "handed_in", "total", "detail"])
        for f in collection.files:
            key = (f.student, f.assignment)
            outcome, total, detail = f.outcome, "", f.detail
            if f.outcome == "submission" and key in results:
                outcome = results[key].status
                total = gradebook.points(table[key].total) if key in table else ""
                detail = "; ".join(results[key].reasons)
            writer.writerow([f.relative, outcome, f.student, f.assignment,
                             f"{f.timestamp:%Y-%m-%d %H:%M:%S}" if f.timestamp else "", total, detail])


def parse_args(argv: list[str]) -> argparse.Namespace:
    first, rest = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(prog="./course grade", description=first,
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=rest)
    parser.add_argument("submissions", type=Path, help="a folder or a zip file of submissions")
    parser.add_argument("--assignment", help="grade every notebook found as this assignment")
    parser.add_argument("--students", type=Path,
                        help="CSV mapping LMS ids or names to student ids (columns lms_id,student_id)")
    parser.add_argument("--regexp", help="file-name pattern of another LMS: groups student_id, [assignment], "
                                         "[timestamp]")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel submissions (all cores)")
    parser.add_argument("--cell-timeout", type=int, default=60, help="seconds a cell may run")
    parser.add_argument("--cell-cpu-seconds", type=int, default=0,
                        help="CPU seconds a cell may use across the sandbox's processes (default: --cell-timeout)")
    parser.add_argument("--wall-seconds", type=int, default=sandbox.DEFAULTS["wall_seconds"],
                        help="seconds the whole notebook may run")
    parser.add_argument("--memory-mb", type=int, default=sandbox.DEFAULTS["memory_mb"], help="kernel memory limit")
    parser.add_argument("--csv", type=Path, default=gradebook.CSV, help="where to write the whole gradebook's grades")
    parser.add_argument("--files-csv", type=Path, default=COURSE / "files.csv", help="where to list every file")
    parser.add_argument("--no-feedback", action="store_true", help="skip nbgrader generate_feedback")
    return parser.parse_args(argv)


def grade_all(submissions: list[Submission], args, limits: dict, gradebooks: dict) -> list[Result]:
    """Grade in parallel; merge each result as it arrives; print progress."""
    snapshot_folder = sandbox.owned_tempdir("course-gradebook-")
    snapshot = snapshot_folder / "gradebook.db"
    shutil.copy2(COURSE / "gradebook.db", snapshot)
    print(f"grading {collect.plural(len(submissions), 'submission')} with {collect.plural(args.workers, 'worker')} "
          "in the sandbox", flush=True)
    results: list[Result] = []
    start = time.perf_counter()
    try:
        slots = multiprocessing.Value("i", 0)
        with concurrent.futures.ProcessPoolExecutor(max_workers=args.workers, initializer=worker_slot,
                                                    initargs=(slots,)) as pool:
            futures = [pool.submit(grade_one, s, snapshot, limits, args.cell_timeout) for s in submissions]
            for done, future in enumerate(concurrent.futures.as_completed(futures), start=1):
                try:
                    result = future.result()
                except Exception as error:  # noqa: BLE001: a worker that fails costs only its submission
                    failed = submissions[futures.index(future)]
                    result = Result(failed.student, failed.assignment, {},
                                    [f"not graded: the grader failed on it ({type(error).__name__}: {error})"[:300]],
                                    0.0, status="failed")
                replaced = previous_result(result.assignment, result.student)
                result.reasons += merge(result, gradebooks[result.assignment]) + ([replaced] if replaced else [])
                if result.autograded:
                    shutil.rmtree(result.autograded, ignore_errors=True)
                results.append(result)
                elapsed = time.perf_counter() - start
                left = elapsed / done * (len(submissions) - done)
                print(f"[{done}/{len(submissions)}] {result.student} {result.assignment}: "
                      f"{gradebook.plural(result.total)} autograded ({result.status}, {result.seconds:.1f} s); "
                      f"elapsed {elapsed:.0f} s, about {left:.0f} s left", flush=True)
    finally:
        shutil.rmtree(snapshot_folder, ignore_errors=True)
        sandbox.sweep()  # what a killed worker or kernel left in the temporary folder
    return results


def worker_slot(slots) -> None:
    """Worker i's sandboxes run on core i (modulo the cores): autograder/sandbox.py reads COURSE_SANDBOX_CPU."""
    with slots.get_lock():
        os.environ["COURSE_SANDBOX_CPU"] = str(slots.value)
        slots.value += 1


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        sandbox.install_kernelspec()
        sandbox.self_test()
        execute.course_secret()
    except sandbox.SandboxUnavailable as error:
        print(f"grade: stopped, nothing was graded: {error}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    mapping = collect.read_student_map(args.students) if args.students else {}
    with collect.opened(args.submissions) as folder:
        found = collect.collect(folder, ROOT, known_assignments(), args.assignment, mapping, args.regexp)
        print(collect.summary(found), flush=True)
        for line in collect.details(found):
            print(line)
        chosen = {(f.student, f.assignment): f for f in found.submissions}
        submissions = [submission_of(f) for f in chosen.values()]
        if not submissions:
            write_files_csv(found, {}, {}, args.files_csv)
            print("grade: no submissions to grade", file=sys.stderr)
            return 1
        limits = dict(sandbox.DEFAULTS, wall_seconds=args.wall_seconds, memory_mb=args.memory_mb,
                      cell_cpu_seconds=args.cell_cpu_seconds)
        gradebooks = {a: prepare_gradebook(a) for a in sorted({s.assignment for s in submissions})}
        results = grade_all(submissions, args, limits, gradebooks)
        by_key = {(r.student, r.assignment): r for r in results}
        for s in submissions:
            record(by_key[(s.student, s.assignment)], s, chosen[(s.student, s.assignment)], args.submissions)
    failures = [] if args.no_feedback else gradebook.regenerate_feedback(sorted(gradebooks))
    for failure in failures:
        print(f"grade: {failure}", file=sys.stderr)
    table = {(r.student, r.assignment): r for r in gradebook.export(args.csv)}
    write_files_csv(found, by_key, table, args.files_csv)
    gradebook.print_table([table[key] for key in sorted(by_key, key=lambda k: (k[1], k[0]))])
    counts = {status: sum(r.status == status for r in results) for status in ("graded", "rejected", "failed")}
    pending = sum(1 for key in by_key if table[key].pending)
    students = len({r.student for r in table.values()})
    print(f"\n{collect.plural(len(results), 'submission')} in {time.perf_counter() - start:.1f} s: "
          + ", ".join(f"{n} {status}" for status, n in counts.items())
          + (f"; {pending} with written answers to grade (README: Written answers)" if pending else "")
          + f"\ngrades of all {collect.plural(students, 'student')} in {args.csv}; every file in {args.files_csv}"
          + ("" if args.no_feedback else f"; feedback in {COURSE / 'feedback'}"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
