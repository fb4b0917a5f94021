import pytest

from agents.algorithms.config import RedoConfig, SACConfig, SparsityConfig, TD3Config, TrainConfig


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(algo="ppo"), r"algo='ppo' is not allowed; allowed: sac, td3"),
        (dict(num_envs=0), r"num_envs=0 is not allowed; allowed: an integer >= 1"),
        (dict(total_steps=-5), r"total_steps=-5 is not allowed; allowed: an integer >= 1"),
        (dict(warmup_steps=-1), r"warmup_steps=-1"),
        (
            dict(total_steps=5000, warmup_steps=1000, chunk_steps=8000),
            r"chunk_steps=8000 is not allowed; allowed: at most",
        ),
        (dict(hidden=()), r"hidden=\(\)"),
        (dict(gamma=1.0), r"gamma=1.0"),
        # A bool is not a count (SweepConfig and the envs refused it already).
        (dict(num_envs=True), r"num_envs=True is not allowed; allowed: an integer >= 1"),
        (dict(batch_size=2.0), r"batch_size=2.0 is not allowed"),
        (dict(hidden=(64, True)), r"hidden=\(64, True\) is not allowed"),
        (dict(network="resnet"), r"network='resnet' is not allowed; allowed: mlp, mlp_ln_critic, mlp_ln, simba"),
        (dict(network="simba", hidden=(64, 32)), r"hidden=\(64, 32\) is not allowed; allowed: equal widths with"),
    ],
)
def test_train_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            dict(method="lottery"),
            r"method='lottery' is not allowed; allowed: dense, static, uniform_revival, tar, set, rigl",
        ),
        (dict(sparsity=1.2), r"sparsity=1.2 is not allowed; allowed: \[0, 1\)"),
        (dict(critic_sparsity=-0.1), r"critic_sparsity=-0.1"),
        (dict(score="taylor"), r"score='taylor' is not allowed"),
        (dict(distribution="erdos"), r"distribution='erdos' is not allowed"),
        (dict(rho=2.0), r"rho=2.0"),
        (dict(delta_t=0), r"delta_t=0"),
    ],
)
def test_sparsity_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SparsityConfig(**kwargs)


def test_derived_quantities():
    cfg = TrainConfig(total_steps=10_000, warmup_steps=1_000, chunk_steps=2_000, num_envs=4, updates_per_step=2)
    assert (cfg.chunk_iters, cfg.num_chunks, cfg.warmup_iters) == (500, 4, 250)
    assert cfg.total_updates == 4 * 500 * 2
    assert cfg.capacity == 10_000
    s = SparsityConfig(method="rigl", sparsity=0.9, actor_sparsity=0.8)
    assert s.mask_method == "static"
    assert (s.network_sparsity("actor"), s.network_sparsity("critic")) == (0.8, 0.9)
    assert SparsityConfig(method="tar").mask_method == "tar"


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (SACConfig, dict(alpha_lr=0.0), r"alpha_lr=0.0 is not allowed; allowed: a finite number > 0"),
        (SACConfig, dict(init_alpha=float("inf")), r"init_alpha=inf is not allowed"),
        (TD3Config, dict(policy_delay=0), r"policy_delay=0 is not allowed; allowed: an integer >= 1"),
        (TD3Config, dict(policy_delay=2.0), r"policy_delay=2.0 is not allowed"),
        (TD3Config, dict(noise_clip=-0.1), r"noise_clip=-0.1 is not allowed; allowed: a finite number >= 0"),
        (RedoConfig, dict(every=-1), r"redo.every=-1 is not allowed; allowed: an integer >= 0"),
        (RedoConfig, dict(every=10.0), r"redo.every=10.0 is not allowed"),
        (RedoConfig, dict(tau=-0.5), r"redo.tau=-0.5 is not allowed; allowed: a finite number >= 0"),
    ],
)
def test_algorithm_configs_reject_bad_values(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_each_algorithm_reads_its_own_section_and_the_json_round_trips():
    import dataclasses
    import json

    from agents.algorithms.config import train_config_from_json

    cfg = TrainConfig(algo="td3", sac=SACConfig(init_alpha=0.5), td3=TD3Config(policy_delay=3, expl_noise=0.3))
    data = json.loads(json.dumps(dataclasses.asdict(cfg)))
    assert data["sac"] == {"alpha_lr": 3e-4, "init_alpha": 0.5, "target_entropy_scale": 1.0}
    assert data["td3"]["policy_delay"] == 3
    assert "init_alpha" not in data and "policy_delay" not in data
    assert train_config_from_json(data) == cfg
    # A config of a version before ReDo (no "redo" section) reads with ReDo off.
    del data["redo"]
    assert train_config_from_json(data).redo == RedoConfig() and not RedoConfig().enabled
