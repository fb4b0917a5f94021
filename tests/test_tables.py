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


def test_what_revival_changed_keeps_the_cells_body_beside_actor_and_critic(tmp_path):
    """A sweep over network bodies: each row names its body and its network (TAR: 0.2 of 4x8 and 8x2 active)."""
    for body in ("mlp", "simba"):
        for method in ("static", "tar"):
            write_run(tmp_path, "hopper", method, 0, 10.0)
            old = tmp_path / "runs" / run_id("hopper", "sac", 0.9, method, 0)
            path = old.rename(old.with_name(f"{old.name}-{body}")) / "run.json"
            path.write_text(json.dumps({**json.loads(path.read_text()), "network": body, "run_id": path.parent.name}))
    md = tables.summary_md(report.summarize(tmp_path), topo=stats.topology_changes(report.load_runs(tmp_path)))
    assert "| method | actor/critic | active per layer (static) |" in md
    for body in ("mlp", "simba"):
        for net in ("actor", "critic"):
            assert f"| hopper | sac | 0.9 | {body} | tar | {net} | 6/3 (3/2) |" in md, (body, net)


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


def test_a_narrowed_dense_baseline_is_sized_against_its_cells_width_and_names_its_own(tmp_path):
    write_run(tmp_path, "hopper", "dense", 0, 10.0)
    write_run(tmp_path, "hopper", "small_dense", 0, 8.0)
    path = tmp_path / "runs" / run_id("hopper", "sac", 0.9, "small_dense", 0) / "run.json"
    # Its networks (80-80) hold 1,100 of the 11,000 parameters the cell's dense ones (256-256) hold.
    narrow = {"actor": {"active": 300, "prunable": 300, "total": 400, "dense_total": 4000},
              "critic": {"active": 600, "prunable": 600, "total": 700, "dense_total": 7000}}  # fmt: skip
    info = {**json.loads(path.read_text()), "params": narrow, "hidden": [256, 256], "trained_hidden": [80, 80]}
    path.write_text(json.dumps(info))
    wide = {"actor": {"active": 3800, "prunable": 3800, "total": 4000},
            "critic": {"active": 6800, "prunable": 6800, "total": 7000}}  # fmt: skip
    for dense in tmp_path.glob("runs/*-dense-*/run.json"):
        dense.write_text(json.dumps({**json.loads(dense.read_text()), "hidden": [256, 256], "params": wide}))
    rows = {r["method"]: r for r in report.summarize(tmp_path)}
    assert rows["small_dense"]["active_params"] == 1_100 and rows["small_dense"]["param_fraction"] == 0.1
    assert rows["small_dense"]["train_flops"] == (3 * 400 + 4 * 700) / (3 * 4000 + 4 * 7000)
    assert rows["small_dense"]["inference_flops"] == 0.1 and rows["dense"]["param_fraction"] == 1.0
    report.write_report(tmp_path)
    md = (tmp_path / "summary.md").read_text()
    assert "| small_dense (80-80) | 8.0 " in md and "| 1,100 (0.100) |" in md
    assert "narrowed to the sparse networks' parameter count" in md
    assert "small_dense (80-80)" not in (tmp_path / "summary.csv").read_text()  # the CSV keeps its columns
