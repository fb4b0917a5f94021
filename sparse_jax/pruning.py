"""Static pruning (score x distribution), revival on top, and re-initialisation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sparse_jax import revival as _revival
from sparse_jax.distributions import distribution_masks, masks_and_counts
from sparse_jax.masks import (
    FilterFn,
    Masks,
    Params,
    check_sparsity,
    default_filter,
    dense_masks,
    is_none,
    prunable_leaves,
    target_active,
)
from sparse_jax.methods import METHODS
from sparse_jax.scores import compute_scores
from sparse_jax.validation import check_choice


def prune(
    key: jax.Array | None,
    params: Params,
    sparsity: float | None = None,
    *,
    num_active: int | None = None,
    score: str = "magnitude",
    distribution: str = "erk",
    loss_fn: Callable[[Params, Any], jax.Array] | None = None,
    batch: Any = None,
    filter_fn: FilterFn = default_filter,
    synflow_iterations: int = 100,
) -> Masks:
    """Static pruning: score every prunable weight, keep the top ones per layer.

    Args:
      key: PRNG key (used by ``score="random"``).
      params: the dense params.
      sparsity: fraction of prunable weights to remove, in ``[0, 1)``.
      num_active: exact total to keep, instead of ``sparsity``.
      score: ``"random"``, ``"magnitude"``, ``"snip"`` or ``"synflow"``.
      distribution: ``"uniform"``, ``"erk"`` or ``"global"``.
      loss_fn: ``loss_fn(params, batch) -> scalar``, for SNIP.
      batch: the batch SNIP differentiates on.
      filter_fn: selects the prunable leaves.
      synflow_iterations: SynFlow's pruning rounds (data-free, iterative).

    Returns:
      Masks with exactly the target number of active weights.

    >>> import jax, jax.numpy as jnp
    >>> p = {"w": jnp.arange(8.0).reshape(2, 4), "b": jnp.zeros(4)}
    >>> prune(None, p, 0.5, distribution="uniform")["w"].tolist()
    [[False, False, False, False], [True, True, True, True]]
    """
    if (sparsity is None) == (num_active is None):
        raise ValueError("give exactly one of sparsity or num_active.")
    if num_active is None:
        n = sum(int(np.size(x)) for _, x in prunable_leaves(dense_masks(params, filter_fn)))
        num_active = target_active(n, check_sparsity(sparsity))
    scores = compute_scores(
        score, params, key=key, loss_fn=loss_fn, batch=batch, filter_fn=filter_fn,
        num_active=num_active, distribution=distribution, synflow_iterations=synflow_iterations,
    )  # fmt: skip
    return distribution_masks(distribution, scores, num_active=num_active)


def reinit_kept(key: jax.Array, params: Params, masks: Masks, scale: float = 1.0) -> Params:
    """Re-draw kept weights with a fan-in counted from the mask.

    Each output unit ``j`` of a kernel gets weights from a truncated normal
    with variance ``scale / fan_in_j``, where ``fan_in_j`` is the number of
    active connections into ``j`` (LeCun-normal with the sparse fan-in). Pruned
    entries are 0; dense leaves are unchanged.
    """

    def leaf(i: int, m: jax.Array | None, p: jax.Array) -> jax.Array:
        if m is None:
            return p
        fan_in = jnp.sum(m.reshape(-1, m.shape[-1]), axis=0)
        # 0.8796 is the std of a standard normal truncated to [-2, 2].
        std = jnp.sqrt(scale / jnp.maximum(fan_in, 1)) / 0.87962566103423978
        w = jax.random.truncated_normal(jax.random.fold_in(key, i), -2.0, 2.0, p.shape, p.dtype) * std
        return jnp.where(m, w, jnp.zeros_like(w))

    m_leaves, treedef = jax.tree.flatten(masks, is_leaf=is_none)
    p_leaves = jax.tree.leaves(params)
    return jax.tree.unflatten(treedef, [leaf(i, m, p) for i, (m, p) in enumerate(zip(m_leaves, p_leaves))])


class SparseInit(NamedTuple):
    """Result of :func:`sparse_init`.

    Attributes:
      params: initial params with the masks applied (revived weights at their
        initial value or zero, per the revival config).
      masks: the final masks.
      base_masks: the masks before revival (equal to ``masks`` without revival).
    """

    params: Params
    masks: Masks
    base_masks: Masks


def sparse_init(
    key: jax.Array,
    params: Params,
    sparsity: float,
    *,
    method: str = "static",
    score: str = "magnitude",
    distribution: str = "erk",
    revival: _revival.RevivalConfig = _revival.RevivalConfig(),
    reinit: bool = False,
    loss_fn: Callable[[Params, Any], jax.Array] | None = None,
    batch: Any = None,
    filter_fn: FilterFn = default_filter,
    synflow_iterations: int = 100,
) -> SparseInit:
    """Initial masks for one of ``dense``, ``static``, ``uniform_revival``, ``tar``.

    Static pruning keeps ``K`` weights; the revival methods prune to ``K - B``
    first and revive ``B`` (see :mod:`sparse_jax.revival`), so all three sparse
    methods end with the same parameter count (unless ``revival.additive``).

    Jittable (and vmappable over ``key`` and ``params``) for the ``uniform`` and
    ``erk`` distributions, whose per-layer counts depend on shapes only. With
    ``global`` the revival methods need concrete arrays (call it outside jit).

    Args:
      key: PRNG key; split for the score, the revival draw and the re-init.
      params: dense initial params.
      sparsity: target sparsity of the prunable leaves, in ``[0, 1)``.
      method: a name of :data:`sparse_jax.METHODS`; ``set`` and ``rigl``
        start from the ``static`` masks.
      score, distribution, loss_fn, batch, filter_fn, synflow_iterations: as in :func:`prune`
        (SynFlow prunes iteratively towards the base count ``K - B``).
      revival: revival knobs (``rho``, ``phi``, ``additive``, ``init``).
      reinit: re-draw kept weights with the mask's fan-in (:func:`reinit_kept`).

    Returns:
      A :class:`SparseInit` with masked params, final masks and base masks.
    """
    # Long: most of it is the docstring of the one entry point for every initial mask.
    method = METHODS[check_choice("method", method, METHODS)].mask
    check_sparsity(sparsity)
    if method == "dense":
        masks = dense_masks(params, filter_fn)
        return SparseInit(params, masks, masks)
    k_score, k_revive, k_init = jax.random.split(key, 3)
    n = sum(int(np.size(x)) for _, x in prunable_leaves(dense_masks(params, filter_fn)))
    if method == "static":
        base, budget = _revival.revival_budget(n, sparsity, rho=0.0)
    else:
        base, budget = _revival.revival_budget(n, sparsity, revival.rho, revival.additive)
    scores = compute_scores(
        score, params, key=k_score, loss_fn=loss_fn, batch=batch, filter_fn=filter_fn,
        num_active=base, distribution=distribution, synflow_iterations=synflow_iterations,
    )  # fmt: skip
    base_masks, counts = masks_and_counts(distribution, scores, base)
    if method == "tar":
        masks = _revival.tar(k_revive, base_masks, budget, revival.phi, active=counts)
    elif method == "uniform_revival":
        masks = _revival.uniform_revival(k_revive, base_masks, budget, active=counts)
    else:
        masks = base_masks
    if reinit:
        params = reinit_kept(k_init, params, masks)
    return SparseInit(_revival.revived_params(params, base_masks, masks, revival.init), masks, base_masks)
