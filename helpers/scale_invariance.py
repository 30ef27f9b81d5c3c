"""Scale invariance, the effective learning rate, RMSNorm and pre-/post-norm residual networks (notebook 06).

A weight vector that feeds a normalization is *scale invariant*: ``L(a w) = L(w)`` for every ``a > 0``. Hence its
gradient is orthogonal to it and shrinks like ``1 / a`` (Ioffe & Szegedy 2015, §3.3; Salimans & Kingma 2016;
van Laarhoven 2017). Plain SGD therefore makes ``||w||`` grow, the effective rate ``eta / ||w||^2`` falls by itself,
and with weight decay ``lambda`` every such layer settles at the angular update ``arccos(1 - eta * lambda)``,
about ``sqrt(2 eta lambda)`` per step (Wan et al. 2021, "spherical motion dynamics").

Reference functions (shapes in their docstrings)::

    normalized_linear_backward(x, W, dout)      dW of BatchNorm(x @ W), no affine
    effective_learning_rate(eta, w)             eta / ||w||^2
    equilibrium_angular_update(eta, lam)        arccos(1 - eta * lam)
    angular_update(w_before, w_after)           the angle between two weight arrays, in radians
    rms_norm_forward / rms_norm_backward        RMSNorm (Zhang & Sennrich 2019), RMSNorm the module
    residual_stream(x, blocks, placement)       the states of a pre-norm or post-norm residual stream

Modules and experiments: ``ResidualBlock`` and ``make_residual_mlp`` (trainable pre-/post-norm networks),
``train_with_weight_decay`` (SGD with weight decay, recording every hidden layer's norm and angular update),
``stream_statistics`` (stream std and gradient norms per block at initialization), ``residual_lr_sweep``,
``gradient_predictiveness`` (Santurkar et al. 2018), and the plots of their results.
"""
from __future__ import annotations

import numpy as np

from helpers.module import Module
from helpers.experiments import build_model
from helpers.network import Linear, ReLU, Sequential, evaluate, iterate_minibatches, softmax_cross_entropy
from helpers.normalization import EPS, LayerNorm, layer_norm_forward

__all__ = [
    "normalized_linear_backward", "effective_learning_rate", "equilibrium_angular_update", "angular_update",
    "rms_norm_forward", "rms_norm_backward", "RMSNorm", "PLACEMENTS", "residual_stream", "init_residual_blocks",
    "ResidualBlock", "make_residual_mlp", "train_with_weight_decay", "spherical_motion", "moving_rms",
    "stream_statistics", "residual_lr_sweep", "gradient_predictiveness", "loss_under_rescaling",
    "plot_gradient_scaling", "plot_spherical_motion", "plot_stream_statistics", "plot_gradient_predictiveness",
]

PLACEMENTS = ("pre", "post")
LABELS = {"pre": "pre-norm", "post": "post-norm"}
COLORS = {"pre-norm": "C4", "post-norm": "C5", "no norm": "C0", "BatchNorm": "C1"}  # as helpers.experiments


# ------------------------------------------------------------------------------------------- scale invariance
def normalized_linear_backward(x: np.ndarray, W: np.ndarray, dout: np.ndarray, eps: float = EPS) -> np.ndarray:
    """Gradient with respect to W of ``sum(dout * BN(x @ W))``, BatchNorm over the batch without gamma and beta.

    x: (N, D_in); W: (D_in, D_out); dout: (N, D_out). Returns dW: (D_in, D_out).
    With z = x @ W, z_hat = (z - mean_N z) / s, s = sqrt(var_N z + eps):
    dz = (dout - mean_N(dout) - z_hat * mean_N(dout * z_hat)) / s and dW = x.T @ dz.
    """
    z = x @ W
    mean = z.mean(axis=0, keepdims=True)
    s = np.sqrt(((z - mean) ** 2).mean(axis=0, keepdims=True) + eps)
    z_hat = (z - mean) / s
    dz = (dout - dout.mean(axis=0, keepdims=True) - z_hat * (dout * z_hat).mean(axis=0, keepdims=True)) / s
    return x.T @ dz


