"""agents.experiments.sweep: bandit-probe sweeps end to end (files, report, kill, resume, damage), resume refusals."""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import chex
import jax
import pytest

import sparse_jax as sj
from agents import results
from agents.cli import main
from agents.execution.checkpoint import write_manifest
from agents.experiments import report, sweep
from agents.experiments.policy import load_policy
from tests.helpers import BATCHING_TRAIN as TRAIN
from tests.helpers import assert_curves_close as _assert_close
from tests.helpers import curves as _curves
from tests.helpers import file_tree as _tree
from tests.helpers import refused as _refused
from tests.helpers import sweep_dir as _sweep_dir

# The quick preset on the bandit probe, with 16-16 networks: every file and path of a sweep, in seconds.
TINY = ["--preset", "quick", "--envs", "probe_bandit", "--seeds", "2", "--config.hidden", "16", "16", "--no-progress"]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "straight"
    main(["sweep", *TINY, "--methods", "static", "tar", "--total-steps", "4000", "--out", str(out)])
    return out


def test_sweep_writes_every_file_and_report_rebuilds_them(straight, capsys):
    config = results.read_json(straight / "config.json")
    assert config["sweep"]["methods"] == ["static", "tar"] and config["versions"]["jax"]
    assert "git_commit" in config
    runs = sorted(p.name for p in (straight / "runs").iterdir())
    assert runs == [f"probe_bandit-sac-s0.9-{m}-seed{s}" for m in ("static", "tar") for s in (0, 1)]
    for run in runs:
        info = results.read_json(straight / "runs" / run / "run.json")
        assert info["finished"] and not info["diverged"] and info["chunks_done"] == info["total_chunks"] == 3
        assert len(results.read_jsonl(straight / "runs" / run / "curve.jsonl")) == 3
        assert info["topology"]["actor"][0]["name"] == "MLP_0/Dense_0/kernel"
        # The full resolved config of the run, and the grid axes the report groups by.
        assert info["config"]["sparse"]["method"] == info["method"] and info["config"]["env"] == "probe_bandit"
        assert (info["score"], info["distribution"], info["hidden"]) == ("snip", "uniform", [16, 16])
        assert info["config"]["total_steps"] == info["total_steps"] == 4000
        assert set(info["reachability"]["critic"]) == {"q1", "q2"}
    for name in ("summary.csv", "summary.md", "figures/curves_probe_bandit.png", "figures/final_returns.png",
                 "figures/topology_probe_bandit.png"):  # fmt: skip
        assert (straight / name).stat().st_size > 0, name
    md = (straight / "summary.md").read_text()
    assert "## Probability that TAR improves on each baseline" in md and "| static | 2 vs 2 |" in md
    assert "whole curve mean" in md and "## What revival changed (seed 0)" in md
    before = {n: (straight / n).read_bytes() for n in ("summary.csv", "summary.md")}
    main(["report", str(straight)])
    assert "static" in capsys.readouterr().out
    assert {n: (straight / n).read_bytes() for n in before} == before
    assert not list(straight.rglob("*.tmp"))
    assert not list(straight.glob(".sweep.*"))  # neither the lock nor the pid file stays behind


def _sweep_until_first_checkpoint(out: Path, **popen) -> subprocess.Popen:
    """Start the straight fixture's sweep in a subprocess into ``out``; return once its first checkpoint exists."""
    cmd = [sys.executable, "-m", "agents.cli", "sweep", *TINY, "--methods", "static", "tar", "--total-steps", "4000",
           "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, **popen)
    ckpt = out / "checkpoints" / "probe_bandit-sac-s0.9-static+tar" / "0"
    deadline = time.time() + 300
    while not ckpt.is_dir() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    return proc


@pytest.mark.slow
def test_a_sweep_started_with_sigint_ignored_goes_on_then_sigterm_stops_it_and_resume_matches(straight, tmp_path):
    """``cmd &`` in a script starts a sweep with SIGINT ignored: a SIGINT does not stop it; SIGTERM (as SLURM sends
    it before a kill) does, with one line, and ``--resume`` ends with the straight run's results.

    Resuming after SIGKILL at an arbitrary moment is tested with two processes in ``test_multihost.py``.
    """
    out = tmp_path / "stopped"
    ignore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)
    proc = _sweep_until_first_checkpoint(out, stderr=subprocess.PIPE, text=True, preexec_fn=ignore_sigint)
    proc.send_signal(signal.SIGINT)
    second = out / "checkpoints" / "probe_bandit-sac-s0.9-static+tar" / "1"
    deadline = time.time() + 300
    while not second.is_dir() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert second.is_dir(), f"the sweep stopped at the SIGINT (exit code {proc.poll()})"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("sparse-rl: stopped by SIGTERM; every checkpoint is complete")
    assert last.endswith(f"continue with: sparse-rl sweep --resume --out {out}") and "Traceback" not in err
    info = results.read_json(out / "runs" / "probe_bandit-sac-s0.9-tar-seed0" / "run.json")
    assert not info["finished"] and info["chunks_done"] < 3, "the signal came too late to test resuming"
    main(["sweep", "--out", str(out), "--resume", "--no-progress"])
    assert _curves(out) == _curves(straight)
    assert report.summarize(out) == report.summarize(straight)


