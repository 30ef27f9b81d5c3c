"""Feedback that helps and leaks nothing: a preprocessor for ``nbgrader generate_feedback``.

Stock feedback shows each test cell's full source, hidden tests included, and IPython tracebacks that quote the
failing lines (jupyter/nbgrader#917). Here:
- in every test cell the hidden block is replaced by one line, and the outputs are the grader's own (written by
  autograder/execute.py): none when the test passed, the check's message when it failed;
- outputs of the other cells keep only inert forms (text, PNG and JPEG images): no HTML, JavaScript or SVG from
  anything the submission produced, and error outputs keep only their last line;
- the student's written answers (markdown answer cells) are shown as text: raw HTML in them is escaped;
- a final scan refuses the notebook (raises ``HiddenTestLeak``, so nbgrader writes no feedback for it) when any
  line of hidden test code appears anywhere in it.
"""
from __future__ import annotations

import html
import re

from nbconvert.preprocessors import Preprocessor

HIDDEN_BLOCK = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", flags=re.S)
HIDDEN_NOTE = "# (hidden tests: randomized cases, not shown)\n"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
INERT = ("text/plain", "image/png", "image/jpeg")
MIN_LEAK_LINE = 16  # shorter hidden lines ("for d in (3, 5):") are too common to mean a leak


class HiddenTestLeak(RuntimeError):
    """A line of hidden test code is in the feedback: it is not written."""


def hide_test_code(source: str) -> str:
    """The test cell's source with every hidden block replaced by a one-line note."""
    return HIDDEN_BLOCK.sub(HIDDEN_NOTE, source)


def hidden_lines(source: str) -> set[str]:
    """The distinctive lines of a cell's hidden blocks (stripped)."""
    lines = set()
    for block in HIDDEN_BLOCK.findall(source):
        lines |= {line.strip() for line in block.splitlines()[1:-1] if len(line.strip()) >= MIN_LEAK_LINE}
    return lines


def short_error(output: dict) -> dict:
    """An error output reduced to ``ename: evalue``, without the traceback that quotes code."""
    message = ANSI.sub("", f"{output.get('ename', 'Error')}: {output.get('evalue', '')}")
    return {**output, "evalue": ANSI.sub("", str(output.get("evalue", ""))), "traceback": [message]}


def inert_data(output: dict) -> dict | None:
    """A display or result output with only its inert forms kept (None when none is left); other outputs as
    they are (a stream's text and an error's traceback are rendered as text)."""
    if output.get("output_type") not in ("display_data", "execute_result"):
        return output
    data = {key: value for key, value in output.get("data", {}).items() if key in INERT}
    return {**output, "data": data, "metadata": {}} if data else None


def inert_output(output: dict) -> dict | None:
    """An output of the submission's kernel as feedback shows it: inert data only, errors without their traceback,
    streams without terminal colours (None when nothing is left)."""
    kind = output.get("output_type")
    if kind == "error":
        return short_error(output)
    if kind == "stream":
        return {**output, "text": ANSI.sub("", str(output.get("text", "")))}
    if kind in ("display_data", "execute_result"):
        return inert_data(output)
    return None


class HideTestCode(Preprocessor):
    """Strip hidden tests, tracebacks and active content from a notebook before it becomes feedback."""

    enabled = True  # nbconvert preprocessors are off unless enabled

    def preprocess(self, nb, resources):
        secret_lines: set[str] = set()
        public: set[str] = set()  # lines the released notebook shows anyway: markdown, locked code, visible tests
        for cell in nb.cells:
            if _is_test(cell):
                secret_lines |= hidden_lines(cell.source)
                public |= {line.strip() for line in hide_test_code(cell.source).splitlines()}
            elif not cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                public |= {line.strip() for line in cell.source.splitlines()}
        secret_lines -= public
        nb, resources = super().preprocess(nb, resources)
        leaks = sorted(line for line in secret_lines if any(line in text for text in _texts(nb)))
        if leaks:
            raise HiddenTestLeak(f"feedback not written: {len(leaks)} line(s) of hidden test code would appear in it")
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if _is_test(cell):
            cell.source = hide_test_code(cell.source)
            cell.outputs = [short_error(o) for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        elif cell.get("cell_type") == "code":
            cell.outputs = [kept for kept in (inert_output(o) for o in cell.get("outputs", [])) if kept]
        elif cell.get("cell_type") == "markdown" and (meta.get("solution") or not meta.get("locked")):
            cell.source = html.escape(cell.source, quote=False)
        cell.pop("attachments", None)
        return cell, resources


def _is_test(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def _texts(nb):
    """The texts of the feedback a hidden line must not appear in: every output, and the source of every cell but
    the student's own answers (a reference in a hidden test may share a line such as ``w = w - eta * (H @ w)`` with a
    correct answer; the student wrote that line and reads it in their own answer, not in a test)."""
    for cell in nb.cells:
        if not cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            yield cell.source
        for output in cell.get("outputs", []):
            yield str(output.get("text", "")) + str(output.get("evalue", "")) + "".join(output.get("traceback", []))
            yield "".join(str(v) for v in output.get("data", {}).values())
