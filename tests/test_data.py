"""Tests for helpers/data.py and the data files it ships: checksums, shapes, known facts, splits."""
from __future__ import annotations

import ast
import hashlib
import re
import sys
from importlib import resources

import numpy as np
import pytest

from helpers import data

DATA_DIR = resources.files("helpers") / "data"
# Class counts of optdigits.tes (the test split) as UCI's optdigits.names states them, digits 0..9.
OPTDIGITS_TEST_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def provenance_checksums() -> dict[str, str]:
    """The `<sha256>  <file>` lines of PROVENANCE.md (the sha256sum format), as {file: sha256}."""
    text = (DATA_DIR / "PROVENANCE.md").read_text(encoding="utf-8")
    return {name: digest for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", text, flags=re.MULTILINE)}


def shipped_data_files() -> list[str]:
    return sorted(entry.name for entry in DATA_DIR.iterdir() if entry.is_file() and entry.name != "PROVENANCE.md")


# ---------------------------------------------------------------- files and provenance


def test_provenance_lists_every_shipped_file():
    """Every file in helpers/data/ has a checksum line in PROVENANCE.md, and every line names a shipped file."""
    assert shipped_data_files() == ["digits.csv", "wine.csv"]
    assert sorted(provenance_checksums()) == shipped_data_files()


@pytest.mark.parametrize("name", ["wine.csv", "digits.csv"])
def test_shipped_file_matches_provenance_checksum(name):
    """The SHA-256 of each shipped file equals the one recorded in PROVENANCE.md."""
    actual = hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest()
    expected = provenance_checksums()[name]
    assert actual == expected, (f"{name}: SHA-256 {actual} differs from PROVENANCE.md's {expected}; if the change is "
                                "intended, update PROVENANCE.md (checksum and transformation); a Windows checkout "
                                "with CRLF line ends also changes it")


@pytest.mark.parametrize("name", ["wine.csv", "digits.csv"])
def test_shipped_file_is_small_plain_ascii_with_unix_line_ends(name):
    """Each data file is under 1 MB, ASCII, with '\\n' line ends (the checksum assumes them)."""
    raw = (DATA_DIR / name).read_bytes()
    assert len(raw) < 1_000_000
    raw.decode("ascii")
    assert b"\r" not in raw


def test_module_imports_only_numpy_and_stdlib():
    """helpers/data.py runs under Pyodide: it imports numpy and standard-library modules only."""
    tree = ast.parse(resources.files("helpers").joinpath("data.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    third_party = {name for name in imported if name not in sys.stdlib_module_names}
    assert third_party == {"numpy"}, f"helpers/data.py imports {sorted(third_party)}; only numpy is allowed"


# ---------------------------------------------------------------- wine


def test_wine_shapes_dtypes_and_names():
    """load_wine returns X (178, 13) float64, y (178,) int64 and 13 str feature names."""
    X, y, names = data.load_wine()
    assert X.shape == (178, 13) and X.dtype == np.float64
    assert y.shape == (178,) and y.dtype == np.int64
    assert isinstance(names, list) and len(names) == 13 and all(isinstance(name, str) for name in names)
    assert names[0] == "alcohol" and names[1] == "malic_acid" and names[10] == "hue" and names[-1] == "proline"
    assert np.all(np.isfinite(X))


def test_wine_class_counts():
    """Wine has the classes 0, 1, 2 with 59, 71 and 48 samples (UCI)."""
    _, y, _ = data.load_wine()
    assert set(np.unique(y).tolist()) == {0, 1, 2}
    assert np.bincount(y).tolist() == [59, 71, 48]


def test_wine_first_row_matches_uci():
    """The first wine is UCI's first row (a transposed or shifted file would not match)."""
    X, y, _ = data.load_wine()
    expected = [14.23, 1.71, 2.43, 15.6, 127, 2.8, 3.06, 0.28, 2.29, 5.64, 1.04, 3.92, 1065]
    np.testing.assert_array_equal(X[0], expected)
    assert y[0] == 0


def test_wine_feature_scales_differ_by_orders_of_magnitude():
    """Proline spans hundreds to 1680, hue sits around 1: per-feature stds differ by more than a factor 100."""
    X, _, names = data.load_wine()
    proline = X[:, names.index("proline")]
    hue = X[:, names.index("hue")]
    assert proline.min() == 278 and proline.max() == 1680
    assert 0.4 < hue.min() and hue.max() < 2.0 and abs(hue.mean() - 1.0) < 0.1
    std = X.std(axis=0)
    assert std.max() / std.min() > 100, f"std ratio {std.max() / std.min():.1f}"


def test_wine_loads_fresh_arrays():
    """Changing the returned arrays in place does not change the next load."""
    X, y, names = data.load_wine()
    X[:] = 0
    y[:] = 0
    names.clear()
    X2, y2, names2 = data.load_wine()
    assert X2[0, 12] == 1065 and np.bincount(y2).tolist() == [59, 71, 48] and len(names2) == 13


# ---------------------------------------------------------------- digits


def test_digits_shapes_dtypes_and_ranges():
    """load_digits returns X (1797, 64) float64 with integer values in [0, 16], y (1797,) int64 in 0..9."""
    X, y = data.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0 and X.max() == 16
    np.testing.assert_array_equal(X, np.round(X))
    assert set(np.unique(y).tolist()) == set(range(10))


def test_digits_class_counts_match_the_uci_test_split():
    """The 1797 images have the class distribution that optdigits.names gives for the UCI test split."""
    _, y = data.load_digits()
    assert np.bincount(y, minlength=10).tolist() == OPTDIGITS_TEST_COUNTS


def test_digits_first_image_is_a_zero():
    """The first image, reshaped row-major to 8x8, is a zero: ink on the border, a hole in the middle."""
    X, y = data.load_digits()
    image = X[0].reshape(8, 8)
    assert y[0] == 0
    assert image[3:5, 3:5].sum() == 0 and image[1:7, 1:7].sum() > 100


# ---------------------------------------------------------------- splits


def test_split_same_seed_gives_identical_arrays():
    """train_test_split with the same seed returns identical arrays."""
    X, y, _ = data.load_wine()
    first = data.train_test_split(X, y, test_fraction=0.3, seed=7)
    second = data.train_test_split(X, y, test_fraction=0.3, seed=7)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(data.digits_split(seed=3), data.digits_split(seed=3)):
        np.testing.assert_array_equal(a, b)


def test_split_different_seed_gives_different_rows():
    """Different seeds select different test rows."""
    y = data.load_wine()[1]
    _, test_0 = data.split_indices(y, seed=0)
    _, test_1 = data.split_indices(y, seed=1)
    assert set(test_0.tolist()) != set(test_1.tolist())
    assert not np.array_equal(data.wine_split(seed=0)[1], data.wine_split(seed=1)[1])


@pytest.mark.parametrize("loader", ["wine", "digits"])
@pytest.mark.parametrize("test_fraction", [0.1, 0.3, 0.5])
def test_split_indices_disjoint_cover_and_stratified(loader, test_fraction):
    """Train and test indices are disjoint, cover every row once, and keep each class's share."""
    y = data.load_wine()[1] if loader == "wine" else data.load_digits()[1]
    train_idx, test_idx = data.split_indices(y, test_fraction=test_fraction, seed=0)
    assert train_idx.dtype == np.int64 and test_idx.dtype == np.int64
    assert np.intersect1d(train_idx, test_idx).size == 0, "a row is in both train and test"
    np.testing.assert_array_equal(np.sort(np.concatenate([train_idx, test_idx])), np.arange(y.size))
    counts = np.bincount(y)
    test_counts = np.bincount(y[test_idx], minlength=counts.size)
    train_counts = np.bincount(y[train_idx], minlength=counts.size)
    assert np.all(test_counts >= 1) and np.all(train_counts >= 1), "a class is missing from one part"
    np.testing.assert_array_equal(test_counts, np.floor(test_fraction * counts + 0.5).astype(int))


def test_train_test_split_rows_follow_the_indices():
    """train_test_split returns exactly the rows that split_indices picks (labelling each row by its index)."""
    y = data.load_wine()[1]
    row_ids = np.arange(y.size)[:, None]
    ids_train, ids_test, y_train, y_test = data.train_test_split(row_ids, y, test_fraction=0.3, seed=5)
    train_idx, test_idx = data.split_indices(y, test_fraction=0.3, seed=5)
    np.testing.assert_array_equal(ids_train[:, 0], train_idx)
    np.testing.assert_array_equal(ids_test[:, 0], test_idx)
    np.testing.assert_array_equal(y_train, y[train_idx])
    np.testing.assert_array_equal(y_test, y[test_idx])


def test_split_classes_are_interleaved():
    """The training part is shuffled, not sorted by class (minibatches taken in order must mix classes)."""
    y_train = data.wine_split(seed=0)[2]
    assert len(np.unique(y_train[:20])) == 3


def test_split_keeps_dtypes():
    """The split returns copies with the dtypes it was given (float32 stays float32)."""
    X, y = data.load_digits()
    X32 = X.astype(np.float32)
    X_train, X_test, y_train, y_test = data.train_test_split(X32, y, seed=0)
    assert X_train.dtype == np.float32 and X_test.dtype == np.float32
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    X_train[:] = -1
    assert X32.min() == 0, "the split must copy rows, not return views into the input"


def test_wine_and_digits_split_shapes_and_dtypes():
    """wine_split and digits_split return the documented shapes and dtypes."""
    X_train, X_test, y_train, y_test = data.wine_split()
    assert (X_train.shape, X_test.shape, y_train.shape, y_test.shape) == ((125, 13), (53, 13), (125,), (53,))
    assert X_train.dtype == np.float64 and y_train.dtype == np.int64
    X_train, X_test, y_train, y_test = data.digits_split()
    assert (X_train.shape, X_test.shape, y_train.shape, y_test.shape) == ((1258, 64), (539, 64), (1258,), (539,))
    X_train, X_test, _, _ = data.digits_split(seed=0, test_fraction=0.2)
    assert X_test.shape == (359, 64) and X_train.shape == (1438, 64)  # rounded per class, not in total


@pytest.mark.parametrize("test_fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_rejects_bad_test_fraction(test_fraction):
    """A test_fraction outside (0, 1) is a ValueError that names the argument."""
    with pytest.raises(ValueError, match="test_fraction"):
        data.split_indices(np.array([0, 0, 1, 1]), test_fraction=test_fraction)


def test_split_rejects_class_with_one_sample_and_mismatched_lengths():
    """A class with one sample cannot be in both parts; X and y must have the same number of rows."""
    with pytest.raises(ValueError, match="class 2 has 1 sample"):
        data.split_indices(np.array([0, 0, 1, 1, 2]))
    with pytest.raises(ValueError, match="same number of rows"):
        data.train_test_split(np.zeros((5, 2)), np.array([0, 0, 1, 1]))
