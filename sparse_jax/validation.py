"""Argument checks shared by the library, the agents and the envs, with one error wording.

Every bad value is reported as ``"<name>=<value> is not allowed; allowed: <what>."``
(a ``ValueError``), so a message always names the argument, the value and what
would be accepted.

>>> check_choice("score", "taylor", ("random", "magnitude", "snip"))
Traceback (most recent call last):
...
ValueError: score='taylor' is not allowed; allowed: random, magnitude, snip.
>>> check_int("delta_t", 2.0, minimum=1), check_number("rho", 0.1, lo=0.0, hi=1.0)
(2, 0.1)
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable
from typing import Any, NoReturn

import jax


def fail(name: str, value: Any, allowed: str) -> NoReturn:
    """Raise the one ``ValueError`` wording: ``<name>=<value!r> is not allowed; allowed: <allowed>.``"""
    raise ValueError(f"{name}={value!r} is not allowed; allowed: {allowed}.")


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise naming all of them."""
    allowed = tuple(allowed)
    if isinstance(value, str | int | float | bool | None) and value in allowed:
        return value
    fail(name, value, ", ".join(map(str, allowed)))


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """``value`` as an int (``2.0`` is fine; ``2.5``, ``True`` and tracers are not), at least ``minimum``."""
    what = "an integer" if minimum is None else f"an integer >= {minimum}"
    if isinstance(value, bool | str | bytes):
        fail(name, value, what)
    try:
        i = int(operator.index(value))
    except TypeError:
        try:
            f = float(value)
        except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
            fail(name, value, f"a concrete {what.removeprefix('an ')}")
        if not f.is_integer():
            fail(name, value, what)
        i = int(f)
    if minimum is not None and i < minimum:
        fail(name, value, what)
    return i


def check_number(
    name: str,
    value: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """``value`` as a finite float inside the interval ``lo .. hi`` (NaN, inf and bools fail).

    ``lo_open`` / ``hi_open`` exclude the end points; a missing bound is unbounded.
    """
    if lo is not None and hi is not None:
        what = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    elif lo is not None:
        what = f"a finite number {'>' if lo_open else '>='} {lo:g}"
    elif hi is not None:
        what = f"a finite number {'<' if hi_open else '<='} {hi:g}"
    else:
        what = "a finite number"
    if isinstance(value, bool) or not isinstance(value, int | float) and not hasattr(value, "__float__"):
        fail(name, value, what)
    try:
        v = float(value)
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
        fail(name, value, what)
    inside = math.isfinite(v)
    if lo is not None:
        inside &= v > lo if lo_open else v >= lo
    if hi is not None:
        inside &= v < hi if hi_open else v <= hi
    if not inside:
        fail(name, value, what)
    return v
