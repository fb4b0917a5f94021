# Sourced by scripts/run and scripts/test: create .venv and install the project if needed.
# Installs pin every package to requirements.lock, the versions the test suite passed with
# (pyproject.toml keeps ranges for other environments; scripts/lock refreshes the lock).
# On a machine with an NVIDIA GPU (nvidia-smi works) or a TPU (/dev/accel* or $TPU_NAME), jax's
# accelerator extra is installed too, and JAX uses the accelerator; SPARSE_RL_EXTRAS overrides the
# choice (e.g. SPARSE_RL_EXTRAS=dev for CPU only, dev,cuda13 for CUDA 13).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ -z "${SPARSE_RL_EXTRAS:-}" ]; then
  SPARSE_RL_EXTRAS=dev
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    SPARSE_RL_EXTRAS=dev,cuda12
  elif compgen -G "/dev/accel*" >/dev/null || [ -n "${TPU_NAME:-}" ]; then
    SPARSE_RL_EXTRAS=dev,tpu
  fi
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# Reinstall only when pyproject.toml, the lock or the extras changed since the last install.
stamp=.venv/.installed-$( (cat pyproject.toml requirements.lock; echo "$SPARSE_RL_EXTRAS") | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  echo "sparse-rl: installing .[$SPARSE_RL_EXTRAS] into .venv" >&2
  .venv/bin/python -m pip install --quiet -c requirements.lock --upgrade pip
  .venv/bin/python -m pip install --quiet -c requirements.lock -e ".[$SPARSE_RL_EXTRAS]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
