"""Topology diagnostics of masks: what pruning and revival did to connectivity.

A kernel of shape ``(..., n_out)`` is read as a bipartite graph from
``n_in = prod(shape[:-1])`` input units to ``n_out`` output units.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from sparse_jax.masks import Masks, path_name, prunable_leaves
from sparse_jax.revival import topology_proxy
from sparse_jax.utils import Residual, kernel_stages


class LayerTopology(NamedTuple):
    """Connectivity of one prunable layer.

    Attributes:
      name: the leaf's path, e.g. ``"Dense_0/kernel"``.
      shape: the kernel shape.
      size: number of entries.
      active: active connections.
      density: ``active / size``.
      proxy: TAR's connectivity target ``E``.
      need: TAR's need ``g = max(0, E - active)``.
      zero_fan_in: output units with no active incoming connection.
      zero_fan_out: input units with no active outgoing connection.
    """

    name: str
    shape: tuple[int, ...]
    size: int
    active: int
    density: float
    proxy: float
    need: float
    zero_fan_in: int
    zero_fan_out: int


def layer_topology(masks: Masks) -> list[LayerTopology]:
    """Per-layer diagnostics for every prunable leaf, in pytree order (host side).

    >>> import jax.numpy as jnp
    >>> t = layer_topology({"w": jnp.array([[True, False], [False, False]])})[0]
    >>> t.active, t.zero_fan_in, t.zero_fan_out
    (1, 1, 1)
    """
    out = []
    for path, m in prunable_leaves(masks):
        m2 = np.asarray(m, bool).reshape(-1, np.shape(m)[-1])
        active = int(m2.sum())
        proxy = topology_proxy(np.shape(m))
        out.append(
            LayerTopology(
                name=path_name(path),
                shape=tuple(np.shape(m)),
                size=m2.size,
                active=active,
                density=active / m2.size,
                proxy=proxy,
                need=max(0.0, proxy - active),
                zero_fan_in=int((~m2.any(axis=0)).sum()),
                zero_fan_out=int((~m2.any(axis=1)).sum()),
            )
        )
    return out


class Reachability(NamedTuple):
    """Input-to-output connectivity of a chain of kernels.

    Attributes:
      pair_fraction: fraction of (input, output) unit pairs joined by a path.
      inputs_reaching_output: input units with a path to at least one output.
      outputs_reached: output units reached from at least one input.
      n_in: input units of the first kernel.
      n_out: output units of the last kernel.
    """

    pair_fraction: float
    inputs_reaching_output: int
    outputs_reached: int
    n_in: int
    n_out: int


def reachability(kernels: Masks | Sequence) -> Reachability:
    """Which network inputs still reach which outputs through active paths.

    Args:
      kernels: 2-D masks in forward order (a list), where a
        :class:`~sparse_jax.utils.Residual` of masks is a residual branch
        (``h -> h + branch(h)``: its skip is an active path, so a unit cut
        off from the branch's kernels still passes signal along it); or a mask
        pytree whose prunable leaves form one chain of
        :func:`~sparse_jax.utils.kernel_stages` (an MLP, or a SimBa network
        with its ``ResidualBlock`` modules). Consecutive kernels must chain:
        ``shape[1]`` of one equals ``shape[0]`` of the next, and a branch maps
        its stream's width back to it.

    Returns:
      A :class:`Reachability`.

    >>> import jax.numpy as jnp
    >>> r = reachability([jnp.array([[True], [False]]), jnp.array([[True, False]])])
    >>> r.pair_fraction, r.inputs_reaching_output, r.outputs_reached
    (0.25, 1, 1)
    >>> cut = Residual([jnp.zeros((2, 3), bool), jnp.zeros((3, 2), bool)])  # a branch with no active weight
    >>> reachability([jnp.eye(2, dtype=bool), cut, jnp.ones((2, 1), bool)]).pair_fraction  # the skip carries it
    1.0
    """
    stages = _stages(kernels)
    if not stages:
        raise ValueError("reachability needs at least one kernel mask.")
    flat = [m for s in stages for m in (s.kernels if isinstance(s, Residual) else [s])]
    for i, m in enumerate(flat):
        if m.ndim != 2:
            raise ValueError(f"kernel {i} has shape {m.shape}; reachability needs 2-D kernels.")
    # Boolean matrix products, as float matmuls then > 0, keep the path matrix small (n_in x width).
    reach, width = None, None
    for s in stages:
        if isinstance(s, Residual):
            if reach is None:
                raise ValueError("a residual branch needs a kernel before it (its stream's input).")
            branch = reach
            for k, m in enumerate(s.kernels):
                branch = _step(branch, m, f"kernel {k} of a residual branch")
            if branch.shape != reach.shape:
                raise ValueError(f"a residual branch maps {width} units to {branch.shape[1]}; it must map them back.")
            reach = np.maximum(reach, branch)
        else:
            reach = s.astype(np.float32) if reach is None else _step(reach, s, f"kernel of shape {s.shape}")
        width = reach.shape[1]
    r = reach > 0
    return Reachability(
        pair_fraction=float(r.mean()),
        inputs_reaching_output=int(r.any(axis=1).sum()),
        outputs_reached=int(r.any(axis=0).sum()),
        n_in=r.shape[0],
        n_out=r.shape[1],
    )


def _stages(kernels: Masks | Sequence) -> list:
    """:func:`reachability`'s argument as a list of boolean masks and :class:`Residual` stages."""
    if isinstance(kernels, (list, tuple)):
        return [Residual([np.asarray(k, bool) for k in s.kernels]) if isinstance(s, Residual)
                else np.asarray(s, bool) for s in kernels]  # fmt: skip
    leaves = [np.asarray(m, bool) for _, m in prunable_leaves(kernels)]
    chains = kernel_stages(kernels)
    if len(chains) > 1:
        raise ValueError(f"the masks hold {len(chains)} chains of kernels; reachability takes one (pass its own).")
    pick = lambda s: Residual([leaves[i] for i in s.kernels]) if isinstance(s, Residual) else leaves[s]
    return [pick(s) for s in (chains[0] if chains else [])]


def _step(reach: np.ndarray, m: np.ndarray, what: str) -> np.ndarray:
    """``reach`` through one kernel mask ``m`` (0/1 floats), its input width checked."""
    if reach.shape[1] != m.shape[0]:
        raise ValueError(f"{what} does not chain: it takes {m.shape[0]} inputs after {reach.shape[1]} units.")
    return ((reach @ m.astype(np.float32)) > 0).astype(np.float32)


def topology_table(masks: Masks, title: str | None = None) -> str:
    """A plain-text table of :func:`layer_topology` plus a totals row."""
    rows = layer_topology(masks)
    head = (
        f"{'layer':<28} {'shape':>12} {'active':>8} {'density':>8} {'E':>9} {'need g':>9} "
        f"{'0 fan-in':>9} {'0 fan-out':>9}"
    )
    lines = ([title] if title else []) + [head, "-" * len(head)]
    for t in rows:
        lines.append(
            f"{t.name:<28} {'x'.join(map(str, t.shape)):>12} {t.active:>8} {t.density:>8.4f} "
            f"{t.proxy:>9.1f} {t.need:>9.1f} {t.zero_fan_in:>9} {t.zero_fan_out:>9}"
        )
    active, size = sum(t.active for t in rows), sum(t.size for t in rows)
    lines.append(f"{'total':<28} {size:>12} {active:>8} {active / max(size, 1):>8.4f}")
    return "\n".join(lines)
