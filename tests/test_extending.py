"""A sparse method and an algorithm of your own, defined here: one ``register_*`` line each, nothing else changed.

The method is a random-regrowth variant of SET: it regrows where
``|N(0, 1)|`` draws are largest instead of ``U(0, 1)`` draws, so it picks a
uniformly random subset as SET does, from another stream of numbers. The
tests check that every layer that asks about methods (the transform's top-k
bound, the trainer, the sweep's programs and axes, the FLOPs model, the
report's dynamic baselines) treats it as the dynamic sparse method it is.
The algorithm is DDPG (Lillicrap et al. 2016), written against
:class:`agents.algorithms.types.Algorithm`, and a sweep trains both together.
"""

import json
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import struct

import sparse_jax as sj
from agents.algorithms import register_algorithm, unregister_algorithm
from agents.algorithms.config import SparsityConfig, TrainConfig, program_key
from agents.algorithms.networks import DeterministicActor, TwinCritic
from agents.algorithms.types import Algorithm, NetworkMasks, actor_critic_parts, dormant_fn, polyak, sparse_opt_state
from agents.execution.train import make_algorithm
from agents.experiments import sweep
from agents.results import stats
from tests.helpers import BANDIT


class NormalRegrowth(sj.DropAndGrow):
    """SET with ``|N(0, 1)|`` regrowth scores."""

    def grow_scores(self, ctx, i, mask, grad):
        return jnp.abs(jax.random.normal(jax.random.fold_in(ctx.key, i), mask.shape))


class NoisyGradientRegrowth(sj.DropAndGrow):
    """RigL with a little noise on the gradient's magnitude (it reads the dense gradient, as RigL does)."""

    def grow_scores(self, ctx, i, mask, grad):
        return jnp.abs(grad) + 1e-3 * jax.random.uniform(jax.random.fold_in(ctx.key, i), mask.shape)


@struct.dataclass
class DDPGState(NetworkMasks):
    actor: dict
    critic: dict
    target_actor: dict
    target_critic: dict
    actor_opt: optax.OptState
    critic_opt: optax.OptState


def make_ddpg(config, obs_size, action_size, make_tx):
    """DDPG: a deterministic actor and a critic (the first head of a twin; both heads learn the same target)."""
    actor_net, critic_net = DeterministicActor(config.hidden, action_size), TwinCritic(config.hidden)
    schedules = {net: (config.sparse.schedule(config.total_updates, net), 1) for net in ("actor", "critic")}
    policy = lambda params, obs: actor_net.apply({"params": params}, obs)
    q = lambda params, obs, action: critic_net.apply({"params": params}, obs, action)
    init_params, actor_tx, critic_tx = actor_critic_parts(
        actor_net, critic_net, obs_size, action_size, make_tx, schedules
    )

    def critic_loss(critic, state, batch):
        next_q = q(state.target_critic, batch.next_obs, policy(state.target_actor, batch.next_obs))[0]
        target = jax.lax.stop_gradient(batch.reward + config.gamma * batch.discount * next_q)
        return 0.5 * jnp.mean(batch.mask * jnp.sum((q(critic, batch.obs, batch.action) - target) ** 2, axis=0))

    def actor_loss(actor, critic, obs):
        return -jnp.mean(q(critic, obs, policy(actor, obs))[0])

    def init_state(actor_init, critic_init, key):
        k_actor, k_critic = jax.random.split(key)
        return DDPGState(
            actor_init.params, critic_init.params, actor_init.params, critic_init.params,
            sparse_opt_state(actor_tx, actor_init, k_actor), sparse_opt_state(critic_tx, critic_init, k_critic),
        )  # fmt: skip

    def act(params, obs, key, deterministic):
        action = policy(params, obs)
        if deterministic:
            return action
        return jnp.clip(action + config.td3.expl_noise * jax.random.normal(key, action.shape), -1.0, 1.0)

    def update(state, batch, key, step, rewire=None):
        c_loss, c_grads = jax.value_and_grad(critic_loss)(state.critic, state, batch)
        c_updates, critic_opt = critic_tx.update(c_grads, state.critic_opt, state.critic, step=step, rewire=rewire)
        state = state.replace(critic=optax.apply_updates(state.critic, c_updates), critic_opt=critic_opt)
        a_loss, a_grads = jax.value_and_grad(actor_loss)(state.actor, state.critic, batch.obs)
        a_updates, actor_opt = actor_tx.update(a_grads, state.actor_opt, state.actor, step=step, rewire=rewire)
        state = state.replace(actor=optax.apply_updates(state.actor, a_updates), actor_opt=actor_opt)
        state = state.replace(
            target_actor=polyak(state.target_actor, state.actor, config.tau, state.actor_masks),
            target_critic=polyak(state.target_critic, state.critic, config.tau, state.critic_masks),
        )
        return state, {"critic_loss": c_loss, "actor_loss": a_loss}

    def snip_losses(state, batch, key):
        return (lambda p, b: actor_loss(p, state.critic, b.obs)), (lambda p, b: critic_loss(p, state, b))

    def sparse_params(state):
        return [
            (state.actor, state.actor_masks), (state.critic, state.critic_masks),
            (state.target_actor, state.actor_masks), (state.target_critic, state.critic_masks),
        ]  # fmt: skip

    dormant = dormant_fn(actor_net, critic_net)
    return Algorithm(init_params, init_state, act, update, snip_losses, schedules, sparse_params, dormant)