def effective_learning_rate(eta: float, w: np.ndarray) -> float:
    """The step size on the unit sphere of a scale-invariant weight array w (any shape): ``eta / ||w||^2``."""
    return float(eta / np.sum(np.asarray(w, dtype=float) ** 2))


def equilibrium_angular_update(eta: float, weight_decay: float) -> float:
    """The angle (radians) between w_t and w_{t+1} once SGD with weight decay has reached ``||w_{t+1}|| = ||w_t||``.

    w_{t+1} = (1 - eta * weight_decay) w_t - eta g_t with g_t orthogonal to w_t, so
    cos(angle) = (1 - eta * weight_decay) ||w_t|| / ||w_{t+1}|| = 1 - eta * weight_decay; about sqrt(2 eta lambda).
    """
    return float(np.arccos(1.0 - eta * weight_decay))


def angular_update(w_before: np.ndarray, w_after: np.ndarray) -> float:
    """The angle in radians between two weight arrays of the same shape, each seen as one flat vector."""
    a = np.ravel(w_before).astype(float)
    b = np.ravel(w_after).astype(float)
    u, v = a / np.linalg.norm(a), b / np.linalg.norm(b)
    # 2 atan2(|u - v|, |u + v|): exact for tiny angles, where arccos of a rounded cosine is off by about 1e-8
    return float(2.0 * np.arctan2(np.linalg.norm(u - v), np.linalg.norm(u + v)))


# ---------------------------------------------------------------------------------------------------- RMSNorm
def rms_norm_forward(x: np.ndarray, gamma: np.ndarray | None, eps: float = EPS) -> tuple[np.ndarray, tuple]:
    """RMSNorm (Zhang & Sennrich 2019): LayerNorm's support set, operation 1 without the mean.

    x: (N, C) or (N, C, H, W); gamma: x.shape[1:] or None. rms = sqrt(mean(x^2) + eps) over all axes but N,
    x_hat = x / rms, out = gamma * x_hat. Returns out (x's shape and dtype) and the cache (x_hat, rms, gamma).
    """
    axes = tuple(range(1, x.ndim))
    rms = np.sqrt((x * x).mean(axis=axes, keepdims=True) + eps)
    x_hat = x / rms
    out = x_hat if gamma is None else x_hat * np.asarray(gamma).astype(x.dtype, copy=False)
    return out, (x_hat, rms, gamma)


def rms_norm_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray | None]:
    """Gradients of ``rms_norm_forward``: (dx, dgamma); dgamma has gamma's shape (None without gamma).

    dx_hat = gamma * dout; dx = (dx_hat - x_hat * mean(dx_hat * x_hat)) / rms, means over all axes but N;
    dgamma = sum over N of dout * x_hat.
    """
    x_hat, rms, gamma = cache
    axes = tuple(range(1, x_hat.ndim))
    dx_hat = dout if gamma is None else dout * np.asarray(gamma).astype(dout.dtype, copy=False)
    dx = (dx_hat - x_hat * (dx_hat * x_hat).mean(axis=axes, keepdims=True)) / rms
    dgamma = None if gamma is None else (dout * x_hat).sum(axis=0).astype(np.asarray(gamma).dtype, copy=False)
    return dx, dgamma


class RMSNorm(Module):
    """RMSNorm over all axes but N, like torch.nn.RMSNorm(normalized_shape); gamma starts at 1, no beta."""

    def __init__(self, normalized_shape, eps: float = EPS, elementwise_affine: bool = True) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        if elementwise_affine:
            self.params = {"gamma": np.ones(shape)}
        self.zero_grad()
        self._cache = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.shape[1:] != self.normalized_shape:
            raise ValueError(f"RMSNorm: input shape {x.shape} does not match normalized_shape {self.normalized_shape}")
        out, self._cache = rms_norm_forward(x, self.params.get("gamma"), self.eps)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError("RMSNorm.backward called before forward")
        dx, dgamma = rms_norm_backward(dout, self._cache)
        self.grads = {"gamma": dgamma} if self.params else {}
        return dx


