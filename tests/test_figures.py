"""agents.results.figures: curves are drawn for unfinished runs; the topology figure needs static and TAR."""

import json

from agents.experiments import report
from agents.results import run_id
from tests.helpers import write_run


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


def test_the_scaling_figure_draws_a_line_per_network_and_method_over_widths_and_sparsities(tmp_path):
    from agents.results import figures

    # static at widths 16 and 32 (sparsity 0.9), seeds 0 and 1; a dense copy of another cell is drawn once.
    for seed, width, final in ((0, 16, 1.0), (1, 16, 3.0), (2, 32, 5.0), (3, 32, 9.0)):
        write_run(tmp_path, "hopper", "static", seed, final)
        path = tmp_path / "runs" / run_id("hopper", "sac", 0.9, "static", seed) / "run.json"
        params = {"actor": {"active": width, "prunable": 10 * width, "total": 11 * width},
                  "critic": {"active": width, "prunable": 10 * width, "total": 11 * width}}  # fmt: skip
        path.write_text(json.dumps({**json.loads(path.read_text()), "hidden": [width], "params": params}))
    write_run(tmp_path, "hopper", "dense", 0, 7.0)
    path = tmp_path / "runs" / run_id("hopper", "sac", 0.9, "dense", 0) / "run.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "hidden": [16], "same_as": "elsewhere"}))
    runs = report.load_runs(tmp_path)
    (panel,) = figures.scaling_points(runs).values()
    # Active parameters: 2 x (width + width): 64 at width 16, 128 at 32; final returns per seed.
    assert panel == {(None, "static"): [([64, 64], [1.0, 3.0]), ([128, 128], [5.0, 9.0])]}
    report.write_report(tmp_path)
    assert (tmp_path / "figures" / "scaling.png").exists()
