"""nbgrader's OverwriteCells without the false alarm "Attribute 'checksum' for cell ... has changed!".

Why the checksums differ for an untouched notebook: ``nbgrader generate_assignment`` saves each locked cell with
its checksum into the gradebook *before* it removes the hidden tests (ClearHiddenTests runs after SaveCells), and
then stores a second checksum, of the cell without them, in the released notebook. At autograde, OverwriteCells
compares the submitted cell (no hidden tests) with the gradebook's checksum (with them), warns that the cell
changed, and restores it: once per test cell with hidden tests, for every submission (jupyter/nbgrader#1961).

Here a locked cell whose source is exactly the gradebook's source with its hidden tests removed, the released
form, gets the hidden tests back silently before the stock check; any other change is still reported and restored.
"""
from __future__ import annotations

import copy

from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests, OverwriteCells


class RestoreHiddenTests(OverwriteCells):
    """OverwriteCells that takes a locked cell in its released form (hidden tests removed) as unchanged."""

    def preprocess_cell(self, cell, resources, cell_index):
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id") and utils.is_locked(cell):
            try:
                source_cell = self.gradebook.find_source_cell(meta["grade_id"], self.notebook_id, self.assignment_id)
            except Exception:  # a cell unknown to the gradebook: the stock code reports it
                source_cell = None
            if source_cell is not None and cell.source != source_cell.source \
                    and cell.source == released_source(source_cell.source, cell, self.config):
                cell.source = source_cell.source
        return super().preprocess_cell(cell, resources, cell_index)


def released_source(source: str, cell, config=None) -> str:
    """``source`` as ``generate_assignment`` releases it: without its hidden tests."""
    probe = copy.deepcopy(cell)
    probe.source = source
    ClearHiddenTests(config=config)._remove_hidden_test_region(probe)
    return probe.source
