"""Actor and critic networks (flax.linen) and the action distributions they define.

All kernels are prunable by ``sparse_jax.default_filter`` (input and output
layers included); biases stay dense.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


class MLP(nn.Module):
    """ReLU MLP with a linear output layer (``out_scale`` scales its init variance)."""

    hidden: Sequence[int]
    out: int
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        init = nn.initializers.variance_scaling(self.out_scale, "fan_in", "truncated_normal")
        return nn.Dense(self.out, kernel_init=init)(x)


class GaussianActor(nn.Module):
    """SAC actor: mean and log-std of a Gaussian, squashed by tanh when sampled."""

    hidden: Sequence[int]
    action_size: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = MLP(self.hidden, 2 * self.action_size)(obs)
        mean, log_std = jnp.split(out, 2, axis=-1)
        # Squash log-std smoothly into [LOG_STD_MIN, LOG_STD_MAX] rather than clipping its gradient away.
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(log_std) + 1.0)
        return mean, log_std


class DeterministicActor(nn.Module):
    """TD3 actor: ``tanh`` of an MLP, actions in ``[-1, 1]``."""

    hidden: Sequence[int]
    action_size: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        # A small output layer starts the policy near a = 0 instead of at the tanh saturation,
        # where the deterministic policy gradient vanishes (cf. DDPG's final-layer init).
        return jnp.tanh(MLP(self.hidden, self.action_size, out_scale=1e-2)(obs))


class TwinCritic(nn.Module):
    """Two independent Q-networks ``q1``, ``q2`` of ``(obs, action)``; returns shape ``(2, batch)``."""

    hidden: Sequence[int]

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        x = jnp.concatenate([obs, action], axis=-1)
        q1 = MLP(self.hidden, 1, name="q1")(x)[..., 0]
        q2 = MLP(self.hidden, 1, name="q2")(x)[..., 0]
        return jnp.stack([q1, q2])


def tanh_gaussian_sample(key: jax.Array, mean: jax.Array, log_std: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Sample ``a = tanh(mean + std * eps)`` and its log-probability (summed over action dims).

    Uses ``log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))``, which stays
    finite when ``|u|`` is large.
    """
    std = jnp.exp(log_std)
    u = mean + std * jax.random.normal(key, mean.shape)
    log_normal = -0.5 * (((u - mean) / std) ** 2 + 2.0 * log_std + jnp.log(2.0 * jnp.pi))
    log_det = 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return jnp.tanh(u), jnp.sum(log_normal - log_det, axis=-1)


def init_actor_critic(
    key: jax.Array, actor: nn.Module, critic: nn.Module, obs_size: int, action_size: int
) -> tuple[dict, dict]:
    """Dense initial params ``(actor_params, critic_params)`` for the given networks."""
    k_actor, k_critic = jax.random.split(key)
    obs, act = jnp.zeros((1, obs_size)), jnp.zeros((1, action_size))
    return actor.init(k_actor, obs)["params"], critic.init(k_critic, obs, act)["params"]
