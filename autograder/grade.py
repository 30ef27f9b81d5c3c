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
import asyncio
import csv
import json
import multiprocessing
import multiprocessing.connection
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from autograder import collect, execute, gradebook, preflight, sandbox

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
    autograded: Path | None = None  # the autograded folder, in a worker's scratch course
    status: str = "graded"
    recorded: dict | None = None  # what nbgrader wrote in the scratch gradebook (read_gradebook)
    notebook: str | None = None  # the notebook graded, as pre-flight repaired it (JSON)

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


# --- grading one submission (in a process of its own, forked from a worker's warm process) ---------------------

KERNEL_FOLDER = "kernel"  # in a worker's scratch course: kernel/<assignment>/ is the empty folder a kernel starts in
GRADE_COLUMNS = ("auto_score", "manual_score", "extra_credit", "needs_manual_grade")


def scratch_course(assignments: list[str], gradebook: Path) -> Path:
    """A worker's course directory: the configuration, the assignments' source and release, a copy of the gradebook.

    The grading code itself is imported once by the worker's process (``warm_up``), not copied."""
    course = sandbox.owned_tempdir("course-grading-")  # removed by sandbox.sweep if this process is killed
    (course / "autograder").mkdir()
    shutil.copy2(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copy2(COURSE / "nbgrader_config.py", course / "autograder" / "nbgrader_config.py")
    for assignment in assignments:
        shutil.copytree(ROOT / "solutions" / assignment, course / "solutions" / assignment)
        shutil.copytree(ROOT / "notebooks" / assignment, course / "notebooks" / assignment)
        (course / KERNEL_FOLDER / assignment).mkdir(parents=True)
    shutil.copy2(gradebook, course / "autograder" / "gradebook.db")
    (course / "tmp").mkdir()
    return course


def warm_up() -> None:
    """Import, once, everything a grading process needs: each one forked from here starts with it loaded.

    ``helpers`` is the package the sandboxed kernel imports (the installed one, sandbox.helpers_location), as in a
    ``nbgrader autograde`` process started from a scratch course, whatever folder the command runs from."""
    import importlib
    import pkgutil

    import matplotlib.pyplot  # noqa: F401: the notebooks' locked cells import it in the grader (remote.py)
    import nbgrader.api  # noqa: F401
    import nbgrader.apps.nbgraderapp  # noqa: F401
    import nbgrader.converters  # noqa: F401

    from autograder import feedback, feedback_page, overwrite_cells, remote  # noqa: F401: the configuration's

    here = [entry for entry in sys.path if Path(entry or ".").resolve() == ROOT]
    sys.path[:] = [entry for entry in sys.path if entry not in here]
    try:
        helpers = importlib.import_module("helpers")
        for module in pkgutil.iter_modules(helpers.__path__):
            importlib.import_module(f"helpers.{module.name}")
    finally:
        sys.path[:0] = here


def start_kernel_ahead(course: Path, assignment: str, limits: dict) -> None:
    """Start this process's sandboxed kernel now, before its submission is known (see execute.KernelAhead).

    Its private socket folder is named after this process (sandbox.owned_tempdir): if this process is killed,
    ``Grader.end`` sweeps it away."""
    execute.KernelAhead.start(assignment, course / KERNEL_FOLDER / assignment, wall_seconds=limits["wall_seconds"])


def nbgrader_here(argv: list[str], root: Path) -> int:
    """``nbgrader ARGV`` run in this process from ``root``, as the command would run it there (the same arguments,
    the course's nbgrader_config.py); returns its exit status. For a process forked to run it, which it changes."""
    import nbgrader
    from nbgrader.apps.nbgraderapp import NbGraderApp

    sys.argv = [str(Path(nbgrader.__file__).parent / "__main__.py"), *argv]  # what nbgrader_config.py checks
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")  # alembic
    os.chdir(root)
    try:
        NbGraderApp.launch_instance(argv=argv)
    except SystemExit as error:
        return error.code if isinstance(error.code, int) else 1
    finally:
        NbGraderApp.clear_instance()
    return 0


def _to_file(log: Path) -> None:
    """This process's output (and its children's) goes to ``log``."""
    descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)


