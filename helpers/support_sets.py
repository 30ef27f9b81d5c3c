"""The support sets of the normalizations, drawn as in Wu & He 2018, "Group Normalization", Figure 2.

Each cube is a batch of feature maps: N samples (horizontal), C channels (depth) and the spatial axes H, W
flattened into one (vertical). The shaded cells are normalized by the same mean and variance; the cube is drawn
opaque, so a support set is seen through its visible faces (front, top, and right side). Matplotlib only
(oblique projection drawn with 2-D polygons), so it runs in a browser kernel too.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.patches import Polygon

# Sizes of the drawn batch (in cells) and of the oblique projection of the depth (C) axis.
N_DRAWN, C_DRAWN, HW_HEIGHT, GROUPS = 6, 6, 4.0, 3
DEPTH_DX, DEPTH_DY = 0.55, 0.45
SHADE, EDGE, FACE = "#4a90d9", "#1f3f66", "#f4f4f4"

# Support set of one mean/variance per variant: ranges [start, stop) along N and C; H, W is always whole.
SUPPORT_SETS = {
    "BatchNorm": ((0, N_DRAWN), (0, 1)),
    "LayerNorm": ((0, 1), (0, C_DRAWN)),
    "InstanceNorm": ((0, 1), (0, 1)),
    "GroupNorm": ((0, 1), (0, C_DRAWN // GROUPS)),
    "RMSNorm": ((0, 1), (0, C_DRAWN)),  # LayerNorm's support set; only E[x^2] is computed on it (notebook 06)
}
DESCRIPTIONS = {
    "BatchNorm": "over N, H, W\nper channel",
    "LayerNorm": "over C, H, W\nper sample",
    "InstanceNorm": "over H, W\nper sample and channel",
    "GroupNorm": f"over C/G, H, W (G = {GROUPS}, bold lines)\nper sample and group",
    "RMSNorm": "over C, H, W per sample:\nonly E[x²], no mean",
}
FOUR = ("BatchNorm", "LayerNorm", "InstanceNorm", "GroupNorm")


def _project(n: float, c: float, h: float) -> tuple[float, float]:
    """Oblique projection: N to the right, C into the depth (up and right), H,W up."""
    return n + c * DEPTH_DX, h + c * DEPTH_DY


def _box_faces(n0, n1, c0, c1, h0, h1):
    """The three visible faces (front, top, right side) of a box, as lists of 2-D points."""
    p = _project
    front = [p(n0, c0, h0), p(n1, c0, h0), p(n1, c0, h1), p(n0, c0, h1)]
    top = [p(n0, c0, h1), p(n1, c0, h1), p(n1, c1, h1), p(n0, c1, h1)]
    side = [p(n1, c0, h0), p(n1, c1, h0), p(n1, c1, h1), p(n1, c0, h1)]
    return front, top, side


def _draw_cube(ax, title: str, n_range, c_range) -> None:
    for face in _box_faces(0, N_DRAWN, 0, C_DRAWN, 0, HW_HEIGHT):
        ax.add_patch(Polygon(face, closed=True, facecolor=FACE, edgecolor=EDGE, linewidth=1.2))
    grid = dict(color=EDGE, linewidth=0.4, alpha=0.6)
    for n in range(1, N_DRAWN):  # sample boundaries on the front and top faces
        ax.plot(*zip(_project(n, 0, 0), _project(n, 0, HW_HEIGHT), _project(n, C_DRAWN, HW_HEIGHT)), **grid)
    group_size = C_DRAWN // GROUPS if title == "GroupNorm" else C_DRAWN
    for c in range(1, C_DRAWN):  # channel boundaries on the top and side faces, group boundaries bold
        style = dict(grid, linewidth=1.6, alpha=1.0) if c % group_size == 0 else grid
        ax.plot(*zip(_project(0, c, HW_HEIGHT), _project(N_DRAWN, c, HW_HEIGHT), _project(N_DRAWN, c, 0)), **style)
    (n0, n1), (c0, c1) = n_range, c_range
    front, top, side = _box_faces(n0, n1, c0, c1, 0, HW_HEIGHT)
    visible = [(front, 1.0)] * (c0 == 0) + [(top, 0.8)] + [(side, 0.65)] * (n1 == N_DRAWN)  # the cube is opaque
    for face, shade in visible:
        color = tuple(np.array(to_rgb(SHADE)) * shade)
        ax.add_patch(Polygon(face, closed=True, facecolor=color, edgecolor=EDGE, linewidth=1.2))
    label = dict(fontsize=11, color="black")
    ax.text(*_project(N_DRAWN / 2, 0, -0.35), "N", ha="center", va="top", **label)
    ax.text(*_project(-0.35, 0, HW_HEIGHT / 2), "H, W", ha="right", va="center", rotation=90, **label)
    ax.text(*_project(N_DRAWN + 0.3, C_DRAWN / 2, 0), "C", ha="left", va="top", **label)
    ax.set_title(title, fontsize=13)
    ax.text(*_project(N_DRAWN / 2, 0, -1.1), DESCRIPTIONS[title], ha="center", va="top", fontsize=9, color="0.3")
    ax.set_xlim(-1.0, N_DRAWN + C_DRAWN * DEPTH_DX + 0.8)
    ax.set_ylim(-2.2, HW_HEIGHT + C_DRAWN * DEPTH_DY + 0.4)
    ax.set_aspect("equal")
    ax.axis("off")


def draw_support_sets(axes=None, variants=FOUR):
    """Draw one cube per variant (by default BatchNorm, LayerNorm, InstanceNorm, GroupNorm); return the figure.

    axes: one matplotlib Axes per variant to draw into, or None to make a new figure with one row of them.
    variants: names among SUPPORT_SETS, e.g. ("LayerNorm", "RMSNorm").
    The shaded cells share one mean and one variance (RMSNorm: one mean square); titles use the course's legend
    vocabulary.
    """
    unknown = [name for name in variants if name not in SUPPORT_SETS]
    if unknown:
        raise ValueError(f"draw_support_sets: unknown variants {unknown}; expected names among {list(SUPPORT_SETS)}")
    if axes is None:
        fig, axes = plt.subplots(1, len(variants), figsize=(3.25 * len(variants), 3.8))
    axes = np.ravel(axes)
    if axes.size != len(variants):
        raise ValueError(f"draw_support_sets needs {len(variants)} axes (one per variant), got {axes.size}")
    for ax, title in zip(axes, variants):
        _draw_cube(ax, title, *SUPPORT_SETS[title])
    fig = axes[0].figure
    if "RMSNorm" in variants:
        fig.suptitle("Support sets: shaded cells share one set of statistics (RMSNorm: one mean square)", fontsize=12)
    else:
        fig.suptitle("Support sets of E[x] and Var[x]: shaded cells share one mean and one variance", fontsize=12)
    return fig
