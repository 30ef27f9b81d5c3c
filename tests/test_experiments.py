"""Tests of helpers/experiments.py and helpers/conv_experiments.py, the runners and plots of notebook 05.

The first half checks the machinery (standardization, seeding, the runners' records, the plots). The second half
checks numerically, for seeds 0 to 4, every effect notebook 05 claims from its plots (the notebook shows seed 0),
with the notebook's own settings: a claim that holds for one lucky seed only fails here.
"""
from __future__ import annotations

import functools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers.conv_experiments import (  # noqa: E402
    conv_batch_size_sweep, conv_head_comparison, digit_images, plot_conv_batch_sizes, plot_head_comparison,
    run_conv_training, values_per_statistic,
)
from helpers.data import digits_split  # noqa: E402
from helpers.experiments import (  # noqa: E402
    VARIANTS, batch_size_sweep, build_model, compare_norms, dead_units, evaluate_in_chunks, largest_good_lr, lr_sweep,
    plot_batch_size_sweep, plot_dead_units, plot_layer_statistics, plot_lr_sweep, plot_training_curves,
    recompute_batchnorm_statistics, run_training, standardized_digits, weight_scale_sweep,
)
from helpers.network import Linear, evaluate, make_mlp, softmax_cross_entropy, train  # noqa: E402
from helpers.normalization import BatchNorm  # noqa: E402
from tools.paths import solution_notebook  # noqa: E402

# nbgrader scores any stderr output as a failure; an object of another test collected here is not this test's.
pytestmark = pytest.mark.filterwarnings("error", "default::pytest.PytestUnraisableExceptionWarning")

SEEDS = range(5)
# The notebook's settings (test_the_notebook_uses_these_settings keeps them in step).
LRS = np.array([0.01, 0.03, 0.1, 0.3, 1.0, 3.0])
BATCH_SIZES = [32, 16, 8, 4, 2]
SCALES = np.array([0.3, 0.5, 1.0, 1.5, 2.0])
NOTEBOOK_CALLS = (
    "compare_norms(data, lr=0.1, steps=300, seed=0, record_stats=True)",
    "compare_norms(data, lr=0.3, steps=300, seed=0)",
    "LRS = np.array([0.01, 0.03, 0.1, 0.3, 1.0, 3.0])",
    'lr_sweep(data, LRS, steps=150, seed=0, labels=("no norm", "BatchNorm"), with_dead_units=True)',
    'lr_sweep(data, LRS, steps=150, seed=0, labels=("LayerNorm", "GroupNorm"), with_dead_units=True)',
    "SCALES = np.array([0.3, 0.5, 1.0, 1.5, 2.0])",
    "weight_scale_sweep(data, SCALES, lr=0.1, steps=150, seed=0)",
    'build_mlp([64, 32, 32, 10], "batch", np.random.default_rng(0))',
    "batch_sizes = [32, 16, 8, 4, 2]",
    "batch_size_sweep(data, batch_sizes, epochs=2, base_lr=0.1, seed=0)",
)


@functools.lru_cache(maxsize=None)
def digits():
    return standardized_digits(seed=0)


@functools.lru_cache(maxsize=None)
def curves(seed: int, lr: float) -> dict:
    return compare_norms(digits(), lr=lr, steps=300, seed=seed, record_stats=(lr == 0.1))


@functools.lru_cache(maxsize=None)
def sweep_with_dead_units(seed: int) -> tuple:
    return lr_sweep(digits(), LRS, steps=150, seed=seed, with_dead_units=True)


def sweep(seed: int) -> dict:
    return sweep_with_dead_units(seed)[0]


@functools.lru_cache(maxsize=None)
def by_scale(seed: int) -> dict:
    return weight_scale_sweep(digits(), SCALES, lr=0.1, steps=150, seed=seed)


@functools.lru_cache(maxsize=None)
def by_batch(seed: int) -> dict:
    return batch_size_sweep(digits(), BATCH_SIZES, epochs=2, base_lr=0.1, seed=seed)


