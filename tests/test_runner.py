"""agents.execution.runner: a grid's runs batched into one compiled program per kind; runs that cannot share one."""

import dataclasses
import json

import numpy as np
import pytest

from agents.algorithms.config import TrainConfig
from agents.execution import runner
from agents.execution.runner import run
from agents.experiments import sweep
from tests.helpers import BANDIT
from tests.helpers import BATCHING_GRID as GRID
from tests.helpers import BATCHING_TRAIN as TRAIN
from tests.helpers import assert_curves_close as _assert_close
from tests.helpers import curves as _curves


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


def test_learning_rates_share_one_program_per_kind_and_each_run_trains_with_its_own(tmp_path):
    """``--actor-lrs`` x sparsities x (static, tar, rigl): one mask-only and one RigL program; each run's curves
    are those of its cell's runs alone (within the batch-shape tolerance); the rate changes the runs."""
    lrs = (1e-4, 3e-4, 1e-3)
    cfg = dataclasses.replace(GRID, sparsities=(0.9, 0.95), methods=("static", "tar", "rigl"), actor_lrs=lrs, seeds=1)
    assert [len(p) for p in cfg.programs()] == [3 * 2 * 2, 3 * 2]  # (lr, sparsity, method) variants
    compiled = []
    original = runner.compile_chunk
    runner.compile_chunk = lambda trainer, *a: compiled.append(trainer.config.sparse.method) or original(trainer, *a)
    try:
        sweep.run_sweep(cfg, tmp_path / "lrs", show_progress=False)
    finally:
        runner.compile_chunk = original
    assert compiled == ["static", "rigl"]
    got = _curves(tmp_path / "lrs")
    assert len(got) == 3 * 2 * 3 and all("-alr" in run for run in got)
    records = {p.parent.name: json.loads(p.read_text()) for p in (tmp_path / "lrs").glob("runs/*/run.json")}
    assert {r["hyper"] for r in records.values()} == {f"actor_lr={lr:g}" for lr in lrs}
    assert all(r["config"]["actor_lr"] == float(r["hyper"].split("=")[1]) for r in records.values())
    # The rate reaches the update: the actor's losses part as soon as the actors do.
    slow, fast = (got[f"probe_bandit-sac-s0.9-alr{lr:g}-static-seed0"] for lr in (1e-4, 1e-3))
    assert slow[0]["actor_loss"] != fast[0]["actor_loss"]
    # A cell's runs alone, with the rate in the train config (one program, no axis), agree with the batch.
    cell = dataclasses.replace(GRID.train, actor_lr=1e-4)
    result = runner.run(dataclasses.replace(cell, sparse=dataclasses.replace(cell.sparse, sparsity=0.9)),
                        cfg.seed_values(), ("static", "tar"))  # fmt: skip
    alone = {}
    for r, (method, seed) in enumerate(result.labels):
        alone[f"probe_bandit-sac-s0.9-alr0.0001-{method}-seed{seed}"] = [
            {k: float(v[r]) for k, v in h.items()} for h in result.history
        ]
    _assert_close({k: got[k] for k in alone}, alone)


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
    # SAC takes its learning rates, discount, Polyak rate, temperature settings and ReDo threshold per run:
    # they share a program; TD3's policy delay (control flow) does not.
    traced = dataclasses.replace(TRAIN, actor_lr=1e-4, critic_lr=1e-2, gamma=0.9, tau=0.05,
                                 sac=dataclasses.replace(TRAIN.sac, alpha_lr=1e-5, init_alpha=0.5),
                                 redo=dataclasses.replace(TRAIN.redo, tau=0.3))  # fmt: skip
    assert runner.check_batch([TRAIN, traced]) == TRAIN
    with pytest.raises(ValueError, match=r"they differ in td3.policy_delay \(only actor_lr, critic_lr, gamma, "):
        runner.check_batch([TRAIN, dataclasses.replace(TRAIN, td3=dataclasses.replace(TRAIN.td3, policy_delay=3))])
    hyper = runner.batch_hyper([TRAIN, traced])
    np.testing.assert_array_equal(hyper["actor_lr"], np.float32([TRAIN.actor_lr, 1e-4]))
    np.testing.assert_array_equal(hyper["1-tau"], np.float32([1 - TRAIN.tau, 1 - 0.05]))
    np.testing.assert_array_equal(hyper["sac.log_init_alpha"], np.log(np.float32([TRAIN.sac.init_alpha, 0.5])))
    assert set(hyper) == {"actor_lr", "critic_lr", "sac.alpha_lr", "gamma", "tau", "1-tau", "sac.init_alpha",
                          "sac.log_init_alpha", "sac.target_entropy_scale", "redo.tau"}  # fmt: skip


def test_bad_methods_fail_before_compiling():
    cfg = TrainConfig(**BANDIT)
    with pytest.raises(ValueError, match="cannot share one compiled function"):
        run(cfg, seeds=[0], methods=("static", "set"))
    with pytest.raises(ValueError, match="method='prune' is not allowed"):
        run(cfg, seeds=[0], methods=("static", "prune"))
