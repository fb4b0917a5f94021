"""Summary table, TAR gains, FLOPs and figures of a sweep's results directory.

Reads ``DIR/runs/*/run.json`` and ``curve.jsonl`` (layout in :mod:`agents.results`)
and writes ``DIR/summary.csv``, ``DIR/comparisons.csv``, ``DIR/summary.md`` and
``DIR/figures/*.png``. This module loads the runs, groups them into summary rows
and composes the rest: the statistics and the FLOPs model are defined in
:mod:`agents.results.stats`, the CSV and Markdown rendering in :mod:`agents.results.tables` and
the figures in :mod:`agents.results.figures`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from agents.algorithms import ALGORITHMS
from agents.experiments.grid import check_known_fields
from agents.results import (
    CONFIG_FILE,
    RUN_FILE,
    RUNS_DIR,
    Run,
    atomic_write_text,
    figures,
    read_runs,
    read_sweep_record,
    run_folder,
    stats,
    tables,
)
from agents.results.stats import CELL_KEYS
from agents.results.tables import COLUMNS, GROUP_KEYS

# CELL_KEYS, GROUP_KEYS and COLUMNS are re-exported: callers read the summary rows' keys from this module.
__all__ = ["CELL_KEYS", "COLUMNS", "GROUP_KEYS", "load_runs", "summarize", "write_report"]


def load_runs(results_dir: str | Path) -> list[Run]:
    """Every run of a results directory (:class:`agents.results.Run`: its ``run.json`` and its curve).

    Args:
      results_dir: the results directory.

    Returns:
      One run per ``runs/<run_id>/run.json``, sorted by run id; folders without one (not started) are skipped.

    Raises:
      ValueError: a ``run.json`` lacks the parameter counts the report needs, or does not parse.
    """
    runs = read_runs(results_dir)
    for run in runs:
        if run.params is None:
            raise ValueError(f"{run_folder(results_dir, run.run_id) / RUN_FILE} lacks the fields params.")
    return runs


def _cell_key(row: dict) -> tuple:
    return tuple(stats.sortable(v) for v in stats.cell_of(row))


def _group_key(row: dict) -> tuple:
    return (*_cell_key(row), stats.method_key(row["method"]))


def _flops_per_update(algo: str) -> dict[str, float] | None:
    """The FLOPs weights of the registered algorithm ``algo`` (an unknown one's FLOPs are unknown)."""
    if algo not in ALGORITHMS:
        raise ValueError(
            f"algorithm {algo!r} is not registered, so its FLOPs are unknown; import the code that registers it "
            "(agents.algorithms.register_algorithm) before reporting, or report from the script that ran the sweep."
        )
    weights = ALGORITHMS[algo].flops_per_update
    return None if weights is None else dict(weights)


def _summarize_runs(runs: Sequence[Run]) -> list[dict]:
    groups: dict[tuple, list[Run]] = defaultdict(list)
    for run in runs:
        groups[(*run.cell, run.method)].append(run)
    rows = []
    for key, members in groups.items():
        status = [stats.status(r) for r in members]
        finals = [stats.final_return(r.curve) for r, s in zip(members, status) if s == "ok"]
        whole = stats.seed_stats([stats.curve_mean(r.curve) for r, s in zip(members, status) if s == "ok"])
        flops = [stats.run_flops(r, _flops_per_update(r.algo)) for r in members]
        params = [stats.final_params(r) for r in members]
        active = [sum(stats.network_counts(p, n)[0] for n in stats.NETWORKS) for p in params]
        total = [sum(stats.network_counts(p, n)[1] for n in stats.NETWORKS) for p in params]
        # Counts can differ across seeds (global pruning, an ensemble method's adaptive sparsity): seed means
        # with CIs.
        fraction = stats.seed_stats(list(np.divide(active, total)))
        train_flops = stats.seed_stats([f[0] for f in flops])
        rows.append(
            {
                **dict(zip(GROUP_KEYS, key)),
                "sparsity": float(key[GROUP_KEYS.index("sparsity")]),
                "n_seeds": len(members),
                "n_diverged": status.count("diverged"),
                "n_unfinished": status.count("unfinished"),
                **stats.seed_stats(finals),
                "curve_mean": whole["mean"],
                "curve_ci_low": whole["ci_low"],
                "curve_ci_high": whole["ci_high"],
                "active_params": int(round(float(np.mean(active)))),
                "param_fraction": float(np.mean(np.divide(active, total))),
                "param_fraction_ci_low": fraction["ci_low"],
                "param_fraction_ci_high": fraction["ci_high"],
                "train_flops": float(np.mean([f[0] for f in flops])),
                "train_flops_ci_low": train_flops["ci_low"],
                "train_flops_ci_high": train_flops["ci_high"],
                "inference_flops": float(np.mean([f[1] for f in flops])),
                # The widths a narrowed dense baseline trained (summary.md names them beside the method).
                "trained_hidden": "-".join(map(str, members[0].trained_hidden)) if members[0].trained_hidden else None,
            }
        )
    rows.sort(key=_group_key)
    gains = {stats.cell_of(g): g for g in stats.tar_gains(rows)}
    for row in rows:
        g = gains.get(stats.cell_of(row)) if row["method"] == "tar" else None
        for col in COLUMNS[COLUMNS.index("gain_vs_static_pct") :]:
            row[col] = g[col] if g else None
    return rows


def summarize(results_dir: str | Path) -> list[dict]:
    """One row per (env, algo, sparsity, method) of a results directory.

    Args:
      results_dir: a sweep's results directory.

    Returns:
      Dicts with the keys :data:`COLUMNS` (statistics in the docstring of :mod:`agents.results.stats`),
      sorted by env, algo, sparsity and method. The gain columns are set on
      TAR rows only.

    Raises:
      ValueError: if the directory holds no runs.
    """
    runs = load_runs(results_dir)
    if not runs:
        raise ValueError(f"results directory {str(results_dir)!r} has no runs (no runs/*/run.json).")
    return _summarize_runs(runs)


# Sweeps whose config.json differ only here hold more seeds of the same grid.
_SEED_FIELDS = ("seeds", "seed_offset", "checkpoint_every")


def _grid(results_dir: Path) -> dict | None:
    """A sweep's config (``config.json``'s ``sweep``) without its seed fields; ``None`` without a config.json.

    A config with fields this version does not know (another version wrote
    it) is refused, as ``--resume`` and ``eval`` refuse it.
    """
    if not (results_dir / CONFIG_FILE).is_file():
        return None
    sweep = read_sweep_record(results_dir).sweep
    check_known_fields(sweep, str(results_dir / CONFIG_FILE))
    return {k: v for k, v in sweep.items() if k not in _SEED_FIELDS}


def _load_all(results_dir: Path, include: Sequence[str | Path]) -> list[Run]:
    """The runs of ``results_dir`` and of every ``include`` directory; no run id twice, no cell from two grids.

    Sweeps of one grid (more seeds, run with ``--seed-offset``) join freely. Sweeps of
    different grids (a study's tasks, each its own preset) join when no cell is in both,
    so that all seeds of a cell were trained under one config.
    """
    runs, where, cells = [], {}, {}
    for d in (results_dir, *map(Path, include)):
        if d != results_dir and not (d / RUNS_DIR).is_dir():
            raise ValueError(f"include={str(d)!r} is not allowed; allowed: results directories (holding runs/).")
        grid = _grid(d)
        for run in load_runs(d):
            rid = run.run_id
            if rid in where:
                raise ValueError(
                    f"run {rid!r} is in both {str(where[rid])!r} and {str(d)!r}; a study's sweeps need different "
                    "seeds (--seed-offset)."
                )
            first, first_grid = cells.setdefault(run.cell, (d, grid))
            if first_grid != grid:
                raise ValueError(
                    f"include={str(d)!r} is not allowed: its cell {stats.cell_name(dict(zip(CELL_KEYS, run.cell)))!r} "
                    f"is also in {str(first)!r}, whose grid differs; allowed: sweeps of the same grid (their "
                    f"config.json may differ only in {', '.join(_SEED_FIELDS)}) or sweeps that share no cell."
                )
            where[rid] = d
            runs.append(run)
    return runs


def write_report(results_dir: str | Path, include: Sequence[str | Path] = ()) -> list[dict]:
    """Write ``summary.csv``, ``summary.md`` and ``figures/*.png`` of a results directory.

    Figures: ``curves_<env>.png`` (learning curves with 95% CI bands),
    ``final_returns.png`` (final return per method with CI error bars) and
    ``topology_<env>.png`` (seed-0 static vs TAR masks; only where both runs
    recorded their topology), ``diagnostics_<env>.png`` and ``performance_profiles.png``
    (per algorithm, per distribution and, where the runs have several, per env, over the cells
    with a dense baseline), and ``scaling.png``
    (final return against active parameters, where the runs have several widths). Every file is
    written atomically, and the two summary files are byte-identical across calls on the same runs.

    Args:
      results_dir: a sweep's results directory; the report is written there. A
        directory without runs (a new one) holds the report of ``include`` alone.
      include: more results directories whose runs join the report: more
        seeds of the same grid from a sweep run with ``seed_offset``, or sweeps
        of other grids that share no cell with these (a study's other tasks).

    Returns:
      The summary rows (see :func:`summarize`).

    Raises:
      ValueError: if the directories hold no runs, or one run id twice, or one
        cell from sweeps of different grids, or a ``config.json`` written by
        another version (fields this one does not know).
    """
    results_dir = Path(results_dir)
    runs = _load_all(results_dir, include)
    if not runs:
        raise ValueError(f"results directory {str(results_dir)!r} has no runs (no runs/*/run.json).")
    rows = _summarize_runs(runs)
    atomic_write_text(results_dir / "summary.csv", tables.summary_csv(rows))
    comps = stats.comparisons(runs)
    md = tables.summary_md(rows, comps, stats.aggregate(runs), stats.topology_changes(runs), stats.diagnostics(runs))
    atomic_write_text(results_dir / "summary.md", md)
    if comps:
        atomic_write_text(results_dir / "comparisons.csv", tables.summary_csv(comps, tables.COMPARISON_COLUMNS))
    else:  # an earlier report's table would no longer match the runs
        (results_dir / "comparisons.csv").unlink(missing_ok=True)
    figures_dir = results_dir / "figures"
    for env in sorted({r.env for r in runs}):
        figures.plot_curves(runs, env, figures_dir / f"curves_{env}.png")
        figures.plot_topology(runs, env, figures_dir / f"topology_{env}.png")
        figures.plot_diagnostics(runs, env, figures_dir / f"diagnostics_{env}.png")
    figures.plot_final_returns(rows, runs, figures_dir / "final_returns.png")
    if len({r.hidden_label for r in runs}) > 1:  # a width axis: return against active parameters
        figures.plot_scaling(runs, figures_dir / "scaling.png")
    else:  # an earlier report's figure would no longer match the runs
        (figures_dir / "scaling.png").unlink(missing_ok=True)
    # Per task too where the runs have several: where a method helps and where it does not.
    groups = ("algo", "distribution", *(("env",) if len({r.env for r in runs}) > 1 else ()))
    profiles = [p for by in groups for p in stats.performance_profiles(runs, by)]
    if profiles:  # only cells with a dense baseline have normalised scores
        figures.plot_performance_profiles(profiles, figures_dir / "performance_profiles.png")
    else:  # an earlier report's figure would no longer match the runs
        (figures_dir / "performance_profiles.png").unlink(missing_ok=True)
    return rows
