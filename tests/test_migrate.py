"""Files of earlier versions brought up to date (the results directory fixture is in test_sweep.py)."""

import numpy as np
import pytest

from agents.results import migrate


def test_run_json_takes_its_run_id_from_the_folder_only_when_it_lacks_one():
    assert migrate.run_json({"env": "hopper"}, "folder", "where") == {"run_id": "folder", "env": "hopper"}
    assert migrate.run_json({"run_id": "mine"}, "folder", "where") == {"run_id": "mine"}
    with pytest.raises(ValueError, match="where must hold a JSON object, got str"):
        migrate.run_json("text", "folder", "where")


def test_config_json_without_a_plan_reads_as_one_batch_per_cell():
    assert migrate.config_json({"sweep": {}}) == {"sweep": {}, "plan": None}
    assert migrate.config_json({"sweep": {}, "plan": {"caps": []}}) == {"sweep": {}, "plan": {"caps": []}}
    assert migrate.config_json({"model": 1}) == {"model": 1}  # not a sweep's: left to the caller to refuse


def test_history_metric_per_run_or_one_number_for_the_batch():
    assert migrate.history_metric(np.array([1.0, 2.0, 3.0]), 1) == 2.0
    assert migrate.history_metric(np.float32(7.0), 2) == 7.0  # earlier checkpoints: wall_s for the whole batch


def test_numbered_layout_is_five_digit_keys_of_arrays():
    assert migrate.is_numbered_layout({"00000": np.zeros(2), "00001": np.zeros(3)})
    assert not migrate.is_numbered_layout({"agent": {"actor": np.zeros(2)}})
    assert not migrate.is_numbered_layout({"00000": {"nested": np.zeros(2)}})
    assert not migrate.is_numbered_layout({})


def test_older_checkpoint_layouts_numbered_first_then_without_gmp_tables():
    strip = lambda t: {k: v for k, v in t.items() if k != "targets"} if "targets" in t else None
    template = {"params": 1, "targets": 2}
    assert list(migrate.older_checkpoint_layouts(template, False, {"00000": 1}, strip)) == [
        ({"00000": 1}, False),
        ({"params": 1}, True),  # the table comes from the live state: a partial read
    ]
    assert list(migrate.older_checkpoint_layouts({"params": 1}, True, None, strip)) == []


def test_a_flat_training_config_of_earlier_versions_reads_into_the_algorithm_sections():
    from agents.algorithms.config import SACConfig, TD3Config, train_config_from_json

    old = {"env": "probe_bandit", "algo": "td3", "alpha_lr": 1e-3, "init_alpha": 0.5, "policy_delay": 3,
           "target_noise": 0.1, "noise_clip": 0.4, "expl_noise": 0.2, "sparse": {"method": "tar"}}  # fmt: skip
    cfg = train_config_from_json(migrate.train_config_json(old))
    assert cfg.sac == SACConfig(alpha_lr=1e-3, init_alpha=0.5)
    assert cfg.td3 == TD3Config(policy_delay=3, target_noise=0.1, noise_clip=0.4, expl_noise=0.2)
    assert cfg.sparse.method == "tar" and cfg.algo == "td3"
    # Where the files hold a training config: run.json's config and config.json's sweep.train.
    assert migrate.run_json({"config": old}, "f", "w")["config"] == migrate.train_config_json(old)
    assert migrate.config_json({"sweep": {"train": old}})["sweep"]["train"] == migrate.train_config_json(old)
    assert migrate.train_config_json({"env": "hopper"}) == {"env": "hopper"}  # today's: unchanged


def test_earlier_flags_of_the_algorithm_fields_are_renamed():
    assert migrate.renamed_flag("--config.policy-delay") == "--config.td3.policy-delay"
    assert migrate.renamed_flag("--config.alpha-lr=0.1") == "--config.sac.alpha-lr=0.1"
    assert migrate.renamed_flag("--config.sac.alpha-lr") is None and migrate.renamed_flag("0.1") is None
