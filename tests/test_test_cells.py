"""Test cells are written for grading outside the kernel (autograder/remote.py).

A test cell runs in the grader's process, so it may use only what the grader has: the imports of the notebook's
locked cells, the names the answer cells define (bound to the student's kernel), builtins, and what the same or an
earlier test cell defines. A name from a demo or plot cell would exist in the student's kernel but not there.
Hidden tests draw their cases from ``checks.hidden_rng`` (seeded per submission while grading), and pass for any
seed on the solution.
"""
from __future__ import annotations

import ast
import builtins
import re

import nbformat
import numpy as np
import pytest

from autograder import remote
from helpers import checks
from tools.paths import ROOT, assignments

HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", flags=re.S)


def _cells(assignment: str):
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    kinds = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code":
            continue
        if meta.get("solution"):
            kinds.append(("answer", cell))
        elif meta.get("grade"):
            kinds.append(("test", cell))
        elif meta.get("locked"):
            kinds.append(("locked", cell))
    return kinds


def _bound(tree: ast.AST) -> set[str]:
    """Every name the code binds anywhere (assignments, defs, arguments, imports, loop and except targets)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name.split(".")[0]) for a in node.names}
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


@pytest.mark.parametrize("assignment", assignments())
def test_test_cells_use_only_what_the_grader_has(assignment):
    cells = _cells(assignment)
    namespace = remote.build_namespace([c.source for kind, c in cells if kind == "locked"])
    available = set(namespace) | set(dir(builtins))
    available |= set(remote.defined_names([c.source for kind, c in cells if kind == "answer"]))
    problems = []
    for kind, cell in cells:
        if kind != "test":
            continue
        tree = ast.parse(cell.source)
        loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        missing = sorted(loaded - available - _bound(tree))
        if missing:
            problems.append(f"{cell.metadata['nbgrader']['grade_id']}: {missing}")
        available |= _bound(tree)
    assert not problems, "test cells use names the grader does not have (define them in the cell): " + "; ".join(problems)


@pytest.mark.parametrize("assignment", assignments())
def test_hidden_tests_draw_from_hidden_rng(assignment):
    problems = []
    for kind, cell in _cells(assignment):
        for block in HIDDEN.findall(cell.source) if kind == "test" else []:
            if "default_rng(" in block and "hidden_rng(" not in block:
                problems.append(cell.metadata["nbgrader"]["grade_id"])
    assert not problems, f"hidden tests seeded with a fixed default_rng instead of checks.hidden_rng: {problems}"


def _definitions(source: str) -> list[str]:
    """A locked cell's definitions without its work: defs, imports, and assignments that call nothing."""
    def calls(node) -> bool:  # a call outside any lambda
        if isinstance(node, ast.Lambda):
            return False
        return isinstance(node, ast.Call) or any(calls(child) for child in ast.iter_child_nodes(node))
    kept = [node for node in ast.parse(source).body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom))
            or isinstance(node, ast.Assign) and not calls(node.value)]
    return [ast.unparse(node) for node in kept]


@pytest.mark.parametrize("assignment", assignments())
def test_hidden_tests_pass_for_any_seed_on_the_solution(assignment):
    """The solution's answers and the test cells, run in one namespace here (no kernel), under 12 seeds."""
    cells = _cells(assignment)
    failures = []
    for seed in range(12):
        namespace = remote.build_namespace([c.source for kind, c in cells if kind == "locked"])
        for kind, cell in cells:  # the answers, and what locked cells define for them (as in the kernel)
            if kind == "answer":
                exec(compile(cell.source, "<answer>", "exec"), namespace)  # noqa: S102: the course's solution
            for statement in _definitions(cell.source) if kind == "locked" else []:
                try:
                    exec(compile(statement, "<locked>", "exec"), namespace)  # noqa: S102
                except Exception:  # noqa: BLE001: a demo's assignment that needs the demo's own work
                    pass
        checks._grading_seed = (seed, 1, 2, 3)
        try:
            for kind, cell in cells:
                if kind != "test" or "hidden_rng(" not in cell.source:
                    continue
                try:
                    with np.errstate():
                        exec(compile(cell.source, "<test>", "exec"), namespace)  # noqa: S102
                except Exception as error:  # noqa: BLE001
                    failures.append(f"seed {seed}, {cell.metadata['nbgrader']['grade_id']}: {error}"[:300])
        finally:
            checks._grading_seed = None
    assert not failures, "\n".join(failures)
