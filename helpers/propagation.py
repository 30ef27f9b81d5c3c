"""Variance propagation through a deep MLP: the reference for notebook 03.

A layer ``l = 1..L`` computes ``z_l = h_{l-1} @ W_l`` (pre-activation) and ``h_l = f(z_l)`` (activation), with
``h_0 = x: (N, n_0)``, ``W_l: (n_{l-1}, n_l)``, no bias, and the same ``f`` after every layer, the last included.
For weights with zero mean, independent of each other and of the inputs,

    Var[z_l] = n_{l-1} Var[w_l] E[h_{l-1}^2]        (forward)
    Var[dh_{l-1}] = n_l Var[w_l] E[dz_l^2]          (backward, same argument on dz_l @ W_l^T)

and the nonlinearity sets ``E[h^2]`` from ``Var[z]``: identity for linear, ``Var[z] / 2`` for ReLU (zero-mean
symmetric ``z``), about ``Var[z]`` for tanh when ``Var[z]`` is small. Per-layer arrays below have length ``L``;
entry ``l - 1`` belongs to layer ``l``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from helpers.initializers import DEFAULT_GAINS, INITIALIZERS

__all__ = ["ACTIVATIONS", "SATURATION_THRESHOLD", "linear_output_variance",
           "linear_output_variance_from_second_moment", "activation_second_moment", "mlp_forward_stats",
           "mlp_backward_stats", "predicted_pre_activation_std", "make_mlp_weights"]

ACTIVATIONS = ("linear", "tanh", "relu")
SATURATION_THRESHOLD = 0.97  # |tanh(z)| above this counts as saturated (Glorot & Bengio 2010 style)


def _check_activation(name: str, activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"{name}: unknown activation {activation!r}; expected one of {list(ACTIVATIONS)}")


def _apply(z: np.ndarray, activation: str) -> np.ndarray:
    if activation == "relu":
        return np.maximum(z, 0)
    if activation == "tanh":
        return np.tanh(z)
    return z


def _derivative(z: np.ndarray, h: np.ndarray, activation: str) -> np.ndarray:
    """f'(z) from z and h = f(z), same shape."""
    if activation == "relu":
        return (z > 0).astype(z.dtype)
    if activation == "tanh":
        return 1 - h * h
    return np.ones_like(z)


def linear_output_variance(n_in: int, var_w: float, var_x: float) -> float:
    """Var[y] = n_in Var[w] Var[x] for ``y = x @ W`` with ``W: (n_in, n_out)``.

    Holds when the weights are i.i.d. with zero mean and independent of the inputs, **and the inputs have zero
    mean** (then ``E[x^2] = Var[x]``). For inputs with non-zero mean (after a ReLU, say) use
    ``linear_output_variance_from_second_moment`` with ``E[x^2] = Var[x] + E[x]^2``.
    """
    return n_in * var_w * var_x


def linear_output_variance_from_second_moment(n_in: int, var_w: float, second_moment_x: float) -> float:
    """Var[y] = n_in Var[w] E[x^2] for ``y = x @ W``: the general form.

    Holds whenever the weights are i.i.d. with zero mean and independent of the inputs, whatever the mean of the
    inputs (and even if the inputs are correlated with each other): ``E[y] = 0`` and the cross terms vanish.
    """
    return n_in * var_w * second_moment_x


def _tanh_second_moment_gaussian(var_z: np.ndarray, n_nodes: int = 81) -> np.ndarray:
    """E[tanh(z)^2] for z ~ N(0, var_z) by Gauss-Hermite quadrature (probabilists' weight exp(-t^2/2))."""
    t, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    var_z = np.asarray(var_z, dtype=float)
    z = np.sqrt(var_z)[..., None] * t
    return np.tanh(z) ** 2 @ w / np.sqrt(2 * np.pi)


def activation_second_moment(var_z, activation: str, tanh_approximation: str = "linear"):
    """E[f(z)^2] for a zero-mean, symmetric pre-activation ``z`` of variance ``var_z`` (scalar or array).

    linear: ``var_z``. relu: ``var_z / 2`` (exact for any symmetric ``z``: half of the mass is zeroed).
    tanh: no closed form. ``tanh_approximation='linear'`` uses ``tanh(z) ~ z``, i.e. ``var_z``, an
    approximation that holds only for small ``var_z`` (it ignores saturation); ``'gaussian'`` assumes ``z``
    Gaussian (true for wide layers) and integrates ``tanh(z)^2`` numerically (Gauss-Hermite, pure numpy).
    """
    _check_activation("activation_second_moment", activation)
    if activation == "relu":
        return var_z / 2
    if activation == "tanh":
        if tanh_approximation == "gaussian":
            return _tanh_second_moment_gaussian(var_z)
        if tanh_approximation != "linear":
            raise ValueError(f"activation_second_moment: unknown tanh_approximation {tanh_approximation!r}; "
                             "expected 'linear' or 'gaussian'")
    return var_z