# ------------------------------------------------------------------------------------- pre- and post-norm
def _layer_norm(h: np.ndarray, eps: float) -> np.ndarray:
    return layer_norm_forward(h, None, None, eps)[0]


def residual_stream(x: np.ndarray, blocks, placement: str, eps: float = EPS) -> np.ndarray:
    """The states x_0 = x, x_1, ..., x_L of a residual stream, LayerNorm without gamma and beta as Norm.

    x: (N, D); blocks: L pairs (W1 (D, H), W2 (H, D)), the branch F(h) = relu(h @ W1) @ W2;
    placement: 'pre' (x_{l+1} = x_l + F(Norm(x_l)), Xiong et al. 2020) or 'post' (x_{l+1} = Norm(x_l + F(x_l)),
    the original Transformer's). Returns (L + 1, N, D).
    """
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}: expected one of {PLACEMENTS}")
    states = [x]
    for W1, W2 in blocks:
        branch = (lambda h: np.maximum(h @ W1, 0) @ W2)
        x = x + branch(_layer_norm(x, eps)) if placement == "pre" else _layer_norm(x + branch(x), eps)
        states.append(x)
    return np.stack(states)


def init_residual_blocks(depth: int, width: int, hidden: int, rng: np.random.Generator) -> list:
    """``depth`` pairs (W1, W2): W1 (width, hidden) with He std sqrt(2 / width), W2 (hidden, width) with std
    sqrt(1 / hidden), so that a branch fed unit-variance features outputs unit variance (notebook 03's law)."""
    return [(rng.standard_normal((width, hidden)) * np.sqrt(2.0 / width),
             rng.standard_normal((hidden, width)) * np.sqrt(1.0 / hidden)) for _ in range(depth)]


class ResidualBlock(Module):
    """One residual block with a two-layer branch F = Linear -> ReLU -> Linear and a LayerNorm.

    'pre': out = x + F(LN(x)); 'post': out = LN(x + F(x)). x: (N, width) -> out: (N, width).
    W1: He init; W2: std sqrt(1 / hidden), so that the branch keeps the variance of its unit-variance input.
    """

    def __init__(self, width: int, hidden: int, placement: str, rng: np.random.Generator) -> None:
        super().__init__()
        if placement not in PLACEMENTS:
            raise ValueError(f"unknown placement {placement!r}: expected one of {PLACEMENTS}")
        self.placement = placement
        self.norm = LayerNorm(width)
        self.fc1 = Linear(width, hidden, rng)
        self.relu = ReLU()
        self.fc2 = Linear(hidden, width, rng, weight_std=np.sqrt(1.0 / hidden))
        self.children = [self.norm, self.fc1, self.fc2]

    def _branch(self, h):
        return self.fc2.forward(self.relu.forward(self.fc1.forward(h)))

    def _branch_backward(self, d):
        return self.fc1.backward(self.relu.backward(self.fc2.backward(d)))

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.placement == "pre":
            return x + self._branch(self.norm.forward(x))
        return self.norm.forward(x + self._branch(x))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self.placement == "pre":
            return dout + self.norm.backward(self._branch_backward(dout))
        dsum = self.norm.backward(dout)
        return dsum + self._branch_backward(dsum)

    def parameters(self):
        for child in self.children:
            for name in child.params:
                yield child, name

    def train(self, mode: bool = True) -> "ResidualBlock":
        self.training = mode
        for child in self.children:
            child.train(mode)
        return self

    def zero_grad(self) -> None:
        for child in self.children:
            child.zero_grad()

    def __repr__(self) -> str:
        return f"ResidualBlock({self.fc1.n_in}, hidden={self.fc1.n_out}, {self.placement!r})"


