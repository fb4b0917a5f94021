"""Sparse training as optax transforms: static masks, SET and RigL.

:func:`sparse_transform` wraps any optax optimizer. It is built once from
static settings (regrowth rule, schedule, top-k bounds); its state holds the
inner optimizer's state, the masks, a step count and a PRNG key, and
:func:`with_masks` puts pruned masks and a key into a fresh state, so
``jax.vmap`` over masks and keys gives every seed its own. Each update:

1. masks the incoming gradient and runs the inner optimizer on it (so global
   norm clipping and moments see only active weights);
2. on a mask-update step (SET/RigL only), drops the active weights with the
   smallest magnitude after this step's update and grows as many among the
   positions that were inactive before the drop, at random (SET) or by the
   largest dense-gradient magnitude (RigL); grown weights start at 0, and the
   moments of grown and dropped entries in the inner state are zeroed through
   ``optax.tree.map_params``;
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

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparse_jax.distributions import layer_counts
from sparse_jax.masks import Counts, FilterFn, Masks, default_filter, dense_masks, is_none, path_name, target_active
from sparse_jax.methods import METHODS
from sparse_jax.validation import check_choice, check_int, check_number, fail

REGROW = ("none", "random", "gradient")


class SparseState(NamedTuple):
    """State of :func:`sparse_transform`.

    Attributes:
      inner_state: the wrapped optimizer's state.
      masks: current masks (boolean arrays, ``None`` for dense leaves).
      count: number of updates applied so far (int32).
      key: PRNG key for SET's random regrowth (``None`` until :func:`with_masks`
        sets one); the mask update after update ``t`` draws from
        ``fold_in(key, t)``, so its draws do not depend on which earlier
        updates ran with ``rewire=False``.
      targets: GMP's active-count table (:func:`gmp_sparse`), ``None`` for the
        other transforms. It is state, not a static setting, so that one
        compiled GMP update serves runs pruning to different sparsities.
    """

    inner_state: optax.OptState
    masks: Masks
    count: jax.Array
    key: jax.Array | None
    targets: jax.Array | None = None


@dataclasses.dataclass(frozen=True)
class DSTSchedule:
    """When and how much SET/RigL rewire.

    Attributes:
      total_steps: optimizer steps in the whole run.
      delta_t: steps between mask updates.
      drop_fraction: ``f0``, the drop fraction at ``t = 0`` (cosine-decayed).
      end_fraction: mask updates stop at ``t_end = floor(end_fraction * total_steps)``.
    """

    total_steps: int
    delta_t: int = 1000
    drop_fraction: float = 0.5
    end_fraction: float = 0.8

    def __post_init__(self):
        check_int("total_steps", self.total_steps, minimum=1)
        check_int("delta_t", self.delta_t, minimum=1)
        for name in ("drop_fraction", "end_fraction"):
            check_number(name, getattr(self, name), lo=0.0, hi=1.0)

    @property
    def t_end(self) -> int:
        """Last step (exclusive) at which the mask may change."""
        # The epsilon keeps float error from costing a step: 0.57 * 100 is 56.99999999999999.
        return int(math.floor(self.end_fraction * self.total_steps + 1e-9))

    def fraction(self, t: jax.Array) -> jax.Array:
        """Cosine drop fraction ``f0/2 * (1 + cos(pi t / t_end))``, 0 from ``t_end`` on (float32, for display).

        The rewiring itself uses the exact :meth:`drop_count`.

        >>> round(float(DSTSchedule(100, drop_fraction=0.5, end_fraction=0.5).fraction(25)), 6)
        0.25
        """
        t_end = max(self.t_end, 1)
        t = jnp.asarray(t, jnp.float32)
        f = 0.5 * self.drop_fraction * (1.0 + jnp.cos(jnp.pi * jnp.minimum(t, t_end) / t_end))
        return jnp.where(t < self.t_end, f, 0.0)

    def _exact_fraction(self, t: int) -> Fraction | None:
        """``f(t)`` as an exact fraction where it is rational (``t / t_end`` = 1/3, 1/2, 2/3), else ``None``."""
        f0 = Fraction(repr(float(self.drop_fraction)))
        for num, den, share in ((1, 3, Fraction(3, 4)), (1, 2, Fraction(1, 2)), (2, 3, Fraction(1, 4))):
            if t * den == num * self.t_end:
                return f0 * share
        return None

    def drop_count(self, t: Any, active: Any) -> np.ndarray:
        """Exact ``floor(f(t) * active)`` on the host, 0 outside ``[0, t_end)`` (numpy ints, broadcasting).

        ``f0`` is read as written (``Fraction(repr(drop_fraction))``, so 0.3 is
        3/10). By Niven's theorem ``cos(pi t / t_end)`` is rational in
        ``(0, t_end)`` only at ``t / t_end`` = 1/3, 1/2, 2/3, where ``f(t)`` is
        ``3 f0 / 4``, ``f0 / 2`` and ``f0 / 4``: there the count comes from exact
        rational arithmetic (Python ints, so nothing overflows). Elsewhere
        ``f(t) * active`` is irrational, never an integer, and float64 places it
        between the right integers.

        >>> s = DSTSchedule(1_000_000)  # t_end = 800000; t = 400000 is t_end / 2
        >>> int(s.drop_count(400_000, 12)), int(s.drop_count(1000, 12)), int(s.drop_count(800_000, 12))
        (3, 5, 0)
        """

        def one(t: int, active: int) -> int:
            if not 0 <= t < self.t_end:
                return 0
            exact = self._exact_fraction(t)
            if exact is not None:
                return math.floor(exact * active)
            f = 0.5 * float(self.drop_fraction) * (1.0 + math.cos(math.pi * t / self.t_end))
            return math.floor(f * active)

        t, active = np.broadcast_arrays(np.asarray(t, np.int64), np.asarray(active, np.int64))
        return np.vectorize(one, otypes=[np.int64])(t, active) if t.size else np.zeros(t.shape, np.int64)

    def _fixed_point(self, t: int) -> int:
        """``ceil(f(t) * 2**62)``: ``f(t)`` in fixed point, exact where ``f(t)`` is rational."""
        exact = self._exact_fraction(t)
        if exact is None:
            exact = Fraction(0.5 * float(self.drop_fraction) * (1.0 + math.cos(math.pi * t / self.t_end)))
        return math.ceil(exact * 2**_FIXED_BITS)

    def device_drop_count(self, t: jax.Array, active: jax.Array, on_schedule: bool = True) -> jax.Array:
        """:meth:`drop_count` inside a traced program (int32, shaped like ``active``); jit- and vmap-safe.

        On the schedule's update steps (``t % delta_t == 0``, ``0 < t < t_end``)
        the count comes from a table of ``f(t)`` in 62-bit fixed point, built on
        the host, times ``active`` in exact integer arithmetic: the same as
        :meth:`drop_count` whenever ``active * q < 2**62`` for ``f(t) = p / q``
        (any drop fraction of up to 9 decimal digits, with up to 10**8 active
        weights), and where ``f(t)`` is irrational unless ``f(t) * active``
        lies within ``active / 2**62`` of an integer. The program holds no host
        callback, so the persistent compilation cache keeps it.

        With ``on_schedule=False`` (``rewire=True`` may rewire at any step) an
        off-schedule ``t`` goes to :meth:`drop_count` through a host callback.
        """
        active = jnp.asarray(active, jnp.int32)
        t = jnp.asarray(t, jnp.int32)
        steps = range(self.delta_t, self.t_end, self.delta_t)
        if len(steps) > _MAX_TABLE:  # a table this long would bloat the program; ask the host every time
            return self._host_drop_count(t, active)
        table = np.zeros((max(len(steps), 1), _LIMBS), np.uint32)
        for k, step in enumerate(steps):
            f = self._fixed_point(step)
            table[k] = [(f >> (_LIMB_BITS * i)) & 0xFFFF for i in range(_LIMBS)]
        k = jnp.clip(t // self.delta_t - 1, 0, table.shape[0] - 1)
        on_grid = self.is_update_step(t)
        counts = jnp.where(on_grid, _times_fixed_point(jnp.asarray(table)[k], active), 0)
        if on_schedule:
            return counts
        off = (t > 0) & (t < self.t_end) & ~on_grid
        return jax.lax.cond(off, lambda: self._host_drop_count(t, active), lambda: counts)

    def _host_drop_count(self, t: jax.Array, active: jax.Array) -> jax.Array:
        def host(t, active):
            # Under vmap an unbatched t arrives with size-1 batch dims; the trailing axis of
            # `active` is the layer axis, so t broadcasts over it.
            return self.drop_count(np.asarray(t)[..., None], active).astype(np.int32)

        return jax.pure_callback(
            host, jax.ShapeDtypeStruct(active.shape, jnp.int32), t, active, vmap_method="expand_dims"
        )

    def is_update_step(self, t: jax.Array) -> jax.Array:
        """True after update ``t`` (1-based) when the mask changes."""
        t = jnp.asarray(t)
        return (t > 0) & (t % self.delta_t == 0) & (t < self.t_end)

    def next_update_step(self, t: jax.Array) -> jax.Array:
        """The first mask-update step at or after ``t``, or ``t_end`` when none is left.

        ``t_end`` is never a mask-update step, so ``next_update_step(t) < t_end``
        tells whether one is left. Loops use it to run the steps in between
        with ``rewire=False`` (no branch per step).

        >>> s = DSTSchedule(100, delta_t=10, end_fraction=0.5)
        >>> [int(s.next_update_step(t)) for t in (0, 10, 11, 45)]
        [10, 10, 20, 50]
        """
        t = jnp.asarray(t)
        nxt = jnp.maximum(-(-t // self.delta_t), 1) * self.delta_t
        return jnp.where(nxt < self.t_end, nxt, self.t_end).astype(t.dtype)


@dataclasses.dataclass(frozen=True)
class GMPSchedule:
    """When and how far gradual magnitude pruning (Zhu & Gupta 2017) prunes.

    After the ``t``-th update (``t = 1, 2, ...``) the target sparsity is
    ``s(t) = s_f * (1 - (1 - (t - t_start) / (t_last - t_start)) ** 3)`` for
    ``t_start <= t <= t_last`` (0 before, ``s_f`` after): dense at the start,
    pruning fast early and slowly near the end. The masks change on the update
    steps ``t_start, t_start + delta_t, ...`` below ``t_last``, and at
    ``t_last`` itself, so the run reaches ``s_f`` exactly there.

    Attributes:
      total_steps: optimizer steps in the whole run.
      sparsity: the final sparsity ``s_f``, in ``[0, 1)``.
      start_fraction: pruning starts at ``t_start = floor(start_fraction * total_steps)`` (at least 1).
      end_fraction: and ends at ``t_last = floor(end_fraction * total_steps)`` (at least ``t_start``).
      delta_t: steps between mask updates.
    """

    total_steps: int
    sparsity: float
    start_fraction: float = 0.2
    end_fraction: float = 0.8
    delta_t: int = 1000

    def __post_init__(self):
        check_int("total_steps", self.total_steps, minimum=1)
        check_int("delta_t", self.delta_t, minimum=1)
        check_number("sparsity", self.sparsity, lo=0.0, hi=1.0, hi_open=True)
        check_number("start_fraction", self.start_fraction, lo=0.0, hi=1.0)
        check_number("end_fraction", self.end_fraction, lo=float(self.start_fraction), hi=1.0)

    @property
    def t_start(self) -> int:
        """First mask-update step."""
        return max(int(math.floor(self.start_fraction * self.total_steps + 1e-9)), 1)

    @property
    def t_last(self) -> int:
        """Last mask-update step, where the sparsity reaches its target."""
        return max(int(math.floor(self.end_fraction * self.total_steps + 1e-9)), self.t_start)

    @property
    def t_end(self) -> int:
        """One past the last mask-update step (as :attr:`DSTSchedule.t_end`, an exclusive end)."""
        return self.t_last + 1

    def update_steps(self) -> list[int]:
        """Every mask-update step, in order."""
        return [*range(self.t_start, self.t_last, self.delta_t), self.t_last]

    def sparsity_at(self, t: int) -> float:
        """The target sparsity after update ``t`` (host float64)."""
        if t < self.t_start:
            return 0.0
        if t >= self.t_last or self.t_last == self.t_start:
            return float(self.sparsity)
        x = (t - self.t_start) / (self.t_last - self.t_start)
        return float(self.sparsity) * (1.0 - (1.0 - x) ** 3)

    def is_update_step(self, t: jax.Array) -> jax.Array:
        """True after update ``t`` (1-based) when the masks change."""
        t = jnp.asarray(t)
        on_grid = (t >= self.t_start) & (t < self.t_last) & ((t - self.t_start) % self.delta_t == 0)
        return on_grid | (t == self.t_last)

    def next_update_step(self, t: jax.Array) -> jax.Array:
        """The first mask-update step at or after ``t``, or ``t_end`` when none is left."""
        t = jnp.asarray(t)
        k = jnp.maximum(-(-(t - self.t_start) // self.delta_t), 0)
        nxt = self.t_start + k * self.delta_t
        nxt = jnp.where(nxt < self.t_last, nxt, self.t_last)
        return jnp.where(t <= self.t_last, nxt, self.t_end).astype(t.dtype)

    def index(self, t: jax.Array) -> jax.Array:
        """Position of update step ``t`` in :meth:`update_steps` (traced; meaningful on update steps)."""
        t = jnp.asarray(t)
        last = len(self.update_steps()) - 1
        return jnp.where(t == self.t_last, last, jnp.clip((t - self.t_start) // self.delta_t, 0, last))


_LIMB_BITS, _LIMBS, _FIXED_BITS = 16, 4, 62  # f(t) <= 1 in fixed point: 62 fraction bits in four 16-bit limbs
_MAX_TABLE = 1 << 16  # update steps beyond which device_drop_count asks the host instead of holding a table


def _times_fixed_point(limbs: jax.Array, active: jax.Array) -> jax.Array:
    """``floor(F * active / 2**62)`` exactly, ``F`` given as four 16-bit limbs (uint32), ``active`` int32.

    Schoolbook multiplication in base 2**16 on uint32: every partial product
    fits 32 bits and every digit sum stays below 2**19, so nothing overflows
    (x64 is off by default in JAX, so there is no 64-bit integer to use).
    """
    a = jnp.asarray(active).astype(jnp.uint32)
    a_limbs = (a & 0xFFFF, a >> 16)
    digits = [jnp.zeros_like(a) for _ in range(_LIMBS + 2)]
    for i in range(_LIMBS):
        for j, aj in enumerate(a_limbs):
            p = limbs[..., i] * aj
            digits[i + j] = digits[i + j] + (p & 0xFFFF)
            digits[i + j + 1] = digits[i + j + 1] + (p >> 16)
    carry = jnp.zeros_like(a)
    for d in range(len(digits)):
        total = digits[d] + carry
        digits[d], carry = total & 0xFFFF, total >> 16
    # Bits 62 and up: the top 2 bits of digit 3, then digits 4 and 5.
    return ((digits[3] >> 14) + (digits[4] << 2) + (digits[5] << 18)).astype(jnp.int32)


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


def _rewire_masks(
    inner, regrow, schedule, max_active, masks, inner_state, params, inner_updates, grads, key, t, on_schedule, targets
):
    """One SET/RigL mask update of every layer after this step's inner update; moments of changed entries zeroed."""
    del targets
    m_leaves, treedef = jax.tree.flatten(masks, is_leaf=is_none)
    w_leaves = jax.tree.leaves(optax.apply_updates(params, inner_updates))
    g_leaves = jax.tree.leaves(grads)
    if all(m is None for m in m_leaves):
        return masks, inner_state
    bounds = _drop_bounds(masks, max_active, schedule.drop_fraction)
    actives = jnp.stack([jnp.sum(m, dtype=jnp.int32) for m in m_leaves if m is not None])
    n_drop = iter(schedule.device_drop_count(t, actives, on_schedule))
    new, kept = [], []
    for i, (m, w, g) in enumerate(zip(m_leaves, w_leaves, g_leaves)):
        if m is None:
            new.append(None)
            kept.append(True)
            continue
        if regrow == "random":
            scores = jax.random.uniform(jax.random.fold_in(key, i), m.shape)
        else:
            scores = jnp.abs(g)
        nm, _ = drop_and_grow(m, w, scores, next(n_drop), bounds[i])
        new.append(nm)
        kept.append(nm & m)
    new_masks = jax.tree.unflatten(treedef, new)
    # Zero the moments of every entry that is not kept: grown ones start fresh, and dropped
    # ones must not leak stale moments into anything the inner optimizer computes.
    inner_state = optax.tree.map_params(
        inner.init, lambda s, k: jnp.where(k, s, jnp.zeros_like(s)), inner_state, jax.tree.unflatten(treedef, kept)
    )
    return new_masks, inner_state


