"""The named mistakes of every check are unambiguous on its own examples.

Each solution notebook runs top to bottom (hidden tests included) in a fresh Python process with the checks
recording their calls. For every check that lists mistakes: no two mistakes give the same value on that check's
example (a student who made one would be told the other), and the expected value matches none of them (the
solution would be told it made a mistake if it ever failed by a hair). The same for expect_close_cases, on all
cases together.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tools.paths import ROOT, assignments, solution_notebook

RECORDER = textwrap.dedent(r'''
    import ast, asyncio, inspect, json, sys, os
    import matplotlib
    matplotlib.use("Agg")
    import nbformat
    import numpy as np
    sys.path.insert(0, sys.argv[2])
    from helpers import checks

    problems = []
    calls = [0]

    def look(what, expected, mistakes, rtol, atol, matches):
        calls[0] += 1
        mistakes = list(mistakes)
        for i, (d1, w1) in enumerate(mistakes):
            if matches(expected, w1, rtol, atol):
                problems.append(f"{what}: the expected value is also what {d1!r} gives")
            for d2, w2 in mistakes[i + 1:]:
                if d1 != d2 and matches(w1, w2, rtol, atol):
                    problems.append(f"{what}: {d1!r} and {d2!r} give the same value")

    def recording(name, matches):
        original = getattr(checks, name)
        def wrapper(actual, expected, what, *args, mistakes=(), **kwargs):
            rtol = kwargs.get("rtol", 1e-6 if name == "expect_close" else 0.0)
            atol = kwargs.get("atol", 1e-12 if name == "expect_close" else 0.0)
            look(what, expected, mistakes, rtol, atol, matches)
            return original(actual, expected, what, *args, mistakes=mistakes, **kwargs)
        setattr(checks, name, wrapper)

    recording("expect_close", checks._matches)
    recording("expect_equal", lambda a, b, r, t: type(a) is type(b) and a == b)
    recording("expect_shape", lambda a, b, r, t: tuple(a) == tuple(b))

    original_cases = checks.expect_close_cases
    def cases_wrapper(cases, what, *, mistakes=(), rtol=1e-6, atol=1e-12, **kwargs):
        cases = list(cases)
        expected = [c[2] for c in cases]
        both = lambda a, b, r, t: all(checks._matches(x, y, r, t) for x, y in zip(a, b))
        look(what, expected, mistakes, rtol, atol, both)
        return original_cases(cases, what, mistakes=mistakes, rtol=rtol, atol=atol, **kwargs)
    checks.expect_close_cases = cases_wrapper

    nb = nbformat.read(sys.argv[1], as_version=4)
    namespace = {"__name__": "__main__"}
    os.chdir(os.path.dirname(sys.argv[1]))
    for cell in nb.cells:
        if cell.cell_type == "code":
            code = compile(cell.source, "<cell>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(code, namespace)
            if inspect.iscoroutine(result):
                asyncio.run(result)
            import matplotlib.pyplot as plt
            plt.close("all")
    print(json.dumps({"calls": calls[0], "problems": problems}))
''')


@pytest.mark.parametrize("assignment", [pytest.param(a, marks=pytest.mark.xdist_group(a)) for a in assignments()])
def test_no_two_named_mistakes_of_a_check_coincide(assignment, tmp_path):
    script = tmp_path / "record.py"
    script.write_text(RECORDER)
    done = subprocess.run([sys.executable, str(script), str(solution_notebook(assignment)), str(ROOT)],
                          capture_output=True, text=True, timeout=600, env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin",
                                                                            "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["calls"] > 10, report
    assert not report["problems"], f"{assignment}:\n" + "\n".join(report["problems"])
