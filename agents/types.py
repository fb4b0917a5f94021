"""Types shared by the agents: the agent state and the algorithm interface."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import optax
from flax import struct

import sparse_jax as sj

Params = Any
Metrics = dict[str, jax.Array]


@struct.dataclass
class AgentState:
    """Parameters and optimizer states of one agent (one run).

    Attributes:
      actor: actor params (pruned entries exactly 0).
      critic: twin-critic params.
      target_actor: TD3's target actor (``None`` for SAC).
      target_critic: target twin critic, exactly as sparse as ``critic``.
      actor_opt: actor optimizer state (a ``sparse_jax`` transform: holds the actor masks).
      critic_opt: critic optimizer state (holds the critic masks).
      log_alpha: SAC log-temperature (unused by TD3).
      alpha_opt: temperature optimizer state.
    """

    actor: Params
    critic: Params
    target_actor: Params | None
    target_critic: Params
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    log_alpha: jax.Array
    alpha_opt: optax.OptState

    @property
    def actor_masks(self) -> sj.masks.Masks:
        """Current actor masks."""
        return sj.get_masks(self.actor_opt)

    @property
    def critic_masks(self) -> sj.masks.Masks:
        """Current critic masks."""
        return sj.get_masks(self.critic_opt)


class Algorithm(NamedTuple):
    """The pure functions the training loop needs from an algorithm.

    Attributes:
      init_params: ``key -> (actor_params, critic_params)``, dense.
      act: ``(actor_params, obs, key, deterministic) -> actions`` in ``[-1, 1]``.
      update: ``(state, batch, key, step) -> (state, metrics)``, one gradient
        update; ``step`` is the unbatched global update index.
      snip_losses: ``(state, batch, key) -> (actor_loss_fn, critic_loss_fn)``,
        each ``loss_fn(params, batch) -> scalar`` for SNIP scores.
      init_alpha: initial log-temperature value.
    """

    init_params: Callable
    act: Callable
    update: Callable
    snip_losses: Callable
    init_alpha: float


def polyak(target: Params, online: Params, tau: float, masks: sj.masks.Masks) -> Params:
    """``tau * online + (1 - tau) * target``, pruned entries set to exactly 0.

    Masking keeps a target exactly as sparse as its online network, also
    after SET/RigL drop a connection the target still remembers.
    """
    return jax.tree.map(
        lambda m, t, o: tau * o + (1 - tau) * t if m is None else jax.numpy.where(m, tau * o + (1 - tau) * t, 0.0),
        masks,
        target,
        online,
        is_leaf=lambda x: x is None,
    )
