"""Results directories and checkpoints of earlier versions, brought up to date as they are read.

Every difference between what earlier versions wrote and what this one
writes is handled here, once, when a file is read; the rest of the code sees
only today's layout. :mod:`agents.results` calls the file functions, and
:mod:`agents.checkpoint` asks :func:`older_checkpoint_layouts` for the
layouts to try when a checkpoint does not restore into today's.

What changed, and how it is read:

- ``run.json`` (:func:`run_json`): versions before the grid's axes wrote no
  ``hidden``, ``score``, ``distribution`` or ``rho`` (they read as ``None``:
  the sweep did not set them); before batches, no ``batch``; before the
  topology records, no ``base_topology``, ``reachability`` or
  ``base_reachability``; the earliest, no ``run_id`` (the folder's name).
- ``config.json`` (:func:`config_json`): versions before the batch planner
  wrote no ``plan``: they trained one batch per cell, which
  :meth:`agents.plan.Plan.from_json` reads ``None`` as.
- Checkpointed histories (:func:`history_metric`): checkpoints before
  per-run timings hold ``wall_s`` and ``steps_per_s`` as one number for the
  whole batch. ``curve.jsonl`` rows of every version read as they are (a
  metric added later is absent from older rows; readers say so).
- Checkpoints (:func:`is_numbered_layout`, :func:`older_checkpoint_layouts`): versions before leaves
  were named by their pytree path numbered them in pytree order
  (``00000``, ``00001``, ...); GMP checkpoints from before its count table
  (``SparseState.targets``) joined the optimizer state lack that table, which
  the live state rebuilds from the config.

This module imports neither jax nor the rest of the package, so the report
reads old results without loading an accelerator runtime.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

_NUMBERED = re.compile(r"\d{5}")


def run_json(data: Any, folder_name: str, where: str) -> dict:
    """A ``run.json`` object as this version writes it: the run id from its folder if it lacks one.

    Fields added later (the axes, ``batch``, the topology records) stay
    absent and take the record's defaults.

    Raises:
      ValueError: naming ``where``, if ``data`` is not a JSON object.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where} must hold a JSON object, got {type(data).__name__}.")
    return {"run_id": folder_name, **data}


def config_json(data: Any) -> Any:
    """A ``config.json`` object as this version writes it: a missing ``plan`` is ``None`` (one batch per cell)."""
    if isinstance(data, dict) and "sweep" in data:
        return {"plan": None, **data}
    return data


def history_metric(value: Any, run: int) -> Any:
    """Run ``run``'s value of one checkpointed metric: per run, or one number for the batch (earlier versions)."""
    return value[run] if getattr(value, "ndim", 0) else value


def is_numbered_layout(saved: dict) -> bool:
    """Whether a checkpoint's ``state`` item is in the numbered layout of earlier versions."""
    return bool(saved) and all(_NUMBERED.fullmatch(k) and not isinstance(v, dict) for k, v in saved.items())


def older_checkpoint_layouts(
    template: dict, partial: bool, numbered: dict | None, strip: Callable[[dict], dict | None]
) -> Iterator[tuple[dict, bool]]:
    """The ``(target, partial)`` restore targets to try, in order, after ``template`` did not restore.

    Args:
      template: today's layout (leaves named by pytree path).
      partial: whether ``template`` is a partial read (one part of the state).
      numbered: the same state in the numbered layout of earlier versions, or ``None``.
      strip: gives ``template`` without GMP's count table (``None`` if it has none); that
        read is partial, since the caller's state holds the table.
    """
    if numbered is not None:
        yield numbered, partial
    stripped = strip(template)
    if stripped is not None:
        yield stripped, True
