import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparse_jax as sj
from tests.helpers import mlp_params


def _sum(counts):
    return sum(jax.tree.leaves(counts))


@pytest.mark.parametrize("distribution", sj.DISTRIBUTIONS)
@pytest.mark.parametrize("score", sj.SCORES)
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.99])
def test_exact_counts_for_every_distribution_and_score(distribution, score, sparsity):
    params = mlp_params(jax.random.key(0), (11, 48, 40, 3))
    x = jax.random.normal(jax.random.key(1), (16, 11))
    loss_fn = lambda p, b: jnp.mean((jax.nn.relu(b @ p["Dense_0"]["kernel"]) @ p["Dense_1"]["kernel"]) ** 2)
    scores = sj.compute_scores(score, params, key=jax.random.key(2), loss_fn=loss_fn, batch=x)
    n = sum(x.size for x in jax.tree.leaves(scores))
    k = sj.target_active(n, sparsity)
    counts = sj.layer_counts(distribution, scores, k)
    masks = sj.distribution_masks(distribution, scores, sparsity)
    assert _sum(counts) == k
    assert jax.tree.map(lambda m: int(m.sum()), masks) == counts
    assert sj.density_summary(masks)["total"]["active"] == k


def test_erk_hand_worked_23_256_256_1():
    # N = 5888 + 65536 + 256 = 71680, K = 7168. First eps = 7168 / (279 + 512 + 257) = 6.84,
    # which gives the output layer density 6.84 * 257 / 256 > 1: it becomes dense (256).
    # Re-solve: eps = (7168 - 256) / (279 + 512) = 8.7383; Dense_0 gets 8.7383 * 279 = 2437.99 and
    # Dense_1 8.7383 * 512 = 4474.01; floors 2437 + 4474 = 6911, the last unit goes to the
    # larger remainder (0.99, Dense_0).
    params = mlp_params(jax.random.key(0), (23, 256, 256, 1))
    scores = sj.scores.magnitude(params)
    k = sj.target_active(71680, 0.9)
    assert k == 7168
    eps = (k - 256) / (279 + 512)
    assert eps * 279 == pytest.approx(2437.99, abs=0.01)
    counts = sj.distributions.erk(scores, k)
    assert counts["Dense_2"]["kernel"] == 256
    assert counts["Dense_0"]["kernel"] == 2438
    assert counts["Dense_1"]["kernel"] == 4474


def test_uniform_hand_worked():
    scores = {"a": jnp.zeros((10, 10)), "b": jnp.zeros((3, 3)), "c": None}
    # density 55/109: a gets 50.46 -> 50, b gets 4.54 -> 4; the leftover unit goes to b (0.54 > 0.46).
    assert sj.distributions.uniform(scores, 55) == {"a": 50, "b": 5, "c": None}


def test_global_matches_a_reference_top_k():
    scores = {"a": jax.random.normal(jax.random.key(0), (20, 30)), "b": jax.random.normal(jax.random.key(1), (30, 5))}
    flat = np.concatenate([np.ravel(scores["a"]), np.ravel(scores["b"])])
    keep = np.zeros(flat.size, bool)
    keep[np.argsort(-flat, kind="stable")[:100]] = True
    m = sj.distributions.global_masks(scores, 100)
    np.testing.assert_array_equal(np.concatenate([np.ravel(m["a"]), np.ravel(m["b"])]), keep)
    counts = sj.distributions.global_(scores, 100)
    assert counts == {"a": int(keep[:600].sum()), "b": int(keep[600:].sum())}
    same = sj.topk_mask(scores, counts)
    assert all(bool((same[k] == m[k]).all()) for k in ("a", "b"))


def test_global_tie_break_prefers_earlier_leaf():
    scores = {"a": jnp.ones((2, 2)), "b": jnp.ones((2, 2))}
    m = sj.distributions.global_masks(scores, 5)
    assert int(m["a"].sum()) == 4 and m["b"].tolist() == [[True, False], [False, False]]


def test_apportion_caps_and_overflow():
    assert sj.distributions.apportion([1, 1, 2], [10, 10, 1], 9) == [4, 4, 1]
    # Zero weights: split by spare capacity (4*3/8, 4*5/8).
    assert sj.distributions.apportion([0, 0], [3, 5], 4) == [2, 2]
    assert sj.distributions.apportion([1, 1], [2, 2], 10) == [2, 2]  # more than fits: everything
    assert sj.distributions.apportion([1, 1, 1], [5, 5, 5], 2) == [1, 1, 0]  # equal remainders: lower index first


def test_bad_distribution_and_num_active():
    scores = {"a": jnp.zeros((4, 4))}
    with pytest.raises(ValueError, match=r"distribution='erdos' is not allowed; allowed: uniform, erk, global"):
        sj.layer_counts("erdos", scores, 3)
    with pytest.raises(ValueError, match=r"num_active=17 .*\[0, 16\]"):
        sj.distributions.erk(scores, 17)
    with pytest.raises(ValueError, match="sparsity=1.5"):
        sj.distribution_masks("erk", scores, 1.5)


# Few distinct dims keep the number of XLA compilations (one per new shape) small.
dims = st.sampled_from([1, 2, 5, 16, 33])
shapes = st.lists(st.tuples(dims, dims), min_size=1, max_size=4)


@settings(max_examples=25, deadline=None)  # every example compiles its own shapes
@given(
    shapes=shapes, sparsity=st.floats(0.0, 0.999), seed=st.integers(0, 2**16), dist=st.sampled_from(sj.DISTRIBUTIONS)
)
def test_property_counts_exact_and_bounded(shapes, sparsity, seed, dist):
    rng = np.random.default_rng(seed)
    scores = {f"l{i}": rng.integers(0, 4, s).astype(np.float32) for i, s in enumerate(shapes)}  # many ties
    n = sum(math.prod(s) for s in shapes)
    k = sj.target_active(n, sparsity)
    counts = sj.layer_counts(dist, scores, k)
    assert _sum(counts) == k
    for name, c in counts.items():
        assert 0 <= c <= scores[name].size
    masks = sj.topk_mask(scores, counts)
    assert {name: int(m.sum()) for name, m in masks.items()} == counts


@settings(max_examples=60, deadline=None)
@given(
    shapes=st.lists(st.tuples(st.integers(1, 300), st.integers(1, 300)), min_size=1, max_size=5),
    sparsity=st.floats(0.0, 0.999),
)
def test_property_erk_density_order(shapes, sparsity):
    # ERK: a layer with a larger sum(shape)/prod(shape) never gets a lower density (up to rounding).
    scores = {f"l{i}": np.zeros(s) for i, s in enumerate(shapes)}
    n = sum(math.prod(s) for s in shapes)
    counts = sj.distributions.erk(scores, sj.target_active(n, sparsity))
    layers = [(sum(s) / math.prod(s), counts[f"l{i}"], math.prod(s)) for i, s in enumerate(shapes)]
    for ra, ca, na in layers:
        for rb, cb, nb in layers:
            if ra > rb:
                assert (ca + 1) / na >= cb / nb - 1e-9
