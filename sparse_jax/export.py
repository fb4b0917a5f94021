"""Export a trained sparse network in ``jax.experimental.sparse`` format, for sparse inference.

Training keeps every kernel as a dense array with a mask: XLA's dense
matmuls are fast, and SET/RigL change the mask in place. Once training is
done, :func:`to_bcoo` stores each masked kernel as a BCOO matrix holding
exactly its active entries, so memory and (on hardware that gains from it)
compute scale with the active count.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse

from sparse_jax.masks import Masks, Params, check_masks
from sparse_jax.utils import is_none, path_name


def _check_concrete(tree: Any, what: str) -> None:
    """Refuse traced leaves: a BCOO's size is the mask's active count, which must be known to build it."""
    for path, x in jax.tree.leaves_with_path(tree):
        if isinstance(x, jax.core.Tracer):
            raise ValueError(
                f"{what} at {path_name(path)!r} is traced (inside jit, vmap or grad); allowed: concrete arrays, "
                "since each kernel's stored entries are its mask's active count: call to_bcoo outside transforms."
            )


def _bcoo(param: jax.Array, mask: jax.Array) -> sparse.BCOO:
    """``param``'s entries where ``mask`` is True, in row-major order, as a BCOO of ``param``'s shape."""
    indices = np.argwhere(np.asarray(mask)).astype(np.int32)  # (active, ndim), sorted and unique
    data = jnp.asarray(param)[tuple(indices.T)]
    return sparse.BCOO((data, jnp.asarray(indices)), shape=tuple(param.shape), indices_sorted=True, unique_indices=True)


def to_bcoo(params: Params, masks: Masks) -> Params:
    """``params`` with every masked kernel as a BCOO of exactly its active entries; dense leaves unchanged.

    A kernel's entry is stored if and only if its mask is True, so the BCOO's
    ``nse`` is the mask's active count, also where an active weight is 0 (a
    revived weight starting at zero is still a connection), and a pruned
    weight is never stored, whatever its value. ``x @ kernel`` and
    ``kernel @ v`` then equal the dense masked products. Runs eagerly (the
    number of stored entries depends on the masks' values), not under ``jit``.

    Args:
      params: a pytree of arrays.
      masks: masks of ``params`` (a boolean array per prunable leaf, ``None``
        per dense leaf), e.g. ``sparse_jax.get_masks(opt_state)``.

    Returns:
      ``params``' structure with a ``jax.experimental.sparse.BCOO`` in place of
      every masked leaf.

    Raises:
      ValueError: masks that do not fit ``params`` (structure, shape, dtype), a
        masked 0-d leaf, or traced values.

    >>> import jax.numpy as jnp
    >>> w = jnp.arange(1.0, 7.0).reshape(3, 2)
    >>> m = jnp.array([[True, False], [False, True], [True, True]])
    >>> sparse_params = to_bcoo({"kernel": w, "bias": jnp.ones(2)}, {"kernel": m, "bias": None})
    >>> kernel = sparse_params["kernel"]
    >>> kernel.nse, sparse_params["bias"].tolist()
    (4, [1.0, 1.0])
    >>> x, v = jnp.array([[1.0, 2.0, 3.0]]), jnp.array([1.0, -1.0])
    >>> bool(jnp.array_equal(x @ kernel, x @ jnp.where(m, w, 0.0)))
    True
    >>> (kernel @ v).tolist() == (jnp.where(m, w, 0.0) @ v).tolist()
    True
    """
    check_masks(params, masks)
    _check_concrete(params, "params")
    _check_concrete(masks, "masks")
    for path, m in jax.tree.leaves_with_path(masks):
        if jnp.ndim(m) == 0:
            raise ValueError(
                f"mask at {path_name(path)!r} is 0-d; allowed: masks of leaves with at least one dimension (kernels)."
            )
    return jax.tree.map(lambda m, p: p if m is None else _bcoo(p, m), masks, params, is_leaf=is_none)
