"""Brax environments behind one constructor, :func:`make_env`.

``make_env`` validates its arguments, builds a brax environment (or a probe
from :mod:`envs.probe`) and wraps it with brax's own training wrappers, in the
order of ``brax.envs.create``::

    AutoResetWrapper(VmapWrapper(EpisodeWrapper(env), batch_size=num_envs))

where our :class:`AutoResetWrapper` restarts finished envs from fresh random
initial states (brax's replays the first one).

Default backends
----------------

Measured with ``python -m benchmarks.bench_env_backends`` (2-core CPU, jax
0.10.2, brax 0.14.2; ``num_envs=16``, one jitted ``lax.scan`` of 200 steps with
uniform random actions, best of 3 calls after a warm-up call; compile = the
ahead-of-time compile of that scan). Env steps/s (compile s):

=================  ================  =============  =============  =================
env                generalized       positional     spring         mjx
=================  ================  =============  =============  =================
halfcheetah        1,323 (24.8)      1,416 (28.6)   4,830 (16.4)   **2,846** (30.9)
hopper             **7,566** (18.1)  13,605 (17.5)  29,731 (17.1)  4,374 (27.9)
inverted_pendulum  **32,602** (9.3)  37,581 (14.3)  94,512 (7.8)   27,936 (15.7)
reacher            9,198 (13.4)      23,923 (15.7)  42,354 (12.7)  **29,561** (18.2)
=================  ================  =============  =============  =================

Bold = the default. Every pair built, compiled and stayed finite. Another
job shared the two cores during the run, so the figures are noisy: the
timed calls of one pair differ by up to 3x (the best is reported), and an
earlier solo run of halfcheetah/generalized gave 2,174 steps/s. Read only
large ratios as real.

Choice: the faster of the two pipelines that compute MuJoCo's rigid-body
dynamics in generalized coordinates, ``generalized`` and ``mjx`` (MuJoCo's own
JAX port). MuJoCo is the simulator behind the usual SAC/TD3 results on these
tasks, and brax runs both pipelines with the models' own timesteps and
actuator gears, so returns are on the familiar scale. ``spring`` (2-4x
faster still) is an impulse-based approximation meant for quick iteration,
and ``positional`` (position-based dynamics; 1.8x generalized on hopper, 2.6x
on reacher) is also approximate: for most envs brax gives these two a
smaller physics substep and sometimes other actuator gears (so dynamics,
and with other gears returns, differ from MuJoCo's), and for hopper and
walker2d no tuning at all. Neither is a
default; pass ``backend=`` to use them.

- halfcheetah: ``mjx`` (2.2x generalized best-of, 1.7x by median; only 1.3x
  against the solo generalized figure, so the margin is uncertain, but both
  are exact pipelines and nothing is lost either way).
- hopper: ``generalized`` (1.7x mjx).
- inverted_pendulum: ``generalized`` (1.2x mjx).
- reacher: ``mjx`` (3.2x generalized).
- every unmeasured env: ``generalized``, brax's own default (the only one
  swimmer supports); measure them with ``--envs`` before relying on speed.
"""

from __future__ import annotations

import warnings

from envs.registry import BRAX_MAINTENANCE_NOTICE, PLAYGROUND_ENV_NAMES, import_brax, resolve_backend

import_brax()  # before brax's first import: without MJX's notice that warp is absent

import brax.envs  # noqa: E402
from brax.envs.base import Env  # noqa: E402
from brax.envs.wrappers import training  # noqa: E402

from envs.probe import ProbeBandit, ProbeConstant  # noqa: E402
from envs.wrappers import AutoResetWrapper  # noqa: E402
from sparse_jax.validation import check_int, fail  # noqa: E402

# The classes of envs.registry.PROBE_ENV_NAMES (tests/test_envs.py checks the two agree).
PROBE_ENVS: dict[str, type[Env]] = {"probe_bandit": ProbeBandit, "probe_constant": ProbeConstant}


