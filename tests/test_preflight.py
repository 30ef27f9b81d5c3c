"""The pre-flight's bounds and repairs, and how free text reaches the instructor's CSV and terminal."""
from __future__ import annotations

import json

import nbformat

from autograder import gradebook, preflight
from autograder.feedback_page import MARKDOWN_CHARACTERS, live_content, safe_markdown
from tools.paths import ROOT

RELEASE = ROOT / "notebooks" / "01-learning-rate" / "01-learning-rate.ipynb"


def _write(tmp_path, data: dict, compact: bool = False):
    path = tmp_path / "01-learning-rate.ipynb"
    path.write_text(json.dumps(data, separators=(",", ":")) if compact else json.dumps(data))
    return path


def test_a_notebook_of_too_many_cells_is_rejected_before_parsing(tmp_path):
    data = json.loads(RELEASE.read_text())
    data["cells"] += [{"cell_type": "raw", "id": f"r{i}", "metadata": {}, "source": ""}
                      for i in range(preflight.CELL_LIMIT)]
    result = preflight.check(_write(tmp_path, data, compact=True), RELEASE)
    assert result.rejected and "cells (at most" in result.reasons[-1], result.reasons


def test_duplicated_ids_are_counted_in_one_pass(tmp_path):
    data = json.loads(RELEASE.read_text())
    data["cells"] += [{"cell_type": "raw", "id": "same", "metadata": {}, "source": ""} for _ in range(3)]
    result = preflight.check(_write(tmp_path, data), RELEASE)
    assert [r for r in result.reasons if r.startswith("duplicated cell id")] == [
        "duplicated cell id 'same': the copy was given a new id"]


def test_the_files_own_grader_record_and_widget_state_are_dropped(tmp_path):
    data = json.loads(RELEASE.read_text())
    data["metadata"].update(course={"reasons": ["=HYPERLINK(1)"]}, widgets={"state": "<script>x</script>"},
                            title="t")
    result = preflight.check(_write(tmp_path, data), RELEASE)
    assert set(result.notebook.metadata) <= set(preflight.NOTEBOOK_METADATA)
    assert any("'course' in the file: removed" in r for r in result.reasons)
    stock = nbformat.from_dict(data)
    preflight.CheckMetadataTypes().preprocess(stock, {})
    assert stock.metadata["course"]["reasons"] == ["notebook metadata 'course' in the file: removed (only the "
                                                    "grader writes it)", "notebook metadata 'widgets' in the file: "
                                                    "removed"]


def test_control_characters_and_formulas_reach_no_terminal_or_spreadsheet(tmp_path):
    data = json.loads(RELEASE.read_text())
    data["cells"].append({"cell_type": "code", "id": "x", "metadata": {"nbgrader": {
        "grade_id": "\r\x1b[2Kforged 13/13\x1b]0;t\x07", "grade": False, "solution": False, "locked": False,
        "schema_version": 3}}, "source": "", "outputs": [], "execution_count": None})
    reasons = preflight.check(_write(tmp_path, data), RELEASE).reasons
    assert reasons and not any(c in "".join(reasons) for c in "\r\x1b\x07"), reasons
    assert gradebook.text_field("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert gradebook.text_field("a\x1b[2Kb\r") == "a\\x1b[2Kb\\r"
    assert gradebook.text_field("rejected: the file") == "rejected: the file"


def test_markdown_too_long_or_with_too_many_table_rows_is_shown_as_text():
    table = "| a |\n|---|\n" + "| <img src=x onerror=y()> |\n" * 1200
    for source in (table, "x" * (MARKDOWN_CHARACTERS + 1)):
        shown = safe_markdown(source)
        assert shown.startswith("<p><em>(a markdown cell of") and "<table" not in shown
        assert not live_content("<body>" + shown)


def test_cells_counted_however_spelled_and_unpaired_surrogates_are_rejected(tmp_path):
    data = json.loads(RELEASE.read_text())
    data["cells"] += [{"cell_type": "raw", "metadata": {}, "source": ""} for _ in range(preflight.CELL_LIMIT)]
    text = json.dumps(data).replace('"cell_type"', '"cell\\u005ftype"')
    path = tmp_path / "01-learning-rate.ipynb"
    path.write_text(text)
    result = preflight.check(path, RELEASE)
    assert result.rejected and "cells (at most" in result.reasons[-1], result.reasons
    data = json.loads(RELEASE.read_text())
    data["cells"].append({"cell_type": "markdown", "id": "s", "metadata": {}, "source": "\ud800"})
    path.write_text(json.dumps(data))  # json writes the escape, as any editor could
    result = preflight.check(path, RELEASE)
    assert result.rejected and "not Unicode" in result.reasons[-1], result.reasons
