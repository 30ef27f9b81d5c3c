"""Tests for helpers.propagation: the variance laws, and what they predict for deep MLPs forward and backward.

The deep-network checks are seeded. The per-layer law (one layer, given the measured layer below) holds to a few
percent; the compounded prediction over 30 layers scatters more, because each layer's fluctuation (about
sqrt(5 / width) in the second moment for ReLU) multiplies through the depth: it is checked within a factor 2.
"""
import functools
import math

import numpy as np
import pytest

from helpers.initializers import calculate_gain, init_std
from helpers.propagation import (activation_second_moment, linear_output_variance,
                                 linear_output_variance_from_second_moment, make_mlp_weights, mlp_backward_stats,
                                 mlp_forward_stats, predicted_pre_activation_std)

pytestmark = pytest.mark.filterwarnings("error", "default::pytest.PytestUnraisableExceptionWarning")

DEPTH, WIDTH, BATCH = 30, 512, 256
HE = calculate_gain("relu")


@functools.lru_cache(maxsize=None)
def _cached_run(widths, scheme, activation, seed, gain, mode, batch):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, widths[0]))
    weights = make_mlp_weights(widths, scheme, rng, gain=gain, mode=mode)
    stats = mlp_forward_stats(x, weights, activation)
    for array in [x, *weights, *(v for v in stats.values() if isinstance(v, np.ndarray))]:
        array.flags.writeable = False
    return x, weights, stats


def _run(widths, scheme, activation, seed=0, gain=None, mode="fan_in", batch=BATCH):
    """Seeded input x ~ N(0, 1) of shape (batch, widths[0]), weights, and the forward stats (cached: the deep
    networks are shared between tests, which only read them)."""
    return _cached_run(tuple(widths), scheme, activation, seed, gain, mode, batch)


@pytest.fixture(scope="module")
def relu_he():
    return _run([WIDTH] * (DEPTH + 1), "he_normal", "relu")


@pytest.fixture(scope="module")
def tanh_gain():
    return _run([WIDTH] * (DEPTH + 1), "xavier_normal", "tanh", gain=calculate_gain("tanh"))


def _one_step_prediction(x, weights, stats):
    """Var[z_l] predicted from the measured E[h_{l-1}^2] and the measured variance of W_l: std, shape (L,)."""
    second_moments = np.r_[np.mean(x * x), stats["post_rms"][:-1] ** 2]
    return np.sqrt([W.shape[0] * W.var() * m for W, m in zip(weights, second_moments)])


# --- one linear layer, one nonlinearity -------------------------------------------------------------------------

def test_linear_output_variance_formula():
    """n_in Var[w] Var[x], and the second-moment form n_in Var[w] E[x^2]."""
    assert linear_output_variance(100, 0.02, 3.0) == pytest.approx(6.0)
    assert linear_output_variance_from_second_moment(100, 0.02, 3.0 + 2.0 ** 2) == pytest.approx(14.0)


def test_linear_output_variance_monte_carlo():
    """Var[sum_i w_i x_i] = n_in Var[w] Var[x] for independent zero-mean w and x (fresh w, x per sample)."""
    rng = np.random.default_rng(0)
    n_in, n_samples, var_w, var_x = 50, 100_000, 0.03, 2.0
    w = rng.normal(0.0, math.sqrt(var_w), size=(n_samples, n_in))
    x = rng.normal(0.0, math.sqrt(var_x), size=(n_samples, n_in))
    y = np.sum(w * x, axis=1)
    assert y.var() == pytest.approx(linear_output_variance(n_in, var_w, var_x), rel=0.03)


def test_linear_output_variance_needs_second_moment_for_nonzero_mean_inputs():
    """With E[x] != 0 the output variance follows E[x^2], not Var[x] (zero-mean weights still give E[y] = 0)."""
    rng = np.random.default_rng(1)
    n_in, n_samples, var_w, mean_x, var_x = 50, 100_000, 0.03, 1.5, 0.5
    w = rng.normal(0.0, math.sqrt(var_w), size=(n_samples, n_in))
    x = rng.normal(mean_x, math.sqrt(var_x), size=(n_samples, n_in))
    y = np.sum(w * x, axis=1)
    expected = linear_output_variance_from_second_moment(n_in, var_w, var_x + mean_x ** 2)
    assert y.var() == pytest.approx(expected, rel=0.03)
    assert y.var() > 3 * linear_output_variance(n_in, var_w, var_x), "ignoring the input mean underestimates Var[y]"


