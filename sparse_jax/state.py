"""The state of a sparse transform, and the functions that read or replace what it holds.

:class:`SparseState` sits somewhere inside any optax state that holds a sparse
transform (chains, ``inject_hyperparams``, ``optax.masked``,
``multi_transform``, a flax ``nnx.Optimizer``); :func:`with_masks`,
:func:`get_masks` and :func:`keep_sparse` find it there and match masks to it
by path string.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from sparse_jax.masks import Masks, path_name


class SparseState(NamedTuple):
    """State of :func:`sparse_transform`.

    Attributes:
      inner_state: the wrapped optimizer's state.
      masks: current masks (boolean arrays, ``None`` for dense leaves).
      count: number of updates applied so far (int32).
      key: PRNG key for SET's random regrowth (``None`` until :func:`with_masks`
        sets one); the mask update after update ``t`` draws from
        ``fold_in(key, t)``, so its draws do not depend on which earlier
        updates ran with ``rewire=False``.
      targets: GMP's active-count table (:func:`gmp_sparse`), ``None`` for the
        other transforms. It is state, not a static setting, so that one
        compiled GMP update serves runs pruning to different sparsities.
    """

    inner_state: optax.OptState
    masks: Masks
    count: jax.Array
    key: jax.Array | None
    targets: jax.Array | None = None


def _sparse_states(opt_state: Any) -> list[SparseState]:
    is_state = lambda x: isinstance(x, SparseState)
    return [s for s in jax.tree.leaves(opt_state, is_leaf=is_state) if is_state(s)]


def _one_state(opt_state: Any) -> SparseState:
    found = _sparse_states(opt_state)
    if len(found) != 1:
        raise ValueError(f"expected exactly one sparse_jax SparseState in the optimizer state, found {len(found)}.")
    return found[0]


def _is_mask_leaf(x: Any) -> bool:
    """A mask leaf: an array, ``None`` (dense) or ``optax.MaskedNode`` (a leaf ``optax.masked`` hides)."""
    return x is None or isinstance(x, optax.MaskedNode)


def _by_path(tree: Any) -> dict[str, Any]:
    """``path string -> leaf`` of a mask tree (``None`` and ``MaskedNode`` count as leaves)."""
    return {path_name(p): x for p, x in jax.tree.leaves_with_path(tree, is_leaf=_is_mask_leaf)}


def _fit_masks(old: Masks, new: Masks) -> Masks:
    """``new`` laid out in the structure of the state's masks ``old``, matched leaf by leaf on path strings.

    The path strings, not the pytree node types, decide: masks built on flax
    ``nnx.Param`` states fit a ``nnx.Optimizer``'s ``OptVariable`` state, and
    masks built on the whole params fit a transform inside ``optax.masked`` or
    ``optax.multi_transform`` (whose hidden leaves are ``MaskedNode``s there).
    """
    old_paths, new_paths = _by_path(old), _by_path(new)
    if old_paths and not set(old_paths) & set(new_paths):
        raise ValueError(
            f"the masks' paths ({next(iter(new_paths))!r}, ...) and the state's ({next(iter(old_paths))!r}, ...) "
            "do not line up; make the masks from the params the optimizer was initialised with."
        )
    for where, n in new_paths.items():
        o = old_paths.get(where, None)
        if where not in old_paths or isinstance(o, optax.MaskedNode):
            if n is not None and not isinstance(n, optax.MaskedNode):
                raise ValueError(
                    f"masks give a mask at {where!r}, which this sparse transform does not train (the masks' "
                    f"paths it trains: {[k for k, v in old_paths.items() if not _is_mask_leaf(v)]}); under "
                    "optax.masked or multi_transform, give that leaf None or route it to the sparse transform."
                )
    fitted = []
    for where, o in old_paths.items():
        if isinstance(o, optax.MaskedNode):
            fitted.append(o)
        elif where not in new_paths:
            raise ValueError(f"masks have no leaf at {where!r}, where the state's masks have one.")
        else:
            fitted.append(new_paths[where])
    return jax.tree.unflatten(jax.tree.structure(old, is_leaf=_is_mask_leaf), fitted)


def _check_new_masks(old: Masks, new: Masks) -> None:
    """``new`` must put a boolean array of the same shape wherever ``old`` has one, and ``None`` elsewhere."""
    for (path, o), n in zip(
        jax.tree.leaves_with_path(old, is_leaf=_is_mask_leaf), jax.tree.leaves(new, is_leaf=_is_mask_leaf)
    ):
        where = path_name(path)
        if isinstance(o, optax.MaskedNode):
            continue
        if (o is None) != (n is None):
            raise ValueError(
                f"mask at {where!r} is {'None' if n is None else 'an array'} where the transform's filter_fn "
                f"{'prunes' if n is None else 'keeps the leaf dense'}; build the transform with the filter_fn "
                "that made the masks."
            )
        if n is None:
            continue
        if jnp.shape(n) != jnp.shape(o):
            raise ValueError(f"mask at {where!r} has shape {jnp.shape(n)}, but the param has shape {jnp.shape(o)}.")
        if jnp.result_type(n) != jnp.bool_:
            raise ValueError(f"mask at {where!r} has dtype {jnp.result_type(n)}; masks must be boolean.")


def with_masks(opt_state: Any, masks: Masks | None = None, *, key: jax.Array | None = None) -> Any:
    """``opt_state`` with the masks and/or PRNG key of its :class:`SparseState` replaced.

    The one way to put pruned masks or a key into a sparse transform's state.
    Works through any nesting (``optax.chain``, ``named_chain``,
    ``inject_hyperparams``, ``optax.masked``, ``optax.multi_transform``, a
    flax ``nnx.Optimizer``'s ``opt_state``) and under ``jax.vmap``: to give
    vmapped seeds their own masks and regrowth draws from one transform, use
    ``jax.vmap(lambda m, k: with_masks(tx.init(params), m, key=k))(masks, keys)``.

    Args:
      opt_state: a state holding exactly one :class:`SparseState`.
      masks: new masks (``None`` keeps them), matched to the state's masks by
        path string: masks made from the whole params fit a transform that
        ``optax.masked``/``multi_transform`` gives only some leaves, as long as
        the leaves it does not see get ``None``.
      key: new PRNG key for SET's regrowth (``None`` keeps the state's).

    >>> import jax.numpy as jnp, optax
    >>> from sparse_jax import static_sparse
    >>> params = {"w": jnp.ones((2, 2)), "b": jnp.zeros(2)}
    >>> state = with_masks(static_sparse(optax.sgd(0.1)).init(params), {"w": jnp.eye(2, dtype=bool), "b": None})
    >>> get_masks(state)["w"].tolist()
    [[True, False], [False, True]]
    """
    old = _one_state(opt_state)
    if masks is not None:
        masks = _fit_masks(old.masks, masks)
        _check_new_masks(old.masks, masks)
    new = old._replace(masks=old.masks if masks is None else masks, key=old.key if key is None else key)
    is_state = lambda x: isinstance(x, SparseState)
    return jax.tree.map(lambda s: new if s is old else s, opt_state, is_leaf=is_state)


def keep_sparse(params: Any, opt_state: Any) -> Any:
    """``params`` with every entry that the state's masks prune set to exactly 0.

    A sparse transform keeps pruned weights at 0 only as the outermost
    transform: anything chained after it (``optax.chain(static_sparse(adam),
    optax.add_noise(...))``) changes the updates of pruned weights again. The
    rule is to put the rest of the chain inside it
    (``static_sparse(optax.chain(optax.clip_by_global_norm(1.0), optax.adam(3e-4)))``,
    where clipping also sees only active gradients). Where that is not
    possible, call this after ``optax.apply_updates`` (jaxpruner calls the
    same step ``post_gradient_update``). Masks are matched to params by path
    string, so flax ``nnx`` states work too.

    >>> import jax, jax.numpy as jnp, optax
    >>> from sparse_jax import static_sparse
    >>> params = {"w": jnp.ones((2, 2))}
    >>> tx = optax.chain(static_sparse(optax.sgd(0.1)), optax.add_noise(1.0, 0.0, key=jax.random.key(0)))
    >>> state = with_masks(tx.init(params), {"w": jnp.eye(2, dtype=bool)})
    >>> updates, state = tx.update({"w": jnp.ones((2, 2))}, state, params)
    >>> new = keep_sparse(optax.apply_updates(params, updates), state)
    >>> bool((new["w"][0, 1] == 0) & (new["w"][1, 0] == 0))
    True
    """
    by_path = {k: v for k, v in _by_path(_one_state(opt_state).masks).items() if not _is_mask_leaf(v)}
    missing = set(by_path) - {path_name(p) for p, _ in jax.tree.leaves_with_path(params)}
    if missing:
        raise ValueError(
            f"params have no leaf at {sorted(missing)[0]!r}, where the state has a mask; pass the params the "
            "optimizer updates."
        )

    def one(path, p):
        m = by_path.get(path_name(path))
        return p if m is None else jnp.where(m, p, jnp.zeros_like(p))

    return jax.tree.map_with_path(one, params)


def get_masks(opt_state: Any) -> Masks:
    """The masks held by the (single) :class:`SparseState` inside ``opt_state``.

    Works on any nesting: ``optax.chain``, ``named_chain``, ``inject_hyperparams``,
    ``optax.masked`` and ``multi_transform`` (the leaves they hide from the
    transform read as ``None``, i.e. dense; a prefix mask that hides a whole
    subtree gives one ``None`` for it), and batched (vmapped) states.
    """
    masks = _one_state(opt_state).masks
    return jax.tree.map(lambda m: None if isinstance(m, optax.MaskedNode) else m, masks, is_leaf=_is_mask_leaf)
