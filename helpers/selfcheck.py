"""Your score so far on a notebook's visible checks, from inside the notebook.

    selfcheck.report()          # the bootstrap cell at the top of each notebook imports selfcheck

finds the notebook file in the current folder, runs each of its visible check cells (the locked cells that grade
an exercise) against the functions you have run so far, and prints one row per check: exercise, points, passed or
FAILED, and the first line of the failure message.

What it does not do: the grade also runs **hidden tests** (random cases against the reference implementation)
that are not in your notebook, so they are not run here; passing every visible check is necessary for full marks,
not sufficient. Written answers are graded by your instructor.

The checks run in a copy of your notebook's namespace, so their variables do not overwrite yours; what they print
and any warning they raise are kept out of your notebook. Pure Python (json, no subprocess, no threads, no file
writes): it runs in JupyterLite's browser kernel too.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CheckResult", "find_notebook", "visible_checks", "run_checks", "report"]

_HIDDEN_TESTS = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?", re.S | re.M)
_MESSAGE_WIDTH = 100


@dataclass
class CheckResult:
    """One visible check cell and what running it gave."""

    exercise: str  # grade_id of the answer cell the check follows
    check: str  # grade_id of the check cell
    points: float  # what the grader gives the cell when the visible *and* the hidden tests pass
    passed: bool
    message: str  # first line of the failure ("" when passed)


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _nbgrader(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _ipython():
    shell = sys.modules.get("IPython")
    return shell.get_ipython() if shell is not None else None


def _caller_namespace(depth: int) -> dict:
    """IPython's user namespace when called from a notebook; otherwise the calling module's globals."""
    shell = _ipython()
    if shell is not None:
        return shell.user_ns
    return sys._getframe(depth + 1).f_globals


def _is_notebook(path: Path) -> bool:
    return path.suffix == ".ipynb" and path.is_file() and ".ipynb_checkpoints" not in path.parts


def find_notebook(path: str | Path | None = None, namespace: dict | None = None) -> Path:
    """The notebook to check: ``path`` if given (a file, or a folder holding one notebook), else the notebook the
    kernel says it runs (``__session__``, ``__vsc_ipynb_file__``), else the one notebook in the current folder
    (with several, the one named like the folder, as in ``01-learning-rate/01-learning-rate.ipynb``)."""
    if path is not None:
        path = Path(path)
        if path.is_dir():
            return _only_notebook_in(path)
        if not path.is_file():
            raise FileNotFoundError(f"selfcheck: no notebook at {path}")
        return path
    for key in ("__session__", "__vsc_ipynb_file__"):
        name = (namespace or {}).get(key)
        if isinstance(name, str) and name.endswith(".ipynb"):
            for candidate in (Path(name), Path.cwd() / Path(name).name):
                if _is_notebook(candidate):
                    return candidate
    return _only_notebook_in(Path.cwd())


def _only_notebook_in(folder: Path) -> Path:
    notebooks = sorted(p for p in folder.glob("*.ipynb") if _is_notebook(p))
    named_like_folder = [p for p in notebooks if p.stem == folder.resolve().name]
    if len(notebooks) == 1 or len(named_like_folder) == 1:
        return (named_like_folder or notebooks)[0]
    found = ", ".join(p.name for p in notebooks) or "none"
    raise FileNotFoundError(f"selfcheck: cannot tell which notebook to check in {folder} (found: {found}); "
                            "pass its name, e.g. selfcheck.report('01-learning-rate.ipynb')")


def visible_checks(nb: dict) -> tuple[list[tuple[str, str, float, str]], float]:
    """(exercise, check grade_id, points, source without hidden tests) for each autograded check cell, in order,
    and the points of the manually graded cells (written answers, tasks)."""
    checks, manual, exercise = [], 0.0, None
    for cell in nb.get("cells", []):
        meta = _nbgrader(cell)
        if meta.get("solution") and cell.get("cell_type") == "code" and not meta.get("grade"):
            exercise = meta.get("grade_id")
        if meta.get("grade") and cell.get("cell_type") == "code" and not meta.get("solution"):
            source = _HIDDEN_TESTS.sub("", _source(cell))
            checks.append((exercise or meta["grade_id"], meta["grade_id"], float(meta.get("points", 0)), source))
        elif meta.get("grade") or meta.get("task"):
            manual += float(meta.get("points", 0))
    return checks, manual


def _first_line(error: BaseException) -> str:
    name = type(error).__name__
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    if isinstance(error, NotImplementedError):
        return "not implemented yet (the exercise cell still raises NotImplementedError)"
    if isinstance(error, NameError):
        return f"{name}: {text} (run the cells above this one first)"
    return f"{name}: {text}" if text else name


def _run_one(source: str, check: str, namespace: dict) -> str:
    """Run one check's source in ``namespace``; returns "" when it passed, else the first line of the failure."""
    shell = _ipython()
    if shell is not None:
        source = shell.transform_cell(source)  # IPython syntax (%magics) as in the notebook
    numpy = sys.modules.get("numpy")
    numpy_errors = numpy.geterr() if numpy is not None else None
    printed = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            warnings.simplefilter("ignore")
            exec(compile(source, f"<check {check}>", "exec"), namespace)
    except Exception as error:  # a failing check: its message is the result (KeyboardInterrupt still stops)
        return _first_line(error)
    finally:
        if numpy_errors is not None:
            numpy.seterr(**numpy_errors)  # a check's np.seterr does not change your notebook
    return ""


