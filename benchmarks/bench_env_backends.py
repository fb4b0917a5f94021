"""Benchmark: env steps per second and compile time of each brax physics backend (or of the DMC tasks).

For each (env, backend) pair, in a fresh subprocess (so one pair's compile
caches, memory or crash cannot affect another, and a pair that hangs can be
stopped at ``--timeout`` seconds):

1. ``envs.make_env(env, backend=backend, num_envs=N, episode_length=1000)``
   (episode, vmap and auto-reset wrappers, as training uses them);
2. ``compile_s``: the ahead-of-time compile (``jax.jit(...).lower(...).compile()``)
   of one ``lax.scan`` of ``--steps`` env steps with actions drawn uniformly
   from ``[-1, 1]`` inside the scan;
3. one warm-up call, then ``--repeats`` timed calls, each blocked on its
   result; ``steps_per_s = N * steps / best call time`` (env steps, i.e. one
   step of one of the N environments; ``median_steps_per_s`` uses the median).

Pairs that fail to build, compile or run are recorded with ``status`` and the
error instead of figures; pairs brax does not support (swimmer is
generalized-only) are recorded as ``unsupported`` without a subprocess.

``--dmc`` measures every DeepMind Control task of MuJoCo Playground
(``envs.PLAYGROUND_ENV_NAMES``) with MJX's ``jax`` implementation instead, into
``results/env_dmc.json``: which tasks are fast enough to train on a CPU.

Usage::

    python -m benchmarks.bench_env_backends [--envs halfcheetah hopper ...] [--backends ...]
        [--num-envs 16] [--steps 200] [--repeats 3] [--timeout 300] [--out PATH] [--note TEXT]
    python -m benchmarks.bench_env_backends --dmc [--envs CartpoleSwingup ...] [--timeout 900]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_ENVS = ("halfcheetah", "hopper", "inverted_pendulum", "reacher")
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "env_backends.json"
DMC_OUT = Path(__file__).resolve().parent / "results" / "env_dmc.json"


def measure_one(name: str, backend: str, num_envs: int, steps: int, repeats: int) -> dict:
    """Build, compile and time one (env, backend) pair in this process."""
    import jax
    import jax.numpy as jnp

    from envs import make_env

    t0 = time.perf_counter()
    env = make_env(name, backend=backend, num_envs=num_envs, episode_length=1000)
    action_size = env.action_size
    build_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    state = jax.block_until_ready(jax.jit(env.reset)(jax.random.PRNGKey(0)))
    reset_s = time.perf_counter() - t0

    def rollout(state, key):
        def body(state, i):
            action = jax.random.uniform(jax.random.fold_in(key, i), (num_envs, action_size), minval=-1.0, maxval=1.0)
            state = env.step(state, action)
            return state, state.reward

        state, rewards = jax.lax.scan(body, state, jnp.arange(steps))
        return state, rewards.sum()

    key = jax.random.PRNGKey(1)
    t0 = time.perf_counter()
    compiled = jax.jit(rollout).lower(state, key).compile()
    compile_s = time.perf_counter() - t0

    state, total = jax.block_until_ready(compiled(state, key))  # warm-up
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        state, total = jax.block_until_ready(compiled(state, jax.random.fold_in(key, r)))
        times.append(time.perf_counter() - t0)
    finite = bool(jnp.isfinite(total)) and bool(jnp.all(jnp.isfinite(state.obs)))
    return {
        "status": "ok" if finite else "non-finite",
        "steps_per_s": num_envs * steps / min(times),
        "median_steps_per_s": num_envs * steps / statistics.median(times),
        "compile_s": compile_s,
        "build_s": build_s,
        "reset_compile_and_run_s": reset_s,
        "call_s": times,
        "observation_size": int(env.observation_size),
        "action_size": int(action_size),
    }


def run_pair(name: str, backend: str, args: argparse.Namespace) -> dict:
    """Measure one pair in a subprocess; never raises."""
    from envs import supported_backends

    row = {"env": name, "backend": backend}
    if backend not in supported_backends(name):
        return row | {"status": "unsupported", "error": f"{name} supports only {supported_backends(name)}"}
    cmd = [sys.executable, "-m", "benchmarks.bench_env_backends", "--one", name, backend]
    cmd += ["--num-envs", str(args.num_envs), "--steps", str(args.steps), "--repeats", str(args.repeats)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, cwd=Path(__file__).parents[1])
    except subprocess.TimeoutExpired:
        return row | {"status": "timeout", "error": f"no result within {args.timeout} s"}
    row["wall_s"] = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        return row | {"status": "failed", "error": f"exit {proc.returncode}: {err[:500]}"}
    return row | json.loads(lines[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", nargs="+", default=None, help="default: 4 brax envs, or every DMC task with --dmc")
    p.add_argument("--backends", nargs="+", default=None, help="default: all of envs.BACKENDS (jax with --dmc)")
    p.add_argument("--dmc", action="store_true", help="MuJoCo Playground's DM Control tasks instead of brax's")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per (env, backend) subprocess")
    p.add_argument("--out", type=Path, default=None, help="default: results/env_backends.json (env_dmc.json)")
    p.add_argument("--note", default="", help="free text saved with the results, e.g. the machine's load")
    p.add_argument("--one", nargs=2, metavar=("ENV", "BACKEND"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.one:
        print(json.dumps(measure_one(*args.one, args.num_envs, args.steps, args.repeats)), flush=True)
        return

    import brax
    import jax

    from envs import BACKENDS, PLAYGROUND_ENV_NAMES

    args.envs = args.envs or list(PLAYGROUND_ENV_NAMES if args.dmc else DEFAULT_ENVS)
    args.out = args.out or (DMC_OUT if args.dmc else DEFAULT_OUT)
    backends = args.backends or (["jax"] if args.dmc else list(BACKENDS))
    rows = []
    print(f"{'env':26s} {'backend':12s} {'steps/s':>10s} {'compile s':>10s}  status", flush=True)
    for name in args.envs:
        for backend in backends:
            row = run_pair(name, backend, args)
            rows.append(row)
            sps = f"{row['steps_per_s']:10.0f}" if "steps_per_s" in row else f"{'-':>10s}"
            comp = f"{row['compile_s']:10.1f}" if "compile_s" in row else f"{'-':>10s}"
            print(f"{name:26s} {backend:12s} {sps} {comp}  {row['status']} {row.get('error', '')}", flush=True)

    result = {
        "benchmark": "env_dmc" if args.dmc else "env_backends",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()}-core CPU",
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "brax": brax.__version__,
        "command": " ".join(["python -m benchmarks.bench_env_backends", *(argv if argv is not None else sys.argv[1:])]),
        "config": {"num_envs": args.num_envs, "steps": args.steps, "repeats": args.repeats, "episode_length": 1000},
        "note": args.note,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
