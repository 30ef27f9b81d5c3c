"""Tests of helpers/own_modules.py: notebook 04 beside notebook 05 present and correct, present and wrong, absent,
or still the released stub; what runs is printed, and the choice is deterministic."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from helpers.conv import make_convnet
from helpers.normalization import BatchNorm, GroupNorm, InstanceNorm
from helpers.own_modules import (
    NOTEBOOK_04, OwnBatchNorm, OwnGroupNorm, OwnInstanceNorm, answer_sources, compare_with_reference,
    load_own_modules, reference_modules,
)
from tools.paths import ROOT, solution_notebook

pytestmark = pytest.mark.filterwarnings("error", "default::pytest.PytestUnraisableExceptionWarning")

SOLUTION_04 = solution_notebook("04-normalization-modules")
RELEASED_04 = ROOT / "notebooks" / "04-normalization-modules" / "04-normalization-modules.ipynb"


def course_folder(tmp_path, notebook_04=None, edit=None):
    """tmp_path/05-training (returned) and, unless notebook_04 is None, a notebook 04 beside it.

    edit: (grade_id, old, new) replaces text in that answer cell of the copied notebook.
    """
    here = tmp_path / "05-training"
    here.mkdir(parents=True)
    if notebook_04 is not None:
        target = here / NOTEBOOK_04
        target.parent.mkdir(parents=True)
        shutil.copy(notebook_04, target)
        if edit is not None:
            grade_id, old, new = edit
            notebook = json.loads(target.read_text())
            cell = next(c for c in notebook["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)
            source = "".join(cell["source"])
            assert old in source, f"{old!r} not in the answer cell {grade_id}"
            cell["source"] = source.replace(old, new)
            target.write_text(json.dumps(notebook))
    return here


def test_answer_sources_are_the_solution_code_cells():
    """answer_sources: only the code cells marked as answers, with their grade ids, in notebook order."""
    cells = answer_sources(SOLUTION_04)
    ids = [grade_id for grade_id, _ in cells]
    assert ids[:3] == ["support_axes", "moments", "normalize_forward"] and "batch_norm_forward" in ids
    assert all("def " in source for _, source in cells)


def test_present_and_correct_uses_your_modules(tmp_path, capsys):
    """A correct notebook 04 beside 05: its modules run, and one printed line says so."""
    here = course_folder(tmp_path, SOLUTION_04)
    modules = load_own_modules(here)
    printed = capsys.readouterr()
    assert modules.source == "notebook 04" and "YOUR modules" in printed.out and printed.err == ""
    assert printed.out.count("\n") == 1
    assert isinstance(modules.BatchNorm(3), OwnBatchNorm) and isinstance(modules.GroupNorm(2, 4), OwnGroupNorm)
    assert isinstance(modules.InstanceNorm(3), OwnInstanceNorm)
    assert modules.path == here / NOTEBOOK_04


def test_your_modules_train_like_the_reference(tmp_path):
    """With a correct notebook 04, ten training steps of a conv net with each norm end where the reference's do."""
    modules = load_own_modules(course_folder(tmp_path, SOLUTION_04), verbose=False)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 1, 8, 8)), rng.integers(0, 10, size=8)
    from helpers.network import softmax_cross_entropy
    for norm in ("batch", "batch_per_position", "group", "instance"):
        final = []
        for source in (modules, None):
            model = make_convnet(norm, rng=np.random.default_rng(1), channels=(4, 4), strides=(1, 2), num_groups=2,
                                 modules=source)
            for _ in range(10):
                _, dlogits = softmax_cross_entropy(model.forward(x), y)
                model.backward(dlogits)
                for module, name in model.parameters():
                    module.params[name] -= 0.1 * module.grads[name]
            model.eval()
            final.append(model.forward(x))
        np.testing.assert_allclose(final[0], final[1], rtol=1e-9, atol=1e-12, err_msg=norm)


