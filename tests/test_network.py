"""Tests of helpers/network.py: gradients by finite differences, SGD, train/eval, the training loop."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.gradcheck import numerical_gradient, relative_error
from helpers.module import Module
from helpers.network import (
    SGD, Linear, ReLU, Sequential, Tanh, accuracy, evaluate, iterate_minibatches, make_mlp, softmax_cross_entropy,
    train, update_to_data_ratio,
)

# nbgrader scores any stderr output as a failure; an object of another test collected here is not this test's.
pytestmark = pytest.mark.filterwarnings("error", "default::pytest.PytestUnraisableExceptionWarning")

NORMS = ["batch", "layer", "group"]


def random_shape(rng, low=2, high=7):
    return int(rng.integers(low, high)), int(rng.integers(low, high)), int(rng.integers(low, high))


def check_gradient(what, analytic, f, x, dout, tol=1e-6):
    numeric = numerical_gradient(f, x, dout)
    err = relative_error(analytic, numeric)
    assert err < tol, f"{what}: relative error {err:.2e} between analytic and numerical gradient (tolerance {tol:g})"


def check_module_gradients(model, x, rng, skip=()):
    """Finite-difference check of dx and of every parameter of ``model`` (a Module) at ``x``."""
    out = model.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = model.backward(dout)
    f = lambda: model.forward(x)  # noqa: E731
    check_gradient("dx", dx, f, x, dout)
    pairs = list(model.parameters()) if hasattr(model, "parameters") else [(model, k) for k in model.params]
    assert pairs, "the model should have parameters"
    for module, name in pairs:
        if (module, name) in skip:
            continue
        check_gradient(f"d{name} of {module!r}", module.grads[name].copy(), f, module.params[name], dout)


def randomize_affine(model, rng):
    """Random gamma and beta: gamma = 1 and beta = 0 hide bugs."""
    for module, name in model.parameters():
        if name in ("gamma", "beta"):
            module.params[name][...] = rng.uniform(0.5, 1.5, size=module.params[name].shape)


def blobs(rng, n_per_class=60, n_classes=3, dim=5, spread=0.3):
    """Well-separated Gaussian blobs: X (n_per_class * n_classes, dim), y (N,) int."""
    centers = rng.standard_normal((n_classes, dim)) * 3
    y = np.repeat(np.arange(n_classes), n_per_class)
    X = centers[y] + spread * rng.standard_normal((len(y), dim))
    return X, y


# ------------------------------------------------------------------------------------------------ gradients
def test_linear_gradients():
    """Linear: dx, dW and db agree with centred finite differences."""
    rng = np.random.default_rng(0)
    n, n_in, n_out = random_shape(rng)
    layer = Linear(n_in, n_out, rng)
    layer.params["b"][...] = rng.standard_normal(n_out)
    check_module_gradients(layer, rng.standard_normal((n, n_in)), rng)


def test_linear_forward_and_init():
    """Linear: y = x @ W + b, b starts at zero; he / xavier / weight_std give the right scale; bad init raises."""
    rng = np.random.default_rng(1)
    layer = Linear(400, 300, rng)
    x = rng.standard_normal((3, 400))
    np.testing.assert_allclose(layer.forward(x), x @ layer.params["W"] + layer.params["b"])
    assert layer.params["W"].shape == (400, 300) and layer.params["b"].shape == (300,)
    np.testing.assert_array_equal(layer.params["b"], 0)
    np.testing.assert_allclose(layer.params["W"].std(), np.sqrt(2 / 400), rtol=0.02)
    np.testing.assert_allclose(Linear(400, 300, rng, init="xavier").params["W"].std(), np.sqrt(2 / 700), rtol=0.02)
    np.testing.assert_allclose(Linear(400, 300, rng, weight_std=0.01).params["W"].std(), 0.01, rtol=0.02)
    with pytest.raises(ValueError, match="lecun"):
        Linear(4, 3, rng, init="lecun")


def test_linear_init_is_seeded():
    """Linear: the same seed gives the same weights (no global random state)."""
    w1 = Linear(5, 4, np.random.default_rng(7)).params["W"]
    w2 = Linear(5, 4, np.random.default_rng(7)).params["W"]
    np.testing.assert_array_equal(w1, w2)


def test_relu_gradient():
    """ReLU: forward is max(x, 0); dx agrees with finite differences away from the kink at 0."""
    rng = np.random.default_rng(2)
    shape = random_shape(rng)[:2]
    x = rng.uniform(0.1, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    layer = ReLU()
    np.testing.assert_array_equal(layer.forward(x), np.maximum(x, 0))
    dout = rng.standard_normal(shape)
    check_gradient("ReLU dx", layer.backward(dout), lambda: layer.forward(x), x, dout)


def test_tanh_gradient():
    """Tanh: forward is tanh(x); dx agrees with finite differences."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal(random_shape(rng)[:2]) * 2
    layer = Tanh()
    np.testing.assert_allclose(layer.forward(x), np.tanh(x))
    dout = rng.standard_normal(x.shape)
    check_gradient("Tanh dx", layer.backward(dout), lambda: layer.forward(x), x, dout)


