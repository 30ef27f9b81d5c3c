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
    """An AssertionError raised by a check; its message states what, expected, got, and the likely mistake.

    In a notebook it shows as its message alone: IPython (JupyterLab, nbclient, nbgrader, JupyterLite) calls
    ``_render_traceback_`` instead of printing a traceback, which here would run through the checks' own code and
    bury the one line that matters.
    """

    def _render_traceback_(self) -> list[str]:
        lines = str(self).splitlines() or [""]
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {lines[0]}", *lines[1:]]


_DIGITS = (4, 6, 8, 10, 12, 17)  # significant digits tried in turn until expected and got print differently
_ITEMS = 12  # arrays and lists longer than this print their first and last few items


def _float_text(x: float, digits: int) -> str:
    text = f"{x:.{digits}g}"
    return text + ".0" if text.lstrip("-").isdigit() else text  # 4.0 stays a float: "4.0", not "4"


def _text(value, digits: int = _DIGITS[0]) -> str:
    """``value`` as a student reads it: ``0.2522`` (not ``np.float64(0.25216355140656427)``), arrays with a few
    digits and, when long, only their first and last items."""
    if isinstance(value, np.generic) and not isinstance(value, np.void):
        value = value.item()  # numpy scalars print like Python's
    if isinstance(value, bool) or value is None or isinstance(value, (str, bytes)):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value, digits)
    if isinstance(value, complex):
        return f"({_float_text(value.real, digits)}{'+' if value.imag >= 0 else '-'}{_float_text(abs(value.imag), digits)}j)"
    if isinstance(value, np.ndarray):
        edge = 3 if value.ndim <= 1 else 2
        with np.printoptions(precision=digits, threshold=_ITEMS, edgeitems=edge, floatmode="maxprec", legacy=False):
            lines = np.array2string(value, separator=", ").splitlines()
        text = " ".join(line.strip() for line in lines if line.strip())  # on one line
        return f"array of shape {value.shape}: {text}" if value.size > _ITEMS else text
    if isinstance(value, (list, tuple)):
        items = list(value)
        shown = [_text(v, digits) for v in (items if len(items) <= _ITEMS else items[:3])]
        if len(items) > _ITEMS:
            shown += [f"... ({len(items) - 6} more) ...", *(_text(v, digits) for v in items[-3:])]
        inner = ", ".join(shown) + ("," if isinstance(value, tuple) and len(items) == 1 else "")
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_text(k, digits)}: {_text(v, digits)}" for k, v in value.items()) + "}"
    return repr(value)


def _short(value, limit: int = 300, digits: int = _DIGITS[0]) -> str:
    try:
        text = _text(value, digits)
    except Exception:  # a student's object whose repr or array conversion fails
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _expected_and_got(expected, actual) -> tuple[str, str]:
    """The two values as text, with as few digits as tell them apart."""
    for digits in _DIGITS:
        pair = _short(expected, digits=digits), _short(actual, digits=digits)
        if pair[0] != pair[1]:
            break
    return pair


def _largest_difference(expected, actual) -> str:
    """For long arrays of the same shape, which printed summarised: where they differ most."""
    try:
        e, a = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
        if e.shape != a.shape or e.size <= _ITEMS:
            return ""
        with np.errstate(invalid="ignore"):
            gap = np.where(np.isnan(e) & np.isnan(a), 0.0, np.abs(a - e))
        gap = np.where(np.isnan(gap), np.inf, gap)
        index = np.unravel_index(int(np.argmax(gap)), e.shape)
        if gap[index] == 0:
            return ""
        where = index[0] if len(index) == 1 else tuple(int(i) for i in index)
        first, second = _expected_and_got(e[index], a[index])
        return f"The largest difference is at index {where}: expected {first}, got {second}."
    except Exception:
        return ""


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
    expected_text, actual_text = _expected_and_got(expected, actual)
    lines = [f"{what}: expected {expected_text}, got {actual_text}."]
    for description, wrong in mistakes:
        if _matches(actual, wrong, rtol, atol):
            lines.append(f"This is what {description} gives.")
            break
    difference = _largest_difference(expected, actual)
    if difference:
        lines.append(difference)
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
