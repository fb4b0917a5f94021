"""Layer-wise sparsity distributions: how many weights each layer keeps.

Every distribution turns a total number of active weights ``K`` into exact
per-layer integer counts that sum to ``K``:

- ``uniform``: every layer gets density ``K / N`` (``N`` = prunable size).
- ``erk`` (Erdos-Renyi-Kernel): density_l = eps * sum(shape_l) / prod(shape_l),
  eps solved so the total is ``K``; a layer that would exceed density 1 is made
  dense and eps is re-solved over the rest.
- ``global``: one threshold over all layers' scores, so the score decides each
  layer's density (ties go to the earlier leaf, then the lower flat index).

Rounding rule (uniform, erk and the revival allocations): each layer's real
share is rounded down, and the remaining units go one each to the layers with
the largest fractional parts (largest-remainder / Hamilton rounding), ties to
the earlier leaf in pytree order. A layer is never given more than its size.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sparse_jax.masks import (
    Counts,
    Masks,
    check_sparsity,
    prunable_leaves,
    target_active,
    topk_mask,
    unflatten_like,
)
from sparse_jax.validation import check_choice, check_int, fail

DISTRIBUTIONS = ("uniform", "erk", "global")


def apportion(
    weights: Sequence[float], caps: Sequence[int], total: int, fallback: Sequence[float] | None = None
) -> list[int]:
    """Split ``total`` units in proportion to ``weights``, capped per entry.

    Water-filling: an entry whose proportional share reaches its cap gets the
    cap, and what it could not take is re-split over the others in proportion
    to their weights (if all remaining weights are 0, in proportion to
    ``fallback``, or to their spare capacity without one). Shares are then rounded by largest remainder (ties to the
    lower index), so the result sums to ``min(total, sum(caps))`` exactly.

    Args:
      weights: non-negative weights, one per entry.
      caps: maximum units per entry (non-negative ints).
      total: units to split (non-negative int).
      fallback: non-negative weights used once every uncapped entry's weight is 0.

    Returns:
      A list of ints, one per entry.

    >>> apportion([1, 1, 2], [10, 10, 1], 9)
    [4, 4, 1]
    """
    w = np.asarray(weights, np.float64)
    caps_a = np.asarray(caps, np.int64)
    if w.shape != caps_a.shape or w.ndim != 1:
        raise ValueError(f"weights {w.shape} and caps {caps_a.shape} must be 1-D of equal length.")
    if (w < 0).any() or not np.isfinite(w).all():
        raise ValueError(f"weights must be finite and non-negative, got {w.tolist()}.")
    if (caps_a < 0).any():
        raise ValueError(f"caps must be non-negative, got {caps_a.tolist()}.")
    alloc = np.zeros_like(caps_a)
    remaining = int(min(int(total), int(caps_a.sum())))
    capped = caps_a == 0
    while remaining > 0:
        free = ~capped
        spare = caps_a - alloc
        ww = np.where(free, w, 0.0)
        if ww.sum() <= 0 and fallback is not None:
            ww = np.where(free, np.asarray(fallback, np.float64), 0.0)
        if ww.sum() <= 0:  # every free entry has weight 0: fill by spare capacity
            ww = np.where(free, spare, 0).astype(np.float64)
        ideal = remaining * ww / ww.sum()
        over = free & (ideal >= spare)
        if over.any():
            alloc[over] = caps_a[over]
            remaining -= int(spare[over].sum())
            capped |= over
            continue
        base = np.floor(ideal).astype(np.int64)
        extra = remaining - int(base.sum())
        # Stable sort on the negated remainder: ties go to the lower index.
        order = np.argsort(-(ideal - base), kind="stable")
        order = order[free[order]]
        base[order[:extra]] += 1
        alloc += base
        remaining = 0
    return [int(a) for a in alloc]


def _sizes_and_shapes(scores: Masks) -> tuple[list[int], list[tuple[int, ...]]]:
    leaves = [leaf for _, leaf in prunable_leaves(scores)]
    return [int(np.size(x)) for x in leaves], [tuple(jnp.shape(x)) for x in leaves]


def _check_num_active(num_active: int, sizes: list[int]) -> int:
    k, n = check_int("num_active", num_active), sum(sizes)
    if not 0 <= k <= n:
        fail("num_active", num_active, f"[0, {n}]")
    return k


def uniform(scores: Masks, num_active: int) -> Counts:
    """Per-layer counts with the same density ``num_active / N`` in every layer.

    Args:
      scores: pytree of arrays (only shapes are used), ``None`` for dense leaves.
      num_active: total active weights over all prunable leaves.

    >>> import jax.numpy as jnp
    >>> uniform({"a": jnp.zeros((10, 10)), "b": jnp.zeros((10, 30))}, 40)
    {'a': 10, 'b': 30}
    """
    sizes, _ = _sizes_and_shapes(scores)
    k = _check_num_active(num_active, sizes)
    return unflatten_like(scores, apportion(sizes, sizes, k))


def erk(scores: Masks, num_active: int) -> Counts:
    """Erdos-Renyi-Kernel counts: density proportional to sum(shape)/prod(shape).

    The ERK share of a layer is ``eps * sum(shape)``; water-filling in
    :func:`apportion` makes a layer that would exceed density 1 dense and
    re-solves eps over the rest, exactly the ERK rule.

    >>> import jax.numpy as jnp
    >>> erk({"a": jnp.zeros((23, 256)), "b": jnp.zeros((256, 256)), "c": jnp.zeros((256, 1))}, 7168)
    {'a': 2438, 'b': 4474, 'c': 256}
    """
    sizes, shapes = _sizes_and_shapes(scores)
    k = _check_num_active(num_active, sizes)
    return unflatten_like(scores, apportion([sum(s) for s in shapes], sizes, k))


def global_masks(scores: Masks, num_active: int) -> Masks:
    """Keep the ``num_active`` highest scores over all prunable leaves at once.

    Jittable (``num_active`` static). Ties go to the earlier leaf in pytree
    order, then to the lower flat index.
    """
    leaves = prunable_leaves(scores)
    sizes = [int(np.size(x)) for _, x in leaves]
    k = _check_num_active(num_active, sizes)
    flat = jnp.concatenate([jnp.ravel(x).astype(jnp.float32) for _, x in leaves])
    if k == flat.size:
        keep = jnp.ones(flat.size, bool)
    else:
        keep = jnp.zeros(flat.size, bool)
        if k > 0:
            keep = keep.at[jax.lax.top_k(flat, k)[1]].set(True)
    pieces = jnp.split(keep, np.cumsum(sizes)[:-1])
    return unflatten_like(scores, [p.reshape(jnp.shape(x)) for p, (_, x) in zip(pieces, leaves)])


def global_(scores: Masks, num_active: int) -> Counts:
    """Per-layer counts chosen by one global top-``num_active`` over all scores.

    ``topk_mask(scores, global_(scores, k))`` equals ``global_masks(scores, k)``
    because both break ties by lower index within a leaf.
    """
    return jax.tree.map(lambda m: int(np.count_nonzero(np.asarray(m))), global_masks(scores, num_active))


_COUNT_FNS = {"uniform": uniform, "erk": erk, "global": global_}


def check_distribution(name: str) -> str:
    """Return ``name`` or raise ``ValueError`` listing the known distributions."""
    return check_choice("distribution", name, DISTRIBUTIONS)


def layer_counts(distribution: str, scores: Masks, num_active: int) -> Counts:
    """Per-layer counts for a distribution given by name (``uniform``, ``erk``, ``global``)."""
    return _COUNT_FNS[check_distribution(distribution)](scores, num_active)


def masks_and_counts(distribution: str, scores: Masks, num_active: int) -> tuple[Masks, Counts | None]:
    """Masks for a named distribution, plus the per-layer counts when they are static.

    ``uniform`` and ``erk`` counts depend on shapes only, so they come back as
    Python ints and the masks can be made inside jit. ``global`` counts depend
    on the scores, so they come back as ``None``.
    """
    if check_distribution(distribution) == "global":
        return global_masks(scores, num_active), None
    counts = layer_counts(distribution, scores, num_active)
    return topk_mask(scores, counts), counts


def distribution_masks(
    distribution: str, scores: Masks, sparsity: float | None = None, *, num_active: int | None = None
) -> Masks:
    """Masks that keep the top scores of each layer under a named distribution.

    Args:
      distribution: ``"uniform"``, ``"erk"`` or ``"global"``.
      scores: pytree of float arrays, ``None`` for dense leaves.
      sparsity: target fraction of pruned prunable weights, in ``[0, 1)``.
      num_active: the exact total to keep instead of ``sparsity``.

    Returns:
      Boolean masks whose total active count is exactly the target.
    """
    check_distribution(distribution)
    if (sparsity is None) == (num_active is None):
        raise ValueError("give exactly one of sparsity or num_active.")
    if num_active is None:
        num_active = target_active(sum(_sizes_and_shapes(scores)[0]), check_sparsity(sparsity))
    return masks_and_counts(distribution, scores, num_active)[0]
