"""The sweep never loses data on bad input: every refusal is one line, exit code 2, and writes nothing.

None of these tests trains: each is refused before anything compiles (the ones that need a
trained sweep are in ``test_sweep.py``).
"""

import dataclasses
import errno
import json
import os
from pathlib import Path

import pytest

from agents import results
from agents.cli import main
from agents.execution import plan as plan_lib
from agents.experiments import sweep

TINY = ["--preset", "quick", "--envs", "probe_bandit", "--seeds", "2", "--no-progress"]


def _refused(capsys, argv, code=2) -> str:
    """Run the CLI, expect ``SystemExit(code)``, return its one-line error."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("sparse-rl: error: ") and "\n" not in err, err
    return err


def _tree(path: Path) -> dict[str, bytes]:
    """Every file below ``path`` with its bytes."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _sweep_dir(path: Path, **overrides) -> sweep.SweepConfig:
    """A results directory that holds a tiny sweep's config.json (and one run file), as an earlier sweep leaves."""
    cfg = sweep.SweepConfig(
        envs=("probe_bandit",), seeds=2, train=sweep.PRESETS["quick"].train, checkpoint_every=1, **overrides
    )
    results.atomic_write_json(path / "config.json", {"sweep": sweep.config_to_json(cfg)})
    results.atomic_write_text(path / "runs" / "a-run" / "curve.jsonl", '{"chunk": 0}\n')
    return cfg


def test_empty_out_or_an_ancestor_of_the_working_directory_is_refused(tmp_path, monkeypatch, capsys):
    work = tmp_path / "project"
    (work / "src").mkdir(parents=True)
    (work / "src" / "keep.py").write_text("print('keep me')")
    _sweep_dir(work)  # even a directory that looks like a sweep is refused when it is the working directory
    monkeypatch.chdir(work)
    before = _tree(tmp_path)
    for out in ("", ".", str(work), str(tmp_path), "src/.."):
        err = _refused(capsys, ["sweep", *TINY, "--out", out, "--overwrite"])
        assert "is the working directory or one of its parents" in err
    assert _tree(tmp_path) == before


def test_overwrite_deletes_only_a_sweep_directory(tmp_path, capsys):
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "chapter1.tex").write_text("keep me")
    err = _refused(capsys, ["sweep", *TINY, "--out", str(other), "--overwrite"])
    assert "--overwrite deletes only a sweep's results directory" in err and str(other) in err
    assert _tree(other) == {"chapter1.tex": b"keep me"}
    # A config.json that is not a sweep's does not count either.
    (other / "config.json").write_text('{"model": "resnet"}')
    _refused(capsys, ["sweep", *TINY, "--out", str(other), "--overwrite"])
    assert set(_tree(other)) == {"chapter1.tex", "config.json"}


@pytest.mark.parametrize("flag", [None, "--resume", "--overwrite"])
def test_a_held_results_directory_is_refused_with_the_holders_pid(tmp_path, capsys, flag):
    out = tmp_path / "busy"
    out.mkdir()
    if flag:  # resume and overwrite need an earlier sweep; a new sweep needs an empty directory
        _sweep_dir(out)
    before = _tree(out)
    with sweep.hold_results_dir(out, resume=flag is not None, overwrite=False):  # a running sweep
        assert (out / sweep.PID_FILE).read_text().strip() == str(os.getpid())
        err = _refused(capsys, ["sweep", *TINY, "--out", str(out), *([flag] if flag else [])])
        assert f"is in use by another sweep (pid {os.getpid()})" in err
    assert {k: v for k, v in _tree(out).items() if not k.startswith(".sweep")} == before


@pytest.mark.parametrize(
    "flags, difference",
    [
        (["--seeds", "5"], "seeds: 2 -> 5"),
        (["--methods", "static", "tar"], "methods: "),
        (["--preset", "paper"], "envs: ['probe_bandit'] -> "),
        (["--total-steps", "9000"], "train.total_steps: 14000 -> 9000"),
        (["--envs", "probe_constant"], "envs: ['probe_bandit'] -> ['probe_constant']"),
    ],
)
def test_resume_refuses_options_that_differ_from_config_json(tmp_path, capsys, flags, difference):
    out = tmp_path / "sweep"
    _sweep_dir(out)
    before = _tree(out)
    err = _refused(capsys, ["sweep", "--resume", "--out", str(out), "--no-progress", *flags])
    assert "these options differ from it" in err and difference in err
    assert _tree(out) == before


