"""agents.algorithms.types: what every algorithm's state shares (Polyak targets kept sparse, masks in the optimizer)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

import sparse_jax as sj
from agents.algorithms.types import NetworkMasks, polyak, sparse_opt_state


@struct.dataclass
class _State(NetworkMasks):
    actor_opt: optax.OptState
    critic_opt: optax.OptState


def test_polyak_moves_tau_of_the_way_and_keeps_the_target_exactly_sparse():
    target = {"w": jnp.array([[1.0, 2.0], [3.0, 4.0]]), "b": jnp.array([1.0, 1.0])}
    online = {"w": jnp.array([[5.0, 6.0], [7.0, 8.0]]), "b": jnp.array([5.0, 9.0])}
    masks = {"w": jnp.array([[True, False], [False, True]]), "b": None}
    new = polyak(target, online, 0.25, masks)  # 0.25 * online + 0.75 * target, then masked
    np.testing.assert_array_equal(new["w"], [[2.0, 0.0], [0.0, 5.0]])
    np.testing.assert_array_equal(new["b"], [2.0, 3.0])  # a dense leaf is not masked


def test_sparse_opt_state_holds_the_masks_and_the_key_that_network_masks_read():
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    actor = sj.SparseInit(params, {"w": jnp.eye(2, 3, dtype=bool), "b": None}, sj.dense_masks(params))
    critic = sj.SparseInit(params, sj.dense_masks(params), sj.dense_masks(params))
    tx = sj.set_sparse(optax.adam(1e-3), schedule=sj.DSTSchedule(100, delta_t=10))
    state = _State(sparse_opt_state(tx, actor, jax.random.key(1)), sparse_opt_state(tx, critic, jax.random.key(2)))
    assert state.actor_masks["b"] is None and state.critic_masks["w"].all()
    np.testing.assert_array_equal(state.actor_masks["w"], [[True, False, False], [False, True, False]])
    np.testing.assert_array_equal(jax.random.key_data(state.actor_opt.key), jax.random.key_data(jax.random.key(1)))
