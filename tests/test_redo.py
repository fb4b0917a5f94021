"""sparse_jax.redo: which units are dormant, what recycling one changes, which optimizer moments it resets."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sparse_jax as sj

# 2 -> 3 -> 2 -> 1: hidden units are Dense_0's 3 outputs and Dense_1's 2 outputs.
PARAMS = {
    "Dense_0": {"kernel": jnp.arange(1.0, 7.0).reshape(2, 3), "bias": jnp.array([1.0, 2.0, 3.0])},
    "Dense_1": {"kernel": jnp.arange(1.0, 7.0).reshape(3, 2), "bias": jnp.array([1.0, 2.0])},
    "Dense_2": {"kernel": jnp.array([[1.0], [2.0]]), "bias": jnp.array([1.0])},
}
FRESH = jax.tree.map(lambda x: -jnp.ones_like(x), PARAMS)
# Dense_0's kernel: entry (0, 1) pruned; Dense_1's kernel: entry (1, 1) pruned.
MASKS = {
    "Dense_0": {"kernel": jnp.array([[True, False, True], [True, True, True]]), "bias": None},
    "Dense_1": {"kernel": jnp.array([[True, True], [True, False], [True, True]]), "bias": None},
    "Dense_2": {"kernel": jnp.ones((2, 1), bool), "bias": None},
}
MIDDLE = {"Dense_0/kernel": jnp.array([False, True, False])}  # unit 1 of the first hidden layer


def test_dormant_units_threshold_is_relative_to_the_layer_mean():
    scores = {"a/kernel": jnp.array([0.0, 0.1, 1.9, 2.0]), "b/kernel": jnp.zeros(3)}
    out = sj.dormant_units(scores, tau=0.1)  # layer a's mean is 1.0: units at most 0.1 are dormant
    assert out["a/kernel"].tolist() == [True, True, False, False]
    assert out["b/kernel"].tolist() == [True, True, True]  # a layer that never fires is all dormant
    assert sj.dormant_units(scores, tau=0.0)["a/kernel"].tolist() == [True, False, False, False]
    with pytest.raises(ValueError, match="tau=-0.1"):
        sj.dormant_units(scores, tau=-0.1)


def test_recycling_a_unit_under_a_mask_hand_worked():
    new, changed = sj.recycle(PARAMS, FRESH, MASKS, MIDDLE)
    # Incoming: column 1 of Dense_0's kernel takes fresh values on its active entry (row 1) only;
    # the pruned entry (0, 1) is left as it was (PARAMS is not masked here).
    assert new["Dense_0"]["kernel"].tolist() == [[1.0, 2.0, 3.0], [4.0, -1.0, 6.0]]
    assert new["Dense_0"]["bias"].tolist() == [1.0, -1.0, 3.0]
    # Outgoing: row 1 of Dense_1's kernel is zeroed where active; (1, 1) is pruned and left as it was.
    assert new["Dense_1"]["kernel"].tolist() == [[1.0, 2.0], [0.0, 4.0], [5.0, 6.0]]
    assert new["Dense_1"]["bias"].tolist() == [1.0, 2.0] and new["Dense_2"] == PARAMS["Dense_2"]
    assert changed["Dense_0"]["kernel"].tolist() == [[False, False, False], [False, True, False]]
    assert changed["Dense_0"]["bias"].tolist() == [False, True, False]
    assert changed["Dense_1"]["kernel"].tolist() == [[False, False], [True, False], [False, False]]
    assert not any(bool(x.any()) for x in jax.tree.leaves(changed["Dense_2"]))


def test_recycling_keeps_pruned_entries_zero_and_the_function_of_the_network():
    params = sj.apply_mask(PARAMS, MASKS)
    new, _ = sj.recycle(params, FRESH, MASKS, {"Dense_0/kernel": jnp.array([True, False, True])})
    for leaf, mask in zip(jax.tree.leaves(new), jax.tree.leaves(MASKS, is_leaf=sj.is_none), strict=True):
        if mask is not None:
            assert not bool(jnp.any(jnp.where(mask, 0.0, leaf)))

    def forward(p, x):
        h = jax.nn.relu(x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
        h = jax.nn.relu(h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"])
        return h @ p["Dense_2"]["kernel"] + p["Dense_2"]["bias"]

    # Zeroed outgoing weights: the recycled units no longer reach the output, whatever they compute now.
    x = jax.random.normal(jax.random.key(0), (5, 2))
    without = jax.tree.map(lambda v: v, params)
    without["Dense_1"]["kernel"] = params["Dense_1"]["kernel"] * jnp.array([[0.0], [1.0], [0.0]])
    np.testing.assert_allclose(forward(new, x), forward(without, x), rtol=1e-6)


def test_every_chain_of_a_twin_critic_and_the_second_hidden_layer():
    twin = {"q1": PARAMS, "q2": jax.tree.map(lambda x: 2 * x, PARAMS)}
    fresh = {"q1": FRESH, "q2": FRESH}
    new, changed = sj.recycle(twin, fresh, None, {"q2/Dense_1/kernel": jnp.array([True, False])})
    assert jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), new["q1"], twin["q1"]) == jax.tree.map(
        lambda _: True, PARAMS
    )
    assert new["q2"]["Dense_1"]["kernel"][:, 0].tolist() == [-1.0, -1.0, -1.0]
    assert new["q2"]["Dense_1"]["bias"].tolist() == [-1.0, 4.0]
    assert new["q2"]["Dense_2"]["kernel"].tolist() == [[0.0], [4.0]]
    assert int(sum(jnp.sum(x) for x in jax.tree.leaves(changed))) == 3 + 1 + 1


def test_moments_of_recycled_weights_reset_and_the_rest_kept():
    tx = sj.static_sparse(optax.adam(0.1))
    grads = jax.tree.map(jnp.ones_like, PARAMS)
    state = sj.with_masks(tx.init(PARAMS), MASKS)
    _, state = tx.update(grads, state, PARAMS)
    _, changed = sj.recycle(PARAMS, FRESH, MASKS, MIDDLE)
    reset = sj.reset_moments(state, changed)
    adam = reset.inner_state[0]
    for moments in (adam.mu, adam.nu):
        assert moments["Dense_0"]["kernel"].tolist()[1][1] == 0.0
        assert moments["Dense_1"]["kernel"].tolist()[1] == [0.0, 0.0]  # (1, 1) pruned: its moment was 0
        assert moments["Dense_0"]["bias"].tolist()[1] == 0.0
        assert float(moments["Dense_0"]["kernel"][1][0]) > 0 and float(moments["Dense_2"]["kernel"][0][0]) > 0
    assert int(adam.count) == 1  # one count for every weight: kept
    same = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), sj.get_masks(reset), sj.get_masks(state))
    assert all(jax.tree.leaves(same))  # the masks are not changed


def test_recycle_jits_and_vmaps_over_runs():
    stacked = jax.tree.map(lambda x: jnp.stack([x, 3 * x]), PARAMS)
    dormant = {"Dense_0/kernel": jnp.array([[False, True, False], [True, False, False]])}
    fn = jax.jit(jax.vmap(lambda p, d: sj.recycle(p, FRESH, MASKS, d)[0]))
    out = fn(stacked, dormant)
    assert out["Dense_0"]["bias"].tolist() == [[1.0, -1.0, 3.0], [-1.0, 6.0, 9.0]]


def test_bad_dormant_keys_and_shapes_are_refused():
    with pytest.raises(ValueError, match=r"dormant='Dense_2/kernel' is not allowed.*Dense_0/kernel.*Dense_1/kernel"):
        sj.recycle(PARAMS, FRESH, None, {"Dense_2/kernel": jnp.array([True])})  # output units are not hidden
    with pytest.raises(ValueError, match=r"has shape \(2,\); Dense_0/kernel has 3 units"):
        sj.recycle(PARAMS, FRESH, None, {"Dense_0/kernel": jnp.array([True, False])})
    with pytest.raises(ValueError, match="fresh must have the structure of params"):
        sj.recycle(PARAMS, {"Dense_0": FRESH["Dense_0"]}, None, MIDDLE)


def test_a_weight_between_two_recycled_units_takes_the_fresh_value_in_any_order():
    both = {"Dense_1/kernel": jnp.array([True, False]), "Dense_0/kernel": jnp.array([False, True, False])}
    new, _ = sj.recycle(PARAMS, FRESH, None, both)
    reverse, _ = sj.recycle(PARAMS, FRESH, None, dict(reversed(list(both.items()))))
    same = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), new, reverse)
    assert all(jax.tree.leaves(same))
    # Row 1 (leaving unit 1 of layer 1) is zeroed, then column 0 (entering unit 0 of layer 2) is fresh.
    assert new["Dense_1"]["kernel"].tolist() == [[-1.0, 2.0], [-1.0, 0.0], [-1.0, 6.0]]
    assert new["Dense_2"]["kernel"].tolist() == [[0.0], [2.0]]


def test_reset_moments_leaves_masks_alone_when_every_leaf_is_prunable():
    """Params of kernels only: the masks have the params' structure and shapes, and must not be touched."""
    params = {"a": jnp.ones((2, 3)), "b": jnp.ones((3, 1))}
    masks = {"a": jnp.array([[True, True, False], [True, True, True]]), "b": jnp.ones((3, 1), bool)}
    tx = sj.static_sparse(optax.adam(0.1))
    state = sj.with_masks(tx.init(params), masks)
    _, state = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
    changed = {"a": jnp.ones((2, 3), bool), "b": jnp.zeros((3, 1), bool)}
    reset = sj.reset_moments(state, changed)
    assert all(jax.tree.leaves(jax.tree.map(lambda x, y: bool(jnp.array_equal(x, y)), sj.get_masks(reset), masks)))
    assert not reset.inner_state[0].mu["a"].any() and reset.inner_state[0].mu["b"].all()
