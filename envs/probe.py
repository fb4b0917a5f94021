"""Probe environments with analytic values, for fast agent tests.

Each probe is a ``brax.envs.base.Env`` subclass, so :func:`envs.make_env`
wraps it with the same wrappers (brax's episode and vmap wrappers, and
:class:`envs.wrappers.AutoResetWrapper`) as a physics environment. Probes have
no physics: their states carry ``pipeline_state=None`` (the auto-reset maps
over it as an empty pytree) and their ``backend`` is ``"none"``.

- :class:`ProbeBandit` (``"probe_bandit"``): one-step episodes; the critic's
  target is the reward itself, ``Q(s, a) = -sum((a - t)^2) / d``, and the
  optimal action is the observed target ``t``.
- :class:`ProbeConstant` (``"probe_constant"``): reward 1 forever, episodes end
  only by truncation; ``Q = 1 / (1 - gamma)`` for every action when the agent
  bootstraps through truncation.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from envs.registry import import_brax

import_brax()  # before brax's first import: without MJX's notice that warp is absent

from brax.envs.base import Env, State  # noqa: E402

from sparse_jax.validation import check_int, fail  # noqa: E402


def _check_dim(name: str, value: int) -> None:
    if not isinstance(value, int):
        fail(name, value, "an integer >= 1")
    check_int(name, value, minimum=1)


def _raw_key(rng: jax.Array) -> jax.Array:
    """The ``uint32`` data of a key, so it can go through ``jnp.where`` and brax's wrappers."""
    if jnp.issubdtype(rng.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(rng)
    return rng


@dataclasses.dataclass(frozen=True)
class ProbeBandit(Env):
    """A contextual bandit: every episode is one step long.

    The observation is a target ``t ~ U[-1, 1]^dim``; the action ``a`` (meant to
    lie in ``[-1, 1]^dim``; it is not clipped) earns
    ``reward = -sum((a - t)^2) / dim`` and ends the episode (``done = 1``, never
    a truncation). Analytic values:

    - ``Q(s, a) = reward(s, a)`` exactly for every discount: the step is
      terminal, so there is no bootstrap term. With an entropy bonus (SAC) the
      critic target is still the reward, because the soft value of the terminal
      next state is not used.
    - The optimal action is ``a* = t`` with ``Q(s, a*) = 0``; a random uniform
      action earns ``E[reward] = -2/3`` on average over ``t``.

    Each step draws the next target from a key carried in ``state.info["rng"]``.
    ``make_env``'s :class:`~envs.wrappers.AutoResetWrapper` restarts a done
    environment with a fresh ``reset`` from its own key, so every episode
    shows a new target. (brax's own ``AutoResetWrapper`` would instead restore
    the observation cached in ``state.info["first_obs"]``; when that key is
    present the step writes the new target there too.) Inside an ``action_repeat``
    loop, steps after the terminal one are no-ops with zero reward, so the
    episode reward is the single bandit reward for any ``action_repeat``.

    Attributes:
      dim: the observation and action size ``d``.

    Example::

        env = ProbeBandit(dim=2)
        state = env.reset(jax.random.key(0))           # state.obs is the target t
        state = env.step(state, state.obs)             # reward 0, done 1
    """

    dim: int = 1

    def __post_init__(self):
        _check_dim("dim", self.dim)

    def reset(self, rng: jax.Array) -> State:
        """A fresh target; ``pipeline_state`` is ``None`` and reward and done are 0."""
        k_target, k_next = jax.random.split(_raw_key(rng))
        zero = jnp.zeros(())
        return State(
            pipeline_state=None,
            obs=self._target(k_target),
            reward=zero,
            done=zero,
            metrics={},
            info={"rng": k_next},
        )

    def step(self, state: State, action: jax.Array) -> State:
        """Reward the action against the current target, end the episode, draw the next target."""
        target = state.obs
        reward = -jnp.sum((action - target) ** 2, axis=-1) / self.dim
        k_target, k_next = jax.random.split(state.info["rng"])
        next_target = self._target(k_target)
        # A step taken after the terminal one (only inside action_repeat) changes nothing.
        already_done = state.done > 0
        info = dict(state.info)
        info["rng"] = jnp.where(already_done, state.info["rng"], k_next)
        obs = jnp.where(already_done, target, next_target)
        if "first_obs" in info:
            info["first_obs"] = jnp.where(already_done, info["first_obs"], next_target)
        return state.replace(
            obs=obs,
            reward=jnp.where(already_done, jnp.zeros_like(reward), reward),
            done=jnp.ones_like(state.done),
            info=info,
        )

    def _target(self, key: jax.Array) -> jax.Array:
        return jax.random.uniform(key, (self.dim,), minval=-1.0, maxval=1.0)

    @property
    def observation_size(self) -> int:
        """``dim``: the target."""
        return self.dim

    @property
    def action_size(self) -> int:
        """``dim``."""
        return self.dim

    @property
    def backend(self) -> str:
        """``"none"``: no physics."""
        return "none"


@dataclasses.dataclass(frozen=True)
class ProbeConstant(Env):
    """Reward 1 on every step, a constant observation, no termination.

    ``done`` is always 0 from the environment itself; episodes end only when the
    episode wrapper truncates them (``state.info["truncation"] = 1``). Analytic
    values, for discount ``gamma`` and any action:

    - ``Q = V = 1 / (1 - gamma)`` when the critic bootstraps through truncation
      (the correct treatment: a time limit is not a terminal state). A critic
      that wrongly treats truncation as terminal learns less, about
      ``(1 - gamma^k) / (1 - gamma)`` with ``k`` steps left in the episode.
    - With SAC's entropy bonus, ``Q = (1 + gamma * alpha * H) / (1 - gamma)``
      where ``H = E[-log pi(a|s)]`` is the policy's (constant) entropy.

    Attributes:
      obs_dim: the observation size; the observation is ``ones(obs_dim)``.
      action_dim: the action size; actions are ignored.

    Example::

        env = ProbeConstant()
        state = env.step(env.reset(jax.random.key(0)), jnp.zeros(1))   # reward 1, done 0
    """

    obs_dim: int = 1
    action_dim: int = 1

    def __post_init__(self):
        _check_dim("obs_dim", self.obs_dim)
        _check_dim("action_dim", self.action_dim)

    def reset(self, rng: jax.Array) -> State:
        """The constant observation; ``pipeline_state`` is ``None`` and reward and done are 0."""
        del rng
        zero = jnp.zeros(())
        return State(pipeline_state=None, obs=jnp.ones((self.obs_dim,)), reward=zero, done=zero, metrics={}, info={})

    def step(self, state: State, action: jax.Array) -> State:
        """Reward 1, same observation, not done."""
        del action
        return state.replace(reward=jnp.ones_like(state.reward), done=jnp.zeros_like(state.done))

    @property
    def observation_size(self) -> int:
        """``obs_dim``."""
        return self.obs_dim

    @property
    def action_size(self) -> int:
        """``action_dim``."""
        return self.action_dim

    @property
    def backend(self) -> str:
        """``"none"``: no physics."""
        return "none"
