"""The layer protocol every module of the course follows (Linear, ReLU, BatchNorm, ...).

A module maps ``forward(x) -> out`` and ``backward(dout) -> dx``; ``backward`` also fills ``grads`` with one array
per entry of ``params`` (same keys, same shapes). ``train()`` and ``eval()`` switch ``training``, which only the
normalization layers with running statistics read. Modelled on ``torch.nn.Module``, without autograd.
"""
from __future__ import annotations

import numpy as np


class Module:
    """Base class: parameters and their gradients by name, and a train/eval switch."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.training = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def train(self, mode: bool = True) -> "Module":
        """Training mode (batch statistics); returns self so calls chain."""
        self.training = mode
        return self

    def eval(self) -> "Module":
        """Evaluation mode (running statistics); returns self."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every gradient to zeros of its parameter's shape."""
        self.grads = {name: np.zeros_like(value) for name, value in self.params.items()}
