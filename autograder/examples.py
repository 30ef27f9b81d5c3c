"""Example submissions of notebook 01: good, partial, common mistakes, hostile, broken.

They are built from the current solution and student notebooks (so they never drift), in the one-folder-per-student
layout the grading command reads: ``<student>/01-learning-rate.ipynb``. ``EXPECTED`` says what grading must do with
each; tests/test_grading.py holds the grading command to it, and ``./course demo`` grades them all.

    python -m autograder.examples build FOLDER
"""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "01-learning-rate"
TARGET = "gradient_descent"  # the answer cell the hostile examples attack
TARGET_TESTS = {"gradient_descent_hand_case": 1.0, "gradient_descent_matches_closed_form": 2.0}
LEAK = "ATTACK SUCCEEDED"
HOST_FILES = [ROOT / "notebooks" / "PWNED.txt", Path("/tmp/course-PWNED.txt"), Path.home() / "course-PWNED.txt"]
SECRETS = [ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", ROOT / "autograder" / "gradebook.db",
           ROOT / "autograder" / "mistakes" / "01_learning_rate.py"]


def _prefix(code: str):
    return lambda source: code + "\n" + source


def _replace(old: str, new: str):
    return lambda source: source.replace(old, new)


def _try_each(statements: list[str]) -> str:
    """Code that tries each statement and prints LEAK if one succeeds."""
    lines = []
    for statement in statements:
        lines += ["try:", f"    {statement}", f"    print({LEAK!r}, {statement!r})", "except Exception:", "    pass"]
    return "\n".join(lines)


SIGN_FLIP = _replace("w = w - eta * grad(w)", "w = w + eta * grad(w)")
LOSES_TARGET = {"lost": sorted(TARGET_TESTS)}

# name -> (how the target cell changes, what grading must do). "lost": test cells that must score 0;
# "reason": a phrase the recorded reasons must contain (phrases separated by "|": one of them);
# "max_score": the score may not exceed this. A busy loop meets the wall-time and the CPU-time limit of a cell at
# about the same time (the sandbox has one core): either may be the reason.
CPU_OR_WALL = "CellTimeoutError|CPU time limit"
BUSY_CHILDREN = "import os\nfor _ in range(4):\n    if os.fork() == 0:\n        while True:\n            pass"
UNDER_TEST = ("\n\n_answer = gradient_descent\n\n\ndef gradient_descent(grad, w0, eta, n_steps):\n    import sys\n"
              "    frame = sys._getframe(1)\n    while frame and frame.f_code.co_filename != '<course agent>':\n"
              "        frame = frame.f_back\n    if frame is None:\n        return _answer(grad, w0, eta, n_steps)\n"
              "    if True:\n")
