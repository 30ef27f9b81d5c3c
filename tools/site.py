"""Build the course's static JupyterLite site: the student notebooks, running in the browser with nothing installed.

Usage: python -m tools.site [--output DIR] [--pyodide TARBALL_OR_URL] [--repository OWNER/NAME] [--serve [PORT]]
(``./course site`` runs it). The site (default ``_site/``) holds:
- every student notebook ``notebooks/<id>/<id>.ipynb``, its kernelspec rewritten for the Pyodide kernel;
- the helpers package as a wheel (built from this repository, data files inside), served by the site itself and
  installed by each notebook's first cell with ``piplite``;
- ``data/`` (the data files and their provenance, to read) and a ``README.md`` that says where to start;
- JupyterLab and the Notebook interface (jupyterlite-core) with the Pyodide kernel (jupyterlite-pyodide-kernel),
  built without source maps.
Pyodide itself and its numpy and matplotlib are *not* in the site: the browser loads them from Pyodide's CDN when
a learner starts a kernel. Where that CDN is blocked, the kernel would just never start; so every page gets
``course/pyodide-check.js`` (from tools/pyodide-check.js), which asks the CDN for Pyodide as soon as a notebook is
open and, when it does not answer within ``PYODIDE_CHECK_SECONDS``, shows at the top of the notebook why its cells
cannot run and what to use instead (Binder, ``./course start``, the offline build). ``--repository OWNER/NAME``
(the GitHub Pages workflow passes it) makes those links point at the course's repository and its Binder.
For a fully offline site pass ``--pyodide`` a full Pyodide release tarball (the version jupyterlite-pyodide-kernel
expects, see ``PYODIDE_VERSION``); it is then copied into the site (and the CDN check is left out).
"""
from __future__ import annotations

import argparse
import copy
import functools
import html
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.bootstrap_cell import WHEEL_NAME
from tools.paths import ROOT

OUTPUT = ROOT / "_site"
KERNELSPEC = {"name": "python", "display_name": "Python (Pyodide)", "language": "python"}
APPS = ("lab", "notebooks", "tree")  # JupyterLab, the single-notebook interface, and its file browser
WHEEL_SOURCES = ("pyproject.toml", "README.md", "helpers")
PYODIDE_CHECK = ROOT / "tools" / "pyodide-check.js"
PYODIDE_CHECK_SECONDS = 15  # the CDN answers a HEAD request in well under a second where it is reachable
SETTINGS = {  # JupyterLab settings of the site: README.md opens rendered; no news or update pop-ups
    "@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"markdown": "Markdown Preview"}},
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}


def pyodide_version() -> str:
    """The Pyodide release the pinned jupyterlite-pyodide-kernel loads (from the CDN unless --pyodide is given)."""
    from jupyterlite_pyodide_kernel.constants import PYODIDE_VERSION

    return PYODIDE_VERSION


def pyodide_cdn_url() -> str:
    """Pyodide's entry point on its CDN, as the pinned kernel loads it."""
    return f"https://cdn.jsdelivr.net/pyodide/v{pyodide_version()}/full/pyodide.mjs"


def binder_url(repository: str) -> str:
    """Binder on the course's repository, opening JupyterLab on the working copy (binder/postBuild makes it)."""
    return f"https://mybinder.org/v2/gh/{repository}/HEAD?urlpath=lab/tree/work"


def alternatives_html(repository: str | None = None) -> str:
    """The list items of what to do where Pyodide cannot be fetched: Binder, ./course start, the offline build."""
    if repository:
        repo = f"https://github.com/{repository}"
        binder = (f'<a href="{html.escape(binder_url(repository))}" target="_blank" rel="noopener">the course on '
                  "Binder</a>: a Jupyter server in the cloud, nothing to install (mybinder.org must be reachable);")
        clone = f'clone <a href="{html.escape(repo)}" target="_blank" rel="noopener">{html.escape(repo)}</a>'
    else:
        binder = "the course on Binder (mybinder.org; the link is in the course's README): nothing to install;"
        clone = "clone the course's repository"
    return "".join(f"<li>{item}</li>" for item in (
        binder,
        f"on your own computer: {clone} and run <code>./course start</code> (Python 3.11 or newer);",
        "the offline build of this site, which carries Python inside and needs no CDN (ask your instructor, or "
        f"build it: <code>./course site --pyodide pyodide-{pyodide_version()}.tar.bz2</code>).",
    ))