# ------------------------------------------------------------------------------------------------ machinery
def test_standardized_digits_uses_training_statistics_only():
    """standardized_digits: training columns have mean 0 and std 1 (or 0 if constant); validation uses the same."""
    X_train, X_val, y_train, y_val = standardized_digits(seed=0)
    raw_train, raw_val, raw_y_train, raw_y_val = digits_split(seed=0)
    assert X_train.shape == (1258, 64) and X_val.shape == (539, 64)
    np.testing.assert_array_equal(y_train, raw_y_train)
    np.testing.assert_array_equal(y_val, raw_y_val)
    assert np.all(np.isfinite(X_train)) and np.all(np.isfinite(X_val))
    np.testing.assert_allclose(X_train.mean(axis=0), 0, atol=1e-12)
    std = X_train.std(axis=0)
    constant = raw_train.std(axis=0) == 0
    assert constant.any(), "the digits have pixels that are always 0 in the training part"
    np.testing.assert_allclose(std[~constant], 1)
    np.testing.assert_allclose(std[constant], 0)
    scale = np.where(constant, 1.0, raw_train.std(axis=0))
    np.testing.assert_allclose(X_val, (raw_val - raw_train.mean(axis=0)) / scale)


def test_build_model_variants_and_errors():
    """build_model: one normalization layer per hidden layer for each variant; an unknown label raises."""
    for label, norm in VARIANTS.items():
        model, rng = build_model(label, seed=0, depth=3, width=16)
        kinds = [type(layer).__name__ for layer in model.layers]
        assert kinds.count("Linear") == 4 and kinds.count("ReLU") == 3
        expected = {None: 0, "batch": 3, "layer": 3, "group": 3}[norm]
        assert sum(kind.endswith("Norm") for kind in kinds) == expected, (label, kinds)
        assert isinstance(rng, np.random.Generator)
    with pytest.raises(ValueError, match="unknown variant"):
        build_model("InstanceNorm", seed=0)


def test_evaluate_in_chunks_equals_one_forward_pass():
    """evaluate_in_chunks: the library's evaluate, chunk by chunk, for BatchNorm in eval mode; mode restored."""
    X_train, _, y_train, _ = digits()
    model, _ = build_model("BatchNorm", seed=1, depth=3)
    for start in range(0, 96, 32):
        model.forward(X_train[start:start + 32])  # gives the running statistics values
    running = model[1].running_mean.copy()
    expected = evaluate(model, X_train[:300], y_train[:300])
    got = evaluate_in_chunks(model, X_train[:300], y_train[:300], chunk=64)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert model.training
    np.testing.assert_array_equal(model[1].running_mean, running)
    model.eval()
    evaluate_in_chunks(model, X_train[:10], y_train[:10])
    assert not model.training


def test_run_training_is_seeded_and_records_its_curves():
    """run_training: the same seed gives the same numbers; curves and statistics have the documented layout."""
    first = run_training("GroupNorm", digits(), lr=0.1, steps=60, seed=3, depth=3, record_every=20, record_stats=True)
    again = run_training("GroupNorm", digits(), lr=0.1, steps=60, seed=3, depth=3, record_every=20, record_stats=True)
    other = run_training("GroupNorm", digits(), lr=0.1, steps=60, seed=4, depth=3, record_every=20)
    np.testing.assert_array_equal(first["train_loss"], again["train_loss"])
    np.testing.assert_array_equal(first["curve_loss"], again["curve_loss"])
    assert first["final_val_loss"] == again["final_val_loss"]
    assert not np.array_equal(first["train_loss"], other["train_loss"])
    np.testing.assert_array_equal(first["curve_step"], [0, 20, 40, 60])
    assert first["curve_loss"].shape == (4,) and first["train_loss"].shape == (60,)
    np.testing.assert_array_equal(first["stats_step"], [0, 20, 40])
    assert first["act_std"].shape == (3, 3) and first["update_ratio"].shape == (3, 4)
    assert first["act_names"] == ["ReLU 1", "ReLU 2", "ReLU 3"] and first["update_names"][0] == "Linear 1"
    assert first["curve_loss"][-1] < first["curve_loss"][0]
    assert 0 <= first["final_val_acc"] <= 1 and first["diverged_at"] is None


