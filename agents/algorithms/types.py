"""The algorithm interface the training loop needs, and what every algorithm's state shares.

An algorithm lives in one file (``agents/algorithms/sac.py``, ``agents/algorithms/td3.py``): its
losses, its own state type and a ``make_*`` factory returning an
:class:`Algorithm`. ``agents/algorithms/__init__.py`` maps names to factories, so a
new algorithm is one new file plus one line there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import optax

import sparse_jax as sj
from agents.algorithms.networks import dormant_fraction, init_actor_critic, unit_scores

Params = Any
Metrics = dict[str, jax.Array]
# make_tx(network, param_shapes, schedule) -> the network's sparse optimizer, built once per network.
MakeTx = Callable[[str, Params, sj.DSTSchedule], optax.GradientTransformationExtraArgs]
State = Any  # an algorithm's own state pytree (e.g. agents.algorithms.sac.SACState)
LossFn = Callable[[Params, Any], jax.Array]  # loss_fn(params, batch) -> scalar
# One run's traced hyperparameters (agents.algorithms.config.hyper_values): field name -> float32 scalar.
Hyper = dict[str, jax.Array]


class ActFn(Protocol):
    """``(actor_params, obs, key, deterministic) -> actions`` in ``[-1, 1]`` (``key`` unused when deterministic)."""

    def __call__(self, actor: Params, obs: jax.Array, key: jax.Array | None, deterministic: bool) -> jax.Array: ...


class UpdateFn(Protocol):
    """``(state, batch, key, step, rewire=None, hyper=None) -> (state, metrics)``: one gradient update."""

    def __call__(
        self,
        state: State,
        batch: Any,
        key: jax.Array,
        step: jax.Array,
        rewire: bool | None = None,
        hyper: Hyper | None = None,
    ) -> tuple[State, Metrics]: ...


def hyper_value(hyper: Hyper | None, field: str, constant: float) -> jax.Array | float:
    """``hyper[field]`` (a run's traced value) if given, else ``constant`` (the config's, baked in the program)."""
    return constant if hyper is None else hyper[field]


def scale_by_learning_rate_arg(default: float) -> optax.GradientTransformationExtraArgs:
    """``-learning_rate * updates``, where ``update(..., learning_rate=x)`` may give a run's (traced) rate;
    ``default`` when it is not given.

    The state is optax's ``EmptyState``, as for ``optax.scale_by_learning_rate``, so
    ``chain(scale_by_adam(), scale_by_learning_rate_arg(lr))`` has ``optax.adam(lr)``'s state and
    computes the same bits: the product of the update and ``-lr`` rounded to float32 either way.
    """

    def update_fn(updates, state, params=None, *, learning_rate=None, **extra_args):
        del params, extra_args
        step_size = -(default if learning_rate is None else learning_rate)
        return jax.tree.map(lambda g: step_size * g, updates), state

    return optax.GradientTransformationExtraArgs(lambda params: optax.EmptyState(), update_fn)


def adam_lr_arg(learning_rate: float, weight_decay: float = 0.0) -> optax.GradientTransformationExtraArgs:
    """``optax.adam`` (``optax.adamw`` with ``weight_decay > 0``, its mask left to the sparse transform) whose
    learning rate an ``update(..., learning_rate=x)`` may give per call: same state, same bits."""
    if weight_decay == 0:
        return optax.chain(optax.scale_by_adam(), scale_by_learning_rate_arg(learning_rate))
    return optax.chain(
        optax.scale_by_adam(), optax.add_decayed_weights(weight_decay), scale_by_learning_rate_arg(learning_rate)
    )


class NetworkMasks:
    """Mixin for agent states with ``actor_opt`` and ``critic_opt`` fields holding sparse transforms' states."""

    @property
    def actor_masks(self) -> sj.masks.Masks:
        """Current actor masks."""
        return sj.get_masks(self.actor_opt)

    @property
    def critic_masks(self) -> sj.masks.Masks:
        """Current critic masks."""
        return sj.get_masks(self.critic_opt)


