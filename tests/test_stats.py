"""agents.results.stats: returns, seed statistics, FLOPs, TAR's gains, comparisons and diagnostics of hand-made runs."""

import json
import math

import numpy as np
import pytest

from agents.experiments import report
from agents.results import run_id, stats, tables
from tests.helpers import N_EVALS, write_run
from tests.helpers import RUN_PARAMS as PARAMS


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


def test_tar_gains_missing_baseline():
    rows = [
        {"env": "e", "algo": "sac", "sparsity": 0.9, "method": "tar", "mean": 10.0},
        {"env": "e", "algo": "sac", "sparsity": 0.9, "method": "static", "mean": 0.0},
    ]
    (g,) = stats.tar_gains(rows)
    assert g["gain_vs_static_pct"] is None and g["gain_vs_dst_pct"] is None and g["dst_baseline"] is None
    assert g["median_gain_vs_static_pct"] is None


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
    assert by["static"]["poi"] == 1.0 and by["dense"]["poi"] == 0.0 and by["tar"]["poi"] is None
    # A second cell where TAR (seeds 20, 40, 60) meets static (30, 30, 30) in 6 of 9 pairs: P averages (1 + 6/9) / 2.
    for method, finals in (("dense", (100.0,) * 3), ("static", (30.0,) * 3), ("tar", (20.0, 40.0, 60.0))):
        for seed, final in enumerate(finals):
            write_run(tmp_path, "ant", method, seed, final)
    static = {r["method"]: r for r in stats.aggregate(report.load_runs(tmp_path))[0]}["static"]
    assert static["poi"] == pytest.approx((1 + 6 / 9) / 2) and static["n_cells"] == 2
    assert static["poi_low"] <= static["poi"] <= static["poi_high"] <= 1.0
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
    assert "recycled" not in md  # no run was trained with ReDo


def test_recycled_fraction_is_the_mean_over_redo_steps_and_shows_only_with_redo(tmp_path):
    """ReDo's per-chunk fraction (NaN in a chunk without a ReDo step, JSON null) averaged over the steps, then seeds."""
    for method in ("static", "tar"):
        for seed in (0, 1):
            write_run(tmp_path, "hopper", method, seed, 100.0)
            curve_path = tmp_path / "runs" / run_id("hopper", "sac", 0.9, method, seed) / "curve.jsonl"
            rows = [json.loads(line) for line in curve_path.read_text().splitlines()]
            for i, row in enumerate(rows):
                row.update(actor_changed=0, critic_changed=0, actor_dormant=0.1, critic_dormant=0.2)
                if method == "tar":  # a ReDo step in every other chunk: 0.1 + 0.1 * seed, then 0.3 + 0.1 * seed
                    step = None if i % 2 else (0.1 if i < 10 else 0.3) + 0.1 * seed
                    row.update(actor_recycled=step, critic_recycled=None if step is None else 2 * step)
            curve_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    diag = {d["method"]: d for d in stats.diagnostics(report.load_runs(tmp_path))}
    # Seed 0: steps at 0.1 (5 of them) and 0.3 (5): 0.2; seed 1: 0.3; mean over seeds 0.25.
    assert diag["tar"]["actor_recycled"] == pytest.approx(0.25)
    assert diag["tar"]["critic_recycled"] == pytest.approx(0.5)
    assert diag["static"]["actor_recycled"] is None
    md = tables.summary_md(report.summarize(tmp_path), diag=list(diag.values()))
    assert "| actor recycled | critic recycled |" in md
    assert " static | 0 (0.00) | 0 (0.00) | 0.100 | 0.200 | n/a | n/a |\n" in md
    assert " tar | 0 (0.00) | 0 (0.00) | 0.100 | 0.200 | 0.250 | 0.500 |\n" in md


