import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparse_jax as sj


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
