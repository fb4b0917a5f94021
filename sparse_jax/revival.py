"""Topology-Aware Revival (TAR) and the uniform-revival ablation.

TAR (Jin et al., arXiv 2602.04166) runs once, right after static pruning:
it spends a small reserve budget ``B`` of connections across layers according
to each layer's topology need, reactivates that many pruned connections
uniformly at random inside each layer, and the mask is then fixed.

The paper's exact constants are not public. Our reading, with every piece
configurable (defaults in brackets):

1. Reserve. At sparsity ``s`` the static baseline keeps ``K = round((1-s) * N)``
   of the ``N`` prunable weights. The base pruning keeps ``K - B`` and revival
   adds ``B = round(rho * K)`` [``rho = 0.1``], so TAR has exactly the static
   baseline's parameter count. ``additive=True`` keeps ``K`` and adds ``B`` on
   top instead.
2. Topology proxy of a layer ``n_in x n_out`` (``n_in`` = product of all but
   the last axis): ``N_l = n_in + n_out``, connectivity target
   ``E_l = min(n_in * n_out, N_l * ln(N_l) / 2)`` (the Erdos-Renyi
   connectivity threshold); need ``g_l = max(0, E_l - active_l)``.
3. Allocation, in three passes, each layer capped at its pruned count:

   a. floor: every prunable layer first gets ``ceil(phi * B / L)``
      [``phi = 0.2``];
   b. needs: each layer's remaining need ``ceil(E_l) - active_l - floor_l``
      is filled, and no layer gets more than that in this pass; if the needs
      add up to more than what is left, what is left is split in proportion
      to them;
   c. the rest goes in proportion to ``E`` (water-filling: a layer that
      reaches its cap passes the overflow on).

   Largest-remainder rounding; exactly ``B`` are revived, or every pruned
   weight if fewer. Because a layer's need caps what the need pass gives it,
   a small change of sparsity or budget moves every layer's share a little:
   a layer one connection short of ``E`` gets that one connection, not the
   whole budget.
4. Within a layer the share is drawn uniformly at random without replacement
   among the pruned positions. Revived weights take their initial values
   [``init = "initial"``] or start at zero (``init = "zero"``).
5. No kept connection is ever removed.

The ablation, uniform revival, spends the same ``B`` in proportion to each
layer's pruned count, with no floor.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from sparse_jax.distributions import apportion
from sparse_jax.masks import (
    Counts,
    Masks,
    Params,
    apply_mask,
    prunable_leaves,
    target_active,
    topk_mask,
    unflatten_like,
)
from sparse_jax.validation import check_choice, check_int, check_number, fail

REVIVAL_INITS = ("initial", "zero")


def _check_unit(name: str, value: float) -> float:
    return check_number(name, value, lo=0.0, hi=1.0)


@dataclasses.dataclass(frozen=True)
class RevivalConfig:
    """Knobs of a one-shot revival step.

    Attributes:
      rho: reserve fraction of the static budget ``K`` spent by revival.
      phi: fraction of the budget given out first as an equal per-layer floor
        (TAR only).
      additive: if True, revival adds ``B`` on top of ``K`` instead of
        reserving it out of ``K``.
      init: ``"initial"`` (revived weights keep their initial values) or
        ``"zero"``.
    """

    rho: float = 0.1
    phi: float = 0.2
    additive: bool = False
    init: str = "initial"

    def __post_init__(self):
        _check_unit("rho", self.rho)
        _check_unit("phi", self.phi)
        check_choice("init", self.init, REVIVAL_INITS)


def revival_budget(num_prunable: int, sparsity: float, rho: float = 0.1, additive: bool = False) -> tuple[int, int]:
    """Split the static budget into what base pruning keeps and what revival adds.

    Args:
      num_prunable: total size ``N`` of the prunable leaves.
      sparsity: target sparsity in ``[0, 1)``.
      rho: reserve fraction in ``[0, 1]``.
      additive: keep ``K`` in the base and add ``B`` on top (capped at ``N``).

    Returns:
      ``(base_active, budget)`` with ``budget = round_half_up(rho * K)``.

    >>> revival_budget(1000, 0.9, rho=0.1)
    (90, 10)
    >>> revival_budget(1000, 0.9, rho=0.1, additive=True)
    (100, 10)
    """
    k = target_active(num_prunable, sparsity)
    b = int(math.floor(_check_unit("rho", rho) * k + 0.5))
    if additive:
        return k, min(b, num_prunable - k)
    return k - b, b


def topology_proxy(shape: tuple[int, ...]) -> float:
    """Connectivity target ``E = min(n_in * n_out, N ln N / 2)``, ``N = n_in + n_out``.

    >>> round(topology_proxy((256, 256)), 2)
    1597.01
    """
    n_out = int(shape[-1])
    n_in = int(np.prod(shape[:-1]))
    n = n_in + n_out
    return float(min(n_in * n_out, n * math.log(n) / 2.0))


def _layer_stats(masks: Masks, active: Counts | None = None) -> tuple[list[int], list[int], list[tuple[int, ...]]]:
    """Active counts (from ``active`` if given, else read from concrete masks), sizes and shapes."""
    leaves = [m for _, m in prunable_leaves(masks)]
    if active is None:
        if any(isinstance(m, jax.core.Tracer) for m in leaves):
            raise ValueError(
                "revival allocation needs concrete masks or their active counts (active=...); "
                "inside jit pass the static counts of the base masks."
            )
        active = [int(np.count_nonzero(np.asarray(m))) for m in leaves]
    else:
        active = [check_int("active count", a) for a in jax.tree.leaves(active)]
        if len(active) != len(leaves):
            raise ValueError(f"active has {len(active)} counts but the masks have {len(leaves)} prunable leaves.")
        for a, m in zip(active, leaves):
            if not 0 <= a <= np.size(m):
                fail("active count", a, f"[0, {np.size(m)}] for a leaf of shape {np.shape(m)}")
            if not isinstance(m, jax.core.Tracer) and a != int(np.count_nonzero(np.asarray(m))):
                raise ValueError(f"active count {a} does not match the mask's {int(np.count_nonzero(np.asarray(m)))}.")
    sizes = [int(np.size(m)) for m in leaves]
    return active, sizes, [tuple(jnp.shape(m)) for m in leaves]


def _check_budget(budget: int) -> int:
    return check_int("budget", budget, minimum=0)


def tar_allocation(masks: Masks, budget: int, phi: float = 0.2, active: Counts | None = None) -> Counts:
    """How many pruned connections TAR revives in each layer (floor, then needs, then by ``E``).

    Args:
      masks: the base (statically pruned) masks; concrete arrays.
      budget: total connections to revive, ``B``.
      phi: floor fraction: each of the ``L`` prunable layers first gets
        ``ceil(phi * B / L)`` (capped at its pruned count; if the ceilings add
        up to more than ``B``, the last layers in pytree order get less).
      active: the masks' per-layer active counts, if known statically (lets
        this run inside jit on traced masks); default: counted from ``masks``.

    Returns:
      A counts pytree (ints per prunable leaf) summing to
      ``min(B, total pruned)``. See the module docs for the three passes.

    >>> import jax.numpy as jnp
    >>> m = {"a": jnp.zeros((4, 4), bool), "b": jnp.ones((4, 4), bool).at[0].set(False)}
    >>> tar_allocation(m, 10, phi=0.2)  # floor 1 each, then a's need: ceil(E) = 9, minus its floor
    {'a': 9, 'b': 1}
    """
    b = _check_budget(budget)
    phi = _check_unit("phi", phi)
    active, sizes, shapes = _layer_stats(masks, active)
    pruned = [n - a for n, a in zip(sizes, active)]
    n_layers = len(sizes)
    b = min(b, sum(pruned))
    if n_layers == 0:
        return masks
    # Rounded to 9 places before the ceiling so that, e.g., 0.2 * 50 / 2 gives 5, not 6.
    share = math.ceil(round(phi * b / n_layers, 9))
    floor = [min(share, p) for p in pruned]
    excess = max(0, sum(floor) - b)
    for i in reversed(range(n_layers)):
        take = min(excess, floor[i])
        floor[i] -= take
        excess -= take
    proxies = [topology_proxy(s) for s in shapes]
    spare = [p - f for p, f in zip(pruned, floor)]
    # Remaining need in whole connections, after the floor; E is rounded to 9 places first so that
    # an integral E stays integral.
    needs = [min(s, max(0, math.ceil(round(e, 9)) - a - f)) for e, a, f, s in zip(proxies, active, floor, spare)]
    left = b - sum(floor)
    filled = needs if sum(needs) <= left else apportion(needs, needs, left)
    spare = [s - g for s, g in zip(spare, filled)]
    rest = apportion(proxies, spare, left - sum(filled))
    return unflatten_like(masks, [f + g + r for f, g, r in zip(floor, filled, rest)])


def uniform_allocation(masks: Masks, budget: int, active: Counts | None = None) -> Counts:
    """The ablation: split ``budget`` in proportion to each layer's pruned count, no floor.

    ``active`` is as in :func:`tar_allocation`.
    """
    b = _check_budget(budget)
    active, sizes, _ = _layer_stats(masks, active)
    pruned = [n - a for n, a in zip(sizes, active)]
    return unflatten_like(masks, apportion(pruned, pruned, b))


def revive(key: jax.Array, masks: Masks, counts: Counts) -> Masks:
    """Reactivate ``counts[leaf]`` pruned positions per leaf, uniformly at random.

    Sampling is without replacement (top-k of i.i.d. uniforms over the pruned
    positions); kept positions are never removed. Jittable with ``counts``
    static. Each count must not exceed the leaf's pruned count, as the
    allocation functions guarantee.
    """
    leaves = prunable_leaves(masks)
    # Active positions score -1, below every U[0, 1) draw, so top-k takes only pruned ones.
    scores = unflatten_like(
        masks,
        [
            jnp.where(m, -1.0, jax.random.uniform(jax.random.fold_in(key, i), jnp.shape(m)))
            for i, (_, m) in enumerate(leaves)
        ],
    )
    return jax.tree.map(jnp.logical_or, masks, topk_mask(scores, counts))


def tar(key: jax.Array, masks: Masks, budget: int, phi: float = 0.2, active: Counts | None = None) -> Masks:
    """TAR: allocate ``budget`` by topology need (:func:`tar_allocation`), then revive."""
    return revive(key, masks, tar_allocation(masks, budget, phi, active))


def uniform_revival(key: jax.Array, masks: Masks, budget: int, active: Counts | None = None) -> Masks:
    """Uniform revival: allocate by pruned count (:func:`uniform_allocation`), then revive."""
    return revive(key, masks, uniform_allocation(masks, budget, active))


def revived_params(params: Params, base_masks: Masks, masks: Masks, init: str = "initial") -> Params:
    """Params under the revived ``masks``: revived weights at their initial value or zero.

    Args:
      params: the dense initial params.
      base_masks: the masks before revival.
      masks: the masks after revival.
      init: ``"initial"`` or ``"zero"``.
    """
    check_choice("init", init, REVIVAL_INITS)
    return apply_mask(params, masks if init == "initial" else base_masks)