def test_train_resume_refuses_a_changed_config(tmp_path, capsys):
    out = tmp_path / "train"
    train = sweep.PRESETS["quick"].train
    cfg = sweep.SweepConfig(
        envs=("probe_bandit",), sparsities=(0.9,), methods=("dense",), seeds=3,
        train=train.__class__(**{**train.__dict__, "env": "probe_bandit"}),
    )  # fmt: skip
    results.atomic_write_json(out / "config.json", {"sweep": sweep.config_to_json(cfg)})
    err = _refused(capsys, ["train", "--config.env", "probe_bandit", "--resume", "--out", str(out), "--no-progress"])
    assert "these options differ from it" in err and "train.total_steps: 14000 -> 20000" in err


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["--sparsities", "0.9", "0.9"],
            "sparsity='0.9' is not allowed; allowed: each sparsity once (it is given twice)",
        ),
        (["--methods", "tar", "static", "tar"], "method='tar' is not allowed; allowed: each method once"),
        (["--envs", "probe_bandit", "probe_bandit"], "env='probe_bandit' is not allowed; allowed: each env once"),
        (["--algos", "sac", "sac"], "algo='sac' is not allowed; allowed: each algo once"),
    ],
)
def test_duplicated_axis_values_are_refused(tmp_path, capsys, flags, message):
    out = tmp_path / "results"
    assert message in _refused(capsys, ["sweep", *TINY, *flags, "--out", str(out)])
    assert not out.exists()


def test_run_names_are_injective_in_the_sparsity():
    a = results.run_id("hopper", "sac", 0.9, "tar", 0)
    b = results.run_id("hopper", "sac", 0.9000001, "tar", 0)
    assert a == "hopper-sac-s0.9-tar-seed0" and b == "hopper-sac-s0.9000001-tar-seed0"
    cfg = sweep.SweepConfig(envs=("probe_bandit",), sparsities=(0.9, 0.9000001), methods=("static",), seeds=1)
    assert len({b.name for b in cfg.batches(per_cell=True)}) == 2


def test_unknown_backend_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "results"
    err = _refused(capsys, ["train", "--config.env", "hopper", "--config.backend", "warp", "--out", str(out)])
    assert "backend='warp' is not allowed" in err and "__tyro" not in err
    assert not out.exists()  # so the corrected command is not refused as "not empty"


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--config.batch-size", "abc"], "--config.batch-size: invalid literal for int() with base 10: 'abc'"),
        (["--seeds", "x"], "--seeds: no type matching"),
        (["--config.hidden", "16", "x"], "--config.hidden: "),
        (["--config.sparse.rho", "2"], "rho=2.0 is not allowed; allowed: [0, 1]"),
        (["--config.backend", "mjx"], "backend='mjx' is not allowed; allowed: None for 'probe_bandit'"),
        (["--config.num-envs", "3"], "chunk_steps=1000 is not allowed; allowed: a multiple of num_envs=3"),
        (["--config.num-envs", "8", "--config.chunk-steps", "800", "--config.warmup-steps", "1004"],
         "warmup_steps=1004 is not allowed; allowed: a multiple of num_envs=8"),
    ],
)  # fmt: skip
def test_bad_values_and_silently_unused_settings_are_one_line(tmp_path, capsys, flags, message):
    out = tmp_path / "results"
    err = _refused(capsys, ["sweep", *TINY, *flags, "--out", str(out)])
    assert message in err and "__tyro" not in err and "│" not in err
    assert not out.exists()


def test_steps_that_do_not_fill_a_chunk_are_named():
    from agents.algorithms.config import TrainConfig

    assert sweep._dropped_steps(TrainConfig(total_steps=21_000, warmup_steps=1_000, chunk_steps=2_000)) is None
    note = sweep._dropped_steps(TrainConfig(total_steps=20_000, warmup_steps=1_000, chunk_steps=2_000))
    assert "9 chunks of 2000 env steps" in note and "19000 of total_steps=20000" in note and "last 1000" in note


