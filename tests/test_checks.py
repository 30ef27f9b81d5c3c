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