def test_softmax_cross_entropy_gradient():
    """softmax_cross_entropy: dlogits agrees with finite differences of the mean loss."""
    rng = np.random.default_rng(4)
    n, k, _ = random_shape(rng)
    logits = rng.standard_normal((n, k))
    y = rng.integers(0, k, size=n)
    _, dlogits = softmax_cross_entropy(logits, y)
    f = lambda: np.array(softmax_cross_entropy(logits, y)[0])  # noqa: E731
    check_gradient("dlogits", dlogits, f, logits, np.array(1.0))


def test_softmax_cross_entropy_values():
    """softmax_cross_entropy: log K for equal logits; a hand case; a mean over the batch; rows of dlogits sum to 0."""
    loss, dlogits = softmax_cross_entropy(np.zeros((4, 10)), np.array([0, 3, 9, 2]))
    np.testing.assert_allclose(loss, np.log(10), err_msg="equal logits must give log K")
    np.testing.assert_allclose(dlogits.sum(axis=1), 0, atol=1e-15)
    logits = np.array([[2.0, 0.0], [0.0, 0.0]])
    expected = (np.log(1 + np.exp(-2.0)) + np.log(2)) / 2  # mean, not sum, over the 2 samples
    np.testing.assert_allclose(softmax_cross_entropy(logits, np.array([0, 1]))[0], expected)
    assert isinstance(loss, float)


def test_softmax_cross_entropy_is_stable():
    """softmax_cross_entropy: logits of 1e4 neither overflow nor warn, and a constant shift changes nothing."""
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((6, 4))
    y = rng.integers(0, 4, size=6)
    loss, dlogits = softmax_cross_entropy(logits, y)
    loss_big, dlogits_big = softmax_cross_entropy(logits * 1 + 1e4, y)
    np.testing.assert_allclose(loss_big, loss, rtol=1e-9)
    np.testing.assert_allclose(dlogits_big, dlogits, atol=1e-12)
    loss_huge, _ = softmax_cross_entropy(np.array([[1e4, 0.0]]), np.array([1]))
    np.testing.assert_allclose(loss_huge, 1e4)
    with pytest.raises(ValueError, match="y"):
        softmax_cross_entropy(logits, y[:3])


def test_sequential_gradients_relu():
    """Sequential Linear-ReLU-Linear-ReLU-Linear: dx and every dW, db agree with finite differences."""
    rng = np.random.default_rng(6)
    n, d, h = random_shape(rng, 3, 7)
    model = Sequential(Linear(d, h, rng), ReLU(), Linear(h, h, rng), ReLU(), Linear(h, 3, rng))
    for layer in model.layers:
        if isinstance(layer, Linear):
            layer.params["b"][...] = 0.1 * rng.standard_normal(layer.params["b"].shape)
    x = rng.standard_normal((n, d))
    model.forward(x)
    pre_activations = [model.outputs[i] for i in (0, 2)]
    assert min(np.abs(z).min() for z in pre_activations) > 1e-4, "test setup: a pre-activation sits on the kink"
    check_module_gradients(model, x, rng)


