"""agents.experiments.policy: trained policies from a sweep or a state in memory, ``eval`` and ``render``."""

import dataclasses
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

import sparse_jax as sj
from agents import results
from agents.algorithms.config import TrainConfig
from agents.algorithms.networks import DeterministicActor, GaussianActor
from agents.cli import main
from agents.execution import checkpoint
from agents.execution.train import make_algorithm
from agents.experiments import sweep
from agents.experiments.policy import evaluate_policy, load_policy, make_policy
from tests.helpers import SMALL_BANDIT as TINY

# The sweep of tests/test_sweep.py (its programs come from the compilation cache): static and tar, 2 seeds.
SWEEP = ["sweep", "--preset", "quick", "--envs", "probe_bandit", "--methods", "static", "tar", "--seeds", "2",
         "--total-steps", "4000", "--config.hidden", "16", "16", "--no-progress"]  # fmt: skip
GROUP = "probe_bandit-sac-s0.9-static+tar"


def _kernels(tree):
    return [(sj.path_name(p), x) for p, x in jax.tree.leaves_with_path(tree)]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny sweep (static and tar, 2 seeds, one batch) and its final batched state."""
    out = tmp_path_factory.mktemp("policy") / "sweep"
    final = []
    train_chunks = sweep.train_chunks

    def keep_final(*args, **kwargs):
        state, history = train_chunks(*args, **kwargs)
        final.append(state)
        return state, history

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sweep, "train_chunks", keep_final)
        main([*SWEEP, "--out", str(out)])
    (state,) = final
    return out, state


def test_load_policy_gives_the_trained_actor_of_its_slot(finished):
    out, state = finished
    obs = jax.random.uniform(jax.random.key(5), (7, 1), minval=-1.0, maxval=1.0)
    # The runs axis is method-major, then seeds: static-seed0, static-seed1, tar-seed0, tar-seed1.
    for slot, run in enumerate(f"probe_bandit-sac-s0.9-{m}-seed{s}" for m in ("static", "tar") for s in (0, 1)):
        policy = load_policy(out, run)
        actor = jax.tree.map(lambda x, slot=slot: x[slot], state.agent.actor)
        assert policy.run_id == run and policy.chunk == policy.config.num_chunks - 1 == 2
        assert policy.config.sparse.method == run.split("-")[3]
        for (name, p), (_, q) in zip(_kernels(policy.params), _kernels(actor), strict=True):
            np.testing.assert_array_equal(p, q, err_msg=name)
        mean, _ = GaussianActor((16, 16), 1).apply({"params": actor}, obs)
        np.testing.assert_allclose(policy(obs), jnp.tanh(mean), rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(policy(obs), make_policy(policy.config, state, run=slot)(obs))
        np.testing.assert_array_equal(policy(obs[0]), policy(obs)[0])  # one observation works too

        info = results.read_json(out / "runs" / run / "run.json")
        masks = jax.tree.leaves(policy.masks)
        assert sum(int(m.sum()) for m in masks) == info["params"]["actor"]["active"]
        assert sum(m.size for m in masks) == info["params"]["actor"]["prunable"]
        pairs = zip(jax.tree.leaves(policy.params), jax.tree.leaves(policy.masks, is_leaf=sj.is_none), strict=True)
        for p, m in pairs:
            if m is not None:
                assert not np.any(np.asarray(p)[~np.asarray(m)]), "a pruned weight is not exactly 0"


def test_load_policy_names_an_unknown_run_and_a_run_without_checkpoint(finished, tmp_path):
    out, _ = finished
    with pytest.raises(ValueError) as e:
        load_policy(out, "probe_bandit-sac-s0.9-rigl-seed0")
    message = str(e.value)
    assert message.startswith("run='probe_bandit-sac-s0.9-rigl-seed0' is not allowed; allowed: a run id of ")
    assert "probe_bandit-sac-s0.9-static-seed0" in message and "\n" not in message
    with pytest.raises(ValueError, match="holds no runs"):
        load_policy(tmp_path / "nothing", "x")
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns(".sweep.*"))
    shutil.rmtree(copy / "checkpoints" / GROUP)
    with pytest.raises(ValueError, match="run 'probe_bandit-sac-s0.9-tar-seed0' has no checkpoint"):
        load_policy(copy, "probe_bandit-sac-s0.9-tar-seed0")


def test_make_policy_from_a_state_in_memory_one_run_or_a_batch():
    config = dataclasses.replace(TINY, algo="td3")
    algo = make_algorithm(config, 1, 1)

    def agent(seed):
        actor, critic = algo.init_params(jax.random.key(seed))
        actor_init = sj.sparse_init(jax.random.key(seed), actor, 0.5, method="static")
        dense = sj.SparseInit(critic, sj.dense_masks(critic), sj.dense_masks(critic))
        return algo.init_state(actor_init, dense, jax.random.key(seed))

    one, other = agent(0), agent(1)
    obs = jnp.linspace(-1.0, 1.0, 6)[:, None]
    expected = DeterministicActor(config.hidden, 1).apply({"params": other.actor}, obs)
    np.testing.assert_allclose(make_policy(config, other)(obs), expected, rtol=1e-6, atol=1e-7)
    batch = jax.tree.map(lambda *xs: jnp.stack(xs), one, other)
    np.testing.assert_allclose(make_policy(config, batch, run=1)(obs), expected, rtol=1e-6, atol=1e-7)
    for state, run, message in (
        (batch, None, "run=None is not allowed; allowed: a run index in 0 .. 1: the state is a batch of 2 runs."),
        (batch, 2, "run=2 is not allowed; allowed: a run index in 0 .. 1"),
        (one, 0, "run=0 is not allowed; allowed: None: the state holds one run"),
    ):
        with pytest.raises(ValueError) as e:
            make_policy(config, state, run=run)
        assert message in str(e.value)
    with pytest.raises(ValueError, match="pass the config the state was trained with"):
        make_policy(dataclasses.replace(config, hidden=(8, 8)), one)
    with pytest.raises(ValueError, match=r"obs shape=\(6, 2\) is not allowed; allowed: \(\.\.\., 1\)"):
        make_policy(config, one)(jnp.ones((6, 2)))


def test_eval_prints_the_deterministic_return(finished, capsys):
    out, _ = finished
    run = "probe_bandit-sac-s0.9-tar-seed1"
    main(["eval", str(out), "--run", run, "--episodes", "5", "--seed", "3"])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    mean, std = evaluate_policy(load_policy(out, run), episodes=5, seed=3)
    assert line.startswith(f"{run}: deterministic return {mean:.3f} +/- {std:.3f} (std) over 5 episodes, seed 3")
    assert "checkpoint after chunk 3 of 3" in line
    assert -4.0 <= mean <= 0.0  # the bandit's reward is -(a - t)^2 with a, t in [-1, 1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["render", "--run", "probe_bandit-sac-s0.9-tar-seed0"], "env='probe_bandit' is not allowed; allowed: a brax"),
        (["eval", "--run", "nope"], "run='nope' is not allowed; allowed: a run id of"),
        (["eval", "--run", "probe_bandit-sac-s0.9-tar-seed0", "--episodes", "0"], "episodes=0 is not allowed"),
    ],
)
def test_eval_and_render_refuse_bad_input_in_one_line(finished, tmp_path, capsys, args, message):
    out, _ = finished
    html = tmp_path / "rollout.html"
    with pytest.raises(SystemExit) as exit_info:
        main([args[0], str(out), *args[1:], *(["--out", str(html)] if args[0] == "render" else [])])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sparse-rl: error: ") and message in err and "\n" not in err
    assert not html.exists()


def _fake_sweep(out, config):
    """A results directory of one untrained, sparse run of ``config``: its config, run.json and an agent checkpoint.

    No env is stepped to make it, so the only compile of the render that reads it is the rollout's.
    """
    cfg = sweep.SweepConfig(
        envs=(config.env,), algos=("sac",), sparsities=(0.8,), methods=("static",), seeds=1, train=config
    )
    (batch,) = cfg.batches()
    run_cfg, run = cfg.run_config(batch.runs[0]), cfg.run_id(batch.runs[0])
    plan = {"caps": [None]}
    results.atomic_write_json(out / "config.json", {"sweep": sweep.config_to_json(cfg), "plan": plan})
    record = results.RunRecord(run, config.env, "sac", 0.8, "static", 0, config=dataclasses.asdict(run_cfg))
    results.write_run(out, record, [])
    algo = make_algorithm(run_cfg, 4, 1)
    actor, critic = algo.init_params(jax.random.key(0))
    actor_init = sj.sparse_init(jax.random.key(1), actor, 0.8, method="static")
    critic_init = sj.SparseInit(critic, sj.dense_masks(critic), sj.dense_masks(critic))
    agent = jax.tree.map(lambda x: x[None], algo.init_state(actor_init, critic_init, jax.random.key(2)))
    with checkpoint.open_manager(out / "checkpoints" / batch.name) as manager:
        saved = ocp.args.StandardSave(checkpoint.saveable({"agent": agent}))
        manager.save(0, args=ocp.args.Composite(state=saved, meta=ocp.args.JsonSave({"history": []})))
        manager.wait_until_finished()
    return run


@pytest.mark.slow
def test_render_writes_an_inverted_pendulum_rollout_as_html(tmp_path, capsys):
    """One brax compile: the rollout's scan (sizes, the network and the checkpoint template come from shapes)."""
    config = dataclasses.replace(TINY, env="inverted_pendulum", episode_length=1000)
    run = _fake_sweep(tmp_path / "sweep", config)
    html = tmp_path / "page" / "rollout.html"
    main(["render", str(tmp_path / "sweep"), "--run", run, "--out", str(html), "--steps", "30"])
    assert f"written to {html}" in capsys.readouterr().out
    page = html.read_text()
    assert "<html" in page.lower() and len(page) > 1000


def test_render_refuses_a_playground_task_by_name():
    """brax's viewer draws brax systems; a DMC task is refused in one line before anything runs."""
    from agents.experiments.policy import check_renderable

    check_renderable(TrainConfig(env="hopper"))
    with pytest.raises(ValueError, match=r"env='CartpoleSwingup' is not allowed.*cannot draw a Playground task"):
        check_renderable(TrainConfig(env="CartpoleSwingup"))
    with pytest.raises(ValueError, match=r"env='probe_bandit' is not allowed.*probe envs have none"):
        check_renderable(TrainConfig(env="probe_bandit"))
