"""Pre-flight checks of a submission before it is graded: each problem is repaired where possible and recorded.

The released student notebook is the reference: its nbgrader cells (answers, tests, locked text) must all be in
the submission, in order, with their type and metadata. What a student can break, and what happens:

| problem                         | outcome                                                                 |
|---------------------------------|-------------------------------------------------------------------------|
| file over the size limit        | outputs dropped; still too large: rejected (score 0)                    |
| not valid JSON / not a notebook | rejected (score 0)                                                      |
| graded cell deleted             | restored from the release (an answer cell comes back as the stub)       |
| cell type changed               | restored                                                                |
| nbgrader metadata edited        | restored (points, grade flags, grade_id)                                |
| duplicated cell or grade ids    | extra copies lose their nbgrader metadata, duplicate cell ids renamed   |
| test or locked cell edited      | restored (nbgrader restores test cells itself; recorded here)           |
| code that tampers with grading  | the cell is replaced by a stub that fails (see ``tampering``)           |

Student code is never executed here.
"""
from __future__ import annotations

import copy
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

SIZE_LIMIT_BYTES = 5 << 20


@dataclass
class Preflight:
    """The outcome for one submission: the notebook to grade (None if rejected) and the reasons recorded."""
    notebook: object | None
    reasons: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        return self.notebook is None


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def check(path: Path, release_path: Path, size_limit: int = SIZE_LIMIT_BYTES) -> Preflight:
    """Check and repair the submitted notebook at ``path`` against the released notebook at ``release_path``."""
    reasons: list[str] = []
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return Preflight(None, [f"rejected: not valid JSON ({error.__class__.__name__}: {error})"])
    if len(raw) > size_limit:
        for cell in data.get("cells", []) if isinstance(data, dict) else []:
            if isinstance(cell, dict) and cell.get("cell_type") == "code":
                cell["outputs"] = []
        reasons.append(f"file of {len(raw) >> 20} MB is over the {size_limit >> 20} MB limit: outputs dropped")
        if len(json.dumps(data)) > size_limit:
            return Preflight(None, reasons + ["rejected: still over the size limit without outputs"])
    raw_ids = [c.get("id") for c in data.get("cells", []) if isinstance(c, dict) and c.get("id")] \
        if isinstance(data, dict) and isinstance(data.get("cells"), list) else []
    reasons += [f"duplicated cell id '{i}': the copy was given a new id" for i in sorted({i for i in raw_ids
                                                                                          if raw_ids.count(i) > 1})]
    try:
        with warnings.catch_warnings():  # nbformat renames duplicated cell ids (recorded above)
            warnings.simplefilter("ignore")
            nb = nbformat.reads(json.dumps(data), as_version=4)
            nbformat.validate(nb)
    except Exception as error:  # nbformat raises several unrelated types
        return Preflight(None, reasons + [f"rejected: not a valid notebook ({error.__class__.__name__})"])
    release = nbformat.read(release_path, as_version=4)
    nb.cells = _repair_cells(nb.cells, release.cells, reasons)
    nb.metadata["kernelspec"] = copy.deepcopy(release.metadata.get("kernelspec", {}))
    neutralize_tampering(nb, reasons)
    return Preflight(nb, reasons)


def _repair_cells(cells: list, reference: list, reasons: list[str]) -> list:
    """Cells in which every nbgrader cell of ``reference`` appears once, in order, with its type and metadata."""
    expected = {_grade_id(c): c for c in reference if _grade_id(c)}
    seen: set[str] = set()
    kept = []
    for cell in cells:
        grade_id = _grade_id(cell)
        if grade_id and (grade_id not in expected or grade_id in seen):
            reasons.append(f"cell '{grade_id}' is a copy or unknown: graded as ungraded student text")
            cell.metadata.pop("nbgrader", None)
        elif grade_id:
            seen.add(grade_id)
        kept.append(cell)
    by_id = {_grade_id(c): c for c in kept if _grade_id(c)}
    by_cell_id = {c.get("id"): c for c in kept if not _grade_id(c) and c.get("id")}
    result = []
    for ref in reference:
        grade_id = _grade_id(ref)
        if not grade_id:
            continue
        cell = by_id.get(grade_id)
        if cell is None and ref.get("id") in by_cell_id:  # metadata stripped: found by its cell id
            cell = by_cell_id.pop(ref["id"])
            cell.metadata["nbgrader"] = {}
            reasons.append(f"cell '{grade_id}': nbgrader metadata removed; restored")
        if cell is None:
            reasons.append(f"cell '{grade_id}' was deleted; restored from the release")
            cell = copy.deepcopy(ref)
            kept.insert(_insert_position(kept, result), cell)
        _restore(cell, ref, grade_id, reasons)
        result.append(cell)
    return kept


def _insert_position(kept: list, placed: list) -> int:
    """Right after the last reference cell already placed (so order is kept)."""
    if not placed:
        return 0
    return next(i for i, c in enumerate(kept) if c is placed[-1]) + 1