def predicted_pre_activation_std(n_in_list: Sequence[int], weight_std_list: Sequence[float],
                                 input_second_moment: float, activation: str,
                                 tanh_approximation: str = "linear") -> np.ndarray:
    """The theory's std of the pre-activations ``z_l`` of every layer, shape (L,).

    n_in_list: fan-in of each layer, ``[n_0, ..., n_{L-1}]``. weight_std_list: std of each ``W_l``, length L.
    input_second_moment: ``E[x^2]`` of the network input (``Var[x]`` for a zero-mean input).
    Recursion: ``Var[z_1] = n_0 std_1^2 E[x^2]`` and ``Var[z_l] = n_{l-1} std_l^2 E[f(z_{l-1})^2]``, with
    ``E[f(z)^2]`` from ``activation_second_moment`` (exact for linear and ReLU; for tanh an approximation, see
    ``tanh_approximation`` there). A mean-field prediction: measured values scatter around it by a few
    percent per layer for widths in the hundreds, and the scatter compounds with depth.
    """
    _check_activation("predicted_pre_activation_std", activation)
    n_in = np.asarray(n_in_list, dtype=float)
    weight_std = np.asarray(weight_std_list, dtype=float)
    if n_in.shape != weight_std.shape or n_in.ndim != 1:
        raise ValueError(f"predicted_pre_activation_std: n_in_list and weight_std_list must be 1-D of the same "
                         f"length, got shapes {n_in.shape} and {weight_std.shape}")
    var_z = np.empty(n_in.shape)
    second_moment = float(input_second_moment)
    for l in range(n_in.size):
        var_z[l] = n_in[l] * weight_std[l] ** 2 * second_moment
        second_moment = float(activation_second_moment(var_z[l], activation, tanh_approximation))
    return np.sqrt(var_z)


def make_mlp_weights(widths: Sequence[int], scheme: str, rng: np.random.Generator, gain: float | None = None,
                     mode: str = "fan_in") -> list[np.ndarray]:
    """The weight matrices of an MLP with layer widths ``[n_0, n_1, ..., n_L]``: a list of L arrays
    ``W_l: (n_{l-1}, n_l)``, drawn in order from ``rng``.

    scheme: a key of ``INITIALIZERS`` ('lecun_normal', 'xavier_normal', 'xavier_uniform', 'he_normal').
    gain: ``None`` uses the scheme's default (sqrt(2) for he_normal, 1 otherwise); pass e.g.
    ``0.5 * calculate_gain('relu')`` for a too-small He init. mode: 'fan_in' or 'fan_out' (lecun/he only).
    """
    if scheme not in INITIALIZERS:
        raise ValueError(f"make_mlp_weights: unknown scheme {scheme!r}; expected one of {sorted(INITIALIZERS)}")
    if len(widths) < 2:
        raise ValueError(f"make_mlp_weights: widths needs at least two entries [n_0, n_1], got {list(widths)}")
    gain = DEFAULT_GAINS[scheme] if gain is None else gain
    init = INITIALIZERS[scheme]
    kwargs = {"gain": gain}
    if mode != "fan_in":
        if scheme not in ("lecun_normal", "he_normal"):
            raise ValueError(f"make_mlp_weights: {scheme} averages fan_in and fan_out; mode does not apply "
                             f"(got {mode!r})")
        kwargs["mode"] = mode
    return [init(n_in, n_out, rng, **kwargs) for n_in, n_out in zip(widths[:-1], widths[1:])]


def _check_network(name: str, x: np.ndarray, weights: Sequence[np.ndarray]) -> None:
    if x.ndim != 2:
        raise ValueError(f"{name}: x must have shape (N, n_0), got {x.shape}")
    n_prev = x.shape[1]
    for l, W in enumerate(weights, start=1):
        if W.ndim != 2 or W.shape[0] != n_prev:
            raise ValueError(f"{name}: weights[{l - 1}] must have shape ({n_prev}, n_{l}), got {W.shape}")
        n_prev = W.shape[1]


