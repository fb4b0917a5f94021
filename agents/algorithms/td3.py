"""TD3 (Fujimoto et al. 2018): twin critics, target policy smoothing, delayed actor and target updates.

Losses are top-level pure functions; :func:`make_td3` binds them to the flax
networks and sparse optimizers. TD3's quirks live here: the actor and both
targets update on every ``policy_delay``-th critic update, so the actor's
sparse schedule counts fewer steps, and a target actor is kept as sparse as
the actor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import optax
from flax import struct

import sparse_jax as sj
from agents.algorithms.networks import DeterministicActor, TwinCritic
from agents.algorithms.replay import Transition
from agents.algorithms.types import (
    Algorithm,
    Hyper,
    MakeTx,
    NetworkMasks,
    Params,
    actor_critic_parts,
    dormant_fn,
    hyper_value,
    polyak,
    sparse_opt_state,
    unit_scores_fn,
)

if TYPE_CHECKING:
    from agents.algorithms.config import TrainConfig

# policy_fn(params, obs) -> action; q_fn(params, obs, action) -> (2, batch)
PolicyFn = Callable[[Params, jax.Array], jax.Array]
QFn = Callable[[Params, jax.Array, jax.Array], jax.Array]


@struct.dataclass
class TD3State(NetworkMasks):
    """Parameters and optimizer states of one TD3 agent.

    Attributes:
      actor: actor params (pruned entries exactly 0).
      critic: twin-critic params.
      target_actor: target actor, exactly as sparse as ``actor``.
      target_critic: target twin critic, exactly as sparse as ``critic``.
      actor_opt: actor optimizer state (a ``sparse_jax`` transform's: holds the actor masks).
      critic_opt: critic optimizer state (holds the critic masks).
    """

    actor: Params
    critic: Params
    target_actor: Params
    target_critic: Params
    actor_opt: optax.OptState
    critic_opt: optax.OptState


def critic_loss(
    critic: Params,
    target_critic: Params,
    target_actor: Params,
    batch: Transition,
    key: jax.Array,
    policy_fn: PolicyFn,
    q_fn: QFn,
    gamma: float,
    target_noise: float,
    noise_clip: float,
) -> jax.Array:
    """TD loss ``0.5 * mean_b sum_i mask * (Q_i(s, a) - y)^2`` with clipped double-Q targets.

    ``y = r + gamma * discount * min_i Q'_i(s', a')``, where
    ``a' = clip(mu'(s') + clip(N(0, target_noise), -noise_clip, noise_clip), -1, 1)``.
    """
    noise = jnp.clip(target_noise * jax.random.normal(key, batch.action.shape), -noise_clip, noise_clip)
    next_action = jnp.clip(policy_fn(target_actor, batch.next_obs) + noise, -1.0, 1.0)
    next_q = jnp.min(q_fn(target_critic, batch.next_obs, next_action), axis=0)
    target = batch.reward + gamma * batch.discount * next_q
    err = q_fn(critic, batch.obs, batch.action) - jax.lax.stop_gradient(target)
    return 0.5 * jnp.mean(batch.mask * jnp.sum(err**2, axis=0))


def actor_loss(actor: Params, critic: Params, obs: jax.Array, policy_fn: PolicyFn, q_fn: QFn) -> jax.Array:
    """Deterministic policy gradient loss ``-mean(Q_1(s, mu(s)))``."""
    return -jnp.mean(q_fn(critic, obs, policy_fn(actor, obs))[0])


def network_schedules(config: TrainConfig) -> dict:
    """The actor's schedule counts its own updates: one per ``policy_delay`` critic updates."""
    d = config.td3.policy_delay
    return {
        "actor": (config.sparse.schedule(config.total_updates // d, "actor"), d),
        "critic": (config.sparse.schedule(config.total_updates, "critic"), 1),
    }


def make_td3(config: TrainConfig, obs_size: int, action_size: int, make_tx: MakeTx) -> Algorithm:
    """Bind the TD3 losses to flax networks and sparse optimizers (``make_tx``, called once per network).

    The actor and both targets are updated on every ``policy_delay``-th
    critic update, chosen by ``lax.cond`` on the unbatched update index; the
    actor's own sparse schedule counts its updates (``step // policy_delay``).
    """
    # Long: a factory of closures; the pure functions share the networks and optimizers it builds once.
    actor_net = DeterministicActor(config.hidden, action_size, config.network)
    critic_net = TwinCritic(config.hidden, config.network)
    schedules = network_schedules(config)

    def policy_fn(params, obs):
        return actor_net.apply({"params": params}, obs)

    def q_fn(params, obs, action):
        return critic_net.apply({"params": params}, obs, action)

    init_params, actor_tx, critic_tx = actor_critic_parts(
        actor_net, critic_net, obs_size, action_size, make_tx, schedules
    )

    def init_state(actor_init, critic_init, key, hyper=None) -> TD3State:
        del hyper  # nothing of TD3's initial state is traced
        k_actor, k_critic = jax.random.split(key)
        return TD3State(
            actor=actor_init.params,
            critic=critic_init.params,
            target_actor=actor_init.params,
            target_critic=critic_init.params,
            actor_opt=sparse_opt_state(actor_tx, actor_init, k_actor),
            critic_opt=sparse_opt_state(critic_tx, critic_init, k_critic),
        )

    def act(params, obs, key, deterministic, hyper=None):
        action = policy_fn(params, obs)
        if deterministic:
            return action
        noise = hyper_value(hyper, "td3.expl_noise", config.td3.expl_noise)
        return jnp.clip(action + noise * jax.random.normal(key, action.shape), -1.0, 1.0)

    def update(
        state: TD3State,
        batch: Transition,
        key: jax.Array,
        step: jax.Array,
        rewire: bool | None = None,
        hyper: Hyper | None = None,
    ):
        c_loss, c_grads = jax.value_and_grad(critic_loss)(
            state.critic, state.target_critic, state.target_actor, batch, key, policy_fn, q_fn,
            hyper_value(hyper, "gamma", config.gamma), hyper_value(hyper, "td3.target_noise", config.td3.target_noise),
            hyper_value(hyper, "td3.noise_clip", config.td3.noise_clip),
        )  # fmt: skip
        c_updates, critic_opt = critic_tx.update(
            c_grads, state.critic_opt, state.critic, step=step, rewire=rewire,
            learning_rate=hyper_value(hyper, "critic_lr", None),
        )  # fmt: skip
        state = state.replace(critic=optax.apply_updates(state.critic, c_updates), critic_opt=critic_opt)
        # The targets move only on delayed updates, but a SET/RigL/GMP critic mask may change on any
        # update: mask the target critic now, so it is never denser than its online network.
        state = state.replace(target_critic=sj.apply_mask(state.target_critic, state.critic_masks))

        def delayed(state):
            a_loss, a_grads = jax.value_and_grad(actor_loss)(state.actor, state.critic, batch.obs, policy_fn, q_fn)
            a_updates, actor_opt = actor_tx.update(
                a_grads, state.actor_opt, state.actor, step=step // config.td3.policy_delay, rewire=rewire,
                learning_rate=hyper_value(hyper, "actor_lr", None),
            )  # fmt: skip
            state = state.replace(actor=optax.apply_updates(state.actor, a_updates), actor_opt=actor_opt)
            state = state.replace(
                target_actor=polyak(state.target_actor, state.actor, config.tau, state.actor_masks, hyper),
                target_critic=polyak(state.target_critic, state.critic, config.tau, state.critic_masks, hyper),
            )
            return state, a_loss

        state, a_loss = jax.lax.cond(
            step % config.td3.policy_delay == 0, delayed, lambda s: (s, jnp.float32(jnp.nan)), state
        )
        return state, {"critic_loss": c_loss, "actor_loss": a_loss}

    def snip_losses(state: TD3State, batch: Transition, key: jax.Array):
        actor_fn = lambda p, b: actor_loss(p, state.critic, b.obs, policy_fn, q_fn)
        critic_fn = lambda p, b: critic_loss(
            p, state.target_critic, state.target_actor, b, key, policy_fn, q_fn,
            config.gamma, config.td3.target_noise, config.td3.noise_clip,
        )  # fmt: skip
        return actor_fn, critic_fn

    def sparse_params(state: TD3State):
        return [
            (state.actor, state.actor_masks),
            (state.critic, state.critic_masks),
            (state.target_critic, state.critic_masks),
            (state.target_actor, state.actor_masks),
        ]

    dormant = dormant_fn(actor_net, critic_net)
    scores = unit_scores_fn(actor_net, critic_net)
    return Algorithm(init_params, init_state, act, update, snip_losses, schedules, sparse_params, dormant, scores)
