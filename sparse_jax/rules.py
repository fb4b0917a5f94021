"""Mask rules: how a dynamic sparse method changes its masks on a mask-update step.

A rule is a small frozen object. :func:`sparse_jax.sparse_transform` calls it
with one :class:`RuleContext` record on each of its schedule's update steps
and gets the new masks back; the transform does everything around it (masked
gradients, the inner update, zeroing the moments of every entry that is not
kept, exact zeros for pruned weights). Its attributes are the facts other
code asks instead of comparing method names: whether it draws random numbers
(``needs_key``), reads the dense gradient (``needs_dense_grad``, which the
FLOPs model charges), regrows connections (``grows``: a dynamic sparse
training baseline), has its top-k tightened by the layers' active counts
(``bounded_by_active``) and keeps a per-run table in the state
(``uses_targets``).

Two rules cover the built-in methods:

- :class:`DropAndGrow`: drop the smallest-magnitude active weights, grow as
  many inactive ones with the largest grow scores: random draws (SET) or the
  dense gradient's magnitude (RigL). A new criterion is a subclass that
  overrides :meth:`DropAndGrow.grow_scores`.
- :class:`MagnitudePrune`: prune the smallest-magnitude active weights down to
  a count table (GMP), no regrowth.

Example, a rule that regrows where the gradient is large, with noise:

  >>> import jax, jax.numpy as jnp
  >>> class NoisyRigL(DropAndGrow):
  ...     def grow_scores(self, ctx, i, mask, grad):
  ...         return jnp.abs(grad) + 0.1 * jax.random.uniform(jax.random.fold_in(ctx.key, i), mask.shape)
  >>> NoisyRigL(grow="gradient").needs_dense_grad, NoisyRigL(grow="gradient").grows
  (True, True)
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Hashable, Sequence
from fractions import Fraction
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from sparse_jax.distributions import layer_counts
from sparse_jax.masks import Counts, Masks, is_none, target_active
from sparse_jax.schedules import DSTSchedule, GMPSchedule
from sparse_jax.validation import check_choice, fail


class RuleSettings(NamedTuple):
    """A sparse transform's static settings, as its rule sees them.

    Attributes:
      schedule: when the masks change (:class:`DSTSchedule` or :class:`GMPSchedule`).
      max_active: optional per-layer active-count bounds (ints, ``None`` for dense leaves).
      distribution: how a count splits across layers (``uniform``, ``erk``, ``global``); GMP's table uses it.
      bound_schedules: other schedules whose states one compiled update must also serve (GMP).
    """

    schedule: Any
    max_active: Counts | None = None
    distribution: str = "erk"
    bound_schedules: tuple = ()


class RuleContext(NamedTuple):
    """What a mask rule sees on one mask-update step.

    Attributes:
      masks: the masks before this update (boolean arrays, ``None`` for dense leaves).
      weights: the params after this step's inner update (what magnitude-based drops rank).
      grads: this step's gradient, dense: the forward pass holds pruned weights at exactly 0, so
        ``jax.grad`` of the loss is dense.
      key: ``fold_in(state key, t)``, or ``None`` when the state has no key.
      t: the 1-based count of this update (traced int32).
      on_schedule: static; ``True`` when ``t`` is one of the schedule's update steps (``rewire=None``),
        ``False`` when ``rewire=True`` may rewire anywhere.
      targets: the state's table (:class:`MagnitudePrune`'s counts), ``None`` for other rules.
      settings: the transform's :class:`RuleSettings`.
    """

    masks: Masks
    weights: Any
    grads: Any
    key: jax.Array | None
    t: jax.Array
    on_schedule: bool
    targets: jax.Array | None
    settings: RuleSettings


@runtime_checkable
class MaskRule(Protocol):
    """What :func:`sparse_jax.sparse_transform` needs of a mask rule (subclass :class:`Rule` for the defaults)."""

    schedule_type: ClassVar[type]
    needs_key: bool
    needs_dense_grad: bool
    grows: bool
    bounded_by_active: bool
    uses_targets: bool

    def check(self, settings: RuleSettings) -> None:
        """Raise (or warn) on settings the rule cannot use, before anything is traced."""

    def init_targets(self, settings: RuleSettings, masks: Masks) -> np.ndarray | None:
        """The state's table for these settings (``None``: the rule keeps none)."""

    def program_tag(self, distribution: str) -> Hashable:
        """What of ``distribution`` the compiled update depends on (runs with equal tags can share one)."""

    def __call__(self, ctx: RuleContext) -> Masks:
        """The new masks after this update step."""


