"""How a feedback page renders: maths without a network, and written answers nobody graded yet said so.

``nbgrader generate_feedback`` renders with the template templates/course_feedback (nbgrader's feedback page, with
these changes):
- MathJax comes from the installed ``django-static-mathjax`` package (MathJax 3, the SVG build, which needs no font
  files) and is written into the page itself, so a page opened offline, or by a student who received only the HTML
  file, shows formulas instead of raw ``$$...$$``. TeX's ``html`` extension (``\\href``, ``\\style``) is left out,
  as MathJax 2's "Safe" setting did. Without the package the page loads MathJax from its CDN, as stock nbgrader does.
- A written answer that waits for a grader reads "not graded yet" (``MarkPending`` marks it), not "0 / 2", and the
  page's total says which points are still to come. Points read "11", not "11.0".
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from nbconvert.preprocessors import Preprocessor

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAME = "course_feedback"
CDN = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js?config=TeX-AMS_CHTML-full,Safe"
MATHJAX_3_CONFIG = """window.MathJax = {
  tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], displayMath: [['$$', '$$'], ['\\\\[', '\\\\]']],
        processEscapes: true, processEnvironments: true, tags: 'ams', packages: {'[-]': ['html']}},
  svg: {fontCache: 'global'},
  options: {enableMenu: false}
};"""


@functools.lru_cache(maxsize=1)
def mathjax_source() -> str | None:
    """MathJax 3's single-file TeX-to-SVG build from the installed package, or None when it is not installed."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax" / "es5" / "tex-svg-full.js"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def mathjax_offline(_=None) -> str:
    """The page's MathJax: the installed build written into the page, or, without the package, MathJax 2 from
    the CDN that stock nbconvert uses (the page then needs a network for its formulas)."""
    source = mathjax_source()
    if source is None:
        return (f'<script src="{CDN}"></script>\n<script type="text/x-mathjax-config">'
                "MathJax.Hub.Config({tex2jax: {inlineMath: [['$','$'], ['\\\\(','\\\\)']], processEscapes: true}});"
                "</script>")
    script = source.replace("</script", "<\\/script")
    return f"<script>\n{MATHJAX_3_CONFIG}\n</script>\n<script>\n{script}\n</script>"


def points(value) -> str:
    """A score as the table and CSV print it: 11.0 -> '11', 2.5 -> '2.5'."""
    try:
        return f"{round(float(value), 2):g}"
    except (TypeError, ValueError):
        return "0"


class MarkPending(Preprocessor):
    """After nbgrader's GetGrades: mark each graded cell that waits for a grader (``nbgrader.pending``) and put the
    points still to grade into ``resources['nbgrader']['pending']``."""

    enabled = True

    def preprocess(self, nb, resources):
        from nbgrader.api import Gradebook

        info = resources["nbgrader"]
        pending = 0.0
        with Gradebook(info["db_url"]) as gradebook:
            for cell in nb.cells:
                meta = cell.metadata.get("nbgrader", {})
                if not meta.get("grade") and not meta.get("task"):
                    continue
                grade = gradebook.find_grade(meta["grade_id"], info["notebook"], info["assignment"], info["student"])
                if grade.needs_manual_grade and grade.manual_score is None:
                    meta["pending"] = True
                    pending += grade.max_score
        info["pending"] = pending
        return nb, resources
