"""Benchmark: cost of each sparse method's training chunk relative to dense, and TAR's one-shot revival.

1. The jitted, vmapped training chunk (what ``agents.train.train_chunks``
   compiles: ``jax.jit(jax.vmap(trainer.chunk, in_axes=(0, None)))``) after
   ``agents.train.prepare``, for dense, static, uniform_revival, tar, set and
   rigl: SAC, 256-256 actor and critics, batch 256, sparsity 0.9 (ERK, random
   scores), one seed, on ``probe_bandit`` (one-step episodes, so the chunk is
   almost all learner: the strictest setting for the sparse overhead). SET and
   RigL use ``delta_t=100`` with 400 updates per chunk, so the timed chunk
   (chunk index 0, updates 0..399, well before the schedule's end) does
   several mask updates. Targets: static, tar, uniform_revival <= 1.05x dense;
   set, rigl <= 1.10x dense. Every method's chunk is timed in turn, order
   reversed every other repeat, ratios per repeat.

2. TAR's one-shot revival: ``sparse_jax.sparse_init(key, params, 0.9,
   method="tar")`` vs ``method="static"`` on the actor and critic params,
   each jitted and run once before timing; the difference in ms.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

import sparse_jax as sj
from agents.config import SparsityConfig, TrainConfig
from agents.train import make_train, prepare
from benchmarks.common import fmt, interleaved, part_main, ratio_summary, summary

METHODS = ("dense", "static", "uniform_revival", "tar", "set", "rigl")
TARGETS = {"static": 1.05, "uniform_revival": 1.05, "tar": 1.05, "set": 1.10, "rigl": 1.10}
SPARSITY = 0.9


def make_config(quick: bool, method: str) -> TrainConfig:
    chunk = 40 if quick else 400
    delta_t = 10 if quick else 100
    return TrainConfig(
        env="probe_bandit",
        episode_length=1,
        total_steps=256 + 10 * chunk,
        warmup_steps=256,
        chunk_steps=chunk,
        hidden=(256, 256),
        batch_size=256,
        eval_episodes=4,
        sparse=SparsityConfig(method=method, sparsity=SPARSITY, delta_t=delta_t),
    )


def bench_chunks(quick: bool, repeats: int) -> dict[str, Any]:
    calls = {}
    for method in METHODS:
        config = make_config(quick, method)
        prepared = prepare(config, [0])  # also compiles the vmapped chunk
        calls[method] = functools.partial(prepared.chunk, prepared.state, jnp.int32(0))
    times = interleaved(calls, repeats)
    config = make_config(quick, "set")
    out: dict[str, Any] = {
        "updates_per_chunk": config.chunk_iters * config.updates_per_step,
        "delta_t": config.sparse.delta_t,
        "mask_updates_in_chunk_set_rigl": -(-config.chunk_iters * config.updates_per_step // config.sparse.delta_t),
        "ms_per_chunk": {m: summary([t * 1e3 for t in ts]) for m, ts in times.items()},
        "ratio_vs_dense": {},
        "raw_seconds_per_call": times,
    }
    for method in METHODS[1:]:
        r = ratio_summary(times[method], times["dense"])
        out["ratio_vs_dense"][method] = {**r, "target": TARGETS[method], "meets_target": r["median"] <= TARGETS[method]}
    return out


def bench_revival(quick: bool, repeats: int) -> dict[str, Any]:
    trainer = make_train(make_config(quick, "tar"))
    state = trainer.init(jax.random.key(0))
    params = {"actor": state.agent.actor, "critic": state.agent.critic}
    fns = {
        m: jax.jit(lambda k, p, m=m: sj.sparse_init(k, p, SPARSITY, method=m, score="random", distribution="erk"))
        for m in ("static", "tar")
    }
    key = jax.random.key(1)
    times = interleaved({m: functools.partial(f, key, params) for m, f in fns.items()}, repeats)
    return {
        "ms": {m: summary([t * 1e3 for t in ts]) for m, ts in times.items()},
        "tar_minus_static_ms": summary([(t - s) * 1e3 for t, s in zip(times["tar"], times["static"], strict=True)]),
        "params": sum(x.size for x in jax.tree.leaves(params)),
        "raw_seconds_per_call": times,
    }


def bench(quick: bool = False, repeats: int | None = None) -> dict[str, Any]:
    repeats = repeats or (2 if quick else 7)
    return {
        "settings": {
            "quick": quick,
            "repeats": repeats,
            "config": {k: v for k, v in dataclasses.asdict(make_config(quick, "set")).items() if k != "sparse"},
            "sparsity": SPARSITY,
        },
        "chunk": bench_chunks(quick, repeats),
        "revival": bench_revival(quick, max(repeats, 10) * 3),
    }


def print_report(results: dict[str, Any]) -> None:
    c = results["chunk"]
    print(f"\noverhead: training chunk of {c['updates_per_chunk']} updates, delta_t={c['delta_t']}")
    print(f"  dense {fmt(c['ms_per_chunk']['dense'], '.1f')} ms")
    for m, r in c["ratio_vs_dense"].items():
        ok = "met" if r["meets_target"] else "NOT met"
        print(f"  {m:<16} {fmt(c['ms_per_chunk'][m], '.1f')} ms  ratio {fmt(r)}  (target <= {r['target']}: {ok})")
    rv = results["revival"]
    print(f"  TAR revival: tar - static = {fmt(rv['tar_minus_static_ms'])} ms (static {fmt(rv['ms']['static'])} ms)")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run this part alone: ``python -m benchmarks.bench_overhead [--quick]``."""
    return part_main("overhead", __doc__, bench, print_report, argv)


if __name__ == "__main__":
    main()
