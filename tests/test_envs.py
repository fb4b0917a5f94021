"""envs: make_env's wrappers, validation, and the probe envs' analytic values.

Only one brax env is compiled (inverted_pendulum, 2 envs, a 4-step scan); the
probes compile in well under a second each.
"""

import os
import time

import brax.envs
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax.envs.base import State
from brax.envs.wrappers import training

import envs
from envs import BACKENDS, BRAX_ENV_NAMES, DEFAULT_BACKENDS, ENV_NAMES, ProbeBandit, ProbeConstant, make_env


def rollout(env, state, actions):
    """Scan ``env.step`` over ``actions`` (T, num_envs, action_size); the stacked states."""

    def body(s, a):
        s = env.step(s, a)
        return s, s

    return jax.lax.scan(body, state, actions)[1]


def test_names_and_defaults():
    assert set(ENV_NAMES) == set(BRAX_ENV_NAMES) | set(envs.PLAYGROUND_ENV_NAMES) | {"probe_bandit", "probe_constant"}
    assert tuple(envs.PROBE_ENVS) == envs.PROBE_ENV_NAMES  # the registry's names and the classes agree
    assert set(DEFAULT_BACKENDS) == set(BRAX_ENV_NAMES)
    for name, backend in DEFAULT_BACKENDS.items():
        assert backend in envs.supported_backends(name), (name, backend)
    assert set(BACKENDS) == {"generalized", "positional", "spring", "mjx"}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "cheetah"}, r"env='cheetah' is not allowed; allowed: .*halfcheetah.*probe_bandit"),
        ({"name": "hopper", "backend": "mujoco"}, r"backend='mujoco' is not allowed; allowed: generalized.*mjx"),
        ({"name": "probe_bandit", "backend": "mujoco"}, r"backend='mujoco' is not allowed"),
        (
            {"name": "swimmer", "backend": "positional"},
            r"backend='positional' is not allowed; allowed: generalized \(what brax's 'swimmer' supports\)",
        ),
        ({"name": "hopper", "num_envs": 0}, r"num_envs=0 .* integer >= 1"),
        ({"name": "hopper", "num_envs": 2.0}, r"num_envs=2.0 .* integer >= 1"),
        ({"name": "hopper", "episode_length": 0}, r"episode_length=0 .* integer >= 1"),
        ({"name": "hopper", "action_repeat": -1}, r"action_repeat=-1 .* integer >= 1"),
        ({"name": "hopper", "action_repeat": True}, r"action_repeat=True .* integer >= 1"),
        (
            {"name": "CartpoleSwingup", "backend": "mjx"},
            r"backend='mjx' is not allowed; allowed: jax, warp \(MJX's implementations for 'CartpoleSwingup'\) or None",
        ),
        ({"name": "CheetahRun", "num_envs": 0}, r"num_envs=0 .* integer >= 1"),
        ({"name": "cartpole-swingup"}, r"env='cartpole-swingup' is not allowed; allowed: .*CartpoleSwingup"),
    ],
)
def test_bad_arguments_raise_before_building(kwargs, match, monkeypatch):
    def no_build(*args, **kw):
        raise AssertionError("a brax env was constructed before validation")

    monkeypatch.setattr(brax.envs, "get_environment", no_build)
    name = kwargs.pop("name")
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        make_env(name, **kwargs)
    # Nothing is built or compiled: a brax env takes ~1 s to build, a compile several.
    assert time.perf_counter() - t0 < 0.05


def test_probe_dims_validated():
    with pytest.raises(ValueError, match=r"dim=0 .* integer >= 1"):
        ProbeBandit(dim=0)
    with pytest.raises(ValueError, match=r"action_dim=0"):
        ProbeConstant(action_dim=0)