def test_a_diverging_run_reports_inf_without_warnings():
    """run_training and lr_sweep: an overflowing plain network stops, with inf as its final loss and no warning."""
    run = run_training("no norm", digits(), lr=5.0, steps=100, seed=0, depth=4, record_every=10)
    assert run["diverged_at"] is not None and run["diverged_at"] < 100
    assert run["final_train_loss"] == np.inf and np.isnan(run["final_val_acc"])
    assert len(run["curve_step"]) == len(run["curve_loss"]) <= run["diverged_at"] // 10 + 1
    losses = lr_sweep(digits(), [0.05, 5.0], steps=60, labels=("no norm",), depth=4)["no norm"]
    assert np.isfinite(losses[0]) and losses[1] == np.inf


def test_largest_good_lr():
    """largest_good_lr: the largest rate whose loss is below the threshold; nan when none is."""
    assert largest_good_lr([0.1, 0.3, 1.0], [0.2, 0.4, np.inf]) == 0.3
    assert largest_good_lr([0.1, 0.3, 1.0], [0.2, 0.9, 0.3]) == 1.0
    assert np.isnan(largest_good_lr([0.1, 0.3], [0.9, np.inf]))


def test_the_plots_draw_one_line_per_variant():
    """The four plots: one line per variant, labelled axes, a legend, no warning; diverged runs drawn as markers."""
    data = digits()
    runs = {label: run_training(label, data, lr=0.1, steps=40, seed=0, depth=2, record_every=20, record_stats=True)
            for label in ("no norm", "BatchNorm")}
    fig, ax = plt.subplots()
    plot_training_curves(ax, runs)
    assert [line.get_label() for line in ax.get_lines()][:2] == ["no norm", "BatchNorm"]
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None and ax.get_yscale() == "log"
    fig, ax = plt.subplots()
    plot_lr_sweep(ax, [0.1, 1.0], {"no norm": np.array([0.3, np.inf]), "BatchNorm": np.array([0.2, 0.25])})
    assert ax.get_xscale() == "log" and ax.get_legend() is not None
    assert any(line.get_marker() == "x" for line in ax.get_lines())
    fig, axes = plt.subplots(1, 2)
    results = {"BatchNorm": {"batch_size": np.array([4, 2]), "val_loss": np.array([0.3, 2.0]),
                             "val_error": np.array([8.0, 70.0]), "minibatch_loss": np.array([0.5, 2.3]),
                             "val_error_precise": np.array([7.0, 69.0])},
               "GroupNorm": {"batch_size": np.array([4, 2]), "val_loss": np.array([0.3, 0.3]),
                             "val_error": np.array([9.0, 9.0]), "minibatch_loss": np.array([0.3, 0.3]),
                             "val_error_precise": np.array([9.0, 9.0])}}
    plot_batch_size_sweep(axes, results)
    assert [len(ax.get_lines()) for ax in axes] == [2 * 2 + 1, 2 + 1]  # train and eval per variant, chance; precise BN
    assert all(ax.get_xlim()[0] > ax.get_xlim()[1] and ax.get_legend() is not None for ax in axes)
    fig, axes = plt.subplots(2, 2)
    plot_layer_statistics(axes, runs)
    assert len(axes[0][0].get_lines()) == 2 and len(axes[1][0].get_lines()) == 3 + 1  # layers, and the target line
    assert axes[1][1].get_yscale() == "log"
    plt.close("all")


def test_the_notebook_uses_these_settings():
    """The claims below are checked with the settings notebook 05 runs; its cells still make these calls."""
    text = "\n".join(cell.source for cell in nbformat.read(solution_notebook("05-training"), as_version=4).cells)
    missing = [call for call in NOTEBOOK_CALLS if call not in text]
    assert not missing, f"notebook 05 no longer makes these calls; update the claims tests: {missing}"


