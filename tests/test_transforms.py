import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparse_jax as sj
from tests.helpers import mlp_params

INNERS = {
    "adam": lambda: optax.adam(1e-2),
    "adamw": lambda: optax.adamw(1e-2, weight_decay=0.5),
    "clip_adam": lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2)),
    "inject_adam": lambda: optax.inject_hyperparams(optax.adam)(learning_rate=1e-2),
}


def _setup(seed=0, sparsity=0.8):
    params = mlp_params(jax.random.key(seed), (6, 24, 24, 3))
    init = sj.sparse_init(jax.random.key(seed + 1), params, sparsity, method="static", score="random")
    return init.params, init.masks


def _loss(params, x):
    h = jax.nn.relu(x @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"])
    h = jax.nn.relu(h @ params["Dense_1"]["kernel"] + params["Dense_1"]["bias"])
    y = h @ params["Dense_2"]["kernel"] + params["Dense_2"]["bias"]
    return jnp.mean((y - jnp.sin(x[:, :3])) ** 2)


def _bound(tx, masks, key=None):
    """``tx`` whose ``init`` also puts ``masks`` (and ``key``) into the state, as ``with_masks`` does."""
    return optax.GradientTransformationExtraArgs(lambda p: sj.with_masks(tx.init(p), masks, key=key), tx.update)


def _counts(masks):
    return jax.tree.map(lambda m: int(m.sum()), masks)


def _run(tx, params, steps, seed=0, scale=1.0):
    """Train ``steps`` steps; return per-step (params, masks, state)."""
    state = tx.init(params)
    update = jax.jit(tx.update)
    grad = jax.jit(jax.grad(_loss))
    out = []
    for t in range(steps):
        x = jax.random.normal(jax.random.fold_in(jax.random.key(seed), t), (32, 6))
        g = jax.tree.map(lambda a: a * scale, grad(params, x))
        u, state = update(g, state, params)
        params = optax.apply_updates(params, u)
        out.append((params, sj.get_masks(state), state))
    return out


def _pruned_are_zero(params, masks):
    return all(
        bool((p[~m] == 0).all())
        for m, p in zip(jax.tree.leaves(masks), [params[k]["kernel"] for k in ("Dense_0", "Dense_1", "Dense_2")])
    )


@pytest.mark.parametrize("inner", INNERS)
@pytest.mark.parametrize("method", ["static", "set", "rigl"])
def test_counts_constant_and_pruned_exactly_zero(inner, method):
    params, masks = _setup()
    sched = sj.DSTSchedule(total_steps=40, delta_t=4, drop_fraction=0.5)
    tx = _bound(sj.sparse_optimizer(method, INNERS[inner](), schedule=sched), masks, jax.random.key(3))
    counts0 = _counts(masks)
    changes = 0
    prev = masks
    for p, m, _ in _run(tx, params, 16):
        assert _counts(m) == counts0
        assert _pruned_are_zero(p, m)
        changes += any(bool((a != b).any()) for a, b in zip(jax.tree.leaves(m), jax.tree.leaves(prev)))
        prev = m
    assert changes == (0 if method == "static" else 4)  # t = 4, 8, 12, 16


@pytest.mark.parametrize("method", ["set", "rigl"])
def test_grown_weights_and_moments_start_at_zero(method):
    params, masks = _setup()
    sched = sj.DSTSchedule(total_steps=100, delta_t=5, drop_fraction=0.5)
    tx = _bound(sj.sparse_optimizer(method, optax.adam(1e-2), schedule=sched), masks, jax.random.key(0))
    history = _run(tx, params, 5)
    p4, m4, _ = history[3]
    p5, m5, s5 = history[4]
    mu, nu = s5.inner_state[0].mu, s5.inner_state[0].nu
    for layer, m_old, m_new in zip(("Dense_0", "Dense_1", "Dense_2"), jax.tree.leaves(m4), jax.tree.leaves(m5)):
        grown = m_new & ~m_old
        assert int(grown.sum()) > 0
        assert bool((p5[layer]["kernel"][grown] == 0).all())
        assert bool((mu[layer]["kernel"][grown] == 0).all())
        assert bool((nu[layer]["kernel"][grown] == 0).all())
        # Moments of kept weights are untouched.
        kept = m_new & m_old
        assert bool((nu[layer]["kernel"][kept] != 0).any())


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


@pytest.mark.parametrize("method", ["set", "rigl"])
def test_zero_drop_fraction_leaves_mask_bit_identical(method):
    params, masks = _setup()
    sched = sj.DSTSchedule(total_steps=40, delta_t=2, drop_fraction=0.0)
    tx = _bound(sj.sparse_optimizer(method, optax.adam(1e-2), schedule=sched), masks, jax.random.key(0))
    for _, m, _ in _run(tx, params, 6, scale=5e3):
        for a, b in zip(jax.tree.leaves(m), jax.tree.leaves(masks)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_schedule_updates_only_at_multiples_and_before_t_end():
    sched = sj.DSTSchedule(total_steps=50, delta_t=5, drop_fraction=0.5, end_fraction=0.6)
    assert sched.t_end == 30
    steps = [t for t in range(0, 60) if bool(sched.is_update_step(t))]
    assert steps == [5, 10, 15, 20, 25]
    assert float(sched.fraction(0)) == pytest.approx(0.5)
    assert float(sched.fraction(15)) == pytest.approx(0.25)
    assert float(sched.fraction(30)) == 0.0 and float(sched.fraction(45)) == 0.0
    # The transform follows it: the mask changes exactly after updates 5, 10, ..., 25.
    params, masks = _setup()
    tx = _bound(sj.set_sparse(optax.adam(1e-2), schedule=sched), masks, jax.random.key(0))
    changed, prev = [], masks
    for t, (_, m, _) in enumerate(_run(tx, params, 40), start=1):
        if any(bool((a != b).any()) for a, b in zip(jax.tree.leaves(m), jax.tree.leaves(prev))):
            changed.append(t)
        prev = m
    assert changed == [5, 10, 15, 20, 25]


def test_step_extra_arg_drives_schedule():
    params, masks = _setup()
    sched = sj.DSTSchedule(total_steps=100, delta_t=10)
    tx = _bound(sj.set_sparse(optax.adam(1e-2), schedule=sched), masks, jax.random.key(0))
    state = tx.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    _, s0 = tx.update(grads, state, params, step=jnp.int32(0))
    _, s9 = tx.update(grads, state, params, step=jnp.int32(9))
    assert all(bool((a == b).all()) for a, b in zip(jax.tree.leaves(s0.masks), jax.tree.leaves(masks)))
    assert any(bool((a != b).any()) for a, b in zip(jax.tree.leaves(s9.masks), jax.tree.leaves(masks)))


def test_next_update_step_matches_is_update_step():
    for total, delta_t, end in [(50, 5, 0.6), (100, 10, 0.5), (37, 4, 1.0), (10, 20, 0.8), (10, 1, 0.0)]:
        sched = sj.DSTSchedule(total, delta_t=delta_t, end_fraction=end)
        steps = [t for t in range(total + 30) if bool(sched.is_update_step(t))]
        for t in range(-3, total + 30):
            expected = next((s for s in steps if s >= t), sched.t_end)
            assert int(sched.next_update_step(t)) == expected, (total, delta_t, end, t)
        # Traced and vectorized, as a training loop calls it.
        ts = jnp.arange(total, dtype=jnp.int32)
        np.testing.assert_array_equal(
            jax.jit(sched.next_update_step)(ts), [int(sched.next_update_step(int(t))) for t in ts]
        )


@pytest.mark.parametrize("method", ["set", "rigl"])
def test_rewire_false_between_update_steps_matches_the_schedule(method):
    """A loop that passes rewire=False off the schedule and True on it trains exactly like rewire=None."""
    params0, masks = _setup()
    sched = sj.DSTSchedule(total_steps=30, delta_t=4, drop_fraction=0.5, end_fraction=0.8)
    tx = _bound(sj.sparse_optimizer(method, optax.adam(1e-2), schedule=sched), masks, jax.random.key(3))
    grad = jax.jit(jax.grad(_loss))
    step_fns = {r: jax.jit(lambda g, s, p, t, r=r: tx.update(g, s, p, step=t, rewire=r)) for r in (None, True, False)}
    runs = {}
    for mode in ("schedule", "flags"):
        params, state, changed = params0, tx.init(params0), []
        for t in range(30):
            x = jax.random.normal(jax.random.fold_in(jax.random.key(0), t), (32, 6))
            flag = None if mode == "schedule" else int(sched.next_update_step(t + 1)) == t + 1
            u, new = step_fns[flag](grad(params, x), state, params, jnp.int32(t))
            if any(bool((a != b).any()) for a, b in zip(jax.tree.leaves(new.masks), jax.tree.leaves(state.masks))):
                changed.append(t + 1)
            params, state = optax.apply_updates(params, u), new
        runs[mode] = (params, state, changed)
    assert runs["schedule"][2] == runs["flags"][2] == [4, 8, 12, 16, 20]
    for a, b in zip(jax.tree.leaves(runs["schedule"][1].masks), jax.tree.leaves(runs["flags"][1].masks)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(jax.tree.leaves(runs["schedule"][0]), jax.tree.leaves(runs["flags"][0])):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # rewire=False leaves the branch out of the program; rewire=None keeps it. (rewire=True holds one small
    # cond of its own: off the schedule's steps the drop count comes from the host.)
    g = jax.tree.map(jnp.ones_like, params0)
    jaxpr = lambda r: str(jax.make_jaxpr(lambda s, t: tx.update(g, s, params0, step=t, rewire=r))(tx.init(params0), 0))
    assert "cond[" in jaxpr(None) and "cond[" not in jaxpr(False)
    assert "callback" not in jaxpr(None) and "callback" in jaxpr(True)


def test_rewire_true_rewires_off_schedule():
    params, masks = _setup()
    sched = sj.DSTSchedule(total_steps=100, delta_t=10)
    tx = _bound(sj.rigl_sparse(optax.adam(1e-2), schedule=sched), masks)
    grads = jax.tree.map(jnp.ones_like, params)
    _, state = tx.update(grads, tx.init(params), params, step=jnp.int32(2), rewire=True)  # t = 3: off delta_t
    assert any(bool((a != b).any()) for a, b in zip(jax.tree.leaves(state.masks), jax.tree.leaves(masks)))
    assert _counts(state.masks) == _counts(masks)
    # From t_end on the drop fraction is 0: rewire=True then keeps the mask.
    _, state = tx.update(grads, tx.init(params), params, step=jnp.int32(90), rewire=True)
    for a, b in zip(jax.tree.leaves(state.masks), jax.tree.leaves(masks)):
        np.testing.assert_array_equal(a, b)


def test_vmap_over_keys_set_regrows_differently():
    params, masks = _setup()
    sched = sj.DSTSchedule(total_steps=100, delta_t=1)
    grads = jax.tree.map(jnp.ones_like, params)

    def one(key):
        tx = _bound(sj.set_sparse(optax.adam(1e-2), schedule=sched), masks, key)
        _, state = tx.update(grads, tx.init(params), params)
        return state.masks

    out = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(0), 2))
    k = out["Dense_1"]["kernel"]
    assert int(k[0].sum()) == int(k[1].sum()) == int(masks["Dense_1"]["kernel"].sum())
    assert bool((k[0] != k[1]).any())


def test_update_compiles_once_and_keeps_cond_under_vmap():
    params, masks = _setup()
    sched = sj.DSTSchedule(total_steps=100, delta_t=10)
    tx = _bound(sj.rigl_sparse(optax.adam(1e-2), schedule=sched), masks)
    traces = []

    def update(g, s, p, step):
        traces.append(1)
        return tx.update(g, s, p, step=step)

    f = jax.jit(update)
    state = tx.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    for t in range(3):
        _, state = f(grads, state, params, jnp.int32(t))
    assert len(traces) == 1
    # Batched state, unbatched step: the schedule predicate stays a real cond.
    batched = jax.tree.map(lambda x: jnp.stack([x, x]), (grads, state, params))
    vf = jax.vmap(lambda g, s, p, t: tx.update(g, s, p, step=t), in_axes=(0, 0, 0, None))
    assert "cond[" in str(jax.make_jaxpr(vf)(*batched, jnp.int32(0)))
    # Contrast: a batched step turns the cond into a select that always runs the mask update.
    vf_batched_step = jax.vmap(lambda g, s, p, t: tx.update(g, s, p, step=t))
    assert "cond[" not in str(jax.make_jaxpr(vf_batched_step)(*batched, jnp.zeros(2, jnp.int32)))
    out, _ = jax.jit(vf)(*batched, jnp.int32(9))
    assert out["Dense_0"]["kernel"].shape == (2, 6, 24)


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


def test_static_sparse_learns_sparse_regression():
    # y = x @ w_true with w_true supported on the mask: masked Adam recovers it.
    key = jax.random.key(0)
    mask = jax.random.uniform(key, (20, 1)) < 0.3
    w_true = jnp.where(mask, jax.random.normal(jax.random.key(1), (20, 1)), 0.0)
    x = jax.random.normal(jax.random.key(2), (256, 20))
    y = x @ w_true
    loss = lambda p: jnp.mean((x @ p["w"] - y) ** 2)
    tx = sj.static_sparse(optax.adam(0.05))
    params = {"w": jnp.zeros((20, 1))}
    state = sj.with_masks(tx.init(params), {"w": mask})

    def step(carry, _):
        p, s = carry
        u, s = tx.update(jax.grad(loss)(p), s, p)
        return (optax.apply_updates(p, u), s), loss(p)

    (params, _), losses = jax.lax.scan(step, (params, state), None, length=300)
    assert float(losses[0]) > 1.0 and float(losses[-1]) < 1e-3
    np.testing.assert_allclose(params["w"], w_true, atol=1e-2)


def test_transform_errors():
    params, masks = _setup()
    with pytest.raises(ValueError, match=r"method='prune' is not allowed; allowed: dense, static, .*set, rigl"):
        sj.sparse_optimizer("prune", optax.adam(1e-3))
    with pytest.raises(ValueError, match="needs a DSTSchedule"):
        sj.sparse_transform(optax.adam(1e-3), regrow="gradient")
    with pytest.raises(ValueError, match="regrow='grow' is not allowed; allowed: none, random, gradient"):
        sj.sparse_transform(optax.adam(1e-3), regrow="grow")
    with pytest.raises(TypeError):  # settings are keyword-only, so masks or a key in their place fail at once
        sj.set_sparse(optax.adam(1e-3), masks, sj.DSTSchedule(10))
    set_tx = sj.set_sparse(optax.adam(1e-3), schedule=sj.DSTSchedule(10))
    with pytest.raises(ValueError, match="needs a PRNG key in the state"):
        set_tx.update(params, sj.with_masks(set_tx.init(params), masks), params)
    with pytest.raises(ValueError, match=r"drop_fraction=1.5 .*\[0, 1\]"):
        sj.DSTSchedule(10, drop_fraction=1.5)
    with pytest.raises(ValueError, match="delta_t=0"):
        sj.DSTSchedule(10, delta_t=0)
    bad = dict(masks)
    bad["Dense_0"] = {"kernel": jnp.ones((2, 2), bool), "bias": None}
    tx = sj.static_sparse(optax.adam(1e-3))
    with pytest.raises(ValueError, match=r"Dense_0/kernel.*\(2, 2\)"):
        sj.with_masks(tx.init(params), bad)
    with pytest.raises(ValueError, match="Dense_0/kernel.*float32; masks must be boolean"):
        sj.with_masks(tx.init(params), jax.tree.map(lambda m: m.astype(jnp.float32), masks))
    dense_bias = jax.tree.map(lambda m: m, masks)
    dense_bias["Dense_0"]["bias"] = jnp.ones(24, bool)
    with pytest.raises(ValueError, match="Dense_0/bias.*filter_fn"):
        sj.with_masks(tx.init(params), dense_bias)
    with pytest.raises(ValueError, match="needs params"):
        tx.update(params, tx.init(params))
    with pytest.raises(ValueError, match="rewire=True needs a SET, RigL or GMP transform"):
        tx.update(params, tx.init(params), params, rewire=True)
    rigl = sj.rigl_sparse(optax.adam(1e-3), schedule=sj.DSTSchedule(10))
    for bad_flag in (1, "yes", jnp.bool_(True)):
        with pytest.raises(ValueError, match=r"rewire=.* is not allowed; allowed: None .*True or False"):
            rigl.update(params, rigl.init(params), params, rewire=bad_flag)


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


def test_traced_masks_rewire_like_concrete_ones():
    # The top-k bound comes from max_active or the layer size, and the masks may be tracers
    # (put into the state inside jit); every path must pick the same connections.
    params, masks = _setup()
    sched = sj.DSTSchedule(total_steps=100, delta_t=1)
    grads = jax.tree.map(lambda p: jnp.cos(jnp.arange(p.size, dtype=jnp.float32)).reshape(p.shape), params)

    def rewired(ms, max_active=None):
        tx = sj.rigl_sparse(optax.adam(1e-2), schedule=sched, max_active=max_active)
        return tx.update(grads, sj.with_masks(tx.init(params), ms), params)[1].masks

    ref = rewired(masks)
    counts = sj.active_counts(masks)
    wider = jax.tree.map(lambda c: None if c is None else c + 7, counts, is_leaf=sj.is_none)  # a sweep's shared bound
    paths = (rewired(masks, counts), rewired(masks, wider), jax.jit(rewired)(masks),
             jax.jit(lambda ms: rewired(ms, counts))(masks))  # fmt: skip
    for out in paths:
        for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(ref)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert any(bool((a != b).any()) for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(masks)))
    with pytest.raises(ValueError, match="max_active has 1 leaves"):
        sj.rigl_sparse(optax.adam(1e-2), schedule=sched, max_active={"a": 3}).init(params)


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


