"""Input normalization: the reference for notebook 02, with its plots.

A linear least-squares model ``y ~ X1 theta`` with ``X1 = [X, 1]`` (a bias column) has the loss
``E(theta) = 1/(2N) ||X1 theta - y||^2``, the gradient ``X1^T (X1 theta - y) / N`` and the constant Hessian
``H = X1^T X1 / N``. H is made of the inputs' second moments, so how the inputs are shifted and scaled decides its
condition number and with it how fast gradient descent converges (LeCun et al. 1998, "Efficient BackProp", 4.3):

- a non-zero input mean adds one large eigenvalue along the mean direction (about ``1 + ||mean / std||^2`` for
  scaled inputs) and makes the bias and the weights fight each other;
- features on different scales give per-weight curvatures ``E[x_j^2]`` that differ by orders of magnitude;
- standardizing (subtract the mean, divide by the standard deviation, both from the *training* split) makes every
  diagonal entry of H equal to 1; whitening also removes the correlations, so H is (nearly) the identity.

Conventions: X is (N, D), one sample per row; statistics are per feature (over axis 0) and use the biased
variance (divide by N), like the normalization layers later in the course. Whitening matrices act on the right,
``X_white = (X - mean) @ W``, and ``np.linalg.eigh`` returns eigenvectors as *columns*.
"""
from __future__ import annotations

import inspect

import numpy as np

__all__ = [
    "add_bias_column",
    "fit_standardizer",
    "standardize",
    "standardize_split",
    "least_squares_loss",
    "least_squares_gradient",
    "least_squares_hessian",
    "least_squares_solution",
    "least_squares_path",
    "steps_to_target_loss",
    "predicted_steps_to_target_loss",
    "fit_whitening",
    "fit_zca_whitening",
    "whiten",
    "plot_feature_ranges",
    "plot_spectra",
    "plot_descent_two_features",
]


# --- standardization -------------------------------------------------------------------------------------------

def add_bias_column(X: np.ndarray) -> np.ndarray:
    """Append a column of ones to X: (N, D) -> (N, D + 1), so that ``X1 @ theta`` includes the bias theta[-1]."""
    X = np.asarray(X, dtype=float)
    return np.hstack([X, np.ones((X.shape[0], 1))])


