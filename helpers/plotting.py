"""Plots the notebooks share. Each draws on an ``ax`` it is given and labels it; the caller sets the title."""
from __future__ import annotations

import numpy as np

from helpers.gradient_descent import quadratic_loss


def plot_paths_on_contours(ax, H: np.ndarray, paths: dict, extent: float | None = None, n_levels: int = 12):
    """Loss contours of E(w) = 1/2 w^T H w with one gradient-descent path per entry of ``paths``.

    H: (2, 2). paths: label -> trajectory (n_steps + 1, 2). extent: half-width of the square shown (defaults to
    the largest |coordinate| of the first path's start, times 1.3). Diverging paths are clipped by the axes.
    """
    first = next(iter(paths.values()))
    extent = extent or 1.3 * float(np.max(np.abs(first[0])))
    grid = np.linspace(-extent, extent, 201)
    W1, W2 = np.meshgrid(grid, grid)
    E = quadratic_loss(H, np.stack([W1, W2], axis=-1))
    levels = np.geomspace(E.max() * 1e-4, E.max(), n_levels)
    ax.contour(W1, W2, E, levels=levels, colors="0.75", linewidths=0.8)
    for label, path in paths.items():
        ax.plot(path[:, 0], path[:, 1], "o-", ms=3, lw=1.2, label=label)
    ax.plot(0, 0, "k*", ms=10, label="minimum")
    ax.set(xlim=(-extent, extent), ylim=(-extent, extent), aspect="equal",
           xlabel="weight $w_1$", ylabel="weight $w_2$")
    ax.legend(fontsize=8, loc="upper left")
    return ax


def plot_loss_curves(ax, curves: dict, ylabel: str = "loss $E(w_k)$"):
    """One line per entry of ``curves`` (label -> losses per step, shape (n_steps + 1,)) on a log y-axis."""
    for label, losses in curves.items():
        ax.semilogy(np.arange(len(losses)), losses, label=label)
    ax.set(xlabel="step $k$", ylabel=ylabel)
    ax.legend(fontsize=8)
    return ax
