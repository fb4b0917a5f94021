import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from agents.algorithms.networks import DeterministicActor, GaussianActor, TwinCritic, tanh_gaussian_sample


def test_tanh_gaussian_log_prob_matches_change_of_variables():
    mean, log_std = jnp.array([[0.3, -1.0]]), jnp.array([[-0.5, 0.2]])
    key = jax.random.key(0)
    action, log_prob = tanh_gaussian_sample(key, mean, log_std)
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    expected = stats.norm.logpdf(u, mean, np.exp(log_std)) - np.log(1 - np.tanh(u) ** 2)
    np.testing.assert_allclose(action, np.tanh(u), rtol=1e-6)
    np.testing.assert_allclose(log_prob, expected.sum(-1), rtol=1e-5)


def test_network_shapes_and_bounds():
    obs, act = jnp.ones((5, 3)), jnp.ones((5, 2))
    actor = GaussianActor((16,), 2)
    mean, log_std = actor.apply(actor.init(jax.random.key(0), obs), obs)
    assert mean.shape == (5, 2) and bool((log_std >= -5).all() & (log_std <= 2).all())
    det = DeterministicActor((16,), 2)
    a = det.apply(det.init(jax.random.key(0), obs), 10 * obs)
    assert bool((jnp.abs(a) <= 1).all())
    critic = TwinCritic((16,))
    params = critic.init(jax.random.key(0), obs, act)
    assert set(params["params"]) == {"q1", "q2"}
    assert critic.apply(params, obs, act).shape == (2, 5)


def test_dormant_fraction_counts_units_at_most_tau_times_the_layer_mean():
    import jax
    import jax.numpy as jnp

    from agents.algorithms.networks import MLP, dormant_fraction

    net = MLP((4, 2), 1)
    x = jnp.ones((5, 1))
    p = net.init(jax.random.key(0), x)["params"]
    # Layer 0 units fire 1, 2, 3, 0.05 (one input of 1, no bias): mean 1.5125, so tau=0.1 marks only the last.
    p["Dense_0"] = {"kernel": jnp.array([[1.0, 2.0, 3.0, 0.05]]), "bias": jnp.zeros(4)}
    # Layer 1 units: one dead (negative pre-activation), one alive.
    p["Dense_1"] = {"kernel": jnp.array([[1.0, -1.0]] * 4), "bias": jnp.zeros(2)}
    assert float(dormant_fraction(net, p, x, tau=0.1)) == pytest.approx(2 / 6)
    assert float(dormant_fraction(net, p, x, tau=0.0)) == pytest.approx(1 / 6)  # only the dead unit
    assert float(dormant_fraction(net, p, x, tau=1.0)) == pytest.approx(
        3 / 6
    )  # 1 and 0.05 are below the mean, and the dead one


def test_simba_has_an_embedding_residual_blocks_and_layer_norms_and_sows_its_block_units():
    from agents.algorithms.networks import SimBa, unit_scores

    net = SimBa((4, 4), 2)
    params = net.init(jax.random.key(0), jnp.ones((1, 3)))["params"]
    shapes = {"/".join(str(k.key) for k in p): x.shape for p, x in jax.tree.leaves_with_path(params)}
    assert shapes == {
        "Dense_0/kernel": (3, 4), "Dense_0/bias": (4,), "Dense_1/kernel": (4, 2), "Dense_1/bias": (2,),
        "LayerNorm_0/scale": (4,), "LayerNorm_0/bias": (4,),
        **{f"ResidualBlock_{b}/{k}": s for b in (0, 1) for k, s in (
            ("LayerNorm_0/scale", (4,)), ("LayerNorm_0/bias", (4,)), ("Dense_0/kernel", (4, 16)),
            ("Dense_0/bias", (16,)), ("Dense_1/kernel", (16, 4)), ("Dense_1/bias", (4,)),
        )},
    }  # fmt: skip
    # A block whose down-projection is 0 adds nothing: the stream passes the skip unchanged.
    quiet = jax.tree.map(lambda x: x, params)
    for b in (0, 1):
        quiet[f"ResidualBlock_{b}"]["Dense_1"]["kernel"] = jnp.zeros((16, 4))
        quiet[f"ResidualBlock_{b}"]["Dense_1"]["bias"] = jnp.zeros(4)
    x = jax.random.normal(jax.random.key(1), (5, 3))
    embed = x @ quiet["Dense_0"]["kernel"] + quiet["Dense_0"]["bias"]
    mean, var = embed.mean(-1, keepdims=True), embed.var(-1, keepdims=True)
    expected = (embed - mean) / jnp.sqrt(var + 1e-6) @ quiet["Dense_1"]["kernel"] + quiet["Dense_1"]["bias"]
    np.testing.assert_allclose(net.apply({"params": quiet}, x), expected, rtol=1e-5, atol=1e-6)
    scores = unit_scores(net, params, x)
    assert {k: v.shape for k, v in scores.items()} == {f"ResidualBlock_{b}/Dense_0/kernel": (16,) for b in (0, 1)}


def test_layer_norm_comes_before_the_relu_whose_units_the_scores_read_hand_worked():
    """Hidden layer of 2 units with kernel [[1, -1]] on inputs 1 and 3: pre-activations (1, -1) and
    (3, -3). Without LayerNorm the ReLU units average 2 and 0; with it each row normalises to about
    (1, -1) (mean 0, variance 1), so they average 1 and 0."""
    from agents.algorithms.networks import MLP, unit_scores

    x = jnp.array([[1.0], [3.0]])
    for layer_norm, expected in ((False, [2.0, 0.0]), (True, [1.0, 0.0])):
        net = MLP((2,), 1, layer_norm=layer_norm)
        p = net.init(jax.random.key(0), x)["params"]
        p["Dense_0"] = {"kernel": jnp.array([[1.0, -1.0]]), "bias": jnp.zeros(2)}
        np.testing.assert_allclose(unit_scores(net, p, x)["Dense_0/kernel"], expected, rtol=1e-5)
    critic = TwinCritic((8,), "mlp_ln_critic")
    actor = GaussianActor((8,), 2, "mlp_ln_critic")
    obs, act = jnp.ones((1, 3)), jnp.ones((1, 2))
    assert "LayerNorm_0" in critic.init(jax.random.key(0), obs, act)["params"]["q1"]
    assert "LayerNorm_0" not in actor.init(jax.random.key(0), obs)["params"]["MLP_0"]
    assert "LayerNorm_0" in GaussianActor((8,), 2, "mlp_ln").init(jax.random.key(0), obs)["params"]["MLP_0"]
