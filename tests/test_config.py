import pytest

from agents.config import SparsityConfig, TrainConfig


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(algo="ppo"), r"unknown algo 'ppo'.*sac, td3"),
        (dict(num_envs=0), r"num_envs=0 must be a positive int"),
        (dict(total_steps=-5), r"total_steps=-5 must be a positive int"),
        (dict(warmup_steps=-1), r"warmup_steps=-1"),
        (dict(total_steps=5000, warmup_steps=1000, chunk_steps=8000), r"chunk_steps=8000 is larger than"),
        (dict(hidden=()), r"hidden=\(\)"),
        (dict(gamma=1.0), r"gamma=1.0"),
    ],
)
def test_train_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(method="lottery"), r"unknown method 'lottery'.*dense, static, uniform_revival, tar, set, rigl"),
        (dict(sparsity=1.2), r"sparsity=1.2 is outside the allowed range \[0, 1\)"),
        (dict(critic_sparsity=-0.1), r"critic_sparsity=-0.1"),
        (dict(score="taylor"), r"unknown score 'taylor'"),
        (dict(distribution="erdos"), r"unknown distribution 'erdos'"),
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
    assert (s.mask_method, s.dst_method) == ("static", "rigl")
    assert (s.network_sparsity("actor"), s.network_sparsity("critic")) == (0.8, 0.9)
    assert SparsityConfig(method="tar").mask_method == "tar"