def test_an_ensemble_methods_counts_and_flops_come_from_its_curve(tmp_path):
    """EauDeSAC's sparsity is chosen during the run: its active counts are its last chunk's densities, its FLOPs
    count 3 members, and its seeds' fractions and FLOPs carry CIs; comparisons give its params over TAR's."""
    densities = {0: (0.5, 0.25), 1: (0.3, 0.2)}  # (actor, critic) per seed, every chunk
    for method in ("tar", "eaudesac"):
        for seed in (0, 1):
            write_run(tmp_path, "hopper", method, seed, 100.0 + 10 * seed + (method == "tar"))
            folder = tmp_path / "runs" / run_id("hopper", "sac", 0.9, method, seed)
            if method == "eaudesac":
                rows = [json.loads(line) for line in (folder / "curve.jsonl").read_text().splitlines()]
                for row in rows:
                    row.update(actor_density=densities[seed][0], critic_density=densities[seed][1])
                (folder / "curve.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
                record = json.loads((folder / "run.json").read_text())
                record["config"] = {"eaude": {"members": 3}}
                (folder / "run.json").write_text(json.dumps(record))
    runs = {(r.method, r.seed): r for r in report.load_runs(tmp_path)}
    # Seed 0: actor 10 + 50 dense-or-active, critic 20 + 50; seed 1: 10 + 30 and 20 + 40 (of 110 and 220).
    assert stats.final_params(runs["eaudesac", 0])["critic"]["active"] == 50
    assert [stats.active_params(runs["eaudesac", s]) for s in (0, 1)] == [130, 100]
    assert stats.active_params(runs["tar", 0]) == 60  # run.json's counts
    # Critic weight (4 - 1) * 3 + 1 = 10 against dense 3 * 110 + 4 * 220 = 1210.
    assert stats.run_flops(runs["eaudesac", 0]) == pytest.approx(((3 * 60 + 10 * 70) / 1210, 60 / 110))
    assert stats.run_flops(runs["eaudesac", 1]) == pytest.approx(((3 * 40 + 10 * 60) / 1210, 40 / 110))
    rows = {r["method"]: r for r in report.summarize(tmp_path)}
    e = rows["eaudesac"]
    assert e["active_params"] == 115 and e["param_fraction"] == pytest.approx(115 / 330)
    assert e["param_fraction_ci_low"] == pytest.approx(100 / 330) and e["param_fraction_ci_high"] == pytest.approx(
        130 / 330
    )
    assert e["train_flops"] == pytest.approx((880 / 1210 + 720 / 1210) / 2)
    assert rows["tar"]["param_fraction_ci_low"] == rows["tar"]["param_fraction_ci_high"]
    md = tables.summary_md(list(rows.values()))
    assert "| 115 (0.348 [0.303, 0.394]) | 0.661 [0.595, 0.727] |" in md
    assert "| 60 (0.182) | 0.182 |" in md  # seeds that agree print no CI
    (comp,) = stats.comparisons(report.load_runs(tmp_path))
    assert comp["baseline"] == "eaudesac" and comp["params_ratio"] == pytest.approx(115 / 60)
    assert "| eaudesac | 2 vs 2 | 1.92x |" in tables.summary_md(list(rows.values()), comps=[comp])


def test_performance_profiles_hand_worked_per_algorithm(tmp_path):
    """Normalised finals (first evaluation 0, dense 100): static 0.5 and 1.2, tar 0.2 and 0.8, in a SAC and a
    TD3 cell; the fraction of runs above each tau, per algorithm; the report draws them."""
    for algo in ("sac", "td3"):
        for method, finals in (("dense", (100.0, 100.0)), ("static", (50.0, 120.0)), ("tar", (20.0, 80.0))):
            for seed, final in enumerate(finals):
                write_run(tmp_path, "hopper", method, seed, final, algo=algo)
    profiles = stats.performance_profiles(report.load_runs(tmp_path), "algo", taus=(0.0, 0.6, 1.0))
    got = {(p["group"], p["method"]): p["fraction"] for p in profiles}
    for algo in ("sac", "td3"):
        assert got[algo, "dense"] == [1.0, 1.0, 0.0]  # exactly 1 is not above tau = 1
        assert got[algo, "static"] == [1.0, 0.5, 0.5]
        assert got[algo, "tar"] == [1.0, 0.5, 0.0]
    assert all(lo <= f <= hi for p in profiles for f, lo, hi in zip(p["fraction"], p["low"], p["high"]))
    assert {(p["n_cells"], p["n_runs"]) for p in profiles} == {(1, 2)}
    (merged,) = [p for p in stats.performance_profiles(report.load_runs(tmp_path), "env") if p["method"] == "tar"]
    assert merged["group"] == "hopper" and (merged["n_cells"], merged["n_runs"]) == (2, 4)
    with pytest.raises(ValueError, match="by='seed' is not allowed"):
        stats.performance_profiles(report.load_runs(tmp_path), "seed")
    (tmp_path / "config.json").write_text(json.dumps({"sweep": {}}))
    report.write_report(tmp_path)
    assert (tmp_path / "figures" / "performance_profiles.png").stat().st_size > 0
