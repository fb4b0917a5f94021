"""The host runner: prepare a batch of runs (init, warm-up, masks), then drive its chunks.

:func:`run` trains ``methods x seeds`` as one vmapped batch, chunk by chunk,
with per-chunk metrics going to a callback (the sweep's progress bar and
checkpoints). Methods that differ only by their initial mask share one
compiled chunk; the chunk compiles on a second thread while the batch warms up.

After every chunk ``on_chunk`` receives one :class:`ChunkReport`: the chunk
index, the ``(method, seed)`` label of each run, the metrics in one layout
(every value a numpy array of shape ``(runs,)``, entry ``i`` for run ``i``)
and the batched state. A logger needs nothing else::

    def on_chunk(report):
        for i, (method, seed) in enumerate(report.labels):
            print(method, seed, report.scalars(i)["eval_return"])
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import sparse_jax as sj
from agents.algorithms.config import MASK_AXES, TrainConfig, hyper_values, program_key, traced_fields
from agents.execution.sharding import gather_runs, pad_runs, runs_mesh, shard_runs
from agents.execution.train import Trainer, TrainState, make_train


@dataclasses.dataclass
class RunResult:
    """What :func:`run` returns.

    Attributes:
      labels: ``(method, seed)`` per run, in the order of the runs axis.
      history: one dict of per-run metrics per chunk (the layout of :attr:`ChunkReport.metrics`).
      state: the final batched ``TrainState``.
      masks: the initial ``(actor SparseInit, critic SparseInit)``, batched over runs.
      traces: how many times each trainer function was traced.
    """

    labels: list[tuple[str, int]]
    history: list[dict[str, np.ndarray]]
    state: TrainState
    masks: tuple[sj.SparseInit, sj.SparseInit]
    traces: dict[str, int]


class ChunkReport(NamedTuple):
    """What ``on_chunk`` receives after each chunk.

    Attributes:
      chunk: the chunk's index (0-based).
      labels: ``(method, seed)`` per run, in the order of the runs axis.
      metrics: ``name -> numpy array of shape (runs,)``, one entry per run: the
        chunk's training metrics and evaluation (``env_steps``, ``eval_return``,
        losses, densities, mask turnover, dormant fractions), and the
        host-measured ``wall_s`` (the chunk's wall time) and ``steps_per_s``
        (env steps per second of the whole batch), the same for every run of
        the batch because they train together.
      state: the batched ``TrainState`` after the chunk (padding runs included).
    """

    chunk: int
    labels: list[tuple[str, int]]
    metrics: dict[str, np.ndarray]
    state: TrainState

    def scalars(self, run: int) -> dict[str, float | int]:
        """Run ``run``'s metrics as Python numbers (one ``curve.jsonl`` row, less its ``chunk``)."""
        return {k: v[run].item() for k, v in self.metrics.items()}


# Whole-tree gathers and concatenations, one program each: op by op, every leaf shape of a state would
# compile a program of its own (a hundred small compilations per batch).
@jax.jit
def _stack_runs(trees: Sequence[Any]) -> Any:
    if len(trees) == 1:  # one variant: nothing to join (and no program to compile per leaf shape)
        return trees[0]
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *trees)


@jax.jit
def _gather_runs(tree: Any, rows: jax.Array) -> Any:
    return jax.tree.map(lambda x: x[rows], tree)


def _take_runs(tree: Any, rows: np.ndarray) -> Any:
    """Rows ``rows`` of every leaf of a batched ``tree``; all of them, in order, is ``tree`` itself."""
    runs = jax.tree.leaves(tree)[0].shape[0]
    if np.array_equal(rows, np.arange(runs)):  # the common case (every variant trains every seed): no gather
        return tree
    return _gather_runs(tree, rows)


class Prepared(NamedTuple):
    """Runs ready to train (see :func:`prepare`).

    Attributes:
      trainer: the pure functions of the group's configuration.
      state: the batched ``TrainState`` after warm-up and masking.
      masks: the initial ``(actor SparseInit, critic SparseInit)``, batched over runs.
      labels: ``(method, seed)`` per run, in the order of the runs axis.
      mesh: the device mesh the runs axis is sharded over (``None`` on one device).
        ``state`` then has padding runs at the end, up to a multiple of the
        mesh size; ``labels`` and ``masks`` cover the real runs only.
      chunk: the vmapped chunk, compiled for ``state`` (see :func:`compile_chunk`): ``(state, chunk_index)
        -> (state, metrics)``, each run's traced hyperparameters (``hyper``) bound.
      hyper: each run's traced hyperparameters (:func:`agents.algorithms.config.hyper_values`), a float32
        array per field with one entry per run (padding included); ``None`` where the algorithm traces none.
    """

    trainer: Trainer
    state: TrainState
    masks: tuple[sj.SparseInit, sj.SparseInit]
    labels: list[tuple[str, int]]
    mesh: Mesh | None = None
    chunk: Callable | None = None
    hyper: dict[str, jax.Array] | None = None


