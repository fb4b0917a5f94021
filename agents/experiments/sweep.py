"""Sweeps: a grid of cells x methods x seeds into one results directory.

A cell is one point of envs x algorithms x widths x sparsities x base scores
x distributions x rhos (see :class:`SweepConfig`); every cell runs every
method. Runs train in compiled programs: every mask-only run (dense, static,
uniform_revival, tar) of one (env, algo, width), whatever its sparsity, score,
distribution and rho, vmapped in one program; every SET, RigL or GMP run of
one (env, algo, width) in one program per method (:meth:`SweepConfig.programs`).
A program's runs train as one batch unless memory says otherwise
(:mod:`agents.execution.plan`). After every chunk a batch writes an orbax checkpoint
(state plus the metric history) and rewrites its runs' learning curves, so
``resume`` continues an interrupted sweep from the last checkpoint of every
batch and ends with the same final metrics as an uninterrupted sweep. Finally ``agents.experiments.report``
builds the tables and figures. The layout is in :mod:`agents.results`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import filelock
import jax
import numpy as np
from tqdm.auto import tqdm

import sparse_jax as sj
from agents import results
from agents.algorithms.config import TrainConfig
from agents.execution import checkpoint
from agents.execution import plan as plan_lib
from agents.execution.runner import ChunkReport, Prepared, prepare_runs, state_template, train_chunks
from agents.execution.sharding import runs_mesh
from agents.experiments import report as report_lib

# The grid and its config on disk, as earlier versions named them here.
from agents.experiments.grid import (  # noqa: F401
    PRESETS,
    Batch,
    Cell,
    GridRun,
    SweepConfig,
    axis_methods,
    check_known_fields,
    config_differences,
    config_from_json,
    config_to_json,
    stored_config,
)
from agents.results import migrate, tracking
from sparse_jax.validation import check_int

# The lock that gives one sweep the results directory, and the file that names its holder's pid.
LOCK_FILE, PID_FILE = ".sweep.lock", ".sweep.pid"


def _entries(out: Path) -> list[Path]:
    """What ``out`` holds besides the lock files."""
    return [p for p in out.iterdir() if p.name not in (LOCK_FILE, PID_FILE)] if out.is_dir() else []


def _is_sweep_dir(out: Path) -> bool:
    try:
        results.read_sweep_record(out)
    except (OSError, ValueError):
        return False
    return True


def check_output_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse a results path that a sweep must not write to or delete (nothing is written).

    Refused: ``resume`` with ``overwrite``; the working directory or one of its
    ancestors (``--out ""`` means the working directory); a path below a file;
    a file; a non-empty directory unless resuming or overwriting; resuming a
    directory without a sweep's ``config.json``; overwriting a non-empty
    directory that does not hold one (``--overwrite`` deletes only a sweep's
    own results).
    """
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other.")
    resolved, cwd = out.resolve(), Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise ValueError(
            f"results path {str(out)!r} is the working directory or one of its parents; give a directory of its own "
            "(e.g. results/mine)."
        )
    for parent in out.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"results path {str(out)!r} is below {str(parent)!r}, which is a file.")
            break
    if out.exists() and not out.is_dir():
        raise ValueError(f"results path {str(out)!r} is a file; give a directory.")
    non_empty = bool(_entries(out))
    if resume and not (out / results.CONFIG_FILE).is_file():
        raise ValueError(f"cannot resume {str(out)!r}: it has no config.json from an earlier sweep.")
    if non_empty and not (resume or overwrite):
        raise ValueError(f"results directory {str(out)!r} is not empty; pass --resume or --overwrite.")
    if non_empty and overwrite and not _is_sweep_dir(out):
        raise ValueError(
            f"--overwrite deletes only a sweep's results directory, and {str(out)!r} has no sweep config.json; "
            "remove it yourself or pick another --out."
        )


