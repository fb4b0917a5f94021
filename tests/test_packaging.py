"""Packaging: the library installs and imports with jax, optax and numpy alone; the RL side says what it needs."""

import subprocess
import sys
import tomllib
from pathlib import Path

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
