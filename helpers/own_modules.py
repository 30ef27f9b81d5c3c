"""Your own normalization modules from notebook 04, checked, then trained in notebook 05 (Part G).

``load_own_modules()`` looks for notebook 04 beside the notebook that calls it
(``../04-normalization-modules/04-normalization-modules.ipynb`` from the working folder, which in Jupyter is the
notebook's folder), runs only its answer cells (the cells you wrote, ``### BEGIN SOLUTION`` cells in the
instructor's version) in a fresh namespace that holds nothing but ``np``, builds BatchNorm, GroupNorm and
InstanceNorm modules from your functions and compares them with the course's reference
(``helpers.normalization``) on fixed random cases: forward, running statistics, backward, both modes.
If all agree, the modules returned are yours; otherwise they are the reference. Either way one printed line says
which modules run and why.

Your functions are used as notebook 04 defines them::

    support_axes(variant, ndim)                  normalize_forward(x, axes, eps) -> x_hat, cache
    normalize_backward(dx_hat, cache) -> dx      compensate_forward(x_hat, gamma, beta) -> out
    compensate_backward(dout, x_hat, gamma) -> dx_hat, dgamma, dbeta
    group_norm_forward(x, G, gamma, beta, eps) -> out
    batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps)
        -> out, new_running_mean, new_running_var

A module's forward is your variant's forward (``batch_norm_forward``, ``group_norm_forward``, or
``normalize_forward`` then ``compensate_forward`` for InstanceNorm); its backward runs your
``compensate_backward`` then your ``normalize_backward`` on the cache of your ``normalize_forward``.

Where no notebook 04 is beside it, as in grading (the sandbox's working folder is empty), the reference runs:
grading never depends on another notebook. Nothing here reads a file other than that notebook.
This module needs only numpy and the standard library (it also runs in the browser).
"""
from __future__ import annotations

import contextlib
import io
import json
import traceback
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from helpers.module import Module

__all__ = ["NOTEBOOK_04", "FUNCTIONS", "answer_sources", "load_answers", "modules_from", "reference_modules",
           "compare_with_reference", "load_own_modules"]

NOTEBOOK_04 = Path("..") / "04-normalization-modules" / "04-normalization-modules.ipynb"
FUNCTIONS = ("support_axes", "normalize_forward", "normalize_backward", "compensate_forward", "compensate_backward",
             "group_norm_forward", "batch_norm_forward")
EPS, MOMENTUM = 1e-5, 0.1
_CELL_NAME = "<notebook 04, answer cell {}>"


class AnswerError(Exception):
    """Notebook 04's answers cannot be used; the message says why, in one sentence."""


# ------------------------------------------------------------------------------------------- reading notebook 04
def answer_sources(path: Path) -> list[tuple[str, str]]:
    """(grade_id, source) of every answer code cell of the notebook at ``path``, in order.

    An answer cell is a code cell whose nbgrader metadata has ``solution: true``. Reads the file as JSON.
    """
    notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = []
    for index, cell in enumerate(notebook.get("cells", [])):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code" and meta.get("solution"):
            source = cell.get("source", "")
            cells.append((meta.get("grade_id", f"cell {index}"), "".join(source) if isinstance(source, list) else source))
    return cells


def load_answers(path: Path) -> dict:
    """Run the answer cells of notebook 04 in a fresh namespace ``{'np': numpy}``; return ``FUNCTIONS`` from it.

    What the cells print or warn is swallowed. Raises AnswerError when a cell fails to run or a function is missing.
    """
    namespace: dict = {"np": np, "__name__": "notebook_04_answers"}
    for grade_id, source in answer_sources(path):
        try:
            code = compile(source, _CELL_NAME.format(grade_id), "exec")
            with _quiet():
                exec(code, namespace)  # the student's own code, in the student's own kernel
        except Exception as error:  # noqa: BLE001 - any failure of the student's cell means: use the reference
            raise AnswerError(f"its answer cell {grade_id!r} does not run ({type(error).__name__}: {error})") from None
    missing = [name for name in FUNCTIONS if not callable(namespace.get(name))]
    if missing:
        raise AnswerError(f"it defines no {', '.join(missing)}")
    return {name: namespace[name] for name in FUNCTIONS}


@contextlib.contextmanager
def _quiet():
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


