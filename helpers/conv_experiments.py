"""Seeded experiments of notebook 05, Part G: a small convolutional network on the 8x8 digits, and their plots.

The network is ``helpers.conv.make_convnet``: three 3x3 convolutions with 16 channels each (8x8, 4x4, 4x4 maps),
each followed by a normalization and a ReLU, then a head and a Linear layer to the 10 logits. It is trained by
``helpers.network.train`` (softmax cross-entropy, plain SGD) on the digits standardized with training statistics,
shaped as images (N, 1, 8, 8). One integer ``seed`` draws the weights and then the minibatch order.

Runners (each returns a dict keyed by the course's legend labels)::

    conv_batch_size_sweep(data, [32, 8, 2])   label -> training-mode loss and validation error per batch size
    conv_head_comparison(data)                head -> label -> final training loss and validation error

``modules`` (every runner takes it) is the namespace of normalization classes the networks use: the reference
(``helpers.normalization``, the default) or your own from ``helpers.own_modules.load_own_modules``.
"""
from __future__ import annotations

import numpy as np

from helpers.conv import make_convnet
from helpers.experiments import COLORS, evaluate_in_chunks, standardized_digits
from helpers.network import train

__all__ = ["CONV_VARIANTS", "digit_images", "build_convnet", "run_conv_training", "conv_batch_size_sweep",
           "conv_head_comparison", "values_per_statistic", "plot_conv_batch_sizes", "plot_head_comparison"]

# Legend label -> make_convnet's ``norm``.
CONV_VARIANTS = {"no norm": None, "BatchNorm": "batch", "BatchNorm per position": "batch_per_position",
                 "GroupNorm": "group", "InstanceNorm": "instance"}
CONV_COLORS = {**COLORS, "InstanceNorm": "C6", "BatchNorm per position": "C8"}
NUM_GROUPS = 4  # GroupNorm on 16 channels: 4 groups of 4 channels, each with all its positions


def digit_images(seed: int = 0):
    """``standardized_digits(seed)`` with the images as (N, 1, 8, 8): X_train (1258, 1, 8, 8), X_val (539, 1, 8, 8),
    y_train (1258,), y_val (539,). Each pixel is standardized with training statistics, as for the MLPs."""
    X_train, X_val, y_train, y_val = standardized_digits(seed)
    return X_train.reshape(-1, 1, 8, 8), X_val.reshape(-1, 1, 8, 8), y_train, y_val


def build_convnet(label: str, *, seed: int, head: str = "flatten", modules=None):
    """The network of Part G for the variant ``label`` (a key of CONV_VARIANTS), and the rng that drew it.

    head: 'flatten' or 'pool' (see make_convnet). Returns (model, rng); pass rng on to ``train``.
    """
    if label not in CONV_VARIANTS:
        raise ValueError(f"build_convnet: unknown variant {label!r}; expected one of {list(CONV_VARIANTS)}")
    rng = np.random.default_rng(seed)
    model = make_convnet(CONV_VARIANTS[label], rng=rng, head=head, num_groups=NUM_GROUPS, modules=modules)
    return model, rng


