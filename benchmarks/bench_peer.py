"""Benchmark: dense SAC end to end, ours (``agents.execution.runner.run``) vs brax's own SAC trainer.

Same env (inverted_pendulum on its default backend from ``envs.DEFAULT_BACKENDS``),
episode length, one env stepped per iteration, batch 256, 256-256 actor and
critics, learning rate 3e-4 (brax's temperature optimizer is fixed at 3e-4, as
is ours by default), discount 0.99, tau 0.005, one gradient update per env
step on both sides (ours ``updates_per_step=1`` with ``num_envs=1``, brax
``grad_updates_per_step=1`` with ``num_envs=1``), the same env-step budget
(warm-up included), brax's ``min_replay_size`` = our ``warmup_steps``,
``normalize_observations=False``, ``reward_scaling=1``, deterministic
evaluation on 4 episodes after every chunk of ``chunk_steps`` env steps
(brax: ``num_evals = chunks + 1``, ``num_eval_envs=4``; brax also evaluates
once before training).

Known differences left as they are: brax fills the replay buffer with its
initial stochastic policy, ours with uniform random actions; brax evaluates
once more (at step 0).

Start-up with JAX's persistent compilation cache: each side trains one chunk
(warm-up plus ``chunk_steps``) in a fresh process, twice, sharing one empty
cache directory: the first call fills the cache, the second reads it (the
wall of the call and its XLA compilations are reported for both).

Measured per call (all in one process, the trials alternated
brax / ours-one-seed per seed, then ours with the 3 seeds vmapped in one call;
``--seeds``, ``--vmapped-seeds`` and ``--total-steps`` change those numbers and
``--no-startup`` leaves the start-up calls out, as the accelerator run does):
wall time including compilation, XLA compilations
(``jax.monitoring`` backend-compile events), steady env steps/s and updates/s
(chunks after the first: env steps of the chunk over its host wall time,
evaluation included on both sides), time from the call's start to the first
evaluation with return >= the threshold, and the return after each chunk.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from agents.algorithms.config import TrainConfig
from agents.execution.runner import run as train_run
from benchmarks.common import CompileCounter, fmt, install_device_put_replicated, summary, write_json
from envs import DEFAULT_BACKENDS

ENV = "inverted_pendulum"
THRESHOLD = 500.0
SEEDS = (0, 1, 2)
EVAL_EPISODES = 4


def make_config(quick: bool) -> TrainConfig:
    """The shared settings (ours); brax's arguments are derived from it."""
    if quick:
        return TrainConfig(
            env=ENV, total_steps=1_200, warmup_steps=200, chunk_steps=500, episode_length=100, hidden=(256, 256)
        )
    return TrainConfig(
        env=ENV,
        total_steps=20_000,
        warmup_steps=1_000,
        chunk_steps=1_000,
        episode_length=1000,
        num_envs=1,
        updates_per_step=1,
        batch_size=256,
        hidden=(256, 256),
        eval_episodes=EVAL_EPISODES,
    )


def _curve_stats(times: list[float], steps: list[int], returns: list[float], wall: float) -> dict[str, Any]:
    """Steady throughput and time to threshold from per-chunk host times (seconds since the call's start)."""
    deltas = np.diff(times)
    step_deltas = np.diff(steps)
    steady = [float(s / d) for s, d in zip(step_deltas[1:], deltas[1:], strict=True)]  # drop the compiling chunk
    hit = [t for t, r in zip(times, returns, strict=True) if r >= THRESHOLD]
    return {
        "wall_s": wall,
        "eval_env_steps": steps,
        "eval_return": returns,
        "eval_time_s": times,
        "steady_env_steps_per_s": statistics.median(steady) if steady else None,
        "time_to_threshold_s": hit[0] if hit else None,
        "final_return": returns[-1],
    }


