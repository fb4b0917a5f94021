"""envs.brax_envs: make_env checks every argument before it builds anything, and steps without auto-reset."""

import time

import brax.envs
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs import make_env
from tests.helpers import rollout


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


def test_without_auto_reset_episodes_stay_done():
    n, length, steps = 2, 3, 6
    env = make_env("probe_constant", num_envs=n, episode_length=length, auto_reset=False)
    traj = jax.jit(rollout, static_argnums=0)(env, env.reset(jax.random.PRNGKey(0)), jnp.zeros((steps, n, 1)))
    # No restart: the step counter runs on and done stays 1 from the time limit onwards.
    np.testing.assert_array_equal(traj.info["steps"][:, 0], [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(traj.done[:, 0], [0, 0, 1, 1, 1, 1])
