import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.algorithms.replay import Transition, buffer_add, buffer_init, buffer_sample


def _batch(start, n):
    v = jnp.arange(start, start + n, dtype=jnp.float32)
    return Transition(v[:, None], v[:, None], v, v, v, v[:, None])


def test_add_wraps_around_and_counts():
    buf = buffer_init(5, 1, 1)
    buf = buffer_add(buf, _batch(0, 3))
    assert (int(buf.position), int(buf.size)) == (3, 3)
    buf = buffer_add(buf, _batch(3, 4))  # 3, 4 fill slots 3, 4; 5, 6 overwrite slots 0, 1
    assert (int(buf.position), int(buf.size)) == (2, 5)
    assert buf.data.reward.tolist() == [5.0, 6.0, 2.0, 3.0, 4.0]


def test_sample_only_from_filled_part():
    buf = buffer_add(buffer_init(100, 1, 1), _batch(0, 7))
    s = buffer_sample(buf, jax.random.key(0), 1000)
    assert set(np.asarray(s.reward).astype(int).tolist()) == set(range(7))
    np.testing.assert_array_equal(s.obs[:, 0], s.reward)  # fields stay aligned


def test_buffer_is_a_jittable_pytree():
    step = jax.jit(lambda b, t: buffer_add(b, t))
    buf = step(
        buffer_init(4, 2, 1), Transition(jnp.ones((2, 2)), jnp.ones((2, 1)), *[jnp.ones(2)] * 3, jnp.ones((2, 2)))
    )
    assert int(buf.size) == 2
    with pytest.raises(ValueError, match="capacity=0"):
        buffer_init(0, 1, 1)
