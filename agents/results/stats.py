"""The statistics of a sweep's runs: returns, seed statistics, FLOPs, TAR's gains and comparisons.

Pure functions from runs (:class:`agents.results.Run`, as :func:`agents.experiments.report.load_runs` gives them) or
summary rows to numbers and dicts, with no drawing and no file writing, plus
the helpers that group, sort and name runs by cell, which the table, figure and
report modules share. Every bootstrap uses a fixed generator, so the same runs
give the same statistics.

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
  ``static`` and against the better (higher mean) of the dynamic sparse
  training methods present (every registered method whose mask rule regrows:
  ``set``, ``rigl`` and any registered with such a rule); ``None`` when a
  baseline is missing or zero, and flagged (``static_near_zero``,
  ``dst_near_zero``) when ``|base|`` is under 5% of the largest ``|mean|``
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
  Beside them, TAR's probability of improvement over each method, averaged over
  the cells that hold both (rliable's across-task probability of improvement),
  with a 95% stratified-bootstrap CI.

FLOPs model (ratios to the dense network, so per-weight constants cancel).
Per network ``n`` (actor, critic = both twin critics) let ``D_n`` be all its
parameters and ``N_n = D_n - prunable_n + active_n`` the ones a sparse forward
touches (active prunable weights plus biases and other non-prunable ones). A
forward costs ``~ N_n``, a backward ``~ 2 N_n`` (activations and weights).

- inference (one actor forward): ``N_actor / D_actor``;
- training, per gradient update: ``F_S = sum_n w_n N_n`` against
  ``F_D = sum_n w_n D_n`` for dense, with each network's weight ``w_n`` from
  its algorithm (``AlgorithmSpec.flops_per_update``). For the actor-critic
  algorithms (SAC, TD3: :data:`ACTOR_CRITIC_FLOPS`) a forward + backward of
  actor and critic plus a forward of the target critic gives ``w_actor = 3``,
  ``w_critic = 4``;
- RigL (any method whose rule reads the dense gradient) computes a dense
  weight gradient at each mask update, which costs ``D_n - N_n`` more than
  the sparse one (Evci et al. 2020, appendix H). Over
  ``T`` updates there are ``M = floor((t_end - 1) / delta_t)`` mask updates with
  ``t_end = floor(end_fraction * T)``, so RigL's training ratio is
  ``(T F_S + M sum_n (D_n - N_n)) / (T F_D)``; SET's random regrowth is
  negligible.

- an ensemble method (EauDeSAC, ``members`` online critics) trains every
  member each update: the critic's weight becomes ``3 * members + 1`` (each
  member forward and backward, the target forward), every member counted at
  the target critic's density, averaged over the densities the curve records
  at the end of each chunk (:func:`ensemble_flops`); its active counts are
  those of its last chunk (:func:`final_params`), since its sparsity is chosen
  during the run. Such ratios can exceed 1.

The model ignores TD3's delayed actor updates and the actor forwards inside
the critic target, and counts the active weights of the initial masks.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

import sparse_jax as sj
from agents.results import CELL_KEYS, Run, sparsity_label
from sparse_jax.validation import check_choice, check_int

NETWORKS = ("actor", "critic")
ACTOR_CRITIC_FLOPS: dict[str, int] = {"actor": 3, "critic": 4}
"""Each network's FLOPs in one SAC or TD3 gradient update, in forwards of it (see the module docstring)."""
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


