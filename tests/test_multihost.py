"""The multi-host path for real: two processes on loopback, JAX's CPU collectives over gloo.

Each process is started as a launcher starts one (``JAX_COORDINATOR_ADDRESS``,
``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``) and sees 2 local CPU devices, 4 in
all. A wrapper around the CLI records which runs-axis slices each process
filled and which results files it wrote.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from agents import results

ROOT = Path(__file__).parent.parent

# The CLI, with a record of the shards this process filled and the results files it wrote.
WRAPPER = r"""
import json, os, sys
import jax
from agents.experiments import report
from agents import results
from agents.cli import main

record = {"slices": [], "writes": []}
real_put = jax.make_array_from_callback

def put(shape, sharding, callback):
    def filled(index):
        record["slices"].append([index[0].start or 0, index[0].stop or shape[0]])
        return callback(index)
    return real_put(shape, sharding, filled)

def writes(real):
    def write(path, *args, **kwargs):
        record["writes"].append(str(path))
        return real(path, *args, **kwargs)
    return write

jax.make_array_from_callback = put
results.atomic_write_text = report.atomic_write_text = writes(results.atomic_write_text)
results.atomic_write_json = writes(results.atomic_write_json)
try:
    main(sys.argv[1:])
finally:
    record["process"], record["devices"] = jax.process_index(), [d.id for d in jax.local_devices()]
    with open(os.environ["RECORD"], "w") as f:
        json.dump(record, f)
"""

SWEEP = ["sweep", "--preset", "quick", "--envs", "probe_bandit", "--methods", "static", "tar", "--seeds", "3",
         "--total-steps", "3000", "--config.hidden", "16", "16", "--no-progress"]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2".strip(),
        "JAX_COMPILATION_CACHE_DIR": str(tmp / "cache"),  # the relaunches compile nothing
        **extra,
    }


def _start(tmp: Path, name: str, args: list[str], processes: int = 2) -> list[subprocess.Popen]:
    port = _free_port()
    procs = []
    for i in range(processes):
        extra = {"RECORD": str(tmp / f"{name}-{i}.json")}
        if processes > 1:
            extra.update(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES=str(processes),
                         JAX_PROCESS_ID=str(i), SPARSE_RL_INIT_TIMEOUT="120")  # fmt: skip
        else:
            extra["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=1".strip()
        procs.append(
            subprocess.Popen([sys.executable, "-c", WRAPPER, *args], env=_env(tmp, **extra), cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        )  # fmt: skip
    return procs


def _finish(tmp: Path, name: str, procs: list[subprocess.Popen]) -> list[dict]:
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    return [json.loads((tmp / f"{name}-{i}.json").read_text()) for i in range(len(procs))]


def _curves(out: Path) -> dict[str, list[dict]]:
    """Per-run curves without the host timings."""
    host = ("wall_s", "steps_per_s")
    return {
        p.parent.name: [{k: v for k, v in r.items() if k not in host} for r in results.read_jsonl(p)]
        for p in sorted((out / "runs").glob("*/curve.jsonl"))
    }


@pytest.mark.slow
def test_two_processes_fill_their_own_shards_match_one_process_and_resume_after_a_kill(tmp_path):
    straight, one, killed = tmp_path / "straight", tmp_path / "one", tmp_path / "killed"
    two = _finish(tmp_path, "straight", _start(tmp_path, "straight", [*SWEEP, "--out", str(straight)]))

    assert len(results.read_jsonl(straight / "runs" / "probe_bandit-sac-s0.9-tar-seed0" / "curve.jsonl")) == 2
    # Each process filled only the slots of its own two devices: 6 runs padded to 8 slots, 2 per device.
    assert [r["process"] for r in two] == [0, 1]
    slots = [sorted({tuple(s) for s in r["slices"]}) for r in two]
    assert slots == [[(0, 2), (2, 4)], [(4, 6), (6, 8)]]
    # Only process 0 wrote results files (checkpoints are written by both: each holds its own shards).
    assert two[0]["writes"] and not two[1]["writes"]
    assert all(str(straight) in w for w in two[0]["writes"])

    # The same sweep in one process on 1 device: XLA compiles a batch of 2 runs per device differently
    # from 6 runs on one device, so results agree to float32 rounding, not bit for bit.
    _finish(tmp_path, "one", _start(tmp_path, "one", [*SWEEP, "--out", str(one)], processes=1))
    a, c = _curves(straight), _curves(one)
    assert sorted(a) == sorted(c) and len(a) == 6
    for run in a:
        for ra, rc in zip(a[run], c[run], strict=True):
            assert ra.keys() == rc.keys()
            for k in ra:
                np.testing.assert_allclose(ra[k], rc[k], rtol=1e-5, atol=1e-6, err_msg=f"{run} {k}")

    # Kill both processes once the first checkpoint is complete, relaunch both with --resume.
    procs = _start(tmp_path, "killed", [*SWEEP, "--out", str(killed)])
    first = killed / "checkpoints" / "probe_bandit-sac-s0.9-static+tar" / "0"
    deadline = time.time() + 600
    while not (first / "_CHECKPOINT_METADATA").exists() and time.time() < deadline:
        ended = [p for p in procs if p.poll() is not None]
        assert not ended, f"a process ended before its first checkpoint: {ended[0].communicate()[1][-3000:]}"
        time.sleep(0.05)
    for p in procs:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    assert not (killed / "summary.md").exists()
    _finish(tmp_path, "resumed", _start(tmp_path, "resumed", ["sweep", "--resume", "--out", str(killed),
                                                              "--no-progress"]))  # fmt: skip
    assert _curves(killed) == a


def test_launcher_variables_and_a_coordinator_that_never_answers(tmp_path):
    from agents.cli import distributed_settings

    assert distributed_settings({"SLURM_NTASKS": "1"}) is None
    assert distributed_settings({"SLURM_NTASKS": "4"}) == {}  # JAX reads SLURM's variables itself
    for env, message in (
        ({"JAX_NUM_PROCESSES": "two"}, "JAX_NUM_PROCESSES='two' is not allowed; allowed: an integer >= 1"),
        ({"JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "2"}, "JAX_PROCESS_ID=2 is not allowed; allowed: 0..1"),
    ):
        with pytest.raises(ValueError, match=message):
            distributed_settings({"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1", **env})
    # Process 1 of 2 with nobody at the coordinator's port: a one-line error after the timeout, exit 1.
    env = _env(tmp_path, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{_free_port()}", JAX_NUM_PROCESSES="2",
               JAX_PROCESS_ID="1", SPARSE_RL_INIT_TIMEOUT="3")  # fmt: skip
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "agents.cli", *SWEEP, "--out", str(tmp_path / "never")], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("sparse-rl:")]
    assert len(lines) == 1 and "process 1 could not reach the coordinator at 127.0.0.1:" in lines[0]
    assert "within 3 s" in lines[0] and time.time() - start < 120
    assert not (tmp_path / "never").exists()
