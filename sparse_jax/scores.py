"""Pruning scores: higher means more worth keeping.

Each score function returns a pytree shaped like the params, with a float
array for each prunable leaf and ``None`` for each dense leaf.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from sparse_jax.masks import FilterFn, Params, default_filter, path_name
from sparse_jax.validation import check_choice

SCORES = ("random", "magnitude", "snip")


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
) -> Any:
    """Scores by name: ``random`` needs ``key``; ``snip`` needs ``loss_fn`` and ``batch``."""
    check_score(name)
    if name == "random":
        if key is None:
            raise ValueError("score 'random' needs a PRNG key (key=...).")
        return random(key, params, filter_fn)
    if name == "magnitude":
        return magnitude(params, filter_fn)
    if loss_fn is None or batch is None:
        raise ValueError("score 'snip' needs loss_fn=... and batch=....")
    return snip(params, loss_fn, batch, filter_fn)
