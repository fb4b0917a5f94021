"""Helpers shared by the test modules: small networks and sparse transforms, the learning criterion, hand-made
critics, env rollouts, small sweeps and their results, and the CLI's refusals."""

import json
import math
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sparse_jax as sj
from agents import results
from agents.algorithms.config import SparsityConfig, TrainConfig
from agents.experiments import grid

# One-step bandit (Q(s, a) = -(a - s)^2 exactly), tiny networks, 4 chunks of 500 env steps.
BANDIT = dict(
    env="probe_bandit",
    episode_length=1,
    total_steps=2500,
    warmup_steps=500,
    chunk_steps=500,
    num_envs=4,
    updates_per_step=2,
    hidden=(32, 32),
    batch_size=64,
    eval_episodes=8,
    actor_lr=1e-3,
    critic_lr=1e-3,
)


def mlp_params(key, sizes):
    """Params of a ReLU MLP with layer sizes ``sizes = (in, h1, ..., out)``: ``Dense_0 .. Dense_n``."""

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            for width in sizes[1:-1]:
                x = nn.relu(nn.Dense(width)(x))
            return nn.Dense(sizes[-1])(x)

    return MLP().init(key, jnp.zeros((1, sizes[0])))["params"]


class _Solved(Exception):
    """Raised from the chunk callback to end training once a seed has learned."""


def evaluations_until_solved(config, seeds, threshold=500.0):
    """Evaluation returns (chunks, seeds) of ``config`` trained until a seed reaches ``threshold``.

    Training stops after the first evaluation at which any seed's return is at
    least ``threshold``, or when the config's steps run out; the last row then
    tells whether a seed learned within the budget. Dense SAC and TD3 on
    inverted_pendulum jump from about 100 to 1000 once they learn, so stopping
    at the first solved evaluation asks the same question as training to the
    end and checking it, in about half the time.
    """
    import numpy as np

    from agents.execution.runner import run

    returns = []

    def on_chunk(report):
        returns.append(np.asarray(report.metrics["eval_return"]))
        if returns[-1].max() >= threshold:
            raise _Solved

    try:
        run(config, seeds=seeds, on_chunk=on_chunk)
    except _Solved:
        pass
    return np.stack(returns)


def pendulum_config(algo, total_steps, **overrides):
    """Dense ``algo`` on brax's inverted_pendulum, sized to learn in about a minute on 2 CPU cores.

    The return threshold used with it, 500 of a possible 1000, is far above what no learning
    gives: zero torque keeps the pole up about 33 steps, uniform random actions about 5, while a
    hand-tuned PD controller reaches 1000 (measured with these wrappers).
    """
    from agents.algorithms.config import SACConfig, TrainConfig

    kwargs = dict(
        env="inverted_pendulum",
        algo=algo,
        episode_length=1000,
        total_steps=total_steps,
        warmup_steps=1000,
        chunk_steps=2000,
        num_envs=4,
        updates_per_step=4,
        hidden=(64, 64),
        batch_size=128,
        eval_episodes=4,
        actor_lr=1e-3,
        critic_lr=1e-3,
        sac=SACConfig(alpha_lr=1e-3),
    )
    kwargs.update(overrides)
    return TrainConfig(**kwargs)


# Hand-made twin critic for the SAC/TD3 loss tests: Q1 = w1 * obs + action, Q2 = w2 * obs.
HAND_CRITIC = {"w1": 1.0, "w2": 2.0}
HAND_TARGET = {"w1": 0.5, "w2": 1.0}


def hand_q(p, obs, act):
    """The hand-made twin critic, shape ``(2, batch)``."""
    return jnp.stack([p["w1"] * obs[:, 0] + act[:, 0], p["w2"] * obs[:, 0]])


def hand_batch(next_obs):
    """Two transitions (the second terminal) with obs 1, 2, actions 0.1, 0.2, rewards 1, 2."""
    from agents.algorithms.replay import Transition

    return Transition(
        obs=jnp.array([[1.0], [2.0]]),
        action=jnp.array([[0.1], [0.2]]),
        reward=jnp.array([1.0, 2.0]),
        discount=jnp.array([1.0, 0.0]),
        mask=jnp.array([1.0, 1.0]),
        next_obs=jnp.array([[next_obs[0]], [next_obs[1]]]),
    )


# --- sparse transforms on a small MLP --------------------------------------------------------------------------------