def run_conv_training(label: str, data, *, lr: float, epochs: float, batch_size: int = 32, seed: int = 0,
                      head: str = "flatten", modules=None) -> dict:
    """Train one variant for ``epochs`` passes over the training set; return its numbers.

    data: (X_train, X_val, y_train, y_val) from ``digit_images``.
    Returns {'steps', 'train_loss' (steps,) minibatch losses in training mode, 'minibatch_loss' (their mean over the
    last epoch), 'final_train_loss' and 'val_error' (%) in eval mode after training (inf and nan if it diverged),
    'diverged_at', 'model'}.
    """
    X_train, X_val, y_train, y_val = data
    model, rng = build_convnet(label, seed=seed, head=head, modules=modules)
    steps = int(round(epochs * len(X_train) / batch_size))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        history = train(model, X_train, y_train, lr=lr, batch_size=batch_size, steps=steps, rng=rng)
        final_loss, val_error = np.inf, np.nan
        if history["diverged_at"] is None:
            final_loss = evaluate_in_chunks(model, X_train, y_train)[0]
            val_error = 100 * (1 - evaluate_in_chunks(model, X_val, y_val)[1])
    last_epoch = history["train_loss"][-max(1, len(X_train) // batch_size):]
    return {"steps": steps, "train_loss": history["train_loss"], "minibatch_loss": float(np.mean(last_epoch)),
            "final_train_loss": float(final_loss), "val_error": float(val_error),
            "diverged_at": history["diverged_at"], "model": model}


def conv_batch_size_sweep(data, batch_sizes, *, labels=("BatchNorm", "BatchNorm per position"),
                          epochs: float = 2.0, base_lr: float = 0.1, seed: int = 0, modules=None) -> dict:
    """Wu & He's protocol on the conv net: the same epochs at every batch size, ``lr = base_lr * batch_size / 32``.

    Returns label -> {'batch_size': (B,), 'minibatch_loss': (B,) mean training-mode loss over the last epoch,
    'train_loss': (B,) eval-mode loss on the training set after training, 'val_error': (B,) in %}.
    """
    results = {}
    for label in labels:
        runs = [run_conv_training(label, data, lr=base_lr * batch_size / 32, epochs=epochs, batch_size=batch_size,
                                  seed=seed, modules=modules) for batch_size in batch_sizes]
        results[label] = {"batch_size": np.array(batch_sizes),
                          "minibatch_loss": np.array([run["minibatch_loss"] for run in runs]),
                          "train_loss": np.array([run["final_train_loss"] for run in runs]),
                          "val_error": np.array([run["val_error"] for run in runs])}
    return results


def conv_head_comparison(data, *, heads=("flatten", "pool"), labels=("no norm", "BatchNorm", "GroupNorm",
                                                                      "InstanceNorm"),
                         lr: float = 0.3, epochs: float = 3.0, batch_size: int = 32, seed: int = 0,
                         modules=None) -> dict:
    """Each variant with each head, the same lr, epochs and seed.

    Returns head -> label -> {'final_train_loss', 'val_error' (%), 'minibatch_loss'}.
    """
    return {head: {label: {key: run[key] for key in ("final_train_loss", "val_error", "minibatch_loss")}
                   for label in labels
                   for run in [run_conv_training(label, data, lr=lr, epochs=epochs, batch_size=batch_size,
                                                 seed=seed, head=head, modules=modules)]}
            for head in heads}


def values_per_statistic(shape: tuple[int, int, int, int], num_groups: int = NUM_GROUPS) -> dict:
    """How many values one mean and one variance average, per variant, for a feature map of ``shape`` (N, C, H, W).

    Returns label -> int: BatchNorm N*H*W, BatchNorm per position N, GroupNorm (C/G)*H*W, InstanceNorm H*W,
    LayerNorm C*H*W.
    """
    n, c, h, w = shape
    return {"BatchNorm": n * h * w, "BatchNorm per position": n, "GroupNorm": c // num_groups * h * w,
            "InstanceNorm": h * w, "LayerNorm": c * h * w}


# --------------------------------------------------------------------------------------------------- plots
def plot_conv_batch_sizes(axes, results: dict, mlp_results: dict | None = None):
    """Two panels versus batch size (log2 axis, largest on the left): the training-mode loss of the last epoch
    (left) and the validation error in % (right), one colour per variant.

    mlp_results: optionally ``batch_size_sweep``'s results of Part E; its BatchNorm is drawn dotted in grey
    ("BatchNorm, MLP (Part E)") at the batch sizes both sweeps share.
    """
    for label, result in results.items():
        color = CONV_COLORS.get(label)
        axes[0].plot(result["batch_size"], result["minibatch_loss"], "o-", color=color, label=label)
        axes[1].plot(result["batch_size"], result["val_error"], "o-", color=color, label=label)
    sizes = next(iter(results.values()))["batch_size"]
    if mlp_results is not None and "BatchNorm" in mlp_results:
        mlp = mlp_results["BatchNorm"]
        shared = np.isin(mlp["batch_size"], sizes)
        for ax, key in ((axes[0], "minibatch_loss"), (axes[1], "val_error")):
            ax.plot(mlp["batch_size"][shared], mlp[key][shared], "s:", color="0.45", label="BatchNorm, MLP (Part E)")
    axes[0].axhline(np.log(10), color="0.5", ls=":", lw=1, label="chance level, ln 10")
    axes[0].set_ylim(0, 2.6)
    for ax, ylabel in zip(axes, ("training-mode loss, last epoch (nats)", "validation error (%)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.set_xticks([], minor=True)
        ax.set_xlim(max(sizes) * 1.3, min(sizes) / 1.3)
        ax.set(xlabel="batch size (images per batch)", ylabel=ylabel)
        ax.legend(fontsize=8)
    return axes


def plot_head_comparison(ax, results: dict):
    """Validation error per variant (groups of bars), one bar per head, with the value written on each bar.

    results: from ``conv_head_comparison``.
    """
    from matplotlib.patches import Patch

    heads = list(results)
    labels = list(results[heads[0]])
    width = 0.8 / len(heads)
    hatches = ("", "//", "..")
    names = {"flatten": "head: flatten (every position)", "pool": "head: global average pool"}
    handles = []
    for k, head in enumerate(heads):
        errors = [results[head][label]["val_error"] for label in labels]
        x = np.arange(len(labels)) + (k - (len(heads) - 1) / 2) * width
        bars = ax.bar(x, errors, width, color=[CONV_COLORS.get(label) for label in labels], hatch=hatches[k % 3],
                      edgecolor="k")
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
        handles.append(Patch(facecolor="white", edgecolor="k", hatch=hatches[k % 3], label=names.get(head, head)))
    ax.set_xticks(np.arange(len(labels)), labels)
    chance = ax.axhline(90, color="0.5", ls=":", lw=1, label="chance level, 90 %")
    ax.set(xlabel="normalization", ylabel="validation error (%)", ylim=(0, 100))
    ax.legend(handles=handles + [chance], fontsize=8, loc="upper left")
    return ax
