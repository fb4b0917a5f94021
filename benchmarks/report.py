"""Render ``benchmarks/RESULTS.md`` from the JSON files in ``benchmarks/results/``."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS_DIR

RESULTS_MD = Path("benchmarks/RESULTS.md")
PARTS = ("peer", "profile", "overhead", "seeds", "memory", "bcoo")


def _f(s: dict[str, float] | None, spec: str = ".2f") -> str:
    if s is None:
        return "-"
    return f"{s['median']:{spec}} [{s['min']:{spec}}, {s['max']:{spec}}]"


def _ok(flag: bool) -> str:
    return "met" if flag else "**missed**"


def _load(part: str, suffix: str = "") -> dict[str, Any] | None:
    for name in (part, f"{part}_quick"):
        path = RESULTS_DIR / f"{name}{suffix}.json"
        if path.exists():
            return json.loads(path.read_text())
    return None


def _header(r: dict[str, Any]) -> list[str]:
    m = r["machine"]
    quick = " **(quick smoke run, not a real budget)**" if r["settings"].get("quick") else ""
    return [
        f"Machine: {m['processor']}, {m['cpu_count']} CPUs, backend {m['backend']} ({m['device_kind']}), "
        f"jax {m['jax']}, python {m['python']}. Date (UTC): {m['date_utc']}. "
        f"Command: `{r['command']}`{quick}." + (f" Wall: {r['wall_seconds']:.0f} s." if r.get("wall_seconds") else ""),
        *([f"Note: {r['note']}", ""] if r.get("note") else []),
        "",
    ]


def _peer(r: dict[str, Any]) -> list[str]:
    s, c = r["settings"], r["settings"]["config"]
    vmapped = s.get("vmapped_seeds", len(s["seeds"]))  # earlier runs vmapped their trial seeds
    out = [
        "## 1. Peer: dense SAC end to end, ours vs brax's SAC trainer",
        "",
        *_header(r),
        f"{s['env']} ({s['backend']} backend), {c['total_steps']} env steps ({c['warmup_steps']} warm-up = brax "
        f"min_replay_size), episode length {c['episode_length']}, {c['num_envs']} env, batch {c['batch_size']}, "
        f"{'-'.join(map(str, c['hidden']))} networks, lr {c['actor_lr']}, {s['gradient_updates_per_env_step']:g} "
        f"gradient update per env step on both sides, evaluation (4 deterministic episodes) every "
        f"{c['chunk_steps']} env steps, seeds {s['seeds']}. Brax and ours-one-seed alternate per seed; "
        f"ours-vmapped trains {vmapped} seeds in one call. Figures: median [min, max] over seeds (wall and "
        "compilations of the vmapped call are one call's). Steady throughput: env steps per second of every chunk "
        "after the first (evaluation included), summed over seeds for the vmapped call.",
        "",
        "| side | wall incl. compile (s) | XLA compilations | steady env steps/s | steady updates/s "
        f"| time to return >= {s['threshold']:.0f} (s) | final return |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in r["table"].items():
        ttt = row["time_to_threshold_s"]
        out.append(
            f"| {name} | {_f(row['wall_s'], '.1f')} | {_f(row['compilations'], '.0f')} "
            f"| {_f(row['steady_env_steps_per_s'], '.0f')} | {_f(row['steady_updates_per_s'], '.0f')} "
            f"| {_f(ttt, '.1f') if ttt else '-'} ({row['reached_threshold']}/{row['runs']} reached) "
            f"| {_f(row['final_return'], '.1f')} |"
        )
    mr = r["mean_final_return"]
    out += [
        "",
        "Where the wall time goes (median over calls): XLA compile seconds (from the compile events), time from the "
        "call's start to the end of the first training chunk (compilation, warm-up/prefill and the first chunk), "
        "and seconds per later chunk (training plus evaluation):",
        "",
        "| side | compile (s) | to end of first chunk (s) | per later chunk (s) |",
        "|---|---:|---:|---:|",
    ]
    for name, trials in r["trials"].items():
        trials = trials[:1] if name == "ours_vmapped" else trials
        compile_s = statistics.median(t["compile_s"] for t in trials)
        first = statistics.median(t["eval_time_s"][0] for t in trials)
        later = statistics.median(float(d) for t in trials for d in np.diff(t["eval_time_s"]))
        out.append(f"| {name} | {compile_s:.1f} | {first:.1f} | {later:.2f} |")
    if "startup" in r:
        out += [
            "",
            "Start-up with JAX's persistent compilation cache (`sparse-rl` turns it on by default): one chunk of "
            "training per call (warm-up plus one chunk), each call in a fresh process, the first with an empty "
            "cache directory, the second reading what the first wrote:",
            "",
            "| side | empty cache: wall (s) | compile (s) | filled cache: wall (s) | compile (s) |",
            "|---|---:|---:|---:|---:|",
        ]
        for side, row in r["startup"].items():
            e, f = row["empty_cache"], row["filled_cache"]
            out.append(
                f"| {side} | {e['wall_s']:.1f} | {e['compile_s']:.1f} | {f['wall_s']:.1f} | {f['compile_s']:.1f} |"
            )
        out += [
            "",
            "(Compile seconds are those of JAX's compile events, which also cover reading an executable from the "
            "cache; the event count is the same with an empty and a filled cache, so it is not shown.)",
        ]
    out += [
        "",
        "Differences left as they are: brax fills its replay buffer with its initial stochastic policy (ours: "
        "uniform random actions) and evaluates once more, before training.",
        "",
        "Return at equal env steps (each evaluation point, per seed):",
        "",
        "| side | seed | " + " | ".join(str(x) for x in r["trials"]["ours_1_seed"][0]["eval_env_steps"]) + " |",
        "|---|---:|" + "---:|" * len(r["trials"]["ours_1_seed"][0]["eval_env_steps"]),
    ]
    for name, trials in r["trials"].items():
        for t in trials:
            out.append(f"| {name} | {t['seed']} | " + " | ".join(f"{x:.1f}" for x in t["eval_return"]) + " |")
    out += [
        "",
        f"Speedup end to end, one seed per call (brax wall / ours wall, per seed): "
        f"**{_f(r['speedup_end_to_end_1_seed'])}**; brax's mean wall per call x {vmapped} / ours' one "
        f"{vmapped}-seed vmapped call: "
        f"**{r['speedup_end_to_end_vmapped_vs_brax_sequential']:.2f}**. Mean final return: ours "
        f"{mr['ours_1_seed']:.1f}, brax {mr['brax']:.1f}. Target (>= 1.5x with equal or better return): "
        f"{_ok(r['meets_target'])}.",
        "",
    ]
    return out


def _profile(r: dict[str, Any]) -> list[str]:
    s, u, t, m = r["settings"], r["update"], r["trace"], r["matmul_reference"]
    by_class = ", ".join(f"{k} {v:.0f} us" for k, v in t["us_per_update_by_class"].items())
    out = [
        "## 1b. Profile: where a dense SAC run's time goes",
        "",
        *_header(r),
        f"SAC update, {'-'.join(map(str, s['hidden']))} networks, batch {s['batch_size']}, one seed, "
        f"{s['updates_timed']} updates in one jitted scan, {s['repeats']} repeats (`benchmarks/bench_profile.py`).",
        "",
        "| measurement | result |",
        "|---|---|",
        f"| ms per update | {_f(u['ms'], '.2f')} |",
        f"| XLA FLOPs per update (cost analysis) | {u['gflop']:.3f} GFLOP |",
        f"| achieved rate | {_f(u['gflop_per_s'], '.0f')} GFLOP/s |",
        f"| a chain of {'x'.join(map(str, m['shape']))} matmuls alone | {_f(m['gflop_per_s'], '.0f')} GFLOP/s |",
        f"| op time per update, summed over threads ({s['updates_traced']} updates under `jax.profiler`, "
        f"which slows them) | {by_class} |",
        f"| mean XLA threads busy | {t['mean_busy_threads']:.2f} |",
        f"| one training env step (auto-reset and replay write), via `trainer.warmup` "
        f"| {_f(r['env_step_us'], '.0f')} us |",
        "",
        f"The update runs at {u['gflop_per_s']['median'] / m['gflop_per_s']['median']:.0%} of the rate of its "
        f"dominant matmul shape alone, and matmul kernels take {t['share_by_class'].get('matmul', 0):.0%} of the "
        "op time: the update is bound by matmul arithmetic on this CPU. brax's SAC does the same matmuls (the same "
        "losses on the same network sizes; its temperature loss adds one actor forward pass), so per-step speed "
        "can at best roughly match it here.",
        "",
        "Compilation of each trainer function (ahead of time from shapes, one after another):",
        "",
        "| function | trace + lower (s) | XLA compile (s) |",
        "|---|---:|---:|",
        *(f"| {k} | {v['trace_lower_s']:.1f} | {v['compile_s']:.1f} |" for k, v in r["compile"].items()),
        "",
    ]
    return out


def _overhead(r: dict[str, Any]) -> list[str]:
    rv, cfg = r["revival"], r["settings"]["config"]
    out = [
        "## 2. Sparse-method overhead of the training chunk",
        "",
        *_header(r),
        f"The compiled vmapped chunk of `prepare`, SAC on {cfg['env']} (one-step episodes: the chunk is nearly all "
        f"learner), {'-'.join(map(str, cfg['hidden']))} networks, batch {cfg['batch_size']}, sparsity "
        f"{r['settings']['sparsity']} ERK random, one seed, {r['settings']['repeats']} repeats, methods alternated, "
        "ratio per repeat. Dense, static, uniform_revival and tar run the same compiled program (dense is the "
        "static sparse optimizer with all-True masks; the mask-only methods differ by mask values only), so their "
        "ratios show the noise floor.",
        "",
    ]
    settings = [("chunk", "Stress setting, ten times the default mask-update rate")]
    if "chunk_default" in r:
        settings.append(("chunk_default", "Default setting (the library's `delta_t`)"))
    for key, title in settings:
        c = r[key]
        out += [
            f"{title}: {c['updates_per_chunk']} updates per chunk, SET/RigL `delta_t={c['delta_t']}`, "
            f"{c['mask_updates_in_chunk_set_rigl']} mask update(s) in the timed chunk"
            + (f" (chunk {c['timed_chunk']})." if "timed_chunk" in c else "."),
            "",
            "| method | ms per chunk | ratio vs dense | target | |",
            "|---|---:|---:|---:|---|",
            f"| dense | {_f(c['ms_per_chunk']['dense'], '.0f')} | 1 | | |",
        ]
        for m, row in c["ratio_vs_dense"].items():
            out.append(
                f"| {m} | {_f(c['ms_per_chunk'][m], '.0f')} | {_f(row, '.3f')} | <= {row['target']} "
                f"| {_ok(row['meets_target'])} |"
            )
        out.append("")
    if "redo" in r:
        rd = r["redo"]
        out += [
            f"ReDo every {rd['every']} updates (`--config.redo.every`) on the default setting's chunk (one ReDo "
            "step in it), against the same method without it:",
            "",
            "| method | ms per chunk | ratio vs without | target | |",
            "|---|---:|---:|---:|---|",
        ]
        for m, row in rd["ratio_vs_without"].items():
            out.append(
                f"| {m} | {_f(rd['ms_per_chunk'][m], '.0f')} | {_f(row, '.3f')} | <= {row['target']} "
                f"| {_ok(row['meets_target'])} |"
            )
        out.append("")
    if "eaude" in r:
        e = r["eaude"]
        note = f" Measured alone: `{e['command']}`." if "command" in e else ""
        out += [
            f"EauDeSAC (`eaudesac`, a selection every {e['period']} updates) against dense SAC on the default "
            "setting's chunk, with K online critics; no target: every member trains on every update, so the "
            f"cost grows with K.{note}",
            "",
            "| method | ms per chunk | ratio vs dense |",
            "|---|---:|---:|",
            f"| dense | {_f(e['ms_per_chunk']['dense'], '.0f')} | 1 |",
        ]
        for m, row in e["ratio_vs_dense"].items():
            out.append(f"| {m} | {_f(e['ms_per_chunk'][m], '.0f')} | {_f(row, '.3f')} |")
        out.append("")
    if "networks" in r:
        n = r["networks"]
        note = f" Measured alone: `{n['command']}`." if "command" in n else ""
        b = n["simba_batch"]
        out += [
            "The networks' bodies (`--config.network`) at width 256 on the stress setting's chunk: each body's dense "
            "chunk against dense `mlp`'s (no target: a SimBa block holds 8 w^2 weights where an MLP layer holds "
            f"w^2), and methods on `simba` against dense `simba`.{note}",
            "",
            "| network, method | ms per chunk | ratio | against | target | |",
            "|---|---:|---:|---|---:|---|",
            f"| mlp dense | {_f(n['ms_per_chunk']['mlp dense'], '.0f')} | 1 | | | |",
        ]
        for m, row in n["ratio_vs_mlp_dense"].items():
            out.append(f"| {m} | {_f(n['ms_per_chunk'][m], '.0f')} | {_f(row, '.3f')} | mlp dense | | |")
        for m, row in n["ratio_vs_simba_dense"].items():
            out.append(
                f"| {m} | {_f(n['ms_per_chunk'][m], '.0f')} | {_f(row, '.3f')} | simba dense | <= {row['target']} "
                f"| {_ok(row['meets_target'])} |"
            )
        out += [
            "",
            f"A `simba` batch of {b['runs']} mask-only runs (dense, static and tar at sparsities 0.8 and 0.95 under "
            f"ERK and global) compiled its chunk {b['chunk_traces']} time(s): LayerNorm and the skips keep the "
            "one program per width.",
            "",
        ]
    if "transform_only" in r:
        t = r["transform_only"]
        us, ratio = t["us_per_step"], t["ratio_vs_static"]
        out += [
            f"The sparse optimizer alone (Adam inside, {t['params']:,} weights, fixed gradients, {t['steps']} "
            "steps, none of them a mask-update step):",
            "",
            "| transform | us per step | ratio vs static |",
            "|---|---:|---:|",
            f"| static | {_f(us['static'], '.0f')} | 1 |",
        ]
        label = lambda m: m if "rewire" in m else f"{m}, rewire=None"
        out += [f"| {label(m)} | {_f(v, '.0f')} | {_f(ratio[m], '.3f')} |" for m, v in us.items() if m != "static"]
        branch = [ratio[m]["median"] - 1 for m in ratio if "rewire" not in m]
        cost = f"{min(branch):.0%}-{max(branch):.0%}" if branch else "a large share"
        out += [
            "",
            "With `rewire=None` the schedule decides on every step by a `lax.cond`, and that branch alone costs "
            f"{cost} of the static update here (it keeps XLA from fusing the update around it). With "
            "`rewire=False`, as the training loop runs the steps between mask updates, the branch is left out.",
            "",
        ]
        if "one_mask_update_ms" in t:
            out += [
                "One update that rewires (`rewire=True`): "
                + ", ".join(f"{m} {_f(v, '.2f')} ms" for m, v in t["one_mask_update_ms"].items())
                + ".",
                "",
            ]
    out += [
        f"TAR's one-shot revival (jitted `sparse_init(..., method='tar')` minus `method='static'` on the actor + "
        f"critic params, {rv['params']:,} weights): **{_f(rv['tar_minus_static_ms'], '.2f')} ms** "
        f"(static {_f(rv['ms']['static'], '.2f')} ms, tar {_f(rv['ms']['tar'], '.2f')} ms); paid once per run.",
        "",
    ]
    if "dormant_probe" in r:
        d = r["dormant_probe"]
        out += [
            "The dormant-unit probe after every chunk (one replay batch through actor and critics): "
            f"**{_f(d['probe_ms'], '.2f')} ms**, {_f(d['probe_share_of_chunk'], '.4f')} of the "
            f"{_f(d['chunk_ms'], '.0f')} ms chunk.",
            "",
        ]
    return out


def _seeds(r: dict[str, Any]) -> list[str]:
    s = r["settings"]
    out = [
        "## 3. Seeds: vmapped in one call vs one call per seed",
        "",
        *_header(r),
        f"SAC on {s['env']}, {'-'.join(map(str, s['hidden']))}, batch {s['batch_size']}, {s['updates_per_seed']} "
        f"updates per seed, every call compiles its own functions; {s['repeats']} repeat(s), sides alternated.",
        "",
        "| seeds | vmapped wall (s) | vmapped compilations | sequential wall (s) | sequential compilations "
        "| sequential / vmapped | vmapped not slower |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for n, row in r["rows"].items():
        w, c = row["wall_s"], row["compilations"]
        flag = row["vmapped_not_slower"]
        verdict = "same call on both sides (noise)" if flag is None else _ok(flag)
        out.append(
            f"| {n} | {_f(w['vmapped'], '.1f')} | {_f(c['vmapped'], '.0f')} | {_f(w['sequential'], '.1f')} "
            f"| {_f(c['sequential'], '.0f')} | {_f(row['sequential_over_vmapped'])} "
            f"| {verdict} |"
        )
    return [*out, ""]


def _memory(r: dict[str, Any]) -> list[str]:
    s = r["sweep"]
    out = [
        "## 4. Host memory",
        "",
        *_header(r),
        f"`{s['command']}` in a fresh subprocess: peak RSS **{s['peak_rss_mib']:.0f} MiB** (wall {s['wall_s']:.0f} s).",
        "",
        "Replay buffer, float32, bytes per transition `4 * (2 * obs + act + 3)` (checked against `buffer_init`):",
        "",
        "| env | obs | act | bytes / transition | buffer bytes / slot | MiB per 1M transitions |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in r["replay"].items():
        out.append(
            f"| {name} | {row['obs']} | {row['act']} | {row['bytes_per_transition']} "
            f"| {row['buffer_bytes_per_slot']:.0f} | {row['mib_per_1m_transitions']:.0f} |"
        )
    return [*out, ""]


def _bcoo(r: dict[str, Any]) -> list[str]:
    out = [
        "## 5. BCOO sparse forward vs masked dense forward",
        "",
        *_header(r),
        f"Actor MLP {'-'.join(map(str, r['settings']['sizes']))}, kernels pruned uniformly at random, "
        f"`BCOO.fromdense` then `x @ W`, jitted, {r['settings']['forwards_per_call']} forwards per timed call, "
        f"{r['settings']['repeats']} repeats alternated. Speedup > 1: BCOO faster.",
        "",
        "| sparsity | batch | dense us/forward | BCOO us/forward | speedup (dense / BCOO) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in r["rows"].values():
        us = row["us_per_forward"]
        out.append(
            f"| {row['sparsity']} | {row['batch']} | {_f(us['dense_masked'], '.1f')} | {_f(us['bcoo'], '.1f')} "
            f"| {_f(row['speedup_bcoo_over_dense'])} |"
        )
    return [*out, ""]


def _batching(r: dict[str, Any]) -> list[str]:
    s, c = r["settings"], r["settings"]["config"]
    out = [
        "## 7. One compiled program per (env, algo, width)",
        "",
        *_header(r),
        f"{s['grid']} ({s['runs']} runs), SAC on {c['env']} ({'-'.join(map(str, c['hidden']))}, "
        f"{c['total_steps']} env steps per run), every batch run by `agents.experiments.sweep.run_batch` "
        "in one process, the persistent compilation cache off. Before: every cell compiled its own programs; "
        "after: the sweep's plan (`SweepConfig.programs`).",
        "",
        "| side | batches (runs each) | chunk programs | XLA compilations | compile s | wall s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for side in ("before", "after"):
        b = r[side]
        runs = ", ".join(str(x["runs"]) for x in b["batches"])
        out.append(
            f"| {side} | {len(b['batches'])} ({runs}) | {b['chunk_programs']} | {b['xla_compilations']} "
            f"| {b['compile_s']:.1f} | {b['wall_s']:.1f} |"
        )
    ev, first = r["curves_after_vs_before"]["eval_return"], r["first_evaluation_after_vs_before"]["eval_return"]
    out += [
        "",
        f"Wall before / after: **{r['wall_ratio_before_over_after']:.2f}**; compile seconds saved: "
        f"{r['compile_s_saved']:.1f}. Per-run eval returns after vs before: largest difference {ev['abs']:.2g} "
        f"absolute ({ev['rel']:.2g} relative) over every chunk, {first['abs']:.2g} at the first evaluation.",
        "",
    ]
    return out


def _accelerator_run(run: dict[str, Any], backend: str) -> list[str]:
    """The accelerator run's steps, device facts, 64-run batch and resumed paper sweep (benchmarks/accelerator.sh)."""
    out = [
        "### The accelerator run",
        "",
        f"`bash benchmarks/accelerator.sh`: each step in its own process under its own time limit "
        f"({run['total_limit_s']} s in all).",
        "",
        "| step | status | elapsed (s) | limit (s) |",
        "|---|---|---:|---:|",
    ]
    for step in run["steps"]:
        out.append(f"| {step['step']} | {step['status']} | {step.get('elapsed_s', '-')} | {step.get('limit_s', '-')} |")
    devices = _load("devices", backend)
    if devices is not None:
        free = devices["free_memory"]
        out += [
            "",
            f"Devices: {', '.join(devices['devices'])} ({devices['device_kind']}); the planner's free memory: "
            f"{free['bytes']} bytes ({free['where']}); device 0's `memory_stats()`: `{devices['memory_stats']}`.",
        ]
    batch = _load("seeds_batch", backend)
    if batch is not None:
        s = batch["settings"]
        out += [
            "",
            f"One mask-only batch ({s['method']}, sparsity {s['sparsity']}, SAC on {s['env']}, "
            f"{s['updates_per_seed']} updates per run, compilation included; the planner estimates "
            f"{s['plan_bytes_per_run'] / 2**20:.1f} MiB per run):",
            "",
            "| runs | wall (s) | runs/s | steady env steps/s (all runs) | device peak (MiB) |",
            "|---:|---:|---:|---:|---:|",
        ]
        for n, row in batch["rows"].items():
            v = row["vmapped"]
            peak = "-" if v["device_peak_bytes"] is None else f"{v['device_peak_bytes'] / 2**20:.0f}"
            steady = "-" if v["steady_env_steps_per_s"] is None else f"{v['steady_env_steps_per_s']:.0f}"
            out.append(f"| {n} | {v['wall_s']:.1f} | {v['runs_per_s']:.2f} | {steady} | {peak} |")
    resume = _load("paper_resume", backend)
    if resume is not None:
        out += [
            "",
            f"The paper sweep resumed after its time box (`{resume['command']}`): curve rows "
            f"{resume['curve_rows_before']} -> {resume['curve_rows_after']}, earlier rows unchanged: "
            f"{resume['earlier_rows_unchanged']}; continued: **{resume['continued']}**.",
        ]
    return [*out, ""]


