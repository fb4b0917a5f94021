"""Environments: brax physics tasks and probe tasks behind :func:`make_env`.

>>> from envs import make_env
>>> env = make_env("probe_bandit", num_envs=4, episode_length=1)  # doctest: +SKIP

- :func:`make_env` builds any env in :data:`ENV_NAMES` with brax's episode,
  vmap and auto-reset wrappers; :data:`BACKENDS` are brax's physics pipelines
  and :data:`DEFAULT_BACKENDS` the measured default per brax env.
- :class:`ProbeBandit` and :class:`ProbeConstant` have analytic values for
  quick agent tests.
"""

from envs.brax_envs import (
    BACKENDS,
    BRAX_ENV_NAMES,
    DEFAULT_BACKENDS,
    ENV_NAMES,
    PROBE_ENVS,
    make_env,
    resolve_backend,
    supported_backends,
)
from envs.probe import ProbeBandit, ProbeConstant

__all__ = [
    "BACKENDS",
    "BRAX_ENV_NAMES",
    "DEFAULT_BACKENDS",
    "ENV_NAMES",
    "PROBE_ENVS",
    "ProbeBandit",
    "ProbeConstant",
    "make_env",
    "resolve_backend",
    "supported_backends",
]