# --------------------------------------------------------------------------------- the notebook's claims
@pytest.mark.parametrize("seed", SEEDS)
def test_claim_batchnorm_trains_fastest_and_stays_smooth(seed):
    """Part D curves: at eta 0.1 all four end low, BatchNorm leads after 60 steps and hardly ever goes up, the plain
    network jumps; at eta 0.3 BatchNorm is faster still, far ahead, ends lowest and stays smooth, the plain network
    jumps back above 1 late in training, LayerNorm and GroupNorm end higher than at 0.1."""
    slow, fast = curves(seed, 0.1), curves(seed, 0.3)

    def at_step(run, step):
        hit = np.flatnonzero(run["curve_step"] == step)
        return run["curve_loss"][hit[0]] if hit.size else np.inf

    def late_max(run):  # the largest training loss from step 160 on; inf for a diverged run
        return np.inf if run["diverged_at"] is not None else run["curve_loss"][run["curve_step"] >= 160].max()

    def largest_rise(run):  # the largest increase of the training loss between two records
        return np.max(np.diff(run["curve_loss"]))

    at_60 = {label: at_step(run, 60) for label, run in slow.items()}
    assert min(at_60, key=at_60.get) == "BatchNorm", at_60
    assert largest_rise(slow["BatchNorm"]) < 0.05 and largest_rise(slow["no norm"]) > 0.3
    final = {label: run["final_train_loss"] for label, run in slow.items()}
    assert all(loss < 0.3 for loss in final.values()), final
    bn_at_60_slow = at_60["BatchNorm"]
    at_60 = {label: at_step(run, 60) for label, run in fast.items()}
    assert all(at_60["BatchNorm"] < 0.5 * loss for label, loss in at_60.items() if label != "BatchNorm"), at_60
    assert at_60["BatchNorm"] < bn_at_60_slow
    final_fast = {label: run["final_train_loss"] for label, run in fast.items()}
    assert min(final_fast, key=final_fast.get) == "BatchNorm" and final_fast["BatchNorm"] < 0.15, final_fast
    late = {label: late_max(run) for label, run in fast.items()}
    assert all(late["BatchNorm"] < 0.5 * value for label, value in late.items() if label != "BatchNorm"), late
    assert late["no norm"] > 1, late
    for label in ("LayerNorm", "GroupNorm"):
        assert final_fast[label] > final[label], (label, final[label], final_fast[label])


@pytest.mark.parametrize("seed", SEEDS)
def test_claim_normalization_widens_the_range_of_learning_rates(seed):
    """Part D sweep: the plain network diverges from eta 1 on, no normalized one diverges, BatchNorm still learns
    at 1 (ten times the plain network's largest good rate), LayerNorm and GroupNorm stall there."""
    losses = sweep(seed)
    plain = losses["no norm"]
    assert np.all(np.isfinite(plain[LRS < 1])) and np.all(plain[LRS >= 1] == np.inf), plain
    for label in ("BatchNorm", "LayerNorm", "GroupNorm"):
        assert np.all(np.isfinite(losses[label])), (label, losses[label])
    assert largest_good_lr(LRS, plain) == pytest.approx(0.1)
    assert largest_good_lr(LRS, losses["BatchNorm"]) == pytest.approx(1.0)
    assert plain[LRS == 0.3][0] > max(0.8, 2 * plain[LRS == 0.1][0]), plain
    for label in ("LayerNorm", "GroupNorm"):
        assert np.all(losses[label][LRS >= 1] > 1.5), (label, losses[label])
    at_smallest = {label: values[0] for label, values in losses.items()}
    assert max(at_smallest, key=at_smallest.get) == "BatchNorm", at_smallest