def sparse_transform(
    inner: optax.GradientTransformation,
    *,
    regrow: str = "none",
    schedule: DSTSchedule | None = None,
    max_active: Counts | None = None,
    filter_fn: FilterFn = default_filter,
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
        ``"gradient"`` (RigL).
      schedule: the rewiring schedule; required unless ``regrow="none"``.
      max_active: optional counts pytree (ints, ``None`` for dense leaves)
        bounding each layer's active count; it sizes the static ``top_k`` of
        the rewiring (default: the layer size, which is slower). Per-layer
        counts never change, so ``active_counts(masks)`` is the tight bound.
      filter_fn: ``filter_fn(path, leaf) -> bool`` picks the leaves ``init``
        gives masks (as in :func:`sparse_jax.dense_masks`).

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
      - ``True``: rewire on this update, whatever ``delta_t`` says, dropping
        ``schedule.drop_count(t, active)`` per layer (0 from ``t_end`` on).
    """
    check_choice("regrow", regrow, REGROW)
    if regrow != "none" and not isinstance(schedule, DSTSchedule):
        raise ValueError(f"regrow={regrow!r} needs a DSTSchedule (schedule=...), got {schedule!r}.")
    inner = optax.with_extra_args_support(inner)
    mask_update = None
    if regrow != "none" and not range(schedule.delta_t, schedule.t_end, schedule.delta_t):
        warnings.warn(
            f"{schedule!r} has no mask update (t_end={schedule.t_end} <= delta_t={schedule.delta_t}), so "
            f"{'SET' if regrow == 'random' else 'RigL'} trains as static sparse training; lower delta_t or "
            "train for more steps.",
            stacklevel=3,
        )
    if regrow != "none":
        mask_update = functools.partial(_rewire_masks, inner, regrow, schedule, max_active)
    return _masked_transform(
        inner, filter_fn, schedule, mask_update, needs_key=regrow == "random", max_active=max_active
    )


def _masked_transform(
    inner: optax.GradientTransformationExtraArgs,
    filter_fn: FilterFn,
    schedule: Any,
    mask_update: Callable | None,
    *,
    needs_key: bool,
    max_active: Counts | None = None,
    init_targets: Callable[[Masks], np.ndarray] | None = None,
) -> optax.GradientTransformationExtraArgs:
    """The shared skeleton: masked gradients, the inner update, the schedule's mask updates, exact zeros.

    ``mask_update(masks, inner_state, params, inner_updates, grads, key, t, on_schedule, targets)``
    returns the new masks and the inner state (moments of changed entries
    zeroed); ``None`` means fixed masks. ``schedule`` has ``is_update_step``.
    ``init_targets(masks)`` gives the state's ``targets`` (GMP's table).
    """

    def init_fn(params):
        masks = dense_masks(params, filter_fn)
        _check_max_active(max_active, masks)
        targets = None if init_targets is None else jnp.asarray(init_targets(masks))
        return SparseState(inner.init(params), masks, jnp.zeros([], jnp.int32), None, targets)

    def update_fn(updates, state, params=None, *, step=None, rewire=None, **extra_args):
        if params is None:
            raise ValueError("sparse_transform.update needs params (call update(grads, state, params)).")
        if not (rewire is None or isinstance(rewire, bool)):
            fail(
                "rewire",
                rewire,
                "None (the schedule decides on device), True or False (Python bools, fixed when tracing)",
            )
        if rewire and mask_update is None:
            raise ValueError(
                "rewire=True needs a SET, RigL or GMP transform (one whose masks change), not a static one."
            )
        if needs_key and rewire is not False and state.key is None:
            raise ValueError(
                "SET's random regrowth needs a PRNG key in the state: state = sparse_jax.with_masks(state, key=key)."
            )
        masks = state.masks
        masked_grads = jax.tree.map(
            lambda m, g: g if m is None else jnp.where(m, g, jnp.zeros_like(g)), masks, updates, is_leaf=is_none
        )
        inner_updates, inner_state = inner.update(masked_grads, state.inner_state, params, **extra_args)
        count = optax.safe_increment(state.count)
        new_masks = masks
        if mask_update is not None and rewire is not False:
            t = count if step is None else jnp.asarray(step, jnp.int32) + 1
            # Draws depend on (key, t) only, so they do not depend on which updates passed rewire=False.
            sub = None if state.key is None else jax.random.fold_in(state.key, t)
            # rewire=None rewires only on update steps, where the count table holds f(t); rewire=True may not.
            rewired = lambda ms, st: mask_update(
                ms, st, params, inner_updates, updates, sub, t, not rewire, state.targets
            )
            if rewire:
                new_masks, inner_state = rewired(masks, inner_state)
            else:
                new_masks, inner_state = jax.lax.cond(
                    schedule.is_update_step(t), rewired, lambda ms, st: (ms, st), masks, inner_state
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


def _gmp_prune(
    schedule, distribution, bounds, inner, masks, inner_state, params, inner_updates, grads, key, t, on_schedule, table
):
    """One GMP step: keep the largest-magnitude active weights, down to the state's count for ``t``.

    ``table`` is the state's target table (:func:`_gmp_targets`); ``t`` off
    the schedule (``rewire=True``) prunes to the count of the last update step
    before it.
    """
    del grads, key, on_schedule
    m_leaves, treedef = jax.tree.flatten(masks, is_leaf=is_none)
    idx = [i for i, m in enumerate(m_leaves) if m is not None]
    if not idx:
        return masks, inner_state
    w_leaves = jax.tree.leaves(optax.apply_updates(params, inner_updates))
    targets = table[schedule.index(t)]
    big = jnp.finfo(jnp.float32).max
    # Active weights rank by |w| (NaN first, as SET/RigL drop them); pruned ones never rank.
    scores = [
        jnp.where(
            m_leaves[i], jnp.nan_to_num(jnp.abs(w_leaves[i]).astype(jnp.float32), nan=0.0, posinf=big), jnp.inf
        ).ravel()
        for i in idx
    ]
    actives = [jnp.sum(m_leaves[i], dtype=jnp.int32) for i in idx]
    if distribution == "global":
        flat = jnp.concatenate(scores)
        n = jnp.maximum(sum(actives) - targets[0], 0)
        drops = jnp.split(_smallest(flat, n, bounds[0]), np.cumsum([s.size for s in scores])[:-1])
    else:
        drops = [_smallest(s, jnp.maximum(actives[j] - targets[j], 0), bounds[j]) for j, s in enumerate(scores)]
    new, kept = list(m_leaves), [True if m is None else None for m in m_leaves]
    for i, d in zip(idx, drops):
        new[i] = m_leaves[i] & ~d.reshape(m_leaves[i].shape)
        kept[i] = new[i]
    inner_state = optax.tree.map_params(
        inner.init, lambda s, k: jnp.where(k, s, jnp.zeros_like(s)), inner_state, jax.tree.unflatten(treedef, kept)
    )
    return jax.tree.unflatten(treedef, new), inner_state


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
    if not isinstance(schedule, GMPSchedule):
        raise ValueError(f"gmp_sparse needs a GMPSchedule (schedule=...), got {schedule!r}.")
    check_choice("distribution", distribution, ("uniform", "erk", "global"))
    for other in bound_schedules:
        if dataclasses.replace(other, sparsity=schedule.sparsity) != schedule:
            fail("bound_schedules", other, f"GMPSchedules that differ from {schedule!r} in sparsity alone")
    inner = optax.with_extra_args_support(inner)
    init_targets = functools.partial(_gmp_targets, schedule, distribution)

    def mask_update(masks, *args):
        sizes = [m.size for m in jax.tree.leaves(masks, is_leaf=is_none) if m is not None]
        tables = [_gmp_targets(s, distribution, masks) for s in (schedule, *bound_schedules)]
        return _gmp_prune(schedule, distribution, _gmp_bounds(tables, sizes, distribution), inner, masks, *args)

    return _masked_transform(inner, filter_fn, schedule, mask_update, needs_key=False, init_targets=init_targets)


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

    ``dense``, ``static``, ``uniform_revival`` and ``tar`` train with fixed
    masks (they differ by the masks put in the state); ``set`` and ``rigl``
    rewire on a :class:`DSTSchedule` (``max_active`` bounds their top-k);
    ``gmp`` prunes on a :class:`GMPSchedule` under ``distribution``
    (``bound_schedules``: see :func:`gmp_sparse`).
    """
    update = METHODS[check_choice("method", method, METHODS)].update
    if update == "fixed":
        return static_sparse(inner, filter_fn=filter_fn)
    if update == "gmp":
        return gmp_sparse(
            inner, schedule=schedule, distribution=distribution, filter_fn=filter_fn, bound_schedules=bound_schedules
        )
    regrow = {"set": "random", "rigl": "gradient"}[update]
    return sparse_transform(inner, regrow=regrow, schedule=schedule, max_active=max_active, filter_fn=filter_fn)


