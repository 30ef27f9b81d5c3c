"""``./course demo``: grade the example submissions (autograder/examples.py) in a scratch course of their own.

The scratch course is a copy of this one without its grading output; ``./course grade`` runs there, prints its
table and summary, and the copy is removed afterwards (``--keep`` keeps it and prints where, to look at feedback).
The course's own gradebook, autograded/, feedback/ and CSV files are never touched.

    python -m autograder.demo [--keep] [--only good,partial,...] [grading options such as --workers 1]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder import examples
from tools.roundtrip import copy_repository


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="./course demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the scratch course (prints its path)")
    parser.add_argument("--only", help="comma-separated example names (default: all of them)")
    args, grading = parser.parse_known_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="course-demo-"))
    try:
        course = copy_repository(scratch / "course")
        built = scratch / "examples"
        expected = examples.build(built)
        chosen = built
        if args.only:
            chosen = scratch / "chosen"
            for name in args.only.split(","):
                if name not in expected:
                    raise SystemExit(f"demo: no example called {name!r}; there are: {', '.join(sorted(expected))}")
                shutil.copytree(built / name, chosen / name)
        print(f"demo: grading the example submissions in a scratch course ({course})", flush=True)
        run = subprocess.run([sys.executable, "-m", "autograder.grade", str(chosen), *grading], cwd=course)
        if args.keep:
            print(f"demo: the scratch course stays in {course} (feedback in {course / 'autograder' / 'feedback'})")
        return run.returncode
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
