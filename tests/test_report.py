"""agents.results (report, stats, tables) on a hand-made results directory: returns, seed statistics, gains, FLOPs."""

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest

from agents.experiments import report
from agents.results import run_id, stats, tables

N_EVALS = 20  # last 10% = the last 2 evaluations
PARAMS = {
    "actor": {"active": 10, "prunable": 100, "total": 110},
    "critic": {"active": 20, "prunable": 200, "total": 220},
}
# Final returns per env and method, one per seed; hand-checked gains below.
FINALS = {
    "hopper": {"static": [100, 110, 120], "tar": [130, 140, 150], "set": [105, 115, 125], "rigl": [120, 120, 120]},
    "walker2d": {"static": [-60, -50, -40], "tar": [-30, -20, -10], "set": [-45, -35, -25], "rigl": [-40, -40, -40]},
}


def _topology(density):
    rows = []
    for i, (n_in, n_out) in enumerate([(4, 8), (8, 2)]):
        active = round(density * n_in * n_out)
        rows.append(
            {
                "name": f"Dense_{i}/kernel",
                "shape": [n_in, n_out],
                "size": n_in * n_out,
                "active": active,
                "density": active / (n_in * n_out),
                "proxy": float(n_in + n_out),
                "need": 0.0,
                "zero_fan_in": 2 - i,
                "zero_fan_out": i,
            }
        )
    return {"actor": rows, "critic": rows}


def write_run(root, env, method, seed, final, diverged=False, algo="sac", sparsity=0.9):
    """One run whose last two evaluations average to ``final`` (NaN from chunk 10 on if diverged)."""
    rid = run_id(env, algo, sparsity, method, seed)
    folder = root / "runs" / rid
    folder.mkdir(parents=True)
    returns = list(np.linspace(0.0, final - 1.0, N_EVALS - 1)) + [final + 1.0]
    if diverged:
        returns[10:] = [math.nan] * (N_EVALS - 10)
    curve = [
        {"chunk": i, "env_steps": 1000 * (i + 1), "eval_return": r, "eval_return_std": 1.0, "critic_loss": 0.5}
        for i, r in enumerate(returns)
    ]
    (folder / "curve.jsonl").write_text("".join(json.dumps(c) + "\n" for c in curve))
    run = {
        "run_id": rid,
        "env": env,
        "algo": algo,
        "sparsity": sparsity,
        "method": method,
        "seed": seed,
        "diverged": diverged,
        "chunks_done": N_EVALS,
        "total_chunks": N_EVALS,
        "delta_t": 100,
        "total_updates": 1000,
        "end_fraction": 0.8,
        "params": PARAMS,
        "topology": _topology(0.1 if method == "static" else 0.2),
        "base_topology": _topology(0.1),
    }
    (folder / "run.json").write_text(json.dumps(run))


@pytest.fixture
def results(tmp_path):
    for env, methods in FINALS.items():
        for method, finals in methods.items():
            for seed, final in enumerate(finals):
                write_run(tmp_path, env, method, seed, float(final))
    write_run(tmp_path, "hopper", "tar", 3, 0.0, diverged=True)
    (tmp_path / "config.json").write_text(json.dumps({"sweep": {}}))
    return tmp_path


def _row(rows, env, method):
    (row,) = [r for r in rows if r["env"] == env and r["method"] == method]
    return row


def test_final_return_is_mean_of_last_tenth():
    curve = lambda n: [{"eval_return": float(i)} for i in range(n)]
    assert stats.final_return(curve(1)) == 0.0
    assert stats.final_return(curve(5)) == 4.0  # ceil(0.5) = 1
    assert stats.final_return(curve(10)) == 9.0
    assert stats.final_return(curve(11)) == 9.5  # ceil(1.1) = 2
    assert stats.final_return(curve(20)) == 18.5
    assert math.isnan(stats.final_return([{"eval_return": 1.0}, {"eval_return": math.nan}]))
    with pytest.raises(ValueError, match="empty"):
        stats.final_return([])