def run_checks(path: str | Path | None = None, namespace: dict | None = None) -> list[CheckResult]:
    """Run the visible checks of the notebook (see ``find_notebook``) against ``namespace`` (default: the
    notebook's, i.e. IPython's user namespace); returns one ``CheckResult`` per check cell."""
    namespace = _caller_namespace(1) if namespace is None else namespace
    notebook = find_notebook(path, namespace)
    checks, _ = visible_checks(json.loads(notebook.read_text(encoding="utf-8")))
    scratch = dict(namespace)  # the checks' own variables (H, expected, ...) stay out of the notebook
    results = []
    for exercise, check, points, source in checks:
        message = _run_one(source, check, scratch)
        results.append(CheckResult(exercise, check, points, not message, message))
    return results


def _shorten(text: str, width: int = _MESSAGE_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _points(value: float) -> str:
    return f"{value:g}"


def report(path: str | Path | None = None, namespace: dict | None = None) -> None:
    """Print your score so far on the notebook's visible checks: one row per check, a total, and what is not
    included (hidden tests, written answers). Run the cells above first; ``path`` names the notebook if the
    current folder holds several."""
    namespace = _caller_namespace(1) if namespace is None else namespace
    notebook = find_notebook(path, namespace)
    results = run_checks(notebook, namespace)
    _, manual = visible_checks(json.loads(notebook.read_text(encoding="utf-8")))
    width_exercise = max([len("exercise"), *(len(r.exercise) for r in results)])
    width_check = max([len("check"), *(len(r.check) for r in results)])
    lines = [f"Self-check of {notebook.name}: the visible checks only (hidden tests are not included)", "",
             f"{'exercise':<{width_exercise}}  {'check':<{width_check}}  points  result"]
    previous = None
    for r in results:
        exercise = r.exercise if r.exercise != previous else ""
        previous = r.exercise
        lines.append(f"{exercise:<{width_exercise}}  {r.check:<{width_check}}  {_points(r.points):>6}  "
                     f"{'passed' if r.passed else 'FAILED'}")
        if not r.passed:
            lines.append(f"{'':<{width_exercise}}    -> {_shorten(r.message)}")
    passed_points = sum(r.points for r in results if r.passed)
    total_points = sum(r.points for r in results)
    lines += ["",
              f"Visible checks passed: {sum(r.passed for r in results)} of {len(results)}, "
              f"worth {_points(passed_points)} of {_points(total_points)} points.",
              "Hidden tests are not included: the grader also runs hidden tests (random cases against the",
              "reference) on the same functions, and a check cell earns its points only if those pass too."]
    if manual:
        lines.append(f"Written answers and tasks ({_points(manual)} points) are graded by your instructor.")
    print("\n".join(lines))
