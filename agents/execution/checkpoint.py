"""Checkpoint layout of a group of runs: the batched ``TrainState`` and the metric history so far.

One orbax ``CheckpointManager`` per group directory keeps the last two
checkpoints. Each holds ``state`` and ``meta`` (JSON: the per-chunk metric
history). ``state`` holds the state's leaves as nested dicts keyed by their
pytree path (``agent/actor/MLP_0/Dense_0/kernel``, ``buffer/data/obs``,
``env_state/obs``, ...; see :func:`leaf_keys`), PRNG keys as raw key data,
zero-size leaves left out. Checkpoints of earlier versions (leaves numbered
in pytree order, GMP's states without their count table) restore too
(:mod:`agents.results.migrate` says how).
Restoring needs a template of the same batched state
(:func:`agents.execution.runner.state_template`), sharded like the live one; one part
of the state (e.g. only ``agent``, for a trained policy) can be read alone.

Orbax's compressed chunks carry no checksum: a flipped bit restores without
an error, into a state that trains to inf/nan. So each step directory also
holds :data:`MANIFEST` (``SHA256SUMS``), the SHA-256 of every other file of
the step in ``sha256sum``'s format (``cd <step> && sha256sum -c SHA256SUMS``
checks one by hand), written once orbax has finished the step. A step whose
files do not match it counts as damaged, like one orbax fails to read: it is
reported and the older one tried. A step without a manifest restores
unverified only when no older step of its directory has one (checkpoints of
earlier versions, also those a newer version then continued); after one that
has, it is a save that stopped before writing its manifest, and counts as
damaged too.

A checkpoint that cannot be written (a full disk) ends the sweep with one
``OSError`` naming its folder, not orbax's logged thread tracebacks.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.sharding import NamedSharding, PartitionSpec, SingleDeviceSharding

from agents import results
from agents.execution.train import TrainState
from agents.results import migrate
from sparse_jax.utils import path_name

MAX_TO_KEEP = 2
MANIFEST = "SHA256SUMS"

# Orbax joins nested keys with "." into array names that become file paths: a key part keeps only these.
_UNSAFE = re.compile(r"[^0-9A-Za-z_-]")
# A line of ``sha256sum``'s output: the digest, a space, " " (text mode) or "*" (binary mode), the path.
# How tensorstore's messages end when the OS refused a write: "... [os_error_code='28']".
_OS_ERROR_CODE = re.compile(r"os_error_code='?(\d+)")
_SUM_LINE = re.compile(r"([0-9a-f]{64}) [ *](.+)")


def open_manager(directory: Path, read_only: bool = False) -> ocp.CheckpointManager:
    """The checkpoint manager of one group's directory (keeps the last :data:`MAX_TO_KEEP`).

    ``read_only`` opens it for reading only (nothing is saved or deleted), e.g.
    to load a trained policy from a finished sweep.
    """
    if not read_only:
        return ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(max_to_keep=MAX_TO_KEEP))
    # The options a reader implies, given, so that orbax does not log that it set them; and not its note that
    # the directory is read-only, which is what was asked for.
    options = ocp.CheckpointManagerOptions(read_only=True, save_interval_steps=0, max_to_keep=None, create=False)
    with _absl_quiet(lambda record: not str(record.msg).startswith("Given directory is read only")):
        return ocp.CheckpointManager(directory, options=options)


@contextlib.contextmanager
def _absl_quiet(keep: Callable[[logging.LogRecord], bool]) -> Iterator[None]:
    """Within the block, orbax's log records (the ``absl`` logger) pass only where ``keep`` says so."""
    logger = logging.getLogger("absl")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def _errors_unlogged() -> contextlib.AbstractContextManager:
    """Leave out orbax's error logs (with their tracebacks): the exception that follows them is reported instead."""
    return _absl_quiet(lambda record: record.levelno < logging.ERROR)


def _is_closed_loop_callback(unraisable: Any) -> bool:
    """Whether an unraisable error is a late write callback into the event loop of a save that already failed."""
    error = unraisable.exc_value
    return isinstance(error, RuntimeError) and str(error) == "Event loop is closed"


