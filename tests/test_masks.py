import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparse_jax as sj


def test_dense_masks_selects_kernels_only(small_params):
    m = sj.dense_masks(small_params)
    for layer in ("Dense_0", "Dense_1", "Dense_2"):
        assert m[layer]["bias"] is None
        assert m[layer]["kernel"].dtype == jnp.bool_
        assert bool(m[layer]["kernel"].all())
        assert m[layer]["kernel"].shape == small_params[layer]["kernel"].shape


def test_custom_filter_keeps_output_layer_dense(small_params):
    m = sj.dense_masks(small_params, filter_fn=lambda path, x: x.ndim >= 2 and not path.startswith("Dense_2/"))
    assert m["Dense_2"]["kernel"] is None
    assert m["Dense_0"]["kernel"] is not None


def test_apply_mask_zeroes_exactly_the_inactive_entries(small_params):
    m = sj.prune(jax.random.key(1), small_params, 0.5, score="random", distribution="uniform")
    out = sj.apply_mask(small_params, m)
    k, mk = out["Dense_1"]["kernel"], m["Dense_1"]["kernel"]
    assert bool((k[~mk] == 0).all())
    np.testing.assert_array_equal(k[mk], small_params["Dense_1"]["kernel"][mk])
    np.testing.assert_array_equal(out["Dense_1"]["bias"], small_params["Dense_1"]["bias"])


def test_check_masks_rejects_wrong_structure(small_params):
    m = sj.dense_masks(small_params)
    del m["Dense_2"]
    with pytest.raises(ValueError, match="structure"):
        sj.check_masks(small_params, m)


def test_check_masks_rejects_wrong_shape_and_dtype(small_params):
    m = sj.dense_masks(small_params)
    m["Dense_1"]["kernel"] = jnp.ones((3, 3), bool)
    with pytest.raises(ValueError, match=r"Dense_1/kernel.*\(3, 3\).*\(32, 32\)"):
        sj.check_masks(small_params, m)
    m["Dense_1"]["kernel"] = jnp.ones((32, 32), jnp.float32)
    with pytest.raises(ValueError, match="boolean"):
        sj.check_masks(small_params, m)


def test_topk_mask_tie_break_prefers_lower_flat_index():
    scores = {"w": jnp.array([[1.0, 3.0, 3.0], [3.0, 0.0, 2.0]])}
    # Three 3.0s tie for two places: flat indices 1 and 2 win over 3.
    m = sj.topk_mask(scores, {"w": 2})["w"]
    assert m.tolist() == [[False, True, True], [False, False, False]]
    m = sj.topk_mask(scores, {"w": 4})["w"]
    assert m.tolist() == [[False, True, True], [True, False, True]]


@pytest.mark.parametrize("k", [0, 1, 7, 12])
def test_topk_mask_exact_counts(k):
    scores = {"a": jax.random.normal(jax.random.key(k), (3, 4)), "b": None}
    m = sj.topk_mask(scores, {"a": k, "b": None})
    assert int(m["a"].sum()) == k and m["b"] is None


def test_topk_mask_rejects_bad_counts():
    with pytest.raises(ValueError, match=r"count=13 is not allowed; allowed: \[0, 12\]"):
        sj.topk_mask({"a": jnp.zeros((3, 4))}, {"a": 13})
    with pytest.raises(ValueError, match="count=-1"):
        sj.topk_mask({"a": jnp.zeros((3, 4))}, {"a": -1})


def test_topk_mask_jits_with_static_counts():
    scores = {"a": jax.random.normal(jax.random.key(0), (16, 8))}
    f = jax.jit(lambda s: sj.topk_mask(s, {"a": 20}))
    assert int(f(scores)["a"].sum()) == 20


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.2, float("nan")])
def test_bad_sparsity_is_rejected(bad):
    with pytest.raises(ValueError, match=r"sparsity=.*\[0, 1\)"):
        sj.target_active(100, bad)


def test_target_active_rounds_half_up():
    assert sj.target_active(71680, 0.9) == 7168
    assert sj.target_active(10, 0.25) == 8  # 7.5 rounds up
    assert sj.target_active(10, 0.0) == 10
    assert sj.target_active(3, 0.5) == 2  # 1.5 rounds up


def test_density_summary_counts():
    m = {"a": jnp.array([[True, False], [True, True]]), "b": None, "c": jnp.zeros((2, 3), bool)}
    s = sj.density_summary(m)
    assert s["a"] == {"active": 3, "size": 4, "density": 0.75}
    assert s["c"]["active"] == 0
    assert s["total"] == {"active": 3, "size": 10, "density": 0.3}
    assert sj.active_counts(m) == {"a": 3, "b": None, "c": 0}


def test_summaries_refuse_params(small_params):
    # Params passed where masks belong used to give a "density" of 0.948 for a dense network.
    with pytest.raises(ValueError, match=r"density_summary expects masks .*'Dense_0/bias'.*float32"):
        sj.density_summary(small_params)
    with pytest.raises(ValueError, match="active_counts expects masks"):
        sj.active_counts(small_params)
    assert sj.density_summary(sj.dense_masks(small_params))["total"]["density"] == 1.0


def test_matching_width_takes_the_nearest_count_and_the_narrower_on_a_tie():
    asked = []

    def count(w):  # a 1-hidden-layer net, 3 inputs and 2 outputs: 3w + w + 2w + 2 parameters
        asked.append(w)
        return 6 * w + 2

    assert sj.matching_width(count, 62, 256) == 10  # 6 * 10 + 2 = 62 exactly
    assert sj.matching_width(count, 65, 256) == 10  # 62 is 3 below, 68 is 3 above: the narrower
    assert sj.matching_width(count, 66, 256) == 11  # 68 is 2 above
    assert sj.matching_width(count, 1, 256) == 1 and sj.matching_width(count, 10**9, 256) == 256
    asked.clear()
    sj.matching_width(count, 6_000, 4096)
    assert len(asked) <= 2 * 12 + 2  # bisection, not a scan of 4096 widths
    with pytest.raises(ValueError, match=r"^max_width=0 is not allowed"):
        sj.matching_width(count, 10, 0)
