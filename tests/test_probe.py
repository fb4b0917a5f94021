"""envs.probe: the probe envs' shapes, rewards, truncation and analytic values (each compiles in under a second)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax.envs.base import State
from brax.envs.wrappers import training

from envs import ProbeBandit, ProbeConstant, make_env
from tests.helpers import rollout


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
