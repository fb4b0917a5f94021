"""Actor and critic networks (flax.linen) and the action distributions they define.

All kernels are prunable by ``sparse_jax.default_filter`` (input and output
layers included); biases stay dense.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


class MLP(nn.Module):
    """ReLU MLP with a linear output layer (``out_scale`` scales its init variance)."""

    hidden: Sequence[int]
    out: int
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        init = nn.initializers.variance_scaling(self.out_scale, "fan_in", "truncated_normal")
        return nn.Dense(self.out, kernel_init=init)(x)


class GaussianActor(nn.Module):
    """SAC actor: mean and log-std of a Gaussian, squashed by tanh when sampled."""

    hidden: Sequence[int]
    action_size: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = MLP(self.hidden, 2 * self.action_size)(obs)
        mean, log_std = jnp.split(out, 2, axis=-1)
        # Squash log-std smoothly into [LOG_STD_MIN, LOG_STD_MAX] rather than clipping its gradient away.
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(log_std) + 1.0)
        return mean, log_std


class DeterministicActor(nn.Module):
    """TD3 actor: ``tanh`` of an MLP, actions in ``[-1, 1]``."""

    hidden: Sequence[int]
    action_size: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        # A small output layer starts the policy near a = 0 instead of at the tanh saturation,
        # where the deterministic policy gradient vanishes (cf. DDPG's final-layer init).
        return jnp.tanh(MLP(self.hidden, self.action_size, out_scale=1e-2)(obs))


class TwinCritic(nn.Module):
    """Two independent Q-networks ``q1``, ``q2`` of ``(obs, action)``; returns shape ``(2, batch)``."""

    hidden: Sequence[int]

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        x = jnp.concatenate([obs, action], axis=-1)
        q1 = MLP(self.hidden, 1, name="q1")(x)[..., 0]
        q2 = MLP(self.hidden, 1, name="q2")(x)[..., 0]
        return jnp.stack([q1, q2])


def tanh_gaussian_sample(key: jax.Array, mean: jax.Array, log_std: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Sample ``a = tanh(mean + std * eps)`` and its log-probability (summed over action dims).

    Uses ``log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))``, which stays
    finite when ``|u|`` is large.
    """
    std = jnp.exp(log_std)
    u = mean + std * jax.random.normal(key, mean.shape)
    log_normal = -0.5 * (((u - mean) / std) ** 2 + 2.0 * log_std + jnp.log(2.0 * jnp.pi))
    log_det = 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return jnp.tanh(u), jnp.sum(log_normal - log_det, axis=-1)


def init_actor_critic(
    key: jax.Array, actor: nn.Module, critic: nn.Module, obs_size: int, action_size: int
) -> tuple[dict, dict]:
    """Dense initial params ``(actor_params, critic_params)`` for the given networks."""
    k_actor, k_critic = jax.random.split(key)
    obs, act = jnp.zeros((1, obs_size)), jnp.zeros((1, action_size))
    return actor.init(k_actor, obs)["params"], critic.init(k_critic, obs, act)["params"]


def unit_scores(module: nn.Module, params: dict, *inputs: jax.Array) -> dict[str, jax.Array]:
    """Each hidden ReLU unit's mean absolute activation on ``inputs``, per layer.

    Keyed by the path of the kernel that produces the layer (``"MLP_0/Dense_0/kernel"``),
    as :func:`sparse_jax.redo.dormant_units` and :func:`sparse_jax.redo.recycle`
    take it. The hidden units are the ReLU outputs of every ``Dense`` layer of
    each :class:`MLP` but its last (output) layer.

    >>> import jax, jax.numpy as jnp
    >>> net = MLP((2,), 1)
    >>> p = net.init(jax.random.key(0), jnp.ones((1, 1)))["params"]
    >>> p["Dense_0"] = {"kernel": jnp.array([[1.0, -1.0]]), "bias": jnp.zeros(2)}
    >>> {k: v.tolist() for k, v in unit_scores(net, p, jnp.array([[1.0], [3.0]])).items()}
    {'Dense_0/kernel': [2.0, 0.0]}
    """
    _, state = module.apply(
        {"params": params},
        *inputs,
        capture_intermediates=lambda mdl, name: isinstance(mdl, nn.Dense),
        mutable=["intermediates"],
    )
    scores = {}
    for prefix, mlp in _mlps(state["intermediates"]):
        layers = sorted((k for k in mlp if k.startswith("Dense_")), key=lambda k: int(k.split("_")[1]))
        for name in layers[:-1]:  # the last Dense is the output layer
            h = jax.nn.relu(mlp[name]["__call__"][0])
            scores["/".join((*prefix, name, "kernel"))] = jnp.mean(jnp.abs(h.reshape(-1, h.shape[-1])), axis=0)
    return scores


def dormant_fraction(module: nn.Module, params: dict, *inputs: jax.Array, tau: float = 0.025) -> jax.Array:
    """Fraction of ``module``'s hidden ReLU units that are dormant on ``inputs`` (Sokar et al. 2023).

    A hidden unit ``i`` of a layer is dormant when its mean absolute activation
    over the batch is at most ``tau`` times the layer's mean over units:
    ``E|h_i| <= tau * mean_k E|h_k|``; ``tau = 0`` counts only dead units
    (:func:`unit_scores` gives the activations).

    >>> import jax, jax.numpy as jnp
    >>> net = MLP((4,), 1)
    >>> p = net.init(jax.random.key(0), jnp.ones((1, 3)))["params"]
    >>> p["Dense_0"] = {"kernel": jnp.array([[0.0, 0.0, 1.0, 1.0]] * 3), "bias": jnp.zeros(4)}
    >>> float(dormant_fraction(net, p, jnp.ones((8, 3)), tau=0.0))  # two of four units never fire
    0.5
    """
    dormant, units = [], 0
    for score in unit_scores(module, params, *inputs).values():
        dormant.append(jnp.sum(score <= tau * jnp.mean(score)))
        units += score.shape[-1]
    return sum(dormant) / max(units, 1)


def _mlps(tree: dict, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], dict]]:
    """``(path, sub-dict)`` of the captured intermediates that hold ``Dense_*`` layers (one per MLP)."""
    if any(k.startswith("Dense_") for k in tree):
        return [(prefix, tree)]
    return [m for k, v in tree.items() if isinstance(v, dict) for m in _mlps(v, (*prefix, k))]
