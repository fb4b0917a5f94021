"""Execute every notebook with its own parameters and write it, outputs included, to docs/notebooks/.

The notebooks in notebooks/ are committed without outputs; the copies in
docs/notebooks/ can be read without running anything (GitHub renders them).
Run it after changing a notebook: ``.venv/bin/python scripts/render_notebooks.py [NAME ...]``.
tests/test_notebooks.py checks that each copy is under 1 MB and has the
source of its notebook.
"""

import sys
import time
from pathlib import Path

import nbclient
import nbformat

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 1_000_000  # bytes per rendered notebook


def render(name: str) -> Path:
    """Execute ``notebooks/name`` in the notebooks folder and write ``docs/notebooks/name``."""
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    start = time.perf_counter()
    nbclient.NotebookClient(
        nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}
    ).execute()
    for cell in nb.cells:  # the kernel's interpreter path says nothing about the notebook
        cell.metadata.pop("execution", None)
    out = ROOT / "docs" / "notebooks" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    size = out.stat().st_size
    print(f"{name}: {time.perf_counter() - start:.0f} s, {size / 1e3:.0f} kB")
    if size > LIMIT:
        raise SystemExit(f"{out} is {size} bytes, over the {LIMIT} limit: lower the notebook's figure dpi or count.")
    return out


if __name__ == "__main__":
    names = sys.argv[1:] or sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    for n in names:
        render(n)
