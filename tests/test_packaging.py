"""Packaging: the library installs and imports with jax, optax and numpy alone; the RL side says what it needs;
the accelerator run installs with the accelerator's extra and lists its time-boxed steps."""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from agents.execution import plan as plan_lib

ROOT = Path(__file__).parent.parent

# Block every top-level module the RL side uses, then run the library on its own.
BLOCKED = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked}:
            raise ImportError(f"{{name}} is not installed")
sys.meta_path.insert(0, Block())
"""

LIBRARY = """
import jax, jax.numpy as jnp, optax
import sparse_jax as sj
params = {"w": jnp.ones((8, 8)), "b": jnp.zeros(8)}
init = sj.sparse_init(jax.random.key(0), params, 0.5, method="tar", score="random", distribution="uniform")
tx = sj.sparse_optimizer("tar", optax.adam(0.1))
state = sj.with_masks(tx.init(init.params), init.masks)
updates, state = tx.update(jax.tree.map(jnp.ones_like, params), state, init.params)
print(sj.density_summary(sj.get_masks(state))["total"]["active"])
"""

RL_MODULES = ["flax", "brax", "orbax", "tyro", "matplotlib", "tqdm", "rliable", "pandas", "tensorboardX", "chex"]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_the_base_install_is_the_library_alone():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [d.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip() for d in project["dependencies"]]
    assert sorted(names) == ["jax", "jaxlib", "numpy", "optax"]
    extras = project["optional-dependencies"]
    assert {"rl", "wandb", "cuda12", "cuda13", "tpu", "dev"} <= set(extras)
    assert any(d.startswith("jax[cuda12]") for d in extras["cuda12"])


def test_sparse_jax_runs_without_any_rl_dependency():
    proc = _run(BLOCKED.format(blocked=RL_MODULES) + LIBRARY)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "32"


def test_agents_without_the_rl_extra_names_the_install_command():
    proc = _run(BLOCKED.format(blocked=["flax", "brax"]) + "import agents.execution.train")
    assert proc.returncode != 0
    assert "agents needs flax, brax, which the RL side of sparse-rl installs: pip install 'sparse-rl[rl]'." in (
        proc.stderr
    )


ACCELERATOR_SH = ROOT / "benchmarks" / "accelerator.sh"
ACCELERATOR_STEPS = ["install", "devices", "tests", "batch", "overhead", "peer", "paper", "paper-resume", "report"]
ACCELERATOR_PARTS = {
    1: ["install", "devices", "tests", "batch", "overhead", "report"],
    2: ["install", "devices", "peer", "paper", "paper-resume", "report"],
}


def _accelerator(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SPARSE_RL_PYTHON=sys.executable)
    return subprocess.run(["bash", str(ACCELERATOR_SH), *args], capture_output=True, text=True, cwd=ROOT, env=env)


def test_the_accelerator_script_parses_and_lists_its_time_boxed_steps():
    """The accelerator run installs with the accelerator's extra through scripts/_venv.sh, lists its steps
    (in order of value, each with its limit) without running them, in two parts that each fit a short lease
    and together hold every step; a bad option or part is named."""
    from benchmarks import accelerator

    assert subprocess.run(["bash", "-n", str(ACCELERATOR_SH)], capture_output=True).returncode == 0
    text = ACCELERATOR_SH.read_text()
    assert "source scripts/_venv.sh" in text and "export XLA_PYTHON_CLIENT_PREALLOCATE=false" in text
    assert "XLA_PYTHON_CLIENT_PREALLOCATE=false" in " ".join(plan_lib.free_memory.__doc__.split())
    for dry_run in (False, True):
        for part, expected in [(None, ACCELERATOR_STEPS), *ACCELERATOR_PARTS.items()]:
            args = ["--plan", *(["--dry-run"] if dry_run else []), *(["--part", str(part)] if part else [])]
            proc = _accelerator(*args)
            assert proc.returncode == 0, proc.stderr
            lines = proc.stdout.splitlines()
            which = f"part {part}" if part else "both parts"
            total = accelerator.total_limit(dry_run, part)
            assert lines[0].endswith(f"{which}, {len(expected)} steps, {total} s in all")
            steps = [line.split()[1] for line in lines[1::2]]
            limits = [int(line.split()[2]) for line in lines[1::2]]
            assert steps == expected and all(limit > 0 for limit in limits) and sum(limits) == total
            # The rehearsal runs the parts' --quick settings; the accelerator run their real ones.
            assert all(("--quick" in line) == dry_run for line in lines[2::2] if "benchmarks.bench_" in line)
    assert all(accelerator.total_limit(part=part) <= 11 * 60 for part in accelerator.PARTS)  # install included
    proc = _accelerator("--bogus")
    assert proc.returncode == 2 and "option '--bogus' is not allowed; allowed: --part 1|2, --dry-run" in proc.stderr
    proc = _accelerator("--part", "3")
    assert proc.returncode == 2 and "--part '3' is not allowed; allowed: 1, 2" in proc.stderr


def test_the_accelerator_record_of_one_part_keeps_the_other_parts_steps(tmp_path):
    """Part 2 run after part 1 rewrites the steps it ran and keeps part 1's, one record per step, in order."""
    from benchmarks.accelerator import _write_record

    path = tmp_path / "accelerator_run_gpu.json"
    _write_record(path, False, [{"step": "devices", "limit_s": 30}, {"step": "overhead", "limit_s": 270}], 0.0, 1)
    again = [{"step": "devices", "limit_s": 30, "status": "again"}, {"step": "peer", "limit_s": 200}]
    _write_record(path, False, again, 0.0, 2)
    record = json.loads(path.read_text())
    assert [(r["step"], r["part"]) for r in record["steps"]] == [("devices", 2), ("overhead", 1), ("peer", 2)]
    assert record["steps"][0]["status"] == "again" and record["total_limit_s"] == 500
    _write_record(path, False, [{"step": "tests", "limit_s": 45}], 0.0, None)  # both parts: a fresh record
    assert [r["step"] for r in json.loads(path.read_text())["steps"]] == ["tests"]


def test_the_accelerator_run_checks_that_a_resumed_sweep_continued():
    """The paper sweep's resume counts as continued only with more curve rows and every earlier row kept."""
    from benchmarks.accelerator import resume_check

    before = {"run-a": ["r0", "r1"], "run-b": ["r0"]}
    grown = {"run-a": ["r0", "r1", "r2"], "run-b": ["r0", "r1"], "run-c": ["r0"]}
    assert resume_check(before, grown, 143)["continued"]  # stopped again by its time box, after progress
    assert resume_check(before, grown, 0)["continued"]  # finished within its box
    assert not resume_check(before, before, 0)["continued"]  # no new row
    assert not resume_check(before, {**grown, "run-a": ["x", "r1", "r2"]}, 0)["earlier_rows_unchanged"]
    assert not resume_check(before, grown, 1)["continued"]  # failed
