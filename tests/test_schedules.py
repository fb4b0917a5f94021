"""sparse_jax.schedules: when SET/RigL rewire and how many they drop (exactly), and GMP's cubic schedule."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sparse_jax as sj
from tests.helpers import bind_masks as _bound
from tests.helpers import static_sparse_mlp as _setup
from tests.helpers import train_steps as _run


def test_cubic_schedule_closed_form():
    s = sj.GMPSchedule(total_steps=100, sparsity=0.8, start_fraction=0.2, end_fraction=0.6, delta_t=7)
    assert (s.t_start, s.t_last, s.t_end) == (20, 60, 61)
    assert s.update_steps() == [20, 27, 34, 41, 48, 55, 60]
    assert s.sparsity_at(19) == 0.0 and s.sparsity_at(20) == 0.0 and s.sparsity_at(60) == 0.8
    assert s.sparsity_at(40) == pytest.approx(0.8 * (1 - 0.5**3))  # halfway: 7/8 of the target
    assert s.sparsity_at(1000) == 0.8
    steps = [t for t in range(0, 120) if bool(s.is_update_step(t))]
    assert steps == s.update_steps()
    # next_update_step against brute force, and t_end once none is left.
    for t in range(0, 80):
        expected = min([u for u in steps if u >= t], default=s.t_end)
        assert int(s.next_update_step(t)) == expected


def test_schedule_updates_only_at_multiples_and_before_t_end():
    sched = sj.DSTSchedule(total_steps=50, delta_t=5, drop_fraction=0.5, end_fraction=0.6)
    assert sched.t_end == 30
    steps = [t for t in range(0, 60) if bool(sched.is_update_step(t))]
    assert steps == [5, 10, 15, 20, 25]
    assert float(sched.fraction(0)) == pytest.approx(0.5)
    assert float(sched.fraction(15)) == pytest.approx(0.25)
    assert float(sched.fraction(30)) == 0.0 and float(sched.fraction(45)) == 0.0
    # The transform follows it: the mask changes exactly after updates 5, 10, ..., 25.
    params, masks = _setup()
    tx = _bound(sj.set_sparse(optax.adam(1e-2), schedule=sched), masks, jax.random.key(0))
    changed, prev = [], masks
    for t, (_, m, _) in enumerate(_run(tx, params, 40), start=1):
        if any(bool((a != b).any()) for a, b in zip(jax.tree.leaves(m), jax.tree.leaves(prev))):
            changed.append(t)
        prev = m
    assert changed == [5, 10, 15, 20, 25]


def test_next_update_step_matches_is_update_step():
    for total, delta_t, end in [(50, 5, 0.6), (100, 10, 0.5), (37, 4, 1.0), (10, 20, 0.8), (10, 1, 0.0)]:
        sched = sj.DSTSchedule(total, delta_t=delta_t, end_fraction=end)
        steps = [t for t in range(total + 30) if bool(sched.is_update_step(t))]
        for t in range(-3, total + 30):
            expected = next((s for s in steps if s >= t), sched.t_end)
            assert int(sched.next_update_step(t)) == expected, (total, delta_t, end, t)
        # Traced and vectorized, as a training loop calls it.
        ts = jnp.arange(total, dtype=jnp.int32)
        np.testing.assert_array_equal(
            jax.jit(sched.next_update_step)(ts), [int(sched.next_update_step(int(t))) for t in ts]
        )


def test_non_integer_inputs_are_rejected():
    with pytest.raises(ValueError, match="delta_t=2.5 is not allowed; allowed: an integer >= 1"):
        sj.DSTSchedule(10, delta_t=2.5)
    with pytest.raises(ValueError, match="count=2.7 is not allowed; allowed: an integer"):
        sj.topk_mask({"a": jnp.zeros((3, 3))}, {"a": 2.7})
    assert sj.DSTSchedule(100, end_fraction=0.57).t_end == 57


def _exact_drop_count(schedule, t, active):
    """``floor(f(t) * active)`` from exact rationals where cos(pi t / t_end) is rational, else 60-digit decimals."""
    import decimal
    from fractions import Fraction

    if not 0 <= t < schedule.t_end:
        return 0
    f0 = Fraction(repr(schedule.drop_fraction))
    r = Fraction(t, schedule.t_end)
    rational_cos = {Fraction(0): 1, Fraction(1, 3): Fraction(1, 2), Fraction(1, 2): 0, Fraction(2, 3): Fraction(-1, 2)}
    if r in rational_cos:
        return int((f0 / 2 * (1 + rational_cos[r]) * active).__floor__())
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        pi = decimal.Decimal("3.14159265358979323846264338327950288419716939937510582097494459")
        x = pi * r.numerator / r.denominator
        term, total, k = decimal.Decimal(1), decimal.Decimal(1), 0
        while abs(term) > decimal.Decimal(10) ** -58:  # Taylor series of cos
            k += 2
            term *= -x * x / (k * (k - 1))
            total += term
        value = decimal.Decimal(f0.numerator) / f0.denominator / 2 * (1 + total) * active
    return int(value.to_integral_value(rounding=decimal.ROUND_FLOOR))


@pytest.mark.parametrize(
    "schedule",
    [
        sj.DSTSchedule(1_000_000),  # the default: t_end / 2 = 400000 is an update step
        sj.DSTSchedule(3000, delta_t=10),  # t_end = 2400: 800, 1200 and 1600 are update steps
        sj.DSTSchedule(900, delta_t=1, drop_fraction=0.3, end_fraction=1.0),  # f0 = 3/10, not a binary fraction
        sj.DSTSchedule(7777, delta_t=7, drop_fraction=0.75, end_fraction=0.6),
        sj.DSTSchedule(1_000_000, drop_fraction=1 / 3),  # 16 decimal digits: Python ints, no int64 overflow
    ],
    ids=["default", "thirds", "decimal_f0", "odd", "one_third"],
)
def test_drop_count_is_exact_at_every_update_step_eager_and_jit(schedule):
    actives = np.array([1, 4, 12, 40, 100, 999, 2767, 6553, 65536, 200_000, 10**8])
    steps = [t for t in range(1, schedule.t_end) if t % schedule.delta_t == 0]
    expected = np.array([[_exact_drop_count(schedule, t, a) for a in actives] for t in steps])
    np.testing.assert_array_equal(schedule.drop_count(np.array(steps)[:, None], actives), expected)
    on_device = jax.jit(jax.vmap(schedule.device_drop_count, in_axes=(0, None)))
    np.testing.assert_array_equal(on_device(jnp.array(steps), jnp.array(actives)), expected)
    eager = [schedule.device_drop_count(t, actives) for t in steps[:: max(1, len(steps) // 20)]]
    np.testing.assert_array_equal(np.stack(eager), expected[:: max(1, len(steps) // 20)])


def test_rewiring_drops_the_exact_count_at_t_end_over_two_eager_and_jit():
    """The issue's example: default schedule, t = 400000, 12 active: f(t) * 12 = 3 exactly."""
    schedule = sj.DSTSchedule(1_000_000)
    mask = jnp.arange(20) < 12
    params = {"w": jnp.where(mask, jnp.arange(1.0, 21.0), 0.0)}
    prune_all = lambda path, leaf: True  # the one leaf is 1-D, which the default filter keeps dense
    tx = _bound(sj.set_sparse(optax.sgd(0.0), schedule=schedule, filter_fn=prune_all), {"w": mask}, jax.random.key(0))
    state = tx.init(params)
    grads = {"w": jnp.ones(20)}
    for update in (tx.update, jax.jit(tx.update, static_argnames="rewire")):
        _, new = update(grads, state, params, step=399_999, rewire=True)
        assert int((mask & ~new.masks["w"]).sum()) == 3
        assert int(new.masks["w"].sum()) == 12