def nbgrader_forked(argv: list[str], root: Path) -> tuple[int, str]:
    """``nbgrader ARGV`` from ``root`` in a process forked from this warm one (nbgrader imported already); returns
    its exit status and output."""
    with tempfile.TemporaryDirectory(prefix="course-nbgrader-") as folder:
        log = Path(folder) / "log"
        sys.stdout.flush()
        sys.stderr.flush()
        process = FORK.Process(target=_nbgrader_main, args=(argv, root, log))
        process.start()
        process.join()
        return process.exitcode, log.read_text(errors="replace") if log.exists() else ""


def _nbgrader_main(argv: list[str], root: Path, log: Path) -> None:
    _to_file(log)
    code = 1
    try:
        code = nbgrader_here(argv, root)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def grade_one(submission: Submission, course: Path, cell_timeout: int, log: Path) -> Result:
    """Pre-flight, then stock nbgrader autograde in the worker's scratch course; never raises for a bad submission.

    Runs in a process of its own that grades this submission only; ``log`` is where its output goes."""
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
    folder = course / "autograder" / "submitted" / submission.student / submission.assignment
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    notebook = nbformat.writes(checked.notebook)
    (folder / f"{submission.assignment}.ipynb").write_text(notebook)
    (folder / "timestamp.txt").write_text(submission.timestamp)
    try:
        nbgrader_here(["autograde", submission.assignment, "--student", submission.student, "--force",
                       f"--Execute.timeout={cell_timeout}", f"--GradeOutsideKernel.test_timeout={cell_timeout}"],
                      course)
    except Exception:  # noqa: BLE001: logged; the submission is reported as not graded
        traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    text = log.read_text(errors="replace") if log.exists() else ""
    shutil.rmtree(folder.parent, ignore_errors=True)
    autograded = course / "autograder" / "autograded" / submission.student / submission.assignment
    recorded = read_gradebook(course, submission.assignment, submission.student) if autograded.is_dir() else None
    scores = {name: (grade["auto_score"] or 0.0, grade["max_score"]) for nb in (recorded or {}).get("notebooks", {})
              .values() for name, grade in nb["grades"].items() if grade["cell_type"] == "code"}
    reasons = list(dict.fromkeys(reasons + outcome_reasons(autograded, submission, text, scores)))
    status = "graded" if scores else "failed"
    return Result(submission.student, submission.assignment, scores, reasons, time.perf_counter() - start,
                  autograded if autograded.is_dir() else None, status, recorded, notebook)


def read_gradebook(course: Path, assignment: str, student: str) -> dict | None:
    """What the scratch gradebook holds of this submission, as plain data: its timestamp and, per notebook, every
    grade (its columns, max score, cell type) and comment."""
    from nbgrader.api import MissingEntry

    with gradebook.opened(course / "autograder" / "gradebook.db") as scratch:
        try:
            submission = scratch.find_submission(assignment, student)
        except MissingEntry:
            return None
        return {"timestamp": submission.timestamp, "notebooks": {nb.name: {
            "grades": {grade.name: {**{column: getattr(grade, column) for column in GRADE_COLUMNS},
                                    "max_score": grade.max_score, "cell_type": grade.cell.cell_type}
                       for grade in nb.grades},
            "comments": {comment.name: (comment.auto_comment, comment.manual_comment) for comment in nb.comments}}
            for nb in submission.notebooks}}