@pytest.mark.parametrize("key", [jax.random.PRNGKey(0), jax.random.key(0)], ids=["raw_key", "typed_key"])
def test_probe_bandit_shapes_and_reward(key):
    n, steps = 4, 20
    env = make_env("probe_bandit", num_envs=n, episode_length=1000)
    assert (env.observation_size, env.action_size, env.backend) == (1, 1, "none")
    state = jax.jit(env.reset)(key)
    assert isinstance(state, State) and state.pipeline_state is None
    assert state.obs.shape == (n, 1) and state.reward.shape == (n,) and state.done.shape == (n,)
    assert state.info["truncation"].shape == (n,)

    actions = jax.random.uniform(jax.random.key(1), (steps, n, 1), minval=-1.0, maxval=1.0)
    traj = jax.jit(rollout, static_argnums=0)(env, state, actions)
    targets = np.concatenate([np.asarray(state.obs)[None], np.asarray(traj.obs)[:-1]])  # obs the action saw
    expected = -np.sum((np.asarray(actions) - targets) ** 2, axis=-1)
    np.testing.assert_allclose(traj.reward, expected, rtol=1e-6, atol=1e-7)
    # Every step is terminal, never a truncation: Q(s, a) = reward exactly.
    np.testing.assert_array_equal(traj.done, 1.0)
    np.testing.assert_array_equal(traj.info["truncation"], 0.0)
    # Auto-reset draws a fresh target each episode instead of replaying the first one.
    assert np.all(np.abs(targets) <= 1.0)
    assert len(np.unique(targets[:, 0, 0])) == steps
    # The optimal action a = t earns the maximum, 0.
    best = jax.jit(env.step)(state, state.obs)
    np.testing.assert_allclose(best.reward, 0.0, atol=1e-7)


def test_probe_bandit_dim_and_action_repeat():
    d, n = 3, 2
    env = training.AutoResetWrapper(training.VmapWrapper(training.EpisodeWrapper(ProbeBandit(dim=d), 1000, 3), n))
    state = env.reset(jax.random.PRNGKey(2))
    action = jnp.full((n, d), 0.5)
    nxt = jax.jit(env.step)(state, action)
    # Repeats after the terminal step are no-ops: the episode reward is the one bandit reward.
    np.testing.assert_allclose(nxt.reward, -np.sum((0.5 - np.asarray(state.obs)) ** 2, axis=-1) / d, rtol=1e-6)
    np.testing.assert_array_equal(nxt.done, 1.0)
    assert not np.allclose(nxt.obs, state.obs)


def test_probe_constant_truncation_and_value():
    n, length, steps, gamma = 2, 3, 7, 0.9
    env = make_env("probe_constant", num_envs=n, episode_length=length)
    state = env.reset(jax.random.PRNGKey(0))
    traj = jax.jit(rollout, static_argnums=0)(env, state, jnp.zeros((steps, n, 1)))
    np.testing.assert_array_equal(traj.reward, 1.0)
    np.testing.assert_array_equal(traj.obs, 1.0)
    expected_done = np.array([0, 0, 1, 0, 0, 1, 0], np.float32)[:, None].repeat(n, 1)
    np.testing.assert_array_equal(traj.done, expected_done)
    np.testing.assert_array_equal(traj.info["truncation"], expected_done)  # every done is a truncation
    np.testing.assert_array_equal(traj.info["steps"][:, 0], [1, 2, 3, 1, 2, 3, 1])
    # TD fixed point, bootstrapping through truncation (terminal = done and not truncation): Q = 1 / (1 - gamma).
    reward, done = np.asarray(traj.reward, np.float64), np.asarray(traj.done, np.float64)
    terminal = done * (1 - np.asarray(traj.info["truncation"], np.float64))

    def td_fixed_point(stop):
        q = 0.0
        for _ in range(500):
            q = float(np.mean(reward + gamma * (1 - stop) * q))
        return q

    assert td_fixed_point(terminal) == pytest.approx(1 / (1 - gamma), rel=1e-9)
    assert td_fixed_point(done) < 0.5 / (1 - gamma)  # treating the time limit as terminal is wrong


