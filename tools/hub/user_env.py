"""An environment the hub's users can run: the course's .venv and its Python, hard-linked where users can read them.

The hub starts each user's server as that Unix user, from the course's environment, so that user must be able to
read the environment and its Python. A Python installed under a private home folder (pyenv under /root, for
example) is not readable by the others. ``build(dest)`` then makes ``dest``: every file of .venv, and of the Python
installation it was made from when that is private too, hard-linked (no copy: a few seconds and no disk; hence
``dest`` must be on the same file system), the scripts' first lines pointing at the linked Python. The interpreter
and the packages are the course's own, byte for byte, with one exception: the interpreter's copy finds its
libpython next to itself (a RUNPATH of ``$ORIGIN/../lib`` instead of the original folder, which the users cannot
read).

Usage: python -m tools.hub.user_env DEST   (then start the hub with COURSE_HUB_USER_ENV=DEST)
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

NOBODY = "nobody"


def runnable_by_others(python: Path, user: str = NOBODY) -> bool:
    """True when an unprivileged ``user`` can start ``python`` and import the course's server packages."""
    probe = subprocess.run(["runuser", "-u", user, "--", str(python), "-I", "-c",
                            "import jupyterhub, nbgrader, helpers"], cwd="/", capture_output=True, timeout=120)
    return probe.returncode == 0


def readable_by_others(path: Path, user: str = NOBODY) -> bool:
    """True when an unprivileged ``user`` can read ``path`` (every folder above it included)."""
    return subprocess.run(["runuser", "-u", user, "--", "test", "-r", str(path)], capture_output=True).returncode == 0


def relocatable_runpath(binary: bytes, old: str) -> bytes:
    """``binary`` (an ELF executable) with its RUNPATH ``old`` replaced by ``$ORIGIN/../lib``, padded with NULs to
    the same length (the dynamic string table keeps its size). Unchanged when ``old`` is not in it."""
    needle = old.encode() + b"\0"
    if needle not in binary:
        return binary
    replacement = b"$ORIGIN/../lib"
    if len(replacement) > len(old):
        raise ValueError(f"cannot shorten the RUNPATH {old!r}")
    return binary.replace(needle, replacement + b"\0" * (len(needle) - len(replacement)), 1)


def _link_tree(source: Path, dest: Path) -> None:
    """Hard-link every file of the real folder ``source`` into a new folder ``dest`` (never a link to it: what is
    then changed in ``dest`` must not reach ``source``)."""
    source = source.resolve()
    subprocess.run(["cp", "-al", str(source), str(dest)], check=True)
    if dest.is_symlink() or not dest.is_dir() or dest.resolve() == source:
        raise RuntimeError(f"{dest} is not a new folder")


def _replace(path: Path, data: bytes, mode: int = 0o755) -> None:
    """Write ``data`` as a new file at ``path``: the hard link to the original stays untouched."""
    path.unlink()
    path.write_bytes(data)
    path.chmod(mode)


EDITABLE_HELPERS = re.compile(r"'helpers': '(?P<root>[^']*)/helpers'")


def _point_helpers_at(site_packages: Path, course: Path) -> None:
    """The editable install of ``helpers`` made to import from ``course``/helpers (a readable copy of the course)."""
    for finder in site_packages.glob("__editable__*finder.py"):
        text = finder.read_text()
        match = EDITABLE_HELPERS.search(text)
        if match:
            _replace(finder, text.replace(f"{match['root']}/helpers", f"{course}/helpers").encode(), 0o644)


def build(dest: Path, venv: Path = Path(sys.prefix), course: Path | None = None) -> Path:
    """Make ``dest`` from ``venv`` (see the module's docstring); returns the path of its python.

    ``course``: a copy of the repository the users can read, for when the repository itself is in a private
    folder; the environment's ``helpers`` then imports from there.
    """
    dest, venv = Path(dest).absolute(), venv.resolve()
    if dest == venv or venv in dest.parents:
        raise ValueError(f"{dest} must lie outside {venv}")
    if dest.is_symlink():
        dest.unlink()
    elif dest.exists():
        shutil.rmtree(dest)
    base = Path(sys.base_prefix).resolve()
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    _link_tree(venv, dest)
    interpreter = base / "bin" / f"python{version}"
    if not readable_by_others(interpreter):  # a system Python (/usr) is used as it is
        _link_tree(base, dest / "base-python")
        interpreter = dest / "base-python" / "bin" / f"python{version}"
        _replace(interpreter, relocatable_runpath(interpreter.read_bytes(), str(base / "lib")))
    bin_dir = dest / "bin"
    for name in ("python", "python3", f"python{version}"):
        (bin_dir / name).unlink(missing_ok=True)
        (bin_dir / name).symlink_to(interpreter)
    pythons = {"python", "python3", f"python{version}"}
    for script in bin_dir.iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        with open(script, "rb") as handle:
            first = handle.readline().decode(errors="replace").rstrip()
        shebang = Path(first[2:].strip()) if first.startswith("#!") else None
        if shebang and shebang.name in pythons and shebang.parent.resolve() == venv / "bin":
            text = script.read_bytes()
            _replace(script, f"#!{bin_dir / 'python'}\n".encode() + text[text.index(b"\n") + 1:])
    if course is not None:
        _point_helpers_at(dest / "lib" / f"python{version}" / "site-packages", Path(course).resolve())
    config = (dest / "pyvenv.cfg")
    lines = [line for line in config.read_text().splitlines()
             if not line.startswith(("home", "executable", "command"))]
    _replace(config, "\n".join([f"home = {interpreter.parent}", *lines, f"executable = {interpreter}", ""]).encode(),
             0o644)
    return bin_dir / "python"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__.strip().splitlines()[-1])
    print(build(Path(sys.argv[1])))
