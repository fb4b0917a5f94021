"""EauDe (Vincent et al. 2025, "Eau De Q-Network: Adaptive Distillation of Neural Networks in Deep RL").

EauDe trains several online networks at different sparsities from one shared
target. At each target update the online network with the smallest loss since
the last one becomes the target, and every online network is replaced by a
copy of it pruned by magnitude: member ``k`` one step of ``k`` levels sparser.
The sparsity the run reaches is then chosen by the losses, not by a schedule.

This module is the network-side half, with no RL in it:

- a :class:`Ladder` of sparsity levels: level ``j`` keeps
  ``target_active(N, 1 - (1 - increment) ** j)`` of a network's ``N`` prunable
  weights, split across layers by a distribution (``uniform`` and ``erk`` per
  layer, a table built on the host once; ``global`` one total, ranked over all
  layers), so every level has exact counts and one compiled program serves
  every level;
- :func:`prune_to_level`: a network's masks pruned by ``|w|`` to a level's
  counts (nothing regrows), its params masked;
- :func:`select_winner` and :func:`offspring`: the selection and the pruned
  copies.

The agent half (a vmapped ensemble of critics, the shared target, the loss
bookkeeping and the optimizer states) lives with the algorithm that uses it.

>>> import jax, jax.numpy as jnp
>>> params = {"w": jnp.arange(1.0, 11.0).reshape(2, 5)}
>>> lad = ladder(params, "uniform", increment=0.1, span=2, max_sparsity=0.5)
>>> lad.counts[:, 0].tolist()  # 10 weights: 10, 9, 8 (0.81 -> 8.1), 7, 7, 6 (0.59), 5 (0.53)
[10, 9, 8, 7, 7, 6, 5]
>>> p, m = prune_to_level(params, {"w": jnp.ones((2, 5), bool)}, lad, jnp.int32(2))
>>> m["w"].astype(int).tolist()  # the two smallest |w| pruned
[[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]
>>> int(select_winner(jnp.array([3.0, jnp.nan, 1.0, 1.0])))  # ties to the lower index; NaN never wins
2
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sparse_jax.distributions import check_distribution, layer_counts
from sparse_jax.masks import Masks, Params, apply_mask, target_active
from sparse_jax.rules import prune_to_counts
from sparse_jax.utils import is_none
from sparse_jax.validation import check_int, check_number


class Ladder(NamedTuple):
    """The sparsity levels of one network (static: built on the host, closed over by a program).

    Attributes:
      counts: ``(levels, layers)`` active counts per prunable layer for ``uniform``
        and ``erk``; ``(levels, 1)`` totals for ``global``. Level 0 is dense;
        counts never grow with the level.
      bounds: static bounds on how many weights one step of at most ``span`` levels
        prunes (one per layer, or one for ``global``): the size of its ``lax.top_k``.
      ranked_globally: ``global``: the weights of all layers are ranked together.
      increment: the fraction of the remaining weights each level prunes.
    """

    counts: np.ndarray
    bounds: tuple[int, ...]
    ranked_globally: bool
    increment: float

    @property
    def max_level(self) -> int:
        """The sparsest level."""
        return len(self.counts) - 1

    def sparsity(self, level: int) -> float:
        """The fraction of prunable weights level ``level`` prunes."""
        sizes = self.counts[0].sum()
        return 1.0 - float(self.counts[level].sum()) / float(sizes)


def ladder(masks: Any, distribution: str, increment: float, *, span: int, max_sparsity: float = 0.999) -> Ladder:
    """The :class:`Ladder` of a network whose prunable leaves have ``masks``' shapes.

    Args:
      masks: a tree of arrays (or shape structs) with ``None`` for dense leaves: the
        prunable layers.
      distribution: ``uniform``, ``erk`` or ``global``.
      increment: each level prunes this fraction of the weights the level before keeps, in ``(0, 1)``.
      span: the most levels one call of :func:`prune_to_level` moves a network (EauDe: members - 1).
      max_sparsity: the levels stop at the last one at most this sparse.
    """
    check_distribution(distribution)
    check_number("increment", increment, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    check_number("max_sparsity", max_sparsity, lo=0.0, hi=1.0, hi_open=True)
    check_int("span", span, minimum=0)
    shapes = [np.zeros(np.shape(m), np.float32) for m in jax.tree.leaves(masks, is_leaf=is_none) if m is not None]
    n = sum(s.size for s in shapes)
    rows = []
    for j in range(1 + math.floor(math.log1p(-max_sparsity) / math.log1p(-increment) + 1e-9)):
        k = target_active(n, 1.0 - (1.0 - increment) ** j)
        rows.append([k] if distribution == "global" else layer_counts(distribution, shapes, k))
    # Rounding may lift one layer's count by one from a level to the next; nothing regrows, so a
    # layer keeps its smaller count (every row stays what the masks reach exactly).
    counts = np.minimum.accumulate(np.asarray(rows, np.int64), axis=0).astype(np.int32)
    ahead = counts[np.minimum(np.arange(len(counts)) + span, len(counts) - 1)]
    bounds = tuple(int(b) for b in (counts - ahead).max(axis=0))
    return Ladder(counts, bounds, distribution == "global", float(increment))


def level_at(lad: Ladder, sparsity: float) -> int:
    """The sparsest level of ``lad`` that prunes at most ``sparsity`` (a network's ceiling)."""
    check_number("sparsity", sparsity, lo=0.0, hi=1.0, hi_open=True)
    levels = [j for j in range(len(lad.counts)) if lad.sparsity(j) <= sparsity + 1e-12]
    return levels[-1]


def prune_to_level(params: Params, masks: Masks, lad: Ladder, level: jax.Array) -> tuple[Params, Masks]:
    """``(params, masks)`` pruned by ``|params|`` to level ``level`` (traced) of ``lad``.

    The masks must be at a level at most :attr:`Ladder.bounds`' span below
    ``level`` (a network at level ``j`` with ``level <= j + span``); the active
    weights with the smallest magnitude are pruned (ties to the lower index,
    NaN first) and set to exactly 0. A layer already at or below its count
    keeps its mask.
    """
    level = jnp.clip(jnp.asarray(level, jnp.int32), 0, lad.max_level)
    targets = jnp.asarray(lad.counts)[level]
    new = prune_to_counts(masks, params, targets, lad.bounds, ranked_globally=lad.ranked_globally)
    return apply_mask(params, new), new


def select_winner(losses: jax.Array) -> jax.Array:
    """The index of the smallest loss (ties to the lower index); a NaN loss never wins unless all are NaN."""
    return jnp.argmin(jnp.where(jnp.isnan(losses), jnp.inf, losses)).astype(jnp.int32)


def offspring(
    params: Params,
    masks: Masks,
    level: jax.Array,
    lad: Ladder,
    members: int,
    max_level: jax.Array,
    offset: int = 0,
) -> tuple[Params, Masks, jax.Array]:
    """``members`` pruned copies of one network, stacked on a leading axis: ``(params, masks, levels)``.

    Member ``k`` is the network pruned to level ``min(level + offset + k, max_level)``:
    with ``offset=0`` member 0 is the network itself and member ``k`` keeps about
    ``(1 - increment) ** k`` of its weights; with ``offset >= 1`` every member prunes.
    ``max_level`` (traced) is the run's ceiling; ``lad``'s span must be at least
    ``offset + members - 1``.
    """
    check_int("members", members, minimum=1)
    check_int("offset", offset, minimum=0)
    steps = offset + jnp.arange(members, dtype=jnp.int32)
    levels = jnp.minimum(jnp.asarray(level, jnp.int32) + steps, max_level)
    p, m = jax.vmap(lambda lv: prune_to_level(params, masks, lad, lv))(levels)
    return p, m, levels
