"""agents.execution.plan: batches capped by the devices' free memory (their own statistics) and by the user."""

import json
from types import SimpleNamespace
from typing import NamedTuple

import pytest

from agents.execution import plan as plan_lib
from agents.execution import runner
from tests.helpers import BATCHING_GRID as GRID


def test_the_plan_caps_batches_by_memory_and_rounds_to_the_device_count(monkeypatch):
    template = runner.state_template(runner.make_train(GRID.cell_config(GRID.cells()[0])), 1)
    need = plan_lib.STATE_COPIES * plan_lib.state_bytes(template)
    monkeypatch.setattr(plan_lib, "free_memory", lambda num_devices=None: (int(5.5 * need / 0.8), "device"))
    plan = plan_lib.make_plan(GRID.plan_programs())
    assert plan.caps == (5, None) and plan.bytes_per_run == (need, need)  # 8 mask-only runs > 5; 4 SET runs fit
    assert [len(b.runs) for b in GRID.planned_batches(plan)] == [4, 4, 4]
    assert plan_lib.make_plan(GRID.plan_programs(), max_runs_per_batch=2).caps == (2, 2)
    # A cap splits a program into the fewest near-equal batches, in run order.
    split = GRID.batches([3, None])
    assert [len(b.runs) for b in split] == [3, 3, 2, 4] and [b.program for b in split] == [0, 0, 0, 1]
    assert [r for b in split[:3] for r in b.runs] == list(GRID.batches()[0].runs)
    assert plan_lib.Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    with pytest.raises(ValueError, match="max_runs_per_batch=0 is not allowed"):
        plan_lib.make_plan(GRID.plan_programs(), max_runs_per_batch=0)
    # Not even one run fits: refused before anything compiles, rather than running out of memory midway.
    monkeypatch.setattr(plan_lib, "free_memory", lambda num_devices=None: (int(0.9 * need / 0.8), "host"))
    with pytest.raises(ValueError, match=r"one run of probe_bandit / sac needs about .* free host memory"):
        plan_lib.make_plan(GRID.plan_programs())


class _Device(NamedTuple):
    """A device as the planner sees it, with the memory statistics a backend reports."""

    platform: str
    stats: dict | None
    process_index: int = 0

    def memory_stats(self):
        return self.stats


GiB = 2**30


@pytest.mark.parametrize(
    "devices, expected",
    [
        # A GPU under JAX's default preallocation: the limit is the reserved pool, in use the arrays in it.
        ([_Device("gpu", {"bytes_limit": 105 * GiB, "bytes_in_use": 5 * GiB, "pool_bytes": 105 * GiB})],
         (100 * GiB, "device")),
        # A TPU: the same two statistics; with two devices, the smaller free memory counts for both.
        ([_Device("tpu", {"bytes_limit": 16 * GiB, "bytes_in_use": 2 * GiB}),
          _Device("tpu", {"bytes_limit": 16 * GiB, "bytes_in_use": 4 * GiB})], (24 * GiB, "device")),
        # An accelerator that reports nothing, or -1 (a backend's "unset"): unknown, never the host's memory.
        ([_Device("gpu", None)], (None, "unknown")),
        ([_Device("gpu", {"bytes_limit": -1, "bytes_in_use": -1})], (None, "unknown")),
        # The CPU: no statistics, so the host's available memory.
        ([_Device("cpu", None)], (7 * GiB, "host")),
    ],
)  # fmt: skip
def test_free_memory_reads_the_devices_own_statistics(monkeypatch, devices, expected):
    class _Mesh:
        class devices:
            flat = devices

    monkeypatch.setattr(plan_lib, "runs_mesh", lambda num_devices=None: _Mesh() if len(devices) > 1 else None)
    monkeypatch.setattr(plan_lib.jax, "local_devices", lambda: devices)
    monkeypatch.setattr(plan_lib, "host_available_bytes", lambda: 7 * GiB)
    assert plan_lib.free_memory() == expected