def make_env(
    name: str,
    *,
    backend: str | None = None,
    episode_length: int = 1000,
    action_repeat: int = 1,
    num_envs: int = 1,
    auto_reset: bool = True,
) -> Env:
    """A batched, auto-resetting brax environment.

    Every argument is checked before any environment is built or anything is
    compiled, so a bad configuration fails in microseconds.

    Args:
      name: one of :data:`ENV_NAMES`: a brax environment, a DeepMind Control
        task of MuJoCo Playground (:mod:`envs.playground`) or a probe
        (``"probe_bandit"``, ``"probe_constant"``).
      backend: one of :data:`BACKENDS`, or ``None`` for
        ``DEFAULT_BACKENDS[name]``; for a Playground task MJX's
        implementation, ``"jax"`` (``None``) or ``"warp"``. Probes have no
        physics and take ``None`` only.
      episode_length: episodes are truncated once they reach this many
        underlying env steps (brax's convention: each wrapped step counts
        ``action_repeat``); must be >= 1.
      action_repeat: each action is applied this many times and the rewards
        summed; must be >= 1.
      num_envs: batch size; must be >= 1.
      auto_reset: restart finished envs (see :class:`AutoResetWrapper`). Pass
        ``False`` for evaluation that stops at each env's first ``done``: the
        step then compiles without a reset inside, which is smaller and faster.

    Returns:
      The wrapped env. ``env.reset(key)`` (a raw ``jax.random.PRNGKey`` or a
      typed ``jax.random.key``) returns a ``brax.envs.base.State`` with ``obs``
      of shape ``(num_envs, env.observation_size)`` and ``reward`` / ``done`` of
      shape ``(num_envs,)``; ``env.step(state, action)`` takes actions of shape
      ``(num_envs, env.action_size)``. ``state.info["truncation"]`` is 1 where
      the episode ended by the time limit rather than by termination (a done
      that should still bootstrap). Done environments restart from a fresh
      random initial state (:class:`AutoResetWrapper`), so the returned
      ``obs`` of a done env is already the next episode's first observation.

    Raises:
      ValueError: unknown ``name`` or ``backend``, a backend the env does not
        support, or a count below 1; the message lists the allowed values.

    Example (not a doctest: building a brax env takes seconds)::

        env = make_env("inverted_pendulum", num_envs=2, episode_length=100)
        state = jax.jit(env.reset)(jax.random.PRNGKey(0))      # obs (2, 4)
        state = jax.jit(env.step)(state, jnp.zeros((2, env.action_size)))
    """
    # Long: most of it is the docstring and the argument checks, one per argument.
    backend = resolve_backend(name, backend)
    for arg, value in (("episode_length", episode_length), ("action_repeat", action_repeat), ("num_envs", num_envs)):
        if not isinstance(value, int):
            fail(arg, value, "an integer >= 1")
        check_int(arg, value, minimum=1)

    if name in PLAYGROUND_ENV_NAMES:
        from envs import playground

        task = playground.load_task(name, backend)
        return playground.wrap(
            task, episode_length=episode_length, action_repeat=action_repeat, num_envs=num_envs, auto_reset=auto_reset
        )
    if name in PROBE_ENVS:
        env = PROBE_ENVS[name]()
    else:
        with warnings.catch_warnings():  # brax's notice on every env it builds: said once, in the docs
            warnings.filterwarnings("ignore", message=BRAX_MAINTENANCE_NOTICE, category=UserWarning)
            env = brax.envs.get_environment(name, backend=backend)
    # brax.envs.create's order: the episode counter sits inside the vmap, so its
    # per-env fields get the batch axis, and auto-reset sees batched done flags.
    env = training.EpisodeWrapper(env, episode_length, action_repeat)
    env = training.VmapWrapper(env, batch_size=num_envs)
    return AutoResetWrapper(env) if auto_reset else env
