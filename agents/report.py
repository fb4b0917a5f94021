"""Summary table, TAR gains, FLOPs and figures of a sweep's results directory.

Reads ``DIR/runs/*/run.json`` and ``curve.jsonl`` (layout in :mod:`agents.results`)
and writes ``DIR/summary.csv``, ``DIR/summary.md`` and ``DIR/figures/*.png``.

Statistics follow Agarwal et al. 2021 (the ``rliable`` package). A *cell* is
one point of the sweep's grid (env, algo, hidden sizes, sparsity, base score,
distribution, rho); per cell and method, over seeds:

- final return of a run: mean ``eval_return`` over its last 10% of evaluations
  (at least one);
- whole-curve return of a run: mean ``eval_return`` over all its evaluations
  (the area under the learning curve divided by its length, evaluations being
  evenly spaced), which separates runs that learn early from runs that learn
  late when the final returns are bimodal;
- a run is *diverged* if its ``diverged`` flag is set or its final return is not
  finite, and *unfinished* if it has fewer chunks than planned; both are left
  out of the mean, IQM and CI, and counted in ``n_diverged`` / ``n_unfinished``;
- IQM: the 25%-trimmed mean (Agarwal et al. 2021);
- 95% CI of the mean: percentile bootstrap over seeds with a fixed generator,
  so a report is reproducible. Percentile rather than BCa because BCa is
  undefined for the 2-5 seeds of a typical sweep whenever resamples tie;
  with one seed, or all seeds equal, the CI is ``(mean, mean)``;
- probability of improvement of TAR over each other method of the cell,
  ``P(X > Y) + P(X = Y) / 2`` over pairs of seeds (Mann-Whitney), on the final
  and the whole-curve return, with a 95% stratified-bootstrap CI;
- TAR's gain over a baseline: ``100 * (tar - base) / |base|`` in %, against
  ``static`` and against the better (higher mean) of ``set`` / ``rigl`` among
  those present; ``None`` when a baseline is missing or zero, and flagged
  (``static_near_zero``, ``dst_near_zero``) when ``|base|`` is under 5% of the largest ``|mean|``
  of the cell (such gains are shown with a warning and left out of medians).
  The median of the gains across envs is given per cell without its env;
- across cells, per method: IQM and mean of the normalised final return
  ``(x - u) / (d - u)`` over all runs of all cells, with a 95% stratified
  bootstrap CI (runs resampled within each cell); ``u`` is the mean first
  evaluation of the cell's runs (after the first chunk of training: the
  nearest the curves come to an untrained policy) and ``d`` its dense mean
  final return, so 0 is the first evaluation and 1 is dense. Cells without
  dense, or where dense does not beat ``u`` by 1% of ``|d| + |u|``, are left
  out (and named). A method is aggregated over the cells where it has
  finished runs, with the same number of runs (its lowest seeds) per cell.

FLOPs model (ratios to the dense network, so per-weight constants cancel).
Per network ``n`` (actor, critic = both twin critics) let ``D_n`` be all its
parameters and ``N_n = D_n - prunable_n + active_n`` the ones a sparse forward
touches (active prunable weights plus biases and other non-prunable ones). A
forward costs ``~ N_n``, a backward ``~ 2 N_n`` (activations and weights).

- inference (one actor forward): ``N_actor / D_actor``;
- training, per gradient update: forward + backward of actor and critic plus a
  forward of the target critic, ``F_S = 3 N_actor + 4 N_critic``, against
  ``F_D = 3 D_actor + 4 D_critic`` for dense;
- RigL computes a dense weight gradient at each mask update, which costs
  ``D_n - N_n`` more than the sparse one (Evci et al. 2020, appendix H). Over
  ``T`` updates there are ``M = floor((t_end - 1) / delta_t)`` mask updates with
  ``t_end = floor(end_fraction * T)``, so RigL's training ratio is
  ``(T F_S + M sum_n (D_n - N_n)) / (T F_D)``; SET's random regrowth is
  negligible.

The model ignores TD3's delayed actor updates and the actor forwards inside
the critic target, and counts the active weights of the initial masks.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from agents.config import METHODS
from agents.results import atomic_write_bytes, atomic_write_text, read_json, read_jsonl

CELL_KEYS = ("env", "algo", "hidden", "sparsity", "score", "distribution", "rho")
GROUP_KEYS = CELL_KEYS + ("method",)
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
    "train_flops",
    "inference_flops",
    "gain_vs_static_pct",
    "gain_vs_dst_pct",
    "dst_baseline",
    "static_near_zero",
    "dst_near_zero",
    "median_gain_vs_static_pct",
    "median_gain_vs_dst_pct",
)
COMPARISON_COLUMNS = CELL_KEYS + (
    "baseline",
    "n_tar",
    "n_baseline",
    "poi_final",
    "poi_final_low",
    "poi_final_high",
    "poi_curve",
    "poi_curve_low",
    "poi_curve_high",
)
NETWORKS = ("actor", "critic")
BOOTSTRAP_SEED = 0
N_RESAMPLES = 9999
RLIABLE_REPS = 2000
NEAR_ZERO = 0.05


def curve_mean(curve: Sequence[dict]) -> float:
    """Mean ``eval_return`` over all evaluations of a run (a normalised area under its learning curve).

    >>> curve_mean([{"eval_return": 0.0}, {"eval_return": 10.0}, {"eval_return": 20.0}])
    10.0
    """
    if not curve:
        raise ValueError("curve_mean needs at least one evaluation; the curve is empty.")
    return float(np.mean([float(c["eval_return"]) for c in curve]))


def final_return(curve: Sequence[dict]) -> float:
    """Mean ``eval_return`` over the last 10% of evaluations (rounded up, at least one).

    Args:
      curve: the run's evaluations in order, as read from ``curve.jsonl``.

    Returns:
      The final return; NaN if any of those evaluations is NaN.

    >>> final_return([{"eval_return": float(r)} for r in range(15)])  # last 2 of 15
    13.5
    """
    if not curve:
        raise ValueError("final_return needs at least one evaluation; the curve is empty.")
    k = math.ceil(0.1 * len(curve))
    return float(np.mean([float(c["eval_return"]) for c in curve[-k:]]))


def _bootstrap_ci(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile-bootstrap CI of the mean over axis 0 (seeds); ``(mean, mean)`` below two seeds."""
    values = np.asarray(values, float)
    mean = values.mean(axis=0)
    if values.shape[0] < 2:
        return mean, mean
    res = stats.bootstrap(
        (values,),
        np.mean,
        axis=0,
        n_resamples=N_RESAMPLES,
        method="percentile",
        random_state=np.random.default_rng(BOOTSTRAP_SEED),
    )
    lo, hi = res.confidence_interval
    # Columns where every seed agrees have no spread; return the mean itself, not a rounded resample mean.
    tied = np.ptp(values, axis=0) == 0
    return np.where(tied, mean, lo), np.where(tied, mean, hi)


