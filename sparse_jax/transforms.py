"""Sparse training as optax transforms: static masks, SET, RigL and GMP.

:func:`sparse_transform` wraps any optax optimizer. It is built once from
static settings (regrowth rule, schedule, top-k bounds); its state holds the
inner optimizer's state, the masks, a step count and a PRNG key, and
:func:`with_masks` puts pruned masks and a key into a fresh state, so
``jax.vmap`` over masks and keys gives every seed its own. Each update:

1. masks the incoming gradient and runs the inner optimizer on it (so global
   norm clipping and moments see only active weights);
2. on a mask-update step of its schedule, asks its mask rule
   (:mod:`sparse_jax.rules`) for the new masks: SET and RigL drop the active
   weights with the smallest magnitude after this step's update and grow as
   many among the positions that were inactive before the drop, at random
   (SET) or by the largest dense-gradient magnitude (RigL); GMP prunes to its
   count table. Grown weights start at 0, and the moments of every entry that
   is not kept are zeroed through ``optax.tree.map_params``;
3. returns updates that leave every inactive param exactly 0
   (``update = -param`` there, and ``p + (-p) == 0`` exactly).

RigL needs the dense gradient: the forward pass uses the params themselves,
whose pruned entries are held at exactly 0, so ``jax.grad`` of the loss is
already dense.

Schedule (SET/RigL): after the ``t``-th update (``t = 1, 2, ...``) the mask
changes when ``t % delta_t == 0`` and ``t < t_end``, dropping the fraction
``f(t) = f0 / 2 * (1 + cos(pi * t / t_end))`` of each layer's active weights
(rounded down, and never more than the layer's inactive count). The count is
exact (:meth:`DSTSchedule.drop_count`, on the host); float32 would land one
short wherever ``f(t) * active`` is an integer. Per-layer counts never change.
Pass ``step=`` (the 0-based index of this update) as an extra argument to
drive the schedule from an unbatched loop counter: under ``jax.vmap`` a
batched predicate turns ``lax.cond`` into a select that runs the mask update
on every step. Even unbatched, that branch costs about as
much per step as the static update itself; a loop that passes
``rewire=False`` between the mask-update steps it finds with
:meth:`DSTSchedule.next_update_step` pays it only on those steps.

Example:
  >>> import jax, jax.numpy as jnp, optax
  >>> params = {"w": jnp.ones((2, 2)), "b": jnp.zeros(2)}
  >>> masks = {"w": jnp.array([[True, False], [False, True]]), "b": None}
  >>> tx = static_sparse(optax.adam(0.1))  # static settings only
  >>> state = with_masks(tx.init(params), masks)  # the masks live in the state
  >>> grads = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
  >>> updates, state = tx.update(grads, state, params)
  >>> w = optax.apply_updates(params, updates)["w"]
  >>> round(float(w[0, 0]), 3), float(w[0, 1]), float(w[1, 0])
  (0.9, 0.0, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import optax

from sparse_jax import rules as _rules
from sparse_jax.masks import Counts, FilterFn, Masks, default_filter, dense_masks, is_none
from sparse_jax.methods import get_method
from sparse_jax.rules import MaskRule, RuleContext, RuleSettings, drop_and_grow
from sparse_jax.schedules import DSTSchedule, GMPSchedule
from sparse_jax.state import SparseState, get_masks, keep_sparse, with_masks
from sparse_jax.validation import check_choice, fail

# Names kept here for code written against the single module this once was.
__all__ = [
    "DSTSchedule",
    "GMPSchedule",
    "SparseState",
    "drop_and_grow",
    "get_masks",
    "gmp_sparse",
    "keep_sparse",
    "rigl_sparse",
    "set_sparse",
    "sparse_optimizer",
    "sparse_transform",
    "static_sparse",
    "with_masks",
]

REGROW = {"none": None, "random": _rules.SET, "gradient": _rules.RIGL}


def _check_max_active(max_active: Counts | None, masks: Masks) -> None:
    if max_active is None:
        return
    n_counts = len(jax.tree.leaves(max_active, is_leaf=is_none))
    n_masks = len(jax.tree.leaves(masks, is_leaf=is_none))
    if n_counts != n_masks:
        raise ValueError(
            f"max_active has {n_counts} leaves but the masks have {n_masks}; give one count per mask leaf "
            "(e.g. sparse_jax.active_counts(masks))."
        )


def sparse_transform(
    inner: optax.GradientTransformation,
    *,
    regrow: str = "none",
    schedule: DSTSchedule | GMPSchedule | None = None,
    max_active: Counts | None = None,
    filter_fn: FilterFn = default_filter,
    rule: MaskRule | None = None,
    distribution: str = "erk",
    bound_schedules: Sequence[GMPSchedule] = (),
) -> optax.GradientTransformationExtraArgs:
    """Wrap ``inner`` so that training keeps the params sparse under the masks in its state.

    The transform holds static settings only. ``init(params)`` starts with
    all-``True`` masks on the leaves ``filter_fn`` selects (``None`` on the
    others) and no PRNG key; put the pruned masks, and for SET a key, into the
    state with :func:`with_masks`::

        tx = sparse_transform(optax.adam(3e-4), regrow="random", schedule=schedule)
        state = with_masks(tx.init(params), masks, key=key)

    Args:
      inner: any optax optimizer (adam, adamw, chains, ``inject_hyperparams``).
      regrow: ``"none"`` (static sparse training), ``"random"`` (SET) or
        ``"gradient"`` (RigL): shorthands for the built-in rules.
      schedule: the mask schedule (the rule's ``schedule_type``); required with a rule.
      max_active: optional counts pytree (ints, ``None`` for dense leaves)
        bounding each layer's active count; it sizes the static ``top_k`` of
        a rule that is ``bounded_by_active`` (default: the layer size, which is
        slower). SET's and RigL's per-layer counts never change, so
        ``active_counts(masks)`` is the tight bound.
      filter_fn: ``filter_fn(path, leaf) -> bool`` picks the leaves ``init``
        gives masks (as in :func:`sparse_jax.dense_masks`).
      rule: any :class:`sparse_jax.rules.MaskRule` (instead of ``regrow``).
      distribution, bound_schedules: the rule's settings (GMP's: see :func:`gmp_sparse`).

    Returns:
      A ``GradientTransformationExtraArgs``. Its ``update`` needs ``params``
      and takes two optional extra arguments: ``step`` (see module docs) and
      ``rewire``, a Python bool or ``None``:

      - ``None`` (default): rewire when ``schedule.is_update_step(t)``, decided
        on device by a ``lax.cond``;
      - ``False``: do not rewire on this update. The branch is left out of the
        program, which makes the update as cheap as a static one (the branch
        alone roughly doubles the optimizer's cost on CPU), so loops that know
        where the mask updates fall (``DSTSchedule.next_update_step``) should
        pass ``False`` between them;
      - ``True``: rewire on this update, whatever ``delta_t`` says (SET/RigL
        drop ``schedule.drop_count(t, active)`` per layer, 0 from ``t_end`` on).
    """
    # Long: most of it is the docstring; the checks and the build are a few lines.
    check_choice("regrow", regrow, REGROW)
    if rule is not None and regrow != "none":
        raise ValueError(f"give regrow={regrow!r} or rule={rule!r}, not both.")
    rule = REGROW[regrow] if rule is None else rule
    if rule is not None and not isinstance(rule, MaskRule):
        fail("rule", rule, "a sparse_jax.rules.MaskRule (for example a subclass of sparse_jax.rules.Rule)")
    settings = RuleSettings(schedule, max_active, distribution, tuple(bound_schedules))
    if rule is not None:
        rule.check(settings)
    return _masked_transform(optax.with_extra_args_support(inner), filter_fn, rule, settings)


def _masked_transform(
    inner: optax.GradientTransformationExtraArgs, filter_fn: FilterFn, rule: MaskRule | None, settings: RuleSettings
) -> optax.GradientTransformationExtraArgs:
    """The skeleton: masked gradients, the inner update, the rule's mask updates, zeroed moments, exact zeros."""
    # Long: optax's pattern, init and update as closures over the same static settings.

    def init_fn(params):
        masks = dense_masks(params, filter_fn)
        _check_max_active(settings.max_active, masks)
        targets = None if rule is None else rule.init_targets(settings, masks)
        targets = None if targets is None else jnp.asarray(targets)
        return SparseState(inner.init(params), masks, jnp.zeros([], jnp.int32), None, targets)

    def rewired(masks, inner_state, state, params, inner_updates, grads, t, on_schedule):
        if all(m is None for m in jax.tree.leaves(masks, is_leaf=is_none)):
            return masks, inner_state
        # Draws depend on (key, t) only, so they do not depend on which updates passed rewire=False.
        key = None if state.key is None else jax.random.fold_in(state.key, t)
        weights = optax.apply_updates(params, inner_updates)
        new = rule(RuleContext(masks, weights, grads, key, t, on_schedule, state.targets, settings))
        # Zero the moments of every entry that is not kept: grown ones start fresh, and dropped
        # ones must not leak stale moments into anything the inner optimizer computes.
        kept = jax.tree.map(lambda n, m: True if n is None else n & m, new, masks, is_leaf=is_none)
        inner_state = optax.tree.map_params(
            inner.init, lambda s, k: jnp.where(k, s, jnp.zeros_like(s)), inner_state, kept
        )
        return new, inner_state

    def update_fn(updates, state, params=None, *, step=None, rewire=None, **extra_args):
        if params is None:
            raise ValueError("sparse_transform.update needs params (call update(grads, state, params)).")
        if not (rewire is None or isinstance(rewire, bool)):
            fail(
                "rewire",
                rewire,
                "None (the schedule decides on device), True or False (Python bools, fixed when tracing)",
            )
        if rewire and rule is None:
            raise ValueError(
                "rewire=True needs a SET, RigL or GMP transform (one whose masks change), not a static one."
            )
        if rule is not None and rule.needs_key and rewire is not False and state.key is None:
            raise ValueError(
                f"{rule.label}'s random regrowth needs a PRNG key in the state: "
                "state = sparse_jax.with_masks(state, key=key)."
            )
        masks = state.masks
        masked_grads = jax.tree.map(
            lambda m, g: g if m is None else jnp.where(m, g, jnp.zeros_like(g)), masks, updates, is_leaf=is_none
        )
        inner_updates, inner_state = inner.update(masked_grads, state.inner_state, params, **extra_args)
        count = optax.safe_increment(state.count)
        new_masks = masks
        if rule is not None and rewire is not False:
            t = count if step is None else jnp.asarray(step, jnp.int32) + 1
            # rewire=None rewires only on update steps, where the count table holds f(t); rewire=True may not.
            update = lambda ms, st: rewired(ms, st, state, params, inner_updates, updates, t, not rewire)
            if rewire:
                new_masks, inner_state = update(masks, inner_state)
            else:
                new_masks, inner_state = jax.lax.cond(
                    settings.schedule.is_update_step(t), update, lambda ms, st: (ms, st), masks, inner_state
                )
        # Kept entries take the inner update; dropped, grown and pruned ones are set to 0.
        final = jax.tree.map(
            lambda nm, om, u, p: u if nm is None else jnp.where(nm & om, u, -p),
            new_masks,
            masks,
            inner_updates,
            params,
            is_leaf=is_none,
        )
        return final, state._replace(inner_state=inner_state, masks=new_masks, count=count)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def gmp_sparse(
    inner: optax.GradientTransformation,
    *,
    schedule: GMPSchedule,
    distribution: str = "erk",
    filter_fn: FilterFn = default_filter,
    bound_schedules: Sequence[GMPSchedule] = (),
) -> optax.GradientTransformationExtraArgs:
    """Gradual magnitude pruning (Zhu & Gupta 2017): dense start, cubic schedule to ``schedule.sparsity``.

    On each of ``schedule``'s update steps the active weights with the
    smallest magnitude (after this step's update) are pruned, down to the
    schedule's count: ``target_active(N, s(t))`` over the ``N`` prunable
    weights, split across layers by ``distribution`` (``uniform`` and ``erk``
    per layer, a table built on the host; ``global`` by the largest magnitudes
    over all layers). Pruned weights become exactly 0 and their moments are
    zeroed; nothing regrows. Start it from the dense masks of ``init`` (no
    :func:`with_masks` needed); from sparser masks it prunes only where a
    layer is above the schedule's count.

    The table of counts is held in the state (:attr:`SparseState.targets`),
    so one compiled update can serve states that ``init`` of other schedules
    made (a sweep vmapping runs of several sparsities): list those schedules
    in ``bound_schedules``, which only widens the static top-k bound. They
    must have ``schedule``'s update steps (all but ``sparsity`` equal).
    """
    return sparse_transform(
        inner,
        rule=_rules.GMP,
        schedule=schedule,
        distribution=distribution,
        filter_fn=filter_fn,
        bound_schedules=bound_schedules,
    )


def static_sparse(
    inner: optax.GradientTransformation, *, filter_fn: FilterFn = default_filter
) -> optax.GradientTransformationExtraArgs:
    """Static sparse training (including TAR masks): the masks put in the state stay fixed."""
    return sparse_transform(inner, filter_fn=filter_fn)


def set_sparse(
    inner: optax.GradientTransformation,
    *,
    schedule: DSTSchedule,
    max_active: Counts | None = None,
    filter_fn: FilterFn = default_filter,
) -> optax.GradientTransformationExtraArgs:
    """SET: magnitude drop, uniformly random regrowth, on ``schedule`` (the state needs a key: :func:`with_masks`)."""
    return sparse_transform(inner, regrow="random", schedule=schedule, max_active=max_active, filter_fn=filter_fn)


def rigl_sparse(
    inner: optax.GradientTransformation,
    *,
    schedule: DSTSchedule,
    max_active: Counts | None = None,
    filter_fn: FilterFn = default_filter,
) -> optax.GradientTransformationExtraArgs:
    """RigL: magnitude drop, regrowth where the dense gradient is largest, on ``schedule``."""
    return sparse_transform(inner, regrow="gradient", schedule=schedule, max_active=max_active, filter_fn=filter_fn)


def sparse_optimizer(
    method: str,
    inner: optax.GradientTransformation,
    *,
    schedule: DSTSchedule | GMPSchedule | None = None,
    max_active: Counts | None = None,
    distribution: str = "erk",
    filter_fn: FilterFn = default_filter,
    bound_schedules: Sequence[GMPSchedule] = (),
) -> optax.GradientTransformationExtraArgs:
    """The transform that trains a method of :data:`sparse_jax.METHODS` by name.

    Methods without a mask rule (``dense``, ``static``, ``uniform_revival``,
    ``tar``) train with fixed masks (they differ by the masks put in the
    state); the others train with their rule on ``schedule`` (``set`` and
    ``rigl`` on a :class:`DSTSchedule`, ``max_active`` bounding their top-k;
    ``gmp`` on a :class:`GMPSchedule` under ``distribution``, with
    ``bound_schedules``: see :func:`gmp_sparse`).
    """
    rule = get_method(method).rule
    if rule is None:
        return static_sparse(inner, filter_fn=filter_fn)
    return sparse_transform(
        inner,
        rule=rule,
        schedule=schedule,
        max_active=max_active if rule.bounded_by_active else None,
        distribution=distribution,
        filter_fn=filter_fn,
        bound_schedules=bound_schedules if rule.uses_targets else (),
    )