@pytest.mark.parametrize("bad", [jnp.nan, jnp.inf])
def test_rewiring_keeps_counts_with_non_finite_weights(bad):
    mask = jnp.array([True] * 6 + [False] * 6)
    scores = jnp.linspace(0.1, 0.9, 12)
    weights = jnp.arange(1.0, 13.0).at[:4].set(bad)
    new, grown = sj.drop_and_grow(mask, weights, scores.at[8].set(bad), 3)
    assert int(new.sum()) == 6 and int(grown.sum()) == 3
    new, _ = sj.drop_and_grow(~mask, jnp.full(12, bad), scores, 3)
    assert int(new.sum()) == 6


@pytest.mark.parametrize("inner", INNERS)
def test_moments_of_grown_and_dropped_entries_are_zero(inner):
    params, masks = _setup()
    sched = sj.DSTSchedule(total_steps=100, delta_t=3, drop_fraction=0.5)
    tx = _bound(sj.set_sparse(INNERS[inner](), schedule=sched), masks, jax.random.key(0))
    history = _run(tx, params, 3)
    m_old, m_new, state = history[1][1], history[2][1], history[2][2]
    not_kept = jax.tree.map(lambda a, b: ~(a & b), m_new, m_old)
    moments = [
        leaf
        for leaf in jax.tree.leaves(optax.tree.map_params(INNERS[inner]().init, lambda s: s, state.inner_state))
        if getattr(leaf, "shape", None) == (24, 24)
    ]
    assert len(moments) == 2  # mu and nu of Dense_1, wherever the optimizer keeps them
    for mom in moments:
        assert int(not_kept["Dense_1"]["kernel"].sum()) > 0
        assert bool((mom[not_kept["Dense_1"]["kernel"]] == 0).all())


