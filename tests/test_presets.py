"""Every preset compares TAR where it acts: a metric base score, and masks that differ from static's."""

import jax
import numpy as np
import pytest

import sparse_jax as sj
from agents.algorithms.networks import GaussianActor, TwinCritic, init_actor_critic
from agents.experiments.sweep import PRESETS
from envs import make_env


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_cell_uses_a_metric_base_score(preset):
    """With a random base, random revival gives a random mask: TAR would equal static in distribution."""
    cfg = PRESETS[preset]
    for cell in cfg.cells():
        assert cfg.cell_config(cell).sparse.score != "random", cell


@pytest.mark.parametrize("preset", ["quick", "evidence"])
def test_tar_moves_connections_between_layers_in_the_cpu_presets(preset):
    """TAR's per-layer counts differ from static's in actor and critic (so its masks differ in any base).

    Magnitude stands in for SNIP here: the counts depend on the distribution, not on the score.
    """
    cfg = PRESETS[preset]
    for cell in cfg.cells():
        train = cfg.cell_config(cell)
        env = make_env(cell.env)
        actor, critic = init_actor_critic(
            jax.random.key(0),
            GaussianActor(train.hidden, env.action_size),
            TwinCritic(train.hidden),
            env.observation_size,
            env.action_size,
        )
        for params in (actor, critic):
            counts = {}
            for method in ("static", "tar"):
                init = sj.sparse_init(
                    jax.random.key(1), params, cell.sparsity, method=method, score="magnitude",
                    distribution=cell.distribution, revival=train.sparse.revival,
                )  # fmt: skip
                counts[method] = [int(np.asarray(m).sum()) for m in jax.tree.leaves(init.masks)]
            assert sum(counts["static"]) == sum(counts["tar"])
            assert counts["static"] != counts["tar"], (preset, counts)