@contextlib.contextmanager
def hold_results_dir(out: Path, resume: bool, overwrite: bool) -> Iterator[None]:
    """Hold ``out`` for one sweep: create it, lock it, then empty it if ``overwrite``.

    The lock (``.sweep.lock``, an OS file lock that dies with its process) is
    held until the sweep ends, so a second sweep, ``--resume`` or
    ``--overwrite`` on the same directory is refused with the holder's pid
    instead of racing it. ``check_output_dir`` runs again under the lock.
    """
    check_output_dir(out, resume, overwrite)
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(out / LOCK_FILE, timeout=0)
        lock.acquire()
    except filelock.Timeout:
        try:
            holder = (out / PID_FILE).read_text().strip() or "unknown"
        except OSError:
            holder = "unknown"
        raise ValueError(
            f"results directory {str(out)!r} is in use by another sweep (pid {holder}); wait for it to end or stop it."
        ) from None
    except OSError as e:
        raise ValueError(f"cannot write results directory {str(out)!r}: {e.strerror or e}.") from None
    try:
        check_output_dir(out, resume, overwrite)  # again: another sweep may have written before we held the lock
        if overwrite:
            # config.json goes last: a directory whose deletion was cut short still counts as a sweep's.
            for p in sorted(_entries(out), key=lambda p: p.name == results.CONFIG_FILE):
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        results.atomic_write_text(out / PID_FILE, f"{os.getpid()}\n")
        yield
    finally:
        (out / PID_FILE).unlink(missing_ok=True)
        # Removed while still held, so that no empty lock file stays behind; a sweep that opened the old file
        # meanwhile does not count a lock on it as held (filelock >= 4 checks that the file is still linked).
        (out / LOCK_FILE).unlink(missing_ok=True)
        lock.release()


class SweepInterrupted(BaseException):
    """SIGTERM or SIGINT stopped a sweep at a safe point (every checkpoint on disk is complete).

    A ``BaseException``, like ``KeyboardInterrupt``, so that no ``except
    Exception`` on the way swallows it.
    """

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _SafePoints:
    """Turns SIGTERM/SIGINT into :class:`SweepInterrupted`, deferred while a checkpoint is being written.

    SLURM and preemptible VMs send SIGTERM before they kill a job; Ctrl-C sends
    SIGINT. Either stops the sweep at once, except inside :meth:`critical`
    (checkpoint and curve writes), which finishes first. A SIGINT that the
    process was started with ignored (a shell's background job, ``nohup``)
    stays ignored, as shells and the GNU coding standards expect; SIGTERM is
    always handled.
    """

    def __init__(self):
        self.depth = 0
        self.pending: int | None = None

    def _handler(self, signum, frame):
        if self.depth:
            self.pending = signum
        else:
            raise SweepInterrupted(signum)

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if not self.depth and self.pending is not None:
            raise SweepInterrupted(self.pending)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            yield
            return
        signals = [signal.SIGTERM]
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signals.append(signal.SIGINT)
        previous = {s: signal.signal(s, self._handler) for s in signals}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