HOSTILE = {
    "infinite-loop": (_prefix("while True:\n    pass"), {**LOSES_TARGET, "reason": CPU_OR_WALL}),
    # busy children left running beside the kernel for the rest of the notebook: they share the sandbox's core
    "cpu-hog-children": (_prefix(BUSY_CHILDREN), {"reason": "os.fork"}),
    # a cell that burns CPU in three processes: stopped by the CPU-time limit of the cell, children killed
    "cpu-burner": (_prefix(BUSY_CHILDREN.replace("range(4)", "range(2)") + "\nwhile True:\n    pass"),
                   {**LOSES_TARGET, "reason": CPU_OR_WALL}),
    "os-exit": (_prefix("import os\nos._exit(1)"), {"max_score": 0.0, "reason": "kernel died"}),
    "memory-bomb": (_prefix("hog = bytearray(16 * 1024 ** 3)"), {**LOSES_TARGET, "reason": "MemoryError"}),
    "fork-bomb": (_prefix("import os\nwhile True:\n    os.fork()"), {**LOSES_TARGET, "reason": "os.fork"}),
    "output-flood": (_prefix("for _ in range(300_000):\n    print('spam ' * 20)"), {"reason": "output"}),
    "read-secrets": (_prefix(_try_each([f"open({str(p)!r}, 'rb').read(100)" for p in SECRETS])),
                     {"reason": "absolute path"}),
    "write-gradebook": (_prefix("import sqlite3\n" + _try_each([
        f"open({str(ROOT / 'autograder' / 'gradebook.db')!r}, 'ab').write(b'x')",
        f"sqlite3.connect({str(ROOT / 'autograder' / 'gradebook.db')!r}).execute('DELETE FROM grade').connection.commit()"])),
        {"reason": "absolute path"}),
    "network": (_prefix("import socket\n" + _try_each(["socket.create_connection(('pypi.org', 443), timeout=3)",
                                                        "socket.create_connection(('127.0.0.1', 22), timeout=3)"])),
                {"reason": "network"}),
    # The sandbox's own /tmp and home folder are writable memory, gone afterwards: writing there proves nothing, so
    # only the repository counts as a success; the test checks that none of HOST_FILES exists on the host.
    "write-outside": (_prefix(_try_each([f"open({str(p)!r}, 'w').write('x')" for p in (HOST_FILES[0], ROOT / "PWNED.txt")])
                              + "\n" + "\n".join(f"try:\n    open({str(p)!r}, 'w').write('x')\nexcept OSError:\n    pass"
                                                 for p in HOST_FILES[1:])),
                      {"reason": "absolute path"}),
    "monkeypatch-numpy": (lambda s: "np.allclose = lambda *a, **k: True\n"
                                    "np.testing.assert_allclose = lambda *a, **k: None\n\n" + SIGN_FLIP(s),
                          LOSES_TARGET),
    "hide-errors": (lambda s: "get_ipython().showtraceback = lambda *a, **k: None\n\n" + SIGN_FLIP(s), LOSES_TARGET),
    "delegate-reference": (lambda s: "from helpers.gradient_descent import gradient_descent as _reference\n\n\n"
                                     "def gradient_descent(grad, w0, eta, n_steps):\n"
                                     "    return _reference(grad, w0, eta, n_steps)\n",
                           {**LOSES_TARGET, "reason": "reference implementation"}),
    "kill-parent": (_prefix("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"), {"reason": "os.kill"}),
    "flood-one-line": (_prefix("print('x' * 40_000_000)\nprint('y' * 40_000_000)"), {"reason": "output of"}),
    "flood-images": (_prefix("from IPython.display import Image, display\nfor _ in range(40):\n"
                             "    display(Image(data=b'\\x89PNG\\r\\n\\x1a\\n' + bytes(2_000_000), format='png'))"),
                     {"reason": "output of"}),
    # the answer hangs only when a test calls it (through the grader's agent): asleep past the test's time, the
    # kernel is interrupted and the next tests run as usual; busy and ignoring the interrupt, the kernel is ended
    "hang-when-tested": (lambda s: s + UNDER_TEST + "        import time\n        time.sleep(3600)\n",
                         {**LOSES_TARGET, "score": 8.0, "reason": "the test ran longer than"}),
    "hang-ignoring-interrupt": (lambda s: s + UNDER_TEST + "        while True:\n            try:\n"
                                "                while True:\n                    pass\n"
                                "            except KeyboardInterrupt:\n                pass\n",
                                {**LOSES_TARGET, "max_score": 0.0,
                                 "reason": "ignored the interrupt|stopped answering|kernel died"}),
    "disk-fill": (_prefix("import os\nfor _folder in ('.', '/tmp', '/dev/shm'):\n    try:\n"
                          "        with open(os.path.join(_folder, 'fill'), 'wb') as _f:\n"
                          "            for _ in range(2000):\n                _f.write(bytes(1 << 20))\n"
                          "    except OSError:\n        pass"), {"full": True}),
}