@pytest.mark.parametrize("edit,names", [
    (("normalize_backward", "dx_hat - mean_g - x_hat", "dx_hat - x_hat"), ("backward dx",)),
    (("batch_norm_forward", "var.reshape(-1) * m / (m - 1)", "var.reshape(-1)"), ("running_var",)),
    (("batch_norm_forward", "std = np.sqrt(running_var.reshape(shape) + eps)", "std = np.sqrt(running_var.reshape(shape))"),
     ("eval mode", "forward output")),
    (("group_norm_forward", 'support_axes("instance", x_groups.ndim)', "(2,)"), ("GroupNorm", "forward output")),
    (("compensate", "dgamma = (dout * x_hat).sum(axis=support)", "dgamma = dout.sum(axis=support)"), ("dgamma",)),
])
def test_present_and_wrong_falls_back_and_says_what_differs(tmp_path, capsys, edit, names):
    """A notebook 04 with a common mistake: the reference runs, and the message names what differs."""
    modules = load_own_modules(course_folder(tmp_path, SOLUTION_04, edit))
    printed = capsys.readouterr().out
    assert modules.source == "reference" and isinstance(modules.BatchNorm(3), BatchNorm)
    assert "reference modules" in printed and "differs from the reference" in printed, printed
    for name in names:
        assert name in printed, (name, printed)


def test_absent_uses_the_reference(tmp_path, capsys):
    """No notebook 04 beside 05 (as under grading): the reference runs and the message says there is none."""
    modules = load_own_modules(course_folder(tmp_path))
    printed = capsys.readouterr().out
    assert modules.source == "reference" and "there is no notebook 04" in printed
    assert modules.BatchNorm is BatchNorm and modules.GroupNorm is GroupNorm and modules.InstanceNorm is InstanceNorm


def test_released_stub_uses_the_reference(tmp_path, capsys):
    """The untouched student version of 04 (stubs raising NotImplementedError): the reference, 'not finished'."""
    modules = load_own_modules(course_folder(tmp_path, RELEASED_04))
    printed = capsys.readouterr().out
    assert modules.source == "reference"
    assert "not finished" in printed and "NotImplementedError" in printed and "batch_norm_forward" in printed


def test_a_cell_that_does_not_run_or_a_missing_function_falls_back(tmp_path, capsys):
    """A syntax error in an answer cell, or a function renamed: the reference, with the cell or the name."""
    modules = load_own_modules(course_folder(tmp_path / "a", SOLUTION_04, ("moments", "def moments(x, axes):",
                                                                         "def moments(x, axes)")))
    printed = capsys.readouterr().out
    assert modules.source == "reference" and "'moments' does not run (SyntaxError" in printed, printed
    modules = load_own_modules(course_folder(tmp_path / "b", SOLUTION_04, (
        "group_norm_forward", "def group_norm_forward(", "def my_group_norm(")))
    printed = capsys.readouterr().out
    assert modules.source == "reference" and "defines no group_norm_forward" in printed, printed


def test_a_function_that_raises_on_a_check_case_falls_back(tmp_path, capsys):
    """Your code raising another error on a check case: the reference, naming the function and the error."""
    modules = load_own_modules(course_folder(tmp_path, SOLUTION_04, (
        "group_norm_forward", "n, c = x.shape[:2]", "n, c, h, w = x.shape")))
    printed = capsys.readouterr().out
    assert modules.source == "reference" and "group_norm_forward raised ValueError" in printed, printed


def test_what_your_cells_print_does_not_leak(tmp_path, capsys):
    """Prints and warnings in notebook 04's answer cells are swallowed: only the verdict is printed."""
    here = course_folder(tmp_path, SOLUTION_04, (
        "moments", "def moments(x, axes):",
        "import warnings\nprint('debug!')\nwarnings.warn('careful')\ndef moments(x, axes):"))
    modules = load_own_modules(here)
    printed = capsys.readouterr()
    assert modules.source == "notebook 04" and "debug!" not in printed.out and printed.err == ""


def test_the_verdict_is_deterministic(tmp_path):
    """The same notebook 04 gives the same verdict every time."""
    here = course_folder(tmp_path, SOLUTION_04, ("normalize_backward", "dx_hat - mean_g - x_hat", "dx_hat - x_hat"))
    assert len({load_own_modules(here, verbose=False).reason for _ in range(3)}) == 1


def test_the_reference_agrees_with_itself():
    """compare_with_reference finds nothing to report for the reference modules."""
    assert compare_with_reference(reference_modules()) is None
