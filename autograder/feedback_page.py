"""How a feedback page renders: maths without a network, and written answers nobody graded yet said so.

``nbgrader generate_feedback`` renders with ``FeedbackExporter``: the template templates/course_feedback (nbgrader's
feedback page, with these changes). Formgrader keeps its own template (its exporter is nbconvert's HTMLExporter, which
this course configures only with ``SAFE_FILTERS``: markdown and raw HTML through the allowlist below):
- MathJax comes from the installed ``django-static-mathjax`` package (MathJax 3, the SVG build, which needs no font
  files) and is written into the page itself, so a page opened offline, or by a student who received only the HTML
  file, shows formulas instead of raw ``$$...$$``. TeX's ``html`` extension (``\\href``, ``\\style``) is left out,
  as MathJax 2's "Safe" setting did. Without the package the page loads MathJax from its CDN, as stock nbgrader does.
- Markdown renders through ``safe_markdown``: nbconvert's renderer (a cell's attached images inlined), then an
  allowlist of inert tags and attributes (bleach, which nbconvert depends on): no script, frame, form, style or event handler, links only to
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

import jinja2
from nbconvert.exporters import HTMLExporter
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
SAFE_PROTOCOLS = frozenset({"http", "https", "mailto", "data"})  # data: only for inline images
INLINE_IMAGE = ("data:image/png;", "data:image/jpeg;", "data:image/gif;")


def _safe_attribute(tag: str, name: str, value: str) -> bool:
    """Whether an attribute of a rendered markdown tag is kept (bleach then checks link protocols: ``data:`` is
    among them for images, so a link's href may not use it)."""
    if tag == "a" and name == "href":
        return not value.strip().lower().startswith("data:")
    if name in ("class", "title") or (name == "id" and tag[:1] == "h") or (tag == "a" and name == "name"):
        return True
    if tag == "img":
        return name == "alt" or (name == "src" and value.strip().lower().startswith(INLINE_IMAGE))
    return tag in ("th", "td") and name == "align"


OWN_IDS = "user-content-"  # before every id a student's text makes (formgrader finds its score boxes by id)


def safe_html(html: str) -> str:
    """``html`` with only the allowlist's inert tags and attributes; its ids (and the links to them) prefixed with
    ``OWN_IDS``, so that no element a student made takes the id of one of the page's own."""
    import bleach

    cleaned = bleach.clean(str(html), tags=SAFE_TAGS, attributes=_safe_attribute, protocols=SAFE_PROTOCOLS)
    return cleaned.replace(' id="', f' id="{OWN_IDS}').replace(' href="#', f' href="#{OWN_IDS}')


MARKDOWN_CHARACTERS = 100_000  # a markdown cell longer than this is shown as text
MARKDOWN_TABLE_ROWS = 1_000  # and one with more table rows (the allowlist's HTML parser slows down on tables)


def safe_markdown(source: str, attachments: dict | None = None) -> str:
    """Markdown ``source`` as HTML with only inert content: nbconvert's renderer (``attachments``, a cell's
    ``{name: {mime: base64}}``, inlined where the text says ``attachment:name``), then an allowlist (tags not on it
    are escaped, so what was written stays readable). A cell over ``MARKDOWN_CHARACTERS`` or
    ``MARKDOWN_TABLE_ROWS`` is shown as plain text instead, its first characters only."""
    import html as html_module

    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    source = str(source)
    if len(source) <= MARKDOWN_CHARACTERS:
        renderer = IPythonRenderer(escape=False, attachments=dict(attachments or {}))
        html = MarkdownWithMath(renderer=renderer).render(source)
        if html.count("<tr") <= MARKDOWN_TABLE_ROWS:
            return safe_html(html)
    shown = html_module.escape(source[:MARKDOWN_CHARACTERS])
    return (f"<p><em>(a markdown cell of {len(source)} characters, shown as text"
            f"{', cut' if len(source) > MARKDOWN_CHARACTERS else ''})</em></p><pre>{shown}</pre>")


@jinja2.pass_context
def safe_markdown_filter(context, source: str) -> str:
    """``safe_markdown`` as a template filter: the attachments are those of the cell being rendered."""
    cell = context.get("cell") or {}
    attachments = cell.get("attachments") if hasattr(cell, "get") else None
    return safe_markdown(source, attachments if isinstance(attachments, dict) else None)


# What renders a student's markdown and raw HTML, on feedback pages and formgrader's alike.
SAFE_FILTERS = {"markdown2html": safe_markdown_filter, "clean_html": safe_html}


class FeedbackExporter(HTMLExporter):
    """The feedback page's exporter, with the filters its template uses. A class of its own, so that its template
    (set in autograder/nbgrader_config.py on ``FeedbackExporter``: nbgrader's generate_feedback sets
    HTMLExporter's) does not replace formgrader's."""

    export_from_notebook = None  # not offered as an nbconvert format of its own

    def default_filters(self):
        yield from super().default_filters()
        yield from {"mathjax_offline": mathjax_offline, "points": points, "safe_markdown": safe_markdown_filter,
                    **SAFE_FILTERS}.items()


ACTIVE_TAGS = frozenset({"iframe", "frame", "object", "embed", "form", "base", "link", "meta", "applet", "audio",
                         "video", "source", "track", "portal"})
URL_ATTRIBUTES = frozenset({"src", "href", "action", "formaction", "data", "srcset", "poster", "background",
                            "xlink:href", "codebase", "cite", "ping"})


def live_content(page: str, own_scripts: tuple[str, ...] = ()) -> list[str]:
    """Everything in an HTML ``page`` that runs or loads without the reader asking: scripts other than
    ``own_scripts`` (the texts of the page's own), event-handler attributes, ``javascript:`` URLs, URLs loaded from
    elsewhere than the page itself (a link's href may point anywhere: following it is the reader's choice), style
    elements in the body (the template's are in the head) and style attributes with ``url(``, and embedding tags.
    Returns one line per finding, with the value found (empty: the page is inert)."""
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
                    found.append(f"<{tag} {name}={value!r}>"[:200])
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