def _on_devices(monkeypatch, devices, state_bytes=128 * 2**20):
    """Make the planner see ``devices`` (one runs mesh over them) and runs of ``STATE_COPIES * state_bytes`` bytes
    (512 MiB) each."""
    mesh = SimpleNamespace(devices=SimpleNamespace(flat=devices), size=len(devices))
    monkeypatch.setattr(plan_lib, "runs_mesh", lambda num_devices=None: mesh if len(devices) > 1 else None)
    monkeypatch.setattr(plan_lib.jax, "local_devices", lambda: devices)
    monkeypatch.setattr(plan_lib, "host_available_bytes", lambda: 7 * GiB)
    monkeypatch.setattr(plan_lib, "make_train", lambda config: config)
    monkeypatch.setattr(plan_lib, "state_template", lambda trainer, runs: trainer)
    monkeypatch.setattr(plan_lib, "state_bytes", lambda tree: state_bytes)


# An 80 GiB GPU as JAX's BFC allocator reports it: the limit is XLA_PYTHON_CLIENT_MEM_FRACTION (0.75 unless set)
# of the memory free at start-up, with or without preallocation; preallocation only reserves that pool at once.
_GPU_PREALLOCATED = {
    "bytes_limit": 60 * GiB,
    "bytes_in_use": GiB // 2,
    "peak_bytes_in_use": GiB // 2,
    "pool_bytes": 60 * GiB,
    "peak_pool_bytes": 60 * GiB,
    "bytes_reserved": 0,
    "num_allocs": 12,
}
_GPU_ON_DEMAND = {**_GPU_PREALLOCATED, "pool_bytes": 2 * GiB, "peak_pool_bytes": 2 * GiB}  # PREALLOCATE=false
_TPU = {"bytes_limit": 16 * GiB, "bytes_in_use": 2 * GiB, "peak_bytes_in_use": 3 * GiB, "num_allocs": 40,
        "largest_alloc_size": GiB, "largest_free_block_bytes": 14 * GiB}  # fmt: skip


@pytest.mark.parametrize(
    "devices, free, where, caps",
    [
        # Preallocated: the room left in JAX's own pool (60 GiB - 0.5 GiB), not the device's unreserved rest
        # (20 GiB) nor its free memory as the driver sees it (nearly none). 80% of 59.5 GiB / 512 MiB = 95.2.
        ([_Device("gpu", _GPU_PREALLOCATED)], 119 * GiB // 2, "device", (95, None)),
        # Without preallocation the pool grows on demand up to the same limit: the same plan.
        ([_Device("gpu", _GPU_ON_DEMAND)], 119 * GiB // 2, "device", (95, None)),
        # XLA_PYTHON_CLIENT_MEM_FRACTION=0.9 raises the limit: 72 GiB - 0.5 GiB; 80% / 512 MiB = 114.4.
        ([_Device("gpu", {**_GPU_ON_DEMAND, "bytes_limit": 72 * GiB})], 143 * GiB // 2, "device", (114, None)),
        # A TPU reports its HBM as the limit: 80% of 14 GiB / 512 MiB = 22.4.
        ([_Device("tpu", _TPU)], 14 * GiB, "device", (22, None)),
        # Two TPU cores: the smaller room (14 GiB) counts for both; 44.8 runs, rounded down to a multiple of 2.
        ([_Device("tpu", _TPU), _Device("tpu", {**_TPU, "bytes_in_use": GiB})], 28 * GiB, "device", (44, None)),
        # No statistics (None; e.g. XLA_PYTHON_CLIENT_ALLOCATOR=platform): unknown, so only the user's cap.
        ([_Device("gpu", None)], None, "unknown", (None, None)),
    ],
)  # fmt: skip
def test_the_plan_on_accelerators_sizes_batches_to_the_room_jax_may_still_use(monkeypatch, devices, free, where, caps):
    _on_devices(monkeypatch, devices)
    config = GRID.cell_config(GRID.cells()[0])
    programs = [plan_lib.Program(config, 200), plan_lib.Program(config, 10)]  # 200 runs: capped where memory is known
    plan = plan_lib.make_plan(programs, num_devices=len(devices))
    assert plan_lib.STATE_COPIES == 4
    assert (plan.free_bytes, plan.memory, plan.caps) == (free, where, caps)
    assert plan.bytes_per_run == (512 * 2**20, 512 * 2**20)
    # The user's cap applies in every case; where the device reports nothing it is the only one.
    assert plan_lib.make_plan(programs, num_devices=len(devices), max_runs_per_batch=64).caps == (
        (64, None) if free is None else (min(caps[0], 64), None)
    )
