"""The notebooks run top to bottom with small parameters; a failing cell fails the test.

Each notebook's first code cell is tagged ``parameters``; the tests replace its
source with the values in ``SMALL`` and execute the notebook with nbclient in
the notebooks folder, as Jupyter would, on the interpreter running the tests.
"""

import ast
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

# Small settings: about a minute per notebook on a 2-core CPU.
SMALL = {
    "01_quickstart.ipynb": {
        "WIDTH": 32,
        "SPARSITY": 0.9,
        "DISTRIBUTION": "uniform",
        "STEPS": 200,
        "LOG_EVERY": 20,
        "DELTA_T": 40,
        "SEED": 0,
    },
    "02_topology.ipynb": {
        "WIDTHS": (32, 64),
        "SPARSITIES": (0.9, 0.99),
        "FIXED_WIDTH": 64,
        "FIXED_SPARSITY": 0.9,
        "DEPTH": 2,
        "SEED": 0,
    },
    "03_results.ipynb": {
        "RESULTS_DIR": None,
        "SWEEP_METHODS": ("static", "tar"),  # one compiled group; the notebook's own default adds set
        # tests/test_sweep.py's sweep shape, so the programs come from the compilation cache.
        "SWEEP_SEEDS": 2,
        "SWEEP_STEPS": 4000,
        "SWEEP_CHUNK": 1000,
        "SWEEP_HIDDEN": (16, 16),
    },
}


def parameters_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook's one code cell tagged ``parameters``."""
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged 'parameters', found {len(cells)}"
    return cells[0]


def assigned_names(source: str) -> set[str]:
    """Names assigned at the top level of ``source``."""
    return {t.id for node in ast.parse(source).body if isinstance(node, ast.Assign) for t in node.targets}


def execute(name: str, overrides: dict) -> nbformat.NotebookNode:
    """Run notebook ``name`` with its parameters cell replaced by ``overrides``; return it with outputs."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    parameters_cell(nb).source = "\n".join(f"{k} = {v!r}" for k, v in overrides.items())
    # Last cell: which interpreter the kernel runs on.
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()
    return nb


def outputs(nb: nbformat.NotebookNode, output_type: str | None = None) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if output_type in (None, o.output_type)]


def test_every_notebook_has_small_settings():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_committed_notebook_is_stripped_and_parametrized(name):
    path = NOTEBOOKS / name
    assert path.stat().st_size < 1_000_000
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit notebooks without outputs"
    cell = parameters_cell(nb)
    assert cell is code[0], "the parameters cell must be the first code cell"
    # The overrides replace the cell, so they must set exactly the names it defines.
    assert assigned_names(cell.source) == set(SMALL[name])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMALL))
def test_notebook_runs(name):
    nb = execute(name, SMALL[name])
    assert not outputs(nb, "error")
    assert nb.cells[-1].outputs[0].text.strip() == sys.executable
    images = [o for o in outputs(nb) if "image/png" in o.get("data", {})]
    tables = [o for o in outputs(nb) if "text/markdown" in o.get("data", {})]
    assert images and tables
    text = "".join(o.data["text/markdown"] for o in tables)
    if name == "01_quickstart.ipynb":
        # Pruned weights stay exactly 0 under every transform: dense, static, tar, set, rigl and gmp.
        assert text.count("| True |") == 6 and "| False |" not in text
    if name == "03_results.ipynb":
        for method in SMALL[name]["SWEEP_METHODS"]:
            assert f"| {method} |" in text
        assert "vs best of SET/RigL" in text
        assert "| probe_bandit | sac | 0.9 | static | 0 (0.00) | 0 (0.00) |" in text  # fixed masks change nothing
        assert len(images) >= 4  # curves, final returns, gains, diagnostics


@pytest.mark.parametrize("name", sorted(SMALL))
def test_rendered_copy_has_outputs_and_the_notebooks_source(name):
    """docs/notebooks/ holds each notebook run with its own parameters (scripts/render_notebooks.py), under 1 MB."""
    rendered = ROOT / "docs" / "notebooks" / name
    assert rendered.stat().st_size < 1_000_000
    copy, source = nbformat.read(rendered, as_version=4), nbformat.read(NOTEBOOKS / name, as_version=4)
    assert [(c.cell_type, c.source) for c in copy.cells] == [(c.cell_type, c.source) for c in source.cells], (
        "docs/notebooks is stale: run scripts/render_notebooks.py"
    )
    code = [c for c in copy.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert not outputs(copy, "error")
    assert any("image/png" in o.get("data", {}) for o in outputs(copy))