def seed_stats(values: Sequence[float]) -> dict[str, float | None]:
    """Mean, IQM and 95% bootstrap CI of the mean of per-seed final returns.

    Args:
      values: one finite final return per seed.

    Returns:
      ``{"mean", "iqm", "ci_low", "ci_high"}``, all ``None`` when ``values`` is empty.

    >>> seed_stats([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 100.0])["iqm"]  # mean of 3, 4, 5, 6
    4.5
    """
    x = np.asarray(values, float)
    if x.size == 0:
        return {"mean": None, "iqm": None, "ci_low": None, "ci_high": None}
    if not np.all(np.isfinite(x)):
        raise ValueError(f"seed_stats needs finite values; got {x.tolist()}.")
    lo, hi = _bootstrap_ci(x)
    return {
        "mean": float(x.mean()),
        "iqm": float(stats.trim_mean(x, 0.25)),
        "ci_low": float(lo),
        "ci_high": float(hi),
    }


def _network_counts(params: dict, network: str) -> tuple[int, int]:
    """``(N, D)``: parameters a sparse pass touches, and all parameters, of one network."""
    p = params[network]
    return p["total"] - p["prunable"] + p["active"], p["total"]


def relative_flops(
    params: dict, method: str, total_updates: int = 0, delta_t: int = 1, end_fraction: float = 0.0
) -> tuple[float, float]:
    """Training and inference FLOPs of one run relative to dense (model in the module docstring).

    Args:
      params: ``run.json``'s ``params``: ``{"actor": {"active", "prunable", "total"}, "critic": {...}}``.
      method: the sparse method; only ``rigl`` adds the dense-gradient cost of its mask updates.
      total_updates: gradient updates in the run (RigL only).
      delta_t: updates between mask updates (RigL only).
      end_fraction: fraction of the updates after which masks stop changing (RigL only).

    Returns:
      ``(train, inference)`` FLOPs as fractions of the dense network's.

    >>> net = lambda active, size: {"active": active, "prunable": size, "total": size}
    >>> relative_flops({"actor": net(10, 100), "critic": net(20, 200)}, "static")
    (0.1, 0.1)
    """
    for network in NETWORKS:
        p = params.get(network, {})
        if not {"active", "prunable", "total"} <= p.keys():
            raise ValueError(f"params[{network!r}]={p!r} needs the keys active, prunable and total.")
        if not 0 <= p["active"] <= p["prunable"] <= p["total"] or p["total"] <= 0:
            raise ValueError(f"params[{network!r}]={p!r} must satisfy 0 <= active <= prunable <= total, total > 0.")
    (n_a, d_a), (n_c, d_c) = (_network_counts(params, n) for n in NETWORKS)
    sparse, dense = 3 * n_a + 4 * n_c, 3 * d_a + 4 * d_c
    train = sparse / dense
    if method == "rigl" and total_updates > 0:
        if delta_t < 1:
            raise ValueError(f"delta_t={delta_t!r} must be a positive int.")
        # Same mask-update steps as sparse_jax.DSTSchedule.is_update_step: t % delta_t == 0 for 0 < t < t_end.
        t_end = int(math.floor(end_fraction * total_updates + 1e-9))
        mask_updates = max(t_end - 1, 0) // delta_t
        train += mask_updates * ((d_a - n_a) + (d_c - n_c)) / (total_updates * dense)
    return train, n_a / d_a