class Algorithm(NamedTuple):
    """The pure functions and static facts the training loop needs from an algorithm.

    The state is the algorithm's own pytree (e.g. :class:`agents.algorithms.sac.SACState`);
    the loop reads only its ``actor`` params (to act and evaluate) and, through
    ``sparse_params``, the masks of its networks.

    Attributes:
      init_params: ``key -> (actor_params, critic_params)``, dense.
      init_state: ``(actor_init, critic_init, key) -> state`` from two
        ``sparse_jax.SparseInit`` (masked params and masks); ``key`` seeds the
        sparse optimizers' regrowth draws.
      act: ``(actor_params, obs, key, deterministic) -> actions`` in ``[-1, 1]``.
      update: ``(state, batch, key, step, rewire=None) -> (state, metrics)``, one
        gradient update. ``step`` is the unbatched, 0-based global update index
        that drives the sparse schedules; ``rewire`` is passed on to the sparse
        optimizers (``None``: their schedule decides; ``False``: no mask update
        in this program).
      snip_losses: ``(state, batch, key) -> (actor_loss_fn, critic_loss_fn)``,
        each ``loss_fn(params, batch) -> scalar`` for SNIP scores.
      schedules: ``{network: (DSTSchedule, stride)}``: update ``u`` reaches the
        network's optimizer as step ``u // stride``, on the updates with
        ``u % stride == 0``.
      sparse_params: ``state -> [(params, masks), ...]`` for every network that
        must stay exactly sparse (online and target).
      dormant: ``(state, batch, tau) -> {"actor": fraction, "critic": fraction}``,
        the dormant hidden units of each online network on a replay batch
        (:func:`agents.algorithms.networks.dormant_fraction`).
      unit_scores: ``(state, batch) -> {"actor": scores, "critic": scores}``,
        each hidden unit's mean absolute activation per layer
        (:func:`agents.algorithms.networks.unit_scores`), which ReDo recycles
        by; ``None``: the algorithm cannot be trained with ReDo.
    """

    init_params: Callable[[jax.Array], tuple[Params, Params]]
    init_state: Callable[[sj.SparseInit, sj.SparseInit, jax.Array], State]
    act: ActFn
    update: UpdateFn
    snip_losses: Callable[[State, Any, jax.Array], tuple[LossFn, LossFn]]
    schedules: dict[str, tuple[sj.DSTSchedule, int]]
    sparse_params: Callable[[State], list[tuple[Params, sj.masks.Masks]]]
    dormant: Callable[[State, Any, float], Metrics]
    unit_scores: Callable[[State, Any], dict[str, dict[str, jax.Array]]] | None = None


def polyak(target: Params, online: Params, tau: float, masks: sj.masks.Masks, hyper: Hyper | None = None) -> Params:
    """``tau * online + (1 - tau) * target``, pruned entries set to exactly 0.

    Masking keeps a target exactly as sparse as its online network, also
    after SET/RigL drop a connection the target still remembers. With
    ``hyper``, a run's traced ``tau`` and ``1-tau`` replace the constant
    ``tau`` (``1-tau`` rounded from float64, as the constant's was).
    """
    if hyper is None:
        return sj.apply_mask(optax.incremental_update(online, target, tau), masks)
    t, one_minus_t = hyper["tau"], hyper["1-tau"]
    return sj.apply_mask(jax.tree.map(lambda new, old: t * new + one_minus_t * old, online, target), masks)


def actor_critic_parts(
    actor_net: Any, critic_net: Any, obs_size: int, action_size: int, make_tx: MakeTx, schedules: dict
) -> tuple[Callable, optax.GradientTransformationExtraArgs, optax.GradientTransformationExtraArgs]:
    """What every actor-critic factory builds first: ``init_params`` and each network's sparse optimizer.

    ``init_params(key) -> (actor_params, critic_params)`` is dense; the
    optimizers come from ``make_tx`` with each network's parameter shapes and
    its schedule in ``schedules`` (``{network: (schedule, stride)}``).
    """

    def init_params(key: jax.Array) -> tuple[Params, Params]:
        return init_actor_critic(key, actor_net, critic_net, obs_size, action_size)

    actor_shapes, critic_shapes = jax.eval_shape(init_params, jax.random.key(0))
    actor_tx = make_tx("actor", actor_shapes, schedules["actor"][0])
    critic_tx = make_tx("critic", critic_shapes, schedules["critic"][0])
    return init_params, actor_tx, critic_tx


def dormant_fn(actor_net: Any, critic_net: Any) -> Callable:
    """``(state, batch, tau) -> {"actor", "critic"}``: the dormant-unit fractions of an actor and a critic."""

    def dormant(state: Any, batch: Any, tau: float) -> dict[str, jax.Array]:
        return {
            "actor": dormant_fraction(actor_net, state.actor, batch.obs, tau=tau),
            "critic": dormant_fraction(critic_net, state.critic, batch.obs, batch.action, tau=tau),
        }

    return dormant


def unit_scores_fn(actor_net: Any, critic_net: Any) -> Callable:
    """``(state, batch) -> {"actor", "critic"}``: per-unit activation scores of an actor and a critic (ReDo)."""

    def scores(state: Any, batch: Any) -> dict[str, dict[str, jax.Array]]:
        return {
            "actor": unit_scores(actor_net, state.actor, batch.obs),
            "critic": unit_scores(critic_net, state.critic, batch.obs, batch.action),
        }

    return scores


def sparse_opt_state(tx: optax.GradientTransformation, init: sj.SparseInit, key: jax.Array) -> optax.OptState:
    """``tx``'s state for ``init.params``, holding ``init.masks`` and ``key``."""
    return sj.with_masks(tx.init(init.params), init.masks, key=key)
