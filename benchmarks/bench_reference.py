"""Benchmark: does our dense SAC learn as well as a reference learner? Ours vs brax's SAC trainer on a DMC task.

A sparse-vs-dense comparison means little if the dense baseline learns worse
than a reference implementation. Both learners train on the same MuJoCo
Playground task (``TASK``, MJX's jax implementation; ours through
:func:`envs.make_env`, brax's through Playground's own
``wrap_for_brax_training``) with the same settings as far as both allow:

- env steps (warm-up included), episode length 1000, action repeat 1;
- ``NUM_ENVS`` parallel envs, ``UPDATES`` gradient updates per iteration;
- 256-256 ReLU actor and twin critics, batch 256, Adam at 3e-4 for actor,
  critics and temperature (brax has one learning rate), discount 0.99,
  tau 0.005, initial temperature 1, no observation normalisation, reward
  scale 1;
- deterministic evaluation on ``EVAL_EPISODES`` episodes after every chunk.

Known differences, left as they are: brax's SAC sets the target entropy to
``-|A| / 2`` (ours ``-|A|``), differentiates its temperature loss through
``exp(log alpha)`` (ours through ``log alpha``), initialises kernels with
LeCun-uniform (ours flax's LeCun-normal), fills its replay buffer with its
initial stochastic policy (ours with uniform random actions), and its wrapper
restarts a finished env from the episode's cached first state (ours from a
fresh random one; with 1000-step episodes and no termination that happens
only at the time limit).

The seeds are interleaved, one seed per call on each side (brax, ours, ours,
brax, ...). Reported per side: every evaluation, the final return (the last
evaluation) and the whole-curve mean, each with its mean and 95% bootstrap
CI over seeds, and the probability that ours beats brax's on each
(``agents.results.stats``, as the sweep reports use).

Usage: ``python -m benchmarks --only reference`` (about an hour on a 2-core CPU) or
``python -m benchmarks.bench_reference [--quick]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from agents.algorithms.config import SACConfig, TrainConfig
from agents.results import stats
from benchmarks.bench_peer import run_brax, run_ours
from benchmarks.common import part_main

TASK = "CartpoleSwingup"
SEEDS = (0, 1, 2, 3, 4)
NUM_ENVS = 4
UPDATES = 4  # one gradient update per env step on both sides
EVAL_EPISODES = 4


def make_config(quick: bool) -> TrainConfig:
    """Our settings; brax's arguments are derived from them (``benchmarks.bench_peer.run_brax``)."""
    config = TrainConfig(
        env=TASK,
        total_steps=40_000,
        warmup_steps=2_000,
        chunk_steps=4_000,
        episode_length=1000,
        num_envs=NUM_ENVS,
        updates_per_step=UPDATES,
        batch_size=256,
        hidden=(256, 256),
        actor_lr=3e-4,
        critic_lr=3e-4,
        sac=SACConfig(alpha_lr=3e-4, init_alpha=1.0),
        gamma=0.99,
        tau=0.005,
        eval_episodes=EVAL_EPISODES,
    )
    if quick:
        return dataclasses.replace(config, total_steps=2_000, warmup_steps=400, chunk_steps=800, hidden=(32, 32))
    return config


def _side(trials: list[dict[str, Any]]) -> dict[str, Any]:
    finals = [t["final_return"] for t in trials]
    curves = [float(np.mean(t["eval_return"])) for t in trials]
    return {
        "final_return": stats.seed_stats(finals),
        "curve_mean": stats.seed_stats(curves),
        "finals": finals,
        "curve_means": curves,
        "wall_s": [t["wall_s"] for t in trials],
    }


def bench(quick: bool = False) -> dict[str, Any]:
    """Train both sides on every seed, interleaved, and compare their returns."""
    config = make_config(quick)
    seeds = SEEDS[:2] if quick else SEEDS
    ours, brax = [], []
    for i, seed in enumerate(seeds):
        for side in ("brax", "ours") if i % 2 == 0 else ("ours", "brax"):
            if side == "brax":
                brax.append(run_brax(config, seed))
            else:
                ours.extend(run_ours(config, [seed]))
            last = (brax if side == "brax" else ours)[-1]
            print(f"  {side} seed {seed}: final {last['final_return']:.1f} ({last['wall_s']:.0f} s)", flush=True)
    for t in (*ours, *brax):
        t["curve_mean"] = float(np.mean(t["eval_return"]))
    poi = {
        key: stats.probability_of_improvement([t[key] for t in ours], [t[key] for t in brax])
        for key in ("final_return", "curve_mean")
    }
    return {
        "settings": {
            "quick": quick,
            "task": TASK,
            "seeds": list(seeds),
            "config": {k: v for k, v in dataclasses.asdict(config).items() if k != "sparse"},
        },
        "ours": _side(ours),
        "brax": _side(brax),
        "probability_ours_better": {k: {"p": v[0], "ci_low": v[1], "ci_high": v[2]} for k, v in poi.items()},
        "trials": {"ours": ours, "brax": brax},
    }


def print_report(results: dict[str, Any]) -> None:
    s = results["settings"]
    print(f"\nreference: dense SAC on {s['task']}, {s['config']['total_steps']} env steps, seeds {s['seeds']}")
    for side in ("ours", "brax"):
        row = results[side]
        f, c = row["final_return"], row["curve_mean"]
        print(
            f"  {side:<5} final {f['mean']:.1f} [{f['ci_low']:.1f}, {f['ci_high']:.1f}]  "
            f"whole curve {c['mean']:.1f} [{c['ci_low']:.1f}, {c['ci_high']:.1f}]  finals {row['finals']}"
        )
    for key, p in results["probability_ours_better"].items():
        print(f"  P(ours > brax), {key}: {p['p']:.2f} [{p['ci_low']:.2f}, {p['ci_high']:.2f}]")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run this part alone: ``python -m benchmarks.bench_reference [--quick]``."""
    return part_main("reference", __doc__, bench, print_report, argv, repeats=False)


if __name__ == "__main__":
    jax.config.parse_flags_with_absl()
    main()
