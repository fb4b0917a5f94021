"""A uniform replay buffer as a pytree of fixed-size arrays (lives in the train state)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from sparse_jax.validation import check_int


@struct.dataclass
class Transition:
    """One batch of transitions.

    Attributes:
      obs: ``(..., obs_dim)`` observations.
      action: ``(..., act_dim)`` actions in ``[-1, 1]``.
      reward: ``(...,)`` rewards.
      discount: ``(...,)`` 0 where the episode terminated, else 1.
      mask: ``(...,)`` 0 where the episode was truncated (the next observation
        is then a reset one, so the transition is left out of the TD loss).
      next_obs: ``(..., obs_dim)`` next observations.
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    discount: jax.Array
    mask: jax.Array
    next_obs: jax.Array


@struct.dataclass
class ReplayBuffer:
    """Circular buffer: ``data`` has a leading ``capacity`` axis; ``position`` is the next slot."""

    data: Transition
    position: jax.Array
    size: jax.Array

    @property
    def capacity(self) -> int:
        """Number of slots (static)."""
        return self.data.reward.shape[-1]


def buffer_init(capacity: int, obs_size: int, action_size: int) -> ReplayBuffer:
    """An empty float32 buffer; ``4 * (2 * obs_size + action_size + 3)`` bytes per transition."""
    check_int("capacity", capacity, minimum=1)
    z = lambda *shape: jnp.zeros((capacity, *shape), jnp.float32)
    data = Transition(z(obs_size), z(action_size), z(), z(), z(), z(obs_size))
    return ReplayBuffer(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def buffer_add(buffer: ReplayBuffer, batch: Transition) -> ReplayBuffer:
    """Write a batch of ``n`` transitions (leading axis ``n``), overwriting the oldest."""
    n = batch.reward.shape[0]
    idx = (buffer.position + jnp.arange(n)) % buffer.capacity
    data = jax.tree.map(lambda d, x: d.at[idx].set(x), buffer.data, batch)
    return ReplayBuffer(data, (buffer.position + n) % buffer.capacity, jnp.minimum(buffer.size + n, buffer.capacity))


def buffer_sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> Transition:
    """``batch_size`` transitions drawn uniformly with replacement from the filled part."""
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree.map(lambda d: d[idx], buffer.data)
