"""sparse_jax.export: trained sparse params as jax.experimental.sparse BCOO kernels."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparse_jax as sj


def test_to_bcoo_stores_exactly_the_active_entries(small_params):
    masks = jax.tree.map(
        lambda p: jax.random.bernoulli(jax.random.key(p.size), 0.2, p.shape) if p.ndim == 2 else None, small_params
    )
    masks["Dense_2"]["kernel"] = jnp.zeros_like(masks["Dense_2"]["kernel"])  # a layer with nothing active
    # An active weight that is exactly 0 is still stored; the pruned weights here are non-zero and never stored.
    first = tuple(int(i) for i in jnp.argwhere(masks["Dense_0"]["kernel"])[0])
    small_params["Dense_0"]["kernel"] = small_params["Dense_0"]["kernel"].at[first].set(0.0)
    exported = sj.to_bcoo(small_params, masks)
    for layer in ("Dense_0", "Dense_1", "Dense_2"):
        w, m, k = small_params[layer]["kernel"], masks[layer]["kernel"], exported[layer]["kernel"]
        assert isinstance(k, jax.experimental.sparse.BCOO) and k.shape == w.shape
        assert k.nse == int(m.sum())
        np.testing.assert_array_equal(k.todense(), jnp.where(m, w, 0.0))
        x = jax.random.normal(jax.random.key(1), (5, w.shape[0]))
        np.testing.assert_allclose(x @ k, x @ jnp.where(m, w, 0.0), rtol=1e-5, atol=1e-6)
        assert exported[layer]["bias"] is small_params[layer]["bias"]  # dense leaves pass through unchanged
    assert exported["Dense_0"]["kernel"].nse == int(masks["Dense_0"]["kernel"].sum()) > 0


def test_to_bcoo_refuses_bad_masks_in_one_line(small_params):
    masks = sj.dense_masks(small_params)
    wrong_shape = jax.tree.map(lambda m: m, masks)
    wrong_shape["Dense_0"]["kernel"] = jnp.ones((3, 3), bool)
    not_bool = jax.tree.map(lambda m: m.astype(jnp.float32), masks)
    for bad, message in (
        ({"Dense_0": masks["Dense_0"]}, "does not match params structure"),
        (wrong_shape, "mask at 'Dense_0/kernel' has shape (3, 3)"),
        (not_bool, "masks must be boolean"),
    ):
        with pytest.raises(ValueError) as e:
            sj.to_bcoo(small_params, bad)
        assert message in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ValueError, match="is traced .* allowed: concrete arrays"):
        jax.jit(lambda p: sj.to_bcoo(p, masks))(small_params)
    with pytest.raises(ValueError, match="allowed: masks of leaves with at least one dimension"):
        sj.to_bcoo({"w": jnp.ones(())}, {"w": jnp.ones((), bool)})
