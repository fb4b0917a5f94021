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