@pytest.mark.parametrize("distribution", ["normal", "uniform"])
def test_relu_keeps_half_the_second_moment(distribution):
    """E[relu(z)^2] = Var[z] / 2 for zero-mean symmetric z."""
    rng = np.random.default_rng(2)
    z = rng.normal(0.0, 2.0, 1_000_000) if distribution == "normal" else rng.uniform(-3.0, 3.0, 1_000_000)
    h = np.maximum(z, 0)
    assert np.mean(h * h) == pytest.approx(z.var() / 2, rel=0.01)
    assert activation_second_moment(z.var(), "relu") == pytest.approx(z.var() / 2)


def test_relu_output_std_is_not_half_the_variance():
    """ReLU's output has a positive mean: its std is sqrt(1/2 - 1/(2 pi)) std(z) for Gaussian z, its rms sqrt(1/2)."""
    z = np.random.default_rng(3).standard_normal((1000, 1000))
    stats = mlp_forward_stats(z, [np.eye(1000)], "relu")
    assert stats["post_std"][0] == pytest.approx(math.sqrt(0.5 - 0.5 / math.pi), rel=0.01)
    assert stats["post_rms"][0] == pytest.approx(math.sqrt(0.5), rel=0.01)


def test_activation_second_moment_tanh():
    """tanh: the linear approximation is Var[z]; the Gaussian one is below it and close to it for small Var[z]."""
    assert activation_second_moment(0.3, "tanh") == 0.3
    z = np.random.default_rng(4).normal(0.0, math.sqrt(2.0), 1_000_000)
    assert activation_second_moment(2.0, "tanh", "gaussian") == pytest.approx(np.mean(np.tanh(z) ** 2), rel=0.01)
    assert activation_second_moment(1e-4, "tanh", "gaussian") == pytest.approx(1e-4, rel=1e-3)
    np.testing.assert_allclose(activation_second_moment(np.array([0.5, 4.0]), "tanh", "gaussian"),
                               [activation_second_moment(0.5, "tanh", "gaussian"),
                                activation_second_moment(4.0, "tanh", "gaussian")])


# --- the prediction ----------------------------------------------------------------------------------------------

def test_predicted_pre_activation_std_by_hand():
    """Two layers by hand: linear keeps E[h^2] = Var[z]; ReLU halves it."""
    n_in, stds = [4, 8], [0.5, 0.25]
    # layer 1: 4 * 0.25 * 2 = 2; layer 2: 8 * 0.0625 * E[h_1^2]
    np.testing.assert_allclose(predicted_pre_activation_std(n_in, stds, 2.0, "linear"), np.sqrt([2.0, 1.0]))
    np.testing.assert_allclose(predicted_pre_activation_std(n_in, stds, 2.0, "relu"), np.sqrt([2.0, 0.5]))


def test_predicted_std_for_the_classic_schemes():
    """ReLU: He keeps the pre-activation std at sqrt(2) E[x^2]^(1/2); Xavier (= LeCun for square layers) loses
    a factor 1/sqrt(2) per layer."""
    he = predicted_pre_activation_std([WIDTH] * DEPTH, [init_std("he_normal", WIDTH, WIDTH)] * DEPTH, 1.0, "relu")
    xavier = predicted_pre_activation_std([WIDTH] * DEPTH, [init_std("xavier_normal", WIDTH, WIDTH)] * DEPTH, 1.0,
                                          "relu")
    np.testing.assert_allclose(he, math.sqrt(2.0))
    np.testing.assert_allclose(xavier, 2.0 ** (-np.arange(DEPTH) / 2))


# --- deep ReLU networks, forward ------------------------------------------------------------------------------------

def test_he_keeps_activation_scale_for_30_layers_at_width_256():
    """He init, 30 ReLU layers of width 256: the activations' rms stays within a factor 2 of the input's."""
    x, _, stats = _run([256] * (DEPTH + 1), "he_normal", "relu")
    ratio = stats["post_rms"] / np.sqrt(np.mean(x * x))
    assert np.all((ratio > 0.5) & (ratio < 2.0)), f"post_rms / input rms per layer: {np.round(ratio, 3)}"


