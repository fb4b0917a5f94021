import math

import jax
import jax.numpy as jnp
import pytest

import sparse_jax as sj


def test_layer_topology_hand_worked():
    m = jnp.array(
        [
            [True, False, False],
            [True, False, True],
            [False, False, False],
            [False, False, True],
        ]
    )
    (t,) = sj.layer_topology({"k": m, "b": None})
    assert (t.name, t.shape, t.size, t.active) == ("k", (4, 3), 12, 4)
    assert t.density == pytest.approx(1 / 3)
    assert t.proxy == pytest.approx(min(12, 7 * math.log(7) / 2))
    assert t.need == pytest.approx(max(0.0, t.proxy - 4))
    assert t.zero_fan_in == 1  # output column 1 has no input
    assert t.zero_fan_out == 1  # input row 2 feeds nothing


def test_reachability_hand_worked():
    # in(3) -> hidden(2) -> out(2). Input 0 and 1 feed hidden 0, which feeds output 1 only;
    # input 2 feeds hidden 1, which feeds nothing.
    k1 = jnp.array([[True, False], [True, False], [False, True]])
    k2 = jnp.array([[False, True], [False, False]])
    r = sj.reachability([k1, k2])
    assert r == sj.Reachability(pair_fraction=2 / 6, inputs_reaching_output=2, outputs_reached=1, n_in=3, n_out=2)


def test_reachability_of_mlp_pytree(small_params):
    dense = sj.dense_masks(small_params)
    assert sj.reachability(dense).pair_fraction == 1.0
    cut = dict(dense)
    cut["Dense_1"] = {"kernel": jnp.zeros((32, 32), bool), "bias": None}
    r = sj.reachability(cut)
    assert (r.pair_fraction, r.inputs_reaching_output, r.outputs_reached) == (0.0, 0, 0)


def test_reachability_rejects_unchained_kernels():
    with pytest.raises(ValueError, match="does not chain"):
        sj.reachability([jnp.ones((3, 4), bool), jnp.ones((5, 2), bool)])
    with pytest.raises(ValueError, match="at least one"):
        sj.reachability([])


def test_topology_table_lists_every_layer(small_params):
    masks = sj.prune(jax.random.key(0), small_params, 0.9, score="random")
    table = sj.topology_table(masks, title="static")
    assert table.splitlines()[0] == "static"
    for name in ("Dense_0/kernel", "Dense_1/kernel", "Dense_2/kernel", "total"):
        assert name in table