def test_seed_stats_iqm_and_ci():
    s = stats.seed_stats([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 100.0])
    assert s["iqm"] == pytest.approx(4.5)  # 25% trimmed each side: mean(3, 4, 5, 6)
    assert s["mean"] == pytest.approx(16.0)
    assert s["ci_low"] <= s["mean"] <= s["ci_high"]
    assert stats.seed_stats([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 100.0]) == s  # fixed bootstrap generator
    assert stats.seed_stats([5.0]) == {"mean": 5.0, "iqm": 5.0, "ci_low": 5.0, "ci_high": 5.0}
    assert stats.seed_stats([0.1, 0.1, 0.1])["ci_low"] == stats.seed_stats([0.1, 0.1, 0.1])["mean"]
    assert stats.seed_stats([])["mean"] is None
    with pytest.raises(ValueError, match="finite"):
        stats.seed_stats([1.0, math.nan])


def test_relative_flops_hand_computed():
    net = lambda active, prunable, total: {"active": active, "prunable": prunable, "total": total}
    # No non-prunable params: static at density d costs exactly d.
    pure = {"actor": net(10, 100, 100), "critic": net(20, 200, 200)}
    assert stats.relative_flops(pure, "static") == pytest.approx((0.1, 0.1))
    assert stats.relative_flops(pure, "set", 1000, 100, 0.8) == pytest.approx((0.1, 0.1))
    # With biases: N_actor = 110 - 100 + 10 = 20, N_critic = 40; train = (3*20 + 4*40) / (3*110 + 4*220).
    train, infer = stats.relative_flops(PARAMS, "static")
    assert train == pytest.approx(220 / 1210)
    assert infer == pytest.approx(20 / 110)
    # RigL: t_end = 800, mask updates at t = 100..700 (7), each (110-20) + (220-40) = 270 extra.
    rigl_train, rigl_infer = stats.relative_flops(PARAMS, "rigl", 1000, 100, 0.8)
    assert rigl_train == pytest.approx((1000 * 220 + 7 * 270) / (1000 * 1210))
    assert train < rigl_train < 1.01 * train
    assert rigl_infer == infer
    assert stats.relative_flops({"actor": net(5, 5, 7), "critic": net(9, 9, 9)}, "dense") == (1.0, 1.0)
    with pytest.raises(ValueError, match="active <= prunable"):
        stats.relative_flops({"actor": net(50, 10, 100), "critic": net(1, 1, 1)}, "static")
    # Another algorithm's weights: an update of 4 actor and 2 critic forwards, train = (4*20 + 2*40) / (4*110 + 2*220).
    weights = {"actor": 4, "critic": 2}
    assert stats.relative_flops(PARAMS, "static", flops_per_update=weights) == pytest.approx((160 / 880, 20 / 110))
    assert stats.relative_flops(PARAMS, "static", flops_per_update=stats.ACTOR_CRITIC_FLOPS) == (train, infer)
    # Only the networks it names count: an actor-only algorithm's critic counts are not asked for.
    assert stats.relative_flops({"actor": PARAMS["actor"]}, "static", flops_per_update={"actor": 3}) == (
        pytest.approx(20 / 110),
        pytest.approx(20 / 110),
    )
    for bad in ({"critic": 4}, {"actor": 0, "critic": 4}, {"actor": 3, "critic": "4"}):
        with pytest.raises(ValueError, match="flops_per_update="):
            stats.relative_flops(PARAMS, "static", flops_per_update=bad)


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


def test_tar_gains_missing_baseline():
    rows = [
        {"env": "e", "algo": "sac", "sparsity": 0.9, "method": "tar", "mean": 10.0},
        {"env": "e", "algo": "sac", "sparsity": 0.9, "method": "static", "mean": 0.0},
    ]
    (g,) = stats.tar_gains(rows)
    assert g["gain_vs_static_pct"] is None and g["gain_vs_dst_pct"] is None and g["dst_baseline"] is None
    assert g["median_gain_vs_static_pct"] is None


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


