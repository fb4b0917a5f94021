"""One compiled program per (env, algo, width): a sweep's grid batched together, and split by the plan."""

import dataclasses
import json
from typing import NamedTuple

import chex
import numpy as np
import pytest

from agents.algorithms.config import SparsityConfig, TrainConfig
from agents.execution import plan as plan_lib
from agents.execution import runner
from agents.experiments import sweep
from tests.helpers import BANDIT

# The tolerance docs/sweeps.md states for results of different batch shapes.
RTOL, ATOL = 1e-5, 1e-6
TRAIN = TrainConfig(**BANDIT, sparse=SparsityConfig(score="magnitude", distribution="uniform", delta_t=100))
GRID = sweep.SweepConfig(
    envs=("probe_bandit",), sparsities=(0.8, 0.9), methods=("static", "tar", "set"), seeds=2, train=TRAIN
)
CURVE_KEYS = ("eval_return", "critic_loss", "actor_loss", "actor_density", "critic_density", "actor_changed")


def _curves(out):
    return {
        p.parent.name: [json.loads(row) for row in p.read_text().splitlines()] for p in out.glob("runs/*/curve.jsonl")
    }


def _assert_close(got, want):
    """The first evaluation to float32 rounding (RTOL, ATOL), the rest to the drift training adds to it.

    A batch of another shape compiles to other float code, so the last bits
    differ; training then grows the difference. Measured on this grid split
    into batches of 3 against one batch of 8 (AVX2, and under XLA's AVX and
    SSE4.2 code): at most 2.4e-7 relative at the first evaluation and 1.6e-4
    relative (5.3e-6 absolute) at the fourth.
    """
    assert set(got) == set(want)
    for run in want:
        for key in CURVE_KEYS:
            a, b = [row[key] for row in got[run]], [row[key] for row in want[run]]
            np.testing.assert_allclose(a[0], b[0], rtol=RTOL, atol=ATOL, err_msg=f"{run} {key}, first evaluation")
            np.testing.assert_allclose(a, b, rtol=2e-3, atol=1e-4, err_msg=f"{run} {key}")


@pytest.fixture(scope="module")
def batched(tmp_path_factory):
    """The grid swept with its default plan, counting the chunk compilations."""
    out = tmp_path_factory.mktemp("batched") / "results"
    compiled = []
    original = runner.compile_chunk
    runner.compile_chunk = lambda trainer, *a: compiled.append(trainer.config.sparse.method) or original(trainer, *a)
    try:
        sweep.run_sweep(GRID, out, show_progress=False)
    finally:
        runner.compile_chunk = original
    return out, compiled


def test_a_grid_of_sparsities_and_methods_compiles_one_program_per_kind(batched):
    out, compiled = batched
    assert compiled == ["static", "set"]  # one mask-only program for both sparsities, one SET program
    ((name, runs), (set_name, set_runs)) = [(b.name, len(b.runs)) for b in GRID.batches()]
    assert (name, runs, set_name, set_runs) == ("probe_bandit-sac-static+tar", 8, "probe_bandit-sac-set", 4)
    stored = json.loads((out / "config.json").read_text())["plan"]
    assert stored["caps"] == [None, None] and stored["memory"] == "host" and stored["free_bytes"] > 0
    records = [json.loads(p.read_text()) for p in out.glob("runs/*/run.json")]
    assert {r["batch"] for r in records} == {name, set_name}
    # Each run kept its own cell's masks: 20% and 10% of the prunable weights active.
    for r in records:
        active, prunable = r["params"]["actor"]["active"], r["params"]["actor"]["prunable"]
        assert abs(active / prunable - (1 - r["sparsity"])) < 0.01, r["run_id"]


def test_batched_runs_match_each_cell_run_on_its_own(batched):
    """The 2-sparsity x 2-method grid against each cell's runs alone (SET's shared bound: see test_transforms)."""
    out, _ = batched
    separate = {}
    for cell in GRID.cells():
        result = runner.run(GRID.cell_config(cell), GRID.seed_values(), ("static", "tar"))
        for r, rid in enumerate(GRID.run_ids(cell, ("static", "tar"))):
            separate[rid] = [{k: float(v[r]) for k, v in h.items()} for h in result.history]
    _assert_close({k: v for k, v in _curves(out).items() if "-set-" not in k}, separate)