def test_report_refuses_a_directory_of_another_version_and_rewrites_nothing(tmp_path, capsys):
    out = tmp_path / "sweep"
    _sweep_dir(out)
    data = results.read_json(out / "config.json")
    data["sweep"]["grid_order"] = "envs-first"
    (out / "config.json").write_text(json.dumps(data))
    before = _tree(out)
    err = _refused(capsys, ["report", str(out)])
    assert str(out / "config.json") in err and "does not know: grid_order" in err
    assert _tree(out) == before


def test_results_path_below_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("keep me")
    err = _refused(capsys, ["sweep", *TINY, "--out", str(tmp_path / "notes.txt" / "results")])
    assert "notes.txt" in err and "which is a file" in err
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_read_only_results_path_gives_one_line_naming_it(tmp_path, capsys, monkeypatch):
    def read_only(path, data):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(results, "atomic_write_bytes", read_only)
    out = tmp_path / "results"
    err = _refused(capsys, ["sweep", *TINY, "--out", str(out)], code=1)
    # config.json was never written: --resume would be refused, so the hint starts the sweep again.
    assert "Read-only file system" in err and str(out) in err
    assert err.endswith(f"run again: sparse-rl sweep {' '.join(TINY)} --out {out}")


def test_a_write_error_names_the_file_not_its_temporary_copy(tmp_path):
    target = tmp_path / "results" / "summary.md"
    (target / "keep").mkdir(parents=True)  # a folder where the file should go: the final rename fails, even as root
    with pytest.raises(OSError) as e:
        results.atomic_write_text(target, "x")
    assert e.value.filename == str(target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["summary.md"]  # the temporary file is gone


def test_report_on_a_read_only_directory_hints_at_running_the_report_again(tmp_path, capsys, monkeypatch):
    from tests.test_report import write_run

    out = tmp_path / "sweep"
    write_run(out, "hopper", "static", 0, 1.0)

    def read_only(path, data):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(results, "atomic_write_bytes", read_only)
    err = _refused(capsys, ["report", str(out)], code=1)
    assert str(out / "summary.csv") in err and err.endswith(f"run again: sparse-rl report {out}")
    assert "--resume" not in err and ".tmp" not in err


def test_recovery_hints_are_commands_that_work_for_the_directory(tmp_path):
    from agents.cli import _recovery_hint

    started = tmp_path / "started"
    _sweep_dir(started)
    resume = f"continue with: sparse-rl sweep --resume --out {started}"
    assert _recovery_hint(["sweep", "--out", str(started)]) == resume
    assert _recovery_hint(["train", "--seeds", "2", "--out", str(started)]) == (
        f"continue with: sparse-rl train --seeds 2 --out {started} --resume"
    )
    empty = tmp_path / "my dir"
    assert _recovery_hint(["sweep", "--seeds", "2", "--out", str(empty)]) == (
        f"run again: sparse-rl sweep --seeds 2 --out '{empty}'"
    )
    (empty / "runs").mkdir(parents=True)  # left by a failure before config.json: a new sweep refuses it
    assert _recovery_hint(["sweep", "--out", str(empty)]) == (
        f"remove '{empty}' and run again: sparse-rl sweep --out '{empty}'"
    )


def test_config_json_with_an_unknown_field_is_refused_naming_it(tmp_path, capsys):
    out = tmp_path / "sweep"
    _sweep_dir(out)
    data = results.read_json(out / "config.json")
    data["sweep"]["train"]["sparse"]["temperature_schedule"] = "cosine"
    data["sweep"]["grid_order"] = "envs-first"
    (out / "config.json").write_text(json.dumps(data))
    before = _tree(out)
    err = _refused(capsys, ["sweep", "--resume", "--out", str(out), "--no-progress"])
    assert "does not know: grid_order" in err and "train.sparse.temperature_schedule" in err
    assert _tree(out) == before


def test_damaged_config_json_is_named(tmp_path, capsys):
    out = tmp_path / "sweep"
    _sweep_dir(out)
    (out / "config.json").write_text('{"sweep": {"envs": ["probe_')
    err = _refused(capsys, ["sweep", "--resume", "--out", str(out), "--no-progress"])
    assert str(out / "config.json") in err and "damaged" in err


def test_grid_axes_name_runs_injectively_and_set_each_cells_config():
    cfg = sweep.SweepConfig(
        envs=("probe_bandit",), methods=("static", "tar", "rigl"), seeds=1, scores=("snip", "magnitude"),
        distributions=("uniform", "global"), widths=(64, 256), rhos=(0.1, 0.2),
    )  # fmt: skip
    cells = cfg.cells()
    assert len(cells) == 2 * 2 * 2 * 2
    names = {b.name for b in cfg.batches(per_cell=True)}
    assert len(names) == len(cfg.batches(per_cell=True)) == 2 * len(cells)  # mask-only methods together, rigl alone
    # Batched: one mask-only program per width; RigL's per width, apart under global (names keep shared values).
    programs = [b.name for b in cfg.batches()]
    assert programs == [
        "probe_bandit-sac-s0.9-w64-static+tar", "probe_bandit-sac-s0.9-w64-uniform-rigl",
        "probe_bandit-sac-s0.9-w64-global-rigl", "probe_bandit-sac-s0.9-w256-static+tar",
        "probe_bandit-sac-s0.9-w256-uniform-rigl", "probe_bandit-sac-s0.9-w256-global-rigl",
    ]  # fmt: skip
    assert sorted(cfg.run_id(r) for b in cfg.batches() for _, r in b.entries()) == sorted(
        cfg.run_id(r) for b in cfg.batches(per_cell=True) for r in b.runs
    )
    cell = sweep.Cell("probe_bandit", "sac", 64, 0.9, "magnitude", "global", 0.2)
    assert cfg.cell_tags(cell) == ("w64", "magnitude", "global", "r0.2")
    train = cfg.cell_config(cell)
    assert train.hidden == (64,) * len(cfg.train.hidden)
    assert (train.sparse.score, train.sparse.distribution, train.sparse.rho) == ("magnitude", "global", 0.2)
    ids = {results.run_id(c.env, c.algo, c.sparsity, "tar", 0, cfg.cell_tags(c)) for c in cells}
    assert len(ids) == len(cells)
    # Without the axes the names stay as before.
    plain = sweep.SweepConfig(envs=("probe_bandit",), methods=("tar",), seeds=1)
    assert plain.cell_tags(plain.cells()[0]) == ()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--scores", "snip", "snip"], "score='snip' is not allowed; allowed: each score once"),
        (["--scores", "lottery"], "score='lottery' is not allowed; allowed: random, magnitude, snip"),
        (["--distributions", "erk", "cosine"], "cosine"),
        (["--widths", "0"], "width=0 is not allowed; allowed: an integer >= 1"),
        (["--rhos", "1.5"], "rho=1.5 is not allowed; allowed: [0, 1]"),
        (["--config.actor-lr", "-0.001"], "actor_lr=-0.001 is not allowed; allowed: a finite number > 0"),
        (["--config.sac.init-alpha", "nan"], "init_alpha=nan is not allowed; allowed: a finite number > 0"),
        (["--config.td3.target-noise", "-1"], "target_noise=-1.0 is not allowed; allowed: a finite number >= 0"),
    ],
)
def test_bad_axis_or_config_values_are_refused(tmp_path, capsys, flags, message):
    out = tmp_path / "results"
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", *TINY, *flags, "--out", str(out)])
    assert exit_info.value.code == 2
    assert message in " ".join(capsys.readouterr().err.split())
    assert not out.exists()