def _sparse_states(opt_state: Any) -> list[SparseState]:
    is_state = lambda x: isinstance(x, SparseState)
    return [s for s in jax.tree.leaves(opt_state, is_leaf=is_state) if is_state(s)]


def _one_state(opt_state: Any) -> SparseState:
    found = _sparse_states(opt_state)
    if len(found) != 1:
        raise ValueError(f"expected exactly one sparse_jax SparseState in the optimizer state, found {len(found)}.")
    return found[0]


def _is_mask_leaf(x: Any) -> bool:
    """A mask leaf: an array, ``None`` (dense) or ``optax.MaskedNode`` (a leaf ``optax.masked`` hides)."""
    return x is None or isinstance(x, optax.MaskedNode)


def _by_path(tree: Any) -> dict[str, Any]:
    """``path string -> leaf`` of a mask tree (``None`` and ``MaskedNode`` count as leaves)."""
    return {path_name(p): x for p, x in jax.tree.leaves_with_path(tree, is_leaf=_is_mask_leaf)}


def _fit_masks(old: Masks, new: Masks) -> Masks:
    """``new`` laid out in the structure of the state's masks ``old``, matched leaf by leaf on path strings.

    The path strings, not the pytree node types, decide: masks built on flax
    ``nnx.Param`` states fit a ``nnx.Optimizer``'s ``OptVariable`` state, and
    masks built on the whole params fit a transform inside ``optax.masked`` or
    ``optax.multi_transform`` (whose hidden leaves are ``MaskedNode``s there).
    """
    old_paths, new_paths = _by_path(old), _by_path(new)
    if old_paths and not set(old_paths) & set(new_paths):
        raise ValueError(
            f"the masks' paths ({next(iter(new_paths))!r}, ...) and the state's ({next(iter(old_paths))!r}, ...) "
            "do not line up; make the masks from the params the optimizer was initialised with."
        )
    for where, n in new_paths.items():
        o = old_paths.get(where, None)
        if where not in old_paths or isinstance(o, optax.MaskedNode):
            if n is not None and not isinstance(n, optax.MaskedNode):
                raise ValueError(
                    f"masks give a mask at {where!r}, which this sparse transform does not train (the masks' "
                    f"paths it trains: {[k for k, v in old_paths.items() if not _is_mask_leaf(v)]}); under "
                    "optax.masked or multi_transform, give that leaf None or route it to the sparse transform."
                )
    fitted = []
    for where, o in old_paths.items():
        if isinstance(o, optax.MaskedNode):
            fitted.append(o)
        elif where not in new_paths:
            raise ValueError(f"masks have no leaf at {where!r}, where the state's masks have one.")
        else:
            fitted.append(new_paths[where])
    return jax.tree.unflatten(jax.tree.structure(old, is_leaf=_is_mask_leaf), fitted)


