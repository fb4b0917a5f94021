"""Sparse transforms composed as researchers compose optax: masked, multi_transform, chains, flax nnx."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sparse_jax as sj
from tests.helpers import mlp_params

LABELS = {"Dense_0": {"kernel": "sparse", "bias": "plain"}, "Dense_1": {"kernel": "sparse", "bias": "plain"}}


def _params_and_masks():
    params = mlp_params(jax.random.key(0), (6, 16, 3))
    masks = sj.prune(jax.random.key(1), params, 0.75, score="random", distribution="uniform")
    return params, masks


def _train(tx, state, params, steps=5):
    """``steps`` updates on a fixed regression batch; returns the params and the state."""
    x = jax.random.normal(jax.random.key(2), (32, 6))
    y = jax.random.normal(jax.random.key(3), (32, 3))

    def loss(p):
        h = jax.nn.relu(x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
        return jnp.mean((h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"] - y) ** 2)

    @jax.jit
    def step(params, state, t):
        updates, state = tx.update(jax.grad(loss)(params), state, params, step=t)
        return optax.apply_updates(params, updates), state

    for t in range(steps):
        params, state = step(params, state, t)
    return params, state


def _zeros_outside(params, masks):
    """Pruned entries of ``params`` that are not exactly 0, over every kernel the masks prune."""
    bad = 0
    for m, p in zip(jax.tree.leaves(masks, is_leaf=sj.is_none), jax.tree.leaves(params)):
        if m is not None:
            bad += int(jnp.sum(~m & (p != 0)))
    return bad


@pytest.mark.parametrize("wrap", ["multi_transform", "masked"])
@pytest.mark.parametrize("method", ["static", "set"])
def test_sparse_transform_inside_masked_and_multi_transform(wrap, method):
    params, masks = _params_and_masks()
    schedule = sj.DSTSchedule(total_steps=8, delta_t=2, end_fraction=1.0)
    sparse = sj.sparse_optimizer(method, optax.adam(1e-2), schedule=schedule)
    if wrap == "multi_transform":
        tx = optax.multi_transform({"sparse": sparse, "plain": optax.sgd(1e-2)}, LABELS)
    else:
        tx = optax.masked(sparse, jax.tree.map(lambda label: label == "sparse", LABELS))
    # Masks made from the whole params fit the transform that sees only the kernels.
    state = sj.with_masks(tx.init(params), masks, key=jax.random.key(4))
    new_params, state = _train(tx, state, params, steps=5)

    final = sj.get_masks(state)
    assert jax.tree.structure(final, is_leaf=sj.is_none) == jax.tree.structure(masks, is_leaf=sj.is_none)
    assert sj.active_counts(final) == sj.active_counts(masks)  # per-layer counts never change
    assert _zeros_outside(new_params, final) == 0
    changed = sum(int(jnp.sum(a != b)) for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(masks)))
    assert (changed > 0) == (method == "set")  # SET rewired at steps 2 and 4, static did not


def test_with_masks_refuses_a_mask_on_a_leaf_the_transform_does_not_train():
    params, masks = _params_and_masks()
    tx = optax.multi_transform(
        {"sparse": sj.static_sparse(optax.adam(1e-2)), "plain": optax.sgd(1e-2)},
        {"Dense_0": {"kernel": "sparse", "bias": "plain"}, "Dense_1": {"kernel": "plain", "bias": "plain"}},
    )
    with pytest.raises(ValueError, match="'Dense_1/kernel', which this sparse transform does not train"):
        sj.with_masks(tx.init(params), masks)


def test_a_transform_chained_after_the_sparse_one_breaks_sparsity_and_keep_sparse_restores_it():
    params, masks = _params_and_masks()
    tx = optax.chain(sj.static_sparse(optax.adam(1e-2)), optax.add_noise(0.1, 0.0, key=jax.random.key(5)))
    state = sj.with_masks(tx.init(params), masks)
    noisy, state = _train(tx, state, params, steps=1)
    assert _zeros_outside(noisy, masks) > 0  # the noise lands on pruned weights
    assert _zeros_outside(sj.keep_sparse(noisy, state), masks) == 0
    # Active weights and dense leaves pass through unchanged.
    kept = sj.keep_sparse(noisy, state)
    np.testing.assert_array_equal(kept["Dense_0"]["bias"], noisy["Dense_0"]["bias"])
    m = masks["Dense_1"]["kernel"]
    np.testing.assert_array_equal(kept["Dense_1"]["kernel"][m], noisy["Dense_1"]["kernel"][m])


def test_clipping_inside_the_sparse_transform_sees_only_active_gradients():
    params, masks = _params_and_masks()
    grads = jax.tree.map(jnp.ones_like, params)
    clip = 0.5
    inside = sj.static_sparse(optax.chain(optax.clip_by_global_norm(clip), optax.sgd(1.0)))
    updates, _ = inside.update(grads, sj.with_masks(inside.init(params), masks), params)
    # The clipped norm is that of the masked gradient: active kernel entries plus the dense biases.
    n_active = sum(sj.active_counts(masks)[k]["kernel"] for k in ("Dense_0", "Dense_1"))
    masked_norm = np.sqrt(n_active + 16 + 3)
    scale = clip / masked_norm
    active = masks["Dense_0"]["kernel"]
    np.testing.assert_allclose(updates["Dense_0"]["kernel"][active], -scale, rtol=1e-6)
    np.testing.assert_allclose(updates["Dense_0"]["bias"], -scale, rtol=1e-6)


def test_flax_nnx_optimizer_trains_sparse():
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.hidden = nnx.Linear(6, 16, rngs=rngs)
            self.out = nnx.Linear(16, 3, rngs=rngs)

        def __call__(self, x):
            return self.out(jax.nn.relu(self.hidden(x)))

    model = MLP(nnx.Rngs(0))
    masks = sj.prune(jax.random.key(1), nnx.state(model, nnx.Param), 0.75, distribution="uniform")
    optimizer = nnx.Optimizer(model, sj.static_sparse(optax.adam(1e-2)), wrt=nnx.Param)
    optimizer.opt_state = sj.with_masks(optimizer.opt_state, masks)
    x = jax.random.normal(jax.random.key(2), (32, 6))
    y = jax.random.normal(jax.random.key(3), (32, 3))

    @nnx.jit
    def step(model, optimizer):
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
        optimizer.update(model, grads)
        return loss

    losses = [float(step(model, optimizer)) for _ in range(20)]
    assert losses[-1] < losses[0]
    # Uniform 0.75: 24 of the 96 hidden-kernel weights and 12 of the 48 output-kernel weights stay active.
    for name, active in (("hidden", 24), ("out", 12)):
        kernel = np.asarray(getattr(model, name).kernel[...])
        mask = np.asarray(masks[name]["kernel"][...])
        assert int(mask.sum()) == active
        assert not kernel[~mask].any()
    assert sj.density_summary(sj.get_masks(optimizer.opt_state))["total"]["active"] == 36
