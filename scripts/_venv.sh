# Sourced by scripts/run and scripts/test: create .venv and install the project if needed.
# Installs pin every package to requirements.lock, the versions the test suite passed with
# (pyproject.toml keeps ranges for other environments; scripts/lock refreshes the lock).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# Reinstall only when pyproject.toml or the lock changed since the last install.
stamp=.venv/.installed-$(cat pyproject.toml requirements.lock | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet -c requirements.lock --upgrade pip
  .venv/bin/python -m pip install --quiet -c requirements.lock -e ".[dev]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
export JAX_PLATFORMS=${JAX_PLATFORMS:-cpu}