def test_sweep_help_lists_the_axes_and_the_config_with_the_presets_defaults(capsys):
    import tyro

    from agents.cli import command_type

    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--scores", "--distributions", "--widths", "--rhos", "--config.sparse.score", "--config.hidden"):
        assert flag in text, flag
    argv = ["sweep", "--preset", "evidence", "--config.sparse.rho", "0.2"]
    args = tyro.cli(command_type(argv), args=argv)
    assert args.config.env == "inverted_double_pendulum" and args.config.sparse.rho == 0.2
    assert args.config.sparse.score == sweep.PRESETS["evidence"].train.sparse.score


def test_resume_refuses_a_changed_axis_and_keeps_the_stored_config(tmp_path, capsys):
    out = tmp_path / "sweep"
    _sweep_dir(out, scores=("snip", "magnitude"))
    err = _refused(capsys, ["sweep", "--resume", "--out", str(out), "--no-progress", "--scores", "snip"])
    assert "scores: ['snip', 'magnitude'] -> ['snip']" in err
    err = _refused(capsys, ["sweep", "--resume", "--out", str(out), "--no-progress", "--config.batch-size", "7"])
    assert "train.batch_size: 128 -> 7" in err


@pytest.mark.parametrize(
    "flags, axis",
    [
        (["--config.env", "hopper"], "--envs"),
        (["--config.algo", "td3"], "--algos"),
        (["--config.sparse.method", "tar"], "--methods"),
        (["--config.sparse.sparsity", "0.5"], "--sparsities"),
    ],
)
def test_config_fields_that_the_grid_sets_are_refused_with_the_axis_flag(tmp_path, capsys, flags, axis):
    out = tmp_path / "results"
    err = _refused(capsys, ["sweep", *TINY, *flags, "--out", str(out)])
    assert "is set per cell by the grid" in err and axis in err
    assert not out.exists()


