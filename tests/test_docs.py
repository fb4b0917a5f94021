"""The API reference builds from the docstrings with every warning an error (a bad docstring fails the suite)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_the_api_reference_builds_without_a_warning(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-b", "html", "-W", "--keep-going", "docs/api", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = (tmp_path / "sparse_jax.html").read_text()
    for name in ("register_method", "SparseMethod", "DropAndGrow", "sparse_transform", "with_masks"):
        assert name in page, name
    assert "program_key" in (tmp_path / "agents.html").read_text()
