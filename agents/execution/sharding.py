"""Sharding a batch of runs over devices: one 1-D mesh, the runs axis split across it.

Every process computes the whole batch's initial state identically, so each
one fills the shards it can address; this also works across hosts (after
``jax.distributed.initialize()``).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def runs_mesh(num_devices: int | None = None) -> Mesh | None:
    """A 1-D mesh (axis ``"runs"``) over the first ``num_devices`` devices; ``None`` for one device.

    Default: every device (of every process, after ``jax.distributed.initialize()``).
    """
    devices = jax.devices()
    n = len(devices) if num_devices is None else num_devices
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(devices):
        raise ValueError(
            f"devices={num_devices!r} is not allowed; this host sees {len(devices)} (use 1..{len(devices)})."
        )
    return None if n == 1 else Mesh(np.asarray(devices[:n]), ("runs",))


def pad_runs(tree: Any, num_runs: int, multiple: int) -> Any:
    """Repeat the last run until the runs axis is a multiple of ``multiple`` (padding is dropped later)."""
    pad = -num_runs % multiple
    return tree if pad == 0 else _repeat_last(tree, pad)


@functools.partial(jax.jit, static_argnums=1)
def _repeat_last(tree: Any, pad: int) -> Any:
    # One program for the whole tree: op by op, every leaf shape would compile its own.
    return jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]), tree)


def shard_runs(tree: Any, mesh: Mesh | None) -> Any:
    """Lay the leading (runs) axis of every leaf out across ``mesh``.

    Every process holds the whole batch (it is computed identically
    everywhere), so each one fills the shards it can address; this also works
    across hosts.
    """
    if mesh is None:
        return tree
    sharding = NamedSharding(mesh, PartitionSpec("runs"))

    def put(x):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(put(jax.random.key_data(x)))
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])

    return jax.tree.map(put, tree)


def gather_runs(tree: Any) -> Any:
    """Fetch a (possibly sharded, possibly multi-host) batch to numpy on every process."""
    if jax.process_count() > 1:
        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)
