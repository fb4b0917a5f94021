"""TD3 (Fujimoto et al. 2018): twin critics, target policy smoothing, delayed actor and target updates."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from agents.config import TrainConfig
from agents.networks import DeterministicActor, TwinCritic, init_actor_critic
from agents.replay import Transition
from agents.types import AgentState, Algorithm, Params, polyak

# policy_fn(params, obs) -> action; q_fn(params, obs, action) -> (2, batch)
PolicyFn = Callable[[Params, jax.Array], jax.Array]
QFn = Callable[[Params, jax.Array, jax.Array], jax.Array]


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


def make_td3(config: TrainConfig, obs_size: int, action_size: int, make_tx: Callable) -> Algorithm:
    """Bind the TD3 losses to flax networks and ``make_tx(network, masks) -> optax transform``.

    The actor and both targets are updated on every ``policy_delay``-th
    critic update, chosen by ``lax.cond`` on the unbatched update index; the
    actor's own sparse schedule counts its updates (``step // policy_delay``).
    """
    actor_net = DeterministicActor(config.hidden, action_size)
    critic_net = TwinCritic(config.hidden)

    def policy_fn(params, obs):
        return actor_net.apply({"params": params}, obs)

    def q_fn(params, obs, action):
        return critic_net.apply({"params": params}, obs, action)

    def init_params(key):
        return init_actor_critic(key, actor_net, critic_net, obs_size, action_size)

    def act(params, obs, key, deterministic):
        action = policy_fn(params, obs)
        if deterministic:
            return action
        return jnp.clip(action + config.expl_noise * jax.random.normal(key, action.shape), -1.0, 1.0)

    def update(state: AgentState, batch: Transition, key: jax.Array, step: jax.Array, rewire: bool | None = None):
        c_loss, c_grads = jax.value_and_grad(critic_loss)(
            state.critic, state.target_critic, state.target_actor, batch, key, policy_fn, q_fn,
            config.gamma, config.target_noise, config.noise_clip,
        )  # fmt: skip
        c_updates, critic_opt = make_tx("critic", state.critic_masks).update(
            c_grads, state.critic_opt, state.critic, step=step, rewire=rewire
        )
        state = state.replace(critic=optax.apply_updates(state.critic, c_updates), critic_opt=critic_opt)

        def delayed(state):
            a_loss, a_grads = jax.value_and_grad(actor_loss)(state.actor, state.critic, batch.obs, policy_fn, q_fn)
            a_updates, actor_opt = make_tx("actor", state.actor_masks).update(
                a_grads, state.actor_opt, state.actor, step=step // config.policy_delay, rewire=rewire
            )
            state = state.replace(actor=optax.apply_updates(state.actor, a_updates), actor_opt=actor_opt)
            state = state.replace(
                target_actor=polyak(state.target_actor, state.actor, config.tau, state.actor_masks),
                target_critic=polyak(state.target_critic, state.critic, config.tau, state.critic_masks),
            )
            return state, a_loss

        state, a_loss = jax.lax.cond(
            step % config.policy_delay == 0, delayed, lambda s: (s, jnp.float32(jnp.nan)), state
        )
        return state, {"critic_loss": c_loss, "actor_loss": a_loss}

    def snip_losses(state: AgentState, batch: Transition, key: jax.Array):
        actor_fn = lambda p, b: actor_loss(p, state.critic, b.obs, policy_fn, q_fn)
        critic_fn = lambda p, b: critic_loss(
            p, state.target_critic, state.target_actor, b, key, policy_fn, q_fn,
            config.gamma, config.target_noise, config.noise_clip,
        )  # fmt: skip
        return actor_fn, critic_fn

    return Algorithm(init_params, act, update, snip_losses, 0.0)
