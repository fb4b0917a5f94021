"""Sweeps: envs x algorithms x sparsities x methods x seeds into one results directory.

Every (env, algo, sparsity) cell runs its methods in compiled groups: the
mask-only methods (dense, static, uniform_revival, tar) together, vmapped over
methods and seeds; SET and RigL each on their own, vmapped over seeds. After
every chunk a group writes an orbax checkpoint (state plus the metric
history) and rewrites its runs' learning curves, so ``resume`` continues an
interrupted sweep from the last checkpoint of every group and ends with the
same final metrics as an uninterrupted sweep. Finally ``agents.report``
builds the tables and figures. The layout is in :mod:`agents.results`.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import math
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.sharding import NamedSharding, PartitionSpec
from tqdm.auto import tqdm

import sparse_jax as sj
from agents import report as report_lib
from agents import results
from agents.config import ALGOS, MASK_ONLY_METHODS, METHODS, SparsityConfig, TrainConfig
from agents.train import TrainState, prepare, runs_mesh, state_template, train_chunks
from envs import ENV_NAMES


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A grid of runs.

    Attributes:
      envs: environment names.
      algos: ``sac`` and/or ``td3``.
      sparsities: target sparsities in ``[0, 1)`` (dense runs ignore them).
      methods: any of dense, static, uniform_revival, tar, set, rigl.
      seeds: number of seeds per cell (seeds 0 .. seeds - 1).
      train: the per-run training configuration (its env, algo, method and sparsity are set per cell).
      checkpoint_every: chunks between checkpoints (0 disables checkpoints and resume).
    """

    envs: tuple[str, ...] = ("inverted_pendulum",)
    algos: tuple[str, ...] = ("sac",)
    sparsities: tuple[float, ...] = (0.9,)
    methods: tuple[str, ...] = METHODS
    seeds: int = 3
    train: TrainConfig = TrainConfig()
    checkpoint_every: int = 1

    def __post_init__(self):
        _check_names("env", self.envs, ENV_NAMES)
        _check_names("algo", self.algos, ALGOS)
        _check_names("method", self.methods, METHODS)
        for s in self.sparsities:
            if not 0.0 <= s < 1.0:
                raise ValueError(f"sparsity {s!r} is outside the allowed range [0, 1).")
        if not self.sparsities:
            raise ValueError("sparsities must not be empty.")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1:
            raise ValueError(f"seeds={self.seeds!r} must be a positive int (the number of seeds).")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every={self.checkpoint_every!r} must be >= 0.")

    def cell_config(self, env: str, algo: str, sparsity: float) -> TrainConfig:
        """The ``TrainConfig`` of one cell (method set per group)."""
        sparse = dataclasses.replace(self.train.sparse, sparsity=sparsity)
        return dataclasses.replace(self.train, env=env, algo=algo, sparse=sparse)

    def groups(self) -> list[tuple[str, str, float, tuple[str, ...]]]:
        """``(env, algo, sparsity, methods)`` for every compiled group, in run order."""
        mask_only = tuple(m for m in self.methods if m in MASK_ONLY_METHODS)
        dynamic = [(m,) for m in self.methods if m not in MASK_ONLY_METHODS]
        out = []
        for env in self.envs:
            for algo in self.algos:
                for sparsity in self.sparsities:
                    out += [(env, algo, sparsity, ms) for ms in ([mask_only] if mask_only else []) + dynamic]
        return out


