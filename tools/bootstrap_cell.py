"""The first code cell of every notebook: it makes ``helpers`` importable in the browser and on a computer alike.

Where the notebook runs decides how ``helpers`` arrives:
- installed (``pip install -e .``, ``./course start``, Binder, the grader): ``import helpers`` just works;
- JupyterLite (Pyodide, ``sys.platform == "emscripten"``): the course's wheel, served by the site itself, is
  installed with ``piplite`` (a top-level ``await``, which IPython runs in both worlds);
- a clone of the repository opened with some other Jupyter: the repository root (the folder holding
  ``helpers/__init__.py``, found by walking up from the notebook's folder) goes onto ``sys.path``.
It also imports ``selfcheck``, so a learner can see their score on the visible checks with one call. In
JupyterLite the cell cannot run at all when Pyodide's CDN is blocked: its comment then points at the note the site
shows at the top of the notebook (tools/pyodide-check.js).

``tools.release.release`` applies ``ensure_bootstrap_cell`` to the solution notebook before nbgrader runs, so every
notebook gets the current cell (a locked, ungraded cell with grade_id "bootstrap", the first code cell).
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat

GRADE_ID = "bootstrap"
WHEEL_NAME = "normalization-course-dl-helpers"  # pyproject.toml's [project] name; the site serves this wheel

SOURCE = f'''\
# Makes the course's `helpers` importable: in the browser (JupyterLite) and on your computer alike.
# Your score on the visible checks so far, at any time: selfcheck.report()
# In the browser, if this cell stays [*] for minutes, Python could not be downloaded: see the note at the top.
import sys
try:
    import helpers
except ModuleNotFoundError:
    if sys.platform == "emscripten":  # JupyterLite: install the course's wheel from the site
        import piplite
        await piplite.install("{WHEEL_NAME}")
    else:  # a clone of the repository: put its root (the folder holding helpers/) on the path
        from pathlib import Path
        for folder in (Path.cwd(), *Path.cwd().parents):
            if (folder / "helpers" / "__init__.py").is_file():
                sys.path.insert(0, str(folder))
                break
from helpers import selfcheck'''

METADATA = {
    "nbgrader": {
        "grade": False,
        "grade_id": GRADE_ID,
        "locked": True,
        "schema_version": 3,
        "solution": False,
        "task": False,
    },
    "tags": ["bootstrap"],
}


def bootstrap_cell(with_id: bool = True):
    """A fresh copy of the bootstrap cell (nbformat node); cell ids exist from nbformat 4.5 on."""
    cell = nbformat.v4.new_code_cell(SOURCE, metadata=copy.deepcopy(METADATA))
    if with_id:
        cell["id"] = GRADE_ID
    else:
        cell.pop("id", None)
    return cell


def _uses_cell_ids(nb) -> bool:
    return (nb.get("nbformat", 4), nb.get("nbformat_minor", 0)) >= (4, 5)


def _is_bootstrap(cell) -> bool:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == GRADE_ID


def has_current_bootstrap_cell(nb) -> bool:
    """True when the first code cell is exactly the current bootstrap cell and no other cell claims its id."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    wanted = bootstrap_cell(_uses_cell_ids(nb))
    return (bool(code) and code[0].source == wanted.source and code[0].metadata == wanted.metadata
            and code[0].get("id") == wanted.get("id") and not code[0].get("outputs")
            and sum(_is_bootstrap(c) for c in nb.cells) == 1)


def ensure_bootstrap_cell(nb) -> bool:
    """Insert or update the bootstrap cell in ``nb`` (in place): the first code cell, before "setup".

    Any older bootstrap cell is removed first. Returns True when ``nb`` changed.
    """
    if has_current_bootstrap_cell(nb):
        return False
    nb.cells = [c for c in nb.cells if not _is_bootstrap(c)]
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    nb.cells.insert(first_code, bootstrap_cell(_uses_cell_ids(nb)))
    return True


def ensure_bootstrap_cell_in_file(path: Path) -> bool:
    """Apply ``ensure_bootstrap_cell`` to the notebook file at ``path``; writes it only when it changed."""
    nb = nbformat.read(path, as_version=4)
    if not ensure_bootstrap_cell(nb):
        return False
    nbformat.write(nb, path)
    return True