def test_xavier_shrinks_relu_activations_by_sqrt2_per_layer(relu_he):
    """Xavier with ReLU: the std shrinks by about (1/sqrt 2)^29 from layer 1 to 30 (here ~2^-14.5 = 4e-5).

    Xavier and He differ only by the factor sqrt(2) on every W, and ReLU is positively homogeneous, so with the
    same draws layer l of the Xavier network is exactly (1/sqrt 2)^l times the He one.
    """
    x, he_weights, he_stats = relu_he
    _, _, stats = _run([WIDTH] * (DEPTH + 1), "xavier_normal", "relu")
    np.testing.assert_allclose(stats["pre_std"], he_stats["pre_std"] * 2.0 ** (-np.arange(1, DEPTH + 1) / 2),
                               rtol=1e-9)
    shrink = stats["pre_std"][-1] / stats["pre_std"][0]
    assert 0.5 < shrink / 2.0 ** (-(DEPTH - 1) / 2) < 2.0, f"layer 30 / layer 1 = {shrink:.3g}"


@pytest.mark.parametrize("scheme, gain", [("he_normal", None), ("xavier_normal", None), ("he_normal", 0.5 * HE),
                                          ("he_normal", 2.0 * HE)])
def test_relu_variance_law_holds_layer_by_layer(scheme, gain):
    """Var[z_l] = n_{l-1} Var[w_l] E[h_{l-1}^2], measured at each of 30 layers of width 512, within 20%."""
    x, weights, stats = _run([WIDTH] * (DEPTH + 1), scheme, "relu", gain=gain)
    predicted = _one_step_prediction(x, weights, stats)
    np.testing.assert_allclose(stats["pre_std"], predicted, rtol=0.2, err_msg=f"{scheme}, gain {gain}")


@pytest.mark.parametrize("scheme, gain", [("he_normal", None), ("xavier_normal", None), ("he_normal", 0.5 * HE),
                                          ("he_normal", 2.0 * HE)])
def test_relu_compounded_prediction_within_factor_2(scheme, gain):
    """predicted_pre_activation_std from the input alone tracks 30 layers within a factor 2 (over a range of
    up to 2^30); the scatter around it grows with depth and shrinks with width."""
    x, weights, stats = _run([WIDTH] * (DEPTH + 1), scheme, "relu", gain=gain)
    predicted = predicted_pre_activation_std([WIDTH] * DEPTH, [init_std(scheme, WIDTH, WIDTH, gain)] * DEPTH,
                                             np.mean(x * x), "relu")
    log2_error = np.log2(stats["pre_std"] / predicted)
    assert np.all(np.abs(log2_error) < 1.0), f"log2(measured / predicted) per layer: {np.round(log2_error, 2)}"


def test_too_small_init_collapses_and_too_large_explodes():
    """0.5x and 2x the He std: the activations vanish (~2^-30) or explode (~2^30) over 30 ReLU layers."""
    _, _, small = _run([WIDTH] * (DEPTH + 1), "he_normal", "relu", gain=0.5 * HE)
    _, _, large = _run([WIDTH] * (DEPTH + 1), "he_normal", "relu", gain=2.0 * HE)
    assert small["post_std"][-1] < 1e-6 * small["post_std"][0]
    assert large["post_std"][-1] > 1e6 * large["post_std"][0]
    assert np.all(np.diff(np.log(small["post_std"])) < 0) and np.all(np.diff(np.log(large["post_std"])) > 0)


# --- deep tanh networks --------------------------------------------------------------------------------------------

def test_tanh_with_gain_5_3_stays_stable(tanh_gain):
    """tanh, Xavier with gain 5/3: the activation std settles (here about 0.65) and few units saturate."""
    _, _, stats = tanh_gain
    assert np.all((stats["post_std"] > 0.5) & (stats["post_std"] < 1.0)), np.round(stats["post_std"], 3)
    assert stats["saturated"][-1] < 0.1
    assert abs(math.log(stats["post_std"][-1] / stats["post_std"][9])) < 0.1, "not settled after 10 layers"


def test_tanh_variance_law_and_gaussian_prediction(tanh_gain):
    """The one-layer law holds for tanh too; the Gaussian mean-field prediction tracks all 30 layers within 5%,
    while the linear approximation (tanh(z) ~ z) predicts growth by 5/3 per layer."""
    x, weights, stats = tanh_gain
    np.testing.assert_allclose(stats["pre_std"], _one_step_prediction(x, weights, stats), rtol=0.05)
    stds = [W.std() for W in weights]
    gaussian = predicted_pre_activation_std([WIDTH] * DEPTH, stds, np.mean(x * x), "tanh", "gaussian")
    np.testing.assert_allclose(stats["pre_std"], gaussian, rtol=0.05)
    linear = predicted_pre_activation_std([WIDTH] * DEPTH, stds, np.mean(x * x), "tanh")
    assert linear[-1] > 1e5 * stats["pre_std"][-1]


