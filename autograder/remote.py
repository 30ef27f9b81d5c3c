"""The grader's side: test cells run here, in the grader's own process, against the student's kernel.

A test cell's names come from three places, and from nowhere else:
- the imports of the notebook's locked cells (numpy, the course's helpers, ``checks``), imported here;
- the names the assignment's answer cells define (the student's functions), bound to proxies that call them in
  the sandboxed kernel through a ``Channel`` and receive plain data (autograder/wire.py);
- what earlier test cells defined.
So test code, expected values and the comparison never enter the kernel, and nothing the kernel prints, displays,
raises or patches reaches the verdict except through the values its functions return.
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import functools
import io
import types
import warnings

import numpy as np

from autograder import wire

# Exceptions a student's function may raise that test code catches by type (e.g. a required ValueError).
REMOTE_EXCEPTIONS = {name: getattr(builtins, name) for name in (
    "ValueError", "TypeError", "KeyError", "IndexError", "ZeroDivisionError", "NotImplementedError", "RuntimeError",
    "AssertionError", "AttributeError", "NameError", "ArithmeticError", "OverflowError", "FloatingPointError",
    "RecursionError", "MemoryError", "LookupError", "UnboundLocalError")}
REMOTE_EXCEPTIONS["LinAlgError"] = np.linalg.LinAlgError


class RemoteError(Exception):
    """An exception of the student's code that is not one of REMOTE_EXCEPTIONS (its type name is kept)."""

    def __init__(self, type_name: str, message: str):
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name


class KernelGone(RuntimeError):
    """The kernel died or stopped answering; every later call fails with this."""


class TestTimeout(TimeoutError):
    """A call into the kernel did not answer before the test cell's time was up (the kernel is interrupted)."""


class Channel:
    """Sends one request (a dict) to the kernel's agent and returns its reply (a dict). Subclasses transport."""

    def request(self, message: dict) -> dict:
        raise NotImplementedError

    # --- typed calls ------------------------------------------------------------------------------------------------

    def describe(self, names: list[str]) -> dict[str, str]:
        reply = self.request({"op": "describe", "names": list(names)})
        kinds = reply.get("ok") if isinstance(reply, dict) else None
        if not isinstance(kinds, dict):
            raise wire.WireError("malformed reply")
        return {name: kinds.get(name) for name in names}

    modified: list[str]  # "gradient_descent changed its argument 2 (an array of shape (3,))", since the last reset

    def call(self, target: dict, args: tuple = (), kwargs: dict | None = None):
        encoder = wire.Encoder()
        message = {"op": "call", "target": target, "args": encoder.encode(list(args)),
                   "kwargs": encoder.encode(dict(kwargs or {}))}
        sent = {encoder.refs[id(value)]: value for value in encoder.keep}
        arrays = [(f"argument {i + 1}", value, value.copy()) for i, value in enumerate(args) if isinstance(value, np.ndarray)]
        arrays += [(f"argument {name}", value, value.copy()) for name, value in (kwargs or {}).items()
                   if isinstance(value, np.ndarray)]
        try:
            return self._answer(self.request(message), sent)
        finally:
            for where, value, before in arrays:
                if not np.array_equal(value, before, equal_nan=True):
                    self.modified = getattr(self, "modified", []) + [
                        f"{target.get('name', 'a method')} changed its {where} (an array of shape {before.shape}) in place"]

    def get(self, target: dict):
        return self._answer(self.request({"op": "get", "target": target}), {})

    def _answer(self, reply, sent: dict[int, object]):
        if not isinstance(reply, dict):
            raise wire.WireError("malformed reply")
        if "error" in reply:
            error = reply["error"] if isinstance(reply["error"], dict) else {}
            name, message = str(error.get("type", "Error"))[:80], str(error.get("message", ""))[:4000]
            if error.get("builtin") and name in REMOTE_EXCEPTIONS:
                raise REMOTE_EXCEPTIONS[name](message)
            raise RemoteError(name, message)
        if "ok" not in reply or not isinstance(reply.get("updates", []), list):
            raise wire.WireError("malformed reply")
        decoder = wire.Decoder(sent=sent, handle=lambda body: Handle(self, body))
        value = decoder.decode(reply["ok"])
        for update in reply.get("updates", []):
            if type(update) is not list or len(update) != 2 or update[0] not in sent:
                raise wire.WireError("malformed update")
            restore(sent[update[0]], decoder.decode(update[1]))
        return value


def restore(local, state) -> None:
    """Give ``local`` (an object the grader sent) the state it has in the kernel after the call."""
    if isinstance(local, np.ndarray):
        if isinstance(state, np.ndarray) and state.shape == local.shape:
            np.copyto(local, state.astype(local.dtype, copy=False), casting="unsafe")
        return
    if isinstance(local, np.random.Generator):
        try:
            local.bit_generator.state = state
        except (TypeError, ValueError, KeyError):
            raise wire.WireError("malformed generator state") from None
        return
    if type(local) is list and type(state) is list:
        local[:] = state
    elif type(local) is dict and type(state) is dict:
        local.clear()
        local.update(state)
    elif wire.is_helper_object(local) and type(state) is dict and all(type(k) is str for k in state):
        local.__dict__.clear()
        local.__dict__.update(state)
    else:
        raise wire.WireError("malformed update")


