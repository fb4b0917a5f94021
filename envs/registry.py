"""What the environments are, by name, without importing brax: names, backends and their checks.

Configs and sweeps validate env names and backends with these; building an
env (:func:`envs.make_env`) is what imports brax (or MuJoCo Playground).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
import warnings

from sparse_jax.validation import check_choice, fail

# What MuJoCo's MJX prints when the optional warp package is absent (we never use warp).
_MJX_NOTICES = ("Failed to import warp:", "Failed to import mujoco_warp:")
# brax's notice on every env it builds; the project's docs say which tasks it offers and why.
BRAX_MAINTENANCE_NOTICE = "Brax System, piplines and environments are not actively being maintained"


def import_brax() -> None:
    """Import ``brax.envs`` without MJX's two lines saying the optional warp package is absent.

    ``mujoco.mjx`` prints them to stdout on import when warp is not installed;
    they are dropped, and anything else the import prints is passed on. So is
    the deprecation warning of jaxopt, which brax imports and we never call.
    """
    import_quietly("brax.envs")


def import_quietly(module: str):
    """Import ``module`` without MJX's warp notices on stdout or jaxopt's deprecation warning; return it.

    Anything else the import prints or warns is passed on.
    """
    if module in sys.modules:
        return sys.modules[module]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="JAXopt is no longer maintained", category=DeprecationWarning)
        imported = importlib.import_module(module)
    sys.stdout.write("".join(line for line in printed.getvalue().splitlines(True) if not line.startswith(_MJX_NOTICES)))
    return imported


BACKENDS: tuple[str, ...] = ("generalized", "positional", "spring", "mjx")
"""brax's physics pipelines; every one of them constructs and steps in brax 0.14.2."""

BRAX_ENV_NAMES: tuple[str, ...] = (
    "ant",
    "halfcheetah",
    "hopper",
    "humanoid",
    "humanoidstandup",
    "inverted_double_pendulum",
    "inverted_pendulum",
    "pusher",
    "reacher",
    "swimmer",
    "walker2d",
)

PLAYGROUND_ENV_NAMES: tuple[str, ...] = (
    "AcrobotSwingup",
    "AcrobotSwingupSparse",
    "BallInCup",
    "CartpoleBalance",
    "CartpoleBalanceSparse",
    "CartpoleSwingup",
    "CartpoleSwingupSparse",
    "CheetahRun",
    "FingerSpin",
    "FingerTurnEasy",
    "FingerTurnHard",
    "FishSwim",
    "HopperHop",
    "HopperStand",
    "HumanoidRun",
    "HumanoidStand",
    "HumanoidWalk",
    "PendulumSwingup",
    "PointMass",
    "ReacherEasy",
    "ReacherHard",
    "SwimmerSwimmer6",
    "WalkerRun",
    "WalkerStand",
    "WalkerWalk",
)
"""The DeepMind Control suite as MuJoCo Playground ports it, under Playground's names.

Every task of ``mujoco_playground.dm_control_suite``: their models ship inside
the ``playground`` wheel, so nothing is downloaded (:mod:`envs.playground`).
"""

PLAYGROUND_IMPLS: tuple[str, ...] = ("jax", "warp")
"""MJX's implementations for Playground tasks: ``jax`` (the default, every backend) or ``warp`` (NVIDIA GPUs)."""

PROBE_ENV_NAMES: tuple[str, ...] = ("probe_bandit", "probe_constant")
"""The probe tasks of :mod:`envs.probe` (analytic values, no physics)."""

ENV_NAMES: tuple[str, ...] = BRAX_ENV_NAMES + PLAYGROUND_ENV_NAMES + PROBE_ENV_NAMES

# brax's swimmer raises for any other backend.
_ONLY_BACKENDS: dict[str, tuple[str, ...]] = {"swimmer": ("generalized",)}

DEFAULT_BACKENDS: dict[str, str] = {
    "ant": "generalized",  # not measured: brax's default
    "halfcheetah": "mjx",  # measured: 2.2x generalized
    "hopper": "generalized",  # measured: 1.7x mjx
    "humanoid": "generalized",  # not measured: brax's default
    "humanoidstandup": "generalized",  # not measured: brax's default
    "inverted_double_pendulum": "generalized",  # not measured: brax's default
    "inverted_pendulum": "generalized",  # measured: 1.2x mjx
    "pusher": "generalized",  # not measured: brax's default
    "reacher": "mjx",  # measured: 3.2x generalized
    "swimmer": "generalized",  # the only backend brax's swimmer supports
    "walker2d": "generalized",  # not measured: brax's default
}
"""The backend ``make_env`` uses for each brax env when ``backend=None`` (measured: see :mod:`envs.brax_envs`)."""


def supported_backends(name: str) -> tuple[str, ...]:
    """The backends brax accepts for the brax env ``name`` (for a Playground task, MJX's implementations).

    >>> supported_backends("swimmer")
    ('generalized',)
    >>> supported_backends("CartpoleSwingup")
    ('jax', 'warp')
    """
    _check_name(name)
    if name in PROBE_ENV_NAMES:
        raise ValueError(f"{name!r} is a probe env without physics; backends apply to {BRAX_ENV_NAMES}.")
    if name in PLAYGROUND_ENV_NAMES:
        return PLAYGROUND_IMPLS
    return _ONLY_BACKENDS.get(name, BACKENDS)


def resolve_backend(name: str, backend: str | None) -> str | None:
    """The backend ``make_env(name, backend=backend)`` uses; ``None`` for probes.

    For a Playground task (:data:`PLAYGROUND_ENV_NAMES`) the backend is MJX's
    implementation, one of :data:`PLAYGROUND_IMPLS`; ``None`` means ``jax``.

    Raises:
      ValueError: unknown ``name`` or ``backend``, a backend ``name`` does not
        support, or any backend for a probe env; the message lists the allowed values.

    >>> resolve_backend("probe_bandit", None) is None
    True
    >>> resolve_backend("hopper", "positional")
    'positional'
    >>> resolve_backend("CheetahRun", None)
    'jax'
    """
    _check_name(name)
    if name in PLAYGROUND_ENV_NAMES:
        if backend is not None and backend not in PLAYGROUND_IMPLS:
            fail("backend", backend, f"{', '.join(PLAYGROUND_IMPLS)} (MJX's implementations for {name!r}) or None")
        return backend or "jax"
    if backend is not None and backend not in BACKENDS:
        fail("backend", backend, f"{', '.join(BACKENDS)} (or None for the env's default in DEFAULT_BACKENDS)")
    if name in PROBE_ENV_NAMES:
        if backend is not None:  # a probe has no physics: a backend asked for would be silently unused
            fail("backend", backend, f"None for {name!r}, a probe env without a physics backend")
        return None
    if backend is None:
        return DEFAULT_BACKENDS[name]
    allowed = _ONLY_BACKENDS.get(name, BACKENDS)
    if backend not in allowed:
        fail("backend", backend, f"{', '.join(allowed)} (what brax's {name!r} supports)")
    return backend


def _check_name(name: str) -> None:
    if name not in ENV_NAMES:
        check_choice("env", name, ENV_NAMES)
