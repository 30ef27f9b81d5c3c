"""Tests of helpers.normalization: a loop-based oracle, finite differences, PyTorch's conventions, properties.

The oracle below normalizes one support set at a time with explicit loops (``np.var`` of a slice, no shared code
with the vectorized kernel); its backward is the numerical gradient of the loop forward.

Gradients are compared with helpers.gradcheck's elementwise relative error, which is harsh on the few entries of a
360-element gradient that lie near 0: a plain centred difference has an absolute error of about 1e-10, a large
fraction of an entry of 1e-4. ``finite_difference`` therefore differentiates the change of the output from the
unperturbed one (no roundoff from the untouched entries) and combines two step sizes (Richardson), which brings the
absolute error to about 1e-12 and the relative error below 1e-7 with a margin.
"""
from __future__ import annotations

import numpy as np
import pytest

from helpers import normalization as nm
from helpers.gradcheck import numerical_gradient, relative_error

EPS = 1e-5
SHAPE_4D = (5, 6, 3, 4)
SHAPE_2D = (7, 12)  # groups of 4 and 6 channels for G = 3 and G = 2


# --- the independent oracle: one support set at a time ----------------------------------------------------------

def _normalize_slice(values, eps=EPS):
    return (values - values.mean()) / np.sqrt(np.var(values) + eps)


def loop_forward(variant, x, gamma, beta, groups=None, eps=EPS):
    """Reference forward by explicit loops over channels (batch), samples (layer), samples x channels (instance)
    or samples x groups (group). gamma/beta None means no affine."""
    n, c = x.shape[:2]
    x_hat = np.empty_like(x)
    if variant == "batch":
        for j in range(c):
            x_hat[:, j] = _normalize_slice(x[:, j], eps)
    elif variant == "layer":
        for i in range(n):
            x_hat[i] = _normalize_slice(x[i], eps)
    elif variant == "instance":
        for i in range(n):
            for j in range(c):
                x_hat[i, j] = _normalize_slice(x[i, j], eps)
    elif variant == "group":
        size = c // groups
        for i in range(n):
            for g in range(groups):
                x_hat[i, g * size:(g + 1) * size] = _normalize_slice(x[i, g * size:(g + 1) * size], eps)
    out = x_hat.copy()
    if gamma is not None:
        if variant == "layer":
            out = out * gamma
        else:
            for j in range(c):
                out[:, j] = out[:, j] * gamma[j]
    if beta is not None:
        if variant == "layer":
            out = out + beta
        else:
            for j in range(c):
                out[:, j] = out[:, j] + beta[j]
    return out


def ours_forward(variant, x, gamma, beta, groups=None):
    """The functions under test, in training mode, as (out, backward)."""
    if variant == "batch":
        c = x.shape[1]
        out, cache, _, _ = nm.batch_norm_forward(x, gamma, beta, np.zeros(c), np.ones(c), training=True)
        return out, lambda dout: nm.batch_norm_backward(dout, cache)
    if variant == "layer":
        out, cache = nm.layer_norm_forward(x, gamma, beta)
        return out, lambda dout: nm.layer_norm_backward(dout, cache)
    if variant == "instance":
        out, cache = nm.instance_norm_forward(x, gamma, beta)
        return out, lambda dout: nm.instance_norm_backward(dout, cache)
    out, cache = nm.group_norm_forward(x, groups, gamma, beta)
    return out, lambda dout: nm.group_norm_backward(dout, cache)


def finite_difference(forward, x, dout, h=2e-3, richardson=True):
    """Numerical gradient of sum(forward() * dout) with respect to x (perturbed in place by helpers.gradcheck).

    richardson=False: one centred difference (absolute error about 1e-11 with h = 1e-4), half the cost.
    """
    out0 = forward()
    change = lambda: forward() - out0  # noqa: E731
    if not richardson:
        return numerical_gradient(change, x, dout, h)
    return (4 * numerical_gradient(change, x, dout, h / 2) - numerical_gradient(change, x, dout, h)) / 3


