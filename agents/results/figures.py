"""The matplotlib figures of a sweep's results directory.

Learning curves per env, final returns per cell and the seed-0 mask topology
of static against TAR, each drawn on a headless Agg canvas (no pyplot state)
and written atomically as a PNG. The statistics behind them come from
:mod:`agents.results.stats`.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from agents.results import Run, atomic_write_bytes, stats


def _wrap(title: str, width: int = 38) -> str:
    """A subplot title broken into lines that fit the panel."""
    import textwrap

    return "\n".join(textwrap.wrap(title, width))


def _color(method: str) -> str:
    return f"C{stats.method_key(method)[0] % 10}"


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


def plot_curves(runs: Sequence[Run], env: str, path: Path) -> None:
    """Mean eval return vs env steps per method with 95% CI bands, one subplot per algo x sparsity."""
    settings: dict[tuple, dict[str, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        if r.env == env and stats.status(r) == "ok":
            settings[r.cell][r.method].append(r)
    if not settings:
        return
    fig, axes = _grid(len(settings), 3, 4.5, 3.3)
    for ax, (cell, methods) in zip(axes, sorted(settings.items(), key=lambda kv: tuple(map(stats.sortable, kv[0])))):
        for method in sorted(methods, key=stats.method_key):
            curves = [r.curve for r in sorted(methods[method], key=lambda r: r.seed)]
            n = min(len(c) for c in curves)  # seeds of one group share their evaluation steps
            steps = [c["env_steps"] for c in curves[0][:n]]
            y = np.array([[c["eval_return"] for c in curve[:n]] for curve in curves], float)
            lo, hi = stats.bootstrap_ci(y)
            for seed_curve in y:  # every seed, faintly, beside the mean and its CI
                ax.plot(steps, seed_curve, color=_color(method), alpha=0.25, linewidth=0.6)
            ax.plot(steps, y.mean(axis=0), color=_color(method), label=f"{method} ({len(curves)})")
            ax.fill_between(steps, lo, hi, color=_color(method), alpha=0.2, linewidth=0)
        ax.set(xlabel="env steps", ylabel="eval return")
        ax.set_title(_wrap(stats.cell_name(dict(zip(stats.CELL_KEYS, cell)))), fontsize="small")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))  # step counts overlap as plain integers
        ax.legend(fontsize="small")
    _save(fig, path)


def plot_final_returns(rows: Sequence[dict], runs: Sequence[Run], path: Path) -> None:
    """Final return per method: every seed as a point, the mean with its 95% CI; one subplot per cell."""
    settings: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        settings[stats.cell_of(r)].append(r)
    finals: dict[tuple, list[float]] = defaultdict(list)
    for cell, methods in stats.ok_runs_by_cell(runs).items():
        for method, rs in methods.items():
            finals[(cell, method)] = [stats.final_return(r.curve) for r in rs]
    fig, axes = _grid(len(settings), 4, 3.8, 3.2)
    for ax, (cell, members) in zip(axes, sorted(settings.items(), key=lambda kv: tuple(map(stats.sortable, kv[0])))):
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
        ax.set_title(_wrap(stats.cell_name(dict(zip(stats.CELL_KEYS, cell)))), fontsize="small")
    _save(fig, path)


def plot_topology(runs: Sequence[Run], env: str, path: Path) -> None:
    """Per-layer density and dead units (zero fan-in / fan-out) of the first seed's static vs TAR masks."""
    seed = stats.first_seed(runs)
    seed0 = {
        (r.cell, r.method): r.topology
        for r in runs
        if r.env == env and r.seed == seed and r.method in ("static", "tar")
    }
    pairs = sorted(
        (cell for cell, method in seed0 if method == "static" and seed0[(cell, "static")] and seed0.get((cell, "tar"))),
        key=lambda c: tuple(map(stats.sortable, c)),
    )
    if not pairs:
        return
    fig, axes = _grid(4 * len(pairs), 4, 4.0, 3.2)
    width = 0.4
    for i, cell in enumerate(pairs):
        for j, network in enumerate(stats.NETWORKS):
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
            title = f"{stats.cell_name(dict(zip(stats.CELL_KEYS[1:], cell[1:])))} {network}"
            ax_density.set(ylabel="active / size")
            ax_density.set_title(_wrap(f"{title}: density"), fontsize="small")
            ax_dead.set(ylabel="units")
            ax_dead.set_title(_wrap(f"{title}: dead units"), fontsize="small")
            ax_density.legend(fontsize="small")
            ax_dead.legend(fontsize="x-small")
    fig.suptitle(f"{env}: mask topology, seed {seed}")
    _save(fig, path)


DIAGNOSTICS = (("actor_dormant", "actor dormant units"), ("critic_dormant", "critic dormant units"))