def add_pyodide_check(output: Path, repository: str | None = None, url: str | None = None,
                      timeout: float = PYODIDE_CHECK_SECONDS) -> list[Path]:
    """Write course/pyodide-check.js into the built site and load it from every HTML page; returns the pages."""
    script = (PYODIDE_CHECK.read_text(encoding="utf-8")
              .replace('"__PYODIDE_URL__"', json.dumps(url or pyodide_cdn_url()))
              .replace("__TIMEOUT_SECONDS__", f"{timeout:g}")
              .replace('"__ALTERNATIVES__"', json.dumps(alternatives_html(repository))))
    target = output / "course" / "pyodide-check.js"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(script, encoding="utf-8")
    pages = []
    for page in sorted(output.rglob("*.html")):
        if page.relative_to(output).parts[0] in ("build", "extensions", "files", "course"):
            continue
        text = page.read_text(encoding="utf-8")
        if "</body>" not in text or "pyodide-check.js" in text:
            continue
        src = os.path.relpath(target, page.parent).replace(os.sep, "/")
        page.write_text(text.replace("</body>", f'<script src="{src}"></script>\n</body>', 1), encoding="utf-8")
        pages.append(page)
    return pages


def student_notebooks(root: Path = ROOT) -> list[Path]:
    """notebooks/<id>/<id>.ipynb for every assignment released so far, in course order."""
    return sorted(p for p in (root / "notebooks").glob("*/*.ipynb") if p.stem == p.parent.name)