def test_non_integer_inputs_are_rejected():
    with pytest.raises(ValueError, match="delta_t=2.5 is not allowed; allowed: an integer >= 1"):
        sj.DSTSchedule(10, delta_t=2.5)
    with pytest.raises(ValueError, match="count=2.7 is not allowed; allowed: an integer"):
        sj.topk_mask({"a": jnp.zeros((3, 3))}, {"a": 2.7})
    assert sj.DSTSchedule(100, end_fraction=0.57).t_end == 57


def _exact_drop_count(schedule, t, active):
    """``floor(f(t) * active)`` from exact rationals where cos(pi t / t_end) is rational, else 60-digit decimals."""
    import decimal
    from fractions import Fraction

    if not 0 <= t < schedule.t_end:
        return 0
    f0 = Fraction(repr(schedule.drop_fraction))
    r = Fraction(t, schedule.t_end)
    rational_cos = {Fraction(0): 1, Fraction(1, 3): Fraction(1, 2), Fraction(1, 2): 0, Fraction(2, 3): Fraction(-1, 2)}
    if r in rational_cos:
        return int((f0 / 2 * (1 + rational_cos[r]) * active).__floor__())
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        pi = decimal.Decimal("3.14159265358979323846264338327950288419716939937510582097494459")
        x = pi * r.numerator / r.denominator
        term, total, k = decimal.Decimal(1), decimal.Decimal(1), 0
        while abs(term) > decimal.Decimal(10) ** -58:  # Taylor series of cos
            k += 2
            term *= -x * x / (k * (k - 1))
            total += term
        value = decimal.Decimal(f0.numerator) / f0.denominator / 2 * (1 + total) * active
    return int(value.to_integral_value(rounding=decimal.ROUND_FLOOR))