def test_resume_hint_names_the_presets_directory(tmp_path, monkeypatch):
    from agents.cli import _recovery_hint

    monkeypatch.chdir(tmp_path)
    for out in ("results/evidence", "my dir", "x"):
        _sweep_dir(tmp_path / out)
    hint = lambda *argv: _recovery_hint(list(argv)).removeprefix("continue with: sparse-rl ")
    assert hint("sweep", "--preset", "evidence") == "sweep --resume --out results/evidence"
    assert hint("sweep", "--out", "my dir") == "sweep --resume --out 'my dir'"
    assert hint("train", "--seeds", "2", "--out", "x") == "train --seeds 2 --out x --resume"


@pytest.mark.parametrize(
    "flags, axis",
    [
        (["--rhos", "0.1", "0.2", "--methods", "static"], "rhos=(0.1, 0.2) is not allowed"),
        (["--sparsities", "0.8", "0.9", "--methods", "dense"], "sparsities=(0.8, 0.9) is not allowed"),
        (["--scores", "snip", "magnitude", "--methods", "dense", "gmp"], "scores=('snip', 'magnitude')"),
    ],
)
def test_an_axis_that_changes_none_of_the_methods_is_refused(tmp_path, capsys, flags, axis):
    out = tmp_path / "results"
    err = _refused(capsys, ["sweep", *TINY, *flags, "--out", str(out)])
    assert axis in err and "identical copies" in err
    assert not out.exists()
    # With a method the axis changes, the grid runs.
    cfg = sweep.SweepConfig(envs=("probe_bandit",), methods=("static", "tar"), rhos=(0.1, 0.2), seeds=1)
    assert len(cfg.cells()) == 2


def test_a_run_that_an_axis_does_not_change_trains_once_and_serves_every_cell():
    cfg = sweep.SweepConfig(
        envs=("probe_bandit",), methods=("dense", "static", "tar", "gmp"), sparsities=(0.8, 0.9),
        scores=("snip", "magnitude"), rhos=(0.1, 0.2), seeds=2,
    )  # fmt: skip
    batches = cfg.batches()
    trained = [r for b in batches for r in b.runs]
    # dense once; static per sparsity x score; tar in all 8 cells; gmp per sparsity (it prunes by magnitude).
    counts = {m: sum(r.method == m for r in trained) // cfg.seeds for m in cfg.methods}
    assert counts == {"dense": 1, "static": 4, "tar": 8, "gmp": 2}
    entries = [(b, slot, r) for b in batches for slot, r in b.entries()]
    old = {cfg.run_id(r) for b in cfg.batches(shares_runs=False) for r in b.runs}
    assert sorted(cfg.run_id(r) for _, _, r in entries) == sorted(old) and len(old) == 8 * 4 * 2
    for batch, slot, run in entries:
        own = batch.runs[slot]
        assert own.method == run.method and own.seed == run.seed and cfg.canonical(run.cell, run.method) == own.cell
        # The two configs differ only in fields the method ignores.
        a, b = cfg.run_config(own), cfg.run_config(run)
        ignored = {f: getattr(a.sparse, f) for f in ("sparsity", "score", "distribution", "rho")}
        assert dataclasses.replace(b, sparse=dataclasses.replace(b.sparse, **ignored)) == a
        if run.method == "tar":
            assert own == run  # revival uses every axis
    # Earlier versions' plans (no shares_runs) keep training every copy, so their --resume finds its batches.
    assert plan_lib.Plan.from_json({"caps": [None] * len(cfg.programs(shares_runs=False))}).shares_runs is False
