"""Unit tests of helpers.checks: a failing check names the mistake; a passing one is silent."""
import numpy as np
import pytest

from helpers import checks


def test_close_passes_silently(capsys):
    checks.expect_close(np.array([1.0, 2.0]), [1.0, 2.0 + 1e-12], "x")
    assert capsys.readouterr() == ("", "")


def test_close_names_the_matching_mistake():
    with pytest.raises(AssertionError, match="This is what dividing by N-1 gives"):
        checks.expect_close(2.0, 1.0, "var", mistakes=[("forgetting eps", 1.5), ("dividing by N-1", 2.0)])


def test_close_reports_shape_and_matches_mistakes_of_other_shapes():
    with pytest.raises(AssertionError, match=r"has shape \(3,\), expected \(4,\)[\s\S]*leaving out the start"):
        checks.expect_close(np.arange(3.0), np.arange(4.0), "path", mistakes=[("leaving out the start", np.arange(3.0))])


def test_close_without_a_known_mistake_still_says_expected_and_got():
    with pytest.raises(AssertionError, match=r"x: expected 1.0, got 3.0.\nhint text"):
        checks.expect_close(3.0, 1.0, "x", mistakes=[("m", 2.0)], hint="hint text")


def test_close_on_a_large_array_reports_the_largest_difference_and_where():
    expected = np.zeros((3, 2, 2, 3))
    actual = expected.copy()
    actual[1, 0, 1, 2], actual[2, 1, 0, 0] = 0.5, -2.0
    with pytest.raises(AssertionError) as failure:
        checks.expect_close(actual, expected, "dx", mistakes=[("m", actual)], hint="h")
    message = str(failure.value)
    assert message.splitlines()[0] == ("dx (shape (3, 2, 2, 3)): 2 of 36 entries differ; the largest difference is at "
                                       "index (2, 1, 0, 0): expected 0.0, got -2.0.")
    assert "This is what m gives." in message and message.endswith("h") and "[[" not in message
    with pytest.raises(AssertionError, match=r"index \(0,\): expected 0.0, got nan"):
        checks.expect_close(np.full(13, np.nan), np.zeros(13), "y")


def test_close_rejects_non_numbers():
    with pytest.raises(AssertionError, match="not a number"):
        checks.expect_close("abc", 1.0, "x")


def test_equal_checks_type_then_value():
    checks.expect_equal(4, 4, "k")
    checks.expect_equal(np.int64(4), 4, "k")
    with pytest.raises(AssertionError, match="This is what returning max_steps gives"):
        checks.expect_equal(50, None, "k", mistakes=[("returning max_steps", 50)])
    with pytest.raises(AssertionError, match="expected 'a', got 'b'"):
        checks.expect_equal("b", "a", "label")


def test_shape_and_dtype():
    checks.expect_shape(np.zeros((2, 3)), (2, 3), "x")
    with pytest.raises(AssertionError, match="one too few"):
        checks.expect_shape(np.zeros((1, 3)), (2, 3), "x", mistakes=[("one too few", (1, 3))])
    checks.expect_dtype(np.zeros(2, np.float32), np.float32, "x")
    with pytest.raises(AssertionError, match="keep the input's dtype"):
        checks.expect_dtype(np.zeros(2), np.float32, "x")


def test_true():
    checks.expect_true(True, "never shown")
    with pytest.raises(AssertionError, match="explained"):
        checks.expect_true(False, "explained")


# --- how a failure reads ------------------------------------------------------------------------------------------

def _message(check, *args, **kwargs) -> str:
    with pytest.raises(checks.CheckFailure) as info:
        check(*args, **kwargs)
    return str(info.value)


def test_numbers_print_plainly_with_the_digits_that_tell_them_apart():
    assert _message(checks.expect_close, np.float64(0.25216355140656427), 0.2, "rate") == (
        "rate: expected 0.2, got 0.2522.")
    assert _message(checks.expect_close, 0.2000123, 0.2, "rate") == "rate: expected 0.2, got 0.200012."
    assert _message(checks.expect_close, np.float32(3.0), 4, "n") == "n: expected 4, got 3.0."
    assert _message(checks.expect_equal, (np.float64(1.5), np.int64(2)), (1.5, 3), "pair") == (
        "pair: expected (1.5, 3), got (1.5, 2).")
    assert "np.float64" not in _message(checks.expect_close, np.array([np.float64(1.0)]), [2.0], "x")