def test_off_schedule_counts_and_no_host_callback_on_the_schedule():
    schedule = sj.DSTSchedule(1_000_000)
    actives = jnp.array([12, 6553, 200_000])
    # Off the update steps (rewire=True may rewire anywhere) the host computes the count.
    for t in (1, 999, 400_001, 799_999):
        expected = [_exact_drop_count(schedule, t, int(a)) for a in actives]
        got = jax.jit(lambda t: schedule.device_drop_count(t, actives, on_schedule=False))(t)
        np.testing.assert_array_equal(got, expected)
    assert schedule.device_drop_count(800_000, actives, on_schedule=False).tolist() == [0, 0, 0]
    # The schedule's own path holds no callback, so the persistent compilation cache can store the program.
    jaxpr = str(jax.make_jaxpr(lambda t: schedule.device_drop_count(t, actives))(1000))
    assert "callback" not in jaxpr
    params, masks = _setup()
    tx = _bound(sj.set_sparse(optax.adam(1e-2), schedule=sj.DSTSchedule(100, delta_t=10)), masks, jax.random.key(0))
    update = lambda p, s: tx.update(p, s, p)
    assert "callback" not in str(jax.make_jaxpr(update)(params, tx.init(params)))
    with pytest.raises(ValueError, match="n_drop must be an integer count"):
        sj.drop_and_grow(jnp.ones(4, bool), jnp.ones(4), jnp.ones(4), 0.5)
