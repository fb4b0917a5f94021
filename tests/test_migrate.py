"""Files of earlier versions brought up to date (the results directory fixture is in test_sweep.py)."""

import numpy as np
import pytest

from agents import migrate


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