def make_residual_mlp(placement: str, *, depth: int, width: int = 64, hidden: int | None = None,
                      n_in: int = 64, n_classes: int = 10, rng: np.random.Generator) -> Sequential:
    """Linear(n_in, width) -> ``depth`` ResidualBlocks -> [LayerNorm, for 'pre'] -> Linear(width, n_classes).

    The input layer has LeCun std sqrt(1 / n_in), so standardized inputs give a stream of variance about 1.
    A pre-norm stream is not normalized, so a final LayerNorm comes before the classifier (as in pre-norm
    Transformers); a post-norm stream already leaves its last block normalized.
    """
    hidden = 2 * width if hidden is None else hidden
    layers: list[Module] = [Linear(n_in, width, rng, weight_std=np.sqrt(1.0 / n_in))]
    layers += [ResidualBlock(width, hidden, placement, rng) for _ in range(depth)]
    if placement == "pre":
        layers.append(LayerNorm(width))
    layers.append(Linear(width, n_classes, rng, weight_std=np.sqrt(1.0 / width)))
    return Sequential(*layers)


# ------------------------------------------------------------------------------- training with weight decay
def train_with_weight_decay(model: Sequential, X: np.ndarray, y: np.ndarray, *, lr: float, weight_decay: float,
                            steps: int, batch_size: int, rng: np.random.Generator) -> dict:
    """SGD with weight decay on every weight matrix, ``W <- W - lr * (dW + weight_decay * W)``; plain SGD elsewhere.

    X: (N, D), y: (N,). Minibatches from ``iterate_minibatches(N, batch_size, rng)``, epoch after epoch; train mode.
    Returns 'names': the M labels of the Linear layers ('Linear 1', ...); 'norm': (steps + 1, M) ||W|| before the
    first step and after every step; 'angle': (steps, M) ``angular_update`` of W in every step (radians);
    'train_loss': (steps,) minibatch loss before each update.
    """
    linears = [layer for layer in model.layers if isinstance(layer, Linear)]
    history = {"names": [f"Linear {i + 1}" for i in range(len(linears))],
               "norm": np.zeros((steps + 1, len(linears))), "angle": np.zeros((steps, len(linears))),
               "train_loss": np.zeros(steps)}
    history["norm"][0] = [np.linalg.norm(layer.params["W"]) for layer in linears]
    model.train()
    step = 0
    while step < steps:
        for idx in iterate_minibatches(len(X), batch_size, rng):
            loss, dlogits = softmax_cross_entropy(model.forward(X[idx]), y[idx])
            model.backward(dlogits)
            before = [layer.params["W"].copy() for layer in linears]
            for module, name in model.parameters():
                grad = module.grads[name]
                if module.params[name].ndim == 2:
                    grad = grad + weight_decay * module.params[name]
                module.params[name] -= lr * grad
            history["train_loss"][step] = loss
            history["angle"][step] = [angular_update(w, layer.params["W"]) for w, layer in zip(before, linears)]
            step += 1
            history["norm"][step] = [np.linalg.norm(layer.params["W"]) for layer in linears]
            if step == steps:
                break
    return history


def spherical_motion(data, *, lr: float, weight_decays, steps: int, seed: int = 0, depth: int = 3,
                     width: int = 64, batch_size: int = 32) -> dict:
    """One BatchNorm MLP (64 -> width x depth -> 10, notebook 05's ``build_model``) per weight decay, same seed.

    data: (X_train, X_val, y_train, y_val). Returns weight_decay -> history of ``train_with_weight_decay``.
    """
    X_train, _, y_train, _ = data
    runs = {}
    for weight_decay in weight_decays:
        model, rng = build_model("BatchNorm", seed=seed, depth=depth, width=width)
        runs[weight_decay] = train_with_weight_decay(model, X_train, y_train, lr=lr, weight_decay=weight_decay,
                                                     steps=steps, batch_size=batch_size, rng=rng)
    return runs


def moving_rms(values: np.ndarray, window: int) -> np.ndarray:
    """Root mean square over a trailing window along axis 0. values: (T, ...) -> (T - window + 1, ...)."""
    squares = np.cumsum(np.concatenate([np.zeros((1,) + values.shape[1:]), values ** 2]), axis=0)
    return np.sqrt((squares[window:] - squares[:-window]) / window)


