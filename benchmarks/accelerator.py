"""The accelerator run: device facts and the planner, fast tests, throughput, and a resumed ``paper`` sweep.

Started by ``benchmarks/accelerator.sh`` (which installs the project with the
accelerator's extra first); every step runs in its own process under
``timeout`` (SIGTERM at its limit, SIGKILL 10 s later), one after another, in
order of value, so that a run cut short keeps what its first steps measured:

=============  =====  ====  ==============================================================
step           limit  part  what
=============  =====  ====  ==============================================================
install        150 s  both  ``scripts/_venv.sh``: ``.[dev,cuda12]`` / ``.[dev,tpu]`` into ``.venv``
devices         30 s  both  ``jax.devices()``, backend, ``memory_stats()``, the planner's plans
tests           45 s  1     fast tests (``-m "not slow"``) of a few files on the device
batch           60 s  1     one mask-only batch of 64 runs vs 1 run: runs/s, peak device memory
overhead       270 s  1     each sparse method's training chunk vs dense (``bench_overhead``)
peer           200 s  2     dense SAC env steps/s, ours at 1 and 16 vmapped seeds vs brax's trainer
paper          150 s  2     the ``paper`` subset (halfcheetah SAC), stopped by its time box
paper-resume    90 s  2     ``sparse-rl sweep --resume --out DIR``, checked to continue
report          15 s  both  ``benchmarks/RESULTS.md`` rebuilt (section 6 shows the accelerator files)
=============  =====  ====  ==============================================================

The limits come from the first run on an NVIDIA H200 (jax 0.11.2): devices
took 16 s, the tests 23 s, the 64-run batch 36 s and the overhead part
207 s with one repeat, most of it compiling; brax's programs compile for
minutes there, so peer (cut at 115 s and at 140 s) and the paper sweep (no
chunk after 145 s) did not fit beside them. The steps are therefore split in
two parts of about 10 minutes each (``--part 1``, ``--part 2``; both when
no part is given, 1010 s), for two short leases of a device; a part's run
keeps the other part's records in ``accelerator_run_<backend>.json``. Each
measurement writes ``benchmarks/results/<name>_<backend>.json``
as soon as it ends (:func:`benchmarks.common.write_json` adds the backend off
the CPU); this run's own record, ``accelerator_run_<backend>.json``, is
rewritten after every step. ``--dry-run`` rehearses every step on the CPU
with the parts' ``--quick`` settings into a temporary results directory (the
committed figures are left alone); ``--plan`` prints the steps and their
limits without running anything.

This module imports nothing outside the standard library at its top, so that
the run's driver never initializes JAX (nor holds device memory) itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# The files the fast-test step runs on the device: the planner, masks, the runs mesh and the replay buffer
# (small programs; the first three take about 12 s on a 2-core CPU, which the rehearsal runs).
TEST_FILES = ("tests/test_plan.py", "tests/test_masks.py", "tests/test_sharding.py", "tests/test_replay.py")
KILL_AFTER_S = 10  # SIGTERM lets a sweep stop at a safe point; a step still alive this long after is killed
# timeout's exit status when it stopped the step: SIGTERM sent (124), SIGKILL needed (137, or timeout itself
# ending by SIGKILL, which Python reports as -9); 143: the sweep's own exit after SIGTERM at a safe point.
STOPPED = (124, 137, -9, 143)


@dataclasses.dataclass(frozen=True)
class Step:
    """One step of the run.

    Attributes:
      name: the step's name, as printed.
      limit_s: its time limit on the accelerator.
      dry_limit_s: its time limit in the CPU rehearsal.
      args: the command after ``python``, split as a shell would (``{results}``: the results directory,
        ``{suffix}``: the backend's suffix, ``_gpu``...; ``{sweep}``: the paper sweep's directory).
      dry_args: the rehearsal's command (the parts' ``--quick`` settings).
      what: one line on what it measures.
      expect_cut: the time box is meant to stop it (the paper sweep, resumed by the next step).
      part: the part of the run it belongs to (1 or 2; 0: both, run in either part).
    """

    name: str
    limit_s: int
    dry_limit_s: int
    args: str
    dry_args: str
    what: str
    expect_cut: bool = False
    part: int = 0

    def argv(self, dry_run: bool, **fields: str) -> list[str]:
        """The command's arguments after ``python``, with ``fields`` filled in."""
        return [a.format(**fields) for a in shlex.split(self.dry_args if dry_run else self.args)]


