"""Tests for helpers.initializers: the std each scheme draws, the gains, the fans, and determinism."""
import math

import numpy as np
import pytest

from helpers.initializers import (DEFAULT_GAINS, INITIALIZERS, calculate_gain, he_normal, init_std, lecun_normal,
                                  xavier_normal, xavier_uniform)

pytestmark = pytest.mark.filterwarnings("error", "default::pytest.PytestUnraisableExceptionWarning")

SCHEMES = sorted(INITIALIZERS)


def test_initializers_registry_names_every_scheme():
    """INITIALIZERS maps each scheme's name to its function."""
    assert INITIALIZERS == {"lecun_normal": lecun_normal, "xavier_normal": xavier_normal,
                            "xavier_uniform": xavier_uniform, "he_normal": he_normal}
    assert set(DEFAULT_GAINS) == set(INITIALIZERS)


@pytest.mark.parametrize("nonlinearity, expected", [("linear", 1.0), ("identity", 1.0), ("tanh", 5 / 3),
                                                    ("relu", math.sqrt(2))])
def test_calculate_gain_matches_torch(nonlinearity, expected):
    """Gains are torch.nn.init.calculate_gain's values (hard-coded: torch is not a dependency)."""
    assert calculate_gain(nonlinearity) == pytest.approx(expected, rel=1e-15)


def test_calculate_gain_rejects_unknown_nonlinearity():
    """An unknown name is a ValueError that names it."""
    with pytest.raises(ValueError, match="swish"):
        calculate_gain("swish")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_initializer_shape_dtype_and_zero_mean(scheme):
    """W has shape (n_in, n_out), float64, mean about 0."""
    W = INITIALIZERS[scheme](300, 200, np.random.default_rng(0))
    assert W.shape == (300, 200) and W.dtype == np.float64
    assert abs(W.mean()) < 4 * W.std() / math.sqrt(W.size)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("n_in, n_out", [(1000, 1000), (1000, 250)])
def test_initializer_empirical_std_matches_init_std(scheme, n_in, n_out):
    """The std of a large draw is within 3% of init_std (the (1000, 250) case tells fan_in from fan_out)."""
    W = INITIALIZERS[scheme](n_in, n_out, np.random.default_rng(1))
    expected = init_std(scheme, n_in, n_out)
    assert W.std() == pytest.approx(expected, rel=0.03), \
        f"{scheme}{W.shape}: std {W.std():.5f}, expected {expected:.5f}"


@pytest.mark.parametrize("scheme, gain", [("lecun_normal", 1.7), ("xavier_normal", 5 / 3), ("xavier_uniform", 0.5),
                                          ("he_normal", 1.0)])
def test_initializer_std_scales_with_gain(scheme, gain):
    """An explicit gain multiplies the std; init_std agrees."""
    W = INITIALIZERS[scheme](1000, 500, np.random.default_rng(2), gain=gain)
    assert W.std() == pytest.approx(init_std(scheme, 1000, 500, gain), rel=0.03)


def test_init_std_formulas():
    """The target std of each scheme, by its formula, for n_in=400, n_out=100."""
    assert init_std("lecun_normal", 400, 100) == pytest.approx(1 / 20)
    assert init_std("xavier_normal", 400, 100) == pytest.approx(math.sqrt(2 / 500))
    assert init_std("xavier_uniform", 400, 100) == pytest.approx(math.sqrt(2 / 500))
    assert init_std("he_normal", 400, 100) == pytest.approx(math.sqrt(2 / 400))
    assert init_std("he_normal", 400, 100, mode="fan_out") == pytest.approx(math.sqrt(2 / 100))
    assert init_std("lecun_normal", 400, 100, gain=5 / 3, mode="fan_out") == pytest.approx(5 / 3 / 10)
    assert init_std("he_normal", 400, 100, gain=1.0) == init_std("lecun_normal", 400, 100)


def test_xavier_equals_lecun_for_square_layers():
    """With n_in == n_out, 2 / (n_in + n_out) = 1 / n_in: Xavier and LeCun coincide."""
    assert init_std("xavier_normal", 256, 256) == pytest.approx(init_std("lecun_normal", 256, 256))
    assert init_std("he_normal", 256, 256) == pytest.approx(math.sqrt(2) * init_std("xavier_normal", 256, 256))


def test_xavier_uniform_bound_is_sqrt3_times_std():
    """U(-a, a) with a = gain * sqrt(6 / (n_in + n_out)) = sqrt(3) * std: samples fill (-a, a) and no more."""
    n_in, n_out, gain = 1000, 1000, 5 / 3
    bound = gain * math.sqrt(6 / (n_in + n_out))
    W = xavier_uniform(n_in, n_out, np.random.default_rng(3), gain=gain)
    assert np.all(np.abs(W) <= bound)
    assert W.max() > 0.999 * bound and W.min() < -0.999 * bound
    assert bound == pytest.approx(math.sqrt(3) * init_std("xavier_uniform", n_in, n_out, gain))
    assert W.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)


def test_he_normal_fan_out_mode():
    """mode='fan_out' divides by n_out (PyTorch's kaiming_normal_ mode='fan_out')."""
    W = he_normal(1000, 250, np.random.default_rng(4), mode="fan_out")
    assert W.std() == pytest.approx(math.sqrt(2 / 250), rel=0.03)
    with pytest.raises(ValueError, match="fan_avg"):
        he_normal(10, 10, np.random.default_rng(0), mode="fan_avg")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_initializer_is_deterministic_given_seed(scheme):
    """The same seed gives the same weights; the generator's state advances between calls."""
    init = INITIALIZERS[scheme]
    np.testing.assert_array_equal(init(20, 30, np.random.default_rng(7)), init(20, 30, np.random.default_rng(7)))
    rng = np.random.default_rng(7)
    assert not np.array_equal(init(20, 30, rng), init(20, 30, rng))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_initializer_requires_a_generator(scheme):
    """Passing a seed (or the legacy global state) instead of a Generator is a TypeError naming rng."""
    with pytest.raises(TypeError, match="rng"):
        INITIALIZERS[scheme](10, 10, 0)


@pytest.mark.parametrize("n_in, n_out", [(0, 10), (10, -1), (2.5, 3)])
def test_initializer_rejects_bad_fans(n_in, n_out):
    """Fans must be positive integers."""
    with pytest.raises(ValueError, match="positive integer"):
        lecun_normal(n_in, n_out, np.random.default_rng(0))


def test_init_std_rejects_unknown_scheme_and_mode():
    """Unknown schemes, and a mode for Xavier (which averages the fans), are ValueErrors that name them."""
    with pytest.raises(ValueError, match="orthogonal"):
        init_std("orthogonal", 10, 10)
    with pytest.raises(ValueError, match="xavier_normal"):
        init_std("xavier_normal", 10, 10, mode="fan_out")
