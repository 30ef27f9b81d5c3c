"""Feedback that helps and leaks nothing: a preprocessor for ``nbgrader generate_feedback``.

Stock feedback shows each test cell's full source, hidden tests included, and IPython tracebacks that quote the
failing lines (jupyter/nbgrader#917). Here, in every autograded test cell, the hidden block is replaced by one
line, and an error output keeps only its last line, the check's message ("... This is what <mistake> gives.").
"""
from __future__ import annotations

import re

from nbconvert.preprocessors import Preprocessor

HIDDEN_BLOCK = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", flags=re.S)
HIDDEN_NOTE = "# (hidden tests: randomized cases, not shown)\n"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def hide_test_code(source: str) -> str:
    """The test cell's source with every hidden block replaced by a one-line note."""
    return HIDDEN_BLOCK.sub(HIDDEN_NOTE, source)


def short_error(output: dict) -> dict:
    """An error output reduced to ``ename: evalue``, without the traceback that quotes test code."""
    message = ANSI.sub("", f"{output.get('ename', 'Error')}: {output.get('evalue', '')}")
    return {**output, "traceback": [message]}


class HideTestCode(Preprocessor):
    """Strip hidden tests and tracebacks from the test cells of a notebook before it becomes feedback."""

    enabled = True  # nbconvert preprocessors are off unless enabled

    def preprocess_cell(self, cell, resources, index):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code" and meta.get("grade") and not meta.get("solution"):
            cell.source = hide_test_code(cell.source)
            cell.outputs = [short_error(o) if o.get("output_type") == "error" else o for o in cell.get("outputs", [])]
        return cell, resources
