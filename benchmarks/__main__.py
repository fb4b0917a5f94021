"""Run the benchmarks: ``python -m benchmarks [--only peer profile ... reference paper]`` (parts in PARTS).

``--quick`` runs tiny budgets (a smoke run of the pipeline).

Each part writes ``benchmarks/results/<name>.json`` (``<name>_quick.json``
with ``--quick``); afterwards ``benchmarks/RESULTS.md`` is rebuilt from every
full-budget JSON present (a part with only a quick JSON is shown from that,
marked as a smoke run). Off the CPU the JSON names carry the backend
(``peer_gpu.json``) and RESULTS.md shows them in its section 6. The
``reference`` part (our dense SAC against brax's on a DeepMind Control task)
and the ``paper`` part (a halfcheetah sweep, part 6) run only when named.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence

from benchmarks.common import write_json
from benchmarks.report import write_results_md

PARTS = (
    "peer",
    "profile",
    "overhead",
    "seeds",
    "memory",
    "bcoo",
    "batching",
    "hyper",
    "networks",
    "reference",
    "paper",
)
# Run only when named: "reference" (our dense SAC vs brax's on a DMC task, about 1.5 hours on a CPU) and
# "paper" (a halfcheetah sweep sized for an accelerator).
DEFAULT_PARTS = PARTS[:-2]


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", nargs="+", choices=PARTS, default=list(DEFAULT_PARTS), help="parts to run (default: all but paper)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny budgets: a smoke run of the pipeline")
    args = parser.parse_args(argv)
    for part in args.only:
        module = importlib.import_module(f"benchmarks.bench_{part}")
        start = time.perf_counter()
        results = module.bench(args.quick)
        results["wall_seconds"] = time.perf_counter() - start
        module.print_report(results)
        command = " ".join(["python -m benchmarks --only", part, *(["--quick"] if args.quick else [])])
        path = write_json(f"{part}_quick" if args.quick else part, results, command)
        print(f"wrote {path} ({results['wall_seconds']:.0f} s)", flush=True)
    print("wrote", write_results_md())


if __name__ == "__main__":
    main()