def _restore(cell, ref, grade_id: str, reasons: list[str]) -> None:
    if cell.cell_type != ref.cell_type:
        reasons.append(f"cell '{grade_id}' was changed from {ref.cell_type} to {cell.cell_type}; restored")
        source = cell.source
        cell.clear()
        cell.update(copy.deepcopy(ref))
        if ref.metadata["nbgrader"].get("solution"):
            cell.source = source
    if cell.metadata.get("nbgrader") != ref.metadata["nbgrader"]:
        if cell.metadata.get("nbgrader"):
            reasons.append(f"cell '{grade_id}': nbgrader metadata edited; restored")
        cell.metadata["nbgrader"] = copy.deepcopy(ref.metadata["nbgrader"])
    meta = ref.metadata["nbgrader"]
    if (meta.get("grade") and not meta.get("solution") or meta.get("locked")) and cell.source != ref.source:
        reasons.append(f"cell '{grade_id}' is locked but was edited; restored")
        cell.source = ref.source


# --- tampering: code that would change how the checks judge, rather than answer the exercise ------------------------

STUB = "raise NotImplementedError({message!r})"
FORBIDDEN_NAMES = {"__import__", "exec", "eval", "compile", "get_ipython", "globals", "setattr", "delattr",
                   "__builtins__", "builtins", "importlib", "ctypes", "gc"}
FORBIDDEN_ATTRIBUTES = {"__code__", "__globals__", "__builtins__", "__dict__", "__class__", "__subclasses__",
                        "excepthook", "modules", "showtraceback", "f_globals", "f_back", "settrace", "setprofile"}
NOTED_MODULES = {"socket": "opens network connections (there is no network while grading)",
                 "urllib": "opens network connections (there is no network while grading)",
                 "http": "opens network connections (there is no network while grading)",
                 "subprocess": "starts processes (limited while grading)",
                 "multiprocessing": "starts processes (limited while grading)"}


def protected_names(cells: list) -> dict[str, str]:
    """Names the locked cells bind by import (np, plt, checks, helper functions): name -> module it imports."""
    import ast

    names: dict[str, str] = {}
    for cell in cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") != "code" or meta.get("solution") or not meta.get("grade_id"):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            names.update(_bindings(node))
    return names


def _bindings(node) -> dict[str, str]:
    """name -> dotted target bound by an import statement (``import a.b`` binds a; ``import a.b as x`` binds x)."""
    import ast

    if isinstance(node, ast.Import):
        return {(a.asname or a.name.split(".")[0]): (a.name if a.asname else a.name.split(".")[0]) for a in node.names}
    if isinstance(node, ast.ImportFrom):
        return {(a.asname or a.name): f"{node.module}.{a.name}" for a in node.names}
    return {}


def tampering(source: str, protected: dict[str, str]) -> list[str]:
    """Why ``source`` (an answer or student cell) would tamper with grading; empty when it does not.

    protected: the names the locked cells import (``protected_names``). Flagged: forbidden names and attributes
    (exec, get_ipython, __code__, ...); storing into an attribute or item of an imported module (``np.allclose =``);
    rebinding a protected name at the top level or through ``global`` (``checks = ...``, ``import math as np``,
    ``def quadratic_gradient``). Local variables inside functions are the student's own.
    """
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []  # a syntax error fails on its own
    imported_here: dict[str, str] = {}
    for node in ast.walk(tree):
        imported_here.update(_bindings(node))
    modules = set(protected) | set(imported_here)
    declared_global = {name for node in ast.walk(tree) if isinstance(node, ast.Global) for name in node.names}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            found.append(f"uses {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            found.append(f"uses .{node.attr}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules_named = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"imports {m}" for m in modules_named if m.split(".")[0] in FORBIDDEN_NAMES]
            found += [f"rebinds {bound}, which the checks use" for bound, target in _bindings(node).items()
                      if bound in protected and protected[bound] != target]
        elif isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            root = node
            while isinstance(root, (ast.Attribute, ast.Subscript)):
                root = root.value
            if isinstance(root, ast.Name) and root.id in modules:
                found.append(f"assigns into {root.id}, a module the checks use")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id in declared_global & set(protected):
            found.append(f"rebinds {node.id}, which the checks use")
    for node in _top_level(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id in protected:
            found.append(f"rebinds {node.id}, which the checks use")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in protected:
            found.append(f"redefines {node.name}, which the checks use")
    return sorted(set(found))


def _top_level(tree):
    """The nodes of a module outside function and class bodies (the defining statements themselves included)."""
    import ast

    stack = list(tree.body)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def notes(source: str) -> list[str]:
    """Harmless-while-sandboxed but noteworthy things a cell does (recorded, not penalized)."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{m} {NOTED_MODULES[m.split('.')[0]]}" for m in modules if m.split(".")[0] in NOTED_MODULES]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr in ("fork", "_exit", "kill", "system", "remove", "unlink"):
            found.append(f"calls os.{node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("/") \
                and len(node.value) > 1 and "\n" not in node.value:
            found.append(f"names the absolute path {node.value[:60]!r}")
    return sorted(set(found))


def neutralize_tampering(nb, reasons: list[str]) -> None:
    """Replace every answer or student-added code cell that tampers with grading by a stub that fails."""
    protected = protected_names(nb.cells)
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or (meta.get("grade_id") and not meta.get("solution")):
            continue  # locked cells are restored from the release
        where = meta.get("grade_id") or f"student cell {cell.get('id', '?')}"
        for note in notes(cell.source):
            reasons.append(f"note: {where} {note}")
        found = tampering(cell.source, protected)
        if found:
            reasons.append(f"tampering in {where} ({'; '.join(found)}): cell replaced by a failing stub")
            cell.source = STUB.format(message=f"removed by the grader: {'; '.join(found)}")
