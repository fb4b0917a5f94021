#!/usr/bin/env bash
# The accelerator run, in two parts of about 10 minutes: install with the accelerator's extra, print the
# devices and the planner's view, then time-boxed steps written to benchmarks/results/*_<backend>.json as
# each ends (part 1: the fast tests on the device, a 64-run batch, the overhead ratios; part 2: dense SAC
# against brax's trainer and the paper sweep, resumed; the steps and their limits: benchmarks/accelerator.py).
#
#   bash benchmarks/accelerator.sh --part 1   # on a GPU or TPU machine (--part 2 the other half; none: both)
#   bash benchmarks/accelerator.sh --dry-run  # the same steps on the CPU, tiny settings, a temporary results dir
#   bash benchmarks/accelerator.sh --plan     # the steps and their time limits; runs nothing (--dry-run: its)
#
# SPARSE_RL_PYTHON=/path/to/python skips the install and uses that interpreter (one that already has the
# project's dependencies, jax's accelerator wheels included: for a machine without a package index).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
plan=0
dry=()
part=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=(--dry-run) ;;
    --plan) plan=1 ;;
    --part)
      case "${2:-}" in
        1 | 2) part=(--part "$2"); shift ;;
        *) echo "accelerator.sh: error: --part '${2:-}' is not allowed; allowed: 1, 2" >&2; exit 2 ;;
      esac ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "accelerator.sh: error: option '$1' is not allowed; allowed: --part 1|2, --dry-run, --plan, --help" >&2
       exit 2 ;;
  esac
  shift
done
# The code measured is this checkout's, whichever interpreter runs it.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# JAX would reserve 75% of a GPU's memory in every process at start-up; growing on demand instead keeps the
# device's peak bytes in use what the runs needed, and leaves the planner's limit as it is (the same 75% of
# the memory free at start-up: XLA_PYTHON_CLIENT_MEM_FRACTION is left at its default; see
# agents/execution/plan.py, free_memory).
export XLA_PYTHON_CLIENT_PREALLOCATE=false
bootstrap=${SPARSE_RL_PYTHON:-python3}  # the driver needs only the standard library before the install
if [ "$plan" = 1 ]; then
  exec "$bootstrap" -m benchmarks.accelerator --plan ${dry[@]+"${dry[@]}"} ${part[@]+"${part[@]}"}
fi
if [ ${#dry[@]} -gt 0 ]; then
  export JAX_PLATFORMS=cpu  # a rehearsal: the CPU even where an accelerator is present
  SPARSE_RL_BENCH_RESULTS=$(mktemp -d -t sparse_rl_accelerator_XXXXXX)
  export SPARSE_RL_BENCH_RESULTS  # never over the committed benchmarks/results/*.json
fi
started=$(date +%s)
limit=$("$bootstrap" -m benchmarks.accelerator --limit install ${dry[@]+"${dry[@]}"})
steps=$("$bootstrap" -m benchmarks.accelerator --plan ${dry[@]+"${dry[@]}"} ${part[@]+"${part[@]}"} | head -1 | grep -o '[0-9]* steps' | cut -d' ' -f1)
echo "[1/$steps] install (limit ${limit} s)"
if [ -n "${SPARSE_RL_PYTHON:-}" ]; then
  py=$SPARSE_RL_PYTHON
  status="skipped: SPARSE_RL_PYTHON=$py"
else
  py=.venv/bin/python
  # scripts/_venv.sh picks the extra (dev,cuda12 where nvidia-smi lists a GPU, dev,tpu on a TPU VM).
  if timeout -k 10 "$limit" bash -c 'source scripts/_venv.sh'; then status=ok; else status="failed (exit status $?)"; fi
fi
elapsed=$(($(date +%s) - started))
echo "[1/$steps] install: $status in ${elapsed} s (limit ${limit} s); wrote $([ -z "${SPARSE_RL_PYTHON:-}" ] && echo .venv || echo nothing)"
if [ "${status%% *}" = failed ]; then
  echo "accelerator.sh: error: the install failed; nothing was measured." >&2
  exit 1
fi
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv || true
fi
install=$(printf '{"status": "%s", "elapsed_s": %d, "limit_s": %d}' "$status" "$elapsed" "$limit")
exec "$py" -m benchmarks.accelerator --run ${dry[@]+"${dry[@]}"} ${part[@]+"${part[@]}"} --install "$install" --started "$started"
