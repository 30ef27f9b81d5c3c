"""Pre-flight checks of a submission before it is graded: each problem is repaired where possible and recorded.

The released student notebook is the reference: its nbgrader cells (answers, tests, locked text) must all be in
the submission, in order, with their type and metadata. What a student can break, and what happens:

| problem                         | outcome                                                                 |
|---------------------------------|-------------------------------------------------------------------------|
| file over the size limit        | outputs dropped; still too large: rejected (score 0)                    |
| file over the read limit        | rejected before it is parsed (score 0)                                  |
| JSON nested too deeply          | rejected before it is parsed (score 0)                                  |
| not valid JSON / not a notebook | rejected (score 0)                                                      |
| nbgrader metadata of wrong type | removed, then restored from the release (a list as grade_id, ...)       |
| graded cell deleted             | restored from the release (an answer cell comes back as the stub)       |
| cell type changed               | restored                                                                |
| nbgrader metadata edited        | restored (points, grade flags, grade_id)                                |
| duplicated cell or grade ids    | extra copies lose their nbgrader metadata, duplicate cell ids renamed   |
| test or locked cell edited      | restored (nbgrader restores test cells itself; recorded here)           |

Noteworthy code (network modules, process control, absolute paths) is recorded for review, not penalized: the
verdict is computed outside the student's kernel (autograder/execute.py), so code in the notebook cannot change
how it is judged, and no scan of spellings is needed to protect the checks.
Student code is never executed here.
"""
from __future__ import annotations

import copy
import json
import math
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

SIZE_LIMIT_BYTES = 5 << 20  # over this, outputs are dropped
READ_LIMIT_BYTES = 32 << 20  # over this, the file is not parsed at all
DEPTH_LIMIT = 64  # nesting of JSON arrays and objects (a notebook needs about 10; outputs' JSON data a few more)
CELL_LIMIT = 3_000  # cells in a notebook (the course's have about 130)
# The notebook-level metadata a submission keeps; the rest (widget state, the grader's own ``course`` record, titles)
# is dropped before any step reads it: the grader writes ``course``, and pages that show a notebook print widget state.
NOTEBOOK_METADATA = ("kernelspec", "language_info")
# nbgrader's cell metadata: key -> the types its value may have (bool is not a number here)
NBGRADER_TYPES = {"grade_id": (str,), "points": (int, float), "grade": (bool,), "solution": (bool,),
                  "locked": (bool,), "task": (bool,), "schema_version": (int,), "checksum": (str,),
                  "cell_type": (str,)}
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


class Rejected(Exception):
    """A submission that is not read at all; the message says why."""


def json_depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in the JSON text ``raw``, without parsing it (strings skipped)."""
    import numpy as np

    brackets = np.frombuffer(_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS), dtype=np.uint8)
    if brackets.size == 0:
        return 0
    return int(np.cumsum(np.where((brackets == ord("[")) | (brackets == ord("{")), 1, -1)).max())


def bounded(path: Path, read_limit: int = READ_LIMIT_BYTES, depth_limit: int = DEPTH_LIMIT) -> bytes:
    """The bytes of ``path`` if it is within the read limit and the JSON nesting limit; Rejected otherwise.
    Nothing larger than ``read_limit`` is read into memory."""
    size = path.stat().st_size
    if size > read_limit:
        raise Rejected(f"rejected: the file is {size / (1 << 20):.0f} MB, over the {read_limit >> 20} MB that is "
                       "read at all (clear the outputs and submit again)")
    with path.open("rb") as handle:
        raw = handle.read(read_limit + 1)
    if len(raw) > read_limit:
        raise Rejected(f"rejected: the file is over the {read_limit >> 20} MB that is read at all")
    depth = json_depth(raw)
    if depth > depth_limit:
        raise Rejected(f"rejected: JSON nested {depth} levels deep (at most {depth_limit}); not a notebook")
    cells = raw.count(b'"cell_type"')  # every cell has one; a string inside a string has its quotes escaped
    if cells > CELL_LIMIT:
        raise Rejected(f"rejected: {cells} cells (at most {CELL_LIMIT}); not a notebook of this course")
    return raw


def metadata_problem(meta) -> str | None:
    """What is wrong with the types of a cell's nbgrader metadata, or None."""
    if not isinstance(meta, dict):
        return f"not a dict but {type(meta).__name__}"
    for key, types in NBGRADER_TYPES.items():
        if key in meta and (not isinstance(meta[key], types) or isinstance(meta[key], bool) and bool not in types):
            return f"{key} is {type(meta[key]).__name__}"
    if not meta.get("grade_id"):  # every nbgrader cell of a release has one; nbgrader's steps index by it
        return "no grade_id"
    points = meta.get("points", 0)
    if not math.isfinite(points) or points < 0:
        return f"points is {points!r}"
    return None