def test_tanh_without_gain_decays():
    """tanh, Xavier with gain 1: tanh contracts, so the std decays layer after layer (Glorot & Bengio 2010)."""
    _, _, stats = _run([WIDTH] * (DEPTH + 1), "xavier_normal", "tanh")
    assert stats["post_std"][-1] < 0.3 * stats["post_std"][0]
    assert np.all(np.diff(stats["pre_std"]) < 0)


def test_forward_stats_keys_and_activations():
    """Per-layer arrays of shape (L,); activations kept only on request; saturation only for tanh."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 6))
    weights = make_mlp_weights([6, 5, 4], "he_normal", rng)
    stats = mlp_forward_stats(x, weights, "relu", keep_activations=True)
    for key in ("pre_mean", "pre_std", "post_mean", "post_std", "post_rms", "saturated"):
        assert stats[key].shape == (2,), key
    assert [h.shape for h in stats["activations"]] == [(8, 5), (8, 4)]
    h1 = np.maximum(x @ weights[0], 0)
    np.testing.assert_allclose(stats["activations"][0], h1)
    assert stats["pre_std"][1] == pytest.approx((h1 @ weights[1]).std())
    assert np.all(np.isnan(stats["saturated"]))
    assert mlp_forward_stats(x, weights, "relu")["activations"] is None
    tanh = mlp_forward_stats(x, weights, "tanh")
    assert np.all((tanh["saturated"] >= 0) & (tanh["saturated"] <= 1))


# --- backward ------------------------------------------------------------------------------------------------------

def test_backward_stats_match_hand_computation():
    """Two ReLU layers: dz = dh * (z > 0), dW = h_prev^T dz, dh_prev = dz W^T, with dout drawn from rng."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((7, 3))
    W1, W2 = rng.standard_normal((3, 5)), rng.standard_normal((5, 4))
    stats = mlp_backward_stats(x, [W1, W2], "relu", np.random.default_rng(9))
    dout = np.random.default_rng(9).standard_normal((7, 4))
    z1 = x @ W1
    h1 = np.maximum(z1, 0)
    z2 = h1 @ W2
    dz2 = dout * (z2 > 0)
    dh1 = dz2 @ W2.T
    dz1 = dh1 * (z1 > 0)
    np.testing.assert_allclose(stats["dz_std"], [dz1.std(), dz2.std()])
    np.testing.assert_allclose(stats["dW_std"], [(x.T @ dz1).std(), (h1.T @ dz2).std()])
    np.testing.assert_allclose(stats["dx_std"], [(dz1 @ W1.T).std(), dh1.std()])
    assert stats["dout_std"] == pytest.approx(dout.std())


def test_backward_tanh_derivative():
    """One tanh layer: dz = dout * (1 - tanh(z)^2)."""
    rng = np.random.default_rng(7)
    x, W = rng.standard_normal((6, 3)), rng.standard_normal((3, 2))
    stats = mlp_backward_stats(x, [W], "tanh", np.random.default_rng(1))
    dout = np.random.default_rng(1).standard_normal((6, 2))
    dz = dout * (1 - np.tanh(x @ W) ** 2)
    assert stats["dz_std"][0] == pytest.approx(dz.std())
    assert stats["dx_std"][0] == pytest.approx((dz @ W.T).std())


def test_backward_he_keeps_gradient_scale(relu_he):
    """He init, 30 equal-width ReLU layers: the input gradient's std stays within a factor 2 of the top one's;
    ReLU passes half of the gradient's second moment, and the backward law holds layer by layer within 5%."""
    x, weights, _ = relu_he
    stats = mlp_backward_stats(x, weights, "relu", np.random.default_rng(1))
    assert np.all(np.abs(np.log2(stats["dx_std"] / stats["dout_std"])) < 1.0), np.round(stats["dx_std"], 3)
    dh_above = np.r_[stats["dx_std"][1:], stats["dout_std"]]
    np.testing.assert_allclose(stats["dz_std"] / dh_above, math.sqrt(0.5), rtol=0.1)
    predicted = np.array([math.sqrt(W.shape[1] * W.var()) for W in weights]) * stats["dz_std"]
    np.testing.assert_allclose(stats["dx_std"], predicted, rtol=0.05)


