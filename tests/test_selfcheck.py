"""helpers.selfcheck: a learner's score so far on the visible checks, from inside the notebook.

On small hand-made notebooks: what passes and fails, the first line of each failure, hidden tests never run,
nothing on stderr, the learner's variables untouched. On every real notebook, in a real kernel: the untouched
student version scores zero and the solution scores every visible point."""
from __future__ import annotations

import json
import re
import warnings

import nbformat
import pytest

from helpers import selfcheck
from tools import nbexec
from tools.paths import ROOT, assignments, solution_notebook, student_notebook


def _cell(source, cell_type="code", **nbgrader):
    meta = {"grade": False, "solution": False, "locked": True, "schema_version": 3, **nbgrader}
    if cell_type == "markdown":
        return nbformat.v4.new_markdown_cell(source, metadata={"nbgrader": meta})
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta})


def _write(folder, name="ex.ipynb", hidden="raise AssertionError('a hidden test ran')"):
    nb = nbformat.v4.new_notebook(cells=[
        _cell("def double(x):\n    raise NotImplementedError()", grade_id="double", solution=True, locked=False),
        _cell('"""double: hand case."""\nassert double(2) == 4, f"double(2) gave {double(2)}, expected 4\\nmore"',
              grade_id="double_hand_case", grade=True, points=1),
        _cell('"""double: more."""\nscratch = "the check\'s own variable"\nassert double(-1) == -2\n'
              f"### BEGIN HIDDEN TESTS\n{hidden}\n### END HIDDEN TESTS\n",
              grade_id="double_more", grade=True, points=2),
        _cell("def half(x):\n    raise NotImplementedError()", grade_id="half", solution=True, locked=False),
        _cell('"""half: hand case."""\nimport warnings, sys\nwarnings.warn("noisy")\nprint("chatty")\n'
              'print("to stderr", file=sys.stderr)\nassert half(4) == 2',
              grade_id="half_hand_case", grade=True, points=1),
        _cell("Explain.", cell_type="markdown", grade_id="why", grade=True, solution=True, points=2, locked=False),
    ])
    path = folder / name
    nbformat.write(nb, path)
    return path


def test_correct_functions_pass_every_visible_check_and_hidden_tests_never_run(tmp_path):
    path = _write(tmp_path)
    namespace = {"double": lambda x: 2 * x, "half": lambda x: x / 2}
    results = selfcheck.run_checks(path, namespace)
    assert [(r.exercise, r.check, r.points, r.passed) for r in results] == [
        ("double", "double_hand_case", 1, True), ("double", "double_more", 2, True), ("half", "half_hand_case", 1, True)]


def test_failures_show_their_first_line_and_name_unimplemented_exercises(tmp_path):
    path = _write(tmp_path)
    results = {r.check: r for r in selfcheck.run_checks(path, {"double": lambda x: x + 2,
                                                              "half": selfcheck_stub})}
    assert results["double_hand_case"].passed and not results["double_more"].passed  # 2 + 2 == 4, by luck
    assert results["double_more"].message == "AssertionError"
    assert "not implemented yet" in results["half_hand_case"].message
    results = {r.check: r for r in selfcheck.run_checks(path, {"double": lambda x: 3 * x})}
    assert results["double_hand_case"].message == "AssertionError: double(2) gave 6, expected 4"
    assert results["half_hand_case"].status == "not run yet" and not results["half_hand_case"].passed
    assert results["half_hand_case"].message == "`half` is not defined yet: run its exercise cell (above this check) first"


def test_not_run_yet_is_told_from_failed(tmp_path):
    """A check whose exercise function (or another name it needs) is not defined yet has not run; a NameError from
    inside the learner's own function is a failure of that function."""
    path = _write(tmp_path)
    nb = json.loads(path.read_text())
    nb["cells"][2]["source"] = '"""double: more."""\nassert double(expected_input) == -2'  # a name of a cell above
    path.write_text(json.dumps(nb))

    def double_with_a_typo(x):
        return 2 * y  # noqa: F821 - the learner's mistake

    results = {r.check: r for r in selfcheck.run_checks(path, {"double": double_with_a_typo})}
    assert results["double_hand_case"].status == "FAILED"
    assert results["double_hand_case"].message == "NameError: name 'y' is not defined"
    assert results["double_more"].status == "not run yet"
    assert results["double_more"].message == ("name 'expected_input' is not defined yet: "
                                              "run the cells above this check first")
    assert results["half_hand_case"].status == "not run yet"
    assert selfcheck.answer_names(nb) == {"double": "double", "half": "half"}


