"""Student-facing checks: assertions whose failure message names the mistake.

A check compares a student's answer with the expected one. When they differ, it also compares the answer with
the outputs of known wrong answers ("mistakes"): if one matches, the message says which misconception produced
it, e.g. "this is what dividing by N-1 gives: normalization uses the biased variance".

Every function raises ``AssertionError`` on failure and prints nothing on success (nbgrader gives a test cell
zero for any output on stderr, and stdout noise hides the message that matters).
"""
from __future__ import annotations

import copy

import numpy as np

from helpers import diagnosis

__all__ = ["CheckFailure", "expect_close", "expect_equal", "expect_shape", "expect_true", "expect_dtype", "hidden_rng",
           "expect_close_cases", "expect_function", "expect_raises"]

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


def _named(actual, mistakes, rtol: float, atol: float) -> str:
    """"This is what <description> gives." for the first mistake ``actual`` matches, else ""."""
    for description, wrong in mistakes:
        if _matches(actual, wrong, rtol, atol):
            return f"This is what {description} gives."
    return ""


def _facts(actual, expected, sizes) -> str:
    """The generic relations between a wrong answer and the expected one, as a sentence (see helpers.diagnosis)."""
    try:
        return diagnosis.describe(actual, expected, sizes)
    except Exception:  # never let the explanation hide the failure
        return ""


def _fail(what: str, expected, actual, mistakes, rtol: float, atol: float, hint: str = "", sizes=()) -> None:
    expected_text, actual_text = _expected_and_got(expected, actual)
    lines = [f"{what}: expected {expected_text}, got {actual_text}."]
    named = _named(actual, mistakes, rtol, atol)
    if named:
        lines.append(named)
    elif rtol > 0 and not isinstance(expected, (str, bytes, bool)):  # exact checks (expect_equal) state no relation
        facts = _facts(actual, expected, sizes)
        if facts:
            lines.append(facts)
    difference = _largest_difference(expected, actual)
    if difference:
        lines.append(difference)
    if hint:
        lines.append(hint)
    raise CheckFailure("\n".join(lines))


LARGE = 12  # arrays with more entries are not printed in a failure message: where they differ most is


def _fail_large(what: str, expected: np.ndarray, actual: np.ndarray, mistakes, rtol: float, atol: float,
                hint: str, sizes=()) -> None:
    """Failure message for arrays of the same shape too large to print: how many entries differ, and the largest
    difference with its index and both values."""
    with np.errstate(invalid="ignore", over="ignore"):
        bad = ~np.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
        difference = np.where(bad, np.abs(actual - expected), -np.inf)
    difference = np.where(np.isnan(difference), np.inf, difference)
    index = np.unravel_index(int(np.argmax(difference)), expected.shape)
    where = tuple(int(i) for i in index)
    first, second = _expected_and_got(expected[index], actual[index])
    lines = [f"{what} (shape {expected.shape}): {int(bad.sum())} of {expected.size} entries differ; the largest "
             f"difference is at index {where}: expected {first}, got {second}."]
    named = _named(actual, mistakes, rtol, atol)
    facts = "" if named else _facts(actual, expected, sizes)
    lines += [line for line in (named, facts) if line]
    if hint:
        lines.append(hint)
    raise CheckFailure("\n".join(lines))