@pytest.mark.parametrize("norm", NORMS)
def test_sequential_gradients_with_norm(norm):
    """Linear -> norm -> Tanh -> Linear (random gamma and beta): dx and all parameters agree with finite differences."""
    from helpers.normalization import BatchNorm, GroupNorm, LayerNorm
    rng = np.random.default_rng(7)
    n, d = int(rng.integers(4, 8)), int(rng.integers(3, 6))
    h = 6
    # GroupNorm with 3 channels per group: with 2, x_hat is about +-1 whatever x, and the gradient about 0.
    norm_layer = {"batch": BatchNorm(h), "layer": LayerNorm(h), "group": GroupNorm(2, h)}[norm]
    first = Linear(d, h, rng)
    first.params["b"][...] = rng.standard_normal(h)
    model = Sequential(first, norm_layer, Tanh(), Linear(h, 4, rng))
    randomize_affine(model, rng)
    skip = ()
    if norm == "batch":
        # BatchNorm subtracts the per-feature batch mean, so the bias before it has gradient exactly 0: a relative
        # error of two zeros is noise. Check that it is zero instead.
        skip = ((first, "b"),)
        model.forward(rng.standard_normal((n, d)))
        model.backward(rng.standard_normal((n, 4)))
        np.testing.assert_allclose(first.grads["b"], 0, atol=1e-12, err_msg="BatchNorm cancels the bias before it")
    check_module_gradients(model, rng.standard_normal((n, d)), rng, skip=skip)


# ---------------------------------------------------------------------------------------- container and SGD
def test_parameters_are_module_name_pairs():
    """Sequential.parameters: (module, name) pairs of every parameter in layer order, nested Sequentials included."""
    rng = np.random.default_rng(8)
    a, b, c = Linear(3, 4, rng), Linear(4, 4, rng), Linear(4, 2, rng)
    model = Sequential(a, ReLU(), Sequential(b, Tanh()), c)
    assert list(model.parameters()) == [(a, "W"), (a, "b"), (b, "W"), (b, "b"), (c, "W"), (c, "b")]
    assert len(model) == 4 and model[0] is a


def test_sgd_step_moves_against_gradient():
    """SGD.step: p -= lr * g in place (same arrays), and a small step lowers the loss."""
    rng = np.random.default_rng(9)
    X, y = blobs(rng, n_per_class=10)
    model = make_mlp([5, 8, 3], rng=rng)
    optimizer = SGD(model, lr=0.01)
    loss_before, dlogits = softmax_cross_entropy(model.forward(X), y)
    model.backward(dlogits)
    before = [(m, name, m.params[name], m.params[name].copy(), m.grads[name].copy()) for m, name in model.parameters()]
    optimizer.step()
    for module, name, array, old, grad in before:
        assert module.params[name] is array, f"SGD must update {name} in place"
        np.testing.assert_allclose(module.params[name], old - 0.01 * grad, err_msg=f"SGD step on {name}")
    loss_after, _ = softmax_cross_entropy(model.forward(X), y)
    assert loss_after < loss_before, f"a small step should lower the loss: {loss_before} -> {loss_after}"


def test_zero_grad_reaches_every_layer():
    """Sequential.zero_grad and SGD.zero_grad set every gradient to zeros of its parameter's shape."""
    rng = np.random.default_rng(10)
    model = make_mlp([3, 4, 2], rng=rng)
    model.backward(softmax_cross_entropy(model.forward(rng.standard_normal((5, 3))), np.zeros(5, int))[1])
    SGD(model, 0.1).zero_grad()
    for module, name in model.parameters():
        assert module.grads[name].shape == module.params[name].shape
        np.testing.assert_array_equal(module.grads[name], 0)


def test_train_eval_propagate_to_children():
    """Sequential.train()/eval() switch every child, nested containers included, and return the model."""
    rng = np.random.default_rng(11)
    model = Sequential(Linear(2, 3, rng), Sequential(ReLU(), Linear(3, 2, rng)))
    children = [model[0], model[1], model[1][0], model[1][1]]
    assert model.eval() is model
    assert not model.training and not any(m.training for m in children)
    model.train()
    assert model.training and all(m.training for m in children)