def test_report_counts_failed_and_not_run_yet(tmp_path, capsys):
    path = _write(tmp_path)
    selfcheck.report(path, {"double": lambda x: 3 * x})
    out, err = capsys.readouterr()
    assert err == ""
    assert re.search(r"^double\s+double_hand_case\s+1\s+FAILED\n\s+-> AssertionError: double\(2\) gave 6", out, re.M), out
    assert re.search(r"^half\s+half_hand_case\s+1\s+not run yet\n\s+-> `half` is not defined yet", out, re.M), out
    assert "Visible checks passed: 0 of 3, worth 0 of 4 points." in out
    assert "Failed: 2. Not run yet: 1 (their exercise cells, or cells above them, have not run" in out


def selfcheck_stub(x):
    raise NotImplementedError()


def test_report_prints_a_table_says_hidden_tests_are_not_included_and_keeps_stderr_clean(tmp_path, capsys):
    path = _write(tmp_path)
    namespace = {"double": lambda x: 2 * x, "half": selfcheck_stub}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning escaping the checks would raise here
        selfcheck.report(path, namespace)
    out, err = capsys.readouterr()
    assert err == ""
    assert "chatty" not in out
    assert re.search(r"^double\s+double_hand_case\s+1\s+passed$", out, flags=re.M), out
    assert re.search(r"^\s+double_more\s+2\s+passed$", out, flags=re.M), out
    assert re.search(r"^half\s+half_hand_case\s+1\s+FAILED\n\s+-> not implemented yet", out, flags=re.M), out
    assert "Visible checks passed: 2 of 3, worth 3 of 4 points." in out
    assert "Hidden tests are not included" in out and "hidden tests are not included" in out.splitlines()[0]
    assert "Written answers and tasks (2 points) are graded by your instructor." in out


def test_checks_leave_the_learners_variables_and_numpy_settings_alone(tmp_path):
    import numpy as np

    path = _write(tmp_path)
    tmp_notebook = json.loads(path.read_text())
    tmp_notebook["cells"][1]["source"] = 'import numpy as np\nnp.seterr(all="ignore")\nscratch = 1\nassert double(2) == 4'
    path.write_text(json.dumps(tmp_notebook))
    namespace = {"double": lambda x: 2 * x, "half": lambda x: x / 2, "scratch": "mine"}
    before = np.geterr()
    selfcheck.run_checks(path, namespace)
    assert namespace["scratch"] == "mine" and np.geterr() == before


def test_finds_the_notebook_in_the_current_folder(tmp_path, monkeypatch):
    folder = tmp_path / "01-x"
    folder.mkdir()
    monkeypatch.chdir(folder)
    with pytest.raises(FileNotFoundError, match="pass its name"):
        selfcheck.find_notebook()
    _write(folder, "notes.ipynb")
    assert selfcheck.find_notebook().name == "notes.ipynb"
    _write(folder, "other.ipynb")
    with pytest.raises(FileNotFoundError, match="notes.ipynb, other.ipynb"):
        selfcheck.find_notebook()
    _write(folder, "01-x.ipynb")
    assert selfcheck.find_notebook().name == "01-x.ipynb"  # the course's <id>/<id>.ipynb
    assert selfcheck.find_notebook(namespace={"__session__": "01-x/other.ipynb"}).name == "other.ipynb"
    assert selfcheck.find_notebook("notes.ipynb").name == "notes.ipynb"


def test_selfcheck_is_pure_python_for_the_browser_kernel():
    source = (ROOT / "helpers" / "selfcheck.py").read_text()
    for module in ("subprocess", "threading", "multiprocessing", "nbformat", "IPython", "numpy"):
        assert not re.search(rf"^\s*(import|from) {module}\b", source, flags=re.M), f"selfcheck imports {module}"