@dataclasses.dataclass(frozen=True)
class Rule:
    """Defaults for a :class:`MaskRule`: a DST-scheduled rule without key, dense gradient, regrowth or table."""

    schedule_type: ClassVar[type] = DSTSchedule
    needs_key: ClassVar[bool] = False
    needs_dense_grad: ClassVar[bool] = False
    grows: ClassVar[bool] = False
    bounded_by_active: ClassVar[bool] = False
    uses_targets: ClassVar[bool] = False

    @property
    def label(self) -> str:
        """The rule's name in messages."""
        return type(self).__name__

    def check(self, settings: RuleSettings) -> None:
        """The schedule must be a :attr:`schedule_type`."""
        if not isinstance(settings.schedule, self.schedule_type):
            raise ValueError(
                f"{self.label} needs a {self.schedule_type.__name__} (schedule=...), got {settings.schedule!r}."
            )

    def init_targets(self, settings: RuleSettings, masks: Masks) -> np.ndarray | None:
        """No table."""
        del settings, masks
        return None

    def program_tag(self, distribution: str) -> Hashable:
        """The compiled update does not depend on the distribution."""
        del distribution
        return None

    def __call__(self, ctx: RuleContext) -> Masks:
        raise NotImplementedError(f"{self.label} must define __call__(ctx) -> masks.")


def _smallest(scores: jax.Array, n: jax.Array, bound: int) -> jax.Array:
    """Boolean vector marking the ``n`` (traced, ``n <= bound``) smallest scores.

    ``lax.top_k`` with the static ``bound`` is several times faster on CPU than
    a full argsort of a kernel-sized layer. Ties go to the lower index.
    """
    if bound == 0:
        return jnp.zeros(scores.shape, bool)
    _, idx = jax.lax.top_k(-scores, bound)
    return jnp.zeros(scores.shape, bool).at[idx].set(jnp.arange(bound) < n)