PYTEST = "-m pytest -q -n0 -p no:cacheprovider -m 'not slow' --junitxml={results}/tests{suffix}.xml"
INSTALL = Step("install", 150, 300, "", "", "scripts/_venv.sh: the project with the accelerator's extra, into .venv")
STEPS: tuple[Step, ...] = (
    INSTALL,
    Step(
        "devices",
        30,
        60,
        "-m benchmarks.accelerator devices",
        "-m benchmarks.accelerator devices --quick",
        "jax.devices(), backend, memory_stats of device 0, the planner's free memory and plans",
    ),
    Step(
        "tests",
        45,
        60,
        f"{PYTEST} {' '.join(TEST_FILES)}",
        f"{PYTEST} {' '.join(TEST_FILES[:3])}",
        "the fast tests of a few files, on the device",
        part=1,
    ),
    Step(
        "batch",
        60,
        120,
        "-m benchmarks.bench_seeds --counts 1 64 --method static --no-sequential --name seeds_batch",
        "-m benchmarks.bench_seeds --quick --counts 1 4 --method static --no-sequential --name seeds_batch_quick",
        "one mask-only (static, 0.9) batch of 64 runs vs 1 run: runs/s, steady env steps/s, peak memory",
        part=1,
    ),
    Step(
        "overhead",
        270,
        240,
        "-m benchmarks.bench_overhead --repeats 1",
        "-m benchmarks.bench_overhead --quick --repeats 1",
        "each sparse method's training chunk over dense's, ReDo, the mask-update branch",
        part=1,
    ),
    Step(
        "peer",
        200,
        240,
        "-m benchmarks.bench_peer --seeds 1 --vmapped-seeds 16 --total-steps 4000 --no-startup",
        "-m benchmarks.bench_peer --quick --seeds 1 --vmapped-seeds 2 --no-startup",
        "dense SAC env steps/s on inverted_pendulum: brax's SAC trainer vs ours at 1 and 16 vmapped seeds",
        part=2,
    ),
    Step(
        "paper",
        150,
        90,
        "-m benchmarks.bench_paper",
        "-m benchmarks.bench_paper --quick",
        "the paper preset's halfcheetah subset (SAC, 0.9, global, widths 256/1024, 5 methods x 5 seeds)",
        expect_cut=True,
        part=2,
    ),
    Step(
        "paper-resume",
        90,
        120,
        "-m agents.cli sweep --resume --out {sweep} --no-progress",
        "-m agents.cli sweep --resume --out {sweep} --no-progress",
        "sparse-rl sweep --resume on the paper sweep: checked to continue where it stopped",
        expect_cut=True,
        part=2,
    ),
    Step(
        "report",
        15,
        60,
        "-m benchmarks.accelerator report --to benchmarks/RESULTS.md",
        "-m benchmarks.accelerator report --to {results}/RESULTS.md",
        "RESULTS.md rebuilt from every JSON present (section 6: the accelerator's)",
    ),
)
PARTS = (1, 2)


def step(name: str) -> Step:
    """The step called ``name``."""
    for s in STEPS:
        if s.name == name:
            return s
    raise ValueError(f"step {name!r} is not allowed; allowed: {[s.name for s in STEPS]}.")


def steps(part: int | None = None) -> tuple[Step, ...]:
    """The steps of ``part`` (1 or 2), in order; every step when ``part`` is None."""
    if part is not None and part not in PARTS:
        raise ValueError(f"part {part!r} is not allowed; allowed: {', '.join(map(str, PARTS))}.")
    return tuple(s for s in STEPS if part is None or s.part in (0, part))


def total_limit(dry_run: bool = False, part: int | None = None) -> int:
    """The sum of the limits of ``part``'s steps (every step's when None; the kill grace not counted), in s."""
    return sum(s.dry_limit_s if dry_run else s.limit_s for s in steps(part))