def check_metadata_types(cells: list, reasons: list[str]) -> None:
    """Remove nbgrader metadata of the wrong type (or shape) from every cell, recording it; the repairs restore the
    release's where the cell is a graded one (found by its cell id)."""
    for index, cell in enumerate(cells):
        metadata = cell.get("metadata")
        if not isinstance(metadata, dict) or "nbgrader" not in metadata:
            continue
        problem = metadata_problem(metadata["nbgrader"])
        if problem:
            where = cell.get("id") if isinstance(cell.get("id"), str) else index
            reasons.append(f"cell {printable(str(where)[:40])!r}: nbgrader metadata malformed ({problem}); removed")
            del metadata["nbgrader"]


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


def unreadable(data) -> str | None:
    """Why parsed notebook JSON cannot be graded (too many cells however its keys are spelled, text that is not
    Unicode: a lone surrogate), or None."""
    cells = data.get("cells") if isinstance(data, dict) else None
    if isinstance(cells, list) and len(cells) > CELL_LIMIT:
        return f"rejected: {len(cells)} cells (at most {CELL_LIMIT}); not a notebook of this course"
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return "rejected: text that is not Unicode (an unpaired surrogate escape such as \\ud800)"
    return None


def keep_notebook_metadata(nb, reasons: list[str]) -> None:
    """Drop the notebook-level metadata other than ``NOTEBOOK_METADATA``; a grader's record or widget state in
    the file is noted as a reason."""
    for key in [k for k in nb.metadata if k not in NOTEBOOK_METADATA]:
        if key in ("course", "widgets"):
            reasons.append(f"notebook metadata {key!r} in the file: removed (only the grader writes it)"
                           if key == "course" else "notebook metadata 'widgets' in the file: removed")
        del nb.metadata[key]


def printable(text, limit: int | None = 80) -> str:
    """``text`` with control characters (terminal escapes, carriage returns) written as escapes, cut at ``limit``
    characters (None: whole)."""
    text = str(text)[:limit]
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def check(path: Path, release_path: Path, size_limit: int = SIZE_LIMIT_BYTES) -> Preflight:
    """Check and repair the submitted notebook at ``path`` against the released notebook at ``release_path``."""
    reasons: list[str] = []
    try:
        raw = bounded(path)
        data = json.loads(raw)
    except Rejected as error:
        return Preflight(None, [str(error)])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        return Preflight(None, [f"rejected: not valid JSON ({error.__class__.__name__}: {str(error)[:200]})"])
    if len(raw) > size_limit:
        for cell in data.get("cells", []) if isinstance(data, dict) else []:
            if isinstance(cell, dict) and cell.get("cell_type") == "code":
                cell["outputs"] = []
        reasons.append(f"file of {len(raw) >> 20} MB is over the {size_limit >> 20} MB limit: outputs dropped")
        if len(json.dumps(data)) > size_limit:
            return Preflight(None, reasons + ["rejected: still over the size limit without outputs"])
    problem = unreadable(data)
    if problem:
        return Preflight(None, reasons + [problem])
    raw_ids = [c.get("id") for c in data.get("cells", []) if isinstance(c, dict) and c.get("id")] \
        if isinstance(data, dict) and isinstance(data.get("cells"), list) else []
    counts = Counter(i for i in raw_ids if isinstance(i, str))
    reasons += [f"duplicated cell id {printable(i)!r}: the copy was given a new id"
                for i in sorted(i for i, n in counts.items() if n > 1)]
    try:
        with warnings.catch_warnings():  # nbformat renames duplicated cell ids (recorded above)
            warnings.simplefilter("ignore")
            nb = nbformat.reads(json.dumps(data), as_version=4)
            nbformat.validate(nb)
    except Exception as error:  # nbformat raises several unrelated types
        return Preflight(None, reasons + [f"rejected: not a valid notebook ({error.__class__.__name__})"])
    release = nbformat.read(release_path, as_version=4)
    check_metadata_types(nb.cells, reasons)
    keep_notebook_metadata(nb, reasons)
    nb.cells = _repair_cells(nb.cells, release.cells, reasons)
    nb.metadata["kernelspec"] = copy.deepcopy(release.metadata.get("kernelspec", {}))
    record_notes(nb, reasons)
    return Preflight(nb, reasons)


