"""ReDo (Sokar et al. 2023, "The Dormant Neuron Phenomenon in Deep RL"): recycle dormant hidden units.

A hidden unit is the output of one kernel of a chain (:func:`~sparse_jax.utils.kernel_chains`)
and an input of the next. It is dormant when its score (its mean absolute
activation over a batch) is at most ``tau`` times its layer's mean score.
Recycling a dormant unit re-initialises its incoming weights and its bias from
a fresh initialisation, zeroes its outgoing weights, and zeroes the optimizer
moments of all of them, so the network's function is unchanged at that moment
and the unit can learn again.

Under a mask only active connections change: a recycled unit's active incoming
connections take fresh values, its active outgoing ones become 0, and pruned
entries stay exactly 0. The masks themselves are not changed.

The activations come from the caller (a flax network can capture them with
``capture_intermediates``); these functions only see params, masks and scores,
so they work under ``jit`` and ``vmap``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from sparse_jax.masks import FilterFn, Masks, Params, default_filter, path_name
from sparse_jax.utils import is_none, kernel_chains
from sparse_jax.validation import check_number, fail


def dormant_units(scores: Mapping[str, jax.Array], tau: float) -> dict[str, jax.Array]:
    """Per layer, which units are dormant: ``score_i <= tau * mean_k score_k``.

    Args:
      scores: per hidden layer (keyed by the path of the kernel that produces
        it, e.g. ``"Dense_0/kernel"``), each unit's mean absolute activation.
      tau: the threshold, ``>= 0``; ``0`` marks only units that never fire. A traced value (one per
        run of a vmapped batch) is taken as it is; a concrete one is checked.

    >>> import jax.numpy as jnp
    >>> dormant_units({"Dense_0/kernel": jnp.array([0.0, 0.01, 1.0, 2.99])}, tau=0.025)["Dense_0/kernel"].tolist()
    [True, True, False, False]
    """
    if not isinstance(tau, jax.core.Tracer):
        check_number("tau", tau, lo=0.0)
    return {name: s <= tau * jnp.mean(s) for name, s in scores.items()}


def recycle(
    params: Params,
    fresh: Params,
    masks: Masks | None,
    dormant: Mapping[str, jax.Array],
    filter_fn: FilterFn = default_filter,
) -> tuple[Params, Params]:
    """Recycle the ``dormant`` units of ``params``; returns ``(params, recycled)``.

    Args:
      params: the network's params.
      fresh: params of the same structure from a new initialisation (where the
        recycled incoming weights and biases are taken from).
      masks: the params' masks (``None``: dense). Only active entries change.
      dormant: per hidden layer, keyed by the path of the kernel producing it
        (as :func:`dormant_units` returns), a boolean array over its units. The
        kernel must have a next kernel in its chain.
      filter_fn: selects the kernels, as for the masks.

    Returns:
      The new params, and a boolean tree shaped like ``params`` that is ``True``
      on every entry that was changed (or zeroed): pass it to
      :func:`reset_moments`.

    >>> import jax.numpy as jnp
    >>> p = {"Dense_0": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)},
    ...      "Dense_1": {"kernel": jnp.ones((2, 1)), "bias": jnp.ones(1)}}
    >>> fresh = jax.tree.map(lambda x: 5 * jnp.ones_like(x), p)
    >>> new, changed = recycle(p, fresh, None, {"Dense_0/kernel": jnp.array([False, True])})
    >>> new["Dense_0"]["kernel"].tolist(), new["Dense_0"]["bias"].tolist(), new["Dense_1"]["kernel"].tolist()
    ([[1.0, 5.0], [1.0, 5.0]], [1.0, 5.0], [[1.0], [0.0]])
    """
    # Long: half of it is the docstring's worked example; the body is one pass over the dormant layers.
    leaves_with_path, treedef = jax.tree.flatten_with_path(params)
    names = [path_name(p) for p, _ in leaves_with_path]
    leaves = [x for _, x in leaves_with_path]
    fresh_leaves = jax.tree.leaves(fresh)
    if jax.tree.structure(fresh) != treedef:
        raise ValueError("fresh must have the structure of params (a new initialisation of the same network).")
    mask_leaves = [None] * len(leaves) if masks is None else jax.tree.leaves(masks, is_leaf=is_none)
    following = {chain[k]: chain[k + 1] for chain in kernel_chains(params, filter_fn) for k in range(len(chain) - 1)}
    index = {name: i for i, name in enumerate(names)}
    new = list(leaves)
    changed = [jnp.zeros(jnp.shape(x), bool) for x in leaves]

    def active(i: int) -> jax.Array:
        return jnp.ones(jnp.shape(leaves[i]), bool) if mask_leaves[i] is None else jnp.asarray(mask_leaves[i], bool)

    for name in dormant:
        if index.get(name) not in following:
            hidden = sorted(names[k] for k in following)
            fail("dormant", name, f"the path of a kernel whose outputs feed another kernel: {hidden}")
    # In layer order, whatever the order of ``dormant``: a weight leaving one recycled unit and entering
    # another takes the fresh value (the second unit's outgoing weights are zeroed, so the output is
    # still unchanged).
    for name in sorted(dormant, key=index.get):
        i, units = index[name], jnp.asarray(dormant[name], bool)
        if units.shape != (jnp.shape(leaves[i])[-1],):
            raise ValueError(f"dormant[{name!r}] has shape {units.shape}; {name} has {jnp.shape(leaves[i])[-1]} units.")
        incoming = units & active(i)  # broadcasts over the kernel's input axes
        new[i] = jnp.where(incoming, fresh_leaves[i], new[i])
        changed[i] = changed[i] | incoming
        bias = index.get(name.rsplit("/", 1)[0] + "/bias")
        if bias is not None and jnp.shape(leaves[bias]) == units.shape:
            new[bias] = jnp.where(units, fresh_leaves[bias], new[bias])
            changed[bias] = changed[bias] | units
        j = following[i]
        outgoing = units.reshape((-1,) + (1,) * (jnp.ndim(leaves[j]) - 1)) & active(j)
        new[j] = jnp.where(outgoing, jnp.zeros_like(new[j]), new[j])
        changed[j] = changed[j] | outgoing
    return jax.tree.unflatten(treedef, new), jax.tree.unflatten(treedef, changed)


def reset_moments(opt_state: Any, recycled: Params) -> Any:
    """``opt_state`` with every params-shaped float tree in it zeroed where ``recycled`` is ``True``.

    Adam's first and second moments, a momentum trace and accumulated
    gradients are such trees (found by structure and shapes, so this works for
    any optax chain, and inside a :mod:`sparse_jax` transform's state). Step
    counts are left alone: optax keeps one count for every weight, so
    restarting it would also restart the bias correction of the weights that
    were not recycled.

    >>> import jax.numpy as jnp, optax
    >>> p = {"w": jnp.ones(3)}
    >>> state = optax.adam(0.1).update(p, optax.adam(0.1).init(p), p)[1]
    >>> reset_moments(state, {"w": jnp.array([True, False, False])})[0].mu["w"].tolist()
    [0.0, 0.10000000149011612, 0.10000000149011612]
    """
    target = jax.tree.structure(recycled)
    shapes = [jnp.shape(x) for x in jax.tree.leaves(recycled)]

    def params_shaped(x: Any) -> bool:
        # Float leaves only: a mask tree of params without dense leaves has the params' structure too.
        leaves = jax.tree.leaves(x)
        return (
            jax.tree.structure(x) == target
            and [jnp.shape(v) for v in leaves] == shapes
            and all(jnp.issubdtype(jnp.result_type(v), jnp.inexact) for v in leaves)
        )

    def reset(x: Any) -> Any:
        if not params_shaped(x):
            return x
        return jax.tree.map(lambda v, r: jnp.where(r, jnp.zeros_like(v), v), x, recycled)

    return jax.tree.map(reset, opt_state, is_leaf=params_shaped)