# --------------------------------------------------------------------------------------------- modules from them
def _channel_shape(x: np.ndarray) -> tuple[int, ...]:
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


class _OwnNorm(Module):
    """Shared plumbing: per-channel gamma = 1, beta = 0 of shape (C,) when affine; your functions in ``f``."""

    def __init__(self, f: SimpleNamespace, num_channels: int, eps: float, affine: bool) -> None:
        super().__init__()
        self.f, self.eps = f, eps
        if affine:
            self.params = {"gamma": np.ones(num_channels), "beta": np.zeros(num_channels)}
        self.zero_grad()
        self._cache = None

    def _compensate_backward(self, dout: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
        if not self.params:
            return dout
        dx_hat, dgamma, dbeta = self.f.compensate_backward(dout, x_hat, self.params["gamma"])
        self.grads = {"gamma": np.asarray(dgamma), "beta": np.asarray(dbeta)}
        return dx_hat


class OwnBatchNorm(_OwnNorm):
    """BatchNorm(num_features) from your ``batch_norm_forward``, ``normalize_forward/backward``, ``compensate_*``.

    Running statistics start at 0 and 1 and are updated by your ``batch_norm_forward`` (momentum 0.1).
    """

    def __init__(self, f: SimpleNamespace, num_features: int, eps: float = EPS, momentum: float = MOMENTUM) -> None:
        super().__init__(f, num_features, eps, affine=True)
        self.num_features, self.momentum = num_features, momentum
        self.running_mean, self.running_var = np.zeros(num_features), np.ones(num_features)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, C) or (N, C, H, W) -> out, same shape."""
        f, gamma, beta = self.f, self.params["gamma"], self.params["beta"]
        out, running_mean, running_var = f.batch_norm_forward(x, gamma, beta, self.running_mean, self.running_var,
                                                              self.training, self.momentum, self.eps)
        if self.training:
            self.running_mean, self.running_var = np.asarray(running_mean), np.asarray(running_var)
            x_hat, cache = f.normalize_forward(x, f.support_axes("batch", x.ndim), self.eps)
            self._cache = (x_hat, cache, None)
        else:  # eval mode is an affine map: dx = dx_hat / std
            std = np.sqrt(self.running_var.reshape(_channel_shape(x)) + self.eps)
            self._cache = ((x - self.running_mean.reshape(_channel_shape(x))) / std, None, std)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x_hat, cache, std = self._cache
        dx_hat = self._compensate_backward(dout, x_hat)
        return dx_hat / std if cache is None else self.f.normalize_backward(dx_hat, cache)

    def __repr__(self) -> str:
        return f"BatchNorm({self.num_features}) [yours]"


class OwnGroupNorm(_OwnNorm):
    """GroupNorm(num_groups, num_channels) from your ``group_norm_forward`` and the generic kernel."""

    def __init__(self, f: SimpleNamespace, num_groups: int, num_channels: int, eps: float = EPS) -> None:
        if num_groups < 1 or num_channels % num_groups != 0:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        super().__init__(f, num_channels, eps, affine=True)
        self.num_groups, self.num_channels = num_groups, num_channels

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, C) or (N, C, H, W) -> out, same shape."""
        f = self.f
        out = f.group_norm_forward(x, self.num_groups, self.params["gamma"], self.params["beta"], self.eps)
        groups = x.reshape(x.shape[0], self.num_groups, -1, *x.shape[2:])
        x_hat, cache = f.normalize_forward(groups, f.support_axes("instance", groups.ndim), self.eps)
        self._cache = (x_hat.reshape(x.shape), cache, groups.shape)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x_hat, cache, groups_shape = self._cache
        dx_hat = self._compensate_backward(dout, x_hat)
        return self.f.normalize_backward(dx_hat.reshape(groups_shape), cache).reshape(dout.shape)

    def __repr__(self) -> str:
        return f"GroupNorm({self.num_groups}, {self.num_channels}) [yours]"


