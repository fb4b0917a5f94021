"""Benchmark: peak host memory of the quick sweep, and replay-buffer bytes per transition per env.

1. ``sparse-rl sweep`` (preset ``quick``) at reduced steps, run in a fresh
   Python subprocess that starts the sweep as its own child and reports that
   child's ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` (peak resident
   set, Linux: KiB), plus its wall time.
2. Replay bytes per transition for every env in ``envs.DEFAULT_BACKENDS``:
   float32 obs, action, reward, discount, mask and next obs,
   ``4 * (2 * obs + act + 3)``, checked against the bytes of
   ``agents.algorithms.replay.buffer_init`` per slot.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax

from agents.algorithms.replay import buffer_init
from benchmarks.common import part_main
from envs import DEFAULT_BACKENDS, make_env

_CHILD = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
wall = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": rc.returncode, "wall_s": wall, "maxrss_kib": ru.ru_maxrss, "stderr_tail": rc.stderr[-2000:]}))
"""


def sweep_peak(quick: bool) -> dict[str, Any]:
    exe = Path(sys.executable).with_name("sparse-rl")
    tmp = Path(tempfile.mkdtemp(prefix="sparse_rl_mem_"))
    args = ["sweep", "--total-steps", "2000" if quick else "3000", "--no-progress", "--out", str(tmp / "out")]
    if quick:
        args += ["--seeds", "1", "--methods", "dense", "static"]
    try:
        cmd = [sys.executable, "-c", _CHILD, str(exe), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        res = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["command"] = "sparse-rl " + " ".join(a if a != str(tmp / "out") else "<tmp>" for a in args)
    res["peak_rss_mib"] = res["maxrss_kib"] / 1024
    if res["rc"] != 0:
        raise RuntimeError(f"sweep failed: {res['stderr_tail']}")
    res.pop("stderr_tail")
    return res


def replay_bytes() -> dict[str, Any]:
    out = {}
    for name in DEFAULT_BACKENDS:
        env = make_env(name, num_envs=1, episode_length=10)
        obs, act = env.observation_size, env.action_size
        buf = jax.eval_shape(lambda o=obs, a=act: buffer_init(1000, o, a))
        actual = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(buf) if x.ndim >= 1 and x.shape[0] == 1000)
        out[name] = {
            "obs": obs,
            "act": act,
            "bytes_per_transition": 4 * (2 * obs + act + 3),
            "buffer_bytes_per_slot": actual / 1000,
            "mib_per_1m_transitions": 4 * (2 * obs + act + 3) * 1e6 / 2**20,
        }
    return out


def bench(quick: bool = False) -> dict[str, Any]:
    return {"settings": {"quick": quick}, "sweep": sweep_peak(quick), "replay": replay_bytes()}


def print_report(results: dict[str, Any]) -> None:
    s = results["sweep"]
    print(f"\nmemory: `{s['command']}` peak RSS {s['peak_rss_mib']:.0f} MiB, wall {s['wall_s']:.0f} s")
    for name, r in results["replay"].items():
        print(f"  {name:<26} obs {r['obs']:>4} act {r['act']:>3}  {r['bytes_per_transition']:>5} B/transition"
              f"  (buffer {r['buffer_bytes_per_slot']:.0f})  {r['mib_per_1m_transitions']:.0f} MiB per 1M")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run this part alone: ``python -m benchmarks.bench_memory [--quick]``."""
    return part_main("memory", __doc__, bench, print_report, argv, repeats=False)


if __name__ == "__main__":
    main()
