"""Seeded training experiments of notebook 05 and their plots: normalized versus plain deep MLPs on UCI digits.

Every run is a ``helpers.network.make_mlp`` trained by ``helpers.network.train`` (softmax cross-entropy, plain SGD)
on the standardized digits; one integer ``seed`` draws the weights and then the minibatch order, so a run gives
the same numbers every time. The data split itself is fixed (``digits_split(seed=0)``).

Runners (each returns a dict keyed by the course's legend labels)::

    compare_norms(data, lr=0.1, steps=300)        label -> run: loss curve, final numbers, per-layer statistics
    weight_scale_sweep(data, scales, lr, steps)   label -> final training loss per initial scale (times He)
    lr_sweep(data, lrs, steps=150)                label -> final training loss per lr (inf: diverged); with
                                                  with_dead_units=True also the dead units per layer
    batch_size_sweep(data, [32, 16, 8, 4, 2])     label -> validation loss/error per batch size, training-mode
                                                  loss, and the error after precise BN

the diagnostics ``dead_units`` and ``recompute_batchnorm_statistics``, and the plots of their results
(``plot_training_curves``, ``plot_lr_sweep``, ``plot_dead_units``, ``plot_batch_size_sweep``,
``plot_layer_statistics`` for the per-layer statistics of ``compare_norms(..., record_stats=True)``), each drawing
on the axes it is given.
"""
from __future__ import annotations

import numpy as np
from matplotlib import colormaps

from helpers.data import digits_split
from helpers.network import accuracy, make_mlp, softmax_cross_entropy, train

__all__ = [
    "VARIANTS", "DEPTH", "WIDTH", "NUM_GROUPS", "standardized_digits", "build_model", "evaluate_in_chunks",
    "run_training", "compare_norms", "lr_sweep", "dead_units", "recompute_batchnorm_statistics", "largest_good_lr",
    "weight_scale_sweep", "batch_size_sweep",
    "plot_training_curves", "plot_lr_sweep", "plot_batch_size_sweep", "plot_layer_statistics",
]

# The course's legend vocabulary -> make_mlp's ``norm`` argument.
VARIANTS = {"no norm": None, "BatchNorm": "batch", "LayerNorm": "layer", "GroupNorm": "group"}
COLORS = {"no norm": "C0", "BatchNorm": "C1", "LayerNorm": "C2", "GroupNorm": "C3",
          "pre-norm": "C4", "post-norm": "C5"}  # the last two: residual networks, notebook 06
DEPTH = 10        # hidden layers of the "deep" MLP
WIDTH = 64        # units per hidden layer
NUM_GROUPS = 4    # GroupNorm groups: 4 groups of 16 units (a group needs enough values for its statistics)
GOOD_LOSS = 0.5   # a run whose final training loss is below this has learned (chance level is ln 10 = 2.30)