def _provenance() -> dict[str, Any]:
    versions = {}
    for pkg in ("jax", "jaxlib", "flax", "optax", "brax", "orbax-checkpoint", "numpy", "scipy", "sparse-rl"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {"versions": versions, "git_commit": commit, "devices": [str(d) for d in jax.devices()]}


def stored_plan(out: str | Path) -> plan_lib.Plan:
    """The batch plan a results directory was started with; per-cell for directories of earlier versions."""
    return plan_lib.Plan.from_json(results.read_sweep_record(out).plan)


def _shared_plan(plan: plan_lib.Plan | None, cfg: SweepConfig) -> plan_lib.Plan:
    """Process 0's plan on every process of a multi-host job (the others' memory and files may differ)."""
    if jax.process_count() == 1:
        return plan
    from jax.experimental import multihost_utils

    ours = plan is not None
    flags = np.int32([ours and plan.per_cell, ours and plan.shares_runs])
    per_cell, shares_runs = map(bool, multihost_utils.broadcast_one_to_all(flags))
    if per_cell:
        return plan if ours else plan_lib.Plan(caps=(), per_cell=True)
    count = len(cfg.programs(shares_runs=shares_runs))
    caps = np.asarray([-1 if c is None else c for c in plan.caps] if ours else [0] * count, np.int32)
    caps = np.asarray(multihost_utils.broadcast_one_to_all(caps))
    return plan if ours else plan_lib.Plan(tuple(None if c < 0 else int(c) for c in caps), shares_runs=shares_runs)


def _finite(x: Any) -> bool:
    return bool(np.all(np.isfinite(x)))


def _finite_mean(x: Any) -> float:
    """The mean of the finite values of ``x``; NaN, without numpy's empty-slice warning, when there are none."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else math.nan


def _params_info(init: sj.SparseInit, run: int, final_sparsity: float | None = None) -> dict[str, int]:
    """Active, prunable and total weights of one run's network (active after pruning to ``final_sparsity``)."""
    masks = jax.tree.map(lambda m: np.asarray(m[run]), init.masks)
    params = jax.tree.leaves(init.params)
    prunable = sum(m.size for m in jax.tree.leaves(masks))
    active = sum(m.sum() for m in jax.tree.leaves(masks))
    if final_sparsity is not None:
        active = sj.target_active(prunable, final_sparsity)
    return {
        "active": int(active),
        "prunable": int(prunable),
        "total": int(sum(int(np.prod(p.shape[1:])) for p in params)),
    }


def _topology(masks: Any, run: int) -> list[dict]:
    rows = sj.layer_topology(jax.tree.map(lambda m: np.asarray(m[run]), masks))
    return [dict(r._asdict(), shape=list(r.shape)) for r in rows]


def _reachability(masks: Any, run: int) -> dict[str, dict]:
    """Input-to-output reachability of each chain of kernels (the actor's body, each twin critic), through
    the skips of residual blocks (:func:`sparse_jax.kernel_stages`)."""
    tree = jax.tree.map(lambda m: np.asarray(m[run]), masks)
    leaves = [m for _, m in sj.utils.prunable_leaves(tree)]
    names = [sj.path_name(p).split("/") for p, _ in sj.utils.prunable_leaves(tree)]
    out = {}
    for chain in sj.kernel_stages(tree):
        first = names[chain[0]]
        pick = lambda s: sj.Residual([leaves[i] for i in s.kernels]) if isinstance(s, sj.Residual) else leaves[s]
        stages = [pick(s) for s in chain]
        try:
            out["/".join(first[:-2]) or first[0]] = sj.reachability(stages)._asdict()
        except ValueError:  # not a chain of 2-D kernels (a custom network): nothing to report
            continue
    return out


def _curve_rows(history: list[dict], run: int) -> list[dict]:
    """Run ``run``'s ``curve.jsonl`` rows: one per chunk, every metric as a Python number."""
    rows = []
    for c, metrics in enumerate(history):
        row = {"chunk": c}
        for k, v in metrics.items():
            row[k] = migrate.history_metric(np.asarray(v), run).item()
        rows.append(row)
    return rows


def _run_records(cfg: SweepConfig, batch: Batch, prepared: Prepared) -> list[tuple[int, results.RunRecord]]:
    """``(slot, record)`` per run the batch writes: what its run.json says of its config and masks.

    The records do not change from chunk to chunk. A run of another cell
    that a trained run stands for (:attr:`Batch.shared`) gets that run's
    record under its own identity and config, with ``same_as`` naming it.
    """
    actor, critic = prepared.masks
    # A narrowed dense baseline (small_dense) is sized against the dense networks of its cell's width.
    hidden, sizes = prepared.trainer.hidden, prepared.trainer.reference_sizes
    reference = lambda net: {} if sizes is None else {"dense_total": sizes[net]}
    records = []
    for r, run in enumerate(batch.runs):
        cell, method, seed = run
        train_cfg = cfg.run_config(run)
        sp = train_cfg.sparse
        records.append(results.RunRecord(
            run_id=cfg.run_id(run), env=cell.env, algo=cell.algo, sparsity=cell.sparsity,
            method=method, seed=seed, hidden=tuple(train_cfg.hidden), score=sp.score,
            distribution=sp.distribution, rho=sp.rho, total_steps=train_cfg.total_steps,
            redo=train_cfg.redo.every or None, hyper=cfg.hyper_label(cell), batch=batch.name,
            network=None if train_cfg.network == "mlp" else train_cfg.network,
            phi=None if cfg.phis is None else sp.phi,
            config=json.loads(json.dumps(dataclasses.asdict(train_cfg))),
            total_chunks=train_cfg.num_chunks, delta_t=sp.delta_t, end_fraction=sp.end_fraction,
            start_fraction=sp.start_fraction,
            total_updates=train_cfg.total_updates,
            params={  # a dense-to-sparse method (GMP): its parameter count is the one it prunes to
                net: _params_info(init, r, sp.network_sparsity(net) if sj.METHODS[method].dense_to_sparse else None)
                | reference(net)
                for net, init in (("actor", actor), ("critic", critic))
            },
            trained_hidden=None if hidden == train_cfg.hidden else hidden,
            topology={"actor": _topology(actor.masks, r), "critic": _topology(critic.masks, r)},
            base_topology={"actor": _topology(actor.base_masks, r), "critic": _topology(critic.base_masks, r)},
            reachability={"actor": _reachability(actor.masks, r), "critic": _reachability(critic.masks, r)},
            base_reachability={
                "actor": _reachability(actor.base_masks, r), "critic": _reachability(critic.base_masks, r)
            },
        ))  # fmt: skip
    for slot, run in batch.entries()[len(batch.runs) :]:
        run_cfg = cfg.run_config(run)
        sp = run_cfg.sparse
        records.append(dataclasses.replace(
            records[slot], run_id=cfg.run_id(run), sparsity=run.cell.sparsity, score=sp.score,
            distribution=sp.distribution, rho=sp.rho, redo=run_cfg.redo.every or None,
            phi=None if cfg.phis is None else sp.phi,
            hyper=cfg.hyper_label(run.cell), config=json.loads(json.dumps(dataclasses.asdict(cfg.run_config(run)))),
            same_as=records[slot].run_id,
        ))  # fmt: skip
    return [(slot, record) for (slot, _), record in zip(batch.entries(), records, strict=True)]


# What a tracker gets as a run's hyperparameters: its identity in the grid and its resolved train config.
_TRACKED = (*results.CELL_KEYS, "method", "seed", "total_steps")


def _tracked_config(record: results.RunRecord) -> dict:
    as_json = record.to_json()
    return {**{k: as_json[k] for k in _TRACKED if k in as_json}, "train": record.config}  # redo: where set


def _write_runs(out: Path, records: list[tuple[int, results.RunRecord]], history: list[dict], finished: bool) -> None:
    """Each run's ``curve.jsonl`` and ``run.json`` from its slot of the batch's history so far (atomic writes)."""
    for slot, record in records:
        curve = _curve_rows(history, slot)
        diverged = any(not _finite([row.get(k, 0.0) for k in ("critic_loss", "actor_loss")]) for row in curve)
        status = dict(diverged=diverged, finished=finished, chunks_done=len(history))
        results.write_run(out, dataclasses.replace(record, **status), curve)


def run_batch(
    cfg: SweepConfig,
    out: Path,
    batch: Batch,
    resume: bool,
    progress: Callable[[int, dict[str, float]], None],
    num_devices: int | None = None,
    safe_points: _SafePoints | None = None,
    trackers: Sequence[tracking.Tracker] = (),
) -> None:
    """Train one batch of runs (one compiled program), checkpointing and writing curves after every chunk.

    Every process of a multi-host job runs this; only process 0 writes files
    (and gets the ``trackers``). The last two checkpoints are kept: when the
    newer one does not restore, ``resume`` says so and falls back to the
    older one.
    """
    # Long: one batch's life in order (restore, train, checkpoint, write, close); each step is a call.
    safe_points = safe_points or _SafePoints()
    train_cfg = cfg.run_config(batch.runs[0])  # every run of a sweep has the same steps and chunks
    trained = len(batch.runs)
    if resume and all(_run_finished(results.run_folder(out, cfg.run_id(r))) for _, r in batch.entries()):
        progress(trained * train_cfg.num_chunks * train_cfg.chunk_steps, {})
        return

    prepared = prepare_runs([(cfg.run_config(r), r.seed) for r in batch.runs], num_devices)
    state, history, first = prepared.state, [], 0
    manager = checkpoint.open_manager((out / "checkpoints" / batch.name).absolute()) if cfg.checkpoint_every else None
    if resume and manager is not None and manager.all_steps():
        num_slots = jax.tree.leaves(state.env_steps)[0].shape[0]  # real runs plus padding
        template = state_template(prepared.trainer, num_slots)
        step, state, history = checkpoint.restore(manager, state, template, prepared.mesh, batch.name, _say)
        first = step + 1
        progress(trained * first * train_cfg.chunk_steps, {})
    records = _run_records(cfg, batch, prepared) if jax.process_index() == 0 else []
    if first < train_cfg.num_chunks:  # a batch whose last checkpoint is its last chunk logs nothing more
        # Steps after the checkpoint's last chunk are the ones an interrupted attempt may have logged already.
        first_step = int(np.max(history[-1]["env_steps"])) + 1 if history else 0
        for _, record in records:
            for tracker in trackers:
                tracker.start(record.run_id, batch.name, _tracked_config(record), first_step)
    methods = np.asarray([r.method for r in batch.runs])
    saved_steps = set(checkpoint_steps(cfg))

    def on_chunk(report: ChunkReport) -> None:
        c, metrics = report.chunk, report.metrics
        last = c + 1 == train_cfg.num_chunks
        # A signal that arrives while the checkpoint and curves are written takes effect after them.
        with safe_points.critical():
            history.append(metrics)
            if manager is not None and c in saved_steps:
                checkpoint.save(manager, c, report.state, history)
            _write_runs(out, records, history, finished=last)
        for slot, record in records:
            row = report.scalars(slot)
            for tracker in trackers:
                tracker.log(record.run_id, int(row["env_steps"]), row)
                if last:
                    tracker.finish(record.run_id)
        if c == first and not last and jax.process_index() == 0:  # the measured pace, once per batch
            wall = float(metrics["wall_s"][0])
            tqdm.write(
                f"sparse-rl: {batch.name}: chunk {c + 1} of {train_cfg.num_chunks} took {_duration(wall)}; about "
                f"{_duration(wall * (train_cfg.num_chunks - c - 1))} more for this batch",
                file=sys.stdout,
            )
        returns = {m: _finite_mean(metrics["eval_return"][methods == m]) for m in dict.fromkeys(methods)}
        progress(trained * train_cfg.chunk_steps, {**returns, "steps/s": float(metrics["steps_per_s"][0])})

    try:
        with safe_points.critical():
            _write_runs(out, records, history, finished=first == train_cfg.num_chunks)
        train_chunks(prepared.trainer, state, first, on_chunk, prepared.labels, prepared.mesh, prepared.chunk)
    except BaseException:
        if manager is not None:
            checkpoint.close_after_failure(manager)  # the exception on its way says what went wrong
        raise
    if manager is not None:
        manager.close()


def checkpoint_steps(cfg: SweepConfig) -> list[int]:
    """The checkpoint steps a sweep writes: after every ``checkpoint_every``-th chunk and after the last one."""
    chunks, every = cfg.train.num_chunks, cfg.checkpoint_every
    return [c for c in range(chunks) if every and ((c + 1) % every == 0 or c + 1 == chunks)]


def check_checkpoint_steps(cfg: SweepConfig, out: Path, batches: Sequence[Batch]) -> None:
    """Refuse checkpoint folders holding a step that ``cfg`` cannot have written (copied in or renamed).

    Restoring it would skip chunks that never trained, or train none and
    leave the runs unfinished without a word.
    """
    allowed = set(checkpoint_steps(cfg))
    for batch in batches:
        folder = out / "checkpoints" / batch.name
        found = sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []
        foreign = [step for step in found if step not in allowed]
        if foreign:
            raise ValueError(
                f"checkpoint folder {str(folder)!r} holds step(s) {', '.join(map(str, foreign))}, which this sweep "
                f"cannot have written (it checkpoints after chunks {sorted(allowed)} of 0 .. "
                f"{cfg.train.num_chunks - 1}); move them out of the folder, then resume."
            )


def _dropped_steps(train: TrainConfig) -> str | None:
    """What a run leaves untrained when its steps after warm-up do not fill whole chunks; ``None`` when they do."""
    trained = train.num_chunks * train.chunk_steps
    rest = train.total_steps - train.warmup_steps - trained
    if not rest:
        return None
    return (
        f"each run trains {train.num_chunks} chunks of {train.chunk_steps} env steps after {train.warmup_steps} "
        f"warm-up steps, {train.warmup_steps + trained} of total_steps={train.total_steps}: the last {rest} do not "
        "fill a chunk and are not trained (make total_steps - warmup_steps a multiple of chunk_steps to train them)."
    )


def _duration(seconds: float) -> str:
    """A duration for a person: ``"12.3 s"``, ``"4 min 10 s"``, ``"2 h 28 min"``, ``"3 d 4 h"``.

    >>> _duration(12.34), _duration(250), _duration(8880), _duration(273600)
    ('12.3 s', '4 min 10 s', '2 h 28 min', '3 d 4 h')
    """
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _say(message: str) -> None:
    """One line to stderr that does not break the progress bar."""
    tqdm.write(f"sparse-rl: {message}", file=sys.stderr)


def _run_finished(folder: Path) -> bool:
    """Whether a run's files say it finished; damaged files count as unfinished (the run is rewritten)."""
    if not (folder / results.RUN_FILE).is_file():
        return False
    try:
        run = results.read_record(folder)
        results.read_jsonl(folder / results.CURVE_FILE)  # a run whose curve does not read is rewritten too
    except results.DamagedFile as e:
        _say(f"warning: {e.path!r} is damaged ({e.reason}); it is rewritten from its batch's last checkpoint.")
        return False
    except OSError as e:
        _say(f"warning: {e.filename or folder} does not read ({e.strerror or e}); it is rewritten from its batch's "
             "last checkpoint.")  # fmt: skip
        return False
    except ValueError:  # not a run record (another program's file)
        return False
    return run.finished


def run_sweep(
    cfg: SweepConfig | None,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    show_progress: bool = True,
    num_devices: int | None = None,
    log: Sequence[str] = (),
    max_runs_per_batch: int | None = None,
) -> list[dict]:
    """Run every batch of ``cfg`` into ``out``, then write the report. Returns the summary rows (process 0).

    With ``resume`` the sweep continues from its own ``config.json``; ``cfg``
    may then be ``None``, and a ``cfg`` that differs from it is refused with
    the list of differences (``show_progress`` may change, and ``num_devices``
    when every batch's runs divide evenly over both device counts).
    With ``overwrite`` an existing sweep directory is emptied first. Every
    check runs before anything is written, and the directory is locked for
    the whole sweep. SIGTERM or SIGINT stops the sweep with
    :class:`SweepInterrupted` once any checkpoint being written is complete.
    The runs axis of every batch is sharded over ``num_devices`` devices
    (default: all of them; results match a one-device run to float32 rounding).
    ``log`` names the trackers of every run (:data:`agents.results.tracking.TRACKERS`:
    ``tensorboard``, ``wandb``).

    Every mask-only run of one (env, algo, width) trains in one compiled
    program, and every run of one dynamic method in another
    (:meth:`SweepConfig.programs`); a program's runs split into several
    batches only where they would not fit the devices' free memory, or
    ``max_runs_per_batch`` (:mod:`agents.execution.plan`). The plan is printed before
    anything compiles and kept in ``config.json`` for ``resume``.
    """
    # Long: every check before anything is written, then the batches, then the report, in the order they run.
    out = Path(out)
    log = tracking.check_trackers(log)
    writer = jax.process_index() == 0
    if writer or resume:  # other processes of a new multi-host sweep may already see process 0's config.json
        check_output_dir(out, resume, overwrite)
    runs_mesh(num_devices)  # validates the device count before anything is written
    if max_runs_per_batch is not None:
        check_int("max_runs_per_batch", max_runs_per_batch, minimum=1)
    if resume:
        stored = stored_config(out)
        if cfg is not None and cfg != stored:
            raise ValueError(
                f"--resume continues {str(out)!r} with its own config.json, and these options differ from it: "
                f"{'; '.join(config_differences(stored, cfg))}. Drop them, or start a new sweep in another --out."
            )
        cfg = stored
        plan = stored_plan(out)
        if max_runs_per_batch is not None and max_runs_per_batch != plan.max_runs_per_batch:
            raise ValueError(
                f"--resume keeps the batches {str(out)!r} was started with (max_runs_per_batch="
                f"{plan.max_runs_per_batch}), so that their checkpoints are found; drop --max-runs-per-batch "
                f"{max_runs_per_batch}."
            )
    elif cfg is None:
        raise ValueError("a new sweep needs a config (cfg=None is allowed only with resume=True).")
    else:
        plan = plan_lib.make_plan(cfg.plan_programs(), num_devices, max_runs_per_batch) if writer else None
    plan = _shared_plan(plan, cfg)
    batches = cfg.planned_batches(plan)
    if resume:
        check_checkpoint_steps(cfg, out, batches)
    safe_points = _SafePoints()
    held = hold_results_dir(out, resume, overwrite) if writer else contextlib.nullcontext()
    with held, safe_points.installed():
        if writer:  # on stdout with the devices line: stderr holds only warnings and errors
            for line in plan_lib.plan_lines(plan, batches):
                tqdm.write(f"sparse-rl: {line}", file=sys.stdout)
            dropped = _dropped_steps(cfg.train)
            if dropped:
                _say(f"warning: {dropped}")
        if not resume and writer:
            results.write_sweep_record(out, results.SweepRecord(config_to_json(cfg), plan.to_json(), **_provenance()))
        total = sum(len(b.runs) * cfg.train.num_chunks * cfg.train.chunk_steps for b in batches)
        bar = tqdm(total=total, unit="step", desc="sweep", disable=not show_progress, dynamic_ncols=True)
        latest: dict[str, float] = {}

        def progress(steps: int, info: dict[str, float]) -> None:
            latest.update({k: round(v, 1) for k, v in info.items() if math.isfinite(v)})
            bar.set_postfix(latest, refresh=False)
            bar.update(steps)

        trackers = tracking.make_trackers(log, out) if writer else []
        try:
            for batch in batches:
                bar.set_description(batch.name)
                run_batch(cfg, out, batch, resume, progress, num_devices, safe_points, trackers)
        finally:
            bar.close()
            for tracker in trackers:
                tracker.close()
        if not writer:  # process 0 writes the report; the results directory may not even be shared
            return []
        # Not a critical section: every run is finished, and a stopped report is rewritten by --resume.
        return report_lib.write_report(out)
