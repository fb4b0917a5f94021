"""Benchmark: N seeds vmapped in one ``agents.execution.runner.run`` call vs the same N seeds one call after another.

SAC, ``probe_bandit`` (one-step episodes), 256-256 networks, batch 256, dense,
1000 gradient updates per seed in 2 chunks after a 500-step warm-up. Each call
builds its own ``make_train`` closures, so every call compiles (as every
``sparse-rl train`` process would). Reported per N in (1, 4, 16): wall time of
both sides (compilation included) and XLA compilations, the two sides
alternated (order reversed every other repeat), ratio sequential / vmapped per
repeat. One untimed run first takes the process's one-time compilations.
On CPU, vmapped must not be slower (ratio >= 1).

Every row also reports the vmapped call's runs per second (runs over its
median wall, compilation included), its steady env steps/s summed over the
runs (chunks after the first, median), the device's peak bytes in use (``memory_stats``; ``None``
on CPU, which reports none), the host's peak resident set, and the planner's
estimate of one run's bytes (:func:`agents.execution.plan.make_plan`'s).
``--counts``, ``--method`` (a mask-only method at sparsity 0.9) and
``--no-sequential`` (the vmapped side alone, for batches too large to also
run one call per seed) make it the accelerator run's batch measurement:
``--counts 1 64 --method static --no-sequential --name seeds_batch``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Sequence
from typing import Any

import jax

import sparse_jax as sj
from agents.algorithms.config import SparsityConfig, TrainConfig
from agents.execution import plan as plan_lib
from agents.execution.runner import run as train_run
from agents.execution.runner import state_template
from agents.execution.train import make_train
from benchmarks.common import CompileCounter, fmt, summary, write_json

SPARSITY = 0.9


def make_config(quick: bool, method: str = "dense") -> TrainConfig:
    """The benchmark's run (``method``: a mask-only method of ``sparse_jax``, at sparsity 0.9)."""
    if method not in sj.MASK_METHODS:
        raise ValueError(f"method={method!r} is not allowed; allowed: a mask-only method, one of {sj.MASK_METHODS}.")
    sparse = SparsityConfig(method=method, sparsity=SPARSITY)
    if quick:
        return TrainConfig(
            env="probe_bandit", episode_length=1, total_steps=150, warmup_steps=50, chunk_steps=50, sparse=sparse
        )
    return TrainConfig(
        env="probe_bandit", episode_length=1, total_steps=1_500, warmup_steps=500, chunk_steps=500,
        hidden=(256, 256), batch_size=256, sparse=sparse,
    )  # fmt: skip


def _timed_runs(config: TrainConfig, seed_groups: list[list[int]], steady: list[float] | None = None):
    """Wall, XLA compilations and compile seconds of one ``run`` call per group of seeds.

    ``steady`` collects the env steps/s of every chunk after the first (the first may wait for its compilation).
    """

    def on_chunk(report):
        if steady is not None and report.chunk >= 1:
            steady.append(float(report.metrics["steps_per_s"][0]))

    with CompileCounter() as counter:
        start = time.perf_counter()
        for seeds in seed_groups:
            train_run(config, seeds, on_chunk=on_chunk)
        wall = time.perf_counter() - start
    return wall, counter.count, counter.seconds


