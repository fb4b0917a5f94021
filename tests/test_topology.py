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


def test_reachability_through_a_residual_block_counts_the_skip_worked_example():
    """Stream of 2 units after a 2x2 embedding that keeps only input 0 -> unit 0; a block whose branch
    sends unit 0 to unit 1 through one hidden unit; an output layer reading unit 1 only.

    Without the block nothing reaches the output (unit 1 is fed by no input). With it, input 0 -> unit 0
    -> (branch) -> unit 1 -> output: 1 of 2 input-output pairs. With the branch cut, the skip alone
    carries unit 0 on, which the output does not read: 0 pairs. With an identity embedding and a cut
    branch the skip carries both units: an output reading both is reached from both inputs.
    """
    embed = jnp.array([[True, False], [False, False]])
    up, down = jnp.array([[True], [False]]), jnp.array([[False, True]])
    out = jnp.array([[False], [True]])
    assert sj.reachability([embed, out]).pair_fraction == 0.0
    r = sj.reachability([embed, sj.Residual([up, down]), out])
    assert (r.pair_fraction, r.inputs_reaching_output, r.outputs_reached, r.n_in, r.n_out) == (0.5, 1, 1, 2, 1)
    cut = sj.Residual([jnp.zeros((2, 1), bool), jnp.zeros((1, 2), bool)])
    assert sj.reachability([embed, cut, out]).pair_fraction == 0.0
    assert sj.reachability([jnp.eye(2, dtype=bool), cut, jnp.ones((2, 1), bool)]).pair_fraction == 1.0
    with pytest.raises(ValueError, match="maps 2 units to 3; it must map them back"):
        sj.reachability([embed, sj.Residual([jnp.ones((2, 3), bool)]), out])
    with pytest.raises(ValueError, match="needs a kernel before it"):
        sj.reachability([sj.Residual([up, down]), out])


def test_reachability_of_a_simba_critic_follows_its_blocks():
    """A SimBa Q-network's masks: one chain (embedding, blocks, output); cutting every block's branch leaves
    the skip path, so reachability is that of the embedding and output alone."""
    from agents.algorithms.networks import SimBa

    params = SimBa((4, 4), 1).init(jax.random.key(0), jnp.ones((1, 3)))["params"]
    dense = sj.dense_masks(params)
    stages = sj.kernel_stages(dense)
    assert len(stages) == 1 and [type(s).__name__ for s in stages[0]] == ["int", "Residual", "Residual", "int"]
    assert sj.reachability(dense).pair_fraction == 1.0
    cut = jax.tree.map(lambda m: m, dense)
    for block in ("ResidualBlock_0", "ResidualBlock_1"):
        cut[block]["Dense_0"]["kernel"] = jnp.zeros_like(cut[block]["Dense_0"]["kernel"])
    assert sj.reachability(cut).pair_fraction == 1.0  # the skips carry the stream
    cut["Dense_1"]["kernel"] = jnp.zeros_like(cut["Dense_1"]["kernel"])
    assert sj.reachability(cut).pair_fraction == 0.0