@pytest.mark.parametrize("norm", NORMS)
def test_make_mlp_structure(norm):
    """make_mlp: Linear -> norm -> ReLU per hidden layer, then a final Linear, with the right widths."""
    from helpers.normalization import BatchNorm, GroupNorm, LayerNorm
    norm_class = {"batch": BatchNorm, "layer": LayerNorm, "group": GroupNorm}[norm]
    model = make_mlp([5, 8, 8, 3], norm=norm, rng=np.random.default_rng(12), num_groups=4)
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [Linear, norm_class, ReLU, Linear, norm_class, ReLU, Linear]
    assert model.forward(np.ones((4, 5))).shape == (4, 3)
    assert [type(m) for m in make_mlp([5, 8, 3], rng=np.random.default_rng(0), activation="tanh").layers] == [
        Linear, Tanh, Linear]
    with pytest.raises(ValueError, match="instance"):
        make_mlp([5, 8, 3], norm="instance", rng=np.random.default_rng(0))


# -------------------------------------------------------------------------------------- metrics and batches
def test_accuracy_and_update_to_data_ratio():
    """accuracy counts argmax hits; update_to_data_ratio is std(lr * grad) / std(param)."""
    assert accuracy(np.array([[1.0, 2.0], [3.0, 0.0], [0.0, 1.0]]), np.array([1, 0, 0])) == pytest.approx(2 / 3)
    rng = np.random.default_rng(13)
    param, grad = rng.standard_normal((20, 30)), rng.standard_normal((20, 30))
    expected = np.std(0.01 * grad) / np.std(param)
    assert update_to_data_ratio(param, grad, 0.01) == pytest.approx(expected)
    assert update_to_data_ratio(np.zeros(3), np.ones(3) * [1, 2, 3], 0.1) == float("inf")


def test_iterate_minibatches():
    """iterate_minibatches: one epoch of index arrays, each index once; drop_last; a fresh permutation per epoch."""
    rng = np.random.default_rng(14)
    batches = list(iterate_minibatches(10, 3, rng, drop_last=False))
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(10))
    kept = list(iterate_minibatches(10, 3, rng))
    assert [len(b) for b in kept] == [3, 3, 3] and len(set(np.concatenate(kept))) == 9
    epoch_1 = np.concatenate(list(iterate_minibatches(50, 10, rng)))
    epoch_2 = np.concatenate(list(iterate_minibatches(50, 10, rng)))
    assert not np.array_equal(epoch_1, epoch_2), "each epoch should draw a new order"
    again = [np.concatenate(list(iterate_minibatches(50, 10, np.random.default_rng(5)))) for _ in range(2)]
    np.testing.assert_array_equal(*again)
    with pytest.raises(ValueError, match="batch_size"):
        list(iterate_minibatches(4, 8, rng))


# --------------------------------------------------------------------------------------------- training loop
def test_eval_mode_keeps_running_statistics():
    """BatchNorm in a model: eval-mode forward and evaluate() leave running_mean and running_var unchanged."""
    rng = np.random.default_rng(15)
    X, y = blobs(rng)
    model = make_mlp([5, 8, 8, 3], norm="batch", rng=rng)
    model.forward(X[:20])  # one training-mode forward moves the running statistics away from 0 and 1
    bns = [layer for layer in model.layers if hasattr(layer, "running_mean")]
    saved = [(bn.running_mean.copy(), bn.running_var.copy()) for bn in bns]
    model.eval()
    model.forward(X)
    model.train()
    evaluate(model, X, y)
    assert model.training and all(layer.training for layer in model.layers), "evaluate must restore train mode"
    for bn, (mean, var) in zip(bns, saved):
        np.testing.assert_array_equal(bn.running_mean, mean, err_msg="eval mode must not update running_mean")
        np.testing.assert_array_equal(bn.running_var, var, err_msg="eval mode must not update running_var")


def test_train_validation_does_not_touch_the_model():
    """train: the same run with and without validation ends with identical parameters and running statistics."""
    rng_data = np.random.default_rng(16)
    X, y = blobs(rng_data)
    models = []
    for validate in (False, True):
        rng = np.random.default_rng(3)
        model = make_mlp([5, 8, 8, 3], norm="batch", rng=rng)
        train(model, X, y, lr=0.1, batch_size=16, steps=30, rng=rng, record_every=5,
              X_val=X if validate else None, y_val=y if validate else None)
        models.append(model)
    for a, b in zip(*(m.layers for m in models)):
        for name in a.params:
            np.testing.assert_array_equal(a.params[name], b.params[name])
        if hasattr(a, "running_mean"):
            np.testing.assert_array_equal(a.running_mean, b.running_mean)
            np.testing.assert_array_equal(a.running_var, b.running_var)


