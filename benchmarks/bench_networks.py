"""Benchmark: what TAR moves, and what pruning does to reachability, in ReLU MLPs and SimBa networks.

A halfcheetah-sized critic (17 observations + 6 actions in, one Q-network of
each body) at width 256 with 2 hidden layers (``mlp``) or 2 residual blocks
(``simba``: embedding 23 -> 256, blocks 256 -> 1024 -> 256, output 256 -> 1),
pruned by magnitude of its initialisation to sparsity 0.9 and 0.95 under
uniform, ERK and global. For each: the connections TAR's revival puts in
another layer than static pruning has them (the sum over kernels of
``max(0, tar - static)``, as a count and as a share of the active weights),
which kernels gain, and the input-output reachability of the static and TAR
masks, through the blocks' skips for SimBa (``sparse_jax.reachability``). No
training: the allocation depends only on the kernels' shapes and the base
masks. ``--quick``: width 32.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

import sparse_jax as sj
from agents.algorithms.networks import body
from benchmarks.common import part_main

OBS, ACT = 17, 6
SPARSITIES = (0.9, 0.95)
DISTRIBUTIONS = ("uniform", "erk", "global")


def _counts(masks: Any) -> dict[str, int]:
    return {sj.path_name(p): int(m.sum()) for p, m in jax.tree.leaves_with_path(masks)}


def bench(quick: bool = False) -> dict[str, Any]:
    """Per network, sparsity and distribution: static's and TAR's per-kernel counts and reachability."""
    width = 32 if quick else 256
    rows = []
    for network in ("mlp", "simba"):
        net = body(network, (width, width), 1, critic=True)
        params = net.init(jax.random.key(0), jnp.ones((1, OBS + ACT)))["params"]
        for sparsity in SPARSITIES:
            for distribution in DISTRIBUTIONS:
                inits = {
                    method: sj.sparse_init(
                        jax.random.key(1), params, sparsity, method=method, score="magnitude", distribution=distribution
                    )
                    for method in ("static", "tar")
                }
                static, tar = (_counts(inits[m].masks) for m in ("static", "tar"))
                active = sum(static.values())
                moved = sum(max(0, tar[k] - static[k]) for k in static)
                rows.append(
                    {
                        "network": network,
                        "sparsity": sparsity,
                        "distribution": distribution,
                        "active": active,
                        "moved": moved,
                        "moved_share": moved / active,
                        "gains": {k: tar[k] - static[k] for k in static if tar[k] > static[k]},
                        "static": static,
                        "tar": tar,
                        "reach_static": sj.reachability(inits["static"].masks).pair_fraction,
                        "reach_tar": sj.reachability(inits["tar"].masks).pair_fraction,
                    }
                )
    return {"settings": {"width": width, "obs": OBS, "act": ACT, "score": "magnitude"}, "rows": rows}


def print_report(r: dict[str, Any]) -> None:
    """One line per network, sparsity and distribution."""
    print(f"networks: a {r['settings']['obs']}+{r['settings']['act']}-input critic at width {r['settings']['width']}")
    for row in r["rows"]:
        gains = ", ".join(f"{k.removesuffix('/kernel')} +{v}" for k, v in row["gains"].items()) or "none"
        print(
            f"  {row['network']:<6} s{row['sparsity']} {row['distribution']:<8} active {row['active']:>7} "
            f"moved {row['moved']:>5} ({100 * row['moved_share']:.2f}%) reach {row['reach_static']:.3f} -> "
            f"{row['reach_tar']:.3f}; gains: {gains}"
        )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``python -m benchmarks.bench_networks [--quick]``."""
    return part_main("networks", __doc__, bench, print_report, argv, repeats=False)


if __name__ == "__main__":
    main()