@contextlib.contextmanager
def _late_callbacks_quiet() -> Iterator[None]:
    """Within the block, and for good after it fails, drop the errors of a failed save's late write callbacks.

    When one write of a save fails (a full disk), orbax closes the save's
    asyncio loop while tensorstore still finishes the others; each of their
    callbacks then reports "Event loop is closed" through
    ``sys.unraisablehook``, a traceback apiece (27 of them for a 6-run probe
    sweep on a full 1.2 MB disk). The save's own error says what happened, so
    those are dropped; they keep coming after the exception is raised, so the
    filter stays once a save has failed (the sweep ends with that error).
    Every other unraisable error still goes to the hook that was installed.
    """
    previous = sys.unraisablehook

    def hook(unraisable):
        if not _is_closed_loop_callback(unraisable):
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    except BaseException:
        raise  # the filter stays: the failed save's callbacks are still to come
    sys.unraisablehook = previous


def close_after_failure(manager: ocp.CheckpointManager) -> None:
    """Close ``manager`` while another exception is on its way out: orbax's repeat of a failed save is dropped."""
    with _errors_unlogged(), contextlib.suppress(Exception):
        manager.close()


def history_to_json(history: list[dict]) -> list[dict]:
    """The metric history as JSON-able lists."""
    return [{k: np.asarray(v).tolist() for k, v in m.items()} for m in history]


def history_from_json(data: list[dict]) -> list[dict]:
    """Inverse of :func:`history_to_json`."""
    return [{k: np.asarray(v) for k, v in m.items()} for m in data]


def _is_key(x: Any) -> bool:
    return jax.numpy.issubdtype(x.dtype, jax.dtypes.prng_key)


def leaf_keys(state: Any, numbered: bool = False) -> list[tuple[str, ...] | None]:
    """The checkpoint key of each leaf of ``state``, in pytree order; ``None`` for zero-size leaves.

    A key is the leaf's pytree path (as :func:`sparse_jax.path_name` reads it),
    one part per level, with every character other than letters, digits, ``_``
    and ``-`` replaced by ``_``. ``numbered`` gives the layout of earlier
    versions instead: the leaf's index, five digits.

    >>> import jax.numpy as jnp
    >>> leaf_keys({"agent": {"Dense_0": {"kernel": jnp.ones(2)}, "log.alpha": jnp.ones(())}, "none": jnp.ones(0)})
    [('agent', 'Dense_0', 'kernel'), ('agent', 'log_alpha'), None]
    >>> leaf_keys([jnp.ones(2), jnp.ones(3)], numbered=True)
    [('00000',), ('00001',)]

    Raises:
      ValueError: two leaves whose paths differ only in replaced characters.
    """
    keys, seen = [], {}
    for i, (path, x) in enumerate(jax.tree.leaves_with_path(state)):
        if x.size == 0:
            keys.append(None)
            continue
        key = (f"{i:05d}",) if numbered else tuple(_UNSAFE.sub("_", p) or "_" for p in path_name(path).split("/"))
        if key in seen:
            raise ValueError(
                f"checkpoint key {'/'.join(key)!r} names two leaves ({seen[key]!r} and {path_name(path)!r}); "
                "rename one of them."
            )
        seen[key] = path_name(path)
        keys.append(key)
    return keys


def _nest(keys: Sequence[tuple[str, ...] | None], values: Sequence[Any]) -> dict:
    """Nested dicts holding ``values[i]`` at ``keys[i]`` (``None`` keys left out)."""
    out: dict = {}
    for key, value in zip(keys, values, strict=True):
        if key is None:
            continue
        node = out
        for part in key[:-1]:
            node = node.setdefault(part, {})
        node[key[-1]] = value
    return out


def _lookup(tree: dict, key: tuple[str, ...]) -> Any:
    """The value at ``key`` in nested dicts, ``None`` where there is none."""
    for part in key:
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def _stored_leaves(state: Any) -> list:
    """The leaves of ``state`` in pytree order, PRNG keys as their raw data (orbax stores plain arrays)."""
    return [jax.random.key_data(x) if _is_key(x) else x for x in jax.tree.leaves(state)]


