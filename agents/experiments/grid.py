"""The grid of a sweep: cells, runs, programs and batches, the presets, and the sweep config on disk.

A cell is one point of envs x algorithms x widths x sparsities x base scores
x distributions x rhos (see :class:`SweepConfig`); every cell runs every
method. :meth:`SweepConfig.programs` groups the runs into compiled programs
(:func:`agents.algorithms.config.program_key`) and :meth:`SweepConfig.batches` splits
them into batches. Nothing here trains or imports the training code, so the
report and the planner's callers read a sweep's grid without flax or brax.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import sparse_jax as sj
from agents import results
from agents.algorithms import ALGORITHMS
from agents.algorithms.config import (
    METHODS,
    SECTIONS,
    SACConfig,
    SparsityConfig,
    TrainConfig,
    get_field,
    program_key,
    train_config_from_json,
)
from envs.registry import ENV_NAMES
from sparse_jax.validation import check_choice, check_int, check_number, fail

if TYPE_CHECKING:
    from agents.execution.plan import Plan


class Cell(NamedTuple):
    """One point of a sweep's grid; every method of it runs at these settings.

    ``width`` is ``None`` when the sweep has no width axis (the train config's
    ``hidden`` is used as it is).
    """

    env: str
    algo: str
    width: int | None
    sparsity: float
    score: str
    distribution: str
    rho: float
    redo: int = 0
    actor_lr: float | None = None
    critic_lr: float | None = None
    gamma: float | None = None
    tau: float | None = None
    alpha_lr: float | None = None
    init_alpha: float | None = None
    target_entropy_scale: float | None = None
    target_noise: float | None = None
    noise_clip: float | None = None
    expl_noise: float | None = None
    redo_tau: float | None = None
    network: str | None = None
    phi: float | None = None


class Axis(NamedTuple):
    """One grid axis of a cell's networks or sparse settings: a row of :data:`AXES`.

    Attributes:
      name: the :class:`SweepConfig` field that holds its values (``None`` there: the train config's value).
      field: the :class:`Cell` field each cell takes.
      flag: its ``sparse-rl sweep`` option.
      tag: a value's part of run ids (``None``: sparsity, which run ids always hold in their own place).
      acts: which methods' runs it changes (a fact of :class:`sparse_jax.SparseMethod`); a run it does not
        change trains once and is shared by every cell that differs only along it.
      config: the train config field it sets, dotted (``None``: ``sparse.<field>``).
    """

    name: str
    field: str
    flag: str
    tag: Callable[[Any], str] | None
    acts: Callable[[sj.SparseMethod], bool]
    config: str | None = None

    @property
    def config_path(self) -> str:
        """The train config field it sets, dotted (``sparse.rho``, ``redo.every``); ``width`` sets every
        hidden layer of ``hidden`` instead."""
        return self.config or f"sparse.{self.field}"


# The hyperparameter axes: the Cell field, the train config field it sets and its run-id tag. A field of an
# algorithm's own section (sac.*, td3.*) varies only in sweeps of algorithms that take it per run.
_HYPER = (
    ("actor_lr", "actor_lr", "alr"),
    ("critic_lr", "critic_lr", "clr"),
    ("gamma", "gamma", "g"),
    ("tau", "tau", "tau"),
    ("alpha_lr", "sac.alpha_lr", "tlr"),
    ("init_alpha", "sac.init_alpha", "ia"),
    ("target_entropy_scale", "sac.target_entropy_scale", "tes"),
    ("target_noise", "td3.target_noise", "tn"),
    ("noise_clip", "td3.noise_clip", "nc"),
    ("expl_noise", "td3.expl_noise", "xn"),
    ("redo_tau", "redo.tau", "rt"),
)
# The axes, in the order cells nest them (after env and algo) and run ids list their tags. A new axis is a
# row here, a Cell field, a SweepConfig field and a sweep option (agents/cli.py); cells, run ids, configs,
# the shared runs and the refusal of an axis that changes none of the methods follow from the row.
AXES: tuple[Axis, ...] = (
    Axis("widths", "width", "--widths", lambda w: f"w{w}", lambda m: True),
    Axis("sparsities", "sparsity", "--sparsities", None, lambda m: m.sized_by_sparsity),
    Axis("scores", "score", "--scores", str, lambda m: m.uses_score),
    Axis("distributions", "distribution", "--distributions", str, lambda m: m.prunes),
    Axis("rhos", "rho", "--rhos", lambda r: f"r{results.sparsity_label(r)}", lambda m: m.revives),
    Axis("redos", "redo", "--redos", lambda f: f"redo{f}", lambda m: True, config="redo.every"),
    # Hyperparameters that SAC and TD3 take per run (AlgorithmSpec.traced): their values share one program.
    *(
        Axis(
            f"{field}s",
            field,
            f"--{field.replace('_', '-')}s",
            lambda v, t=tag: f"{t}{results.sparsity_label(v)}",
            lambda m: True,
            config=path,
        )
        for field, path, tag in _HYPER
    ),
    # The networks' body: every method's runs change, each value its own program (as a width).
    Axis("networks", "network", "--networks", str, lambda m: True, config="network"),
    # TAR's floor share of the revival budget (sparse.phi): its ablation.
    Axis("phis", "phi", "--phis", lambda p: f"phi{results.sparsity_label(p)}", lambda m: m.mask == "tar"),
)
HYPER_AXES = tuple(f"{field}s" for field, _, _ in _HYPER)
_AXIS = {a.name: a for a in AXES}


class GridRun(NamedTuple):
    """One run of a sweep: a cell, a method and a seed."""

    cell: Cell
    method: str
    seed: int


class Batch(NamedTuple):
    """The runs that train as one vmapped batch of one compiled program, with a checkpoint folder ``name``.

    ``runs`` are in the order of the batch's runs axis: cell-major, then
    method, then seed (see :meth:`SweepConfig.batches`); ``program`` is the
    index of its program in :meth:`SweepConfig.programs`. ``shared[i]`` are
    the runs of other cells that ``runs[i]`` stands for (identical runs: the
    cells differ only in axes its method ignores; see
    :meth:`SweepConfig.canonical`); they are written from its results, not
    trained again.
    """

    name: str
    runs: tuple[GridRun, ...]
    program: int = 0
    shared: tuple[tuple[GridRun, ...], ...] = ()

    def entries(self) -> list[tuple[int, GridRun]]:
        """``(slot, run)`` of every run the batch writes: its own, then the ones they stand for."""
        own = list(enumerate(self.runs))
        return own + [(slot, run) for slot, runs in enumerate(self.shared) for run in runs]


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A grid of runs: envs x algos x widths x sparsities x scores x distributions x rhos x redos x methods x seeds.

    Attributes:
      envs: environment names.
      algos: ``sac`` and/or ``td3``.
      sparsities: target sparsities in ``[0, 1)`` (dense runs ignore them).
      methods: any of dense, static, uniform_revival, tar, set, rigl, gmp.
      seeds: number of seeds per cell (seeds ``seed_offset .. seed_offset + seeds - 1``).
      train: the per-run training configuration (its env, algo, method, sparsity and the axes below are set per
        cell).
      checkpoint_every: chunks between checkpoints (0 disables checkpoints and resume).
      scores: base pruning scores (random, magnitude, snip, synflow); ``None``: ``train.sparse.score`` only.
      distributions: layer-wise distributions (uniform, erk, global); ``None``: ``train.sparse.distribution``.
      widths: hidden widths; each cell's networks have ``len(train.hidden)`` hidden layers of that width.
        ``None``: ``train.hidden`` as it is.
      rhos: revival reserve fractions (TAR, uniform revival); ``None``: ``train.sparse.rho``.
      redos: ReDo periods (``train.redo.every``; 0: without ReDo), so that every method runs with and without
        recycling dormant units; ``None``: ``train.redo.every`` only.
      actor_lrs, critic_lrs, gammas, taus: learning rates, discounts and Polyak rates (``train.actor_lr``, ...;
        ``None``: the train config's one value). SAC and TD3 take them per run, so runs that differ only in
        them train in one compiled program and one batch (:data:`HYPER_AXES`).
      alpha_lrs, init_alphas, target_entropy_scales: SAC's temperature settings (``train.sac.*``);
        target_noises, noise_clips, expl_noises: TD3's noise (``train.td3.*``); redo_taus: ReDo's
        threshold (``train.redo.tau``). Per run as well; several values of an algorithm's own setting
        need every algorithm of the sweep to take it, and several ReDo thresholds need ReDo on in every
        cell (otherwise the runs would be copies).
      networks: the networks' bodies (``mlp``, ``mlp_ln_critic``, ``mlp_ln``, ``simba``; ``train.network``);
        each its own compiled program, as a width is.
      phis: TAR's connectivity-floor fractions of its revival budget (``train.sparse.phi``; 1: the floor
        alone, 0: the need pass alone), its ablation; other methods ignore them.
      seed_offset: the first seed, so that a later sweep adds new seeds to a finished study (its run ids
        differ; ``sparse-rl report DIR --include LATER_DIR`` reports both together).

    Every cell has a run of every method, so that each cell's comparison is
    self-contained. A run that an axis does not change (dense under several
    sparsities, static under several rhos: :func:`axis_methods`) trains once,
    in the cell :meth:`canonical` names, and is written into each cell it
    serves, its ``run.json`` saying which run it is the ``same_as``. An axis
    with several values that changes none of the sweep's methods (``rhos``
    with static alone, say) is refused: its cells would be copies.
    """

    envs: tuple[str, ...] = ("inverted_pendulum",)
    algos: tuple[str, ...] = ("sac",)
    sparsities: tuple[float, ...] = (0.9,)
    methods: tuple[str, ...] = METHODS
    seeds: int = 3
    train: TrainConfig = TrainConfig()
    checkpoint_every: int = 1
    scores: tuple[str, ...] | None = None
    distributions: tuple[str, ...] | None = None
    widths: tuple[int, ...] | None = None
    rhos: tuple[float, ...] | None = None
    redos: tuple[int, ...] | None = None
    actor_lrs: tuple[float, ...] | None = None
    critic_lrs: tuple[float, ...] | None = None
    gammas: tuple[float, ...] | None = None
    taus: tuple[float, ...] | None = None
    alpha_lrs: tuple[float, ...] | None = None
    init_alphas: tuple[float, ...] | None = None
    target_entropy_scales: tuple[float, ...] | None = None
    target_noises: tuple[float, ...] | None = None
    noise_clips: tuple[float, ...] | None = None
    expl_noises: tuple[float, ...] | None = None
    redo_taus: tuple[float, ...] | None = None
    networks: tuple[str, ...] | None = None
    phis: tuple[float, ...] | None = None
    seed_offset: int = 0

    def __post_init__(self):
        _check_names("env", self.envs, ENV_NAMES)
        _check_names("algo", self.algos, ALGORITHMS)
        _check_names("method", self.methods, sj.METHODS)
        for s in self.sparsities:
            check_number("sparsity", s, lo=0.0, hi=1.0, hi_open=True)
        if not self.sparsities:
            fail("sparsities", self.sparsities, "one or more sparsities in [0, 1)")
        for kind, values in (("env", self.envs), ("algo", self.algos), ("method", self.methods)):
            _check_unique(kind, values)
        _check_unique("sparsity", tuple(results.sparsity_label(s) for s in self.sparsities))
        check_int("seeds", self.seeds, minimum=1)
        check_int("seed_offset", self.seed_offset, minimum=0)
        check_int("checkpoint_every", self.checkpoint_every, minimum=0)
        for name in (a.name for a in AXES if a.name != "sparsities"):
            values = getattr(self, name)
            if values is not None:
                if not values:
                    fail(name, values, "one or more values (or leave it unset for the train config's value)")
                _check_unique(name.removesuffix("s"), tuple(values))
        for w in self.widths or ():
            if not isinstance(w, int):
                fail("width", w, "an integer >= 1")
            check_int("width", w, minimum=1)
        for axis in (a.name for a in AXES):
            values, acting = getattr(self, axis), axis_methods(axis)
            if values is not None and len(values) > 1 and not set(acting) & set(self.methods):
                fail(
                    axis, tuple(values),
                    f"one value, or a method it changes ({', '.join(acting)}): the runs of "
                    f"{', '.join(self.methods)} would be identical copies under each of them",
                )  # fmt: skip
        self._check_hyper_axes()
        for cell in self.cells():  # every cell's config validates itself (backends, scores, rho, ...) first
            self.cell_config(cell)

    def _check_hyper_axes(self) -> None:
        """Refuse several values of a hyperparameter that some of the sweep's runs would not read.

        An algorithm's own setting (``sac.*``, ``td3.*``) must be traced by
        every algorithm of the sweep: one that does not take it per run may
        not read it at all (TD3 and ``sac.init_alpha``), and its runs would be
        copies. ReDo's threshold acts only where ReDo is on.
        """
        for field, path, _ in _HYPER:
            values = getattr(self, f"{field}s")
            if values is None or len(values) < 2:
                continue
            flag = _AXIS[f"{field}s"].flag
            if "." in path and not path.startswith("redo."):
                others = [a for a in self.algos if path not in ALGORITHMS[a].traced]
                if others:
                    fail(
                        f"{field}s", tuple(values),
                        f"one value, or only algorithms that take {path} per run "
                        f"({', '.join(n for n, spec in ALGORITHMS.items() if path in spec.traced)}): "
                        f"{', '.join(others)} would repeat the same runs under each value (sweep them apart)",
                    )  # fmt: skip
            if path == "redo.tau" and 0 in self.axis_values("redos"):
                fail(
                    f"{field}s", tuple(values),
                    f"one value, or ReDo on in every cell (--config.redo.every N, and no 0 in --redos): {flag} "
                    "would repeat the runs without ReDo under each value",
                )  # fmt: skip

    def seed_values(self) -> list[int]:
        """The seeds of every cell: ``seed_offset .. seed_offset + seeds - 1``."""
        return list(range(self.seed_offset, self.seed_offset + self.seeds))

    def axis_values(self, axis: str) -> tuple:
        """The values a grid axis takes: the sweep's, or the train config's one value where the sweep sets none."""
        values = getattr(self, axis)
        if values is not None:
            return tuple(values)
        a = _AXIS[axis]
        return (None,) if a.field == "width" else (get_field(self.train, a.config_path),)

    def cells(self) -> list[Cell]:
        """Every point of the grid, in run order (env, algo, then the :data:`AXES` in their order)."""
        points = list(itertools.product(*(self.axis_values(a.name) for a in AXES)))
        return [Cell(env, algo, *point) for env in self.envs for algo in self.algos for point in points]

    def cell_config(self, cell: Cell) -> TrainConfig:
        """The ``TrainConfig`` of one cell (method set per group)."""
        # Each section is replaced once, with all its fields (a config checks its fields together).
        sections: dict[str, dict[str, Any]] = {}
        top: dict[str, Any] = {}
        for a in AXES:
            # A field left None (a Cell built without a hyperparameter or network) keeps the train config's value.
            if a.field != "width" and getattr(cell, a.field) is not None:
                section, _, name = a.config_path.rpartition(".")
                (sections.setdefault(section, {}) if section else top)[name] = getattr(cell, a.field)
        replaced = {k: dataclasses.replace(getattr(self.train, k), **v) for k, v in sections.items()}
        hidden = self.train.hidden if cell.width is None else (cell.width,) * len(self.train.hidden)
        return dataclasses.replace(self.train, env=cell.env, algo=cell.algo, hidden=hidden, **replaced, **top)

    def hyper_label(self, cell: Cell) -> str | None:
        """The hyperparameter axes this sweep sets, as ``field=value`` pairs (``actor_lr=0.0001``), the report's
        ``hyper`` cell key; ``None`` where it sets none."""
        named = [_AXIS[a] for a in HYPER_AXES if getattr(self, a) is not None]
        pairs = [f"{a.field}={results.sparsity_label(getattr(cell, a.field))}" for a in named]
        return ",".join(pairs) or None

    def cell_tags(self, cell: Cell) -> tuple[str, ...]:
        """The name parts of the axes this sweep sets (widths, scores, distributions, rhos), for run names."""
        named = [a for a in AXES if a.tag is not None and getattr(self, a.name) is not None]
        return tuple(a.tag(getattr(cell, a.field)) for a in named)

    def run_config(self, run: GridRun) -> TrainConfig:
        """The ``TrainConfig`` of one run: its cell's, with its method."""
        train = self.cell_config(run.cell)
        return dataclasses.replace(train, sparse=dataclasses.replace(train.sparse, method=run.method))

    def run_id(self, run: GridRun) -> str:
        """The folder name of one run under ``runs/`` (:func:`agents.results.run_id`)."""
        c = run.cell
        return results.run_id(c.env, c.algo, c.sparsity, run.method, run.seed, self.cell_tags(c))

    def run_ids(self, cell: Cell, methods: tuple[str, ...]) -> list[str]:
        """The run ids of ``methods x seeds`` in one cell (method-major, then seeds)."""
        return [self.run_id(GridRun(cell, m, s)) for m in methods for s in self.seed_values()]

    def _program(self, cell: Cell, method: str, per_cell: bool) -> tuple:
        """The run's :func:`~agents.algorithms.config.program_key` (equal keys share one program), per cell if asked."""
        return (program_key(self.run_config(GridRun(cell, method, 0))),) + ((cell,) if per_cell else ())

    def canonical(self, cell: Cell, method: str) -> Cell:
        """The cell whose run of ``method`` is identical to ``cell``'s: axes the method ignores at their first value.

        Dense ignores sparsity, score, distribution and rho; GMP the score;
        every method but revival the rho (:func:`axis_methods`). A sweep
        trains each such run once and writes it into every cell it serves.
        """
        facts = sj.METHODS[method]
        return cell._replace(**{a.field: self.axis_values(a.name)[0] for a in AXES if not a.acts(facts)})

    def programs(self, per_cell: bool = False, shares_runs: bool = True) -> list[list[tuple[Cell, str]]]:
        """The ``(cell, method)`` variants of each compiled program, in run order.

        One program per (env, algo, width) for every mask-only method of every
        cell, and one per dynamic method (SET and RigL apart under ``global``,
        GMP per distribution). With ``shares_runs`` a variant that is the same
        run as another cell's (:meth:`canonical`) is left out: that cell's run
        stands for it. ``per_cell`` gives each cell programs of its own, and
        ``shares_runs=False`` trains every cell's copy, as sweeps of earlier
        versions ran them (``resume`` of such a results directory needs it).
        """
        ordered = [m for m in self.methods if not sj.METHODS[m].rewires] + [
            m for m in self.methods if sj.METHODS[m].rewires
        ]
        share = shares_runs and not per_cell
        programs: dict[tuple, list[tuple[Cell, str]]] = {}
        for cell in self.cells():
            for m in ordered:
                if not share or self.canonical(cell, m) == cell:
                    programs.setdefault(self._program(cell, m, per_cell), []).append((cell, m))
        return list(programs.values())

    def plan_programs(self) -> list[tuple[TrainConfig, int]]:
        """What the planner sizes (:class:`~agents.execution.plan.Program`): a program's first config (with its
        method, whose state an ensemble method makes larger), its run count."""
        out = []
        for variants in self.programs(shares_runs=True):
            cell, method = variants[0]
            config = self.cell_config(cell)
            config = dataclasses.replace(config, sparse=dataclasses.replace(config.sparse, method=method))
            out.append((config, len(variants) * self.seeds))
        return out

    def planned_batches(self, plan: Plan) -> list[Batch]:
        """The batches of this grid under ``plan`` (its caps; per cell for results of earlier versions)."""
        if plan.per_cell:
            return self.batches(per_cell=True)
        return self.batches(plan.caps, shares_runs=plan.shares_runs)

    def batches(
        self, max_runs: Sequence[int | None] | None = None, per_cell: bool = False, shares_runs: bool = True
    ) -> list[Batch]:
        """Every batch of runs, in run order: :meth:`programs`, each split into batches of at most ``max_runs[i]``.

        A program's runs (its variants, each with every seed) split into the
        fewest batches of near-equal size; ``None`` (the default for all)
        keeps a program in one batch. Each batch lists the runs of other cells
        its runs stand for (:attr:`Batch.shared`).
        """
        programs = self.programs(per_cell, shares_runs)
        caps = [None] * len(programs) if max_runs is None else list(max_runs)
        if len(caps) != len(programs):
            raise ValueError(f"max_runs has {len(caps)} entries for {len(programs)} programs.")
        stands_for: dict[tuple[Cell, str], list[Cell]] = {}
        if shares_runs and not per_cell:
            for cell in self.cells():
                for m in self.methods:
                    if self.canonical(cell, m) != cell:
                        stands_for.setdefault((self.canonical(cell, m), m), []).append(cell)
        out = []
        for p, (variants, cap) in enumerate(zip(programs, caps)):
            runs = [GridRun(c, m, s) for c, m in variants for s in self.seed_values()]
            parts = 1 if cap is None else -(-len(runs) // max(int(cap), 1))
            size, extra = divmod(len(runs), parts)
            # Named by every cell it serves, so that sharing runs leaves the names of earlier versions.
            served = variants + [(c, m) for v, m in variants for c in stands_for.get((v, m), ())]
            start = 0
            for k in range(parts):
                end = start + size + (k < extra)
                name = self._batch_name(served) + (f"-part{k + 1}of{parts}" if parts > 1 else "")
                own = tuple(runs[start:end])
                shared = tuple(tuple(GridRun(c, r.method, r.seed) for c in stands_for.get(r[:2], ())) for r in own)
                out.append(Batch(name, own, p, shared if any(shared) else ()))
                start = end
        return out

    def _batch_name(self, variants: list[tuple[Cell, str]]) -> str:
        """The checkpoint folder name of a program: env, algo, every axis value its runs share, its methods.

        A one-cell program keeps the name of earlier versions' groups
        (``inverted_pendulum-sac-s0.9-dense+static+tar``).
        """
        cells = list(dict.fromkeys(c for c, _ in variants))
        parts = [cells[0].env, cells[0].algo]
        if len({c.sparsity for c in cells}) == 1:
            parts.append(f"s{results.sparsity_label(cells[0].sparsity)}")
        tags = [self.cell_tags(c) for c in cells]  # one axis per position
        parts += [tag for i, tag in enumerate(tags[0]) if all(t[i] == tag for t in tags)]
        return "-".join((*parts, "+".join(dict.fromkeys(m for _, m in variants))))


def axis_methods(axis: str) -> tuple[str, ...]:
    """The methods whose runs a grid axis of :data:`AXES` changes (its ``acts`` fact, over the registered methods).

    Dense ignores sparsities, scores, distributions and rhos; GMP prunes by
    magnitude whatever the base score; only revival (tar, uniform_revival)
    spends the reserve ``rho``; widths change every method.

    >>> axis_methods("rhos"), axis_methods("scores")
    (('uniform_revival', 'tar'), ('static', 'uniform_revival', 'tar', 'set', 'rigl'))
    """
    acts = _AXIS[check_choice("axis", axis, _AXIS)].acts
    return tuple(name for name, m in sj.METHODS.items() if acts(m))


def _check_unique(kind: str, values: tuple) -> None:
    seen = set()
    for v in values:
        if v in seen:
            fail(kind, v, f"each {kind} once (it is given twice)")
        seen.add(v)


def _check_names(kind: str, names: tuple[str, ...], allowed: Collection[str]) -> None:
    if not names:
        fail(f"{kind}s", names, f"one or more of {', '.join(allowed)}")
    for n in names:
        check_choice(kind, n, allowed)


# Presets. Each compares TAR where it acts: a metric base score (SNIP on a warm-up replay batch), so that
# revival's random connections differ from what the base would have kept, and a distribution under which
# layers fall short of their connectivity target E (uniform puts the small input and output layers far
# below E; under ERK at width 256 and sparsity <= 0.95 no layer is short, and TAR's per-layer counts
# equal static's).
_CPU_TRAIN = dict(
    warmup_steps=1_000,
    num_envs=4,
    updates_per_step=4,
    hidden=(128, 128),
    batch_size=128,
    actor_lr=1e-3,
    critic_lr=1e-3,
    sac=SACConfig(alpha_lr=1e-3),
    eval_episodes=4,
)


def _cpu_preset(
    env: str, seeds: int, total_steps: int, chunk_steps: int, methods: tuple[str, ...] = METHODS
) -> SweepConfig:
    """``methods`` at sparsity 0.9 with SAC, 128-128 networks and a SNIP base under the uniform distribution."""
    return SweepConfig(
        envs=(env,),
        algos=("sac",),
        sparsities=(0.9,),
        methods=methods,
        seeds=seeds,
        train=TrainConfig(
            env=env,
            total_steps=total_steps,
            chunk_steps=chunk_steps,
            **_CPU_TRAIN,
            sparse=SparsityConfig(score="snip", distribution="uniform", delta_t=1000),
        ),
    )


# Graesser et al.'s sparse-SAC protocol (256-256, batch 256, lr 3e-4, RigL/SET every 1000 steps, drop 0.5
# cosine to 0 at 80%), 1M steps, with a SNIP base under ERK: the accelerator presets' training.
_ACCELERATOR_TRAIN = TrainConfig(
    total_steps=1_000_000,
    warmup_steps=10_000,
    chunk_steps=10_000,
    num_envs=1,
    updates_per_step=1,
    hidden=(256, 256),
    batch_size=256,
    eval_episodes=10,
    sparse=SparsityConfig(score="snip", distribution="erk", delta_t=1000, drop_fraction=0.5, end_fraction=0.8),
)


PRESETS: dict[str, SweepConfig] = {
    # The few-minute demo. inverted_pendulum is the cheapest brax task on which dense SAC visibly learns
    # (eval return from ~100 to 1000 within ~15k env steps here); its outcome per run is bimodal (solved
    # or not), so with 3 seeds it shows the pipeline, not a direction.
    "quick": _cpu_preset("inverted_pendulum", seeds=3, total_steps=14_000, chunk_steps=1_000),
    # A CPU experiment that can show a direction (under an hour on 2 cores): 8 seeds of every method on
    # inverted_double_pendulum, whose returns are graded (from ~300 untrained to several thousand), at a
    # setting where TAR's masks differ from static's in every layer count.
    "evidence": _cpu_preset("inverted_double_pendulum", seeds=8, total_steps=25_000, chunk_steps=2_000),
    # The cross-task study's CPU part (4 cells, each the size of the evidence preset's one): its task and
    # training, but SAC and TD3, the distributions sparse-RL papers use (ERK, global; uniform stays in the
    # evidence preset) at sparsity 0.95, 8 seeds. Its cells are reported with the DMC part's by
    # `sparse-rl report DIR --include OTHER_DIR` (docs/results.md).
    "study": dataclasses.replace(
        _cpu_preset("inverted_double_pendulum", seeds=8, total_steps=25_000, chunk_steps=2_000),
        algos=("sac", "td3"),
        sparsities=(0.95,),
        distributions=("erk", "global"),
    ),
    # The study's DeepMind Control part: its grid on CartpoleSwingup (MuJoCo Playground), a task whose dense
    # SAC return climbs from ~170 to ~670 in 51k env steps on 2 CPU cores (benchmarks/results/dmc_cpu_learning.json),
    # with 5k-step chunks (1000-step episodes). It took 219 min of chunk time on 2 cores (SAC 115, TD3 104).
    # `sparse-rl report NEW_DIR --include STUDY_DIR THIS_DIR` reports both parts together (they share no cell).
    "study_dmc": dataclasses.replace(
        _cpu_preset("CartpoleSwingup", seeds=8, total_steps=51_000, chunk_steps=5_000),
        algos=("sac", "td3"),
        sparsities=(0.95,),
        distributions=("erk", "global"),
    ),
    # The accelerator preset of the specification: Graesser et al.'s protocol (256-256, batch 256, lr 3e-4,
    # RigL/SET every 1000 steps, drop 0.5 cosine to 0 at 80%), 1M steps, 5 seeds, with a SNIP base, ERK
    # (their distribution) and global (where the metric decides, and layers can fall short of E), and the
    # paper's widening arm (256 vs 1024 units).
    "paper": SweepConfig(
        envs=("halfcheetah", "hopper", "walker2d", "ant", "humanoid"),
        algos=("sac", "td3"),
        sparsities=(0.8, 0.9, 0.95),
        methods=METHODS,
        seeds=5,
        distributions=("erk", "global"),
        widths=(256, 1024),
        train=_ACCELERATOR_TRAIN,
    ),
    # The sparsity x width scaling study (Ma et al. 2025; Graesser et al. 2022's small-dense baseline) on CPU:
    # final return against active parameters for ReLU MLPs and SimBa, three widths, two sparsities, the
    # dense networks of each width and the dense ones narrowed to each sparse count. Global pruning, where
    # layers fall short of their connectivity target and TAR moves connections (under ERK at these widths
    # TAR's counts equal static's). Widths stay small: a SimBa block is 4x wide, and masks do not make a
    # CPU matmul cheaper, so a run costs its dense network's compute (a SimBa batch at width 64 alone would
    # take most of an hour on 2 cores).
    "scaling_cpu": SweepConfig(
        envs=("inverted_double_pendulum",),
        algos=("sac",),
        sparsities=(0.8, 0.95),
        methods=("dense", "static", "tar", "rigl", "small_dense"),
        seeds=2,
        distributions=("global",),
        widths=(8, 16, 32),
        networks=("mlp", "simba"),
        train=TrainConfig(
            env="inverted_double_pendulum",
            total_steps=13_000,
            chunk_steps=1_500,
            **_CPU_TRAIN,
            sparse=SparsityConfig(score="snip", distribution="global", delta_t=1000),
        ),
    ),
    # Its accelerator version: widths 256 to 2048, three sparsities, DMC tasks, AdamW (weight decay 1e-2, as
    # Ma et al. train SimBa) for every network, 500k env steps with the paper preset's protocol.
    "scaling": SweepConfig(
        envs=("CheetahRun", "WalkerRun", "HumanoidRun"),
        algos=("sac",),
        sparsities=(0.8, 0.9, 0.95),
        methods=("dense", "static", "tar", "rigl", "small_dense"),
        seeds=5,
        distributions=("global",),
        widths=(256, 512, 1024, 2048),
        networks=("mlp", "simba"),
        train=dataclasses.replace(
            _ACCELERATOR_TRAIN,
            env="CheetahRun",
            total_steps=500_000,
            weight_decay=1e-2,
            sparse=dataclasses.replace(_ACCELERATOR_TRAIN.sparse, distribution="global"),
        ),
    ),
    # The DeepMind Control suite for accelerators (MuJoCo Playground, MJX's jax implementation): the ten
    # tasks most sparse-scaling and SAC papers report (Ma et al. 2025, SimBa, BRO, TD-MPC), SAC and TD3,
    # 500k env steps, with the paper preset's protocol, SNIP base and distributions at its middle sparsity.
    "dmc": SweepConfig(
        envs=(
            "CheetahRun",
            "WalkerWalk",
            "WalkerRun",
            "HopperHop",
            "HumanoidRun",
            "FingerSpin",
            "ReacherHard",
            "AcrobotSwingup",
            "BallInCup",
            "CartpoleSwingup",
        ),  # fmt: skip
        algos=("sac", "td3"),
        sparsities=(0.9,),
        methods=METHODS,
        seeds=5,
        distributions=("erk", "global"),
        train=dataclasses.replace(_ACCELERATOR_TRAIN, env="CheetahRun", total_steps=500_000),
    ),
}


def config_to_json(cfg: SweepConfig) -> dict:
    """The resolved sweep config as JSON-able data."""
    return dataclasses.asdict(cfg)


def _unknown_fields(cls: type, data: Any, where: str = "") -> list[str]:
    """Dotted names of the fields of ``data`` (nested config dicts) that ``cls`` does not have."""
    if not isinstance(data, dict):
        raise ValueError(f"config.json: {where or 'sweep'} must be an object, got {data!r}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [f"{where}{k}" for k in sorted(data) if k not in fields]
    for name, sub in (("train", TrainConfig), *SECTIONS.items()):
        if name in fields and name in data:
            unknown += _unknown_fields(sub, data[name], f"{where}{name}.")
    return unknown


def check_known_fields(data: Any, where: str = "config.json") -> None:
    """Refuse a stored sweep config (``config.json``'s ``sweep``) with fields this version does not know.

    Such a directory was written by another version: ``--resume``, ``eval``
    and ``report`` all refuse it rather than misread it.
    """
    unknown = _unknown_fields(SweepConfig, data)
    if unknown:
        raise ValueError(
            f"{where} has fields this version of sparse-rl does not know: {', '.join(unknown)} "
            "(written by another version?)."
        )


def config_from_json(data: dict) -> SweepConfig:
    """Inverse of :func:`config_to_json`; unknown fields raise ``ValueError`` naming them all.

    Fields missing from ``data`` take their defaults.
    """
    check_known_fields(data)
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k != "train"}
    return SweepConfig(**fields, train=train_config_from_json(data.get("train", {})))


def stored_config(out: str | Path) -> SweepConfig:
    """The sweep config a results directory was started with (its ``config.json``)."""
    return config_from_json(results.read_sweep_record(out).sweep)


def config_differences(old: SweepConfig, new: SweepConfig) -> list[str]:
    """``"field: old -> new"`` for every field (dotted, nested) where the two configs differ."""

    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    as_json = lambda c: flat(json.loads(json.dumps(config_to_json(c))))  # tuples shown as the lists of config.json
    a, b = as_json(old), as_json(new)
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
