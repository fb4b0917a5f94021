import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparse_jax as sj
from tests.helpers import mlp_params


def test_magnitude_uniform_keeps_largest():
    params = {"w": jnp.array([[0.1, -5.0, 2.0], [-0.2, 3.0, 0.0]]), "b": jnp.zeros(3)}
    m = sj.prune(None, params, 0.5, score="magnitude", distribution="uniform")
    assert m["w"].tolist() == [[False, True, True], [False, True, False]]
    assert m["b"] is None


@pytest.mark.parametrize("method", ["static", "uniform_revival", "tar"])
def test_sparse_init_same_parameter_count(method):
    params = mlp_params(jax.random.key(0), (17, 64, 64, 6))
    n = sum(x.size for x in jax.tree.leaves(sj.dense_masks(params)))
    init = sj.sparse_init(jax.random.key(3), params, 0.9, method=method, score="random", distribution="erk")
    assert sj.density_summary(init.masks)["total"]["active"] == sj.target_active(n, 0.9)
    for layer in init.masks:
        base, final = init.base_masks[layer]["kernel"], init.masks[layer]["kernel"]
        assert bool((final | ~base).all())  # nothing kept is removed
        assert bool((init.params[layer]["kernel"][~final] == 0).all())


def test_sparse_init_revived_weights_initial_or_zero():
    params = mlp_params(jax.random.key(0), (17, 64, 6))
    init = sj.sparse_init(jax.random.key(1), params, 0.8, method="tar")
    zero = sj.sparse_init(jax.random.key(1), params, 0.8, method="tar", revival=sj.RevivalConfig(init="zero"))
    for layer in params:
        revived = init.masks[layer]["kernel"] & ~init.base_masks[layer]["kernel"]
        assert int(revived.sum()) > 0
        np.testing.assert_array_equal(init.params[layer]["kernel"][revived], params[layer]["kernel"][revived])
        assert bool((zero.params[layer]["kernel"][revived] == 0).all())
        np.testing.assert_array_equal(zero.masks[layer]["kernel"], init.masks[layer]["kernel"])


def test_sparse_init_additive_adds_budget_on_top():
    params = mlp_params(jax.random.key(0), (17, 64, 6))
    n = 17 * 64 + 64 * 6
    k = sj.target_active(n, 0.9)
    init = sj.sparse_init(jax.random.key(1), params, 0.9, method="tar", revival=sj.RevivalConfig(additive=True))
    assert sj.density_summary(init.base_masks)["total"]["active"] == k
    assert sj.density_summary(init.masks)["total"]["active"] == k + round(0.1 * k)


def test_sparse_init_dense_keeps_everything(small_params):
    init = sj.sparse_init(jax.random.key(0), small_params, 0.9, method="dense")
    assert sj.density_summary(init.masks)["total"]["density"] == 1.0
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), init.params, small_params))


def test_reinit_kept_uses_sparse_fan_in():
    params = {"w": jnp.zeros((400, 3)), "b": jnp.ones(3)}
    # Column 0 has 400 active inputs, column 1 has 25, column 2 none.
    mask = jnp.zeros((400, 3), bool).at[:, 0].set(True).at[:25, 1].set(True)
    out = sj.reinit_kept(jax.random.key(0), params, {"w": mask, "b": None})
    w = out["w"]
    assert bool((w[~mask] == 0).all())
    np.testing.assert_allclose(np.std(w[:, 0]), np.sqrt(1 / 400), rtol=0.15)
    np.testing.assert_allclose(np.std(w[:25, 1]), np.sqrt(1 / 25), rtol=0.35)
    np.testing.assert_array_equal(out["b"], params["b"])


def test_sparse_init_errors(small_params):
    with pytest.raises(
        ValueError, match=r"method='lottery' is not allowed; allowed: dense, static, uniform_revival, tar, set, rigl"
    ):
        sj.sparse_init(jax.random.key(0), small_params, 0.9, method="lottery")
    with pytest.raises(ValueError, match="sparsity=1.2"):
        sj.sparse_init(jax.random.key(0), small_params, 1.2)
    with pytest.raises(ValueError, match=r"rho=1.5 .*\[0, 1\]"):
        sj.RevivalConfig(rho=1.5)
    with pytest.raises(ValueError, match=r"phi=-0.1 .*\[0, 1\]"):
        sj.RevivalConfig(phi=-0.1)
    with pytest.raises(ValueError, match="init='random' is not allowed; allowed: initial, zero"):
        sj.RevivalConfig(init="random")


@pytest.mark.parametrize("method", ["static", "uniform_revival", "tar"])
def test_sparse_init_jits_and_vmaps_like_eager(method):
    params = mlp_params(jax.random.key(0), (17, 64, 6))
    keys = jax.random.split(jax.random.key(5), 2)
    batched = jax.jit(jax.vmap(lambda k: sj.sparse_init(k, params, 0.9, method=method).masks))(keys)
    for i in range(2):
        eager = sj.sparse_init(keys[i], params, 0.9, method=method).masks
        for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(batched)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b[i]))


def test_global_revival_inside_jit_needs_concrete_masks():
    params = mlp_params(jax.random.key(0), (17, 64, 6))
    with pytest.raises(ValueError, match="concrete masks"):
        jax.jit(lambda k: sj.sparse_init(k, params, 0.9, method="tar", distribution="global").masks)(jax.random.key(0))
