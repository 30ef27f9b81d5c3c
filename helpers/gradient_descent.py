"""Gradient descent on quadratic losses: the reference for notebook 01 (learning rate).

The loss is ``E(w) = 1/2 w^T H w`` with a symmetric positive definite Hessian ``H: (d, d)``; its minimum is at
``w = 0`` and its gradient is ``H w``. One step ``w := w - eta * H w`` multiplies the component of ``w`` along
an eigenvector of ``H`` with eigenvalue ``lambda`` by ``1 - eta * lambda`` (LeCun et al. 1998, "Efficient
BackProp", section 5). Everything in the notebook follows from that factor.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def quadratic_loss(H: np.ndarray, w: np.ndarray) -> np.ndarray:
    """E(w) = 1/2 w^T H w. H: (d, d); w: (d,) or a stack (..., d). Returns a scalar or shape (...)."""
    w = np.asarray(w, dtype=float)
    return 0.5 * np.einsum("...i,ij,...j->...", w, H, w)


def quadratic_gradient(H: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The gradient function w -> H w of the quadratic loss. H: (d, d); the function maps (d,) -> (d,).

    In 1-D (H: (1, 1)) it also takes a scalar w and then returns a scalar. A w that does not fit H raises a
    ValueError that says what shape it needs.
    """
    H = np.asarray(H)

    def gradient(w):
        w = np.asarray(w)
        if w.ndim == 0:
            if H.shape == (1, 1):
                return H[0, 0] * w
            raise ValueError(f"quadratic_gradient: w is the scalar {w.item()!r}, but H is {H.shape[0]}x{H.shape[1]}, "
                             f"so w needs {H.shape[1]} entries. Turn a scalar start point into a vector first: "
                             "w = np.array(w0, dtype=float).reshape(-1)")
        if w.shape[-1:] != H.shape[1:]:
            raise ValueError(f"quadratic_gradient: w has shape {w.shape}, but H is {H.shape[0]}x{H.shape[1]}, "
                             f"so w needs shape ({H.shape[1]},)")
        return H @ w

    return gradient


def gradient_descent(grad: Callable[[np.ndarray], np.ndarray], w0, eta: float, n_steps: int) -> np.ndarray:
    """Run ``n_steps`` steps of ``w := w - eta * grad(w)`` from ``w0``.

    grad: maps a weight vector (d,) to its gradient (d,).
    w0: the start point, (d,) (a scalar counts as d = 1).
    Returns the whole trajectory, shape (n_steps + 1, d): row 0 is ``w0``, row k the weights after k steps.
    """
    w = np.array(w0, dtype=float).reshape(-1)
    trajectory = np.empty((n_steps + 1, w.size))
    trajectory[0] = w
    for k in range(1, n_steps + 1):
        w = w - eta * grad(w)
        trajectory[k] = w
    return trajectory


def eigenvalues(H: np.ndarray) -> np.ndarray:
    """Eigenvalues of the symmetric matrix H: (d, d), ascending, shape (d,)."""
    return np.linalg.eigvalsh(H)


def max_stable_learning_rate(H: np.ndarray) -> float:
    """The stability limit 2 / lambda_max: every smaller rate converges, this one and larger ones do not. H: (d, d)."""
    return 2.0 / eigenvalues(H)[-1]


def condition_number(H: np.ndarray) -> float:
    """lambda_max / lambda_min of the symmetric positive definite H: (d, d)."""
    lam = eigenvalues(H)
    return lam[-1] / lam[0]


def best_learning_rate(H: np.ndarray) -> float:
    """The learning rate with the fastest worst-direction convergence: 2 / (lambda_min + lambda_max).

    At this rate the steepest and the flattest direction shrink by the same factor per step,
    (kappa - 1) / (kappa + 1) in absolute value, with kappa the condition number. In 1-D it is 1 / a.
    """
    lam = eigenvalues(H)
    return 2.0 / (lam[0] + lam[-1])


REGIMES = ("monotone", "one step", "oscillating", "diverging")


def classify_learning_rate(a: float, eta: float) -> str:
    """How gradient descent behaves on E(w) = a/2 w^2 (a > 0) with learning rate eta > 0.

    Each step multiplies w by r = 1 - eta * a:
    'monotone' (0 < r < 1, eta < 1/a), 'one step' (r = 0, eta = 1/a, up to rounding),
    'oscillating' (-1 < r < 0, 1/a < eta < 2/a), 'diverging' (r <= -1, eta >= 2/a: it never converges).
    """
    if a <= 0 or eta <= 0:
        raise ValueError(f"need a > 0 and eta > 0, got a={a}, eta={eta}")
    r = 1.0 - eta * a
    if np.isclose(r, 0.0, atol=1e-12):
        return "one step"
    if r > 0:
        return "monotone"
    if r > -1:
        return "oscillating"
    return "diverging"


def steps_to_converge(H: np.ndarray, w0, eta: float, tol: float = 1e-6, max_steps: int = 100_000):
    """The number of gradient-descent steps on E(w) = 1/2 w^T H w until ||w_k|| <= tol * ||w0||.

    H: (d, d); w0: (d,). The minimum is at 0, so ||w_k|| is the distance still to go.
    Returns the smallest k >= 0 with ||w_k|| <= tol * ||w0||, or None when that does not happen within
    ``max_steps`` steps (too small a learning rate) or when ||w_k|| exceeds 1e10 ||w0|| (divergence).
    """
    w = np.array(w0, dtype=float).reshape(-1)
    start = np.linalg.norm(w)
    for k in range(max_steps + 1):
        distance = np.linalg.norm(w)
        if distance <= tol * start:
            return k
        if distance > 1e10 * start:
            return None
        w = w - eta * (H @ w)
    return None


def quadratic_with_condition_number(kappa: float, angle: float = 0.0) -> np.ndarray:
    """A 2x2 Hessian with eigenvalues 1 and kappa, its eigenvectors rotated by ``angle`` radians. Shape (2, 2)."""
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, -s], [s, c]])
    return rotation @ np.diag([1.0, float(kappa)]) @ rotation.T
