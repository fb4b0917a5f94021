"""agents.results.tables: the summary's Markdown and CSV, its notes, and tables left out for earlier versions' runs."""

import json

from agents.experiments import report
from agents.results import run_id, stats, tables
from tests.helpers import write_run


def test_summary_notes_that_random_revival_equals_static_in_distribution(tmp_path):
    for method in ("static", "tar"):
        write_run(tmp_path, "hopper", method, 0, 10.0)
        path = tmp_path / "runs" / run_id("hopper", "sac", 0.9, method, 0) / "run.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "score": "random", "hidden": [8]}))
    report.write_report(tmp_path)
    md = (tmp_path / "summary.md").read_text()
    assert "with score=random, a random base plus random revival is a random mask" in md
    assert "## What revival changed (seed 0)" in md


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