def check_batch(configs: Sequence[TrainConfig]) -> TrainConfig:
    """Validate that runs of ``configs`` can share one compiled chunk; return the one it is built from.

    They can when :func:`agents.algorithms.config.program_key` gives them one key:
    fixed-mask methods (dense, static, uniform_revival, tar) together, or
    one method with a mask rule alone, with configs that differ only by
    sparsity, base score, distribution and rho (as far as the rule's update
    allows: GMP's distribution fixes its program). Errors name the difference.
    """
    if not configs:
        raise ValueError("a batch needs one or more runs.")
    first = configs[0]
    methods = [sj.get_method(c.sparse.method) for c in configs]
    if len({m.name if m.rewires else None for m in methods}) > 1:
        names = tuple(dict.fromkeys(m.name for m in methods))
        fixed = [n for n, m in sj.METHODS.items() if not m.rewires]
        others = [n for n, m in sj.METHODS.items() if m.rewires]
        raise ValueError(
            f"methods {names} cannot share one compiled function; only {', '.join(fixed)} can, "
            f"and {', '.join(others)} each run alone."
        )
    key = program_key(first)
    for c in configs[1:]:
        other = program_key(c)
        if other != key:
            allowed = {f"sparse.{f}" for f in MASK_AXES} | set(traced_fields(first))
            a, b = _flat_fields(c), _flat_fields(first)
            diff = [k for k in a if a[k] != b[k] and k not in allowed]
            if other[1] != key[1]:
                diff.append(f"sparse.distribution (which {c.sparse.method}'s compiled update depends on)")
            raise ValueError(
                f"runs of these configs cannot share one compiled function: they differ in {', '.join(diff)} "
                f"(only {', '.join(sorted(allowed))} may differ within a batch)."
            )
    return first


def _flat_fields(config: TrainConfig) -> dict[str, Any]:
    """Every field of ``config``, dotted (``sparse.rho``, ``sac.alpha_lr``), nested configs flattened."""

    def flat(d: dict, prefix: str = "") -> dict[str, Any]:
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    return flat(dataclasses.asdict(config))


def batch_hyper(configs: Sequence[TrainConfig]) -> dict[str, jax.Array] | None:
    """The traced hyperparameters of a batch's runs: a float32 array per field, entry ``i`` run ``i``'s
    (:func:`agents.algorithms.config.hyper_values`); ``None`` where the algorithm traces none."""
    if not configs or not traced_fields(configs[0]):
        return None
    values = [hyper_values(c) for c in configs]
    return {k: jnp.asarray(np.array([v[k] for v in values], np.float32)) for k in values[0]}


def _bind_hyper(chunk: Callable, hyper: dict[str, jax.Array] | None) -> Callable:
    """``(state, chunk_index) -> (state, metrics)``: ``chunk`` with the batch's traced hyperparameters bound."""
    if hyper is None:
        return chunk
    return lambda state, chunk_index: chunk(state, chunk_index, hyper)


def _with_method(config: TrainConfig, method: str) -> TrainConfig:
    return dataclasses.replace(config, sparse=dataclasses.replace(config.sparse, method=method))


def prepare(
    config: TrainConfig, seeds: Sequence[int], methods: Sequence[str] | None = None, num_devices: int | None = None
) -> Prepared:
    """Init, warm up and mask ``methods x seeds`` runs as one batch (runs axis method-major).

    Each seed's dense init and warm-up data are shared by every method, so
    methods differ only by their masks. Several methods share one compiled
    function only if they are all mask-only (dense, static, uniform_revival,
    tar); ``set``, ``rigl`` and ``gmp`` run alone. :func:`prepare_runs`
    batches runs of several configs.
    """
    # Building each run's config validates every method name before anything compiles.
    runs = [(_with_method(config, m), s) for m in methods or (config.sparse.method,) for s in seeds]
    return prepare_runs(runs, num_devices)


