"""Pytree helpers for masks and scores: ``None`` leaves mark dense params, paths read as strings."""

from __future__ import annotations

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
