"""The training loop on probe envs: sparsity invariants, tracing, seeds, analytic Q values (sharding: multihost)."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sparse_jax as sj
from agents.algorithms.config import RedoConfig, SACConfig, SparsityConfig, TD3Config, TrainConfig, hyper_values
from agents.algorithms.networks import TwinCritic
from agents.execution.runner import run
from agents.execution.train import (
    inner_optimizer,
    make_algorithm,
    make_train,
    network_sizes,
    next_redo_iteration,
    next_rewire_iteration,
    trained_hidden,
)
from tests.helpers import BANDIT, SMALLER

MASK_METHODS = sj.MASK_METHODS


def _leaves(tree):
    return [
        np.asarray(jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x)
        for x in jax.tree.leaves(tree)
    ]


@pytest.fixture(scope="module")
def sac_group():
    """dense, static, uniform_revival and TAR SAC x 2 seeds in one vmapped, compiled batch."""
    cfg = TrainConfig(**BANDIT, sparse=SparsityConfig(sparsity=0.8, score="magnitude"))
    masks_per_chunk, reports = [], []

    def on_chunk(report):
        reports.append(report._replace(state=None))
        masks_per_chunk.append(jax.device_get((report.state.agent.actor_masks, report.state.agent.critic_masks)))

    result = run(cfg, seeds=[0, 1], methods=MASK_METHODS, on_chunk=on_chunk)
    result.reports = reports
    return cfg, result, masks_per_chunk


@pytest.fixture(scope="module")
def td3_rigl():
    """RigL TD3 x 2 seeds, rewiring every 300 updates (chunks hold 250 updates)."""
    cfg = TrainConfig(**BANDIT, algo="td3", sparse=SparsityConfig(method="rigl", sparsity=0.8, delta_t=300))
    masks_per_chunk = []
    result = run(
        cfg,
        seeds=[0, 1],
        on_chunk=lambda r: masks_per_chunk.append(
            jax.device_get((r.state.agent.actor_masks, r.state.agent.critic_masks))
        ),
    )
    return cfg, result, masks_per_chunk


def test_mask_only_methods_share_one_compiled_chunk(sac_group):
    cfg, result, _ = sac_group
    assert result.labels == [(m, s) for m in MASK_METHODS for s in (0, 1)]
    assert len(result.history) == cfg.num_chunks == 4
    assert result.traces["chunk"] == 1 and result.traces["evaluate"] == 1


def test_on_chunk_gets_labels_and_one_value_per_run_for_every_metric(sac_group):
    _, result, _ = sac_group
    assert [r.chunk for r in result.reports] == [0, 1, 2, 3]
    for report, history in zip(result.reports, result.history):
        assert report.labels == result.labels
        assert report.metrics is history
        for name, values in report.metrics.items():
            assert isinstance(values, np.ndarray) and values.shape == (8,), name
        row = report.scalars(3)
        assert row["env_steps"] == (report.chunk + 2) * 500 and isinstance(row["eval_return"], float)
        assert row["wall_s"] == report.metrics["wall_s"][0] > 0  # host timings are shared by the batch


def test_fixed_masks_report_no_turnover_and_a_dormant_fraction(sac_group):
    _, result, _ = sac_group
    for h in result.history:
        assert h["actor_changed"].tolist() == [0] * 8 and h["critic_changed"].tolist() == [0] * 8
        for net in ("actor", "critic"):
            assert ((h[f"{net}_dormant"] >= 0) & (h[f"{net}_dormant"] <= 1)).all()


def test_exact_density_and_zero_pruned_weights(sac_group):
    cfg, result, _ = sac_group
    agent = result.state.agent
    for net, params, masks in (("actor", agent.actor, agent.actor_masks), ("critic", agent.critic, agent.critic_masks)):
        n = sum(int(np.prod(m.shape[1:])) for m in jax.tree.leaves(masks))
        target = sj.target_active(n, cfg.sparse.network_sparsity(net))
        active = sum(np.asarray(m).reshape(m.shape[0], -1).sum(1) for m in jax.tree.leaves(masks))
        assert active.tolist() == [n] * 2 + [target] * 6, net
        for p, m in zip(jax.tree.leaves(params), jax.tree.leaves(masks, is_leaf=sj.is_none)):
            if m is not None:
                assert not np.asarray(p)[~np.asarray(m)].any()
    for p, m in zip(jax.tree.leaves(agent.target_critic), jax.tree.leaves(agent.critic_masks, is_leaf=sj.is_none)):
        if m is not None:
            assert not np.asarray(p)[~np.asarray(m)].any()
    for h in result.history:
        assert h["outside_mask"].tolist() == [0] * 8
        np.testing.assert_allclose(h["actor_density"][2:], h["actor_density"][2])


def test_static_and_tar_masks_never_change(sac_group):
    _, result, masks_per_chunk = sac_group
    initial = (result.masks[0].masks, result.masks[1].masks)
    for masks in masks_per_chunk:
        for a, b in zip(_leaves(masks), _leaves(initial)):
            np.testing.assert_array_equal(a, b)
    # TAR only adds to its base mask.
    for base, final in zip(_leaves(result.masks[0].base_masks), _leaves(result.masks[0].masks)):
        assert (final | ~base).all()


def test_seeds_differ_and_methods_share_dense_init(sac_group):
    _, result, _ = sac_group
    last = result.history[-1]["eval_return"]
    assert last[0] != last[1]
    # Runs are ordered method-major: dense seeds 0, 1, static 0, 1, ... Each seed's methods start
    # from the same dense init, so every kept initial weight equals the dense run's.
    for leaf in jax.tree.leaves(result.masks[0].params):
        leaf = np.asarray(leaf)
        for run_index in (2, 4, 6):
            kept = leaf[run_index] != 0
            np.testing.assert_array_equal(leaf[run_index][kept], leaf[0][kept])
        if leaf.ndim == 3:  # kernels (biases start at 0 for every seed)
            assert not np.array_equal(leaf[0], leaf[1])


def test_learned_q_matches_analytic_bandit_value(sac_group):
    """Dense SAC on the bandit probe learns Q(s, a) = -(a - s)^2 and a near-optimal greedy policy.

    Measured over seeds 0-7 (this config, dense only), identical to 3 decimals under
    ``XLA_FLAGS=--xla_cpu_max_isa=AVX`` and ``SSE4_2``: mean |Q - analytic| on the grid
    0.018-0.031 (seed 0: 0.021), greedy return -0.013 to -0.061 (seed 0: -0.013). The
    thresholds, 0.075 and -0.15, are 2.4x the worst error and 2.5x the worst return; random
    actions average about -2/3, and a critic that outputs 0 is off by 0.53 on average.
    """
    cfg, result, _ = sac_group
    critic = jax.tree.map(lambda x: x[0], result.state.agent.critic)  # dense, seed 0
    s = jnp.linspace(-0.8, 0.8, 9)
    obs, act = jnp.repeat(s, 9)[:, None], jnp.tile(s, 9)[:, None]
    q = TwinCritic(cfg.hidden).apply({"params": critic}, obs, act)
    analytic = -((act - obs) ** 2)[:, 0]
    assert float(jnp.mean(jnp.abs(q - analytic))) < 0.075
    # The greedy policy is near the optimum a = s (return 0; random actions average about -2/3).
    assert float(result.history[-1]["eval_return"][0]) > -0.15


def test_rigl_masks_change_at_update_steps_only(td3_rigl):
    cfg, result, masks_per_chunk = td3_rigl
    assert result.traces["chunk"] == 1
    updates_per_chunk = cfg.chunk_iters * cfg.updates_per_step  # 250
    t_end = cfg.sparse.schedule(cfg.total_updates).t_end  # 800
    previous = (result.masks[0].masks, result.masks[1].masks)
    counts0 = [a.reshape(2, -1).sum(1).tolist() for a in _leaves(previous)]
    for c, masks in enumerate(masks_per_chunk):
        lo, hi = c * updates_per_chunk, (c + 1) * updates_per_chunk  # updates t = lo + 1 .. hi
        critic_rewires = any(t % 300 == 0 and t < t_end for t in range(lo + 1, hi + 1))
        critic_changed = any((a != b).any() for a, b in zip(_leaves(masks[1]), _leaves(previous[1])))
        assert critic_changed == critic_rewires, c
        assert [a.reshape(2, -1).sum(1).tolist() for a in _leaves(masks)] == counts0
        previous = masks
    for h in result.history:
        assert h["outside_mask"].tolist() == [0, 0]
    # The delayed actor's optimizer sees update u as step u // 2: its schedule (500 steps, t_end 400)
    # rewires once, at step 300 = update 598, in chunk 2.
    actor_changed = [
        any((a != b).any() for a, b in zip(_leaves(m[0]), _leaves(p[0])))
        for m, p in zip(masks_per_chunk, [(result.masks[0].masks, None)] + masks_per_chunk[:-1])
    ]
    assert actor_changed == [False, False, True, False]


def test_gmp_td3_prunes_each_network_on_its_own_schedule():
    """GMP TD3 from dense: after every chunk each network holds exactly its schedule's count."""
    sparse = SparsityConfig(method="gmp", sparsity=0.8, critic_sparsity=0.9, delta_t=100)
    cfg = TrainConfig(**BANDIT, algo="td3", sparse=sparse)
    counts = []
    result = run(
        cfg,
        seeds=[0, 1],
        on_chunk=lambda r: counts.append(
            [
                [int(x) for x in sum(a.reshape(2, -1).sum(1) for a in _leaves(n))]
                for n in (r.state.agent.actor_masks, r.state.agent.critic_masks)
            ]
        ),
    )
    schedules = make_algorithm(cfg, obs_size=1, action_size=1).schedules
    updates_per_chunk = cfg.chunk_iters * cfg.updates_per_step  # 250
    for c, (actor, critic) in enumerate(counts):
        hi = (c + 1) * updates_per_chunk
        for got, net in ((actor, "actor"), (critic, "critic")):
            schedule, stride = schedules[net]
            t = -(-hi // stride)  # the network's optimizer has taken this many steps
            done = [u for u in schedule.update_steps() if u <= t]
            n = sum(int(np.prod(m.shape[1:])) for m in _leaves(result.masks[0 if net == "actor" else 1].masks))
            expected = sj.target_active(n, schedule.sparsity_at(done[-1])) if done else n
            assert got == [expected, expected], (c, net)
    # Both networks end at their own target (s(t_start) is 0, so pruning shows from t_start + delta_t on).
    for got, net, sparsity in ((counts[-1][0], 0, 0.8), (counts[-1][1], 1, 0.9)):
        n = sum(int(np.prod(m.shape[1:])) for m in _leaves(result.masks[net].masks))
        assert got == [sj.target_active(n, sparsity)] * 2
    for c, h in enumerate(result.history):
        assert h["outside_mask"].tolist() == [0, 0]
        pruned = [counts[c - 1][1][0] if c else None, counts[c][1][0]]
        if c:  # turnover: the connections GMP removed from the critics in this chunk
            assert h["critic_changed"].tolist() == [pruned[0] - pruned[1]] * 2


@pytest.mark.parametrize("method", ["set", "gmp"])
@pytest.mark.parametrize("algo", ["sac", "td3"])
@pytest.mark.parametrize("ups", [1, 2, 3])
@pytest.mark.parametrize("delta_t", [1, 7, 300])
def test_next_rewire_iteration_finds_every_mask_update(method, algo, ups, delta_t):
    cfg = TrainConfig(
        **{**BANDIT, "updates_per_step": ups, "chunk_steps": 400, "total_steps": 2500},
        algo=algo,
        sparse=SparsityConfig(method=method, delta_t=delta_t),
    )
    # Brute force: the iterations holding an update at which some network's optimizer rewires.
    hits = set()
    schedules = make_algorithm(cfg, obs_size=1, action_size=1).schedules
    for schedule, d in schedules.values():
        for u in range(cfg.total_updates):
            if u % d == 0 and bool(schedule.is_update_step(u // d + 1)):
                hits.add(u // ups)
    iters = cfg.total_updates // ups
    assert hits and max(hits) < iters
    its = jnp.arange(iters)
    for end in (iters, iters // 2):
        got = jax.jit(jax.vmap(lambda it, end=end: next_rewire_iteration(schedules, ups, it, end)))(its)
        expected = [min([h for h in hits if it <= h < end], default=end) for it in range(iters)]
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("ups", [1, 2, 3])
@pytest.mark.parametrize("every", [1, 4, 7, 250])
def test_next_redo_iteration_finds_every_redo_step(ups, every):
    """Brute force: the iterations holding an update u with (u + 1) % every == 0, before ``end``."""
    iters = 600
    hits = {u // ups for u in range(iters * ups) if (u + 1) % every == 0}
    its = jnp.arange(iters)
    for end in (iters, iters // 2):
        got = jax.jit(jax.vmap(lambda it, end=end: next_redo_iteration(every, ups, it, end)))(its)
        expected = [min([h for h in hits if it <= h < end], default=end) for it in range(iters)]
        np.testing.assert_array_equal(got, expected)


def test_train_is_pure_traced_once_and_reproducible():
    cfg = TrainConfig(**{**BANDIT, "total_steps": 1500}, sparse=SparsityConfig(method="tar", sparsity=0.8))
    trainer = make_train(cfg)
    train = jax.jit(jax.vmap(trainer.train))
    keys = jnp.stack([jax.random.key(0), jax.random.key(1)])
    state_a, metrics_a = train(keys)
    state_b, metrics_b = train(keys)
    assert trainer.traces["chunk"] == 1
    chex.assert_trees_all_equal(_leaves((state_a.agent, metrics_a)), _leaves((state_b.agent, metrics_b)))
    assert metrics_a["eval_return"].shape == (2, cfg.num_chunks)


def test_snip_global_tar_masks_from_a_replay_batch():
    # SNIP needs the warm-up data; global + TAR needs concrete masks, so this runs eagerly.
    sparse = SparsityConfig(method="tar", sparsity=0.8, score="snip", distribution="global")
    trainer = make_train(TrainConfig(**BANDIT, sparse=sparse))
    state = jax.jit(trainer.warmup)(jax.jit(trainer.init)(jax.random.key(0)))
    assert int(state.buffer.size) == 500
    actor, critic = trainer.make_masks(state, "tar")
    for init in (actor, critic):
        n = sum(m.size for m in jax.tree.leaves(init.masks))
        assert sj.density_summary(init.masks)["total"]["active"] == sj.target_active(n, 0.8)
        assert sj.density_summary(init.base_masks)["total"]["active"] == sj.revival_budget(n, 0.8)[0]
    # Different batches of experience give different SNIP masks.
    other = trainer.make_masks(state.replace(key=jax.random.key(9)), "static")[1].masks
    assert any(bool((a != b).any()) for a, b in zip(jax.tree.leaves(other), jax.tree.leaves(critic.base_masks)))


def test_synflow_base_score_in_the_trainer():
    sparse = SparsityConfig(method="tar", sparsity=0.8, score="synflow", distribution="uniform", synflow_iterations=5)
    trainer = make_train(TrainConfig(**BANDIT, sparse=sparse))
    state = jax.jit(trainer.warmup)(jax.jit(trainer.init)(jax.random.key(0)))
    for init in jax.jit(lambda s: trainer.make_masks(s, "tar"))(state):  # data-free, so jittable
        n = sum(m.size for m in jax.tree.leaves(init.masks))
        assert sum(int(m.sum()) for m in jax.tree.leaves(init.masks)) == sj.target_active(n, 0.8)
    with pytest.raises(ValueError, match="synflow_iterations=0 is not allowed; allowed: an integer >= 1"):
        SparsityConfig(score="synflow", synflow_iterations=0)


def test_the_mask_only_chunk_is_one_program_whatever_the_masks_are_made_of():
    """Sparsity, base score, distribution and rho change only the masks, and SAC's and TD3's traced
    hyperparameters are inputs: the chunk lowers to the same program; another constant changes it."""
    from agents.execution.runner import _chunk_jit, chunk_args

    def program(method, algo="sac", train=None, **sparse):
        config = TrainConfig(**{**BANDIT, **(train or {})}, algo=algo, sparse=SparsityConfig(method=method, **sparse))
        trainer = make_train(config)
        return _chunk_jit(trainer, None).lower(*chunk_args(trainer, 2)).as_text()

    base = program("static", sparsity=0.8)
    for method, sparse in (("tar", dict(sparsity=0.9, score="snip")), ("uniform_revival", dict(sparsity=0.95,
                           distribution="uniform", rho=0.2)), ("dense", {})):  # fmt: skip
        assert program(method, **sparse) == base, (method, sparse)
    rates = dict(actor_lr=1e-5, critic_lr=1e-2, gamma=0.9, tau=0.5)
    temperature = SACConfig(alpha_lr=1e-2, init_alpha=0.3, target_entropy_scale=0.5)
    assert program("static", train={**rates, "sac": temperature}, sparsity=0.8) == base
    assert program("static", train={"dormant_tau": 0.05}, sparsity=0.8) != base  # a constant of the program
    noise = TD3Config(target_noise=0.3, noise_clip=0.25, expl_noise=0.4)
    assert program("static", "td3", train={**rates, "td3": noise}) == program("static", "td3")
    redo = lambda tau: {"redo": RedoConfig(every=4, tau=tau)}
    assert program("static", train=redo(0.5), sparsity=0.8) == program("static", train=redo(0.1), sparsity=0.8)


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_traced_settings_give_each_run_the_bits_of_the_constants(algo):
    """SAC's temperature settings, TD3's noise and ReDo's threshold, given per run (``hyper``), give the
    same state and metrics, bit for bit, as a program with them as constants: masking (SAC's initial
    temperature) and a chunk of training with ReDo steps in it."""
    redo = dict(redo=RedoConfig(every=8, tau=0.1))
    base = TrainConfig(**{**BANDIT, **SMALLER}, algo=algo, **redo)
    own = dict(
        sac=SACConfig(alpha_lr=1e-2, init_alpha=0.3, target_entropy_scale=0.5),
        td3=TD3Config(target_noise=0.3, noise_clip=0.25, expl_noise=0.4),
    )[algo]
    other = dataclasses.replace(base, redo=RedoConfig(every=8, tau=0.7), **{algo: own})
    hyper = hyper_values(other)
    shared, alone = make_train(base), make_train(other)
    state = jax.jit(shared.warmup)(jax.jit(shared.init)(jax.random.key(0)))
    masks = jax.jit(lambda s: shared.make_masks(s, "static"))(state)
    traced = jax.jit(shared.apply_masks)(state, *masks, hyper)
    constant = jax.jit(alone.apply_masks)(state, *masks)
    chex.assert_trees_all_equal(traced, constant)
    if algo == "sac":
        assert float(traced.agent.log_alpha) == np.float32(np.log(np.float32(0.3)))
    chunk = jax.jit(shared.chunk)
    _, b_metrics = chunk(traced, jnp.int32(0), hyper_values(base))
    traced, t_metrics = chunk(traced, jnp.int32(0), hyper)
    constant, c_metrics = jax.jit(alone.chunk)(constant, jnp.int32(0))
    chex.assert_trees_all_equal((traced, t_metrics), (constant, c_metrics))
    # The values read were the run's: the base's threshold (0.1) recycles fewer units than 0.7 does.
    assert float(b_metrics["critic_recycled"]) < float(t_metrics["critic_recycled"])


def test_redo_recycles_at_its_steps_only_and_keeps_the_masks(sac_group):
    """ReDo at the run's last update with every unit dormant: the output kernels end exactly 0.

    Up to that update the runs are those of ``sac_group`` (ReDo adds a branch, not a change),
    and the masks and the exact sparsity are untouched.
    """
    cfg, plain, plain_masks = sac_group
    redo = dataclasses.replace(cfg, redo=RedoConfig(every=cfg.total_updates, tau=1e9))
    masks = []

    def on_chunk(report):
        masks.append(jax.device_get((report.state.agent.actor_masks, report.state.agent.critic_masks)))

    result = run(redo, seeds=[0, 1], methods=MASK_METHODS, on_chunk=on_chunk)
    for chunk, (a, b) in enumerate(zip(result.history, plain.history, strict=True)):
        assert np.isnan(a["actor_recycled"]).all() == (chunk < cfg.num_chunks - 1)
        if chunk < cfg.num_chunks - 1:
            for k in b.keys() - {"wall_s", "steps_per_s"}:  # all but the host's timings
                np.testing.assert_array_equal(a[k], b[k], err_msg=f"chunk {chunk} {k}")
    assert result.history[-1]["actor_recycled"].tolist() == [1.0] * 8
    assert result.history[-1]["critic_recycled"].tolist() == [1.0] * 8
    chex.assert_trees_all_equal(masks, plain_masks)
    assert result.history[-1]["outside_mask"].tolist() == [0] * 8
    agent = result.state.agent
    for kernel in (agent.actor["MLP_0"]["Dense_2"]["kernel"], agent.critic["q1"]["Dense_2"]["kernel"],
                   agent.critic["q2"]["Dense_2"]["kernel"]):  # fmt: skip
        assert not np.asarray(kernel).any()
    adam = agent.critic_opt.inner_state[0]
    # Every active weight was recycled (every unit is dormant): all kernel moments are 0; the output
    # bias belongs to no hidden unit and keeps its moments.
    assert not any(np.asarray(adam.mu["q1"][layer]["kernel"]).any() for layer in ("Dense_0", "Dense_1", "Dense_2"))
    assert np.asarray(adam.mu["q1"]["Dense_2"]["bias"]).all()


def test_redo_needs_an_algorithm_that_gives_unit_scores():
    from agents.execution.train import _recycle_fn

    algo = make_algorithm(TrainConfig(**BANDIT), obs_size=1, action_size=1)._replace(unit_scores=None)
    with pytest.raises(ValueError, match=r"redo.every=10 needs per-unit scores.*'sac'.*set redo.every=0"):
        _recycle_fn(TrainConfig(**BANDIT, redo=RedoConfig(every=10)), algo)


def test_weight_decay_makes_the_inner_optimizer_adamw_and_decays_active_weights_only():
    """Off by default (plain Adam, as before); with weight_decay 0.1 and lr 1e-3, a zero gradient moves an active
    weight w to w * (1 - 1e-4) (Adam's part is 0/(0 + eps) = 0), and a pruned weight stays exactly 0."""
    cfg = TrainConfig(**BANDIT)
    params = {"w": jnp.eye(2) * 3.0, "b": jnp.ones(2)}
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    plain, adam = inner_optimizer(cfg, "actor"), optax.adam(cfg.actor_lr)
    chex.assert_trees_all_equal(plain.update(grads, plain.init(params))[0], adam.update(grads, adam.init(params))[0])
    decayed = dataclasses.replace(cfg, weight_decay=0.1)
    tx = sj.static_sparse(inner_optimizer(decayed, "critic"))
    state = sj.with_masks(tx.init(params), {"w": jnp.eye(2, dtype=bool), "b": None})
    zeros = jax.tree.map(jnp.zeros_like, params)
    new = optax.apply_updates(params, tx.update(zeros, state, params)[0])
    np.testing.assert_allclose(new["w"], jnp.eye(2) * 3.0 * (1 - 1e-4), rtol=1e-6)
    assert new["w"][0, 1] == 0 and new["w"][1, 0] == 0
    np.testing.assert_allclose(new["b"], 1 - 1e-4, rtol=1e-6)  # dense leaves decay too
    with pytest.raises(ValueError, match="weight_decay=-0.1 is not allowed"):
        dataclasses.replace(cfg, weight_decay=-0.1)


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_simba_networks_train_with_exact_counts_and_pruned_weights_at_zero(algo):
    """SAC and TD3 with SimBa networks (embedding, residual blocks, LayerNorms) under ERK: every kernel is masked,
    LayerNorm scales and offsets and the biases stay dense, static and revival end with the exact total,
    and a pruned weight is exactly 0 in the online and target networks (SET, RigL and GMP rewiring
    inside SimBa's blocks: ``tests/test_transforms.py``)."""
    sparse = SparsityConfig(sparsity=0.8, score="magnitude", distribution="erk", delta_t=50)
    cfg = TrainConfig(**{**BANDIT, **SMALLER}, algo=algo, network="simba", sparse=sparse)
    methods = ("dense", "static", "uniform_revival", "tar")
    result = run(cfg, seeds=[0], methods=methods)
    agent = result.state.agent
    nets = [("actor", agent.actor, agent.actor_masks), ("critic", agent.critic, agent.critic_masks),
            ("critic", agent.target_critic, agent.critic_masks)]  # fmt: skip
    if algo == "td3":  # TD3 keeps a target actor, as sparse as its actor
        nets.append(("actor", agent.target_actor, agent.actor_masks))
    for r, method in enumerate(methods):
        take = lambda tree, r=r: jax.tree.map(lambda x: x[r], tree)
        for net, params, masks in nets:
            params, masks = take(params), take(masks)
            names = [sj.path_name(p) for p, _ in jax.tree.leaves_with_path(masks)]
            assert all(n.endswith("/kernel") for n in names), names  # LayerNorm and biases stay dense
            assert sum("ResidualBlock_" in n for n in names) == 2 * 2 * (1 if net == "actor" else 2)
            chex.assert_trees_all_equal(sj.apply_mask(params, masks), params)  # pruned weights are 0
            counts = [int(np.asarray(m).sum()) for m in jax.tree.leaves(masks)]
            n = sum(np.asarray(m).size for m in jax.tree.leaves(masks))
            assert sum(counts) == (n if method == "dense" else sj.target_active(n, 0.8)), (method, net)
    for h in result.history:
        assert h["outside_mask"].tolist() == [0] * len(methods)


@pytest.mark.parametrize("network", ["mlp", "simba"])
def test_small_dense_trains_the_width_whose_dense_count_is_nearest_the_sparse_active_count(network):
    config = TrainConfig(**{**BANDIT, "hidden": (24, 24)}, network=network,
                         sparse=SparsityConfig(method="small_dense", sparsity=0.9))  # fmt: skip
    trainer = make_train(config)
    obs, act = 1, 1  # the bandit's sizes
    sizes = network_sizes(config, obs, act)
    if network == "mlp":  # SAC's actor by hand: kernels 1x24, 24x24, 24x(2 x 1); biases 24, 24, 2
        assert sizes["actor"] == (24 + 24 * 24 + 24 * 2 + 50, 24 + 24 * 24 + 24 * 2)
    # The sparse networks' parameters: everything not masked, plus the active kernels at 0.9.
    target = sum(total - prunable + sj.target_active(prunable, 0.9) for total, prunable in sizes.values())
    totals = {
        w: sum(t for t, _ in network_sizes(dataclasses.replace(config, hidden=(w, w)), obs, act).values())
        for w in range(1, 25)
    }
    nearest = min(totals, key=lambda w: (abs(totals[w] - target), w))  # by exhaustive search
    assert trained_hidden(config, obs, act) == trainer.hidden == (nearest, nearest) and 1 < nearest < 24
    assert trainer.reference_sizes == {net: total for net, (total, _) in sizes.items()}
    # Its networks are built at that width, dense: the state's params hold exactly totals[nearest] numbers.
    state = jax.eval_shape(trainer.init, jax.random.key(0))
    counts = [sum(x.size for x in jax.tree.leaves(p)) for p in (state.agent.actor, state.agent.critic)]
    assert sum(counts) == totals[nearest]
    # Every other method keeps the config's widths, and reports against no other network.
    static = make_train(dataclasses.replace(config, sparse=dataclasses.replace(config.sparse, method="static")))
    assert static.hidden == (24, 24) and static.reference_sizes is None