# Attacks on the verdict itself (each with a wrong answer, so that any point it keeps was taken, not earned).
# The verdict is computed in the grader's process (autograder/execute.py): none of these can reach it.
_FAKE = "type('Fake', (), {'__getattr__': lambda self, name: (lambda *a, **k: None)})()"
VERDICT_ATTACKS = {
    "input-transformer": "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])",
    "numpy-alias-allclose": "import numpy as _n\n_n.allclose = lambda *a, **k: True\n_n.array_equal = lambda *a, **k: True",
    "swap-checks": f"vars().update(checks={_FAKE})",
    "check-kwdefaults": "checks.expect_close.__kwdefaults__.update(rtol=1e9, atol=1e9)",
    "builtin-replaced": "import builtins\nbuiltins.abs = lambda x: 0 * x\nbuiltins.bool = lambda *a: True",
    "display-hook": "import sys\nsys.displayhook('11')",
    "post-run-hook": ("def _clear(result):\n    result.error_in_exec = None\n"
                      "get_ipython().events.register('post_run_cell', _clear)"),
    "trace-hook": ("import sys\ndef _tracer(frame, event, arg):\n    if 'expected' in frame.f_locals:\n"
                   "        frame.f_locals['actual'] = frame.f_locals['expected']\n    return _tracer\n"
                   "getattr(sys, 'set' + 'trace')(_tracer)\nimport threading\nthreading.settrace(_tracer)"),
    "exception-hook": ("import sys\nsys.excepthook = lambda *a: None\n"
                       "get_ipython().set_custom_exc((Exception,), lambda *a, **k: None)"),
    "reference-source": ("import inspect, helpers.gradient_descent as _g\n"
                         "exec('\\n'.join(l for l in inspect.getsource(_g.gradient_descent).splitlines() "
                         "if 'RuntimeError' not in l and 'getframe' not in l))"),
}

# The answer itself lies: what it returns pretends to equal anything, or reads what it should not.
LYING_ANSWERS = {
    "lying-eq": ("class _Liar:\n    def __eq__(self, other): return True\n    def __array__(self, *a, **k):\n"
                 "        import sys\n        f = sys._getframe(1)\n        while f and 'expected' not in f.f_locals: f = f.f_back\n"
                 "        return np.asarray(f.f_locals['expected']) if f else np.zeros(1)\n"
                 "def gradient_descent(grad, w0, eta, n_steps):\n    return _Liar()\n"),
    "ndarray-subclass": ("class _Always(np.ndarray):\n    def __eq__(self, other): return np.ones(np.shape(other), bool)\n"
                         "    def __array_function__(self, *a, **k): return True\n"
                         "def gradient_descent(grad, w0, eta, n_steps):\n"
                         "    return np.zeros((n_steps + 1, np.size(w0))).view(_Always)\n"),
    "getattr-fake": ("class _Anything:\n    def __getattr__(self, name): return lambda *a, **k: self\n"
                     "def gradient_descent(grad, w0, eta, n_steps):\n    return _Anything()\n"),
    "wire-lookalike": ("def gradient_descent(grad, w0, eta, n_steps):\n"
                       "    return {'$sent': 0, '$ref': 0, '$array': {'dtype': 'float64', 'shape': [4, 1]}}\n"),
    "forge-agent-reply": ("_real = __course_agent__.handle if '__course_agent__' in dir() else None\n"
                          "def _forged(text):\n    __course_agent__.reply = '{\"ok\": true, \"updates\": [[0, 1]]}'\n"
                          "try:\n    __course_agent__.handle = _forged\nexcept NameError:\n    pass\n"
                          + "def gradient_descent(grad, w0, eta, n_steps):\n    return None\n"),
    "caller-source-in-message": ("def gradient_descent(grad, w0, eta, n_steps):\n"
                                 "    import sys, linecache\n    text = []\n    f = sys._getframe(1)\n"
                                 "    while f:\n        text += linecache.getlines(f.f_code.co_filename)\n"
                                 "        text.append(repr(f.f_locals)[:2000])\n        f = f.f_back\n"
                                 "    raise ValueError(''.join(text)[-3000:])\n"),
    "read-working-folder": ("import glob, os\n"
                            "for _path in glob.glob('*') + glob.glob('../*/*.ipynb') + glob.glob('/tmp/**/*.ipynb', recursive=True):\n"
                            "    try:\n        print(open(_path).read()[:100000])\n    except Exception:\n        pass\n"
                            "print(In)\n" + "def gradient_descent(grad, w0, eta, n_steps):\n    return None\n"),
}


