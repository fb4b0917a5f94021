"""sparse_jax.rules: drop-and-grow (SET, RigL) and gradual magnitude pruning (GMP), by hand and at every step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparse_jax as sj
from tests.helpers import bind_masks as _bound
from tests.helpers import mlp_params


def test_rigl_hand_worked():
    # One 3x3 layer, 4 active. sgd(0) leaves weights unchanged, so the drop is by |w| alone.
    w = jnp.array([[0.5, 0.0, -3.0], [0.0, 0.1, 0.0], [2.0, 0.0, 0.0]])
    mask = w != 0
    grads = jnp.array([[9.0, 1.0, 9.0], [-7.0, 9.0, 2.0], [9.0, 8.0, 0.5]])
    sched = sj.DSTSchedule(total_steps=10, delta_t=1, drop_fraction=0.6, end_fraction=1.0)
    # f(1) = 0.3 * (1 + cos(pi / 10)) = 0.585, n = floor(0.585 * 4) = 2.
    assert int(sched.drop_count(1, 4)) == 2
    tx = _bound(sj.rigl_sparse(optax.sgd(0.0), schedule=sched), {"w": mask})
    updates, state = tx.update({"w": grads}, tx.init({"w": w}), {"w": w})
    # Drop the two smallest |w| among active: 0.1 (1,1) and 0.5 (0,0).
    # Grow the two largest |grad| among previously inactive: 8.0 (2,1) and -7.0 (1,0).
    expected = jnp.array([[False, False, True], [True, False, False], [True, True, False]])
    np.testing.assert_array_equal(state.masks["w"], expected)
    new_w = optax.apply_updates({"w": w}, updates)["w"]
    np.testing.assert_array_equal(new_w, jnp.where(expected & mask, w, 0.0))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), density=st.floats(0.0, 1.0), fraction=st.floats(0.0, 1.0))
def test_property_drop_and_grow(seed, density, fraction):
    rng = np.random.default_rng(seed)
    m = rng.random((7, 9)) < density
    w, s = rng.normal(size=(7, 9)), rng.random((7, 9))
    n_drop = int(np.floor(fraction * m.sum()))
    new, grown = sj.drop_and_grow(jnp.asarray(m), jnp.asarray(w), jnp.asarray(s), n_drop)
    new, grown = np.asarray(new), np.asarray(grown)
    n = min(n_drop, (~m).sum())
    assert new.sum() == m.sum()
    assert (grown == (new & ~m)).all() and grown.sum() == n
    dropped = m & ~new
    assert dropped.sum() == n
    if n:  # dropped are the smallest |w| among active, grown the largest scores among inactive
        assert np.abs(w[dropped]).max() <= np.abs(w[m & new]).min(initial=np.inf)
        assert s[grown].min() >= s[~m & ~new].max(initial=-np.inf)


@pytest.mark.parametrize("bad", [jnp.nan, jnp.inf])
def test_rewiring_keeps_counts_with_non_finite_weights(bad):
    mask = jnp.array([True] * 6 + [False] * 6)
    scores = jnp.linspace(0.1, 0.9, 12)
    weights = jnp.arange(1.0, 13.0).at[:4].set(bad)
    new, grown = sj.drop_and_grow(mask, weights, scores.at[8].set(bad), 3)
    assert int(new.sum()) == 6 and int(grown.sum()) == 3
    new, _ = sj.drop_and_grow(~mask, jnp.full(12, bad), scores, 3)
    assert int(new.sum()) == 6


def test_a_schedule_without_mask_updates_warns_naming_it():
    # The default delta_t=1000 on a 300-step run leaves no mask update: SET would silently train as static.
    with pytest.warns(UserWarning, match=r"DSTSchedule\(total_steps=300.*no mask update.*SET trains as static"):
        sj.set_sparse(optax.adam(1e-3), schedule=sj.DSTSchedule(total_steps=300))
    with pytest.warns(UserWarning, match="RigL trains as static"):
        sj.sparse_optimizer("rigl", optax.adam(1e-3), schedule=sj.DSTSchedule(total_steps=300))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sj.rigl_sparse(optax.adam(1e-3), schedule=sj.DSTSchedule(total_steps=3000))  # t_end 2400: updates left


def _expected_counts(schedule, distribution, masks, t):
    """Closed form: the count after the last update step <= t, split by the distribution (dense before)."""
    leaves = [m for m in jax.tree.leaves(masks) if m is not None]
    n = sum(m.size for m in leaves)
    done = [u for u in schedule.update_steps() if u <= t]
    if not done:
        return n if distribution == "global" else [m.size for m in leaves]
    k = sj.target_active(n, schedule.sparsity_at(done[-1]))
    if distribution == "global":
        return k
    return sj.layer_counts(distribution, [np.zeros(m.shape) for m in leaves], k)


@pytest.mark.parametrize("distribution", ["uniform", "erk", "global"])
def test_counts_follow_the_schedule_at_every_step(distribution):
    params = mlp_params(jax.random.key(0), (6, 24, 24, 3))
    schedule = sj.GMPSchedule(total_steps=50, sparsity=0.8, start_fraction=0.2, end_fraction=0.8, delta_t=7)
    tx = sj.gmp_sparse(optax.adam(1e-2), schedule=schedule, distribution=distribution)
    state = tx.init(params)  # dense masks: GMP starts dense
    update = jax.jit(tx.update)
    grads_of = lambda t: jax.tree.map(
        lambda p: jnp.cos(t + jnp.arange(p.size, dtype=jnp.float32)).reshape(p.shape), params
    )
    prev = sj.get_masks(state)
    for t in range(1, schedule.total_steps + 1):
        updates, state = update(grads_of(t), state, params)
        params = optax.apply_updates(params, updates)
        masks = sj.get_masks(state)
        counts = [int(m.sum()) for m in jax.tree.leaves(masks)]
        expected = _expected_counts(schedule, distribution, masks, t)
        assert (sum(counts) if distribution == "global" else counts) == expected, t
        # The checks on the host: boolean indexing of device arrays would compile a program per shape.
        host = jax.device_get((masks, params, state.inner_state[0].mu, state.inner_state[0].nu))
        for k, m in host[0].items():
            m = m["kernel"]
            assert (host[1][k]["kernel"][~m] == 0).all()  # pruned weights are exactly 0
            assert not (m & ~np.asarray(prev[k]["kernel"])).any()  # nothing regrows
            assert (host[2][k]["kernel"][~m] == 0).all() and (host[3][k]["kernel"][~m] == 0).all()
        prev = masks
    assert sum(counts) == sj.target_active(sum(m.size for m in jax.tree.leaves(masks)), 0.8)


def test_hand_worked_prunes_the_smallest_magnitudes():
    # One 2x4 layer; sgd(0) keeps the weights, so the cut is by |w| alone: keep the 4 largest.
    w = jnp.array([[0.5, -3.0, 0.1, 2.0], [-0.2, 1.0, -4.0, 0.3]])
    schedule = sj.GMPSchedule(total_steps=10, sparsity=0.5, start_fraction=0.1, end_fraction=0.1)
    assert schedule.update_steps() == [1]
    tx = sj.gmp_sparse(optax.sgd(0.0), schedule=schedule, distribution="uniform")
    updates, state = tx.update({"w": jnp.ones_like(w)}, tx.init({"w": w}), {"w": w})
    expected = jnp.array([[False, True, False, True], [False, True, True, False]])
    np.testing.assert_array_equal(state.masks["w"], expected)
    np.testing.assert_array_equal(optax.apply_updates({"w": w}, updates)["w"], jnp.where(expected, w, 0.0))


def test_jit_vmap_one_program_for_every_step():
    params = mlp_params(jax.random.key(0), (6, 24, 24, 3))
    schedule = sj.GMPSchedule(total_steps=40, sparsity=0.9, delta_t=5)
    tx = sj.gmp_sparse(optax.adam(1e-2), schedule=schedule)
    traces = []

    def step(p, s, i):
        traces.append(None)
        g = jax.tree.map(lambda x: jnp.sin(x * 1e3 + i), p)
        u, s = tx.update(g, s, p, step=i)
        return optax.apply_updates(p, u), s

    batched = jax.tree.map(lambda x: jnp.stack([x, 2 * x]), params)
    states = jax.vmap(tx.init)(batched)
    run = jax.jit(jax.vmap(step, in_axes=(0, 0, None)))
    for i in range(schedule.total_steps):
        batched, states = run(batched, states, jnp.int32(i))
    assert len(traces) == 1  # the step index is traced: no recompilation per step
    total = sum(m.size for m in jax.tree.leaves(sj.get_masks(tx.init(params))))
    for r in range(2):
        active = sum(int(m[r].sum()) for m in jax.tree.leaves(sj.get_masks(states)))
        assert active == sj.target_active(total, 0.9)


def test_gmp_errors():
    with pytest.raises(ValueError, match=r"end_fraction=0.1 is not allowed; allowed: \[0.2, 1\]"):
        sj.GMPSchedule(100, 0.9, start_fraction=0.2, end_fraction=0.1)
    with pytest.raises(ValueError, match=r"sparsity=1.0 is not allowed"):
        sj.GMPSchedule(100, 1.0)
    with pytest.raises(ValueError, match="needs a GMPSchedule"):
        sj.gmp_sparse(optax.adam(1e-3), schedule=sj.DSTSchedule(100))
    with pytest.raises(ValueError, match="distribution='erdos' is not allowed"):
        sj.gmp_sparse(optax.adam(1e-3), schedule=sj.GMPSchedule(100, 0.5), distribution="erdos")
    tx = sj.sparse_optimizer("gmp", optax.adam(1e-3), schedule=sj.GMPSchedule(100, 0.5))
    assert sj.get_masks(tx.init({"w": jnp.ones((3, 3))}))["w"].all()


@pytest.mark.parametrize("distribution", ["erk", "global"])
def test_one_gmp_update_serves_states_of_several_sparsities(distribution):
    """A sweep vmaps GMP runs of several sparsities through one program: the table is state, the bound the widest."""
    params = mlp_params(jax.random.key(0), (6, 24, 24, 3))
    own = {s: sj.GMPSchedule(total_steps=30, sparsity=s, delta_t=4) for s in (0.5, 0.9)}
    txs = {s: sj.gmp_sparse(optax.adam(1e-2), schedule=own[s], distribution=distribution) for s in own}
    shared = sj.gmp_sparse(optax.adam(1e-2), schedule=own[0.5], distribution=distribution, bound_schedules=(own[0.9],))
    grads = jax.tree.map(lambda p: jnp.sin(jnp.arange(p.size, dtype=jnp.float32)).reshape(p.shape), params)
    states = {s: txs[s].init(params) for s in own}
    batch = jax.tree.map(lambda *xs: jnp.stack(xs), *states.values())  # each state carries its own table
    step = jax.jit(jax.vmap(shared.update, in_axes=(None, 0, None)))
    alone = {s: jax.jit(txs[s].update) for s in own}
    for _ in range(own[0.5].total_steps):
        _, batch = step(grads, batch, params)
        for s in own:
            _, states[s] = alone[s](grads, states[s], params)
    for i, s in enumerate(own):
        for a, b in zip(jax.tree.leaves(sj.get_masks(states[s])), jax.tree.leaves(batch.masks)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b)[i])
        active = sum(int(m.sum()) for m in jax.tree.leaves(sj.get_masks(states[s])))
        assert active == sj.target_active(sum(m.size for m in jax.tree.leaves(sj.get_masks(states[s]))), s)
    with pytest.raises(ValueError, match="bound_schedules=.* is not allowed"):
        sj.gmp_sparse(optax.adam(1e-2), schedule=own[0.5], bound_schedules=(sj.GMPSchedule(30, 0.9, delta_t=5),))
