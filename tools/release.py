"""Regenerate the student notebooks (notebooks/) from the solutions (solutions/) with nbgrader.

Usage: python -m tools.release [--root DIR] [assignment ...]
Runs stock ``nbgrader generate_assignment <id> --force`` from the course root for each assignment: solutions are
stripped to stubs, hidden tests removed, outputs cleared. Before that, the solution notebook gets the current
bootstrap cell (the first code cell; see tools/bootstrap_cell.py). Never edit notebooks/ by hand.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from tools.bootstrap_cell import ensure_bootstrap_cell_in_file
from tools.paths import ROOT, assignments


def nbgrader(*args: str, root: Path = ROOT, check: bool = True, timeout: float | None = None,
             env: dict | None = None):
    """Run ``nbgrader <args>`` in ``root`` (where nbgrader_config.py is); returns the CompletedProcess.

    This interpreter's bin folder goes first on PATH (nbgrader calls alembic); ``env`` adds variables.
    """
    full_env = dict(os.environ, **(env or {}))
    full_env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + full_env.get("PATH", "")
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, env=full_env, check=check,
                          capture_output=True, text=True, timeout=timeout)


def release(assignment: str, root: Path = ROOT) -> Path:
    """Generate notebooks/<id>/ from solutions/<id>/; returns the student notebook's path.

    First the solution notebook gets the current bootstrap cell (tools/bootstrap_cell.py; written only if it
    changed), so every student notebook starts with it.
    """
    ensure_bootstrap_cell_in_file(root / "solutions" / assignment / f"{assignment}.ipynb")
    result = nbgrader("generate_assignment", assignment, "--force", root=root, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{result.stdout}\n{result.stderr}")
    return root / "notebooks" / assignment / f"{assignment}.ipynb"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="assignment ids (default: all)")
    args = parser.parse_args(argv)
    for name in args.assignments or assignments():
        print(f"released {release(name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
