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
