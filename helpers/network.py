"""A small numpy network library: layers, a container, a loss, an optimizer and a training loop (notebook 05).

Every layer has the same small shape (the protocol of ``helpers.module.Module``), so one read teaches them all::

    forward(x)     -> out    caches what backward needs
    backward(dout) -> dx     also fills self.grads (same keys and shapes as self.params)

``backward`` *overwrites* ``grads`` (it does not accumulate), so one forward/backward per step needs no
``zero_grad``; it is there for symmetry with PyTorch. Arrays are ``(N, D)``: one row per sample.

A typical step, as in ``train`` below::

    model = make_mlp([64, 64, 64, 10], norm="batch", rng=rng)
    optimizer = SGD(model, lr=0.1)
    logits = model.forward(X[idx])                         # (N, K)
    loss, dlogits = softmax_cross_entropy(logits, y[idx])   # float, (N, K)
    model.backward(dlogits)                                 # fills every layer's grads
    optimizer.step()                                        # p -= lr * g, in place
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from helpers.module import Module

__all__ = [
    "Linear", "ReLU", "Tanh", "Sequential", "softmax_cross_entropy", "SGD", "update_to_data_ratio", "accuracy",
    "iterate_minibatches", "evaluate", "train", "make_mlp",
]

INITS = ("he", "xavier")
NORMS = (None, "batch", "layer", "group")
ACTIVATIONS = ("relu", "tanh")


# ----------------------------------------------------------------------------------------------------- layers
class Linear(Module):
    """Fully connected layer ``y = x @ W + b``.

    n_in, n_out: input and output widths. W: (n_in, n_out), b: (n_out,) starts at zero.
    rng: the generator that draws W.
    init: 'he' (std sqrt(2 / n_in), for ReLU) or 'xavier' (std sqrt(2 / (n_in + n_out))), from helpers.initializers.
    weight_std: if given, W ~ N(0, weight_std^2) and ``init`` is ignored (e.g. 0.01 to show activations collapse).
    dtype: of W and b.
    """

    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator, init: str = "he", *,
                 weight_std: float | None = None, dtype=np.float64) -> None:
        super().__init__()
        if weight_std is not None:
            W = rng.standard_normal((n_in, n_out)) * weight_std
        elif init == "he":
            from helpers.initializers import he_normal
            W = he_normal(n_in, n_out, rng)
        elif init == "xavier":
            from helpers.initializers import xavier_normal
            W = xavier_normal(n_in, n_out, rng)
        else:
            raise ValueError(f"Linear: unknown init {init!r}; expected one of {INITS} or weight_std=<float>")
        self.n_in, self.n_out = n_in, n_out
        self.params = {"W": np.asarray(W, dtype=dtype), "b": np.zeros(n_out, dtype=dtype)}
        self.zero_grad()
        self.x = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, n_in) -> out: (N, n_out)."""
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, n_out) -> dx: (N, n_in); grads W: (n_in, n_out) = x.T @ dout, b: (n_out,) = sum over N."""
        self.grads["W"] = self.x.T @ dout
        self.grads["b"] = dout.sum(axis=0)
        return dout @ self.params["W"].T

    def __repr__(self) -> str:
        return f"Linear({self.n_in}, {self.n_out})"


class ReLU(Module):
    """``out = max(x, 0)`` elementwise; no parameters. The gradient at x = 0 is taken as 0."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: any shape -> out: same shape."""
        self.mask = x > 0
        return np.maximum(x, 0)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: shape of x -> dx = dout where x > 0, else 0."""
        return dout * self.mask

    def __repr__(self) -> str:
        return "ReLU()"


class Tanh(Module):
    """``out = tanh(x)`` elementwise; no parameters. Saturates where |out| is near 1 (gradient 1 - out^2 near 0)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: any shape -> out: same shape."""
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: shape of x -> dx = dout * (1 - tanh(x)^2)."""
        return dout * (1 - self.out ** 2)

    def __repr__(self) -> str:
        return "Tanh()"