# Active content in everything a student writes that feedback shows: a cell's displays and prints, its error, a
# markdown cell of their own and a written answer (raw HTML and markdown's own images and links), a cell tag and a
# made-up grade id. The feedback page must carry none of it live (feedback_page.live_content).
PROBE = "COURSE_XSS_PROBE"
ACTIVE_HTML = (f'<script>window.{PROBE}=1</script><img src=x onerror="{PROBE}()"><svg onload="{PROBE}()"></svg>'
               f'<iframe src="https://evil.example/{PROBE}"></iframe><a href="javascript:{PROBE}()">x</a>'
               f'<style>@import url(https://evil.example/{PROBE}.css)</style>')
ACTIVE_MARKDOWN = (ACTIVE_HTML + f"\n\n![t](https://evil.example/{PROBE}.png) [c](javascript:{PROBE}())\n\n"
                   f"[r][1]\n\n[1]: javascript:{PROBE}()\n\n$\\href{{javascript:{PROBE}()}}{{x}}$")
ACTIVE_CODE = ("from IPython.display import display, HTML, Javascript, SVG, Markdown\n"
               f"display(HTML({ACTIVE_HTML!r}))\ndisplay(Javascript('window.{PROBE}=3'))\n"
               f"display(SVG('<svg xmlns=\"http://www.w3.org/2000/svg\"><script>{PROBE}()</script></svg>'))\n"
               f"display(Markdown({ACTIVE_MARKDOWN!r}))\n"
               f"display({{'text/html': {ACTIVE_HTML!r}, 'text/plain': {ACTIVE_HTML!r}}}, raw=True)\n"
               f"print({ACTIVE_HTML!r})\nraise ValueError({ACTIVE_HTML!r})")
# Files left in the kernel's socket folder (and its parent, where it is writable) for the next kernel to find; a
# kernel that finds one another kernel left prints LEAK. Two copies are graded: with a shared folder, one would.
PLANT_RUNTIME = ("import glob as _glob, os as _os, uuid as _uuid\n"
                 "from ipykernel.kernelapp import IPKernelApp as _App\n"
                 "_folder = _os.path.dirname(_App.instance().ip) or '.'\n"
                 "_mine = f'course-planted-{_uuid.uuid4().hex}'\n"
                 "for _where in (_folder, _os.path.dirname(_folder), '/tmp', '/dev/shm', _os.getcwd()):\n"
                 "    for _found in _glob.glob(_os.path.join(_where, 'course-planted-*')):\n"
                 f"        print({LEAK!r}, _found)\n"
                 "    try:\n        open(_os.path.join(_where, _mine), 'w').write('planted')\n"
                 "    except OSError:\n        pass\n")


def _filled(nb_student, solutions: dict[str, str], blank: tuple[str, ...] = ()):
    nb = copy.deepcopy(nb_student)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id") not in blank:
            cell.source = solutions[meta["grade_id"]]
    return nb


