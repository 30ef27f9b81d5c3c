"""Tests of helpers/conv.py: im2col convolution against a naive loop, gradients by finite differences, the layers."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import conv
from helpers.conv import (
    Conv2d, Flatten, GlobalAvgPool, PerPositionBatchNorm, col2im, conv2d_backward, conv2d_forward, conv2d_naive,
    conv_output_size, im2col, make_convnet,
)
from helpers.gradcheck import numerical_gradient, relative_error
from helpers.network import Linear, ReLU, Sequential, softmax_cross_entropy
from helpers.normalization import BatchNorm, GroupNorm, InstanceNorm

pytestmark = pytest.mark.filterwarnings("error", "default::pytest.PytestUnraisableExceptionWarning")


def distinct_shape(rng):
    """(N, C, H, W) with four different sizes: a mixed-up axis cannot go unnoticed."""
    while True:
        shape = tuple(int(v) for v in rng.integers(3, 8, size=4))
        if len(set(shape)) == 4:
            return shape


def check_gradient(what, analytic, f, x, dout, tol=1e-7):
    err = relative_error(analytic, numerical_gradient(f, x, dout))
    assert err < tol, f"{what}: relative error {err:.2e} between analytic and numerical gradient"


@pytest.mark.parametrize("seed", range(6))
def test_im2col_convolution_equals_the_naive_loop(seed):
    """conv2d_forward (im2col and one product) equals conv2d_naive on random shapes, kernels, strides and pads."""
    rng = np.random.default_rng(seed)
    n, c_in, h, w = distinct_shape(rng)
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    stride, pad = int(rng.integers(1, 3)), int(rng.integers(0, 2))
    c_out = int(rng.integers(1, 5))
    x, W, b = rng.normal(size=(n, c_in, h, w)), rng.normal(size=(c_out, c_in, kh, kw)), rng.normal(size=c_out)
    out, _ = conv2d_forward(x, W, b, stride, pad)
    expected = conv2d_naive(x, W, b, stride, pad)
    assert out.shape == (n, c_out, conv_output_size(h, kh, stride, pad), conv_output_size(w, kw, stride, pad))
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_naive_convolution_by_hand():
    """conv2d_naive: a 2x2 kernel of ones on a 3x3 ramp sums each 2x2 window; padding adds zeros."""
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    out = conv2d_naive(x, np.ones((1, 1, 2, 2)), np.array([0.5]))
    np.testing.assert_array_equal(out[0, 0], [[8.5, 12.5], [20.5, 24.5]])
    assert conv2d_naive(x, np.ones((1, 1, 3, 3)), np.zeros(1), pad=1)[0, 0, 0, 0] == 0 + 1 + 3 + 4


def test_col2im_is_the_adjoint_of_im2col():
    """<im2col(x), c> = <x, col2im(c)> for every x and c: col2im adds overlapping patches back."""
    rng = np.random.default_rng(10)
    shape = distinct_shape(rng)
    for stride, pad in ((1, 1), (2, 1), (2, 0)):
        x = rng.normal(size=shape)
        cols = im2col(x, 3, 2, stride, pad)
        c = rng.normal(size=cols.shape)
        np.testing.assert_allclose(np.sum(cols * c), np.sum(x * col2im(c, shape, 3, 2, stride, pad)))


@pytest.mark.parametrize("stride,pad", [(1, 0), (1, 1), (2, 1)])
def test_convolution_gradients(stride, pad):
    """conv2d_backward: dx, dW, db agree with centred finite differences, N != C != H != W."""
    rng = np.random.default_rng(20 + stride + pad)
    n, c_in, h, w = distinct_shape(rng)
    c_out = 3
    x, W, b = rng.normal(size=(n, c_in, h, w)), rng.normal(size=(c_out, c_in, 3, 3)), rng.normal(size=c_out)
    out, cache = conv2d_forward(x, W, b, stride, pad)
    dout = rng.normal(size=out.shape)
    dx, dW, db = conv2d_backward(dout, cache)
    assert dx.shape == x.shape and dW.shape == W.shape and db.shape == b.shape
    f = lambda: conv2d_forward(x, W, b, stride, pad)[0]  # noqa: E731
    check_gradient("dx", dx, f, x, dout)
    check_gradient("dW", dW, f, W, dout)
    check_gradient("db", db, f, b, dout)


def test_matmul_in_pieces_equals_one_product():
    """_matmul: pieces along the rows and along the inner axis add up to a @ b."""
    rng = np.random.default_rng(30)
    for shape_a, shape_b in (((3000, 9), (9, 16)), ((16, 3000), (3000, 144)), ((5, 4), (4, 3))):
        a, b = rng.normal(size=shape_a), rng.normal(size=shape_b)
        np.testing.assert_allclose(conv._matmul(a, b), a @ b, rtol=1e-12, atol=1e-10)


def check_layer(layer, x, rng):
    """Finite-difference check of a layer's dx and of each of its parameters."""
    out = layer.forward(x)
    dout = rng.normal(size=out.shape)
    dx = layer.backward(dout)
    f = lambda: layer.forward(x)  # noqa: E731
    check_gradient(f"dx of {layer!r}", dx, f, x, dout, tol=1e-6)
    for name in layer.params:
        check_gradient(f"d{name} of {layer!r}", layer.grads[name].copy(), f, layer.params[name], dout, tol=1e-6)