def plot_diagnostics(runs: Sequence[Run], env: str, path: Path) -> None:
    """Per cell: dormant-unit fractions of actor and critic, and mask turnover per chunk, mean over seeds by method.

    Turnover is ``actor_changed + critic_changed``, the connections SET, RigL
    or GMP changed in the chunk (0 for fixed masks). Runs written before these
    metrics existed are left out.
    """
    settings: dict[tuple, dict[str, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        if r.env == env and stats.status(r) == "ok" and r.curve and "actor_dormant" in r.curve[0]:
            settings[r.cell][r.method].append(r)
    if not settings:
        return
    fig, axes = _grid(3 * len(settings), 3, 4.5, 3.0)
    ordered = sorted(settings.items(), key=lambda kv: tuple(map(stats.sortable, kv[0])))
    for row, (cell, methods) in enumerate(ordered):
        panels = axes[3 * row : 3 * row + 3]
        for method in sorted(methods, key=stats.method_key):
            curves = [r.curve for r in methods[method]]
            n = min(len(c) for c in curves)
            steps = [c["env_steps"] for c in curves[0][:n]]
            mean = lambda key, curves=curves, n=n: np.mean([[c.get(key, 0.0) for c in cv[:n]] for cv in curves], 0)
            for ax, (key, _) in zip(panels, DIAGNOSTICS):
                ax.plot(steps, mean(key), color=_color(method), label=method)
            changed = mean("actor_changed") + mean("critic_changed")
            panels[2].plot(steps, changed, color=_color(method), label=method)
        name = stats.cell_name(dict(zip(stats.CELL_KEYS, cell)))
        for ax, label in zip(panels, [label for _, label in DIAGNOSTICS] + ["connections changed per chunk"]):
            ax.set(xlabel="env steps", ylabel=label)
            ax.set_title(_wrap(name), fontsize="small")
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))
        panels[0].legend(fontsize="small")
    _save(fig, path)


def plot_performance_profiles(profiles: Sequence[dict], path: Path) -> None:
    """Performance profiles (:func:`agents.results.stats.performance_profiles`): one panel per group, a line per
    method with its 95% CI band; 0 on the x axis is the first evaluation, 1 is dense."""
    panels: dict[tuple, list[dict]] = defaultdict(list)
    for p in profiles:
        panels[(p["by"], p["group"])].append(p)
    fig, axes = _grid(len(panels), 4, 3.8, 3.2)
    for ax, ((by, group), members) in zip(axes, panels.items()):
        for p in members:
            ax.plot(p["taus"], p["fraction"], color=_color(p["method"]), label=p["method"])
            ax.fill_between(p["taus"], p["low"], p["high"], color=_color(p["method"]), alpha=0.15, linewidth=0)
        ax.axvline(1.0, color="grey", linewidth=0.8, linestyle=":")
        ax.set(xlabel="normalised final return (0: first evaluation, 1: dense)", ylabel="fraction of runs above")
        ax.set_ylim(-0.02, 1.02)
        cells = max(p["n_cells"] for p in members)
        ax.set_title(_wrap(f"{by} {group} ({cells} cell{'s' if cells > 1 else ''})"), fontsize="small")
        ax.legend(fontsize="x-small")
    _save(fig, path)


# What a scaling panel's lines are drawn over: the width, the sparsity and the body vary within a panel.
_SCALING_AXES = ("hidden", "sparsity", "network")
_NETWORK_STYLE = {None: "-", "mlp": "-", "simba": "--", "mlp_ln": ":", "mlp_ln_critic": "-."}


def scaling_points(runs: Sequence[Run]) -> dict[tuple, dict[tuple, list[tuple[list[int], list[float]]]]]:
    """What :func:`plot_scaling` draws: per panel (the cell without width, sparsity and network) and line
    (network, method), one ``(active parameters, final returns)`` pair of seed lists per (width, sparsity),
    in order of mean active parameters. Runs written as copies of another cell's (``same_as``) count once."""
    panels: dict[tuple, dict[tuple, dict[tuple, list[Run]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for r in runs:
        if stats.status(r) != "ok" or r.same_as is not None:
            continue
        cell = dict(zip(stats.CELL_KEYS, r.cell))
        panel = tuple(v for k, v in cell.items() if k not in _SCALING_AXES)
        panels[panel][(r.network, r.method)][(r.hidden_label, r.sparsity)].append(r)
    out = {}
    for panel, lines in panels.items():
        out[panel] = {}
        for line, settings in lines.items():
            seeds = [
                ([stats.active_params(r) for r in rs], [stats.final_return(r.curve) for r in rs])
                for rs in settings.values()
            ]
            out[panel][line] = sorted(seeds, key=lambda xy: float(np.mean(xy[0])))
    return out


def plot_scaling(runs: Sequence[Run], path: Path) -> None:
    """Final return against active parameters (log scale): a line per (network, method) through the means of
    its (width, sparsity) settings, every seed as a point; one panel per cell without width, sparsity and
    network (:func:`scaling_points`)."""
    panels = scaling_points(runs)
    if not panels:
        return
    fig, axes = _grid(len(panels), 2, 6.0, 4.2)
    for ax, (panel, lines) in zip(axes, sorted(panels.items(), key=lambda kv: tuple(map(stats.sortable, kv[0])))):
        for (network, method), settings in sorted(
            lines.items(), key=lambda kv: (str(kv[0][0]), stats.method_key(kv[0][1]))
        ):
            for x, y in settings:
                ax.scatter(x, y, s=10, color=_color(method), alpha=0.45, linewidths=0)
            means = [(float(np.mean(x)), float(np.mean(y))) for x, y in settings]
            ax.plot(*zip(*means), _NETWORK_STYLE.get(network, "-"), color=_color(method), marker="o",
                    markersize=3, label=f"{network or 'mlp'} {method}")  # fmt: skip
        ax.set_xscale("log")
        ax.set(xlabel="active parameters (actor + critics)", ylabel="final return")
        keys = [k for k in stats.CELL_KEYS if k not in _SCALING_AXES]
        ax.set_title(_wrap(stats.cell_name(dict(zip(keys, panel)), keys), 60), fontsize="small")
        ax.legend(fontsize="x-small", ncol=2)
    _save(fig, path)
