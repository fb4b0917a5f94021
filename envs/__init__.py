"""Environments: brax physics tasks, the DeepMind Control suite and probe tasks behind :func:`make_env`.

>>> from envs import make_env
>>> env = make_env("probe_bandit", num_envs=4, episode_length=1)  # doctest: +SKIP

- :func:`make_env` builds any env in :data:`ENV_NAMES` with brax's episode,
  vmap and auto-reset wrappers; :data:`BACKENDS` are brax's physics pipelines
  and :data:`DEFAULT_BACKENDS` the measured default per brax env.
- :data:`PLAYGROUND_ENV_NAMES` are MuJoCo Playground's DeepMind Control
  tasks (:mod:`envs.playground`), built with MJX's ``jax`` implementation
  (:data:`PLAYGROUND_IMPLS`).
- :class:`ProbeBandit` and :class:`ProbeConstant` have analytic values for
  quick agent tests.
"""

from envs.registry import (
    BACKENDS,
    BRAX_ENV_NAMES,
    DEFAULT_BACKENDS,
    ENV_NAMES,
    PLAYGROUND_ENV_NAMES,
    PLAYGROUND_IMPLS,
    PROBE_ENV_NAMES,
    resolve_backend,
    supported_backends,
)

# Building envs imports brax; what needs only the names above does not.
_LAZY = {
    "make_env": "envs.brax_envs",
    "PROBE_ENVS": "envs.brax_envs",
    "ProbeBandit": "envs.probe",
    "ProbeConstant": "envs.probe",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'envs' has no attribute {name!r}")


__all__ = [
    "BACKENDS",
    "BRAX_ENV_NAMES",
    "DEFAULT_BACKENDS",
    "ENV_NAMES",
    "PLAYGROUND_ENV_NAMES",
    "PLAYGROUND_IMPLS",
    "PROBE_ENVS",
    "PROBE_ENV_NAMES",
    "ProbeBandit",
    "ProbeConstant",
    "make_env",
    "resolve_backend",
    "supported_backends",
]
