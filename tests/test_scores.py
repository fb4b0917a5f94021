"""sparse_jax.scores: random, magnitude, SNIP and SynFlow scores (SynFlow by hand, and without layer collapse)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparse_jax as sj
from tests.helpers import mlp_params


def test_random_scores_shapes_range_and_keys(small_params):
    a = sj.scores.random(jax.random.key(0), small_params)
    b = sj.scores.random(jax.random.key(0), small_params)
    c = sj.scores.random(jax.random.key(1), small_params)
    assert a["Dense_0"]["bias"] is None
    k = a["Dense_1"]["kernel"]
    assert k.shape == (32, 32) and bool((k >= 0).all() & (k < 1).all())
    assert bool((k == b["Dense_1"]["kernel"]).all())
    assert not bool((k == c["Dense_1"]["kernel"]).all())
    # Different leaves draw independently.
    assert not np.allclose(a["Dense_0"]["kernel"][:8, :4], a["Dense_1"]["kernel"][:8, :4])


def test_magnitude_is_abs(small_params):
    s = sj.scores.magnitude(small_params)
    np.testing.assert_array_equal(s["Dense_2"]["kernel"], jnp.abs(small_params["Dense_2"]["kernel"]))
    assert s["Dense_2"]["bias"] is None


def test_snip_hand_worked():
    # loss = sum(x @ W) with x = [1, 2]: dL/dW[i, j] = x[i], so SNIP = |W[i, j] * x[i]|.
    params = {"W": jnp.array([[1.0, -2.0], [3.0, 0.5]]), "b": jnp.ones(2)}
    loss_fn = lambda p, x: jnp.sum(x @ p["W"] + p["b"])
    s = sj.scores.snip(params, loss_fn, jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(s["W"], [[1.0, 2.0], [6.0, 1.0]])
    assert s["b"] is None


def test_score_errors(small_params):
    with pytest.raises(ValueError, match=r"score='taylor' is not allowed; allowed: random, magnitude, snip"):
        sj.compute_scores("taylor", small_params)
    with pytest.raises(ValueError, match="needs a PRNG key"):
        sj.compute_scores("random", small_params)
    with pytest.raises(ValueError, match="loss_fn"):
        sj.compute_scores("snip", small_params)


def test_one_shot_score_by_hand():
    # R = 1^T |W1| |W2| 1 with each kernel divided by its largest magnitude (a per-layer constant):
    # score(W1_ij) = |w1_ij| / 4 * |w2_j| / 3 and score(W2_j) = (sum_i |w1_ij| / 4) * |w2_j| / 3.
    w1 = jnp.array([[1.0, -2.0], [4.0, 0.5]])
    w2 = jnp.array([[3.0], [-1.0]])
    params = {"Dense_0": {"kernel": w1, "bias": jnp.zeros(2)}, "Dense_1": {"kernel": w2, "bias": jnp.zeros(1)}}
    s = sj.scores.synflow(params)
    a1, a2 = np.abs(np.asarray(w1)) / 4, np.abs(np.asarray(w2)) / 3
    np.testing.assert_allclose(s["Dense_0"]["kernel"], a1 * a2[:, 0][None, :], rtol=1e-6)
    np.testing.assert_allclose(s["Dense_1"]["kernel"], a1.sum(0)[:, None] * a2, rtol=1e-6)
    assert s["Dense_0"]["bias"] is None


def test_synflow_flows_along_a_residual_skip_by_hand():
    """R = 1^T |E| (I + |U| |D|) |O| 1 for an embedding E, one residual block (U, D) and an output O, all
    with largest magnitude 1 (so the per-layer rescaling is the identity): E = I, U = e_0, D = e_1^T,
    O = 1. Then 1^T E = [1, 1], (I + U D) = [[1, 1], [0, 1]], the stream after the block is [1, 2], R = 3;
    score(O_j) = [1, 2]_j; score(D_0k) = |D_0k| (1^T E U) O_k = [0, 1]; score(U_i0) = |U_i0| (D O) = [1, 0];
    score(E_ij) = |E_ij| ((I + U D) O)_j = diag(2, 1)."""
    dense = lambda w: {"kernel": jnp.asarray(w, jnp.float32), "bias": jnp.zeros(len(w[0]))}
    params = {
        "Dense_0": dense([[1.0, 0.0], [0.0, 1.0]]),
        "Dense_1": dense([[1.0], [1.0]]),
        "ResidualBlock_0": {"Dense_0": dense([[1.0], [0.0]]), "Dense_1": dense([[0.0, 1.0]])},
    }
    s = sj.scores.synflow(params)
    np.testing.assert_array_equal(s["Dense_1"]["kernel"], [[1.0], [2.0]])
    np.testing.assert_array_equal(s["ResidualBlock_0"]["Dense_1"]["kernel"], [[0.0, 1.0]])
    np.testing.assert_array_equal(s["ResidualBlock_0"]["Dense_0"]["kernel"], [[1.0], [0.0]])
    np.testing.assert_array_equal(s["Dense_0"]["kernel"], [[2.0, 0.0], [0.0, 1.0]])


def _collapsing_params():
    """8-64-64-4 MLP whose middle kernel is 1000x smaller than the others."""
    params = mlp_params(jax.random.key(0), (8, 64, 64, 4))
    params["Dense_1"]["kernel"] = params["Dense_1"]["kernel"] * 1e-3
    return params


def test_synflow_avoids_the_layer_collapse_of_magnitude_global():
    params = _collapsing_params()
    magnitude = sj.prune(None, params, 0.98, score="magnitude", distribution="global")
    assert int(magnitude["Dense_1"]["kernel"].sum()) == 0  # the middle layer is emptied: no path is left
    assert sj.reachability(magnitude).pair_fraction == 0.0
    synflow = sj.prune(None, params, 0.98, score="synflow", distribution="global", synflow_iterations=100)
    counts = [int(synflow[f"Dense_{i}"]["kernel"].sum()) for i in range(3)]
    assert sum(counts) == sj.target_active(8 * 64 + 64 * 64 + 64 * 4, 0.98) and min(counts) > 0
    assert sj.reachability(synflow).pair_fraction > 0.0


@pytest.mark.parametrize("distribution", ["uniform", "erk", "global"])
def test_synflow_counts_are_exact_and_jittable(distribution):
    params = mlp_params(jax.random.key(1), (6, 24, 24, 3))
    make = lambda p: sj.sparse_init(
        jax.random.key(0), p, 0.9, method="tar", score="synflow", distribution=distribution, synflow_iterations=10
    )
    if distribution == "global":  # global counts depend on the scores: revival runs eagerly
        init = make(params)
    else:
        init = jax.jit(make)(params)
        eager = make(params)
        for a, b in zip(jax.tree.leaves(init.masks), jax.tree.leaves(eager.masks)):
            np.testing.assert_array_equal(a, b)
    total = sum(m.size for m in jax.tree.leaves(init.masks))
    assert sum(int(m.sum()) for m in jax.tree.leaves(init.masks)) == sj.target_active(total, 0.9)


def test_synflow_refuses_kernels_that_do_not_chain():
    params = {"Dense_0": {"kernel": jnp.ones((3, 4))}, "Dense_1": {"kernel": jnp.ones((5, 2))}}
    with pytest.raises(ValueError, match=r"synflow needs chains of 2-D kernels.*\(5, 2\).*4 outputs"):
        sj.scores.synflow(params)
