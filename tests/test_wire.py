"""The grader's channel to the kernel, without a kernel: plain data on the wire, the agent, proxies, copy-restore.

``LocalChannel`` hands each request to an ``Agent`` in this process, through the same JSON text a kernel would
see, so everything here is what grading does, minus the sandbox.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from autograder import remote, wire
from autograder.agent import Agent
from helpers.gradient_descent import quadratic_gradient
from helpers.network import Linear, ReLU, Sequential
from helpers.normalization import BatchNorm


class SocketChannel(remote.Channel):
    def __init__(self, exchange):
        self.request = exchange


class LocalChannel(remote.Channel):
    def __init__(self, namespace: dict):
        self.agent = Agent(namespace)

    def request(self, message: dict) -> dict:
        self.agent.handle(wire.dumps(message))
        return wire.loads(self.agent.reply)


def roundtrip(value):
    return wire.Decoder().decode(wire.loads(wire.dumps(wire.Encoder().encode(value))))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool", "complex128", "uint8"])
def test_arrays_keep_dtype_shape_and_values(dtype):
    x = (np.arange(24).reshape(2, 3, 4) % 3).astype(dtype)
    y = roundtrip(x)
    assert y.dtype == x.dtype and y.shape == x.shape and np.array_equal(x, y) and y.flags.writeable


def test_plain_values_and_containers():
    value = {"a": [1, 2.5, float("nan"), float("inf"), None, True], ("t", 1): (np.float32(1.5), 3 + 4j), 7: "x"}
    back = roundtrip(value)
    assert back[("t", 1)][0].dtype == np.float32 and back[7] == "x" and np.isnan(back["a"][2])
    assert back["a"][3] == float("inf") and back[("t", 1)][1] == 3 + 4j


def test_shared_and_self_referencing_objects_arrive_as_one():
    layer = Linear(3, 2, np.random.default_rng(0))
    model = Sequential(layer, ReLU(), layer)
    back = roundtrip(model)
    assert back.layers[0] is back.layers[2] and isinstance(back.layers[0], Linear)
    looped: list = [1]
    looped.append(looped)
    again = roundtrip(looped)
    assert again[1] is again


def test_generators_keep_their_state():
    rng = np.random.default_rng(5)
    rng.normal(size=3)
    back = roundtrip(rng)
    assert np.array_equal(back.normal(size=4), rng.normal(size=4))


@pytest.mark.parametrize("message", [
    {"$array": {"dtype": "object", "shape": [1], "data": ""}},
    {"$array": {"dtype": "float64", "shape": [2], "data": "AAAA"}},
    {"$object": {"class": "os.system", "ref": 0, "state": {"$dict": {"items": []}}}},
    {"$object": {"class": "helpers.checks.CheckFailure", "ref": 0, "state": {"$dict": {"items": []}}}},
    {"$recipe": {"function": "helpers.gradient_descent.quadratic_gradient", "args": [], "kwargs": {}}},
    {"$pickle": "gASV"},
    {"$ref": 3},
    {"$handle": {"id": 1}},
    {"a": 1, "b": 2},
])
def test_the_grader_refuses_anything_but_plain_data(message):
    with pytest.raises(wire.WireError):
        wire.Decoder().decode(message)


def test_deep_nesting_and_oversized_messages_are_refused():
    deep = "[" * 5000 + "]" * 5000
    with pytest.raises(wire.WireError):
        wire.loads(deep)
    nested = 1
    for _ in range(wire.MAX_DEPTH + 5):
        nested = {"$tuple": [nested]}
    with pytest.raises(wire.WireError):
        wire.Decoder().decode(nested)
    with pytest.raises(wire.WireError):
        wire.loads("x" * (wire.MAX_BYTES + 1))
    with pytest.raises(wire.WireError, match="arrays and objects"):  # cheap to send, costly to parse
        wire.loads('{"ok": [' + "[]," * wire.MAX_CONTAINERS + "[]]}")


def test_handles_inside_a_helpers_object_are_refused():
    message = {"$object": {"class": "helpers.network.ReLU", "ref": 0,
                           "state": {"$dict": {"items": [["forward", {"$handle": {"id": 1}}]]}}}}
    with pytest.raises(wire.WireError):
        wire.Decoder(handle=lambda body: object()).decode(message)


def test_student_functions_receive_rebuilt_helpers_and_return_plain_data():
    namespace: dict = {}
    exec("import numpy as np\n"
         "def descend(grad, w0, eta, n):\n"
         "    w = np.array(w0, float)\n"
         "    for _ in range(n):\n"
         "        w = w - eta * grad(w)\n"
         "    return w\n", namespace)
    channel = LocalChannel(namespace)
    descend = remote.Remote(channel, "descend")
    gradient = remote.recipe_function(quadratic_gradient)(np.diag([1.0, 4.0]))
    assert isinstance(gradient, wire.Recipe) and np.allclose(gradient(np.ones(2)), [1.0, 4.0])
    assert np.allclose(descend(gradient, [1.0, 1.0], 0.1, 2), [0.81, 0.36])


def test_objects_changed_by_the_student_come_back_changed_in_place():
    namespace: dict = {}
    exec("def step(model, x, scale):\n"
         "    model.layers[0].params['W'] *= scale\n"
         "    model.layers[0].params['b'] = model.layers[0].params['b'] + 1\n"
         "    x[0] = -1.0\n"
         "    model.train(False)\n"
         "    return model\n", namespace)
    layer = Linear(2, 2, np.random.default_rng(0))
    weights = layer.params["W"]
    before = weights.copy()
    x = np.zeros(3)
    model = Sequential(layer, BatchNorm(2))
    returned = remote.Remote(LocalChannel(namespace), "step")(model, x, 2.0)
    assert returned is model and model.layers[0] is layer and layer.params["W"] is weights
    assert np.allclose(weights, 2 * before) and np.allclose(layer.params["b"], 1.0) and x[0] == -1.0
    assert not model.training and not model.layers[1].training


def test_errors_keep_their_type_and_unknown_values_become_handles():
    namespace: dict = {}
    exec("class Box:\n"
         "    def __init__(self, v): self.v = v\n"
         "    def get(self): return self.v * 2\n"
         "def fails(x):\n    raise ValueError(f'bad {x}')\n"
         "def stub():\n    raise NotImplementedError()\n"
         "def odd():\n    raise KeyboardInterrupt('no')\n", namespace)
    channel = LocalChannel(namespace)
    with pytest.raises(ValueError, match="bad 3"):
        remote.Remote(channel, "fails")(3)
    with pytest.raises(NotImplementedError):
        remote.Remote(channel, "stub")()
    with pytest.raises(remote.RemoteError, match="KeyboardInterrupt"):
        remote.Remote(channel, "odd")()
    box = remote.Remote(channel, "Box")(np.arange(3))
    assert isinstance(box, remote.Handle) and np.array_equal(box.get(), [0, 2, 4]) and box.v.tolist() == [0, 1, 2]


def test_lying_objects_arrive_as_what_they_are():
    namespace: dict = {}
    exec("import numpy as np\n"
         "class Liar:\n    def __eq__(self, other): return True\n    def __array__(self, *a, **k): return np.ones(3)\n"
         "class Sub(np.ndarray):\n    def __eq__(self, other): return True\n"
         "def liar(): return Liar()\n"
         "def sub(): return np.zeros(3).view(Sub)\n"
         "def lookalike(): return {'$sent': 0}\n", namespace)
    channel = LocalChannel(namespace)
    assert isinstance(remote.Remote(channel, "liar")(), remote.Handle)
    sub = remote.Remote(channel, "sub")()
    assert type(sub) is np.ndarray and not np.array_equal(sub, np.ones(3))
    assert remote.Remote(channel, "lookalike")() == {"$sent": 0}


def test_a_test_cell_runs_in_the_grader_with_the_students_names_bound_to_the_kernel():
    namespace: dict = {}
    exec("def double(x):\n    return 2 * x\n", namespace)
    channel = LocalChannel(namespace)
    grader = remote.build_namespace(["import numpy as np\nfrom helpers import checks"])
    passed = remote.run_test("checks.expect_close(double(np.ones(2)), [2.0, 2.0], 'double')", grader, channel,
                             ["double", "missing"], "t1")
    failed = remote.run_test("checks.expect_close(double(3.0), 7.0, 'double(3)')", grader, channel, ["double"], "t2")
    absent = remote.run_test("missing(1)", grader, channel, ["missing"], "t3")
    assert passed.passed and not failed.passed and failed.ename == "CheckFailure" and "double(3)" in failed.evalue
    assert absent.ename == "NameError"
    assert json.dumps(failed.output())  # plain data nbgrader can store


def test_a_failed_test_whose_call_changed_an_input_array_says_so():
    namespace: dict = {}
    exec("def center(x):\n    x -= x.mean()\n    return x\n", namespace)
    channel = LocalChannel(namespace)
    grader = remote.build_namespace(["import numpy as np\nfrom helpers import checks"])
    source = ("x = np.array([1.0, 2.0, 6.0])\ncenter(x)\n"
              "checks.expect_close(center(2 * x), [-6.0, -4.0, 10.0], 'center(2 x)')")  # 2 x of the changed x
    failed = remote.run_test(source, grader, channel, ["center"], "t")
    assert not failed.passed and "center changed its argument 1 (an array of shape (3,)) in place" in failed.evalue
    exec("def center(x):\n    return x - x.mean()\n", namespace)
    wrong = remote.run_test("checks.expect_close(center(np.ones(2)), [1.0, 1.0], 'c')", grader, channel, ["center"], "u")
    assert not wrong.passed and "in place" not in wrong.evalue


def test_the_agent_serves_framed_requests_on_a_socket_until_it_is_closed(tmp_path):
    """Agent.serve, as a test cell uses it: length-prefixed JSON requests and replies, one at a time; the grader
    closing the connection ends it, and a frame over the size limit ends it too."""
    import socket
    import struct
    import threading

    frame = struct.Struct(">Q")

    def exchange(connection, message: dict) -> dict:
        body = wire.dumps(message).encode()
        connection.sendall(frame.pack(len(body)) + body)
        (size,) = frame.unpack(connection.recv(frame.size, socket.MSG_WAITALL))
        return wire.loads(connection.recv(size, socket.MSG_WAITALL).decode())

    for ending in ("close", "oversized"):
        path = str(tmp_path / f"agent-{ending}.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        agent = Agent({"double": lambda v: 2 * v})
        server = threading.Thread(target=agent.serve, args=(path,), daemon=True)
        server.start()
        connection, _ = listener.accept()
        listener.close()
        channel = SocketChannel(lambda message: exchange(connection, message))
        assert channel.describe(["double", "nothing"]) == {"double": "function", "nothing": "missing"}
        assert np.array_equal(channel.call({"name": "double"}, (np.arange(3.0),)), [0.0, 2.0, 4.0])
        with pytest.raises(NameError):
            channel.call({"name": "nothing"})
        if ending == "oversized":
            connection.sendall(frame.pack(wire.MAX_BYTES + 1))
        else:
            connection.close()
        server.join(5)
        assert not server.is_alive()
        connection.close()
