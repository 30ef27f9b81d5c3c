"""Normalization modules: the lecture's three operations made code.

1. compute ``E[x]`` and ``Var[x]`` over a *support set* (``moments``),
2. normalize by them, ``x_hat = (x - E[x]) / sqrt(Var[x] + eps)`` (``normalize_forward``),
3. compensate with a learned linear transform, ``out = gamma * x_hat + beta`` (``compensate_forward``).

BatchNorm, LayerNorm, InstanceNorm and GroupNorm differ only in the support set, i.e. in the reduction axes
(``support_axes``; GroupNorm reshapes ``(N, C, H, W) -> (N, G, C//G, H, W)`` first and normalizes over the
axes of one group). Shapes are ``(N, C, H, W)`` for images and ``(N, C)`` for vectors. The modules (BatchNorm,
LayerNorm, InstanceNorm, GroupNorm) wrap these functions with PyTorch-like constructors.

Conventions (PyTorch's): ``eps = 1e-5``; ``momentum = 0.1`` with
``running = (1 - momentum) * running + momentum * batch``; ``running_mean`` starts at 0 and ``running_var`` at 1;
normalization divides by the *biased* variance, ``running_var`` is updated with the *unbiased* one. A forward
returns ``(out, cache)`` and its backward takes ``(dout, cache)`` and returns the gradients in the order of the
forward's arguments (CS231n). Every function keeps the dtype of ``x`` (float32 or float64); gradients of gamma and
beta take gamma's dtype. All of it is vectorized: no Python loop over samples, channels or groups.
"""
from __future__ import annotations

import numpy as np

from helpers.module import Module

EPS = 1e-5
MOMENTUM = 0.1
VARIANTS = ("batch", "layer", "instance")

__all__ = [
    "support_axes", "moments", "naive_variance", "normalize_forward", "normalize_backward",
    "channel_shape", "compensate_forward", "compensate_backward", "update_running_stats",
    "batch_norm_forward", "batch_norm_backward", "layer_norm_forward", "layer_norm_backward",
    "instance_norm_forward", "instance_norm_backward", "group_norm_forward", "group_norm_backward",
    "fold_batchnorm_into_linear", "BatchNorm", "LayerNorm", "InstanceNorm", "GroupNorm",
]


# --- (1) and (2): the generic kernel -----------------------------------------------------------------------------

def support_axes(variant: str, ndim: int) -> tuple[int, ...]:
    """Reduction axes of ``E[x]`` and ``Var[x]`` for an input of ``ndim`` dimensions (N, C, spatial...).

    'batch': all but C, (0,) or (0, 2, 3); 'layer': all but N, (1,) or (1, 2, 3); 'instance': the spatial axes,
    (2, 3) (needs ndim >= 3). GroupNorm is 'instance' on x reshaped to (N, G, C//G, H, W), whose axes 2, 3, 4
    hold one group (see ``group_norm_forward``).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: expected one of {VARIANTS} "
                         "(GroupNorm reshapes to (N, G, C//G, H, W), then uses 'instance')")
    if ndim < 2:
        raise ValueError(f"support_axes needs ndim >= 2 (N, C, ...), got ndim={ndim}")
    if variant == "instance" and ndim < 3:
        raise ValueError(f"variant 'instance' needs spatial axes (ndim >= 3, e.g. (N, C, H, W)), got ndim={ndim}")
    spatial = tuple(range(2, ndim))
    return {"batch": (0, *spatial), "layer": (1, *spatial), "instance": spatial}[variant]


def moments(x: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and biased variance of ``x`` over ``axes``, keepdims, by the two-pass formula.

    x: any shape, e.g. (N, C, H, W). Returns mean, var: x's shape with size 1 along ``axes``.
    """
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return mean, var


