"""SAC and TD3 agents, networks, replay buffer, training loop, sweeps and CLI (built on sparse_jax)."""

import importlib.util as _util


def _absent(name: str) -> bool:
    try:
        return _util.find_spec(name) is None
    except (ImportError, ValueError):  # a broken or blocked install counts as absent
        return True


# `pip install sparse-rl` installs the library alone; say how to get the rest instead of a bare ImportError.
_missing = [m for m in ("flax", "brax", "orbax", "tyro") if _absent(m)]
if _missing:
    raise ImportError(
        f"agents needs {', '.join(_missing)}, which the RL side of sparse-rl installs: pip install 'sparse-rl[rl]'."
    )
