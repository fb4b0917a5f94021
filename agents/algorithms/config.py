"""Frozen run configurations. Every check runs in ``__post_init__``, before anything compiles."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import sparse_jax as sj
from agents.algorithms import ALGORITHMS
from envs.registry import resolve_backend
from sparse_jax.validation import check_choice, check_int, check_number, fail

# The built-in methods every algorithm trains (a sweep's default); sparse_jax.register_method adds others
# to sj.METHODS. Ensemble methods (eaudesac) are asked for by name: they need an algorithm with an
# ensemble variant (SAC) and cost about one critic update per member. So is the dense baseline at the
# sparse parameter count (small_dense): a program of its own per sparsity, for studies of scale.
METHODS = tuple(name for name, m in sj.METHODS.items() if not m.ensemble and not m.matches_active)


def _check_exact_int(name: str, value: object, minimum: int) -> None:
    """A config count must be a Python int (not 2.0, not True), at least ``minimum``."""
    if not isinstance(value, int):
        fail(name, value, f"an integer >= {minimum}")
    check_int(name, value, minimum=minimum)


# The bodies of actor and critics (agents.algorithms.networks.body builds them).
NETWORKS = ("mlp", "mlp_ln_critic", "mlp_ln", "simba")


@dataclasses.dataclass(frozen=True)
class SparsityConfig:
    """How the actor and critics are made and kept sparse.

    Attributes:
      method: a method of ``sparse_jax.METHODS``: ``dense``, ``static``, ``uniform_revival``, ``tar``, ``set``,
        ``rigl``, ``gmp``, ``small_dense`` (dense, narrowed to the sparse networks' parameter count at
        ``sparsity``), or one added with ``sparse_jax.register_method``.
      sparsity: fraction of each network's prunable weights removed, in ``[0, 1)``.
      actor_sparsity: overrides ``sparsity`` for the actor.
      critic_sparsity: overrides ``sparsity`` for the twin critics.
      score: base pruning score: ``random``, ``magnitude``, ``snip`` or ``synflow``.
      distribution: layer-wise distribution: ``uniform``, ``erk`` or ``global``.
      rho: revival reserve fraction of the static budget (TAR, uniform revival).
      phi: TAR's connectivity-floor fraction of the budget.
      additive: revival budget added on top of the static budget instead of reserved from it.
      revival_init: revived weights start at their ``initial`` values or at ``zero``.
      delta_t: gradient updates between SET/RigL/GMP mask updates.
      drop_fraction: SET/RigL initial drop fraction (cosine-decayed).
      end_fraction: SET/RigL stop rewiring, and GMP reaches its target sparsity, at this fraction of the updates.
      start_fraction: GMP trains dense until this fraction of the updates, then starts pruning.
      synflow_iterations: pruning rounds of the ``synflow`` score (Tanaka et al. 2020 use 100).
    """

    method: str = "dense"
    sparsity: float = 0.9
    actor_sparsity: float | None = None
    critic_sparsity: float | None = None
    score: str = "random"
    distribution: str = "erk"
    rho: float = 0.1
    phi: float = 0.2
    additive: bool = False
    revival_init: str = "initial"
    delta_t: int = 1000
    drop_fraction: float = 0.5
    end_fraction: float = 0.8
    start_fraction: float = 0.2
    synflow_iterations: int = 100

    def __post_init__(self):
        check_choice("method", self.method, sj.METHODS)
        for name in ("sparsity", "actor_sparsity", "critic_sparsity"):
            value = getattr(self, name)
            if value is not None:
                check_number(name, value, lo=0.0, hi=1.0, hi_open=True)
        sj.scores.check_score(self.score)
        if not isinstance(self.synflow_iterations, int):
            fail("synflow_iterations", self.synflow_iterations, "an integer >= 1")
        check_int("synflow_iterations", self.synflow_iterations, minimum=1)
        sj.distributions.check_distribution(self.distribution)
        _ = self.revival  # validates rho, phi and revival_init
        for network in ("actor", "critic"):  # validates delta_t, drop_fraction, end_fraction (start_fraction for GMP)
            _ = self.schedule(1, network)

    @property
    def mask_method(self) -> str:
        """The ``sparse_jax.sparse_init`` method that makes the initial masks (``static`` for SET and RigL)."""
        return sj.METHODS[self.method].mask

    @property
    def revival(self) -> sj.RevivalConfig:
        """The revival knobs as a ``sparse_jax.RevivalConfig``."""
        return sj.RevivalConfig(rho=self.rho, phi=self.phi, additive=self.additive, init=self.revival_init)

    def network_sparsity(self, network: str) -> float:
        """Configured sparsity of ``"actor"`` or ``"critic"`` (the ``dense`` method ignores it)."""
        own = self.actor_sparsity if network == "actor" else self.critic_sparsity
        return self.sparsity if own is None else own

    def schedule(self, total_updates: int, network: str = "critic") -> sj.DSTSchedule | sj.GMPSchedule:
        """The mask schedule of ``network`` over ``total_updates`` of its optimizer's updates.

        A rule on a :class:`sparse_jax.GMPSchedule` (GMP: Zhu & Gupta, defaults after Graesser
        et al. 2022, prune from 20% to 80% of training every 1000 updates) ends at the network's
        sparsity; every other method's is a :class:`sparse_jax.DSTSchedule` (SET's and RigL's).
        """
        total = max(int(total_updates), 1)
        rule = sj.METHODS[self.method].rule
        if rule is not None and rule.schedule_type is sj.GMPSchedule:
            sparsity = self.network_sparsity(network)
            return sj.GMPSchedule(total, sparsity, self.start_fraction, self.end_fraction, self.delta_t)
        return sj.DSTSchedule(total, self.delta_t, self.drop_fraction, self.end_fraction)


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """SAC's own hyperparameters (Haarnoja et al. 2018, with the learned temperature).

    Attributes:
      alpha_lr: the temperature's Adam learning rate.
      init_alpha: the initial temperature.
      target_entropy_scale: the target entropy is ``-target_entropy_scale * action_size`` (1, the
        default, is Haarnoja et al.'s ``-|A|``; smaller values ask for less randomness).
    """

    alpha_lr: float = 3e-4
    init_alpha: float = 1.0
    target_entropy_scale: float = 1.0

    def __post_init__(self):
        for name in ("alpha_lr", "init_alpha"):
            check_number(name, getattr(self, name), lo=0.0, lo_open=True)
        check_number("target_entropy_scale", self.target_entropy_scale, lo=0.0)


@dataclasses.dataclass(frozen=True)
class TD3Config:
    """TD3's own hyperparameters (Fujimoto et al. 2018).

    Attributes:
      policy_delay: critic updates per actor and target update.
      target_noise: std of the target policy smoothing noise.
      noise_clip: the smoothing noise is clipped to ``[-noise_clip, noise_clip]``.
      expl_noise: std of the Gaussian exploration noise added to the actor's action.
    """

    policy_delay: int = 2
    target_noise: float = 0.2
    noise_clip: float = 0.5
    expl_noise: float = 0.1

    def __post_init__(self):
        _check_exact_int("policy_delay", self.policy_delay, 1)
        for name in ("target_noise", "noise_clip", "expl_noise"):
            check_number(name, getattr(self, name), lo=0.0)


@dataclasses.dataclass(frozen=True)
class RedoConfig:
    """ReDo (Sokar et al. 2023): recycle the dormant hidden units of actor and critic every ``every`` updates.

    A hidden unit is dormant when its mean absolute activation on the update's
    replay batch is at most ``tau`` times its layer's mean; recycling it
    re-initialises its active incoming weights and its bias, zeroes its active
    outgoing weights and their optimizer moments, and leaves the masks as they
    are (:mod:`sparse_jax.redo`). It combines with every method.

    Attributes:
      every: gradient updates between recycling steps, counted over the whole
        run (after update ``every - 1``, ``2 * every - 1``, ...); 0 turns ReDo
        off (the default: the program is then the one without it).
      tau: the dormancy threshold (our default 0.1; the per-chunk dormant
        diagnostic uses ``TrainConfig.dormant_tau``).
    """

    every: int = 0
    tau: float = 0.1

    def __post_init__(self):
        _check_exact_int("redo.every", self.every, 0)
        check_number("redo.tau", self.tau, lo=0.0)

    @property
    def enabled(self) -> bool:
        """Whether units are recycled at all."""
        return self.every > 0


@dataclasses.dataclass(frozen=True)
class EauDeConfig:
    """EauDe (Vincent et al. 2025) for an ensemble method (``eaudesac``); other methods ignore it.

    ``members`` online critics train from one shared target critic. Every
    ``period`` gradient updates the member with the smallest mean TD loss since
    the last selection becomes the target (a hard copy), and every member is
    replaced by it pruned by magnitude to ``offset + k`` levels sparser (member
    ``k``, from 0), one level pruning ``increment`` of the weights left; the actor is
    pruned by magnitude to the target's level. Pruning stops at the method's
    ``sparsity`` (per network: ``actor_sparsity``, ``critic_sparsity``), its
    ceiling; the layers split each level's count by its ``distribution``
    (:mod:`sparse_jax.eaude`).

    Attributes:
      members: online critics, at least 2 (one vmapped axis inside the run).
      period: gradient updates between selections (the target is copied then, not Polyak-averaged).
      increment: the fraction of the remaining weights one level prunes, in ``(0, 1)``.
      offset: levels the least pruned member adds: 0 keeps the winner itself among the members (the
        losses may then stop the pruning), 1 or more prunes at every selection.
    """

    members: int = 5
    period: int = 250
    increment: float = 0.01
    offset: int = 0

    def __post_init__(self):
        _check_exact_int("eaude.members", self.members, 2)
        _check_exact_int("eaude.period", self.period, 1)
        check_number("eaude.increment", self.increment, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
        _check_exact_int("eaude.offset", self.offset, 0)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run (one algorithm, env and sparse method; seeds are a vmapped axis).

    Step counts are environment steps summed over the parallel envs. One
    iteration steps every parallel env once, then runs ``updates_per_step``
    gradient updates.

    Attributes:
      env: environment name (see ``envs.ENV_NAMES``).
      algo: ``sac`` or ``td3``.
      backend: Brax backend; ``None`` picks the measured default for the env.
      episode_length: steps before an episode is truncated.
      action_repeat: env steps per action.
      num_envs: parallel envs stepped per iteration.
      total_steps: env steps in the run, warm-up included.
      warmup_steps: env steps with uniformly random actions before learning starts.
      chunk_steps: env steps per jitted chunk; the host evaluates and reports between chunks.
      updates_per_step: gradient updates per iteration.
      batch_size: replay batch per gradient update.
      hidden: hidden layer widths of actor and critics (``simba``: one residual block per entry, all equal).
      network: the networks' body (:data:`NETWORKS`): ``mlp`` (ReLU MLPs, the
        default), ``mlp_ln_critic`` (LayerNorm before each ReLU of the critics), ``mlp_ln`` (of both),
        ``simba`` (SimBa: embedding, pre-LayerNorm residual blocks of width ``hidden[0]``, output LayerNorm).
      actor_lr: actor Adam learning rate.
      critic_lr: critic Adam learning rate.
      weight_decay: decoupled weight decay of the actor's and critics' Adam (AdamW, Loshchilov & Hutter
        2019; Ma et al. 2025 use 1e-2 with SimBa networks); 0, the default, is plain Adam. Inside the
        sparse transform it decays the active weights only: pruned ones stay exactly 0.
      gamma: discount.
      tau: Polyak rate of the target networks.
      buffer_capacity: replay capacity in transitions (capped at ``total_steps``).
      eval_episodes: deterministic evaluation episodes after every chunk.
      dormant_tau: after every chunk, a hidden unit whose mean absolute activation on a replay
        batch is at most ``dormant_tau`` times its layer's mean counts as dormant (Sokar et al.
        2023; 0 counts only dead units).
      sparse: the sparse-training method and its knobs.
      sac: SAC's own hyperparameters (read by ``algo="sac"`` only).
      td3: TD3's own hyperparameters (read by ``algo="td3"`` only).
      redo: recycling dormant units (ReDo), off by default.
      eaude: the ensemble of an ensemble method (``eaudesac``), read by it only.
    """

    env: str = "inverted_pendulum"
    algo: str = "sac"
    backend: str | None = None
    episode_length: int = 1000
    action_repeat: int = 1
    num_envs: int = 1
    total_steps: int = 20_000
    warmup_steps: int = 1_000
    chunk_steps: int = 2_000
    updates_per_step: int = 1
    batch_size: int = 256
    hidden: tuple[int, ...] = (256, 256)
    network: str = "mlp"
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    weight_decay: float = 0.0
    gamma: float = 0.99
    tau: float = 0.005
    buffer_capacity: int = 1_000_000
    eval_episodes: int = 4
    dormant_tau: float = 0.025
    sparse: SparsityConfig = SparsityConfig()
    sac: SACConfig = SACConfig()
    td3: TD3Config = TD3Config()
    redo: RedoConfig = RedoConfig()
    eaude: EauDeConfig = EauDeConfig()

    def __post_init__(self):
        check_choice("algo", self.algo, ALGORITHMS)
        if sj.METHODS[self.sparse.method].ensemble:
            able = [name for name, spec in ALGORITHMS.items() if spec.ensemble is not None]
            if ALGORITHMS[self.algo].ensemble is None:
                fail("algo", self.algo, f"an algorithm with an ensemble variant ({', '.join(able) or 'none'}) for "
                     f"method {self.sparse.method!r}, which trains an ensemble of critics")  # fmt: skip
            if self.redo.enabled:
                fail("redo.every", self.redo.every, f"0 with method {self.sparse.method!r} (ReDo does not recycle "
                     "the units of an ensemble)")  # fmt: skip
        positive = (
            "num_envs", "total_steps", "chunk_steps", "updates_per_step", "batch_size", "episode_length",
            "action_repeat", "buffer_capacity", "eval_episodes",
        )  # fmt: skip
        for name in positive:
            _check_exact_int(name, getattr(self, name), 1)
        _check_exact_int("warmup_steps", self.warmup_steps, 0)
        if self.warmup_steps >= self.total_steps:
            fail("warmup_steps", self.warmup_steps, f"an integer below total_steps={self.total_steps}")
        if self.chunk_steps > self.total_steps - self.warmup_steps:
            training = self.total_steps - self.warmup_steps
            fail("chunk_steps", self.chunk_steps, f"at most the training part, total_steps - warmup_steps = {training}")
        # Every iteration steps all num_envs envs: other counts would be rounded without a word.
        for name in ("chunk_steps", "warmup_steps"):
            value = getattr(self, name)
            if value % self.num_envs:
                fail(name, value, f"a multiple of num_envs={self.num_envs} (each iteration steps every env)")
        if not self.hidden or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in self.hidden):
            fail("hidden", self.hidden, "a non-empty tuple of positive int widths")
        check_choice("network", self.network, NETWORKS)
        if self.network == "simba" and len(set(self.hidden)) > 1:
            fail("hidden", self.hidden, "equal widths with network='simba' (one residual stream, one block per entry)")
        check_number("gamma", self.gamma, lo=0.0, hi=1.0, hi_open=True)
        check_number("tau", self.tau, lo=0.0, hi=1.0, lo_open=True)
        check_number("weight_decay", self.weight_decay, lo=0.0)
        for name in ("actor_lr", "critic_lr"):
            check_number(name, getattr(self, name), lo=0.0, lo_open=True)
        check_number("dormant_tau", self.dormant_tau, lo=0.0)
        resolve_backend(self.env, self.backend)  # unknown env or backend fails here, before anything is written

    @property
    def chunk_iters(self) -> int:
        """Iterations per chunk."""
        return self.chunk_steps // self.num_envs

    @property
    def num_chunks(self) -> int:
        """Training chunks after warm-up (the remainder of a partial chunk is dropped)."""
        return (self.total_steps - self.warmup_steps) // (self.chunk_iters * self.num_envs)

    @property
    def warmup_iters(self) -> int:
        """Warm-up iterations (random actions, no updates)."""
        return -(-self.warmup_steps // self.num_envs)

    @property
    def total_updates(self) -> int:
        """Gradient updates over the whole run."""
        return self.num_chunks * self.chunk_iters * self.updates_per_step

    @property
    def capacity(self) -> int:
        """Replay slots actually allocated."""
        return min(self.buffer_capacity, self.total_steps)


# The sparsity settings that change only what a run's masks are made of: never the compiled program of a
# method without a mask rule (tests/test_train.py checks the lowered program), and a rule's only through
# its static top-k bounds (which make_algorithm's share_with widens) and its program_tag.
MASK_AXES = ("sparsity", "score", "distribution", "rho", "phi", "method")


def get_field(config: Any, path: str) -> Any:
    """The value of a dotted field of a config (``"sparse.rho"``, ``"actor_lr"``)."""
    for name in path.split("."):
        config = getattr(config, name)
    return config


def replace_field(config: Any, path: str, value: Any) -> Any:
    """``config`` with its dotted field ``path`` set to ``value`` (nested configs replaced, not mutated)."""
    head, _, rest = path.partition(".")
    if not rest:
        return dataclasses.replace(config, **{head: value})
    return dataclasses.replace(config, **{head: replace_field(getattr(config, head), rest, value)})


def traced_fields(config: TrainConfig) -> tuple[str, ...]:
    """The hyperparameters of ``config`` that are values of each run, not constants of the compiled program:
    its algorithm's :attr:`agents.algorithms.AlgorithmSpec.traced`."""
    return ALGORITHMS[config.algo].traced


def hyper_values(config: TrainConfig) -> dict[str, np.ndarray]:
    """One run's values of its :func:`traced_fields`, as float32 scalars keyed by field name.

    Two derived values come with their fields, computed as the constants of a
    program that is not traced are, so that a run's results are the same bits
    either way: with ``tau`` comes ``1-tau`` (in float64, then rounded), with
    ``sac.init_alpha`` its float32 log ``sac.log_init_alpha`` (the temperature
    is stored as its log).
    """
    values = {f: np.float32(get_field(config, f)) for f in traced_fields(config)}
    if "tau" in values:
        values["1-tau"] = np.float32(1.0 - config.tau)
    if "sac.init_alpha" in values:
        values["sac.log_init_alpha"] = np.float32(log_init_alpha(config.sac.init_alpha))
    return values


def log_init_alpha(init_alpha: float) -> float:
    """The initial temperature's log as SAC stores it: a float32 log, the same bits traced or constant.

    >>> log_init_alpha(1.0)
    0.0
    """
    with jax.ensure_compile_time_eval():  # a constant even where called inside a trace
        return float(jnp.log(jnp.float32(init_alpha)))


def program_key(config: TrainConfig) -> tuple[TrainConfig, Hashable]:
    """What decides the compiled training program of a run: runs whose keys are equal share one.

    The key is the config with the :data:`MASK_AXES` and the algorithm's
    :func:`traced_fields` (learning rates, discount, Polyak rate: values of
    each run) set aside, plus the
    method's :meth:`sparse_jax.SparseMethod.program_tag`: every fixed-mask
    method (dense, static, uniform_revival, tar) shares one program per env,
    algorithm and network; a method with a mask rule gets its own, split by
    what its rule's update depends on (SET and RigL keep ``global`` apart,
    whose top-k has no per-layer bound; GMP's distribution shapes its table).
    The dense baseline at the sparse parameter count (``small_dense``) gets
    one per sparsity, which sets its width.
    The sweep's planner, :func:`agents.execution.runner.check_batch` and the runner's
    masking all ask this one function.
    """
    neutral = dataclasses.replace(config.sparse, **{f: getattr(_NEUTRAL, f) for f in MASK_AXES})
    method = sj.get_method(config.sparse.method)
    tag = method.program_tag(config.sparse.distribution)
    if method.matches_active:  # its sparsity sets its networks' width (agents.execution.train.trained_hidden)
        tag = (tag, "width of", config.sparse.sparsity)
    key = dataclasses.replace(config, sparse=neutral)
    for f in traced_fields(config):
        key = replace_field(key, f, get_field(_NEUTRAL_TRAIN, f))
    return key, tag


_NEUTRAL = SparsityConfig()
_NEUTRAL_TRAIN = TrainConfig()


# The nested config classes of TrainConfig, by field name.
SECTIONS = {"sparse": SparsityConfig, "sac": SACConfig, "td3": TD3Config, "redo": RedoConfig, "eaude": EauDeConfig}


def train_config_from_json(data: dict) -> TrainConfig:
    """The ``TrainConfig`` that ``dataclasses.asdict`` wrote as JSON (``run.json``'s ``config``, ``config.json``'s
    ``train``); fields missing from ``data`` take their defaults.

    >>> train_config_from_json({"env": "probe_bandit", "hidden": [8], "sac": {"init_alpha": 0.5}}).sac.init_alpha
    0.5
    """
    fields = dict(data)
    sections = {name: cls(**fields.pop(name, {})) for name, cls in SECTIONS.items()}
    if "hidden" in fields:
        fields["hidden"] = tuple(fields["hidden"])
    return TrainConfig(**fields, **sections)