def saveable(state: TrainState) -> dict[str, Any]:
    """The leaves as nested dicts keyed by their path (:func:`leaf_keys`), PRNG keys as their raw data.

    Zero-size leaves (some Brax pipeline states have them, e.g. halfcheetah's)
    are left out: orbax refuses them, and they hold no data to restore.
    """
    return _nest(leaf_keys(state), _stored_leaves(state))


def restore_leaves(saved: dict[str, Any], template: TrainState) -> TrainState:
    """The inverse of :func:`saveable`, into ``template``'s structure; also reads the numbered layout.

    Leaves ``saved`` does not hold (zero-size ones, and those a partial restore
    left out) come from ``template``; a zero-size leaf that is only a shape
    there is made as zeros.
    """
    leaves, treedef = jax.tree.flatten(template)
    keys = leaf_keys(template, numbered=migrate.is_numbered_layout(saved))
    restored = []
    for key, t in zip(keys, leaves, strict=True):
        x = None if key is None else _lookup(saved, key)
        if x is None:
            zero_size = isinstance(t, jax.ShapeDtypeStruct) and t.size == 0
            restored.append(jax.numpy.zeros(t.shape, t.dtype) if zero_size and not _is_key(t) else t)
            continue
        restored.append(jax.random.wrap_key_data(x) if _is_key(t) else x)
    return jax.tree.unflatten(treedef, restored)


def abstract_saveable(
    template: TrainState, mesh: Any, numbered: bool = False, parts: Sequence[str] | None = None
) -> dict[str, Any]:
    """What a checkpoint of ``template`` holds; sharded over the runs axis when there is a mesh.

    ``numbered`` gives the layout of earlier versions; ``parts`` keeps only the
    leaves under those top-level fields of the state (e.g. ``("agent",)``).
    """
    shapes = jax.eval_shape(_stored_leaves, template)
    keys = leaf_keys(template, numbered)
    if parts is not None:
        tops = [path_name(p).split("/")[0] for p, _ in jax.tree.leaves_with_path(template)]
        keys = [k if top in parts else None for k, top in zip(keys, tops, strict=True)]
    if mesh is not None:
        sharding = NamedSharding(mesh, PartitionSpec("runs"))
        shapes = [jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding) for x in shapes]
    return _nest(keys, shapes)


def save(manager: ocp.CheckpointManager, chunk: int, state: TrainState, history: list[dict]) -> None:
    """Write the checkpoint after ``chunk``, wait until it is on disk, then write its :data:`MANIFEST`.

    Every process of a multi-host job calls this (each writes its own
    shards); only process 0 writes the manifest.
    """
    args = ocp.args.Composite(
        state=ocp.args.StandardSave(saveable(state)), meta=ocp.args.JsonSave({"history": history_to_json(history)})
    )
    # Orbax logs a failed write from each of its threads with a traceback, then raises (tensorstore's errors
    # as ValueError): say it once, as the OSError it is, naming the folder; the older checkpoint stays.
    try:
        with _errors_unlogged(), _late_callbacks_quiet():
            saved = manager.save(chunk, args=args)
            manager.wait_until_finished()
    except (OSError, ValueError) as e:
        errno = e.errno if isinstance(e, OSError) else _os_error_code(str(e))
        # The OS's reason when there is one (tensorstore ends its message with it), else orbax's message.
        reason = os.strerror(errno) if errno else " ".join(str(e).split())[:300] or type(e).__name__
        raise OSError(errno, f"checkpoint not written ({reason})", str(step_directory(manager, chunk))) from None
    # Process 0 is orbax's primary host: its wait returns once every process has written its shards and the
    # step was renamed into place, so the directory is final; orbax writes nothing in it afterwards.
    if saved and jax.process_index() == 0:
        write_manifest(step_directory(manager, chunk))


def _os_error_code(message: str) -> int | None:
    """The OS error number in a tensorstore error message, if it gives one.

    >>> _os_error_code("Failed to write 71151 bytes to file 15: No space left on device [os_error_code='28']")
    28
    """
    found = _OS_ERROR_CODE.search(message)
    return int(found[1]) if found else None


def step_directory(manager: ocp.CheckpointManager, step: int) -> Path:
    """The directory of checkpoint ``step`` (orbax's default step names: the bare number)."""
    return Path(manager.directory) / str(step)


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()  # reads in blocks, not the whole file at once