def outcome_reasons(autograded: Path, submission: Submission, log: str, scores: dict) -> list[str]:
    """What went wrong while the notebook ran, in words: timeouts, a dead kernel, limits, a failed run."""
    reasons = []
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
    if "course sandbox: the notebook ran longer than" in log:
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
    graded = result.autograded if result.autograded is not None and result.scores else None
    before, after = answer_sources(destination), answer_sources(graded)
    with gradebook.opened(gradebook_path) as main:
        main.update_or_create_student(result.student)
        manual = manual_grades(main, result.assignment, result.student)
        try:
            main.remove_submission(result.assignment, result.student)
        except MissingEntry:
            pass
    with gradebook.opened(gradebook_path) as main:
        if graded is None or result.recorded is None:
            main.add_submission(result.assignment, result.student)
            for nb in main.find_submission(result.assignment, result.student).notebooks:
                for grade in nb.grades:
                    grade.auto_score = 0.0 if grade.cell.cell_type == "code" else grade.auto_score
        else:
            main.add_submission(result.assignment, result.student, timestamp=result.recorded["timestamp"])
            for notebook, recorded in result.recorded["notebooks"].items():
                for name, grade in recorded["grades"].items():
                    target = main.find_grade(name, notebook, result.assignment, result.student)
                    for column in GRADE_COLUMNS:
                        setattr(target, column, grade[column])
                for name, (auto_comment, manual_comment) in recorded["comments"].items():
                    target = main.find_comment(name, notebook, result.assignment, result.student)
                    target.auto_comment, target.manual_comment = auto_comment, manual_comment
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
    notebook = result.notebook  # the notebook as graded: repaired by pre-flight
    if notebook is None and result.status != "rejected":  # its grading process failed before it said
        release = ROOT / "notebooks" / submission.assignment / f"{submission.assignment}.ipynb"
        try:
            checked = preflight.check(submission.path, release)
        except Exception:  # noqa: BLE001: an unreadable file is not recorded in submitted/
            return
        notebook = None if checked.rejected else nbformat.writes(checked.notebook)
    if notebook is None:
        return
    folder.mkdir(parents=True)
    (folder / f"{submission.assignment}.ipynb").write_text(notebook)
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
        code, output = nbgrader_forked(["generate_assignment", assignment, "--force",
                                        f"--CourseDirectory.release_directory={release}"], ROOT)
    if code != 0:
        raise SystemExit(f"grade: nbgrader generate_assignment {assignment} failed:\n{output[-2000:]}")
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
            writer.writerow([gradebook.text_field(f.relative), outcome, gradebook.text_field(f.student or ""),
                             f.assignment, f"{f.timestamp:%Y-%m-%d %H:%M:%S}" if f.timestamp else "", total,
                             gradebook.text_field(detail or "")])


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


# --- the workers: a warm process per worker, a process per submission forked from it, started ahead ---------------

FORK = multiprocessing.get_context("fork")
GRACE_SECONDS = 120  # beyond the sandbox's wall time, before a grading process that has not answered is ended


class Grader:
    """The process that grades one submission: forked from the command's warm process (nbgrader and the grading code
    imported, ``warm_up``), it starts its sandboxed kernel at once, then waits for the submission it is given.

    Its output goes to a log file of its own; it answers with a ``Result`` and exits. It never grades a second one."""

    def __init__(self, course: Path, assignment: str, limits: dict, cell_timeout: int, core: int = 0):
        self.course, self.assignment = course, assignment
        self.submission: Submission | None = None
        self.deadline = float("inf")
        self.connection, theirs = FORK.Pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        self.process = FORK.Process(target=_grader_main, args=(theirs, course, assignment, limits, cell_timeout, core),
                                    name=f"grader-{assignment}")
        self.process.start()
        theirs.close()

    def give(self, submission: Submission, seconds: float) -> bool:
        """Hand it its submission; False when it is gone already (it is then replaced; the submission waits)."""
        try:
            self.connection.send(submission)
        except (BrokenPipeError, ConnectionError, OSError):
            return False
        self.submission, self.deadline = submission, time.monotonic() + seconds
        return True

    def result(self) -> Result | None:
        """Its answer, once it has one; None when it died without answering."""
        try:
            return self.connection.recv() if self.connection.poll() else None
        except (EOFError, OSError):
            return None

    def end(self) -> None:
        """Stop it and everything it started (its kernel's sandbox included), and remove what it left."""
        kill_tree(self.process.pid)
        self.process.join(10)
        self.connection.close()
        sandbox.sweep()  # its kernel's private folder, which its owner, now gone, did not remove


