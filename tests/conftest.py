"""Shared fixtures: small MLP params built with flax."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest


class MLP(nn.Module):
    """ReLU MLP used across the tests."""

    widths: tuple[int, ...]
    out: int

    @nn.compact
    def __call__(self, x):
        for w in self.widths:
            x = nn.relu(nn.Dense(w)(x))
        return nn.Dense(self.out)(x)


def mlp_params(key, sizes):
    """Params of an MLP with layer sizes ``sizes = (in, h1, ..., out)``."""
    net = MLP(tuple(sizes[1:-1]), sizes[-1])
    return net.init(key, jnp.zeros((1, sizes[0])))["params"]


@pytest.fixture
def small_params():
    """8 -> 32 -> 32 -> 4 MLP params."""
    return mlp_params(jax.random.key(0), (8, 32, 32, 4))
