"""agents.experiments.grid: the grid's cells, runs and batches, its axes' checks, the presets, config.json's fields."""

import dataclasses
import json
import re

import jax
import numpy as np
import pytest

import sparse_jax as sj
from agents import results
from agents.algorithms.config import RedoConfig, TD3Config, TrainConfig
from agents.algorithms.networks import GaussianActor, TwinCritic, init_actor_critic
from agents.cli import main
from agents.execution import plan as plan_lib
from agents.experiments import sweep
from agents.experiments.sweep import PRESETS
from envs import make_env
from tests.helpers import QUICK_BANDIT_ARGS as TINY
from tests.helpers import file_tree as _tree
from tests.helpers import refused as _refused
from tests.helpers import sweep_dir as _sweep_dir


def test_hyperparameter_axes_name_their_runs_and_share_the_programs_of_algorithms_that_trace_them():
    cfg = sweep.SweepConfig(envs=("probe_bandit",), algos=("sac", "td3"), methods=("static", "rigl"), seeds=1,
                            actor_lrs=(1e-4, 1e-3), taus=(0.005, 0.05))  # fmt: skip
    cells = cfg.cells()
    assert len(cells) == 2 * 2 * 2
    assert {(cfg.cell_config(c).actor_lr, cfg.cell_config(c).tau) for c in cells} == {
        (lr, tau) for lr in (1e-4, 1e-3) for tau in (0.005, 0.05)
    }
    # Both algorithms trace them: one mask-only and one RigL program each, 4 variants apiece.
    assert [(p[0][0].algo, p[0][1], len(p)) for p in cfg.programs()] == [
        ("sac", "static", 4), ("sac", "rigl", 4), ("td3", "static", 4), ("td3", "rigl", 4)
    ]  # fmt: skip
    run = cfg.batches()[0].runs[-1]
    assert cfg.run_id(run) == "probe_bandit-sac-s0.9-alr0.001-tau0.05-static-seed0"
    assert cfg.hyper_label(run.cell) == "actor_lr=0.001,tau=0.05"
    assert sweep.SweepConfig(envs=("probe_bandit",), methods=("tar",), seeds=1).hyper_label(cells[0]) is None
    # A value the train config refuses is refused by the grid, naming it.
    with pytest.raises(ValueError, match=r"tau=2.0 is not allowed"):
        sweep.SweepConfig(envs=("probe_bandit",), methods=("tar",), seeds=1, taus=(0.005, 2.0))
    with pytest.raises(ValueError, match=r"actor_lr=0.001 is not allowed; allowed: each actor_lr once"):
        sweep.SweepConfig(envs=("probe_bandit",), methods=("tar",), seeds=1, actor_lrs=(1e-3, 1e-3))


