"""Every solution notebook runs top to bottom in a fresh kernel without an error or a warning, and draws its plots."""
import pytest

from tools import nbexec
from tools.paths import assignments, solution_notebook

MIN_PLOTS = 3


@pytest.mark.parametrize("assignment", assignments())
def test_solution_notebook_executes_cleanly(assignment):
    nb = nbexec.execute(solution_notebook(assignment), timeout=300)
    assert nbexec.errors(nb) == []
    assert nbexec.stream_text(nb, "stderr") == [], "a cell wrote to stderr (nbgrader scores such test cells zero)"
    assert nbexec.count_images(nb) >= MIN_PLOTS