def load_runs(results_dir: str | Path) -> list[dict]:
    """Every run of a results directory: its ``run.json`` with the ``curve`` added, sorted by folder name.

    Args:
      results_dir: the results directory.

    Returns:
      One dict per ``runs/<run_id>/run.json``; folders without one (not started) are skipped.
    """
    runs = []
    for path in sorted(Path(results_dir).glob("runs/*/run.json")):
        run = read_json(path)
        missing = [k for k in ("env", "algo", "sparsity", "method", "seed", "params") if k not in run]
        if missing:
            raise ValueError(f"{path} lacks the fields {', '.join(missing)}.")
        curve_path = path.with_name("curve.jsonl")
        run["curve"] = read_jsonl(curve_path) if curve_path.exists() else []
        # Runs written before the grid had these axes leave them out.
        hidden = run.get("hidden")
        run["hidden"] = "-".join(map(str, hidden)) if isinstance(hidden, list | tuple) else hidden
        for k in ("score", "distribution", "rho"):
            run.setdefault(k, None)
        runs.append(run)
    return runs


def cell_of(row: dict) -> tuple:
    """The cell (:data:`CELL_KEYS`) of a run or summary row."""
    return tuple(row.get(k) for k in CELL_KEYS)


def _method_key(method: str) -> tuple[int, str]:
    """Sort methods in the order of ``agents.config.METHODS``, unknown ones last."""
    return (METHODS.index(method) if method in METHODS else len(METHODS), method)


def _sortable(value: Any) -> tuple:
    return (value is not None, value if value is not None else 0)


def _cell_key(row: dict) -> tuple:
    return tuple(_sortable(v) for v in cell_of(row))


def _group_key(row: dict) -> tuple:
    return (*_cell_key(row), _method_key(row["method"]))


def _status(run: dict) -> str:
    """``"ok"``, ``"diverged"`` or ``"unfinished"``."""
    if run.get("diverged"):
        return "diverged"
    if not run["curve"] or run.get("chunks_done", 0) < run.get("total_chunks", 0):
        return "unfinished"
    finite = all(math.isfinite(float(c["eval_return"])) for c in run["curve"])
    return "ok" if finite else "diverged"


