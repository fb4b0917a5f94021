"""Actor and critic networks (flax.linen) and the action distributions they define.

Three bodies (``TrainConfig.network``, ``agents.algorithms.config.NETWORKS``): today's ReLU
:class:`MLP`, the MLP with LayerNorm before each ReLU (in the critic only, or
in both networks), and :class:`SimBa` (Lee et al. 2025; Ma et al. 2025 sparsify
it): a linear embedding, pre-LayerNorm residual blocks and an output
LayerNorm. All kernels are prunable by ``sparse_jax.default_filter`` (input,
embedding, block and output layers included); biases and LayerNorm scales and
offsets stay dense. Each hidden ReLU layer ``sow``s its units as
``hidden_<n>``, the units of the module's ``Dense_<n>``: what
:func:`unit_scores` (ReDo, the dormant-unit diagnostic) reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


def _output_init(out_scale: float) -> nn.initializers.Initializer:
    return nn.initializers.variance_scaling(out_scale, "fan_in", "truncated_normal")


class MLP(nn.Module):
    """ReLU MLP with a linear output layer (``out_scale`` scales its init variance); with ``layer_norm``
    a LayerNorm between each hidden ``Dense`` and its ReLU (as brax's and MuJoCo Playground's MLPs)."""

    hidden: Sequence[int]
    out: int
    out_scale: float = 1.0
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for n, width in enumerate(self.hidden):
            x = nn.Dense(width)(x)
            x = nn.relu(nn.LayerNorm()(x) if self.layer_norm else x)
            self.sow("intermediates", f"hidden_{n}", x)
        return nn.Dense(self.out, kernel_init=_output_init(self.out_scale))(x)


class ResidualBlock(nn.Module):
    """SimBa's block: ``x + Dense_1(relu(Dense_0(LayerNorm(x))))``, ``Dense_0`` ``expansion`` times wider."""

    width: int
    expansion: int = 4

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = nn.relu(nn.Dense(self.expansion * self.width)(nn.LayerNorm()(x)))
        self.sow("intermediates", "hidden_0", h)
        return x + nn.Dense(self.width)(h)


class SimBa(nn.Module):
    """SimBa (Lee et al. 2025): a linear embedding to ``hidden[0]`` units, one :class:`ResidualBlock` per
    entry of ``hidden`` (all equal: the residual stream's width), a LayerNorm, a linear output layer.

    Differences from the paper's: no running observation normalisation (the
    envs' observations are used as they come, as for the MLPs) and flax's
    default initialisation.
    """

    hidden: Sequence[int]
    out: int
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.Dense(self.hidden[0])(x)
        for width in self.hidden:
            x = ResidualBlock(width)(x)
        return nn.Dense(self.out, kernel_init=_output_init(self.out_scale))(nn.LayerNorm()(x))


def body(
    network: str, hidden: Sequence[int], out: int, critic: bool, out_scale: float = 1.0, name: str | None = None
) -> nn.Module:
    """The body of an actor (``critic=False``) or one Q-network of ``network`` (``config.NETWORKS``),
    built inside the calling module's ``__call__`` (``name``: flax's automatic one, ``MLP_0``, if None)."""
    if network == "simba":
        return SimBa(tuple(hidden), out, out_scale, name=name)
    layer_norm = network == "mlp_ln" or (network == "mlp_ln_critic" and critic)
    return MLP(tuple(hidden), out, out_scale, layer_norm, name=name)


class GaussianActor(nn.Module):
    """SAC actor: mean and log-std of a Gaussian, squashed by tanh when sampled."""

    hidden: Sequence[int]
    action_size: int
    network: str = "mlp"

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = body(self.network, self.hidden, 2 * self.action_size, critic=False)(obs)
        mean, log_std = jnp.split(out, 2, axis=-1)
        # Squash log-std smoothly into [LOG_STD_MIN, LOG_STD_MAX] rather than clipping its gradient away.
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(log_std) + 1.0)
        return mean, log_std


class DeterministicActor(nn.Module):
    """TD3 actor: ``tanh`` of an MLP, actions in ``[-1, 1]``."""

    hidden: Sequence[int]
    action_size: int
    network: str = "mlp"

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        # A small output layer starts the policy near a = 0 instead of at the tanh saturation,
        # where the deterministic policy gradient vanishes (cf. DDPG's final-layer init).
        return jnp.tanh(body(self.network, self.hidden, self.action_size, critic=False, out_scale=1e-2)(obs))


class TwinCritic(nn.Module):
    """Two independent Q-networks ``q1``, ``q2`` of ``(obs, action)``; returns shape ``(2, batch)``."""

    hidden: Sequence[int]
    network: str = "mlp"

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        x = jnp.concatenate([obs, action], axis=-1)
        q1 = body(self.network, self.hidden, 1, critic=True, name="q1")(x)[..., 0]
        q2 = body(self.network, self.hidden, 1, critic=True, name="q2")(x)[..., 0]
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
    take it. The hidden units are what the modules ``sow`` as ``hidden_<n>``, the
    units of their ``Dense_<n>``: every hidden layer of an :class:`MLP` (after its
    LayerNorm, if any), and the wide layer of each SimBa :class:`ResidualBlock`
    (SimBa's residual stream has no ReLU of its own).

    >>> import jax, jax.numpy as jnp
    >>> net = MLP((2,), 1)
    >>> p = net.init(jax.random.key(0), jnp.ones((1, 1)))["params"]
    >>> p["Dense_0"] = {"kernel": jnp.array([[1.0, -1.0]]), "bias": jnp.zeros(2)}
    >>> {k: v.tolist() for k, v in unit_scores(net, p, jnp.array([[1.0], [3.0]])).items()}
    {'Dense_0/kernel': [2.0, 0.0]}
    """
    _, state = module.apply({"params": params}, *inputs, mutable=["intermediates"])
    scores = {}
    for prefix, layers in _sown(state["intermediates"]):
        for n in sorted(layers):
            h = layers[n]
            scores["/".join((*prefix, f"Dense_{n}", "kernel"))] = jnp.mean(jnp.abs(h.reshape(-1, h.shape[-1])), axis=0)
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


def _sown(tree: dict, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], dict[int, jax.Array]]]:
    """``(module path, {n: units})`` of every module that sowed hidden units (``hidden_<n>``)."""
    layers = {int(k.split("_")[1]): v[0] for k, v in tree.items() if k.startswith("hidden_")}
    found = [(prefix, layers)] if layers else []
    return found + [m for k, v in tree.items() if not k.startswith("hidden_") for m in _sown(v, (*prefix, k))]