def expect_close(actual, expected, what: str, *, mistakes=(), rtol: float = 1e-6, atol: float = 1e-12,
                 hint: str = "", sizes=()) -> None:
    """Assert that ``actual`` has the shape of ``expected`` and values within ``rtol``/``atol``.

    actual, expected: scalars or arrays.
    what: names the quantity, e.g. ``"gradient_descent(...) row 3"``.
    mistakes: pairs ``(description, wrong_value)``; when ``actual`` matches ``wrong_value`` the message reads
        "This is what <description> gives." List the most specific mistakes first.
    hint: one more sentence appended to any failure.
    sizes: sizes of the case (e.g. the number of values a statistic reduces over) that a wrong factor such as
        N/(N-1) may refer to; when no mistake matches, the message states such relations (helpers.diagnosis).
    """
    expected_arr = np.asarray(expected)
    try:
        actual_arr = np.asarray(actual, dtype=float) if expected_arr.dtype.kind in "iuf" else np.asarray(actual)
    except (TypeError, ValueError):
        _fail(what, expected, actual, mistakes, rtol, atol, hint or "The answer is not a number or an array.")
    if actual_arr.shape != expected_arr.shape:
        shape_msg = f"has shape {actual_arr.shape}, expected {expected_arr.shape}"
        _fail(f"{what} {shape_msg}", expected, actual, mistakes, rtol, atol, hint, sizes)
    if not np.allclose(actual_arr, expected_arr, rtol=rtol, atol=atol, equal_nan=True):
        if expected_arr.size > LARGE:
            _fail_large(what, expected_arr, actual_arr, mistakes, rtol, atol, hint, sizes)
        _fail(what, expected, actual, mistakes, rtol, atol, hint, sizes)


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


def _copies(values):
    """Deep copies of a call's arguments, to tell afterwards whether the call changed them."""
    try:
        return copy.deepcopy(values)
    except Exception:
        return None


def _changed(before, after) -> bool:
    """True when ``after`` (an argument after the call) differs from ``before`` (its copy taken before it)."""
    if isinstance(before, np.ndarray) or isinstance(after, np.ndarray):
        try:
            return not (np.shape(before) == np.shape(after)
                        and np.array_equal(np.asarray(before), np.asarray(after), equal_nan=True))
        except Exception:
            return True
    if isinstance(before, (list, tuple)) and isinstance(after, (list, tuple)):
        return len(before) != len(after) or any(_changed(b, a) for b, a in zip(before, after))
    if isinstance(before, dict) and isinstance(after, dict):
        return before.keys() != after.keys() or any(_changed(before[k], after[k]) for k in before)
    if hasattr(before, "__dict__") and hasattr(after, "__dict__") and type(before) is type(after):
        return _changed(_state(before), _state(after))
    try:
        return bool(before != after)
    except Exception:
        return False


# What a module's forward pass leaves behind for its backward pass (helpers/network.py, helpers/normalization.py):
# scratch, not state; a function that runs a forward pass changes these and nothing a caller relies on.
_FORWARD_CACHES = frozenset({"x", "mask", "out", "outputs"})


def _state(obj) -> dict:
    """An object's attributes without its forward caches (those above and the private ones, ``_cache``)."""
    return {k: v for k, v in vars(obj).items() if k not in _FORWARD_CACHES and not k.startswith("_")}


def _kind(value) -> str:
    """What a function returned, as a student names it: "an array", "a list", "a float", "a tuple of 2"."""
    if isinstance(value, np.ndarray):
        return "an array"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    if isinstance(value, (bool, np.bool_)):
        return "a bool"
    if isinstance(value, (float, np.floating)):
        return "a float"
    if isinstance(value, (int, np.integer)):
        return "an int"
    if value is None:
        return "None"
    return f"a {type(value).__name__}"


def _same_kind(actual, expected) -> bool:
    if isinstance(expected, np.ndarray):
        return isinstance(actual, np.ndarray)
    if isinstance(expected, tuple):
        return isinstance(actual, tuple) and len(actual) == len(expected)
    if isinstance(expected, (float, np.floating)):  # a 0-d array or numpy scalar is a number too
        return isinstance(actual, (float, int, np.floating, np.integer)) and not isinstance(actual, bool) \
            or (isinstance(actual, np.ndarray) and actual.ndim == 0)
    if isinstance(expected, (int, np.integer)) and not isinstance(expected, bool):
        return isinstance(actual, (int, np.integer)) and not isinstance(actual, bool)
    if expected is None:
        return actual is None
    return True


def _agrees(actual, expected, rtol: float, atol: float) -> bool:
    """True when ``actual`` is ``expected``: None and strings exactly, numbers and arrays within tolerance."""
    if actual is None or expected is None or isinstance(expected, (str, bytes, bool)):
        return actual is expected if actual is None or expected is None else bool(actual == expected)
    try:
        return np.shape(actual) == np.shape(expected) and bool(np.allclose(
            np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=rtol, atol=atol, equal_nan=True))
    except (TypeError, ValueError):
        return False