def drop_and_grow(
    mask: jax.Array,
    weights: jax.Array,
    grow_scores: jax.Array,
    n_drop: jax.Array,
    max_n: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """One SET/RigL rewiring of one layer.

    Drops ``n = min(n_drop, inactive)`` active entries with
    the smallest ``|weights|`` and grows the ``n`` entries that were inactive
    before the drop with the largest ``grow_scores``. Ties go to the lower
    flat index.

    Args:
      mask: boolean mask of the layer.
      weights: the layer's weights (only active entries matter).
      grow_scores: non-negative regrowth scores (random draws or ``|grad|``).
      n_drop: how many to drop (an int, traced or not), e.g.
        :meth:`DSTSchedule.drop_count` of the layer's active count.
      max_n: static upper bound on ``n`` (default: the layer size); ``n`` is
        clipped to it. A tight bound makes the selection cheaper.

    Returns:
      ``(new_mask, grown)`` where ``grown`` marks the newly active entries.
    """
    if not jnp.issubdtype(jnp.result_type(n_drop), jnp.integer):
        raise ValueError(
            f"n_drop must be an integer count, got {n_drop!r}; for a fraction use DSTSchedule.drop_count or "
            "floor(fraction * active)."
        )
    m = mask.ravel()
    bound = m.size if max_n is None else min(int(max_n), m.size)
    n_active = jnp.sum(m, dtype=jnp.int32)
    n = jnp.clip(jnp.asarray(n_drop, jnp.int32), 0, m.size - n_active)
    n = jnp.minimum(n, bound)
    # Non-finite values must rank strictly inside the active (drop) or inactive (grow) group:
    # NaN weights are dropped first, and no finite score ties with the +inf placeholder.
    big = jnp.finfo(jnp.float32).max
    magnitude = jnp.nan_to_num(jnp.abs(weights.ravel()).astype(jnp.float32), nan=0.0, posinf=big)
    scores = jnp.nan_to_num(grow_scores.ravel().astype(jnp.float32), nan=0.0, posinf=big, neginf=-big)
    drop = m & _smallest(jnp.where(m, magnitude, jnp.inf), n, bound)
    grow = ~m & _smallest(jnp.where(m, jnp.inf, -scores), n, bound)
    return ((m & ~drop) | grow).reshape(mask.shape), grow.reshape(mask.shape)


def _drop_bounds(masks: Masks, max_active: Counts | None, drop_fraction: float) -> list[int | None]:
    """Static per-leaf bounds on how many weights one rewiring can drop (``None`` for dense leaves).

    ``f(t) < f0`` for ``t > 0``, so ``floor(f0 * active)`` bounds every count;
    ``active`` comes from ``max_active`` if given, else it is the leaf size.
    """
    leaves = jax.tree.leaves(masks, is_leaf=is_none)
    actives = [None if m is None else m.size for m in leaves]
    if max_active is not None:
        actives = jax.tree.leaves(max_active, is_leaf=is_none)
    f0 = Fraction(repr(float(drop_fraction)))
    return [None if m is None else min(math.floor(f0 * int(a)), m.size) for m, a in zip(leaves, actives)]


@dataclasses.dataclass(frozen=True)
class DropAndGrow(Rule):
    """SET and RigL: drop the smallest-magnitude active weights, grow as many with the largest grow scores.

    On update ``t`` each layer drops :meth:`DSTSchedule.drop_count` of its
    active weights (by ``|w|`` after this step's update) and grows as many
    among the positions inactive before the drop (:func:`drop_and_grow`), so
    per-layer counts never change.

    Attributes:
      grow: ``random`` (SET: uniform draws from ``fold_in(key, leaf index)``) or
        ``gradient`` (RigL: ``|dense gradient|``). A subclass with its own
        :meth:`grow_scores` may use either to say what it needs.
    """

    grow: str = "random"
    bounded_by_active: ClassVar[bool] = True  # per-layer counts never change, so active counts bound the top-k
    grows: ClassVar[bool] = True

    def __post_init__(self):
        check_choice("grow", self.grow, ("random", "gradient"))

    @property
    def needs_key(self) -> bool:  # type: ignore[override]
        """Random regrowth draws from the state's key."""
        return self.grow == "random"

    @property
    def needs_dense_grad(self) -> bool:  # type: ignore[override]
        """Gradient regrowth reads the dense gradient."""
        return self.grow == "gradient"

    @property
    def label(self) -> str:
        """``SET`` or ``RigL`` for the built-in rules, else the class name."""
        if type(self) is DropAndGrow:
            return {"random": "SET", "gradient": "RigL"}[self.grow]
        return type(self).__name__

    def check(self, settings: RuleSettings) -> None:
        """A :class:`DSTSchedule`; warn when it has no update step (the method would train as static)."""
        super().check(settings)
        schedule = settings.schedule
        if not range(schedule.delta_t, schedule.t_end, schedule.delta_t):
            warnings.warn(
                f"{schedule!r} has no mask update (t_end={schedule.t_end} <= delta_t={schedule.delta_t}), so "
                f"{self.label} trains as static sparse training; lower delta_t or train for more steps.",
                stacklevel=4,  # the caller of set_sparse, rigl_sparse or sparse_optimizer
            )

    def program_tag(self, distribution: str) -> Hashable:
        """``global`` has no per-layer count to bound the top-k, so its update keeps apart from the others'."""
        return distribution == "global"

    def grow_scores(self, ctx: RuleContext, i: int, mask: jax.Array, grad: jax.Array) -> jax.Array:
        """Non-negative regrowth scores of leaf ``i`` (the largest grow first; ties to the lower index)."""
        if self.grow == "random":
            return jax.random.uniform(jax.random.fold_in(ctx.key, i), mask.shape)
        return jnp.abs(grad)

    def __call__(self, ctx: RuleContext) -> Masks:
        """Every layer rewired once: :func:`drop_and_grow` with :meth:`grow_scores`."""
        m_leaves, treedef = jax.tree.flatten(ctx.masks, is_leaf=is_none)
        w_leaves = jax.tree.leaves(ctx.weights)
        g_leaves = jax.tree.leaves(ctx.grads)
        schedule = ctx.settings.schedule
        bounds = _drop_bounds(ctx.masks, ctx.settings.max_active, schedule.drop_fraction)
        actives = jnp.stack([jnp.sum(m, dtype=jnp.int32) for m in m_leaves if m is not None])
        n_drop = iter(schedule.device_drop_count(ctx.t, actives, ctx.on_schedule))
        new = []
        for i, (m, w, g) in enumerate(zip(m_leaves, w_leaves, g_leaves)):
            if m is None:
                new.append(None)
                continue
            nm, _ = drop_and_grow(m, w, self.grow_scores(ctx, i, m, g), next(n_drop), bounds[i])
            new.append(nm)
        return jax.tree.unflatten(treedef, new)


def _gmp_targets(schedule: GMPSchedule, distribution: str, masks: Masks) -> np.ndarray:
    """Active counts after each update step: ``(steps, layers)`` for uniform/ERK, ``(steps, 1)`` totals for global.

    Totals round half up (:func:`sparse_jax.target_active`) over the prunable
    weights; uniform and ERK split them by shapes alone, so the table is built
    once, on the host.
    """
    leaves = [m for m in jax.tree.leaves(masks, is_leaf=is_none) if m is not None]
    n = sum(m.size for m in leaves)
    shapes = [np.zeros(m.shape, np.float32) for m in leaves]
    rows = []
    for t in schedule.update_steps():
        k = target_active(n, schedule.sparsity_at(t))
        rows.append([k] if distribution == "global" else layer_counts(distribution, shapes, k))
    return np.asarray(rows, np.int32)


def _gmp_bounds(tables: Sequence[np.ndarray], sizes: Sequence[int], distribution: str) -> list[int]:
    """Static bounds on how many weights one GMP step prunes: one for ``global``, else one per layer.

    From dense, a step prunes at most the layer size less its smallest count
    (the sparsest tables decide when ``tables`` hold several schedules').
    """
    if distribution == "global":
        return [max(int(sum(sizes) - t[-1, 0]) for t in tables)]
    return [max(int(n - t[:, j].min()) for t in tables) for j, n in enumerate(sizes)]


@dataclasses.dataclass(frozen=True)
class MagnitudePrune(Rule):
    """GMP: keep the largest-magnitude active weights, down to the state's count table; nothing regrows.

    The table (:meth:`init_targets`, held in :attr:`SparseState.targets`)
    gives the active count after each update step of a :class:`GMPSchedule`:
    per layer for ``uniform`` and ``erk``, one total for ``global`` (ranked
    over all layers). A ``t`` off the schedule (``rewire=True``) prunes to the
    count of the last update step before it.
    """

    schedule_type: ClassVar[type] = GMPSchedule
    uses_targets: ClassVar[bool] = True

    @property
    def label(self) -> str:
        """``gmp_sparse`` for the built-in rule, else the class name."""
        return "gmp_sparse" if type(self) is MagnitudePrune else type(self).__name__

    def check(self, settings: RuleSettings) -> None:
        """A :class:`GMPSchedule`, a known distribution, and bound schedules that differ in sparsity alone."""
        super().check(settings)
        check_choice("distribution", settings.distribution, ("uniform", "erk", "global"))
        for other in settings.bound_schedules:
            if dataclasses.replace(other, sparsity=settings.schedule.sparsity) != settings.schedule:
                fail("bound_schedules", other, f"GMPSchedules that differ from {settings.schedule!r} in sparsity alone")

    def init_targets(self, settings: RuleSettings, masks: Masks) -> np.ndarray:
        """The count table of ``settings.schedule`` (:func:`_gmp_targets`)."""
        return _gmp_targets(settings.schedule, settings.distribution, masks)

    def program_tag(self, distribution: str) -> Hashable:
        """The table's layout and the ranking depend on the distribution."""
        return distribution

    def __call__(self, ctx: RuleContext) -> Masks:
        """The active weights with the smallest ``|w|`` pruned, down to the table's count for ``t``."""
        s = ctx.settings
        sizes = [m.size for m in jax.tree.leaves(ctx.masks)]
        tables = [_gmp_targets(sch, s.distribution, ctx.masks) for sch in (s.schedule, *s.bound_schedules)]
        bounds = _gmp_bounds(tables, sizes, s.distribution)
        targets = ctx.targets[s.schedule.index(ctx.t)]
        return prune_to_counts(ctx.masks, ctx.weights, targets, bounds, ranked_globally=s.distribution == "global")


def prune_to_counts(
    masks: Masks, weights: Any, targets: jax.Array, bounds: Sequence[int], *, ranked_globally: bool = False
) -> Masks:
    """``masks`` with the active weights of smallest ``|w|`` pruned, down to the active counts ``targets``.

    Nothing regrows: a layer already at or below its count keeps its mask.

    Args:
      masks: boolean masks (``None`` for dense leaves).
      weights: the params the magnitudes come from (pruned entries never rank).
      targets: traced int counts, one per mask leaf, or one total when ``ranked_globally``.
      bounds: static upper bounds on how many weights one call prunes (one per mask leaf, or one):
        the size of the ``lax.top_k`` that picks them.
      ranked_globally: rank the active weights of all layers together against one total.
    """
    m_leaves, treedef = jax.tree.flatten(masks, is_leaf=is_none)
    idx = [i for i, m in enumerate(m_leaves) if m is not None]
    w_leaves = jax.tree.leaves(weights)
    big = jnp.finfo(jnp.float32).max
    # Active weights rank by |w| (NaN first, as SET/RigL drop them); pruned ones never rank.
    scores = [
        jnp.where(
            m_leaves[i], jnp.nan_to_num(jnp.abs(w_leaves[i]).astype(jnp.float32), nan=0.0, posinf=big), jnp.inf
        ).ravel()
        for i in idx
    ]
    actives = [jnp.sum(m_leaves[i], dtype=jnp.int32) for i in idx]
    if ranked_globally:
        flat = jnp.concatenate(scores)
        n = jnp.maximum(sum(actives) - targets[0], 0)
        drops = jnp.split(_smallest(flat, n, bounds[0]), np.cumsum([x.size for x in scores])[:-1])
    else:
        drops = [_smallest(x, jnp.maximum(actives[j] - targets[j], 0), bounds[j]) for j, x in enumerate(scores)]
    new = list(m_leaves)
    for i, d in zip(idx, drops):
        new[i] = m_leaves[i] & ~d.reshape(m_leaves[i].shape)
    return jax.tree.unflatten(treedef, new)


SET = DropAndGrow("random")
RIGL = DropAndGrow("gradient")
GMP = MagnitudePrune()