@pytest.mark.parametrize("norm", [None] + NORMS)
def test_train_is_deterministic(norm):
    """train: two runs from the same seed give identical histories; another seed gives another one."""
    X, y = blobs(np.random.default_rng(17))

    def run(seed):
        rng = np.random.default_rng(seed)
        model = make_mlp([5, 8, 8, 3], norm=norm, rng=rng, num_groups=2)
        return train(model, X, y, lr=0.1, batch_size=16, steps=40, rng=rng, X_val=X, y_val=y, record_every=10,
                     record_stats=True)

    first, second, other = run(0), run(0), run(1)
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=f"history[{key!r}] differs between runs")
    assert not np.array_equal(first["train_loss"], other["train_loss"])


def test_train_history_layout():
    """train: train_loss per step, val metrics at steps 0, k, 2k, ..., steps; per-layer statistics when asked."""
    rng = np.random.default_rng(18)
    X, y = blobs(rng)
    model = make_mlp([5, 8, 8, 8, 3], norm="layer", rng=rng)
    history = train(model, X, y, lr=0.1, batch_size=16, steps=25, rng=rng, X_val=X, y_val=y, record_every=10,
                    record_stats=True)
    assert history["train_loss"].shape == (25,) and np.all(np.isfinite(history["train_loss"]))
    np.testing.assert_array_equal(history["step"], [0, 10, 20, 25])
    assert history["val_loss"].shape == history["val_acc"].shape == (4,)
    np.testing.assert_array_equal(history["stats_step"], [0, 10, 20])
    assert history["act_names"] == ["ReLU 1", "ReLU 2", "ReLU 3"]
    assert history["update_names"] == ["Linear 1", "Linear 2", "Linear 3", "Linear 4"]
    assert history["act_std"].shape == (3, 3) and history["update_ratio"].shape == (3, 4)
    assert np.all(history["act_std"] > 0) and np.all(history["update_ratio"] > 0)
    assert history["diverged_at"] is None and model.training
    no_val = train(model, X, y, lr=0.1, batch_size=16, steps=3, rng=rng)
    assert "val_loss" not in no_val and "act_std" not in no_val


def test_train_reaches_high_accuracy_on_separable_data():
    """train: a small MLP separates well-separated blobs (> 90% validation accuracy), loss going down."""
    rng = np.random.default_rng(19)
    X, y = blobs(rng, n_per_class=100, n_classes=4, dim=6, spread=0.5)
    X_val, y_val = X[1::2], y[1::2]
    model = make_mlp([6, 32, 32, 4], norm="batch", rng=rng)
    history = train(model, X[::2], y[::2], lr=0.1, batch_size=16, steps=200, rng=rng, X_val=X_val, y_val=y_val,
                    record_every=50)
    assert history["val_acc"][-1] > 0.9, f"validation accuracy {history['val_acc'][-1]:.2f}, expected > 0.9"
    assert history["val_loss"][-1] < history["val_loss"][0]


def test_train_reports_divergence_without_warnings():
    """train: an absurd learning rate stops at the first non-finite loss, reports the step, and emits no warning."""
    rng = np.random.default_rng(20)
    X, y = blobs(rng)
    model = make_mlp([5, 16, 16, 3], rng=rng)
    history = train(model, X, y, lr=1e200, batch_size=16, steps=200, rng=rng, X_val=X, y_val=y, record_every=10)
    step = history["diverged_at"]
    assert step is not None and 0 < step < 200
    assert np.all(np.isnan(history["train_loss"][step:])) and np.all(np.isfinite(history["train_loss"][:step]))


def test_module_protocol():
    """Every layer is a Module (same forward/backward/train/eval shape)."""
    assert all(issubclass(cls, Module) for cls in (Linear, ReLU, Tanh, Sequential))