@pytest.mark.parametrize(
    "schedule",
    [
        sj.DSTSchedule(1_000_000),  # the default: t_end / 2 = 400000 is an update step
        sj.DSTSchedule(3000, delta_t=10),  # t_end = 2400: 800, 1200 and 1600 are update steps
        sj.DSTSchedule(900, delta_t=1, drop_fraction=0.3, end_fraction=1.0),  # f0 = 3/10, not a binary fraction
        sj.DSTSchedule(7777, delta_t=7, drop_fraction=0.75, end_fraction=0.6),
        sj.DSTSchedule(1_000_000, drop_fraction=1 / 3),  # 16 decimal digits: Python ints, no int64 overflow
    ],
    ids=["default", "thirds", "decimal_f0", "odd", "one_third"],
)
def test_drop_count_is_exact_at_every_update_step_eager_and_jit(schedule):
    actives = np.array([1, 4, 12, 40, 100, 999, 2767, 6553, 65536, 200_000, 10**8])
    steps = [t for t in range(1, schedule.t_end) if t % schedule.delta_t == 0]
    expected = np.array([[_exact_drop_count(schedule, t, a) for a in actives] for t in steps])
    np.testing.assert_array_equal(schedule.drop_count(np.array(steps)[:, None], actives), expected)
    on_device = jax.jit(jax.vmap(schedule.device_drop_count, in_axes=(0, None)))
    np.testing.assert_array_equal(on_device(jnp.array(steps), jnp.array(actives)), expected)
    eager = [schedule.device_drop_count(t, actives) for t in steps[:: max(1, len(steps) // 20)]]
    np.testing.assert_array_equal(np.stack(eager), expected[:: max(1, len(steps) // 20)])


def test_rewiring_drops_the_exact_count_at_t_end_over_two_eager_and_jit():
    """The issue's example: default schedule, t = 400000, 12 active: f(t) * 12 = 3 exactly."""
    schedule = sj.DSTSchedule(1_000_000)
    mask = jnp.arange(20) < 12
    params = {"w": jnp.where(mask, jnp.arange(1.0, 21.0), 0.0)}
    prune_all = lambda path, leaf: True  # the one leaf is 1-D, which the default filter keeps dense
    tx = _bound(sj.set_sparse(optax.sgd(0.0), schedule=schedule, filter_fn=prune_all), {"w": mask}, jax.random.key(0))
    state = tx.init(params)
    grads = {"w": jnp.ones(20)}
    for update in (tx.update, jax.jit(tx.update, static_argnames="rewire")):
        _, new = update(grads, state, params, step=399_999, rewire=True)
        assert int((mask & ~new.masks["w"]).sum()) == 3
        assert int(new.masks["w"].sum()) == 12


def test_off_schedule_counts_and_no_host_callback_on_the_schedule():
    schedule = sj.DSTSchedule(1_000_000)
    actives = jnp.array([12, 6553, 200_000])
    # Off the update steps (rewire=True may rewire anywhere) the host computes the count.
    for t in (1, 999, 400_001, 799_999):
        expected = [_exact_drop_count(schedule, t, int(a)) for a in actives]
        got = jax.jit(lambda t: schedule.device_drop_count(t, actives, on_schedule=False))(t)
        np.testing.assert_array_equal(got, expected)
    assert schedule.device_drop_count(800_000, actives, on_schedule=False).tolist() == [0, 0, 0]
    # The schedule's own path holds no callback, so the persistent compilation cache can store the program.
    jaxpr = str(jax.make_jaxpr(lambda t: schedule.device_drop_count(t, actives))(1000))
    assert "callback" not in jaxpr
    params, masks = _setup()
    tx = _bound(sj.set_sparse(optax.adam(1e-2), schedule=sj.DSTSchedule(100, delta_t=10)), masks, jax.random.key(0))
    update = lambda p, s: tx.update(p, s, p)
    assert "callback" not in str(jax.make_jaxpr(update)(params, tx.init(params)))
    with pytest.raises(ValueError, match="n_drop must be an integer count"):
        sj.drop_and_grow(jnp.ones(4, bool), jnp.ones(4), jnp.ones(4), 0.5)


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
