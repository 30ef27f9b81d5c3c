"""Tests of helpers/propagation_plots.py: what each plot draws, its labels and scales, without a display."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers.propagation_plots import plot_layer_histograms, plot_per_layer  # noqa: E402

pytestmark = pytest.mark.filterwarnings("error", "default::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_plot_per_layer_draws_measured_markers_and_predicted_lines_in_the_same_colour(ax):
    measured = {"He": [1.0, 0.9, 1.1], "Xavier": [0.7, 0.5, 0.35]}
    predicted = {"He": [1.0, 1.0, 1.0]}
    plot_per_layer(ax, measured, predicted, ylabel="std", reference=1.0)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert {"He, measured", "He, predicted", "Xavier"} <= set(lines)
    assert "Xavier, predicted" not in lines and "Xavier, measured" not in lines
    np.testing.assert_array_equal(lines["He, measured"].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(lines["Xavier"].get_ydata(), [0.7, 0.5, 0.35])
    assert lines["He, measured"].get_linestyle() == "None" and lines["He, predicted"].get_linestyle() == "-"
    assert lines["He, measured"].get_color() == lines["He, predicted"].get_color()
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == "layer $l$" and ax.get_ylabel() == "std"
    assert ax.get_legend() is not None
    assert any(line.get_linestyle() == "--" for line in ax.get_lines()), "the reference line is missing"


def test_plot_per_layer_without_predictions_or_reference(ax):
    plot_per_layer(ax, {"only": np.array([2.0, 4.0])}, ylabel="value")
    assert [line.get_label() for line in ax.get_lines()] == ["only"]
    assert all(float(tick).is_integer() for tick in ax.xaxis.get_major_locator()())


def test_plot_layer_histograms_draws_one_density_per_chosen_layer(ax):
    rng = np.random.default_rng(0)
    activations = [rng.uniform(-0.5, 0.5, size=(200, 50)), rng.uniform(-0.9, 0.9, size=(200, 50)),
                   np.zeros((200, 50))]
    plot_layer_histograms(ax, activations, layers=[1, 2], bins=40)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["layer 1", "layer 2"]
    for line, half_width in zip(lines, (0.5, 0.9)):
        x, density = line.get_xdata(), line.get_ydata()
        assert x.size == 40 and np.all(np.abs(x) < 1)
        np.testing.assert_allclose(np.sum(density) * (x[1] - x[0]), 1.0, rtol=1e-9)
        np.testing.assert_allclose(np.max(density), 1 / (2 * half_width), rtol=0.35)
    assert ax.get_xlabel() == "activation value" and "density" in ax.get_ylabel()
    assert ax.get_legend() is not None


def test_plot_layer_histograms_counts_values_outside_the_range_as_missing_mass(ax):
    activations = [np.array([-5.0, 0.1, 0.2, 5.0])]
    plot_layer_histograms(ax, activations, layers=[1], bins=4, value_range=(-1.0, 1.0))
    x, density = ax.get_lines()[0].get_xdata(), ax.get_lines()[0].get_ydata()
    np.testing.assert_allclose(np.sum(density) * (x[1] - x[0]), 0.5)
