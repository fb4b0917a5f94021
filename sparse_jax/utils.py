"""Pytree helpers for masks and scores: ``None`` leaves mark dense params, paths read as strings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax


def is_none(x: Any) -> bool:
    """``is_leaf`` predicate that makes ``None`` (a dense leaf) a leaf."""
    return x is None


def default_filter(path: str, leaf: Any) -> bool:
    """Prune every array leaf with ``ndim >= 2`` (kernels); keep the rest dense."""
    del path
    return getattr(leaf, "ndim", 0) >= 2


def path_name(path: tuple) -> str:
    """A pytree key path as the string a ``filter_fn`` receives, e.g. ``"Dense_0/kernel"``.

    >>> import jax
    >>> path_name(jax.tree.leaves_with_path({"params": {"Dense_0": {"kernel": 0}}})[0][0])
    'params/Dense_0/kernel'
    """
    return "/".join(_key_str(k) for k in path)


def _key_str(k: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def prunable_leaves(tree: Any) -> list[tuple[tuple, Any]]:
    """``(path, leaf)`` for each non-``None`` leaf, in pytree order."""
    return jax.tree.leaves_with_path(tree)


def unflatten_like(tree: Any, values: list) -> Any:
    """Put ``values`` (one per non-``None`` leaf of ``tree``) into its structure."""
    return jax.tree.unflatten(jax.tree.structure(tree), values)


def kernel_chains(params: Any, filter_fn: Callable[[str, Any], bool] = default_filter) -> list[list[int]]:
    """Leaf indices of the prunable kernels, grouped into chains (one per MLP) in layer order.

    A chain is the kernels that share a parent path (``"q1"`` in
    ``"q1/Dense_0/kernel"``), ordered by the layer number in their name; the
    output units of each kernel but the last are the input units of the next.

    >>> import jax.numpy as jnp
    >>> p = {"q1": {f"Dense_{i}": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)} for i in (1, 0)}}
    >>> kernel_chains(p)  # leaves in pytree order: Dense_0 bias, kernel, Dense_1 bias, kernel
    [[1, 3]]
    """
    chains: dict[str, list[tuple[int, int]]] = {}
    for i, (path, x) in enumerate(jax.tree.leaves_with_path(params)):
        name = path_name(path)
        if not filter_fn(name, x):
            continue
        parts = name.split("/")
        layer = parts[-2] if len(parts) >= 2 else parts[-1]
        number = int(layer.rsplit("_", 1)[-1]) if layer.rsplit("_", 1)[-1].isdigit() else 0
        chains.setdefault("/".join(parts[:-2]), []).append((number, i))
    return [[i for _, i in sorted(chain)] for chain in chains.values()]
