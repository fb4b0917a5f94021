"""The algorithm registry: name -> factory ``(config, obs_size, action_size, make_tx) -> Algorithm``.

Adding an algorithm is one file (its losses, state type and factory, as
``agents/sac.py``) plus one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from agents.sac import make_sac
from agents.td3 import make_td3
from agents.types import Algorithm

ALGORITHMS: dict[str, Callable[..., Algorithm]] = {
    "sac": make_sac,
    "td3": make_td3,
}
