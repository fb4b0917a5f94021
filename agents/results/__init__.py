"""The results directory of a sweep: its layout, and atomic writes into it.

Layout (``DIR`` is the results directory)::

    DIR/config.json                 resolved sweep config, package versions, git commit
    DIR/runs/<run_id>/run.json      one run: identity, final status, parameter counts, mask topology
    DIR/runs/<run_id>/curve.jsonl   one line per chunk: env_steps, eval_return, losses, ...
    DIR/summary.csv, summary.md     the table (``agents.experiments.report``)
    DIR/figures/*.png               learning curves, final returns, topology (``agents.experiments.report``)
    DIR/checkpoints/<batch>/        orbax checkpoints of each batch of runs (agents.execution.plan)

``run_id`` is ``<env>-<algo>-s<sparsity>[-<axis tags>]-<method>-seed<seed>``, with the
sparsity written so that it reads back exactly (so two different sparsities
never share a folder; :func:`sparsity_label`).

Every file is written to a temporary name in the same folder and renamed into
place, so a killed process never leaves a half-written file behind.

This module is the only reader and writer of ``config.json``, ``run.json`` and
``curve.jsonl``: :class:`SweepRecord` and :class:`RunRecord` are what they
hold, :func:`write_run` / :func:`read_run` / :func:`read_runs` and
:func:`write_sweep_record` / :func:`read_sweep_record` move them, and files of
earlier versions are brought up to date once, as they are read
(:mod:`agents.results.migrate`). A curve row is a dict of metric name to number, one
per chunk (``chunk``, ``env_steps``, ``eval_return``, the losses, ...).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.results import migrate

CONFIG_FILE, RUN_FILE, CURVE_FILE, RUNS_DIR = "config.json", "run.json", "curve.jsonl", "runs"

# A cell is one point of a sweep's grid; runs of one cell differ only by method and seed.
CELL_KEYS = ("env", "algo", "hidden", "sparsity", "score", "distribution", "rho", "redo", "hyper", "network", "phi")


def sparsity_label(sparsity: float) -> str:
    """``sparsity`` as it appears in run and group names: injective on floats.

    The short ``:g`` form (as earlier versions wrote it) where it reads back
    as the same float, else the exact ``repr``; either way the label reads
    back as exactly one float, so two sparsities never share a name.

    >>> sparsity_label(0.9), sparsity_label(0.9000001), sparsity_label(0), sparsity_label(0.12345678)
    ('0.9', '0.9000001', '0', '0.12345678')
    """
    short = f"{float(sparsity):g}"
    return short if float(short) == float(sparsity) else repr(float(sparsity))


def run_id(env: str, algo: str, sparsity: float, method: str, seed: int, tags: tuple[str, ...] = ()) -> str:
    """The folder name of one run, e.g. ``inverted_pendulum-sac-s0.9-tar-seed0``.

    ``tags`` name the other grid axes of a sweep that sets them (width, base
    score, distribution, rho, ReDo period), e.g. ``hopper-sac-s0.9-w256-snip-global-r0.1-tar-seed0``.
    """
    return "-".join((env, algo, f"s{sparsity_label(sparsity)}", *tags, method, f"seed{seed}"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename).

    Raises:
      OSError: naming ``path`` (not the temporary file), e.g. on a full disk or a read-only folder.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:  # name the file asked for, not the temporary one
        raise OSError(e.errno, e.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600 files; give the usual permissions under the process umask.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror, str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


class DamagedFile(ValueError):
    """A results file that does not parse; ``path`` names it and ``reason`` says what is wrong."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{str(path)!r} is damaged ({reason}); delete it or restore it.")
        self.path, self.reason = str(path), reason


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a damaged one raises :class:`DamagedFile` (a ``ValueError``) naming it."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DamagedFile(path, f"not valid JSON: {e}") from None


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSON-lines file (one object per line); a damaged one raises :class:`DamagedFile` naming it."""
    try:
        return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DamagedFile(path, f"not valid JSON lines: {e}") from None


def run_folder(results_dir: str | os.PathLike, run_id: str) -> Path:
    """``DIR/runs/<run_id>``: the folder of one run's ``run.json`` and ``curve.jsonl``."""
    return Path(results_dir) / RUNS_DIR / run_id


