"""Student-facing checks: assertions whose failure message names the mistake.

A check compares a student's answer with the expected one. When they differ, it also compares the answer with
the outputs of known wrong answers ("mistakes"): if one matches, the message says which misconception produced
it, e.g. "this is what dividing by N-1 gives: normalization uses the biased variance".

Every function raises ``AssertionError`` on failure and prints nothing on success (nbgrader gives a test cell
zero for any output on stderr, and stdout noise hides the message that matters).
"""
from __future__ import annotations

import numpy as np

__all__ = ["CheckFailure", "expect_close", "expect_equal", "expect_shape", "expect_true", "expect_dtype", "hidden_rng"]

# Set by the grader, in its own process, for each submission (see autograder/); never set in a student's kernel.
_grading_seed: tuple[int, ...] | None = None


class CheckFailure(AssertionError):
    """An AssertionError raised by a check; its message states what, expected, got, and the likely mistake."""


def _short(value, limit: int = 300) -> str:
    text = np.array2string(value, precision=6, threshold=12) if isinstance(value, np.ndarray) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _matches(actual, candidate, rtol: float, atol: float) -> bool:
    """True when ``actual`` equals ``candidate`` (same shape, values within tolerance); never raises."""
    try:
        if isinstance(candidate, (str, bytes)) or isinstance(actual, (str, bytes)):
            return actual == candidate
        a = np.asarray(actual)
        c = np.asarray(candidate)
        if a.shape != c.shape:
            return False
        if a.dtype.kind in "biufc" and c.dtype.kind in "biufc":
            return bool(np.allclose(a, c, rtol=rtol, atol=atol, equal_nan=True))
        return bool(np.all(a == c))
    except Exception:
        return False


def _fail(what: str, expected, actual, mistakes, rtol: float, atol: float, hint: str = "") -> None:
    lines = [f"{what}: expected {_short(expected)}, got {_short(actual)}."]
    for description, wrong in mistakes:
        if _matches(actual, wrong, rtol, atol):
            lines.append(f"This is what {description} gives.")
            break
    if hint:
        lines.append(hint)
    raise CheckFailure("\n".join(lines))


LARGE = 12  # arrays with more entries are not printed in a failure message: where they differ most is


def _fail_large(what: str, expected: np.ndarray, actual: np.ndarray, mistakes, rtol: float, atol: float,
                hint: str) -> None:
    """Failure message for arrays of the same shape too large to print: how many entries differ, and the largest
    difference with its index and both values."""
    with np.errstate(invalid="ignore", over="ignore"):
        bad = ~np.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
        difference = np.where(bad, np.abs(actual - expected), -np.inf)
    difference = np.where(np.isnan(difference), np.inf, difference)
    index = np.unravel_index(int(np.argmax(difference)), expected.shape)
    where = tuple(int(i) for i in index)
    lines = [f"{what} (shape {expected.shape}): {int(bad.sum())} of {expected.size} entries differ; the largest "
             f"difference is at index {where}: expected {expected[index]:.6g}, got {actual[index]:.6g}."]
    for description, wrong in mistakes:
        if _matches(actual, wrong, rtol, atol):
            lines.append(f"This is what {description} gives.")
            break
    if hint:
        lines.append(hint)
    raise CheckFailure("\n".join(lines))


def expect_close(actual, expected, what: str, *, mistakes=(), rtol: float = 1e-6, atol: float = 1e-12,
                 hint: str = "") -> None:
    """Assert that ``actual`` has the shape of ``expected`` and values within ``rtol``/``atol``.

    actual, expected: scalars or arrays.
    what: names the quantity, e.g. ``"gradient_descent(...) row 3"``.
    mistakes: pairs ``(description, wrong_value)``; when ``actual`` matches ``wrong_value`` the message reads
        "This is what <description> gives." List the most specific mistakes first.
    hint: one more sentence appended to any failure.
    """
    expected_arr = np.asarray(expected)
    try:
        actual_arr = np.asarray(actual, dtype=float) if expected_arr.dtype.kind in "iuf" else np.asarray(actual)
    except (TypeError, ValueError):
        _fail(what, expected, actual, mistakes, rtol, atol, hint or "The answer is not a number or an array.")
    if actual_arr.shape != expected_arr.shape:
        shape_msg = f"has shape {actual_arr.shape}, expected {expected_arr.shape}"
        _fail(f"{what} {shape_msg}", expected, actual, mistakes, rtol, atol, hint)
    if not np.allclose(actual_arr, expected_arr, rtol=rtol, atol=atol, equal_nan=True):
        if expected_arr.size > LARGE:
            _fail_large(what, expected_arr, actual_arr, mistakes, rtol, atol, hint)
        _fail(what, expected, actual, mistakes, rtol, atol, hint)


def expect_equal(actual, expected, what: str, *, mistakes=(), hint: str = "") -> None:
    """Assert ``actual == expected`` for exact values (strings, integers, tuples, None)."""
    if not (type(actual) is type(expected) or (isinstance(actual, (int, np.integer))
                                                 and isinstance(expected, (int, np.integer)))):
        _fail(f"{what} has type {type(actual).__name__}, expected {type(expected).__name__}",
              expected, actual, mistakes, 0.0, 0.0, hint)
    if actual != expected:
        _fail(what, expected, actual, mistakes, 0.0, 0.0, hint)


def expect_shape(actual, shape: tuple, what: str, *, mistakes=(), hint: str = "") -> None:
    """Assert that ``np.shape(actual) == shape``.

    mistakes: pairs ``(description, wrong_shape)``, e.g. ``("leaving out the start point", (10, 2))``.
    """
    got = np.shape(actual)
    if tuple(got) != tuple(shape):
        lines = [f"{what} has shape {tuple(got)}, expected {tuple(shape)}."]
        for description, wrong_shape in mistakes:
            if tuple(got) == tuple(wrong_shape):
                lines.append(f"This is what {description} gives.")
                break
        if hint:
            lines.append(hint)
        raise CheckFailure("\n".join(lines))


def expect_dtype(actual, dtype, what: str) -> None:
    """Assert that ``actual`` is an array of ``dtype`` (functions keep the dtype they are given)."""
    got = getattr(actual, "dtype", type(actual).__name__)
    if got != np.dtype(dtype):
        raise CheckFailure(f"{what} has dtype {got}, expected {np.dtype(dtype)}: keep the input's dtype.")


def expect_true(condition, message: str) -> None:
    """Assert ``condition``; ``message`` says what was expected, what came, and the likely mistake."""
    if not bool(condition):
        raise CheckFailure(message)


def hidden_rng(case: int) -> np.random.Generator:
    """The random generator that draws a hidden test's cases; ``case`` tells the test cells apart.

    In a student's kernel and when the solutions run: ``np.random.default_rng(case)``. While grading, the grader
    seeds it from the course secret and the submission, so the inputs cannot be known in advance, while grading the
    same submission again draws the same inputs.
    """
    if _grading_seed is None:
        return np.random.default_rng(case)
    return np.random.default_rng([*_grading_seed, case])
