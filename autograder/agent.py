"""The kernel's side of grading: calls the student's functions for the grader and answers with plain data.

The grader sends this file's source (with autograder/wire.py's) into the sandboxed kernel before the first cell;
it holds no test code, no expected value and no answer. For each request it decodes the arguments (rebuilding
helpers objects and helper functions from recipes), calls the student's function, and sends the reply, a JSON
string, back on the socket the grader listens on while a test cell runs (``serve``). Objects the grader sent come
back as their state after the call (a function that changes its input is seen to do so); values that are not plain
data stay here and go back as handles.

Requests (JSON): ``{"op": "describe", "names": [...]}``, ``{"op": "get", "target": ...}``,
``{"op": "call", "target": ..., "args": [...], "kwargs": {...}}``, where a target is ``{"name": global}`` or
``{"handle": n}``, optionally with ``"attr": name``.
Replies: ``{"ok": value, "updates": [[n, state], ...]}`` or ``{"error": {"type", "message", "builtin"}}``.
Everything the student's code does here can change only what this kernel answers, never how it is judged.
"""
import builtins as _builtins

import numpy as _np

if "wire" not in globals():  # in the grader's own process (tests); in the kernel, the grader binds it
    from autograder import wire  # noqa: F401

MAX_MESSAGE = 4000


class Agent:
    """One per kernel; ``namespace`` is the notebook's global namespace (the kernel's ``user_ns``)."""

    def __init__(self, namespace: dict):
        self.namespace = namespace
        self.handles: dict[int, object] = {}
        self.reply = ""

    # --- requests -------------------------------------------------------------------------------------------------

    def handle(self, text: str) -> None:
        """Answer one request; the reply is left in ``self.reply`` (never raises)."""
        try:
            request = wire.loads(text)
            op = request.get("op")
            if op == "describe":
                self.reply = wire.dumps({"ok": self.describe(request["names"])})
            elif op in ("get", "call"):
                self.reply = self.run(request)
            else:
                self.reply = self.error(ValueError(f"unknown request {op!r}"))
        except BaseException as error:  # noqa: B902: the student's code may raise anything, SystemExit included
            self.reply = self.error(error)

    def serve(self, path: str) -> None:
        """Answer requests on the Unix socket at ``path`` (the grader listens there), one at a time, each an 8-byte
        big-endian length and a JSON text, until the grader closes it. Runs as one silent execution of the kernel."""
        import socket as _socket

        connection = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            connection.connect(path)
            while True:
                header = _receive(connection, 8)
                size = int.from_bytes(header or b"", "big")
                body = _receive(connection, size) if header and size <= wire.MAX_BYTES else None
                if body is None:
                    return
                self.handle(body.decode())
                reply = self.reply.encode()
                connection.sendall(len(reply).to_bytes(8, "big") + reply)
        except (OSError, UnicodeDecodeError):  # the grader closed it, or stopped waiting
            return
        finally:
            connection.close()

    def describe(self, names: list) -> dict:
        """name -> "function", "class", "data" or "missing", for names of the notebook's namespace."""
        kinds = {}
        for name in names:
            if name not in self.namespace:
                kinds[name] = "missing"
            elif isinstance(self.namespace[name], type):
                kinds[name] = "class"
            elif callable(self.namespace[name]):
                kinds[name] = "function"
            else:
                kinds[name] = "data"
        return kinds

    def run(self, request: dict) -> str:
        decoder = wire.Decoder(handle=lambda body: self.handles[body["id"]], allow_recipes=True)
        target = self.target(request["target"])
        if request["op"] == "get":
            value = target
            sent = {}
        else:
            args = decoder.decode(request.get("args", []))
            kwargs = decoder.decode(request.get("kwargs", {"$dict": {"items": []}}))
            before = {ref: _np.array(v, copy=True) for ref, v in decoder.refs.items() if isinstance(v, _np.ndarray)}
            value = target(*args, **kwargs)
            sent = decoder.refs
        encoder = wire.Encoder(sent={id(v): ref for ref, v in sent.items()}, handle=self.new_handle)
        result = encoder.encode(value)
        updates = []
        for ref, obj in sent.items():
            if isinstance(obj, _np.ndarray):
                if obj.shape == before[ref].shape and _np.array_equal(obj, before[ref], equal_nan=obj.dtype.kind in "fc"):
                    continue
                updates.append([ref, {"$array": wire._array(obj)}])
            elif isinstance(obj, _np.random.Generator):
                updates.append([ref, encoder.encode(obj.bit_generator.state)])
            elif wire.is_helper_object(obj) or type(obj) in (list, dict):
                state = dict(vars(obj)) if wire.is_helper_object(obj) else obj
                encoder.sent.pop(id(obj), None)
                updates.append([ref, encoder.encode(list(state) if type(obj) is list else state)])
                encoder.sent[id(obj)] = ref
        return wire.dumps({"ok": result, "updates": updates})

    def target(self, spec: dict):
        if "name" in spec:
            if spec["name"] not in self.namespace:
                raise NameError(f"name '{spec['name']}' is not defined")
            value = self.namespace[spec["name"]]
        else:
            value = self.handles[spec["handle"]]
        if spec.get("attr") is not None:
            value = getattr(value, spec["attr"])
        return value

    def new_handle(self, value) -> dict:
        number = len(self.handles) + 1
        self.handles[number] = value
        return {"id": number, "type": type(value).__name__[:80], "callable": callable(value)}

    @staticmethod
    def error(error: BaseException) -> str:
        kind = type(error)
        try:
            message = str(error)[:MAX_MESSAGE]
        except BaseException:  # noqa: B902: a student's exception whose __str__ fails
            message = "(the exception's message could not be read)"
        builtin = getattr(_builtins, kind.__name__, None) is kind or kind.__name__ == "LinAlgError"
        try:
            return wire.dumps({"error": {"type": kind.__name__[:80], "message": message, "builtin": builtin}})
        except Exception:  # noqa: BLE001
            return '{"error": {"type": "Error", "message": "", "builtin": false}}'


def _receive(connection, size: int):
    """``size`` bytes from ``connection``, or None when it closes first."""
    data = bytearray()
    while len(data) < size:
        chunk = connection.recv(min(size - len(data), 1 << 20))
        if not chunk:
            return None
        data += chunk
    return bytes(data)
