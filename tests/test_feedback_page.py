"""The feedback page renders markdown inertly and the scan for live content finds each kind of it.

The pages themselves, with a hostile submission's active content, are checked by tests/test_grading.py and
tests/test_hostile_stock.py; these tests are the units under them.
"""
from __future__ import annotations

import json

import pytest
from nbconvert.filters.markdown import markdown2html

from autograder.feedback_page import OWN_IDS, live_content, own_scripts, safe_html, safe_markdown
from tools.paths import ROOT


def _course_markdown():
    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                yield path.stem, "".join(cell["source"])


def test_course_markdown_renders_as_it_would_without_the_allowlist():
    """Every markdown cell of the course comes out as nbconvert renders it (the allowlist writes ``<hr>``, not
    ``<hr />``)."""
    changed = [(name, source[:60]) for name, source in _course_markdown()
               if safe_markdown(source) != markdown2html(source).replace(" />", ">").replace(' id="', f' id="{OWN_IDS}')
               .replace(' href="#', f' href="#{OWN_IDS}')]
    assert not changed, changed[:3]


@pytest.mark.parametrize("source, gone", [
    ("![t](https://evil.example/t.png)", "https://evil.example"),
    ("[c](javascript:alert(1))", "javascript:"),
    ("[r][1]\n\n[1]: javascript:alert(1)", "javascript:"),
    ("<img src=x onerror=alert(1)>", "onerror"),
    ("<script>alert(1)</script>", "<script"),
    ("<iframe src='https://evil.example'></iframe>", "<iframe"),
    ("<a href='https://ok.example' onclick='alert(1)'>x</a>", "onclick="),
    ("[d](data:text/html;base64,PHNjcmlwdD4=)", "data:"),
    ("<img src='data:image/svg+xml;base64,PHN2Zz4='>", "data:"),
])
def test_safe_markdown_keeps_nothing_live(source, gone):
    rendered = safe_markdown(source)
    assert gone not in rendered, rendered
    assert not live_content("<body>" + rendered)


def test_safe_markdown_keeps_formatting_links_and_maths():
    rendered = safe_markdown("**b** *i* `c` [paper](https://arxiv.org/abs/1502.03167) $\\eta < 2/\\lambda$\n\n"
                             "| a | b |\n|---|---|\n| 1 | 2 |")
    for kept in ("<strong>b</strong>", "<em>i</em>", "<code>c</code>", 'href="https://arxiv.org/abs/1502.03167"',
                 "$\\eta &lt; 2/\\lambda$", "<td>1</td>"):
        assert kept in rendered, (kept, rendered)


def test_safe_markdown_inlines_a_cells_attached_image_and_drops_an_attached_script():
    attachments = {"plot.png": {"image/png": "iVBORw0KGgo="}, "x.svg": {"image/svg+xml": "PHN2Zz4="}}
    rendered = safe_markdown("![my plot](attachment:plot.png) ![s](attachment:x.svg)", attachments)
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in rendered, rendered
    assert "data:image/svg" not in rendered, rendered  # an SVG may carry scripts
    assert not live_content("<body>" + rendered)


def test_no_element_a_student_makes_takes_an_id_of_the_page():
    """Formgrader finds each score box by the grade id: a heading or raw HTML of that id must not capture it."""
    for rendered in (safe_markdown('<h6 id="steps_to_converge">x</h6>\n\n## steps_to_converge\n\n[a](#b)'),
                     safe_html('<div id="steps_to_converge"><h6 id="steps_to_converge">x</h6><a href="#b">a</a>')):
        assert ' id="steps_to_converge"' not in rendered and f'id="{OWN_IDS}steps_to_converge"' in rendered, rendered
        assert f'href="#{OWN_IDS}b"' in rendered, rendered


def test_the_feedback_template_is_set_for_feedback_only():
    """Formgrader renders with an HTMLExporter of the course's configuration and its own template: the feedback
    page's template is set on FeedbackExporter, and both render markdown through the allowlist."""
    from nbconvert.exporters import HTMLExporter
    from traitlets.config import PyFileConfigLoader

    from autograder.feedback_page import TEMPLATE_NAME, FeedbackExporter, safe_markdown_filter
    from tools.paths import ROOT

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    assert HTMLExporter(config=config).template_name != TEMPLATE_NAME
    assert FeedbackExporter(config=config).template_name == TEMPLATE_NAME
    for exporter in (HTMLExporter(config=config), FeedbackExporter(config=config)):
        assert exporter.environment.filters["markdown2html"] is safe_markdown_filter
        assert exporter.environment.filters["clean_html"] is safe_html


@pytest.mark.parametrize("page", [
    "<body><script>alert(1)</script>", "<body><script src='https://evil.example/x.js'></script>",
    "<body><p onclick='x()'>", "<body><img src='https://evil.example/t.png'>", "<body><a href='javascript:x()'>a</a>",
    "<body><a href=' JaVaScRiPt:x()'>a</a>", "<body><iframe></iframe>", "<body><style>p {}</style>",
    "<body><p style='background: url(https://evil.example)'>", "<head><meta http-equiv='refresh' content='0'></head>",
    "<body><svg><image href='https://evil.example/x.png'/></svg>",
])
def test_live_content_finds_each_kind(page):
    assert live_content(page, own_scripts())


def test_the_pages_own_scripts_and_inert_content_pass():
    scripts = "".join(f"<script>\n{text}\n</script>" for text in own_scripts())
    page = (f"<html><head><meta charset='utf-8'><style>p {{}}</style>{scripts}</head><body><a href='#top'>t</a>"
            "<a href='https://arxiv.org'>p</a><img src='data:image/png;base64,iVBORw0KGgo='></body></html>")
    assert own_scripts() and not live_content(page, own_scripts())
