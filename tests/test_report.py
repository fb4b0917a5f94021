"""agents.experiments.report: summary rows, the report's files and its refusals, on hand-made results directories."""

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest

from agents import results
from agents.experiments import report
from agents.results import tables
from tests.helpers import file_tree as _tree
from tests.helpers import refused as _refused
from tests.helpers import sweep_dir as _sweep_dir
from tests.helpers import write_run  # test_cli.py's read-only report test imports it from here


def _row(rows, env, method):
    (row,) = [r for r in rows if r["env"] == env and r["method"] == method]
    return row


def test_an_algorithm_the_report_does_not_know_is_refused_by_name(tmp_path):
    """Its FLOPs model is its registration's: without it the report says so rather than guess actor-critic weights."""
    write_run(tmp_path, "hopper", "static", 0, 1.0, algo="mine")
    (tmp_path / "config.json").write_text(json.dumps({"sweep": {}}))
    with pytest.raises(ValueError, match="algorithm 'mine' is not registered, so its FLOPs are unknown"):
        report.summarize(tmp_path)


def test_summarize(results):
    rows = report.summarize(results)
    assert [(r["env"], r["method"]) for r in rows] == [
        (env, m) for env in ("hopper", "walker2d") for m in ("static", "tar", "set", "rigl")
    ]
    tar = _row(rows, "hopper", "tar")
    assert (tar["n_seeds"], tar["n_diverged"], tar["n_unfinished"]) == (4, 1, 0)
    assert tar["mean"] == pytest.approx(140.0)  # the diverged seed is left out
    assert tar["iqm"] == pytest.approx(140.0)
    assert tar["ci_low"] <= tar["mean"] <= tar["ci_high"] and tar["ci_low"] < tar["ci_high"]
    rigl = _row(rows, "hopper", "rigl")
    assert rigl["ci_low"] == rigl["ci_high"] == rigl["mean"] == pytest.approx(120.0)
    assert _row(rows, "walker2d", "static")["mean"] == pytest.approx(-50.0)
    # Params: (110 - 100 + 10) + (220 - 200 + 20) = 60 of 330.
    assert tar["active_params"] == 60 and tar["param_fraction"] == pytest.approx(60 / 330)
    assert _row(rows, "hopper", "static")["train_flops"] == pytest.approx(220 / 1210)
    assert rigl["train_flops"] == pytest.approx((1000 * 220 + 7 * 270) / (1000 * 1210))
    # Gains: hopper 140 vs static 110 and vs rigl 120; walker2d -20 vs static -50 and vs set -35.
    assert tar["gain_vs_static_pct"] == pytest.approx(100 * 30 / 110)
    assert tar["gain_vs_dst_pct"] == pytest.approx(100 * 20 / 120) and tar["dst_baseline"] == "rigl"
    w = _row(rows, "walker2d", "tar")
    assert w["gain_vs_static_pct"] == pytest.approx(60.0)
    assert w["gain_vs_dst_pct"] == pytest.approx(100 * 15 / 35) and w["dst_baseline"] == "set"
    for r in (tar, w):
        assert r["median_gain_vs_static_pct"] == pytest.approx((100 * 30 / 110 + 60.0) / 2)
        assert r["median_gain_vs_dst_pct"] == pytest.approx((100 * 20 / 120 + 100 * 15 / 35) / 2)
    assert all(r["gain_vs_static_pct"] is None for r in rows if r["method"] != "tar")
    assert report.summarize(results) == rows  # reproducible bootstrap


def test_write_report_files(results):
    rows = report.write_report(results)
    csv_text, md_text = (results / "summary.csv").read_bytes(), (results / "summary.md").read_bytes()
    assert csv_text.decode().splitlines()[0] == ",".join(tables.COLUMNS)
    assert len(csv_text.decode().splitlines()) == 1 + len(rows) == 9
    assert b"## TAR gains" in md_text and b"**median**" in md_text and b"+27.3%" in md_text
    assert report.write_report(results) == rows
    assert (results / "summary.csv").read_bytes() == csv_text
    assert (results / "summary.md").read_bytes() == md_text
    names = ["curves_hopper", "curves_walker2d", "final_returns", "topology_hopper", "topology_walker2d"]
    for name in names:
        data = (results / "figures" / f"{name}.png").read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    assert not list(results.rglob("*.tmp"))


