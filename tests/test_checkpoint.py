"""agents.execution.checkpoint: named parts round-trip, earlier versions' layouts restore, failed saves stay quiet."""

import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from agents.algorithms.config import SparsityConfig
from agents.execution import checkpoint
from agents.execution.runner import state_template
from agents.execution.train import make_train
from tests.helpers import SMALL_BANDIT as TINY


@pytest.fixture(scope="module")
def bandit_state():
    """A batched (2 runs) TrainState of the bandit after init, and its trainer."""
    trainer = make_train(TINY)
    keys = jnp.stack([jax.random.key(0), jax.random.key(1)])
    return trainer, jax.jit(jax.vmap(trainer.init))(keys)


def _assert_states_equal(a, b):
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(leaves_a, leaves_b, strict=True):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(x, y)


def test_checkpoint_keys_name_the_parts_and_round_trip(bandit_state, tmp_path):
    trainer, state = bandit_state
    saved = checkpoint.saveable(state)
    assert set(saved) == {"agent", "buffer", "env_state", "key", "env_steps"}
    assert saved["agent"]["actor"]["MLP_0"]["Dense_0"]["kernel"].shape == (2, 1, 16)
    assert set(saved["buffer"]["data"]) == {"obs", "action", "reward", "discount", "mask", "next_obs"}
    assert saved["key"].dtype == jnp.uint32  # PRNG keys as their raw data
    history = [{"eval_return": np.array([1.0, 2.0])}]
    template = state_template(trainer, 2)
    with checkpoint.open_manager(tmp_path / "g") as manager:
        checkpoint.save(manager, 0, state, history)
    with checkpoint.open_manager(tmp_path / "g", read_only=True) as manager:
        step, back, back_history = checkpoint.restore(manager, state, template, None, "g", print)
        assert checkpoint.stored_runs(manager) == 2
        # Only the agent's part: the rest comes back as in the state passed in (here the shapes of the template).
        _, agent_only, _ = checkpoint.restore(manager, template, template, None, "g", print, parts=("agent",))
    assert step == 0 and back_history[0]["eval_return"].tolist() == [1.0, 2.0]
    _assert_states_equal(back, state)
    _assert_states_equal(agent_only.agent, state.agent)
    assert isinstance(agent_only.buffer.data.obs, jax.ShapeDtypeStruct)


def test_checkpoint_in_the_numbered_layout_of_earlier_versions_restores(bandit_state, tmp_path):
    trainer, state = bandit_state
    old = {}
    for i, x in enumerate(jax.tree.leaves(state)):  # what earlier versions wrote
        old[f"{i:05d}"] = jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x
    with ocp.CheckpointManager(tmp_path / "old") as manager:
        meta = ocp.args.JsonSave({"history": []})
        manager.save(3, args=ocp.args.Composite(state=ocp.args.StandardSave(old), meta=meta))
        manager.wait_until_finished()
    template = state_template(trainer, 2)
    with checkpoint.open_manager(tmp_path / "old") as manager:
        step, back, _ = checkpoint.restore(manager, state, template, None, "old", print)
        assert checkpoint.stored_runs(manager) == 2
        _, agent_only, _ = checkpoint.restore(manager, template, template, None, "old", print, parts=("agent",))
    assert step == 3
    _assert_states_equal(back, state)
    _assert_states_equal(agent_only.agent, state.agent)


def test_gmp_checkpoint_from_before_the_count_table_was_state_restores(tmp_path):
    """Earlier versions kept GMP's count table in the transform, so their checkpoints lack ``.../targets``."""
    config = dataclasses.replace(TINY, sparse=SparsityConfig(method="gmp", sparsity=0.8))
    trainer = make_train(config)
    state = jax.jit(jax.vmap(trainer.init))(jnp.stack([jax.random.key(0), jax.random.key(1)]))
    saved = checkpoint.saveable(state)
    assert set(saved["agent"]["actor_opt"]) >= {"targets"}
    for opt in ("actor_opt", "critic_opt"):
        del saved["agent"][opt]["targets"]  # what earlier versions wrote
    meta = ocp.args.JsonSave({"history": []})
    with ocp.CheckpointManager(tmp_path / "old") as manager:
        manager.save(1, args=ocp.args.Composite(state=ocp.args.StandardSave(saved), meta=meta))
        manager.wait_until_finished()
    template = state_template(trainer, 2)
    with checkpoint.open_manager(tmp_path / "old") as manager:
        step, back, _ = checkpoint.restore(manager, state, template, None, "old", print)
    assert step == 1
    _assert_states_equal(back, state)  # the table comes from the state passed in, built from the config
    # Only the table may be missing: a checkpoint lacking another leaf still does not restore.
    del saved["env_steps"]
    with ocp.CheckpointManager(tmp_path / "short") as manager:
        manager.save(1, args=ocp.args.Composite(state=ocp.args.StandardSave(saved), meta=meta))
        manager.wait_until_finished()
    with checkpoint.open_manager(tmp_path / "short") as manager, pytest.raises(ValueError, match="no checkpoint of"):
        checkpoint.restore(manager, state, template, None, "short", print, delete_damaged=False)


def test_checkpoint_leaves_round_trip_with_zero_size_leaves(tmp_path):
    """Brax pipeline states can hold zero-size arrays (halfcheetah does), which orbax refuses to save."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import orbax.checkpoint as ocp

    from agents.execution.checkpoint import restore_leaves as _restore_leaves
    from agents.execution.checkpoint import saveable as _saveable

    tree = {"w": jnp.arange(6.0).reshape(2, 3), "contacts": jnp.zeros((2, 0, 3)), "key": jax.random.key(7)}
    saved = _saveable(tree)
    assert all(x.size > 0 for x in saved.values())
    with ocp.CheckpointManager(tmp_path) as manager:
        manager.save(0, args=ocp.args.Composite(state=ocp.args.StandardSave(saved)))
        manager.wait_until_finished()
        restored = manager.restore(0, args=ocp.args.Composite(state=ocp.args.StandardRestore(saved)))["state"]
    back = _restore_leaves(restored, tree)
    np.testing.assert_array_equal(back["w"], tree["w"])
    assert back["contacts"].shape == (2, 0, 3)
    np.testing.assert_array_equal(jax.random.key_data(back["key"]), jax.random.key_data(tree["key"]))


def test_late_write_callbacks_of_a_failed_save_are_dropped_and_nothing_else(monkeypatch):
    import types

    from agents.execution.checkpoint import _late_callbacks_quiet

    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    unraisable = lambda e: types.SimpleNamespace(exc_type=type(e), exc_value=e, exc_traceback=None, object=None)
    with _late_callbacks_quiet():
        sys.unraisablehook(unraisable(RuntimeError("Event loop is closed")))
        sys.unraisablehook(unraisable(RuntimeError("something else")))
    assert [str(u.exc_value) for u in seen] == ["something else"]
    assert sys.unraisablehook == seen.append  # a save that succeeded leaves the hook as it was
    with pytest.raises(OSError), _late_callbacks_quiet():
        raise OSError(28, "No space left on device")
    sys.unraisablehook(unraisable(RuntimeError("Event loop is closed")))  # after the failure: still dropped
    assert len(seen) == 1
