"""Shared fixtures: small MLP params built with flax."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest


def mlp_params(key, sizes):
    """Params of a ReLU MLP with layer sizes ``sizes = (in, h1, ..., out)``: ``Dense_0 .. Dense_n``."""

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            for width in sizes[1:-1]:
                x = nn.relu(nn.Dense(width)(x))
            return nn.Dense(sizes[-1])(x)

    return MLP().init(key, jnp.zeros((1, sizes[0])))["params"]


@pytest.fixture
def small_params():
    """8 -> 32 -> 32 -> 4 MLP params."""
    return mlp_params(jax.random.key(0), (8, 32, 32, 4))


def pendulum_config(algo, total_steps, **overrides):
    """Dense ``algo`` on brax's inverted_pendulum, sized to learn in about a minute on 2 CPU cores.

    The return threshold used with it, 500 of a possible 1000, is far above what no learning
    gives: zero torque keeps the pole up about 33 steps, uniform random actions about 5, while a
    hand-tuned PD controller reaches 1000 (measured with these wrappers).
    """
    from agents.config import TrainConfig

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
        alpha_lr=1e-3,
    )
    kwargs.update(overrides)
    return TrainConfig(**kwargs)
