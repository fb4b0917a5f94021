"""agents.execution.sharding: the runs mesh, padding a batch to the device count, and laying runs out over a mesh."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from agents.execution import sharding


def test_one_device_needs_no_mesh_and_a_device_count_the_host_lacks_is_refused():
    n = len(jax.devices())
    assert sharding.runs_mesh(1) is None
    for bad in (0, n + 1, True, 1.0):
        with pytest.raises(ValueError, match=rf"^devices={bad!r} is not allowed; this host sees {n} \(use 1\.\.{n}\)"):
            sharding.runs_mesh(bad)


def test_padding_repeats_the_last_run_and_sharding_keeps_every_value_and_key():
    tree = {"x": jnp.arange(6.0).reshape(3, 2), "key": jax.random.split(jax.random.key(0), 3)}
    assert sharding.pad_runs(tree, 3, 3) is tree and sharding.pad_runs(tree, 3, 1) is tree
    padded = sharding.pad_runs(tree, 3, 2)  # 3 runs -> 4, the last run twice
    np.testing.assert_array_equal(padded["x"], [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [4.0, 5.0]])
    keys = jax.random.key_data(padded["key"])
    np.testing.assert_array_equal(keys[:3], jax.random.key_data(tree["key"]))
    np.testing.assert_array_equal(keys[3], keys[2])
    assert sharding.shard_runs(tree, None) is tree
    mesh = Mesh(np.asarray(jax.devices()[:1]), ("runs",))
    sharded = sharding.shard_runs(padded, mesh)
    assert sharded["x"].sharding == NamedSharding(mesh, PartitionSpec("runs"))
    assert jnp.issubdtype(sharded["key"].dtype, jax.dtypes.prng_key)
    back = sharding.gather_runs(sharded)
    np.testing.assert_array_equal(back["x"], padded["x"])
    np.testing.assert_array_equal(jax.random.key_data(back["key"]), keys)