def test_large_arrays_print_summarised_on_one_line_with_their_shape_and_largest_difference():
    expected = np.arange(1000.0).reshape(100, 10)
    got = expected.copy()
    got[57, 3] += 0.5
    message = _message(checks.expect_close, got, expected, "big")
    first = message.splitlines()[0]
    assert first == ("big (shape (100, 10)): 1 of 1000 entries differ; the largest difference is at index (57, 3): "
                     "expected 573.0, got 573.5.")
    small = _message(checks.expect_close, np.array([[4.0], [2.0]]), np.array([[4.0], [1.0]]), "path")
    assert small == "path: expected [[4.], [1.]], got [[4.], [2.]]."


def test_a_failure_renders_as_its_message_alone():
    """IPython shows ``_render_traceback_()`` instead of a traceback: the class name and the message, no frames."""
    error = checks.CheckFailure("what: expected 1.0, got 2.0.\nThis is what x gives.")
    assert error._render_traceback_() == ["\x1b[0;31mCheckFailure\x1b[0m: what: expected 1.0, got 2.0.",
                                          "This is what x gives."]


def test_in_a_kernel_a_failed_check_has_no_traceback_through_the_helpers(tmp_path):
    """What nbclient (and so nbgrader) and JupyterLab receive from the kernel: the message, no helpers/ frame."""
    import nbformat

    from tools import nbexec

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import numpy as np\nfrom helpers import checks"),
        nbformat.v4.new_code_cell('def rate():\n    return np.float64(0.25216355140656427)\n\n'
                                  'checks.expect_close(rate(), 0.2, "rate()", mistakes=[("using eta twice", rate())])'),
        nbformat.v4.new_code_cell("checks.expect_equal(int('3'), 4, 'steps')"),
    ])
    nbformat.write(nb, tmp_path / "probe.ipynb")
    executed = nbexec.execute(tmp_path / "probe.ipynb", allow_errors=True)
    outputs = [o for o in executed.cells[1].outputs if o.output_type == "error"]
    assert len(outputs) == 1 and outputs[0].ename == "CheckFailure"
    assert outputs[0].traceback == ["\x1b[0;31mCheckFailure\x1b[0m: rate(): expected 0.2, got 0.2522.",
                                    "This is what using eta twice gives."]
    text = "\n".join(o.traceback[0] for c in executed.cells[1:] for o in c.outputs if o.output_type == "error")
    assert "helpers" not in text and "File " not in text and "Traceback" not in text


# --- the diagnosis step: generic explanations of a wrong answer ----------------------------------------------------

def test_diagnosis_states_a_named_factor_with_its_size():
    from helpers import diagnosis
    expected = np.random.default_rng(0).normal(size=(5, 3))
    [relation] = diagnosis.relations(expected * 5 / 4, expected, sizes=(5,))
    assert relation.label == "times N/(N-1)" and "5/4" in relation.fact and "N - 1" in relation.mistake


def test_diagnosis_sign_transpose_offset_and_shift():
    from helpers import diagnosis
    e = np.random.default_rng(1).normal(size=(4, 3))
    labels = lambda got: [r.label for r in diagnosis.relations(got, e)]
    assert labels(-e) == ["sign flipped"]
    assert labels(e.T) == ["axes swapped"]
    assert labels(e + 0.25) == ["constant offset"]
    late = np.vstack([e[:1], e[:-1]])
    assert "one step late" in labels(late)
    assert labels((e * (1 + 3e-5)).astype(np.float32).astype(float)) == ["lower precision"]
    assert labels(e * (1 + 1e-5)) == []  # close, but not float32 values: no relation
    assert diagnosis.relations(e, e) == [] and diagnosis.relations(np.nan * e, e) == []


def test_diagnosis_names_a_relation_only_when_two_shapes_agree_on_exactly_one():
    from helpers import diagnosis
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(7, 2))
    assert diagnosis.explain_cases([(2 * a, a, (5,))]) is None  # one case: facts only
    assert diagnosis.explain_cases([(2 * a, a, (5,)), (2 * b, b, (7,))]).label == "times 2"
    # 5/4 on one case and 7/6 on the other: N/(N-1) explains both, no single constant does
    both = diagnosis.explain_cases([(a * 5 / 4, a, (5,)), (b * 7 / 6, b, (7,))])
    assert both.label == "times N/(N-1)"
    assert diagnosis.explain_cases([(2 * a, a, ()), (-b, b, ())]) is None  # no common relation


