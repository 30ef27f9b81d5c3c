"""A small convolutional network in numpy: im2col convolution, pooling, and a builder (notebook 05, Part G).

Images are ``(N, C, H, W)``. A convolution with a ``(C_out, C_in, kh, kw)`` kernel is one matrix product once every
``kh x kw`` patch of the input is laid out as a row (**im2col**)::

    cols = im2col(x, kh, kw, stride, pad)              # (N * H_out * W_out, kh * kw * C_in)
    out  = cols @ kernel_matrix(W).T + b                # (N * H_out * W_out, C_out) -> (N, C_out, H_out, W_out)

and its backward is two more products plus **col2im**, which adds every patch's gradient back to the pixels it
came from. ``conv2d_naive`` computes the same with Python loops, to check the fast version against.

The layers follow the protocol of ``helpers.module.Module`` (as ``helpers.network``): ``forward(x) -> out``,
``backward(dout) -> dx`` filling ``grads``. ``make_convnet`` builds the network of notebook 05 with any of the
normalizations of ``helpers.normalization`` between each convolution and its ReLU; normalizing a feature map
``(N, C, H, W)`` is where the support sets of notebook 04 differ in full: BatchNorm over (N, H, W), GroupNorm over
(C/G, H, W), InstanceNorm over (H, W).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from helpers.module import Module
from helpers.network import Linear, ReLU, Sequential

__all__ = [
    "conv_output_size", "im2col", "col2im", "kernel_matrix", "conv2d_forward", "conv2d_backward", "conv2d_naive",
    "Conv2d", "GlobalAvgPool", "Flatten", "PerPositionBatchNorm", "CONV_NORMS", "make_convnet",
]

CONV_NORMS = (None, "batch", "batch_per_position", "group", "instance")


# ---------------------------------------------------------------------------------------------- im2col / col2im
# OpenBLAS runs a product on several threads once M * N * K exceeds 4 * 65536. For the tiny products of this network
# the threads cost far more than they save (six times slower on a busy 2-core machine), so ``_matmul`` cuts larger
# products into pieces below that size, each of which stays on one core.
_SINGLE_THREAD_MNK = 4 * 65536


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D arrays, computed in pieces of at most ``_SINGLE_THREAD_MNK`` multiply-adds each.

    a: (M, K), b: (K, N) -> (M, N). Cuts along M (rows of the result) or, when M is the smaller, along K (a sum).
    """
    m, k = a.shape
    n = b.shape[1]
    if m * k * n <= _SINGLE_THREAD_MNK:
        return a @ b
    if m >= k:
        rows = max(1, _SINGLE_THREAD_MNK // (k * n))
        out = np.empty((m, n), dtype=np.result_type(a, b))
        for start in range(0, m, rows):
            np.matmul(a[start:start + rows], b, out=out[start:start + rows])
        return out
    depth = max(1, _SINGLE_THREAD_MNK // (m * n))
    return sum(a[:, start:start + depth] @ b[start:start + depth] for start in range(0, k, depth))


def conv_output_size(size: int, k: int, stride: int, pad: int) -> int:
    """Output length along one axis: ``(size + 2 * pad - k) // stride + 1``; raises if the kernel does not fit."""
    if size + 2 * pad < k:
        raise ValueError(f"kernel {k} larger than the padded input {size} + 2 * {pad}")
    return (size + 2 * pad - k) // stride + 1


def im2col(x: np.ndarray, kh: int, kw: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Every kh x kw patch of the zero-padded input as one row.

    x: (N, C, H, W). Returns cols: (N * H_out * W_out, kh * kw * C); row ``(n * H_out + i) * W_out + j`` is the
    patch whose top-left corner is padded pixel (i * stride, j * stride) of sample n, flattened in (kh, kw, C)
    order, the order of ``kernel_matrix(W)``'s columns. A strided view of the padded input, channels last (so the
    copy moves runs of C contiguous values), then one copy: no Python loop.
    """
    n, c, h, w = x.shape
    h_out, w_out = conv_output_size(h, kh, stride, pad), conv_output_size(w, kw, stride, pad)
    padded = np.zeros((n, h + 2 * pad, w + 2 * pad, c), dtype=x.dtype)   # (N, H', W', C)
    padded[:, pad:pad + h, pad:pad + w, :] = x.transpose(0, 2, 3, 1)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(1, 2))  # (N, H'', W'', C, kh, kw)
    windows = windows[:, ::stride, ::stride][:, :h_out, :w_out]
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(n * h_out * w_out, kh * kw * c)


def col2im(cols: np.ndarray, x_shape: tuple[int, int, int, int], kh: int, kw: int, stride: int = 1,
           pad: int = 0) -> np.ndarray:
    """The adjoint of ``im2col``: add each row's entries back to the pixels of its patch (overlaps add up).

    cols: (N * H_out * W_out, kh * kw * C); x_shape: (N, C, H, W). Returns dx: x_shape.
    One vectorized addition per kernel offset (kh * kw of them, 9 for a 3 x 3 kernel), none per pixel.
    """
    n, c, h, w = x_shape
    h_out, w_out = conv_output_size(h, kh, stride, pad), conv_output_size(w, kw, stride, pad)
    patches = cols.reshape(n, h_out, w_out, kh, kw, c)
    padded = np.zeros((n, h + 2 * pad, w + 2 * pad, c), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            padded[:, i:i + stride * h_out:stride, j:j + stride * w_out:stride, :] += patches[:, :, :, i, j, :]
    return np.ascontiguousarray(padded[:, pad:pad + h, pad:pad + w, :].transpose(0, 3, 1, 2))


def kernel_matrix(W: np.ndarray) -> np.ndarray:
    """W: (C_out, C_in, kh, kw) -> (C_out, kh * kw * C_in), columns in the (kh, kw, C) order of ``im2col``."""
    return W.transpose(0, 2, 3, 1).reshape(W.shape[0], -1)


# ------------------------------------------------------------------------------------------------ convolution
def conv2d_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0):
    """2-D convolution (cross-correlation, as in every deep-learning library) by im2col.

    x: (N, C_in, H, W); W: (C_out, C_in, kh, kw); b: (C_out,).
    Returns out: (N, C_out, H_out, W_out) and the cache for ``conv2d_backward``.
    """
    n, c_in = x.shape[:2]
    c_out, c_w, kh, kw = W.shape
    if c_w != c_in:
        raise ValueError(f"conv2d_forward: x has {c_in} channels, W expects {c_w}")
    cols = im2col(x, kh, kw, stride, pad)
    h_out = conv_output_size(x.shape[2], kh, stride, pad)
    w_out = conv_output_size(x.shape[3], kw, stride, pad)
    out = _matmul(cols, kernel_matrix(W).T) + b
    out = out.reshape(n, h_out, w_out, c_out).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out), (cols, x.shape, W, stride, pad)


def conv2d_backward(dout: np.ndarray, cache: tuple, input_gradient: bool = True):
    """Gradients of ``conv2d_forward``: (dx, dW, db); dx is None with input_gradient=False.

    dout: (N, C_out, H_out, W_out), as rows dout_rows: (N * H_out * W_out, C_out).
    dx: (N, C_in, H, W) = col2im(dout_rows @ kernel_matrix(W)); dW: (C_out, C_in, kh, kw) = dout_rows.T @ cols,
    back in W's layout; db: (C_out,) = dout summed over (N, H_out, W_out).
    """
    cols, x_shape, W, stride, pad = cache
    c_out, _, kh, kw = W.shape
    dout_rows = dout.transpose(0, 2, 3, 1).reshape(-1, c_out)  # (N * H_out * W_out, C_out)
    dW = _matmul(dout_rows.T, cols).reshape(c_out, kh, kw, -1).transpose(0, 3, 1, 2)
    db = dout_rows.sum(axis=0)
    if not input_gradient:
        return None, dW, db
    dx = col2im(_matmul(dout_rows, kernel_matrix(W)), x_shape, kh, kw, stride, pad)
    return dx, dW, db


def conv2d_naive(x: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0) -> np.ndarray:
    """The same convolution with explicit loops over samples, output channels and positions: slow, for checking.

    ``out[n, o, i, j] = b[o] + sum over c, p, q of W[o, c, p, q] * x_padded[n, c, i * stride + p, j * stride + q]``.
    """
    n, _, h, w = x.shape
    c_out, _, kh, kw = W.shape
    h_out, w_out = conv_output_size(h, kh, stride, pad), conv_output_size(w, kw, stride, pad)
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((n, c_out, h_out, w_out), dtype=np.result_type(x, W))
    for s in range(n):
        for o in range(c_out):
            for i in range(h_out):
                for j in range(w_out):
                    patch = padded[s, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
                    out[s, o, i, j] = np.sum(patch * W[o]) + b[o]
    return out


class Conv2d(Module):
    """Convolution layer with a square kernel: W: (C_out, C_in, k, k), b: (C_out,) starts at zero.

    W is drawn from ``rng`` with He's std sqrt(2 / fan_in), fan_in = C_in * k * k (the inputs one output sums).
    stride, pad: as in ``conv2d_forward`` (pad = k // 2 and stride 1 keep H and W).
    input_gradient: False for a first layer, whose input (the images) needs no gradient: backward then fills
        grads and returns None, skipping the col2im it does not need.
    """

    def __init__(self, c_in: int, c_out: int, k: int, rng: np.random.Generator, *, stride: int = 1,
                 pad: int | None = None, input_gradient: bool = True) -> None:
        super().__init__()
        self.c_in, self.c_out, self.k, self.stride = c_in, c_out, k, stride
        self.input_gradient = input_gradient
        self.pad = k // 2 if pad is None else pad
        std = np.sqrt(2.0 / (c_in * k * k))
        self.params = {"W": rng.standard_normal((c_out, c_in, k, k)) * std, "b": np.zeros(c_out)}
        self.zero_grad()
        self._cache = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, C_in, H, W) -> out: (N, C_out, H_out, W_out)."""
        out, self._cache = conv2d_forward(x, self.params["W"], self.params["b"], self.stride, self.pad)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, C_out, H_out, W_out) -> dx: (N, C_in, H, W) (None without input_gradient); fills grads."""
        dx, self.grads["W"], self.grads["b"] = conv2d_backward(dout, self._cache, self.input_gradient)
        return dx

    def __repr__(self) -> str:
        return f"Conv2d({self.c_in}, {self.c_out}, k={self.k}, stride={self.stride}, pad={self.pad})"


class GlobalAvgPool(Module):
    """Mean over the positions of each feature map: (N, C, H, W) -> (N, C). No parameters."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, C) -> dx: (N, C, H, W), each position gets dout / (H * W)."""
        n, c, h, w = self.shape
        return np.broadcast_to(dout[:, :, None, None] / (h * w), self.shape).copy()

    def __repr__(self) -> str:
        return "GlobalAvgPool()"


class Flatten(Module):
    """(N, C, H, W) -> (N, C * H * W), row-major; backward reshapes back. No parameters."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout.reshape(self.shape)

    def __repr__(self) -> str:
        return "Flatten()"


class PerPositionBatchNorm(Module):
    """BatchNorm whose support set is the batch alone: one mean and variance per (channel, position) over N.

    What an MLP's BatchNorm does when the feature map is flattened: (N, C, H, W) -> (N, C*H*W) -> BatchNorm(C*H*W)
    -> back. Compared with spatial BatchNorm (over N, H, W per channel) it drops the (H, W) part of the support
    set; at N = 2 every statistic comes from 2 values. gamma, beta: (C * H * W,); running statistics likewise.
    """

    def __init__(self, num_channels: int, height: int, width: int, batch_norm=None) -> None:
        super().__init__()
        if batch_norm is None:
            from helpers.normalization import BatchNorm as batch_norm
        self.inner = batch_norm(num_channels * height * width)
        self.num_channels, self.height, self.width = num_channels, height, width
        self.params, self.grads = self.inner.params, self.inner.grads

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.inner.train(self.training)
        self.shape = x.shape
        return self.inner.forward(x.reshape(x.shape[0], -1)).reshape(x.shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = self.inner.backward(dout.reshape(dout.shape[0], -1)).reshape(dout.shape)
        self.grads = self.inner.grads
        return dx

    def zero_grad(self) -> None:
        if hasattr(self, "inner"):
            self.inner.zero_grad()
            self.grads = self.inner.grads

    def __repr__(self) -> str:
        return f"PerPositionBatchNorm({self.num_channels} x {self.height} x {self.width})"


# ------------------------------------------------------------------------------------------------------ model
def _reference_modules() -> SimpleNamespace:
    from helpers.normalization import BatchNorm, GroupNorm, InstanceNorm
    return SimpleNamespace(BatchNorm=BatchNorm, GroupNorm=GroupNorm, InstanceNorm=InstanceNorm)


def _conv_norm(norm: str, channels: int, size: int, num_groups: int, modules) -> Module:
    if norm == "batch":
        return modules.BatchNorm(channels)
    if norm == "batch_per_position":
        return PerPositionBatchNorm(channels, size, size, batch_norm=modules.BatchNorm)
    if norm == "group":
        return modules.GroupNorm(num_groups, channels)
    return modules.InstanceNorm(channels, affine=True)


def make_convnet(norm: str | None = None, *, rng: np.random.Generator, channels: tuple[int, ...] = (16, 16, 16),
                 strides: tuple[int, ...] = (1, 2, 1), image_size: int = 8, num_classes: int = 10,
                 num_groups: int = 4, head: str = "flatten", modules=None) -> Sequential:
    """(Conv2d 3x3 -> [norm] -> ReLU) per entry of ``channels``, then a head and a Linear layer to the logits.

    Input (N, 1, image_size, image_size). Each convolution has a 3 x 3 kernel, padding 1 and the given stride
    (the default 1, 2, 1 maps 8 x 8 to 8 x 8, 4 x 4, 4 x 4).
    norm: None, 'batch' (spatial BatchNorm: over N, H, W per channel), 'batch_per_position' (over N only, per
    channel and position: ``PerPositionBatchNorm``), 'group' (GroupNorm with ``num_groups`` groups), 'instance'
    (InstanceNorm with a per-channel affine gamma, beta, so that it differs from GroupNorm only in the support
    set: it is GroupNorm with one channel per group).
    head: 'flatten' (the last feature maps as one vector, C * H * W values) or 'pool' (their mean per channel).
    modules: a namespace with BatchNorm, GroupNorm and InstanceNorm classes, e.g. from
        ``helpers.own_modules.load_own_modules``; None takes ``helpers.normalization``'s.
    rng: draws every weight, layer by layer.
    The first convolution computes no gradient for the images (``input_gradient=False``): ``backward`` returns None.
    """
    if norm not in CONV_NORMS:
        raise ValueError(f"make_convnet: unknown norm {norm!r}; expected one of {CONV_NORMS}")
    if head not in ("flatten", "pool"):
        raise ValueError(f"make_convnet: unknown head {head!r}; expected 'flatten' or 'pool'")
    if len(strides) != len(channels):
        raise ValueError(f"make_convnet: one stride per convolution, got {len(strides)} for {len(channels)}")
    modules = _reference_modules() if modules is None else modules
    layers: list[Module] = []
    c_in, size = 1, image_size
    for c_out, stride in zip(channels, strides):
        layers.append(Conv2d(c_in, c_out, 3, rng, stride=stride, input_gradient=bool(layers)))
        size = conv_output_size(size, 3, stride, 1)
        if norm is not None:
            layers.append(_conv_norm(norm, c_out, size, num_groups, modules))
        layers.append(ReLU())
        c_in = c_out
    if head == "flatten":
        layers += [Flatten(), Linear(c_in * size * size, num_classes, rng)]
    else:
        layers += [GlobalAvgPool(), Linear(c_in, num_classes, rng)]
    return Sequential(*layers)
