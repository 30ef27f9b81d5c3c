"""Gradient checking by centred finite differences, reported as a relative error (as in CS231n)."""
from __future__ import annotations

from typing import Callable

import numpy as np


def numerical_gradient(f: Callable[[], np.ndarray], x: np.ndarray, dout: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Gradient of ``sum(f() * dout)`` with respect to ``x`` by centred differences.

    f: takes no argument and reads ``x``, which is perturbed in place and restored; returns an array shaped
        like ``dout``.
    x: the array to differentiate with respect to (float64 for meaningful results), any shape.
    dout: the upstream gradient, shape of ``f()``.
    Returns an array shaped like ``x``. Costs ``2 * x.size`` calls of ``f``.
    """
    grad = np.zeros_like(x, dtype=float)
    flat_x = x.reshape(-1)
    flat_grad = grad.reshape(-1)
    for i in range(flat_x.size):
        old = flat_x[i]
        flat_x[i] = old + h
        plus = np.sum(f() * dout)
        flat_x[i] = old - h
        minus = np.sum(f() * dout)
        flat_x[i] = old
        flat_grad[i] = (plus - minus) / (2 * h)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(|a| + |b|), elementwise; about 1e-8 or less means the gradients agree in float64."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(1e-12, np.abs(a) + np.abs(b))))
