"""Mask-update schedules: when SET/RigL rewire and how many weights they drop (:class:`DSTSchedule`), and
when and how far GMP prunes (:class:`GMPSchedule`).

Drop counts are exact integers: computed on the host with rational arithmetic
where the cosine is rational, and on device from a table in 62-bit fixed point
(:meth:`DSTSchedule.device_drop_count`), so a traced program drops the same
number of weights as the host formula.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sparse_jax.validation import check_int, check_number


@dataclasses.dataclass(frozen=True)
class DSTSchedule:
    """When and how much SET/RigL rewire.

    Attributes:
      total_steps: optimizer steps in the whole run.
      delta_t: steps between mask updates.
      drop_fraction: ``f0``, the drop fraction at ``t = 0`` (cosine-decayed).
      end_fraction: mask updates stop at ``t_end = floor(end_fraction * total_steps)``.
    """

    total_steps: int
    delta_t: int = 1000
    drop_fraction: float = 0.5
    end_fraction: float = 0.8

    def __post_init__(self):
        check_int("total_steps", self.total_steps, minimum=1)
        check_int("delta_t", self.delta_t, minimum=1)
        for name in ("drop_fraction", "end_fraction"):
            check_number(name, getattr(self, name), lo=0.0, hi=1.0)

    @property
    def t_end(self) -> int:
        """Last step (exclusive) at which the mask may change."""
        # The epsilon keeps float error from costing a step: 0.57 * 100 is 56.99999999999999.
        return int(math.floor(self.end_fraction * self.total_steps + 1e-9))

    def fraction(self, t: jax.Array) -> jax.Array:
        """Cosine drop fraction ``f0/2 * (1 + cos(pi t / t_end))``, 0 from ``t_end`` on (float32, for display).

        The rewiring itself uses the exact :meth:`drop_count`.

        >>> round(float(DSTSchedule(100, drop_fraction=0.5, end_fraction=0.5).fraction(25)), 6)
        0.25
        """
        t_end = max(self.t_end, 1)
        t = jnp.asarray(t, jnp.float32)
        f = 0.5 * self.drop_fraction * (1.0 + jnp.cos(jnp.pi * jnp.minimum(t, t_end) / t_end))
        return jnp.where(t < self.t_end, f, 0.0)

    def _exact_fraction(self, t: int) -> Fraction | None:
        """``f(t)`` as an exact fraction where it is rational (``t / t_end`` = 1/3, 1/2, 2/3), else ``None``."""
        f0 = Fraction(repr(float(self.drop_fraction)))
        for num, den, share in ((1, 3, Fraction(3, 4)), (1, 2, Fraction(1, 2)), (2, 3, Fraction(1, 4))):
            if t * den == num * self.t_end:
                return f0 * share
        return None

    def drop_count(self, t: Any, active: Any) -> np.ndarray:
        """Exact ``floor(f(t) * active)`` on the host, 0 outside ``[0, t_end)`` (numpy ints, broadcasting).

        ``f0`` is read as written (``Fraction(repr(drop_fraction))``, so 0.3 is
        3/10). By Niven's theorem ``cos(pi t / t_end)`` is rational in
        ``(0, t_end)`` only at ``t / t_end`` = 1/3, 1/2, 2/3, where ``f(t)`` is
        ``3 f0 / 4``, ``f0 / 2`` and ``f0 / 4``: there the count comes from exact
        rational arithmetic (Python ints, so nothing overflows). Elsewhere
        ``f(t) * active`` is irrational, never an integer, and float64 places it
        between the right integers.

        >>> s = DSTSchedule(1_000_000)  # t_end = 800000; t = 400000 is t_end / 2
        >>> int(s.drop_count(400_000, 12)), int(s.drop_count(1000, 12)), int(s.drop_count(800_000, 12))
        (3, 5, 0)
        """

        def one(t: int, active: int) -> int:
            if not 0 <= t < self.t_end:
                return 0
            exact = self._exact_fraction(t)
            if exact is not None:
                return math.floor(exact * active)
            f = 0.5 * float(self.drop_fraction) * (1.0 + math.cos(math.pi * t / self.t_end))
            return math.floor(f * active)

        t, active = np.broadcast_arrays(np.asarray(t, np.int64), np.asarray(active, np.int64))
        return np.vectorize(one, otypes=[np.int64])(t, active) if t.size else np.zeros(t.shape, np.int64)

    def _fixed_point(self, t: int) -> int:
        """``ceil(f(t) * 2**62)``: ``f(t)`` in fixed point, exact where ``f(t)`` is rational."""
        exact = self._exact_fraction(t)
        if exact is None:
            exact = Fraction(0.5 * float(self.drop_fraction) * (1.0 + math.cos(math.pi * t / self.t_end)))
        return math.ceil(exact * 2**_FIXED_BITS)

    def device_drop_count(self, t: jax.Array, active: jax.Array, on_schedule: bool = True) -> jax.Array:
        """:meth:`drop_count` inside a traced program (int32, shaped like ``active``); jit- and vmap-safe.

        On the schedule's update steps (``t % delta_t == 0``, ``0 < t < t_end``)
        the count comes from a table of ``f(t)`` in 62-bit fixed point, built on
        the host, times ``active`` in exact integer arithmetic: the same as
        :meth:`drop_count` whenever ``active * q < 2**62`` for ``f(t) = p / q``
        (any drop fraction of up to 9 decimal digits, with up to 10**8 active
        weights), and where ``f(t)`` is irrational unless ``f(t) * active``
        lies within ``active / 2**62`` of an integer. The program holds no host
        callback, so the persistent compilation cache keeps it.

        With ``on_schedule=False`` (``rewire=True`` may rewire at any step) an
        off-schedule ``t`` goes to :meth:`drop_count` through a host callback.
        """
        active = jnp.asarray(active, jnp.int32)
        t = jnp.asarray(t, jnp.int32)
        steps = range(self.delta_t, self.t_end, self.delta_t)
        if len(steps) > _MAX_TABLE:  # a table this long would bloat the program; ask the host every time
            return self._host_drop_count(t, active)
        table = np.zeros((max(len(steps), 1), _LIMBS), np.uint32)
        for k, step in enumerate(steps):
            f = self._fixed_point(step)
            table[k] = [(f >> (_LIMB_BITS * i)) & 0xFFFF for i in range(_LIMBS)]
        k = jnp.clip(t // self.delta_t - 1, 0, table.shape[0] - 1)
        on_grid = self.is_update_step(t)
        counts = jnp.where(on_grid, _times_fixed_point(jnp.asarray(table)[k], active), 0)
        if on_schedule:
            return counts
        off = (t > 0) & (t < self.t_end) & ~on_grid
        return jax.lax.cond(off, lambda: self._host_drop_count(t, active), lambda: counts)

    def _host_drop_count(self, t: jax.Array, active: jax.Array) -> jax.Array:
        def host(t, active):
            # Under vmap an unbatched t arrives with size-1 batch dims; the trailing axis of
            # `active` is the layer axis, so t broadcasts over it.
            return self.drop_count(np.asarray(t)[..., None], active).astype(np.int32)

        return jax.pure_callback(
            host, jax.ShapeDtypeStruct(active.shape, jnp.int32), t, active, vmap_method="expand_dims"
        )

    def is_update_step(self, t: jax.Array) -> jax.Array:
        """True after update ``t`` (1-based) when the mask changes."""
        t = jnp.asarray(t)
        return (t > 0) & (t % self.delta_t == 0) & (t < self.t_end)

    def next_update_step(self, t: jax.Array) -> jax.Array:
        """The first mask-update step at or after ``t``, or ``t_end`` when none is left.

        ``t_end`` is never a mask-update step, so ``next_update_step(t) < t_end``
        tells whether one is left. Loops use it to run the steps in between
        with ``rewire=False`` (no branch per step).

        >>> s = DSTSchedule(100, delta_t=10, end_fraction=0.5)
        >>> [int(s.next_update_step(t)) for t in (0, 10, 11, 45)]
        [10, 10, 20, 50]
        """
        t = jnp.asarray(t)
        nxt = jnp.maximum(-(-t // self.delta_t), 1) * self.delta_t
        return jnp.where(nxt < self.t_end, nxt, self.t_end).astype(t.dtype)


@dataclasses.dataclass(frozen=True)
class GMPSchedule:
    """When and how far gradual magnitude pruning (Zhu & Gupta 2017) prunes.

    After the ``t``-th update (``t = 1, 2, ...``) the target sparsity is
    ``s(t) = s_f * (1 - (1 - (t - t_start) / (t_last - t_start)) ** 3)`` for
    ``t_start <= t <= t_last`` (0 before, ``s_f`` after): dense at the start,
    pruning fast early and slowly near the end. The masks change on the update
    steps ``t_start, t_start + delta_t, ...`` below ``t_last``, and at
    ``t_last`` itself, so the run reaches ``s_f`` exactly there.

    Attributes:
      total_steps: optimizer steps in the whole run.
      sparsity: the final sparsity ``s_f``, in ``[0, 1)``.
      start_fraction: pruning starts at ``t_start = floor(start_fraction * total_steps)`` (at least 1).
      end_fraction: and ends at ``t_last = floor(end_fraction * total_steps)`` (at least ``t_start``).
      delta_t: steps between mask updates.
    """

    total_steps: int
    sparsity: float
    start_fraction: float = 0.2
    end_fraction: float = 0.8
    delta_t: int = 1000

    def __post_init__(self):
        check_int("total_steps", self.total_steps, minimum=1)
        check_int("delta_t", self.delta_t, minimum=1)
        check_number("sparsity", self.sparsity, lo=0.0, hi=1.0, hi_open=True)
        check_number("start_fraction", self.start_fraction, lo=0.0, hi=1.0)
        check_number("end_fraction", self.end_fraction, lo=float(self.start_fraction), hi=1.0)

    @property
    def t_start(self) -> int:
        """First mask-update step."""
        return max(int(math.floor(self.start_fraction * self.total_steps + 1e-9)), 1)

    @property
    def t_last(self) -> int:
        """Last mask-update step, where the sparsity reaches its target."""
        return max(int(math.floor(self.end_fraction * self.total_steps + 1e-9)), self.t_start)

    @property
    def t_end(self) -> int:
        """One past the last mask-update step (as :attr:`DSTSchedule.t_end`, an exclusive end)."""
        return self.t_last + 1

    def update_steps(self) -> list[int]:
        """Every mask-update step, in order."""
        return [*range(self.t_start, self.t_last, self.delta_t), self.t_last]

    def sparsity_at(self, t: int) -> float:
        """The target sparsity after update ``t`` (host float64)."""
        if t < self.t_start:
            return 0.0
        if t >= self.t_last or self.t_last == self.t_start:
            return float(self.sparsity)
        x = (t - self.t_start) / (self.t_last - self.t_start)
        return float(self.sparsity) * (1.0 - (1.0 - x) ** 3)

    def is_update_step(self, t: jax.Array) -> jax.Array:
        """True after update ``t`` (1-based) when the masks change."""
        t = jnp.asarray(t)
        on_grid = (t >= self.t_start) & (t < self.t_last) & ((t - self.t_start) % self.delta_t == 0)
        return on_grid | (t == self.t_last)

    def next_update_step(self, t: jax.Array) -> jax.Array:
        """The first mask-update step at or after ``t``, or ``t_end`` when none is left."""
        t = jnp.asarray(t)
        k = jnp.maximum(-(-(t - self.t_start) // self.delta_t), 0)
        nxt = self.t_start + k * self.delta_t
        nxt = jnp.where(nxt < self.t_last, nxt, self.t_last)
        return jnp.where(t <= self.t_last, nxt, self.t_end).astype(t.dtype)

    def index(self, t: jax.Array) -> jax.Array:
        """Position of update step ``t`` in :meth:`update_steps` (traced; meaningful on update steps)."""
        t = jnp.asarray(t)
        last = len(self.update_steps()) - 1
        return jnp.where(t == self.t_last, last, jnp.clip((t - self.t_start) // self.delta_t, 0, last))


_LIMB_BITS, _LIMBS, _FIXED_BITS = 16, 4, 62  # f(t) <= 1 in fixed point: 62 fraction bits in four 16-bit limbs
_MAX_TABLE = 1 << 16  # update steps beyond which device_drop_count asks the host instead of holding a table


def _times_fixed_point(limbs: jax.Array, active: jax.Array) -> jax.Array:
    """``floor(F * active / 2**62)`` exactly, ``F`` given as four 16-bit limbs (uint32), ``active`` int32.

    Schoolbook multiplication in base 2**16 on uint32: every partial product
    fits 32 bits and every digit sum stays below 2**19, so nothing overflows
    (x64 is off by default in JAX, so there is no 64-bit integer to use).
    """
    a = jnp.asarray(active).astype(jnp.uint32)
    a_limbs = (a & 0xFFFF, a >> 16)
    digits = [jnp.zeros_like(a) for _ in range(_LIMBS + 2)]
    for i in range(_LIMBS):
        for j, aj in enumerate(a_limbs):
            p = limbs[..., i] * aj
            digits[i + j] = digits[i + j] + (p & 0xFFFF)
            digits[i + j + 1] = digits[i + j + 1] + (p >> 16)
    carry = jnp.zeros_like(a)
    for d in range(len(digits)):
        total = digits[d] + carry
        digits[d], carry = total & 0xFFFF, total >> 16
    # Bits 62 and up: the top 2 bits of digit 3, then digits 4 and 5.
    return ((digits[3] >> 14) + (digits[4] << 2) + (digits[5] << 18)).astype(jnp.int32)
