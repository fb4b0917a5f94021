"""sparse_jax.utils: dense leaves as ``None``, the default filter, key paths as strings, values put back in place."""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from sparse_jax import utils


class _Layer(NamedTuple):
    kernels: list
    bias: object


def test_paths_name_dict_keys_attributes_and_indices_and_none_leaves_are_dense():
    tree = {"net": _Layer(kernels=[jnp.ones((2, 3)), jnp.ones(3)], bias=None)}
    leaves = utils.prunable_leaves(tree)  # the None leaf is no leaf
    assert [(utils.path_name(path), leaf.shape) for path, leaf in leaves] == [("net/kernels/0", (2, 3)),
                                                                              ("net/kernels/1", (3,))]  # fmt: skip
    assert [x is None for x in jax.tree.leaves(tree, is_leaf=utils.is_none)] == [False, False, True]
    # Only arrays of two or more dimensions are pruned by default: kernels, not biases or scalars.
    assert [utils.default_filter(utils.path_name(p), x) for p, x in leaves] == [True, False]
    assert not utils.default_filter("net/bias", None) and not utils.default_filter("lr", 0.1)
    assert utils.unflatten_like(tree, ["a", "b"]) == {"net": _Layer(kernels=["a", "b"], bias=None)}
