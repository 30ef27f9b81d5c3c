"""Unit tests of helpers.input_normalization, the reference for notebook 02 (input normalization)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from helpers.data import wine_split
from helpers.input_normalization import (add_bias_column, fit_standardizer, fit_whitening, fit_zca_whitening,
                                         least_squares_gradient, least_squares_hessian, least_squares_loss,
                                         least_squares_path, least_squares_solution, plot_descent_two_features,
                                         plot_feature_ranges, plot_spectra, predicted_steps_to_target_loss,
                                         standardize, standardize_split, steps_to_target_loss, whiten)


def _correlated(seed, n=80, d=4):
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)) * 10.0 ** rng.uniform(-1, 2, size=d)
    return rng.normal(size=(n, d)) @ mixing + rng.uniform(-20, 20, size=d)


def test_standardizer_uses_biased_per_feature_statistics():
    X = np.array([[1.0, 100.0, 0.5], [3.0, 300.0, 0.5], [1.0, 300.0, 1.5], [3.0, 100.0, 1.5]])
    mean, std = fit_standardizer(X)
    np.testing.assert_allclose(mean, [2.0, 200.0, 1.0])
    np.testing.assert_allclose(std, [1.0, 100.0, 0.5])
    np.testing.assert_allclose(np.abs(standardize(X, mean, std)), np.ones((4, 3)))


def test_constant_feature_gets_std_one_and_stays_finite():
    X_train = np.array([[1.0, 5.0], [3.0, 5.0], [1.0, 5.0], [3.0, 5.0]])
    mean, std = fit_standardizer(X_train)
    np.testing.assert_array_equal(std, [1.0, 1.0])
    Z = standardize(np.array([[2.0, 5.0], [4.0, 7.0]]), mean, std)
    np.testing.assert_array_equal(Z, [[0.0, 0.0], [2.0, 2.0]])


def test_standardize_split_applies_training_statistics_to_the_test_split():
    X_train, X_test, _, _ = wine_split(seed=0)
    Z_train, Z_test = standardize_split(X_train, X_test)
    np.testing.assert_allclose(Z_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z_train.std(axis=0), 1.0)
    np.testing.assert_allclose(Z_test, (X_test - X_train.mean(axis=0)) / X_train.std(axis=0))
    assert not np.allclose(Z_test.mean(axis=0), 0.0, atol=1e-3)   # the test split is not re-centered on itself


def test_hessian_blocks_and_gradient_against_finite_differences():
    X = _correlated(1, n=30, d=3)
    y = np.random.default_rng(2).normal(size=30)
    H = least_squares_hessian(X)
    mu = X.mean(axis=0)
    np.testing.assert_allclose(H[:-1, :-1], X.T @ X / 30)
    np.testing.assert_allclose(H[:-1, -1], mu)
    assert H[-1, -1] == pytest.approx(1.0)
    theta = np.random.default_rng(3).normal(size=4)
    step = 1e-6
    numeric = [(least_squares_loss(X, y, theta + step * e) - least_squares_loss(X, y, theta - step * e)) / (2 * step)
               for e in np.eye(4)]
    np.testing.assert_allclose(least_squares_gradient(X, y, theta), numeric, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(least_squares_gradient(X, y, theta) - least_squares_gradient(X, y, 0 * theta),
                               H @ theta, rtol=1e-9, atol=1e-9)


def test_centering_decouples_the_bias():
    X = _correlated(4)
    H = least_squares_hessian(X - X.mean(axis=0))
    np.testing.assert_allclose(H[:-1, -1], 0.0, atol=1e-10)


def test_condition_numbers_on_wine_follow_the_story():
    X_train, _, _, _ = wine_split(seed=0)
    inputs = X_train[:, 1:]
    mean, std = fit_standardizer(inputs)

    def kappa(Z):
        lam = np.linalg.eigvalsh(least_squares_hessian(Z))
        return lam[-1] / lam[0]

    raw, centered, scaled = kappa(inputs), kappa(inputs - mean), kappa(inputs / std)
    standardized = kappa(standardize(inputs, mean, std))
    whitened = kappa(whiten(inputs, *fit_whitening(inputs)))
    assert raw > 1e8 > centered > 1e6 and 1e4 < scaled < 1e5 and 40 < standardized < 60
    assert whitened == pytest.approx(1.0, abs=2e-3)
    np.testing.assert_allclose(np.diag(least_squares_hessian(standardize(inputs, mean, std))), 1.0)


def test_loss_minimum_is_the_same_for_every_affine_version_of_the_inputs():
    X_train, _, _, _ = wine_split(seed=0)
    y, inputs = X_train[:, 0], X_train[:, 1:]
    _, best = least_squares_solution(inputs, y)
    mean, std = fit_standardizer(inputs)
    for Z in (inputs - mean, standardize(inputs, mean, std), whiten(inputs, *fit_whitening(inputs))):
        assert least_squares_solution(Z, y)[1] == pytest.approx(best, rel=1e-9)


def test_steps_to_target_loss_hand_case_slow_and_divergence():
    X, y = np.array([[1.0], [-1.0]]), np.array([2.0, 2.0])
    assert steps_to_target_loss(X, y, 0.5, 0.1) == 3
    assert steps_to_target_loss(X, y, 0.5, 2.0) == 0
    assert steps_to_target_loss(X, y, 0.001, 0.1, max_steps=50) is None
    with np.errstate(over="raise", invalid="raise"):
        assert steps_to_target_loss(X, y, 2.5, 0.1, max_steps=10_000) is None


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_closed_form_step_count_matches_the_loop(seed):
    X = _correlated(seed, n=40, d=3)
    y = X @ np.random.default_rng(seed).normal(size=3) + 0.5 * np.random.default_rng(seed + 1).normal(size=40)
    lam = np.linalg.eigvalsh(least_squares_hessian(X))
    target = 1.05 * least_squares_solution(X, y)[1]
    for ratio in (0.5, 1.0, 1.5):
        eta = ratio / lam[-1]
        loop = steps_to_target_loss(X, y, eta, target, max_steps=200_000)
        assert predicted_steps_to_target_loss(X, y, eta, target) == loop
    assert predicted_steps_to_target_loss(X, y, 2.1 / lam[-1], target) is None


def test_path_rows_are_gradient_steps():
    X = _correlated(8, n=20, d=2)
    y = np.arange(20.0)
    eta = 0.5 / np.linalg.eigvalsh(least_squares_hessian(X))[-1]
    path = least_squares_path(X, y, eta, 5)
    assert path.shape == (6, 3)
    np.testing.assert_array_equal(path[0], 0.0)
    np.testing.assert_allclose(path[3], path[2] - eta * least_squares_gradient(X, y, path[2]))


@pytest.mark.parametrize("fit", [fit_whitening, fit_zca_whitening])
def test_whitening_gives_identity_covariance_and_inverse_covariance(fit):
    X = _correlated(9)
    mean, W = fit(X, eps=0.0)
    Z = whiten(X, mean, W)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(Z.T @ Z / len(Z), np.eye(4), atol=1e-9)
    covariance = (X - mean).T @ (X - mean) / len(X)
    mean, W = fit(X, eps=0.3)
    np.testing.assert_allclose(W @ W.T, np.linalg.inv(covariance + 0.3 * np.eye(4)), rtol=1e-8)


def test_zca_is_symmetric_and_pca_is_not_in_general():
    X = _correlated(10)
    _, W_zca = fit_zca_whitening(X)
    _, W_pca = fit_whitening(X)
    np.testing.assert_allclose(W_zca, W_zca.T, atol=1e-12)
    assert not np.allclose(W_pca, W_pca.T)


def test_plots_draw_and_label():
    X_train, _, _, _ = wine_split(seed=0)
    fig, axes = plt.subplots(1, 3)
    plot_feature_ranges(axes[0], X_train[:, :4], ["a", "b", "c", "d"], log=True)
    assert axes[0].get_xscale() == "log" and axes[0].get_xlabel()
    plot_spectra(axes[1], {"one": [1.0, 10.0], "two": [1.0, 2.0]})
    assert axes[1].get_yscale() == "log" and len(axes[1].get_legend().get_texts()) == 2
    H, error = plot_descent_two_features(axes[2], X_train[:, [1, 3]], X_train[:, 0], n_steps=5)
    assert H.shape == (2, 2) and error.shape == (6, 2)
    assert "w_1" in axes[2].get_xlabel()
    plt.close(fig)


def test_add_bias_column():
    np.testing.assert_array_equal(add_bias_column(np.zeros((2, 1))), [[0.0, 1.0], [0.0, 1.0]])
