"""Fixtures and hooks: small MLP params, a hand-made results directory, a compilation cache shared by the whole run.
Helpers live in helpers.py."""

import json
import os
import shutil
import tempfile

import jax
import pytest

from tests.helpers import FINALS, mlp_params, write_run

# Set by the first pytest process of a run (the xdist controller, or pytest alone) for its workers.
_SHARED_CACHE = "SPARSE_RL_TEST_COMPILE_CACHE"


def pytest_configure(config):
    """One persistent compilation cache per test run, in a fresh temporary directory.

    Many tests build the same trainer anew, which compiles the same programs
    again (every mask-only chunk of one env, algo, width and batch size is
    one program); the cache turns those repeats into disk reads. xdist
    workers share their controller's directory, so a program compiled for one
    test file is read by another on the other worker. Subprocesses inherit
    the directory (and the threshold) through the environment, and
    ``sparse-rl --compile-cache auto`` resolves to it, so no test writes to
    the user's cache.
    """
    cache = os.environ.get(_SHARED_CACHE) if os.environ.get("PYTEST_XDIST_WORKER") else None
    if cache is None:
        cache = tempfile.mkdtemp(prefix="jax-compile-cache-")
        os.environ[_SHARED_CACHE] = cache
        config._jax_compile_cache = cache  # the process that made it removes it
    os.environ["JAX_COMPILATION_CACHE_DIR"] = cache
    # Every program is cached, the small ones too: a sweep or notebook run in a subprocess (which
    # inherits both variables) otherwise recompiles dozens of them (test_sweep + test_multihost: 198 s -> 174 s).
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["XLA_FLAGS"] = one_thread_per_process(os.environ.get("XLA_FLAGS", ""))


def one_thread_per_process(flags: str) -> str:
    """``flags`` with XLA's CPU thread pool turned off (unless ``flags`` already set it).

    The suite runs one worker per core, and every worker (with the sweeps and
    notebooks it starts) has the CPU client's threads compete for both cores:
    measured on 2 cores, a trainer test took 22 s beside a second worker with
    the pool and 16 s without it (alone: 10.6 s and 10.8 s). The tests' programs
    are small, so the pool buys little even alone. Set here, before any worker
    starts JAX's CPU backend; the subprocesses inherit it.
    """
    if "xla_cpu_multi_thread_eigen" in flags:
        return flags
    return f"{flags} --xla_cpu_multi_thread_eigen=false".strip()


def pytest_unconfigure(config):
    """Remove the run's compilation cache."""
    cache = getattr(config, "_jax_compile_cache", None)
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)


# The longest test files, slowest first (measured with --durations): xdist hands out whole files in
# collection order (--no-loadscope-reorder), so starting these first lets both workers finish together.
_LONGEST_FIRST = ("test_multihost.py", "test_sac.py", "test_train.py", "test_sweep.py", "test_td3.py",
                  "test_notebooks.py", "test_runner.py", "test_policy.py", "test_extending.py", "test_docs.py",
                  "test_tracking.py", "test_transforms.py", "test_playground.py", "test_grid.py")  # fmt: skip


def pytest_collection_modifyitems(config, items):
    """Collect the longest test files first (a stable sort: the order inside a file is kept)."""
    rank = {name: i for i, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture
def small_params():
    """8 -> 32 -> 32 -> 4 MLP params."""
    return mlp_params(jax.random.key(0), (8, 32, 32, 4))


@pytest.fixture
def results(tmp_path):
    """A results directory of hand-made runs (``FINALS``, one diverged TAR seed) and an empty sweep config."""
    for env, methods in FINALS.items():
        for method, finals in methods.items():
            for seed, final in enumerate(finals):
                write_run(tmp_path, env, method, seed, float(final))
    write_run(tmp_path, "hopper", "tar", 3, 0.0, diverged=True)
    (tmp_path / "config.json").write_text(json.dumps({"sweep": {}}))
    return tmp_path
