"""Benchmark: overhead of sparse_jax's masked optimizer and of SET/RigL mask updates.

Measures, on the default JAX backend:

1. Masked vs unmasked Adam on a 17-256-256-6 MLP (a halfcheetah-sized actor),
   batch 256, MSE regression on random data, 90% sparse random-score ERK masks
   (``sparse_jax.sparse_init(..., method="static", score="random", distribution="erk")``).
   ``sparse_jax.static_sparse(optax.adam(3e-4), masks)`` is compared with
   ``optax.adam(3e-4)`` on

   (a) a full training step: ``value_and_grad`` of the loss, optimizer update
       and ``optax.apply_updates``. Target: median time ratio masked/unmasked
       <= 1.05;
   (b) the optimizer update and ``optax.apply_updates`` alone, on precomputed
       gradients (reported, no target).

2. The cost of one SET and one RigL mask update on an "actor plus two critics"
   params dict (actor 17-256-256-12, two critics 23-256-256-1), 90% sparse ERK
   masks, one sparse transform over the whole dict,
   ``DSTSchedule(total_steps=100_000, delta_t=1000)``: the time of a training
   step that rewires minus that of a step that does not (both run by the same
   compiled function, the schedule driven by a traced ``step``), as a
   percentage of the time of 1000 regular training steps (timed as 500-step
   calls, scaled to 1000). Target: < 1%.

Method: every timed call runs several steps inside one jitted ``lax.scan`` and
blocks on the result; every function is compiled and run once before timing;
the sides of a comparison are timed alternately in the same process (the order
is reversed on every other repeat) and each ratio is computed per repeat, then
reported as median [min, max] over the repeats.

Usage::

    python -m benchmarks.bench_sparse_jax [--repeats 30] [--quick] [--out PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import sparse_jax
from benchmarks.common import fmt, interleaved, machine_info, summary

LEARNING_RATE = 3e-4
SPARSITY = 0.9
BATCH = 256
OBS_DIM, ACT_DIM = 17, 6
HIDDEN = (256, 256)
REFERENCE_STEPS = 1000
FULL_STEP_TARGET = 1.05
MASK_UPDATE_TARGET_PCT = 1.0
SCHEDULE = sparse_jax.DSTSchedule(total_steps=100_000, delta_t=1000)


@dataclasses.dataclass(frozen=True)
class Settings:
    """How much work each measurement does.

    Attributes:
      repeats: timed repeats of every side of every comparison.
      scan_steps: training steps per timed call in the masked-step comparison.
      regular_steps: steps per timed call for the regular-step baseline of the
        mask-update measurement (scaled to 1000 steps when it differs).
      rewire_steps: steps per timed call for the rewiring / non-rewiring pair
        (every step of the call rewires, or none does).
    """

    repeats: int
    scan_steps: int = 100
    regular_steps: int = 500
    rewire_steps: int = 4

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        """Full settings, or tiny ones for ``--quick`` (a smoke run)."""
        if args.quick:
            return cls(repeats=min(args.repeats, 3), scan_steps=10, regular_steps=50, rewire_steps=1)
        return cls(repeats=args.repeats)


class MLP(nn.Module):
    """ReLU MLP of ``nn.Dense`` layers; the last layer is linear."""

    features: Sequence[int]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for f in self.features[:-1]:
            x = nn.relu(nn.Dense(f)(x))
        return nn.Dense(self.features[-1])(x)


# ---------------------------------------------------------------- 1. masked vs unmasked step


def mse(model: nn.Module, params: Any, x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean squared error of ``model.apply(params, x)`` against ``y``."""
    return jnp.mean((model.apply(params, x) - y) ** 2)


def make_train_scan(model: nn.Module, tx: optax.GradientTransformation, n_steps: int) -> Callable:
    """Jitted ``run(params, opt_state, x, y)`` doing ``n_steps`` full training steps in a scan."""

    @jax.jit
    def run(params, opt_state, x, y):
        def step(carry, _):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(lambda p: mse(model, p, x, y))(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), length=n_steps)
        return params, opt_state, losses

    return run


def make_update_scan(tx: optax.GradientTransformation, n_steps: int) -> Callable:
    """Jitted ``run(params, opt_state, grads)`` doing ``n_steps`` optimizer updates + apply_updates."""

    @jax.jit
    def run(params, opt_state, grads):
        def step(carry, _):
            params, opt_state = carry
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        (params, opt_state), _ = jax.lax.scan(step, (params, opt_state), length=n_steps)
        return params, opt_state

    return run


