"""Fixtures and hooks: small MLP params, a compilation cache shared by the whole run. Helpers live in helpers.py."""

import os
import shutil
import tempfile

import jax
import pytest

from tests.helpers import mlp_params


def pytest_configure(config):
    """One persistent compilation cache per test run, in a fresh temporary directory.

    Many tests build the same trainer anew, which compiles the same programs
    again; the cache turns those repeats into disk reads. Subprocesses inherit
    the directory through the environment, and ``sparse-rl --compile-cache auto``
    resolves to it, so no test writes to the user's cache.
    """
    cache = tempfile.mkdtemp(prefix="jax-compile-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = cache
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    config._jax_compile_cache = cache


def pytest_unconfigure(config):
    """Remove the run's compilation cache."""
    cache = getattr(config, "_jax_compile_cache", None)
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture
def small_params():
    """8 -> 32 -> 32 -> 4 MLP params."""
    return mlp_params(jax.random.key(0), (8, 32, 32, 4))