# -------------------------------------------------------------------------------------------------- container
class Sequential(Module):
    """Layers applied in order: forward through all, backward in reverse.

    ``layers``: the list of children; ``model[i]`` and ``len(model)`` index it.
    ``outputs``: after a forward, the output of every layer (references, not copies), for per-layer statistics.
    ``train()``/``eval()``/``zero_grad()`` reach every child.
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        self.layers = list(modules)
        self.outputs: list[np.ndarray] = []

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, D_in) -> out: (N, D_out) of the last layer; keeps every layer's output in ``outputs``."""
        self.outputs = []
        for layer in self.layers:
            x = layer.forward(x)
            self.outputs.append(x)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, D_out) -> dx: (N, D_in); every layer fills its grads on the way."""
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def train(self, mode: bool = True) -> "Sequential":
        """Training mode for this container and every child; returns self."""
        self.training = mode
        for layer in self.layers:
            layer.train(mode)
        return self

    def zero_grad(self) -> None:
        for layer in self.layers:
            layer.zero_grad()

    def parameters(self) -> Iterator[tuple[Module, str]]:
        """Yield ``(module, name)`` for every parameter, in layer order (nested Sequentials included).

        Read the arrays at use time: ``module.params[name]`` and ``module.grads[name]``. An optimizer updates
        ``module.params[name]`` in place; per-layer statistics pick e.g. ``name == 'W'``.
        """
        for layer in self.layers:
            yield from _parameters(layer)

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        return "Sequential(\n" + "".join(f"  ({i}) {_describe(layer)}\n" for i, layer in enumerate(self.layers)) + ")"


def _describe(layer: Module) -> str:
    """``repr(layer)`` if its class defines one, else its class name and parameter shapes."""
    if type(layer).__repr__ is not object.__repr__:
        return repr(layer)
    shapes = ", ".join(f"{name} {value.shape}" for name, value in layer.params.items())
    return f"{type(layer).__name__}({shapes})"


def _parameters(model: Module) -> Iterator[tuple[Module, str]]:
    """``(module, name)`` pairs of any module: a container's ``parameters()``, else its own ``params``."""
    if hasattr(model, "parameters"):
        yield from model.parameters()
    else:
        for name in model.params:
            yield model, name


def _layer_labels(model: Sequential) -> list[str]:
    """One label per layer, numbered within its type: ['Linear 1', 'BatchNorm 1', 'ReLU 1', 'Linear 2', ...]."""
    counts: dict[str, int] = {}
    labels = []
    for layer in model.layers:
        kind = type(layer).__name__
        counts[kind] = counts.get(kind, 0) + 1
        labels.append(f"{kind} {counts[kind]}")
    return labels


# ------------------------------------------------------------------------------------------- loss and metrics
def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient.

    logits: (N, K) scores; y: (N,) integer classes in [0, K).
    Returns ``(loss, dlogits)``: loss = -mean_i log softmax(logits_i)[y_i], a float;
    dlogits: (N, K) = (softmax(logits) - onehot(y)) / N.
    Stable: log-sum-exp after subtracting the row maximum, so logits of 1e4 do not overflow.
    """
    logits = np.asarray(logits)
    y = np.asarray(y)
    if logits.ndim != 2 or y.shape != (logits.shape[0],):
        raise ValueError(f"softmax_cross_entropy: expected logits (N, K) and y (N,), got {logits.shape} and {y.shape}")
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = -log_probs[rows, y].mean()
    dlogits = np.exp(log_probs)
    dlogits[rows, y] -= 1
    return float(loss), dlogits / n


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows whose largest logit is the label. logits: (N, K), y: (N,) -> float in [0, 1]."""
    return float(np.mean(np.argmax(logits, axis=1) == y))


def update_to_data_ratio(param: np.ndarray, grad: np.ndarray, lr: float) -> float:
    """How large one SGD step is relative to the parameter: ``std(lr * grad) / std(param)``.

    Karpathy's diagnostic (makemore, part 3): around 1e-3 (log10 about -3) is the usual target; far above, the
    step rewrites the weights each step (too fast); far below, they barely move (too slow). It is meant for weight
    matrices: a zero-initialised bias has std 0, which gives inf (nan if the gradient is also constant).
    param, grad: same shape. Returns a float.
    """
    update_std = float(np.std(lr * grad))
    data_std = float(np.std(param))
    if data_std == 0:
        return float("inf") if update_std > 0 else float("nan")
    return update_std / data_std


