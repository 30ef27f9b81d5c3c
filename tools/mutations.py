"""Grade a set of student bugs and correct alternative solutions written outside the course's catalogues.

Usage: python -m tools.mutations FOLDER [--assignment ID ...] [--json OUT]

FOLDER holds one file per notebook, ``<id>.py`` (dashes or underscores), defining ``MUTATIONS``: dicts with
``name``, ``kind`` ("bug" or "alternative"), ``cell`` (an answer cell's grade_id), ``replace`` (pairs (old, new)
applied to the solution's source) or ``source`` (the whole new cell), and ``mistake`` (one sentence: what is wrong,
or how the alternative differs). Each becomes one submission (every other answer from the solution); each
notebook's submissions are autograded in one stock nbgrader batch in a scratch copy of the course.

Printed per case: points kept, the test cells that lost points, and the first failing message, so a reader can
judge whether it names the mistake. The summary counts, per notebook: bugs caught (lost any point) and
alternatives that lost a point (false fails). Used to measure the tests against mistakes nobody catalogued.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
from pathlib import Path

from tools import release, roundtrip
from tools.paths import assignments


def load(folder: Path, assignment: str) -> list[dict]:
    """The MUTATIONS of ``folder/<id>.py`` (either spelling), or [] when there is no such file."""
    for name in (assignment, assignment.replace("-", "_")):
        path = folder / f"{name}.py"
        if path.is_file():
            spec = importlib.util.spec_from_file_location(f"mutations_{name.replace('-', '_')}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return list(module.MUTATIONS)
    return []


def student_id(index: int, case: dict) -> str:
    slug = "".join(ch if ch.isalnum() else "-" for ch in case["name"].lower())[:40].strip("-")
    return f"{case['kind'][:3]}-{index:02d}-{slug}"


def first_failure(outputs: dict[str, str], lost: list[str]) -> str:
    """The first lines of the first test cell (in notebook order) that lost points."""
    for cell in outputs:
        if cell in lost and outputs[cell].strip():
            lines = [line for line in outputs[cell].strip().splitlines() if line.strip()]
            error = next((i for i, line in enumerate(lines) if "Error" in line.split(":")[0]), 0)
            return " | ".join(lines[error:error + 3])[:500]
    return ""


def grade(folder: Path, assignment: str, workdir: Path, cell_timeout: int = 60) -> list[dict]:
    """Autograde every case of one notebook; one result dict per case, in the file's order."""
    cases = load(folder, assignment)
    if not cases:
        return []
    course = roundtrip.copy_course(workdir / assignment)
    release.release(assignment, root=course)
    results = []
    for index, case in enumerate(cases):
        sid = student_id(index, case)
        try:
            nb = roundtrip.build_submission(course, assignment, case)
        except (ValueError, KeyError) as error:
            results.append({**case, "student": sid, "error": f"cannot apply: {error}"})
            continue
        roundtrip.submit(course, sid, assignment, nb)
        results.append({**case, "student": sid})
    outcome = roundtrip.autograde(course, assignment, f"--Execute.timeout={cell_timeout}",
                                  timeout=max(1800, 150 * len(results)))  # a loaded machine: minutes per case
    log = outcome.stdout + outcome.stderr
    scores = roundtrip.scores(course, assignment)
    if outcome.returncode != 0 and not scores:
        raise RuntimeError(log[-4000:])
    for result in results:
        if "error" in result:
            continue
        got = scores.get(result["student"], {})
        if not got:
            errors = [line for line in log.splitlines() if result["student"] in line or "Error" in line]
            result.update(error="not graded: " + " | ".join(errors[-3:])[:500])
            continue
        lost = [cell for cell, (score, top) in got.items() if score < top]
        outputs = roundtrip.cell_outputs(course, result["student"], assignment)
        result.update(score=sum(s for s, _ in got.values()), max=sum(t for _, t in got.values()), lost=lost,
                      message=first_failure(outputs, lost))
    return results


def summary(assignment: str, results: list[dict]) -> str:
    bugs = [r for r in results if r["kind"] == "bug" and "error" not in r]
    alternatives = [r for r in results if r["kind"] == "alternative" and "error" not in r]
    caught = sum(bool(r["lost"]) for r in bugs)
    false_fails = sum(bool(r["lost"]) for r in alternatives)
    broken = sum("error" in r for r in results)
    return (f"{assignment}: bugs caught {caught}/{len(bugs)}; alternatives losing points {false_fails}/"
            f"{len(alternatives)}" + (f"; {broken} cases could not be applied" if broken else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--assignment", action="append", help="only these notebooks (repeatable)")
    parser.add_argument("--json", type=Path, help="write every result to this file")
    args = parser.parse_args(argv)
    everything = {}
    with tempfile.TemporaryDirectory(prefix="course-mutations-") as tmp:
        for assignment in args.assignment or assignments():
            results = grade(args.folder, assignment, Path(tmp))
            everything[assignment] = results
            for r in results:
                if "error" in r:
                    print(f"  [{r['kind']}] {r['name']}: {r['error']}")
                    continue
                verdict = "LOST " + ",".join(r["lost"]) if r["lost"] else "full marks"
                print(f"  [{r['kind']}] {r['name']}: {r['score']:g}/{r['max']:g} {verdict}")
                print(f"      mistake: {r['mistake']}")
                if r["message"]:
                    print(f"      message: {r['message']}")
            if results:
                print(summary(assignment, results), flush=True)
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
