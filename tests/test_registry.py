"""envs.registry: importing brax and MuJoCo Playground quietly (their notices dropped, real warnings kept)."""

import os


def test_building_a_brax_env_prints_no_notices_of_brax_or_mujoco_and_real_warnings_still_show():
    """MJX's "Failed to import warp" lines and brax's maintenance notice are dropped; nothing else is."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "from envs import make_env\n"
        "make_env('inverted_pendulum', num_envs=2)\n"
        "make_env('CartpoleSwingup', num_envs=2)\n"
        "import warnings; warnings.warn('a warning of our own')\n"
        "print('built')\n"
    )
    proc = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parent.parent, env={**os.environ, "JAX_PLATFORMS": "cpu"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == "built\n", proc.stdout
    assert "Failed to import" not in proc.stderr and "not actively being maintained" not in proc.stderr
    assert "JAXopt is no longer maintained" not in proc.stderr
    assert "UserWarning: a warning of our own" in proc.stderr