def build_wheel(destination: Path, root: Path = ROOT) -> Path:
    """``pip wheel --no-deps`` of the helpers package, from a clean copy of its sources; returns the wheel."""
    with tempfile.TemporaryDirectory(prefix="course-wheel-") as scratch:
        source = Path(scratch) / "src"
        source.mkdir()
        for name in (*WHEEL_SOURCES, *(p.name for p in root.glob("LICEN[CS]E*"))):
            path = root / name
            if path.is_dir():
                shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            elif path.is_file():
                shutil.copy2(path, source / name)
        destination.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check",
                                 "-w", str(destination), str(source)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"building the helpers wheel failed:\n{result.stdout}\n{result.stderr}")
    wheels = sorted(destination.glob(f"{WHEEL_NAME.replace('-', '_')}-*-py3-none-any.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one helpers wheel in {destination}, found {[w.name for w in wheels]}")
    return wheels[0]


def for_pyodide(path: Path) -> dict:
    """The notebook at ``path`` as JSON, with the Pyodide kernel's kernelspec."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb.setdefault("metadata", {})["kernelspec"] = copy.deepcopy(KERNELSPEC)
    return nb


def _title(nb: dict, fallback: str) -> str:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            for line in source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def landing_readme(titles: dict[str, str]) -> str:
    """The README.md at the site's root: where to start, and what runs where."""
    rows = "\n".join(f"| [{name}]({name}/{name}.ipynb) | {title} |" for name, title in titles.items())
    first = next(iter(titles), "01-learning-rate")
    return f"""# Normalization in deep learning, in your browser

Start here: open the folder `{first}` in the file browser on the left, then `{first}.ipynb` (double-click).
Work through the notebooks in order; each one ends by naming the problem the next one solves.

| notebook | title |
|---|---|
{rows}

## How it works

- Everything runs in this browser tab: Python is [Pyodide](https://pyodide.org) (Python compiled to WebAssembly).
  Nothing is installed on your computer and nothing you write is sent to a server.
- The first time a notebook starts its kernel, the browser downloads Pyodide {pyodide_version()} and its numpy and
  matplotlib from Pyodide's CDN (cdn.jsdelivr.net), some tens of MB; later visits use the browser's cache.
  The course's own `helpers` package comes from this site (`pypi/`).
- Where that CDN is blocked (some school networks) or you are offline, a red note at the top of the notebook says
  so within seconds, and what to use instead: Binder, `./course start` on your own computer, or the offline
  build of this site.
- **Run the first code cell first**: it installs `helpers` into the kernel (a few seconds).
- Fill in the cells that say `# YOUR CODE HERE` (remove the `raise NotImplementedError()` line) and run the check
  cell below each exercise: a failing check says what was expected and which common mistake it looks like.
- `selfcheck.report()` in any cell prints your score so far on the visible checks, one row per check.
  Hidden tests (random cases the grader adds) are not included, and written answers are graded by your instructor.
- Your edits are kept in this browser's storage only (not on a server, not in other browsers). To keep or submit a
  notebook, download it: right-click it in the file browser, then *Download*. Clearing the site's data deletes it.

The data sets (UCI Wine, UCI optical digits; CC BY 4.0) are in `data/` with their provenance.
To run the course on your own computer instead, clone its repository and run `./course start`.
"""


def prepare_contents(content: Path, root: Path = ROOT) -> list[str]:
    """Fill ``content`` (the site's files): notebooks for Pyodide, data, README. Returns the notebook ids."""
    titles = {}
    for path in student_notebooks(root):
        nb = for_pyodide(path)
        target = content / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        titles[path.parent.name] = _title(nb, path.parent.name)
    data = content / "data"
    data.mkdir(parents=True, exist_ok=True)
    for path in sorted((root / "helpers" / "data").iterdir()):
        if path.is_file() and path.suffix in (".csv", ".md"):
            shutil.copy2(path, data / path.name)
    (content / "README.md").write_text(landing_readme(titles), encoding="utf-8")
    return list(titles)


def site_size(output: Path) -> tuple[int, int]:
    """(bytes, files) of the built site."""
    files = [p for p in output.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def _clear(output: Path) -> None:
    if output.exists():
        if any(output.iterdir()) and not (output / "jupyter-lite.json").is_file():
            raise RuntimeError(f"{output} exists and is not a JupyterLite site; refusing to delete it")
        shutil.rmtree(output)


def build(output: Path = OUTPUT, root: Path = ROOT, pyodide: str | None = None, quiet: bool = False,
          repository: str | None = None) -> Path:
    """Build the site into ``output`` (replacing a previous site there); returns ``output``.

    repository: ``OWNER/NAME`` on GitHub, for the links of the note shown where Pyodide's CDN is unreachable.
    """
    output = Path(output).resolve()
    _clear(output)
    say = (lambda *a: None) if quiet else functools.partial(print, file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="course-site-") as scratch:
        lite = Path(scratch) / "lite"
        say("site: building the helpers wheel")
        wheel = build_wheel(Path(scratch) / "wheels", root)
        ids = prepare_contents(lite / "content", root)
        (lite / "jupyter-lite.json").write_text(json.dumps({
            "jupyter-lite-schema-version": 0,
            "jupyter-config-data": {"appName": "Normalization in deep learning"},
        }, indent=2) + "\n")
        (lite / "overrides.json").write_text(json.dumps(SETTINGS, indent=2) + "\n")
        command = [sys.executable, "-m", "jupyterlite_core", "build",
                   "--lite-dir", str(lite), "--contents", str(lite / "content"), "--output-dir", str(output),
                   "--settings-overrides", str(lite / "overrides.json"),
                   "--no-sourcemaps", "--no-libarchive", "--no-unused-shared-packages",
                   *(arg for app in APPS for arg in ("--apps", app)),
                   # only the Pyodide kernel's extension: not the server-side ones of this environment (nbgrader)
                   "--ignore-sys-prefix", f"--LiteBuildConfig.federated_extensions={_pyodide_kernel_extension()}",
                   "--piplite-wheels", str(wheel)]
        if pyodide:  # a local tarball (relative to where the command was started) or a URL
            command += ["--pyodide", str(Path(pyodide).resolve()) if Path(pyodide).exists() else pyodide]
        say(f"site: jupyter lite build ({len(ids)} notebooks: {', '.join(ids)})")
        result = subprocess.run(command, cwd=lite, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"jupyter lite build failed:\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}")
    if not pyodide:  # Pyodide comes from the CDN: say so in the notebook where it cannot be fetched
        add_pyodide_check(output, repository)
    return output


def _pyodide_kernel_extension() -> Path:
    """The Pyodide kernel's prebuilt JupyterLab extension, as installed by jupyterlite-pyodide-kernel."""
    for prefix in (Path(sys.prefix), Path(sys.base_prefix)):
        path = prefix / "share" / "jupyter" / "labextensions" / "@jupyterlite" / "pyodide-kernel-extension"
        if (path / "package.json").is_file():
            return path
    raise RuntimeError("jupyterlite-pyodide-kernel's extension is not installed (pip install -e '.[course,dev]')")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".js": "application/javascript", ".mjs": "application/javascript", ".wasm": "application/wasm",
                      ".json": "application/json", ".whl": "application/octet-stream"}

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
        pass


def serve(directory: Path, port: int = 0, host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``directory`` on loopback (port 0: a free one); call ``serve_forever`` or run it in a
    thread, and ``shutdown`` it after use. The URL is ``f"http://{host}:{server.server_address[1]}/"``."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    return http.server.ThreadingHTTPServer((host, port), handler)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where to build the site (default: _site/)")
    parser.add_argument("--pyodide", help="a full Pyodide release tarball (path or URL) to put into the site, "
                                          "for a site that works offline")
    parser.add_argument("--repository", metavar="OWNER/NAME",
                        help="the course's GitHub repository, for the Binder and clone links of the site")
    parser.add_argument("--serve", nargs="?", const=8000, type=int, metavar="PORT",
                        help="after building, serve the site on http://127.0.0.1:PORT/ (default 8000)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    output = build(args.output, pyodide=args.pyodide, repository=args.repository)
    size, count = site_size(output)
    where = output.relative_to(ROOT) if output.is_relative_to(ROOT) else output
    cdn = "Pyodide inside" if args.pyodide else f"Pyodide {pyodide_version()} and numpy/matplotlib load from its CDN"
    print(f"site: {where}/ built in {time.perf_counter() - started:.0f} s: {size / 1e6:.1f} MB in {count} files "
          f"({len(student_notebooks())} notebooks; {cdn})")
    if args.serve is not None:
        server = serve(output, args.serve)
        print(f"site: serving on http://127.0.0.1:{server.server_address[1]}/lab/index.html?path=README.md "
              "(Ctrl-C stops it)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
