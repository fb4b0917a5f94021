"""Experiment tracking (TensorBoard, W&B), the on_chunk layout, and adding seeds to a finished study."""

import dataclasses
import struct
from pathlib import Path

import numpy as np
import pytest

from agents import results
from agents.cli import main
from agents.experiments import report
from agents.experiments.sweep import PRESETS
from agents.results import tracking

# The shape of tests/test_sweep.py's sweep (2 methods x 2 seeds, 4000 steps), so its programs come from the cache.
TINY = ["--preset", "quick", "--envs", "probe_bandit", "--methods", "static", "tar", "--seeds", "2", "--total-steps",
        "4000", "--config.hidden", "16", "16", "--no-progress"]  # fmt: skip
RUNS = [f"probe_bandit-sac-s0.9-{m}-seed{s}" for m in ("static", "tar") for s in (2, 3)]


def read_events(folder: Path) -> tuple[dict[str, list[tuple[int, float]]], list[str], set[str]]:
    """Scalars (tag -> [(step, value)]), text summaries and every tag of the event files under ``folder``.

    Event files are TFRecords: a uint64 length, its crc, the serialized ``Event``, its crc.
    """
    from tensorboardX.proto import event_pb2

    scalars: dict[str, list[tuple[int, float]]] = {}
    texts, tags = [], set()
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + length])
            pos += 12 + length + 4
            if event.file_version and event.step:  # a writer's purge_step: TensorBoard drops what came from there on
                scalars = {t: [(s, v) for s, v in xs if s < event.step] for t, xs in scalars.items()}
            for v in event.summary.value:
                tags.add(v.tag)
                if v.HasField("simple_value"):
                    scalars.setdefault(v.tag, []).append((event.step, v.simple_value))
                elif v.HasField("tensor") and v.tensor.string_val:
                    texts.extend(s.decode() for s in v.tensor.string_val)
    return scalars, texts, tags


def _has_wandb() -> bool:
    try:
        import wandb  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """Seeds 2 and 3 of a sweep, tracked in TensorBoard and (where wandb installs) in W&B's offline mode."""
    out = tmp_path_factory.mktemp("tracked") / "more"
    mp = pytest.MonkeyPatch()
    mp.setenv("WANDB_MODE", "offline")
    mp.setenv("WANDB_SILENT", "true")
    try:
        main(["sweep", *TINY, "--seed-offset", "2", "--log", "tensorboard", *(["wandb"] if _has_wandb() else []),
              "--out", str(out)])  # fmt: skip
    finally:
        mp.undo()
    return out


def test_tensorboard_holds_every_curve_row_and_the_config(tracked):
    run = "probe_bandit-sac-s0.9-static-seed2"
    assert sorted(p.name for p in (tracked / "tensorboard").iterdir()) == RUNS
    scalars, texts, tags = read_events(tracked / "tensorboard" / run)
    curve = results.read_jsonl(tracked / "runs" / run / "curve.jsonl")
    assert len(curve) == 3
    for key in ("eval_return", "critic_loss", "actor_density", "actor_dormant", "wall_s"):
        logged = scalars[key]
        assert [s for s, _ in logged] == [row["env_steps"] for row in curve], key
        np.testing.assert_allclose([v for _, v in logged], [row[key] for row in curve], rtol=1e-6)
    assert {"_hparams_/session_start_info", "_hparams_/session_end_info"} <= tags  # the hparams plugin's session
    config = next(t for t in texts if '"train"' in t)
    for text in ('"method": "static"', '"seed": 2', '"group": "probe_bandit-sac-s0.9-static+tar"', '"batch_size": 128'):
        assert text in config, text


def test_wandb_offline_writes_one_run_per_sweep_run(tracked):
    if not _has_wandb():
        pytest.skip("wandb is not installed (the fake-module test covers the tracker)")
    files = sorted((tracked / "wandb").rglob("offline-run-*/*.wandb"))
    assert len(files) == len(RUNS)
    # The offline log is protobuf records; names, metric keys and config values are stored as text.
    data = {run: next(f.read_bytes() for f in files if run.encode() in f.read_bytes()) for run in RUNS}
    for text in (b"eval_return", b"actor_dormant", b"sparse"):
        assert all(text in d for d in data.values()), text


