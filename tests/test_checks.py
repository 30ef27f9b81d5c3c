"""Unit tests of helpers.checks: a failing check names the mistake; a passing one is silent."""
import numpy as np
import pytest

from helpers import checks


def test_close_passes_silently(capsys):
    checks.expect_close(np.array([1.0, 2.0]), [1.0, 2.0 + 1e-12], "x")
    assert capsys.readouterr() == ("", "")


def test_close_names_the_matching_mistake():
    with pytest.raises(AssertionError, match="This is what dividing by N-1 gives"):
        checks.expect_close(2.0, 1.0, "var", mistakes=[("forgetting eps", 1.5), ("dividing by N-1", 2.0)])


def test_close_reports_shape_and_matches_mistakes_of_other_shapes():
    with pytest.raises(AssertionError, match=r"has shape \(3,\), expected \(4,\)[\s\S]*leaving out the start"):
        checks.expect_close(np.arange(3.0), np.arange(4.0), "path", mistakes=[("leaving out the start", np.arange(3.0))])


def test_close_without_a_known_mistake_still_says_expected_and_got():
    with pytest.raises(AssertionError, match=r"x: expected 1.0, got 3.0.\nhint text"):
        checks.expect_close(3.0, 1.0, "x", mistakes=[("m", 2.0)], hint="hint text")


def test_close_on_a_large_array_reports_the_largest_difference_and_where():
    expected = np.zeros((3, 2, 2, 3))
    actual = expected.copy()
    actual[1, 0, 1, 2], actual[2, 1, 0, 0] = 0.5, -2.0
    with pytest.raises(AssertionError) as failure:
        checks.expect_close(actual, expected, "dx", mistakes=[("m", actual)], hint="h")
    message = str(failure.value)
    assert message.splitlines()[0] == ("dx (shape (3, 2, 2, 3)): 2 of 36 entries differ; the largest difference is at "
                                       "index (2, 1, 0, 0): expected 0, got -2.")
    assert "This is what m gives." in message and message.endswith("h") and "[[" not in message
    with pytest.raises(AssertionError, match=r"index \(0,\): expected 0, got nan"):
        checks.expect_close(np.full(13, np.nan), np.zeros(13), "y")


def test_close_rejects_non_numbers():
    with pytest.raises(AssertionError, match="not a number"):
        checks.expect_close("abc", 1.0, "x")


def test_equal_checks_type_then_value():
    checks.expect_equal(4, 4, "k")
    checks.expect_equal(np.int64(4), 4, "k")
    with pytest.raises(AssertionError, match="This is what returning max_steps gives"):
        checks.expect_equal(50, None, "k", mistakes=[("returning max_steps", 50)])
    with pytest.raises(AssertionError, match="expected 'a', got 'b'"):
        checks.expect_equal("b", "a", "label")


def test_shape_and_dtype():
    checks.expect_shape(np.zeros((2, 3)), (2, 3), "x")
    with pytest.raises(AssertionError, match="one too few"):
        checks.expect_shape(np.zeros((1, 3)), (2, 3), "x", mistakes=[("one too few", (1, 3))])
    checks.expect_dtype(np.zeros(2, np.float32), np.float32, "x")
    with pytest.raises(AssertionError, match="keep the input's dtype"):
        checks.expect_dtype(np.zeros(2), np.float32, "x")


def test_true():
    checks.expect_true(True, "never shown")
    with pytest.raises(AssertionError, match="explained"):
        checks.expect_true(False, "explained")


# --- how a failure reads ------------------------------------------------------------------------------------------

def _message(check, *args, **kwargs) -> str:
    with pytest.raises(checks.CheckFailure) as info:
        check(*args, **kwargs)
    return str(info.value)


def test_numbers_print_plainly_with_the_digits_that_tell_them_apart():
    assert _message(checks.expect_close, np.float64(0.25216355140656427), 0.2, "rate") == (
        "rate: expected 0.2, got 0.2522.")
    assert _message(checks.expect_close, 0.2000123, 0.2, "rate") == "rate: expected 0.2, got 0.200012."
    assert _message(checks.expect_close, np.float32(3.0), 4, "n") == "n: expected 4, got 3.0."
    assert _message(checks.expect_equal, (np.float64(1.5), np.int64(2)), (1.5, 3), "pair") == (
        "pair: expected (1.5, 3), got (1.5, 2).")
    assert "np.float64" not in _message(checks.expect_close, np.array([np.float64(1.0)]), [2.0], "x")


def test_large_arrays_print_summarised_on_one_line_with_their_shape_and_largest_difference():
    expected = np.arange(1000.0).reshape(100, 10)
    got = expected.copy()
    got[57, 3] += 0.5
    message = _message(checks.expect_close, got, expected, "big")
    first = message.splitlines()[0]
    assert first == ("big (shape (100, 10)): 1 of 1000 entries differ; the largest difference is at index (57, 3): "
                     "expected 573, got 573.5.")
    small = _message(checks.expect_close, np.array([[4.0], [2.0]]), np.array([[4.0], [1.0]]), "path")
    assert small == "path: expected [[4.], [1.]], got [[4.], [2.]]."


def test_a_failure_renders_as_its_message_alone():
    """IPython shows ``_render_traceback_()`` instead of a traceback: the class name and the message, no frames."""
    error = checks.CheckFailure("what: expected 1.0, got 2.0.\nThis is what x gives.")
    assert error._render_traceback_() == ["\x1b[0;31mCheckFailure\x1b[0m: what: expected 1.0, got 2.0.",
                                          "This is what x gives."]


def test_in_a_kernel_a_failed_check_has_no_traceback_through_the_helpers(tmp_path):
    """What nbclient (and so nbgrader) and JupyterLab receive from the kernel: the message, no helpers/ frame."""
    import nbformat

    from tools import nbexec

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import numpy as np\nfrom helpers import checks"),
        nbformat.v4.new_code_cell('def rate():\n    return np.float64(0.25216355140656427)\n\n'
                                  'checks.expect_close(rate(), 0.2, "rate()", mistakes=[("using eta twice", rate())])'),
        nbformat.v4.new_code_cell("checks.expect_equal(int('3'), 4, 'steps')"),
    ])
    nbformat.write(nb, tmp_path / "probe.ipynb")
    executed = nbexec.execute(tmp_path / "probe.ipynb", allow_errors=True)
    outputs = [o for o in executed.cells[1].outputs if o.output_type == "error"]
    assert len(outputs) == 1 and outputs[0].ename == "CheckFailure"
    assert outputs[0].traceback == ["\x1b[0;31mCheckFailure\x1b[0m: rate(): expected 0.2, got 0.2522.",
                                    "This is what using eta twice gives."]
    text = "\n".join(o.traceback[0] for c in executed.cells[1:] for o in c.outputs if o.output_type == "error")
    assert "helpers" not in text and "File " not in text and "Traceback" not in text
