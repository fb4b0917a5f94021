"""CSV and Markdown rendering of a sweep's summary rows, comparisons and aggregates.

Turns the rows of :func:`agents.experiments.report.summarize` and the statistics of
:mod:`agents.results.stats` into the text of ``summary.csv``, ``comparisons.csv`` and
``summary.md``; it computes nothing itself. The column tuples fix the CSV
headers: :data:`COLUMNS` for the summary, :data:`COMPARISON_COLUMNS` for TAR's
comparisons.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sparse_jax as sj
from agents.results import sparsity_label, stats

GROUP_KEYS = stats.CELL_KEYS + ("method",)
COLUMNS = GROUP_KEYS + (
    "n_seeds",
    "n_diverged",
    "n_unfinished",
    "mean",
    "iqm",
    "ci_low",
    "ci_high",
    "curve_mean",
    "curve_ci_low",
    "curve_ci_high",
    "active_params",
    "param_fraction",
    "param_fraction_ci_low",
    "param_fraction_ci_high",
    "train_flops",
    "train_flops_ci_low",
    "train_flops_ci_high",
    "inference_flops",
    "gain_vs_static_pct",
    "gain_vs_dst_pct",
    "dst_baseline",
    "static_near_zero",
    "dst_near_zero",
    "median_gain_vs_static_pct",
    "median_gain_vs_dst_pct",
)
COMPARISON_COLUMNS = stats.CELL_KEYS + (
    "baseline",
    "n_tar",
    "n_baseline",
    "params_ratio",
    "poi_final",
    "poi_final_low",
    "poi_final_high",
    "poi_curve",
    "poi_curve_low",
    "poi_curve_high",
)


def _fmt_csv(value: Any, key: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        # A cell's sparsity or rho reads back exactly, as in run names; statistics to 6 digits.
        return sparsity_label(value) if key else f"{value:.6g}"
    return str(value)


def summary_csv(rows: Sequence[dict], columns: Sequence[str] = COLUMNS) -> str:
    """CSV text of ``rows`` under the header ``columns``.

    Cell keys as they read back exactly (0.9 and 0.9000001 differ), other
    floats to 6 significant digits, ``None`` as empty.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_fmt_csv(r[c], c in stats.CELL_KEYS) for c in columns] for r in rows)
    return buf.getvalue()