def test_close_states_facts_when_no_listed_mistake_matches():
    expected = np.linspace(1, 2, 6).reshape(2, 3)
    with pytest.raises(AssertionError, match=r"Every entry is minus the expected value\."):
        checks.expect_close(-expected, expected, "y")
    with pytest.raises(AssertionError, match=r"It is 2 times the expected value\."):
        checks.expect_close(3.0, 1.5, "s")
    with pytest.raises(AssertionError) as failure:  # a listed mistake wins over the generic facts
        checks.expect_close(-expected, expected, "y", mistakes=[("a flipped sign in the step", -expected)])
    assert "This is what a flipped sign in the step gives." in str(failure.value)
    assert "minus the expected" not in str(failure.value)


def _reference_var(x, eps=1e-5):
    return x.var(axis=0) + eps


def test_function_contract_passes_and_names_an_ignored_argument():
    rng = np.random.default_rng(3)
    cases = [("x (5, 3)", (rng.normal(size=(5, 3)),), {}, (5,)),
             ("x (4, 2), eps=0.5", (rng.normal(size=(4, 2)),), {"eps": 0.5}, (4,)),
             ("x (6, 4), eps=2.0", (rng.normal(size=(6, 4)),), {"eps": 2.0}, (6,))]
    checks.expect_function(_reference_var, _reference_var, cases, "var")
    with pytest.raises(AssertionError, match="ignoring the argument eps"):
        checks.expect_function(lambda x, eps=1e-5: x.var(axis=0) + 1e-5, _reference_var, cases, "var")


def test_function_contract_catches_in_place_list_dtype_and_named_factor():
    rng = np.random.default_rng(4)
    cases = [("x (5, 3)", (rng.normal(size=(5, 3)),), {}, (5,)), ("x (7, 2)", (rng.normal(size=(7, 2)),), {}, (7,))]

    def in_place(x, eps=1e-5):
        x -= x.mean(axis=0)
        return (x ** 2).mean(axis=0) + eps
    with pytest.raises(AssertionError, match="changed its argument number 1"):
        checks.expect_function(in_place, _reference_var, cases, "var")
    with pytest.raises(AssertionError, match="returned a list, expected an array"):
        checks.expect_function(lambda x, eps=1e-5: list(_reference_var(x, eps)), _reference_var, cases, "var")
    as32 = [("x float32", (rng.normal(size=(3, 2)).astype(np.float32),), {}, (3,))]
    with pytest.raises(AssertionError, match="has dtype float64, expected float32"):
        checks.expect_function(lambda x, eps=1e-5: _reference_var(x.astype(float), eps), _reference_var, as32, "var")
    with pytest.raises(AssertionError) as failure:
        checks.expect_function(lambda x, eps=1e-5: x.var(axis=0, ddof=1) + eps * len(x) / (len(x) - 1),
                               _reference_var, cases, "var")
    assert "2 of the 2 cases fail" in str(failure.value) and "unbiased instead of the biased" in str(failure.value)


def test_raises_contract():
    def strict(x):
        if x < 0:
            raise ValueError("negative")
        return x
    checks.expect_raises(strict, (-1,), {}, ValueError, "strict(-1)")
    with pytest.raises(AssertionError, match=r"returned 1 instead of raising ValueError"):
        checks.expect_raises(strict, (1,), {}, ValueError, "strict(1)")
    with pytest.raises(AssertionError, match=r"raised TypeError \(no\), expected ValueError"):
        checks.expect_raises(lambda x: (_ for _ in ()).throw(TypeError("no")), (1,), {}, ValueError, "f")


def test_function_contract_ignores_forward_caches_but_sees_changed_parameters():
    from helpers.network import Linear, Sequential, ReLU
    model = Sequential(Linear(3, 4, np.random.default_rng(0)), ReLU(), Linear(4, 2, np.random.default_rng(1)))
    x = np.random.default_rng(2).normal(size=(5, 3))
    forward = lambda m, x: m.forward(x)  # leaves caches behind (x, mask, outputs): not a change of the model
    checks.expect_function(forward, forward, [("model, x (5, 3)", (model, x), {}, ())], "forward")

    def nudging(m, x):
        m.layers[0].params["W"] += 1.0
        return forward(m, x)
    with pytest.raises(AssertionError, match="changed its argument number 1"):
        checks.expect_function(nudging, forward, [("model, x (5, 3)", (model, x), {}, ())], "forward")


def test_function_contract_compares_none_and_counts_exactly():
    def count(n, limit=10):
        return n if n <= limit else None
    cases = [("n=3", (3,), {}, ()), ("n=12", (12,), {}, ()), ("n=5, limit=4", (5,), {"limit": 4}, ())]
    checks.expect_function(count, count, cases, "count", rtol=0, atol=0)
    with pytest.raises(AssertionError, match=r"n=12: returned an int, expected None"):
        checks.expect_function(lambda n, limit=10: n, count, cases, "count", rtol=0, atol=0)