# ---------------------------------------------------------------------------- residual streams, measured
def stream_statistics(placement: str, X: np.ndarray, y: np.ndarray, *, depth: int, width: int = 32,
                      seeds=range(5)) -> dict:
    """At initialization: the std of the residual stream and the norm of its gradient, per layer.

    One ``make_residual_mlp(placement, depth=depth, width=width)`` per seed, one forward and backward of the
    softmax cross-entropy on (X, y). The stream states are x_0 (the input layer's output) and x_l (block l's).
    Returns 'std': (depth + 1,) sqrt of the variance of x_l over samples and features, averaged over the seeds;
    'grad_norm': (depth + 1,) ||dL/dx_l|| averaged over the seeds; 'predicted_std', 'predicted_grad_norm':
    notebook 03's law applied to the stream (each branch adds variance 1): pre-norm Var[x_l] = Var[x_0] + l and
    ||dL/dx_l|| proportional to 1 / sqrt(Var[x_0] + l); post-norm std 1 after every block and a flat gradient;
    both gradient predictions are anchored at the measured value at layer L.
    """
    variances, grad_norms = [], []
    for seed in seeds:
        model = make_residual_mlp(placement, depth=depth, width=width, rng=np.random.default_rng(seed))
        _, dlogits = softmax_cross_entropy(model.forward(X), y)
        variances.append([model.outputs[l].var() for l in range(depth + 1)])
        grads, d = [], dlogits
        for i in range(len(model.layers) - 1, 0, -1):  # down to the input of layer 1, which is x_0
            d = model.layers[i].backward(d)
            if i <= depth + 1:  # the input of layer i is x_{i-1}
                grads.append(np.linalg.norm(d))
        grad_norms.append(grads[::-1])
    var, grad = np.mean(variances, axis=0), np.mean(grad_norms, axis=0)
    layers = np.arange(depth + 1)
    if placement == "pre":
        predicted_var = var[0] + layers
        predicted_grad = grad[-1] * np.sqrt(predicted_var[-1] / predicted_var)
    else:
        predicted_var = np.where(layers == 0, var[0], 1.0)
        predicted_grad = np.full(depth + 1, grad[-1])
    return {"std": np.sqrt(var), "grad_norm": grad, "predicted_std": np.sqrt(predicted_var),
            "predicted_grad_norm": predicted_grad}


def residual_lr_sweep(data, lrs, *, depth: int, width: int = 32, steps: int, seed: int = 0, batch_size: int = 32,
                      placements=PLACEMENTS, cap: float = 10.0) -> dict:
    """Final training loss (whole training set) of pre- and post-norm networks trained by plain SGD, no warm-up.

    One run per learning rate and placement, from the same seed. Returns placement -> (R,) losses; inf where
    the run overflowed or its loss ended above ``cap`` (diverged).
    """
    from helpers.network import train

    X_train, _, y_train, _ = data
    results = {}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for placement in placements:
            losses = []
            for lr in lrs:
                rng = np.random.default_rng(seed)
                model = make_residual_mlp(placement, depth=depth, width=width, rng=rng)
                history = train(model, X_train, y_train, lr=lr, batch_size=batch_size, steps=steps, rng=rng)
                loss = evaluate(model, X_train, y_train)[0] if history["diverged_at"] is None else np.inf
                losses.append(loss if np.isfinite(loss) and loss < cap else np.inf)
            results[placement] = np.array(losses)
    return results


# ------------------------------------------------------------------------------------- why does it help?
def _flat_gradient(model, X, y) -> tuple[float, np.ndarray]:
    loss, dlogits = softmax_cross_entropy(model.forward(X), y)
    model.backward(dlogits)
    return loss, np.concatenate([module.grads[name].ravel() for module, name in model.parameters()])


def _move(model, direction: np.ndarray, step: float) -> None:
    start = 0
    for module, name in model.parameters():
        size = module.params[name].size
        module.params[name] -= step * direction[start:start + size].reshape(module.params[name].shape)
        start += size