def run_ours(config: TrainConfig, seeds: Sequence[int]) -> list[dict[str, Any]]:
    """``agents.execution.runner.run`` over ``seeds`` in one call; a result dict per seed (wall and compiles shared)."""
    times: list[float] = []
    steps: list[int] = []
    returns: list[np.ndarray] = []
    with CompileCounter() as counter:
        start = time.perf_counter()

        def on_chunk(report):
            times.append(time.perf_counter() - start)
            steps.append(int(report.metrics["env_steps"][0]))
            returns.append(np.asarray(report.metrics["eval_return"], dtype=float))

        train_run(config, list(seeds), on_chunk=on_chunk)
        wall = time.perf_counter() - start
    # Prepend the call's start (no eval at 0 on our side) so that the first chunk's delta includes compilation.
    out = []
    for i, seed in enumerate(seeds):
        rets = [float(r[i]) for r in returns]
        stats = _curve_stats([0.0, *times], [config.warmup_steps, *steps], [float("-inf"), *rets], wall)
        stats.update(
            seed=seed,
            seeds_in_call=len(seeds),
            compilations=counter.count,
            compile_s=counter.seconds,
            eval_env_steps=steps,
            eval_return=rets,
            eval_time_s=times,
        )
        out.append(stats)
    return out


def run_brax(config: TrainConfig, seed: int) -> dict[str, Any]:
    """brax's ``sac.train`` with the matched settings, one seed, on ``config.env``.

    A brax task is built on its default backend; a DeepMind Control task of
    MuJoCo Playground with MJX's jax implementation, wrapped by Playground's
    own wrapper for brax's trainers.
    """
    import brax.envs
    from brax.training.agents.sac import networks as sac_networks
    from brax.training.agents.sac import train as sac_train

    from envs import PLAYGROUND_ENV_NAMES

    install_device_put_replicated()
    wrap = {}
    if config.env in PLAYGROUND_ENV_NAMES:
        from envs.playground import load_task

        env = load_task(config.env)  # imports Playground quietly, so its wrapper module is imported next
        from mujoco_playground import wrapper

        wrap = {"wrap_env_fn": wrapper.wrap_for_brax_training}
    else:
        env = brax.envs.get_environment(config.env, backend=DEFAULT_BACKENDS[config.env])
    num_chunks = config.num_chunks
    times: list[float] = []
    steps: list[int] = []
    returns: list[float] = []
    with CompileCounter() as counter:
        start = time.perf_counter()

        def progress(step, metrics):
            times.append(time.perf_counter() - start)
            steps.append(int(step))
            returns.append(float(metrics["eval/episode_reward"]))

        sac_train.train(
            environment=env,
            num_timesteps=config.total_steps,
            episode_length=config.episode_length,
            action_repeat=config.action_repeat,
            num_envs=config.num_envs,
            num_eval_envs=config.eval_episodes,
            learning_rate=config.actor_lr,
            discounting=config.gamma,
            seed=seed,
            batch_size=config.batch_size,
            num_evals=num_chunks + 1,
            normalize_observations=False,
            reward_scaling=1.0,
            tau=config.tau,
            min_replay_size=config.warmup_steps,
            max_replay_size=config.capacity,
            grad_updates_per_step=config.updates_per_step,
            deterministic_eval=True,
            network_factory=functools.partial(sac_networks.make_sac_networks, hidden_layer_sizes=config.hidden),
            progress_fn=progress,
            **wrap,
        )
        wall = time.perf_counter() - start
    # times[0] is brax's step-0 evaluation (after its prefill); drop it from the threshold search.
    stats = _curve_stats(times, steps, returns, wall)
    stats.update(seed=seed, compilations=counter.count, compile_s=counter.seconds)
    stats["eval_env_steps"], stats["eval_return"], stats["eval_time_s"] = steps[1:], returns[1:], times[1:]
    return stats