CASES = [  # (variant, shape, groups)
    ("batch", SHAPE_4D, None), ("batch", SHAPE_2D, None),
    ("layer", SHAPE_4D, None), ("layer", SHAPE_2D, None),
    ("instance", SHAPE_4D, None),
    ("group", SHAPE_4D, 3), ("group", SHAPE_4D, 2), ("group", SHAPE_2D, 3), ("group", SHAPE_2D, 2),
]
CASE_IDS = [f"{v}-{len(s)}d" + (f"-G{g}" if g else "") for v, s, g in CASES]
FORWARD_CASES = CASES + [("group", (4, 6), 3)]  # plus groups of 2 channels: x_hat is +-1 there
FORWARD_IDS = CASE_IDS + ["group-2d-G3-pairs"]


def make_inputs(variant, shape, affine, seed, dtype=np.float64):
    """Random x (not centred, not unit scale), random gamma and beta (gamma = 1 hides bugs), random dout."""
    rng = np.random.default_rng(seed)
    x = (3.0 + 2.0 * rng.standard_normal(shape)).astype(dtype)
    param_shape = shape[1:] if variant == "layer" else shape[1:2]
    gamma = rng.uniform(0.5, 2.0, param_shape) * rng.choice([-1.0, 1.0], param_shape) if affine else None
    beta = rng.standard_normal(param_shape) if affine else None
    dout = rng.standard_normal(shape).astype(dtype)
    return x, gamma, beta, dout


# --- the generic kernel ------------------------------------------------------------------------------------------

def test_support_axes_values():
    """support_axes gives the reduction axes of each variant for (N, C) and (N, C, H, W)."""
    assert nm.support_axes("batch", 2) == (0,)
    assert nm.support_axes("batch", 4) == (0, 2, 3)
    assert nm.support_axes("layer", 2) == (1,)
    assert nm.support_axes("layer", 4) == (1, 2, 3)
    assert nm.support_axes("instance", 4) == (2, 3)


@pytest.mark.parametrize("variant, ndim, match", [
    ("instance", 2, "instance"), ("group", 4, "group"), ("Batch", 4, "Batch"), ("batch", 1, "ndim"),
])
def test_support_axes_invalid(variant, ndim, match):
    """support_axes raises a ValueError that names the bad variant or dimension."""
    with pytest.raises(ValueError, match=match):
        nm.support_axes(variant, ndim)