def test_empty_dir_raises(tmp_path):
    with pytest.raises(ValueError, match="no runs"):
        report.summarize(tmp_path)
    with pytest.raises(ValueError, match=re.escape(str(tmp_path))):
        report.write_report(tmp_path)


def test_a_method_whose_every_run_diverged_reports_without_numpy_warnings(tmp_path):
    import warnings

    from agents.experiments.sweep import _finite_mean

    for seed in (0, 1):
        write_run(tmp_path, "hopper", "static", seed, 1.0, diverged=True)
        write_run(tmp_path, "hopper", "tar", seed, 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "Mean of empty slice" is a RuntimeWarning
        rows = report.write_report(tmp_path)
        assert math.isnan(_finite_mean(np.array([np.nan, np.inf])))  # the sweep's progress line
    assert _row(rows, "hopper", "static")["n_diverged"] == 2 and _row(rows, "hopper", "static")["mean"] is None


def test_configs_and_the_report_load_neither_flax_brax_nor_orbax():
    """Statistics, tables, figures and configs read results alone: no training code, no physics is imported."""
    code = (
        "import sys; import agents.experiments.report, agents.results.stats; "
        "import agents.results.tables, agents.results.figures; "
        "import agents.algorithms.config, envs; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flax', 'brax', 'orbax', 'mujoco') "
        "or m in ('agents.algorithms.sac', 'agents.algorithms.td3', 'agents.execution.train', 'envs.brax_envs')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_run_without_parameter_counts_is_refused_by_name(tmp_path):
    from agents import results

    results.write_run(tmp_path, results.RunRecord("r", "hopper", "sac", 0.9, "static", 0), [])
    with pytest.raises(ValueError, match=r"runs/r/run.json lacks the fields params\.$"):
        report.load_runs(tmp_path)


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


def test_sweeps_of_other_tasks_join_a_report_of_their_own_and_a_cell_from_two_grids_is_refused(
    tmp_path, capsys, monkeypatch
):
    """A cross-task study: each task's preset is its own grid; joined they report every cell and its aggregate."""
    parts = {}
    for env, finals in (("hopper", (300, 100, 200)), ("walker2d", (30, 10, 20))):
        parts[env] = tmp_path / env
        for method, final in zip(("dense", "static", "tar"), finals, strict=True):
            for seed in (0, 1):
                write_run(parts[env], env, method, seed, float(final + seed))
        results.atomic_write_json(parts[env] / "config.json", {"sweep": {"envs": [env], "seeds": 2}})
    both = tmp_path / "both"  # a new directory: the report of the included sweeps alone
    drawn, plot = [], report.figures.plot_performance_profiles

    def record_and_plot(profiles, path):  # the figure is still drawn: the files below include it
        drawn.extend(profiles)
        plot(profiles, path)

    monkeypatch.setattr(report.figures, "plot_performance_profiles", record_and_plot)
    rows = report.write_report(both, include=[parts["hopper"], parts["walker2d"]])
    assert sorted({(p["by"], p["group"]) for p in drawn}) == [
        ("algo", "sac"), ("distribution", None), ("env", "hopper"), ("env", "walker2d")
    ]  # fmt: skip
    assert [(r["env"], r["method"], r["n_seeds"]) for r in rows] == [
        (env, m, 2) for env in ("hopper", "walker2d") for m in ("dense", "static", "tar")
    ]
    assert _row(rows, "walker2d", "static")["mean"] == pytest.approx(10.5)
    assert _row(rows, "walker2d", "tar")["gain_vs_static_pct"] == pytest.approx(100 * 10 / 10.5)
    assert sorted(p.name for p in both.iterdir()) == ["comparisons.csv", "figures", "summary.csv", "summary.md"]
    figs = sorted(p.name for p in (both / "figures").iterdir())
    assert {"curves_hopper.png", "curves_walker2d.png", "performance_profiles.png"} <= set(figs)
    # The same cell (hopper, sac, 0.9) from a sweep of another grid would mix two configs' seeds: refused.
    other = tmp_path / "other"
    write_run(other, "hopper", "static", 2, 150.0)
    results.atomic_write_json(other / "config.json", {"sweep": {"envs": ["hopper"], "methods": ["static"]}})
    before = _tree(both)
    err = _refused(capsys, ["report", str(both), "--include", str(parts["hopper"]), str(other)])
    assert f"include={str(other)!r} is not allowed" in err and "'hopper sac s0.9' is also in" in err
    assert _tree(both) == before
