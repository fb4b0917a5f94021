"""The sparse training methods by name: how each makes its initial masks and how it trains them.

One table serves the library (:func:`sparse_jax.sparse_init`,
:func:`sparse_jax.sparse_optimizer`) and everything built on it.

>>> METHODS["tar"], METHODS["rigl"], METHODS["gmp"]
(Method(mask='tar', update='fixed'), Method(mask='static', update='rigl'), Method(mask='dense', update='gmp'))
>>> MASK_METHODS
('dense', 'static', 'uniform_revival', 'tar')
"""

from __future__ import annotations

from typing import NamedTuple


class Method(NamedTuple):
    """One sparse training method.

    Attributes:
      mask: how the initial masks are made (a :func:`sparse_jax.sparse_init` method):
        ``dense``, ``static`` (score x distribution), ``uniform_revival`` or ``tar``.
      update: how the masks change during training: ``fixed``; ``set`` (magnitude
        drop, random regrowth); ``rigl`` (magnitude drop, gradient regrowth);
        ``gmp`` (gradual magnitude pruning from dense, no regrowth).
    """

    mask: str
    update: str


METHODS: dict[str, Method] = {
    "dense": Method("dense", "fixed"),
    "static": Method("static", "fixed"),
    "uniform_revival": Method("uniform_revival", "fixed"),
    "tar": Method("tar", "fixed"),
    "set": Method("static", "set"),
    "rigl": Method("static", "rigl"),
    "gmp": Method("dense", "gmp"),
}

# Methods that differ only by their initial mask; they train with the same fixed-mask transform.
MASK_METHODS: tuple[str, ...] = tuple(name for name, m in METHODS.items() if m.update == "fixed")