def test_seed_offset_and_report_include_join_two_sweeps(tracked, tmp_path, capsys):
    first = tmp_path / "first"
    main(["sweep", *TINY, "--out", str(first)])
    rows = report.write_report(first, include=[tracked])
    assert [(r["method"], r["n_seeds"]) for r in rows] == [("static", 4), ("tar", 4)]
    main(["report", str(first), "--include", str(tracked)])
    assert "static" in capsys.readouterr().out
    # The same sweep twice would count a seed twice: refused, naming the run.
    with pytest.raises(ValueError, match="probe_bandit-sac-s0.9-static-seed0.* is in both"):
        report.write_report(first, include=[first])


def test_tensorboard_resume_replaces_what_the_interrupted_attempt_logged_after_the_checkpoint(tmp_path):
    tracker = tracking.TensorBoardTracker(tmp_path)
    tracker.start("run", "group", {"lr": 0.1})
    for step, value in ((1000, 1.0), (2000, 2.0), (3000, 3.0)):  # killed after logging 3000, checkpoint at 2000
        tracker.log("run", step, {"eval_return": value})
    tracker.close()
    resumed = tracking.TensorBoardTracker(tmp_path)
    resumed.start("run", "group", {"lr": 0.1}, first_step=2001)
    for step, value in ((3000, 30.0), (4000, 40.0)):
        resumed.log("run", step, {"eval_return": value})
    resumed.finish("run")
    scalars, _, _ = read_events(tmp_path / "run")
    assert scalars["eval_return"] == [(1000, 1.0), (2000, 2.0), (3000, 30.0), (4000, 40.0)]


class FakeWandb:
    """Records what the tracker asks of the wandb module."""

    def __init__(self):
        self.calls = []

    def init(self, **kwargs):
        self.calls.append(("init", kwargs))
        return FakeRun(kwargs["name"], self.calls)


class FakeRun:
    def __init__(self, name, calls):
        self.name, self.calls = name, calls

    def log(self, metrics, step):
        self.calls.append(("log", self.name, step, dict(metrics)))

    def finish(self, exit_code=0):
        self.calls.append(("finish", self.name, exit_code))


def test_wandb_tracker_opens_a_run_per_sweep_run_and_fails_those_left_open(tmp_path):
    fake = FakeWandb()
    tracker = tracking.WandbTracker(tmp_path / "wandb", wandb_module=fake)
    tracker.start("a", "group", {"train": {"lr": 0.1}})
    tracker.start("b", "group", {"train": {"lr": 0.1}})
    tracker.log("a", 1000, {"eval_return": 1.5})
    tracker.log("b", 1000, {"eval_return": 2.5})
    tracker.finish("a")
    tracker.close()  # the sweep stopped: b is marked failed
    inits = [c[1] for c in fake.calls if c[0] == "init"]
    assert [(i["name"], i["group"], i["reinit"], i["resume"], i["config"]) for i in inits] == [
        ("a", "group", "create_new", "allow", {"train": {"lr": 0.1}}),
        ("b", "group", "create_new", "allow", {"train": {"lr": 0.1}}),
    ]
    # The same results directory and run give the same id, so a resumed sweep continues the W&B run.
    again = FakeWandb()
    tracking.WandbTracker(tmp_path / "wandb", wandb_module=again).start("a", "group", {})
    other = FakeWandb()
    tracking.WandbTracker(tmp_path / "elsewhere" / "wandb", wandb_module=other).start("a", "group", {})
    assert again.calls[0][1]["id"] == inits[0]["id"] != inits[1]["id"]
    assert other.calls[0][1]["id"] != inits[0]["id"]
    rest = [c for c in fake.calls if c[0] != "init"]
    assert rest == [
        ("log", "a", 1000, {"eval_return": 1.5}),
        ("log", "b", 1000, {"eval_return": 2.5}),
        ("finish", "a", 0),
        ("finish", "b", 1),
    ]


def test_bad_log_names_are_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as e:
        main(["sweep", *TINY, "--log", "mlflow", "--out", str(out)])
    assert e.value.code == 2
    assert "log='mlflow' is not allowed; allowed: tensorboard, wandb" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(ValueError, match="each of tensorboard, wandb once"):
        tracking.check_trackers(["tensorboard", "tensorboard"])
    with pytest.raises(ValueError, match="seed_offset=-1 is not allowed"):
        dataclasses.replace(PRESETS["quick"], seed_offset=-1)