class OwnInstanceNorm(_OwnNorm):
    """InstanceNorm(num_features, affine=False) from your ``normalize_forward/backward`` and ``compensate_*``."""

    def __init__(self, f: SimpleNamespace, num_features: int, eps: float = EPS, affine: bool = False) -> None:
        super().__init__(f, num_features, eps, affine)
        self.num_features = num_features

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, C, H, W) -> out, same shape."""
        f = self.f
        x_hat, cache = f.normalize_forward(x, f.support_axes("instance", x.ndim), self.eps)
        self._cache = (x_hat, cache)
        return f.compensate_forward(x_hat, self.params["gamma"], self.params["beta"]) if self.params else x_hat

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x_hat, cache = self._cache
        return self.f.normalize_backward(self._compensate_backward(dout, x_hat), cache)

    def __repr__(self) -> str:
        return f"InstanceNorm({self.num_features}) [yours]"


def modules_from(functions: dict) -> SimpleNamespace:
    """BatchNorm, GroupNorm and InstanceNorm classes (constructors as in helpers.normalization) from your functions.

    functions: name -> callable, the ``FUNCTIONS`` of notebook 04. Returns a namespace with the three
    constructors and ``source = 'notebook 04'``.
    """
    f = SimpleNamespace(**functions)
    return SimpleNamespace(
        BatchNorm=lambda num_features, eps=EPS, momentum=MOMENTUM: OwnBatchNorm(f, num_features, eps, momentum),
        GroupNorm=lambda num_groups, num_channels, eps=EPS: OwnGroupNorm(f, num_groups, num_channels, eps),
        InstanceNorm=lambda num_features, eps=EPS, affine=False: OwnInstanceNorm(f, num_features, eps, affine),
        source="notebook 04")


def reference_modules() -> SimpleNamespace:
    """The course's reference BatchNorm, GroupNorm and InstanceNorm (helpers.normalization), ``source='reference'``."""
    from helpers.normalization import BatchNorm, GroupNorm, InstanceNorm
    return SimpleNamespace(BatchNorm=BatchNorm, GroupNorm=GroupNorm, InstanceNorm=InstanceNorm, source="reference")


# ------------------------------------------------------------------------------------------------------ checking
def _cases(rng: np.random.Generator):
    """(name, make, x) triples: one constructor pair per variant and input; shapes with N != C != H != W."""
    yield "BatchNorm", lambda m: m.BatchNorm(3), rng.normal(1.0, 2.0, size=(7, 3))
    yield "BatchNorm", lambda m: m.BatchNorm(3), rng.normal(-0.5, 1.5, size=(5, 3, 4, 2))
    yield "GroupNorm", lambda m: m.GroupNorm(2, 6), rng.normal(0.3, 2.0, size=(3, 6, 5, 4))
    yield "GroupNorm", lambda m: m.GroupNorm(3, 6), rng.normal(size=(4, 6))
    yield "InstanceNorm", lambda m: m.InstanceNorm(4, affine=True), rng.normal(2.0, 3.0, size=(2, 4, 3, 5))


def _randomize(pair, rng: np.random.Generator) -> None:
    """The same random gamma, beta (and running statistics) in both modules: gamma = 1 hides bugs."""
    mine, reference = pair
    for name in reference.params:
        shape = reference.params[name].shape
        value = rng.uniform(0.5, 1.5, size=shape) if name == "gamma" else rng.normal(size=shape)
        reference.params[name][...] = value
        mine.params[name] = value.copy()
    if hasattr(reference, "running_mean"):
        reference.running_mean = rng.normal(size=reference.running_mean.shape)
        reference.running_var = rng.uniform(0.5, 2.0, size=reference.running_var.shape)
        mine.running_mean, mine.running_var = reference.running_mean.copy(), reference.running_var.copy()


def _differs(got, expected) -> float | None:
    """The largest absolute difference, or None when they agree (rtol 1e-6, atol 1e-8); inf for a shape mismatch."""
    got = np.asarray(got, dtype=float)
    expected = np.asarray(expected, dtype=float)
    if got.shape != expected.shape:
        return float("inf")
    if np.allclose(got, expected, rtol=1e-6, atol=1e-8):
        return None
    with np.errstate(invalid="ignore"):
        return float(np.nanmax(np.abs(got - expected))) if np.isfinite(got).all() else float("nan")


