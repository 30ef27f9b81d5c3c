"""Execute a notebook top to bottom in a fresh kernel, and read what its cells printed."""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

PEAK_MEMORY_PROBE = (
    "import resource as _r, sys as _s\n"
    "_kb = _r.getrusage(_r.RUSAGE_SELF).ru_maxrss\n"
    "print('PEAK_RSS_MB', _kb / (1024 * 1024) if _s.platform == 'darwin' else _kb / 1024)"
)


def execute(path: Path, timeout: int = 120, allow_errors: bool = False, probe_memory: bool = False):
    """Run every cell of the notebook at ``path`` in a new python3 kernel, in the notebook's folder.

    Returns the executed notebook (nbformat node); the file on disk is not changed. With ``probe_memory`` a last
    cell prints the kernel's peak resident memory; read it with ``peak_memory_mb``.
    """
    nb = nbformat.read(path, as_version=4)
    if probe_memory:
        nb.cells.append(nbformat.v4.new_code_cell(PEAK_MEMORY_PROBE))
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(Path(path).parent)}})
    client.execute()
    return nb


def stream_text(nb, name: str) -> list[tuple[int, str]]:
    """(cell index, text) of every ``name`` stream output ("stdout" or "stderr")."""
    return [(i, out["text"]) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.get("output_type") == "stream" and out.get("name") == name]


def errors(nb) -> list[tuple[int, str, str]]:
    """(cell index, exception name, message) of every cell that raised."""
    return [(i, out["ename"], out["evalue"]) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.get("output_type") == "error"]


def count_images(nb) -> int:
    """How many PNG images the notebook's cells displayed."""
    return sum("image/png" in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
               for out in cell.get("outputs", []))


def peak_memory_mb(nb) -> float:
    """The kernel's peak resident memory in MB, as printed by the probe cell of ``execute(probe_memory=True)``."""
    for _, text in stream_text(nb, "stdout"):
        if text.startswith("PEAK_RSS_MB"):
            return float(text.split()[1])
    raise ValueError("the notebook was not executed with probe_memory=True")
