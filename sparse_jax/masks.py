"""Masks: pytrees of boolean arrays shaped like the params.

A mask has the params' pytree structure. Each prunable leaf holds a boolean
array of the leaf's shape (``True`` = active connection); each dense leaf
(biases, norms) holds ``None``. Which leaves are prunable is decided by a
``filter_fn(path, leaf) -> bool``, where ``path`` is the leaf's path as a
string (``"Dense_0/kernel"``, see :func:`path_name`); the default prunes every
array with ``ndim >= 2`` (dense and convolution kernels).

Counts are Python ints: a "counts" pytree has an ``int`` where the mask has an
array and ``None`` where it has ``None``. Counts are static, so a function that
takes counts can be jitted with them closed over.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sparse_jax.utils import default_filter, is_none, path_name, prunable_leaves, unflatten_like  # noqa: F401
from sparse_jax.validation import check_int, check_number, fail

Params = Any
Masks = Any
Counts = Any
FilterFn = Callable[[str, Any], bool]


def dense_masks(params: Params, filter_fn: FilterFn = default_filter) -> Masks:
    """All-``True`` masks for the prunable leaves of ``params``.

    Args:
      params: a pytree of arrays.
      filter_fn: ``filter_fn(path, leaf) -> bool`` selects the prunable leaves;
        ``path`` is a string such as ``"Dense_0/kernel"``.

    Returns:
      A mask pytree: ``jnp.ones(leaf.shape, bool)`` for prunable leaves and
      ``None`` for the others.

    >>> import jax.numpy as jnp
    >>> m = dense_masks({"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)})
    >>> m["b"] is None, m["w"].shape, bool(m["w"].all())
    (True, (2, 3), True)
    """
    return jax.tree.map_with_path(
        lambda p, x: jnp.ones(jnp.shape(x), bool) if filter_fn(path_name(p), x) else None, params
    )


def check_masks(params: Params, masks: Masks) -> None:
    """Raise ``ValueError`` unless ``masks`` fits ``params``.

    The masks must have the params' pytree structure, with a boolean array of
    the leaf's shape or ``None`` in every position.
    """
    m_def = jax.tree.structure(masks, is_leaf=is_none)
    p_def = jax.tree.structure(params)
    if m_def != p_def:
        raise ValueError(
            f"masks structure {m_def} does not match params structure {p_def}; "
            "a mask needs a boolean array or None for every params leaf."
        )
    for (path, m), p in zip(jax.tree.leaves_with_path(masks, is_leaf=is_none), jax.tree.leaves(params)):
        if m is None:
            continue
        if jnp.shape(m) != jnp.shape(p):
            raise ValueError(
                f"mask at {path_name(path)!r} has shape {jnp.shape(m)}, but the "
                f"param has shape {jnp.shape(p)}; shapes must be equal."
            )
        if jnp.result_type(m) != jnp.bool_:
            raise ValueError(f"mask at {path_name(path)!r} has dtype {jnp.result_type(m)}; masks must be boolean.")


def apply_mask(params: Params, masks: Masks) -> Params:
    """Zero the inactive entries of ``params``; dense leaves pass through.

    >>> import jax.numpy as jnp
    >>> p = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
    >>> m = {"w": jnp.array([[True, False], [False, True]]), "b": None}
    >>> apply_mask(p, m)["w"].tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    check_masks(params, masks)
    return jax.tree.map(
        lambda m, p: p if m is None else jnp.where(m, p, jnp.zeros_like(p)),
        masks,
        params,
        is_leaf=is_none,
    )


def _check_boolean(masks: Masks, what: str) -> None:
    """Refuse a tree that is not masks (e.g. params passed by mistake), naming the first bad leaf."""
    for path, m in jax.tree.leaves_with_path(masks):
        if jnp.result_type(m) != jnp.bool_:
            raise ValueError(
                f"{what} expects masks (boolean arrays or None), but the leaf at {path_name(path)!r} has dtype "
                f"{jnp.result_type(m)}; pass masks such as sparse_jax.get_masks(opt_state), not params."
            )


def active_counts(masks: Masks) -> Counts:
    """Number of active entries per prunable leaf, as Python ints (host sync).

    >>> import jax.numpy as jnp
    >>> active_counts({"w": jnp.array([[True, False], [True, True]]), "b": None})
    {'b': None, 'w': 3}
    """
    _check_boolean(masks, "active_counts")
    return jax.tree.map(lambda m: int(np.count_nonzero(np.asarray(m))), masks)


def density_summary(masks: Masks) -> dict[str, dict[str, float]]:
    """Per-layer and total active count, size and density.

    Returns:
      ``{name: {"active", "size", "density"}}`` for each prunable leaf plus a
      ``"total"`` entry over all prunable leaves.

    >>> import jax.numpy as jnp
    >>> s = density_summary({"w": jnp.array([[True, False], [False, False]])})
    >>> s["w"]["active"], s["total"]["density"]
    (1, 0.25)
    """
    _check_boolean(masks, "density_summary")
    out: dict[str, dict[str, float]] = {}
    total_active = total_size = 0
    for path, m in prunable_leaves(masks):
        a, n = int(np.count_nonzero(np.asarray(m))), int(np.size(m))
        out[path_name(path)] = {"active": a, "size": n, "density": a / n if n else 1.0}
        total_active += a
        total_size += n
    out["total"] = {
        "active": total_active,
        "size": total_size,
        "density": total_active / total_size if total_size else 1.0,
    }
    return out


def check_sparsity(sparsity: float) -> float:
    """Return ``sparsity`` as a float, or raise if it is outside ``[0, 1)``."""
    return check_number("sparsity", sparsity, lo=0.0, hi=1.0, hi_open=True)


def target_active(size: int, sparsity: float) -> int:
    """Active entries kept at ``sparsity`` out of ``size``: round-half-up.

    ``K = floor((1 - sparsity) * size + 0.5)``. Rounding half up (rather than
    truncating) makes ``0.9`` of ``71680`` give exactly ``7168`` despite the
    float error in ``1 - 0.9``.

    >>> target_active(71680, 0.9), target_active(10, 0.25)
    (7168, 8)
    """
    s = check_sparsity(sparsity)
    return int(math.floor((1.0 - s) * size + 0.5))


def matching_width(count: Callable[[int], int], target: int, max_width: int) -> int:
    """The width in ``1 .. max_width`` whose parameter count ``count(width)`` is nearest ``target``.

    The "small dense" baseline of sparse training (Graesser et al. 2022)
    trains a dense network as large as a sparse network's active weights;
    this picks its width. ``count`` must not decrease with the width;
    bisection calls it about ``2 log2(max_width)`` times. Ties go to the
    narrower width.

    >>> matching_width(lambda w: w * w + 2 * w, 100, 64)  # 9 * 9 + 18 = 99 is nearest 100
    9
    >>> matching_width(lambda w: 10 * w, 5, 64), matching_width(lambda w: 10 * w, 10_000, 64)
    (1, 64)
    """
    check_int("max_width", max_width, minimum=1)
    lo, hi = 1, max_width
    while lo < hi:  # the narrowest width whose count reaches the target (max_width if none does)
        mid = (lo + hi) // 2
        if count(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    if lo > 1 and target - count(lo - 1) <= count(lo) - target:
        return lo - 1
    return lo


def _topk_leaf(scores: jax.Array, k: Any) -> jax.Array:
    size = int(np.size(scores))
    k = check_int("count", k)
    if not 0 <= k <= size:
        fail("count", k, f"[0, {size}] for a leaf of shape {jnp.shape(scores)}")
    if k == size:
        return jnp.ones(jnp.shape(scores), bool)
    if k == 0:
        return jnp.zeros(jnp.shape(scores), bool)
    _, idx = jax.lax.top_k(jnp.ravel(scores), k)
    return jnp.zeros(size, bool).at[idx].set(True).reshape(jnp.shape(scores))


def topk_mask(scores: Any, counts: Counts) -> Masks:
    """Keep exactly ``counts[leaf]`` highest-scoring entries of each leaf.

    Ties are broken deterministically in favour of the lower flat (row-major)
    index, as ``jax.lax.top_k`` does. Uses ``lax.top_k`` rather than a full
    sort (several times faster on CPU for kernel-sized leaves).

    Args:
      scores: pytree of float arrays, ``None`` for dense leaves.
      counts: pytree of Python ints with the same structure as ``scores``.

    Returns:
      Boolean masks with exactly ``counts[leaf]`` ``True`` entries per leaf.

    >>> import jax.numpy as jnp
    >>> topk_mask({"w": jnp.array([[0.5, 2.0], [2.0, 1.0]])}, {"w": 2})["w"].tolist()
    [[False, True], [True, False]]
    """
    return jax.tree.map(_topk_leaf, scores, counts)
