"""Generic explanations of a wrong numeric answer, tried before a check writes its failure message.

Given what a function returned (``got``) and what it should have returned (``expected``), each explanation is a
simple relation between the two that a common slip produces: the sign flipped, a constant factor (2, 1/2, sqrt 2,
N/(N-1) for a size N of the case), a constant offset, the axes swapped, the rows shifted by one (one step late or
early), agreement only to float32 precision.

On one case, a relation is a fact about the numbers and the message states it as such ("every entry is 2 times
the expected value"). It is named as the likely mistake only when exactly one relation holds on every failing case
and the failing cases have at least two different shapes (``explain_cases``): a single small example can make two
different slips give the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np

__all__ = ["Relation", "relations", "explain_cases", "describe"]


@dataclass(frozen=True)
class Relation:
    """One relation between got and expected.

    label: what it is, the same across cases of different sizes (e.g. "times N/(N-1)"), used to compare cases.
    fact: the relation on this case, e.g. "every entry is 1.25 (= N/(N-1) with N = 5) times the expected value".
    mistake: what commonly produces it, e.g. "dividing by N - 1 where N is meant (or the other way round)".
    """
    label: str
    fact: str
    mistake: str


_RTOL = 1e-6
_FLOAT32_RTOL = 2e-4  # float32 keeps about 7 significant digits; a few operations lose one or two more


def _close(a: np.ndarray, b: np.ndarray, rtol: float = _RTOL) -> bool:
    scale = max(float(np.max(np.abs(b))), 1e-300) if b.size else 1.0
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=rtol * scale * 1e-3))


def _factors(sizes) -> list[tuple[float, str, str]]:
    """(value, label, text) for the constant factors common slips produce; sizes give N/(N-1) and its kin."""
    found = [(2.0, "times 2", "2"), (0.5, "times 1/2", "1/2"), (np.sqrt(2), "times sqrt 2", "sqrt 2"),
             (1 / np.sqrt(2), "times 1/sqrt 2", "1/sqrt 2")]
    for n in sorted({int(s) for s in sizes if int(s) >= 2}):
        found += [(n / (n - 1), "times N/(N-1)", f"{n}/{n - 1} (N/(N-1) with N = {n})"),
                  ((n - 1) / n, "times (N-1)/N", f"{n - 1}/{n} ((N-1)/N with N = {n})"),
                  (np.sqrt(n / (n - 1)), "times sqrt(N/(N-1))", f"sqrt({n}/{n - 1}) (with N = {n})"),
                  (np.sqrt((n - 1) / n), "times sqrt((N-1)/N)", f"sqrt({n - 1}/{n}) (with N = {n})"),
                  (float(n), "times N", f"{n} (N = {n})"), (1.0 / n, "times 1/N", f"1/{n} (1/N with N = {n})")]
    return found


_MISTAKES = {
    "sign flipped": "a flipped sign (subtracting where the formula adds, or the gradient's direction)",
    "times N/(N-1)": "dividing by N - 1 where the formula divides by N (the unbiased instead of the biased variance)",
    "times (N-1)/N": "dividing by N where the formula divides by N - 1 (the biased instead of the unbiased variance)",
    "times sqrt(N/(N-1))": "the standard deviation from the unbiased variance (N - 1) where the biased one is meant",
    "times sqrt((N-1)/N)": "the standard deviation from the biased variance where the unbiased one (N - 1) is meant",
    "times N": "a sum where the formula takes a mean (or a factor N too many)",
    "times 1/N": "a mean where the formula takes a sum (or dividing by N once too often)",
    "times 2": "a factor 2 too many (for example differentiating x^2/2 as 2x, or counting a term twice)",
    "times 1/2": "a missing factor 2 (for example the derivative of x^2 taken as x, or a gain of 1 instead of 2)",
    "times sqrt 2": "a factor sqrt 2 too many (for example He's gain where none belongs, or std instead of variance)",
    "times 1/sqrt 2": "a missing factor sqrt 2 (for example He's gain left out)",
    "constant factor": "a constant factor: a scale, gain or normalizing constant that differs from the formula's",
    "constant offset": "a constant added or left out (for example eps, beta, or a bias)",
    "axes swapped": "the axes in the wrong order (a transpose, or a reshape where moveaxis/transpose is meant)",
    "one step late": "an off-by-one: each row is the one before it (the update applied one step late)",
    "one step early": "an off-by-one: each row is the one after it (the update applied one step early)",
    "lower precision": "computing in lower precision (float32) or with a formula that loses digits",
}


def relations(got, expected, sizes=()) -> list[Relation]:
    """Every relation in this module that holds between ``got`` and ``expected`` (numeric; any shapes).

    sizes: sizes of the case (reduced axes, numbers of samples) that N/(N-1) and its kin may refer to.
    """
    try:
        g = np.asarray(got, dtype=float)
        e = np.asarray(expected, dtype=float)
    except (TypeError, ValueError):
        return []
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(e))) or e.size == 0 or _close(g, e):
        return []
    found = []
    if g.shape == e.shape:
        found += _scalings(g, e, sizes)
        found += _shifts(g, e)
        if _close(g, e, _FLOAT32_RTOL) and np.array_equal(g, g.astype(np.float32)):  # float32 values, cast back
            worst = float(np.max(np.abs(g - e)) / max(float(np.max(np.abs(e))), 1e-300))
            found.append(Relation("lower precision", f"it agrees with the expected value only to about {worst:.0e} "
                                  "(relative to its largest entry)", _MISTAKES["lower precision"]))
    found += _transposes(g, e)
    return found


def _scalings(g: np.ndarray, e: np.ndarray, sizes) -> list[Relation]:
    if not np.any(e):
        return []
    if _close(g, -e):
        return [Relation("sign flipped", "every entry is minus the expected value", _MISTAKES["sign flipped"])]
    found = []
    ratio = float(np.vdot(g, e) / np.vdot(e, e))
    if ratio != 0 and abs(ratio - 1) > 1e-4 and _close(g, ratio * e, 1e-5):
        named = [(label, text) for value, label, text in _factors(sizes) if np.isclose(ratio, value, rtol=1e-5)]
        if named:
            label, text = named[0]
            value, _, note = text.partition(" (")
            note = f" ({note}" if note else ""
            found.append(Relation(label, f"every entry is {value} times the expected value{note}", _MISTAKES[label]))
        elif e.size > 1:
            found.append(Relation("constant factor", f"every entry is {ratio:.4g} times the expected value",
                                  _MISTAKES["constant factor"]))
    offset = g - e
    if found and np.allclose(e, e.flat[0]):  # on a constant expected value a factor and an offset say the same
        return found
    if e.size > 1 and np.allclose(offset, offset.flat[0], rtol=1e-6, atol=1e-12 * max(1.0, float(np.max(np.abs(e))))) \
            and abs(offset.flat[0]) > 0:
        shift = float(offset.flat[0])
        found.append(Relation("constant offset", f"every entry is the expected value {'plus' if shift > 0 else 'minus'} "
                              f"{abs(shift):.4g}",
                              _MISTAKES["constant offset"]))
    return found


def _shifts(g: np.ndarray, e: np.ndarray) -> list[Relation]:
    if g.ndim == 0 or g.shape[0] < 3:
        return []
    found = []
    if _close(g[1:], e[:-1]):
        found.append(Relation("one step late", "from the second row on, each row is the expected row before it",
                              _MISTAKES["one step late"]))
    if _close(g[:-1], e[1:]):
        found.append(Relation("one step early", "each row but the last is the expected row after it",
                              _MISTAKES["one step early"]))
    return found


def _transposes(g: np.ndarray, e: np.ndarray) -> list[Relation]:
    if e.ndim < 2 or e.ndim > 5 or g.size != e.size:
        return []
    for order in permutations(range(e.ndim)):
        if order == tuple(range(e.ndim)):
            continue
        moved = np.transpose(e, order)
        if moved.shape == g.shape and _close(g, moved):
            return [Relation("axes swapped", f"it is the expected array with its axes in the order {order}",
                             _MISTAKES["axes swapped"])]
    if g.shape != e.shape and _close(g.ravel(), e.ravel()):
        return [Relation("axes swapped", f"it holds the expected values in shape {g.shape} instead of {e.shape}",
                         _MISTAKES["axes swapped"])]
    return []


def explain_cases(cases) -> Relation | None:
    """The one relation that holds on every failing case, when there is exactly one and the failing cases have at
    least two different shapes; otherwise None.

    cases: (got, expected, sizes) triples, the failing ones.
    """
    cases = list(cases)
    shapes = {np.shape(expected) for _, expected, _ in cases}
    if len(cases) < 2 or len(shapes) < 2:
        return None
    common = None
    first = {}
    for got, expected, sizes in cases:
        found = {r.label: r for r in relations(got, expected, sizes)}
        first = first or found
        common = set(found) if common is None else common & set(found)
    if common and len(common) == 1:
        return first[next(iter(common))]
    return None


def describe(got, expected, sizes=()) -> str:
    """One sentence of facts for a failure message ("Every entry is 2 times the expected value."), or ""."""
    found = relations(got, expected, sizes)
    if not found:
        return ""
    facts = "; ".join(r.fact for r in found)
    if np.size(expected) == 1:
        facts = facts.replace("every entry is", "it is")
    return facts[0].upper() + facts[1:] + "."
