"""The sparse training methods by name: how each makes its initial masks and how it trains them.

One table serves the library (:func:`sparse_jax.sparse_init`,
:func:`sparse_jax.sparse_optimizer`) and everything built on it.

>>> METHODS["tar"], METHODS["rigl"]
(Method(mask='tar', regrow='none'), Method(mask='static', regrow='gradient'))
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
      regrow: how the masks change during training (a :func:`sparse_jax.sparse_transform`
        ``regrow``): ``none`` (fixed), ``random`` (SET) or ``gradient`` (RigL).
    """

    mask: str
    regrow: str


METHODS: dict[str, Method] = {
    "dense": Method("dense", "none"),
    "static": Method("static", "none"),
    "uniform_revival": Method("uniform_revival", "none"),
    "tar": Method("tar", "none"),
    "set": Method("static", "random"),
    "rigl": Method("static", "gradient"),
}

# Methods that differ only by their initial mask; they train with the same fixed-mask transform.
MASK_METHODS: tuple[str, ...] = tuple(name for name, m in METHODS.items() if m.regrow == "none")