def bench_masked_step(settings: Settings, key: jax.Array) -> dict[str, Any]:
    """Masked (static_sparse Adam) vs unmasked Adam: full step and update-only step."""
    k_init, k_mask, k_x, k_y = jax.random.split(key, 4)
    model = MLP((*HIDDEN, ACT_DIM))
    x = jax.random.normal(k_x, (BATCH, OBS_DIM))
    y = jax.random.normal(k_y, (BATCH, ACT_DIM))
    dense = model.init(k_init, x)
    init = sparse_jax.sparse_init(k_mask, dense, SPARSITY, method="static", score="random", distribution="erk")
    params = init.params
    grads = jax.grad(lambda p: mse(model, p, x, y))(params)
    txs = {
        "unmasked": optax.adam(LEARNING_RATE),
        "masked": sparse_jax.static_sparse(optax.adam(LEARNING_RATE)),
    }
    states = {
        "unmasked": txs["unmasked"].init(params),
        "masked": sparse_jax.with_masks(txs["masked"].init(params), init.masks),
    }
    n = settings.scan_steps

    out: dict[str, Any] = {
        "density": sparse_jax.density_summary(init.masks)["total"],
        "steps_per_call": n,
    }
    variants = {
        "full_step": {
            name: functools.partial(make_train_scan(model, tx, n), params, states[name], x, y)
            for name, tx in txs.items()
        },
        "update_only": {
            name: functools.partial(make_update_scan(tx, n), params, states[name], grads) for name, tx in txs.items()
        },
    }
    for variant, calls in variants.items():
        times = interleaved(calls, settings.repeats)
        ratios = [m / u for m, u in zip(times["masked"], times["unmasked"], strict=True)]
        out[variant] = {
            "ratio_masked_over_unmasked": summary(ratios),
            "us_per_step": {name: summary([t / n * 1e6 for t in ts]) for name, ts in times.items()},
            "raw_seconds_per_call": times,
        }
    out["full_step"]["target_ratio"] = FULL_STEP_TARGET
    out["full_step"]["meets_target"] = out["full_step"]["ratio_masked_over_unmasked"]["median"] <= FULL_STEP_TARGET
    return out


# ---------------------------------------------------------------- 2. mask-update cost


def actor_critics() -> tuple[dict[str, nn.Module], dict[str, int]]:
    """Actor 17-256-256-12 and two critics (17+6)-256-256-1, with their input sizes."""
    models = {
        "actor": MLP((*HIDDEN, 2 * ACT_DIM)),
        "critic1": MLP((*HIDDEN, 1)),
        "critic2": MLP((*HIDDEN, 1)),
    }
    in_dims = {"actor": OBS_DIM, "critic1": OBS_DIM + ACT_DIM, "critic2": OBS_DIM + ACT_DIM}
    return models, in_dims


def make_dst_scan(models: dict[str, nn.Module], tx: optax.GradientTransformationExtraArgs) -> Callable:
    """Jitted ``run(params, opt_state, batch, steps)``: one training step per entry of ``steps``.

    The loss is the sum of the three networks' MSE losses on ``batch``
    (``{name: (inputs, targets)}``); each entry of ``steps`` is passed to the
    transform as its (traced) ``step`` extra argument, so one compiled function
    serves both rewiring and non-rewiring steps.
    """

    def loss_fn(params, batch):
        return sum(mse(models[k], params[k], *batch[k]) for k in models)

    @jax.jit
    def run(params, opt_state, batch, steps):
        def step(carry, t):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params, batch)
            updates, opt_state = tx.update(grads, opt_state, params, step=t)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), steps)
        return params, opt_state, losses

    return run


def changed_fraction(old: Any, new: Any) -> float:
    """Fraction of the active entries of ``old`` that are inactive in ``new``."""
    pairs = zip(jax.tree.leaves(old), jax.tree.leaves(new), strict=True)
    dropped = active = 0
    for o, n in pairs:
        o, n = np.asarray(o), np.asarray(n)
        dropped += int(np.count_nonzero(o & ~n))
        active += int(np.count_nonzero(o))
    return dropped / active


