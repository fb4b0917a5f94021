"""Pytree helpers for masks and scores: ``None`` leaves mark dense params, paths read as strings."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

import jax

# A module whose name matches this (flax's automatic name of a ``ResidualBlock``) is a residual branch.
RESIDUAL = re.compile(r"ResidualBlock_(\d+)")


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


class Residual(NamedTuple):
    """A residual branch of a chain: ``h -> h + branch(h)``, ``branch`` the composition of its kernels
    (in :func:`kernel_stages`, leaf indices; in :func:`sparse_jax.reachability`, 2-D masks)."""

    kernels: list


def kernel_stages(params: Any, filter_fn: Callable[[str, Any], bool] = default_filter) -> list[list]:
    """The chains of :func:`kernel_chains`, with residual blocks as :class:`Residual` stages.

    The kernels of a module named ``ResidualBlock_<j>`` (a flax ``ResidualBlock``,
    as in SimBa) form a branch added to its parent's chain: the parent's first
    kernel (an embedding) runs, then its blocks in order, each ``h + branch(h)``,
    then the parent's remaining kernels. A network without such modules gives
    :func:`kernel_chains`'s chains, every stage a leaf index.

    >>> import jax.numpy as jnp
    >>> d = lambda n, m: {"kernel": jnp.ones((n, m))}
    >>> p = {"Dense_0": d(3, 4), "Dense_1": d(4, 1), "ResidualBlock_0": {"Dense_0": d(4, 8), "Dense_1": d(8, 4)}}
    >>> kernel_stages(p)  # leaves: Dense_0, Dense_1, the block's Dense_0, Dense_1
    [[0, Residual(kernels=[2, 3]), 1]]
    """
    names = [path_name(path) for path, _ in jax.tree.leaves_with_path(params)]
    chains = {}
    for chain in kernel_chains(params, filter_fn):
        parts = names[chain[0]].split("/")
        chains["/".join(parts[:-2])] = chain
    branches: dict[str, list[tuple[int, list[int]]]] = {}
    for parent in list(chains):
        outer, _, last = parent.rpartition("/")
        block = RESIDUAL.fullmatch(last)
        if block and outer in chains:
            branches.setdefault(outer, []).append((int(block.group(1)), chains.pop(parent)))
    stages = []
    for parent, chain in chains.items():
        blocks = [Residual(list(b)) for _, b in sorted(branches.get(parent, []))]
        stages.append([chain[0], *blocks, *chain[1:]] if blocks else list(chain))
    return stages