def expect_close_cases(cases, what: str, *, mistakes=(), rtol: float = 1e-6, atol: float = 1e-12,
                       hint: str = "") -> None:
    """Assert that every case's answer is close to its expected value; explain the failures together.

    cases: (label, actual, expected, sizes) for each case, e.g. ``("x of shape (4, 3)", got, want, (4,))``.
    mistakes: pairs (description, wrongs) with the mistake's value for each case; a mistake is named when the
        answers match it on every case (where the answer is right, the mistake must give the right value too).
    When no listed mistake matches, a generic relation (a sign, a factor such as N/(N-1), swapped axes, a shift by
    one) is named as the likely mistake only when it alone explains every failing case and those cases have at
    least two different shapes; otherwise the message states the facts of the first failing case.
    """
    cases = list(cases)
    failing = []
    for index, (label, actual, expected, sizes) in enumerate(cases):
        ok = _agrees(actual, expected, rtol, atol)
        if not ok:
            failing.append(index)
    if not failing:
        return
    first = failing[0]
    label, actual, expected, sizes = cases[first]
    expected_text, actual_text = _expected_and_got(expected, actual)
    lines = [f"{what}, {label}: expected {expected_text}, got {actual_text}." if np.size(expected) <= LARGE
             else f"{what}, {label}: the result differs from the expected one (shape {np.shape(expected)})."]
    if len(cases) > 1:
        lines.append(f"{len(failing)} of the {len(cases)} cases {'fails' if len(failing) == 1 else 'fail'}.")
    named = ""
    for description, wrongs in mistakes:  # it must give the student's answer on every case, right or wrong
        if all(_matches(actual_i, wrongs[i], rtol, atol) for i, (_, actual_i, _, _) in enumerate(cases)):
            named = f"This is what {description} gives."
            break
    if not named:
        try:
            relation = diagnosis.explain_cases([(cases[i][1], cases[i][2], cases[i][3]) for i in failing])
        except Exception:
            relation = None
        if relation is not None:
            named = (f"On every failing case {relation.fact.replace('every entry is', 'each entry is')}: this is "
                     f"what {relation.mistake} gives.")
        elif all(isinstance(case[2], str) for case in cases):  # categorical answers: the whole pattern says most
            named = (f"Answers in order: {', '.join(repr(case[1]) for case in cases)}; expected "
                     f"{', '.join(repr(case[2]) for case in cases)}.")
        else:
            named = _facts(actual, expected, sizes)
    lines += [line for line in (named, _largest_difference(expected, actual), hint) if line]
    raise CheckFailure("\n".join(lines))


