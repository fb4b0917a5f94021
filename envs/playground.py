"""MuJoCo Playground's DeepMind Control suite behind :func:`envs.make_env`.

The 25 tasks of :data:`envs.registry.PLAYGROUND_ENV_NAMES`, under Playground's
own names (``CartpoleSwingup``, ``CheetahRun``), with Playground's defaults:
1000-step episodes, action repeat 1, each task's own control timestep, rewards
in ``[0, 1]`` per step (returns on the suite's 0-1000 scale). Their models ship
inside the ``playground`` wheel, so building one reaches no network.

They are wrapped like brax's tasks (:func:`envs.brax_envs.make_env`)::

    AutoResetWrapper(VmapWrapper(EpisodeWrapper(task), batch_size=num_envs))

so a finished env restarts from a fresh random initial state (Playground's
own wrapper replays a cached first state unless asked otherwise), and keys may
be raw ``jax.random.PRNGKey`` arrays or typed ``jax.random.key`` keys (the
episode counter sits inside the vmap, where a key has no batch axis).

``backend`` picks MJX's implementation: ``"jax"`` (our default, on every
backend) or ``"warp"`` (Playground's default, NVIDIA GPUs only; on the CPU
it fails inside ``vmap``).
"""

from __future__ import annotations

from envs.registry import PLAYGROUND_ENV_NAMES, import_brax, import_quietly

import_brax()  # brax first, without MJX's notices

from brax.envs.wrappers import training  # noqa: E402

from envs.wrappers import AutoResetWrapper  # noqa: E402


def import_playground():
    """``mujoco_playground.dm_control_suite``, imported without the optional-package notices MJX prints."""
    return import_quietly("mujoco_playground").dm_control_suite


def load_task(name: str, impl: str = "jax"):
    """Playground's task ``name`` (unwrapped, unbatched) with MJX implementation ``impl``.

    Raises:
      ValueError: ``name`` is not one of :data:`PLAYGROUND_ENV_NAMES`.
    """
    if name not in PLAYGROUND_ENV_NAMES:
        raise ValueError(f"env={name!r} is not allowed; allowed: {', '.join(PLAYGROUND_ENV_NAMES)}")
    return import_playground().load(name, config_overrides={"impl": impl})


def wrap(task, *, episode_length: int, action_repeat: int, num_envs: int, auto_reset: bool):
    """``task`` with the episode counter, the batch axis and (if ``auto_reset``) fresh-state restarts."""
    env = training.EpisodeWrapper(task, episode_length, action_repeat)
    env = training.VmapWrapper(env, batch_size=num_envs)
    return AutoResetWrapper(env, physics="data") if auto_reset else env