def bench_mask_update(settings: Settings, key: jax.Array) -> dict[str, Any]:
    """SET and RigL: cost of a rewiring step over a regular one, as % of 1000 regular steps."""
    k_init, k_mask, k_set, k_data = jax.random.split(key, 4)
    models, in_dims = actor_critics()
    batch, dense = {}, {}
    for i, (name, model) in enumerate(models.items()):
        kx, ky = jax.random.split(jax.random.fold_in(k_data, i))
        x = jax.random.normal(kx, (BATCH, in_dims[name]))
        y = jax.random.normal(ky, (BATCH, model.features[-1]))
        batch[name] = (x, y)
        dense[name] = model.init(jax.random.fold_in(k_init, i), x)
    init = sparse_jax.sparse_init(k_mask, dense, SPARSITY, method="static", score="random", distribution="erk")
    params, masks = init.params, init.masks
    counts = sparse_jax.active_counts(masks)  # tight top-k bounds for the rewiring
    txs = {
        "set": sparse_jax.set_sparse(optax.adam(LEARNING_RATE), schedule=SCHEDULE, max_active=counts),
        "rigl": sparse_jax.rigl_sparse(optax.adam(LEARNING_RATE), schedule=SCHEDULE, max_active=counts),
    }
    k = settings.rewire_steps
    step_values = {
        "regular": jnp.zeros(settings.regular_steps, jnp.int32),
        "rewire": jnp.full(k, SCHEDULE.delta_t - 1, jnp.int32),
        "no_rewire": jnp.zeros(k, jnp.int32),
    }
    out: dict[str, Any] = {
        "density": sparse_jax.density_summary(masks)["total"],
        "schedule": dataclasses.asdict(SCHEDULE),
        "regular_steps_per_call": settings.regular_steps,
        "rewire_steps_per_call": k,
    }
    for method, tx in txs.items():
        run = make_dst_scan(models, tx)
        state = sparse_jax.with_masks(tx.init(params), masks, key=k_set)
        # Check that step=delta_t-1 rewires and step=0 does not.
        rewired = {
            name: changed_fraction(masks, sparse_jax.get_masks(run(params, state, batch, steps[:1])[1]))
            for name, steps in (("rewire", step_values["rewire"]), ("no_rewire", step_values["no_rewire"]))
        }
        calls = {name: functools.partial(run, params, state, batch, steps) for name, steps in step_values.items()}
        times = interleaved(calls, settings.repeats)
        ref = [t * REFERENCE_STEPS / settings.regular_steps for t in times["regular"]]
        cost = [(r - n) / k for r, n in zip(times["rewire"], times["no_rewire"], strict=True)]
        pct = [100.0 * c / t for c, t in zip(cost, ref, strict=True)]
        out[method] = {
            "mask_update_pct_of_1000_steps": summary(pct),
            "mask_update_ms": summary([c * 1e3 for c in cost]),
            "regular_1000_steps_ms": summary([t * 1e3 for t in ref]),
            "regular_us_per_step": summary([t / REFERENCE_STEPS * 1e6 for t in ref]),
            "fraction_of_active_dropped": rewired,
            "target_pct": MASK_UPDATE_TARGET_PCT,
            "meets_target": statistics.median(pct) < MASK_UPDATE_TARGET_PCT,
            "raw_seconds_per_call": times,
        }
    return out


# ---------------------------------------------------------------- report


def print_report(results: dict[str, Any]) -> None:
    """Print the figures as two readable tables."""
    m = results["machine"]
    print(f"\nsparse_jax benchmark  {m['date_utc']}  jax {m['jax']}  {m['devices']}  {m['cpu_count']} CPUs")
    print(f"repeats={results['settings']['repeats']}; figures are median [min, max] over repeats\n")

    ms = results["masked_step"]
    print(
        f"1. static_sparse(adam) vs adam, MLP 17-256-256-6, batch {BATCH}, "
        f"density {ms['density']['density']:.3f}, {ms['steps_per_call']} steps per timed call"
    )
    print(f"   {'variant':<12} {'masked/unmasked':<26} {'unmasked us/step':<26} {'masked us/step':<26}")
    for variant in ("full_step", "update_only"):
        r = ms[variant]
        print(
            f"   {variant:<12} {fmt(r['ratio_masked_over_unmasked']):<26} "
            f"{fmt(r['us_per_step']['unmasked'], '.1f'):<26} {fmt(r['us_per_step']['masked'], '.1f'):<26}"
        )
    ok = "met" if ms["full_step"]["meets_target"] else "NOT met"
    print(f"   target full_step ratio <= {FULL_STEP_TARGET}: {ok}\n")

    mu = results["mask_update"]
    print(
        f"2. mask update, actor + 2 critics, density {mu['density']['density']:.3f}, "
        f"delta_t={SCHEDULE.delta_t}, {mu['rewire_steps_per_call']} rewiring steps per timed call"
    )
    print(f"   {'method':<6} {'update % of 1000 steps':<26} {'update ms':<26} {'1000 steps ms':<26} {'dropped':<8}")
    for method in ("set", "rigl"):
        r = mu[method]
        dropped = r["fraction_of_active_dropped"]
        print(
            f"   {method:<6} {fmt(r['mask_update_pct_of_1000_steps']):<26} {fmt(r['mask_update_ms']):<26} "
            f"{fmt(r['regular_1000_steps_ms'], '.1f'):<26} {dropped['rewire']:.3f}/{dropped['no_rewire']:.3f}"
        )
    for method in ("set", "rigl"):
        ok = "met" if mu[method]["meets_target"] else "NOT met"
        print(f"   target {method} < {MASK_UPDATE_TARGET_PCT}%: {ok}")
    print("   (dropped: fraction of active weights rewired by one step=delta_t-1 / one step=0)")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse arguments, run both benchmarks, print the tables and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed repeats per side (default 30)")
    parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke run")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("benchmarks/results/sparse_jax.json"),
        help="JSON output path (default benchmarks/results/sparse_jax.json)",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    settings = Settings.from_args(args)

    start = time.perf_counter()
    key = jax.random.key(0)
    results: dict[str, Any] = {
        "machine": machine_info(),
        "settings": {
            **dataclasses.asdict(settings),
            "quick": args.quick,
            "batch": BATCH,
            "sparsity": SPARSITY,
            "learning_rate": LEARNING_RATE,
        },
        "masked_step": bench_masked_step(settings, jax.random.fold_in(key, 1)),
        "mask_update": bench_mask_update(settings, jax.random.fold_in(key, 2)),
    }
    results["wall_seconds"] = time.perf_counter() - start
    print_report(results)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out} ({results['wall_seconds']:.0f} s)")
    return results


if __name__ == "__main__":
    main()
