"""Packaging: the library installs and imports with jax, optax and numpy alone; the RL side says what it needs;
the accelerator run installs with the accelerator's extra and lists its time-boxed steps."""

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
ACCELERATOR_STEPS = ["install", "devices", "tests", "peer", "batch", "overhead", "paper", "paper-resume", "report"]


def _accelerator(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SPARSE_RL_PYTHON=sys.executable)
    return subprocess.run(["bash", str(ACCELERATOR_SH), *args], capture_output=True, text=True, cwd=ROOT, env=env)


def test_the_accelerator_script_parses_and_lists_its_time_boxed_steps():
    """The accelerator run installs with the accelerator's extra through scripts/_venv.sh, lists its steps
    (in order of value, each with its limit) without running them, and fits its budget; a bad option is named."""
    from benchmarks import accelerator

    assert subprocess.run(["bash", "-n", str(ACCELERATOR_SH)], capture_output=True).returncode == 0
    text = ACCELERATOR_SH.read_text()
    assert "source scripts/_venv.sh" in text and "export XLA_PYTHON_CLIENT_PREALLOCATE=false" in text
    assert "XLA_PYTHON_CLIENT_PREALLOCATE=false" in " ".join(plan_lib.free_memory.__doc__.split())
    for dry_run in (False, True):
        proc = _accelerator("--plan", *(["--dry-run"] if dry_run else []))
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[0].endswith(f"9 steps, {accelerator.total_limit(dry_run)} s in all")
        steps = [line.split()[1] for line in lines[1::2]]
        limits = [int(line.split()[2]) for line in lines[1::2]]
        assert steps == ACCELERATOR_STEPS and all(limit > 0 for limit in limits)
        assert sum(limits) == accelerator.total_limit(dry_run)
        # The rehearsal runs the parts' --quick settings; the accelerator run their real ones.
        assert all(("--quick" in line) == dry_run for line in lines[2::2] if "benchmarks.bench_" in line)
    assert accelerator.total_limit() <= 12 * 60  # install included
    proc = _accelerator("--bogus")
    assert proc.returncode == 2 and "option '--bogus' is not allowed; allowed: --dry-run, --plan" in proc.stderr


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