def _check_names(kind: str, names: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    if not names:
        raise ValueError(f"at least one {kind} is needed; allowed: {', '.join(allowed)}.")
    for n in names:
        if n not in allowed:
            raise ValueError(f"unknown {kind} {n!r}; allowed: {', '.join(allowed)}.")


# Presets. `quick` shows the whole comparison on a laptop CPU in minutes. inverted_pendulum is the
# cheapest brax task on which dense SAC visibly learns (eval return from ~30 to 1000 within ~10k env
# steps here). Measured on a 2-core CPU: 64-64 networks at sparsity 0.9 leave too few connections for
# any sparse method to learn in this budget, while 128-128 networks separate them at ~14k steps (the
# dense runs solve the task, sparse ones part of the time); 128-128 x 20k steps took 9.5 minutes,
# over the 10-minute budget, so the run stops at 14k.
PRESETS: dict[str, SweepConfig] = {
    "quick": SweepConfig(
        envs=("inverted_pendulum",),
        algos=("sac",),
        sparsities=(0.9,),
        methods=METHODS,
        seeds=3,
        train=TrainConfig(
            env="inverted_pendulum",
            total_steps=14_000,
            warmup_steps=1_000,
            chunk_steps=1_000,
            num_envs=4,
            updates_per_step=4,
            hidden=(128, 128),
            batch_size=128,
            actor_lr=1e-3,
            critic_lr=1e-3,
            alpha_lr=1e-3,
            eval_episodes=4,
            sparse=SparsityConfig(delta_t=1000),
        ),
    ),
    # The accelerator preset of the specification: Graesser et al.'s protocol (256-256, batch 256,
    # lr 3e-4, ERK, RigL/SET every 1000 steps, drop 0.5 cosine to 0 at 80%), 1M steps, 5 seeds.
    "paper": SweepConfig(
        envs=("halfcheetah", "hopper", "walker2d", "ant", "humanoid"),
        algos=("sac", "td3"),
        sparsities=(0.8, 0.9, 0.95),
        methods=METHODS,
        seeds=5,
        train=TrainConfig(
            total_steps=1_000_000,
            warmup_steps=10_000,
            chunk_steps=10_000,
            num_envs=1,
            updates_per_step=1,
            hidden=(256, 256),
            batch_size=256,
            eval_episodes=10,
            sparse=SparsityConfig(distribution="erk", delta_t=1000, drop_fraction=0.5, end_fraction=0.8),
        ),
    ),
}


def check_output_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse a file, or a non-empty directory unless resuming or overwriting (nothing is written)."""
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other.")
    if out.exists() and not out.is_dir():
        raise ValueError(f"results path {str(out)!r} is a file; give a directory.")
    non_empty = out.is_dir() and any(out.iterdir())
    if resume and not (out / "config.json").is_file():
        raise ValueError(f"cannot resume {str(out)!r}: it has no config.json from an earlier sweep.")
    if non_empty and not (resume or overwrite):
        raise ValueError(f"results directory {str(out)!r} is not empty; pass --resume or --overwrite.")


def _provenance() -> dict[str, Any]:
    versions = {}
    for pkg in ("jax", "jaxlib", "flax", "optax", "brax", "orbax-checkpoint", "numpy", "scipy", "sparse-rl"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {"versions": versions, "git_commit": commit, "devices": [str(d) for d in jax.devices()]}


def config_to_json(cfg: SweepConfig) -> dict:
    """The resolved sweep config as JSON-able data."""
    return dataclasses.asdict(cfg)


def config_from_json(data: dict) -> SweepConfig:
    """Inverse of :func:`config_to_json`."""
    train = dict(data["train"])
    train["sparse"] = SparsityConfig(**train["sparse"])
    train["hidden"] = tuple(train["hidden"])
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k != "train"}
    return SweepConfig(**fields, train=TrainConfig(**train))


def _finite(x: Any) -> bool:
    return bool(np.all(np.isfinite(x)))


def _params_info(init: sj.SparseInit, run: int) -> dict[str, int]:
    masks = jax.tree.map(lambda m: np.asarray(m[run]), init.masks)
    params = jax.tree.leaves(init.params)
    prunable = sum(m.size for m in jax.tree.leaves(masks))
    return {
        "active": int(sum(m.sum() for m in jax.tree.leaves(masks))),
        "prunable": int(prunable),
        "total": int(sum(int(np.prod(p.shape[1:])) for p in params)),
    }


def _topology(masks: Any, run: int) -> list[dict]:
    rows = sj.layer_topology(jax.tree.map(lambda m: np.asarray(m[run]), masks))
    return [dict(r._asdict(), shape=list(r.shape)) for r in rows]


def _curve_rows(history: list[dict], run: int) -> list[dict]:
    rows = []
    for c, metrics in enumerate(history):
        row = {"chunk": c}
        for k, v in metrics.items():
            v = np.asarray(v)
            v = v[run] if v.ndim else v
            row[k] = v.item()
        rows.append(row)
    return rows


def _history_to_json(history: list[dict]) -> list[dict]:
    return [{k: np.asarray(v).tolist() for k, v in m.items()} for m in history]


def _history_from_json(data: list[dict]) -> list[dict]:
    return [{k: np.asarray(v) for k, v in m.items()} for m in data]


def _saveable(state: TrainState) -> dict[str, np.ndarray]:
    """Flat leaves, PRNG keys as their raw data (orbax stores plain arrays).

    Zero-size leaves (some Brax pipeline states have them, e.g. halfcheetah's)
    are left out: orbax refuses them, and they hold no data to restore.
    """
    out = {}
    for i, x in enumerate(jax.tree.leaves(state)):
        if x.size == 0:
            continue
        if jax.numpy.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        out[f"{i:05d}"] = x
    return out


def _restore_leaves(saved: dict[str, Any], template: TrainState) -> TrainState:
    leaves, treedef = jax.tree.flatten(template)
    restored = []
    for i, t in enumerate(leaves):
        if t.size == 0:
            restored.append(t)
            continue
        x = saved[f"{i:05d}"]
        restored.append(jax.random.wrap_key_data(x) if jax.numpy.issubdtype(t.dtype, jax.dtypes.prng_key) else x)
    return jax.tree.unflatten(treedef, restored)


def _abstract_saveable(template: TrainState, mesh: Any) -> dict[str, jax.ShapeDtypeStruct]:
    """What a checkpoint of ``template`` holds; sharded over the runs axis when there is a mesh."""
    shapes = jax.eval_shape(_saveable, template)
    if mesh is None:
        return shapes
    sharding = NamedSharding(mesh, PartitionSpec("runs"))
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), shapes)


def run_group(
    cfg: SweepConfig,
    out: Path,
    env: str,
    algo: str,
    sparsity: float,
    methods: tuple[str, ...],
    resume: bool,
    progress: Callable[[int, dict[str, float]], None],
    num_devices: int | None = None,
) -> None:
    """Train one compiled group of runs, checkpointing and writing curves after every chunk.

    Every process of a multi-host job runs this; only process 0 writes files.
    """
    train_cfg = cfg.cell_config(env, algo, sparsity)
    seeds = list(range(cfg.seeds))
    ids = [results.run_id(env, algo, sparsity, m, s) for m in methods for s in seeds]
    group = f"{env}-{algo}-s{sparsity:g}-{'+'.join(methods)}"
    ckpt_dir = (out / "checkpoints" / group).absolute()
    done = all(
        (out / "runs" / i / "run.json").is_file() and results.read_json(out / "runs" / i / "run.json")["finished"]
        for i in ids
    )
    if resume and done:
        progress(len(ids) * train_cfg.num_chunks * train_cfg.chunk_steps, {})
        return

    prepared = prepare(train_cfg, seeds, methods, num_devices)
    trainer, state, mesh = prepared.trainer, prepared.state, prepared.mesh
    writer = jax.process_index() == 0
    history: list[dict] = []
    first = 0
    manager = (
        ocp.CheckpointManager(ckpt_dir, options=ocp.CheckpointManagerOptions(max_to_keep=1))
        if cfg.checkpoint_every
        else None
    )
    if resume and manager is not None and manager.latest_step() is not None:
        step = manager.latest_step()
        num_slots = jax.tree.leaves(state.env_steps)[0].shape[0]  # real runs plus padding
        template = _abstract_saveable(state_template(trainer, num_slots), mesh)
        restored = manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(template), meta=ocp.args.JsonRestore())
        )
        state = _restore_leaves(restored["state"], state)
        history = _history_from_json(restored["meta"]["history"])
        first = step + 1
        progress(len(ids) * first * train_cfg.chunk_steps, {})

    def write_runs(finished: bool) -> None:
        if not writer:
            return
        for r, rid in enumerate(ids):
            method, seed = prepared.labels[r]
            curve = _curve_rows(history, r)
            diverged = any(not _finite([row.get(k, 0.0) for k in ("critic_loss", "actor_loss")]) for row in curve)
            folder = out / "runs" / rid
            results.atomic_write_text(folder / "curve.jsonl", "".join(json.dumps(row) + "\n" for row in curve))
            actor, critic = prepared.masks
            info = {
                "run_id": rid, "env": env, "algo": algo, "sparsity": sparsity, "method": method, "seed": seed,
                "diverged": diverged, "finished": finished,
                "chunks_done": len(history), "total_chunks": train_cfg.num_chunks,
                "delta_t": train_cfg.sparse.delta_t, "end_fraction": train_cfg.sparse.end_fraction,
                "total_updates": train_cfg.total_updates,
                "params": {"actor": _params_info(actor, r), "critic": _params_info(critic, r)},
                "topology": {"actor": _topology(actor.masks, r), "critic": _topology(critic.masks, r)},
                "base_topology": {"actor": _topology(actor.base_masks, r), "critic": _topology(critic.base_masks, r)},
            }  # fmt: skip
            results.atomic_write_json(folder / "run.json", info)

    def on_chunk(c: int, metrics: dict[str, np.ndarray], state: TrainState) -> None:
        history.append(metrics)
        if manager is not None and ((c + 1) % cfg.checkpoint_every == 0 or c + 1 == train_cfg.num_chunks):
            manager.save(
                c,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(_saveable(state)),
                    meta=ocp.args.JsonSave({"history": _history_to_json(history)}),
                ),
            )
            manager.wait_until_finished()
        write_runs(finished=c + 1 == train_cfg.num_chunks)
        returns = {
            m: float(np.nanmean(metrics["eval_return"][i * len(seeds) : (i + 1) * len(seeds)]))
            for i, m in enumerate(methods)
        }
        progress(len(ids) * train_cfg.chunk_steps, {**returns, "steps/s": float(metrics["steps_per_s"])})

    write_runs(finished=first == train_cfg.num_chunks)
    train_chunks(trainer, state, first, on_chunk, len(ids), mesh, prepared.chunk)
    if manager is not None:
        manager.close()


def run_sweep(
    cfg: SweepConfig,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    show_progress: bool = True,
    num_devices: int | None = None,
) -> list[dict]:
    """Run every group of ``cfg`` into ``out``, then write the report. Returns the summary rows.

    With ``resume`` the sweep's own ``config.json`` is used and finished runs
    are skipped; with ``overwrite`` an existing directory is emptied first.
    The runs axis of every group is sharded over ``num_devices`` devices
    (default: all of them; results are identical to a one-device run).
    """
    out = Path(out)
    check_output_dir(out, resume, overwrite)
    runs_mesh(num_devices)  # validates the device count before anything is written
    if resume:
        cfg = config_from_json(results.read_json(out / "config.json")["sweep"])
    else:
        if overwrite and out.is_dir():
            shutil.rmtree(out)
        results.atomic_write_json(out / "config.json", {"sweep": config_to_json(cfg), **_provenance()})
    groups = cfg.groups()
    total = sum(
        len(ms) * cfg.seeds * cfg.cell_config(e, a, s).num_chunks * cfg.train.chunk_steps for e, a, s, ms in groups
    )
    bar = tqdm(total=total, unit="step", desc="sweep", disable=not show_progress, dynamic_ncols=True)
    latest: dict[str, float] = {}

    def progress(steps: int, info: dict[str, float]) -> None:
        latest.update({k: round(v, 1) for k, v in info.items() if math.isfinite(v)})
        bar.set_postfix(latest, refresh=False)
        bar.update(steps)

    try:
        for env, algo, sparsity, methods in groups:
            bar.set_description(f"{env} {algo} s={sparsity:g} {'+'.join(methods)}")
            run_group(cfg, out, env, algo, sparsity, methods, resume, progress, num_devices)
    finally:
        bar.close()
    if jax.process_index() != 0:
        return report_lib.summarize(out)
    return report_lib.write_report(out)