def _check_new_masks(old: Masks, new: Masks) -> None:
    """``new`` must put a boolean array of the same shape wherever ``old`` has one, and ``None`` elsewhere."""
    for (path, o), n in zip(
        jax.tree.leaves_with_path(old, is_leaf=_is_mask_leaf), jax.tree.leaves(new, is_leaf=_is_mask_leaf)
    ):
        where = path_name(path)
        if isinstance(o, optax.MaskedNode):
            continue
        if (o is None) != (n is None):
            raise ValueError(
                f"mask at {where!r} is {'None' if n is None else 'an array'} where the transform's filter_fn "
                f"{'prunes' if n is None else 'keeps the leaf dense'}; build the transform with the filter_fn "
                "that made the masks."
            )
        if n is None:
            continue
        if jnp.shape(n) != jnp.shape(o):
            raise ValueError(f"mask at {where!r} has shape {jnp.shape(n)}, but the param has shape {jnp.shape(o)}.")
        if jnp.result_type(n) != jnp.bool_:
            raise ValueError(f"mask at {where!r} has dtype {jnp.result_type(n)}; masks must be boolean.")


def with_masks(opt_state: Any, masks: Masks | None = None, *, key: jax.Array | None = None) -> Any:
    """``opt_state`` with the masks and/or PRNG key of its :class:`SparseState` replaced.

    The one way to put pruned masks or a key into a sparse transform's state.
    Works through any nesting (``optax.chain``, ``named_chain``,
    ``inject_hyperparams``, ``optax.masked``, ``optax.multi_transform``, a
    flax ``nnx.Optimizer``'s ``opt_state``) and under ``jax.vmap``: to give
    vmapped seeds their own masks and regrowth draws from one transform, use
    ``jax.vmap(lambda m, k: with_masks(tx.init(params), m, key=k))(masks, keys)``.

    Args:
      opt_state: a state holding exactly one :class:`SparseState`.
      masks: new masks (``None`` keeps them), matched to the state's masks by
        path string: masks made from the whole params fit a transform that
        ``optax.masked``/``multi_transform`` gives only some leaves, as long as
        the leaves it does not see get ``None``.
      key: new PRNG key for SET's regrowth (``None`` keeps the state's).

    >>> import jax.numpy as jnp, optax
    >>> params = {"w": jnp.ones((2, 2)), "b": jnp.zeros(2)}
    >>> state = with_masks(static_sparse(optax.sgd(0.1)).init(params), {"w": jnp.eye(2, dtype=bool), "b": None})
    >>> get_masks(state)["w"].tolist()
    [[True, False], [False, True]]
    """
    old = _one_state(opt_state)
    if masks is not None:
        masks = _fit_masks(old.masks, masks)
        _check_new_masks(old.masks, masks)
    new = old._replace(masks=old.masks if masks is None else masks, key=old.key if key is None else key)
    is_state = lambda x: isinstance(x, SparseState)
    return jax.tree.map(lambda s: new if s is old else s, opt_state, is_leaf=is_state)