def _grader_main(connection, course: Path, assignment: str, limits: dict, cell_timeout: int, core: int) -> None:
    log = course / "tmp" / f"grader-{os.getpid()}.log"
    _to_file(log)
    os.environ.update({f"COURSE_SANDBOX_{key.upper()}": str(value) for key, value in limits.items()})
    os.environ["COURSE_SANDBOX_CPU"] = str(core)  # the sandbox's core (autograder/sandbox.py; fresh() below)
    asyncio.set_event_loop(asyncio.new_event_loop())
    code, submission = 0, None
    try:
        try:
            start_kernel_ahead(course, assignment, limits)
        except Exception:  # noqa: BLE001: nbgrader then starts the kernel itself, and reports why it cannot
            traceback.print_exc()
        try:
            submission = connection.recv()
        except EOFError:
            return
        result = grade_one(submission, course, cell_timeout, log)
        connection.send(result)
    except BaseException as error:  # noqa: BLE001: this submission is recorded as failed, with the error
        traceback.print_exc()
        code = 1
        if submission is not None:
            try:
                connection.send(not_graded(submission, f"the grader failed on it ({type(error).__name__}: "
                                                       f"{str(error)[:200]})"))
            except Exception:  # noqa: BLE001: the command then reports the exit code
                pass
    finally:
        execute.KernelAhead.end_all()
        log.unlink(missing_ok=True)
        os._exit(code)


def not_graded(submission: Submission, why: str) -> Result:
    """The result of a submission that its grading process did not grade, with the reason."""
    return Result(submission.student, submission.assignment, {}, [f"not graded: {why}; score 0"], 0.0,
                  status="failed")


