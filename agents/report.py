"""Summary table, TAR gains, FLOPs and figures of a sweep's results directory.

Reads ``DIR/runs/*/run.json`` and ``curve.jsonl`` (layout in :mod:`agents.results`)
and writes ``DIR/summary.csv``, ``DIR/summary.md`` and ``DIR/figures/*.png``.

Statistics, per (env, algo, sparsity, method) group of seeds:

- final return of a run: mean ``eval_return`` over its last 10% of evaluations
  (at least one);
- a run is *diverged* if its ``diverged`` flag is set or its final return is not
  finite, and *unfinished* if it has fewer chunks than planned; both are left
  out of the mean, IQM and CI, and counted in ``n_diverged`` / ``n_unfinished``;
- IQM: the 25%-trimmed mean (Agarwal et al. 2021);
- 95% CI of the mean: percentile bootstrap over seeds with a fixed generator,
  so a report is reproducible. Percentile rather than BCa because BCa is
  undefined for the 2-5 seeds of a typical sweep whenever resamples tie;
  with one seed, or all seeds equal, the CI is ``(mean, mean)``;
- TAR's gain over a baseline: ``100 * (tar - base) / |base|`` in %, against
  ``static`` and against the better (higher mean) of ``set`` / ``rigl`` among
  those present; ``None`` when a baseline is missing or zero. The median of
  those gains across envs is given per (algo, sparsity).

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

GROUP_KEYS = ("env", "algo", "sparsity", "method")
COLUMNS = GROUP_KEYS + (
    "n_seeds",
    "n_diverged",
    "n_unfinished",
    "mean",
    "iqm",
    "ci_low",
    "ci_high",
    "active_params",
    "param_fraction",
    "train_flops",
    "inference_flops",
    "gain_vs_static_pct",
    "gain_vs_dst_pct",
    "dst_baseline",
    "median_gain_vs_static_pct",
    "median_gain_vs_dst_pct",
)
NETWORKS = ("actor", "critic")
BOOTSTRAP_SEED = 0
N_RESAMPLES = 9999


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
        missing = [k for k in (*GROUP_KEYS, "seed", "params") if k not in run]
        if missing:
            raise ValueError(f"{path} lacks the fields {', '.join(missing)}.")
        curve_path = path.with_name("curve.jsonl")
        run["curve"] = read_jsonl(curve_path) if curve_path.exists() else []
        runs.append(run)
    return runs


def _method_key(method: str) -> tuple[int, str]:
    """Sort methods in the order of ``agents.config.METHODS``, unknown ones last."""
    return (METHODS.index(method) if method in METHODS else len(METHODS), method)


def _group_key(row: dict) -> tuple:
    return (row["env"], row["algo"], float(row["sparsity"]), _method_key(row["method"]))


def _status(run: dict) -> str:
    """``"ok"``, ``"diverged"`` or ``"unfinished"``."""
    if run.get("diverged"):
        return "diverged"
    if not run["curve"] or run.get("chunks_done", 0) < run.get("total_chunks", 0):
        return "unfinished"
    return "ok" if math.isfinite(final_return(run["curve"])) else "diverged"


def _gain(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return 100.0 * (value - base) / abs(base)


def tar_gains(rows: Sequence[dict]) -> list[dict]:
    """TAR's gain in % over static and over the better of SET/RigL, per env x algo x sparsity.

    Args:
      rows: summary rows with at least ``env, algo, sparsity, method, mean``.

    Returns:
      One dict per (env, algo, sparsity) with a TAR row: ``env, algo, sparsity,
      gain_vs_static_pct, gain_vs_dst_pct, dst_baseline`` (``set``, ``rigl`` or
      ``None``), ``median_gain_vs_static_pct, median_gain_vs_dst_pct`` (medians
      over the envs of that algo x sparsity; ``None`` if no env has the gain).
    """
    means: dict[tuple, dict[str, float | None]] = defaultdict(dict)
    for r in rows:
        means[(r["env"], r["algo"], float(r["sparsity"]))][r["method"]] = r["mean"]
    gains = []
    for (env, algo, sparsity), m in sorted(means.items()):
        if "tar" not in m:
            continue
        dst = [(m[k], k) for k in ("set", "rigl") if m.get(k) is not None]
        best, name = max(dst) if dst else (None, None)
        gains.append(
            {
                "env": env,
                "algo": algo,
                "sparsity": sparsity,
                "gain_vs_static_pct": _gain(m["tar"], m.get("static")),
                "gain_vs_dst_pct": _gain(m["tar"], best),
                "dst_baseline": name,
            }
        )
    for g in gains:
        peers = [h for h in gains if (h["algo"], h["sparsity"]) == (g["algo"], g["sparsity"])]
        for col in ("gain_vs_static_pct", "gain_vs_dst_pct"):
            vals = [h[col] for h in peers if h[col] is not None]
            g[f"median_{col}"] = statistics.median(vals) if vals else None
    return gains


def _summarize_runs(runs: Sequence[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for run in runs:
        groups[tuple(run[k] for k in GROUP_KEYS)].append(run)
    rows = []
    for key, members in groups.items():
        status = [_status(r) for r in members]
        finals = [final_return(r["curve"]) for r, s in zip(members, status) if s == "ok"]
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
                "sparsity": float(key[2]),
                "n_seeds": len(members),
                "n_diverged": status.count("diverged"),
                "n_unfinished": status.count("unfinished"),
                **seed_stats(finals),
                # Counts can differ across seeds (global pruning); report the seed average.
                "active_params": int(round(float(np.mean(active)))),
                "param_fraction": float(np.mean(np.divide(active, total))),
                "train_flops": float(np.mean([f[0] for f in flops])),
                "inference_flops": float(np.mean([f[1] for f in flops])),
            }
        )
    rows.sort(key=_group_key)
    gains = {(g["env"], g["algo"], g["sparsity"]): g for g in tar_gains(rows)}
    for row in rows:
        g = gains.get((row["env"], row["algo"], row["sparsity"])) if row["method"] == "tar" else None
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


def _fmt_csv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _summary_csv(rows: Sequence[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([_fmt_csv(r[c]) for c in COLUMNS] for r in rows)
    return buf.getvalue()


def _fmt_num(value: float | None, spec: str = ".1f", suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def _summary_md(rows: Sequence[dict]) -> str:
    lines = [
        "# Sweep summary",
        "",
        "Final return: mean evaluation return over the last 10% of evaluations of a run. "
        "Mean and 95% percentile-bootstrap CI over seeds, IQM = 25%-trimmed mean; diverged and unfinished "
        "runs are left out. Params: active parameters of actor + critics (fraction of dense). "
        "FLOPs: training and inference cost relative to dense (model in `agents.report`).",
        "",
        "| env | algo | sparsity | method | return mean [95% CI] | IQM | params | train FLOPs | inference FLOPs "
        "| seeds | diverged |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ret = "n/a" if r["mean"] is None else f"{r['mean']:.1f} [{r['ci_low']:.1f}, {r['ci_high']:.1f}]"
        seeds = str(r["n_seeds"]) + (f" ({r['n_unfinished']} unfinished)" if r["n_unfinished"] else "")
        lines.append(
            f"| {r['env']} | {r['algo']} | {r['sparsity']:g} | {r['method']} | {ret} | {_fmt_num(r['iqm'])} "
            f"| {r['active_params']:,} ({r['param_fraction']:.3f}) | {r['train_flops']:.3f} "
            f"| {r['inference_flops']:.3f} | {seeds} | {r['n_diverged']} |"
        )
    tar_rows = [r for r in rows if r["method"] == "tar"]
    if tar_rows:
        lines += [
            "",
            "## TAR gains",
            "",
            "Gain of TAR's mean final return in % of |baseline|, over static and over the better of SET/RigL; "
            "the median is across envs.",
            "",
            "| algo | sparsity | env | vs static | vs best of SET/RigL |",
            "|---|---:|---|---:|---:|",
        ]
        by_setting: dict[tuple, list[dict]] = defaultdict(list)
        for r in tar_rows:
            by_setting[(r["algo"], r["sparsity"])].append(r)
        for (algo, sparsity), members in sorted(by_setting.items()):
            for r in members:
                dst = f" ({r['dst_baseline']})" if r["dst_baseline"] else ""
                lines.append(
                    f"| {algo} | {sparsity:g} | {r['env']} | {_fmt_num(r['gain_vs_static_pct'], '+.1f', '%')} "
                    f"| {_fmt_num(r['gain_vs_dst_pct'], '+.1f', '%')}{dst} |"
                )
            m = members[0]
            lines.append(
                f"| {algo} | {sparsity:g} | **median** | {_fmt_num(m['median_gain_vs_static_pct'], '+.1f', '%')} "
                f"| {_fmt_num(m['median_gain_vs_dst_pct'], '+.1f', '%')} |"
            )
    return "\n".join(lines) + "\n"


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
            settings[(r["algo"], float(r["sparsity"]))][r["method"]].append(r)
    if not settings:
        return
    fig, axes = _grid(len(settings), 3, 4.5, 3.3)
    for ax, ((algo, sparsity), methods) in zip(axes, sorted(settings.items())):
        for method in sorted(methods, key=_method_key):
            curves = [r["curve"] for r in sorted(methods[method], key=lambda r: r["seed"])]
            n = min(len(c) for c in curves)  # seeds of one group share their evaluation steps
            steps = [c["env_steps"] for c in curves[0][:n]]
            y = np.array([[c["eval_return"] for c in curve[:n]] for curve in curves], float)
            lo, hi = _bootstrap_ci(y)
            ax.plot(steps, y.mean(axis=0), color=_color(method), label=f"{method} ({len(curves)})")
            ax.fill_between(steps, lo, hi, color=_color(method), alpha=0.2, linewidth=0)
        ax.set(title=f"{env} {algo} sparsity {sparsity:g}", xlabel="env steps", ylabel="eval return")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))  # step counts overlap as plain integers
        ax.legend(fontsize="small")
    _save(fig, path)


def _plot_final_returns(rows: Sequence[dict], path: Path) -> None:
    """Final return per method with 95% CI error bars, one subplot per env x algo x sparsity."""
    settings: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        settings[(r["env"], r["algo"], r["sparsity"])].append(r)
    fig, axes = _grid(len(settings), 4, 3.8, 3.2)
    for ax, ((env, algo, sparsity), members) in zip(axes, sorted(settings.items())):
        members = [r for r in members if r["mean"] is not None]
        x = np.arange(len(members))
        means = np.array([r["mean"] for r in members])
        err = np.array([[r["mean"] - r["ci_low"], r["ci_high"] - r["mean"]] for r in members]).reshape(-1, 2).T
        ax.bar(x, means, yerr=err, capsize=3, color=[_color(r["method"]) for r in members])
        ax.set_xticks(x, [r["method"] for r in members], rotation=30, ha="right")
        ax.set(title=f"{env} {algo} sparsity {sparsity:g}", ylabel="final return")
    _save(fig, path)


def _plot_topology(runs: Sequence[dict], env: str, path: Path) -> None:
    """Per-layer density and dead units (zero fan-in / fan-out) of seed-0 static vs TAR masks."""
    seed0 = {
        (r["algo"], float(r["sparsity"]), r["method"]): r.get("topology")
        for r in runs
        if r["env"] == env and r["seed"] == 0 and r["method"] in ("static", "tar")
    }
    pairs = sorted(
        (algo, sparsity)
        for algo, sparsity, method in seed0
        if method == "static" and seed0[(algo, sparsity, "static")] and seed0.get((algo, sparsity, "tar"))
    )
    if not pairs:
        return
    fig, axes = _grid(4 * len(pairs), 4, 4.0, 3.2)
    width = 0.4
    for i, (algo, sparsity) in enumerate(pairs):
        for j, network in enumerate(NETWORKS):
            ax_density, ax_dead = axes[4 * i + 2 * j], axes[4 * i + 2 * j + 1]
            for k, method in enumerate(("static", "tar")):
                layers = seed0[(algo, sparsity, method)][network]
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
            title = f"{algo} s{sparsity:g} {network}"
            ax_density.set(title=f"{title}: density", ylabel="active / size")
            ax_dead.set(title=f"{title}: dead units", ylabel="units")
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
    atomic_write_text(results_dir / "summary.md", _summary_md(rows))
    figures = results_dir / "figures"
    for env in sorted({r["env"] for r in runs}):
        _plot_curves(runs, env, figures / f"curves_{env}.png")
        _plot_topology(runs, env, figures / f"topology_{env}.png")
    _plot_final_returns(rows, figures / "final_returns.png")
    return rows