def expect_function(function, reference, cases, what: str, *, rtol: float = 1e-6, atol: float = 1e-12,
                    mistakes=(), hint: str = "") -> None:
    """Assert the whole contract of ``function`` on several cases, against ``reference``.

    cases: (label, args, kwargs, sizes) for each call, e.g. ``("x (5, 3), eps=0.1", (x,), {"eps": 0.1}, (5,))``;
        include calls with every parameter away from its default.
    Checked per case, in this order: the call changes none of its arguments (compared with copies taken before
    it); it returns what the reference returns: an array where the reference gives an array (not a list), a
    tuple of the same length, a float for a float; each array with the reference's shape and dtype; then the
    values, all cases together (``expect_close_cases``, which names a mistake only when it gives the answer on every
    case).
    mistakes: pairs (description, wrong_function) where ``wrong_function(*args, **kwargs)`` gives the mistake's
        result; it is named when it gives the function's result on every case.
    """
    results = []
    for label, args, kwargs, sizes in cases:
        expected = reference(*_copies(args), **_copies(kwargs))
        before = _copies((args, kwargs))
        actual = function(*args, **kwargs)
        if before is not None:
            for position, (old, new) in enumerate(zip(before[0], args)):
                if _changed(old, new):
                    raise CheckFailure(f"{what}, {label}: the call changed its argument number {position + 1} "
                                       "(modified in place); leave the inputs as they are and return new arrays."
                                       + (f"\n{hint}" if hint else ""))
            for name in kwargs:
                if _changed(before[1][name], kwargs[name]):
                    raise CheckFailure(f"{what}, {label}: the call changed its argument {name} (modified in place); "
                                       "leave the inputs as they are and return new arrays.")
        parts = list(zip(actual, expected)) if isinstance(expected, tuple) and isinstance(actual, tuple) else []
        if not _same_kind(actual, expected):
            raise CheckFailure(f"{what}, {label}: returned {_kind(actual)}, expected {_kind(expected)}."
                               + (" Return a numpy array (np.asarray(...)), as the docstring says."
                                  if isinstance(expected, np.ndarray) else ""))
        for index, (got, want) in enumerate(parts or [(actual, expected)]):
            part = f"{what}, {label}" + (f", item {index}" if parts else "")
            if isinstance(want, np.ndarray):
                if not isinstance(got, np.ndarray):
                    raise CheckFailure(f"{part}: returned {_kind(got)}, expected an array.")
                if got.shape != want.shape:
                    raise CheckFailure(f"{part}: has shape {got.shape}, expected {want.shape}.")
                if want.dtype.kind == "f" and got.dtype != want.dtype:
                    raise CheckFailure(f"{part}: has dtype {got.dtype}, expected {want.dtype}: keep the input's dtype.")
            elif not _same_kind(got, want):
                raise CheckFailure(f"{part}: returned {_kind(got)}, expected {_kind(want)}.")
        results.append((label, actual, expected, sizes, args, kwargs))
    width = len(results[0][2]) if isinstance(results[0][2], tuple) else 0
    ignored = sorted({name for *_, kwargs in results for name in kwargs})
    for index in range(max(width, 1)):
        pick = (lambda value: value[index] if isinstance(value, tuple) and len(value) > index else None) if width \
            else (lambda value: value)  # a mistake's function that raised gave None: it matches nothing
        wrong = [(description, [pick(_call(fn, args, kwargs)) for _, _, _, _, args, kwargs in results])
                 for description, fn in mistakes]
        for name in ignored:  # what leaving one argument at its default gives (cases without it: the right answer)
            default = [pick(_call(reference, args, {k: v for k, v in kwargs.items() if k != name}))
                       for _, _, _, _, args, kwargs in results]
            expected_values = [pick(expected) for _, _, expected, _, _, _ in results]
            if not all(_agrees(d, e, rtol, atol) for d, e in zip(default, expected_values)):  # else it does not matter
                wrong.append((f"ignoring the argument {name} (the result is the one for its default value)", default))
        expect_close_cases([(label, pick(actual), pick(expected), sizes)
                            for label, actual, expected, sizes, _, _ in results],
                           what + (f" item {index}" if width else ""), mistakes=wrong, rtol=rtol, atol=atol,
                           hint=hint)


def _call(function, args, kwargs):
    try:
        return function(*_copies(args), **_copies(kwargs))
    except Exception:
        return None


def expect_raises(function, args, kwargs, exception: type, what: str, hint: str = "") -> None:
    """Assert that ``function(*args, **kwargs)`` raises ``exception`` (or a subclass), as the exercise requires."""
    try:
        result = function(*args, **kwargs)
    except exception:
        return
    except Exception as error:
        raise CheckFailure(f"{what}: raised {type(error).__name__} ({error}), expected {exception.__name__}."
                           + (f"\n{hint}" if hint else "")) from None
    raise CheckFailure(f"{what}: returned {_short(result, 80)} instead of raising {exception.__name__}."
                       + (f"\n{hint}" if hint else ""))


def hidden_rng(case: int) -> np.random.Generator:
    """The random generator that draws a hidden test's cases; ``case`` tells the test cells apart.

    In a student's kernel and when the solutions run: ``np.random.default_rng(case)``. While grading, the grader
    seeds it from the course secret and the submission, so the inputs cannot be known in advance, while grading the
    same submission again draws the same inputs.
    """
    if _grading_seed is None:
        return np.random.default_rng(case)
    return np.random.default_rng([*_grading_seed, case])