def standardized_digits(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """UCI digits split by ``digits_split(seed)``, each pixel standardized with *training* statistics.

    Returns X_train (1258, 64), X_val (539, 64) float64 and y_train (1258,), y_val (539,) int64.
    Pixels that are constant on the training part (std 0) are only centred (divided by 1), so no NaN appears.
    """
    X_train, X_val, y_train, y_val = digits_split(seed=seed)
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (X_train - mean) / std, (X_val - mean) / std, y_train, y_val


def build_model(label: str, *, seed: int, depth: int = DEPTH, width: int = WIDTH,
                num_groups: int = NUM_GROUPS, weight_scale: float = 1.0) -> tuple:
    """An MLP 64 -> width x depth -> 10 for the variant ``label`` (a key of VARIANTS), and its rng.

    weight_scale: every weight matrix is He's draw times this factor (1: He; 0.5: half its std), the same draw
    for every factor, so runs that differ only in the scale start from proportional weights.
    The rng has drawn the weights; pass it on to ``train`` so that the minibatch order follows from ``seed`` too.
    Returns (model, rng).
    """
    if label not in VARIANTS:
        raise ValueError(f"build_model: unknown variant {label!r}; expected one of {list(VARIANTS)}")
    rng = np.random.default_rng(seed)
    model = make_mlp([64] + [width] * depth + [10], VARIANTS[label], rng=rng, num_groups=num_groups)
    if weight_scale != 1.0:
        for module, name in model.parameters():
            if name == "W":
                module.params[name] *= weight_scale
    return model, rng


def evaluate_in_chunks(model, X: np.ndarray, y: np.ndarray, chunk: int = 128) -> tuple[float, float]:
    """Loss and accuracy of ``model`` on (X, y) in eval mode, ``chunk`` rows at a time; restores the mode.

    In eval mode every variant treats each sample on its own (BatchNorm uses its running statistics), so this
    equals one forward pass over all of X. Small products stay on one core, which keeps the timing steady on a
    busy machine. X: (N, D), y: (N,) -> (loss, accuracy).
    """
    was_training = model.training
    model.eval()
    logits = np.concatenate([model.forward(X[start:start + chunk]) for start in range(0, len(X), chunk)])
    model.train(was_training)
    loss, _ = softmax_cross_entropy(logits, y)
    return loss, accuracy(logits, y)


def run_training(label: str, data, *, lr: float, steps: int, batch_size: int = 32, seed: int = 0,
                 depth: int = DEPTH, width: int = WIDTH, num_groups: int = NUM_GROUPS, record_every: int | None = None,
                 record_stats: bool = False, weight_scale: float = 1.0) -> dict:
    """Train one variant on ``data`` = (X_train, X_val, y_train, y_val) with ``helpers.network.train``.

    weight_scale: multiplies He's initial weights (see ``build_model``).
    record_every=None: one call of ``train`` for all ``steps``. record_every=k: ``train`` is called for k steps at a
    time (each call shuffles the training set afresh), and after each call the loss on the whole training set is
    measured in eval mode; with record_stats=True the per-layer statistics are taken at the first step of each call.
    Returns a dict:
        'train_loss': (steps,) minibatch loss of every step (nan after a divergence); 'diverged_at': step or None;
        'curve_step', 'curve_loss': (R,) steps 0, k, 2k, ..., steps and the training-set loss there (record_every);
        'stats_step', 'act_std' (S, L), 'act_names', 'update_ratio' (S, M), 'update_names' (record_stats);
        'final_train_loss', 'final_train_acc', 'final_val_loss', 'final_val_acc': in eval mode after the last step,
            inf (loss) and nan (accuracy) when the run diverged;
        'model': the trained model.
    """
    X_train, X_val, y_train, y_val = data
    model, rng = build_model(label, seed=seed, depth=depth, width=width, num_groups=num_groups,
                             weight_scale=weight_scale)
    chunk = steps if record_every is None else record_every
    result: dict = {"train_loss": np.full(steps, np.nan), "diverged_at": None, "curve_step": [0], "curve_loss": [],
                    "stats_step": [], "act_std": [], "update_ratio": []}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if record_every is not None:
            result["curve_loss"].append(evaluate_in_chunks(model, X_train, y_train)[0])
        done = 0
        while done < steps:
            n = min(chunk, steps - done)
            history = train(model, X_train, y_train, lr=lr, batch_size=batch_size, steps=n, rng=rng,
                            record_every=n, record_stats=record_stats)
            result["train_loss"][done:done + n] = history["train_loss"]
            if record_stats:
                result["stats_step"].append(done)
                result["act_std"].append(history["act_std"][0])
                result["update_ratio"].append(history["update_ratio"][0])
                result["act_names"], result["update_names"] = history["act_names"], history["update_names"]
            if history["diverged_at"] is not None:
                result["diverged_at"] = done + history["diverged_at"]
                break
            done += n
            if record_every is not None:
                result["curve_step"].append(done)
                result["curve_loss"].append(evaluate_in_chunks(model, X_train, y_train)[0])
        final = (np.inf, np.nan, np.inf, np.nan)
        if result["diverged_at"] is None:
            train_loss, train_acc = evaluate_in_chunks(model, X_train, y_train)
            val_loss, val_acc = evaluate_in_chunks(model, X_val, y_val)
            if np.isfinite(train_loss) and np.isfinite(val_loss):
                final = (train_loss, train_acc, val_loss, val_acc)
    result["final_train_loss"], result["final_train_acc"], result["final_val_loss"], result["final_val_acc"] = final
    for key in ("curve_step", "curve_loss", "stats_step", "act_std", "update_ratio"):
        result[key] = np.array(result[key], dtype=int if key.endswith("step") else float)
    result["curve_step"] = result["curve_step"][:len(result["curve_loss"])]
    result["model"] = model
    return result


def compare_norms(data, *, lr: float, steps: int, seed: int = 0, labels=tuple(VARIANTS), record_every: int = 20,
                  **kwargs) -> dict:
    """One run per variant with the same lr, steps and seed: label -> result of ``run_training``."""
    return {label: run_training(label, data, lr=lr, steps=steps, seed=seed, record_every=record_every, **kwargs)
            for label in labels}


def lr_sweep(data, lrs, *, steps: int, seed: int = 0, labels=tuple(VARIANTS), with_dead_units: bool = False,
             **kwargs):
    """Final training loss (eval mode, whole training set) per learning rate and variant.

    lrs: (R,) learning rates. Returns label -> (R,) float array; inf where the run diverged.
    with_dead_units=True: returns (losses, dead), dead: label -> (R, L) array, the share of each hidden layer's
    units that are dead after training (``dead_units`` on the training set; nan where the run diverged).
    """
    losses, dead = {}, {}
    for label in labels:
        runs = [run_training(label, data, lr=lr, steps=steps, seed=seed, **kwargs) for lr in lrs]
        losses[label] = np.array([run["final_train_loss"] for run in runs])
        if with_dead_units:
            depth = sum(type(layer).__name__ == "ReLU" for layer in runs[0]["model"].layers)
            dead[label] = np.array([dead_units(run["model"], data[0]) if run["diverged_at"] is None
                                    else np.full(depth, np.nan) for run in runs])
    return (losses, dead) if with_dead_units else losses


def dead_units(model, X: np.ndarray) -> np.ndarray:
    """Share of the units of every ReLU layer whose output is 0 for every row of X, in eval mode (mode restored).

    A dead unit passes no gradient to anything before it, so it stays dead: a layer with all units dead cuts the
    network in two. X: (N, D) -> (L,) array, one entry per ReLU layer, in [0, 1].
    """
    was_training = model.training
    model.eval()
    shares, h = [], X
    for layer in model.layers:
        h = layer.forward(h)
        if type(layer).__name__ == "ReLU":
            shares.append(float(np.mean(np.all(h <= 0, axis=0))))
    model.train(was_training)
    return np.array(shares)


def recompute_batchnorm_statistics(model, X: np.ndarray) -> None:
    """Precise BatchNorm: replace every BatchNorm's running statistics by the exact ones of the training set X.

    Layer by layer in eval mode, each BatchNorm gets the mean and the unbiased variance of its input over all of X,
    computed with the earlier layers already corrected; the weights stay as they are. This removes the noise of the
    running averages (the idea of "precise BN", Wu & Johnson 2021, *Rethinking "Batch" in BatchNorm*). X: (N, D).
    """
    from helpers.normalization import BatchNorm

    was_training = model.training
    model.eval()
    h = X
    for layer in model.layers:
        if isinstance(layer, BatchNorm):
            layer.running_mean = h.mean(axis=0)
            layer.running_var = h.var(axis=0, ddof=1)
        h = layer.forward(h)
    model.train(was_training)


def weight_scale_sweep(data, scales, *, lr: float, steps: int, seed: int = 0, labels=("no norm", "BatchNorm"),
                       **kwargs) -> dict:
    """Final training loss (eval mode) per initial weight scale (times He's std) and variant.

    scales: (S,) factors. Returns label -> (S,) float array; inf where the run diverged.
    """
    return {label: np.array([run_training(label, data, lr=lr, steps=steps, seed=seed, weight_scale=scale,
                                          **kwargs)["final_train_loss"] for scale in scales])
            for label in labels}


def largest_good_lr(lrs, final_losses, good_loss: float = GOOD_LOSS) -> float:
    """The largest learning rate of the sweep whose final training loss is below ``good_loss`` (nan if none)."""
    lrs = np.asarray(lrs, dtype=float)
    good = np.asarray(final_losses) < good_loss
    return float(lrs[good].max()) if good.any() else float("nan")


def batch_size_sweep(data, batch_sizes, *, epochs: float = 2.0, base_lr: float = 0.1, seed: int = 0,
                     labels=("BatchNorm", "GroupNorm"), depth: int = 4, **kwargs) -> dict:
    """Train each variant at each batch size for the same number of epochs, Wu & He's protocol.

    The learning rate scales linearly with the batch size, ``lr = base_lr * batch_size / 32`` (Goyal et al. 2017,
    as Wu & He 2018 do), so every run sees the same samples the same number of times.
    Returns label -> {'batch_size': (B,), 'val_loss': (B,), 'val_error': (B,) in %, 'train_loss': (B,),
    'minibatch_loss': (B,) mean train-mode minibatch loss over the last epoch, 'val_loss_precise',
    'val_error_precise': (B,) the same network evaluated after ``recompute_batchnorm_statistics`` on the training
    set (equal to val_loss and val_error for a network without BatchNorm)}.
    """
    X_train = data[0]
    results = {}
    for label in labels:
        rows = []
        for batch_size in batch_sizes:
            steps = int(round(epochs * len(X_train) / batch_size))
            history = run_training(label, data, lr=base_lr * batch_size / 32, steps=steps, batch_size=batch_size,
                                   seed=seed, depth=depth, **kwargs)
            last_epoch = history["train_loss"][-max(1, len(X_train) // batch_size):]
            precise = (np.inf, np.nan)
            if history["diverged_at"] is None:
                recompute_batchnorm_statistics(history["model"], X_train)
                precise = evaluate_in_chunks(history["model"], data[1], data[3])
            rows.append((history["final_val_loss"], 100 * (1 - history["final_val_acc"]),
                         history["final_train_loss"], float(np.mean(last_epoch)), precise[0], 100 * (1 - precise[1])))
        val_loss, val_error, train_loss, minibatch_loss, val_loss_precise, val_error_precise = np.array(rows).T
        results[label] = {"batch_size": np.array(batch_sizes), "val_loss": val_loss, "val_error": val_error,
                          "train_loss": train_loss, "minibatch_loss": minibatch_loss,
                          "val_loss_precise": val_loss_precise, "val_error_precise": val_error_precise}
    return results


# --------------------------------------------------------------------------------------------------- plots
def plot_training_curves(ax, runs: dict):
    """Loss on the whole training set (eval mode) over the training steps, one line per variant, log y-axis.

    runs: label -> result of ``run_training`` with ``record_every`` set. A diverged run's line ends where it diverged.
    """
    for label, run in runs.items():
        ax.semilogy(run["curve_step"], run["curve_loss"], color=COLORS.get(label), label=label)
    ax.axhline(np.log(10), color="0.5", ls=":", lw=1, label="chance level, ln 10")
    ax.set(xlabel="training step", ylabel="training loss (whole training set)")
    ax.legend(fontsize=8)
    return ax


def plot_lr_sweep(ax, lrs, final_losses: dict, good_loss: float = GOOD_LOSS, cap: float = 10.0):
    """Final training loss versus learning rate (log-log), one line per variant; diverged runs as x at ``cap``."""
    lrs = np.asarray(lrs, dtype=float)
    for label, losses in final_losses.items():
        losses = np.asarray(losses, dtype=float)
        diverged = ~np.isfinite(losses) | (losses > cap)
        shown = np.where(diverged, np.nan, losses)
        # LayerNorm's larger squares stay visible where GroupNorm's dashed line and circles lie on them
        marker, size, style = ("s", 9, "-") if label == "LayerNorm" else ("o", 5, "--" if label == "GroupNorm" else "-")
        ax.loglog(lrs, shown, marker=marker, ms=size, ls=style, color=COLORS.get(label), label=label)
        if diverged.any():
            ax.loglog(lrs[diverged], np.full(diverged.sum(), cap), "x", ms=9, mew=2, color=COLORS.get(label))
    ax.axhline(np.log(10), color="0.5", ls=":", lw=1, label="chance level, ln 10")
    ax.axhline(good_loss, color="k", ls="--", lw=1, label=f"loss {good_loss}: has learned")
    ax.set(xlabel="learning rate η", ylabel="training loss after the last step (x: diverged)")
    ax.legend(fontsize=8)
    return ax


def plot_batch_size_sweep(axes, results: dict):
    """Two panels versus batch size, one colour per variant: losses (left) and validation error in % (right).

    Left: the mean training-mode minibatch loss of the last epoch (dashed: what the network sees while it trains)
    and the validation loss in eval mode (solid). Right: the validation error in eval mode (solid) and, for
    BatchNorm, after recomputing its statistics on the training set (dotted, "precise BN").
    axes: two Axes. results: from ``batch_size_sweep``. Batch sizes on a log2 axis, largest on the left as in
    Wu & He 2018, Figure 1.
    """
    for label, result in results.items():
        color = COLORS.get(label)
        axes[0].plot(result["batch_size"], result["minibatch_loss"], "s--", color=color,
                     label=f"{label}, training mode (minibatches)")
        axes[0].plot(result["batch_size"], result["val_loss"], "o-", color=color, label=f"{label}, eval mode (validation)")
        axes[1].plot(result["batch_size"], result["val_error"], "o-", color=color, label=label)
        if label == "BatchNorm" and "val_error_precise" in result:
            axes[1].plot(result["batch_size"], result["val_error_precise"], "^:", color=color,
                         label=f"{label}, statistics recomputed (precise BN)")
    axes[0].axhline(np.log(10), color="k", ls=":", lw=1.2, label="chance level, ln 10")
    axes[0].set_ylim(0, max(axes[0].get_ylim()[1], 1.1 * np.log(10)))   # the chance line inside the frame
    for ax, ylabel in zip(axes, ("loss (cross-entropy, nats)", "validation error (%)")):
        sizes = next(iter(results.values()))["batch_size"]
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.set_xlim(max(sizes) * 1.3, min(sizes) / 1.3)
        ax.set(xlabel="batch size (samples per batch)", ylabel=ylabel)
        ax.legend(fontsize=8, loc="center left" if ax is axes[0] else "best")
    return axes


def plot_dead_units(ax, dead_by_label: dict, title_lr: float | None = None):
    """Share of dead units (output 0 on every training sample) per hidden layer, one line per variant.

    dead_by_label: label -> (L,) shares from ``dead_units``; a variant whose run diverged (nan) is left out.
    """
    for label, shares in dead_by_label.items():
        shares = np.asarray(shares, dtype=float)
        if np.all(np.isfinite(shares)):
            ax.plot(np.arange(1, shares.size + 1), 100 * shares, "o-", color=COLORS.get(label), label=label)
    ax.set(xlabel="hidden layer", ylabel="dead units (% of the layer's 64)", ylim=(-5, 105))
    ax.legend(fontsize=8)
    return ax


def plot_layer_statistics(axes, histories: dict, target_ratio: float = 1e-3):
    """A 2 x k grid (k = number of runs): activation std per ReLU layer (top) and update-to-data ratio per
    weight matrix (bottom) over the training steps, one column per run, layers coloured from light (first) to
    dark (last), with a colour bar that gives the layer. A dashed line marks Karpathy's target ratio of about 1e-3.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize

    for column, (label, history) in enumerate(histories.items()):
        top, bottom = axes[0][column], axes[1][column]
        steps = history["stats_step"]
        for key, ax, names in (("act_std", top, history["act_names"]),
                               ("update_ratio", bottom, history["update_names"])):
            colors = colormaps["viridis"](np.linspace(0.9, 0.0, len(names)))
            for j, name in enumerate(names):
                show = j in (0, len(names) - 1)
                ax.plot(steps, history[key][:, j], color=colors[j], lw=1.2, label=name if show else None)
        bottom.set_yscale("log")
        bottom.axhline(target_ratio, color="k", ls="--", lw=1, label="target ≈ 1e-3")
        top.set(title=f"{label}: activation std per layer", xlabel="training step",
                ylabel="std of the ReLU output (dimensionless)")
        bottom.set(title=f"{label}: update-to-data ratio per layer", xlabel="training step",
                   ylabel="std(η · dW) / std(W) (ratio)")
        top.legend(fontsize=8)
        bottom.legend(fontsize=8)
        for ax, names in ((top, history["act_names"]), (bottom, history["update_names"])):
            layer_colors = ListedColormap(colormaps["viridis"](np.linspace(0.9, 0.0, len(names))))
            mappable = ScalarMappable(Normalize(0.5, len(names) + 0.5), layer_colors)
            bar = ax.figure.colorbar(mappable, ax=ax, pad=0.01, ticks=range(1, len(names) + 1))
            bar.set_label("layer" if ax is top else "weight matrix (Linear layer)")
            bar.ax.tick_params(labelsize=7)
    return axes
