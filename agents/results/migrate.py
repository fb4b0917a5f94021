"""Results directories and checkpoints of earlier versions, brought up to date as they are read.

Every difference between what earlier versions wrote and what this one
writes is handled here, once, when a file is read; the rest of the code sees
only today's layout. :mod:`agents.results` calls the file functions, and
:mod:`agents.execution.checkpoint` asks :func:`older_checkpoint_layouts` for the
layouts to try when a checkpoint does not restore into today's.

What changed, and how it is read:

- A training config (:func:`train_config_json`; ``run.json``'s ``config`` and
  ``config.json``'s ``train``): versions before the algorithms' own config
  classes held SAC's ``alpha_lr`` and ``init_alpha`` and TD3's
  ``policy_delay``, ``target_noise``, ``noise_clip`` and ``expl_noise`` at the
  top level; they move into ``sac`` and ``td3``. Their command-line flags
  (``--config.init-alpha``, ...) still work for one release, with a warning
  naming the new one (:func:`renamed_flag`).
- ``run.json`` (:func:`run_json`): versions before the grid's axes wrote no
  ``hidden``, ``score``, ``distribution`` or ``rho`` (they read as ``None``:
  the sweep did not set them); before ReDo, no ``redo`` (``None``: trained
  without it, as every run then was); before batches, no ``batch``; before the
  topology records, no ``base_topology``, ``reachability`` or
  ``base_reachability``; the earliest, no ``run_id`` (the folder's name).
- ``config.json`` (:func:`config_json`): versions before the batch planner
  wrote no ``plan``: they trained one batch per cell, which
  :meth:`agents.execution.plan.Plan.from_json` reads ``None`` as.
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

# Fields of earlier versions' flat training config that now live in an algorithm's own config class.
_ALGORITHM_FIELDS = {
    "alpha_lr": "sac", "init_alpha": "sac",
    "policy_delay": "td3", "target_noise": "td3", "noise_clip": "td3", "expl_noise": "td3",
}  # fmt: skip


def renamed_flag(arg: str) -> str | None:
    """The new spelling of an earlier version's ``--config.<field>`` flag (``=value`` kept); ``None`` if unchanged.

    >>> renamed_flag("--config.init-alpha=0.5"), renamed_flag("--config.actor-lr")
    ('--config.sac.init-alpha=0.5', None)
    """
    flag, eq, value = arg.partition("=")
    field = flag.removeprefix("--config.").replace("-", "_")
    if not flag.startswith("--config.") or field not in _ALGORITHM_FIELDS:
        return None
    return f"--config.{_ALGORITHM_FIELDS[field]}.{field.replace('_', '-')}{eq}{value}"


def train_config_json(data: Any) -> Any:
    """A training config as this version writes it: the algorithms' fields in their own sections.

    >>> train_config_json({"env": "hopper", "init_alpha": 0.5, "policy_delay": 3})
    {'env': 'hopper', 'sac': {'init_alpha': 0.5}, 'td3': {'policy_delay': 3}}
    """
    if not isinstance(data, dict) or not any(k in data for k in _ALGORITHM_FIELDS):
        return data
    out = {k: v for k, v in data.items() if k not in _ALGORITHM_FIELDS}
    for key, section in _ALGORITHM_FIELDS.items():
        if key in data:
            out[section] = {**out.get(section, {}), key: data[key]}
    return out


def run_json(data: Any, folder_name: str, where: str) -> dict:
    """A ``run.json`` object as this version writes it: the run id from its folder if it lacks one.

    Fields added later (the axes, ``batch``, the topology records) stay
    absent and take the record's defaults.

    Raises:
      ValueError: naming ``where``, if ``data`` is not a JSON object.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where} must hold a JSON object, got {type(data).__name__}.")
    out = {"run_id": folder_name, **data}
    if "config" in out:
        out["config"] = train_config_json(out["config"])
    return out


def config_json(data: Any) -> Any:
    """A ``config.json`` object as this version writes it: a missing ``plan`` is ``None`` (one batch per cell)."""
    if not (isinstance(data, dict) and "sweep" in data):
        return data
    out = {"plan": None, **data}
    if isinstance(out["sweep"], dict) and "train" in out["sweep"]:
        out["sweep"] = {**out["sweep"], "train": train_config_json(out["sweep"]["train"])}
    return out


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