def plan_lines(dry_run: bool = False, part: int | None = None) -> list[str]:
    """The steps, their limits and what they measure, as ``--plan`` prints them."""
    mode = "CPU rehearsal (--dry-run)" if dry_run else "accelerator run"
    which = f"part {part}" if part is not None else "both parts"
    chosen = steps(part)
    lines = [f"accelerator.sh: {mode}, {which}, {len(chosen)} steps, {total_limit(dry_run, part)} s in all"]
    for i, s in enumerate(chosen, 1):
        limit = s.dry_limit_s if dry_run else s.limit_s
        args = s.argv(dry_run, results="{results}", suffix="{suffix}", sweep="{sweep}")
        command = (
            "bash scripts/_venv.sh (skipped where SPARSE_RL_PYTHON is set)"
            if s is INSTALL
            else shlex.join(["python", *args])
        )
        lines.append(f"  {i}. {s.name:<12} {limit:>4} s  {s.what}")
        lines.append(f"     {command}")
    return lines


def _snapshot(results: Path) -> dict[str, float]:
    """Modification time of every file under ``results`` (sweep directories excluded: their files are many)."""
    return {str(p): p.stat().st_mtime for p in results.glob("*") if p.is_file()}


def _curve_rows(sweep: Path) -> dict[str, list[str]]:
    """The rows of every run's ``curve.jsonl`` in a sweep directory, by run folder."""
    return {p.parent.name: p.read_text().splitlines() for p in sorted(sweep.glob("runs/*/curve.jsonl"))}


def _latest_sweep(results: Path) -> Path | None:
    """The paper sweep directory most recently written under ``results`` (``paper_sweep*``)."""
    found = [p for p in results.glob("paper_sweep*") if (p / "config.json").is_file()]
    return max(found, key=lambda p: (p / "config.json").stat().st_mtime) if found else None


def resume_check(before: dict[str, list[str]], after: dict[str, list[str]], rc: int) -> dict[str, Any]:
    """Whether a resumed sweep continued: more curve rows after, and every row written before kept unchanged.

    ``rc`` is the resume command's exit status: 0 (finished), or a time box's stop (:data:`STOPPED`).
    """
    kept = all(after.get(run, [])[: len(rows)] == rows for run, rows in before.items())
    rows_before, rows_after = sum(map(len, before.values())), sum(map(len, after.values()))
    return {
        "exit_status": rc,
        "finished": rc == 0,
        "runs_before": len(before),
        "runs_after": len(after),
        "curve_rows_before": rows_before,
        "curve_rows_after": rows_after,
        "earlier_rows_unchanged": kept,
        "continued": kept and rows_after > rows_before and rc in (0, *STOPPED),
    }


def _status(rc: int, cut_expected: bool) -> str:
    if rc == 0:
        return "ok"
    if rc in STOPPED:
        return "stopped by its time box" + (" (as planned)" if cut_expected else "")
    return f"failed (exit status {rc})"