def _gain(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return 100.0 * (value - base) / abs(base)


def tar_gains(rows: Sequence[dict]) -> list[dict]:
    """TAR's gain in % over static and over the better of SET/RigL, per cell.

    Args:
      rows: summary rows with at least ``env, algo, sparsity, method, mean``
        (and the other :data:`CELL_KEYS` where the sweep sets them).

    Returns:
      One dict per cell with a TAR row: the cell keys, ``gain_vs_static_pct,
      gain_vs_dst_pct, dst_baseline`` (``set``, ``rigl`` or ``None``),
      ``static_near_zero`` / ``dst_near_zero`` (True when that baseline's
      ``|mean|`` is under 5% of the cell's largest ``|mean|``, so the ratio is
      unstable), and
      ``median_gain_vs_static_pct, median_gain_vs_dst_pct`` (medians over the
      envs of the same cell otherwise, flagged gains left out; ``None`` if
      none is left).
    """
    means: dict[tuple, dict[str, float | None]] = defaultdict(dict)
    for r in rows:
        means[cell_of(r)][r["method"]] = r["mean"]
    gains = []
    for cell, m in sorted(means.items(), key=lambda kv: tuple(_sortable(v) for v in kv[0])):
        if "tar" not in m:
            continue
        dst = [(m[k], k) for k in ("set", "rigl") if m.get(k) is not None]
        best, name = max(dst) if dst else (None, None)
        scale = max((abs(v) for v in m.values() if v is not None), default=0.0)
        near = lambda b, scale=scale: b is not None and abs(b) < NEAR_ZERO * scale
        gains.append(
            {
                **dict(zip(CELL_KEYS, cell)),
                "gain_vs_static_pct": _gain(m["tar"], m.get("static")),
                "gain_vs_dst_pct": _gain(m["tar"], best),
                "dst_baseline": name,
                "static_near_zero": near(m.get("static")),
                "dst_near_zero": near(best),
            }
        )
    for g in gains:
        peers = [h for h in gains if cell_of(h)[1:] == cell_of(g)[1:]]
        for col, flag in (("gain_vs_static_pct", "static_near_zero"), ("gain_vs_dst_pct", "dst_near_zero")):
            vals = [h[col] for h in peers if h[col] is not None and not h[flag]]
            g[f"median_{col}"] = statistics.median(vals) if vals else None
    return gains


def _summarize_runs(runs: Sequence[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for run in runs:
        groups[tuple(run.get(k) for k in GROUP_KEYS)].append(run)
    rows = []
    for key, members in groups.items():
        status = [_status(r) for r in members]
        finals = [final_return(r["curve"]) for r, s in zip(members, status) if s == "ok"]
        whole = seed_stats([curve_mean(r["curve"]) for r, s in zip(members, status) if s == "ok"])
        flops = [
            relative_flops(
                r["params"],
                r["method"],
                int(r.get("total_updates", 0)),
                int(r.get("delta_t", 1)),
                float(r.get("end_fraction", 0.0)),
            )
            for r in members
        ]
        active = [sum(_network_counts(r["params"], n)[0] for n in NETWORKS) for r in members]
        total = [sum(_network_counts(r["params"], n)[1] for n in NETWORKS) for r in members]
        rows.append(
            {
                **dict(zip(GROUP_KEYS, key)),
                "sparsity": float(key[GROUP_KEYS.index("sparsity")]),
                "n_seeds": len(members),
                "n_diverged": status.count("diverged"),
                "n_unfinished": status.count("unfinished"),
                **seed_stats(finals),
                "curve_mean": whole["mean"],
                "curve_ci_low": whole["ci_low"],
                "curve_ci_high": whole["ci_high"],
                # Counts can differ across seeds (global pruning); report the seed average.
                "active_params": int(round(float(np.mean(active)))),
                "param_fraction": float(np.mean(np.divide(active, total))),
                "train_flops": float(np.mean([f[0] for f in flops])),
                "inference_flops": float(np.mean([f[1] for f in flops])),
            }
        )
    rows.sort(key=_group_key)
    gains = {cell_of(g): g for g in tar_gains(rows)}
    for row in rows:
        g = gains.get(cell_of(row)) if row["method"] == "tar" else None
        for col in COLUMNS[COLUMNS.index("gain_vs_static_pct") :]:
            row[col] = g[col] if g else None
    return rows


def summarize(results_dir: str | Path) -> list[dict]:
    """One row per (env, algo, sparsity, method) of a results directory.

    Args:
      results_dir: a sweep's results directory.

    Returns:
      Dicts with the keys :data:`COLUMNS` (statistics in the module docstring),
      sorted by env, algo, sparsity and method. The gain columns are set on
      TAR rows only.

    Raises:
      ValueError: if the directory holds no runs.
    """
    runs = load_runs(results_dir)
    if not runs:
        raise ValueError(f"results directory {str(results_dir)!r} has no runs (no runs/*/run.json).")
    return _summarize_runs(runs)


def _ok_runs_by_cell(runs: Sequence[dict]) -> dict[tuple, dict[str, list[dict]]]:
    """Finished, finite runs grouped by cell, then method, each list sorted by seed."""
    cells: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in sorted(runs, key=lambda r: r["seed"]):
        if _status(r) == "ok":
            cells[cell_of(r)][r["method"]].append(r)
    return cells


def _rng() -> np.random.RandomState:
    return np.random.RandomState(BOOTSTRAP_SEED)  # rliable takes the legacy generator


def _interval_estimates(scores: dict, fn: Any) -> tuple[dict, dict]:
    """``rliable.library.get_interval_estimates`` with this module's reps and fixed generator."""
    import warnings

    from rliable import library as rly

    # rliable's stratified bootstraps draw their indices from numpy's global generator (np.random.choice),
    # whatever random_state says; seed it for the call and put its state back, so a report is reproducible.
    saved = np.random.get_state()
    np.random.seed(BOOTSTRAP_SEED)
    try:
        with warnings.catch_warnings():  # arch, under rliable, deprecates the RandomState that rliable passes it
            warnings.simplefilter("ignore", FutureWarning)
            return rly.get_interval_estimates(scores, fn, reps=RLIABLE_REPS, random_state=_rng())
    finally:
        np.random.set_state(saved)


def _poi_one_task(x: np.ndarray, y: np.ndarray) -> float:
    """rliable's ``metrics.probability_of_improvement`` for one task (Mann-Whitney U / (n_x n_y)), vectorised.

    rliable computes it with ``scipy.stats.mannwhitneyu`` per bootstrap replicate, about 50x slower.
    """
    x, y = x[:, 0][:, None], y[:, 0][None, :]
    return float(np.mean((x > y) + 0.5 * (x == y)))


def probability_of_improvement(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, float]:
    """``P(X > Y) + P(X = Y) / 2`` over pairs of seeds, with a 95% stratified-bootstrap CI (rliable).

    >>> probability_of_improvement([3.0, 4.0], [1.0, 2.0])[0]
    1.0
    """
    x, y = np.asarray(x, float)[:, None], np.asarray(y, float)[:, None]
    point, ci = _interval_estimates({"pair": (x, y)}, _poi_one_task)
    lo, hi = np.asarray(ci["pair"]).ravel()[:2]
    return float(point["pair"]), float(lo), float(hi)


def comparisons(runs: Sequence[dict]) -> list[dict]:
    """TAR against every other method of its cell: probability of improvement on final and whole-curve return.

    Returns:
      One dict per (cell, baseline) with the keys :data:`COMPARISON_COLUMNS`;
      cells where TAR or the baseline has fewer than two finished runs are left out.
    """
    out = []
    for cell, methods in sorted(_ok_runs_by_cell(runs).items(), key=lambda kv: tuple(_sortable(v) for v in kv[0])):
        tar = methods.get("tar", [])
        if len(tar) < 2:
            continue
        for base in sorted((m for m in methods if m != "tar"), key=_method_key):
            other = methods[base]
            if len(other) < 2:
                continue
            row = {**dict(zip(CELL_KEYS, cell)), "baseline": base, "n_tar": len(tar), "n_baseline": len(other)}
            for name, stat in (("final", final_return), ("curve", curve_mean)):
                p, lo, hi = probability_of_improvement(
                    [stat(r["curve"]) for r in tar], [stat(r["curve"]) for r in other]
                )
                row.update({f"poi_{name}": p, f"poi_{name}_low": lo, f"poi_{name}_high": hi})
            out.append(row)
    return out


def aggregate(runs: Sequence[dict]) -> tuple[list[dict], list[str]]:
    """IQM and mean of the dense-normalised final return over all cells, per method (module docs).

    Returns:
      ``(rows, skipped)``: one row per method with ``method, n_cells, n_runs,
      iqm, iqm_low, iqm_high, mean, mean_low, mean_high``, and the names of the
      cells left out (no dense runs, or dense no better than untrained).
    """
    from rliable import metrics

    per_method: dict[str, list[np.ndarray]] = defaultdict(list)
    skipped = []
    for cell, methods in sorted(_ok_runs_by_cell(runs).items(), key=lambda kv: tuple(_sortable(v) for v in kv[0])):
        every = [r for rs in methods.values() for r in rs]
        untrained = float(np.mean([float(r["curve"][0]["eval_return"]) for r in every]))
        dense = [final_return(r["curve"]) for r in methods.get("dense", [])]
        d = float(np.mean(dense)) if dense else None
        if d is None or d - untrained <= 0.01 * (abs(d) + abs(untrained)):
            skipped.append(_cell_name(dict(zip(CELL_KEYS, cell))))
            continue
        for method, rs in methods.items():
            per_method[method].append((np.array([final_return(r["curve"]) for r in rs]) - untrained) / (d - untrained))
    rows = []
    for method in sorted(per_method, key=_method_key):
        cols = per_method[method]
        n = min(len(c) for c in cols)  # rliable needs a runs x cells matrix; keep the lowest seeds of each cell
        scores = {method: np.stack([c[:n] for c in cols], axis=1)}
        row = {"method": method, "n_cells": len(cols), "n_runs": n * len(cols)}
        for name, fn in (("iqm", metrics.aggregate_iqm), ("mean", metrics.aggregate_mean)):
            point, ci = _interval_estimates(scores, lambda x, fn=fn: np.array([fn(x)]))
            lo, hi = np.asarray(ci[method]).ravel()[:2]
            row.update({name: float(point[method][0]), f"{name}_low": float(lo), f"{name}_high": float(hi)})
        rows.append(row)
    return rows, skipped


def topology_changes(runs: Sequence[dict]) -> list[dict]:
    """What revival changed, per cell and network, from the seed-0 masks of static, tar and uniform_revival.

    Returns:
      One dict per (cell, method, network) for ``tar`` and ``uniform_revival``:
      ``moved`` (connections in other layers than static's per-layer counts
      put them: half the sum of the per-layer count differences),
      ``dead_before`` / ``dead_after`` (units with zero fan-in or fan-out
      before revival and after it), ``dead_static`` (the same for static's
      masks), and ``reach_*`` (the smallest input-to-output pair fraction over
      the network's chains, before revival, after it and for static).
    """
    seed0 = {(cell_of(r), r["method"]): r for r in runs if r["seed"] == 0 and r.get("topology")}
    out = []
    for (cell, method), run in sorted(seed0.items(), key=lambda kv: (tuple(_sortable(v) for v in kv[0][0]), kv[0][1])):
        static = seed0.get((cell, "static"))
        if method not in ("tar", "uniform_revival") or static is None:
            continue
        for network in NETWORKS:
            after, before = run["topology"][network], run.get("base_topology", {}).get(network, [])
            mine = static["topology"][network]
            dead = lambda layers: sum(t["zero_fan_in"] + t["zero_fan_out"] for t in layers)
            reach = lambda r, key, network=network: min(
                (c["pair_fraction"] for c in r.get(key, {}).get(network, {}).values()), default=None
            )
            out.append(
                {
                    **dict(zip(CELL_KEYS, cell)),
                    "method": method,
                    "network": network,
                    "moved": sum(abs(a["active"] - b["active"]) for a, b in zip(after, mine)) // 2,
                    "active": [t["active"] for t in after],
                    "active_static": [t["active"] for t in mine],
                    "dead_before": dead(before),
                    "dead_after": dead(after),
                    "dead_static": dead(mine),
                    "reach_before": reach(run, "base_reachability"),
                    "reach_after": reach(run, "reachability"),
                    "reach_static": reach(static, "reachability"),
                }
            )
    return out


def _fmt_csv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _summary_csv(rows: Sequence[dict], columns: Sequence[str] = COLUMNS) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_fmt_csv(r[c]) for c in columns] for r in rows)
    return buf.getvalue()


def _fmt_num(value: float | None, spec: str = ".1f", suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def _cell_name(row: dict, keys: Sequence[str] = CELL_KEYS) -> str:
    """A short readable name of a cell, e.g. ``hopper sac s0.9 snip uniform``."""
    parts = []
    for k in keys:
        v = row.get(k)
        if v is None:
            continue
        if k == "sparsity":
            parts.append(f"s{v:g}")
        elif k == "rho":
            parts.append(f"rho {v:g}")
        elif k == "hidden":
            parts.append(f"{v} units")
        else:
            parts.append(str(v))
    return " ".join(parts)


def _varying(rows: Sequence[dict]) -> list[str]:
    """The cell keys to show: env, algo and sparsity always, the others where the rows differ."""
    return [k for k in CELL_KEYS if k in ("env", "algo", "sparsity") or len({r.get(k) for r in rows}) > 1]


def _fmt_key(row: dict, key: str) -> str:
    """A cell value for a table: floats as ``:g``, ``None`` as a dash."""
    v = row.get(key)
    if v is None:
        return "-"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _fmt_ci(mean: float | None, lo: float | None, hi: float | None, spec: str = ".1f") -> str:
    return "n/a" if mean is None else f"{mean:{spec}} [{lo:{spec}}, {hi:{spec}}]"


def _summary_md(
    rows: Sequence[dict],
    comps: Sequence[dict] = (),
    agg: tuple[list[dict], list[str]] = ([], []),
    topo: Sequence[dict] = (),
) -> str:
    keys = _varying(rows)
    head = " | ".join(keys)
    lines = [
        "# Sweep summary",
        "",
        "Final return: mean evaluation return over the last 10% of evaluations of a run; whole curve: mean over all "
        "its evaluations (a normalised AUC). Mean and 95% percentile-bootstrap CI over seeds, IQM = 25%-trimmed mean; "
        "diverged and unfinished runs are left out. Params: active parameters of actor + critics (fraction of dense). "
        "FLOPs: training and inference cost relative to dense (model in `agents.report`).",
        "",
        f"| {head} | method | final return mean [95% CI] | IQM | whole curve mean [95% CI] | params | train FLOPs "
        "| inference FLOPs | seeds | diverged |",
        "|" + "---|" * len(keys) + "---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cell = " | ".join(_fmt_key(r, k) for k in keys)
        seeds = str(r["n_seeds"]) + (f" ({r['n_unfinished']} unfinished)" if r["n_unfinished"] else "")
        lines.append(
            f"| {cell} | {r['method']} | {_fmt_ci(r['mean'], r['ci_low'], r['ci_high'])} | {_fmt_num(r['iqm'])} "
            f"| {_fmt_ci(r['curve_mean'], r['curve_ci_low'], r['curve_ci_high'])} "
            f"| {r['active_params']:,} ({r['param_fraction']:.3f}) | {r['train_flops']:.3f} "
            f"| {r['inference_flops']:.3f} | {seeds} | {r['n_diverged']} |"
        )
    if any(r["method"] in ("tar", "uniform_revival") and r.get("score") == "random" for r in rows):
        lines += [
            "",
            "Note: with score=random, a random base plus random revival is a random mask, so tar and uniform_revival "
            "equal static in distribution wherever their per-layer counts equal static's.",
        ]
    if comps:
        lines += [
            "",
            "## Probability that TAR improves on each baseline",
            "",
            "P(TAR > baseline) + P(equal) / 2 over pairs of seeds, on the final and on the whole-curve return, with "
            "95% stratified-bootstrap CIs (rliable). 0.5 is no difference; a CI that excludes 0.5 separates the two.",
            "",
            f"| {' | '.join(_varying(comps))} | baseline | seeds | P(improve), final [95% CI] "
            "| P(improve), whole curve [95% CI] |",
            "|" + "---|" * len(_varying(comps)) + "---|---:|---:|---:|",
        ]
        for c in comps:
            cell = " | ".join(_fmt_key(c, k) for k in _varying(comps))
            lines.append(
                f"| {cell} | {c['baseline']} | {c['n_tar']} vs {c['n_baseline']} "
                f"| {_fmt_ci(c['poi_final'], c['poi_final_low'], c['poi_final_high'], '.2f')} "
                f"| {_fmt_ci(c['poi_curve'], c['poi_curve_low'], c['poi_curve_high'], '.2f')} |"
            )
    agg, skipped = agg
    if agg:
        lines += [
            "",
            "## Across cells",
            "",
            "Final return normalised per cell to (x - first) / (dense - first), where first is the cell's mean first "
            "evaluation (after one chunk of training), so 0 is that and 1 is dense; IQM and mean over all runs of all "
            "cells with 95% stratified-bootstrap CIs (rliable).",
            "",
            "| method | cells | runs | IQM [95% CI] | mean [95% CI] |",
            "|---|---:|---:|---:|---:|",
        ]
        for a in agg:
            lines.append(
                f"| {a['method']} | {a['n_cells']} | {a['n_runs']} "
                f"| {_fmt_ci(a['iqm'], a['iqm_low'], a['iqm_high'], '.3f')} "
                f"| {_fmt_ci(a['mean'], a['mean_low'], a['mean_high'], '.3f')} |"
            )
    if skipped:
        lines += [
            "",
            "Left out of the normalised statistics (no dense runs, or dense no better than its first evaluation): "
            f"{'; '.join(skipped)}.",
        ]
    tar_rows = [r for r in rows if r["method"] == "tar"]
    if tar_rows:
        means = {(cell_of(r), r["method"]): r["mean"] for r in rows}
        lines += [
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
        by_setting: dict[tuple, list[dict]] = defaultdict(list)
        for r in tar_rows:
            by_setting[tuple(_sortable(v) for v in cell_of(r)[1:])].append(r)
        for _, members in sorted(by_setting.items()):
            for r in members:
                cell = " | ".join(_fmt_key(r, k) for k in keys if k != "env")
                warn = lambda flag, r=r: " (near-zero baseline)" if r[flag] else ""
                dst = r["dst_baseline"]
                lines.append(
                    f"| {cell} | {r['env']} | {_fmt_num(r['mean'])} | {_fmt_num(means.get((cell_of(r), 'static')))} "
                    f"| {_fmt_num(r['gain_vs_static_pct'], '+.1f', '%')}{warn('static_near_zero')} "
                    f"| {_fmt_num(means.get((cell_of(r), dst)))}{f' ({dst})' if dst else ''} "
                    f"| {_fmt_num(r['gain_vs_dst_pct'], '+.1f', '%')}{warn('dst_near_zero')} |"
                )
            m = members[0]
            if len(members) > 1:  # a median across envs
                cell = " | ".join(_fmt_key(m, k) for k in keys if k != "env")
                lines.append(
                    f"| {cell} | **median** | | | {_fmt_num(m['median_gain_vs_static_pct'], '+.1f', '%')} | "
                    f"| {_fmt_num(m['median_gain_vs_dst_pct'], '+.1f', '%')} |"
                )
    if topo:
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"
        lines += [
            "",
            "## What revival changed (seed 0)",
            "",
            "Moved: connections that sit in other layers than static's per-layer counts put them. Dead units: units "
            "with zero fan-in or zero fan-out, before revival, after it, and in static's mask. Reach: the smallest "
            "fraction of (input, output) pairs joined by an active path, over the network's chains (the actor, each "
            "twin critic).",
            "",
            f"| {' | '.join(_varying(topo))} | method | network | active per layer (static) | moved | dead units "
            "before -> after (static) | reach before -> after (static) |",
            "|" + "---|" * len(_varying(topo)) + "---|---|---|---:|---:|---:|",
        ]
        for t in topo:
            cell = " | ".join(_fmt_key(t, k) for k in _varying(topo))
            lines.append(
                f"| {cell} | {t['method']} | {t['network']} | {'/'.join(map(str, t['active']))} "
                f"({'/'.join(map(str, t['active_static']))}) | {t['moved']} "
                f"| {t['dead_before']} -> {t['dead_after']} ({t['dead_static']}) "
                f"| {fmt(t['reach_before'])} -> {fmt(t['reach_after'])} ({fmt(t['reach_static'])}) |"
            )
    return "\n".join(lines) + "\n"


def _wrap(title: str, width: int = 38) -> str:
    """A subplot title broken into lines that fit the panel."""
    import textwrap

    return "\n".join(textwrap.wrap(title, width))


def _color(method: str) -> str:
    return f"C{_method_key(method)[0] % 10}"


def _grid(n: int, max_cols: int, width: float, height: float) -> tuple[Figure, np.ndarray]:
    """A figure with ``n`` subplots in rows of at most ``max_cols`` (unused ones hidden)."""
    cols = min(n, max_cols)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes


def _save(fig: Figure, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(path, buf.getvalue())


def _plot_curves(runs: Sequence[dict], env: str, path: Path) -> None:
    """Mean eval return vs env steps per method with 95% CI bands, one subplot per algo x sparsity."""
    settings: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        if r["env"] == env and _status(r) == "ok":
            settings[cell_of(r)][r["method"]].append(r)
    if not settings:
        return
    fig, axes = _grid(len(settings), 3, 4.5, 3.3)
    for ax, (cell, methods) in zip(axes, sorted(settings.items(), key=lambda kv: tuple(map(_sortable, kv[0])))):
        for method in sorted(methods, key=_method_key):
            curves = [r["curve"] for r in sorted(methods[method], key=lambda r: r["seed"])]
            n = min(len(c) for c in curves)  # seeds of one group share their evaluation steps
            steps = [c["env_steps"] for c in curves[0][:n]]
            y = np.array([[c["eval_return"] for c in curve[:n]] for curve in curves], float)
            lo, hi = _bootstrap_ci(y)
            for seed_curve in y:  # every seed, faintly, beside the mean and its CI
                ax.plot(steps, seed_curve, color=_color(method), alpha=0.25, linewidth=0.6)
            ax.plot(steps, y.mean(axis=0), color=_color(method), label=f"{method} ({len(curves)})")
            ax.fill_between(steps, lo, hi, color=_color(method), alpha=0.2, linewidth=0)
        ax.set(xlabel="env steps", ylabel="eval return")
        ax.set_title(_wrap(_cell_name(dict(zip(CELL_KEYS, cell)))), fontsize="small")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))  # step counts overlap as plain integers
        ax.legend(fontsize="small")
    _save(fig, path)


def _plot_final_returns(rows: Sequence[dict], runs: Sequence[dict], path: Path) -> None:
    """Final return per method: every seed as a point, the mean with its 95% CI; one subplot per cell."""
    settings: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        settings[cell_of(r)].append(r)
    finals: dict[tuple, list[float]] = defaultdict(list)
    for cell, methods in _ok_runs_by_cell(runs).items():
        for method, rs in methods.items():
            finals[(cell, method)] = [final_return(r["curve"]) for r in rs]
    fig, axes = _grid(len(settings), 4, 3.8, 3.2)
    for ax, (cell, members) in zip(axes, sorted(settings.items(), key=lambda kv: tuple(map(_sortable, kv[0])))):
        members = [r for r in members if r["mean"] is not None]
        x = np.arange(len(members))
        means = np.array([r["mean"] for r in members])
        err = np.array([[r["mean"] - r["ci_low"], r["ci_high"] - r["mean"]] for r in members]).reshape(-1, 2).T
        colors = [_color(r["method"]) for r in members]
        ax.errorbar(x, means, yerr=err, fmt="none", ecolor="black", capsize=4, zorder=3)
        ax.scatter(x, means, marker="_", s=300, color=colors, zorder=3)
        for i, r in enumerate(members):
            seeds = finals.get((cell, r["method"]), [])
            jitter = np.linspace(-0.15, 0.15, len(seeds)) if len(seeds) > 1 else np.zeros(len(seeds))
            ax.scatter(i + jitter, seeds, s=12, color=colors[i], alpha=0.6, zorder=2)
        ax.set_xticks(x, [r["method"] for r in members], rotation=30, ha="right")
        ax.set(ylabel="final return")
        ax.set_title(_wrap(_cell_name(dict(zip(CELL_KEYS, cell)))), fontsize="small")
    _save(fig, path)


def _plot_topology(runs: Sequence[dict], env: str, path: Path) -> None:
    """Per-layer density and dead units (zero fan-in / fan-out) of seed-0 static vs TAR masks."""
    seed0 = {
        (cell_of(r), r["method"]): r.get("topology")
        for r in runs
        if r["env"] == env and r["seed"] == 0 and r["method"] in ("static", "tar")
    }
    pairs = sorted(
        (cell for cell, method in seed0 if method == "static" and seed0[(cell, "static")] and seed0.get((cell, "tar"))),
        key=lambda c: tuple(map(_sortable, c)),
    )
    if not pairs:
        return
    fig, axes = _grid(4 * len(pairs), 4, 4.0, 3.2)
    width = 0.4
    for i, cell in enumerate(pairs):
        for j, network in enumerate(NETWORKS):
            ax_density, ax_dead = axes[4 * i + 2 * j], axes[4 * i + 2 * j + 1]
            for k, method in enumerate(("static", "tar")):
                layers = seed0[(cell, method)][network]
                x = np.arange(len(layers)) + (k - 0.5) * width
                color = _color(method)
                ax_density.bar(x, [t["density"] for t in layers], width, color=color, label=method)
                fan_in = np.array([t["zero_fan_in"] for t in layers])
                fan_out = np.array([t["zero_fan_out"] for t in layers])
                ax_dead.bar(x, fan_in, width, color=color, label=f"{method} 0 fan-in")
                ax_dead.bar(
                    x, fan_out, width, bottom=fan_in, color=color, alpha=0.45, hatch="//", label=f"{method} 0 fan-out"
                )
            names = [t["name"].removesuffix("/kernel") for t in layers]
            for ax in (ax_density, ax_dead):
                ax.set_xticks(np.arange(len(names)), names, rotation=30, ha="right", fontsize="small")
            title = f"{_cell_name(dict(zip(CELL_KEYS[1:], cell[1:])))} {network}"
            ax_density.set(ylabel="active / size")
            ax_density.set_title(_wrap(f"{title}: density"), fontsize="small")
            ax_dead.set(ylabel="units")
            ax_dead.set_title(_wrap(f"{title}: dead units"), fontsize="small")
            ax_density.legend(fontsize="small")
            ax_dead.legend(fontsize="x-small")
    fig.suptitle(f"{env}: mask topology, seed 0")
    _save(fig, path)


def write_report(results_dir: str | Path) -> list[dict]:
    """Write ``summary.csv``, ``summary.md`` and ``figures/*.png`` of a results directory.

    Figures: ``curves_<env>.png`` (learning curves with 95% CI bands),
    ``final_returns.png`` (final return per method with CI error bars) and
    ``topology_<env>.png`` (seed-0 static vs TAR masks; only where both runs
    recorded their topology). Every file is written atomically, and the two
    summary files are byte-identical across calls on the same runs.

    Args:
      results_dir: a sweep's results directory.

    Returns:
      The summary rows (see :func:`summarize`).

    Raises:
      ValueError: if the directory holds no runs.
    """
    results_dir = Path(results_dir)
    runs = load_runs(results_dir)
    if not runs:
        raise ValueError(f"results directory {str(results_dir)!r} has no runs (no runs/*/run.json).")
    rows = _summarize_runs(runs)
    atomic_write_text(results_dir / "summary.csv", _summary_csv(rows))
    comps = comparisons(runs)
    atomic_write_text(results_dir / "summary.md", _summary_md(rows, comps, aggregate(runs), topology_changes(runs)))
    if comps:
        atomic_write_text(results_dir / "comparisons.csv", _summary_csv(comps, COMPARISON_COLUMNS))
    else:  # an earlier report's table would no longer match the runs
        (results_dir / "comparisons.csv").unlink(missing_ok=True)
    figures = results_dir / "figures"
    for env in sorted({r["env"] for r in runs}):
        _plot_curves(runs, env, figures / f"curves_{env}.png")
        _plot_topology(runs, env, figures / f"topology_{env}.png")
    _plot_final_returns(rows, runs, figures / "final_returns.png")
    return rows
