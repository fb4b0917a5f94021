"""Benchmark: cost of each sparse method's training chunk relative to dense, and TAR's one-shot revival.

1. The jitted, vmapped training chunk (``Prepared.chunk``, what
   ``agents.execution.runner.run`` trains with) after ``agents.execution.runner.prepare``, for
   dense, static, uniform_revival, tar, set and rigl: SAC, 256-256 actor and
   critics, batch 256, sparsity 0.9 (ERK, random scores), one seed, on
   ``probe_bandit`` (one-step episodes, so the chunk is almost all learner:
   the strictest setting for the sparse overhead). The timed chunk is chunk
   1, well before the schedule's end, in two settings:

   - stress: ``delta_t=100`` and 400 updates per chunk (4 mask updates per
     chunk, ten times the default rate), every method;
   - default: ``delta_t=1000`` (the library default and the usual protocol)
     and 1000 updates per chunk (1 mask update), dense, set and rigl.

   Targets: static, tar, uniform_revival <= 1.05x dense; set, rigl <= 1.10x
   dense. Every method's chunk is timed in turn, order reversed every other
   repeat, ratios per repeat.

2. The sparse optimizer alone, no training around it: 999 updates of
   ``sparse_optimizer(method, adam)`` on the actor and critic params with
   fixed gradients, none of them a mask-update step: static, and set and
   rigl with ``rewire=None`` (the schedule decides by a ``lax.cond`` on every
   step) and ``rewire=False`` (no branch, as the training loop runs the steps
   between mask updates). Also the cost of one update that rewires
   (``rewire=True``).

3. ReDo (``--config.redo.every``) at F = 1000 on the default setting's chunk (1000 updates, so one
   ReDo step per chunk): static and rigl with and without it, interleaved. Target: <= 1.05x of the
   method it is added to.

4. EauDeSAC (``eaudesac``) against dense SAC on the default setting's chunk (1000 updates, a selection
   every 250, ceiling 0.9): ``members`` K = 2 and 5 online critics. No target: the cost grows with K
   (every member trains on every update); the figure is reported with K.

5. The networks' bodies (``--config.network``) on the stress setting's chunk: dense ``mlp_ln`` and
   ``simba`` (two residual blocks of width 256, each 4x wide inside) against dense ``mlp`` of the same
   width, and static, tar and rigl on ``simba`` against dense ``simba``. No target for the bodies (a
   SimBa block holds 8 w^2 weights where an MLP layer holds w^2); the methods keep the targets of
   part 1. Also how many programs a ``simba`` batch of dense, static and tar at two sparsities and two
   distributions compiles (one, as for ``mlp``: LayerNorm and the skips change no shape).

6. TAR's one-shot revival: ``sparse_jax.sparse_init(key, params, 0.9,
   method="tar")`` vs ``method="static"`` on the actor and critic params,
   each jitted and run once before timing; the difference in ms.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

import sparse_jax as sj
from agents.algorithms.config import EauDeConfig, RedoConfig, SparsityConfig, TrainConfig
from agents.algorithms.replay import buffer_sample
from agents.execution.runner import prepare, prepare_runs
from agents.execution.train import make_train
from benchmarks.common import fmt, interleaved, part_main, ratio_summary, summary

# Ensemble methods train several critics by design: part 4 reports their cost against dense, without a target.
# The narrowed dense baseline (small_dense) trains smaller networks: no overhead to measure.
METHODS = tuple(name for name, m in sj.METHODS.items() if not m.ensemble and not m.matches_active)
# Chunk time over dense's: fixed-mask methods within 5%, methods with a mask rule within 10%.
TARGETS = {name: 1.10 if sj.METHODS[name].rewires else 1.05 for name in METHODS if name != "dense"}
SPARSITY = 0.9


SETTINGS = {
    "stress": (400, 100, METHODS),
    "default": (1000, 1000, ("dense", *(name for name in METHODS if sj.METHODS[name].rewires))),
}
TIMED_CHUNK = 1


def make_config(quick: bool, method: str, setting: str = "stress", network: str = "mlp") -> TrainConfig:
    chunk, delta_t, _ = SETTINGS[setting]
    if quick:
        chunk, delta_t = chunk // 10, delta_t // 10
    return TrainConfig(
        env="probe_bandit",
        episode_length=1,
        total_steps=256 + 10 * chunk,
        warmup_steps=256,
        chunk_steps=chunk,
        hidden=(256, 256),
        network=network,
        batch_size=256,
        eval_episodes=4,
        sparse=SparsityConfig(method=method, sparsity=SPARSITY, delta_t=delta_t),
    )


def mask_updates_in_chunk(config: TrainConfig, chunk: int) -> int:
    """SET/RigL mask updates in ``chunk`` (update steps ``t > 0`` with ``t % delta_t == 0``, before ``t_end``)."""
    n = config.chunk_iters * config.updates_per_step
    schedule = config.sparse.schedule(config.total_updates)
    steps = range(chunk * n, (chunk + 1) * n)
    return sum(1 for t in steps if t > 0 and t % schedule.delta_t == 0 and t < schedule.t_end)


def bench_chunks(quick: bool, repeats: int, setting: str) -> dict[str, Any]:
    methods = SETTINGS[setting][2]
    calls = {}
    for method in methods:
        config = make_config(quick, method, setting)
        prepared = prepare(config, [0])  # also compiles the vmapped chunk
        calls[method] = functools.partial(prepared.chunk, prepared.state, jnp.int32(TIMED_CHUNK))
    times = interleaved(calls, repeats)
    config = make_config(quick, "set", setting)
    out: dict[str, Any] = {
        "updates_per_chunk": config.chunk_iters * config.updates_per_step,
        "delta_t": config.sparse.delta_t,
        "timed_chunk": TIMED_CHUNK,
        "mask_updates_in_chunk_set_rigl": mask_updates_in_chunk(config, TIMED_CHUNK),
        "ms_per_chunk": {m: summary([t * 1e3 for t in ts]) for m, ts in times.items()},
        "ratio_vs_dense": {},
        "raw_seconds_per_call": times,
    }
    for method in methods[1:]:
        r = ratio_summary(times[method], times["dense"])
        out["ratio_vs_dense"][method] = {**r, "target": TARGETS[method], "meets_target": r["median"] <= TARGETS[method]}
    return out


VARIANTS = {"static": ("static", None), "set": ("set", None), "rigl": ("rigl", None)}
VARIANTS |= {"set, rewire=False": ("set", False), "rigl, rewire=False": ("rigl", False)}


def bench_transform_only(quick: bool, repeats: int) -> dict[str, Any]:
    trainer = make_train(make_config(quick, "rigl"))
    state = trainer.init(jax.random.key(0))
    params = {"actor": state.agent.actor, "critic": state.agent.critic}
    masks = sj.sparse_init(jax.random.key(1), params, SPARSITY, method="static", score="random", distribution="erk")
    counts = sj.layer_counts(
        "erk", sj.scores.magnitude(params), sj.target_active(sum(x.size for x in jax.tree.leaves(params)), SPARSITY)
    )
    steps = 99 if quick else 999
    schedule = sj.DSTSchedule(100 * steps, steps + 1, 0.3, 0.8)  # first mask update after the timed steps
    grads = jax.tree.map(lambda x: jnp.full_like(x, 1e-3), params)

    def make_tx(method):
        return sj.sparse_optimizer(method, optax.adam(3e-4), schedule=schedule, max_active=counts)

    def init(tx, p):
        return sj.with_masks(tx.init(p), masks.masks, key=jax.random.key(2))

    def make(method, rewire):
        tx = make_tx(method)

        def run(p):
            def body(carry, i):
                p, s = carry
                u, s = tx.update(jax.tree.map(lambda g: g * (1 + 1e-3 * i), grads), s, p, step=i, rewire=rewire)
                return (optax.apply_updates(p, u), s), None

            return jax.lax.scan(body, (p, init(tx, p)), jnp.arange(steps))[0]

        return functools.partial(jax.jit(run), masks.params)

    def one_rewire(method):
        tx = make_tx(method)
        update = jax.jit(lambda g, s, p: tx.update(g, s, p, step=jnp.int32(steps), rewire=True))
        return functools.partial(update, grads, init(tx, masks.params), masks.params)

    times = interleaved({name: make(*v) for name, v in VARIANTS.items()}, repeats)
    rewires = interleaved({m: one_rewire(m) for m in ("set", "rigl")}, max(repeats, 10) * 3)
    return {
        "steps": steps,
        "params": sum(x.size for x in jax.tree.leaves(params)),
        "us_per_step": {m: summary([t / steps * 1e6 for t in ts]) for m, ts in times.items()},
        "ratio_vs_static": {m: ratio_summary(times[m], times["static"]) for m in VARIANTS if m != "static"},
        "one_mask_update_ms": {m: summary([t * 1e3 for t in ts]) for m, ts in rewires.items()},
    }


def bench_revival(quick: bool, repeats: int) -> dict[str, Any]:
    trainer = make_train(make_config(quick, "tar"))
    state = trainer.init(jax.random.key(0))
    params = {"actor": state.agent.actor, "critic": state.agent.critic}
    fns = {
        m: jax.jit(lambda k, p, m=m: sj.sparse_init(k, p, SPARSITY, method=m, score="random", distribution="erk"))
        for m in ("static", "tar")
    }
    key = jax.random.key(1)
    times = interleaved({m: functools.partial(f, key, params) for m, f in fns.items()}, repeats)
    return {
        "ms": {m: summary([t * 1e3 for t in ts]) for m, ts in times.items()},
        "tar_minus_static_ms": summary([(t - s) * 1e3 for t, s in zip(times["tar"], times["static"], strict=True)]),
        "params": sum(x.size for x in jax.tree.leaves(params)),
        "raw_seconds_per_call": times,
    }


REDO_EVERY = 1000
REDO_TARGET = 1.05


def bench_redo(quick: bool, repeats: int) -> dict[str, Any]:
    """Chunk time with ReDo every ``REDO_EVERY`` updates over the same method's without it."""
    calls = {}
    for method in ("static", "rigl"):
        for every in (0, REDO_EVERY // 10 if quick else REDO_EVERY):
            config = dataclasses.replace(make_config(quick, method, "default"), redo=RedoConfig(every=every))
            prepared = prepare(config, [0])
            label = f"{method} + redo" if every else method
            calls[label] = functools.partial(prepared.chunk, prepared.state, jnp.int32(TIMED_CHUNK))
    times = interleaved(calls, repeats)
    ratios = {}
    for method in ("static", "rigl"):
        r = ratio_summary(times[f"{method} + redo"], times[method])
        ratios[f"{method} + redo"] = {**r, "target": REDO_TARGET, "meets_target": r["median"] <= REDO_TARGET}
    return {
        "every": REDO_EVERY // 10 if quick else REDO_EVERY,
        "ms_per_chunk": {m: summary([t * 1e3 for t in ts]) for m, ts in times.items()},
        "ratio_vs_without": ratios,
    }


NETWORK_SIDES = (("mlp", "dense"), ("mlp_ln", "dense"), ("simba", "dense"), ("simba", "static"), ("simba", "tar"),
                 ("simba", "rigl"))  # fmt: skip


def bench_networks(quick: bool, repeats: int) -> dict[str, Any]:
    """Chunk time of each body (dense) over dense ``mlp``'s, of methods on ``simba`` over dense ``simba``'s, and the
    program count of a ``simba`` batch of mask-only runs at several sparsities and distributions."""
    calls = {}
    for network, method in NETWORK_SIDES:
        prepared = prepare(make_config(quick, method, network=network), [0])
        calls[f"{network} {method}"] = functools.partial(prepared.chunk, prepared.state, jnp.int32(TIMED_CHUNK))
    times = interleaved(calls, repeats)
    base = make_config(quick, "dense", network="simba")
    runs = [
        (dataclasses.replace(base, sparse=dataclasses.replace(base.sparse, method=m, sparsity=s, distribution=d)), 0)
        for m in ("dense", "static", "tar") for s in (0.8, 0.95) for d in ("erk", "global")
    ]  # fmt: skip
    batch = prepare_runs(runs)
    jax.block_until_ready(batch.chunk(batch.state, jnp.int32(TIMED_CHUNK)))
    return {
        "ms_per_chunk": {m: summary([t * 1e3 for t in ts]) for m, ts in times.items()},
        "ratio_vs_mlp_dense": {
            m: ratio_summary(times[m], times["mlp dense"]) for m in calls if m.endswith("dense") and m != "mlp dense"
        },
        "ratio_vs_simba_dense": {
            m: {
                **(r := ratio_summary(times[m], times["simba dense"])),
                "target": TARGETS[m.split()[1]],
                "meets_target": r["median"] <= TARGETS[m.split()[1]],
            }
            for m in calls
            if m.startswith("simba") and m != "simba dense"
        },  # fmt: skip
        "simba_batch": {"runs": len(runs), "chunk_traces": batch.trainer.traces["chunk"]},
    }


EAUDE_MEMBERS = (2, 5)


def bench_eaude(quick: bool, repeats: int) -> dict[str, Any]:
    """Chunk time of EauDeSAC with K online critics over dense SAC's (the default setting's chunk)."""
    calls = {}
    for k in (None, *EAUDE_MEMBERS):
        config = make_config(quick, "dense" if k is None else "eaudesac", "default")
        if k is not None:
            config = dataclasses.replace(config, eaude=EauDeConfig(members=k, period=25 if quick else 250))
        prepared = prepare(config, [0])
        calls["dense" if k is None else f"eaudesac K={k}"] = functools.partial(
            prepared.chunk, prepared.state, jnp.int32(TIMED_CHUNK)
        )
    times = interleaved(calls, repeats)
    return {
        "period": 25 if quick else 250,
        "ms_per_chunk": {m: summary([t * 1e3 for t in ts]) for m, ts in times.items()},
        "ratio_vs_dense": {m: ratio_summary(times[m], times["dense"]) for m in calls if m != "dense"},
    }


def bench_probe(quick: bool, repeats: int) -> dict[str, Any]:
    """The dormant-unit probe alone (one replay batch through actor and critics) against a whole chunk."""
    config = make_config(quick, "static")
    prepared = prepare(config, [0])
    trainer, state = prepared.trainer, prepared.state
    batch = jax.vmap(lambda b, k: buffer_sample(b, k, config.batch_size))(
        state.buffer, jax.vmap(jax.random.key)(jnp.arange(1))
    )
    probe = jax.jit(jax.vmap(lambda a, b: trainer.algo.dormant(a, b, config.dormant_tau)))
    times = interleaved(
        {
            "probe": functools.partial(probe, state.agent, batch),
            "chunk": functools.partial(prepared.chunk, state, jnp.int32(TIMED_CHUNK)),
        },
        repeats,
    )
    return {
        "probe_ms": summary([t * 1e3 for t in times["probe"]]),
        "chunk_ms": summary([t * 1e3 for t in times["chunk"]]),
        "probe_share_of_chunk": ratio_summary(times["probe"], times["chunk"]),
    }


def bench(quick: bool = False, repeats: int | None = None) -> dict[str, Any]:
    repeats = repeats or (2 if quick else 7)
    return {
        "settings": {
            "quick": quick,
            "repeats": repeats,
            "config": {k: v for k, v in dataclasses.asdict(make_config(quick, "set")).items() if k != "sparse"},
            "sparsity": SPARSITY,
        },
        "chunk": bench_chunks(quick, repeats, "stress"),
        "chunk_default": bench_chunks(quick, repeats, "default"),
        "redo": bench_redo(quick, repeats),
        "eaude": bench_eaude(quick, repeats),
        "networks": bench_networks(quick, repeats),
        "transform_only": bench_transform_only(quick, repeats),
        "revival": bench_revival(quick, max(repeats, 10) * 3),
        "dormant_probe": bench_probe(quick, max(repeats, 10) * 3),
    }


def print_report(results: dict[str, Any]) -> None:
    for key in ("chunk", "chunk_default"):
        c = results[key]
        print(
            f"\noverhead: training chunk of {c['updates_per_chunk']} updates, delta_t={c['delta_t']} "
            f"({c['mask_updates_in_chunk_set_rigl']} SET/RigL mask updates)"
        )
        print(f"  dense {fmt(c['ms_per_chunk']['dense'], '.1f')} ms")
        for m, r in c["ratio_vs_dense"].items():
            ok = "met" if r["meets_target"] else "NOT met"
            print(f"  {m:<16} {fmt(c['ms_per_chunk'][m], '.1f')} ms  ratio {fmt(r)}  (target <= {r['target']}: {ok})")
    if "redo" in results:
        r = results["redo"]
        print(f"\noverhead: ReDo every {r['every']} updates, on the default setting's chunk")
        for m, ratio in r["ratio_vs_without"].items():
            ok = "met" if ratio["meets_target"] else "NOT met"
            ms = fmt(r["ms_per_chunk"][m], ".1f")
            print(f"  {m:<16} {ms} ms  ratio {fmt(ratio)}  (target <= {REDO_TARGET}: {ok})")
    if "eaude" in results:
        r = results["eaude"]
        print(f"\noverhead: EauDeSAC (a selection every {r['period']} updates) vs dense SAC, on the default chunk")
        for m, ratio in r["ratio_vs_dense"].items():
            print(f"  {m:<16} {fmt(r['ms_per_chunk'][m], '.1f')} ms  ratio {fmt(ratio)}  (no target: K critics train)")
    if "networks" in results:
        r = results["networks"]
        print("\noverhead: the networks' bodies at width 256, on the stress setting's chunk")
        for m, ratio in r["ratio_vs_mlp_dense"].items():
            print(f"  {m:<16} {fmt(r['ms_per_chunk'][m], '.1f')} ms  ratio vs mlp dense {fmt(ratio)}")
        for m, ratio in r["ratio_vs_simba_dense"].items():
            ok = "met" if ratio["meets_target"] else "NOT met"
            ms = fmt(r["ms_per_chunk"][m], ".1f")
            print(f"  {m:<16} {ms} ms  ratio vs simba dense {fmt(ratio)}  (target <= {ratio['target']}: {ok})")
        b = r["simba_batch"]
        print(f"  a simba batch of {b['runs']} mask-only runs traced its chunk {b['chunk_traces']} time(s)")
    t = results["transform_only"]
    print(f"\noverhead: sparse optimizer alone, {t['steps']} steps without a mask update, {t['params']:,} weights")
    for m, us in t["us_per_step"].items():
        print(
            f"  {m:<20} {fmt(us, '.0f')} us/step" + (f"  ratio {fmt(t['ratio_vs_static'][m])}" if m != "static" else "")
        )
    for m, ms in t["one_mask_update_ms"].items():
        print(f"  one {m} mask update (update with rewire=True): {fmt(ms, '.2f')} ms")
    rv = results["revival"]
    print(f"  TAR revival: tar - static = {fmt(rv['tar_minus_static_ms'])} ms (static {fmt(rv['ms']['static'])} ms)")
    if "dormant_probe" in results:
        d = results["dormant_probe"]
        print(
            f"  dormant-unit probe: {fmt(d['probe_ms'], '.2f')} ms per chunk, "
            f"{fmt(d['probe_share_of_chunk'], '.4f')} of a {fmt(d['chunk_ms'], '.0f')} ms chunk"
        )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run this part alone: ``python -m benchmarks.bench_overhead [--quick]``."""
    return part_main("overhead", __doc__, bench, print_report, argv)


if __name__ == "__main__":
    main()