def kill_tree(pid: int, grace: float = 1.0) -> None:
    """Stop ``pid`` and all its descendants: found first (so none escapes by being re-parented), then SIGTERM (a
    sandbox launcher then removes its scratch folder), and SIGKILL for whatever still runs after ``grace`` seconds."""
    tree = [pid, *sandbox.descendants(pid)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for member in tree:
            try:
                os.kill(member, sig)
            except (ProcessLookupError, PermissionError):
                pass
        until = time.monotonic() + grace
        while sig == signal.SIGTERM and time.monotonic() < until and any(sandbox.running(m) for m in tree):
            time.sleep(0.05)


def grade_in_workers(submissions: list[Submission], workers: int, gradebook_path: Path, limits: dict,
                     cell_timeout: int):
    """Grade every submission, ``workers`` at a time; yields each Result as it arrives (in no fixed order).

    Each worker has a scratch course of its own (a copy of the gradebook, made once) and grades each submission in
    a process of its own forked from this warm one; the next one is forked, and its kernel started, while the
    current one runs. A grading process that crashes, or does not answer within the sandbox's wall time plus
    GRACE_SECONDS, costs only its own submission: it is ended and the next one takes its place."""
    queue = sorted(submissions, key=lambda s: s.assignment)  # a kernel started ahead is for the next one's assignment
    assignments = sorted({s.assignment for s in submissions})
    workers = max(1, min(workers, len(queue)))
    courses = [scratch_course(assignments, gradebook_path) for _ in range(workers)]
    seconds = limits["wall_seconds"] + GRACE_SECONDS
    ready: list[Grader | None] = [None] * workers  # the next grading process of each worker, its kernel starting
    busy: list[Grader | None] = [None] * workers
    finishing: list[Grader] = []  # answered; ending their kernels
    arrived: list[Result] = []

    started = [0] * workers

    def fresh(slot: int) -> Grader:
        """Worker ``slot``'s next grading process. Its sandbox's core: the slot's own when there are as many workers
        as cores; with fewer, each next one on the next core, so a kernel starting ahead does not share the core of
        the notebook running (sandbox.py takes the index modulo the cores)."""
        core, started[slot] = slot + workers * started[slot], started[slot] + 1
        return Grader(courses[slot], queue[0].assignment, limits, cell_timeout, core)

    def dispatch(slot: int) -> None:
        grader, ready[slot] = ready[slot], None
        if grader is None or grader.assignment != queue[0].assignment or not grader.process.is_alive():
            if grader is not None:
                grader.end()
            grader = fresh(slot)
        submission = queue.pop(0)
        if not grader.give(submission, seconds):
            grader.end()
            arrived.append(not_graded(submission, "its grading process did not start"))
            return
        busy[slot] = grader
        if queue:
            ready[slot] = fresh(slot)

    try:
        while queue or any(busy) or arrived:
            for slot in range(workers):
                if busy[slot] is None and queue:
                    dispatch(slot)
            yield from arrived
            arrived.clear()
            waiting = [g for g in busy if g is not None]
            if not waiting:
                continue
            timeout = max(0.0, min(g.deadline for g in waiting) - time.monotonic())
            multiprocessing.connection.wait([g.connection for g in waiting] + [g.process.sentinel for g in waiting],
                                            timeout)
            for slot, grader in enumerate(busy):
                if grader is None:
                    continue
                result = grader.result()
                if result is None and grader.process.is_alive() and time.monotonic() < grader.deadline:
                    continue
                busy[slot] = None
                if result is None:
                    late = grader.process.is_alive()
                    grader.end()
                    why = (f"its grading process did not answer in {seconds} s and was stopped" if late
                           else f"its grading process stopped (exit code {grader.process.exitcode})")
                    result = not_graded(grader.submission, why)
                else:
                    finishing.append(grader)
                arrived.append(result)
            for grader in [g for g in finishing if not g.process.is_alive()]:
                grader.process.join()
                grader.connection.close()
                finishing.remove(grader)
    finally:
        for grader in ready + busy:
            if grader is not None:
                grader.end()
        for grader in finishing:
            grader.process.join(30)
            if grader.process.is_alive():
                grader.end()
        for course in courses:
            shutil.rmtree(course, ignore_errors=True)
        sandbox.sweep()  # what a killed grading process or kernel left in the temporary folder


def grade_all(submissions: list[Submission], args, limits: dict, gradebooks: dict) -> list[Result]:
    """Grade in parallel; merge each result as it arrives; print progress."""
    print(f"grading {collect.plural(len(submissions), 'submission')} with {collect.plural(args.workers, 'worker')} "
          "in the sandbox", flush=True)
    results: list[Result] = []
    start = time.perf_counter()
    for done, result in enumerate(grade_in_workers(submissions, args.workers, COURSE / "gradebook.db", limits,
                                                   args.cell_timeout), start=1):
        replaced = previous_result(result.assignment, result.student)
        result.reasons += merge(result, gradebooks[result.assignment]) + ([replaced] if replaced else [])
        if result.autograded:
            shutil.rmtree(result.autograded, ignore_errors=True)
        results.append(result)
        elapsed = time.perf_counter() - start
        left = elapsed / done * (len(submissions) - done)
        print(f"[{done}/{len(submissions)}] {result.student} {result.assignment}: "
              f"{gradebook.plural(result.total)} autograded ({result.status}, {result.seconds:.1f} s); "
              f"elapsed {elapsed:.1f} s, about {left:.0f} s left", flush=True)
    return results


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
        warm_up()
        gradebooks = {a: prepare_gradebook(a) for a in sorted({s.assignment for s in submissions})}
        results = grade_all(submissions, args, limits, gradebooks)
        by_key = {(r.student, r.assignment): r for r in results}
        for s in submissions:
            try:
                record(by_key[(s.student, s.assignment)], s, chosen[(s.student, s.assignment)], args.submissions)
            except Exception as error:  # noqa: BLE001: one submission's record never ends the batch
                by_key[(s.student, s.assignment)].reasons.append(f"not recorded ({type(error).__name__})")
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