def naive_variance(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``E[x^2] - E[x]^2`` over ``axes`` (keepdims): algebraically the variance, numerically a cancellation.

    Kept to show the failure: on ``1e4 + noise`` in float32 both terms are about 1e8 and their difference
    (about 1) is lost in rounding. Use ``moments`` instead.
    """
    return (x * x).mean(axis=axes, keepdims=True) - x.mean(axis=axes, keepdims=True) ** 2


def normalize_forward(x: np.ndarray, axes: tuple[int, ...], eps: float = EPS) -> tuple[np.ndarray, tuple]:
    """``x_hat = (x - mean) / sqrt(var + eps)`` with mean and biased var over ``axes``.

    x: any shape, e.g. (N, C, H, W). Returns x_hat (x's shape and dtype) and the cache (x_hat, std, axes, mean, var).
    """
    mean, var = moments(x, axes)
    std = np.sqrt(var + eps)
    x_hat = (x - mean) / std
    return x_hat, (x_hat, std, axes, mean, var)


def normalize_backward(dx_hat: np.ndarray, cache: tuple) -> np.ndarray:
    """Gradient through ``normalize_forward``, including the dependence of mean and var on x.

    dx_hat: upstream gradient, shape of x_hat. Returns dx, same shape:
    ``dx = (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)) / std``, means over the support axes.
    """
    x_hat, std, axes, _, _ = cache
    mean_dx_hat = dx_hat.mean(axis=axes, keepdims=True)
    mean_dx_hat_x_hat = (dx_hat * x_hat).mean(axis=axes, keepdims=True)
    return (dx_hat - mean_dx_hat - x_hat * mean_dx_hat_x_hat) / std


# --- (3): compensate ---------------------------------------------------------------------------------------------

def channel_shape(x: np.ndarray) -> tuple[int, ...]:
    """Shape that makes a per-channel (C,) parameter broadcast against x: (1, C) or (1, C, 1, 1)."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def compensate_forward(x_hat: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
                       param_shape: tuple[int, ...] | None = None) -> tuple[np.ndarray, tuple]:
    """``out = gamma * x_hat + beta``, the learned linear transform; gamma=None means 1 and beta=None means 0.

    x_hat: (N, C, H, W) or (N, C). gamma, beta: e.g. (C,) or the LayerNorm shape (C, H, W).
    param_shape: the shape gamma and beta take to broadcast against x_hat, e.g. ``channel_shape(x_hat)``;
        None broadcasts them as they are (numpy aligns trailing axes: right for LayerNorm).
    Returns out (x_hat's shape and dtype) and the cache.
    """
    out = x_hat
    if gamma is not None:
        out = out * _as_broadcast(gamma, param_shape, x_hat.dtype)
    if beta is not None:
        out = out + _as_broadcast(beta, param_shape, x_hat.dtype)
    return out, (x_hat, gamma, beta, param_shape)


