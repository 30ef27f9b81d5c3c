"""The nbgrader round trip, run in a scratch copy of the course: release, submit, autograde, read the scores.

A submission is the released student notebook with its answer cells filled in: from the solution, left as the
stub, or with one solution changed into a known wrong answer (a "mistake", listed per assignment in
autograder/mistakes/<id>.py). Used by the tests and by instructors who want to see what a mistake costs.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import nbformat

from tools.paths import ROOT
from tools.release import nbgrader

COURSE_FILES = ("nbgrader_config.py", *(f"autograder/{p.name}" for p in sorted((ROOT / "autograder").glob("*.py"))),
                "autograder/templates", "solutions", "notebooks")


def copy_course(destination: Path) -> Path:
    """Copy what nbgrader needs (config, solutions, released notebooks) to ``destination``; returns it."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in COURSE_FILES:
        source = ROOT / name
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        else:
            shutil.copy2(source, target)
    return destination


def copy_repository(destination: Path) -> Path:
    """Copy the whole course (not .git, .venv, builds or grading output) to ``destination``; returns it."""
    ignore = shutil.ignore_patterns(".git", ".venv", "_site", "_output", "__pycache__", ".pytest_cache", "submitted",
                                    "autograded", "feedback", "gradebook.db", "grades*.csv", "files.csv", "records",
                                    "jupyter")
    shutil.copytree(ROOT, destination, ignore=ignore, symlinks=True)
    return destination


def extract_commit(commit: str, destination: Path) -> Path:
    """The course as it was at ``commit`` (git archive), in ``destination`` (made here); returns it."""
    destination.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive.stdout, check=True)
    return destination


def load_mistakes(assignment: str) -> list[dict]:
    """The assignment's catalogue of common wrong answers (autograder/mistakes/<id>.py, list MISTAKES)."""
    path = ROOT / "autograder" / "mistakes" / f"{assignment.replace('-', '_')}.py"
    spec = importlib.util.spec_from_file_location(f"mistakes_{assignment.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MISTAKES


def _solution_sources(solution_path: Path) -> dict[str, str]:
    nb = nbformat.read(solution_path, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def apply_mistake(source: str, mistake: dict) -> str:
    """The solution cell's source with the mistake's (old, new) replacements (each ``old`` must occur), or the
    mistake's whole ``source`` when it gives one."""
    if "source" in mistake:
        return mistake["source"]
    for old, new in mistake["replace"]:
        if old not in source:
            raise ValueError(f"mistake {mistake['name']!r}: {old!r} is not in cell {mistake['cell']!r}")
        source = source.replace(old, new)
    return source


def build_submission(course: Path, assignment: str, answers: str | dict = "solution"):
    """A student notebook with answers filled in.

    answers: "solution" (every answer cell from the solution), "blank" (the released stubs untouched), or a
    mistake dict (every answer from the solution, except the mistake's cell, which gets the wrong answer).
    """
    student = nbformat.read(course / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4)
    if answers == "blank":
        return student
    solutions = _solution_sources(course / "solutions" / assignment / f"{assignment}.ipynb")
    for cell in student.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = solutions[grade_id]
            if isinstance(answers, dict) and grade_id == answers["cell"]:
                cell.source = apply_mistake(cell.source, answers)
    return student


def submit(course: Path, student_id: str, assignment: str, nb) -> Path:
    """Place ``nb`` where nbgrader looks for a submission: autograder/submitted/<student>/<id>/<id>.ipynb."""
    folder = course / "autograder" / "submitted" / student_id / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{assignment}.ipynb"
    nbformat.write(nb, path)
    (folder / "timestamp.txt").write_text("2026-01-01 00:00:00.000000 UTC")
    return path


def autograde(course: Path, assignment: str, *extra: str, timeout: float = 1800):
    """Stock ``nbgrader autograde <id>`` over every submission in the course copy."""
    return nbgrader("autograde", assignment, "--force", *extra, root=course, check=False, timeout=timeout)


def scores(course: Path, assignment: str) -> dict[str, dict[str, tuple[float, float]]]:
    """student -> test cell grade_id -> (auto score, max score), from the course copy's gradebook."""
    from nbgrader.api import Gradebook

    result: dict[str, dict[str, tuple[float, float]]] = {}
    with Gradebook(f"sqlite:///{course / 'autograder' / 'gradebook.db'}") as gradebook:
        for submission in gradebook.assignment_submissions(assignment):
            cells = {}
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    if grade.cell.cell_type == "code":
                        cells[grade.name] = (grade.auto_score or 0.0, grade.max_score)
            result[submission.student.id] = cells
    return result


def cell_outputs(course: Path, student_id: str, assignment: str) -> dict[str, str]:
    """grade_id -> all text its cell printed or raised in the autograded notebook of ``student_id``."""
    path = course / "autograder" / "autograded" / student_id / assignment / f"{assignment}.ipynb"
    nb = json.loads(path.read_text())
    texts = {}
    for cell in nb["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        parts = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append("".join(out["text"]) if isinstance(out["text"], list) else out["text"])
            elif out.get("output_type") == "error":
                parts.append(f"{out['ename']}: {out['evalue']}")
        if grade_id:
            texts[grade_id] = "\n".join(parts)
    return texts