def test_unfinished_run_and_topology_figure_skipped_without_tar(tmp_path):
    write_run(tmp_path, "hopper", "static", 0, 1.0)
    write_run(tmp_path, "hopper", "static", 1, 9.0)
    path = tmp_path / "runs" / run_id("hopper", "sac", 0.9, "static", 1) / "run.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "chunks_done": 5}))
    (row,) = report.write_report(tmp_path)
    assert (row["n_seeds"], row["n_unfinished"], row["n_diverged"], row["mean"]) == (2, 1, 0, 1.0)
    assert row["gain_vs_static_pct"] is None
    assert (tmp_path / "figures" / "curves_hopper.png").exists()
    assert not (tmp_path / "figures" / "topology_hopper.png").exists()


def test_empty_dir_raises(tmp_path):
    with pytest.raises(ValueError, match="no runs"):
        report.summarize(tmp_path)
    with pytest.raises(ValueError, match=re.escape(str(tmp_path))):
        report.write_report(tmp_path)


def test_curve_mean_and_probability_of_improvement_hand_worked(results):
    assert stats.curve_mean([{"eval_return": 1.0}, {"eval_return": 5.0}]) == 3.0
    # walker2d: TAR (-30, -20, -10) vs SET (-45, -35, -25): 8 of 9 pairs favour TAR.
    comps = {(c["env"], c["baseline"]): c for c in stats.comparisons(report.load_runs(results))}
    w = comps[("walker2d", "set")]
    assert w["poi_final"] == pytest.approx(8 / 9) and (w["n_tar"], w["n_baseline"]) == (3, 3)
    assert w["poi_final_low"] <= w["poi_final"] <= w["poi_final_high"] <= 1.0
    # hopper: TAR (130, 140, 150; the diverged seed left out) beats static (100, 110, 120) in every pair.
    h = comps[("hopper", "static")]
    assert h["poi_final"] == 1.0 and h["n_tar"] == 3
    assert stats.probability_of_improvement([1.0, 1.0], [1.0, 1.0])[0] == 0.5  # ties count half
    md = (report.write_report(results), (results / "summary.md").read_text())[1]
    assert "## Probability that TAR improves on each baseline" in md and "0.89 [" in md
    assert "whole curve mean" in md
    assert (results / "comparisons.csv").read_text().splitlines()[0] == ",".join(tables.COMPARISON_COLUMNS)


def test_aggregate_normalises_by_untrained_and_dense(tmp_path):
    # Every curve starts at 0 (untrained); dense ends at 200, static at 100, tar at 150.
    for method, final in (("dense", 200.0), ("static", 100.0), ("tar", 150.0)):
        for seed in range(3):
            write_run(tmp_path, "hopper", method, seed, final)
    rows, skipped = stats.aggregate(report.load_runs(tmp_path))
    by = {r["method"]: r for r in rows}
    assert not skipped
    assert by["dense"]["iqm"] == pytest.approx(1.0) and by["static"]["mean"] == pytest.approx(0.5)
    assert by["tar"]["iqm"] == pytest.approx(0.75) and by["tar"]["n_runs"] == 3
    write_run(tmp_path, "walker2d", "static", 0, 5.0)  # a cell without dense is left out and named
    assert stats.aggregate(report.load_runs(tmp_path))[1] == ["walker2d sac s0.9"]


def test_gain_against_a_near_zero_baseline_is_flagged_and_left_out_of_the_median():
    rows = [
        {"env": "a", "algo": "sac", "sparsity": 0.9, "method": "tar", "mean": 100.0},
        {"env": "a", "algo": "sac", "sparsity": 0.9, "method": "static", "mean": 1.0},
        {"env": "b", "algo": "sac", "sparsity": 0.9, "method": "tar", "mean": 110.0},
        {"env": "b", "algo": "sac", "sparsity": 0.9, "method": "static", "mean": 100.0},
    ]
    a, b = stats.tar_gains(rows)
    assert a["static_near_zero"] and a["gain_vs_static_pct"] == pytest.approx(9900.0)
    assert not b["static_near_zero"] and not a["dst_near_zero"]
    assert a["median_gain_vs_static_pct"] == b["median_gain_vs_static_pct"] == pytest.approx(10.0)