def test_backward_fan_out_preserves_gradient_when_widths_change():
    """Widths alternating 256/512: mode='fan_out' keeps the gradient's std at every layer; mode='fan_in' scales
    it by sqrt(n_out / n_in) per layer (and keeps the forward signal instead)."""
    widths = [256 if l % 2 == 0 else 512 for l in range(DEPTH + 1)]
    ratio_fan_in = np.sqrt(np.array(widths[1:]) / np.array(widths[:-1]))
    for mode, expected in (("fan_out", np.ones(DEPTH)), ("fan_in", ratio_fan_in)):
        x, weights, forward = _run(widths, "he_normal", "relu", mode=mode)
        stats = mlp_backward_stats(x, weights, "relu", np.random.default_rng(1))
        per_layer = stats["dx_std"] / np.r_[stats["dx_std"][1:], stats["dout_std"]]
        np.testing.assert_allclose(per_layer, expected, rtol=0.2, err_msg=f"backward, mode={mode}")
        forward_per_layer = forward["pre_std"][1:] / forward["pre_std"][:-1]
        expected_forward = np.ones(DEPTH - 1) if mode == "fan_in" else 1 / ratio_fan_in[1:]
        np.testing.assert_allclose(forward_per_layer, expected_forward, rtol=0.2, err_msg=f"forward, mode={mode}")


# --- determinism and errors -----------------------------------------------------------------------------------------

def test_everything_is_deterministic_given_seed():
    """Same seed, same weights, same forward and backward statistics; rng=None is a fixed default."""
    a = _cached_run.__wrapped__((32,) * 6, "xavier_uniform", "tanh", 11, None, "fan_in", 16)
    b = _cached_run.__wrapped__((32,) * 6, "xavier_uniform", "tanh", 11, None, "fan_in", 16)
    assert a[0] is not b[0]
    for Wa, Wb in zip(a[1], b[1]):
        np.testing.assert_array_equal(Wa, Wb)
    np.testing.assert_array_equal(a[2]["post_std"], b[2]["post_std"])
    back_a = mlp_backward_stats(a[0], a[1], "tanh")
    back_b = mlp_backward_stats(b[0], b[1], "tanh")
    np.testing.assert_array_equal(back_a["dW_std"], back_b["dW_std"])
    np.testing.assert_array_equal(back_a["dx_std"],
                                  mlp_backward_stats(a[0], a[1], "tanh", np.random.default_rng(0))["dx_std"])


def test_make_mlp_weights_shapes_and_scheme():
    """One (n_{l-1}, n_l) matrix per layer, drawn with the scheme's std."""
    weights = make_mlp_weights([300, 200, 100], "he_normal", np.random.default_rng(8))
    assert [W.shape for W in weights] == [(300, 200), (200, 100)]
    assert weights[0].std() == pytest.approx(math.sqrt(2 / 300), rel=0.03)
    assert weights[1].std() == pytest.approx(math.sqrt(2 / 200), rel=0.03)


@pytest.mark.parametrize("call, match", [
    (lambda x, W: mlp_forward_stats(x, W, "sigmoid"), "sigmoid"),
    (lambda x, W: mlp_backward_stats(x, W, "gelu"), "gelu"),
    (lambda x, W: mlp_forward_stats(x[0], W, "relu"), "shape"),
    (lambda x, W: mlp_forward_stats(x, W[::-1], "relu"), "weights"),
    (lambda x, W: make_mlp_weights([4, 4], "kaiming", np.random.default_rng(0)), "kaiming"),
    (lambda x, W: make_mlp_weights([4], "he_normal", np.random.default_rng(0)), "two entries"),
    (lambda x, W: make_mlp_weights([4, 4], "xavier_normal", np.random.default_rng(0), mode="fan_out"), "mode"),
    (lambda x, W: predicted_pre_activation_std([4, 4], [0.1], 1.0, "relu"), "same"),
    (lambda x, W: activation_second_moment(1.0, "tanh", "taylor"), "taylor"),
])
def test_bad_arguments_raise_value_error(call, match):
    """Unknown activations, schemes, modes and mismatched shapes are ValueErrors that say what is wrong."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    weights = make_mlp_weights([3, 5, 2], "he_normal", rng)
    with pytest.raises(ValueError, match=match):
        call(x, weights)