def write_manifest(step_dir: Path) -> None:
    """Write ``step_dir/SHA256SUMS``: the SHA-256 of every other file under ``step_dir``, in ``sha256sum``'s format.

    One ``<hex digest>  <path>`` line per file, paths relative to
    ``step_dir``, sorted; written atomically (temporary file and rename), so
    a manifest is either whole or absent. Hashing reads every file once, at
    disk or SHA-256 speed (about 1.5 GB/s on one core with the CPU's SHA
    instructions): a checkpoint of 5 MB takes about 5 ms, to write or check.
    """
    files = sorted(p.relative_to(step_dir).as_posix() for p in step_dir.rglob("*") if p.is_file())
    lines = [f"{_sha256(step_dir / f)}  {f}\n" for f in files if f != MANIFEST]
    results.atomic_write_text(step_dir / MANIFEST, "".join(lines))


def check_manifest(step_dir: Path) -> None:
    """Check that every file ``step_dir/SHA256SUMS`` lists is there with its listed SHA-256.

    Files it does not list are not checked.

    Raises:
      ValueError: naming the first file (relative to ``step_dir``) that is
        missing or differs, or saying that the manifest is missing or damaged.
    """
    try:
        text = (step_dir / MANIFEST).read_text()
    except FileNotFoundError:
        raise ValueError(f"its {MANIFEST} is missing: its save stopped before writing it") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"its {MANIFEST} does not read: {e}") from None
    lines = text.splitlines()
    if not lines:
        raise ValueError(f"its {MANIFEST} lists no file")
    for n, line in enumerate(lines, 1):
        match = _SUM_LINE.fullmatch(line)
        if match is None:
            raise ValueError(f"its {MANIFEST} is damaged at line {n}")
        digest, name = match.groups()
        if not (step_dir / name).is_file():
            raise ValueError(f"{name} is missing, which {MANIFEST} lists")
        if _sha256(step_dir / name) != digest:
            raise ValueError(f"{name} is damaged: its SHA-256 differs from {MANIFEST}")


def _state_args(target: dict, partial: bool) -> Any:
    """Orbax restore args for ``target``; a ``partial`` target reads only its own leaves."""
    if not partial:
        return ocp.args.StandardRestore(target)
    device = SingleDeviceSharding(jax.local_devices()[0])
    restore_args = jax.tree.map(
        lambda x: ocp.ArrayRestoreArgs(shape=x.shape, dtype=x.dtype, sharding=x.sharding or device), target
    )
    return ocp.args.PyTreeRestore(item=target, restore_args=restore_args, partial_restore=True)


def _restore_step(manager: ocp.CheckpointManager, step: int, template: dict, legacy: dict | None, partial: bool):
    """Checkpoint ``step`` restored into ``template``, or into ``legacy`` (the numbered layout) if that fits it."""

    def restore(target, partial=partial):
        args = ocp.args.Composite(state=_state_args(target, partial), meta=ocp.args.JsonRestore())
        if not partial:
            return manager.restore(step, args=args)
        # Orbax binds one handler to an item per manager, and a partial read needs another one than whole
        # states do: read through a manager of its own, so that the caller's can still restore and save.
        with open_manager(Path(manager.directory), read_only=True) as reader:
            restored = reader.restore(step, args=args)
        # A partial read gives back the target's own shapes where the checkpoint lacks a leaf: refuse that.
        leaves = jax.tree.leaves(restored["state"])
        if jax.tree.structure(restored["state"]) != jax.tree.structure(target) or any(
            isinstance(x, jax.ShapeDtypeStruct) for x in leaves
        ):
            raise ValueError("the checkpoint does not hold the leaves asked for (another layout?)")
        return restored

    try:
        return restore(template)
    except Exception as named_error:  # an earlier layout fails on the names first, before reading any data
        for older, older_partial in migrate.older_checkpoint_layouts(template, partial, legacy, _without_count_tables):
            try:
                return restore(older, older_partial)
            except Exception:
                pass
        raise named_error from None


def _without_count_tables(template: dict) -> dict | None:
    """``template`` without its ``targets`` leaves (``SparseState.targets``); ``None`` if it has none."""

    def strip(node):
        if not isinstance(node, dict):
            return node
        return {k: strip(v) for k, v in node.items() if not (k == "targets" and not isinstance(v, dict))}

    stripped = strip(template)
    return None if jax.tree.structure(stripped) == jax.tree.structure(template) else stripped


