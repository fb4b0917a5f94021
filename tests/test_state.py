"""sparse_jax.state: masks and keys put into, and read from, the state of any optax chain."""

import jax
import jax.numpy as jnp
import optax
import pytest

import sparse_jax as sj
from tests.helpers import static_sparse_mlp as _setup


def test_get_masks_through_chains():
    params, masks = _setup()
    tx = optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.named_chain(("sparse", sj.static_sparse(optax.adam(1e-3)))),
    )
    got = sj.get_masks(sj.with_masks(tx.init(params), masks))
    assert all(bool((a == b).all()) for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(masks)))
    with pytest.raises(ValueError, match="found 0"):
        sj.get_masks(optax.adam(1e-3).init(params))


def test_with_masks_gives_seeds_their_own_draws_from_one_transform():
    params, masks = _setup()
    sched = sj.DSTSchedule(total_steps=100, delta_t=1)
    tx = sj.set_sparse(optax.adam(1e-2), schedule=sched)  # built once, outside vmap
    grads = jax.tree.map(jnp.ones_like, params)

    def one(key, reseed):
        state = sj.with_masks(tx.init(params), masks, key=key if reseed else jax.random.key(0))
        return tx.update(grads, state, params)[1].masks["Dense_1"]["kernel"]

    keys = jax.random.split(jax.random.key(1), 2)
    same = jax.vmap(lambda k: one(k, False))(keys)
    differ = jax.vmap(lambda k: one(k, True))(keys)
    assert bool((same[0] == same[1]).all())
    assert bool((differ[0] != differ[1]).any())