@pytest.mark.parametrize("seed", SEEDS)
def test_claim_batchnorm_degrades_at_small_batches_and_groupnorm_does_not(seed):
    """Part E: Wu & He's shape. At batch 2 GroupNorm ends with a far lower validation loss than BatchNorm;
    BatchNorm's loss grows as the batch shrinks; GroupNorm's stays flat; at batch 32 they are alike."""
    results = by_batch(seed)
    bn, gn = results["BatchNorm"], results["GroupNorm"]
    np.testing.assert_array_equal(bn["batch_size"], BATCH_SIZES)
    assert gn["val_loss"][-1] < bn["val_loss"][-1]
    assert bn["val_error"][-1] > 50 and bn["val_error"][-1] > 4 * gn["val_error"][-1], (bn["val_error"], gn["val_error"])
    assert np.all(np.diff(bn["val_loss"]) > 0), bn["val_loss"]
    assert gn["val_loss"].max() < 1.15 * gn["val_loss"].min(), gn["val_loss"]
    assert abs(bn["val_error"][0] - gn["val_error"][0]) < 5, (bn["val_error"][0], gn["val_error"][0])
    assert bn["val_error"][0] < 15 and gn["val_error"].max() < 15


@pytest.mark.parametrize("seed", SEEDS)
def test_claim_normalization_equalizes_activations_but_not_update_ratios(seed):
    """Part F: with BatchNorm every layer's activation std stays near 0.6; without, it drifts and grows with depth.
    The update-to-data ratios of the layers stay within a factor of about 7 of each other (0.8 decades) in both; with BatchNorm
    they start ordered by depth (the first layer 5 to 7 times the tenth) and fall during training."""
    runs = curves(seed, 0.1)
    plain, bn = runs["no norm"], runs["BatchNorm"]
    assert np.all((bn["act_std"] > 0.5) & (bn["act_std"] < 0.8)), bn["act_std"]
    assert np.all(bn["act_std"].max(axis=1) < 1.25 * bn["act_std"].min(axis=1))
    end = plain["act_std"][-1]
    assert end.max() > 1.5 * end.min() and end[-1] > 1.4 * end[0] and end[-1] > 1.5, end
    for run in (plain, bn):
        log_ratio = np.log10(run["update_ratio"])
        assert np.ptp(log_ratio[-5:].mean(axis=0)) < 0.8, log_ratio[-5:]
        mean = log_ratio[-5:].mean(axis=0)
        assert np.all((mean > -4) & (mean < -1.5)), mean
    log_ratio = np.log10(bn["update_ratio"])
    assert np.all(np.diff(log_ratio[0][:-1]) < 0) and 0.7 < log_ratio[0][0] - log_ratio[0][-2] < 0.9, log_ratio[0]
    assert np.all(log_ratio[-1] < log_ratio[0]), log_ratio[[0, -1]]


@pytest.mark.parametrize("seed", SEEDS)
def test_claim_only_batchnorm_keeps_its_units_alive_at_large_rates(seed):
    """Part D sweep, right panel: at eta 1 more than 75% of layer 10's units are dead in LayerNorm and GroupNorm
    (all of them with seed 0), none in any BatchNorm layer; at eta 3 BatchNorm no longer learns (loss above 0.5)
    though it does not overflow."""
    losses, dead = sweep_with_dead_units(seed)
    at_1 = int(np.flatnonzero(LRS == 1.0)[0])
    assert np.all(np.isnan(dead["no norm"][at_1])), dead["no norm"]
    assert np.all(dead["BatchNorm"][at_1] == 0), dead["BatchNorm"][at_1]
    for label in ("LayerNorm", "GroupNorm"):
        assert dead[label][at_1][-1] > 0.75 and (seed != 0 or dead[label][at_1][-1] == 1.0), (label, dead[label][at_1])
        assert np.all(losses[label][LRS >= 1] > 1.5), (label, losses[label])
        assert seed != 0 or np.all(np.abs(losses[label][LRS >= 1] - np.log(10)) < 0.05), (label, losses[label])
    assert 0.5 < losses["BatchNorm"][-1] < np.inf, losses["BatchNorm"]