def run_ids(results_dir: str | os.PathLike) -> list[str]:
    """The run ids of a results directory that have a ``run.json``, sorted."""
    runs = Path(results_dir) / RUNS_DIR
    return sorted(p.name for p in runs.iterdir() if (p / RUN_FILE).is_file()) if runs.is_dir() else []


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """What ``runs/<run_id>/run.json`` says of one run.

    Its identity in the grid (``env`` ... ``seed``, and the axes ``hidden``,
    ``score``, ``distribution``, ``rho`` where the sweep sets them, ``redo``, the ReDo period of a run
    trained with it, and ``hyper``, the values of the hyperparameter axes the sweep sets), its
    resolved training ``config`` (``dataclasses.asdict`` of a
    :class:`~agents.algorithms.config.TrainConfig`), the schedule figures the FLOPs model
    reads, the parameter counts and mask topology at the start of training,
    and its status. ``same_as`` names the trained run whose results this one
    shares (an axis that does not change its method: :attr:`agents.experiments.grid.Batch.shared`).
    Fields that earlier versions did not write take the defaults.
    """

    run_id: str
    env: str
    algo: str
    sparsity: float
    method: str
    seed: int
    hidden: tuple[int, ...] | None = None
    score: str | None = None
    distribution: str | None = None
    rho: float | None = None
    total_steps: int | None = None
    batch: str | None = None
    config: dict | None = None
    total_chunks: int = 0
    delta_t: int = 1
    end_fraction: float = 0.0
    start_fraction: float = 0.0
    total_updates: int = 0
    params: dict | None = None  # per network: active, prunable, total (see agents.results.stats.network_counts)
    topology: dict | None = None  # per network: one row per layer (sparse_jax.layer_topology)
    base_topology: dict | None = None  # the same for the masks before revival
    reachability: dict | None = None  # per network and chain (sparse_jax.reachability)
    base_reachability: dict | None = None
    diverged: bool = False
    finished: bool = False
    chunks_done: int = 0
    same_as: str | None = None
    redo: int | None = None  # the ReDo period; None: trained without ReDo
    hyper: str | None = None  # the hyperparameter axes the sweep sets, "actor_lr=0.0001,tau=0.01"; None: none
    network: str | None = None  # the networks' body (TrainConfig.network); None: the default ReLU MLPs
    trained_hidden: tuple[int, ...] | None = None  # the widths trained where they are not `hidden` (small_dense)
    phi: float | None = None  # TAR's floor share, where the sweep has a phi axis; None: the config's, not varied

    @property
    def hidden_label(self) -> str | None:
        """The hidden sizes as the tables print them (``"256-256"``); ``None`` if the run did not record them."""
        return None if self.hidden is None else "-".join(map(str, self.hidden))

    @property
    def cell(self) -> tuple:
        """The run's cell, the values of :data:`CELL_KEYS` (hidden sizes as :attr:`hidden_label`)."""
        return tuple(self.hidden_label if k == "hidden" else getattr(self, k) for k in CELL_KEYS)

    def to_json(self) -> dict[str, Any]:
        """The ``run.json`` object (``same_as``, ``redo``, ``hyper``, ``network``, ``trained_hidden`` and ``phi`` only
        where they are set)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(RunRecord)}
        for widths in ("hidden", "trained_hidden"):
            out[widths] = None if out[widths] is None else list(out[widths])
        for optional in ("same_as", "redo", "hyper", "network", "trained_hidden", "phi"):
            if out[optional] is None:
                del out[optional]
        return out

    @classmethod
    def from_json(cls, data: Any, where: str) -> RunRecord:
        """The record of a ``run.json`` object (an earlier version's brought up to date).

        Raises:
          ValueError: naming ``where`` and the identity fields it lacks, or if it is not an object.
        """
        data = migrate.run_json(data, Path(where).parent.name, where)
        names = {f.name for f in dataclasses.fields(RunRecord)}
        required = [f.name for f in dataclasses.fields(RunRecord) if f.default is dataclasses.MISSING]
        missing = [k for k in required if k not in data]
        if missing:
            raise ValueError(f"{where} lacks the fields {', '.join(missing)}.")
        fields = {k: v for k, v in data.items() if k in names}  # keys of another version are left out
        for widths in ("hidden", "trained_hidden"):
            if isinstance(fields.get(widths), list):
                fields[widths] = tuple(fields[widths])
        return cls(**fields)


@dataclasses.dataclass(frozen=True)
class Run(RunRecord):
    """A run as the report reads it: its :class:`RunRecord` and its curve (one row per chunk)."""

    curve: Sequence[dict] = ()


def write_run(results_dir: str | os.PathLike, record: RunRecord, curve: Sequence[dict]) -> None:
    """Write a run's ``curve.jsonl``, then its ``run.json`` (each atomically)."""
    folder = run_folder(results_dir, record.run_id)
    atomic_write_text(folder / CURVE_FILE, "".join(json.dumps(row) + "\n" for row in curve))
    atomic_write_json(folder / RUN_FILE, record.to_json())


def read_record(folder: str | os.PathLike) -> RunRecord:
    """The :class:`RunRecord` of a run folder's ``run.json`` (:class:`DamagedFile` if it does not parse)."""
    path = Path(folder) / RUN_FILE
    return RunRecord.from_json(read_json(path), str(path))


def read_run(folder: str | os.PathLike) -> Run:
    """The :class:`Run` of a run folder: its record and its curve (empty if ``curve.jsonl`` is missing)."""
    record = read_record(folder)
    path = Path(folder) / CURVE_FILE
    curve = read_jsonl(path) if path.exists() else []
    return Run(**{f.name: getattr(record, f.name) for f in dataclasses.fields(RunRecord)}, curve=curve)


def read_runs(results_dir: str | os.PathLike) -> list[Run]:
    """Every run of a results directory that has a ``run.json``, sorted by run id."""
    return [read_run(run_folder(results_dir, rid)) for rid in run_ids(results_dir)]


@dataclasses.dataclass(frozen=True)
class SweepRecord:
    """What ``config.json`` holds: the sweep config, its batch plan and where the results came from.

    ``sweep`` is :func:`agents.experiments.grid.config_to_json` of the sweep config and
    ``plan`` :meth:`agents.execution.plan.Plan.to_json` of its plan (``None`` in
    directories of versions that ran one batch per cell); ``versions``,
    ``git_commit`` and ``devices`` record the packages, the code and the
    devices that started the sweep.
    """

    sweep: dict
    plan: dict | None = None
    versions: dict | None = None
    git_commit: str | None = None
    devices: list | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``config.json`` object."""
        return dataclasses.asdict(self)


def write_sweep_record(results_dir: str | os.PathLike, record: SweepRecord) -> None:
    """Write ``config.json`` atomically."""
    atomic_write_json(Path(results_dir) / CONFIG_FILE, record.to_json())


def read_sweep_record(results_dir: str | os.PathLike) -> SweepRecord:
    """The :class:`SweepRecord` of a results directory's ``config.json``.

    Raises:
      ValueError: the file does not parse (:class:`DamagedFile`) or holds no sweep config.
      OSError: it does not read (missing, say).
    """
    path = Path(results_dir) / CONFIG_FILE
    data = migrate.config_json(read_json(path))
    if not isinstance(data, dict) or not isinstance(data.get("sweep"), dict):
        raise ValueError(f"{str(path)!r} holds no sweep config.")
    names = {f.name for f in dataclasses.fields(SweepRecord)}
    return SweepRecord(**{k: v for k, v in data.items() if k in names})