def run(dry_run: bool, install: dict[str, Any], results: Path, part: int | None = None) -> list[dict[str, Any]]:
    """Run ``part``'s steps after the install (done by the shell script, reported in ``install``); their records.

    The run's record, ``accelerator_run<suffix>.json``, keeps the records of
    steps this run does not hold from the record already there (the other
    part's), in the order of :data:`STEPS`.
    """
    # Long: one loop over the steps, with the paper sweep's before/after check and the run's record inline.
    if shutil.which("timeout") is None:
        raise SystemExit("accelerator.sh: error: the `timeout` command (GNU coreutils) is needed and was not found.")
    results.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SPARSE_RL_BENCH_RESULTS=str(results), PYTHONUNBUFFERED="1")
    cache = Path(tempfile.mkdtemp(prefix="sparse_rl_accel_cache_"))
    records = [{"step": "install", "limit_s": install["limit_s"], **install}]
    suffix, rows_before, paper_rc = "", {}, None
    start_all = time.perf_counter()
    try:
        chosen = steps(part)
        for i, s in enumerate(chosen[1:], 2):
            limit = s.dry_limit_s if dry_run else s.limit_s
            sweep = _latest_sweep(results)
            fields = {"results": str(results), "suffix": suffix, "sweep": str(sweep)}
            args = s.argv(dry_run, **fields)
            if s.name == "paper-resume":
                if sweep is None:
                    records.append({"step": s.name, "status": "skipped: the paper step left no sweep", "elapsed_s": 0})
                    print(f"[{i}/{len(chosen)}] {s.name}: skipped, the paper step left no sweep directory", flush=True)
                    continue
                rows_before = _curve_rows(sweep)
            step_env = env
            if s.name.startswith("paper"):
                # The resumed sweep compiles the same programs again: a shared persistent cache reads them back.
                step_env = dict(env, JAX_COMPILATION_CACHE_DIR=str(cache))
            print(f"\n[{i}/{len(chosen)}] {s.name} (limit {limit} s): {shlex.join(['python', *args])}", flush=True)
            before = _snapshot(results)
            t0 = time.perf_counter()
            rc = subprocess.run(
                ["timeout", "-k", str(KILL_AFTER_S), str(limit), sys.executable, *args], env=step_env, check=False
            ).returncode
            elapsed = time.perf_counter() - t0
            wrote = sorted(p for p, m in _snapshot(results).items() if before.get(p) != m)
            record: dict[str, Any] = {
                "step": s.name,
                "command": shlex.join(["python", *args]),
                "limit_s": limit,
                "elapsed_s": round(elapsed, 1),
                "exit_status": rc,
                "status": _status(rc, s.expect_cut),
                "wrote": wrote,
            }
            if s.name == "devices":
                found = sorted(results.glob("devices*.json"))
                suffix = found[0].stem.removeprefix("devices").removesuffix("_quick") if found else ""
            if s.name == "paper":
                paper_rc = rc
                record["sweep"] = str(_latest_sweep(results))
            if s.name == "paper-resume":
                check = resume_check(rows_before, _curve_rows(sweep), rc)
                path = results / f"paper_resume{suffix}.json"
                path.write_text(
                    json.dumps({"sweep": str(sweep), "paper_exit_status": paper_rc, "command": record["command"],
                                "dry_run": dry_run, **check}, indent=2) + "\n"
                )  # fmt: skip
                record.update(resume=check, wrote=[*wrote, str(path)])
                record["status"] += "; continued" if check["continued"] else "; did NOT continue"
            records.append(record)
            files = ", ".join(record["wrote"]) or "nothing"
            print(
                f"[{i}/{len(chosen)}] {s.name}: {record['status']} in {elapsed:.0f} s (limit {limit} s); wrote {files}",
                flush=True,
            )
            _write_record(results / f"accelerator_run{suffix}.json", dry_run, records, start_all, part)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return records


def _write_record(path: Path, dry_run: bool, records: list[dict[str, Any]], start: float, part: int | None) -> None:
    """The run's record: every step so far, with its limit, elapsed time, status and files.

    Where ``part`` is given, the records of the other part's steps already in
    ``path`` stay (each step once, in the order of :data:`STEPS`), so two
    parts run on two occasions make one record.
    """
    date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    mine = {r["step"]: {**r, "part": part, "date_utc": r.get("date_utc", date)} for r in records}
    kept = {}
    if part is not None and path.is_file():
        kept = {r["step"]: r for r in json.loads(path.read_text()).get("steps", []) if r["step"] not in mine}
    merged = [{**kept, **mine}[s.name] for s in STEPS if s.name in {**kept, **mine}]
    elapsed = time.perf_counter() - start
    body = {"dry_run": dry_run, "total_limit_s": sum(r.get("limit_s") or 0 for r in merged), "elapsed_s": elapsed}
    path.write_text(json.dumps({**body, "steps": merged}, indent=2) + "\n")


def summary_lines(records: Sequence[dict[str, Any]], wall_s: float) -> list[str]:
    """One line per step (status, elapsed time against its limit), then the total."""
    lines = ["", "accelerator.sh: summary"]
    for r in records:
        elapsed = r.get("elapsed_s")
        took = "-" if elapsed is None else f"{elapsed:.0f} s"
        lines.append(f"  {r['step']:<12} {took:>6} / {r.get('limit_s', '-'):>4} s  {r['status']}")
    lines.append(f"  total        {wall_s:>6.0f} s (install included)")
    return lines


