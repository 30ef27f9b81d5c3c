"""The bootstrap cell (tools/bootstrap_cell.py): every notebook starts with the current one, and it makes
``helpers`` importable in each world: installed, a clone of the repository, and JupyterLite (simulated here: a
stand-in ``piplite`` and ``sys.platform = "emscripten"``, in a real ipykernel, top-level ``await`` included).
The nbgrader round trip (tests/test_roundtrip.py) runs it under nbgrader's executor."""
from __future__ import annotations

import tomllib

import nbformat
import pytest

from tools import bootstrap_cell, nbexec
from tools.paths import ROOT

SOLUTIONS = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("solutions/*/*.ipynb") if p.stem == p.parent.name)
STUDENTS = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("notebooks/*/*.ipynb") if p.stem == p.parent.name)


@pytest.mark.parametrize("path", SOLUTIONS)
def test_solution_notebook_starts_with_the_current_bootstrap_cell(path):
    nb = nbformat.read(ROOT / path, as_version=4)
    assert bootstrap_cell.has_current_bootstrap_cell(nb), f"{path}: run ./course release (it adds the bootstrap cell)"
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    setup = [i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "setup"]
    assert all(first < i for i in setup), "the bootstrap cell comes before the setup cell"


@pytest.mark.parametrize("path", STUDENTS)
def test_student_notebook_starts_with_the_current_bootstrap_cell(path):
    nb = nbformat.read(ROOT / path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    meta = first.metadata.get("nbgrader", {})
    assert first.source == bootstrap_cell.SOURCE, f"{path}: run ./course release"
    assert meta.get("grade_id") == "bootstrap" and meta.get("locked") and not meta.get("grade")
    assert first.metadata.get("editable") is False and first.metadata.get("deletable") is False


def test_the_cell_installs_the_package_the_site_serves():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert bootstrap_cell.WHEEL_NAME == project["name"]
    assert f'piplite.install("{project["name"]}")' in bootstrap_cell.SOURCE
    assert "selfcheck.report()" in bootstrap_cell.SOURCE.splitlines()[1], "the comment tells learners about it"
    assert len(bootstrap_cell.SOURCE.splitlines()) <= 17, "keep the cell short enough to read"
    assert "stays [*]" in bootstrap_cell.SOURCE.splitlines()[2], "the comment says what a blocked browser kernel looks like"


def _notebook(*sources, minor=5):
    nb = nbformat.v4.new_notebook()
    nb.nbformat_minor = minor
    nb.cells = [nbformat.v4.new_markdown_cell("# Title", metadata={"nbgrader": {"grade_id": "intro"}})]
    nb.cells += [nbformat.v4.new_code_cell(s, metadata={"nbgrader": {"grade_id": f"cell{i}"}})
                 for i, s in enumerate(sources)]
    if minor < 5:
        for cell in nb.cells:
            cell.pop("id", None)
    return nb


def test_ensure_inserts_before_the_first_code_cell_and_is_idempotent():
    nb = _notebook("import numpy as np", "x = 1")
    assert bootstrap_cell.ensure_bootstrap_cell(nb) is True
    assert [c.metadata["nbgrader"]["grade_id"] for c in nb.cells] == ["intro", "bootstrap", "cell0", "cell1"]
    assert nb.cells[1].id == "bootstrap"
    nbformat.validate(nb)
    before = nbformat.writes(nb)
    assert bootstrap_cell.ensure_bootstrap_cell(nb) is False
    assert nbformat.writes(nb) == before


def test_ensure_replaces_an_old_or_misplaced_bootstrap_cell():
    nb = _notebook("import numpy as np")
    old = bootstrap_cell.bootstrap_cell()
    old.source = "import helpers  # an older version"
    nb.cells.append(old)
    assert bootstrap_cell.ensure_bootstrap_cell(nb) is True
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells]
    assert ids == ["intro", "bootstrap", "cell0"]
    assert nb.cells[1].source == bootstrap_cell.SOURCE


def test_ensure_keeps_old_notebook_formats_valid():
    nb = _notebook("x = 1", minor=4)
    bootstrap_cell.ensure_bootstrap_cell(nb)
    assert "id" not in nb.cells[1]
    nbformat.validate(nb)
    assert bootstrap_cell.has_current_bootstrap_cell(nb)


def test_ensure_in_file_writes_only_when_something_changed(tmp_path):
    path = tmp_path / "a.ipynb"
    nbformat.write(_notebook("x = 1"), path)
    assert bootstrap_cell.ensure_bootstrap_cell_in_file(path) is True
    written = path.stat().st_mtime_ns, path.read_text()
    assert bootstrap_cell.ensure_bootstrap_cell_in_file(path) is False
    assert (path.stat().st_mtime_ns, path.read_text()) == written


# --- the cell in a real kernel, in each world ----------------------------------------------------------------

# The course is installed in this environment (editable); a learner's clone is not: remove that finder first.
FORGET_INSTALLED_HELPERS = """\
import sys
sys.meta_path = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path = [p for p in sys.path if p not in ("", ".")]
for name in [m for m in sys.modules if m == "helpers" or m.startswith("helpers.")]:
    del sys.modules[name]
try:
    import helpers
    raise AssertionError(f"helpers is still importable from {helpers.__file__}")
except ModuleNotFoundError:
    pass
"""

FAKE_PYODIDE = """\
import sys, types
calls = []
async def install(requirement):
    calls.append(requirement)
    sys.path.insert(0, {root!r})  # what installing the wheel achieves
sys.modules["piplite"] = types.SimpleNamespace(install=install)
real_platform, sys.platform = sys.platform, "emscripten"
"""


def _run(folder, *sources):
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    path = folder / "probe.ipynb"
    nbformat.write(nb, path)
    executed = nbexec.execute(path, timeout=60)
    assert nbexec.errors(executed) == []
    assert nbexec.stream_text(executed, "stderr") == []
    return "".join(text for _, text in nbexec.stream_text(executed, "stdout"))


def test_in_a_clone_of_the_repository_the_cell_finds_helpers_by_walking_up(tmp_path):
    clone = tmp_path / "clone"
    (clone / "notebooks").mkdir(parents=True)
    (clone / "helpers").symlink_to(ROOT / "helpers", target_is_directory=True)
    out = _run(clone / "notebooks" / "01-x", FORGET_INSTALLED_HELPERS, bootstrap_cell.SOURCE,
               "print(sys.path[0]); print(selfcheck.__name__)")
    assert out.split() == [str(clone), "helpers.selfcheck"]


def test_under_pyodide_the_cell_awaits_piplite_install(tmp_path):
    out = _run(tmp_path / "lite", FORGET_INSTALLED_HELPERS, FAKE_PYODIDE.format(root=str(ROOT)), bootstrap_cell.SOURCE,
               "sys.platform = real_platform\nprint(calls, selfcheck.__name__)")
    assert out.strip() == f"['{bootstrap_cell.WHEEL_NAME}'] helpers.selfcheck"


def test_where_helpers_is_installed_the_cell_only_imports(tmp_path):
    out = _run(tmp_path / "anywhere", "import sys\nbefore = list(sys.path)", bootstrap_cell.SOURCE,
               "print(sys.path == before, 'piplite' in sys.modules, selfcheck.__name__)")
    assert out.split() == ["True", "False", "helpers.selfcheck"]
