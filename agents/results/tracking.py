"""Experiment tracking: each run of a sweep to TensorBoard and/or Weights & Biases.

One tracked run per (cell, method, seed), named by its run id (the folder
name under ``runs/``) and grouped by its batch (one compiled program). It gets the resolved
config of that run as hyperparameters when it starts, and after every chunk
the metrics of its ``curve.jsonl`` row, stepped by ``env_steps``.

``--log tensorboard`` writes ``<results>/tensorboard/<run_id>/`` (tensorboardX,
which brax already installs; ``tensorboard --logdir <results>/tensorboard``).
``--log wandb`` needs ``pip install 'sparse-rl[wandb]'``; it follows W&B's own
environment variables: ``WANDB_MODE=offline`` logs without network (``wandb
sync`` uploads later), ``WANDB_PROJECT`` names the project (default
``sparse-rl``), files go under ``<results>/wandb``.

Only process 0 of a multi-host job tracks. A resumed sweep (give ``--log``
again) continues each unfinished run where its checkpoint left off: TensorBoard
drops the events logged after that step (``purge_step``), and W&B resumes the
same run (its id is derived from the results directory and the run id), so a
curve has no duplicated or split chunks. Runs that had finished are skipped.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from sparse_jax.validation import check_choice

TRACKERS = ("tensorboard", "wandb")


class Tracker(Protocol):
    """Where a sweep's runs are logged (see module docs)."""

    def start(self, run_id: str, group: str, config: dict[str, Any], first_step: int = 0) -> None:
        """Begin (or, from env step ``first_step`` on, continue) run ``run_id`` of batch ``group``.

        ``config`` is the run's resolved config (nested JSON values); what an
        earlier attempt logged at ``first_step`` or later is replaced.
        """

    def log(self, run_id: str, step: int, metrics: dict[str, float]) -> None:
        """Log one chunk's ``metrics`` of ``run_id`` at env step ``step``."""

    def finish(self, run_id: str) -> None:
        """End run ``run_id`` (its last chunk is logged)."""

    def close(self) -> None:
        """End every run still open (the sweep stopped or failed)."""


def flatten_config(config: dict[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """Nested config as ``{"sparse.method": "tar", ...}``, with values TensorBoard's hparams accept.

    Lists and ``None`` become their JSON text.

    >>> flatten_config({"lr": 0.1, "sparse": {"method": "tar", "rho": None}, "hidden": [64, 64]})
    {'lr': 0.1, 'sparse.method': 'tar', 'sparse.rho': 'null', 'hidden': '[64, 64]'}
    """
    out: dict[str, bool | int | float | str] = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(flatten_config(v, f"{prefix}{k}."))
        elif isinstance(v, bool | int | float | str):
            out[f"{prefix}{k}"] = v
        else:
            out[f"{prefix}{k}"] = json.dumps(v)
    return out


class TensorBoardTracker:
    """One ``tensorboardX.SummaryWriter`` per run under ``directory/<run_id>``."""

    def __init__(self, directory: Path):
        from tensorboardX import SummaryWriter

        self._writer_type = SummaryWriter
        self.directory = Path(directory)
        self._writers: dict[str, Any] = {}
        self._hparams: dict[str, dict] = {}
        self._last: dict[str, dict[str, float]] = {}

    def start(self, run_id: str, group: str, config: dict[str, Any], first_step: int = 0) -> None:
        # purge_step drops the events an interrupted attempt logged from first_step on; the suffix keeps a
        # resumed attempt's event file apart from the earlier one (their names otherwise differ only by the second).
        writer = self._writer_type(
            logdir=str(self.directory / run_id),
            purge_step=first_step or None,
            filename_suffix=f".{os.getpid()}.{time.time_ns()}",
        )
        writer.add_text("config", "```\n" + json.dumps({"group": group, **config}, indent=2) + "\n```", 0)
        self._writers[run_id] = writer
        self._hparams[run_id] = {"group": group, **flatten_config(config)}

    def log(self, run_id: str, step: int, metrics: dict[str, float]) -> None:
        writer = self._writers[run_id]
        for name, value in metrics.items():
            writer.add_scalar(name, value, step)
        self._last[run_id] = metrics

    def finish(self, run_id: str) -> None:
        writer = self._writers.pop(run_id)
        last = self._last.pop(run_id, {})
        final = last.get("eval_return", math.nan)
        # The hparams plugin compares runs by a metric: the final eval return, under its own tag so that
        # it does not shadow the eval_return curve.
        writer.add_hparams(self._hparams.pop(run_id), {"hparam/final_eval_return": final}, name=".")
        writer.close()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


class WandbTracker:
    """One W&B run per sweep run (``reinit="create_new"``, so a group's runs are open together)."""

    def __init__(self, directory: Path, wandb_module: Any = None):
        if wandb_module is None:
            wandb_module = import_wandb()
        self._wandb = wandb_module
        self.directory = Path(directory)
        self._runs: dict[str, Any] = {}

    def start(self, run_id: str, group: str, config: dict[str, Any], first_step: int = 0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # One id per (results directory, run): a resumed sweep continues the same W&B run.
        key = f"{self.directory.resolve().parent}/{run_id}".encode()
        self._runs[run_id] = self._wandb.init(
            project=os.environ.get("WANDB_PROJECT", "sparse-rl"),
            name=run_id,
            id=hashlib.sha1(key).hexdigest()[:16],
            resume="allow",
            group=group,
            config=config,
            dir=str(self.directory),
            reinit="create_new",
        )
        del first_step  # W&B ignores steps below the last one it has; the resumed chunks come after it

    def log(self, run_id: str, step: int, metrics: dict[str, float]) -> None:
        self._runs[run_id].log(metrics, step=step)

    def finish(self, run_id: str) -> None:
        self._runs.pop(run_id).finish()

    def close(self) -> None:
        for run in self._runs.values():
            run.finish(exit_code=1)  # marks them failed: the sweep stopped before they finished
        self._runs.clear()


def import_wandb() -> Any:
    """The ``wandb`` module, or a one-line error saying how to install it."""
    try:
        import wandb
    except ImportError:
        raise ValueError("log=wandb needs the wandb package: pip install 'sparse-rl[wandb]'.") from None
    return wandb


def check_trackers(names: Sequence[str]) -> tuple[str, ...]:
    """Validate ``--log`` names (each once; wandb importable) before anything is written."""
    names = tuple(names)
    for n in names:
        check_choice("log", n, TRACKERS)
    if len(set(names)) != len(names):
        raise ValueError(f"log={list(names)} is not allowed; allowed: each of {', '.join(TRACKERS)} once.")
    if "wandb" in names:
        import_wandb()
    return names


def make_trackers(names: Sequence[str], results_dir: str | Path) -> list[Tracker]:
    """The trackers ``names`` (from :data:`TRACKERS`) writing under ``results_dir``."""
    results_dir = Path(results_dir)
    build = {
        "tensorboard": lambda: TensorBoardTracker(results_dir / "tensorboard"),
        "wandb": lambda: WandbTracker(results_dir / "wandb"),
    }
    return [build[n]() for n in check_trackers(names)]
