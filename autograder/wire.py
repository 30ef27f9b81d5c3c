"""Plain data on the wire between the grader and the sandboxed kernel: JSON, never pickle.

Both sides use this module: the grader imports it, and the kernel receives its source (autograder/agent.py).
What can cross:

| value                                   | JSON form                                                         |
|-----------------------------------------|-------------------------------------------------------------------|
| None, bool, int, str, finite float      | themselves                                                        |
| nan, inf, complex                       | ``{"$f": "nan"}``, ``{"$complex": [re, im]}``                     |
| list / tuple / dict                     | list / ``{"$tuple": [...]}`` / ``{"$dict": [[key, value], ...]}`` |
| numpy array or scalar (numeric, bool)   | ``{"$array": {"dtype", "shape", "data": base64, "ref"}}``         |
| ``np.random.Generator``                 | ``{"$rng": {"state", "ref"}}``                                    |
| an object of a class of the course's ``helpers`` package | ``{"$object": {"class", "state", "ref"}}``       |
| a helper function's result, rebuilt by calling it again | ``{"$recipe": {"function", "args", "kwargs"}}``  |
| the same object again in one message    | ``{"$ref": n}``                                                   |
| an object sent by the other side        | ``{"$sent": n}`` (the receiver's own object ``n``)                |
| anything else (kernel side only)        | ``{"$handle": {"id", "type"}}``: it stays in the kernel           |

Decoding is strict: unknown tags, dtypes or classes, more than ``MAX_DEPTH`` levels of nesting, messages over
``MAX_BYTES`` or with more than ``MAX_CONTAINERS`` arrays and objects are errors (``WireError``); arrays are copied
out of the message, never views of foreign memory.
"""
from __future__ import annotations

import base64
import importlib
import json
import math

import numpy as np

MAX_BYTES = 64 << 20
MAX_DEPTH = 64
MAX_CONTAINERS = 100_000  # arrays and objects in one message (arrays travel as base64: a reply needs a few dozen)
DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32",
          "float64", "complex64", "complex128"}
BIT_GENERATORS = {"PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"}
HELPERS_PACKAGE = "helpers"


class WireError(ValueError):
    """A message that is not plain data of the forms above."""


def helper_class(path: str) -> type:
    """The class ``helpers.<module>.<Name>`` named by ``path``; WireError for anything else."""
    module_name, _, name = path.rpartition(".")
    if not (module_name == HELPERS_PACKAGE or module_name.startswith(HELPERS_PACKAGE + ".")) or not name.isidentifier():
        raise WireError(f"not a class of the course's helpers: {path!r}")
    cls = getattr(importlib.import_module(module_name), name, None)
    if not isinstance(cls, type) or cls.__module__ != module_name or issubclass(cls, BaseException):
        raise WireError(f"not a class of the course's helpers: {path!r}")
    return cls


def helper_function(path: str):
    """The function ``helpers.<module>.<name>`` named by ``path``; WireError for anything else."""
    module_name, _, name = path.rpartition(".")
    if not module_name.startswith(HELPERS_PACKAGE + ".") or not name.isidentifier():
        raise WireError(f"not a function of the course's helpers: {path!r}")
    function = getattr(importlib.import_module(module_name), name, None)
    if not callable(function) or isinstance(function, type):
        raise WireError(f"not a function of the course's helpers: {path!r}")
    return function


def is_helper_object(value) -> bool:
    module = type(value).__module__ or ""
    return (module.startswith(HELPERS_PACKAGE + ".") and hasattr(value, "__dict__")
            and not isinstance(value, (type, BaseException)))


def _array(value: np.ndarray) -> dict:
    if value.dtype.name not in DTYPES:
        raise WireError(f"arrays of dtype {value.dtype} cannot be sent")
    data = np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<"), copy=False)
    return {"dtype": value.dtype.name, "shape": list(value.shape), "data": base64.b64encode(data.tobytes()).decode()}


