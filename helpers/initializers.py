"""Weight initializers: the reference for notebook 03 (variance propagation and initialization).

A linear layer computes ``y = x @ W`` with ``W: (n_in, n_out)``, so ``fan_in = W.shape[0]`` and
``fan_out = W.shape[1]`` (PyTorch stores ``nn.Linear.weight`` transposed, as ``(out, in)``: same fans).
With zero-mean weights independent of the inputs, ``Var[y] = n_in Var[w] E[x^2]``; each scheme picks ``Var[w]``
so that a chosen quantity keeps its size from layer to layer:

==================  ===================================  =========================================
scheme              std of the weights                   keeps the size of
==================  ===================================  =========================================
``lecun_normal``    ``gain / sqrt(n_in)``                the forward signal (linear layers)
``xavier_normal``   ``gain * sqrt(2 / (n_in + n_out))``  a compromise of forward and backward
``xavier_uniform``  same std, ``U(-a, a)`` with          (Glorot & Bengio 2010)
                    ``a = gain * sqrt(6 / (n_in + n_out))``
``he_normal``       ``gain / sqrt(fan)``, gain sqrt(2)   the forward signal through ReLU (He et al. 2015)
==================  ===================================  =========================================

The gains are those of ``torch.nn.init.calculate_gain``: they undo the contraction of the nonlinearity
(ReLU keeps half of the second moment, hence sqrt(2); tanh's 5/3 is an empirical value).
Every function draws from the ``rng: np.random.Generator`` it is given and returns float64.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

__all__ = ["calculate_gain", "lecun_normal", "xavier_normal", "xavier_uniform", "he_normal", "init_std",
           "INITIALIZERS", "DEFAULT_GAINS"]

_GAINS = {"linear": 1.0, "identity": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0)}
_MODES = ("fan_in", "fan_out")


def calculate_gain(nonlinearity: str) -> float:
    """The recommended gain for a nonlinearity, as ``torch.nn.init.calculate_gain``.

    nonlinearity: ``'linear'`` or ``'identity'`` (1), ``'tanh'`` (5/3) or ``'relu'`` (sqrt(2)).
    Raises ``ValueError`` for any other name.
    """
    if nonlinearity not in _GAINS:
        raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; "
                         f"expected one of {sorted(_GAINS)}")
    return _GAINS[nonlinearity]


def _check_args(name: str, n_in, n_out, rng) -> tuple[int, int]:
    """Validate the fans (positive integers) and the generator; return the fans as ints."""
    for label, n in (("n_in", n_in), ("n_out", n_out)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{name}: {label} must be a positive integer, got {n!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name}: rng must be a numpy.random.Generator such as np.random.default_rng(0), "
                        f"got {type(rng).__name__}")
    return int(n_in), int(n_out)


def _fan(name: str, n_in: int, n_out: int, mode: str) -> int:
    if mode not in _MODES:
        raise ValueError(f"{name}: unknown mode {mode!r}; expected 'fan_in' or 'fan_out'")
    return n_in if mode == "fan_in" else n_out


def lecun_normal(n_in: int, n_out: int, rng: np.random.Generator, gain: float = 1.0,
                 mode: str = "fan_in") -> np.ndarray:
    """Weights ``W: (n_in, n_out)`` from N(0, std^2) with ``std = gain / sqrt(n_in)`` (LeCun et al. 1998).

    Keeps ``Var[y] = Var[x]`` through a linear layer. ``mode='fan_out'`` uses ``n_out`` instead, which keeps
    the variance of the gradient in the backward pass.
    """
    n_in, n_out = _check_args("lecun_normal", n_in, n_out, rng)
    std = gain / math.sqrt(_fan("lecun_normal", n_in, n_out, mode))
    return rng.normal(0.0, std, size=(n_in, n_out))


def xavier_normal(n_in: int, n_out: int, rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    """Weights ``W: (n_in, n_out)`` from N(0, std^2) with ``std = gain * sqrt(2 / (n_in + n_out))``.

    Glorot & Bengio (2010): the harmonic compromise between ``1/n_in`` (forward) and ``1/n_out`` (backward);
    equals LeCun when ``n_in == n_out``. As ``torch.nn.init.xavier_normal_``.
    """
    n_in, n_out = _check_args("xavier_normal", n_in, n_out, rng)
    std = gain * math.sqrt(2.0 / (n_in + n_out))
    return rng.normal(0.0, std, size=(n_in, n_out))


def xavier_uniform(n_in: int, n_out: int, rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    """Weights ``W: (n_in, n_out)`` from U(-a, a) with ``a = gain * sqrt(6 / (n_in + n_out))``.

    U(-a, a) has variance ``a^2 / 3``, so ``a = sqrt(3) * std`` gives the std of ``xavier_normal``.
    As ``torch.nn.init.xavier_uniform_``.
    """
    n_in, n_out = _check_args("xavier_uniform", n_in, n_out, rng)
    bound = gain * math.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-bound, bound, size=(n_in, n_out))


def he_normal(n_in: int, n_out: int, rng: np.random.Generator, gain: float = math.sqrt(2.0),
              mode: str = "fan_in") -> np.ndarray:
    """Weights ``W: (n_in, n_out)`` from N(0, std^2) with ``std = gain / sqrt(n_in)``, i.e. ``Var = 2 / n_in``.

    He et al. (2015), "Delving deep into rectifiers": ReLU keeps half of the second moment and the gain
    sqrt(2) gives it back. This is PyTorch's ``kaiming_normal_(w, mode='fan_in', nonlinearity='relu')``;
    ``mode='fan_out'`` (``std = gain / sqrt(n_out)``) keeps the gradient's variance in the backward pass instead.
    (PyTorch's *default* for ``nn.Linear`` is a different, uniform, rule: ``kaiming_uniform_`` with ``a=sqrt(5)``.)
    """
    n_in, n_out = _check_args("he_normal", n_in, n_out, rng)
    std = gain / math.sqrt(_fan("he_normal", n_in, n_out, mode))
    return rng.normal(0.0, std, size=(n_in, n_out))


INITIALIZERS: dict[str, Callable[..., np.ndarray]] = {
    "lecun_normal": lecun_normal,
    "xavier_normal": xavier_normal,
    "xavier_uniform": xavier_uniform,
    "he_normal": he_normal,
}

DEFAULT_GAINS: dict[str, float] = {"lecun_normal": 1.0, "xavier_normal": 1.0, "xavier_uniform": 1.0,
                                   "he_normal": math.sqrt(2.0)}


def init_std(scheme: str, n_in: int, n_out: int, gain: float | None = None, mode: str = "fan_in") -> float:
    """The standard deviation of the weights that ``scheme`` targets for a ``(n_in, n_out)`` matrix.

    scheme: a key of ``INITIALIZERS``. gain: ``None`` uses the scheme's default (sqrt(2) for ``he_normal``,
    1 otherwise). mode: ``'fan_in'`` or ``'fan_out'``, for ``lecun_normal`` and ``he_normal`` only.
    For ``xavier_uniform`` this is the std of the uniform draw, ``bound / sqrt(3)``.
    """
    if scheme not in INITIALIZERS:
        raise ValueError(f"init_std: unknown scheme {scheme!r}; expected one of {sorted(INITIALIZERS)}")
    gain = DEFAULT_GAINS[scheme] if gain is None else gain
    if scheme in ("xavier_normal", "xavier_uniform"):
        if mode != "fan_in":
            raise ValueError(f"init_std: {scheme} averages fan_in and fan_out; mode does not apply (got {mode!r})")
        return gain * math.sqrt(2.0 / (n_in + n_out))
    return gain / math.sqrt(_fan("init_std", n_in, n_out, mode))