def _vmapped_figures(n: int, wall: float, steady: list[float]) -> dict[str, Any]:
    """The vmapped call's runs/s and steady env steps/s, and the device's and the host's peak memory so far."""
    # Peaks over the process so far; rows run in increasing n, so each is its own call's (or an earlier larger one's).
    stats = jax.local_devices()[0].memory_stats() or {}
    return {
        "wall_s": wall,
        "runs_per_s": n / wall,
        "steady_env_steps_per_s": statistics.median(steady) if steady else None,
        "device_peak_bytes": stats.get("peak_bytes_in_use"),
        "host_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def bench(
    quick: bool = False,
    repeats: int | None = None,
    counts: Sequence[int] | None = None,
    method: str = "dense",
    sequential: bool = True,
) -> dict[str, Any]:
    """Time ``counts`` seeds vmapped in one call against one call per seed (``sequential=False``: vmapped only)."""
    repeats = repeats or 1
    config = make_config(quick, method)
    counts = tuple(sorted(counts)) if counts else (1, 2) if quick else (1, 4, 16)
    plan_bytes = 2 * plan_lib.state_bytes(state_template(make_train(config), 1))  # as make_plan estimates a run
    _timed_runs(config, [[0]])  # untimed: one-time compilations of the process go to neither side
    out: dict[str, Any] = {
        "settings": {
            "quick": quick,
            "repeats": repeats,
            "method": method,
            "sparsity": SPARSITY if method != "dense" else 0.0,
            "sequential": sequential,
            "plan_bytes_per_run": plan_bytes,
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
        if not sequential:
            del sides["sequential"]
        walls: dict[str, list[float]] = {k: [] for k in sides}
        compiles: dict[str, list[int]] = {k: [] for k in sides}
        compile_s: dict[str, list[float]] = {k: [] for k in sides}
        steady: list[float] = []
        for r in range(repeats):
            names = list(sides) if r % 2 == 0 else list(reversed(sides))
            for name in names:
                wall, count, seconds = _timed_runs(config, sides[name], steady if name == "vmapped" else None)
                walls[name].append(wall)
                compiles[name].append(count)
                compile_s[name].append(seconds)
        ratios = [s / v for s, v in zip(walls.get("sequential", []), walls["vmapped"])]
        out["rows"][str(n)] = {
            "wall_s": {k: summary(v) for k, v in walls.items()},
            "compilations": {k: summary(v) for k, v in compiles.items()},
            "compile_s": {k: summary(v) for k, v in compile_s.items()},
            "sequential_over_vmapped": summary(ratios) if ratios else None,
            # With one seed both sides are the same call: the row only shows the noise.
            "vmapped_not_slower": None if n == 1 or not ratios else statistics.median(ratios) >= 1.0,
            "vmapped": _vmapped_figures(n, statistics.median(walls["vmapped"]), steady),
        }
        print(f"  {n} seeds: {out['rows'][str(n)]}", flush=True)
    out["meets_target"] = all(row["vmapped_not_slower"] is not False for row in out["rows"].values())
    return out


def print_report(results: dict[str, Any]) -> None:
    s = results["settings"]
    print(f"\nseeds: vmapped vs sequential ({s.get('method', 'dense')}; planned {s.get('plan_bytes_per_run')} B/run)")
    for n, row in results["rows"].items():
        wall, comp = row["wall_s"], row["compilations"]
        line = f"  {n:>3} seeds  vmapped {fmt(wall['vmapped'], '.1f')} s ({fmt(comp['vmapped'], '.0f')} compiles)"
        if "sequential" in wall:
            line += (
                f"  sequential {fmt(wall['sequential'], '.1f')} s ({fmt(comp['sequential'], '.0f')} compiles)"
                f"  ratio {fmt(row['sequential_over_vmapped'], '.2f')}"
            )
        v = row.get("vmapped")
        if v is not None:
            peak = "-" if v["device_peak_bytes"] is None else f"{v['device_peak_bytes'] / 2**20:.0f} MiB"
            steady = "-" if v["steady_env_steps_per_s"] is None else f"{v['steady_env_steps_per_s']:.0f}"
            line += (
                f"  | {v['runs_per_s']:.2f} runs/s, steady {steady} env steps/s (all runs), device peak {peak}, "
                f"host peak {v['host_peak_rss_bytes'] / 2**20:.0f} MiB"
            )
        print(line)


def _counts(text: str) -> int:
    """An argparse type: a run count >= 1, or an error naming the value."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; allowed: an integer >= 1")
    return int(text)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run this part alone: ``python -m benchmarks.bench_seeds [--quick] [--counts N ...] [--method M] ...``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke run")
    parser.add_argument("--repeats", type=_counts, default=None, help="timed repeats per side")
    parser.add_argument("--counts", type=_counts, nargs="+", default=None, help="seeds per call (default 1 4 16)")
    parser.add_argument("--method", choices=sj.MASK_METHODS, default="dense", help="a mask-only method (default dense)")
    parser.add_argument("--no-sequential", action="store_true", help="time the vmapped call alone")
    parser.add_argument("--name", default=None, help="the JSON's name (default seeds, or seeds_quick)")
    args = parser.parse_args(argv)
    results = bench(args.quick, args.repeats, args.counts, args.method, not args.no_sequential)
    print_report(results)
    name = args.name or ("seeds_quick" if args.quick else "seeds")
    print("wrote", write_json(name, results))
    return results


if __name__ == "__main__":
    main()
