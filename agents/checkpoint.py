"""Checkpoint layout of a group of runs: the batched ``TrainState`` and the metric history so far.

One orbax ``CheckpointManager`` per group directory keeps the last two
checkpoints. Each holds ``state`` (the state's leaves in pytree order, PRNG
keys as raw key data, zero-size leaves left out) and ``meta`` (JSON: the
per-chunk metric history). Restoring needs a template of the same batched
state (:func:`agents.runner.state_template`), sharded like the live one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.sharding import NamedSharding, PartitionSpec

from agents.train import TrainState

MAX_TO_KEEP = 2


def open_manager(directory: Path) -> ocp.CheckpointManager:
    """The checkpoint manager of one group's directory (keeps the last :data:`MAX_TO_KEEP`)."""
    return ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(max_to_keep=MAX_TO_KEEP))


def history_to_json(history: list[dict]) -> list[dict]:
    return [{k: np.asarray(v).tolist() for k, v in m.items()} for m in history]


def history_from_json(data: list[dict]) -> list[dict]:
    return [{k: np.asarray(v) for k, v in m.items()} for m in data]


def saveable(state: TrainState) -> dict[str, np.ndarray]:
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


def restore_leaves(saved: dict[str, Any], template: TrainState) -> TrainState:
    """The inverse of :func:`saveable`, into ``template``'s structure (zero-size leaves from the template)."""
    leaves, treedef = jax.tree.flatten(template)
    restored = []
    for i, t in enumerate(leaves):
        if t.size == 0:
            restored.append(t)
            continue
        x = saved[f"{i:05d}"]
        restored.append(jax.random.wrap_key_data(x) if jax.numpy.issubdtype(t.dtype, jax.dtypes.prng_key) else x)
    return jax.tree.unflatten(treedef, restored)


def abstract_saveable(template: TrainState, mesh: Any) -> dict[str, jax.ShapeDtypeStruct]:
    """What a checkpoint of ``template`` holds; sharded over the runs axis when there is a mesh."""
    shapes = jax.eval_shape(saveable, template)
    if mesh is None:
        return shapes
    sharding = NamedSharding(mesh, PartitionSpec("runs"))
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), shapes)


def save(manager: ocp.CheckpointManager, chunk: int, state: TrainState, history: list[dict]) -> None:
    """Write the checkpoint after ``chunk`` and wait until it is on disk."""
    manager.save(
        chunk,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(saveable(state)),
            meta=ocp.args.JsonSave({"history": history_to_json(history)}),
        ),
    )
    manager.wait_until_finished()


def restore_latest(
    manager: ocp.CheckpointManager, template: Any, group: str, warn: Callable[[str], None]
) -> tuple[int, dict]:
    """Restore the newest checkpoint of ``group`` that restores, deleting the damaged ones after it.

    ``template`` is :func:`abstract_saveable` of the state; a checkpoint that
    does not restore is reported through ``warn`` before the older one is tried.
    """
    steps = sorted(manager.all_steps(), reverse=True)
    errors = []
    for i, step in enumerate(steps):
        try:
            restored = manager.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore(template), meta=ocp.args.JsonRestore())
            )
            if not isinstance(restored["meta"], dict) or "history" not in restored["meta"]:
                raise ValueError("its metric history is missing")
        except Exception as e:  # orbax and tensorstore raise many kinds on damaged files
            reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            errors.append(f"checkpoint {step}: {reason}")
            if i + 1 < len(steps):
                warn(f"warning: checkpoint {step} of {group} does not restore ({reason}); "
                     f"falling back to checkpoint {steps[i + 1]}.")  # fmt: skip
            continue
        for bad in steps[:i]:  # so that training can save those steps again
            manager.delete(bad)
        return step, restored
    raise ValueError(
        f"no checkpoint of {group} restores ({'; '.join(errors)}); delete {str(manager.directory)!r} to rerun that "
        "group from the start."
    )


def restore(
    manager: ocp.CheckpointManager, state: TrainState, template: TrainState, mesh: Any, group: str, warn: Callable
) -> tuple[int, TrainState, list[dict]]:
    """``(chunk, state, history)`` of the newest restorable checkpoint, into ``state``'s structure."""
    step, restored = restore_latest(manager, abstract_saveable(template, mesh), group, warn)
    return step, restore_leaves(restored["state"], state), history_from_json(restored["meta"]["history"])
