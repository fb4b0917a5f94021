"""envs: the package's names agree (the registry's and the env classes'), and its default backends are supported."""

import envs
from envs import BACKENDS, BRAX_ENV_NAMES, DEFAULT_BACKENDS, ENV_NAMES


def test_names_and_defaults():
    assert set(ENV_NAMES) == set(BRAX_ENV_NAMES) | set(envs.PLAYGROUND_ENV_NAMES) | {"probe_bandit", "probe_constant"}
    assert tuple(envs.PROBE_ENVS) == envs.PROBE_ENV_NAMES  # the registry's names and the classes agree
    assert set(DEFAULT_BACKENDS) == set(BRAX_ENV_NAMES)
    for name, backend in DEFAULT_BACKENDS.items():
        assert backend in envs.supported_backends(name), (name, backend)
    assert set(BACKENDS) == {"generalized", "positional", "spring", "mjx"}