def test_moments_two_pass_biased_keepdims():
    """moments: keepdims mean and biased variance, equal to np.mean / np.var (ddof=0)."""
    x = np.random.default_rng(0).standard_normal(SHAPE_4D)
    mean, var = nm.moments(x, (0, 2, 3))
    assert mean.shape == var.shape == (1, 6, 1, 1)
    np.testing.assert_allclose(mean.ravel(), x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(var.ravel(), x.var(axis=(0, 2, 3)), rtol=1e-12)


def test_normalize_forward_zero_mean_unit_variance():
    """normalize_forward: x_hat has mean 0 and variance var / (var + eps) over the axes (eps inside the sqrt)."""
    x = 5.0 + 0.01 * np.random.default_rng(1).standard_normal(SHAPE_4D)
    x_hat, _ = nm.normalize_forward(x, (1, 2, 3))
    var = x.var(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(x_hat.mean(axis=(1, 2, 3)), 0.0, atol=1e-10)
    np.testing.assert_allclose(x_hat.var(axis=(1, 2, 3), keepdims=True), var / (var + EPS), rtol=1e-10)


@pytest.mark.parametrize("axes", [(0,), (0, 2, 3), (1, 2, 3), (2, 3)])
def test_normalize_backward_gradcheck(axes):
    """normalize_backward agrees with finite differences (the gradient flows through mean and var)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(SHAPE_4D)
    dx_hat = rng.standard_normal(SHAPE_4D)
    _, cache = nm.normalize_forward(x, axes)
    numeric = finite_difference(lambda: nm.normalize_forward(x, axes)[0], x, dx_hat)
    assert relative_error(nm.normalize_backward(dx_hat, cache), numeric) < 1e-7


@pytest.mark.parametrize("param_shape, gamma_shape", [((1, 6, 1, 1), (6,)), (None, (6, 3, 4)), (None, (4,))])
def test_compensate_gradients_summed_over_broadcast_axes(param_shape, gamma_shape):
    """compensate_backward: dgamma = sum(dout * x_hat) and dbeta = sum(dout) over every broadcast axis."""
    rng = np.random.default_rng(3)
    x_hat, dout = rng.standard_normal(SHAPE_4D), rng.standard_normal(SHAPE_4D)
    gamma, beta = rng.standard_normal(gamma_shape), rng.standard_normal(gamma_shape)
    out, cache = nm.compensate_forward(x_hat, gamma, beta, param_shape)
    dx_hat, dgamma, dbeta = nm.compensate_backward(dout, cache)
    assert dgamma.shape == dbeta.shape == gamma_shape
    for arg, analytic in ((x_hat, dx_hat), (gamma, dgamma), (beta, dbeta)):
        numeric = finite_difference(lambda: nm.compensate_forward(x_hat, gamma, beta, param_shape)[0], arg, dout)
        assert relative_error(analytic, numeric) < 1e-7


# --- every variant against the loop oracle -----------------------------------------------------------------------

@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no-affine"])
@pytest.mark.parametrize("variant, shape, groups", FORWARD_CASES, ids=FORWARD_IDS)
def test_forward_matches_loop_oracle(variant, shape, groups, affine):
    """The vectorized forward equals the loop-based oracle to 1e-6 relative (float64, random gamma and beta)."""
    x, gamma, beta, _ = make_inputs(variant, shape, affine, seed=10)
    out, _ = ours_forward(variant, x, gamma, beta, groups)
    np.testing.assert_allclose(out, loop_forward(variant, x, gamma, beta, groups), rtol=1e-6, atol=1e-12,
                               err_msg=f"{variant} forward, shape {shape}, groups {groups}, affine {affine}")


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no-affine"])
@pytest.mark.parametrize("variant, shape, groups", CASES, ids=CASE_IDS)
def test_backward_matches_oracle_numerical_gradient(variant, shape, groups, affine):
    """dx, dgamma, dbeta equal the numerical gradient of the loop oracle to 1e-6 relative."""
    x, gamma, beta, dout = make_inputs(variant, shape, affine, seed=11)
    _, backward = ours_forward(variant, x, gamma, beta, groups)
    grads = backward(dout)
    oracle = lambda: loop_forward(variant, x, gamma, beta, groups)  # noqa: E731 (reads the perturbed arrays)
    args = (x, gamma, beta) if affine else (x,)
    for name, arg, analytic in zip(("dx", "dgamma", "dbeta"), args, grads):
        err = relative_error(analytic, finite_difference(oracle, arg, dout, h=1e-4, richardson=False))
        assert err < 1e-6, f"{variant} {name}, shape {shape}, groups {groups}: relative error {err:.1e}"
    if not affine:
        assert grads[1] is None and grads[2] is None


@pytest.mark.parametrize("variant, shape, groups", CASES, ids=CASE_IDS)
def test_gradcheck_random_gamma(variant, shape, groups):
    """Finite differences of our own forward agree with dx, dgamma, dbeta to a relative error < 1e-7."""
    x, gamma, beta, dout = make_inputs(variant, shape, True, seed=12)
    _, backward = ours_forward(variant, x, gamma, beta, groups)
    dx, dgamma, dbeta = backward(dout)
    f = lambda: ours_forward(variant, x, gamma, beta, groups)[0]  # noqa: E731
    for name, arg, analytic in (("dx", x, dx), ("dgamma", gamma, dgamma), ("dbeta", beta, dbeta)):
        err = relative_error(analytic, finite_difference(f, arg, dout))
        assert err < 1e-7, f"{variant} {name}, shape {shape}, groups {groups}: relative error {err:.1e}"


# --- PyTorch's conventions ---------------------------------------------------------------------------------------

def test_batchnorm_initial_running_stats():
    """BatchNorm starts with running_mean 0, running_var 1, no batch tracked, gamma 1, beta 0."""
    bn = nm.BatchNorm(4)
    np.testing.assert_array_equal(bn.running_mean, np.zeros(4))
    np.testing.assert_array_equal(bn.running_var, np.ones(4))
    assert bn.num_batches_tracked == 0 and bn.momentum == 0.1 and bn.eps == 1e-5
    np.testing.assert_array_equal(bn.params["gamma"], np.ones(4))
    np.testing.assert_array_equal(bn.params["beta"], np.zeros(4))


@pytest.mark.parametrize("shape", [SHAPE_4D, SHAPE_2D])
def test_running_stats_one_step(shape):
    """One training step: running = 0.9 * running + 0.1 * batch, with the UNBIASED batch variance."""
    x = make_inputs("batch", shape, False, seed=20)[0]
    axes = nm.support_axes("batch", x.ndim)
    bn = nm.BatchNorm(shape[1])
    bn(x)
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.mean(axis=axes), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * x.var(axis=axes, ddof=1), rtol=1e-12,
                               err_msg="running_var must use the unbiased (N*H*W - 1) batch variance")
    assert bn.num_batches_tracked == 1


def test_running_stats_several_steps_and_no_input_mutation():
    """Several steps follow the recursion; batch_norm_forward returns new arrays and modifies no input."""
    rng = np.random.default_rng(21)
    c, momentum = 6, 0.3
    running_mean, running_var = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    expected_mean, expected_var = running_mean.copy(), running_var.copy()
    for step in range(4):
        x = 2.0 * step + rng.standard_normal(SHAPE_4D)
        x_before, mean_before, var_before = x.copy(), running_mean.copy(), running_var.copy()
        _, _, new_mean, new_var = nm.batch_norm_forward(x, None, None, running_mean, running_var, True, momentum)
        np.testing.assert_array_equal(x, x_before)
        np.testing.assert_array_equal(running_mean, mean_before)
        np.testing.assert_array_equal(running_var, var_before)
        expected_mean = (1 - momentum) * expected_mean + momentum * x.mean(axis=(0, 2, 3))
        expected_var = (1 - momentum) * expected_var + momentum * x.var(axis=(0, 2, 3), ddof=1)
        np.testing.assert_allclose(new_mean, expected_mean, rtol=1e-12)
        np.testing.assert_allclose(new_var, expected_var, rtol=1e-12)
        running_mean, running_var = new_mean, new_var


def test_update_running_stats_formula_and_invalid_momentum():
    """update_running_stats: (1 - m) * running + m * batch; a momentum outside [0, 1] is a ValueError."""
    new_mean, new_var = nm.update_running_stats(np.array([1.0]), np.array([2.0]), np.array([3.0]), np.array([4.0]),
                                                0.25)
    np.testing.assert_allclose((new_mean, new_var), ([1.5], [2.5]))
    with pytest.raises(ValueError, match="momentum"):
        nm.update_running_stats(np.zeros(1), np.ones(1), np.zeros(1), np.ones(1), 1.5)


def test_batchnorm_momentum_none_is_cumulative_average():
    """momentum=None: the running mean is the plain average of the batch means (PyTorch's cumulative average)."""
    rng = np.random.default_rng(22)
    bn = nm.BatchNorm(3, momentum=None)
    batches = [rng.standard_normal((8, 3)) + k for k in range(3)]
    for x in batches:
        bn(x)
    np.testing.assert_allclose(bn.running_mean, np.mean([x.mean(axis=0) for x in batches], axis=0), rtol=1e-12)


@pytest.mark.parametrize("shape", [SHAPE_4D, SHAPE_2D])
def test_eval_uses_running_stats_unchanged(shape):
    """Eval mode normalizes with the running statistics and leaves them (and the counter) unchanged."""
    x, gamma, beta, dout = make_inputs("batch", shape, True, seed=23)
    rng = np.random.default_rng(24)
    running_mean, running_var = rng.standard_normal(shape[1]), rng.uniform(0.5, 2.0, shape[1])
    out, cache, new_mean, new_var = nm.batch_norm_forward(x, gamma, beta, running_mean, running_var, False)
    assert new_mean is running_mean and new_var is running_var
    param = nm.channel_shape(x)
    expected = gamma.reshape(param) * (x - running_mean.reshape(param)) / np.sqrt(running_var.reshape(param) + EPS)
    np.testing.assert_allclose(out, expected + beta.reshape(param), rtol=1e-12)

    bn = nm.BatchNorm(shape[1])
    bn.running_mean, bn.running_var = running_mean.copy(), running_var.copy()
    bn.eval()(x)
    np.testing.assert_array_equal(bn.running_mean, running_mean)
    np.testing.assert_array_equal(bn.running_var, running_var)
    assert bn.num_batches_tracked == 0

    dx, dgamma, dbeta = nm.batch_norm_backward(dout, cache)  # eval backward: the affine map's
    f = lambda: nm.batch_norm_forward(x, gamma, beta, running_mean, running_var, False)[0]  # noqa: E731
    for arg, analytic in ((x, dx), (gamma, dgamma), (beta, dbeta)):
        assert relative_error(analytic, finite_difference(f, arg, dout)) < 1e-7


def test_no_running_stats_uses_batch_stats_in_eval():
    """track_running_stats=False: no buffers, batch statistics in eval mode too (PyTorch's behaviour)."""
    x = make_inputs("batch", SHAPE_4D, False, seed=25)[0]
    bn = nm.BatchNorm(6, track_running_stats=False)
    assert bn.running_mean is None and bn.running_var is None
    np.testing.assert_allclose(bn.eval()(x), loop_forward("batch", x, None, None), rtol=1e-10)


@pytest.mark.parametrize("shape", [(1, 4), (1, 4, 1, 1)])
def test_batchnorm_one_value_per_channel_raises(shape):
    """Training with one value per channel (N*H*W == 1) is a ValueError, as in PyTorch; eval mode is fine."""
    x = np.ones(shape)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        nm.BatchNorm(4)(x)
    assert nm.BatchNorm(4).eval()(x).shape == shape
    assert nm.BatchNorm(4)(np.ones((1, 4, 2, 1))).shape == (1, 4, 2, 1)  # N = 1 with H*W = 2 is allowed


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("variant, shape, groups", CASES, ids=CASE_IDS)
def test_dtype_preserved(variant, shape, groups, dtype):
    """out and dx keep the input dtype; dgamma and dbeta keep gamma's dtype."""
    x, gamma, beta, dout = make_inputs(variant, shape, True, seed=26, dtype=dtype)
    out, backward = ours_forward(variant, x, gamma, beta, groups)
    dx, dgamma, dbeta = backward(dout)
    assert out.dtype == dtype and dx.dtype == dtype
    assert dgamma.dtype == gamma.dtype and dbeta.dtype == beta.dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_modules_and_kernel_keep_dtype(dtype):
    """The modules (train and eval) and the kernel functions keep float32 and float64."""
    x = make_inputs("batch", SHAPE_4D, False, seed=27, dtype=dtype)[0]
    modules = [nm.BatchNorm(6), nm.LayerNorm((6, 3, 4)), nm.InstanceNorm(6, affine=True), nm.GroupNorm(3, 6)]
    for module in modules + [nm.BatchNorm(6).eval()]:
        out = module(x)
        assert out.dtype == dtype and module.backward(out).dtype == dtype, type(module).__name__
    assert nm.moments(x, (0,))[1].dtype == dtype and nm.naive_variance(x, (0,)).dtype == dtype
    running_mean, running_var = nm.BatchNorm(6).running_mean, nm.BatchNorm(6).running_var
    _, _, new_mean, _ = nm.batch_norm_forward(x, None, None, running_mean, running_var, True)
    assert new_mean.dtype == np.float64  # running statistics keep their own dtype


# --- invalid arguments -------------------------------------------------------------------------------------------

def test_invalid_arguments_raise_value_error():
    """Bad group counts, parameter shapes and input shapes raise ValueErrors that name the problem."""
    x = np.zeros(SHAPE_4D)
    with pytest.raises(ValueError, match="num_groups"):
        nm.group_norm_forward(x, 4, None, None)
    with pytest.raises(ValueError, match="divisible"):
        nm.GroupNorm(4, 6)
    with pytest.raises(ValueError, match="gamma"):
        nm.batch_norm_forward(x, np.ones(5), None, None, None, True)
    with pytest.raises(ValueError, match="gamma"):
        nm.layer_norm_forward(x, np.ones(6), None)
    with pytest.raises(ValueError, match="instance"):
        nm.instance_norm_forward(np.zeros(SHAPE_2D))
    with pytest.raises(ValueError, match="normalized_shape"):
        nm.LayerNorm(6)(x)
    with pytest.raises(RuntimeError, match="before forward"):
        nm.GroupNorm(3, 6).backward(x)


# --- modules -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("module, variant, groups", [
    (nm.BatchNorm(6), "batch", None), (nm.LayerNorm((6, 3, 4)), "layer", None),
    (nm.InstanceNorm(6, affine=True), "instance", None), (nm.GroupNorm(2, 6), "group", 2),
], ids=["BatchNorm", "LayerNorm", "InstanceNorm", "GroupNorm"])
def test_modules_match_oracle_and_fill_grads(module, variant, groups):
    """A module with random gamma/beta matches the oracle; backward fills grads with the keys and shapes of params."""
    x, gamma, beta, dout = make_inputs(variant, SHAPE_4D, True, seed=30)
    module.params = {"gamma": gamma, "beta": beta}
    np.testing.assert_allclose(module(x), loop_forward(variant, x, gamma, beta, groups), rtol=1e-6, atol=1e-12)
    dx = module.backward(dout)
    assert dx.shape == x.shape and set(module.grads) == set(module.params)
    for name in module.params:
        assert module.grads[name].shape == module.params[name].shape


def test_module_defaults():
    """InstanceNorm has no affine by default; affine=False leaves params and grads empty; LayerNorm accepts an int."""
    x = make_inputs("batch", SHAPE_2D, False, seed=31)[0]
    inorm = nm.InstanceNorm(6)
    assert inorm.params == {} and not hasattr(inorm, "running_mean")
    bn = nm.BatchNorm(SHAPE_2D[1], affine=False)
    bn.backward(bn(x))
    assert bn.params == {} and bn.grads == {}
    assert nm.LayerNorm(6).params["gamma"].shape == (6,)
    assert nm.LayerNorm((6, 3, 4)).params["gamma"].shape == (6, 3, 4)


# --- properties of the support sets ------------------------------------------------------------------------------

def test_groupnorm_with_one_channel_per_group_is_instancenorm():
    """GroupNorm with G = C equals InstanceNorm (affine off)."""
    x = make_inputs("group", SHAPE_4D, False, seed=40)[0]
    np.testing.assert_allclose(nm.group_norm_forward(x, 6, None, None)[0], nm.instance_norm_forward(x)[0],
                               rtol=1e-12, atol=1e-12)


def test_groupnorm_with_one_group_normalizes_like_layernorm():
    """GroupNorm with G = 1 gives LayerNorm's x_hat (their affine shapes differ: (C,) versus (C, H, W))."""
    for shape in (SHAPE_4D, SHAPE_2D):
        x = make_inputs("group", shape, False, seed=41)[0]
        np.testing.assert_allclose(nm.group_norm_forward(x, 1, None, None)[0], nm.layer_norm_forward(x, None, None)[0],
                                   rtol=1e-12, atol=1e-12)


def test_only_batchnorm_depends_on_other_samples():
    """Changing sample 1 changes BatchNorm's output for sample 0, but not LayerNorm's, InstanceNorm's or GroupNorm's."""
    x, _, _, _ = make_inputs("batch", SHAPE_4D, False, seed=42)
    x_other = x.copy()
    x_other[1] = 10.0 * x_other[1] + 5.0
    outputs = {
        "BatchNorm": lambda v: nm.BatchNorm(6)(v),
        "LayerNorm": lambda v: nm.LayerNorm((6, 3, 4))(v),
        "InstanceNorm": lambda v: nm.InstanceNorm(6)(v),
        "GroupNorm": lambda v: nm.GroupNorm(3, 6)(v),
    }
    changes = {name: np.max(np.abs(f(x)[0] - f(x_other)[0])) for name, f in outputs.items()}
    assert changes["BatchNorm"] > 0.1, changes
    assert changes["LayerNorm"] == changes["InstanceNorm"] == changes["GroupNorm"] == 0.0, changes


def test_eval_batchnorm_folds_into_linear():
    """x @ W_folded + b_folded equals eval-mode BatchNorm(x @ W + b)."""
    rng = np.random.default_rng(43)
    x, W, b = rng.standard_normal((9, 5)), rng.standard_normal((5, 4)), rng.standard_normal(4)
    gamma, beta = rng.uniform(-2.0, 2.0, 4), rng.standard_normal(4)
    running_mean, running_var = rng.standard_normal(4), rng.uniform(0.1, 3.0, 4)
    expected, _, _, _ = nm.batch_norm_forward(x @ W + b, gamma, beta, running_mean, running_var, training=False)
    W_folded, b_folded = nm.fold_batchnorm_into_linear(W, b, gamma, beta, running_mean, running_var)
    assert W_folded.shape == W.shape and b_folded.shape == b.shape
    np.testing.assert_allclose(x @ W_folded + b_folded, expected, rtol=1e-10, atol=1e-12)


# --- numerics ----------------------------------------------------------------------------------------------------

def test_naive_variance_cancels_in_float32_two_pass_does_not():
    """On 1e4 + noise (std 1) in float32, E[x^2] - E[x]^2 is far off; the two-pass moments is within 1e-2."""
    rng = np.random.default_rng(50)
    x = (1e4 + rng.standard_normal((256, 8, 8, 8))).astype(np.float32)
    axes = (0, 2, 3)
    true_var = x.astype(np.float64).var(axis=axes)
    naive_error = np.abs(nm.naive_variance(x, axes).ravel() / true_var - 1)
    two_pass_error = np.abs(nm.moments(x, axes)[1].ravel() / true_var - 1)
    print(f"relative error of the variance: naive {naive_error.min():.2g} to {naive_error.max():.2g}, "
          f"two-pass at most {two_pass_error.max():.1g}")
    assert naive_error.max() > 0.5, f"naive variance unexpectedly accurate: relative errors {naive_error}"
    assert two_pass_error.max() < 1e-2, f"two-pass variance relative errors {two_pass_error}"


# --- the support-set figure --------------------------------------------------------------------------------------

def test_draw_support_sets_titles():
    """draw_support_sets returns a figure with one cube per variant, titled in the course's legend vocabulary."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers.support_sets import draw_support_sets

    fig = draw_support_sets()
    titles = [ax.get_title() for ax in fig.axes]
    plt.close(fig)
    assert titles == ["BatchNorm", "LayerNorm", "InstanceNorm", "GroupNorm"]
    with pytest.raises(ValueError, match="4 axes"):
        draw_support_sets(axes=[None, None])


def test_fresh_modules_have_zero_gradients_like_linear():
    for module in (nm.BatchNorm(3), nm.LayerNorm((3,)), nm.GroupNorm(1, 3), nm.InstanceNorm(3, affine=True)):
        assert set(module.grads) == set(module.params)
        assert all(np.all(g == 0) for g in module.grads.values())
