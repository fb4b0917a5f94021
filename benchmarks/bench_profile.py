"""Profile: where the time of a dense SAC run goes (the peer benchmark's settings).

1. **Update**: ``N`` SAC updates (256-256, batch 256, one seed) in one jitted
   ``lax.scan``, replay filled with random data; ms per update, XLA's FLOP
   count per update (``cost_analysis``) and the FLOP rate achieved.
2. **Matmul reference**: the rate of a chain of ``(256, 256) @ (256, 256)``
   matmuls, the update's dominant shape, in the same process: the most the
   update could reach if it were nothing but its matmuls.
3. **Op breakdown**: a ``jax.profiler`` trace of the update scan: time per op
   class (matmul kernels, elementwise fusions, copies) and how many of XLA's
   threads are busy on average.
4. **Env step**: one training env step (auto-reset and replay write included),
   timed through ``trainer.warmup``.
5. **Compile**: trace+lower and XLA compile seconds of each trainer function.
"""

from __future__ import annotations

import collections
import gzip
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from agents.algorithms.replay import buffer_sample
from agents.execution.train import make_train
from benchmarks.bench_peer import make_config
from benchmarks.common import part_main, summary

# Thunks that only wrap or wait for others: left out so that no time is counted twice.
_WRAPPERS = ("ThunkExecutor", "Threadpool", "SlinkyThreadPool", "$", "end: ", "while", "call", "conditional")


def op_class(name: str) -> str:
    """The class of an XLA CPU op by its thunk name: ``matmul``, ``copy`` or ``elementwise/other``.

    >>> op_class("ynn_fusion.12"), op_class("dot.3"), op_class("copy.7"), op_class("add_maximum_fusion")
    ('matmul', 'matmul', 'copy', 'elementwise/other')
    """
    base = name.split(".")[0]
    if base.startswith(("dot", "ynn", "onednn", "convolution")):
        return "matmul"
    if base.startswith("copy"):
        return "copy"
    return "elementwise/other"


def trace_breakdown(trace_file: Path, iterations: int) -> dict[str, Any]:
    """Per-iteration op time by class and thread occupancy from a perfetto trace of ``iterations`` updates."""
    data = json.loads(gzip.open(trace_file).read())
    events = data["traceEvents"] if isinstance(data, dict) else data
    ops = [e for e in events if e.get("ph") == "X" and not e["name"].startswith(_WRAPPERS)]
    by_class: dict[str, float] = collections.Counter()
    by_thread: dict[int, float] = collections.Counter()
    for e in ops:
        by_class[op_class(e["name"])] += e["dur"]
        by_thread[e["tid"]] += e["dur"]
    span = max(e["ts"] + e["dur"] for e in ops) - min(e["ts"] for e in ops)
    busy = sum(by_class.values())
    return {
        "us_per_update_by_class": {k: v / iterations for k, v in sorted(by_class.items(), key=lambda kv: -kv[1])},
        "share_by_class": {k: v / busy for k, v in by_class.items()},
        "us_per_update_traced": span / iterations,
        "threads_with_ops": len(by_thread),
        "mean_busy_threads": busy / span,
    }


def _seconds(fn, repeats: int) -> list[float]:
    jax.block_until_ready(fn())
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        out.append(time.perf_counter() - start)
    return out