def _copy_sweep(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".sweep.*"))
    return dst


def _unfinish(out: Path, run: str = "probe_bandit-sac-s0.9-tar-seed0") -> None:
    """Mark one run unfinished, so that ``--resume`` reruns its group from the last checkpoint."""
    path = out / "runs" / run / "run.json"
    info = results.read_json(path)
    info["finished"] = False
    results.atomic_write_json(path, info)


def test_two_checkpoints_are_kept_and_a_damaged_newer_one_falls_back_to_the_older(straight, tmp_path, capsys):
    out = _copy_sweep(straight, tmp_path / "damaged")
    group = out / "checkpoints" / "probe_bandit-sac-s0.9-static+tar"
    assert sorted(p.name for p in group.iterdir() if p.name.isdigit()) == ["1", "2"]
    for f in (group / "2").rglob("*"):
        if f.is_file() and f.stat().st_size > 0:
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])  # a truncated copy, as a full disk leaves
    _unfinish(out)
    main(["sweep", "--out", str(out), "--resume", "--no-progress"])
    err = capsys.readouterr().err
    assert "checkpoint 2 of probe_bandit-sac-s0.9-static+tar does not restore" in err
    assert "falling back to checkpoint 1" in err and "Traceback" not in err
    assert _curves(out) == _curves(straight)


@pytest.mark.parametrize("name", ["run.json", "curve.jsonl"])
def test_a_damaged_run_file_is_named_and_resume_rewrites_it(straight, tmp_path, capsys, name):
    out = _copy_sweep(straight, tmp_path / "damaged")
    path = out / "runs" / "probe_bandit-sac-s0.9-static-seed1" / name
    path.write_text(path.read_text()[:40])
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert str(path) in err and "damaged" in err and "\n" not in err
    main(["sweep", "--out", str(out), "--resume", "--no-progress"])
    err = capsys.readouterr().err
    assert str(path) in err and "it is rewritten from its batch's last checkpoint" in err and "delete it" not in err
    assert _curves(out) == _curves(straight)
    assert report.summarize(out) == report.summarize(straight)


def _disk_full_after_first_chunk(monkeypatch) -> object:
    """Make every results write fail with ENOSPC once a curve holds two chunks; returns the real writer."""
    import errno

    real = results.atomic_write_bytes

    def full_after_first_chunk(path, data):
        if Path(path).name == "curve.jsonl" and data.count(b"\n") >= 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(results, "atomic_write_bytes", full_after_first_chunk)
    return real


