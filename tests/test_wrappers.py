"""envs.wrappers: a brax env truncates, then restarts from a fresh random state (inverted_pendulum, a 4-step scan)."""

import jax
import jax.numpy as jnp
import numpy as np

from envs import DEFAULT_BACKENDS, make_env
from tests.helpers import rollout


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
