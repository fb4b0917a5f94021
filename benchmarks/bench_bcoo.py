"""Benchmark: sparse actor forward with ``jax.experimental.sparse`` BCOO kernels vs the masked dense forward.

Actor MLP 17-256-256-12 (ReLU, linear output), each kernel pruned uniformly at
random to the given sparsity (per layer), biases dense. Dense side: the masked
kernels as dense arrays (``x @ (W * M) + b``), jitted. Sparse side: the same
kernels exported with ``sparse_jax.to_bcoo`` (a BCOO of exactly the active
entries, ``nse`` = the active count) and applied as ``x @ W_bcoo + b``,
jitted. Batch 1 (acting) and 256 (training batch); sparsity 0.9, 0.95, 0.99.
Each timed call runs 100 forwards inside one ``lax.scan`` (the input changed
each step so nothing is hoisted); the two sides are alternated, ratio per
repeat, median [min, max].
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import sparse_jax as sj
from benchmarks.common import fmt, interleaved, part_main, ratio_summary, summary

SIZES = (17, 256, 256, 12)
SPARSITIES = (0.9, 0.95, 0.99)
BATCHES = (1, 256)


def make_layers(key: jax.Array, sparsity: float) -> tuple[list[tuple[jax.Array, jax.Array]], list]:
    """``(layers, masks)``: ``(masked kernel, bias)`` per layer and its masks (``(kernel mask, None)``)."""
    layers, masks = [], []
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:], strict=True)):
        kw, km = jax.random.split(jax.random.fold_in(key, i))
        w = jax.random.normal(kw, (n_in, n_out)) / np.sqrt(n_in)
        keep = max(1, round((1 - sparsity) * w.size))
        mask = jnp.zeros(w.size, bool).at[jax.random.permutation(km, w.size)[:keep]].set(True).reshape(w.shape)
        layers.append((w * mask, jnp.zeros(n_out)))
        masks.append((mask, None))
    return layers, masks


def forward(layers, x):
    for i, (w, b) in enumerate(layers):
        x = x @ w + b
        if i < len(layers) - 1:
            x = jax.nn.relu(x)
    return x


def make_scan(n_steps: int):
    @jax.jit
    def run(layers, x):
        def step(x, _):
            y = forward(layers, x)
            return x + 1e-3 * jnp.sum(y), None

        return jax.lax.scan(step, x, length=n_steps)[0]

    return run


def bench(quick: bool = False, repeats: int | None = None) -> dict[str, Any]:
    repeats = repeats or (3 if quick else 21)
    n_steps = 10 if quick else 100
    run = make_scan(n_steps)
    rows = {}
    for s in SPARSITIES:
        dense_layers, masks = make_layers(jax.random.key(0), s)
        bcoo_layers = sj.to_bcoo(dense_layers, masks)
        for batch in BATCHES:
            x = jax.random.normal(jax.random.key(1), (batch, SIZES[0]))
            np.testing.assert_allclose(forward(bcoo_layers, x), forward(dense_layers, x), rtol=1e-4, atol=1e-4)
            calls = {
                "dense_masked": functools.partial(run, dense_layers, x),
                "bcoo": functools.partial(run, bcoo_layers, x),
            }
            times = interleaved(calls, repeats)
            ratio = ratio_summary(times["dense_masked"], times["bcoo"])
            rows[f"s{s}_b{batch}"] = {
                "sparsity": s,
                "batch": batch,
                "us_per_forward": {k: summary([t / n_steps * 1e6 for t in v]) for k, v in times.items()},
                "speedup_bcoo_over_dense": ratio,
                "raw_seconds_per_call": times,
            }
    return {
        "settings": {"quick": quick, "repeats": repeats, "forwards_per_call": n_steps, "sizes": SIZES},
        "rows": rows,
    }


def print_report(results: dict[str, Any]) -> None:
    print("\nbcoo: actor forward 17-256-256-12, us per forward; speedup > 1 means BCOO is faster")
    for row in results["rows"].values():
        us = row["us_per_forward"]
        print(
            f"  sparsity {row['sparsity']:<5} batch {row['batch']:>3}  dense {fmt(us['dense_masked'], '.1f')}  "
            f"bcoo {fmt(us['bcoo'], '.1f')}  speedup {fmt(row['speedup_bcoo_over_dense'], '.2f')}"
        )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run this part alone: ``python -m benchmarks.bench_bcoo [--quick]``."""
    return part_main("bcoo", __doc__, bench, print_report, argv)


if __name__ == "__main__":
    main()