def test_full_disk_midway_gives_one_line_keeps_what_was_written_and_resume_finishes(
    straight, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "full"
    real = _disk_full_after_first_chunk(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", *TINY, "--methods", "static", "tar", "--total-steps", "4000", "--out", str(out)])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "No space left on device" in err and "curve.jsonl" in err and "\n" not in err
    assert f"sparse-rl sweep --resume --out {out}" in err
    # After its first chunk a batch says how long the rest should take, at the pace it measured.
    pace = re.search(r"static\+tar: chunk 1 of 3 took ([\d.]+) s; about ([\d.]+) s more for this batch", captured.out)
    assert pace and float(pace[2]) == pytest.approx(2 * float(pace[1]), abs=0.2), captured.out  # both rounded
    assert len(results.read_jsonl(out / "runs" / "probe_bandit-sac-s0.9-tar-seed0" / "curve.jsonl")) == 1
    monkeypatch.setattr(results, "atomic_write_bytes", real)
    main(["sweep", "--out", str(out), "--resume", "--no-progress"])
    assert _curves(out) == _curves(straight)


def test_ctrl_c_inside_a_checkpoint_write_waits_for_it_then_stops():
    """SIGINT inside the critical section (checkpoint and curve writes) is deferred to its end."""
    from agents.experiments.sweep import SweepInterrupted, _SafePoints

    safe_points, written = _SafePoints(), []
    # A shell's background job starts with SIGINT ignored: give this test a handler of its own either way.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(SweepInterrupted) as stopped, safe_points.installed():
            with safe_points.critical():
                signal.raise_signal(signal.SIGINT)
                written.append("checkpoint")  # still runs: the handler only took note
            written.append("next chunk")  # never runs
        assert written == ["checkpoint"] and stopped.value.signum == signal.SIGINT
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the previous handler is back
        with pytest.raises(SweepInterrupted), safe_points.installed():
            signal.raise_signal(signal.SIGTERM)  # outside a critical section: at once
    finally:
        signal.signal(signal.SIGINT, previous)


def test_an_ignored_sigint_stays_ignored_and_sigterm_still_stops():
    """A process started with SIGINT ignored (``cmd &`` in a script, nohup) keeps ignoring it."""
    from agents.experiments.sweep import SweepInterrupted, _SafePoints

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        safe_points = _SafePoints()
        with pytest.raises(SweepInterrupted) as stopped, safe_points.installed():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)  # nothing happens
            signal.raise_signal(signal.SIGTERM)
        assert stopped.value.signum == signal.SIGTERM
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_checkpoint_step_the_sweep_cannot_have_written_is_refused(straight, tmp_path, capsys):
    out = _copy_sweep(straight, tmp_path / "renamed")
    group = out / "checkpoints" / "probe_bandit-sac-s0.9-static+tar"
    (group / "2").rename(group / "40")  # past the last of the sweep's 3 chunks
    _unfinish(out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for argv in (
        ["sweep", "--out", str(out), "--resume", "--no-progress"],
        ["eval", str(out), "--run", "probe_bandit-sac-s0.9-tar-seed0", "--episodes", "1"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and str(group) in err and "step(s) 40" in err and "cannot have written" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


# Checkpoint checksums: a flipped bit in orbax's data is caught, and resume and load_policy fall back.
GROUP = Path("checkpoints") / "probe_bandit-sac-s0.9-static+tar"
RUN = "probe_bandit-sac-s0.9-tar-seed0"


def _files(step: Path) -> dict[str, bytes]:
    """Every file under ``step``, by its path relative to ``step``."""
    return {p.relative_to(step).as_posix(): p.read_bytes() for p in step.rglob("*") if p.is_file()}


def _check_sums(step: Path) -> list[str]:
    """Check ``step/SHA256SUMS`` as ``sha256sum -c`` does, with hashlib; the paths it lists, in its order."""
    lines = (step / "SHA256SUMS").read_text().splitlines()
    listed = []
    for line in lines:
        match = re.fullmatch(r"([0-9a-f]{64})  (\S+)", line)
        assert match, line
        digest, name = match.groups()
        assert hashlib.sha256((step / name).read_bytes()).hexdigest() == digest, name
        listed.append(name)
    return listed


def _flip(step: Path) -> Path:
    """XOR 64 bytes in the middle of the largest file of ``step``'s state (orbax's compressed data); the file."""
    data_file = max((p for p in (step / "state").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(data_file.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xA5 for b in data[middle : middle + 64])
    data_file.write_bytes(bytes(data))
    return data_file


def test_every_kept_step_has_a_manifest_of_its_other_files(straight):
    group = straight / GROUP
    assert sorted(p.name for p in group.iterdir() if p.name.isdigit()) == ["1", "2"]
    for step in (group / "1", group / "2"):
        listed = _check_sums(step)
        assert listed == sorted(listed)
        assert set(listed) == set(_files(step)) - {"SHA256SUMS"}
        assert any(name.startswith("state/ocdbt.process_0/d/") for name in listed)
        if shutil.which("sha256sum"):  # the tool the format is for, where the machine has it
            subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=step, check=True)
    assert not list(group.rglob("*.tmp"))


def test_a_flipped_byte_block_in_the_newest_checkpoint_falls_back_on_resume(straight, tmp_path, capsys):
    out = _copy_sweep(straight, tmp_path / "flipped")
    step = out / GROUP / "2"
    damaged = _flip(step).relative_to(step).as_posix()
    assert damaged.startswith("state/ocdbt.process_0/d/")
    _unfinish(out)
    main(["sweep", "--out", str(out), "--resume", "--no-progress"])
    err = capsys.readouterr().err
    assert f"checkpoint 2 of {GROUP.name} does not restore ({damaged} is damaged" in err
    assert "falling back to checkpoint 1" in err and "Traceback" not in err
    assert _curves(out) == _curves(straight)
    # The damaged step was deleted and saved again, with a manifest of its own.
    assert set(_check_sums(step)) == set(_files(step)) - {"SHA256SUMS"}


def test_a_step_without_manifest_is_skipped_unless_no_step_has_one(straight, tmp_path):
    out = _copy_sweep(straight, tmp_path / "unlisted")
    group = out / GROUP
    (group / "2" / "SHA256SUMS").unlink()  # a save that stopped between orbax's commit and the manifest
    warnings = []
    assert load_policy(out, RUN, warn=warnings.append).chunk == 1
    assert len(warnings) == 1 and "checkpoint 2 of" in warnings[0] and "SHA256SUMS is missing" in warnings[0]
    assert "falling back to checkpoint 1" in warnings[0]
    (group / "1" / "SHA256SUMS").unlink()  # now as an earlier version wrote them: no step has one
    assert load_policy(out, RUN, warn=warnings.append).chunk == 2 and len(warnings) == 1
    # An earlier version's step 1, continued by this one (step 2 signed, then damaged): step 1 still serves.
    write_manifest(group / "2")
    _flip(group / "2")
    assert load_policy(out, RUN, warn=warnings.append).chunk == 1 and "is damaged" in warnings[-1]


def test_load_policy_warns_on_a_flipped_newest_checkpoint_and_deletes_nothing(straight, tmp_path):
    out = _copy_sweep(straight, tmp_path / "flipped")
    damaged = _flip(out / GROUP / "2").name
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    warnings = []
    assert load_policy(out, RUN, warn=warnings.append).chunk == 1
    assert len(warnings) == 1 and damaged in warnings[0] and "falling back to checkpoint 1" in warnings[0]
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_checkpoint_that_cannot_be_written_gives_one_line_exit_1_and_resume_finishes(
    straight, tmp_path, capsys, monkeypatch
):
    """Orbax on a full disk: its threads log tracebacks, tensorstore's late callbacks find the save's event loop
    closed (each an unraisable error), then tensorstore's ValueError comes out (its message as measured on a
    full 1.2 MB tmpfs)."""
    import logging
    import types

    import orbax.checkpoint as ocp

    out, real = tmp_path / "full", ocp.CheckpointManager.wait_until_finished
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)  # the sweep's filter stays after a failed save

    def disk_fills_at_the_second_checkpoint(manager):
        if any(p.name.startswith("1") for p in Path(manager.directory).iterdir()):
            try:
                raise OSError(28, "No space left on device")
            except OSError:
                logging.getLogger("absl").exception("Save Finalize thread (save_finalize) failed.")
            late = RuntimeError("Event loop is closed")
            sys.unraisablehook(types.SimpleNamespace(exc_type=RuntimeError, exc_value=late, exc_traceback=None,
                                                     err_msg=None, object=None))  # fmt: skip
            raise ValueError(
                'RESOURCE_EXHAUSTED: Error writing "agent.actor.MLP_0.Dense_0.bias/0.0" in OCDBT database at local '
                'file "ocdbt.process_0/": Failed writing: "ocdbt.process_0/d/c672": Failed to write 71151 bytes to '
                "file 15: No space left on device [os_error_code='28']"
            )
        real(manager)

    monkeypatch.setattr(ocp.CheckpointManager, "wait_until_finished", disk_fills_at_the_second_checkpoint)
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", *TINY, "--methods", "static", "tar", "--total-steps", "4000", "--out", str(out)])
    assert exit_info.value.code == 1  # a failed write, not bad input
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err and "Event loop is closed" not in err, err
    assert "checkpoint not written (No space left on device): " in err
    assert str(out / "checkpoints" / "probe_bandit-sac-s0.9-static+tar" / "1") in err
    assert err.endswith(f"continue with: sparse-rl sweep --resume --out {out}")
    monkeypatch.setattr(ocp.CheckpointManager, "wait_until_finished", real)
    main(["sweep", "--out", str(out), "--resume", "--no-progress"])
    assert _curves(out) == _curves(straight)


FIXTURE = Path(__file__).parent / "fixtures" / "results_v861ba06"


def test_a_sweep_stopped_by_the_version_before_method_objects_resumes_and_its_checkpoints_load(tmp_path):
    """A results directory written by 861ba06 (methods by name; SET's and GMP's states, GMP stopped after chunk 1).

    Its checkpoints restore into today's state (a SparseState with a key, and
    GMP's count table), ``--resume`` finishes it, and the curves match that
    version's own uninterrupted run to the tolerance of other float code (the
    fixture was written on an AVX-512 machine; tests/helpers.py states
    the tolerance).
    """
    out = tmp_path / "results"
    shutil.copytree(FIXTURE, out)
    policy = load_policy(out, "probe_bandit-sac-s0.9-set-seed1")
    assert policy.chunk == 2 and policy.config.sparse.method == "set"
    outside = jax.tree.map(
        lambda m, p: 0 if m is None else int(((p != 0) & ~m).sum()), policy.masks, policy.params, is_leaf=sj.is_none
    )
    assert sum(jax.tree.leaves(outside)) == 0 and 0 < sum(int(m.sum()) for m in jax.tree.leaves(policy.masks))
    assert load_policy(out, "probe_bandit-sac-s0.9-gmp-seed0").chunk == 0
    main(["sweep", "--resume", "--out", str(out), "--no-progress"])
    host = ("wall_s", "steps_per_s")
    curves = lambda d, name: {
        p.parent.name: [{k: v for k, v in row.items() if k not in host} for row in results.read_jsonl(p)]
        for p in sorted(d.glob(f"*/{name}"))
    }
    got, want = curves(out / "runs", "curve.jsonl"), curves(FIXTURE.parent / f"{FIXTURE.name}-straight", "curve.jsonl")
    assert set(got) == set(want) and all(len(got[r]) == 3 for r in got)
    _assert_close({r: got[r] for r in got}, want)
    assert (out / "summary.md").is_file()


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


def test_steps_that_do_not_fill_a_chunk_are_named():
    from agents.algorithms.config import TrainConfig

    assert sweep._dropped_steps(TrainConfig(total_steps=21_000, warmup_steps=1_000, chunk_steps=2_000)) is None
    note = sweep._dropped_steps(TrainConfig(total_steps=20_000, warmup_steps=1_000, chunk_steps=2_000))
    assert "9 chunks of 2000 env steps" in note and "19000 of total_steps=20000" in note and "last 1000" in note


def test_resume_refuses_a_changed_axis_and_keeps_the_stored_config(tmp_path, capsys):
    out = tmp_path / "sweep"
    _sweep_dir(out, scores=("snip", "magnitude"))
    err = _refused(capsys, ["sweep", "--resume", "--out", str(out), "--no-progress", "--scores", "snip"])
    assert "scores: ['snip', 'magnitude'] -> ['snip']" in err
    err = _refused(capsys, ["sweep", "--resume", "--out", str(out), "--no-progress", "--config.batch-size", "7"])
    assert "train.batch_size: 128 -> 7" in err


@pytest.mark.slow
@pytest.mark.parametrize(
    "method, extra",
    [
        ("static", ["--config.redo.every", "250"]),  # 4 ReDo steps per chunk
        ("eaudesac", ["--config.eaude.period", "100", "--config.eaude.offset", "1"]),  # 10 selections per chunk
    ],
)
def test_a_sweep_with_redo_or_eaude_resumes_exactly(tmp_path, monkeypatch, method, extra):
    """ReDo, or EauDeSAC's ensemble, stopped during its second chunk's writes and resumed from a checkpoint:
    the last chunk trains on restored state, and the curves are those of the run never stopped."""
    args = ["sweep", *TINY, "--methods", method, "--total-steps", "4000", *extra]
    main([*args, "--out", str(tmp_path / "straight")])
    straight = _curves(tmp_path / "straight")
    if method == "static":
        assert all(0 < row["critic_recycled"] <= 1 for curve in straight.values() for row in curve)
    else:  # the ensemble prunes every chunk, and the runs stay exactly sparse
        densities = [[row["critic_density"] for row in curve] for curve in straight.values()]
        assert all(d[0] < 1 and d[2] < d[0] for d in densities)
        assert all(row["outside_mask"] == 0 for curve in straight.values() for row in curve)
    real = _disk_full_after_first_chunk(monkeypatch)
    with pytest.raises(SystemExit):
        main([*args, "--out", str(tmp_path / "stopped")])
    monkeypatch.setattr(results, "atomic_write_bytes", real)
    assert all(len(curve) < 3 for curve in _curves(tmp_path / "stopped").values())
    main(["sweep", "--out", str(tmp_path / "stopped"), "--resume", "--no-progress"])
    assert _curves(tmp_path / "stopped") == straight and all(len(curve) == 3 for curve in straight.values())
