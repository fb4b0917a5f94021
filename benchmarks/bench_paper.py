"""Benchmark: a ``paper``-preset subset end to end, for an accelerator (part 6 of the suite).

SAC on halfcheetah at sparsity 0.9 with the ``paper`` preset's protocol
(batch 256, lr 3e-4, SNIP base score, SET/RigL every 1000 updates, 1 env, 1
update per env step) at its global distribution (where layers can fall short
of their connectivity target, so TAR acts) and both arms of its width axis
(256 and 1024 units), methods dense, static, tar, set and rigl x 5 seeds,
``--total-steps`` env steps per run (default 100k). It runs the sweep of
``sparse-rl sweep`` (per width three compiled programs: dense+static+tar
vmapped, set, rigl) into ``benchmarks/results/paper_sweep_<steps>/`` and
reports, per cell and method, the sweep's final return (mean and 95% CI over
seeds), and per batch the steady env steps/s and updates/s summed
over its vmapped runs (chunks after the first) and the wall time.

The sweep checkpoints every chunk, so an interrupted run (for instance one
cut by a per-command time limit) continues where it stopped when the same
command is run again; nothing finished is recomputed.

This part runs only when asked (``python -m benchmarks --only paper``): on a
CPU its full budget takes many hours. ``--quick`` is a CPU smoke run (2k
steps, 64-64 networks, 2 seeds).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents import results as results_lib
from agents.experiments.sweep import PRESETS, run_sweep, stored_plan
from benchmarks.common import RESULTS_DIR, write_json

METHODS = ("dense", "static", "tar", "set", "rigl")
ENV, ALGO, SPARSITY, SEEDS = "halfcheetah", "sac", 0.9, 5
DISTRIBUTIONS, WIDTHS = ("global",), (256, 1024)
DEFAULT_STEPS = 100_000


def sweep_config(quick: bool, total_steps: int | None = None):
    """The ``paper`` preset cut to this part's cell (``quick``: a tiny CPU smoke run)."""
    cfg = PRESETS["paper"]
    train = dataclasses.replace(cfg.train, total_steps=DEFAULT_STEPS)
    widths = WIDTHS
    if quick:
        widths = (32, 64)
        train = dataclasses.replace(
            train, total_steps=2_000, warmup_steps=500, chunk_steps=500, hidden=(64, 64), batch_size=64,
            eval_episodes=2, episode_length=200,
        )  # fmt: skip
    if total_steps is not None:
        train = dataclasses.replace(train, total_steps=total_steps)
    return dataclasses.replace(
        cfg, envs=(ENV,), algos=(ALGO,), sparsities=(SPARSITY,), methods=METHODS, seeds=2 if quick else SEEDS,
        distributions=DISTRIBUTIONS, widths=widths, train=train,
    )  # fmt: skip


def summarize(out: Path, cfg, rows: list[dict]) -> dict[str, Any]:
    """Per-cell, per-method returns (the sweep's summary ``rows``) and per-group throughput (its curves)."""
    returns = {
        f"{r['hidden']} {r['distribution']} {r['method']}": {
            k: r[k] for k in ("mean", "ci_low", "ci_high", "curve_mean", "iqm", "n_seeds", "n_diverged")
        }
        for r in rows
    }
    groups = {}
    for batch in cfg.planned_batches(stored_plan(out)):
        train = cfg.run_config(batch.runs[0])
        # steps_per_s and wall_s are host-measured per chunk and shared by a batch's vmapped runs.
        curve = results_lib.read_run(results_lib.run_folder(out, cfg.run_id(batch.runs[0]))).curve
        sps = statistics.median([row["steps_per_s"] for row in curve[1:]] or [curve[0]["steps_per_s"]])
        groups[batch.name] = {
            "runs": len(batch.runs),
            "env_steps_per_s": sps,
            "updates_per_s": sps * train.updates_per_step / train.num_envs,
            "train_wall_s": float(sum(row["wall_s"] for row in curve)),
            "chunks": len(curve),
        }
    return {"returns": returns, "groups": groups}


def bench(quick: bool = False, total_steps: int | None = None) -> dict[str, Any]:
    cfg = sweep_config(quick, total_steps)
    steps = cfg.train.total_steps
    out = RESULTS_DIR / (f"paper_sweep_quick_{steps}" if quick else f"paper_sweep_{steps}")
    resume = (out / results_lib.CONFIG_FILE).is_file()
    start = time.perf_counter()
    rows = run_sweep(cfg, out, resume=resume, show_progress=False)
    return {
        "settings": {
            "quick": quick,
            "env": ENV,
            "algo": ALGO,
            "sparsity": SPARSITY,
            "methods": METHODS,
            "distributions": cfg.distributions,
            "widths": cfg.widths,
            "seeds": cfg.seeds,
            "total_steps": steps,
            "config": dataclasses.asdict(cfg.train),
            "sweep_dir": str(out),
            "resumed": resume,
        },
        "wall_seconds_this_call": time.perf_counter() - start,
        **summarize(out, cfg, rows),
    }


def print_report(results: dict[str, Any]) -> None:
    s = results["settings"]
    print(
        f"\npaper subset: {s['env']} {s['algo']} sparsity {s['sparsity']}, {s['total_steps']} env steps, "
        f"{s['seeds']} seeds"
    )
    for group, g in results["groups"].items():
        print(
            f"  {group:<44} {g['runs']} runs: {g['env_steps_per_s']:.0f} env steps/s, "
            f"{g['updates_per_s']:.0f} updates/s (summed over runs), training wall {g['train_wall_s']:.0f} s"
        )
    for method, r in results["returns"].items():
        print(f"  {method:<24} final return {r['mean']:.1f} [{r['ci_low']:.1f}, {r['ci_high']:.1f}]")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run this part alone: ``python -m benchmarks.bench_paper [--quick] [--total-steps N]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny CPU smoke run")
    parser.add_argument("--total-steps", type=int, default=None, help=f"env steps per run (default {DEFAULT_STEPS})")
    args = parser.parse_args(argv)
    if args.total_steps is not None and args.total_steps < 1:
        parser.error(f"--total-steps {args.total_steps} must be a positive int")
    results = bench(args.quick, args.total_steps)
    print_report(results)
    print("wrote", write_json("paper_quick" if args.quick else "paper", results))
    return results


if __name__ == "__main__":
    main()