def bootstrap_ci(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile-bootstrap CI of the mean over axis 0 (seeds); ``(mean, mean)`` below two seeds."""
    values = np.asarray(values, float)
    mean = values.mean(axis=0)
    if values.shape[0] < 2:
        return mean, mean
    res = scipy_stats.bootstrap(
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
    lo, hi = bootstrap_ci(x)
    return {
        "mean": float(x.mean()),
        "iqm": float(scipy_stats.trim_mean(x, 0.25)),
        "ci_low": float(lo),
        "ci_high": float(hi),
    }


def network_counts(params: dict, network: str) -> tuple[int, int]:
    """``(N, D)``: parameters a sparse pass touches, and all parameters of the dense network it is
    measured against: its own, or ``dense_total`` where the run trained a narrower dense network
    than its cell's (``small_dense``).

    >>> network_counts({"actor": {"active": 10, "prunable": 100, "total": 120}}, "actor")
    (30, 120)
    >>> network_counts({"actor": {"active": 50, "prunable": 50, "total": 60, "dense_total": 600}}, "actor")
    (60, 600)
    """
    p = params[network]
    return p["total"] - p["prunable"] + p["active"], p.get("dense_total", p["total"])


def _gmp_pruned_share(total_updates: int, delta_t: int, start_fraction: float, end_fraction: float) -> float:
    """Mean over GMP's updates of the share of its final pruning already done (0 while dense, 1 at the end)."""
    schedule = sj.GMPSchedule(total_updates, 0.5, start_fraction, end_fraction, delta_t)
    steps = [*schedule.update_steps(), total_updates + 1]
    # The masks after update step u hold until the next one: piecewise constant between update steps.
    done = sum((min(b, total_updates + 1) - a) * schedule.sparsity_at(a) / 0.5 for a, b in zip(steps, steps[1:]))
    return done / total_updates


def relative_flops(
    params: dict,
    method: str,
    total_updates: int = 0,
    delta_t: int = 1,
    end_fraction: float = 0.0,
    start_fraction: float = 0.0,
    flops_per_update: dict[str, float] | None = None,
) -> tuple[float, float]:
    """Training and inference FLOPs of one run relative to dense (model in the module docstring).

    Args:
      params: ``run.json``'s ``params``: ``{"actor": {"active", "prunable", "total"}, "critic": {...}}``.
      method: a registered sparse method (``sparse_jax.METHODS``). One whose rule reads the dense
        gradient (``rigl``) adds that cost at its mask updates, and a dense-to-sparse one (``gmp``,
        GMP's cubic schedule) trains dense until it starts pruning (``params`` holds its final counts).
      total_updates: gradient updates in the run (RigL, GMP).
      delta_t: updates between mask updates (RigL, GMP).
      end_fraction: fraction of the updates after which masks stop changing (RigL, GMP).
      start_fraction: fraction of the updates GMP trains dense (GMP only).
      flops_per_update: each network's FLOPs in one gradient update, in forwards of it (its
        algorithm's ``AlgorithmSpec.flops_per_update``); ``None`` for :data:`ACTOR_CRITIC_FLOPS`.
        Inference is one forward of ``"actor"``.

    Returns:
      ``(train, inference)`` FLOPs as fractions of the dense network's.

    >>> net = lambda active, size: {"active": active, "prunable": size, "total": size}
    >>> relative_flops({"actor": net(10, 100), "critic": net(20, 200)}, "static")
    (0.1, 0.1)
    >>> relative_flops({"actor": net(10, 100), "critic": net(20, 200)}, "gmp", 10, 1, 0.1, 0.1)  # pruned at once
    (0.1, 0.1)
    """
    weights = ACTOR_CRITIC_FLOPS if flops_per_update is None else flops_per_update
    if "actor" not in weights or any(not (isinstance(w, int | float) and w > 0) for w in weights.values()):
        raise ValueError(f"flops_per_update={weights!r} must give 'actor' and every network a weight > 0.")
    for network in weights:
        p = params.get(network, {})
        if not {"active", "prunable", "total"} <= p.keys():
            raise ValueError(f"params[{network!r}]={p!r} needs the keys active, prunable and total.")
        if not 0 <= p["active"] <= p["prunable"] <= p["total"] or p["total"] <= 0:
            raise ValueError(f"params[{network!r}]={p!r} must satisfy 0 <= active <= prunable <= total, total > 0.")
    counts = {n: network_counts(params, n) for n in weights}
    sparse = sum(w * counts[n][0] for n, w in weights.items())
    dense = sum(w * counts[n][1] for n, w in weights.items())
    train = sparse / dense
    facts = _method(method)
    if facts.dense_to_sparse and total_updates > 0:
        # Between the dense start and the final masks, every pruned weight still costs its FLOPs.
        train += (1.0 - train) * (1.0 - _gmp_pruned_share(total_updates, delta_t, start_fraction, end_fraction))
    if facts.needs_dense_grad and total_updates > 0:
        check_int("delta_t", delta_t, minimum=1)
        # Same mask-update steps as sparse_jax.DSTSchedule.is_update_step: t % delta_t == 0 for 0 < t < t_end.
        t_end = int(math.floor(end_fraction * total_updates + 1e-9))
        mask_updates = max(t_end - 1, 0) // delta_t
        train += mask_updates * sum(d - n for n, d in counts.values()) / (total_updates * dense)
    n_actor, d_actor = counts["actor"]
    return train, n_actor / d_actor


def final_params(run: Run) -> dict:
    """A run's parameter counts at its end (``run.json``'s ``params`` layout).

    ``run.json`` is written before training, so for an ensemble method
    (``eaudesac``), whose sparsity is chosen during the run, it holds the
    ceiling; its active counts come from the densities of its last curve row
    instead (``round(density * prunable)``). Every other method's are ``run.json``'s.
    """
    if run.method not in sj.METHODS or not sj.METHODS[run.method].ensemble or not run.curve:
        return run.params
    last = run.curve[-1]
    out = {}
    for net, p in run.params.items():
        d = last.get(f"{net}_density")
        out[net] = p if d is None else {**p, "active": int(round(float(d) * p["prunable"]))}
    return out


def ensemble_flops(
    params: dict, curve: Sequence[dict], members: int, flops_per_update: dict[str, float] | None = None
) -> tuple[float, float]:
    """EauDe's training and inference FLOPs relative to its dense algorithm (``run_flops`` for other methods).

    Per update it trains ``members`` online critics (forward and backward, ``w_critic - 1``
    forwards each) and runs the target critic forward once, where the dense
    algorithm trains one critic; every member is counted at the target's
    density (members are as sparse or sparser, so this bounds the cost from
    above). Densities are those at the end of each chunk of ``curve``, the
    training cost is their mean over chunks; inference is the final actor's.

    >>> net = lambda size: {"active": size, "prunable": size, "total": size}
    >>> dense = [{"actor_density": 1.0, "critic_density": 1.0}]  # 5 dense members: (3*100 + 16*200) / (3*100 + 4*200)
    >>> ensemble_flops({"actor": net(100), "critic": net(200)}, dense, 5)
    (3.1818181818181817, 1.0)
    >>> ensemble_flops({"actor": net(100), "critic": net(200)}, [{"actor_density": 0.5, "critic_density": 0.25}], 5)
    (0.8636363636363636, 0.5)
    """
    weights = dict(ACTOR_CRITIC_FLOPS if flops_per_update is None else flops_per_update)
    check_int("members", members, minimum=1)
    dense = sum(w * network_counts(params, n)[1] for n, w in weights.items())
    scaled = {n: (w - 1) * members + 1 if n == "critic" else w for n, w in weights.items()}

    def cost(row: dict) -> float:
        total = 0.0
        for n, w in scaled.items():
            p = params[n]
            active = float(row.get(f"{n}_density", p["active"] / p["prunable"])) * p["prunable"]
            total += w * (p["total"] - p["prunable"] + active)
        return total

    rows = list(curve) or [{}]
    p = params["actor"]
    inference = (p["total"] - p["prunable"] + float(rows[-1].get("actor_density", 1.0)) * p["prunable"]) / p["total"]
    return float(np.mean([cost(r) for r in rows])) / dense, inference


def run_flops(run: Run, flops_per_update: dict[str, float] | None = None) -> tuple[float, float]:
    """A run's ``(train, inference)`` FLOPs relative to dense: :func:`ensemble_flops` for an ensemble method,
    else :func:`relative_flops` with the run's schedule."""
    method = _method(run.method)
    if method.ensemble:
        members = int((run.config or {}).get("eaude", {}).get("members", 5))
        return ensemble_flops(run.params, run.curve, members, flops_per_update)
    return relative_flops(
        run.params,
        run.method,
        int(run.total_updates),
        int(run.delta_t),
        float(run.end_fraction),
        float(run.start_fraction),
        flops_per_update,
    )


def _method(name: str) -> sj.SparseMethod:
    """The registered method ``name``: its facts decide the FLOPs model."""
    if name not in sj.METHODS:
        raise ValueError(
            f"method {name!r} is not registered, so its FLOPs are unknown; import the code that registers it "
            "(sparse_jax.register_method) before reporting, or report from the script that ran the sweep."
        )
    return sj.METHODS[name]


def active_params(run: Run) -> int:
    """The active parameters of a run's networks at its end (:func:`final_params`)."""
    params = final_params(run)
    return sum(network_counts(params, n)[0] for n in NETWORKS)


def cell_of(row: dict) -> tuple:
    """The cell (:data:`CELL_KEYS`) of a summary row (a run's is :attr:`agents.results.RunRecord.cell`)."""
    return tuple(row.get(k) for k in CELL_KEYS)


def method_key(method: str) -> tuple[int, str]:
    """Sort methods in the order of ``sparse_jax.METHODS`` (built-ins, then those registered), unknown ones last."""
    order = list(sj.METHODS)
    return (order.index(method) if method in order else len(order), method)


def sortable(value: Any) -> tuple:
    """A sort key for a cell value that puts ``None`` (an axis the run leaves unset) before any value."""
    return (value is not None, value if value is not None else 0)


def status(run: Run) -> str:
    """A run's status: ``"ok"``, ``"diverged"`` or ``"unfinished"`` (as defined in the module docstring)."""
    if run.diverged:
        return "diverged"
    if not run.curve or run.chunks_done < run.total_chunks:
        return "unfinished"
    finite = all(math.isfinite(float(c["eval_return"])) for c in run.curve)
    return "ok" if finite else "diverged"


def cell_name(row: dict, keys: Sequence[str] = CELL_KEYS) -> str:
    """A short readable name of a cell, e.g. ``hopper sac s0.9 snip uniform``."""
    parts = []
    for k in keys:
        v = row.get(k)
        if v is None:
            continue
        if k == "sparsity":
            parts.append(f"s{sparsity_label(v)}")
        elif k in ("rho", "phi"):
            parts.append(f"{k} {sparsity_label(v)}")
        elif k == "redo":
            parts.append(f"ReDo every {v}")
        elif k == "hyper":
            parts.append(v.replace(",", " "))
        elif k == "hidden":
            parts.append(f"{v} units")
        else:
            parts.append(str(v))
    return " ".join(parts)


def _gain(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return 100.0 * (value - base) / abs(base)


def tar_gains(rows: Sequence[dict]) -> list[dict]:
    """TAR's gain in % over static and over the best dynamic sparse training method (SET, RigL, ...), per cell.

    Args:
      rows: summary rows with at least ``env, algo, sparsity, method, mean``
        (and the other :data:`CELL_KEYS` where the sweep sets them).

    Returns:
      One dict per cell with a TAR row: the cell keys, ``gain_vs_static_pct,
      gain_vs_dst_pct, dst_baseline`` (``set``, ``rigl``, another method whose rule regrows, or ``None``),
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
    for cell, m in sorted(means.items(), key=lambda kv: tuple(sortable(v) for v in kv[0])):
        if "tar" not in m:
            continue
        dst = [(v, k) for k, v in m.items() if v is not None and k in sj.METHODS and sj.METHODS[k].grows]
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


def ok_runs_by_cell(runs: Sequence[Run]) -> dict[tuple, dict[str, list[Run]]]:
    """Finished, finite runs grouped by cell, then method, each list sorted by seed."""
    cells: dict[tuple, dict[str, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for r in sorted(runs, key=lambda r: r.seed):
        if status(r) == "ok":
            cells[r.cell][r.method].append(r)
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


def _poi_tasks(x: np.ndarray, y: np.ndarray) -> float:
    """:func:`_poi_one_task` averaged over the tasks (columns), as rliable's ``probability_of_improvement``."""
    return float(np.mean([_poi_one_task(x[:, [j]], y[:, [j]]) for j in range(x.shape[1])]))


def probability_of_improvement(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, float]:
    """``P(X > Y) + P(X = Y) / 2`` over pairs of seeds, with a 95% stratified-bootstrap CI (rliable).

    >>> probability_of_improvement([3.0, 4.0], [1.0, 2.0])[0]
    1.0
    """
    x, y = np.asarray(x, float)[:, None], np.asarray(y, float)[:, None]
    point, ci = _interval_estimates({"pair": (x, y)}, _poi_one_task)
    lo, hi = np.asarray(ci["pair"]).ravel()[:2]
    return float(point["pair"]), float(lo), float(hi)


def comparisons(runs: Sequence[Run]) -> list[dict]:
    """TAR against every other method of its cell: probability of improvement on final and whole-curve return.

    Returns:
      One dict per (cell, baseline) with the keys :data:`agents.results.tables.COMPARISON_COLUMNS`;
      cells where TAR or the baseline has fewer than two finished runs are left out.
    """
    out = []
    for cell, methods in sorted(ok_runs_by_cell(runs).items(), key=lambda kv: tuple(sortable(v) for v in kv[0])):
        tar = methods.get("tar", [])
        if len(tar) < 2:
            continue
        for base in sorted((m for m in methods if m != "tar"), key=method_key):
            other = methods[base]
            if len(other) < 2:
                continue
            row = {**dict(zip(CELL_KEYS, cell)), "baseline": base, "n_tar": len(tar), "n_baseline": len(other)}
            # Methods compared at one sparsity can end with different parameter counts (dense, an ensemble
            # method's adaptive sparsity, additive revival): the ratio says so beside the comparison.
            row["params_ratio"] = float(np.mean([active_params(r) for r in other])) / float(
                np.mean([active_params(r) for r in tar])
            )
            for name, stat in (("final", final_return), ("curve", curve_mean)):
                p, lo, hi = probability_of_improvement([stat(r.curve) for r in tar], [stat(r.curve) for r in other])
                row.update({f"poi_{name}": p, f"poi_{name}_low": lo, f"poi_{name}_high": hi})
            out.append(row)
    return out


def normalised_scores(runs: Sequence[Run]) -> tuple[dict[tuple, dict[str, np.ndarray]], list[str]]:
    """Per cell (sorted) and method, the seeds' final returns normalised to ``(x - u) / (d - u)`` (module docs).

    Returns:
      ``(per_cell, skipped)``: the normalised scores of every cell with dense runs that beat the
      first evaluation, and the names of the cells left out.
    """
    per_cell: dict[tuple, dict[str, np.ndarray]] = {}
    skipped = []
    for cell, methods in sorted(ok_runs_by_cell(runs).items(), key=lambda kv: tuple(sortable(v) for v in kv[0])):
        every = [r for rs in methods.values() for r in rs]
        untrained = float(np.mean([float(r.curve[0]["eval_return"]) for r in every]))
        dense = [final_return(r.curve) for r in methods.get("dense", [])]
        d = float(np.mean(dense)) if dense else None
        if d is None or d - untrained <= 0.01 * (abs(d) + abs(untrained)):
            skipped.append(cell_name(dict(zip(CELL_KEYS, cell))))
            continue
        per_cell[cell] = {
            method: (np.array([final_return(r.curve) for r in rs]) - untrained) / (d - untrained)
            for method, rs in methods.items()
        }
    return per_cell, skipped


# Normalised scores at which performance profiles are evaluated: untrained (0) to dense (1) and beyond.
PROFILE_TAUS = tuple(round(t, 2) for t in np.linspace(-0.25, 1.5, 36))


def performance_profiles(runs: Sequence[Run], by: str = "algo", taus: Sequence[float] = PROFILE_TAUS) -> list[dict]:
    """Performance profiles (Agarwal et al. 2021): the fraction of runs whose normalised final return exceeds
    each ``tau``, per group of cells and method, with 95% stratified-bootstrap CIs (rliable, fixed generator).

    Args:
      runs: the runs (:func:`normalised_scores` normalises them per cell; cells without a dense
        baseline are left out).
      by: the cell key that groups cells (``algo``, ``distribution``, ``env``, ...).
      taus: the normalised scores to evaluate at.

    Returns:
      One dict per (group, method): ``by``, ``group``, ``method``, ``n_cells``, ``n_runs``, and
      ``taus``, ``fraction``, ``low``, ``high`` (lists, one value per tau). A method is counted over
      the group's cells where it has runs, with its lowest seeds' count in every cell.
    """
    check_choice("by", by, CELL_KEYS)
    per_cell, _ = normalised_scores(runs)
    groups: dict[Any, dict[str, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
    for cell, methods in per_cell.items():
        group = dict(zip(CELL_KEYS, cell))[by]
        for method, scores in methods.items():
            groups[group][method].append(scores)
    taus = np.asarray(taus, float)
    out = []
    for group in sorted(groups, key=sortable):
        for method in sorted(groups[group], key=method_key):
            cols = groups[group][method]
            n = min(len(c) for c in cols)
            scores = {method: np.stack([c[:n] for c in cols], axis=1)}
            point, ci = _interval_estimates(scores, lambda x: np.array([np.mean(x > t) for t in taus]))
            lo, hi = np.asarray(ci[method])
            out.append({
                "by": by, "group": group, "method": method, "n_cells": len(cols), "n_runs": n * len(cols),
                "taus": taus.tolist(), "fraction": np.asarray(point[method]).tolist(),
                "low": lo.tolist(), "high": hi.tolist(),
            })  # fmt: skip
    return out


def _runs_by_cells(columns: Sequence[np.ndarray]) -> np.ndarray:
    """rliable's runs x cells matrix: the lowest ``n`` seeds of each cell, ``n`` the fewest any cell has."""
    n = min(len(c) for c in columns)
    return np.stack([c[:n] for c in columns], axis=1)


def aggregate(runs: Sequence[Run]) -> tuple[list[dict], list[str]]:
    """IQM and mean of the dense-normalised final return over all cells, per method, and P(TAR better) (module docs).

    Returns:
      ``(rows, skipped)``: one row per method with ``method, n_cells, n_runs,
      iqm, iqm_low, iqm_high, mean, mean_low, mean_high``, and ``poi, poi_low, poi_high``:
      the probability that TAR's final return beats the method's, averaged over the
      cells that hold both (``None`` for TAR, and without TAR runs); then the names of
      the cells left out (no dense runs, or dense no better than untrained).
    """
    from rliable import metrics

    per_cell, skipped = normalised_scores(runs)
    per_method: dict[str, list[np.ndarray]] = defaultdict(list)
    for methods in per_cell.values():
        for method, scores in methods.items():
            per_method[method].append(scores)
    rows = []
    for method in sorted(per_method, key=method_key):
        scores = {method: _runs_by_cells(per_method[method])}
        row = {"method": method, "n_cells": len(per_method[method]), "n_runs": scores[method].size}
        for name, fn in (("iqm", metrics.aggregate_iqm), ("mean", metrics.aggregate_mean)):
            point, ci = _interval_estimates(scores, lambda x, fn=fn: np.array([fn(x)]))
            lo, hi = np.asarray(ci[method]).ravel()[:2]
            row.update({name: float(point[method][0]), f"{name}_low": float(lo), f"{name}_high": float(hi)})
        # Normalising is increasing within a cell, so this is the raw returns' probability, cell by cell.
        both = [c for c in per_cell.values() if "tar" in c and method in c]
        row.update(poi=None, poi_low=None, poi_high=None)
        if method != "tar" and both:
            pair = (_runs_by_cells([c["tar"] for c in both]), _runs_by_cells([c[method] for c in both]))
            point, ci = _interval_estimates({"pair": pair}, _poi_tasks)
            lo, hi = np.asarray(ci["pair"]).ravel()[:2]
            row.update(poi=float(point["pair"]), poi_low=float(lo), poi_high=float(hi))
        rows.append(row)
    return rows, skipped


def first_seed(runs: Sequence[Run]) -> int:
    """The lowest seed of ``runs`` (0, unless the sweep ran with a seed offset): the one whose masks are shown."""
    return min((int(r.seed) for r in runs), default=0)


def topology_changes(runs: Sequence[Run]) -> list[dict]:
    """What revival changed, per cell and network, from the first seed's masks of static, tar and uniform_revival.

    Returns:
      One dict per (cell, method, network) for ``tar`` and ``uniform_revival``: the
      cell's keys, ``method``, ``net`` (actor or critic), ``seed`` (the seed shown,
      :func:`first_seed`),
      ``moved`` (connections in other layers than static's per-layer counts
      put them: half the sum of the per-layer count differences),
      ``dead_before`` / ``dead_after`` (units with zero fan-in or fan-out
      before revival and after it), ``dead_static`` (the same for static's
      masks), and ``reach_*`` (the smallest input-to-output pair fraction over
      the network's chains, before revival, after it and for static).
    """
    seed = first_seed(runs)
    seed0 = {(r.cell, r.method): r for r in runs if r.seed == seed and r.topology}
    out = []
    for (cell, method), run in sorted(seed0.items(), key=lambda kv: (tuple(sortable(v) for v in kv[0][0]), kv[0][1])):
        static = seed0.get((cell, "static"))
        if method not in sj.METHODS or not sj.METHODS[method].revives or static is None:
            continue
        for network in NETWORKS:
            after, before = run.topology[network], (run.base_topology or {}).get(network, [])
            mine = static.topology[network]
            dead = lambda layers: sum(t["zero_fan_in"] + t["zero_fan_out"] for t in layers)
            reach = lambda r, key, network=network: min(
                (c["pair_fraction"] for c in (getattr(r, key) or {}).get(network, {}).values()), default=None
            )
            out.append(
                {
                    **dict(zip(CELL_KEYS, cell)),
                    "method": method,
                    "net": network,  # not "network": that is the cell's body (mlp, simba)
                    "seed": seed,
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


def _mean_over_steps(curve: Sequence[dict], key: str) -> float | None:
    """Mean of ``key`` over the chunks that report it (a NaN or ``None`` chunk held no step); ``None`` if none does."""
    values = [c[key] for c in curve if c.get(key) is not None and not math.isnan(c[key])]
    return float(np.mean(values)) if values else None


def diagnostics(runs: Sequence[Run]) -> list[dict]:
    """Mask turnover and dormant units per cell and method, averaged over the finished, finite seeds.

    Returns:
      One dict per (cell, method) whose curves hold the metrics:
      ``{net}_changed`` (connections the network's masks changed over the
      whole run: SET/RigL rewiring, GMP pruning; 0 for fixed masks),
      ``{net}_turnover`` (that count over the network's active connections at
      the end of the run, so 1.0 means as many changes as there are active
      weights), and ``{net}_dormant`` (the fraction of dormant hidden units in
      the last evaluation), for ``net`` in actor and critic. ``None`` where a
      run's curve lacks the metric (results of earlier versions). Runs trained
      with ReDo also give ``{net}_recycled``: the fraction of hidden units a
      ReDo step recycled, averaged over the run's ReDo steps (``None`` without
      ReDo).
    """
    out = []
    for cell, methods in sorted(ok_runs_by_cell(runs).items(), key=lambda kv: tuple(sortable(v) for v in kv[0])):
        for method in sorted(methods, key=method_key):
            members = methods[method]
            row = {**dict(zip(CELL_KEYS, cell)), "method": method, "n_seeds": len(members)}
            for net in NETWORKS:
                changed = [sum(c.get(f"{net}_changed", math.nan) for c in r.curve) for r in members]
                active = [final_params(r)[net]["active"] for r in members]
                dormant = [r.curve[-1].get(f"{net}_dormant", math.nan) if r.curve else math.nan for r in members]
                mean = lambda xs: None if not xs or any(math.isnan(x) for x in xs) else float(np.mean(xs))
                row[f"{net}_changed"] = mean(changed)
                row[f"{net}_turnover"] = mean([c / a if a else math.nan for c, a in zip(changed, active)])
                row[f"{net}_dormant"] = mean(dormant)
                recycled = [_mean_over_steps(r.curve, f"{net}_recycled") for r in members]
                row[f"{net}_recycled"] = mean(recycled) if all(x is not None for x in recycled) else None
            out.append(row)
    return out