def mlp_forward_stats(x: np.ndarray, weights: Sequence[np.ndarray], activation: str,
                      keep_activations: bool = False) -> dict:
    """Push the batch ``x: (N, n_0)`` through ``z_l = h_{l-1} @ W_l``, ``h_l = f(z_l)`` and measure each layer.

    weights: L arrays ``W_l: (n_{l-1}, n_l)``. activation: 'linear', 'tanh' or 'relu'.
    Returns a dict of arrays of shape (L,), statistics over all ``N * n_l`` entries of the layer:
        'pre_mean', 'pre_std': mean and std of ``z_l``;
        'post_mean', 'post_std': mean and std of ``h_l`` (for ReLU ``h`` has a positive mean, so its std is
            ``sqrt(1/2 - 1/(2 pi)) ~ 0.58`` times the std of ``z``);
        'post_rms': ``sqrt(E[h_l^2])``, the quantity the next layer's variance depends on;
        'saturated': for tanh, the fraction of ``|h_l| > 0.97``; NaN for the other activations;
        'activations': the list of the L arrays ``h_l: (N, n_l)`` if ``keep_activations`` (for histograms;
            costs ``L * N * n`` floats), else None.
    """
    _check_activation("mlp_forward_stats", activation)
    x = np.asarray(x)
    _check_network("mlp_forward_stats", x, weights)
    n_layers = len(weights)
    stats = {key: np.empty(n_layers) for key in ("pre_mean", "pre_std", "post_mean", "post_std", "post_rms")}
    stats["saturated"] = np.full(n_layers, np.nan)
    kept = [] if keep_activations else None
    h = x
    for l, W in enumerate(weights):
        z = h @ W
        h = _apply(z, activation)
        stats["pre_mean"][l], stats["pre_std"][l] = z.mean(), z.std()
        stats["post_mean"][l], stats["post_std"][l] = h.mean(), h.std()
        stats["post_rms"][l] = np.sqrt(np.mean(h * h))
        if activation == "tanh":
            stats["saturated"][l] = np.mean(np.abs(h) > SATURATION_THRESHOLD)
        if keep_activations:
            kept.append(h)
    stats["activations"] = kept
    return stats


def mlp_backward_stats(x: np.ndarray, weights: Sequence[np.ndarray], activation: str,
                       rng: np.random.Generator | None = None) -> dict:
    """Back-propagate a unit-variance gradient from the top of the MLP and measure it at every layer.

    x: (N, n_0). weights: L arrays ``W_l: (n_{l-1}, n_l)``. activation: 'linear', 'tanh' or 'relu'.
    The upstream gradient ``dh_L: (N, n_L)`` is drawn from N(0, 1) with ``rng`` (``None`` means
    ``np.random.default_rng(0)``, so the result is deterministic either way). Backward through layer l:
    ``dz_l = dh_l * f'(z_l)``, ``dW_l = h_{l-1}^T @ dz_l``, ``dh_{l-1} = dz_l @ W_l^T``.
    Returns a dict of arrays of shape (L,), entry ``l - 1`` for layer ``l``:
        'dx_std': std of ``dh_{l-1}``, the gradient w.r.t. the layer's input (``'dx_std'[0]`` is w.r.t. ``x``);
        'dz_std': std of ``dz_l``, the gradient w.r.t. the layer's pre-activation;
        'dW_std': std of ``dW_l``, the gradient w.r.t. the weight matrix (summed over the batch);
    and 'dout_std', the std of the drawn upstream gradient (a float, about 1).
    Theory: ``Var[dh_{l-1}] = n_l Var[w_l] E[f'(z_l)^2] Var[dh_l]``, with ``E[f'^2] = 1/2`` for ReLU; so
    ``Var[w] = 2 / n_out`` (He, mode='fan_out') keeps the backward variance exactly, and ``2 / n_in`` changes it
    by ``n_out / n_in`` per layer (not at all when the widths are equal).
    """
    _check_activation("mlp_backward_stats", activation)
    x = np.asarray(x)
    _check_network("mlp_backward_stats", x, weights)
    rng = np.random.default_rng(0) if rng is None else rng
    inputs, pre, post = [], [], []
    h = x
    for W in weights:
        inputs.append(h)
        z = h @ W
        h = _apply(z, activation)
        pre.append(z)
        post.append(h)
    n_layers = len(weights)
    stats = {key: np.empty(n_layers) for key in ("dx_std", "dz_std", "dW_std")}
    dh = rng.standard_normal(h.shape)
    stats["dout_std"] = float(dh.std())
    for l in reversed(range(n_layers)):
        dz = dh * _derivative(pre[l], post[l], activation)
        dW = inputs[l].T @ dz
        dh = dz @ weights[l].T
        stats["dz_std"][l], stats["dW_std"][l], stats["dx_std"][l] = dz.std(), dW.std(), dh.std()
    return stats