def static_sparse_mlp(seed=0, sparsity=0.8):
    """A 6 -> 24 -> 24 -> 3 MLP's params, pruned to ``sparsity`` (random scores, static), and its masks."""
    params = mlp_params(jax.random.key(seed), (6, 24, 24, 3))
    init = sj.sparse_init(jax.random.key(seed + 1), params, sparsity, method="static", score="random")
    return init.params, init.masks


def mlp_loss(params, x):
    """The squared error of :func:`static_sparse_mlp`'s network against ``sin`` of the first 3 inputs."""
    h = jax.nn.relu(x @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"])
    h = jax.nn.relu(h @ params["Dense_1"]["kernel"] + params["Dense_1"]["bias"])
    y = h @ params["Dense_2"]["kernel"] + params["Dense_2"]["bias"]
    return jnp.mean((y - jnp.sin(x[:, :3])) ** 2)


def bind_masks(tx, masks, key=None):
    """``tx`` whose ``init`` also puts ``masks`` (and ``key``) into the state, as ``with_masks`` does."""
    return optax.GradientTransformationExtraArgs(lambda p: sj.with_masks(tx.init(p), masks, key=key), tx.update)


def train_steps(tx, params, steps, seed=0, scale=1.0):
    """Train ``steps`` steps of :func:`mlp_loss`; return per-step (params, masks, state)."""
    state = tx.init(params)
    update = jax.jit(tx.update)
    grad = jax.jit(jax.grad(mlp_loss))
    out = []
    for t in range(steps):
        x = jax.random.normal(jax.random.fold_in(jax.random.key(seed), t), (32, 6))
        g = jax.tree.map(lambda a: a * scale, grad(params, x))
        u, state = update(g, state, params)
        params = optax.apply_updates(params, u)
        out.append((params, sj.get_masks(state), state))
    return out


# --- envs ------------------------------------------------------------------------------------------------------------


def rollout(env, state, actions):
    """Scan ``env.step`` over ``actions`` (T, num_envs, action_size); the stacked states."""

    def body(s, a):
        s = env.step(s, a)
        return s, s

    return jax.lax.scan(body, state, actions)[1]


# --- training configs and sweeps on the bandit probe -----------------------------------------------------------------

# Two chunks of the one-step bandit with tiny networks: the config of the checkpoint, policy and render tests.
SMALLER = dict(total_steps=600, warmup_steps=200, chunk_steps=200, updates_per_step=1, hidden=(16, 16), batch_size=32,
               eval_episodes=4)  # fmt: skip
SMALL_BANDIT = TrainConfig(**{**BANDIT, **SMALLER}, sparse=SparsityConfig(sparsity=0.8))

# A grid of 2 sparsities x static, tar and SET on the bandit, 2 seeds: two compiled programs (the batching tests').
BATCHING_TRAIN = TrainConfig(**BANDIT, sparse=SparsityConfig(score="magnitude", distribution="uniform", delta_t=100))
BATCHING_GRID = grid.SweepConfig(
    envs=("probe_bandit",), sparsities=(0.8, 0.9), methods=("static", "tar", "set"), seeds=2, train=BATCHING_TRAIN
)

# The tolerance docs/sweeps.md states for results of different batch shapes.
RTOL, ATOL = 1e-5, 1e-6
CURVE_KEYS = ("eval_return", "critic_loss", "actor_loss", "actor_density", "critic_density", "actor_changed")


def curves(out: Path) -> dict[str, list[dict]]:
    """Per-run curves of the results directory ``out`` without the host timings (which differ between runs)."""
    return {
        p.parent.name: [
            {k: v for k, v in row.items() if k not in ("wall_s", "steps_per_s")} for row in results.read_jsonl(p)
        ]
        for p in sorted((out / "runs").glob("*/curve.jsonl"))
    }


def assert_curves_close(got, want):
    """The first evaluation to float32 rounding (RTOL, ATOL), the rest to the drift training adds to it.

    A batch of another shape compiles to other float code, so the last bits
    differ; training then grows the difference. Measured on this grid split
    into batches of 3 against one batch of 8 (AVX2, and under XLA's AVX and
    SSE4.2 code): at most 2.4e-7 relative at the first evaluation and 1.6e-4
    relative (5.3e-6 absolute) at the fourth.
    """
    assert set(got) == set(want)
    for run in want:
        for key in CURVE_KEYS:
            a, b = [row[key] for row in got[run]], [row[key] for row in want[run]]
            np.testing.assert_allclose(a[0], b[0], rtol=RTOL, atol=ATOL, err_msg=f"{run} {key}, first evaluation")
            np.testing.assert_allclose(a, b, rtol=2e-3, atol=1e-4, err_msg=f"{run} {key}")


# --- the CLI's refusals ----------------------------------------------------------------------------------------------

# The quick preset on the bandit probe, 2 seeds: a sweep that every refusal test stops before it trains.
QUICK_BANDIT_ARGS = ["--preset", "quick", "--envs", "probe_bandit", "--seeds", "2", "--no-progress"]


def refused(capsys, argv, code=2) -> str:
    """Run the CLI, expect ``SystemExit(code)``, return its one-line error."""
    from agents.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("sparse-rl: error: ") and "\n" not in err, err
    return err


def file_tree(path: Path) -> dict[str, bytes]:
    """Every file below ``path`` with its bytes."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def sweep_dir(path: Path, **overrides) -> grid.SweepConfig:
    """A results directory that holds a tiny sweep's config.json (and one run file), as an earlier sweep leaves."""
    cfg = grid.SweepConfig(
        envs=("probe_bandit",), seeds=2, train=grid.PRESETS["quick"].train, checkpoint_every=1, **overrides
    )
    results.atomic_write_json(path / "config.json", {"sweep": grid.config_to_json(cfg)})
    results.atomic_write_text(path / "runs" / "a-run" / "curve.jsonl", '{"chunk": 0}\n')
    return cfg


# --- a hand-made results directory -----------------------------------------------------------------------------------

N_EVALS = 20  # last 10% = the last 2 evaluations
RUN_PARAMS = {
    "actor": {"active": 10, "prunable": 100, "total": 110},
    "critic": {"active": 20, "prunable": 200, "total": 220},
}
# Final returns per env and method, one per seed; hand-checked gains in test_report.py and test_stats.py.
FINALS = {
    "hopper": {"static": [100, 110, 120], "tar": [130, 140, 150], "set": [105, 115, 125], "rigl": [120, 120, 120]},
    "walker2d": {"static": [-60, -50, -40], "tar": [-30, -20, -10], "set": [-45, -35, -25], "rigl": [-40, -40, -40]},
}


def _topology(density):
    rows = []
    for i, (n_in, n_out) in enumerate([(4, 8), (8, 2)]):
        active = round(density * n_in * n_out)
        rows.append(
            {
                "name": f"Dense_{i}/kernel",
                "shape": [n_in, n_out],
                "size": n_in * n_out,
                "active": active,
                "density": active / (n_in * n_out),
                "proxy": float(n_in + n_out),
                "need": 0.0,
                "zero_fan_in": 2 - i,
                "zero_fan_out": i,
            }
        )
    return {"actor": rows, "critic": rows}


def write_run(root, env, method, seed, final, diverged=False, algo="sac", sparsity=0.9):
    """One run whose last two evaluations average to ``final`` (NaN from chunk 10 on if diverged)."""
    rid = results.run_id(env, algo, sparsity, method, seed)
    folder = root / "runs" / rid
    folder.mkdir(parents=True)
    returns = list(np.linspace(0.0, final - 1.0, N_EVALS - 1)) + [final + 1.0]
    if diverged:
        returns[10:] = [math.nan] * (N_EVALS - 10)
    curve = [
        {"chunk": i, "env_steps": 1000 * (i + 1), "eval_return": r, "eval_return_std": 1.0, "critic_loss": 0.5}
        for i, r in enumerate(returns)
    ]
    (folder / "curve.jsonl").write_text("".join(json.dumps(c) + "\n" for c in curve))
    run = {
        "run_id": rid,
        "env": env,
        "algo": algo,
        "sparsity": sparsity,
        "method": method,
        "seed": seed,
        "diverged": diverged,
        "chunks_done": N_EVALS,
        "total_chunks": N_EVALS,
        "delta_t": 100,
        "total_updates": 1000,
        "end_fraction": 0.8,
        "params": RUN_PARAMS,
        "topology": _topology(0.1 if method == "static" else 0.2),
        "base_topology": _topology(0.1),
    }
    (folder / "run.json").write_text(json.dumps(run))