def _repair_cells(cells: list, reference: list, reasons: list[str]) -> list:
    """Cells in which every nbgrader cell of ``reference`` appears once, in order, with its type and metadata."""
    expected = {_grade_id(c): c for c in reference if _grade_id(c)}
    seen: set[str] = set()
    kept = []
    for cell in cells:
        grade_id = _grade_id(cell)
        if grade_id and (grade_id not in expected or grade_id in seen):
            reasons.append(f"cell '{printable(grade_id)}' is a copy or unknown: graded as ungraded student text")
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


# --- notes: what a reviewer may want to know about a submission's code ----------------------------------------------

NOTED_MODULES = {"socket": "opens network connections (there is no network while grading)",
                 "urllib": "opens network connections (there is no network while grading)",
                 "http": "opens network connections (there is no network while grading)",
                 "subprocess": "starts processes (limited while grading)",
                 "multiprocessing": "starts processes (limited while grading)"}


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


def record_notes(nb, reasons: list[str]) -> None:
    """Add a note for every answer or student-added code cell that does something noteworthy."""
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or (meta.get("grade_id") and not meta.get("solution")):
            continue  # locked cells are restored from the release
        where = meta.get("grade_id") or f"student cell {cell.get('id', '?')}"
        reasons += [f"note: {where} {note}" for note in notes(cell.source)]


# --- the same repairs as a step of stock ``nbgrader autograde`` (autograder/nbgrader_config.py) ----------------------

def record_reasons(nb, reasons: list[str], log) -> None:
    """Add ``reasons`` to the notebook's metadata (``course.reasons``, each once, in order) and to ``log``."""
    course = nb.metadata.setdefault("course", {})
    course["reasons"] = list(dict.fromkeys([*course.get("reasons", []), *reasons]))
    for reason in reasons:
        log.warning("%s", reason)


def release_notebook(assignment: str, notebook: str) -> Path:
    """The released student notebook the submission is checked against (notebooks/<id>/<notebook>.ipynb)."""
    return Path(__file__).resolve().parent.parent / "notebooks" / assignment / f"{notebook}.ipynb"


def _make_repair_step():
    from nbgrader.preprocessors import NbGraderPreprocessor

    class RepairSubmission(NbGraderPreprocessor):
        """Restore deleted, retyped and duplicated nbgrader cells and their metadata from the release, and note
        noteworthy code; the reasons go to the notebook's metadata (``course.reasons``) and the log."""

        def preprocess(self, nb, resources):
            info = resources.get("nbgrader", {})
            release_path = release_notebook(str(info.get("assignment", "")), str(info.get("notebook", "")))
            reasons: list[str] = []
            if release_path.is_file():
                release = nbformat.read(release_path, as_version=4)
                nb.cells = _repair_cells(nb.cells, release.cells, reasons)
            else:
                reasons.append(f"no released notebook at {release_path}: cells not checked against it")
            record_notes(nb, reasons)
            record_reasons(nb, reasons, self.log)
            return nb, resources

    return RepairSubmission


def _make_stock_steps():
    from nbconvert.exporters import NotebookExporter
    from nbgrader.preprocessors import NbGraderPreprocessor

    class BoundedNotebookExporter(NotebookExporter):
        """nbgrader's exporter, reading a notebook only within the read limit and the JSON nesting limit
        (``bounded``): otherwise nbgrader reports that student's notebook as an error and goes on."""

        def from_filename(self, filename, resources=None, **kw):
            try:
                bounded(Path(filename))
            except Rejected as error:
                raise Rejected(f"{filename}: {error}") from None
            return super().from_filename(filename, resources, **kw)

    class CheckMetadataTypes(NbGraderPreprocessor):
        """Remove nbgrader metadata of the wrong type before any nbgrader step reads it (the repairs then restore
        the release's); the reasons go to the notebook's metadata (``course.reasons``) and the log."""

        def preprocess(self, nb, resources):
            problem = unreadable(nb)
            if problem:  # nbgrader reports it as an error for this student and goes on
                raise Rejected(problem)
            reasons: list[str] = []
            check_metadata_types(nb.cells, reasons)
            keep_notebook_metadata(nb, reasons)
            record_reasons(nb, reasons, self.log)
            return nb, resources

    return BoundedNotebookExporter, CheckMetadataTypes


RepairSubmission = _make_repair_step()
BoundedNotebookExporter, CheckMetadataTypes = _make_stock_steps()
