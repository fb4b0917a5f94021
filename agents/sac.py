"""Soft Actor-Critic (Haarnoja et al. 2018): twin critics, learned temperature, Polyak targets.

Losses are top-level pure functions of apply functions, so they can be
checked on hand-made networks; :func:`make_sac` binds them to the flax
networks and sparse optimizers.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from agents.config import TrainConfig
from agents.networks import GaussianActor, TwinCritic, init_actor_critic, tanh_gaussian_sample
from agents.replay import Transition
from agents.types import AgentState, Algorithm, Params, polyak

# policy_fn(params, obs, key) -> (action, log_prob); q_fn(params, obs, action) -> (2, batch)
PolicyFn = Callable[[Params, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
QFn = Callable[[Params, jax.Array, jax.Array], jax.Array]


def critic_loss(
    critic: Params,
    target_critic: Params,
    actor: Params,
    alpha: jax.Array,
    batch: Transition,
    key: jax.Array,
    policy_fn: PolicyFn,
    q_fn: QFn,
    gamma: float,
) -> jax.Array:
    """Soft TD loss ``0.5 * mean_b sum_i mask * (Q_i(s, a) - y)^2`` for both critics.

    ``y = r + gamma * discount * (min_i Q'_i(s', a') - alpha * log pi(a'|s'))``
    with ``a' ~ pi(.|s')``; transitions cut by truncation (``mask = 0``) are
    left out.
    """
    next_action, next_log_prob = policy_fn(actor, batch.next_obs, key)
    next_q = jnp.min(q_fn(target_critic, batch.next_obs, next_action), axis=0)
    target = batch.reward + gamma * batch.discount * (next_q - alpha * next_log_prob)
    q = q_fn(critic, batch.obs, batch.action)
    err = q - jax.lax.stop_gradient(target)
    return 0.5 * jnp.mean(batch.mask * jnp.sum(err**2, axis=0))


def actor_loss(
    actor: Params, critic: Params, alpha: jax.Array, obs: jax.Array, key: jax.Array, policy_fn: PolicyFn, q_fn: QFn
) -> tuple[jax.Array, jax.Array]:
    """``mean(alpha * log pi(a|s) - min_i Q_i(s, a))`` with ``a ~ pi(.|s)``; also returns ``log pi``."""
    action, log_prob = policy_fn(actor, obs, key)
    q = jnp.min(q_fn(critic, obs, action), axis=0)
    return jnp.mean(alpha * log_prob - q), log_prob


def alpha_loss(log_alpha: jax.Array, log_prob: jax.Array, target_entropy: float) -> jax.Array:
    """Temperature loss ``mean(-log_alpha * (log pi + target_entropy))`` (log pi held fixed)."""
    return -jnp.mean(log_alpha * jax.lax.stop_gradient(log_prob + target_entropy))


def make_sac(config: TrainConfig, obs_size: int, action_size: int, make_tx: Callable) -> Algorithm:
    """Bind the SAC losses to flax networks and ``make_tx(network, masks) -> optax transform``.

    The target entropy is ``-action_size``.
    """
    actor_net = GaussianActor(config.hidden, action_size)
    critic_net = TwinCritic(config.hidden)
    target_entropy = -float(action_size)
    alpha_tx = optax.adam(config.alpha_lr)

    def policy_fn(params, obs, key):
        mean, log_std = actor_net.apply({"params": params}, obs)
        return tanh_gaussian_sample(key, mean, log_std)

    def q_fn(params, obs, action):
        return critic_net.apply({"params": params}, obs, action)

    def init_params(key):
        return init_actor_critic(key, actor_net, critic_net, obs_size, action_size)

    def act(params, obs, key, deterministic):
        if deterministic:
            return jnp.tanh(actor_net.apply({"params": params}, obs)[0])
        return policy_fn(params, obs, key)[0]

    def update(state: AgentState, batch: Transition, key: jax.Array, step: jax.Array, rewire: bool | None = None):
        k_critic, k_actor = jax.random.split(key)
        alpha = jnp.exp(state.log_alpha)
        c_loss, c_grads = jax.value_and_grad(critic_loss)(
            state.critic, state.target_critic, state.actor, alpha, batch, k_critic, policy_fn, q_fn, config.gamma
        )
        c_updates, critic_opt = make_tx("critic", state.critic_masks).update(
            c_grads, state.critic_opt, state.critic, step=step, rewire=rewire
        )
        critic = optax.apply_updates(state.critic, c_updates)
        # The actor loss reads the critic from before this update (as brax's and Acme's SAC do), so
        # the critic and actor gradients do not depend on each other and XLA can schedule them freely:
        # about 10% faster per update on a 2-core CPU than waiting for the new critic.
        (a_loss, log_prob), a_grads = jax.value_and_grad(actor_loss, has_aux=True)(
            state.actor, state.critic, alpha, batch.obs, k_actor, policy_fn, q_fn
        )
        a_updates, actor_opt = make_tx("actor", state.actor_masks).update(
            a_grads, state.actor_opt, state.actor, step=step, rewire=rewire
        )
        t_loss, t_grad = jax.value_and_grad(alpha_loss)(state.log_alpha, log_prob, target_entropy)
        t_update, alpha_opt = alpha_tx.update(t_grad, state.alpha_opt)
        new = state.replace(
            actor=optax.apply_updates(state.actor, a_updates),
            critic=critic,
            actor_opt=actor_opt,
            critic_opt=critic_opt,
            log_alpha=state.log_alpha + t_update,
            alpha_opt=alpha_opt,
        )
        new = new.replace(target_critic=polyak(state.target_critic, critic, config.tau, new.critic_masks))
        metrics = {
            "critic_loss": c_loss,
            "actor_loss": a_loss,
            "alpha_loss": t_loss,
            "alpha": alpha,
            "entropy": -jnp.mean(log_prob),
        }
        return new, metrics

    def snip_losses(state: AgentState, batch: Transition, key: jax.Array):
        alpha = jnp.exp(state.log_alpha)
        k_critic, k_actor = jax.random.split(key)
        actor_fn = lambda p, b: actor_loss(p, state.critic, alpha, b.obs, k_actor, policy_fn, q_fn)[0]
        critic_fn = lambda p, b: critic_loss(
            p, state.target_critic, state.actor, alpha, b, k_critic, policy_fn, q_fn, config.gamma
        )
        return actor_fn, critic_fn

    return Algorithm(init_params, act, update, snip_losses, float(jnp.log(config.init_alpha)))