def prepare_runs(runs: Sequence[tuple[TrainConfig, int]], num_devices: int | None = None) -> Prepared:
    """Init, warm up and mask a batch of ``(config, seed)`` runs that share one compiled chunk.

    The configs may differ by sparsity, base score, distribution, rho and
    (mask-only) method (see :func:`check_batch`): those change only the
    masks, so a sweep trains every such variant of one env, algorithm and
    width in one program. Each seed's dense init and warm-up are computed
    once and shared by every run of that seed. With several devices the runs
    axis is sharded across them (see :func:`runs_mesh`, :func:`shard_runs`).

    The chunk function is compiled on a second thread meanwhile: XLA compiles
    without holding the GIL, so its compilation overlaps warm-up and masking.
    """
    configs = [c for c, _ in runs]
    program = check_batch(configs)
    mesh = runs_mesh(num_devices)
    trainer = make_train(program, share_with=list(dict.fromkeys(c for c in configs if c != program)))
    labels = [(c.sparse.method, s) for c, s in runs]
    num_slots = len(labels) + (0 if mesh is None else -len(labels) % mesh.size)
    with ThreadPoolExecutor(max_workers=1) as pool:
        chunk = pool.submit(compile_chunk, trainer, num_slots, mesh)
        state, masks = _init_and_mask(trainer, runs)
        chunk = chunk.result()
    # Runs that differ only in traced hyperparameters share the program: each run's values are an input.
    hyper = batch_hyper(configs)
    if mesh is not None:
        state, hyper = shard_runs(pad_runs((state, hyper), len(labels), mesh.size), mesh)
    return Prepared(trainer, state, masks, labels, mesh, _bind_hyper(chunk, hyper), hyper)


def _init_and_mask(
    trainer: Trainer, runs: Sequence[tuple[TrainConfig, int]]
) -> tuple[TrainState, tuple[sj.SparseInit, sj.SparseInit]]:
    """The batched state of ``runs`` after init, warm-up and masking (see :func:`prepare_runs`)."""
    seeds = list(dict.fromkeys(s for _, s in runs))
    keys = jnp.stack([jax.random.key(s) for s in seeds])
    warm = jax.jit(jax.vmap(trainer.warmup))(jax.jit(jax.vmap(trainer.init))(keys))
    variants: dict[TrainConfig, list[int]] = {}
    for r, (c, _) in enumerate(runs):
        variants.setdefault(c, []).append(r)
    # Mask-only methods build the same optimizer state: one trainer per cell makes all their masks.
    shared = lambda c: c if sj.METHODS[c.sparse.method].rewires else _with_method(c, trainer.config.sparse.method)
    trainers = {shared(trainer.config): trainer}
    # The optimizer state depends on the cell only through a rule's target table (GMP's), so every other
    # batch applies its masks with the program's trainer: one compiled function for all its variants.
    applies = {}
    states, inits, order = [], [], []
    for c, rows in variants.items():
        if shared(c) not in trainers:
            trainers[shared(c)] = make_train(shared(c))
        t = trainers[shared(c)]
        sub = _take_runs(warm, np.asarray([seeds.index(runs[r][1]) for r in rows]))
        method = sj.METHODS[c.sparse.method]
        masks = _make_masks(t, sub, method.mask)
        # A rule's table (GMP) or an ensemble's ceilings are per-run state, made by the cell's own trainer.
        per_cell = method.ensemble or (method.rule is not None and method.rule.uses_targets)
        applier = t if per_cell else trainer
        if id(applier) not in applies:
            applies[id(applier)] = jax.jit(jax.vmap(applier.apply_masks))
        # The runs' traced initial values (SAC's temperature) are inputs too: one function for every value.
        hyper = batch_hyper([c] * len(rows))
        states.append(applies[id(applier)](sub, *masks, *(() if hyper is None else (hyper,))))
        inits.append(masks)
        order += rows
    state, masks = _stack_runs(states), _stack_runs(inits)
    if order != sorted(order):  # back to the order of `runs`
        state, masks = _take_runs((state, masks), np.argsort(order))
    return state, masks


def _make_masks(trainer: Trainer, state: TrainState, mask_method: str) -> tuple[sj.SparseInit, sj.SparseInit]:
    """The masks of ``mask_method`` for every run of the batched ``state``, made by ``trainer``'s settings."""
    if trainer.config.sparse.distribution != "global":
        return jax.jit(jax.vmap(lambda s: trainer.make_masks(s, mask_method)))(state)
    # "global" with revival needs concrete masks: make those run by run, eagerly.
    runs = jax.tree.leaves(state.env_steps)[0].shape[0]
    per_run = [trainer.make_masks(jax.tree.map(lambda x, i=i: x[i], state), mask_method) for i in range(runs)]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *per_run)


def state_template(trainer: Trainer, num_runs: int) -> TrainState:
    """Shapes and dtypes of a batched ``TrainState`` of ``num_runs`` runs, without computing it.

    Masking does not change the structure, so this is the template to restore
    a checkpoint of :func:`prepare`'s state into.
    """
    keys = jnp.stack([jax.random.key(0)] * num_runs)
    return jax.eval_shape(jax.vmap(trainer.init), keys)


def _chunk_jit(trainer: Trainer, mesh: Mesh | None) -> Callable:
    """The chunk, vmapped over runs (chunk index unbatched; each run's traced hyperparameters, where the
    algorithm has any, a third argument batched with the state) and jitted; sharded output with a ``mesh``."""
    traced = bool(traced_fields(trainer.config))
    vmapped = jax.vmap(trainer.chunk, in_axes=(0, None, 0) if traced else (0, None))
    if mesh is None:
        return jax.jit(vmapped)
    sharding = NamedSharding(mesh, PartitionSpec("runs"))
    return jax.jit(vmapped, out_shardings=(sharding, sharding))