def startup_call(side: str, quick: bool) -> dict[str, Any]:
    """One side's call with a budget of one chunk: wall seconds and XLA compilations."""
    config = dataclasses.replace(
        make_config(quick), total_steps=make_config(quick).warmup_steps + make_config(quick).chunk_steps
    )
    stats = run_brax(config, SEEDS[0]) if side == "brax" else run_ours(config, SEEDS[:1])[0]
    return {"wall_s": stats["wall_s"], "compilations": stats["compilations"], "compile_s": stats["compile_s"]}


def startup(quick: bool) -> dict[str, Any]:
    """Each side's one-chunk call in fresh processes with an empty, then a filled, compilation cache."""
    out: dict[str, Any] = {}
    for side in ("brax", "ours"):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache)
            code = (
                "import json, sys; from benchmarks.bench_peer import startup_call; "
                f"print('RESULT' + json.dumps(startup_call({side!r}, {quick!r})))"
            )
            calls = []
            for _ in ("fill", "read"):
                proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
                line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
                calls.append(json.loads(line.removeprefix("RESULT")))
            out[side] = {"empty_cache": calls[0], "filled_cache": calls[1]}
    return out


def _agg(trials: list[dict[str, Any]], key: str) -> dict[str, float] | None:
    values = [t[key] for t in trials if t[key] is not None]
    return summary(values) if values else None


def bench(
    quick: bool = False,
    seeds: int | None = None,
    vmapped_seeds: int | None = None,
    total_steps: int | None = None,
    with_startup: bool = True,
) -> dict[str, Any]:
    """Run the trials (alternating sides per seed) and summarize.

    Args:
      quick: tiny settings for a smoke run.
      seeds: one-seed calls per side (default 3; ``quick``: 1).
      vmapped_seeds: seeds of our one vmapped call (default: ``seeds``).
      total_steps: env steps per run (default: the config's, 20k; ``quick``: 1200).
      with_startup: also time the one-chunk start-up calls in fresh processes (4 more compiling calls).
    """
    config = make_config(quick)
    if total_steps is not None:
        config = dataclasses.replace(config, total_steps=total_steps)
    seeds = tuple(range(seeds)) if seeds is not None else SEEDS[:1] if quick else SEEDS
    vmapped_seeds = tuple(range(vmapped_seeds)) if vmapped_seeds is not None else seeds
    brax_trials, ours_trials = [], []
    for i, seed in enumerate(seeds):
        order = ("brax", "ours") if i % 2 == 0 else ("ours", "brax")
        for side in order:
            if side == "brax":
                brax_trials.append(run_brax(config, seed))
            else:
                ours_trials.extend(run_ours(config, [seed]))
    vmapped = run_ours(config, vmapped_seeds)

    ups = config.updates_per_step / config.num_envs
    sides = {"brax_1_seed": brax_trials, "ours_1_seed": ours_trials, "ours_vmapped": vmapped}
    table = {}
    for name, trials in sides.items():
        steady = _agg(trials, "steady_env_steps_per_s")
        if name == "ours_vmapped" and steady is not None:
            steady = {k: v * len(vmapped_seeds) for k, v in steady.items()}  # env steps of all seeds per second
        table[name] = {
            "wall_s": summary([t["wall_s"] for t in (trials if name != "ours_vmapped" else trials[:1])]),
            "compilations": summary([t["compilations"] for t in trials]),
            "steady_env_steps_per_s": steady,
            "steady_updates_per_s": None if steady is None else {k: v * ups for k, v in steady.items()},
            "time_to_threshold_s": _agg(trials, "time_to_threshold_s"),
            "reached_threshold": sum(t["time_to_threshold_s"] is not None for t in trials),
            "final_return": summary([t["final_return"] for t in trials]),
            "runs": len(trials),
        }
    # Like for like: per seed, brax wall / ours wall (one seed per call on both sides).
    speedup = summary([b["wall_s"] / o["wall_s"] for b, o in zip(brax_trials, ours_trials, strict=True)])
    # Vmapped: brax's wall for as many seeds as our one call trains (its mean per seed times their number).
    speedup_vmapped = statistics.mean(b["wall_s"] for b in brax_trials) * len(vmapped_seeds) / vmapped[0]["wall_s"]
    ret_ours = statistics.mean(t["final_return"] for t in ours_trials)
    ret_brax = statistics.mean(t["final_return"] for t in brax_trials)
    return {
        "settings": {
            "quick": quick,
            "env": ENV,
            "backend": DEFAULT_BACKENDS[ENV],
            "config": {
                **{
                    k: getattr(config, k)
                    for k in (
                        "total_steps",
                        "warmup_steps",
                        "chunk_steps",
                        "episode_length",
                        "num_envs",
                        "updates_per_step",
                        "batch_size",
                        "hidden",
                        "actor_lr",
                        "critic_lr",
                        "gamma",
                        "tau",
                        "eval_episodes",
                    )
                },
                "alpha_lr": config.sac.alpha_lr,
            },  # fmt: skip
            "gradient_updates_per_env_step": ups,
            "threshold": THRESHOLD,
            "seeds": list(seeds),
            "vmapped_seeds": len(vmapped_seeds),
        },
        "table": table,
        "speedup_end_to_end_1_seed": speedup,
        "speedup_end_to_end_vmapped_vs_brax_sequential": speedup_vmapped,
        "mean_final_return": {"ours_1_seed": ret_ours, "brax": ret_brax},
        "target": "ours >= 1.5x faster end to end (1 seed, like for like) with equal or better return",
        "meets_target": speedup["median"] >= 1.5 and ret_ours >= ret_brax,
        "trials": sides,
        **({"startup": startup(quick)} if with_startup else {}),
    }