def devices(quick: bool) -> dict[str, Any]:
    """Print and return the device facts and the planner's view: free memory, and the plans of this run's batches."""
    import jax

    from agents.execution import plan as plan_lib
    from benchmarks import bench_paper, bench_seeds

    devs = jax.devices()
    stats = devs[0].memory_stats()
    print(f"backend {jax.default_backend()}; {len(devs)} device(s): {devs}")
    print(f"device 0: {devs[0].device_kind}; memory_stats: {stats}")
    free, where = plan_lib.free_memory()
    print(f"planner: free memory {free} bytes ({where})")
    paper = bench_paper.sweep_config(quick)
    paper_plan = plan_lib.make_plan(paper.plan_programs())
    print("\n".join(plan_lib.plan_lines(paper_plan, paper.planned_batches(paper_plan))))
    batch = plan_lib.make_plan([plan_lib.Program(bench_seeds.make_config(quick, "static"), 64)])
    print(f"planner: a static batch of 64 runs: cap {batch.caps[0]}, {batch.bytes_per_run[0]} bytes per run")
    settings = ("JAX_PLATFORMS", "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_FLAGS")
    return {
        "settings": {"quick": quick, "environment": {k: os.environ.get(k) for k in settings}},
        "backend": jax.default_backend(),
        "devices": [repr(d) for d in devs],
        "device_kind": devs[0].device_kind,
        "memory_stats": stats,
        "free_memory": {"bytes": free, "where": where},
        "paper_plan": paper_plan.to_json(),
        "batch_64_plan": batch.to_json(),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.accelerator``: ``--plan``, ``--run``, ``--limit STEP`` or a step's own work."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.accelerator", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", choices=("devices", "report"), help="a step's own work (run by --run)")
    parser.add_argument("--plan", action="store_true", help="print the steps and their limits, run nothing")
    parser.add_argument("--run", action="store_true", help="run every step after the install")
    parser.add_argument("--limit", metavar="STEP", help="print one step's time limit (the shell script's install)")
    parser.add_argument("--dry-run", action="store_true", help="the CPU rehearsal's settings and limits")
    parser.add_argument("--quick", action="store_true", help="devices: plan the --quick settings")
    parser.add_argument("--to", type=Path, default=None, help="report: where RESULTS.md goes")
    parser.add_argument("--install", default="{}", help="--run: the install step's record (JSON, from the script)")
    parser.add_argument("--started", type=float, default=None, help="--run: the script's start (epoch seconds)")
    parser.add_argument("--part", type=int, choices=PARTS, default=None, help="the steps of one part (default: both)")
    args = parser.parse_args(argv)
    if args.plan:
        print("\n".join(plan_lines(args.dry_run, args.part)))
    elif args.limit:
        try:
            s = step(args.limit)
        except ValueError as e:
            parser.error(str(e))
        print(s.dry_limit_s if args.dry_run else s.limit_s)
    elif args.run:
        results = Path(os.environ.get("SPARSE_RL_BENCH_RESULTS") or "benchmarks/results")
        records = run(args.dry_run, json.loads(args.install), results, args.part)
        wall = time.time() - args.started if args.started else sum(r.get("elapsed_s") or 0 for r in records)
        print("\n".join(summary_lines(records, wall)))
        print(f"results in {results}")
    elif args.what == "devices":
        from benchmarks.common import write_json

        t0 = time.perf_counter()
        results = devices(args.quick)
        results["wall_seconds"] = time.perf_counter() - t0
        print("wrote", write_json("devices_quick" if args.quick else "devices", results))
    elif args.what == "report":
        from benchmarks.report import RESULTS_MD, write_results_md

        print("wrote", write_results_md(args.to or RESULTS_MD))
    else:
        parser.error("nothing to do: give --plan, --run, --limit STEP, or devices / report")


if __name__ == "__main__":
    main()