class Encoder:
    """Turns values into JSON-able plain data.

    sent: id(object) -> n for objects that came from the other side (encoded as ``{"$sent": n}``).
    handle: called with a value that is none of the plain forms; returns its ``$handle`` dict, or raises WireError
        (the grader's side, which never hands out handles).
    Objects and arrays get a ``ref`` so that the same object twice, or an object that holds itself, arrives as one.
    """

    def __init__(self, sent: dict[int, int] | None = None, handle=None):
        self.sent = sent or {}
        self.handle = handle
        self.refs: dict[int, int] = {}
        self.keep: list = []  # keeps encoded objects alive so their ids stay unique during one message

    def encode(self, value, depth: int = 0):
        if depth > MAX_DEPTH:
            raise WireError(f"nested more than {MAX_DEPTH} levels")
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int) and type(value) in (int, bool):
            return value
        if type(value) is float:
            return value if math.isfinite(value) else {"$f": repr(value)}
        if type(value) is complex:
            return {"$complex": [self.encode(value.real, depth + 1), self.encode(value.imag, depth + 1)]}
        if id(value) in self.sent:
            return {"$sent": self.sent[id(value)]}
        if id(value) in self.refs:
            return {"$ref": self.refs[id(value)]}
        if isinstance(value, np.generic) and value.dtype.name in DTYPES:
            return {"$scalar": _array(np.asarray(value))}
        if isinstance(value, np.ndarray):
            if value.dtype.name not in DTYPES:
                raise WireError(f"arrays of dtype {value.dtype} cannot be sent")
            return {"$array": {**_array(np.asarray(value)), "ref": self._ref(value)}}
        if type(value) is list:
            ref = self._ref(value)
            return {"$list": {"ref": ref, "items": [self.encode(v, depth + 1) for v in value]}}
        if type(value) is tuple:
            return {"$tuple": [self.encode(v, depth + 1) for v in value]}
        if type(value) is dict:
            ref = self._ref(value)
            return {"$dict": {"ref": ref, "items": [[self.encode(k, depth + 1), self.encode(v, depth + 1)]
                                                    for k, v in value.items()]}}
        if isinstance(value, np.random.Generator):
            return {"$rng": {"ref": self._ref(value), "state": self.encode(value.bit_generator.state, depth + 1)}}
        if isinstance(value, Recipe):
            return {"$recipe": {"function": value.path, "args": self.encode(list(value.args), depth + 1),
                                "kwargs": self.encode(dict(value.kwargs), depth + 1)}}
        if is_helper_object(value):
            ref = self._ref(value)
            cls = type(value)
            return {"$object": {"class": f"{cls.__module__}.{cls.__qualname__}", "ref": ref,
                                "state": self.encode(dict(vars(value)), depth + 1)}}
        if self.handle is not None:
            return {"$handle": self.handle(value)}
        raise WireError(f"a {type(value).__name__} cannot be sent to the sandbox: pass plain data (arrays, numbers, "
                        "strings, lists, dicts), generators, helpers objects or results of helpers functions")

    def _ref(self, value) -> int:
        self.refs[id(value)] = len(self.refs)
        self.keep.append(value)
        return self.refs[id(value)]