def restore_latest(
    manager: ocp.CheckpointManager,
    template: Any,
    group: str,
    warn: Callable[[str], None],
    *,
    legacy: Any = None,
    partial: bool = False,
    delete_damaged: bool = True,
) -> tuple[int, dict]:
    """Restore the newest checkpoint of ``group`` that restores, deleting the damaged ones after it.

    ``template`` is :func:`abstract_saveable` of the state, ``legacy`` the same
    in the numbered layout (tried on a checkpoint ``template`` does not fit);
    a ``partial`` template reads only the leaves it holds. Each step's files
    are first checked against its :data:`MANIFEST` (:func:`check_manifest`);
    a step without one is read unverified only when no older step of the
    directory has one (an earlier version's checkpoints), and counts as
    damaged otherwise (a save that stopped before its manifest). A checkpoint that
    does not restore or check is reported through ``warn`` before the older
    one is tried; ``delete_damaged=False`` keeps it (for a reader that must
    not change the directory).

    Raises:
      ValueError: no checkpoint restores; the message gives each one's reason.
    """
    steps = sorted(manager.all_steps(), reverse=True)
    signed = {s for s in steps if (step_directory(manager, s) / MANIFEST).is_file()}
    errors = []
    for i, step in enumerate(steps):
        try:
            # Only the newest steps can lack a manifest because their save stopped: after a signed step, it is due.
            if step in signed or any(s < step for s in signed):
                check_manifest(step_directory(manager, step))
            restored = _restore_step(manager, step, template, legacy, partial)
            if not isinstance(restored["meta"], dict) or "history" not in restored["meta"]:
                raise ValueError("its metric history is missing")
        except Exception as e:  # orbax and tensorstore raise many kinds on damaged files
            reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            errors.append(f"checkpoint {step}: {reason}")
            if i + 1 < len(steps):
                warn(f"warning: checkpoint {step} of {group} does not restore ({reason}); "
                     f"falling back to checkpoint {steps[i + 1]}.")  # fmt: skip
            continue
        if delete_damaged:
            for bad in steps[:i]:  # so that training can save those steps again
                manager.delete(bad)
        return step, restored
    raise ValueError(
        f"no checkpoint of {group} restores ({'; '.join(errors)}); delete {str(manager.directory)!r} to rerun that "
        "group from the start."
    )


def stored_runs(manager: ocp.CheckpointManager) -> int | None:
    """The length of the runs axis (real runs plus padding) of the newest readable checkpoint; ``None``: none reads.

    Every leaf of a batched state leads with the runs axis, so any stored
    array's shape tells it, without reading the data.
    """
    for step in sorted(manager.all_steps(), reverse=True):
        handler = ocp.StandardCheckpointHandler()
        try:
            tree = handler.metadata(step_directory(manager, step) / "state").tree
            shapes = [x.shape for x in jax.tree.leaves(tree) if hasattr(x, "shape")]
        except Exception:  # a damaged checkpoint: try the older one
            continue
        finally:
            handler.close()
        if shapes and shapes[0]:
            return int(shapes[0][0])
    return None


def restore(
    manager: ocp.CheckpointManager,
    state: TrainState,
    template: TrainState,
    mesh: Any,
    group: str,
    warn: Callable,
    *,
    parts: Sequence[str] | None = None,
    delete_damaged: bool = True,
) -> tuple[int, TrainState, list[dict]]:
    """``(chunk, state, history)`` of the newest restorable checkpoint, into ``state``'s structure.

    ``parts`` reads only those top-level fields of the state (e.g.
    ``("agent",)``); the others come back as they are in ``state``. See
    :func:`restore_latest` for ``delete_damaged``.
    """
    step, restored = restore_latest(
        manager,
        abstract_saveable(template, mesh, parts=parts),
        group,
        warn,
        legacy=abstract_saveable(template, mesh, numbered=True, parts=parts),
        partial=parts is not None,
        delete_damaged=delete_damaged,
    )
    return step, restore_leaves(restored["state"], state), history_from_json(restored["meta"]["history"])