@pytest.fixture
def ddpg():
    """DDPG, registered for one test (one line), then removed.

    Its FLOPs per update, in forwards of each network: critic forward + backward and target critic
    forward (4), actor forward + backward and target actor forward (4).
    """
    register_algorithm("ddpg", make_ddpg, flops_per_update={"actor": 4, "critic": 4})
    yield
    unregister_algorithm("ddpg")


@pytest.fixture
def methods():
    """The two methods, registered for one test (one line each), then removed."""
    sj.register_method(sj.SparseMethod("set_normal", "static", NormalRegrowth()))
    sj.register_method(sj.SparseMethod("rigl_noisy", "static", NoisyGradientRegrowth(grow="gradient")))
    yield
    sj.unregister_method("set_normal")
    sj.unregister_method("rigl_noisy")


def _top_k_sizes(tx, params, masks, key):
    """The ``k`` of every ``top_k`` in the traced update of ``tx`` with ``rewire=True``."""
    state = sj.with_masks(tx.init(params), masks, key=key)
    jaxpr = jax.make_jaxpr(lambda g, s, p: tx.update(g, s, p, rewire=True))(params, state, params)
    return sorted(int(k) for k in re.findall(r"top_k\[axis=0 k=(\d+)\]", str(jaxpr)))


def test_facts_come_from_the_rule(methods):
    m, g = sj.METHODS["set_normal"], sj.METHODS["rigl_noisy"]
    assert (m.rewires, m.grows, m.needs_dense_grad, m.starts_dense, m.prunes, m.revives) == (
        True, True, False, False, True, False,
    )  # fmt: skip
    assert m.rule.needs_key and g.rule.needs_key is False and g.needs_dense_grad
    assert m.program_tag("erk") == ("set_normal", False) and m.program_tag("global") == ("set_normal", True)
    # A grid axis changes the runs of the new method exactly as it changes SET's.
    for axis in ("sparsities", "scores", "distributions", "rhos"):
        assert ("set_normal" in sweep.axis_methods(axis)) == ("set" in sweep.axis_methods(axis)), axis
    with pytest.raises(ValueError, match="'set_normal' is already registered"):
        sj.register_method(sj.SparseMethod("set_normal"))
    with pytest.raises(ValueError, match="name='Set-2' is not allowed"):
        sj.SparseMethod("Set-2")


def test_its_top_k_is_bounded_by_the_active_counts(methods, monkeypatch):
    params = {"a": jnp.ones((8, 16)), "b": jnp.ones((16, 4))}
    init = sj.sparse_init(jax.random.key(0), params, 0.75, method="static", score="random", distribution="uniform")
    counts = sj.active_counts(init.masks)
    assert jax.tree.leaves(counts) == [32, 16]
    schedule = sj.DSTSchedule(100, delta_t=10, drop_fraction=0.5)
    sizes = {
        name: _top_k_sizes(
            sj.sparse_optimizer(name, optax.adam(1e-2), schedule=schedule, max_active=counts),
            params,
            init.masks,
            jax.random.key(1),
        )
        for name in ("set", "set_normal")
    }
    # Drop and grow, per layer: floor(0.5 * active) = 16 and 8 (not the layer sizes 128 and 64).
    assert sizes["set_normal"] == sizes["set"] == [8, 8, 16, 16]

    # The trainer hands the new method the same static per-layer bounds as SET.
    seen = {}
    original = sj.sparse_optimizer
    monkeypatch.setattr(
        sj, "sparse_optimizer", lambda m, *a, **kw: seen.setdefault(m, []).append(kw) or original(m, *a, **kw)
    )
    for name in ("set", "set_normal"):
        make_algorithm(
            TrainConfig(**BANDIT, sparse=SparsityConfig(method=name, distribution="uniform", delta_t=100)), 1, 1
        )
    bounds = {name: [jax.tree.leaves(kw["max_active"]) for kw in calls] for name, calls in seen.items()}
    assert bounds["set_normal"] == bounds["set"] and all(b for b in bounds["set"])