@pytest.mark.parametrize("seed", SEEDS)
def test_claim_batchnorm_rescues_a_wrong_initial_scale(seed):
    """Part D, failure first: at 0.3 and 0.5 times He the plain network stalls at ln 10, at He it learns, from 1.5
    times He it overflows; with BatchNorm every scale learns (final loss below 0.5)."""
    losses = by_scale(seed)
    plain, bn = losses["no norm"], losses["BatchNorm"]
    assert np.all(np.abs(plain[SCALES < 1] - np.log(10)) < 0.01), plain
    assert plain[SCALES == 1.0][0] < 0.5 and np.all(plain[SCALES >= 1.5] == np.inf), plain
    assert np.all(bn < 0.5), bn


@pytest.mark.parametrize("seed", SEEDS)
def test_claim_at_batch_2_batchnorm_fails_in_training_mode_not_in_evaluation(seed):
    """Part E: at a batch of 2 BatchNorm's training-mode loss is near chance level (above 2.1), and precise BN
    lowers its error by at most 15 points, leaving it above 50%; GroupNorm's training-mode loss is flat."""
    bn, gn = by_batch(seed)["BatchNorm"], by_batch(seed)["GroupNorm"]
    assert 2.1 < bn["minibatch_loss"][-1] < np.log(10) + 0.05, bn["minibatch_loss"]
    assert bn["val_error_precise"][-1] > 50 and bn["val_error_precise"][-1] > bn["val_error"][-1] - 15, bn
    assert gn["minibatch_loss"].max() < 1.2 * gn["minibatch_loss"].min(), gn["minibatch_loss"]
    np.testing.assert_array_equal(gn["val_error_precise"], gn["val_error"])


@pytest.mark.parametrize("seed", SEEDS)
def test_claim_initial_loss_and_symmetry(seed):
    """Part B checks: He's output layer starts 13% or more above ln 10, 0.1 x He within 1.5% of it; the bias before a
    BatchNorm gets no gradient; constant weights keep one distinct unit per hidden layer, random ones learn."""
    X, _, y, _ = digits()
    losses = []
    for factor in (1.0, 0.1):
        model = make_mlp([64, 32, 32, 10], "batch", rng=np.random.default_rng(seed))
        model[len(model) - 1].params["W"] *= factor
        loss, dlogits = softmax_cross_entropy(model.forward(X), y)
        model.backward(dlogits)
        assert np.abs(model[0].grads["b"]).max() < 1e-12
        losses.append(loss)
    assert losses[0] > 1.13 * np.log(10) and abs(losses[1] / np.log(10) - 1) < 0.015, losses
    for value in (0.0, 0.1):
        model = make_mlp([64, 32, 32, 10], None, rng=np.random.default_rng(seed))
        for module, name in model.parameters():
            module.params[name][...] = value if name == "W" else 0.0
        train(model, X, y, lr=0.1, batch_size=32, steps=300, rng=np.random.default_rng(seed))
        distinct = [np.unique(layer.params["W"].round(10), axis=1).shape[1] for layer in model.layers
                    if isinstance(layer, Linear)]
        assert distinct[:2] == [1, 1], (value, distinct)
        assert softmax_cross_entropy(model.forward(X), y)[0] > 1.9
    model = make_mlp([64, 32, 32, 10], None, rng=np.random.default_rng(seed))
    train(model, X, y, lr=0.1, batch_size=32, steps=300, rng=np.random.default_rng(seed))
    assert softmax_cross_entropy(model.forward(X), y)[0] < 0.2


def test_dead_units_and_precise_batchnorm():
    """dead_units counts units that are 0 on every row; recompute_batchnorm_statistics sets the exact statistics."""
    X = digits()[0][:200]
    model, _ = build_model("BatchNorm", seed=0, depth=3)
    model[0].params["b"][:5] = -1e3  # with statistics that fit, BatchNorm cancels a bias: nothing dies
    recompute_batchnorm_statistics(model, X)
    assert np.all(dead_units(model, X) == 0) and model.training
    model[1].params["beta"][:16] = -1e3  # a very negative beta kills the unit
    np.testing.assert_allclose(dead_units(model, X), [0.25, 0, 0])
    z = X @ model[0].params["W"] + model[0].params["b"]
    np.testing.assert_allclose(model[1].running_mean, z.mean(axis=0))
    np.testing.assert_allclose(model[1].running_var, z.var(axis=0, ddof=1))
    assert model.training and isinstance(model[1], BatchNorm)
    fig, ax = plt.subplots()
    plot_dead_units(ax, {"BatchNorm": [0, 0.5], "no norm": [np.nan, np.nan]})
    assert len(ax.get_lines()) == 1 and ax.get_legend() is not None
    plt.close("all")