def test_summary_notes_that_random_revival_equals_static_in_distribution(tmp_path):
    for method in ("static", "tar"):
        write_run(tmp_path, "hopper", method, 0, 10.0)
        path = tmp_path / "runs" / run_id("hopper", "sac", 0.9, method, 0) / "run.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "score": "random", "hidden": [8]}))
    report.write_report(tmp_path)
    md = (tmp_path / "summary.md").read_text()
    assert "with score=random, a random base plus random revival is a random mask" in md
    assert "## What revival changed (seed 0)" in md


def test_a_nan_evaluation_midway_marks_the_run_diverged(tmp_path):
    write_run(tmp_path, "hopper", "static", 0, 10.0)
    write_run(tmp_path, "hopper", "static", 1, 20.0)
    path = tmp_path / "runs" / run_id("hopper", "sac", 0.9, "static", 1) / "curve.jsonl"
    curve = [json.loads(line) for line in path.read_text().splitlines()]
    curve[5]["eval_return"] = math.nan
    path.write_text("".join(json.dumps(c) + "\n" for c in curve))
    (row,) = report.summarize(tmp_path)
    seed0 = [*np.linspace(0.0, 9.0, N_EVALS - 1), 11.0]  # write_run's curve for a final return of 10
    assert (row["n_diverged"], row["mean"]) == (1, 10.0)
    assert row["curve_mean"] == pytest.approx(np.mean(seed0))


def test_turnover_and_dormant_table_hand_worked(tmp_path):
    """Changed connections summed over chunks, over the final active count; dormant from the last evaluation."""
    per_chunk = {"static": (0, 0), "set": (3, 5)}  # (actor, critic) connections changed per chunk
    for method, (actor, critic) in per_chunk.items():
        for seed in (0, 1):
            write_run(tmp_path, "hopper", method, seed, 100.0)
            curve_path = tmp_path / "runs" / run_id("hopper", "sac", 0.9, method, seed) / "curve.jsonl"
            rows = [json.loads(line) for line in curve_path.read_text().splitlines()]
            for i, row in enumerate(rows):
                row.update(actor_changed=actor, critic_changed=critic, actor_dormant=0.1 * seed + 0.01 * (i == 19),
                           critic_dormant=0.5)  # fmt: skip
            curve_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    diag = {d["method"]: d for d in stats.diagnostics(report.load_runs(tmp_path))}
    # SET: 3 x 20 chunks = 60 actor changes over 10 active weights; 5 x 20 = 100 critic changes over 20.
    assert (diag["set"]["actor_changed"], diag["set"]["actor_turnover"]) == (60.0, 6.0)
    assert (diag["set"]["critic_changed"], diag["set"]["critic_turnover"]) == (100.0, 5.0)
    assert diag["static"]["actor_changed"] == 0.0 and diag["static"]["critic_turnover"] == 0.0
    assert diag["set"]["actor_dormant"] == pytest.approx(0.06) and diag["set"]["critic_dormant"] == 0.5
    md = tables.summary_md(report.summarize(tmp_path), diag=list(diag.values()))
    assert "## Mask turnover and dormant units" in md
    assert "| set | 60 (6.00) | 100 (5.00) | 0.060 | 0.500 |" in md


def test_results_of_earlier_versions_leave_the_turnover_table_out(results):
    diag = stats.diagnostics(report.load_runs(results))
    assert diag and all(d["actor_changed"] is None and d["actor_dormant"] is None for d in diag)
    assert "Mask turnover" not in tables.summary_md(report.summarize(results), diag=diag)


def test_cell_values_print_as_they_read_back(tmp_path):
    for sparsity in (0.9, 0.9000001, 0.9999999):
        write_run(tmp_path, "hopper", "static", 0, 1.0, sparsity=sparsity)
    rows = report.summarize(tmp_path)
    md, csv = tables.summary_md(rows), tables.summary_csv(rows)
    for label in ("0.9", "0.9000001", "0.9999999"):
        assert f"| {label} |" in md and f",{label}," in csv, label
    assert "| sac | 1 |" not in md and ",1,static" not in csv


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