class Remote:
    """The student's function or class ``name`` in the kernel; calling it calls it there."""

    def __init__(self, channel: Channel, name: str):
        self._channel, self.__name__ = channel, name

    def __call__(self, *args, **kwargs):
        return self._channel.call({"name": self.__name__}, args, kwargs)

    def __repr__(self) -> str:
        return f"<the submission's {self.__name__}>"


class Handle:
    """An object that lives in the kernel (not plain data); attributes and calls go there."""

    def __init__(self, channel: Channel, body: dict):
        object.__setattr__(self, "_channel", channel)
        object.__setattr__(self, "_id", body["id"])
        object.__setattr__(self, "_type", str(body.get("type", "object"))[:80])

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return self._channel.get({"handle": self._id, "attr": attr})

    def __call__(self, *args, **kwargs):
        return self._channel.call({"handle": self._id}, args, kwargs)

    def __repr__(self) -> str:
        return f"<a {self._type} in the submission's kernel>"


# --- the namespace test cells run in ---------------------------------------------------------------------------------

def import_statements(sources: list[str]) -> list[ast.stmt]:
    """The top-level import statements of the given (locked, trusted) cell sources."""
    found = []
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        found += [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    return found


def defined_names(sources: list[str]) -> list[str]:
    """Names that answer cells define at the top level (functions, classes, assigned names), in order."""
    names: list[str] = []
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.append(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names += [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return list(dict.fromkeys(names))


def used_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def recipe_function(function):
    """Wrap a helpers function so that a function it returns (a closure) can be sent to the kernel as a recipe."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        value = function(*args, **kwargs)
        if isinstance(value, (types.FunctionType, functools.partial)):
            return wire.Recipe(value, f"{function.__module__}.{function.__name__}", args, kwargs)
        return value
    return wrapper


def build_namespace(locked_sources: list[str]) -> dict:
    """The grader's namespace: the locked cells' imports, executed here (never in the kernel)."""
    namespace: dict = {"__name__": "__grader__", "__builtins__": builtins}
    module = ast.Module(body=import_statements(locked_sources), type_ignores=[])
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        exec(compile(module, "<setup imports>", "exec"), namespace)  # noqa: S102: the course's own locked cells
    for name, value in list(namespace.items()):
        if isinstance(value, types.FunctionType) and (value.__module__ or "").startswith("helpers."):
            namespace[name] = recipe_function(value)
    return namespace


class Outcome:
    """What a test cell did: passed, or failed with an error type and a message (the grader's own words)."""

    def __init__(self, passed: bool, ename: str = "", evalue: str = ""):
        self.passed, self.ename, self.evalue = passed, ename, evalue

    def output(self) -> list[dict]:
        """The cell's outputs as nbgrader reads them: none when passed, one error output when failed."""
        if self.passed:
            return []
        line = f"{self.ename}: {self.evalue}" if self.evalue else self.ename
        return [{"output_type": "error", "ename": self.ename, "evalue": self.evalue, "traceback": [line]}]


def run_test(source: str, namespace: dict, channel: Channel, answer_names: list[str], label: str) -> Outcome:
    """Run one test cell's source in ``namespace`` with the student's names bound to the kernel; never raises."""
    wanted = [name for name in answer_names if name in used_names(source)]
    try:
        kinds = channel.describe(wanted) if wanted else {}
    except Exception as error:  # noqa: BLE001: a malformed reply, a dead kernel: the submission's failure
        return Outcome(False, type(error).__name__, _text(error))
    for name in wanted:
        namespace.pop(name, None)
        if kinds.get(name) in ("function", "class"):
            namespace[name] = Remote(channel, name)
        elif kinds.get(name) == "data":
            try:
                namespace[name] = channel.get({"name": name})
            except Exception as error:  # noqa: BLE001
                return Outcome(False, type(error).__name__, f"{name}: {_text(error)}")
    channel.modified = []
    try:
        code = compile(source, f"<test {label}>", "exec")
    except SyntaxError as error:
        return Outcome(False, "SyntaxError", str(error))
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                warnings.catch_warnings(), np.errstate():
            warnings.simplefilter("ignore")
            exec(code, namespace)  # noqa: S102: the course's own test code; student values arrive as plain data
    except BaseException as error:  # noqa: B902: a test fails on any error, including a stub's NotImplementedError
        if isinstance(error, KeyboardInterrupt) and not isinstance(error, CellTimeout):
            raise
        name = error.type_name if isinstance(error, RemoteError) else type(error).__name__
        message = str(error.args[0]) if isinstance(error, RemoteError) else _text(error)
        if isinstance(error, RemoteError):
            message = message.partition(": ")[2] if message.startswith(name + ": ") else ""
        return Outcome(False, name, message + modified_note(channel, message))
    return Outcome(True)


def modified_note(channel: Channel, message_so_far: str = "") -> str:
    """A line for a failed test whose calls changed an input array: the likeliest cause of what follows from it."""
    changed = list(dict.fromkeys(getattr(channel, "modified", [])))
    if not changed or "modified in place" in message_so_far:
        return ""
    return ("\nDuring this test, " + "; ".join(changed[:3]) + ": a function that modifies its input makes every "
            "value computed from that input afterwards wrong. Work on a copy (x = x.copy(), or y = x - m instead of x -= m).")


class CellTimeout(KeyboardInterrupt):
    """Raised in a test cell that ran past its time (a KeyboardInterrupt so that test code cannot catch it)."""


def _text(error: BaseException) -> str:
    try:
        return str(error)[:4000]
    except Exception:  # noqa: BLE001
        return ""