# ------------------------------------------------------------------------- Part G: the convolutional network
CONV_BATCH_SIZES = [32, 8, 2]
CONV_NOTEBOOK_CALLS = (
    "conv_batch_size_sweep(images, [32, 8, 2], epochs=2, base_lr=0.1, seed=0, modules=norms)",
    "conv_head_comparison(images, lr=0.3, epochs=3, seed=0, modules=norms)",
    "images = digit_images(seed=0)",
)


@functools.lru_cache(maxsize=None)
def conv_by_batch(seed: int) -> dict:
    return conv_batch_size_sweep(digit_images(0), CONV_BATCH_SIZES, epochs=2, base_lr=0.1, seed=seed)


@functools.lru_cache(maxsize=None)
def conv_by_head(seed: int) -> dict:
    return conv_head_comparison(digit_images(0), lr=0.3, epochs=3, seed=seed)


def test_the_notebook_makes_these_conv_calls():
    """Part G's claims below are checked with the calls notebook 05 makes."""
    text = "\n".join(cell.source for cell in nbformat.read(solution_notebook("05-training"), as_version=4).cells)
    missing = [call for call in CONV_NOTEBOOK_CALLS if call not in text]
    assert not missing, f"notebook 05 no longer makes these calls; update the claims tests: {missing}"


def test_values_per_statistic():
    """values_per_statistic: the counts the notebook prints for the first layer's maps."""
    assert values_per_statistic((2, 16, 8, 8), num_groups=4) == {
        "BatchNorm": 128, "BatchNorm per position": 2, "GroupNorm": 256, "InstanceNorm": 64, "LayerNorm": 1024}


def test_the_conv_plots_draw_what_they_say():
    """plot_conv_batch_sizes and plot_head_comparison: lines per variant, the MLP's BatchNorm, bars per head."""
    results = {"BatchNorm": {"batch_size": np.array([32, 2]), "minibatch_loss": np.array([0.2, 0.2]),
                             "val_error": np.array([5.0, 6.0])},
               "BatchNorm per position": {"batch_size": np.array([32, 2]), "minibatch_loss": np.array([0.3, 1.9]),
                                          "val_error": np.array([5.0, 40.0])}}
    mlp = {"BatchNorm": {"batch_size": np.array([32, 16, 2]), "minibatch_loss": np.array([0.4, 0.6, 2.3]),
                         "val_error": np.array([8.0, 9.0, 77.0])}}
    fig, axes = plt.subplots(1, 2)
    plot_conv_batch_sizes(axes, results, mlp_results=mlp)
    assert [len(ax.get_lines()) for ax in axes] == [2 + 1 + 1, 2 + 1]
    mlp_line = [line for line in axes[1].get_lines() if line.get_label().startswith("BatchNorm, MLP")][0]
    np.testing.assert_array_equal(mlp_line.get_xdata(), [32, 2])
    assert all(ax.get_xlim()[0] > ax.get_xlim()[1] and ax.get_legend() is not None for ax in axes)
    fig, ax = plt.subplots()
    heads = {head: {label: {"val_error": error, "final_train_loss": 0.1, "minibatch_loss": 0.1}
                    for label, error in (("no norm", 10.0), ("InstanceNorm", 50.0))} for head in ("flatten", "pool")}
    plot_head_comparison(ax, heads)
    assert len(ax.patches) == 4 and ax.get_ylabel() and len(ax.get_legend().get_texts()) == 3
    plt.close("all")


