"""Shared helpers of the benchmark suite: compile counting, timing, summaries, JSON output.

Every benchmark reports in the same style: sides of a comparison timed
alternately in one process, ratios per repeat, median [min, max].
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = [
    "CompileCounter",
    "RESULTS_DIR",
    "fmt",
    "interleaved",
    "machine_info",
    "ratio_summary",
    "summary",
    "timed",
    "write_json",
]

# SPARSE_RL_BENCH_RESULTS moves every part's output (JSON, the paper sweep) elsewhere: a rehearsal of the
# accelerator run (benchmarks/accelerator.sh --dry-run) writes there, never over the committed figures.
RESULTS_DIR = Path(os.environ.get("SPARSE_RL_BENCH_RESULTS") or "benchmarks/results")
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_listeners: list[CompileCounter] = []
_registered = False


def _on_event(event: str, duration: float, **_: Any) -> None:
    if event == _COMPILE_EVENT:
        for counter in _listeners:
            counter.count += 1
            counter.seconds += duration


class CompileCounter:
    """Count XLA backend compilations (and their seconds) while the context is open.

    Uses ``jax.monitoring``'s ``/jax/core/compile/backend_compile_duration``
    event, recorded once per executable XLA compiles (cache hits do not count).
    """

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __enter__(self) -> CompileCounter:
        global _registered
        if not _registered:
            jax.monitoring.register_event_duration_secs_listener(_on_event)
            _registered = True
        _listeners.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _listeners.remove(self)


def install_device_put_replicated() -> None:
    """Runtime alias for ``jax.device_put_replicated`` (removed in jax 0.10), which brax's trainers call.

    Stacks the value once per device; installed packages are left untouched.
    """
    if not hasattr(jax, "device_put_replicated"):
        jax.device_put_replicated = lambda x, devices: jax.tree.map(lambda a: jnp.stack([a] * len(devices)), x)


def timed(fn: Callable[[], Any]) -> float:
    """Wall-clock seconds of ``fn()``, blocking until its result is ready."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t0


def interleaved(calls: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Time every callable once per repeat, alternating between them.

    Each callable is run once first (compilation and warm-up, not timed). The
    order of the callables is reversed on every other repeat so that neither
    side always runs first.

    Returns:
      ``{name: [seconds per repeat]}``.
    """
    for fn in calls.values():
        jax.block_until_ready(fn())
    names = list(calls)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for n in names if r % 2 == 0 else reversed(names):
            times[n].append(timed(calls[n]))
    return times


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of ``values``."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def machine_info() -> dict[str, Any]:
    """Devices, platform, CPU count, date and library versions."""
    return {
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "devices": [repr(d) for d in jax.devices()],
        "device_kind": jax.devices()[0].device_kind,
        "backend": jax.default_backend(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__") else None,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
    }


def fmt(s: dict[str, float], spec: str = ".3f") -> str:
    """``median [min, max]`` of a :func:`summary`."""
    return f"{s['median']:{spec}} [{s['min']:{spec}}, {s['max']:{spec}}]"


def ratio_summary(num: Sequence[float], den: Sequence[float]) -> dict[str, float]:
    """Median [min, max] of the per-repeat ratios ``num[i] / den[i]``."""
    return summary([n / d for n, d in zip(num, den, strict=True)])


def write_json(name: str, results: dict[str, Any], command: str | None = None, out_dir: Path = RESULTS_DIR) -> Path:
    """Write ``results`` (plus machine info and the command line) to ``out_dir/<name>.json``.

    Off the CPU the backend is added to the name (``peer_gpu.json``), so an
    accelerator run sits beside the CPU figures instead of replacing them.
    """
    if jax.default_backend() != "cpu":
        name = f"{name}_{jax.default_backend()}"
    if command is None:
        module = sys.modules["__main__"].__spec__.name.removesuffix(".__main__")
        command = " ".join(["python -m", module, *sys.argv[1:]])
    results = {"machine": machine_info(), "command": command, **results}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(results, indent=2, default=float) + "\n")
    return path


def part_main(
    name: str,
    doc: str,
    bench: Callable[..., dict[str, Any]],
    print_report: Callable[[dict[str, Any]], None],
    argv: Sequence[str] | None = None,
    repeats: bool = True,
) -> dict[str, Any]:
    """The shared command line of one benchmark part: ``--quick`` (and ``--repeats``), print, save JSON."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke run")
    if repeats:
        parser.add_argument("--repeats", type=int, default=None, help="timed repeats per side")
    args = parser.parse_args(argv)
    results = bench(args.quick, args.repeats) if repeats else bench(args.quick)
    print_report(results)
    print("wrote", write_json(f"{name}_quick" if args.quick else name, results))
    return results
