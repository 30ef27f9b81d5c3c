"""Where things live in the repository."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = ROOT / "notebooks"
AUTOGRADER = ROOT / "autograder"


def assignments() -> list[str]:
    """The assignment ids, one per folder of solutions/ holding <id>/<id>.ipynb, in course order."""
    return sorted(p.name for p in SOLUTIONS.iterdir() if (p / f"{p.name}.ipynb").is_file())


def solution_notebook(assignment: str, root: Path = ROOT) -> Path:
    return root / "solutions" / assignment / f"{assignment}.ipynb"


def student_notebook(assignment: str, root: Path = ROOT) -> Path:
    return root / "notebooks" / assignment / f"{assignment}.ipynb"