def compensate_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Gradients of ``gamma * x_hat + beta``: (dx_hat, dgamma, dbeta).

    dgamma and dbeta are summed over every axis gamma is broadcast along and have gamma's shape and dtype
    (None when the parameter is None).
    """
    x_hat, gamma, beta, param_shape = cache
    dx_hat = dout if gamma is None else dout * _as_broadcast(gamma, param_shape, dout.dtype)
    dgamma = None if gamma is None else _sum_to(dout * x_hat, gamma, param_shape)
    dbeta = None if beta is None else _sum_to(dout, beta, param_shape)
    return dx_hat, dgamma, dbeta


def _as_broadcast(param: np.ndarray, param_shape: tuple[int, ...] | None, dtype) -> np.ndarray:
    param = np.asarray(param).astype(dtype, copy=False)
    return param if param_shape is None else param.reshape(param_shape)


def _sum_to(grad: np.ndarray, param: np.ndarray, param_shape: tuple[int, ...] | None) -> np.ndarray:
    """Sum ``grad`` over the axes along which ``param`` (seen with ``param_shape``) was broadcast."""
    shape = np.shape(param) if param_shape is None else param_shape
    shape = (1,) * (grad.ndim - len(shape)) + tuple(shape)
    axes = tuple(axis for axis, size in enumerate(shape) if size == 1)
    return grad.sum(axis=axes, keepdims=True).reshape(np.shape(param)).astype(np.asarray(param).dtype, copy=False)


def _check_param(param: np.ndarray | None, shape: tuple[int, ...], name: str, layer: str) -> None:
    if param is not None and np.shape(param) != tuple(shape):
        raise ValueError(f"{layer}: {name} has shape {np.shape(param)}, expected {tuple(shape)}")


# --- the four variants: a choice of axes (and, for groups, a reshape) --------------------------------------------

def batch_norm_forward(x, gamma, beta, running_mean, running_var, training: bool,
                       momentum: float = MOMENTUM, eps: float = EPS):
    """BatchNorm: statistics over (N, H, W) per channel.

    x: (N, C, H, W) or (N, C). gamma, beta: (C,) or None. running_mean, running_var: (C,), or both None for no
    running statistics (batch statistics in both modes, like PyTorch's track_running_stats=False).
    training: True normalizes with the batch's statistics and updates the running ones; False uses the running ones.
    Returns (out, cache, new_running_mean, new_running_var); the inputs are not modified, and in eval mode the
    running statistics come back unchanged (the same arrays).
    """
    shape = channel_shape(x)
    for name, param in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean), ("running_var", running_var)):
        _check_param(param, (x.shape[1],), name, "batch_norm_forward")
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm_forward: give both running_mean and running_var, or neither")
    if training or running_mean is None:
        values_per_channel = x.size // x.shape[1]
        if values_per_channel <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {x.shape}")
        x_hat, norm_cache = normalize_forward(x, support_axes("batch", x.ndim), eps)
        if training and running_mean is not None:
            _, _, _, mean, var = norm_cache
            var_unbiased = var * (values_per_channel / (values_per_channel - 1))
            running_mean, running_var = update_running_stats(running_mean, running_var, mean.reshape(-1),
                                                             var_unbiased.reshape(-1), momentum)
    else:  # eval mode: a fixed affine map
        std = np.sqrt(running_var.astype(x.dtype).reshape(shape) + eps)
        x_hat, norm_cache = (x - running_mean.astype(x.dtype).reshape(shape)) / std, std
    out, comp_cache = compensate_forward(x_hat, gamma, beta, shape)
    return out, (norm_cache, comp_cache), running_mean, running_var


def batch_norm_backward(dout, cache):
    """Gradients of ``batch_norm_forward`` (training or eval mode): (dx, dgamma, dbeta), dgamma/dbeta (C,) or None."""
    norm_cache, comp_cache = cache
    dx_hat, dgamma, dbeta = compensate_backward(dout, comp_cache)
    if isinstance(norm_cache, np.ndarray):  # eval mode: the cache is the fixed std, the map is affine
        return dx_hat / norm_cache, dgamma, dbeta
    return normalize_backward(dx_hat, norm_cache), dgamma, dbeta


def update_running_stats(running_mean, running_var, batch_mean, batch_var_unbiased, momentum: float = MOMENTUM):
    """``running = (1 - momentum) * running + momentum * batch`` for mean and variance; returns new arrays.

    All arrays (C,). batch_var_unbiased divides by N*H*W - 1. The results keep the running statistics' dtype.
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    new_mean = (1 - momentum) * running_mean + momentum * batch_mean
    new_var = (1 - momentum) * running_var + momentum * batch_var_unbiased
    return new_mean.astype(running_mean.dtype, copy=False), new_var.astype(running_var.dtype, copy=False)


def layer_norm_forward(x, gamma, beta, eps: float = EPS):
    """LayerNorm: statistics over (C, H, W) per sample.

    x: (N, C, H, W) or (N, C). gamma, beta: x.shape[1:], e.g. (C, H, W) or (C,), or None. Returns (out, cache).
    """
    _check_param(gamma, x.shape[1:], "gamma", "layer_norm_forward")
    _check_param(beta, x.shape[1:], "beta", "layer_norm_forward")
    x_hat, norm_cache = normalize_forward(x, support_axes("layer", x.ndim), eps)
    out, comp_cache = compensate_forward(x_hat, gamma, beta)
    return out, (norm_cache, comp_cache)


def layer_norm_backward(dout, cache):
    """Gradients of ``layer_norm_forward``: (dx, dgamma, dbeta), dgamma/dbeta of the normalized shape or None."""
    norm_cache, comp_cache = cache
    dx_hat, dgamma, dbeta = compensate_backward(dout, comp_cache)
    return normalize_backward(dx_hat, norm_cache), dgamma, dbeta


def instance_norm_forward(x, gamma=None, beta=None, eps: float = EPS):
    """InstanceNorm: statistics over (H, W) per sample and channel.

    x: (N, C, H, W). gamma, beta: (C,) or None (the default: no affine). Returns (out, cache).
    """
    _check_param(gamma, x.shape[1:2], "gamma", "instance_norm_forward")
    _check_param(beta, x.shape[1:2], "beta", "instance_norm_forward")
    x_hat, norm_cache = normalize_forward(x, support_axes("instance", x.ndim), eps)
    out, comp_cache = compensate_forward(x_hat, gamma, beta, channel_shape(x))
    return out, (norm_cache, comp_cache)


def instance_norm_backward(dout, cache):
    """Gradients of ``instance_norm_forward``: (dx, dgamma, dbeta), dgamma/dbeta (C,) or None."""
    return layer_norm_backward(dout, cache)  # same structure: normalize over some axes, then compensate


def group_norm_forward(x, num_groups: int, gamma, beta, eps: float = EPS):
    """GroupNorm: statistics over (C//G, H, W) per sample and group, by a reshape to (N, G, C//G, H, W).

    x: (N, C, H, W) or (N, C) with C divisible by num_groups. gamma, beta: (C,) or None. Returns (out, cache).
    """
    n, c = x.shape[:2]
    if not isinstance(num_groups, (int, np.integer)) or num_groups < 1 or c % num_groups != 0:
        raise ValueError(f"num_groups must be a positive integer that divides the channels, got num_groups="
                         f"{num_groups!r} for C={c}")
    _check_param(gamma, (c,), "gamma", "group_norm_forward")
    _check_param(beta, (c,), "beta", "group_norm_forward")
    x_groups = x.reshape(n, num_groups, c // num_groups, *x.shape[2:])
    x_hat, norm_cache = normalize_forward(x_groups, support_axes("instance", x_groups.ndim), eps)  # one group
    out, comp_cache = compensate_forward(x_hat.reshape(x.shape), gamma, beta, channel_shape(x))
    return out, (norm_cache, comp_cache)


def group_norm_backward(dout, cache):
    """Gradients of ``group_norm_forward``: (dx, dgamma, dbeta), dgamma/dbeta (C,) or None."""
    norm_cache, comp_cache = cache
    dx_hat, dgamma, dbeta = compensate_backward(dout, comp_cache)
    dx = normalize_backward(dx_hat.reshape(norm_cache[0].shape), norm_cache)
    return dx.reshape(dout.shape), dgamma, dbeta


def fold_batchnorm_into_linear(W, b, gamma, beta, running_mean, running_var, eps: float = EPS):
    """Fold an eval-mode BatchNorm into the Linear layer ``y = x @ W + b`` before it.

    W: (n_in, n_out). b: (n_out,) or None. gamma, beta, running_mean, running_var: (n_out,); gamma/beta None
    means no affine. Returns (W_folded, b_folded) with ``x @ W_folded + b_folded == BN_eval(x @ W + b)``.
    """
    scale = 1.0 / np.sqrt(running_var + eps)
    if gamma is not None:
        scale = gamma * scale
    b = np.zeros(W.shape[1], dtype=W.dtype) if b is None else b
    b_folded = (b - running_mean) * scale + (0.0 if beta is None else beta)
    return (W * scale).astype(W.dtype, copy=False), b_folded.astype(W.dtype, copy=False)


# --- modules: the functions with their parameters and state, PyTorch-like constructors ---------------------------

class _Norm(Module):
    """Shared plumbing: gamma/beta of ``param_shape`` (float64, gamma=1, beta=0) when affine, and the cache.

    Parameters and their gradients stay float64 whatever the input dtype; outputs and dx keep the input's dtype.
    """

    def __init__(self, param_shape: tuple[int, ...], eps: float, affine: bool) -> None:
        super().__init__()
        self.eps = eps
        if affine:
            self.params = {"gamma": np.ones(param_shape), "beta": np.zeros(param_shape)}
        self.zero_grad()  # like Linear: an optimizer step before any backward finds zero gradients
        self._cache = None

    def _affine(self):
        return self.params.get("gamma"), self.params.get("beta")

    def _backward(self, backward_fn, dout):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        dx, dgamma, dbeta = backward_fn(dout, self._cache)
        self.grads = {"gamma": dgamma, "beta": dbeta} if self.params else {}
        return dx


class BatchNorm(_Norm):
    """BatchNorm over (N, C) or (N, C, H, W) inputs, like torch.nn.BatchNorm1d/2d.

    momentum=None uses the cumulative average (factor 1 / num_batches_tracked), as in PyTorch.
    """

    def __init__(self, num_features: int, eps: float = EPS, momentum: float | None = MOMENTUM,
                 affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__((num_features,), eps, affine)
        self.num_features = num_features
        self.momentum = momentum
        self.track_running_stats = track_running_stats
        self.running_mean = np.zeros(num_features) if track_running_stats else None
        self.running_var = np.ones(num_features) if track_running_stats else None
        self.num_batches_tracked = 0

    def forward(self, x: np.ndarray) -> np.ndarray:
        momentum = self.momentum if self.momentum is not None else 1.0 / (self.num_batches_tracked + 1)
        out, self._cache, running_mean, running_var = batch_norm_forward(
            x, *self._affine(), self.running_mean, self.running_var, self.training, momentum, self.eps)
        if self.training and self.track_running_stats:
            self.running_mean, self.running_var = running_mean, running_var
            self.num_batches_tracked += 1
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self._backward(batch_norm_backward, dout)


class LayerNorm(_Norm):
    """LayerNorm over all axes but N; ``normalized_shape`` must equal x.shape[1:], e.g. (C, H, W) or C."""

    def __init__(self, normalized_shape, eps: float = EPS, elementwise_affine: bool = True) -> None:
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        super().__init__(shape, eps, elementwise_affine)
        self.normalized_shape = shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.shape[1:] != self.normalized_shape:
            raise ValueError(f"LayerNorm: input shape {x.shape} does not match normalized_shape "
                             f"{self.normalized_shape} (expected x.shape[1:] == normalized_shape)")
        out, self._cache = layer_norm_forward(x, *self._affine(), self.eps)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self._backward(layer_norm_backward, dout)


class InstanceNorm(_Norm):
    """InstanceNorm over (H, W) per sample and channel; no affine and no running statistics by default."""

    def __init__(self, num_features: int, eps: float = EPS, affine: bool = False) -> None:
        super().__init__((num_features,), eps, affine)
        self.num_features = num_features

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, self._cache = instance_norm_forward(x, *self._affine(), self.eps)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self._backward(instance_norm_backward, dout)


class GroupNorm(_Norm):
    """GroupNorm over (C//G, H, W) per sample and group, like torch.nn.GroupNorm(num_groups, num_channels)."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = EPS, affine: bool = True) -> None:
        if num_groups < 1 or num_channels % num_groups != 0:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        super().__init__((num_channels,), eps, affine)
        self.num_groups = num_groups
        self.num_channels = num_channels

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, self._cache = group_norm_forward(x, self.num_groups, *self._affine(), self.eps)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self._backward(group_norm_backward, dout)