def test_its_flops_follow_its_rule(methods):
    params = {
        "actor": {"active": 10, "prunable": 100, "total": 110},
        "critic": {"active": 20, "prunable": 200, "total": 220},
    }
    schedule = (1000, 100, 0.8, 0.2)
    assert stats.relative_flops(params, "set_normal", *schedule) == stats.relative_flops(params, "static", *schedule)
    assert stats.relative_flops(params, "rigl_noisy", *schedule) == stats.relative_flops(params, "rigl", *schedule)
    assert stats.relative_flops(params, "rigl", *schedule)[0] > stats.relative_flops(params, "static", *schedule)[0]
    with pytest.raises(ValueError, match="method 'mine' is not registered"):
        stats.relative_flops(params, "mine", *schedule)


def test_it_is_a_dynamic_baseline_of_the_report(methods):
    rows = [
        {"env": "e", "algo": "sac", "sparsity": 0.9, "method": m, "mean": v}
        for m, v in (("static", 10.0), ("tar", 15.0), ("set", 11.0), ("set_normal", 12.0), ("gmp", 14.0))
    ]
    (gain,) = stats.tar_gains(rows)
    # The best method whose rule regrows (not GMP, which only prunes): the new one here.
    assert gain["dst_baseline"] == "set_normal" and math.isclose(gain["gain_vs_dst_pct"], 25.0)


def test_a_sweep_trains_the_new_method_with_the_new_algorithm(methods, ddpg, tmp_path):
    train = TrainConfig(**BANDIT, sparse=SparsityConfig(score="magnitude", distribution="uniform", delta_t=100))
    cfg = sweep.SweepConfig(
        envs=("probe_bandit",), algos=("ddpg",), methods=("static", "tar", "set_normal"), seeds=2, train=train
    )
    programs = cfg.programs()
    assert [[m for _, m in p] for p in programs] == [["static", "tar"], ["set_normal"]]
    assert program_key(cfg.run_config(sweep.GridRun(cfg.cells()[0], "set_normal", 0)))[1] == ("set_normal", False)

    rows = sweep.run_sweep(cfg, tmp_path, show_progress=False)
    assert {r["method"] for r in rows} == {"static", "tar", "set_normal"}
    runs = {p.parent.name: p for p in (tmp_path / "runs").glob("*/run.json")}
    new = [json.loads(p.read_text()) for name, p in runs.items() if "-set_normal-" in name]
    static = [json.loads(p.read_text()) for name, p in runs.items() if "-static-" in name]
    assert len(new) == 2 and new[0]["batch"] == "probe_bandit-ddpg-s0.9-set_normal"
    # Same parameter count as static (it starts from static's masks; per-layer counts never change) ...
    assert new[0]["params"] == static[0]["params"]
    # ... and it rewired: the critic's masks changed during training.
    curve = [
        json.loads(line)
        for line in (runs[next(n for n in runs if "-set_normal-seed0" in n)].parent / "curve.jsonl")
        .read_text()
        .splitlines()
    ]
    assert sum(row["critic_changed"] for row in curve) > 0
    assert np.isfinite([row["eval_return"] for row in curve]).all()
    (gain,) = stats.tar_gains(rows)
    assert gain["dst_baseline"] == "set_normal"
    # The report's FLOPs use DDPG's weights (4 and 4), not SAC's (3 and 4): hand-computed from run.json.
    (row,) = [r for r in rows if r["method"] == "static"]
    p = static[0]["params"]
    n, d = ({k: p[k]["total"] - p[k]["prunable"] + p[k]["active"] for k in p}, {k: p[k]["total"] for k in p})
    assert math.isclose(row["train_flops"], (4 * n["actor"] + 4 * n["critic"]) / (4 * d["actor"] + 4 * d["critic"]))
    assert not math.isclose(row["train_flops"], (3 * n["actor"] + 4 * n["critic"]) / (3 * d["actor"] + 4 * d["critic"]))


def test_an_algorithm_spec_refuses_bad_flops_weights():
    from agents.algorithms import AlgorithmSpec

    assert AlgorithmSpec("x", make_ddpg).flops_per_update is None  # the actor-critic model
    for bad in ({"critic": 4}, {"actor": -1}, {"actor": True}, [("actor", 3)]):
        with pytest.raises(ValueError, match="flops_per_update="):
            AlgorithmSpec("x", make_ddpg, flops_per_update=bad)