def chunk_args(trainer: Trainer, num_slots: int, mesh: Mesh | None = None) -> tuple:
    """Shapes of the vmapped chunk's arguments for ``num_slots`` runs: the state, the chunk index and,
    where the algorithm traces hyperparameters, their values (one float32 per run and field)."""
    template = state_template(trainer, num_slots)
    hyper = {k: jax.ShapeDtypeStruct((num_slots,), np.float32) for k in hyper_values(trainer.config)} or None
    if mesh is not None:
        sharding = NamedSharding(mesh, PartitionSpec("runs"))
        template, hyper = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), (template, hyper)
        )
    return (template, jnp.int32(0)) + (() if hyper is None else (hyper,))


def compile_chunk(trainer: Trainer, num_slots: int, mesh: Mesh | None = None) -> Callable:
    """The vmapped chunk compiled ahead of time for a batch of ``num_slots`` runs (padding included).

    Needs only shapes (:func:`chunk_args`), so it can run before the state
    exists. Returns ``(state, chunk_index[, hyper]) -> (state, metrics)``, ``hyper`` where the
    algorithm traces hyperparameters (:attr:`Prepared.chunk` has it bound).
    """
    return _chunk_jit(trainer, mesh).lower(*chunk_args(trainer, num_slots, mesh)).compile()


def train_chunks(
    trainer: Trainer,
    state: TrainState,
    first_chunk: int = 0,
    on_chunk: Callable[[ChunkReport], None] | None = None,
    labels: Sequence[tuple[str, int]] | None = None,
    mesh: Mesh | None = None,
    chunk_fn: Callable | None = None,
) -> tuple[TrainState, list[dict[str, np.ndarray]]]:
    """Run chunks ``first_chunk .. num_chunks - 1`` of a prepared batch from the host.

    One compiled, vmapped chunk function; the chunk index is passed unbatched.
    After each chunk the metrics of the runs ``labels`` names (the first
    ``len(labels)`` of the batch; default: every run, labelled by index) go
    to ``on_chunk`` as a :class:`ChunkReport`. With a ``mesh`` the state
    stays sharded over the runs axis from chunk to chunk. ``chunk_fn`` is a
    compiled chunk (:attr:`Prepared.chunk`, its runs' traced hyperparameters bound); by default it is
    jitted here, every run with the trainer's config's values.
    """
    config = trainer.config
    total_runs = jax.tree.leaves(state.env_steps)[0].shape[0]
    labels = [("", i) for i in range(total_runs)] if labels is None else list(labels)
    num_runs = len(labels)
    if chunk_fn is None:
        hyper = shard_runs(batch_hyper([config] * total_runs), mesh)
        chunk = _bind_hyper(_chunk_jit(trainer, mesh), hyper)
    else:
        chunk = chunk_fn
    history = []
    for c in range(first_chunk, config.num_chunks):
        start = time.perf_counter()
        state, metrics = chunk(state, jnp.int32(c))
        metrics = {k: np.asarray(v)[:num_runs] for k, v in gather_runs(metrics).items()}
        wall = time.perf_counter() - start
        metrics["wall_s"] = np.full(num_runs, wall)
        metrics["steps_per_s"] = np.full(num_runs, config.chunk_steps * num_runs / wall)
        history.append(metrics)
        if on_chunk is not None:
            on_chunk(ChunkReport(c, labels, metrics, state))
    return state, history


def run(
    config: TrainConfig,
    seeds: Sequence[int],
    methods: Sequence[str] | None = None,
    on_chunk: Callable[[ChunkReport], None] | None = None,
    num_devices: int | None = None,
) -> RunResult:
    """Train ``methods x seeds`` as one vmapped batch, chunk by chunk, from the host.

    Args:
      config: the configuration; its ``sparse.method`` is the default method.
      seeds: integer seeds (see :func:`prepare`).
      methods: the methods of the batch (see :func:`prepare`).
      on_chunk: called after each chunk with a :class:`ChunkReport`, e.g. to
        log, report or checkpoint.
      num_devices: devices to shard the runs over (default: all).

    Returns:
      A :class:`RunResult` (its ``state`` keeps any padding runs at the end).
    """
    prepared = prepare(config, seeds, methods, num_devices)
    state, history = train_chunks(
        prepared.trainer, prepared.state, 0, on_chunk, prepared.labels, prepared.mesh, prepared.chunk
    )
    return RunResult(prepared.labels, history, state, prepared.masks, dict(prepared.trainer.traces))
