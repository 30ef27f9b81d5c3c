"""The static JupyterLite site (``./course site``): what it holds, and that it loads in a real browser.

The site is built once per session into a scratch folder and served on loopback. In Debian's chromium the
JupyterLab interface loads, the file browser lists every student notebook, and a notebook opens with the Pyodide
kernel. The kernel itself needs Pyodide from its CDN, which the test machines cannot reach (chromium resolves no
host but 127.0.0.1 here): the test goes up to the kernel, and checks that the CDN is the only outside address the
site asks for. The helpers' own Pyodide-readiness (pure Python, no subprocess, threads or file writes) is checked
statically below, and so is Binder's environment (binder/), which must follow the root environment.yml.
"""
from __future__ import annotations

import ast
import json
import re
import threading
import time
import zipfile
from pathlib import Path

import pytest

from test_browser import browser_context, require_browser, screenshot
from tools import site
from tools.bootstrap_cell import WHEEL_NAME
from tools.paths import ROOT

pytestmark = pytest.mark.xdist_group("browser-site")  # one worker builds the site once for the whole module

MAX_SITE_MB = 60  # Pyodide is not inside (about 20 MB of JupyterLab and the kernel); a bundled Pyodide would be 10x
NOTEBOOKS = [p.parent.name for p in site.student_notebooks()]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The site, built from this repository: (output folder, build seconds)."""
    started = time.perf_counter()
    output = site.build(tmp_path_factory.mktemp("site") / "_site", quiet=True)
    return output, time.perf_counter() - started


@pytest.fixture(scope="module")
def served(built):
    """The built site on a loopback HTTP server: its base URL."""
    server = site.serve(built[0])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_site_holds_every_student_notebook_with_the_pyodide_kernelspec(built):
    output, _ = built
    assert NOTEBOOKS, "no student notebooks in notebooks/"
    for name in NOTEBOOKS:
        original = json.loads((ROOT / "notebooks" / name / f"{name}.ipynb").read_text())
        served_copy = json.loads((output / "files" / name / f"{name}.ipynb").read_text())
        assert served_copy["metadata"]["kernelspec"] == site.KERNELSPEC
        assert served_copy["cells"] == original["cells"], f"{name}: the site changed more than the kernelspec"
    listed = {entry["name"] for entry in json.loads((output / "api" / "contents" / "all.json").read_text())["content"]}
    assert set(NOTEBOOKS) | {"README.md", "data"} <= listed


def test_site_serves_the_helpers_wheel_with_its_data(built):
    output, _ = built
    index = json.loads((output / "pypi" / "all.json").read_text())
    assert WHEEL_NAME in index, f"the bootstrap cell installs {WHEEL_NAME!r}, the site's index has {list(index)}"
    wheels = list((output / "pypi").glob("*.whl"))
    assert len(wheels) == 1
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    for path in ("helpers/__init__.py", "helpers/selfcheck.py", "helpers/data/wine.csv", "helpers/data/digits.csv"):
        assert path in names, f"{path} is not in {wheels[0].name}"
    config = json.loads((output / "jupyter-lite.json").read_text())["jupyter-config-data"]
    urls = config["litePluginSettings"]["@jupyterlite/pyodide-kernel-extension:kernel"]["pipliteUrls"]
    assert any(url.startswith("./pypi/all.json") for url in urls), urls


def test_site_has_no_source_maps_and_no_pyodide_inside(built):
    output, seconds = built
    size, count = site.site_size(output)
    assert not list(output.rglob("*.map")), "source maps in the site (build with --no-sourcemaps)"
    assert not (output / "static" / "pyodide").exists(), "Pyodide was bundled; the site should load it from the CDN"
    assert size < MAX_SITE_MB * 1e6, f"the site is {size / 1e6:.1f} MB"
    print(f"site: {size / 1e6:.1f} MB in {count} files, built in {seconds:.0f} s")


def test_landing_readme_says_where_to_start_and_what_comes_from_the_cdn(built):
    text = (built[0] / "files" / "README.md").read_text()
    assert f"Start here: open the folder `{NOTEBOOKS[0]}`" in text
    for name in NOTEBOOKS:
        assert f"]({name}/{name}.ipynb)" in text
    for phrase in ("Pyodide's CDN", "Run the first code cell first", "selfcheck.report()", "Hidden tests",
                   "download it"):
        assert phrase in text


FORBIDDEN_MODULES = {"subprocess", "threading", "multiprocessing", "concurrent", "socket", "asyncio", "ctypes",
                     "signal", "resource", "urllib", "http", "requests", "tempfile", "shutil"}
WRITING_CALLS = {"write_text", "write_bytes", "savefig", "mkdir", "unlink", "rmdir", "rename", "touch", "savetxt",
                 "save", "savez", "system", "popen"}


@pytest.mark.parametrize("module", sorted(p.name for p in (ROOT / "helpers").glob("*.py")))
def test_helpers_run_under_pyodide(module):
    """Pure Python on numpy and matplotlib: no subprocess, threads, network or file writes (a browser tab has none)."""
    tree = ast.parse((ROOT / "helpers" / module).read_text(), filename=module)
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += [a.name for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            if (node.module or "").split(".")[0] in FORBIDDEN_MODULES:
                problems.append(node.module)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in WRITING_CALLS:
                problems.append(f"{name}() on line {node.lineno}")
            if name == "open":
                modes = [a.value for a in node.args[1:2] + [k.value for k in node.keywords if k.arg == "mode"]
                         if isinstance(a, ast.Constant)]
                if any(set(str(m)) & set("wax+") for m in modes):
                    problems.append(f"open(..., {modes[0]!r}) on line {node.lineno}")
    assert not problems, f"helpers/{module} would not work in the browser kernel: {problems}"


def test_site_loads_in_the_browser_and_lists_every_notebook(served, tmp_path):
    require_browser()
    outside = []
    with browser_context(tmp_path / "profile") as context:
        context.on("request", lambda request: outside.append(request.url)
                   if not re.match(r"^(https?|wss?)://127\.0\.0\.1[:/]|^(data|blob):", request.url) else None)
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(f"{served}/lab/index.html?path=README.md")

        # The interface, with README.md rendered (Markdown Preview is the site's default viewer).
        page.locator(".jp-RenderedMarkdown h1", has_text="in your browser").wait_for()
        listing = page.locator(".jp-DirListing-content .jp-DirListing-itemName")
        listing.filter(has_text=NOTEBOOKS[-1]).wait_for()
        names = set(listing.all_inner_texts())
        assert set(NOTEBOOKS) | {"README.md", "data"} <= names, names
        screenshot(page, "site-1-landing")

        # Every notebook is in its folder.
        for name in NOTEBOOKS:
            listing.filter(has_text=re.compile(rf"^{re.escape(name)}$")).dblclick()
            listing.filter(has_text=f"{name}.ipynb").wait_for()
            page.locator(".jp-FileBrowser .jp-BreadCrumbs-home").click()
            listing.filter(has_text="README.md").wait_for()

        # A notebook opens with the Pyodide kernel; the kernel then asks the CDN for Pyodide (unreachable here).
        page.goto(f"{served}/lab/index.html?path={NOTEBOOKS[0]}/{NOTEBOOKS[0]}.ipynb")
        page.locator(".jp-Notebook .jp-RenderedMarkdown h1").first.wait_for()
        page.locator(".jp-Toolbar-kernelName", has_text="Python (Pyodide)").first.wait_for()
        code = page.locator(".jp-Notebook .jp-CodeCell .cm-content").first.inner_text()
        assert "piplite.install" in code, "the first code cell is not the bootstrap cell"
        deadline = time.monotonic() + 30
        while not any("/pyodide" in url for url in outside) and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        screenshot(page, "site-2-notebook")
    cdn = f"https://cdn.jsdelivr.net/pyodide/v{site.pyodide_version()}/full/"
    assert any(url.startswith(cdn) for url in outside), f"the kernel never asked for Pyodide: {outside}"
    assert all(url.startswith(cdn) for url in outside), f"the site asks for more than Pyodide's CDN: {outside}"


def test_every_page_loads_the_pyodide_check_with_the_cdn_and_the_alternatives(built):
    output, _ = built
    script = (output / "course" / "pyodide-check.js").read_text()
    assert json.dumps(site.pyodide_cdn_url()) in script and not re.search(r"__[A-Z_]+__", script)
    assert f"TIMEOUT_SECONDS = {site.PYODIDE_CHECK_SECONDS}" in script
    for phrase in ("Binder", "<code>./course start</code>", "offline build", f"pyodide-{site.pyodide_version()}"):
        assert phrase in script, phrase
    for app in ("lab", "notebooks", "tree"):
        assert '<script src="../course/pyodide-check.js"></script>' in (output / app / "index.html").read_text(), app


def test_with_the_repository_the_note_links_to_its_binder_and_clone():
    text = site.alternatives_html("someone/course")
    assert 'href="https://mybinder.org/v2/gh/someone/course/HEAD?urlpath=lab/tree/work"' in text
    assert 'href="https://github.com/someone/course"' in text
    assert "the link is in the course's README" in site.alternatives_html(None)
    workflow = (ROOT / ".github" / "workflows" / "pages.yml").read_text()
    assert '--repository "${{ github.repository }}"' in workflow


NOTE = ".course-pyodide-unavailable"


def test_a_blocked_cdn_is_explained_in_the_notebook_within_30_s(served, tmp_path):
    """Chromium resolves no host but loopback here, as a network that blocks the CDN: the notebook says why its
    cells cannot run and what to use instead, in JupyterLab and in the Notebook interface; where the CDN answers
    (simulated), no note."""
    require_browser()
    with browser_context(tmp_path / "profile") as context:
        page = context.pages[0] if context.pages else context.new_page()
        for app, name in (("lab", "site-3-cdn-blocked-lab"), ("notebooks", "site-4-cdn-blocked-notebook")):
            started = time.monotonic()
            page.goto(f"{served}/{app}/index.html?path={NOTEBOOKS[0]}/{NOTEBOOKS[0]}.ipynb")
            note = page.locator(f".jp-NotebookPanel {NOTE}")
            note.wait_for(timeout=30_000)
            assert time.monotonic() - started < 30
            text = note.inner_text()
            for phrase in ("Python cannot start in this browser tab", "cdn.jsdelivr.net", "could not be reached",
                           "Binder", "./course start", "offline build"):
                assert phrase in text, (phrase, text)
            box = note.bounding_box()
            first_cell = page.locator(".jp-NotebookPanel .jp-Cell").first.bounding_box()
            assert box and first_cell and box["height"] > 40 and box["y"] < first_cell["y"], "above the first cell"
            screenshot(page, name)

    with browser_context(tmp_path / "profile-cdn") as context:
        context.route("https://cdn.jsdelivr.net/**", lambda route: route.fulfill(status=200, body=""))
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(f"{served}/lab/index.html?path={NOTEBOOKS[0]}/{NOTEBOOKS[0]}.ipynb")
        page.locator(".jp-Notebook .jp-RenderedMarkdown h1").first.wait_for()
        page.wait_for_timeout(5000)
        assert page.locator(NOTE).count() == 0, "a note although the CDN answered"


def _conda_dependencies(path: Path) -> list[str]:
    return [line.strip()[2:] for line in path.read_text().splitlines() if re.match(r"^  - [A-Za-z][^:]*$", line)]


def test_binder_installs_the_root_environment_with_an_exact_python_and_the_helpers():
    root = _conda_dependencies(ROOT / "environment.yml")
    binder = _conda_dependencies(ROOT / "binder" / "environment.yml")
    assert "python=3.11" in binder, "repo2docker needs an exact python=X.Y (it ignores python>=3.11)"
    assert [d for d in binder if not d.startswith("python")] == [d for d in root if not d.startswith("python")]
    post_build = ROOT / "binder" / "postBuild"
    assert post_build.stat().st_mode & 0o111, "binder/postBuild must be executable"
    assert "pip install --no-deps" in post_build.read_text() and " -e ." in post_build.read_text()