# ------------------------------------------------------------------------------------------------- optimizer
class SGD:
    """Plain stochastic gradient descent: ``p -= lr * g`` for every parameter of ``model``, in place.

    ``lr`` is a public attribute, so a schedule may change it between steps.
    """

    def __init__(self, model: Module, lr: float) -> None:
        self.model = model
        self.lr = lr

    def step(self) -> None:
        for module, name in _parameters(self.model):
            module.params[name] -= self.lr * module.grads[name]

    def zero_grad(self) -> None:
        self.model.zero_grad()


# -------------------------------------------------------------------------------------------- training loop
def iterate_minibatches(n: int, batch_size: int, rng: np.random.Generator,
                        drop_last: bool = True) -> Iterator[np.ndarray]:
    """Yield index arrays of one epoch over ``n`` samples, in an order drawn from ``rng``.

    Each call draws a fresh permutation (rng advances), so loop over calls for several epochs.
    batch_size: indices per array; with drop_last=True the last, smaller batch is skipped (BatchNorm then never
    sees a batch of one), else it is yielded too. Each index appears at most once per epoch.
    """
    if batch_size < 1:
        raise ValueError(f"iterate_minibatches: batch_size must be >= 1, got {batch_size}")
    if drop_last and batch_size > n:
        raise ValueError(f"iterate_minibatches: batch_size {batch_size} > n {n} with drop_last=True yields nothing")
    order = rng.permutation(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]


