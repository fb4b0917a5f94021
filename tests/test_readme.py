"""The README's "Use it in your own code" examples run as written."""

import re
from pathlib import Path

import jax
import numpy as np

import sparse_jax as sj

README = (Path(__file__).parent.parent / "README.md").read_text()


def _section_code(title: str) -> list[str]:
    section = README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_use_it_in_your_own_code_examples_run_and_stay_sparse(capsys):
    blocks = _section_code("Use it in your own code")
    assert len(blocks) == 3  # linen, nnx, multi_transform
    scope: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), scope)
    assert "'density'" in capsys.readouterr().out
    # linen + multi_transform: every pruned kernel entry is exactly 0, and SET kept the per-layer counts.
    masks = sj.get_masks(scope["state"])
    assert sj.active_counts(masks) == sj.active_counts(scope["init"].masks)
    for m, p in zip(jax.tree.leaves(masks, is_leaf=sj.is_none), jax.tree.leaves(scope["params"])):
        if m is not None:
            assert not np.asarray(p)[~np.asarray(m)].any()
    # nnx: the pruned entries of both kernels are exactly 0 after the update.
    net, nnx_masks = scope["net"], scope["masks"]
    for name in ("hidden", "out"):
        kernel, mask = np.asarray(getattr(net, name).kernel[...]), np.asarray(nnx_masks[name]["kernel"][...])
        assert mask.sum() < mask.size and not kernel[~mask].any()
