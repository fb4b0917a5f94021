"""sparse_jax.eaude: the sparsity ladder, pruning to a level, selection and the pruned copies (worked by hand)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparse_jax as sj
from sparse_jax import eaude


def _net():
    """Two kernels (3x4 = 12 and 4x2 = 8 weights) with distinct magnitudes, and a dense bias."""
    w0 = jnp.asarray(np.random.RandomState(0).permutation(12) + 1.0).reshape(3, 4)
    w1 = -jnp.asarray(np.random.RandomState(1).permutation(8) + 0.5).reshape(4, 2)
    params = {"a": {"kernel": w0, "bias": jnp.ones(4)}, "b": {"kernel": w1, "bias": jnp.ones(2)}}
    return params, sj.dense_masks(params)


def _counts(masks):
    return [int(m.sum()) for m in jax.tree.leaves(masks)]


def test_ladder_levels_keep_a_geometric_share_with_exact_rounded_counts():
    params, masks = _net()
    lad = eaude.ladder(masks, "uniform", increment=0.25, span=2, max_sparsity=0.8)
    # Level j keeps round(20 * 0.75^j) of 20 weights: 20, 15, 11.25 -> 11, 8.4 -> 8, 6.3 -> 6, 4.7 -> 5
    # (sparsity 0.75 <= 0.8; level 6 would be 0.82). Uniform splits each total 12:8 by layer size.
    assert lad.counts.sum(axis=1).tolist() == [20, 15, 11, 8, 6, 5]
    assert lad.counts[:, 0].tolist() == [12, 9, 7, 5, 4, 3]
    assert lad.max_level == 5 and lad.sparsity(3) == pytest.approx(0.6)
    # A step of at most 2 levels prunes at most 12 - 7 = 5 of layer a and 8 - 4 = 4 of layer b.
    assert lad.bounds == (5, 4) and not lad.ranked_globally
    glob = eaude.ladder(masks, "global", increment=0.25, span=1, max_sparsity=0.8)
    assert glob.counts[:, 0].tolist() == [20, 15, 11, 8, 6, 5] and glob.bounds == (5,) and glob.ranked_globally
    erk = eaude.ladder(masks, "erk", increment=0.1, span=4)
    assert (np.diff(erk.counts, axis=0) <= 0).all()  # nothing regrows from a level to the next
    assert erk.counts.sum(axis=1)[:3].tolist() == [20, 18, 16] and erk.counts[0].tolist() == [12, 8]


def test_level_at_is_the_sparsest_level_under_the_ceiling():
    lad = eaude.ladder(_net()[1], "uniform", increment=0.25, span=1, max_sparsity=0.8)
    assert [eaude.level_at(lad, s) for s in (0.0, 0.24, 0.25, 0.6, 0.79)] == [0, 0, 1, 3, 5]


def test_prune_to_level_removes_the_smallest_magnitudes_to_exact_counts():
    params, masks = _net()
    lad = eaude.ladder(masks, "uniform", increment=0.25, span=2, max_sparsity=0.8)
    p, m = eaude.prune_to_level(params, masks, lad, jnp.int32(2))
    assert _counts(m) == [7, 4]
    a = np.abs(np.asarray(params["a"]["kernel"]))
    assert np.asarray(m["a"]["kernel"]).tolist() == (a > 5).tolist()  # |w| in 1..12: 1..5 pruned
    b = np.abs(np.asarray(params["b"]["kernel"]))
    assert np.asarray(m["b"]["kernel"]).tolist() == (b > 4).tolist()  # |w| in 0.5..7.5: 4 smallest pruned
    assert m["a"]["bias"] is None and (p["a"]["bias"] == 1).all()
    assert not np.asarray(p["a"]["kernel"])[~np.asarray(m["a"]["kernel"])].any()  # exactly 0 where pruned
    # Two more levels from there: the kept set only shrinks, and counts are the ladder's.
    p4, m4 = eaude.prune_to_level(p, m, lad, jnp.int32(4))
    assert (
        _counts(m4) == lad.counts[4].tolist()
        and not (np.asarray(m4["a"]["kernel"]) & ~np.asarray(m["a"]["kernel"])).any()
    )


def test_prune_to_level_ranks_all_layers_together_under_global():
    params, masks = _net()
    lad = eaude.ladder(masks, "global", increment=0.25, span=1, max_sparsity=0.8)
    _, m = eaude.prune_to_level(params, masks, lad, jnp.int32(1))
    # 5 of 20 pruned: the smallest |w| over both layers are 0.5, 1, 1.5, 2 and 2.5: two of a, three of b.
    assert _counts(m) == [10, 5]


def test_select_winner_takes_the_smallest_loss_ties_low_nan_never():
    assert int(eaude.select_winner(jnp.array([2.0, 0.5, 1.0]))) == 1
    assert int(eaude.select_winner(jnp.array([1.0, 1.0, 3.0]))) == 0
    assert int(eaude.select_winner(jnp.array([jnp.nan, 9.0, jnp.inf]))) == 1
    batched = jax.vmap(eaude.select_winner)(jnp.array([[3.0, 2.0], [1.0, 2.0]]))
    assert batched.tolist() == [1, 0]


def test_offspring_are_the_network_and_its_pruned_copies_up_to_the_ceiling():
    params, masks = _net()
    lad = eaude.ladder(masks, "uniform", increment=0.25, span=3, max_sparsity=0.8)
    p1, m1 = eaude.prune_to_level(params, masks, lad, jnp.int32(1))
    p, m, levels = jax.jit(lambda p, m, lv: eaude.offspring(p, m, lv, lad, 4, jnp.int32(3)))(p1, m1, jnp.int32(1))
    assert levels.tolist() == [1, 2, 3, 3]  # capped at the ceiling's level
    member = lambda tree, k: jax.tree.map(lambda x: x[k], tree)
    assert all((a == b).all() for a, b in zip(jax.tree.leaves(member(p, 0)), jax.tree.leaves(p1)))
    for k, level in enumerate(levels.tolist()):
        assert _counts(member(m, k)) == lad.counts[level].tolist()
        kept, parent = np.asarray(member(m, k)["a"]["kernel"]), np.asarray(m1["a"]["kernel"])
        assert not (kept & ~parent).any()
        assert not np.asarray(member(p, k)["a"]["kernel"])[~kept].any()
    _, _, shifted = eaude.offspring(p1, m1, jnp.int32(1), lad, 3, jnp.int32(5), offset=1)
    assert shifted.tolist() == [2, 3, 4]  # with an offset every member prunes


def test_ladder_and_offspring_refuse_bad_settings():
    masks = _net()[1]
    with pytest.raises(ValueError, match="increment"):
        eaude.ladder(masks, "uniform", increment=0.0, span=1)
    with pytest.raises(ValueError, match="increment"):
        eaude.ladder(masks, "uniform", increment=1.0, span=1)
    with pytest.raises(ValueError, match="distribution"):
        eaude.ladder(masks, "random", increment=0.1, span=1)
    with pytest.raises(ValueError, match="span"):
        eaude.ladder(masks, "uniform", increment=0.1, span=-1)
    lad = eaude.ladder(masks, "uniform", increment=0.1, span=1)
    with pytest.raises(ValueError, match="members"):
        eaude.offspring(_net()[0], masks, jnp.int32(0), lad, 0, jnp.int32(3))