def _cell(nb, grade_id: str):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def build(folder: Path) -> dict[str, dict]:
    """Write every example into ``folder``; returns student -> expectation (see EXPECTED)."""
    student = nbformat.read(ROOT / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    solution = nbformat.read(ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in solution.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    good = _filled(student, answers)
    expected: dict[str, dict] = {}

    def write(name: str, nb, expectation: dict, filename: str = f"{ASSIGNMENT}.ipynb") -> None:
        (folder / name).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / name / filename)
        expected[name] = expectation

    write("good", good, {"full": True})
    write("blank", student, {"score": 0.0})
    write("partial", _filled(student, answers, blank=("classify_learning_rate", "steps_to_converge")),
          {"lost": ["classify_learning_rate_regimes", "classify_learning_rate_scaled", "steps_to_converge_hand_case",
                    "steps_to_converge_random"], "exact": True})
    from tools.roundtrip import apply_mistake, load_mistakes  # noqa: E402  (the catalogue of common mistakes)
    for mistake in load_mistakes(ASSIGNMENT)[:3]:
        nb = copy.deepcopy(good)
        _cell(nb, mistake["cell"]).source = apply_mistake(answers[mistake["cell"]], mistake)
        write("mistake-" + mistake["name"].replace(" ", "-"), nb, {"lost": mistake["loses"], "exact": True})
    for name, (change, expectation) in HOSTILE.items():
        nb = copy.deepcopy(good)
        _cell(nb, TARGET).source = change(answers[TARGET])
        write("hostile-" + name, nb, expectation)
    for name, attack in VERDICT_ATTACKS.items():
        nb = copy.deepcopy(good)
        _cell(nb, TARGET).source = attack + "\n\n" + SIGN_FLIP(answers[TARGET])
        write("hostile-" + name, nb, LOSES_TARGET)
    for name, answer in LYING_ANSWERS.items():
        nb = copy.deepcopy(good)
        _cell(nb, TARGET).source = answer
        write("hostile-" + name, nb, LOSES_TARGET)
    nb = copy.deepcopy(student)  # blank, plus one cell that makes every later cell do nothing
    nb.cells.insert(3, nbformat.v4.new_code_cell(VERDICT_ATTACKS["input-transformer"]))
    write("hostile-blank-plus-transformer", nb, {"max_score": 0.0})
    nb = copy.deepcopy(good)
    nb.cells.append(nbformat.v4.new_code_cell("print(In)\nprint(Out)"))
    write("hostile-print-history", nb, {"full": True})
    write("hostile-active-content", _with_active_content(good), {"full": True})
    for copy_name in ("hostile-plant-runtime-folder", "hostile-plant-runtime-folder-again"):
        nb = copy.deepcopy(good)
        nb.cells.insert(3, nbformat.v4.new_code_cell(PLANT_RUNTIME))
        write(copy_name, nb, {"full": True})
    nb = copy.deepcopy(good)
    _cell(nb, TARGET).source = SIGN_FLIP(answers[TARGET])
    for test in TARGET_TESTS:
        _cell(nb, test).source = "pass"
    write("hostile-edit-locked-tests", nb, {**LOSES_TARGET, "reason": "locked but was edited"})
    _broken(folder, good, write, expected)
    return expected


def _with_active_content(good):
    """The good notebook with active content in a cell of its own, a markdown cell, the written answer, a cell tag
    and an extra graded cell's id."""
    nb = copy.deepcopy(good)
    code = nbformat.v4.new_code_cell(ACTIVE_CODE)
    code.metadata["tags"] = [f'"><script>{PROBE}()</script>']
    markdown = nbformat.v4.new_markdown_cell(ACTIVE_MARKDOWN)
    made_up = nbformat.v4.new_markdown_cell("mine")
    made_up.metadata["nbgrader"] = {"solution": True, "grade": True, "locked": False, "points": 1,
                                    "schema_version": 3, "grade_id": f'"><img src=x onerror="{PROBE}()">'}
    nb.cells[3:3] = [code, markdown, made_up]
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution") and cell is not made_up:
            cell.source = ACTIVE_MARKDOWN
    return nb


def _broken(folder: Path, good, write, expected: dict) -> None:
    (folder / "broken-invalid-json").mkdir(parents=True, exist_ok=True)
    (folder / "broken-invalid-json" / f"{ASSIGNMENT}.ipynb").write_text('{"cells": [ not json')
    expected["broken-invalid-json"] = {"score": 0.0, "reason": "not valid JSON", "status": "rejected"}
    write("broken-wrong-name", good, {"full": True, "reason": "notebook named"}, filename="my submission.ipynb")
    nb = copy.deepcopy(good)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id")
                not in ("gradient_descent_hand_case", "classify_learning_rate")]
    write("broken-deleted-cells", nb, {"lost": ["classify_learning_rate_regimes", "classify_learning_rate_scaled"],
                                       "exact": True, "reason": "was deleted"})
    nb = copy.deepcopy(good)
    cell = _cell(nb, "hessian_rates")
    cell.cell_type = "markdown"
    cell.pop("outputs", None)
    cell.pop("execution_count", None)
    write("broken-retyped-cell", nb, {"full": True, "reason": "changed from code to markdown"})
    nb = copy.deepcopy(good)
    index = nb.cells.index(_cell(nb, "gradient_descent_hand_case"))
    nb.cells.insert(index + 1, copy.deepcopy(nb.cells[index]))  # same cell id and grade_id
    (folder / "broken-duplicated-ids").mkdir(parents=True, exist_ok=True)
    (folder / "broken-duplicated-ids" / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(nb))  # unvalidated on purpose
    expected["broken-duplicated-ids"] = {"full": True, "reason": "duplicated cell id"}
    nb = copy.deepcopy(good)
    _cell(nb, "steps_to_converge_random").metadata["nbgrader"]["points"] = 100
    _cell(nb, "hessian_rates_stability_limit").metadata["nbgrader"]["grade"] = False
    write("broken-metadata-edited", nb, {"full": True, "reason": "metadata edited"})
    nb = copy.deepcopy(good)
    _cell(nb, "setup").outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * (6 << 20))]
    write("broken-oversize", nb, {"full": True, "reason": "over the 5 MB limit"})
    for name, text, reason in BROKEN_FILES:
        (folder / name).mkdir(parents=True, exist_ok=True)
        (folder / name / f"{ASSIGNMENT}.ipynb").write_text(text(good))
        expected[name] = {"score": 0.0, "reason": reason, "status": "rejected"}
    nb = json.loads(json.dumps(good))  # metadata of the wrong types, as plain JSON (nbformat would not write it)
    graded = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id")]
    by_id = {c["metadata"]["nbgrader"]["grade_id"]: c for c in graded}
    by_id["gradient_descent_hand_case"]["metadata"]["nbgrader"]["grade_id"] = ["gradient_descent_hand_case"]
    by_id["steps_to_converge_random"]["metadata"]["nbgrader"]["points"] = "100"
    by_id["classify_learning_rate"]["metadata"]["nbgrader"] = ["solution", True]
    by_id["hessian_rates_stability_limit"]["metadata"]["nbgrader"]["grade"] = "false"
    nb["cells"].append({"cell_type": "markdown", "id": "added-by-student", "source": "mine",
                        "metadata": {"nbgrader": {"schema_version": 99, "grade": True}}})
    (folder / "broken-metadata-types").mkdir(parents=True, exist_ok=True)
    (folder / "broken-metadata-types" / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(nb))
    expected["broken-metadata-types"] = {"full": True, "reason": "metadata malformed"}


# Files no notebook reader should parse: name -> (text from the good notebook, the reason recorded)
BROKEN_FILES = [
    ("broken-deep-json", lambda good: "[" * 3000 + "]" * 3000, "nested 3000 levels"),
    ("broken-huge-json", lambda good: json.dumps({**good, "metadata": {**good.metadata, "padding": "x" * (50 << 20)}}),
     "read at all"),
]


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "build":
        print(__doc__)
        return 2
    expected = build(Path(argv[1]))
    print(json.dumps(expected, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