def test_without_auto_reset_episodes_stay_done():
    n, length, steps = 2, 3, 6
    env = make_env("probe_constant", num_envs=n, episode_length=length, auto_reset=False)
    traj = jax.jit(rollout, static_argnums=0)(env, env.reset(jax.random.PRNGKey(0)), jnp.zeros((steps, n, 1)))
    # No restart: the step counter runs on and done stays 1 from the time limit onwards.
    np.testing.assert_array_equal(traj.info["steps"][:, 0], [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(traj.done[:, 0], [0, 0, 1, 1, 1, 1])


def test_brax_env_shapes_truncation_and_reset():
    n, length = 2, 3
    env = make_env("inverted_pendulum", num_envs=n, episode_length=length)
    assert env.backend == DEFAULT_BACKENDS["inverted_pendulum"]
    assert (env.observation_size, env.action_size) == (4, 1)
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    assert state.obs.shape == (n, 4) and state.reward.shape == (n,) and state.done.shape == (n,)
    # Zero torque for 4 steps: the pole (starting within 0.01 rad) does not fall, so only truncation ends episodes.
    traj = jax.jit(rollout, static_argnums=0)(env, state, jnp.zeros((length + 1, n, 1)))
    assert traj.obs.shape == (length + 1, n, 4)
    np.testing.assert_array_equal(traj.done[:, 0], [0, 0, 1, 0])
    np.testing.assert_array_equal(traj.info["truncation"][:, 0], [0, 0, 1, 0])
    np.testing.assert_array_equal(traj.reward, 1.0)
    # On the truncating step the returned obs is already a fresh random reset obs (not a replay of the
    # first one): small, like every initial state, but different from the first reset's.
    assert np.abs(traj.obs[length - 1]).max() <= 0.011
    assert not np.allclose(traj.obs[length - 1], state.obs)
    assert not np.allclose(traj.obs[length - 1], traj.obs[length - 2])
    # The next episode's step counter starts again from 0.
    np.testing.assert_array_equal(traj.info["steps"][:, 0], [1, 2, 3, 1])


def test_building_a_brax_env_prints_no_notices_of_brax_or_mujoco_and_real_warnings_still_show():
    """MJX's "Failed to import warp" lines and brax's maintenance notice are dropped; nothing else is."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "from envs import make_env\n"
        "make_env('inverted_pendulum', num_envs=2)\n"
        "make_env('CartpoleSwingup', num_envs=2)\n"
        "import warnings; warnings.warn('a warning of our own')\n"
        "print('built')\n"
    )
    proc = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parent.parent, env={**os.environ, "JAX_PLATFORMS": "cpu"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == "built\n", proc.stdout
    assert "Failed to import" not in proc.stderr and "not actively being maintained" not in proc.stderr
    assert "JAXopt is no longer maintained" not in proc.stderr
    assert "UserWarning: a warning of our own" in proc.stderr


def test_the_dmc_names_are_playgrounds_own_and_default_to_mjx_jax():
    from envs.playground import import_playground

    assert set(envs.PLAYGROUND_ENV_NAMES) == set(import_playground().ALL_ENVS)
    for name in envs.PLAYGROUND_ENV_NAMES:
        assert envs.resolve_backend(name, None) == "jax" and envs.supported_backends(name) == ("jax", "warp")
    # Playground's defaults are the suite's: 1000-step episodes, no action repeat; our make_env defaults agree.
    config = import_playground().get_default_config("CheetahRun")
    assert (config.episode_length, config.action_repeat) == (1000, 1)


@pytest.mark.slow
@pytest.mark.parametrize("name, key", [("PendulumSwingup", jax.random.PRNGKey)])
def test_a_dmc_task_steps_truncates_and_restarts_from_fresh_states(name, key):
    """The time limit ends episodes; a finished env restarts from a new random state.

    With a raw ``PRNGKey`` here; training (tests/test_sac.py's DMC test) resets with typed keys.
    Swap in ``jax.random.key`` or another task to check them here too (one compile each).
    """
    n, length = 3, 4
    env = make_env(name, num_envs=n, episode_length=length)
    state = jax.jit(env.reset)(key(0))
    size = env.observation_size
    assert state.obs.shape == (n, size) and env.action_size == 1 and state.reward.shape == (n,)
    actions = jax.random.uniform(jax.random.PRNGKey(1), (length + 2, n, 1), minval=-1.0, maxval=1.0)
    traj = jax.jit(rollout, static_argnums=0)(env, state, actions)
    assert np.isfinite(traj.obs).all()
    # DMC rewards lie in [0, 1] per step; no task terminates, so only the time limit ends episodes.
    assert ((traj.reward >= 0) & (traj.reward <= 1)).all()
    np.testing.assert_array_equal(traj.done[:, 0], [0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(traj.info["truncation"][:, 0], [0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(traj.info["steps"][:, 0], [1, 2, 3, 4, 1, 2])
    # The obs returned with done is the next episode's first: far from where the last step left each env,
    # different across envs (fresh draws, not one cached state), and the task's own key restarted with it.
    restarted = traj.obs[length - 1]
    assert not np.allclose(restarted, traj.obs[length - 2], atol=1e-3)
    assert len({tuple(np.round(o, 5).tolist()) for o in restarted}) == n
    rng = np.asarray(jax.random.key_data(traj.info["rng"]) if key is jax.random.key else traj.info["rng"])
    assert (rng[length - 2] == rng[0]).all() and not (rng[length - 1] == rng[length - 2]).all()