class Decoder:
    """Turns plain data back into values; strict (WireError for anything unexpected).

    sent: n -> the receiver's own object that ``{"$sent": n}`` names.
    handle: called with a ``$handle`` dict (the grader wraps it in a proxy); None refuses handles.
    allow_recipes: only the kernel side rebuilds helper functions from recipes.
    """

    def __init__(self, sent: dict[int, object] | None = None, handle=None, allow_recipes: bool = False):
        self.sent = sent or {}
        self.handle = handle
        self.allow_recipes = allow_recipes
        self.refs: dict[int, object] = {}

    def decode(self, data, depth: int = 0, in_object: bool = False):
        if depth > MAX_DEPTH:
            raise WireError(f"nested more than {MAX_DEPTH} levels")
        if data is None or isinstance(data, (bool, str)):
            return data
        if type(data) is int:
            return data
        if type(data) is float:
            return data
        if type(data) is list:
            return [self.decode(v, depth + 1, in_object) for v in data]
        if type(data) is not dict or len(data) != 1:
            raise WireError("malformed message")
        (tag, body), = data.items()
        if tag == "$f":
            if body not in ("nan", "inf", "-inf"):
                raise WireError("malformed float")
            return float(body)
        if tag == "$complex":
            re, im = self._pair(body)
            return complex(re, im)
        if tag == "$tuple":
            if type(body) is not list:
                raise WireError("malformed tuple")
            return tuple(self.decode(v, depth + 1, in_object) for v in body)
        if tag == "$list":
            items = self._field(body, "items", list)
            result: list = []
            self._remember(body, result)
            result.extend(self.decode(v, depth + 1, in_object) for v in items)
            return result
        if tag == "$dict":
            items = self._field(body, "items", list)
            result_dict: dict = {}
            self._remember(body, result_dict)
            for pair in items:
                if type(pair) is not list or len(pair) != 2:
                    raise WireError("malformed dict")
                key = self.decode(pair[0], depth + 1, in_object)
                try:
                    result_dict[key] = self.decode(pair[1], depth + 1, in_object)
                except TypeError as error:
                    raise WireError("unhashable dict key") from error
            return result_dict
        if tag == "$scalar":
            return self._array(body)[()]
        if tag == "$array":
            array = self._array(body)
            self._remember(body, array)
            return array
        if tag == "$rng":
            state = self.decode(self._field(body, "state", dict), depth + 1, in_object)
            name = state.get("bit_generator") if isinstance(state, dict) else None
            if name not in BIT_GENERATORS:
                raise WireError("unknown bit generator")
            bit_generator = getattr(np.random, name)()
            try:
                bit_generator.state = state
            except (TypeError, ValueError, KeyError) as error:
                raise WireError("malformed generator state") from error
            rng = np.random.Generator(bit_generator)
            self._remember(body, rng)
            return rng
        if tag == "$object":
            cls = helper_class(self._field(body, "class", str))
            obj = cls.__new__(cls)
            self._remember(body, obj)
            state = self.decode(self._field(body, "state", dict), depth + 1, in_object=True)
            if type(state) is not dict or not all(type(k) is str for k in state):
                raise WireError("malformed object state")
            obj.__dict__.update(state)
            return obj
        if tag == "$recipe":
            if not self.allow_recipes:
                raise WireError("recipes are not accepted here")
            function = helper_function(self._field(body, "function", str))
            args = self.decode(self._field(body, "args", dict), depth + 1)
            kwargs = self.decode(self._field(body, "kwargs", dict), depth + 1)
            if type(args) is not list or type(kwargs) is not dict:
                raise WireError("malformed recipe")
            return function(*args, **kwargs)
        if tag == "$ref":
            if type(body) is not int or body not in self.refs:
                raise WireError("unknown reference")
            return self.refs[body]
        if tag == "$sent":
            if type(body) is not int or body not in self.sent:
                raise WireError("unknown sent object")
            return self.sent[body]
        if tag == "$handle":
            if self.handle is None or in_object:
                raise WireError("an object that lives in the kernel cannot be used here")
            if type(body) is not dict or type(body.get("id")) is not int:
                raise WireError("malformed handle")
            return self.handle(body)
        raise WireError(f"unknown tag {tag[:40]!r}")

    def _pair(self, body):
        if type(body) is not list or len(body) != 2 or not all(type(v) in (int, float) or isinstance(v, dict)
                                                               for v in body):
            raise WireError("malformed complex")
        return [self.decode(v, 1) for v in body]

    @staticmethod
    def _field(body, name, kind):
        if type(body) is not dict or name not in body:
            raise WireError(f"missing {name}")
        value = body[name]
        if kind is dict:  # an encoded value (any JSON form)
            return value
        if type(value) is not kind:
            raise WireError(f"malformed {name}")
        return value

    def _remember(self, body, value) -> None:
        ref = body.get("ref") if type(body) is dict else None
        if ref is not None:
            if type(ref) is not int or ref in self.refs:
                raise WireError("malformed reference")
            self.refs[ref] = value

    @staticmethod
    def _array(body) -> np.ndarray:
        if type(body) is not dict:
            raise WireError("malformed array")
        dtype, shape, data = body.get("dtype"), body.get("shape"), body.get("data")
        if dtype not in DTYPES or type(shape) is not list or type(data) is not str:
            raise WireError("malformed array")
        if len(shape) > 32 or not all(type(n) is int and 0 <= n for n in shape):
            raise WireError("malformed array shape")
        try:
            raw = base64.b64decode(data, validate=True)
        except ValueError as error:
            raise WireError("malformed array data") from error
        expected = np.dtype(dtype).itemsize * math.prod(shape)
        if len(raw) != expected:
            raise WireError("array data does not match its shape")
        return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape).copy()


class Recipe:
    """A helper function's result (e.g. the closure of ``quadratic_gradient(H)``) that can cross the wire.

    Locally it behaves like the result; in the kernel it is rebuilt by calling the same helper with the same
    arguments, so a function the student's code calls many times never makes a round trip per call.
    """

    def __init__(self, value, path: str, args: tuple, kwargs: dict):
        self.value, self.path, self.args, self.kwargs = value, path, args, kwargs

    def __call__(self, *args, **kwargs):
        return self.value(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{self.path.rpartition('.')[2]}(...)>"


def dumps(data) -> str:
    text = json.dumps(data, allow_nan=False, separators=(",", ":"))
    if len(text) > MAX_BYTES:
        raise WireError(f"a message of {len(text) >> 20} MB is over the {MAX_BYTES >> 20} MB limit")
    return text


def loads(text: str):
    if type(text) is not str or len(text) > MAX_BYTES:
        raise WireError("message missing or over the size limit")
    if text.count("[") + text.count("{") > MAX_CONTAINERS:  # counted before parsing, which would cost far more
        raise WireError(f"a message of over {MAX_CONTAINERS} arrays and objects")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise WireError(f"not a plain-data message ({type(error).__name__})") from None