def test_conv_runs_are_seeded():
    """run_conv_training: the same seed gives the same numbers, another seed others."""
    data = digit_images(0)
    first = run_conv_training("GroupNorm", data, lr=0.1, epochs=0.2, seed=3)
    again = run_conv_training("GroupNorm", data, lr=0.1, epochs=0.2, seed=3)
    other = run_conv_training("GroupNorm", data, lr=0.1, epochs=0.2, seed=4)
    np.testing.assert_array_equal(first["train_loss"], again["train_loss"])
    assert first["val_error"] == again["val_error"] and not np.array_equal(first["train_loss"], other["train_loss"])
    assert first["steps"] == 8 and first["diverged_at"] is None


@pytest.mark.parametrize("seed", SEEDS)
def test_claim_spatial_batchnorm_survives_a_batch_of_2_and_per_position_batchnorm_does_not(seed):
    """Part G, batch sizes: at 32 the two are alike (within 2 points, about 5 % for seed 0); at 2 spatial BatchNorm's
    training-mode loss stays below 0.2 and its error below 7 % (within 2 points of its error at 32), far below the
    MLP's BatchNorm at 2; BatchNorm per position's loss climbs above 1.5 and its error above 25 % (at most 50 %), more
    than four times spatial BatchNorm's."""
    results = conv_by_batch(seed)
    spatial, per_position = results["BatchNorm"], results["BatchNorm per position"]
    np.testing.assert_array_equal(spatial["batch_size"], CONV_BATCH_SIZES)
    assert abs(spatial["val_error"][0] - per_position["val_error"][0]) < 2, (spatial, per_position)
    assert seed != 0 or all(4.5 < r["val_error"][0] < 6 for r in (spatial, per_position)), (spatial, per_position)
    assert spatial["minibatch_loss"][-1] < 0.2 and spatial["val_error"][-1] < 7, spatial
    assert spatial["val_error"][-1] - spatial["val_error"][0] < 2, spatial
    assert spatial["val_error"][-1] < by_batch(seed)["BatchNorm"]["val_error"][-1] / 5
    assert per_position["minibatch_loss"][-1] > 1.5 and 25 < per_position["val_error"][-1] < 50, per_position
    assert per_position["val_error"][-1] > 4 * spatial["val_error"][-1], (spatial, per_position)
    assert np.all(np.diff(per_position["minibatch_loss"]) > 0), per_position


@pytest.mark.parametrize("seed", SEEDS)
def test_claim_instancenorm_fails_with_a_pooled_head_only(seed):
    """Part G, heads: with Flatten every variant is below 6 % error; with global average pooling InstanceNorm's
    training loss stays above 2.1 and its error above 50 %, GroupNorm is worse than no normalization, BatchNorm
    is the best of the four (below 16 %); every variant is worse pooled than flattened."""
    results = conv_by_head(seed)
    flat, pool = results["flatten"], results["pool"]
    assert all(run["val_error"] < 6 for run in flat.values()), flat
    assert seed != 0 or all(2 <= run["val_error"] <= 4 for run in flat.values()), flat
    assert pool["InstanceNorm"]["final_train_loss"] > 2.1 and pool["InstanceNorm"]["val_error"] > 50, pool
    assert max(pool, key=lambda label: pool[label]["final_train_loss"]) == "InstanceNorm", pool
    assert pool["GroupNorm"]["val_error"] > pool["no norm"]["val_error"], pool
    assert min(pool, key=lambda label: pool[label]["val_error"]) == "BatchNorm", pool
    assert pool["BatchNorm"]["val_error"] < 16, pool
    assert all(pool[label]["val_error"] > flat[label]["val_error"] for label in pool), (flat, pool)


def test_pooled_instancenorm_output_is_beta():
    """The demo before the heads: the spatial mean of an InstanceNorm's output is its beta, for every image."""
    from helpers.normalization import InstanceNorm
    norm = InstanceNorm(16, affine=True)
    norm.params["beta"][...] = np.linspace(-1, 1, 16)
    maps = 7 + 3 * np.random.default_rng(1).normal(size=(5, 16, 4, 4))
    np.testing.assert_allclose(norm.forward(maps).mean(axis=(2, 3)), np.broadcast_to(norm.params["beta"], (5, 16)),
                               atol=1e-12)
