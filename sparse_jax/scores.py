"""Pruning scores: higher means more worth keeping.

Each score function returns a pytree shaped like the params, with a float
array for each prunable leaf and ``None`` for each dense leaf.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sparse_jax.distributions import layer_counts
from sparse_jax.masks import FilterFn, Params, default_filter, path_name, target_active
from sparse_jax.utils import Residual, kernel_stages
from sparse_jax.validation import check_choice, check_int

SCORES = ("random", "magnitude", "snip", "synflow")


def _prunable_map(fn: Callable[[int, jax.Array], Any], params: Params, filter_fn: FilterFn) -> Any:
    """Apply ``fn(index, leaf)`` to prunable leaves, ``None`` elsewhere."""
    leaves_with_path, treedef = jax.tree.flatten_with_path(params)
    out = [fn(i, x) if filter_fn(path_name(p), x) else None for i, (p, x) in enumerate(leaves_with_path)]
    return jax.tree.unflatten(treedef, out)


def random(key: jax.Array, params: Params, filter_fn: FilterFn = default_filter) -> Any:
    """Independent ``U[0, 1)`` scores: top-k of them is a uniformly random subset.

    Each leaf draws from ``jax.random.fold_in(key, leaf_index)``.

    >>> import jax, jax.numpy as jnp
    >>> s = random(jax.random.key(0), {"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)})
    >>> s["w"].shape, s["b"] is None
    ((2, 3), True)
    """
    return _prunable_map(lambda i, x: jax.random.uniform(jax.random.fold_in(key, i), jnp.shape(x)), params, filter_fn)


def magnitude(params: Params, filter_fn: FilterFn = default_filter) -> Any:
    """``|w|`` for each prunable leaf."""
    return _prunable_map(lambda i, x: jnp.abs(x), params, filter_fn)


def snip(
    params: Params,
    loss_fn: Callable[[Params, Any], jax.Array],
    batch: Any,
    filter_fn: FilterFn = default_filter,
) -> Any:
    """SNIP connection sensitivity ``|w * dL/dw|`` on one batch.

    Args:
      params: the (dense) params at which the loss gradient is taken.
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      batch: the data passed to ``loss_fn``.
      filter_fn: selects the prunable leaves.
    """
    grad_leaves = jax.tree.leaves(jax.grad(loss_fn)(params, batch))
    return _prunable_map(lambda i, x: jnp.abs(x * grad_leaves[i]), params, filter_fn)


def _synflow_once(leaves: list[jax.Array], masks: list[jax.Array | None], chains: list[list]) -> list:
    """``|w * dR/dw|`` with ``R = sum_chains 1^T |W_1| ... |W_L| 1`` over the masked kernels (None elsewhere);
    a :class:`~sparse_jax.utils.Residual` stage maps ``h`` to ``h + h |B_1| ... |B_k|``."""
    # Scaling a layer by a constant scales every path, so every score, by the same factor: dividing
    # each kernel by its largest magnitude keeps R finite in float32 without changing the ranking.
    absw = [
        None if m is None else jnp.abs(w) * m / jnp.maximum(jnp.max(jnp.abs(w) * m), 1e-30)
        for w, m in zip(leaves, masks)
    ]

    def through(h, kernels, chain):
        for i in chain:
            if h.shape[1] != kernels[i].shape[0]:
                raise ValueError(
                    f"synflow needs chains of 2-D kernels; a kernel of shape {kernels[i].shape} does not follow "
                    f"one with {h.shape[1]} outputs."
                )
            h = h @ kernels[i]
        return h

    def flow(kernels):
        total = 0.0
        for chain in chains:
            h = jnp.ones((1, kernels[chain[0]].shape[0]), jnp.float32)
            for stage in chain:
                # The skip of a residual stage is the identity: the flow along it adds to the branch's.
                residual = isinstance(stage, Residual)
                h = h + through(h, kernels, stage.kernels) if residual else through(h, kernels, [stage])
            total = total + jnp.sum(h)
        return total

    grads = jax.grad(flow)(absw)
    return [None if a is None else a * g for a, g in zip(absw, grads)]


def synflow(
    params: Params,
    *,
    num_active: int | None = None,
    distribution: str = "global",
    iterations: int = 100,
    filter_fn: FilterFn = default_filter,
) -> Any:
    """Iterative SynFlow scores (Tanaka et al. 2020): data-free synaptic flow, ``|w * dR/dw|``.

    ``R = sum 1^T |W_1| |W_2| ... |W_L| 1`` over each chain of 2-D kernels (an
    MLP; several MLPs such as twin critics each form one), where a residual
    block (:func:`~sparse_jax.utils.kernel_stages`) multiplies by
    ``I + |B_1| ... |B_k|``: the flow along its skip counts. Biases and
    LayerNorm are not in the flow (it is the kernels' linearised network), so
    LayerNorm counts as the identity. With
    ``num_active``, pruning is iterative: iteration ``k`` of ``iterations - 1``
    keeps the density ``d^(k / iterations)`` (``d = num_active / N``) under
    ``distribution``, rescoring the surviving weights each time; the scores of
    the last iteration come back, with every weight pruned on the way at -1, so
    that keeping the top ``num_active`` under ``distribution`` gives the
    iterative result. Without ``num_active`` it is the one-shot score.
    Iterating is what avoids layer collapse: a layer whose weights are all
    small keeps connections, because cutting it would cut all the flow.
    """
    leaves, treedef = jax.tree.flatten(params)
    chains = kernel_stages(params, filter_fn)
    prunable = [i for chain in chains for s in chain for i in (s.kernels if isinstance(s, Residual) else [s])]
    full = [jnp.ones(jnp.shape(x), bool) if i in prunable else None for i, x in enumerate(leaves)]
    kept = [full[i] for i in prunable]
    if num_active is not None and iterations > 1:
        kept = _synflow_rounds(leaves, full, prunable, chains, num_active, distribution, iterations)
    masks = list(full)
    for i, m in zip(prunable, kept):
        masks[i] = m
    scores = _synflow_once(leaves, masks, chains)
    return jax.tree.unflatten(treedef, [None if m is None else jnp.where(m, s, -1.0) for m, s in zip(masks, scores)])


def _synflow_rounds(leaves, full, prunable, chains, num_active, distribution, iterations) -> list[jax.Array]:
    """The masks after rounds ``1 .. iterations - 1`` of iterative SynFlow (one compiled loop body).

    Round ``k`` keeps ``target_active(N, 1 - d^(k / iterations))`` weights by
    a score threshold (per layer for uniform/ERK, over all layers for global),
    so a tie at the threshold may keep a few more; the caller's final top-k is exact.
    """
    check_int("iterations", iterations, minimum=1)
    check_choice("distribution", distribution, ("uniform", "erk", "global"))
    sizes = [int(np.size(leaves[i])) for i in prunable]
    n = sum(sizes)
    density = check_int("num_active", num_active, minimum=0) / max(n, 1)
    shapes = [np.zeros(np.shape(leaves[i]), np.float32) for i in prunable]
    table = []
    for k in range(1, iterations):
        keep = target_active(n, 1.0 - density ** (k / iterations))
        table.append([keep] if distribution == "global" else layer_counts(distribution, shapes, keep))
    table = jnp.asarray(np.asarray(table, np.int32))

    def kth_largest(x, k):
        top = jnp.sort(x)[::-1]
        return jnp.where(k > 0, top[jnp.maximum(k - 1, 0)], jnp.inf)

    def round_(k, kept):
        masks = list(full)
        for i, m in zip(prunable, kept):
            masks[i] = m
        scores = _synflow_once(leaves, masks, chains)
        ranked = [jnp.where(masks[i], scores[i], -1.0).ravel() for i in prunable]
        if distribution == "global":
            thr = kth_largest(jnp.concatenate(ranked), table[k, 0])
            return [(r >= thr).reshape(m.shape) & m for r, m in zip(ranked, kept)]
        return [(r >= kth_largest(r, table[k, j])).reshape(m.shape) & m for j, (r, m) in enumerate(zip(ranked, kept))]

    return jax.lax.fori_loop(0, iterations - 1, round_, [full[i] for i in prunable])


def check_score(name: str) -> str:
    """Return ``name`` or raise ``ValueError`` listing the known scores."""
    return check_choice("score", name, SCORES)


def compute_scores(
    name: str,
    params: Params,
    *,
    key: jax.Array | None = None,
    loss_fn: Callable[[Params, Any], jax.Array] | None = None,
    batch: Any = None,
    filter_fn: FilterFn = default_filter,
    num_active: int | None = None,
    distribution: str = "global",
    synflow_iterations: int = 100,
) -> Any:
    """Scores by name: ``random`` needs ``key``; ``snip`` needs ``loss_fn`` and ``batch``.

    ``synflow`` is data-free; with ``num_active`` it prunes iteratively
    (``synflow_iterations`` rounds) towards that count under ``distribution``
    (see :func:`synflow`).
    """
    check_score(name)
    if name == "synflow":
        return synflow(
            params, num_active=num_active, distribution=distribution, iterations=synflow_iterations, filter_fn=filter_fn
        )
    if name == "random":
        if key is None:
            raise ValueError("score 'random' needs a PRNG key (key=...).")
        return random(key, params, filter_fn)
    if name == "magnitude":
        return magnitude(params, filter_fn)
    if loss_fn is None or batch is None:
        raise ValueError("score 'snip' needs loss_fn=... and batch=....")
    return snip(params, loss_fn, batch, filter_fn)
