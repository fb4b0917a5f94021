"""agents.cli: bad input gives a one-line error naming the value, exit code 2, and nothing written; recovery hints."""

import errno
import os
import signal

import pytest

from agents import results
from agents.cli import main
from agents.experiments import sweep
from tests.helpers import QUICK_BANDIT_ARGS as TINY
from tests.helpers import file_tree as _tree
from tests.helpers import refused as _refused
from tests.helpers import sweep_dir as _sweep_dir


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["sweep", "--preset", "huge"],
            "preset='huge' is not allowed; allowed: quick, evidence, study, study_dmc, paper, scaling_cpu, scaling, "
            "dmc.",
        ),
        (["sweep", "--envs", "cartpole"], "env='cartpole' is not allowed; allowed: "),
        (["sweep", "--methods", "tar", "lottery"], "method='lottery' is not allowed; allowed: dense, static"),
        (["sweep", "--algos", "ppo"], "algo='ppo' is not allowed; allowed: sac, td3."),
        (["sweep", "--sparsities", "1.5"], "sparsity=1.5 is not allowed; allowed: [0, 1)."),
        (["sweep", "--seeds", "0"], "seeds=0 is not allowed; allowed: an integer >= 1"),
        (["sweep", "--compile-cache", " "], "compile_cache=' ' is not allowed; allowed: a directory, 'auto' or 'off'."),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, args, message):
    out = tmp_path / "results"
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sparse-rl: error: ") and message in err and "\n" not in err
    assert not out.exists()


def test_results_path_that_is_a_file(tmp_path, capsys):
    path = tmp_path / "file.txt"
    path.write_text("keep me")
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "--out", str(path)])
    assert exit_info.value.code == 2
    assert "is a file" in capsys.readouterr().err
    assert path.read_text() == "keep me"


def test_refuses_non_empty_directory_without_resume_or_overwrite(tmp_path, capsys):
    (tmp_path / "old.txt").write_text("keep me")
    with pytest.raises(SystemExit):
        main(["sweep", "--out", str(tmp_path)])
    assert "not empty; pass --resume or --overwrite" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["old.txt"]
    with pytest.raises(SystemExit):
        main(["sweep", "--out", str(tmp_path), "--resume"])
    assert "no config.json" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config.sparse.sparsity", "1.2"], "sparsity=1.2 is not allowed; allowed: [0, 1)."),
        (["--config.num-envs", "0"], "num_envs=0 is not allowed; allowed: an integer >= 1."),
        (["--seeds", "0"], "seeds=0 is not allowed; allowed: an integer >= 1"),
    ],
)
def test_train_bad_config_exit_2_nothing_written(tmp_path, capsys, args, message):
    # Errors inside the nested TrainConfig are reported by tyro's own error box (still exit 2).
    out = tmp_path / "results"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *args, "--out", str(out)])
    assert exit_info.value.code == 2
    assert message in " ".join(capsys.readouterr().err.split())
    assert not out.exists()


def test_an_earlier_versions_algorithm_flag_still_works_for_one_release_with_a_warning(capsys):
    import tyro

    from agents.cli import _renamed_flags, command_type

    args = _renamed_flags(["train", "--config.env", "probe_bandit", "--config.init-alpha", "0.5"])
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "sparse-rl: warning: --config.init-alpha is now --config.sac.init-alpha (the old spelling will be removed)."
    )
    assert tyro.cli(command_type(args), args=args, prog="sparse-rl").config.sac.init_alpha == 0.5


def test_sweep_help_lists_every_env_name(capsys):
    """--envs' help comes from the registry: every brax, DeepMind Control and probe task is named."""
    from envs import ENV_NAMES

    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "--help"])
    assert exit_info.value.code == 0
    words = set(capsys.readouterr().out.replace(",", " ").replace(".", " ").split())
    assert not set(ENV_NAMES) - words, sorted(set(ENV_NAMES) - words)


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


def test_results_path_below_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("keep me")
    err = _refused(capsys, ["sweep", *TINY, "--out", str(tmp_path / "notes.txt" / "results")])
    assert "notes.txt" in err and "which is a file" in err
    assert (tmp_path / "notes.txt").read_text() == "keep me"


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


def test_read_only_results_path_gives_one_line_naming_it(tmp_path, capsys, monkeypatch):
    def read_only(path, data):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(results, "atomic_write_bytes", read_only)
    out = tmp_path / "results"
    err = _refused(capsys, ["sweep", *TINY, "--out", str(out)], code=1)
    # config.json was never written: --resume would be refused, so the hint starts the sweep again.
    assert "Read-only file system" in err and str(out) in err
    assert err.endswith(f"run again: sparse-rl sweep {' '.join(TINY)} --out {out}")


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


def test_sweep_help_lists_the_axes_and_the_config_with_the_presets_defaults(capsys):
    import tyro

    from agents.cli import command_type

    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--scores", "--distributions", "--widths", "--rhos", "--redos", "--actor-lrs", "--critic-lrs",
                 "--gammas", "--taus", "--config.sparse.score", "--config.hidden"):  # fmt: skip
        assert flag in text, flag
    argv = ["sweep", "--preset", "evidence", "--config.sparse.rho", "0.2"]
    args = tyro.cli(command_type(argv), args=argv)
    assert args.config.env == "inverted_double_pendulum" and args.config.sparse.rho == 0.2
    assert args.config.sparse.score == sweep.PRESETS["evidence"].train.sparse.score
    argv = ["sweep", "--actor-lrs", "1e-4", "3e-4", "--taus", "0.01"]
    args = tyro.cli(command_type(argv), args=argv)
    assert args.actor_lrs == (1e-4, 3e-4) and args.taus == (0.01,) and args.gammas is None


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


def test_the_console_script_exits_at_once_after_a_signal_and_normally_otherwise(monkeypatch):
    """After SIGTERM/SIGINT the process does not wait for the device's queued work (300 s measured for 6000 runs)."""
    from agents import cli

    class Exited(Exception):
        pass

    def exit_now(code):
        raise Exited(code)

    monkeypatch.setattr(cli.os, "_exit", exit_now)
    for code, expected in ((128 + signal.SIGTERM, Exited), (2, SystemExit), (1, SystemExit)):
        monkeypatch.setattr(cli, "main", lambda code=code: (_ for _ in ()).throw(SystemExit(code)))
        with pytest.raises(expected) as e:
            cli.console_main()
        assert e.value.args[0] == code if expected is Exited else e.value.code == code