def test_axes_of_an_algorithms_own_settings_share_its_program_and_refuse_runs_that_would_be_copies():
    cfg = sweep.SweepConfig(envs=("probe_bandit",), methods=("static", "tar"), seeds=1, init_alphas=(0.1, 1.0),
                            target_entropy_scales=(0.5, 1.0), alpha_lrs=(1e-4, 1e-3))  # fmt: skip
    assert [len(p) for p in cfg.programs()] == [16]  # 8 cells x 2 methods, one SAC program
    run = cfg.batches()[0].runs[-1]
    assert cfg.run_id(run) == "probe_bandit-sac-s0.9-tlr0.001-ia1-tes1-tar-seed0"
    assert cfg.hyper_label(run.cell) == "alpha_lr=0.001,init_alpha=1,target_entropy_scale=1"
    train = cfg.cell_config(run.cell)
    assert (train.sac.alpha_lr, train.sac.init_alpha, train.sac.target_entropy_scale) == (1e-3, 1.0, 1.0)
    td3 = sweep.SweepConfig(envs=("probe_bandit",), algos=("td3",), methods=("static",), seeds=1,
                            target_noises=(0.1, 0.2), noise_clips=(0.3, 0.5), expl_noises=(0.05, 0.1))  # fmt: skip
    assert [len(p) for p in td3.programs()] == [8]
    assert td3.cell_config(td3.cells()[-1]).td3 == TD3Config(target_noise=0.2, noise_clip=0.5, expl_noise=0.1)
    # TD3 does not read SAC's temperature: its runs would be copies under each value.
    with pytest.raises(ValueError, match=re.escape(
        "init_alphas=(0.1, 1.0) is not allowed; allowed: one value, or only algorithms that take sac.init_alpha "
        "per run (sac): td3 would repeat the same runs")):  # fmt: skip
        sweep.SweepConfig(envs=("probe_bandit",), algos=("sac", "td3"), methods=("static",), init_alphas=(0.1, 1.0))
    # One value sets it for every run; ReDo's threshold needs ReDo on in every cell.
    sweep.SweepConfig(envs=("probe_bandit",), algos=("sac", "td3"), methods=("static",), init_alphas=(0.1,))
    with pytest.raises(ValueError, match=re.escape("redo_taus=(0.1, 0.2) is not allowed; allowed: one value, or "
                                                   "ReDo on in every cell")):  # fmt: skip
        sweep.SweepConfig(envs=("probe_bandit",), methods=("static",), redo_taus=(0.1, 0.2))
    on = sweep.SweepConfig(envs=("probe_bandit",), methods=("static",), seeds=1, redo_taus=(0.1, 0.2),
                           train=TrainConfig(redo=RedoConfig(every=100)))  # fmt: skip
    assert [len(p) for p in on.programs()] == [2]
    with pytest.raises(ValueError, match=r"redo_taus=\(0.1, 0.2\) is not allowed"):
        sweep.SweepConfig(envs=("probe_bandit",), methods=("static",), redo_taus=(0.1, 0.2), redos=(0, 100))


def test_a_network_axis_gives_each_body_its_own_program_and_run_ids():
    cfg = sweep.SweepConfig(envs=("probe_bandit",), methods=("static", "tar"), seeds=1, networks=("mlp", "simba"))
    assert [(p[0][0].network, len(p)) for p in cfg.programs()] == [("mlp", 2), ("simba", 2)]
    run = cfg.batches()[-1].runs[-1]
    assert cfg.run_id(run) == "probe_bandit-sac-s0.9-simba-tar-seed0"
    assert cfg.cell_config(run.cell).network == "simba"
    with pytest.raises(ValueError, match=r"network='resnet' is not allowed; allowed: mlp, mlp_ln_critic"):
        sweep.SweepConfig(envs=("probe_bandit",), methods=("static",), networks=("mlp", "resnet"))


def test_the_small_dense_baseline_trains_once_per_sparsity_in_a_program_of_its_own():
    cfg = sweep.SweepConfig(
        envs=("probe_bandit",), methods=("dense", "static", "small_dense"), sparsities=(0.8, 0.9),
        distributions=("erk", "global"), seeds=2,
    )  # fmt: skip
    assert [[(c.sparsity, c.distribution, m) for c, m in p] for p in cfg.programs()] == [
        [(0.8, "erk", "dense"), (0.8, "erk", "static"), (0.8, "global", "static"), (0.9, "erk", "static"),
         (0.9, "global", "static")],
        [(0.8, "erk", "small_dense")],  # its width follows the sparsity, not the distribution
        [(0.9, "erk", "small_dense")],
    ]  # fmt: skip
    run = sweep.GridRun(cfg.cells()[-1], "small_dense", 1)
    assert cfg.run_id(run) == "probe_bandit-sac-s0.9-global-small_dense-seed1"
    assert cfg.canonical(run.cell, "small_dense").distribution == "erk"
    # Asked for by name, like an ensemble method; the scaling presets ask for it.
    assert "small_dense" not in PRESETS["quick"].methods and "small_dense" in PRESETS["scaling_cpu"].methods


