"""Benchmark: compilations and wall time of a grid, one program per cell (before) vs per (env, algo, width) (after).

The grid: 2 sparsities x 2 base scores x (static, tar, rigl) x 2 seeds, SAC
on inverted_pendulum (``--quick``: the bandit probe). Before, every cell
compiled its own programs (4 cells x {mask-only, RigL} = 8); after, the
mask-only runs of every cell share one program and RigL's share another.
Both sides run every batch with :func:`agents.experiments.sweep.run_batch` in this one
process, the persistent compilation cache off, "before" first; the
per-run curves of the two sides are compared too (they must agree to
float32 rounding, grown by training).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax

from agents.algorithms.config import SparsityConfig, TrainConfig
from agents.execution import runner
from agents.experiments import sweep
from benchmarks.common import CompileCounter, part_main

_PENDULUM = dict(
    env="inverted_pendulum", episode_length=1000, total_steps=4_000, warmup_steps=1_000, chunk_steps=1_000,
    num_envs=4, updates_per_step=2, hidden=(64, 64), batch_size=128, eval_episodes=2,
)  # fmt: skip
_BANDIT = dict(
    env="probe_bandit", episode_length=1, total_steps=1_500, warmup_steps=500, chunk_steps=500, num_envs=4,
    updates_per_step=2, hidden=(32, 32), batch_size=64, eval_episodes=4,
)  # fmt: skip


def grid(quick: bool) -> sweep.SweepConfig:
    """The benchmark's grid (RigL rewires every 100 updates, so its program holds real mask updates)."""
    train = TrainConfig(**(_BANDIT if quick else _PENDULUM), sparse=SparsityConfig(distribution="uniform", delta_t=100))
    return sweep.SweepConfig(
        envs=(train.env,), sparsities=(0.8, 0.9), scores=("magnitude", "snip"), methods=("static", "tar", "rigl"),
        seeds=2, train=train, checkpoint_every=0,
    )  # fmt: skip


def _side(cfg: sweep.SweepConfig, batches: list[sweep.Batch], out: Path) -> dict[str, Any]:
    """Run ``batches`` into ``out``: wall, XLA compilations and their seconds, chunk programs compiled."""
    programs = []
    original = runner.compile_chunk

    def counted(trainer, *args):
        programs.append(trainer.config.sparse.method)
        return original(trainer, *args)

    runner.compile_chunk = counted
    try:
        with CompileCounter() as compiles:
            start = time.perf_counter()
            for batch in batches:
                sweep.run_batch(cfg, out, batch, False, lambda *_: None)
            wall = time.perf_counter() - start
    finally:
        runner.compile_chunk = original
    return {
        "batches": [{"name": b.name, "runs": len(b.runs)} for b in batches],
        "chunk_programs": len(programs),
        "xla_compilations": compiles.count,
        "compile_s": compiles.seconds,
        "wall_s": wall,
    }


def _curves(out: Path) -> dict[str, list[dict]]:
    return {
        p.parent.name: [json.loads(row) for row in p.read_text().splitlines()] for p in out.glob("runs/*/curve.jsonl")
    }


def _largest_difference(a: dict, b: dict, key: str) -> dict[str, float]:
    """Largest absolute and relative (to max(|b|, 1e-3)) difference of ``key`` over every run and chunk."""
    diffs = [
        (abs(x[key] - y[key]), abs(x[key] - y[key]) / max(abs(y[key]), 1e-3)) for r in b for x, y in zip(a[r], b[r])
    ]
    return {"abs": max(d for d, _ in diffs), "rel": max(r for _, r in diffs)}


def bench(quick: bool = False) -> dict[str, Any]:
    jax.config.update("jax_enable_compilation_cache", False)  # every compilation counts, on both sides
    cfg = grid(quick)
    tmp = Path(tempfile.mkdtemp(prefix="sparse_rl_batching_"))
    try:
        before = _side(cfg, cfg.batches(per_cell=True), tmp / "before")
        after = _side(cfg, cfg.batches(), tmp / "after")
        a, b = _curves(tmp / "after"), _curves(tmp / "before")
        assert set(a) == set(b) and len(a) == len(cfg.cells()) * len(cfg.methods) * cfg.seeds
        agreement = {k: _largest_difference(a, b, k) for k in ("eval_return", "critic_loss", "actor_loss")}
        first = {k: _largest_difference({r: v[:1] for r, v in a.items()}, b, k) for k in ("eval_return", "critic_loss")}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "settings": {
            "quick": quick,
            "grid": "2 sparsities x 2 scores x (static, tar, rigl) x 2 seeds",
            "config": dataclasses.asdict(cfg.train),
            "runs": len(a),
        },
        "before": before,
        "after": after,
        "compile_s_saved": before["compile_s"] - after["compile_s"],
        "wall_ratio_before_over_after": before["wall_s"] / after["wall_s"],
        "curves_after_vs_before": agreement,
        "first_evaluation_after_vs_before": first,
    }


def print_report(results: dict[str, Any]) -> None:
    s = results["settings"]
    print(f"\nbatching: {s['grid']} ({s['runs']} runs) on {s['config']['env']}")
    for side in ("before", "after"):
        r = results[side]
        print(
            f"  {side:<6} {len(r['batches'])} batches, {r['chunk_programs']} chunk programs, "
            f"{r['xla_compilations']} XLA compilations ({r['compile_s']:.1f} s), wall {r['wall_s']:.1f} s"
        )
    print(f"  before / after wall {results['wall_ratio_before_over_after']:.2f}")
    print(f"  curves after vs before: {results['curves_after_vs_before']}")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run this part alone: ``python -m benchmarks.bench_batching [--quick]``."""
    return part_main("batching", __doc__, bench, print_report, argv, repeats=False)


if __name__ == "__main__":
    main()
