"""The auto-reset wrapper that brax's and MuJoCo Playground's tasks share (:func:`envs.make_env` puts it outermost)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from envs.registry import import_brax

import_brax()  # brax first, without MJX's notices

from brax.envs.base import Env, State  # noqa: E402
from brax.envs.wrappers import training  # noqa: E402


class AutoResetWrapper(training.Wrapper):
    """Restart every finished env from a fresh random initial state.

    brax's own ``AutoResetWrapper`` restarts a finished env from the state it
    cached at ``reset``, so each env slot replays one initial state forever:
    with the few parallel envs used on a CPU, a deterministic policy (TD3)
    then sees only ``num_envs`` start states and generalises poorly to the
    random starts of evaluation. Here a fresh reset, drawn from a key carried
    in ``state.info["reset_key"]``, replaces each finished env (gym semantics).
    The reset is computed every step and selected where ``done``, which costs
    one batched ``reset`` per step.

    ``observation_size`` comes from shape inference: brax's runs an un-jitted
    ``reset`` op by op, which takes tens of seconds on CPU.

    ``physics`` names the state's simulator field: ``pipeline_state`` for
    brax's envs, ``data`` for MuJoCo Playground's. A Playground task's own
    ``info`` entries (its key, a time-out flag) restart too, as Playground's
    full reset does; the episode counter's entries do not.
    """

    # What brax's EpisodeWrapper and this wrapper keep in info: they carry on across an automatic reset.
    _WRAPPER_INFO = ("steps", "truncation", "episode_done", "episode_metrics", "reset_key")

    def __init__(self, env: Env, physics: str = "pipeline_state"):
        super().__init__(env)
        self.physics = physics

    def reset(self, rng: jax.Array) -> State:
        """Reset all envs; give each its own key for its later resets."""
        key, sub = jax.random.split(rng)
        state = self.env.reset(sub)
        # One key per env, so the inner VmapWrapper maps over it like every other field.
        state.info["reset_key"] = jax.random.split(key, state.done.shape[0])
        return state

    def step(self, state: State, action: jax.Array) -> State:
        """Step, then replace every env that finished with a freshly reset one."""
        if "steps" in state.info:
            state.info["steps"] = jnp.where(state.done, jnp.zeros_like(state.info["steps"]), state.info["steps"])
        keys = jax.vmap(jax.random.split)(state.info["reset_key"])
        state = self.env.step(state.replace(done=jnp.zeros_like(state.done)), action)
        fresh = jax.vmap(self.env.env.reset)(keys[:, 1])

        def where_done(new, old):
            done = jnp.reshape(state.done, state.done.shape + (1,) * (old.ndim - state.done.ndim))
            return jnp.where(done, new, old)

        physics = jax.tree.map(where_done, getattr(fresh, self.physics), getattr(state, self.physics))
        info = dict(state.info, reset_key=keys[:, 0])
        if self.physics != "pipeline_state":
            own = {k: v for k, v in fresh.info.items() if k not in self._WRAPPER_INFO}
            info.update(jax.tree.map(where_done, own, {k: state.info[k] for k in own}))
        return state.replace(**{self.physics: physics}, obs=where_done(fresh.obs, state.obs), info=info)

    @functools.cached_property
    def observation_size(self):
        """The last axis of the observation (a pytree of shapes for dict observations)."""
        obs = jax.eval_shape(self.unwrapped.reset, jax.random.PRNGKey(0)).obs
        if isinstance(obs, jax.ShapeDtypeStruct):
            return obs.shape[-1]
        return jax.tree.map(lambda x: x.shape, obs)
