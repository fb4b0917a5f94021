"""EauDeSAC: SAC with an EauDe ensemble of online critics (Vincent et al. 2025), our reading.

SAC's ensemble variant, which trains the ensemble method ``eaudesac``
(:class:`agents.algorithms.config.EauDeConfig`, :mod:`sparse_jax.eaude`):

- ``members`` online twin critics, one vmapped axis inside the run, each with
  its own mask and sparse Adam state, are trained on the same replay batch
  against one soft TD target from the shared target critic;
- the actor and the temperature are trained against the target critic (the
  last winner), as SAC trains them against its critic;
- every ``period`` updates the member with the smallest summed TD loss since
  the last selection (all members saw the same batches, so the sum ranks the
  means) becomes the target critic, a hard copy. We copy rather than
  Polyak-average because EauDe's target *is* the selected network: a blend of
  networks with different masks would be as sparse as none of them;
- every member is replaced by the winner pruned by magnitude ``k`` levels
  further (member 0 is the winner itself), keeping the winner's Adam moments
  for the weights it keeps; the actor is pruned by magnitude to the winner's
  level (its own ladder, capped by its own ceiling), so the whole agent
  reaches the sparsity the critics' losses chose.

The runs start dense; each network stops at its ceiling (the method's
``sparsity``). The reported critic masks are the target critic's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

import sparse_jax as sj
from agents.algorithms.replay import Transition
from agents.algorithms.sac import actor_loss, sac_parts, soft_td_target, twin_td_loss
from agents.algorithms.types import Algorithm, MakeTx, NetworkMasks, Params, dormant_fn, hyper_value
from sparse_jax import eaude

if TYPE_CHECKING:
    from agents.algorithms.config import EauDeConfig, TrainConfig


@struct.dataclass
class EauDeSACState(NetworkMasks):
    """Parameters, optimizer states and selection bookkeeping of one EauDeSAC agent.

    Attributes:
      actor: actor params (pruned entries exactly 0).
      critics: the online twin critics, stacked on a leading ``members`` axis.
      target_critic: the last selected member (a hard copy), exactly as sparse as ``target_masks``.
      actor_opt: the actor's sparse Adam state (holds the actor masks).
      critic_opts: one sparse Adam state per member, stacked (each holds its member's masks).
      log_alpha: log of the temperature ``alpha``.
      alpha_opt: the temperature's Adam state.
      target_masks: the target critic's masks.
      levels: each member's level on the critic ladder (int32, ``(members,)``).
      target_level: the target critic's level.
      max_levels: the run's ceilings, ``(actor, critic)`` levels (int32): one program serves every ceiling.
      loss_sum: each member's summed TD loss since the last selection.
    """

    actor: Params
    critics: Params
    target_critic: Params
    actor_opt: optax.OptState
    critic_opts: optax.OptState
    log_alpha: jax.Array
    alpha_opt: optax.OptState
    target_masks: Any
    levels: jax.Array
    target_level: jax.Array
    max_levels: jax.Array
    loss_sum: jax.Array

    @property
    def actor_level(self) -> jax.Array:
        """The actor's level on its own ladder: the target's, capped by the actor's ceiling."""
        return jnp.minimum(self.target_level, self.max_levels[..., 0])

    @property
    def critic(self) -> Params:
        """The target critic: the one the actor is trained against and the diagnostics read."""
        return self.target_critic

    @property
    def critic_masks(self) -> sj.masks.Masks:
        """The target critic's masks (the critic a run reports)."""
        return self.target_masks

    @property
    def member_masks(self) -> sj.masks.Masks:
        """Every member's masks, stacked."""
        return sj.get_masks(self.critic_opts)


def _pruned(params: Params, old: sj.masks.Masks, new: sj.masks.Masks) -> Params:
    """Params-shaped booleans: ``True`` where ``old`` keeps a weight that ``new`` prunes."""
    pairs = jax.tree.map(lambda o, n: None if o is None else o & ~n, old, new, is_leaf=sj.is_none)
    return jax.tree.map(
        lambda p, m: jnp.zeros(jnp.shape(p), bool) if m is None else m, params, pairs, is_leaf=sj.is_none
    )


def _zeros_like_params(shapes: Params) -> Params:
    return jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)


def replace_members(
    state: EauDeSACState,
    winner: Params,
    masks: sj.masks.Masks,
    opt: optax.OptState,
    level: jax.Array,
    ladders: dict[str, eaude.Ladder],
    e: EauDeConfig,
) -> EauDeSACState:
    """``state`` with ``winner`` (at ``level``, with ``masks`` and Adam state ``opt``) as target critic,
    its pruned copies as members (:func:`sparse_jax.eaude.offspring`) and the actor pruned to its level.

    Every copy keeps the winner's Adam state, with the moments of the weights it prunes zeroed; the
    summed losses restart from 0.
    """
    params, member_masks, levels = eaude.offspring(
        winner, masks, level, ladders["critic"], e.members, state.max_levels[1], e.offset
    )
    opts = jax.vmap(lambda m: sj.reset_moments(sj.with_masks(opt, m), _pruned(winner, masks, m)))(member_masks)
    a_level = jnp.minimum(level, state.max_levels[0])  # the actor follows the new target's level
    actor, a_masks = eaude.prune_to_level(state.actor, state.actor_masks, ladders["actor"], a_level)
    actor_opt = sj.reset_moments(sj.with_masks(state.actor_opt, a_masks), _pruned(actor, state.actor_masks, a_masks))
    return state.replace(
        actor=actor,
        critics=params,
        target_critic=winner,
        actor_opt=actor_opt,
        critic_opts=opts,
        target_masks=masks,
        levels=levels,
        target_level=jnp.asarray(level, jnp.int32),
        loss_sum=jnp.zeros_like(state.loss_sum),
    )