def test_max_runs_per_batch_splits_a_program_prints_the_plan_and_resumes_per_batch(batched, tmp_path, capsys):
    cfg = dataclasses.replace(GRID, methods=("static", "tar"))
    out = tmp_path / "results"
    done = []
    original = sweep.run_batch

    def stop_after_first(cfg, out, batch, *args):
        if done:
            raise sweep.SweepInterrupted(15)
        original(cfg, out, batch, *args)
        done.append(batch.name)

    sweep.run_batch = stop_after_first
    try:
        with pytest.raises(sweep.SweepInterrupted):
            # Two batches of 4 runs: the shape of each cell's runs alone, whose program the cache holds.
            sweep.run_sweep(cfg, out, show_progress=False, max_runs_per_batch=4)
    finally:
        sweep.run_batch = original
    printed = capsys.readouterr().out
    assert "plan: 2 batch(es) of 1 compiled program(s) for 8 runs" in printed and "--max-runs-per-batch 4" in printed
    names = [f"probe_bandit-sac-static+tar-part{k}of2" for k in (1, 2)]
    for name in names:
        assert f"  {name}: 4 runs x " in printed
    assert done == names[:1] and sorted(p.name for p in (out / "checkpoints").iterdir()) == names[:1]
    with pytest.raises(ValueError, match="drop --max-runs-per-batch 3"):
        sweep.run_sweep(None, out, resume=True, show_progress=False, max_runs_per_batch=3)
    sweep.run_sweep(None, out, resume=True, show_progress=False)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == names
    batched_curves = {k: v for k, v in _curves(batched[0]).items() if "-set-" not in k}
    _assert_close(_curves(out), batched_curves)


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


def test_runs_that_cannot_share_a_program_are_refused_naming_the_difference():
    with_sparse = lambda **kw: dataclasses.replace(TRAIN, sparse=dataclasses.replace(TRAIN.sparse, **kw))
    assert (
        runner.check_batch([with_sparse(method="static"), with_sparse(method="tar", sparsity=0.5)]).sparse.method
        == "static"
    )
    with pytest.raises(ValueError, match=r"methods \('static', 'set'\) cannot share one compiled function"):
        runner.check_batch([with_sparse(method="static"), with_sparse(method="set")])
    with pytest.raises(ValueError, match="they differ in hidden "):
        runner.check_batch([TRAIN, dataclasses.replace(TRAIN, hidden=(8, 8))])
    gmp = [with_sparse(method="gmp", distribution=d) for d in ("erk", "global")]
    with pytest.raises(ValueError, match="they differ in sparse.distribution "):
        runner.check_batch(gmp)
    runner.check_batch([with_sparse(method="rigl", distribution="erk"), with_sparse(method="rigl", sparsity=0.5)])


def test_a_run_shared_by_cells_matches_the_copy_earlier_versions_trained(tmp_path):
    """Static under two rhos: trained once and written into both cells; as each cell's own run, the same run."""
    cfg = sweep.SweepConfig(envs=("probe_bandit",), methods=("static", "tar"), rhos=(0.1, 0.2), seeds=1, train=TRAIN)
    shared, copies = tmp_path / "shared", tmp_path / "copies"
    sweep.run_sweep(cfg, shared, show_progress=False)
    static = lambda rho: f"probe_bandit-sac-s0.9-r{rho}-static-seed0"
    info = json.loads((shared / "runs" / static(0.2) / "run.json").read_text())
    assert info["same_as"] == static(0.1) and info["rho"] == 0.2 and info["config"]["sparse"]["rho"] == 0.2
    assert (
        info["finished"]
        and (shared / "runs" / static(0.2) / "curve.jsonl").read_bytes()
        == (shared / "runs" / static(0.1) / "curve.jsonl").read_bytes()
    )
    from agents.experiments.policy import load_policy

    a, b = load_policy(shared, static(0.2)), load_policy(shared, static(0.1))  # eval and render read it too
    chex.assert_trees_all_equal(a.params, b.params)
    # A results directory of an earlier version (its plan says nothing of sharing) trains every copy on --resume.
    config = json.loads((shared / "config.json").read_text())
    assert config["plan"]["shares_runs"] is True
    del config["plan"]["shares_runs"]
    copies.mkdir()
    (copies / "config.json").write_text(json.dumps(config))
    sweep.run_sweep(None, copies, resume=True, show_progress=False)
    assert "same_as" not in json.loads((copies / "runs" / static(0.2) / "run.json").read_text())
    _assert_close(_curves(shared), _curves(copies))  # 3 runs in one batch against 4: the batch-shape tolerance
    rows = {(r["rho"], r["method"]): r for r in sweep.report_lib.summarize(shared)}
    assert rows[(0.2, "static")]["n_seeds"] == 1 and rows[(0.2, "static")]["mean"] == rows[(0.1, "static")]["mean"]