def gradient_predictiveness(data, *, labels=("no norm", "BatchNorm"), lr: float = 0.1, steps: int = 200,
                            every: int = 25, step_sizes=(0.05, 0.1, 0.2, 0.4), depth: int = 10, seed: int = 0,
                            batch_size: int = 32) -> dict:
    """Santurkar et al. 2018, Fig. 4: how far can one trust the gradient, with and without BatchNorm?

    Trains notebook 05's deep MLP (``build_model(label, depth=depth)``) with plain SGD at ``lr``. Every ``every``
    steps, on the current minibatch (train mode), it moves the weights along the gradient g by each step size s,
    w' = w - s g, and measures the loss and the gradient g' there (then moves back).
    Returns label -> {'step': (K,), 'loss_range': (K,) max minus min of the loss over the step sizes,
    'beta': (K,) the largest ||g' - g|| / ||w' - w|| over the step sizes ("effective beta-smoothness")}.
    """
    X_train, _, y_train, _ = data
    results = {}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for label in labels:
            model, rng = build_model(label, seed=seed, depth=depth)
            rows, step = [], 0
            while step < steps:
                for idx in iterate_minibatches(len(X_train), batch_size, rng):
                    if step % every == 0:
                        loss, grad = _flat_gradient(model, X_train[idx], y_train[idx])
                        losses, betas = [loss], []
                        for size in step_sizes:
                            _move(model, grad, size)
                            moved_loss, moved_grad = _flat_gradient(model, X_train[idx], y_train[idx])
                            _move(model, grad, -size)
                            losses.append(moved_loss)
                            betas.append(np.linalg.norm(moved_grad - grad) / (size * np.linalg.norm(grad)))
                        rows.append((step, max(losses) - min(losses), max(betas)))
                    _, grad = _flat_gradient(model, X_train[idx], y_train[idx])
                    _move(model, grad, lr)
                    step += 1
                    if step == steps:
                        break
            step_col, loss_range, beta = np.array(rows).T
            results[label] = {"step": step_col.astype(int), "loss_range": loss_range, "beta": beta}
    return results


# ----------------------------------------------------------------------------------------------------- plots
def _layer_colors(n: int):
    from matplotlib import colormaps

    return colormaps["viridis"](np.linspace(0.9, 0.0, n))


def loss_under_rescaling(model: Module, X: np.ndarray, y: np.ndarray, targets: dict, scales) -> dict:
    """The loss of ``model`` on (X, y) in train mode when one parameter array is multiplied by a, for each a.

    targets: label -> (module, name) of the array to rescale; scales: (S,). The array is restored after each
    label. Returns label -> (S,) losses.
    """
    result = {}
    for label, (module, name) in targets.items():
        original = module.params[name].copy()
        losses = []
        for a in scales:
            module.params[name] = a * original
            losses.append(softmax_cross_entropy(model.forward(X), y)[0])
        module.params[name] = original
        result[label] = np.array(losses)
    return result


def plot_gradient_scaling(axes, scales, losses: dict, grad_norms: np.ndarray):
    """Two panels: the loss versus the scale a of each parameter array (left), and ||dL/dW|| of the array that
    feeds the normalization versus a, with the 1/a line through its value at a = 1 (right). Log axes for a."""
    scales = np.asarray(scales, dtype=float)
    for label, values in losses.items():
        axes[0].semilogx(scales, values, "o-", ms=3, label=label)
    axes[0].set(xlabel="scale a of the array (W → a·W)", ylabel="training loss on the batch (nats)")
    axes[0].legend(fontsize=8)
    at_one = np.interp(0.0, np.log(scales), np.log(grad_norms))
    axes[1].loglog(scales, grad_norms, "o", ms=4, label="measured ‖dL/d(aW)‖")
    axes[1].loglog(scales, np.exp(at_one) / scales, "k--", lw=1, label="‖dL/dW‖ / a")
    axes[1].set(xlabel="scale a of W", ylabel="gradient norm ‖dL/d(aW)‖")
    axes[1].legend(fontsize=8)
    return axes


