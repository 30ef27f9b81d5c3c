"""``./course formgrader``: the instructor's JupyterLab on the course root, with nbgrader's formgrader.

Usage: python -m tools.formgrader [JupyterLab options ...]   (from the course root; ``./course formgrader`` runs it)

The server runs from the root, so formgrader reads this course's ``nbgrader_config.py`` and gradebook; the
students' settings (tools/student-config/, which hide formgrader) are taken off JUPYTER_CONFIG_PATH. Its log goes
to ``autograder/formgrader.log``; what this command prints ends with the URL of formgrader, on its own line.

Formgrader shows each autograded notebook as ``nbgrader autograde`` stored it: displays keep only text and images
(autograder/execute.py) and markdown goes through the feedback's allowlist of inert tags (the ``markdown2html``
filter in autograder/nbgrader_config.py), so nothing a student wrote runs in the instructor's browser.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from tools.start import ROOT, STUDENT_CONFIG, lab_command, serve

LOG = Path("autograder") / "formgrader.log"


def instructor_environment(environ: dict | None = None) -> dict:
    """``environ`` (default: this process's) without the students' settings on JUPYTER_CONFIG_PATH."""
    env = dict(os.environ if environ is None else environ)
    paths = [p for p in env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p and Path(p) != STUDENT_CONFIG]
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(paths)
    return env


def main(argv: list[str], root: Path = ROOT) -> int:
    return serve(lab_command(root, argv), root, root / LOG, instructor_environment(), "with formgrader on the "
                 "course root", page="formgrader")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
