"""Your score so far on a notebook's visible checks, from inside the notebook.

    selfcheck.report()          # the bootstrap cell at the top of each notebook imports selfcheck

finds the notebook file in the current folder, runs each of its visible check cells (the locked cells that grade
an exercise) against the functions you have run so far, and prints one row per check: exercise, points, passed,
FAILED (with the first line of the failure message) or not run yet (its exercise cell, or a cell above the check,
has not run in this kernel: typically the exercises below the cell you are in), and the count of each.

What it does not do: the grade also runs **hidden tests** (random cases against the reference implementation)
that are not in your notebook, so they are not run here; passing every visible check is necessary for full marks,
not sufficient. Written answers are graded by your instructor.

The checks run in a copy of your notebook's namespace, so their variables do not overwrite yours; what they print
and any warning they raise are kept out of your notebook. Pure Python (json, no subprocess, no threads, no file
writes): it runs in JupyterLite's browser kernel too.
"""
from __future__ import annotations

import ast
import contextlib
import io
import json
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CheckResult", "find_notebook", "visible_checks", "answer_names", "run_checks", "report"]

_HIDDEN_TESTS = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?", re.S | re.M)
_MESSAGE_WIDTH = 100


@dataclass
class CheckResult:
    """One visible check cell and what running it gave."""

    exercise: str  # grade_id of the answer cell the check follows
    check: str  # grade_id of the check cell
    points: float  # what the grader gives the cell when the visible *and* the hidden tests pass
    passed: bool
    message: str  # first line of the failure ("" when passed), or why it has not run yet
    not_run: bool = False  # not run yet: a name it needs (its exercise's function, ...) is not defined yet

    @property
    def status(self) -> str:
        """ "passed", "FAILED" or "not run yet"."""
        return "passed" if self.passed else "not run yet" if self.not_run else "FAILED"


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
    return f"{name}: {text}" if text else name


def _defined_names(source: str) -> set[str]:
    """The functions and classes a cell defines at its top level (what an exercise cell gives the notebook)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _used_names(source: str) -> list[str]:
    """The names a check's source reads, in order of first use; [] when it is not plain Python."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = [node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)]
    return list(dict.fromkeys(names))


def answer_names(nb: dict) -> dict[str, str]:
    """name -> grade_id of the exercise cell that defines it, for every function and class the exercise cells
    (autograded answer cells) of the notebook define."""
    names = {}
    for cell in nb.get("cells", []):
        meta = _nbgrader(cell)
        if meta.get("solution") and cell.get("cell_type") == "code" and not meta.get("grade"):
            for name in sorted(_defined_names(_source(cell))):
                names.setdefault(name, meta.get("grade_id", ""))
    return names


class _NotRunYet(Exception):
    """A name the check needs is not defined in the notebook's namespace yet."""


def _missing_name(error: NameError, check: str) -> bool:
    """True when the NameError comes from the check's own code (a cell above it has not run), not from inside a
    function the check called (a mistake in that function)."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_filename == f"<check {check}>"


def _run_one(source: str, check: str, namespace: dict) -> str:
    """Run one check's source in ``namespace``; returns "" when it passed, else the first line of the failure.
    Raises ``_NotRunYet`` when the check stops on a name that is not defined yet."""
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
    except NameError as error:
        if _missing_name(error, check):
            raise _NotRunYet(f"{error} yet") from None
        return _first_line(error)
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
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    checks, _ = visible_checks(nb)
    answers = answer_names(nb)
    below = _checks_below_current_cell(nb)
    scratch = dict(namespace)  # the checks' own variables (H, expected, ...) stay out of the notebook
    results = []
    for exercise, check, points, source in checks:
        where = "below this cell" if check in below else "above this check"
        missing = [name for name in _used_names(source) if name in answers and name not in scratch]
        if missing:
            needs = ", ".join(f"`{name}`" for name in missing)
            message = (f"{needs} {'is' if len(missing) == 1 else 'are'} not defined yet: run "
                       f"{'its exercise cell' if len(missing) == 1 else 'their exercise cells'} ({where}) first")
            results.append(CheckResult(exercise, check, points, False, message, not_run=True))
            continue
        try:
            message = _run_one(source, check, scratch)
        except _NotRunYet as error:
            message = f"{error}: run the cells {'down to it' if check in below else 'above this check'} first"
            results.append(CheckResult(exercise, check, points, False, message, not_run=True))
            continue
        results.append(CheckResult(exercise, check, points, not message, message))
    return results


def _current_cell_id() -> str | None:
    """The id of the notebook cell that is running now, when the front end says so (JupyterLab does)."""
    try:
        parent = _ipython().kernel.get_parent()
        cell_id = parent.get("metadata", {}).get("cellId")
    except Exception:  # no IPython kernel (a script, nbclient without cell ids, a browser kernel)
        return None
    return cell_id if isinstance(cell_id, str) else None


def _checks_below_current_cell(nb: dict) -> set[str]:
    """The grade_ids of the check cells below the cell that is running now (empty when that is not known)."""
    cell_id = _current_cell_id()
    cells = nb.get("cells", [])
    index = next((i for i, cell in enumerate(cells) if cell_id and cell.get("id") == cell_id), None)
    if index is None:
        return set()
    return {_nbgrader(cell).get("grade_id") for cell in cells[index + 1:] if _nbgrader(cell).get("grade")}


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
        lines.append(f"{exercise:<{width_exercise}}  {r.check:<{width_check}}  {_points(r.points):>6}  {r.status}")
        if not r.passed:
            lines.append(f"{'':<{width_exercise}}    -> {_shorten(r.message)}")
    passed_points = sum(r.points for r in results if r.passed)
    total_points = sum(r.points for r in results)
    failed = sum(not r.passed and not r.not_run for r in results)
    not_run = sum(r.not_run for r in results)
    lines += ["",
              f"Visible checks passed: {sum(r.passed for r in results)} of {len(results)}, "
              f"worth {_points(passed_points)} of {_points(total_points)} points.",
              f"Failed: {failed}. Not run yet: {not_run}"
              + (" (their exercise cells, or cells above them, have not run in this kernel yet)." if not_run else "."),
              "Hidden tests are not included: the grader also runs hidden tests (random cases against the",
              "reference) on the same functions, and a check cell earns its points only if those pass too."]
    if manual:
        lines.append(f"Written answers and tasks ({_points(manual)} points) are graded by your instructor.")
    print("\n".join(lines))
