"""The algorithm registry: a name per algorithm, its factory loaded on first use.

An algorithm is one file (its losses, state type and a factory
``(config, obs_size, action_size, make_tx) -> Algorithm``, as
``agents/algorithms/sac.py``) plus one :func:`register_algorithm` line, here for the
built-in ones or in your own code for yours. The factory may be given as a
``"module:function"`` string, so that what only needs the names (configs,
the sweep's checks, reports) never imports flax or brax.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from sparse_jax.validation import check_choice, fail

if TYPE_CHECKING:
    from agents.algorithms.types import Algorithm


@dataclasses.dataclass(frozen=True)
class AlgorithmSpec:
    """One registered algorithm.

    Attributes:
      name: its name in configs, run ids and tables (lowercase letters, digits, ``_``).
      factory: ``(config, obs_size, action_size, make_tx) -> Algorithm``, or ``"module:function"`` naming it.
      description: one line for listings.
      flops_per_update: the FLOPs of one gradient update, per network the algorithm keeps masks for
        (``run.json``'s ``params`` keys), in forwards of that network: the weights of the report's
        FLOPs model (:mod:`agents.results.stats`). ``None``: ``{"actor": 3, "critic": 4}``, an
        actor-critic update (forward and backward of both, a forward of the target critic).
      ensemble: the factory of its ensemble variant, which trains ensemble methods
        (``sparse_jax.SparseMethod.ensemble``: ``eaudesac``), same signature; ``None``: it has none.
      traced: the train config fields (dotted: ``"sac.alpha_lr"``) its ``update``, ``act`` and ``init_state``
        read from their ``hyper`` argument, one value per run (:func:`agents.algorithms.config.hyper_values`),
        rather than from the config: runs that differ only in these share one compiled program
        (:func:`agents.algorithms.config.program_key`). ``"redo.tau"`` here: the training chunk reads ReDo's
        threshold from ``hyper`` too. ``()``: every field is a constant of the program, and ``hyper`` is
        never given.
    """

    name: str
    factory: Callable[..., Algorithm] | str
    description: str = ""
    flops_per_update: Mapping[str, float] | None = None
    ensemble: Callable[..., Algorithm] | str | None = None
    traced: tuple[str, ...] = ()

    def __post_init__(self):
        if not isinstance(self.name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            fail("name", self.name, "lowercase letters, digits and '_', starting with a letter (run ids hold it)")
        for field in ("factory", "ensemble"):
            value = getattr(self, field)
            if field == "ensemble" and value is None:
                continue
            if not (callable(value) or (isinstance(value, str) and re.fullmatch(r"[\w.]+:\w+", value))):
                fail(field, value, "a callable or a 'module:function' string")
        weights = self.flops_per_update
        if weights is not None and not (
            isinstance(weights, Mapping)
            and "actor" in weights
            and all(isinstance(w, int | float) and not isinstance(w, bool) and w > 0 for w in weights.values())
        ):
            fail("flops_per_update", weights, "None or a mapping with 'actor', from network name to a number > 0")
        if not isinstance(self.traced, tuple) or not all(isinstance(f, str) for f in self.traced):
            fail("traced", self.traced, "a tuple of train config field names ('actor_lr', 'sac.alpha_lr', ...)")

    def make(self, ensemble: bool = False) -> Callable[..., Algorithm]:
        """The factory, or with ``ensemble`` its ensemble variant's (imported now when given by name)."""
        factory = self.ensemble if ensemble else self.factory
        if factory is None:
            raise ValueError(f"algorithm {self.name!r} has no ensemble variant (AlgorithmSpec.ensemble is None).")
        if callable(factory):
            return factory
        module, function = factory.split(":")
        return getattr(importlib.import_module(module), function)


ALGORITHMS: dict[str, AlgorithmSpec] = {}


def register_algorithm(
    name: str,
    factory: Callable[..., Algorithm] | str,
    description: str = "",
    *,
    flops_per_update: Mapping[str, float] | None = None,
    ensemble: Callable[..., Algorithm] | str | None = None,
    traced: tuple[str, ...] = (),
    replace: bool = False,
) -> AlgorithmSpec:
    """Add an algorithm to :data:`ALGORITHMS` (so configs, sweeps and the trainer know it); returns its spec.

    ``flops_per_update`` is the report's FLOPs model for it, ``ensemble`` its ensemble variant and
    ``traced`` the hyperparameters its update takes per run (see :class:`AlgorithmSpec`). A name
    already registered is refused unless ``replace=True``.
    """
    spec = AlgorithmSpec(name, factory, description, flops_per_update, ensemble, traced)
    if name in ALGORITHMS and not replace:
        raise ValueError(f"algorithm {name!r} is already registered; pick another name or pass replace=True.")
    ALGORITHMS[name] = spec
    return spec


def unregister_algorithm(name: str) -> None:
    """Remove a registered algorithm (for tests and notebooks that register one for a while)."""
    check_choice("algo", name, ALGORITHMS)
    del ALGORITHMS[name]


def get_algorithm(name: str, ensemble: bool = False) -> Callable[..., Algorithm]:
    """The factory of the algorithm ``name`` (its ensemble variant's with ``ensemble``).

    An unknown name is an error listing the registered ones.
    """
    return ALGORITHMS[check_choice("algo", name, ALGORITHMS)].make(ensemble)


register_algorithm(
    "sac",
    "agents.algorithms.sac:make_sac",
    "Soft Actor-Critic (Haarnoja et al. 2018), twin critics",
    ensemble="agents.algorithms.eaudesac:make_eaudesac",
    traced=(
        "actor_lr",
        "critic_lr",
        "sac.alpha_lr",
        "gamma",
        "tau",
        "sac.init_alpha",
        "sac.target_entropy_scale",
        "redo.tau",
    ),
)
register_algorithm(
    "td3",
    "agents.algorithms.td3:make_td3",
    "TD3 (Fujimoto et al. 2018): target smoothing, delayed updates",
    traced=(
        "actor_lr",
        "critic_lr",
        "gamma",
        "tau",
        "td3.target_noise",
        "td3.noise_clip",
        "td3.expl_noise",
        "redo.tau",
    ),
)