def keep_sparse(params: Any, opt_state: Any) -> Any:
    """``params`` with every entry that the state's masks prune set to exactly 0.

    A sparse transform keeps pruned weights at 0 only as the outermost
    transform: anything chained after it (``optax.chain(static_sparse(adam),
    optax.add_noise(...))``) changes the updates of pruned weights again. The
    rule is to put the rest of the chain inside it
    (``static_sparse(optax.chain(optax.clip_by_global_norm(1.0), optax.adam(3e-4)))``,
    where clipping also sees only active gradients). Where that is not
    possible, call this after ``optax.apply_updates`` (jaxpruner calls the
    same step ``post_gradient_update``). Masks are matched to params by path
    string, so flax ``nnx`` states work too.

    >>> import jax.numpy as jnp, optax
    >>> params = {"w": jnp.ones((2, 2))}
    >>> tx = optax.chain(static_sparse(optax.sgd(0.1)), optax.add_noise(1.0, 0.0, key=jax.random.key(0)))
    >>> state = with_masks(tx.init(params), {"w": jnp.eye(2, dtype=bool)})
    >>> updates, state = tx.update({"w": jnp.ones((2, 2))}, state, params)
    >>> new = keep_sparse(optax.apply_updates(params, updates), state)
    >>> bool((new["w"][0, 1] == 0) & (new["w"][1, 0] == 0))
    True
    """
    by_path = {k: v for k, v in _by_path(_one_state(opt_state).masks).items() if not _is_mask_leaf(v)}
    missing = set(by_path) - {path_name(p) for p, _ in jax.tree.leaves_with_path(params)}
    if missing:
        raise ValueError(
            f"params have no leaf at {sorted(missing)[0]!r}, where the state has a mask; pass the params the "
            "optimizer updates."
        )

    def one(path, p):
        m = by_path.get(path_name(path))
        return p if m is None else jnp.where(m, p, jnp.zeros_like(p))

    return jax.tree.map_with_path(one, params)


def get_masks(opt_state: Any) -> Masks:
    """The masks held by the (single) :class:`SparseState` inside ``opt_state``.

    Works on any nesting: ``optax.chain``, ``named_chain``, ``inject_hyperparams``,
    ``optax.masked`` and ``multi_transform`` (the leaves they hide from the
    transform read as ``None``, i.e. dense; a prefix mask that hides a whole
    subtree gives one ``None`` for it), and batched (vmapped) states.
    """
    masks = _one_state(opt_state).masks
    return jax.tree.map(lambda m: None if isinstance(m, optax.MaskedNode) else m, masks, is_leaf=_is_mask_leaf)
