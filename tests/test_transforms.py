"""sparse_jax.transforms: sparse_transform around optax optimizers (counts, zeros, moments, rewire, jit and vmap)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sparse_jax as sj
from tests.helpers import bind_masks as _bound
from tests.helpers import mlp_loss as _loss
from tests.helpers import static_sparse_mlp as _setup
from tests.helpers import train_steps as _run

INNERS = {
    "adam": lambda: optax.adam(1e-2),
    "adamw": lambda: optax.adamw(1e-2, weight_decay=0.5),
    "clip_adam": lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2)),
    "inject_adam": lambda: optax.inject_hyperparams(optax.adam)(learning_rate=1e-2),
}


def _counts(masks):
    return jax.tree.map(lambda m: int(m.sum()), masks)


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


@pytest.mark.parametrize("method", ["set", "rigl"])
def test_zero_drop_fraction_leaves_mask_bit_identical(method):
    params, masks = _setup()
    sched = sj.DSTSchedule(total_steps=40, delta_t=2, drop_fraction=0.0)
    tx = _bound(sj.sparse_optimizer(method, optax.adam(1e-2), schedule=sched), masks, jax.random.key(0))
    for _, m, _ in _run(tx, params, 6, scale=5e3):
        for a, b in zip(jax.tree.leaves(m), jax.tree.leaves(masks)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


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


@pytest.mark.parametrize("method", ["set", "rigl", "gmp"])
def test_set_rigl_and_gmp_rewire_inside_simba_residual_blocks(method):
    """On a SimBa network (embedding, 2 residual blocks, LayerNorms) SET and RigL keep every kernel's count
    while moving connections inside the blocks' kernels; GMP prunes every kernel, blocks included, to the
    exact total; pruned weights are exactly 0 throughout and LayerNorm parameters are never masked."""
    from agents.algorithms.networks import SimBa

    net = SimBa((8, 8), 2)
    x = jax.random.normal(jax.random.key(1), (32, 4))
    params = net.init(jax.random.key(0), x)["params"]
    loss = lambda p: jnp.mean((net.apply({"params": p}, x) - jnp.sin(x[:, :2])) ** 2)
    if method == "gmp":
        schedule = sj.GMPSchedule(total_steps=24, sparsity=0.8, start_fraction=0.2, end_fraction=0.8, delta_t=4)
        tx = sj.gmp_sparse(optax.adam(1e-2), schedule=schedule, distribution="erk")
    else:
        init = sj.sparse_init(jax.random.key(2), params, 0.8, method="static", score="random", distribution="erk")
        params = init.params
        schedule = sj.DSTSchedule(total_steps=24, delta_t=4, drop_fraction=0.5)
        tx = _bound(sj.sparse_optimizer(method, optax.adam(1e-2), schedule=schedule), init.masks, jax.random.key(3))
    state = tx.init(params)
    start = sj.get_masks(state)
    names = [sj.path_name(p) for p, _ in jax.tree.leaves_with_path(start)]
    assert all(n.endswith("/kernel") for n in names) and len(names) == 2 + 2 * 2  # LayerNorm never masked
    update, grad = jax.jit(tx.update), jax.jit(jax.grad(loss))
    for _ in range(schedule.total_steps):
        updates, state = update(grad(params), state, params)
        params = optax.apply_updates(params, updates)
        masks = sj.get_masks(state)
        kept = jax.tree.leaves(sj.apply_mask(params, masks))
        assert all(bool((a == b).all()) for a, b in zip(kept, jax.tree.leaves(params)))  # pruned weights are 0
        if method != "gmp":
            assert _counts(masks) == _counts(start)
    block = lambda m: np.asarray(m["ResidualBlock_1"]["Dense_0"]["kernel"])
    n = sum(m.size for m in jax.tree.leaves(masks))
    if method == "gmp":
        assert sum(int(m.sum()) for m in jax.tree.leaves(masks)) == sj.target_active(n, 0.8)
        assert block(masks).sum() < block(start).size  # the blocks were pruned too
    else:
        assert (block(masks) != block(start)).any()  # connections moved inside a block
