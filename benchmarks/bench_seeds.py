"""Benchmark: N seeds vmapped in one ``agents.execution.runner.run`` call vs the same N seeds one call after another.

SAC, ``probe_bandit`` (one-step episodes), 256-256 networks, batch 256, dense,
1000 gradient updates per seed in 2 chunks after a 500-step warm-up. Each call
builds its own ``make_train`` closures, so every call compiles (as every
``sparse-rl train`` process would). Reported per N in (1, 4, 16): wall time of
both sides (compilation included) and XLA compilations, the two sides
alternated (order reversed every other repeat), ratio sequential / vmapped per
repeat. One untimed run first takes the process's one-time compilations.
On CPU, vmapped must not be slower (ratio >= 1).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

from agents.algorithms.config import TrainConfig
from agents.execution.runner import run as train_run
from benchmarks.common import CompileCounter, fmt, part_main, summary


def make_config(quick: bool) -> TrainConfig:
    if quick:
        return TrainConfig(env="probe_bandit", episode_length=1, total_steps=150, warmup_steps=50, chunk_steps=50)
    return TrainConfig(
        env="probe_bandit", episode_length=1, total_steps=1_500, warmup_steps=500, chunk_steps=500,
        hidden=(256, 256), batch_size=256,
    )  # fmt: skip


def _timed_runs(config: TrainConfig, seed_groups: list[list[int]]) -> tuple[float, int]:
    with CompileCounter() as counter:
        start = time.perf_counter()
        for seeds in seed_groups:
            train_run(config, seeds)
        wall = time.perf_counter() - start
    return wall, counter.count


def bench(quick: bool = False, repeats: int | None = None) -> dict[str, Any]:
    repeats = repeats or 1
    config = make_config(quick)
    counts = (1, 2) if quick else (1, 4, 16)
    _timed_runs(config, [[0]])  # untimed: one-time compilations of the process go to neither side
    out: dict[str, Any] = {
        "settings": {
            "quick": quick,
            "repeats": repeats,
            "env": config.env,
            "total_steps": config.total_steps,
            "warmup_steps": config.warmup_steps,
            "chunk_steps": config.chunk_steps,
            "hidden": config.hidden,
            "batch_size": config.batch_size,
            "updates_per_seed": config.total_updates,
        },  # fmt: skip
        "rows": {},
    }
    for n in counts:
        seeds = list(range(n))
        sides = {"vmapped": [seeds], "sequential": [[s] for s in seeds]}
        walls: dict[str, list[float]] = {k: [] for k in sides}
        compiles: dict[str, list[int]] = {k: [] for k in sides}
        for r in range(repeats):
            names = list(sides) if r % 2 == 0 else list(reversed(sides))
            for name in names:
                wall, count = _timed_runs(config, sides[name])
                walls[name].append(wall)
                compiles[name].append(count)
        ratios = [s / v for s, v in zip(walls["sequential"], walls["vmapped"], strict=True)]
        out["rows"][str(n)] = {
            "wall_s": {k: summary(v) for k, v in walls.items()},
            "compilations": {k: summary(v) for k, v in compiles.items()},
            "sequential_over_vmapped": summary(ratios),
            # With one seed both sides are the same call: the row only shows the noise.
            "vmapped_not_slower": None if n == 1 else statistics.median(ratios) >= 1.0,
        }
        print(f"  {n} seeds: {out['rows'][str(n)]}", flush=True)
    out["meets_target"] = all(row["vmapped_not_slower"] is not False for row in out["rows"].values())
    return out


def print_report(results: dict[str, Any]) -> None:
    print("\nseeds: vmapped vs sequential")
    for n, row in results["rows"].items():
        wall, comp = row["wall_s"], row["compilations"]
        print(
            f"  {n:>3} seeds  vmapped {fmt(wall['vmapped'], '.1f')} s ({fmt(comp['vmapped'], '.0f')} compiles)"
            f"  sequential {fmt(wall['sequential'], '.1f')} s ({fmt(comp['sequential'], '.0f')} compiles)"
            f"  ratio {fmt(row['sequential_over_vmapped'], '.2f')}"
        )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run this part alone: ``python -m benchmarks.bench_seeds [--quick]``."""
    return part_main("seeds", __doc__, bench, print_report, argv)


if __name__ == "__main__":
    main()