def _fmt_num(value: float | None, spec: str = ".1f", suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def _varying(rows: Sequence[dict]) -> list[str]:
    """The cell keys to show: env, algo and sparsity always, the others where the rows differ."""
    return [k for k in stats.CELL_KEYS if k in ("env", "algo", "sparsity") or len({r.get(k) for r in rows}) > 1]


def _fmt_key(row: dict, key: str) -> str:
    """A cell value for a table: floats so that they read back exactly (as in run names), ``None`` as a dash."""
    v = row.get(key)
    if v is None:
        return "-"
    return sparsity_label(v) if isinstance(v, float) else str(v)


def _fmt_ci(mean: float | None, lo: float | None, hi: float | None, spec: str = ".1f") -> str:
    return "n/a" if mean is None else f"{mean:{spec}} [{lo:{spec}}, {hi:{spec}}]"


def _spread(row: dict, key: str) -> str:
    """``row[key]`` to 3 places, with its 95% CI when the seeds differ (global pruning, adaptive sparsity)."""
    lo, hi = row.get(f"{key}_ci_low"), row.get(f"{key}_ci_high")
    value = f"{row[key]:.3f}"
    return value if lo is None or hi is None or f"{lo:.3f}" == f"{hi:.3f}" else f"{value} [{lo:.3f}, {hi:.3f}]"


def _summary_lines(rows: Sequence[dict]) -> list[str]:
    """The title, the per-group table and, for random scores, a note on what revival can change."""
    keys = _varying(rows)
    head = " | ".join(keys)
    lines = [
        "# Sweep summary",
        "",
        "Final return: mean evaluation return over the last 10% of evaluations of a run; whole curve: mean over all "
        "its evaluations (a normalised AUC). Mean and 95% percentile-bootstrap CI over seeds, IQM = 25%-trimmed mean; "
        "diverged and unfinished runs are left out. Params: active parameters of actor + critics at the end of the "
        "runs (fraction of dense). FLOPs: training and inference cost relative to dense (model in "
        "`agents.results.stats`). Fractions and FLOPs that differ across seeds carry their 95% CI.",
        "",
        f"| {head} | method | final return mean [95% CI] | IQM | whole curve mean [95% CI] | params | train FLOPs "
        "| inference FLOPs | seeds | diverged |",
        "|" + "---|" * len(keys) + "---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cell = " | ".join(_fmt_key(r, k) for k in keys)
        seeds = str(r["n_seeds"]) + (f" ({r['n_unfinished']} unfinished)" if r["n_unfinished"] else "")
        method = r["method"] + (f" ({r['trained_hidden']})" if r.get("trained_hidden") else "")
        lines.append(
            f"| {cell} | {method} | {_fmt_ci(r['mean'], r['ci_low'], r['ci_high'])} | {_fmt_num(r['iqm'])} "
            f"| {_fmt_ci(r['curve_mean'], r['curve_ci_low'], r['curve_ci_high'])} "
            f"| {r['active_params']:,} ({_spread(r, 'param_fraction')}) | {_spread(r, 'train_flops')} "
            f"| {r['inference_flops']:.3f} | {seeds} | {r['n_diverged']} |"
        )
    if any(r.get("trained_hidden") for r in rows):
        lines += [
            "",
            "A method shown with widths trained dense networks of those widths, narrowed to the sparse networks' "
            "parameter count; its params and FLOPs are fractions of the dense networks at the cell's width.",
        ]
    revives = lambda name: name in sj.METHODS and sj.METHODS[name].revives
    if any(revives(r["method"]) and r.get("score") == "random" for r in rows):
        lines += [
            "",
            "Note: with score=random, a random base plus random revival is a random mask, so tar and uniform_revival "
            "equal static in distribution wherever their per-layer counts equal static's.",
        ]
    return lines


def _comparison_lines(comps: Sequence[dict]) -> list[str]:
    """The section on TAR's probability of improvement over each baseline; none without comparisons."""
    if not comps:
        return []
    lines = [
        "",
        "## Probability that TAR improves on each baseline",
        "",
        "P(TAR > baseline) + P(equal) / 2 over pairs of seeds, on the final and on the whole-curve return, with "
        "95% stratified-bootstrap CIs (rliable). 0.5 is no difference; a CI that excludes 0.5 separates the two. "
        "Params: the baseline's active parameters over TAR's (seed means at the end of the runs); where it is not "
        "1.00x the two are compared at different parameter counts.",
        "",
        f"| {' | '.join(_varying(comps))} | baseline | seeds | params | P(improve), final [95% CI] "
        "| P(improve), whole curve [95% CI] |",
        "|" + "---|" * len(_varying(comps)) + "---|---:|---:|---:|---:|",
    ]
    for c in comps:
        cell = " | ".join(_fmt_key(c, k) for k in _varying(comps))
        lines.append(
            f"| {cell} | {c['baseline']} | {c['n_tar']} vs {c['n_baseline']} | {_fmt_ratio(c.get('params_ratio'))} "
            f"| {_fmt_ci(c['poi_final'], c['poi_final_low'], c['poi_final_high'], '.2f')} "
            f"| {_fmt_ci(c['poi_curve'], c['poi_curve_low'], c['poi_curve_high'], '.2f')} |"
        )
    return lines


def _fmt_ratio(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def _aggregate_lines(agg: Sequence[dict], skipped: Sequence[str]) -> list[str]:
    """The across-cells section of :func:`agents.results.stats.aggregate`, then the cells it left out."""
    lines = []
    if agg:
        lines += [
            "",
            "## Across cells",
            "",
            "Final return normalised per cell to (x - first) / (dense - first), where first is the cell's mean first "
            "evaluation (after one chunk of training), so 0 is that and 1 is dense; IQM and mean over all runs of all "
            "cells with 95% stratified-bootstrap CIs (rliable). P(TAR better): the probability that TAR's final return "
            "beats the method's over pairs of seeds, averaged over the cells that hold both, with its 95% "
            "stratified-bootstrap CI.",
            "",
            "| method | cells | runs | IQM [95% CI] | mean [95% CI] | P(TAR better) [95% CI] |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for a in agg:
            poi = "" if a.get("poi") is None else _fmt_ci(a["poi"], a["poi_low"], a["poi_high"], ".2f")
            lines.append(
                f"| {a['method']} | {a['n_cells']} | {a['n_runs']} "
                f"| {_fmt_ci(a['iqm'], a['iqm_low'], a['iqm_high'], '.3f')} "
                f"| {_fmt_ci(a['mean'], a['mean_low'], a['mean_high'], '.3f')} | {poi} |"
            )
    if skipped:
        lines += [
            "",
            "Left out of the normalised statistics (no dense runs, or dense no better than its first evaluation): "
            f"{'; '.join(skipped)}.",
        ]
    return lines


def _tar_gain_lines(rows: Sequence[dict]) -> list[str]:
    """The section on TAR's gains, env by env with the median across envs; none without TAR rows."""
    tar_rows = [r for r in rows if r["method"] == "tar"]
    if not tar_rows:
        return []
    keys = _varying(rows)
    means = {(stats.cell_of(r), r["method"]): r["mean"] for r in rows}
    lines = [
        "",
        "## TAR gains",
        "",
        "Mean final returns, and TAR's gain in % of |baseline| over static and over the better of SET/RigL. "
        "A gain against a baseline near zero (under 5% of the cell's largest |mean|) is marked and left out of "
        "the median across envs.",
        "",
        f"| {' | '.join(k for k in keys if k != 'env')} | env | TAR | static | vs static | best of SET/RigL "
        "| vs best of SET/RigL |",
        "|" + "---|" * (len(keys) - 1) + "---|---:|---:|---:|---:|---:|",
    ]
    # Rows of one setting, differing only in env, sit together so that their median can follow them.
    by_setting: dict[tuple, list[dict]] = defaultdict(list)
    for r in tar_rows:
        by_setting[tuple(stats.sortable(v) for v in stats.cell_of(r)[1:])].append(r)
    for _, members in sorted(by_setting.items()):
        for r in members:
            cell = " | ".join(_fmt_key(r, k) for k in keys if k != "env")
            warn = lambda flag, r=r: " (near-zero baseline)" if r[flag] else ""
            dst = r["dst_baseline"]
            static = means.get((stats.cell_of(r), "static"))
            lines.append(
                f"| {cell} | {r['env']} | {_fmt_num(r['mean'])} | {_fmt_num(static)} "
                f"| {_fmt_num(r['gain_vs_static_pct'], '+.1f', '%')}{warn('static_near_zero')} "
                f"| {_fmt_num(means.get((stats.cell_of(r), dst)))}{f' ({dst})' if dst else ''} "
                f"| {_fmt_num(r['gain_vs_dst_pct'], '+.1f', '%')}{warn('dst_near_zero')} |"
            )
        m = members[0]
        if len(members) > 1:  # a median across envs
            cell = " | ".join(_fmt_key(m, k) for k in keys if k != "env")
            lines.append(
                f"| {cell} | **median** | | | {_fmt_num(m['median_gain_vs_static_pct'], '+.1f', '%')} | "
                f"| {_fmt_num(m['median_gain_vs_dst_pct'], '+.1f', '%')} |"
            )
    return lines


def _topology_lines(topo: Sequence[dict]) -> list[str]:
    """The section on what revival changed in the seed-0 masks; none without topology rows."""
    if not topo:
        return []
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"
    lines = [
        "",
        f"## What revival changed (seed {topo[0]['seed']})",
        "",
        "Moved: connections that sit in other layers than static's per-layer counts put them. Dead units: units "
        "with zero fan-in or zero fan-out, before revival, after it, and in static's mask. Reach: the smallest "
        "fraction of (input, output) pairs joined by an active path, over the network's chains (the actor, each "
        "twin critic).",
        "",
        f"| {' | '.join(_varying(topo))} | method | actor/critic | active per layer (static) | moved | dead units "
        "before -> after (static) | reach before -> after (static) |",
        "|" + "---|" * len(_varying(topo)) + "---|---|---|---:|---:|---:|",
    ]
    for t in topo:
        cell = " | ".join(_fmt_key(t, k) for k in _varying(topo))
        lines.append(
            f"| {cell} | {t['method']} | {t['net']} | {'/'.join(map(str, t['active']))} "
            f"({'/'.join(map(str, t['active_static']))}) | {t['moved']} "
            f"| {t['dead_before']} -> {t['dead_after']} ({t['dead_static']}) "
            f"| {fmt(t['reach_before'])} -> {fmt(t['reach_after'])} ({fmt(t['reach_static'])}) |"
        )
    return lines


def _diagnostics_lines(diag: Sequence[dict]) -> list[str]:
    """The section on mask turnover and dormant units per method; none without diagnostics rows."""
    diag = [d for d in diag if any(d[f"{n}_dormant"] is not None for n in stats.NETWORKS)]
    if not diag:
        return []
    cells = _varying(diag)
    fmt = lambda v, spec: "n/a" if v is None else format(v, spec)
    redo = any(d.get(f"{n}_recycled") is not None for d in diag for n in stats.NETWORKS)
    lines = [
        "",
        "## Mask turnover and dormant units",
        "",
        "Changed: connections the masks changed over the whole run (SET/RigL rewiring, GMP pruning), mean over "
        "seeds; turnover: that over the network's final active connections. Dormant: fraction of hidden units whose "
        "mean |activation| on a replay batch is at most tau times their layer's mean, at the last evaluation "
        "(Sokar et al. 2023)." + (" Recycled: fraction of hidden units a ReDo step recycled, mean over the run's "
                                  "ReDo steps (n/a: trained without ReDo)." if redo else ""),
        "",
        f"| {' | '.join(cells + ['method'])} | actor changed (turnover) | critic changed (turnover) | actor dormant "
        "| critic dormant |" + (" actor recycled | critic recycled |" if redo else ""),
        "|" + "---|" * (len(cells) + 1) + "---:|---:|---:|---:|" + ("---:|---:|" if redo else ""),
    ]  # fmt: skip
    for d in diag:
        cell = "".join(f"{_fmt_key(d, k)} | " for k in cells)
        net = lambda n, d=d: f"{fmt(d[f'{n}_changed'], ',.0f')} ({fmt(d[f'{n}_turnover'], '.2f')})"
        recycled = "".join(f" {fmt(d.get(f'{n}_recycled'), '.3f')} |" for n in stats.NETWORKS) if redo else ""
        lines.append(
            f"| {cell}{d['method']} | {net('actor')} | {net('critic')} | {fmt(d['actor_dormant'], '.3f')} "
            f"| {fmt(d['critic_dormant'], '.3f')} |{recycled}"
        )
    return lines


def summary_md(
    rows: Sequence[dict],
    comps: Sequence[dict] = (),
    agg: tuple[list[dict], list[str]] = ([], []),
    topo: Sequence[dict] = (),
    diag: Sequence[dict] = (),
) -> str:
    """The text of ``summary.md``: the summary table, then comparisons, aggregate, gains, topology, diagnostics.

    Args:
      rows: the summary rows (:func:`agents.experiments.report.summarize`).
      comps: :func:`agents.results.stats.comparisons`.
      agg: :func:`agents.results.stats.aggregate`'s ``(rows, skipped)``.
      topo: :func:`agents.results.stats.topology_changes`.
      diag: :func:`agents.results.stats.diagnostics`.

    A section whose statistics are empty is left out.
    """
    lines = _summary_lines(rows)
    lines += _comparison_lines(comps)
    lines += _aggregate_lines(*agg)
    lines += _tar_gain_lines(rows)
    lines += _topology_lines(topo)
    lines += _diagnostics_lines(diag)
    return "\n".join(lines) + "\n"
