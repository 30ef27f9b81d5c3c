"""Unit tests of helpers.gradient_descent, the reference for notebook 01."""
import numpy as np
import pytest

from helpers.gradient_descent import (best_learning_rate, classify_learning_rate, condition_number, gradient_descent,
                                      max_stable_learning_rate, quadratic_gradient, quadratic_loss,
                                      quadratic_with_condition_number, steps_to_converge)


def test_trajectory_starts_at_w0_and_matches_closed_form():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    H = Q @ np.diag([0.5, 1.0, 3.0, 8.0]) @ Q.T
    w0 = rng.normal(size=4)
    path = gradient_descent(quadratic_gradient(H), w0, 0.2, 10)
    assert path.shape == (11, 4)
    expected = [np.linalg.matrix_power(np.eye(4) - 0.2 * H, k) @ w0 for k in range(11)]
    np.testing.assert_allclose(path, expected, rtol=1e-12, atol=1e-14)


def test_scalar_start_point_is_one_dimensional():
    path = gradient_descent(quadratic_gradient(np.array([[1.0]])), 4.0, 0.5, 3)
    np.testing.assert_array_equal(path, [[4.0], [2.0], [1.0], [0.5]])


def test_quadratic_gradient_takes_the_scalar_w_the_exercise_allows_and_says_what_else_it_needs():
    """Notebook 01 allows a scalar w0; a student's gradient_descent may hand it on unchanged."""
    one_d = quadratic_gradient(np.array([[2.0]]))
    assert one_d(4.0) == 8.0 and np.ndim(one_d(4.0)) == 0
    np.testing.assert_array_equal(one_d(np.array([4.0])), [8.0])
    two_d = quadratic_gradient(np.diag([1.0, 10.0]))
    with pytest.raises(ValueError, match=r"w is the scalar 4.0, but H is 2x2.*reshape\(-1\)"):
        two_d(4.0)
    with pytest.raises(ValueError, match=r"w has shape \(3,\), but H is 2x2, so w needs shape \(2,\)"):
        two_d(np.ones(3))

    def keeps_w0_as_it_is(grad, w0, eta, n_steps):  # a typical first attempt: never turns w0 into a vector
        w, path = w0, [w0]
        for _ in range(n_steps):
            w = w - eta * grad(w)
            path.append(w)
        return np.array(path)

    np.testing.assert_array_equal(keeps_w0_as_it_is(quadratic_gradient(np.array([[1.0]])), 4.0, 0.5, 3),
                                  [4.0, 2.0, 1.0, 0.5])  # the check then names the missing dimension


def test_quadratic_loss_accepts_stacks():
    H = np.diag([1.0, 10.0])
    w = np.array([[1.0, 1.0], [2.0, 0.0]])
    np.testing.assert_allclose(quadratic_loss(H, w), [5.5, 2.0])


def test_rates_from_eigenvalues_not_diagonal():
    H = quadratic_with_condition_number(10.0, angle=0.5)
    np.testing.assert_allclose(np.linalg.eigvalsh(H), [1.0, 10.0])
    assert not np.allclose(np.sort(np.diag(H)), [1.0, 10.0])
    assert max_stable_learning_rate(H) == pytest.approx(0.2)
    assert best_learning_rate(H) == pytest.approx(2 / 11)
    assert condition_number(H) == pytest.approx(10.0)


@pytest.mark.parametrize("ratio, regime", [(0.3, "monotone"), (1.0, "one step"), (1.5, "oscillating"),
                                           (2.5, "diverging")])
def test_classify_regimes(ratio, regime):
    for a in (0.01, 2.0, 49.0, 1e4):
        assert classify_learning_rate(a, ratio / a) == regime


def test_classify_rejects_non_positive_inputs():
    with pytest.raises(ValueError, match="a > 0"):
        classify_learning_rate(-1.0, 0.1)


def test_regimes_match_the_trajectories():
    for ratio in (0.3, 1.5, 2.5):
        path = gradient_descent(quadratic_gradient(np.array([[2.0]])), 1.0, ratio / 2.0, 6)[:, 0]
        regime = classify_learning_rate(2.0, ratio / 2.0)
        flips = np.all(np.sign(path[1:]) != np.sign(path[:-1]))
        grows = abs(path[-1]) > 1
        assert (regime == "monotone") == (not flips and not grows)
        assert (regime == "oscillating") == (flips and not grows)
        assert (regime == "diverging") == grows


def test_steps_to_converge_hand_case_and_failures():
    one = np.array([[1.0]])
    assert steps_to_converge(one, [1.0], 0.5, tol=0.1) == 4
    assert steps_to_converge(one, [1.0], 1.0, tol=0.1) == 1
    assert steps_to_converge(one, [1.0], 2.5, tol=0.1) is None
    assert steps_to_converge(one, [1.0], 1e-5, tol=0.1, max_steps=100) is None


def test_steps_grow_linearly_with_condition_number():
    steps = [steps_to_converge(quadratic_with_condition_number(k, 0.3), [1.0, 1.0], 2 / (1 + k), tol=1e-6)
             for k in (10, 100, 1000)]
    ratios = np.diff(np.log10(steps))
    np.testing.assert_allclose(ratios, 1.0, atol=0.02)