def evaluate(model: Module, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Loss and accuracy of ``model`` on (X, y) in eval mode (running statistics, none updated).

    Restores the mode the model had before. X: (N, D), y: (N,) -> (loss, accuracy).
    """
    was_training = model.training
    model.eval()
    logits = model.forward(X)
    model.train(was_training)
    loss, _ = softmax_cross_entropy(logits, y)
    return loss, accuracy(logits, y)


def _stat_targets(model: Sequential) -> tuple[list[int], list[str], list[tuple[Module, str]], list[str]]:
    """What ``train`` watches: indices and labels of the ReLU/Tanh layers, (module, name) and labels of 2-D weights."""
    labels = _layer_labels(model)
    act_idx = [i for i, layer in enumerate(model.layers) if isinstance(layer, (ReLU, Tanh))]
    weights, weight_names = [], []
    for i, layer in enumerate(model.layers):
        for module, name in _parameters(layer):
            if module.params[name].ndim == 2:
                weights.append((module, name))
                weight_names.append(labels[i] if name == "W" else f"{labels[i]} {name}")
    return act_idx, [labels[i] for i in act_idx], weights, weight_names


def train(model: Module, X: np.ndarray, y: np.ndarray, *, lr: float, batch_size: int, steps: int,
          rng: np.random.Generator, X_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
          record_every: int = 50, record_stats: bool = False) -> dict:
    """Train ``model`` with SGD on softmax cross-entropy for ``steps`` minibatch steps; return a history dict.

    X: (N, D), y: (N,) integer labels; minibatches from ``iterate_minibatches(N, batch_size, rng)``, epoch after
    epoch. Deterministic given the state of ``rng`` (and the model's initial parameters).
    The model trains in train mode; validation runs in eval mode (no running statistic changes) and the model
    is put back in train mode, which is also the mode it is left in.

    History:
        'train_loss': (steps,) minibatch loss before each update.
        'step': (R,) number of updates done at each record: 0, record_every, 2 * record_every, ..., and steps.
        'val_loss', 'val_acc': (R,) on (X_val, y_val) at those points (only when X_val is given).
        'diverged_at': the first step whose loss was not finite (training stopped there; the remaining entries
            are nan), or None. A too-large lr may also just give huge finite losses: look at 'train_loss'.
    With record_stats=True (``model`` must be a Sequential), measured during the training steps
    0, record_every, 2 * record_every, ... (< steps):
        'stats_step': (S,) those step indices.
        'act_std': (S, L) std of the output of every ReLU/Tanh layer on the minibatch;
            'act_names': its L labels, a list ('ReLU 1', ...).
        'update_ratio': (S, M) ``update_to_data_ratio(W, dW, lr)`` of every 2-D weight, W taken before the
            update; 'update_names': its M labels, a list ('Linear 1', ...).
    """
    if record_every < 1:
        raise ValueError(f"train: record_every must be >= 1, got {record_every}")
    if record_stats and not isinstance(model, Sequential):
        raise ValueError("train: record_stats=True needs a Sequential model (it reads model.outputs)")
    if (X_val is None) != (y_val is None):
        raise ValueError("train: give both X_val and y_val, or neither")
    validate = X_val is not None
    optimizer = SGD(model, lr)
    history: dict = {"train_loss": np.full(steps, np.nan), "diverged_at": None}
    record_steps = sorted(set(range(0, steps, record_every)) | {steps})
    history["step"] = np.array(record_steps)
    if validate:
        history["val_loss"] = np.full(len(record_steps), np.nan)
        history["val_acc"] = np.full(len(record_steps), np.nan)
    if record_stats:
        act_idx, history["act_names"], weights, history["update_names"] = _stat_targets(model)
        history["stats_step"] = np.arange(0, steps, record_every)
        history["act_std"] = np.full((len(history["stats_step"]), len(act_idx)), np.nan)
        history["update_ratio"] = np.full((len(history["stats_step"]), len(weights)), np.nan)

    def record_val(k: int) -> None:
        if validate:
            r = record_steps.index(k)
            history["val_loss"][r], history["val_acc"][r] = evaluate(model, X_val, y_val)

    model.train()
    record_val(0)
    step = 0
    # Divergence (a too-large lr) overflows to inf/nan: detected below, so numpy need not warn about it.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        while step < steps and history["diverged_at"] is None:
            for idx in iterate_minibatches(len(X), batch_size, rng):
                logits = model.forward(X[idx])
                loss, dlogits = softmax_cross_entropy(logits, y[idx])
                if not np.isfinite(loss):
                    history["diverged_at"] = step
                    break
                history["train_loss"][step] = loss
                model.backward(dlogits)
                if record_stats and step % record_every == 0:
                    s = step // record_every
                    history["act_std"][s] = [model.outputs[i].std() for i in act_idx]
                    history["update_ratio"][s] = [update_to_data_ratio(m.params[n], m.grads[n], lr)
                                                  for m, n in weights]
                optimizer.step()
                step += 1
                if step % record_every == 0 or step == steps:
                    record_val(step)
                if step == steps:
                    break
    return history


# ---------------------------------------------------------------------------------------------------- models
def make_mlp(widths: list[int], norm: str | None = None, *, rng: np.random.Generator, num_groups: int = 8,
             init: str = "he", activation: str = "relu") -> Sequential:
    """Multilayer perceptron: (Linear -> [norm] -> activation) per hidden layer, then a final Linear.

    widths: [n_in, hidden_1, ..., n_classes], at least two entries; len(widths) - 1 Linear layers.
    norm: None, 'batch' (BatchNorm), 'layer' (LayerNorm) or 'group' (GroupNorm with ``num_groups`` groups, which
        must divide every hidden width), from helpers.normalization.
    rng: draws every weight, layer by layer. init: 'he' or 'xavier' (see Linear). activation: 'relu' or 'tanh'.
    Every Linear keeps its bias, even before a BatchNorm, which cancels it (its gradient is 0): harmless, and it
    keeps all Linear layers alike.
    """
    if len(widths) < 2:
        raise ValueError(f"make_mlp: widths needs at least [n_in, n_out], got {widths}")
    if norm not in NORMS:
        raise ValueError(f"make_mlp: unknown norm {norm!r}; expected one of {NORMS}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"make_mlp: unknown activation {activation!r}; expected one of {ACTIVATIONS}")
    layers: list[Module] = []
    for n_in, n_out in zip(widths[:-2], widths[1:-1]):
        layers.append(Linear(n_in, n_out, rng, init=init))
        if norm is not None:
            layers.append(_norm_layer(norm, n_out, num_groups))
        layers.append(ReLU() if activation == "relu" else Tanh())
    layers.append(Linear(widths[-2], widths[-1], rng, init=init))
    return Sequential(*layers)


def _norm_layer(norm: str, width: int, num_groups: int) -> Module:
    """A normalization layer for (N, width) inputs; imported here so this module loads without it."""
    from helpers.normalization import BatchNorm, GroupNorm, LayerNorm
    if norm == "batch":
        return BatchNorm(width)
    if norm == "layer":
        return LayerNorm(width)
    return GroupNorm(num_groups, width)