def _paper(r: dict[str, Any]) -> list[str]:
    s, c = r["settings"], r["settings"]["config"]
    out = [
        "### Paper-preset subset",
        "",
        *_header(r),
        f"{s['env']}, {s['algo'].upper()}, sparsity {s['sparsity']}, the `paper` preset's protocol "
        f"({'-'.join(map(str, c['hidden']))} networks, batch {c['batch_size']}, {c['num_envs']} env, "
        f"{c['updates_per_step']} update per env step, evaluation every {c['chunk_steps']} env steps), "
        f"{s['total_steps']} env steps per run, {s['seeds']} seeds. Throughput is summed over a batch's "
        "vmapped runs, median over its chunks after the first.",
        "",
        "| batch | runs | env steps/s | updates/s | training wall (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for group, g in r["groups"].items():
        out.append(
            f"| {group} | {g['runs']} | {g['env_steps_per_s']:.0f} | {g['updates_per_s']:.0f} | "
            f"{g['train_wall_s']:.0f} |"
        )
    out += [
        "",
        "Final return as in the sweep's summary: mean evaluation return over the last 10% of evaluations.",
        "",
        "| method | mean [95% CI] over seeds | IQM | seeds | diverged |",
        "|---|---:|---:|---:|---:|",
    ]
    out += [
        f"| {m} | {v['mean']:.1f} [{v['ci_low']:.1f}, {v['ci_high']:.1f}] | {v['iqm']:.1f} | {v['n_seeds']} "
        f"| {v['n_diverged']} |"
        for m, v in r["returns"].items()
    ]
    return [*out, ""]


def _hyper(r: dict[str, Any]) -> list[str]:
    s, c = r["settings"], r["settings"]["config"]
    out = [
        "## 9. Hyperparameter axes in one program",
        "",
        *_header(r),
        f"{s['grid']} ({s['runs']} runs), SAC on {c['env']} ({'-'.join(map(str, c['hidden']))}, "
        f"{c['total_steps']} env steps per run), every batch run by `agents.experiments.sweep.run_batch` in one "
        "process, the persistent compilation cache off. Before: one sweep per learning rate (the rate a constant "
        "of its programs); after: one sweep with `--actor-lrs` (the rate an input of each run).",
        "",
        "| side | batches | chunk programs | XLA compilations | compile s | wall s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for side, label in (("before", "one sweep per rate"), ("after", "rates traced")):
        b = r[side]
        out.append(
            f"| {label} | {len(b['batches'])} | {b['chunk_programs']} | {b['xla_compilations']} "
            f"| {b['compile_s']:.1f} | {b['wall_s']:.1f} |"
        )
    ev, cl = r["curves_after_vs_before"]["eval_return"], r["curves_after_vs_before"]["critic_loss"]
    out += [
        "",
        f"Wall before / after: **{r['wall_ratio_before_over_after']:.2f}**. The chunk programs do not grow with "
        "the number of rates; the other compilations are the small init, warm-up and masking programs, made per "
        f"variant as for any axis. Per-run curves after vs before, over every chunk: critic losses differ by at "
        f"most {cl['abs']:.2g} absolute ({cl['rel']:.2g} relative), eval returns by {ev['abs']:.2g} absolute "
        f"({ev['rel']:.2g} relative): the batches have other shapes, so float32 rounding differs and training "
        "grows it (section 7's drift).",
        "",
    ]
    return out


def _networks(r: dict[str, Any]) -> list[str]:
    s = r["settings"]
    out = [
        "## 10. Networks: where TAR moves connections in MLPs and SimBa",
        "",
        *_header(r),
        f"One Q-network on {s['obs']} + {s['act']} inputs at width {s['width']}: `mlp` (2 hidden layers) or `simba` "
        f"(embedding, 2 residual blocks of {4 * s['width']} hidden units, output), pruned by {s['score']} of its "
        "initialisation; no training. *Moved*: the connections TAR puts in another kernel than static pruning "
        "has them (sum of `max(0, tar - static)`), with their share of the active weights; reachability: the "
        "share of input-output pairs joined by an active path, through the blocks' skips.",
        "",
        "| network | sparsity | distribution | active | moved | share | reach static -> TAR | kernels that gain |",
        "|---|---:|---|---:|---:|---:|---|---|",
    ]
    for row in r["rows"]:
        gains = ", ".join(f"`{k.removesuffix('/kernel')}` +{v}" for k, v in row["gains"].items()) or "none"
        out.append(
            f"| {row['network']} | {row['sparsity']} | {row['distribution']} | {row['active']} | {row['moved']} "
            f"| {100 * row['moved_share']:.2f}% | {row['reach_static']:.3f} -> {row['reach_tar']:.3f} | {gains} |"
        )
    return [*out, ""]


def _reference(r: dict[str, Any]) -> list[str]:
    s, c = r["settings"], r["settings"]["config"]
    out = [
        "## 8. Reference: our dense SAC against brax's SAC trainer on a DeepMind Control task",
        "",
        *_header(r),
        f"MuJoCo Playground's {s['task']} (MJX, jax implementation), {c['total_steps']} env steps "
        f"({c['warmup_steps']} warm-up), {c['num_envs']} envs, {c['updates_per_step']} updates per iteration, "
        f"batch {c['batch_size']}, {'-'.join(map(str, c['hidden']))} networks, lr {c['actor_lr']}, "
        f"{c['eval_episodes']} deterministic evaluation episodes every {c['chunk_steps']} env steps, seeds "
        f"{s['seeds']}, interleaved. The differences the two learners keep are listed in "
        "`benchmarks/bench_reference.py`. Mean [95% bootstrap CI] over seeds.",
        "",
        "| learner | final return | whole-curve mean | final return per seed | wall s per run |",
        "|---|---:|---:|---|---:|",
    ]
    for side in ("ours", "brax"):
        row = r[side]
        f, w = row["final_return"], row["curve_mean"]
        out.append(
            f"| {side} | {f['mean']:.1f} [{f['ci_low']:.1f}, {f['ci_high']:.1f}] | {w['mean']:.1f} "
            f"[{w['ci_low']:.1f}, {w['ci_high']:.1f}] | {', '.join(f'{x:.0f}' for x in row['finals'])} "
            f"| {statistics.median(row['wall_s']):.0f} |"
        )
    out.append("")
    for key, p in r["probability_ours_better"].items():
        name = key.replace("_", " ")
        out.append(f"P(ours > brax) on the {name}: {p['p']:.2f} [{p['ci_low']:.2f}, {p['ci_high']:.2f}].")
    return [*out, ""]


def write_results_md(path: Path = RESULTS_MD) -> Path:
    lines = [
        "# Benchmark results",
        "",
        "Produced by `python -m benchmarks` (all parts) or `python -m benchmarks --only <part>`; the JSON with every",
        "raw timing is in `benchmarks/results/<part>.json`. All figures are median [min, max]; every comparison is a",
        "ratio measured in one process with the sides alternated. The machine may be shared with other jobs,",
        "so absolute times vary more than the ratios.",
        "",
    ]
    renderers = {
        "peer": _peer,
        "profile": _profile,
        "overhead": _overhead,
        "seeds": _seeds,
        "memory": _memory,
        "bcoo": _bcoo,
    }
    # After the GPU section, whose number docs/development.md cites.
    late = {"batching": _batching, "reference": _reference, "hyper": _hyper, "networks": _networks}
    for part in PARTS:
        r = _load(part)
        if r is not None and part in renderers:
            lines += renderers[part](r)
    # Section 6: the paper subset (wherever it ran) and every part run on an accelerator.
    # A GPU's files first, else a TPU's (write_json names them after the backend).
    backend = "_tpu" if _load("accelerator_run", "_tpu") and not _load("accelerator_run", "_gpu") else "_gpu"
    accelerated = [(part, _load(part, backend)) for part in PARTS if part != "paper"]  # paper has its own section
    accelerated = [(part, r) for part, r in accelerated if r is not None]
    paper = _load("paper", backend) or _load("paper")
    run = _load("accelerator_run", backend)
    lines += ["## 6. GPU", ""]
    if not accelerated and run is None and (paper is None or paper["machine"]["backend"] == "cpu"):
        lines += [
            "No accelerator was available for these runs (CPU only); no figure here was measured on one. On one,",
            "`bash benchmarks/accelerator.sh` installs the accelerator's extra and runs, each step under its own time",
            "limit (about 12 minutes in all): the devices and the planner's view, the fast tests, dense SAC against",
            "brax's trainer at 1 and 16 vmapped seeds, a mask-only batch of 64 runs against 1, the overhead ratios,",
            "and two minutes of the paper subset, stopped and resumed (`--plan` lists the steps, `--dry-run`",
            "rehearses them on the CPU; docs/install.md). The paper subset continues where it stopped with:",
            "",
            "```bash",
            "python -m benchmarks --only paper   # halfcheetah SAC, global, widths 256/1024, 5 methods x 5 seeds",
            "```",
            "",
        ]
    if run is not None:
        lines += _accelerator_run(run, backend)
    for part, r in accelerated:
        # The CPU sections' headings, one level down and marked as accelerator figures.
        lines += [
            line.replace("## ", "### GPU: ", 1) if line.startswith("## ") else line
            for line in {**renderers, **late}[part](r)
        ]
    if paper is not None:
        lines += _paper(paper)
    for part, render in late.items():
        r = _load(part)
        if r is not None:
            lines += render(r)
    path.write_text("\n".join(lines))
    return path
