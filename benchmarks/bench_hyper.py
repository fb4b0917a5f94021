"""Benchmark: a learning-rate grid, one sweep per value (before) vs one sweep with the rates traced (after).

The grid: 3 actor learning rates x 2 sparsities x (static, tar, rigl) x 2
seeds, SAC on inverted_pendulum (``--quick``: the bandit probe). Before, a
learning rate was a constant of the compiled program, so a sensitivity study
was one sweep per value, each compiling its own mask-only and RigL programs
(3 x 2 = 6); after, SAC takes its learning rates per run
(``AlgorithmSpec.traced``) and ``--actor-lrs`` puts every value in the same
two programs. Both sides run every batch with
:func:`agents.experiments.sweep.run_batch` in this one process, the
persistent compilation cache off, "before" first; the per-run curves of the
two sides are compared too (they must agree to float32 rounding, grown by
training: the batches have other shapes).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax

from agents.algorithms.config import SparsityConfig, TrainConfig
from agents.experiments import sweep
from benchmarks.bench_batching import _BANDIT, _PENDULUM, _curves, _largest_difference, _side
from benchmarks.common import part_main

LRS = (1e-4, 3e-4, 1e-3)


def grid(quick: bool) -> sweep.SweepConfig:
    """The benchmark's grid with the rates as an axis (RigL rewires every 100 updates)."""
    train = TrainConfig(**(_BANDIT if quick else _PENDULUM), sparse=SparsityConfig(distribution="uniform", delta_t=100))
    return sweep.SweepConfig(
        envs=(train.env,), sparsities=(0.8, 0.9), methods=("static", "tar", "rigl"), seeds=2, train=train,
        checkpoint_every=0, actor_lrs=LRS,
    )  # fmt: skip


def bench(quick: bool = False) -> dict[str, Any]:
    jax.config.update("jax_enable_compilation_cache", False)  # every compilation counts, on both sides
    cfg = grid(quick)
    tmp = Path(tempfile.mkdtemp(prefix="sparse_rl_hyper_"))
    try:
        per_value, before_curves = [], {}
        for lr in LRS:
            one = dataclasses.replace(cfg, actor_lrs=None, train=dataclasses.replace(cfg.train, actor_lr=lr))
            per_value.append(_side(one, one.batches(), tmp / f"lr{lr:g}"))
            # The same runs are named with the rate's tag in the traced sweep.
            before_curves.update({_tagged(name, lr): c for name, c in _curves(tmp / f"lr{lr:g}").items()})
        after = _side(cfg, cfg.batches(), tmp / "traced")
        after_curves = _curves(tmp / "traced")
        assert set(after_curves) == set(before_curves), sorted(set(after_curves) ^ set(before_curves))[:4]
        keys = ("eval_return", "critic_loss", "actor_loss")
        agreement = {k: _largest_difference(after_curves, before_curves, k) for k in keys}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    before = {k: sum(s[k] for s in per_value) for k in ("chunk_programs", "xla_compilations", "compile_s", "wall_s")}
    before["batches"] = [b for s in per_value for b in s["batches"]]
    return {
        "settings": {
            "quick": quick,
            "grid": f"{len(LRS)} actor learning rates x 2 sparsities x (static, tar, rigl) x 2 seeds",
            "learning_rates": list(LRS),
            "config": dataclasses.asdict(cfg.train),
            "runs": len(after_curves),
        },
        "before": before,
        "before_per_value": per_value,
        "after": after,
        "compile_s_saved": before["compile_s"] - after["compile_s"],
        "wall_ratio_before_over_after": before["wall_s"] / after["wall_s"],
        "curves_after_vs_before": agreement,
    }


def _tagged(name: str, lr: float) -> str:
    """A run id of a one-rate sweep (``<env>-sac-s0.8-static-seed0``) with the rate's tag where the traced
    sweep puts it (``<env>-sac-s0.8-alr0.0001-static-seed0``)."""
    env, algo, sparsity, rest = name.split("-", 3)
    return f"{env}-{algo}-{sparsity}-alr{lr:g}-{rest}"


def print_report(results: dict[str, Any]) -> None:
    s = results["settings"]
    print(f"\nhyper: {s['grid']} ({s['runs']} runs) on {s['config']['env']}")
    for side, label in (("before", "one sweep per rate"), ("after", "rates traced")):
        r = results[side]
        print(
            f"  {label:<18} {len(r['batches'])} batches, {r['chunk_programs']} chunk programs, "
            f"{r['xla_compilations']} XLA compilations ({r['compile_s']:.1f} s), wall {r['wall_s']:.1f} s"
        )
    print(f"  before / after wall {results['wall_ratio_before_over_after']:.2f}")
    print(f"  curves after vs before: {results['curves_after_vs_before']}")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run this part alone: ``python -m benchmarks.bench_hyper [--quick]``."""
    return part_main("hyper", __doc__, bench, print_report, argv, repeats=False)


if __name__ == "__main__":
    main()
