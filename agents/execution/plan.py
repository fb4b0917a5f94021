"""Batch planning: how a sweep's runs split into compiled programs and batches that fit in memory.

Every mask-only run of one (env, algo, width) shares one compiled program, and
so does every run of one dynamic method (see
:meth:`agents.experiments.sweep.SweepConfig.programs`). A program's runs train as one
vmapped batch unless that would not fit: :func:`make_plan` estimates the
bytes of one run (its ``TrainState``: replay buffer, params, targets,
optimizer states, env state; :data:`STATE_COPIES` times, for the chunk's
input and output states and the program's temporaries), reads the free memory of the devices the runs are sharded over
(an accelerator's own, or the host's on CPU), and caps each batch at what fits
in 80% of it, or at ``max_runs_per_batch``.

The plan is stored in the sweep's ``config.json``, so ``--resume`` rebuilds
the same batches (and finds their checkpoints) whatever memory is free then.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import numpy as np

import sparse_jax as sj
from agents.execution.runner import state_template
from agents.execution.sharding import runs_mesh
from agents.execution.train import make_train

if TYPE_CHECKING:
    from agents.algorithms.config import TrainConfig

# The share of the free memory a batch may plan for: compiled code and the runtime's own buffers are not in
# the estimate.
MEMORY_SHARE = 0.8
# Bytes of one run in a batch, in copies of its training state: the chunk's input and output states, and
# the temporaries of its updates. Measured on an NVIDIA H200 (benchmarks/results/seeds_batch_gpu.json), the
# mask-only SAC program took 12.6 MiB of device memory per added run for a state of 3.0 MiB (4.2 copies);
# the earlier estimate of 2 copies would have let a batch at its cap take about 1.7 times the free memory.
STATE_COPIES = 4


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a sweep's programs split into batches.

    Attributes:
      caps: the most runs per batch, one per program (``None``: no cap).
      bytes_per_run: the estimated bytes of one run of each program (:data:`STATE_COPIES` times its state).
      free_bytes: the memory the plan was sized to (summed over the devices a batch is sharded over), or
        ``None`` where it could not be read.
      memory: where that memory is: ``"device"``, ``"host"`` (CPU runs) or ``"unknown"``.
      max_runs_per_batch: the user's cap, if any.
      per_cell: programs per cell, as sweeps of earlier versions ran them (their results directories
        hold no plan).
      shares_runs: a run that is the same in several cells (dense under several sparsities, static
        under several rhos, ...) trains once and is written into each of them
        (:meth:`agents.experiments.sweep.SweepConfig.canonical`). Plans of earlier versions lack it and trained
        every copy; their ``--resume`` keeps doing so.
    """

    caps: tuple[int | None, ...]
    bytes_per_run: tuple[int, ...] = ()
    free_bytes: int | None = None
    memory: str = "unknown"
    max_runs_per_batch: int | None = None
    per_cell: bool = False
    shares_runs: bool = False

    def to_json(self) -> dict[str, Any]:
        """The plan as ``config.json`` stores it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Plan:
        """Inverse of :meth:`to_json`; ``None`` (a ``config.json`` without a plan) is the per-cell plan."""
        if data is None:
            return cls(caps=(), per_cell=True)
        if not isinstance(data, dict) or not isinstance(data.get("caps"), list):
            raise ValueError(f"config.json: the batch plan must be an object with a list of caps, got {data!r}.")
        return cls(**{**data, "caps": tuple(data["caps"]), "bytes_per_run": tuple(data.get("bytes_per_run", ()))})


class Program(NamedTuple):
    """One compiled program of a sweep, as the planner sees it.

    Attributes:
      config: a config of its runs: the state's size depends on its env, algorithm and networks.
      runs: how many runs it trains.
    """

    config: TrainConfig
    runs: int


def state_bytes(tree: Any) -> int:
    """Bytes of the arrays (or shape structs) of ``tree``; a PRNG key counts as its key data."""
    total = 0
    for x in jax.tree.leaves(tree):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = jax.eval_shape(jax.random.key_data, x)
            total += math.prod(data.shape) * np.dtype(data.dtype).itemsize
        else:
            total += math.prod(x.shape) * np.dtype(x.dtype).itemsize
    return int(total)


def host_available_bytes() -> int | None:
    """The host's available memory (``MemAvailable``; free pages where ``/proc/meminfo`` is missing)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def free_memory(num_devices: int | None = None) -> tuple[int | None, str]:
    """``(bytes, where)``: the memory a batch sharded over ``num_devices`` devices may use.

    On accelerators, the smallest free memory (``bytes_limit - bytes_in_use``)
    of this process's devices times the number of devices: the room JAX may
    still use, read from its own allocator rather than from the driver.

    On a GPU, JAX's allocator is given a limit at start-up,
    ``XLA_PYTHON_CLIENT_MEM_FRACTION`` (0.75 unless set) of the memory free
    then, and ``bytes_limit`` reports it. By default JAX also preallocates
    that pool at once, so the driver then sees the device nearly full; the
    pool's room is ``bytes_limit - bytes_in_use`` all the same. With
    ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` the pool grows on demand up to
    the same limit, so the plan is the same, as long as no other process
    takes the device's memory meanwhile. ``benchmarks/accelerator.sh`` sets
    ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` (its steps run one after another,
    each in its own process, and the device's peak bytes in use are then what
    the runs needed) and leaves ``XLA_PYTHON_CLIENT_MEM_FRACTION`` at its
    default. A TPU reports its memory as ``bytes_limit`` (those variables do
    not apply to it).

    On CPU, where ``memory_stats`` is ``None``, the host's available memory
    times the number of processes. An accelerator that reports no limit (no
    statistics, as with ``XLA_PYTHON_CLIENT_ALLOCATOR=platform``, or ``-1``)
    gives ``(None, "unknown")``: the host's memory says nothing of the
    device's, so batches are then capped by ``max_runs_per_batch`` alone.
    """
    mesh = runs_mesh(num_devices)
    devices = list(mesh.devices.flat) if mesh is not None else jax.local_devices()[:1]
    local = [d for d in devices if d.process_index == jax.process_index()]
    stats = [d.memory_stats() or {} for d in local]
    # A backend may leave a statistic unset (None, or -1 as its sentinel).
    limits = [int(s.get("bytes_limit") or -1) for s in stats]
    if local and all(limit > 0 for limit in limits):
        used = [max(int(s.get("bytes_in_use") or 0), 0) for s in stats]
        return min(limit - u for limit, u in zip(limits, used, strict=True)) * len(devices), "device"
    if any(d.platform != "cpu" for d in local):
        return None, "unknown"
    host = host_available_bytes()
    return (None, "unknown") if host is None else (host * jax.process_count(), "host")