def bench(quick: bool = False) -> dict[str, Any]:
    """Measure the five parts (see the module docstring)."""
    config = make_config(quick)
    n_updates, repeats = (50, 2) if quick else (1000, 5)
    trainer = make_train(config)
    state = jax.jit(trainer.init)(jax.random.key(0))
    # Random replay contents: the update's cost does not depend on the data, only its shapes.
    k_data = jax.random.key(1)
    data = jax.tree.map(lambda x: jax.random.normal(k_data, x.shape), state.buffer.data)
    buffer = state.buffer.replace(data=data, size=jnp.int32(state.buffer.capacity))

    def updates(n: int):
        def run(agent, key):
            def body(agent, i):
                k_batch, k_loss = jax.random.split(jax.random.fold_in(key, i))
                batch = buffer_sample(buffer, k_batch, config.batch_size)
                return trainer.algo.update(agent, batch, k_loss, i)[0], None

            return jax.lax.scan(body, agent, jnp.arange(n))[0]

        return jax.jit(run)

    run_updates = updates(n_updates)
    cost = run_updates.lower(state.agent, jax.random.key(2)).compile().cost_analysis()
    flops = (cost[0] if isinstance(cost, list) else cost).get("flops", float("nan"))  # counts the scan body once
    secs = _seconds(lambda: run_updates(state.agent, jax.random.key(2)), repeats)
    ms_update = summary([1e3 * s / n_updates for s in secs])
    gflops = summary([flops / (s / n_updates) / 1e9 for s in secs])

    # 2. matmul reference: a dependent chain, so XLA can neither hoist nor batch it.
    width, chain = max(config.hidden), 200
    a = jnp.full((config.batch_size, width), 1e-3)
    w = jnp.full((width, width), 1e-3)
    mm = jax.jit(lambda a, w: jax.lax.scan(lambda x, _: (x + 1e-6 * jnp.tanh(x @ w), None), a, None, length=chain)[0])
    mm_secs = _seconds(lambda: mm(a, w), repeats)
    mm_gflops = summary([2 * config.batch_size * width * width * chain / s / 1e9 for s in mm_secs])

    # 3. op breakdown: a shorter scan keeps the trace small.
    traced_updates = min(n_updates, 100)
    run_traced = updates(traced_updates)
    jax.block_until_ready(run_traced(state.agent, jax.random.key(3)))
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            jax.block_until_ready(run_traced(state.agent, jax.random.key(3)))
        breakdown = trace_breakdown(next(Path(tmp).rglob("perfetto_trace.json.gz")), traced_updates)

    # 4. env step: trainer.warmup is warmup_iters random-action env steps (auto-reset, replay write).
    warmup = jax.jit(trainer.warmup)
    env_us = summary([1e6 * s / config.warmup_iters for s in _seconds(lambda: warmup(state), repeats)])

    # 5. compile per trainer function (ahead of time, from shapes).
    # A fresh trainer: its functions are new closures, so nothing comes from jit's caches.
    fresh = make_train(config)
    shapes = jax.eval_shape(fresh.init, jax.random.key(0))
    compile_rows = {}
    for name, fn, args in (
        ("init", fresh.init, (jax.random.key(0),)),
        ("warmup", fresh.warmup, (shapes,)),
        ("evaluate", fresh.evaluate, (shapes,)),
        ("chunk", fresh.chunk, (shapes, jnp.int32(0))),
    ):
        start = time.perf_counter()
        lowered = jax.jit(fn).lower(*args)
        mid = time.perf_counter()
        lowered.compile()
        compile_rows[name] = {"trace_lower_s": mid - start, "compile_s": time.perf_counter() - mid}

    return {
        "settings": {
            "quick": quick,
            "env": config.env,
            "hidden": list(config.hidden),
            "batch_size": config.batch_size,
            "updates_timed": n_updates,
            "updates_traced": traced_updates,
            "repeats": repeats,
        },
        "update": {"ms": ms_update, "gflop": flops / 1e9, "gflop_per_s": gflops},
        "matmul_reference": {"shape": [config.batch_size, width, width], "gflop_per_s": mm_gflops},
        "trace": breakdown,
        "env_step_us": env_us,
        "compile": compile_rows,
    }


def print_report(results: dict[str, Any]) -> None:
    """Print the profile as a few lines."""
    u, t = results["update"], results["trace"]
    print(f"\nprofile: dense SAC update, {results['settings']['env']}, {results['settings']['hidden']}")
    print(f"  update {u['ms']['median']:.2f} ms, {u['gflop']:.3f} GFLOP, {u['gflop_per_s']['median']:.0f} GFLOP/s")
    print(f"  matmul reference {results['matmul_reference']['gflop_per_s']['median']:.0f} GFLOP/s")
    shares = ", ".join(f"{k} {v:.0%}" for k, v in t["share_by_class"].items())
    print(f"  op time: {shares}; mean busy threads {t['mean_busy_threads']:.2f} of {t['threads_with_ops']}")
    print(f"  env step {results['env_step_us']['median']:.0f} us")
    for name, row in results["compile"].items():
        print(f"  compile {name}: trace+lower {row['trace_lower_s']:.1f} s, XLA {row['compile_s']:.1f} s")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run this part alone: ``python -m benchmarks.bench_profile [--quick]``."""
    return part_main("profile", __doc__, bench, print_report, argv, repeats=False)


if __name__ == "__main__":
    main()