def print_report(results: dict[str, Any]) -> None:
    s = results["settings"]
    print(f"\npeer: dense SAC, {s['env']} ({s['backend']}), {s['config']['total_steps']} env steps, seeds {s['seeds']}")
    for name, row in results["table"].items():
        steady = row["steady_env_steps_per_s"]
        ttt = row["time_to_threshold_s"]
        print(
            f"  {name:<14} wall {fmt(row['wall_s'], '.1f')} s  compiles {fmt(row['compilations'], '.0f')}  "
            f"steady {fmt(steady, '.0f') if steady else '-'} steps/s  "
            f"t>={s['threshold']:.0f}: {fmt(ttt, '.1f') if ttt else '-'} s ({row['reached_threshold']}/{row['runs']})  "
            f"return {fmt(row['final_return'], '.1f')}"
        )
    print(f"  speedup (brax/ours, 1 seed): {fmt(results['speedup_end_to_end_1_seed'], '.2f')}")
    print(f"  speedup (brax x seeds / ours vmapped): {results['speedup_end_to_end_vmapped_vs_brax_sequential']:.2f}")
    for side, row in results.get("startup", {}).items():
        e, f = row["empty_cache"], row["filled_cache"]
        print(
            f"  start-up {side}: empty cache {e['wall_s']:.1f} s ({e['compilations']} compiles), "
            f"filled cache {f['wall_s']:.1f} s ({f['compilations']} compiles)"
        )


def _positive(text: str) -> int:
    """An argparse type: an integer >= 1, or an error naming the value."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; allowed: an integer >= 1")
    return value


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run this part alone: ``python -m benchmarks.bench_peer [--quick] [--seeds N] [--vmapped-seeds N] ...``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke run")
    parser.add_argument("--seeds", type=_positive, default=None, help="one-seed calls per side (default 3)")
    parser.add_argument("--vmapped-seeds", type=_positive, default=None, help="seeds of our vmapped call")
    parser.add_argument("--total-steps", type=_positive, default=None, help="env steps per run (default 20000)")
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up calls in fresh processes")
    args = parser.parse_args(argv)
    results = bench(args.quick, args.seeds, args.vmapped_seeds, args.total_steps, not args.no_startup)
    print_report(results)
    print("wrote", write_json("peer_quick" if args.quick else "peer", results))
    return results


if __name__ == "__main__":
    jax.config.parse_flags_with_absl()
    main()