def test_a_phi_axis_ablates_tars_floor_in_one_program_and_leaves_other_methods_once():
    cfg = sweep.SweepConfig(envs=("probe_bandit",), methods=("static", "tar"), seeds=1, phis=(0.0, 1.0))
    assert [[(c.phi, m) for c, m in p] for p in cfg.programs()] == [[(0.0, "static"), (0.0, "tar"), (1.0, "tar")]]
    runs = [r for b in cfg.batches() for r in b.runs]
    assert [cfg.run_id(r) for r in runs] == [
        "probe_bandit-sac-s0.9-phi0-static-seed0", "probe_bandit-sac-s0.9-phi0-tar-seed0",
        "probe_bandit-sac-s0.9-phi1-tar-seed0",
    ]  # fmt: skip
    assert [cfg.run_config(r).sparse.phi for r in runs] == [0.0, 0.0, 1.0]
    assert sweep.axis_methods("phis") == ("tar",)
    with pytest.raises(ValueError, match=r"^phis=\(0.0, 1.0\) is not allowed; allowed: one value, or a method it"):
        sweep.SweepConfig(envs=("probe_bandit",), methods=("static", "rigl"), phis=(0.0, 1.0))


def test_an_algorithm_that_traces_nothing_compiles_one_program_per_value():
    """A registered algorithm's hyperparameters are constants of its program unless it lists them as traced."""
    from agents.algorithms import ALGORITHMS, register_algorithm, unregister_algorithm

    register_algorithm("plain_sac", ALGORITHMS["sac"].factory, "SAC, every field a constant")
    try:
        cfg = sweep.SweepConfig(envs=("probe_bandit",), algos=("plain_sac",), methods=("static",), seeds=1,
                                actor_lrs=(1e-4, 1e-3))  # fmt: skip
        assert [len(p) for p in cfg.programs()] == [1, 1]
    finally:
        unregister_algorithm("plain_sac")


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["--sparsities", "0.9", "0.9"],
            "sparsity='0.9' is not allowed; allowed: each sparsity once (it is given twice)",
        ),
        (["--methods", "tar", "static", "tar"], "method='tar' is not allowed; allowed: each method once"),
        (["--envs", "probe_bandit", "probe_bandit"], "env='probe_bandit' is not allowed; allowed: each env once"),
        (["--algos", "sac", "sac"], "algo='sac' is not allowed; allowed: each algo once"),
    ],
)
def test_duplicated_axis_values_are_refused(tmp_path, capsys, flags, message):
    out = tmp_path / "results"
    assert message in _refused(capsys, ["sweep", *TINY, *flags, "--out", str(out)])
    assert not out.exists()


def test_config_json_with_an_unknown_field_is_refused_naming_it(tmp_path, capsys):
    out = tmp_path / "sweep"
    _sweep_dir(out)
    data = results.read_json(out / "config.json")
    data["sweep"]["train"]["sparse"]["temperature_schedule"] = "cosine"
    data["sweep"]["grid_order"] = "envs-first"
    (out / "config.json").write_text(json.dumps(data))
    before = _tree(out)
    err = _refused(capsys, ["sweep", "--resume", "--out", str(out), "--no-progress"])
    assert "does not know: grid_order" in err and "train.sparse.temperature_schedule" in err
    assert _tree(out) == before


def test_grid_axes_name_runs_injectively_and_set_each_cells_config():
    cfg = sweep.SweepConfig(
        envs=("probe_bandit",), methods=("static", "tar", "rigl"), seeds=1, scores=("snip", "magnitude"),
        distributions=("uniform", "global"), widths=(64, 256), rhos=(0.1, 0.2),
    )  # fmt: skip
    cells = cfg.cells()
    assert len(cells) == 2 * 2 * 2 * 2
    names = {b.name for b in cfg.batches(per_cell=True)}
    assert len(names) == len(cfg.batches(per_cell=True)) == 2 * len(cells)  # mask-only methods together, rigl alone
    # Batched: one mask-only program per width; RigL's per width, apart under global (names keep shared values).
    programs = [b.name for b in cfg.batches()]
    assert programs == [
        "probe_bandit-sac-s0.9-w64-static+tar", "probe_bandit-sac-s0.9-w64-uniform-rigl",
        "probe_bandit-sac-s0.9-w64-global-rigl", "probe_bandit-sac-s0.9-w256-static+tar",
        "probe_bandit-sac-s0.9-w256-uniform-rigl", "probe_bandit-sac-s0.9-w256-global-rigl",
    ]  # fmt: skip
    assert sorted(cfg.run_id(r) for b in cfg.batches() for _, r in b.entries()) == sorted(
        cfg.run_id(r) for b in cfg.batches(per_cell=True) for r in b.runs
    )
    cell = sweep.Cell("probe_bandit", "sac", 64, 0.9, "magnitude", "global", 0.2)
    assert cfg.cell_tags(cell) == ("w64", "magnitude", "global", "r0.2")
    train = cfg.cell_config(cell)
    assert train.hidden == (64,) * len(cfg.train.hidden)
    assert (train.sparse.score, train.sparse.distribution, train.sparse.rho) == ("magnitude", "global", 0.2)
    ids = {results.run_id(c.env, c.algo, c.sparsity, "tar", 0, cfg.cell_tags(c)) for c in cells}
    assert len(ids) == len(cells)
    # Without the axes the names stay as before.
    plain = sweep.SweepConfig(envs=("probe_bandit",), methods=("tar",), seeds=1)
    assert plain.cell_tags(plain.cells()[0]) == ()


