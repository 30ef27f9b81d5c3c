"""Real data sets for the course, read from files shipped inside the package (nothing is downloaded).

- UCI Wine (notebook 02): 178 wines, 13 chemical measurements whose scales differ by orders of magnitude
  (proline in the hundreds to thousands, hue around 1), 3 cultivars.
- UCI optical recognition of handwritten digits, the 1797-image test split as scikit-learn ships it
  (notebook 05): 8x8 images with integer pixel values 0..16, 10 digits.

The files, their sources, licence (CC BY 4.0) and SHA-256 checksums are in ``helpers/data/PROVENANCE.md``.
This module needs only numpy and the standard library, so it also runs in a browser kernel (Pyodide).

Splits are stratified and seeded: ``train_test_split(X, y, test_fraction=0.3, seed=0)`` always returns the same
rows for the same seed, and every class appears in both parts. Normalization statistics belong to the training
part only: the loaders return raw values on purpose.
"""
from __future__ import annotations

import io
from importlib import resources

import numpy as np

__all__ = [
    "WINE_FEATURE_NAMES",
    "load_wine",
    "load_digits",
    "split_indices",
    "train_test_split",
    "wine_split",
    "digits_split",
]

WINE_FEATURE_NAMES = (
    "alcohol",
    "malic_acid",
    "ash",
    "alcalinity_of_ash",
    "magnesium",
    "total_phenols",
    "flavanoids",
    "nonflavanoid_phenols",
    "proanthocyanins",
    "color_intensity",
    "hue",
    "od280/od315_of_diluted_wines",
    "proline",
)
_DIGITS_COLUMNS = tuple(f"pixel_{row}_{col}" for row in range(8) for col in range(8))


def _read_table(filename: str, feature_columns: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Read ``helpers/data/<filename>``: a header row, then numbers; returns X (N, D) float64 and y (N,) int64."""
    # importlib.resources finds the file in a source checkout, an installed wheel and Pyodide's file system alike.
    text = (resources.files(__package__) / "data" / filename).read_text(encoding="ascii")
    header, _, body = text.partition("\n")
    columns = tuple(header.strip().split(","))
    expected = (*feature_columns, "class")
    if columns != expected:
        raise ValueError(f"{filename}: unexpected header {columns[:3]}...; expected {expected[:3]}... "
                         "(the data file was changed: compare its SHA-256 with helpers/data/PROVENANCE.md)")
    table = np.loadtxt(io.StringIO(body), delimiter=",", dtype=np.float64, ndmin=2)
    X = np.ascontiguousarray(table[:, :-1])
    y = table[:, -1].astype(np.int64)
    return X, y


def load_wine() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Load UCI Wine: chemical analysis of 178 Italian wines from three cultivars.

    Returns:
    - X: (178, 13) float64, raw (unnormalized) measurements, one row per wine, columns in feature_names order.
      Scales differ by orders of magnitude: proline is 278..1680, hue 0.48..1.71, magnesium 70..162.
    - y: (178,) int64, the cultivar in {0, 1, 2}; class counts 59, 71, 48.
    - feature_names: list of 13 str, "alcohol", "malic_acid", ..., "hue", "od280/od315_of_diluted_wines", "proline".
    """
    X, y = _read_table("wine.csv", WINE_FEATURE_NAMES)
    return X, y, list(WINE_FEATURE_NAMES)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """Load the UCI optical handwritten digits (the 1797-image test split, as scikit-learn ships it).

    Returns:
    - X: (1797, 64) float64, integer pixel counts in [0, 16]; ``X.reshape(-1, 8, 8)`` gives the images,
      row-major (column ``8 * row + col`` is pixel (row, col)).
    - y: (1797,) int64, the digit in 0..9; about 180 images per digit (174 to 183).
    """
    return _read_table("digits.csv", _DIGITS_COLUMNS)


def split_indices(y, test_fraction: float = 0.3, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded random split of the row indices of ``y`` into train and test.

    Inputs:
    - y: (N,) class labels (any values that compare with ==); every class needs at least 2 samples.
    - test_fraction: float in (0, 1); each class puts round(test_fraction * n_class) of its samples in the test
      part, but at least 1 and at most n_class - 1, so every class appears in both parts.
    - seed: passed to ``np.random.default_rng``; the same seed gives the same split.

    Returns:
    - train_idx: (N_train,) int64 and test_idx: (N_test,) int64, disjoint, together 0..N-1, each in random order
      (classes are interleaved, not in blocks, so minibatches taken in order are mixed).
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"split_indices: y must have shape (N,), got shape {y.shape}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"split_indices: test_fraction must be in (0, 1), got {test_fraction!r}")
    rng = np.random.default_rng(seed)
    train_parts, test_parts = [], []
    for label in np.unique(y).tolist():
        members = np.flatnonzero(y == label)
        if members.size < 2:
            raise ValueError(f"split_indices: class {label!r} has {members.size} sample; a stratified split needs "
                             "at least 2 per class so that the class appears in both parts")
        n_test = int(np.floor(test_fraction * members.size + 0.5))
        n_test = min(max(n_test, 1), members.size - 1)
        shuffled = rng.permutation(members)
        test_parts.append(shuffled[:n_test])
        train_parts.append(shuffled[n_test:])
    train_idx = rng.permutation(np.concatenate(train_parts)).astype(np.int64)
    test_idx = rng.permutation(np.concatenate(test_parts)).astype(np.int64)
    return train_idx, test_idx


def train_test_split(X, y, test_fraction: float = 0.3, seed=0):
    """Stratified, seeded split of a data set into a training and a test part (see ``split_indices``).

    Inputs:
    - X: (N, D) features; y: (N,) labels.
    - test_fraction: float in (0, 1), the share of each class that goes to the test part.
    - seed: passed to ``np.random.default_rng``; the same seed gives identical arrays.

    Returns (X_train, X_test, y_train, y_test): (N_train, D), (N_test, D), (N_train,), (N_test,), copies of the
    rows, dtypes kept; every class appears in both parts and no row is in both.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.shape[:1] != y.shape[:1]:
        raise ValueError(f"train_test_split: X and y must have the same number of rows, got X {X.shape}, y {y.shape}")
    train_idx, test_idx = split_indices(y, test_fraction=test_fraction, seed=seed)
    return X[train_idx], X[test_idx], y[train_idx], y[test_idx]


def wine_split(seed=0, test_fraction: float = 0.3):
    """UCI Wine split for notebook 02: ``train_test_split(*load_wine()[:2], test_fraction, seed)``.

    Returns (X_train, X_test, y_train, y_test): (125, 13), (53, 13) float64 raw features and (125,), (53,) int64
    labels for the default test_fraction=0.3 (per class 41/18, 50/21, 34/14).
    """
    X, y, _ = load_wine()
    return train_test_split(X, y, test_fraction=test_fraction, seed=seed)


def digits_split(seed=0, test_fraction: float = 0.3):
    """UCI digits split for notebook 05: ``train_test_split(*load_digits(), test_fraction, seed)``.

    Returns (X_train, X_test, y_train, y_test): (1258, 64), (539, 64) float64 pixels in [0, 16] and (1258,),
    (539,) int64 digits for the default test_fraction=0.3.
    """
    X, y = load_digits()
    return train_test_split(X, y, test_fraction=test_fraction, seed=seed)