def plot_spherical_motion(axes, runs: dict, predicted: float, window: int = 50):
    """Two panels for the runs of ``spherical_motion``: ||W|| per layer over the steps (left) and the RMS over a
    trailing window of the angular update per step (right, log scale). One colour per layer (light: first), solid
    with weight decay, dashed without; a black dotted line marks the predicted equilibrium angle."""
    from matplotlib.lines import Line2D

    names = next(iter(runs.values()))["names"]
    colors = _layer_colors(len(names))
    for weight_decay, run in runs.items():
        style = "-" if weight_decay > 0 else "--"
        for j in range(len(names)):
            axes[0].plot(np.arange(len(run["norm"])), run["norm"][:, j], style, color=colors[j], lw=1.2)
            axes[1].semilogy(np.arange(window, len(run["angle"]) + 1), moving_rms(run["angle"][:, j], window), style,
                             color=colors[j], lw=1.2)
    axes[1].axhline(predicted, color="k", ls=":", lw=1.5)
    lowest = min(moving_rms(run["angle"], window).min() for run in runs.values())
    axes[1].set_ylim(bottom=lowest / 5)  # room for the legend below the lines
    handles = [Line2D([], [], color=color, lw=2, label=name) for color, name in zip(colors, names)]
    handles += [Line2D([], [], color="0.4", ls="-" if wd > 0 else "--", label=f"λ = {wd:g}") for wd in runs]
    axes[0].set(xlabel="training step", ylabel="‖W‖ (Frobenius norm)")
    axes[1].set(xlabel="training step", ylabel=f"angular update per step (rad, RMS of {window} steps)")
    axes[0].legend(handles=handles, fontsize=8, ncol=2)
    predicted_handle = Line2D([], [], color="k", ls=":", lw=1.5, label=f"predicted arccos(1 − ηλ) = {predicted:.3f}")
    axes[1].legend(handles=handles + [predicted_handle], fontsize=8, ncol=2, loc="lower left")
    return axes


def plot_stream_statistics(axes, stats: dict):
    """Two panels: the std of the residual stream per layer (left) and ||dL/dx_l|| per layer (right, log scale),
    measured (markers) and predicted (lines), one colour per placement ('pre', 'post')."""
    for placement, result in stats.items():
        layers = np.arange(len(result["std"]))
        label = LABELS[placement]
        color = COLORS[label]
        axes[0].plot(layers, result["std"], "o", ms=4, color=color, label=f"{label}, measured")
        axes[0].plot(layers, result["predicted_std"], "-", color=color, lw=1, label=f"{label}, predicted")
        axes[1].semilogy(layers, result["grad_norm"], "o", ms=4, color=color, label=f"{label}, measured")
        axes[1].semilogy(layers, result["predicted_grad_norm"], "-", color=color, lw=1, label=f"{label}, predicted")
    axes[0].set(xlabel="layer l of the stream (0: after the input layer)", ylabel="std of the stream x_l (1)")
    axes[1].set(xlabel="layer l of the stream (0: after the input layer)", ylabel="gradient norm ‖dL/dx_l‖")
    for ax in axes:
        ax.legend(fontsize=8)
    return axes


def plot_gradient_predictiveness(axes, results: dict):
    """Two panels over the training steps: how much the loss changes along the gradient step (left, log scale)
    and the effective beta-smoothness (right), one line per variant (results of ``gradient_predictiveness``)."""
    for label, result in results.items():
        axes[0].semilogy(result["step"], result["loss_range"], "o-", ms=4, color=COLORS.get(label), label=label)
        axes[1].plot(result["step"], result["beta"], "o-", ms=4, color=COLORS.get(label), label=label)
    axes[0].set(xlabel="training step", ylabel="max − min loss along the step (nats)")
    axes[1].set(xlabel="training step", ylabel="max ‖g(w − s·g) − g(w)‖ / ‖s·g‖")
    for ax in axes:
        ax.legend(fontsize=8)
    return axes