def test_a_redo_axis_runs_every_method_with_and_without_recycling_in_programs_of_their_own():
    cfg = sweep.SweepConfig(envs=("probe_bandit",), methods=("dense", "static", "rigl"), seeds=1, redos=(0, 1000))
    cells = cfg.cells()
    assert [c.redo for c in cells] == [0, 1000]
    assert [cfg.cell_config(c).redo.every for c in cells] == [0, 1000]
    assert [cfg.cell_config(c).redo.tau for c in cells] == [cfg.train.redo.tau] * 2
    # ReDo changes every method's runs (dense's too), so nothing is shared, and it changes the program.
    assert [b.name for b in cfg.batches()] == [
        "probe_bandit-sac-s0.9-redo0-dense+static", "probe_bandit-sac-s0.9-redo0-rigl",
        "probe_bandit-sac-s0.9-redo1000-dense+static", "probe_bandit-sac-s0.9-redo1000-rigl",
    ]  # fmt: skip
    assert all(not b.shared for b in cfg.batches())
    assert cfg.run_id(cfg.batches()[2].runs[0]) == "probe_bandit-sac-s0.9-redo1000-dense-seed0"
    # Without the axis, a sweep-wide --config.redo.every is each cell's value and names nothing.
    train = dataclasses.replace(sweep.SweepConfig().train, redo=RedoConfig(every=500))
    plain = sweep.SweepConfig(envs=("probe_bandit",), methods=("tar",), seeds=1, train=train)
    assert plain.cells()[0].redo == 500 and plain.cell_tags(plain.cells()[0]) == ()
    with pytest.raises(ValueError, match=r"redo.every=-5 is not allowed; allowed: an integer >= 0"):
        sweep.SweepConfig(envs=("probe_bandit",), methods=("tar",), seeds=1, redos=(0, -5))
    with pytest.raises(ValueError, match=r"redo=0 is not allowed; allowed: each redo once"):
        sweep.SweepConfig(envs=("probe_bandit",), methods=("tar",), seeds=1, redos=(0, 0))


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--scores", "snip", "snip"], "score='snip' is not allowed; allowed: each score once"),
        (["--scores", "lottery"], "score='lottery' is not allowed; allowed: random, magnitude, snip"),
        (["--distributions", "erk", "cosine"], "cosine"),
        (["--widths", "0"], "width=0 is not allowed; allowed: an integer >= 1"),
        (["--rhos", "1.5"], "rho=1.5 is not allowed; allowed: [0, 1]"),
        (["--config.actor-lr", "-0.001"], "actor_lr=-0.001 is not allowed; allowed: a finite number > 0"),
        (["--config.sac.init-alpha", "nan"], "init_alpha=nan is not allowed; allowed: a finite number > 0"),
        (["--config.td3.target-noise", "-1"], "target_noise=-1.0 is not allowed; allowed: a finite number >= 0"),
    ],
)
def test_bad_axis_or_config_values_are_refused(tmp_path, capsys, flags, message):
    out = tmp_path / "results"
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", *TINY, *flags, "--out", str(out)])
    assert exit_info.value.code == 2
    assert message in " ".join(capsys.readouterr().err.split())
    assert not out.exists()