def fit_standardizer(X_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation of the training inputs X_train: (N, D).

    Returns (mean, std), each (D,). std is the biased one (divide by N). A feature that is constant on the
    training split has std 0; it is replaced by 1 so that standardizing gives 0 there instead of 0/0 = NaN, and a
    different value on the test split keeps its raw offset instead of being blown up (scikit-learn's
    StandardScaler does the same).
    """
    X_train = np.asarray(X_train, dtype=float)
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std = np.where(std == 0.0, 1.0, std)
    return mean, std


def standardize(X: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(X - mean) / std with given per-feature statistics. X: (N, D); mean, std: (D,). Returns (N, D)."""
    return (np.asarray(X, dtype=float) - mean) / std


def standardize_split(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standardize both splits with statistics fitted on the training split only (no leakage).

    X_train: (N_train, D); X_test: (N_test, D). Returns (Z_train, Z_test) with the same shapes.
    """
    mean, std = fit_standardizer(X_train)
    return standardize(X_train, mean, std), standardize(X_test, mean, std)


# --- the least-squares model -----------------------------------------------------------------------------------

def least_squares_loss(X: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """E(theta) = 1/(2N) ||X1 theta - y||^2 with X1 = [X, 1].

    X: (N, D); y: (N,); theta: (D + 1,) (bias last) or a stack (..., D + 1). Returns a scalar or shape (...).
    """
    residual = np.einsum("nd,...d->...n", add_bias_column(X), np.asarray(theta, dtype=float)) - y
    return 0.5 * np.mean(residual ** 2, axis=-1)


def least_squares_gradient(X: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """X1^T (X1 theta - y) / N. X: (N, D); y: (N,); theta: (D + 1,). Returns (D + 1,)."""
    X1 = add_bias_column(X)
    return X1.T @ (X1 @ theta - y) / len(y)


def least_squares_hessian(X: np.ndarray) -> np.ndarray:
    """The Hessian X1^T X1 / N of the least-squares loss (it does not depend on theta or y). X: (N, D) -> (D+1, D+1).

    Its blocks are E[x x^T] (D, D), E[x] (the last column and row) and 1 (bottom right).
    """
    X1 = add_bias_column(X)
    return X1.T @ X1 / X1.shape[0]


def least_squares_solution(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """The minimizer theta* (D + 1,) of the least-squares loss and the minimum loss E(theta*)."""
    theta, *_ = np.linalg.lstsq(add_bias_column(X), np.asarray(y, dtype=float), rcond=None)
    return theta, float(least_squares_loss(X, y, theta))


def least_squares_path(X: np.ndarray, y: np.ndarray, eta: float, n_steps: int, theta0=None) -> np.ndarray:
    """Gradient-descent trajectory on the least-squares loss, shape (n_steps + 1, D + 1); row 0 is theta0 (zeros)."""
    X1 = add_bias_column(X)
    y = np.asarray(y, dtype=float)
    H = X1.T @ X1 / len(y)              # the gradient is H theta - X1^T y / N: cheaper than two (N, D) products
    g0 = X1.T @ y / len(y)
    theta = np.zeros(X1.shape[1]) if theta0 is None else np.array(theta0, dtype=float)
    path = np.empty((n_steps + 1, theta.size))
    path[0] = theta
    for k in range(1, n_steps + 1):
        theta = theta - eta * (H @ theta - g0)
        path[k] = theta
    return path


def steps_to_target_loss(X: np.ndarray, y: np.ndarray, eta: float, target_loss: float,
                         max_steps: int = 10_000):
    """Gradient descent on the least-squares loss from theta = 0: the first step k with E(theta_k) <= target_loss.

    X: (N, D) inputs (the bias column is added here); y: (N,); eta: learning rate.
    Returns k (0 if the start already qualifies), or None when that does not happen within ``max_steps`` steps
    or when the loss exceeds 1e10 times its starting value (divergence: stop before it overflows).
    """
    X1 = add_bias_column(X)
    y = np.asarray(y, dtype=float)
    theta = np.zeros(X1.shape[1])
    start = None
    for k in range(max_steps + 1):
        residual = X1 @ theta - y
        loss = 0.5 * np.mean(residual ** 2)
        start = loss if start is None else start
        if loss <= target_loss:
            return k
        if loss > 1e10 * start:
            return None
        theta = theta - eta * (X1.T @ residual) / len(y)
    return None


def predicted_steps_to_target_loss(X: np.ndarray, y: np.ndarray, eta: float, target_loss: float,
                                   max_steps: float = 1e15):
    """The same count as ``steps_to_target_loss``, from the closed form instead of a loop (for huge counts).

    In the eigenbasis of H the error theta_k - theta* shrinks by (1 - eta lambda_i)^k per direction, so
    E(theta_k) = E* + 1/2 sum_i lambda_i c_i^2 (1 - eta lambda_i)^(2k), with c the start's error coordinates.
    Returns the smallest integer k (found by bisection) or None if eta is unstable or the target is below E*.
    """
    H = least_squares_hessian(X)
    lam, U = np.linalg.eigh(H)
    theta_star, loss_star = least_squares_solution(X, y)
    if np.max(np.abs(1.0 - eta * lam)) >= 1.0 or target_loss <= loss_star:
        return None
    c = U.T @ (np.zeros_like(theta_star) - theta_star)
    log_factor = np.log(np.abs(1.0 - eta * lam) + 1e-300)

    def excess(k):
        with np.errstate(under="ignore"):
            return 0.5 * np.sum(lam * c ** 2 * np.exp(2.0 * k * log_factor))

    if loss_star + excess(0) <= target_loss:
        return 0
    low, high = 0, 1
    while loss_star + excess(high) > target_loss:
        low, high = high, high * 2
        if high > max_steps:
            return None
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if loss_star + excess(middle) <= target_loss else (middle, high)
    return high


# --- whitening -------------------------------------------------------------------------------------------------

def fit_whitening(X_train: np.ndarray, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """PCA whitening fitted on the training split: returns (mean (D,), W (D, D)) with X_white = (X - mean) @ W.

    With the biased covariance Sigma = U diag(lam) U^T (eigenvectors in the columns of U),
    W = U diag(1 / sqrt(lam + eps)): project on the principal axes, then divide each by its standard deviation.
    The whitened training data have covariance diag(lam / (lam + eps)), the identity up to eps.
    """
    X_train = np.asarray(X_train, dtype=float)
    mean = X_train.mean(axis=0)
    centered = X_train - mean
    covariance = centered.T @ centered / X_train.shape[0]
    lam, U = np.linalg.eigh(covariance)
    return mean, U / np.sqrt(lam + eps)


def fit_zca_whitening(X_train: np.ndarray, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """ZCA (Mahalanobis) whitening: W = U diag(1 / sqrt(lam + eps)) U^T, symmetric; returns (mean, W).

    It is PCA whitening rotated back to the original axes: of all whitening matrices it changes the data least,
    so each whitened feature stays close to its original (Kessy, Lewin and Strimmer 2018).
    """
    X_train = np.asarray(X_train, dtype=float)
    mean = X_train.mean(axis=0)
    centered = X_train - mean
    lam, U = np.linalg.eigh(centered.T @ centered / X_train.shape[0])
    return mean, (U / np.sqrt(lam + eps)) @ U.T


def whiten(X: np.ndarray, mean: np.ndarray, W: np.ndarray) -> np.ndarray:
    """(X - mean) @ W. X: (N, D); mean: (D,); W: (D, D). Returns (N, D)."""
    return (np.asarray(X, dtype=float) - mean) @ W


# --- plots -----------------------------------------------------------------------------------------------------

def plot_feature_ranges(ax, X: np.ndarray, names, log: bool = False, unit: str = ""):
    """One horizontal box per feature (column of X: (N, D)), first feature on top; log x-axis if ``log``."""
    X = np.asarray(X, dtype=float)
    positions = np.arange(X.shape[1])[::-1]
    # matplotlib >= 3.10 spells horizontal boxes orientation="horizontal" (vert=False is deprecated there).
    horizontal = ({"orientation": "horizontal"} if "orientation" in inspect.signature(ax.boxplot).parameters
                  else {"vert": False})
    ax.boxplot([X[:, j] for j in range(X.shape[1])], positions=positions, widths=0.6,
               showfliers=True, flierprops={"markersize": 2}, **horizontal)
    ax.set_yticks(positions)
    ax.set_yticklabels(list(names), fontsize=8)
    if log:
        ax.set_xscale("log")
    ax.set(xlabel=f"feature value{unit}")
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_spectra(ax, spectra: dict):
    """Sorted eigenvalues (descending) of one Hessian per entry of ``spectra`` (label -> eigenvalues), log y-axis."""
    markers = "osD^v<>"
    for (label, lam), marker in zip(spectra.items(), markers * 3):
        lam = np.sort(np.asarray(lam))[::-1]
        ax.semilogy(np.arange(1, lam.size + 1), lam, marker=marker, ms=4, lw=1, label=label)
    ax.set(xlabel="eigenvalue rank (1 = largest)", ylabel="eigenvalue λ of H")
    ax.legend(fontsize=8)
    return ax


def plot_descent_two_features(ax, A: np.ndarray, y: np.ndarray, eta_fraction: float = 0.5, n_steps: int = 30,
                              start=None):
    """Gradient descent for a unit with two inputs and no bias, y ~ A w, drawn on the contours of its loss.

    A: (N, 2) inputs; y: (N,) targets. The loss 1/(2N) ||A w - y||^2 has Hessian H = A^T A / N; the path runs
    ``n_steps`` steps at eta = eta_fraction * 2 / lambda_max(H) from ``start`` (default w = 0) and is drawn in
    error coordinates w - w* so that the minimum sits at the origin. Returns (H, path in error coordinates).
    """
    from helpers.plotting import plot_paths_on_contours

    A = np.asarray(A, dtype=float)
    y = np.asarray(y, dtype=float)
    H = A.T @ A / len(y)
    w_star, *_ = np.linalg.lstsq(A, y, rcond=None)
    eta = eta_fraction * 2.0 / np.linalg.eigvalsh(H)[-1]
    w = np.zeros(2) if start is None else np.array(start, dtype=float)
    path = [w]
    for _ in range(n_steps):
        w = w - eta * (A.T @ (A @ w - y)) / len(y)
        path.append(w)
    error = np.array(path) - w_star
    lam = np.linalg.eigvalsh(H)
    plot_paths_on_contours(ax, H, {f"{n_steps} steps, η = {eta_fraction:g} · 2/λmax": error})
    ax.set(xlabel="$w_1 - w_1^*$", ylabel="$w_2 - w_2^*$")
    ax.text(0.98, 0.02, f"κ = {lam[-1] / lam[0]:.3g}", transform=ax.transAxes, ha="right", va="bottom")
    return H, error
