"""agents.execution.plan: batches capped by the devices' free memory (their own statistics) and by the user."""

import json
from typing import NamedTuple

import pytest

from agents.execution import plan as plan_lib
from agents.execution import runner
from tests.helpers import BATCHING_GRID as GRID


def test_the_plan_caps_batches_by_memory_and_rounds_to_the_device_count(monkeypatch):
    need = 2 * plan_lib.state_bytes(runner.state_template(runner.make_train(GRID.cell_config(GRID.cells()[0])), 1))
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