@pytest.mark.parametrize(
    "flags, axis",
    [
        (["--rhos", "0.1", "0.2", "--methods", "static"], "rhos=(0.1, 0.2) is not allowed"),
        (["--sparsities", "0.8", "0.9", "--methods", "dense"], "sparsities=(0.8, 0.9) is not allowed"),
        (["--scores", "snip", "magnitude", "--methods", "dense", "gmp"], "scores=('snip', 'magnitude')"),
    ],
)
def test_an_axis_that_changes_none_of_the_methods_is_refused(tmp_path, capsys, flags, axis):
    out = tmp_path / "results"
    err = _refused(capsys, ["sweep", *TINY, *flags, "--out", str(out)])
    assert axis in err and "identical copies" in err
    assert not out.exists()
    # With a method the axis changes, the grid runs.
    cfg = sweep.SweepConfig(envs=("probe_bandit",), methods=("static", "tar"), rhos=(0.1, 0.2), seeds=1)
    assert len(cfg.cells()) == 2


def test_a_run_that_an_axis_does_not_change_trains_once_and_serves_every_cell():
    cfg = sweep.SweepConfig(
        envs=("probe_bandit",), methods=("dense", "static", "tar", "gmp"), sparsities=(0.8, 0.9),
        scores=("snip", "magnitude"), rhos=(0.1, 0.2), seeds=2,
    )  # fmt: skip
    batches = cfg.batches()
    trained = [r for b in batches for r in b.runs]
    # dense once; static per sparsity x score; tar in all 8 cells; gmp per sparsity (it prunes by magnitude).
    counts = {m: sum(r.method == m for r in trained) // cfg.seeds for m in cfg.methods}
    assert counts == {"dense": 1, "static": 4, "tar": 8, "gmp": 2}
    entries = [(b, slot, r) for b in batches for slot, r in b.entries()]
    old = {cfg.run_id(r) for b in cfg.batches(shares_runs=False) for r in b.runs}
    assert sorted(cfg.run_id(r) for _, _, r in entries) == sorted(old) and len(old) == 8 * 4 * 2
    for batch, slot, run in entries:
        own = batch.runs[slot]
        assert own.method == run.method and own.seed == run.seed and cfg.canonical(run.cell, run.method) == own.cell
        # The two configs differ only in fields the method ignores.
        a, b = cfg.run_config(own), cfg.run_config(run)
        ignored = {f: getattr(a.sparse, f) for f in ("sparsity", "score", "distribution", "rho")}
        assert dataclasses.replace(b, sparse=dataclasses.replace(b.sparse, **ignored)) == a
        if run.method == "tar":
            assert own == run  # revival uses every axis
    # Earlier versions' plans (no shares_runs) keep training every copy, so their --resume finds its batches.
    assert plan_lib.Plan.from_json({"caps": [None] * len(cfg.programs(shares_runs=False))}).shares_runs is False


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_cell_uses_a_metric_base_score(preset):
    """With a random base, random revival gives a random mask: TAR would equal static in distribution."""
    cfg = PRESETS[preset]
    for cell in cfg.cells():
        assert cfg.cell_config(cell).sparse.score != "random", cell


@pytest.mark.parametrize("preset", ["quick", "evidence", "study"])
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
            GaussianActor(train.hidden, env.action_size, train.network),
            TwinCritic(train.hidden, train.network),
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


def test_eaudesac_shares_one_program_across_sparsities_and_is_asked_for_by_name(tmp_path, capsys):
    """Its ceilings are state: both sparsities train in one program of their own, beside the mask-only one."""
    cfg = sweep.SweepConfig(envs=("probe_bandit",), sparsities=(0.8, 0.9), methods=("static", "eaudesac"), seeds=2)
    assert [[(c.sparsity, m) for c, m in p] for p in cfg.programs()] == [
        [(0.8, "static"), (0.9, "static")],
        [(0.8, "eaudesac"), (0.9, "eaudesac")],
    ]
    assert "eaudesac" not in PRESETS["quick"].methods and "eaudesac" not in PRESETS["paper"].methods
    # TD3 has no ensemble variant: refused before anything is written, naming the algorithm that has one.
    err = _refused(capsys, ["sweep", *TINY, "--algos", "sac", "td3", "--methods", "eaudesac", "--out",
                            str(tmp_path / "td3")])  # fmt: skip
    assert "algo='td3' is not allowed; allowed: an algorithm with an ensemble variant (sac)" in err
    assert not (tmp_path / "td3").exists()