def select_and_replace(state: EauDeSACState, ladders: dict[str, eaude.Ladder], e: EauDeConfig) -> EauDeSACState:
    """One EauDe selection: the member with the smallest summed loss becomes the target, and the members
    and the actor are replaced (:func:`replace_members`)."""
    w = eaude.select_winner(state.loss_sum)
    pick = lambda tree: jax.tree.map(lambda x: x[w], tree)
    return replace_members(
        state, pick(state.critics), pick(state.member_masks), pick(state.critic_opts), state.levels[w], ladders, e
    )


def make_eaudesac(config: TrainConfig, obs_size: int, action_size: int, make_tx: MakeTx) -> Algorithm:
    """EauDeSAC's :class:`Algorithm` (see the module docs): SAC's losses over an ensemble of critics."""
    # Long: a factory of closures; init, update and selection share the networks, ladders and optimizers.
    parts = sac_parts(config, obs_size, action_size, make_tx)
    actor_net, critic_net, policy_fn, q_fn, act = parts.networks
    init_params, actor_tx, critic_tx, alpha_tx = parts.init_params, parts.actor_tx, parts.critic_tx, parts.alpha_tx
    e, sparse = config.eaude, config.sparse
    # The ladders depend on shapes, distribution and increment only; the ceilings are state.
    shapes = dict(zip(("actor", "critic"), jax.eval_shape(init_params, jax.random.key(0))))
    ladders = {
        net: eaude.ladder(
            sj.dense_masks(_zeros_like_params(shapes[net])),
            sparse.distribution,
            e.increment,
            span=e.offset + e.members - 1,
        )
        for net in ("actor", "critic")
    }
    max_levels = [eaude.level_at(ladders[net], sparse.network_sparsity(net)) for net in ("actor", "critic")]

    def init_state(actor_init: sj.SparseInit, critic_init: sj.SparseInit, key: jax.Array, hyper=None) -> EauDeSACState:
        k_actor, k_critic = jax.random.split(key)
        log_alpha = parts.init_log_alpha(hyper)
        critic_opt = sj.with_masks(critic_tx.init(critic_init.params), critic_init.masks, key=k_critic)
        state = EauDeSACState(
            actor=actor_init.params,
            critics=jax.tree.map(lambda x: jnp.stack([x] * e.members), critic_init.params),
            target_critic=critic_init.params,
            actor_opt=sj.with_masks(actor_tx.init(actor_init.params), actor_init.masks, key=k_actor),
            critic_opts=jax.tree.map(lambda x: jnp.stack([x] * e.members), critic_opt),
            log_alpha=log_alpha,
            alpha_opt=alpha_tx.init(log_alpha),
            target_masks=critic_init.masks,
            levels=jnp.zeros(e.members, jnp.int32),
            target_level=jnp.zeros((), jnp.int32),
            max_levels=jnp.asarray(max_levels, jnp.int32),
            loss_sum=jnp.zeros(e.members, jnp.float32),
        )
        # A selection at step 0: the members start as the initial critic at levels 0, 1, ..., members - 1.
        return replace_members(state, critic_init.params, critic_init.masks, critic_opt, jnp.int32(0), ladders, e)

    select = lambda state: select_and_replace(state, ladders, e)

    def update(state: EauDeSACState, batch: Transition, key: jax.Array, step: jax.Array, rewire=None, hyper=None):
        k_critic, k_actor = jax.random.split(key)
        alpha = jnp.exp(state.log_alpha)
        gamma = hyper_value(hyper, "gamma", config.gamma)
        target = soft_td_target(state.target_critic, state.actor, alpha, batch, k_critic, policy_fn, q_fn, gamma)
        losses, grads = jax.vmap(jax.value_and_grad(lambda c: twin_td_loss(c, target, batch, q_fn)))(state.critics)
        lr = hyper_value(hyper, "critic_lr", None)
        c_updates, critic_opts = jax.vmap(
            lambda g, o, p: critic_tx.update(g, o, p, step=step, rewire=rewire, learning_rate=lr)
        )(grads, state.critic_opts, state.critics)
        fields, metrics = parts.actor_step(state, state.target_critic, alpha, batch.obs, k_actor, step, rewire, hyper)
        new = state.replace(
            critics=optax.apply_updates(state.critics, c_updates),
            critic_opts=critic_opts,
            loss_sum=state.loss_sum + losses,
            **fields,
        )
        # The step is never batched, so this stays a branch under vmap: selection costs nothing between.
        new = jax.lax.cond((step + 1) % e.period == 0, select, lambda s: s, new)
        # The best member's loss: a member gone NaN is never selected.
        return new, {"critic_loss": jnp.nanmin(losses), **metrics}

    def snip_losses(state: EauDeSACState, batch: Transition, key: jax.Array):
        alpha = jnp.exp(state.log_alpha)
        k_critic, k_actor = jax.random.split(key)
        target = soft_td_target(state.target_critic, state.actor, alpha, batch, k_critic, policy_fn, q_fn, config.gamma)
        actor_fn = lambda p, b: actor_loss(p, state.target_critic, alpha, b.obs, k_actor, policy_fn, q_fn)[0]
        return actor_fn, lambda p, b: twin_td_loss(p, target, b, q_fn)

    def sparse_params(state: EauDeSACState):
        return [
            (state.actor, state.actor_masks),
            (state.critics, state.member_masks),
            (state.target_critic, state.target_masks),
        ]

    dormant = dormant_fn(actor_net, critic_net)
    return Algorithm(init_params, init_state, act, update, snip_losses, parts.schedules, sparse_params, dormant, None)