# --- every real notebook, in a real kernel ---------------------------------------------------------------------

REPORT = "from helpers import selfcheck\nselfcheck.report()"
RELEASED = sorted(p.parent.name for p in (ROOT / "notebooks").glob("*/*.ipynb") if p.stem == p.parent.name)


def _visible_points(nb: dict) -> tuple[int, float]:
    checks, _ = selfcheck.visible_checks(nb)
    return len(checks), sum(points for _, _, points, _ in checks)


def _report(folder, source_path, keep=lambda cell: True):
    """Copy the notebook to ``folder/<id>.ipynb`` (what selfcheck finds), run a probe made of its ``keep`` cells and
    a last ``selfcheck.report()`` cell in a kernel there; returns (executed probe, what the report printed)."""
    folder.mkdir()
    (folder / source_path.name).write_text(source_path.read_text())
    nb = nbformat.read(source_path, as_version=4)
    nb.cells = [c for c in nb.cells if keep(c)] + [nbformat.v4.new_code_cell(REPORT)]
    nbformat.write(nb, folder / "probe.ipynb")
    executed = nbexec.execute(folder / "probe.ipynb", timeout=300, allow_errors=True)
    outputs = executed.cells[-1].get("outputs", [])
    assert not [o for o in outputs if o.get("output_type") == "error" or o.get("name") == "stderr"], outputs
    return executed, "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")


def _answers_only(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and (meta.get("solution") or meta.get("grade_id") in ("bootstrap", "setup"))


@pytest.mark.parametrize("assignment", RELEASED)
def test_untouched_student_notebook_scores_zero(assignment, tmp_path):
    """The stubs only (every check fails whatever else ran, so the plots and demos are skipped to save time)."""
    path = student_notebook(assignment)
    _, report = _report(tmp_path / assignment, path, keep=_answers_only)
    n_checks, points = _visible_points(json.loads(path.read_text()))
    assert f"Visible checks passed: 0 of {n_checks}, worth 0 of {points:g} points." in report, report
    assert "not implemented yet" in report


@pytest.mark.parametrize("assignment", assignments())
def test_solution_notebook_scores_every_visible_point(assignment, tmp_path):
    """The whole notebook, as a learner runs it: some checks use names that locked cells between them define."""
    path = solution_notebook(assignment)
    executed, report = _report(tmp_path / assignment, path)
    assert nbexec.errors(executed) == []
    n_checks, points = _visible_points(json.loads(path.read_text()))
    assert f"Visible checks passed: {n_checks} of {n_checks}, worth {points:g} of {points:g} points." in report, report


def test_report_mid_way_says_not_run_yet_for_the_exercises_below(tmp_path):
    """Notebook 01's solution run down to the first exercise's checks, then selfcheck.report(): those checks pass,
    every later one is "not run yet" (its function is not defined in the kernel), and none FAILED."""
    path = solution_notebook("01-learning-rate")
    nb = nbformat.read(path, as_version=4)
    meta = [c.metadata.get("nbgrader", {}) for c in nb.cells]
    answers = [i for i, m in enumerate(meta) if m.get("solution") and nb.cells[i].cell_type == "code"]
    first_checks = [i for i, m in enumerate(meta) if m.get("grade") and not m.get("solution") and
                    answers[0] < i < answers[1]]
    kept = {m["grade_id"] for m in meta[:first_checks[-1] + 1]}
    _, report = _report(tmp_path / "01-learning-rate", path,
                        keep=lambda cell: cell.metadata.get("nbgrader", {}).get("grade_id") in kept)
    n_checks, _ = _visible_points(json.loads(path.read_text()))
    assert f"Visible checks passed: {len(first_checks)} of {n_checks}," in report, report
    assert f"Failed: 0. Not run yet: {n_checks - len(first_checks)} " in report, report
    assert report.count("not run yet\n") == n_checks - len(first_checks), report
    assert "`classify_learning_rate` is not defined yet: run its exercise cell" in report
    assert "FAILED" not in report and "NameError" not in report