def compare_with_reference(modules: SimpleNamespace, seed: int = 2026) -> str | None:
    """Run ``modules`` and the reference side by side on fixed random cases; None if all agree, else what differs.

    Each case: training-mode forward (out; for BatchNorm also running_mean and running_var), backward (dx, dgamma,
    dbeta), and for BatchNorm an eval-mode forward and backward. Exceptions from your code propagate.
    """
    rng = np.random.default_rng(seed)
    reference = reference_modules()
    for name, make, x in _cases(rng):
        pair = (make(modules), make(reference))
        _randomize(pair, rng)
        for mode in ("training", "eval") if name == "BatchNorm" else ("training",):
            for module in pair:
                module.train(mode == "training")
            outs = [module.forward(x.copy()) for module in pair]
            dout = rng.normal(size=x.shape)
            dxs = [module.backward(dout.copy()) for module in pair]
            what = [("forward output", outs[0], outs[1])]
            if name == "BatchNorm" and mode == "training":
                what += [("running_mean", pair[0].running_mean, pair[1].running_mean),
                         ("running_var", pair[0].running_var, pair[1].running_var)]
            what += [("backward dx", dxs[0], dxs[1])]
            what += [(f"backward d{p}", pair[0].grads.get(p), pair[1].grads[p]) for p in pair[1].params]
            for label, got, expected in what:
                gap = _differs(got, expected)
                if gap is not None:
                    return (f"{name} ({mode} mode) differs from the reference in its {label} on x of shape {x.shape}"
                            f" (largest difference {gap:.2g}; look at {_suspects(name, label)})")
    return None


def _suspects(name: str, label: str) -> str:
    """Which of your functions compute what differs."""
    if label.startswith("running"):
        return "batch_norm_forward"
    if label in ("backward dgamma", "backward dbeta"):
        return "compensate_backward"
    if label == "backward dx":
        return "normalize_backward and compensate_backward"
    return {"BatchNorm": "batch_norm_forward", "GroupNorm": "group_norm_forward"}.get(
        name, "normalize_forward and compensate_forward")


def _raised_in(error: BaseException) -> str | None:
    """The name of the innermost function of notebook 04 in ``error``'s traceback."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if frame.filename.startswith("<notebook 04")]
    return frames[-1].name if frames else None


def load_own_modules(here: Path | str | None = None, verbose: bool = True) -> SimpleNamespace:
    """Your BatchNorm, GroupNorm and InstanceNorm from notebook 04 if they agree with the reference, else the reference.

    here: the folder of the calling notebook (default: the working folder, which Jupyter sets to it); notebook 04
    is looked for at ``here / NOTEBOOK_04``. verbose: print the one-line verdict.
    Returns a namespace with the constructors BatchNorm(C), GroupNorm(G, C), InstanceNorm(C, affine=False),
    ``source`` ('notebook 04' or 'reference'), ``reason`` (the verdict) and ``path`` (where notebook 04 was looked
    for). Deterministic: the same notebook 04 gives the same verdict.
    """
    path = (Path.cwd() if here is None else Path(here)) / NOTEBOOK_04
    try:
        if not path.is_file():
            raise AnswerError(f"there is no notebook 04 at {NOTEBOOK_04.as_posix()} beside this notebook "
                              "(as when it is graded, or opened on its own)")
        try:
            functions = load_answers(path)
            own = modules_from(functions)
            with _quiet():
                problem = compare_with_reference(own)
        except NotImplementedError as error:
            where = _raised_in(error)
            raise AnswerError(f"notebook 04 is not finished: {where or 'one of its functions'} still raises "
                              "NotImplementedError") from None
        except AnswerError:
            raise
        except Exception as error:  # noqa: BLE001 - the student's code failing on a check case
            where = _raised_in(error)
            raise AnswerError(f"your {where or 'code'} raised {type(error).__name__} ({error}) on a check case") from None
        if problem is not None:
            raise AnswerError(f"your {problem}; fix it in notebook 04, save it and run this cell again")
    except AnswerError as error:
        result = reference_modules()
        result.reason = (f"Training with the course's reference modules (helpers.normalization): {error}.")
    else:
        result = own
        result.reason = (f"Training with YOUR modules from notebook 04 ({NOTEBOOK_04.as_posix()}, as last saved): "
                         "BatchNorm, GroupNorm and InstanceNorm built from your functions agree with the reference "
                         "on every check case (forward, running statistics, backward, both modes).")
    result.path = path
    if verbose:
        print(result.reason)
    return result
