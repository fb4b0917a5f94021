"""EauDeSAC: selection and replacement worked on a tiny critic, a run on the bandit, and its refusals."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparse_jax as sj
from agents.algorithms.config import EauDeConfig, RedoConfig, SparsityConfig, TrainConfig
from agents.algorithms.replay import Transition
from agents.execution import plan as plan_lib
from agents.execution import runner
from agents.execution.runner import prepare_runs, train_chunks
from agents.execution.train import make_algorithm
from agents.experiments import sweep
from sparse_jax import eaude
from tests.helpers import BANDIT

TINY = TrainConfig(
    **{**BANDIT, "hidden": (4,)},
    sparse=SparsityConfig(method="eaudesac", sparsity=0.5, distribution="uniform"),
    eaude=EauDeConfig(members=3, period=4, increment=0.25),
)


def _counts(masks):
    return [int(m.sum()) for m in jax.tree.leaves(masks)]


def _member(tree, k):
    return jax.tree.map(lambda x: x[k], tree)


def _dense(params):
    masks = sj.dense_masks(params)
    return sj.SparseInit(params, masks, masks)


def _batch(key, n=16):
    k_obs, k_act, k_next = jax.random.split(key, 3)
    obs = jax.random.uniform(k_obs, (n, 1), minval=-1, maxval=1)
    action = jax.random.uniform(k_act, (n, 1), minval=-1, maxval=1)
    ones = jnp.ones(n)
    return Transition(obs, action, -((action - obs) ** 2)[:, 0], ones, ones, jax.random.uniform(k_next, (n, 1)))


def test_members_start_as_the_initial_critic_and_its_pruned_copies():
    """Twin critic 2-4-1 (24 kernel weights) at increment 0.25: levels keep 24, 18, 14 (13.5 rounds up)."""
    algo = make_algorithm(TINY, obs_size=1, action_size=1)
    actor, critic = algo.init_params(jax.random.key(0))
    state = algo.init_state(_dense(actor), _dense(critic), jax.random.key(1))
    assert state.levels.tolist() == [0, 1, 2] and int(state.target_level) == 0
    # Ceiling 0.5: level 2 prunes 10/24 = 0.42, level 3 would prune 14/24 = 0.58.
    assert state.max_levels.tolist()[1] == 2
    assert [sum(_counts(_member(state.member_masks, k))) for k in range(3)] == [24, 18, 14]
    assert sum(_counts(state.critic_masks)) == 24 and sum(_counts(state.actor_masks)) == 12
    for a, b in zip(jax.tree.leaves(_member(state.critics, 0)), jax.tree.leaves(critic)):
        np.testing.assert_array_equal(a, b)


def test_selection_makes_the_smallest_loss_the_target_and_prunes_the_others_from_it():
    """Known summed losses [2e6, 5e5, 1e6] (one update adds < 1 to each): member 1 (level 1) wins at the period.

    The update at the period's last step is the plain update followed by the selection: the target is an
    exact copy of member 1; the members are it at levels 1, 2 and 2 (the ceiling), each pruned from it by
    magnitude with exact counts and its Adam moments kept where weights are kept; the actor follows to
    level 1; the summed losses restart.
    """
    algo = make_algorithm(TINY, obs_size=1, action_size=1)
    actor, critic = algo.init_params(jax.random.key(0))
    state = algo.init_state(_dense(actor), _dense(critic), jax.random.key(1))
    state = state.replace(loss_sum=jnp.array([2e6, 5e5, 1e6]))
    batch, key = _batch(jax.random.key(2)), jax.random.key(3)
    plain, _ = jax.jit(algo.update)(state, batch, key, jnp.int32(0))  # not a selection step
    chosen, metrics = jax.jit(algo.update)(state, batch, key, jnp.int32(TINY.eaude.period - 1))
    assert np.isfinite(metrics["critic_loss"])
    winner, winner_masks = _member(plain.critics, 1), _member(plain.member_masks, 1)
    for a, b in zip(jax.tree.leaves(chosen.target_critic), jax.tree.leaves(winner)):
        np.testing.assert_array_equal(a, b)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), chosen.target_masks, winner_masks))
    assert int(chosen.target_level) == 1 and chosen.levels.tolist() == [1, 2, 2]
    assert chosen.loss_sum.tolist() == [0.0, 0.0, 0.0] and plain.loss_sum.tolist() != [0.0, 0.0, 0.0]
    crit_ladder = eaude.ladder(winner_masks, "uniform", 0.25, span=2)
    for k, level in enumerate([1, 2, 2]):
        masks, params = _member(chosen.member_masks, k), _member(chosen.critics, k)
        assert _counts(masks) == crit_ladder.counts[level].tolist()
        leaves = lambda t: jax.tree.leaves(t, is_leaf=sj.is_none)
        for m, w, p in zip(leaves(masks), leaves(winner_masks), leaves(winner)):
            if m is None:
                continue
            m, w, p = np.asarray(m), np.asarray(w), np.abs(np.asarray(p))
            assert not (m & ~w).any()  # nothing regrows
            if (w & ~m).any():  # the pruned ones are the smallest |w| among the winner's kept weights
                assert p[w & ~m].max() <= p[m].min()
        kernel = np.asarray(params["q1"]["Dense_0"]["kernel"])
        assert not kernel[~np.asarray(masks["q1"]["Dense_0"]["kernel"])].any()
        mu = np.asarray(_member(chosen.critic_opts, k).inner_state[0].mu["q1"]["Dense_0"]["kernel"])
        kept = np.asarray(masks["q1"]["Dense_0"]["kernel"])
        plain_mu = np.asarray(_member(plain.critic_opts, 1).inner_state[0].mu["q1"]["Dense_0"]["kernel"])
        np.testing.assert_array_equal(mu[kept], plain_mu[kept])
        assert not mu[~kept].any()
    actor_ladder = eaude.ladder(sj.dense_masks(actor), "uniform", 0.25, span=2)
    assert _counts(chosen.actor_masks) == actor_ladder.counts[1].tolist() and int(chosen.actor_level) == 1
    for p, m in zip(jax.tree.leaves(chosen.actor), jax.tree.leaves(chosen.actor_masks, is_leaf=sj.is_none)):
        assert m is None or not np.asarray(p)[~np.asarray(m)].any()


@pytest.mark.slow
def test_a_batch_of_two_ceilings_shares_one_program_and_stops_at_each_runs_own():
    """Ceilings 0.3 and 0.6 in one batch, every member pruning (offset 1, 12 selections a chunk): each run ends
    exactly at its ceiling's level on the ladder, densities never rise, and no weight outside a mask is
    non-zero after any chunk."""
    cfg = dataclasses.replace(TINY, hidden=(16, 16), eaude=EauDeConfig(members=3, period=20, increment=0.1, offset=1))
    low, high = (dataclasses.replace(cfg, sparse=dataclasses.replace(cfg.sparse, sparsity=s)) for s in (0.3, 0.6))
    prepared = prepare_runs([(low, 0), (high, 0)])
    state, history = train_chunks(prepared.trainer, prepared.state, chunk_fn=prepared.chunk)
    assert prepared.trainer.traces["chunk"] == 1
    _, critic = prepared.trainer.algo.init_params(jax.random.key(0))
    lad = eaude.ladder(sj.dense_masks(critic), "uniform", 0.1, span=3)
    ceilings = [eaude.level_at(lad, s) for s in (0.3, 0.6)]
    assert ceilings == [3, 8]
    density = np.stack([h["critic_density"] for h in history])
    expected = [lad.counts[c].sum() / lad.counts[0].sum() for c in ceilings]
    np.testing.assert_allclose(density[-1], expected, rtol=1e-6)
    assert (np.diff(density, axis=0) <= 0).all()
    assert np.asarray(state.agent.target_level).tolist() == ceilings
    assert all((h["outside_mask"] == 0).all() for h in history)
    assert np.isfinite(np.stack([h["critic_loss"] for h in history])).all()


def test_eaudesac_is_refused_where_it_cannot_train():
    with pytest.raises(ValueError, match=r"algo.*'td3'.*ensemble variant \(sac\)"):
        dataclasses.replace(TINY, algo="td3")
    with pytest.raises(ValueError, match=r"redo.every.*eaudesac"):
        dataclasses.replace(TINY, redo=RedoConfig(every=100))
    with pytest.raises(ValueError, match="eaude.members"):
        EauDeConfig(members=1)
    with pytest.raises(ValueError, match="eaude.increment"):
        EauDeConfig(increment=1.0)


def test_the_planner_sizes_an_ensemble_run_with_its_members():
    """The batch planner's estimate per run is STATE_COPIES times the training state, which holds every member."""
    cfg = sweep.SweepConfig(envs=("probe_bandit",), methods=("static", "eaudesac"), seeds=2, train=TINY)
    plan = plan_lib.make_plan(cfg.plan_programs())
    static, ensemble = plan.bytes_per_run
    per_run = lambda c: plan_lib.STATE_COPIES * plan_lib.state_bytes(runner.state_template(runner.make_train(c), 1))
    (static_config, _), (ensemble_config, _) = cfg.plan_programs()
    assert ensemble == per_run(ensemble_config) and static == per_run(static_config)
    critic = sum(x.size * 4 for x in jax.tree.leaves(make_algorithm(TINY, 1, 1).init_params(jax.random.key(0))[1]))
    # Two more critics (3 members), each with its Adam moments (3 copies of the weights), counted 4 times.
    assert ensemble - static >= 2 * 4 * 3 * critic
