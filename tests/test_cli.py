"""Bad input: a one-line error naming the value, exit code 2, nothing written."""

import pytest

from agents.cli import main


@pytest.mark.parametrize(
    "args, message",
    [
        (["sweep", "--preset", "huge"], "preset='huge' is not allowed; allowed: quick, evidence, paper, dmc."),
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