def test_layer_gradients():
    """Conv2d (stride 2), GlobalAvgPool, Flatten and PerPositionBatchNorm: gradients by finite differences; a first
    Conv2d (input_gradient=False) returns no dx."""
    rng = np.random.default_rng(40)
    n, c, h, w = distinct_shape(rng)
    first = Conv2d(c, 3, 3, rng, input_gradient=False)
    out = first.forward(rng.normal(size=(n, c, h, w)))
    assert first.backward(np.ones_like(out)) is None and first.grads["W"].shape == (3, c, 3, 3)
    layer = Conv2d(c, 3, 3, rng, stride=2)
    layer.params["b"][...] = rng.normal(size=3)
    check_layer(layer, rng.normal(size=(n, c, h, w)), rng)
    check_layer(GlobalAvgPool(), rng.normal(size=(n, c, h, w)), rng)
    check_layer(Flatten(), rng.normal(size=(n, c, h, w)), rng)
    per_position = PerPositionBatchNorm(c, h, w)
    per_position.params["gamma"][...] = rng.uniform(0.5, 1.5, size=c * h * w)
    per_position.params["beta"][...] = rng.normal(size=c * h * w)
    check_layer(per_position, rng.normal(size=(n, c, h, w)), rng)


def test_conv2d_layer_init_and_shapes():
    """Conv2d: He's std sqrt(2 / (C_in k k)), zero bias, pad k // 2 keeps H and W, stride 2 halves them."""
    rng = np.random.default_rng(50)
    layer = Conv2d(30, 40, 3, rng)
    np.testing.assert_allclose(layer.params["W"].std(), np.sqrt(2 / 270), rtol=0.03)
    np.testing.assert_array_equal(layer.params["b"], 0)
    assert layer.forward(np.ones((2, 30, 8, 8))).shape == (2, 40, 8, 8)
    assert Conv2d(3, 4, 3, rng, stride=2).forward(np.ones((2, 3, 8, 8))).shape == (2, 4, 4, 4)
    with pytest.raises(ValueError, match="channels"):
        conv2d_forward(np.ones((1, 2, 4, 4)), np.ones((1, 3, 3, 3)), np.zeros(1))


def test_per_position_batchnorm_is_batchnorm_on_the_flattened_map():
    """PerPositionBatchNorm = BatchNorm(C*H*W) on (N, C*H*W), in both modes; spatial BatchNorm differs from it."""
    rng = np.random.default_rng(60)
    x = rng.normal(size=(5, 3, 4, 2))
    per_position, flat = PerPositionBatchNorm(3, 4, 2), BatchNorm(24)
    np.testing.assert_allclose(per_position.forward(x), flat.forward(x.reshape(5, -1)).reshape(x.shape))
    per_position.eval()
    flat.eval()
    np.testing.assert_allclose(per_position.forward(x), flat.forward(x.reshape(5, -1)).reshape(x.shape))
    assert not np.allclose(BatchNorm(3).forward(x), PerPositionBatchNorm(3, 4, 2).forward(x))


@pytest.mark.parametrize("norm", conv.CONV_NORMS)
@pytest.mark.parametrize("head", ["flatten", "pool"])
def test_make_convnet_structure_and_gradients(norm, head):
    """make_convnet: Conv2d -> [norm] -> ReLU per convolution, a head, a Linear; the gradient of the first layer's
    weights, through the whole network, agrees with finite differences."""
    kinds = {None: None, "batch": BatchNorm, "batch_per_position": PerPositionBatchNorm, "group": GroupNorm,
             "instance": InstanceNorm}
    rng = np.random.default_rng(70)
    model = make_convnet(norm, rng=rng, channels=(4, 4), strides=(1, 2), num_groups=2, head=head)
    expected = [Conv2d] + ([kinds[norm]] if norm else []) + [ReLU]
    expected = expected * 2 + [Flatten if head == "flatten" else GlobalAvgPool, Linear]
    assert [type(layer) for layer in model.layers] == expected
    x = rng.normal(size=(3, 1, 8, 8))
    assert model.forward(x).shape == (3, 10)
    out = model.forward(x)
    dout = rng.normal(size=out.shape)
    assert model.backward(dout) is None, "the first convolution computes no gradient for the images"
    first = model[0]
    analytic = first.grads["W"].copy()
    numeric = numerical_gradient(lambda: model.forward(x), first.params["W"], dout)
    # One relative error for the whole array: entries near 0 (and ReLU kinks a step may cross) make the
    # entrywise one noisy for a network this deep.
    err = np.linalg.norm(analytic - numeric) / (np.linalg.norm(analytic) + np.linalg.norm(numeric))
    assert err < 1e-6, f"dW of the first convolution ({norm}, {head}): relative error {err:.2e}"
    with pytest.raises(ValueError, match="unknown norm"):
        make_convnet("layer", rng=rng)


def test_groupnorm_with_one_channel_per_group_is_instancenorm_in_the_network():
    """GroupNorm(C, C) and InstanceNorm(C, affine=True) networks from the same seed compute the same logits."""
    x = np.random.default_rng(80).normal(size=(4, 1, 8, 8))
    group = make_convnet("group", rng=np.random.default_rng(0), num_groups=16)
    instance = make_convnet("instance", rng=np.random.default_rng(0))
    np.testing.assert_allclose(group.forward(x), instance.forward(x), rtol=1e-10, atol=1e-12)


def test_a_training_step_lowers_the_loss():
    """A BatchNorm conv net: one SGD step on a batch lowers that batch's loss."""
    rng = np.random.default_rng(90)
    model = make_convnet("batch", rng=rng)
    x, y = rng.normal(size=(16, 1, 8, 8)), rng.integers(0, 10, size=16)
    loss, dlogits = softmax_cross_entropy(model.forward(x), y)
    model.backward(dlogits)
    for module, name in model.parameters():
        module.params[name] -= 0.05 * module.grads[name]
    assert softmax_cross_entropy(model.forward(x), y)[0] < loss
    assert isinstance(model, Sequential)