def make_plan(
    programs: Sequence[Program], num_devices: int | None = None, max_runs_per_batch: int | None = None
) -> Plan:
    """Size the batches of ``programs`` to the free memory, and to ``max_runs_per_batch`` if given.

    ``programs`` come in the sweep's order (:meth:`agents.experiments.sweep.SweepConfig.plan_programs`);
    the plan holds one cap per program.

    With several devices a cap of at least the device count is rounded down
    to a multiple of it, so that no device holds padding runs.

    Raises:
      ValueError: a bad ``max_runs_per_batch``, or a program of which not even one run fits in the memory share.
    """
    if max_runs_per_batch is not None and (isinstance(max_runs_per_batch, bool) or max_runs_per_batch < 1):
        raise ValueError(f"max_runs_per_batch={max_runs_per_batch!r} is not allowed; allowed: an integer >= 1.")
    free, where = free_memory(num_devices)
    mesh = runs_mesh(num_devices)
    devices = 1 if mesh is None else mesh.size
    # One estimate per (env, algo, width): a method barely changes the state, except an ensemble's members.
    sizes: dict[tuple, int] = {}
    caps, per_run = [], []
    for config, runs in programs:
        members = config.eaude.members if sj.METHODS[config.sparse.method].ensemble else 0
        shape_key = (config.env, config.algo, config.hidden, members)
        if shape_key not in sizes:
            sizes[shape_key] = STATE_COPIES * state_bytes(state_template(make_train(config), 1))
        need = sizes[shape_key]
        if free is not None and need > MEMORY_SHARE * free:  # not even one run fits: it could only fail midway
            raise ValueError(
                f"one run of {config.env} / {config.algo} needs about {_size(need)} ({STATE_COPIES} times its "
                f"training state), "
                f"more than {MEMORY_SHARE:.0%} of the {_size(free)} of free {where} memory; lower "
                "--config.buffer-capacity or the network widths, or free memory."
            )
        cap = None if free is None else max(1, int(MEMORY_SHARE * free) // need)
        if max_runs_per_batch is not None:
            cap = max_runs_per_batch if cap is None else min(cap, max_runs_per_batch)
        if cap is not None and cap >= devices > 1:
            cap -= cap % devices
        caps.append(None if cap is None or cap >= runs else int(cap))
        per_run.append(need)
    return Plan(tuple(caps), tuple(per_run), free, where, max_runs_per_batch, shares_runs=True)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def plan_lines(plan: Plan, batches: Sequence) -> list[str]:
    """The plan as printed before anything compiles: one line for the whole, one per batch."""
    programs = len({b.program for b in batches})
    runs = sum(len(b.runs) for b in batches)
    shared = sum(len(s) for b in batches for s in b.shared)
    free = "unknown" if plan.free_bytes is None else f"{_size(plan.free_bytes)} ({plan.memory})"
    head = f"plan: {len(batches)} batch(es) of {programs} compiled program(s) for {runs} runs; free memory {free}"
    if shared:
        head += f"; {shared} runs of other cells are the same runs (their method ignores the axis), not trained again"
    if plan.max_runs_per_batch is not None:
        head += f"; --max-runs-per-batch {plan.max_runs_per_batch}"
    if plan.per_cell:
        head += "; one program per cell, as this results directory was started"
    lines = [head]
    sizes = dict(enumerate(plan.bytes_per_run)) if not plan.per_cell else {}
    for b in batches:
        need = sizes.get(b.program)
        memory = "" if need is None else f" x {_size(need)} = {_size(need * len(b.runs))}"
        lines.append(f"  {b.name}: {len(b.runs)} runs{memory}")
    return lines
