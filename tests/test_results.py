"""agents.results: run ids and the typed records of config.json, run.json and curve.jsonl, written and read back."""

import dataclasses
import json

import pytest

from agents import results
from agents.experiments import sweep
from tests.helpers import refused as _refused
from tests.helpers import sweep_dir as _sweep_dir

TOPOLOGY = {"actor": [{"name": "Dense_0/kernel", "active": 3}], "critic": []}
RECORD = results.RunRecord(
    run_id="hopper-sac-s0.9-tar-seed2", env="hopper", algo="sac", sparsity=0.9, method="tar", seed=2,
    hidden=(64, 64), score="snip", distribution="erk", rho=0.1, total_steps=1000, batch="hopper-sac-static+tar",
    config={"env": "hopper", "sparse": {"method": "tar"}}, total_chunks=4, delta_t=100, end_fraction=0.8,
    total_updates=500, params={"actor": {"active": 3, "prunable": 30, "total": 40}}, topology=TOPOLOGY,
    finished=True, chunks_done=4,
)  # fmt: skip
CURVE = [{"chunk": 0, "env_steps": 500, "eval_return": 1.5}, {"chunk": 1, "env_steps": 1000, "eval_return": 2.5}]


def test_a_run_written_reads_back_as_the_same_record_with_its_curve(tmp_path):
    results.write_run(tmp_path, RECORD, CURVE)
    folder = tmp_path / "runs" / RECORD.run_id
    assert sorted(p.name for p in folder.iterdir()) == ["curve.jsonl", "run.json"]
    # run.json is indented JSON with sorted keys; same_as and redo only appear when set; hidden is a list.
    text = (folder / "run.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    data = json.loads(text)
    assert "same_as" not in data and "redo" not in data and data["hidden"] == [64, 64] and data["finished"] is True
    assert (folder / "curve.jsonl").read_text() == "".join(json.dumps(row) + "\n" for row in CURVE)
    run = results.read_run(folder)
    assert isinstance(run, results.Run) and list(run.curve) == CURVE
    assert results.read_record(folder) == RECORD
    assert run.cell == ("hopper", "sac", "64-64", 0.9, "snip", "erk", 0.1, None, None, None, None)
    assert run.hidden_label == "64-64"
    shared = results.RunRecord(**{**vars(RECORD), "run_id": "other", "same_as": RECORD.run_id, "redo": 1000})
    assert shared.to_json()["same_as"] == RECORD.run_id and shared.to_json()["redo"] == 1000


def test_read_runs_sorts_by_run_id_and_skips_folders_without_a_run_json(tmp_path):
    for rid in ("b-run", "a-run"):
        results.write_run(tmp_path, results.RunRecord(rid, "hopper", "sac", 0.9, "static", 0), [])
    (tmp_path / "runs" / "c-not-started").mkdir()
    assert results.run_ids(tmp_path) == ["a-run", "b-run"]
    assert [r.run_id for r in results.read_runs(tmp_path)] == ["a-run", "b-run"]
    assert results.read_runs(tmp_path / "nowhere") == []


def test_an_earlier_versions_run_json_reads_with_defaults(tmp_path):
    """Before the grid's axes and batches: no run_id, hidden, score, distribution, rho, batch or topology."""
    folder = tmp_path / "runs" / "hopper-sac-s0.9-static-seed0"
    folder.mkdir(parents=True)
    old = {"env": "hopper", "algo": "sac", "sparsity": 0.9, "method": "static", "seed": 0, "params": {}}
    (folder / "run.json").write_text(json.dumps({**old, "a_field_of_another_version": 1}))
    run = results.read_run(folder)
    assert run.run_id == folder.name and run.curve == []  # no curve.jsonl yet
    assert (run.hidden, run.score, run.distribution, run.rho, run.batch, run.topology) == (None,) * 6
    assert run.cell == ("hopper", "sac", None, 0.9, None, None, None, None, None, None, None)
    assert (run.total_chunks, run.delta_t, run.end_fraction, run.finished) == (0, 1, 0.0, False)


def test_a_run_json_without_its_identity_or_not_an_object_is_refused_by_name(tmp_path):
    folder = tmp_path / "runs" / "x"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"env": "hopper", "algo": "sac", "sparsity": 0.9}))
    with pytest.raises(ValueError, match=r"x/run.json lacks the fields method, seed\.$"):
        results.read_record(folder)
    (folder / "run.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"x/run.json must hold a JSON object, got list\."):
        results.read_record(folder)
    (folder / "run.json").write_text("{")
    with pytest.raises(results.DamagedFile, match="not valid JSON"):
        results.read_record(folder)


def test_config_json_round_trips_and_an_earlier_version_has_no_plan(tmp_path):
    record = results.SweepRecord({"envs": ["hopper"]}, {"caps": [None]}, {"jax": "0.1"}, "abc", ["cpu:0"])
    results.write_sweep_record(tmp_path, record)
    assert json.loads((tmp_path / "config.json").read_text()) == {
        "sweep": {"envs": ["hopper"]}, "plan": {"caps": [None]}, "versions": {"jax": "0.1"},
        "git_commit": "abc", "devices": ["cpu:0"],
    }  # fmt: skip
    assert results.read_sweep_record(tmp_path) == record
    (tmp_path / "config.json").write_text(json.dumps({"sweep": {"envs": ["hopper"]}}))
    assert results.read_sweep_record(tmp_path) == results.SweepRecord({"envs": ["hopper"]}, plan=None)
    (tmp_path / "config.json").write_text(json.dumps({"model": "resnet"}))
    with pytest.raises(ValueError, match="holds no sweep config"):
        results.read_sweep_record(tmp_path)


def test_the_cell_of_a_run_record_has_a_field_for_every_grid_axis():
    """A new axis of the grid's AXES must reach run.json and the report's cells (width is recorded as hidden,
    the hyperparameter axes together as hyper)."""
    from agents.experiments.grid import AXES, HYPER_AXES, Cell

    recorded = {"width": "hidden", **{a.field: "hyper" for a in AXES if a.name in HYPER_AXES}}
    assert results.CELL_KEYS == ("env", "algo", *dict.fromkeys(recorded.get(a.field, a.field) for a in AXES))
    assert set(Cell._fields) == {"env", "algo", *(a.field for a in AXES)}
    assert set(results.CELL_KEYS) <= {f.name for f in dataclasses.fields(results.RunRecord)}


def test_run_names_are_injective_in_the_sparsity():
    a = results.run_id("hopper", "sac", 0.9, "tar", 0)
    b = results.run_id("hopper", "sac", 0.9000001, "tar", 0)
    assert a == "hopper-sac-s0.9-tar-seed0" and b == "hopper-sac-s0.9000001-tar-seed0"
    cfg = sweep.SweepConfig(envs=("probe_bandit",), sparsities=(0.9, 0.9000001), methods=("static",), seeds=1)
    assert len({b.name for b in cfg.batches(per_cell=True)}) == 2


def test_a_write_error_names_the_file_not_its_temporary_copy(tmp_path):
    target = tmp_path / "results" / "summary.md"
    (target / "keep").mkdir(parents=True)  # a folder where the file should go: the final rename fails, even as root
    with pytest.raises(OSError) as e:
        results.atomic_write_text(target, "x")
    assert e.value.filename == str(target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["summary.md"]  # the temporary file is gone


def test_damaged_config_json_is_named(tmp_path, capsys):
    out = tmp_path / "sweep"
    _sweep_dir(out)
    (out / "config.json").write_text('{"sweep": {"envs": ["probe_')
    err = _refused(capsys, ["sweep", "--resume", "--out", str(out), "--no-progress"])
    assert str(out / "config.json") in err and "damaged" in err
