"""Plots for notebook 03 (variance propagation): per-layer statistics and per-layer histograms.

Each function draws on an ``ax`` it is given, labels the axes, adds a legend, and returns the ``ax``; the caller
sets the title. Layers are numbered from 1 on the x-axis.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.ticker import FuncFormatter, LogFormatterSciNotation, LogLocator, MaxNLocator, NullFormatter

__all__ = ["plot_per_layer", "plot_layer_histograms"]


class _PlainLogFormatter(LogFormatterSciNotation):
    """Labels the same log ticks as matplotlib's default, written as plain numbers (0.3, 2) instead of 3x10^-1."""

    def __call__(self, x, pos=None):
        return f"{x:g}" if super().__call__(x, pos) else ""


def plain_log_ticks(ax, max_decades: float = 3.0):
    """On a log y-axis spanning at most ``max_decades`` decades, write the tick labels as plain numbers."""
    low, high = ax.get_ylim()
    if low > 0 and np.log10(high / low) < 1:   # under one decade: label 1, 1.5, 2, 3, 4, 5, 7 of each decade
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda x, pos: f"{x:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    elif low > 0 and np.log10(high / low) <= max_decades:
        ax.yaxis.set_major_formatter(_PlainLogFormatter())
        ax.yaxis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    return ax


def plot_per_layer(ax, measured: dict, predicted: dict | None = None, *, ylabel: str, reference: float | None = None):
    """Per-layer values on a log y-axis: markers for ``measured``, a line of the same colour for ``predicted``.

    measured: label -> values of shape (L,), entry ``l - 1`` for layer ``l``.
    predicted: label -> values of shape (L,) for some of the same labels. A label with a prediction gets two legend
    entries, "<label>, measured" and "<label>, predicted"; a label without one keeps its name.
    ylabel: the y-axis label, with its unit. reference: a value to mark with a dashed horizontal line (e.g. 1).
    """
    predicted = predicted or {}
    for label, values in measured.items():
        values = np.asarray(values, dtype=float)
        layers = np.arange(1, values.size + 1)
        name = f"{label}, measured" if label in predicted else label
        (line,) = ax.semilogy(layers, values, "o", ms=3.5, label=name)
        if label in predicted:
            ax.semilogy(layers, np.asarray(predicted[label], dtype=float), "-", lw=1.2, color=line.get_color(),
                        label=f"{label}, predicted")
    if reference is not None:
        ax.axhline(reference, color="k", ls="--", lw=0.8)
    ax.set(xlabel="layer $l$", ylabel=ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    plain_log_ticks(ax)
    ax.legend(fontsize=7)
    return ax


def plot_layer_histograms(ax, activations: Sequence[np.ndarray], layers: Sequence[int], *, bins: int = 60,
                          value_range: tuple[float, float] = (-1.0, 1.0), xlabel: str = "activation value"):
    """Glorot & Bengio (2010, Figure 6) style: one normalized histogram, drawn as a line, per chosen layer.

    activations: the arrays ``h_l`` of every layer (any shape), entry ``l - 1`` for layer ``l``.
    layers: the layer numbers (1-based) to draw. bins, value_range: of the histograms; values outside the range
    are not counted. The y-axis is a density (each curve integrates to the share of values inside the range).
    """
    edges = np.linspace(value_range[0], value_range[1], bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    width = edges[1] - edges[0]
    for layer in layers:
        values = np.asarray(activations[layer - 1]).ravel()
        counts, _ = np.histogram(values, bins=edges)
        ax.plot(centres, counts / (values.size * width), lw=1.3, label=f"layer {layer}")
    ax.set(xlabel=xlabel, ylabel="density (1 / unit of value)")
    ax.legend(fontsize=8)
    return ax
