"""How a feedback page renders: maths without a network, and written answers nobody graded yet said so.

``nbgrader generate_feedback`` renders with the template templates/course_feedback (nbgrader's feedback page, with
these changes):
- MathJax comes from the installed ``django-static-mathjax`` package (MathJax 3, the SVG build, which needs no font
  files) and is written into the page itself, so a page opened offline, or by a student who received only the HTML
  file, shows formulas instead of raw ``$$...$$``. TeX's ``html`` extension (``\\href``, ``\\style``) is left out,
  as MathJax 2's "Safe" setting did. Without the package the page loads MathJax from its CDN, as stock nbgrader does.
- Markdown renders through ``safe_markdown``: nbconvert's renderer, then an allowlist of inert tags and
  attributes (bleach, which nbconvert depends on): no script, frame, form, style or event handler, links only to
  http(s), mailto and anchors, images only as inline PNG, JPEG or GIF data. The preprocessor in feedback.py escapes
  the HTML a student types; this is the second layer, for what markdown syntax itself makes (``![x](https://...)``
  loads a remote image, ``[x](javascript:...)`` runs a script when clicked).
- A written answer that waits for a grader reads "not graded yet" (``MarkPending`` marks it), not "0 / 2", and the
  page's total says which points are still to come. Points read "11", not "11.0".
"""
from __future__ import annotations

import functools
import re
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


SAFE_TAGS = frozenset({"a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em",
                       "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "span",
                       "strong", "sub", "summary", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul"})
SAFE_PROTOCOLS = frozenset({"http", "https", "mailto"})
INLINE_IMAGE = ("data:image/png;", "data:image/jpeg;", "data:image/gif;")


def _safe_attribute(tag: str, name: str, value: str) -> bool:
    """Whether an attribute of a rendered markdown tag is kept (bleach then checks link protocols)."""
    if name in ("class", "title") or (name == "id" and tag[:1] == "h") or (tag == "a" and name in ("href", "name")):
        return True
    if tag == "img":
        return name == "alt" or (name == "src" and value.strip().lower().startswith(INLINE_IMAGE))
    return tag in ("th", "td") and name == "align"


def safe_markdown(source: str) -> str:
    """Markdown ``source`` as HTML with only inert content: the renderer's output through an allowlist (tags not
    on it are escaped, so what was written stays readable)."""
    import bleach
    from nbconvert.filters.markdown import markdown2html

    return bleach.clean(markdown2html(source), tags=SAFE_TAGS, attributes=_safe_attribute, protocols=SAFE_PROTOCOLS)


ACTIVE_TAGS = frozenset({"iframe", "frame", "object", "embed", "form", "base", "link", "meta", "applet", "audio",
                         "video", "source", "track", "portal"})
URL_ATTRIBUTES = frozenset({"src", "href", "action", "formaction", "data", "srcset", "poster", "background",
                            "xlink:href", "codebase", "cite", "ping"})


def live_content(page: str, own_scripts: tuple[str, ...] = ()) -> list[str]:
    """Everything in an HTML ``page`` that runs or loads without the reader asking: scripts other than
    ``own_scripts`` (the texts of the page's own), event-handler attributes, ``javascript:`` URLs, URLs loaded from
    elsewhere than the page itself (a link's href may point anywhere: following it is the reader's choice), style
    elements in the body (the template's are in the head) and style attributes with ``url(``, and embedding tags. Returns one line per finding (empty: the page is inert)."""
    from html.parser import HTMLParser

    found: list[str] = []

    class Scan(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.script: list[str] | None = None
            self.in_body = False

        def handle_starttag(self, tag, attrs):
            self.in_body = self.in_body or tag == "body"
            if tag == "style" and self.in_body:  # the template's own styles are all in <head>
                found.append("<style> in the page's body")
            if tag in ACTIVE_TAGS and not (tag == "meta" and dict(attrs).keys() <= {"charset", "name", "content"}
                                           and "http-equiv" not in dict(attrs)):
                found.append(f"<{tag}> {attrs}"[:200])
            if tag == "script":
                self.script = []
                if dict(attrs).get("src"):
                    found.append(f"<script src> {attrs}"[:200])
            for name, value in attrs:
                text = (value or "").strip().lower().replace("\t", "").replace("\n", "")
                if name.startswith("on"):
                    found.append(f"<{tag} {name}=...>"[:200])
                elif name in URL_ATTRIBUTES and (text.startswith(("javascript:", "vbscript:")) or (
                        not (tag == "a" and name == "href") and not text.startswith(("#", "data:image/"))
                        and text != "")):
                    found.append(f"<{tag} {name}={value!r}>"[:200])
                elif name == "style" and "url(" in text:
                    found.append(f"<{tag} style={value!r}>"[:200])

        def handle_data(self, data):
            if self.script is not None:
                self.script.append(data)

        def handle_endtag(self, tag):
            if tag == "script" and self.script is not None:
                text, self.script = "".join(self.script).strip(), None
                if text and text not in own_scripts:
                    found.append(f"<script> {text[:120]!r}")

    Scan().feed(page)
    return found


def own_scripts() -> tuple[str, ...]:
    """The texts of the scripts the feedback template writes into every page (MathJax and its configuration)."""
    return tuple(part.split(">", 1)[1].strip() for part in mathjax_offline().split("</script>") if ">" in part)


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
