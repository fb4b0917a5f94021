"""envs.playground: MuJoCo Playground's DeepMind Control tasks under their own names, stepped and restarted."""

import jax
import numpy as np
import pytest

import envs
from envs import make_env
from tests.helpers import rollout


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
