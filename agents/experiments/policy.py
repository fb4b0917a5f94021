"""Trained policies back out of training: one run's deterministic actor, its masks applied.

:func:`make_policy` takes the actor of one run out of a (batched) training
state in memory; :func:`load_policy` does the same for a run of a finished
(or interrupted) sweep, from its group's latest checkpoint
(``DIR/checkpoints/<group>``, see :mod:`agents.results`), reading only the
agent's part of it. :func:`evaluate_policy` scores a policy as training's
evaluation does, and :func:`render_html` writes one rollout of a brax env as
brax's HTML viewer::

    policy = load_policy("results/quick", "inverted_pendulum-sac-s0.9-tar-seed0")
    action = policy(obs)                      # deterministic, in [-1, 1]
    mean, std = evaluate_policy(policy, episodes=10)
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import sparse_jax as sj
from agents import results
from agents.algorithms.config import TrainConfig, train_config_from_json
from agents.execution import checkpoint
from agents.execution.runner import check_batch, state_template
from agents.execution.train import TrainState, make_algorithm, make_train
from envs import BRAX_ENV_NAMES, PROBE_ENVS, make_env
from sparse_jax.validation import check_int, fail


class Policy(NamedTuple):
    """A trained deterministic actor; ``policy(obs)`` is ``policy.act(obs)``.

    Attributes:
      act: ``obs -> action``, jitted: observations of shape ``(..., obs_size)``
        to actions ``(..., action_size)`` in ``[-1, 1]`` (SAC's ``tanh`` of the
        Gaussian mean, TD3's actor output).
      params: the actor params, pruned entries exactly 0.
      masks: the actor masks (a boolean array per kernel, ``None`` per dense leaf).
      config: the run's training configuration.
      run_id: the run's folder name under ``runs/`` (``None`` for a state in memory).
      chunk: the 0-based chunk after which the checkpoint was written (``None``
        for a state in memory); ``config.num_chunks - 1`` for a finished run.
    """

    act: Callable[[jax.Array], jax.Array]
    params: Any
    masks: Any
    config: TrainConfig
    run_id: str | None = None
    chunk: int | None = None

    def __call__(self, obs: jax.Array) -> jax.Array:
        """The deterministic action for ``obs``."""
        return self.act(obs)


def _env(config: TrainConfig, num_envs: int = 1, auto_reset: bool = True) -> Any:
    """``config``'s env as training builds it (auto-reset: its sizes come from shape inference, not a reset)."""
    return make_env(
        config.env,
        backend=config.backend,
        episode_length=config.episode_length,
        action_repeat=config.action_repeat,
        num_envs=num_envs,
        auto_reset=auto_reset,
    )


def _runs_axis(actor: Any, expected: Any) -> int | None:
    """The number of runs ``actor`` is batched over (``None``: one run), checked against ``expected``'s shapes."""
    if jax.tree.structure(actor) != jax.tree.structure(expected):
        raise ValueError(
            f"the state's actor has structure {jax.tree.structure(actor)}, but the config's actor has "
            f"{jax.tree.structure(expected)}; pass the config the state was trained with."
        )
    shapes = [tuple(np.shape(x)) for x in jax.tree.leaves(actor)]
    want = [tuple(x.shape) for x in jax.tree.leaves(expected)]
    if shapes == want:
        return None
    leading = {s[0] for s in shapes if s}
    if len(leading) == 1 and [s[1:] for s in shapes] == want:
        return leading.pop()
    raise ValueError(
        f"the state's actor has shapes {shapes}, but the config's actor has {want} (or those behind a runs axis); "
        "pass the config the state was trained with."
    )


def make_policy(config: TrainConfig, state: Any, run: int | None = None) -> Policy:
    """The deterministic actor of one run of ``state``, with its masks applied.

    Args:
      config: the run's training configuration (its env and algorithm decide
        the network and how it acts).
      state: a ``TrainState`` or an algorithm's state (anything with ``actor``
        params and ``actor_masks``, as :class:`agents.algorithms.types.NetworkMasks`),
        of one run or batched over runs (the runner's vmapped state).
      run: the run's index on the runs axis of a batched ``state``; ``None``
        for a state of one run.

    Returns:
      A :class:`Policy` whose params are the actor's with every pruned entry
      set to exactly 0 (they already are after training; masking again makes
      it hold for any state).

    Raises:
      ValueError: ``run`` does not fit ``state`` (missing for a batch, given
        for one run, out of range), or the actor does not fit ``config``.
    """
    env = _env(config)
    obs_size = env.observation_size
    algo = make_algorithm(config, obs_size, env.action_size)
    agent = getattr(state, "agent", state)  # a TrainState holds the algorithm's state as `agent`
    num_runs = _runs_axis(agent.actor, jax.eval_shape(algo.init_params, jax.random.key(0))[0])
    if num_runs is None:
        if run is not None:
            fail("run", run, "None: the state holds one run, not a batch")
    else:
        if run is None:
            fail("run", run, f"a run index in 0 .. {num_runs - 1}: the state is a batch of {num_runs} runs")
        index = check_int("run", run, minimum=0)
        if index >= num_runs:
            fail("run", run, f"a run index in 0 .. {num_runs - 1}: the state is a batch of {num_runs} runs")
    actor, masks = agent.actor, agent.actor_masks
    if num_runs is not None:
        actor, masks = jax.tree.map(lambda x: x[index], (actor, masks))
    params = sj.apply_mask(actor, masks)
    deterministic = jax.jit(lambda p, obs: algo.act(p, obs, None, True))

    def act(obs: jax.Array) -> jax.Array:
        obs = jnp.asarray(obs)
        if obs.ndim == 0 or obs.shape[-1] != obs_size:
            fail("obs shape", obs.shape, f"(..., {obs_size}) for {config.env}")
        return deterministic(params, obs)

    return Policy(act, params, masks, config)


def config_from_json(data: Any, where: str = "run.json") -> TrainConfig:
    """The ``TrainConfig`` of a run's ``run.json`` ``config``, or a ``ValueError`` naming ``where``."""
    if not isinstance(data, dict) or not isinstance(data.get("sparse", {}), dict):
        raise ValueError(f"{where}: config must be an object with a sparse object, got {data!r}.")
    try:
        return train_config_from_json(data)
    except TypeError as e:  # a field this version does not know
        raise ValueError(
            f"{where}: its config does not read as a TrainConfig ({e}; written by another version?)."
        ) from None


def run_config(results_dir: str | Path, run: str) -> TrainConfig:
    """The resolved training configuration of run ``run`` of a results directory (its ``run.json``).

    Raises:
      ValueError: ``run`` is not a run of ``results_dir`` (the message names
        some that are), or the directory holds no runs.
    """
    results_dir = Path(results_dir)
    known = results.run_ids(results_dir)
    if not known:
        raise ValueError(
            f"{str(results_dir)!r} holds no runs (no runs/<run_id>/run.json); give the results directory of a sweep."
        )
    if run not in known:
        shown = ", ".join(known[:4]) + (f", ... ({len(known)} runs)" if len(known) > 4 else "")
        fail("run", run, f"a run id of {str(results_dir)!r}: {shown}")
    folder = results.run_folder(results_dir, run)
    return config_from_json(results.read_record(folder).config, str(folder / results.RUN_FILE))


def _group_of(results_dir: Path, run: str) -> tuple[str, TrainConfig, int, int]:
    """``(batch name, batch config, slot, runs in the batch)`` of ``run``, from the sweep's ``config.json``.

    The slot is the run's index on its batch's runs axis, and the batch
    config the one its program was built from (:func:`agents.execution.runner.check_batch`).
    """
    from agents.experiments import sweep  # the sweep module imports the report and trackers: only when a sweep is read

    if not (results_dir / results.CONFIG_FILE).is_file():
        raise ValueError(f"{str(results_dir)!r} has no config.json, so its runs' checkpoints cannot be found.")
    cfg = sweep.stored_config(results_dir)
    for batch in cfg.planned_batches(sweep.stored_plan(results_dir)):
        slots = {cfg.run_id(r): slot for slot, r in batch.entries()}  # a shared run reads the slot it came from
        if run in slots:
            sweep.check_checkpoint_steps(cfg, results_dir, [batch])
            return batch.name, check_batch([cfg.run_config(r) for r in batch.runs]), slots[run], len(batch.runs)
    raise ValueError(
        f"run {run!r} has a run.json but is not a run of the sweep in {str(results_dir / 'config.json')!r}; "
        "was the folder copied in from another sweep?"
    )


def load_policy(results_dir: str | Path, run: str, warn: Callable[[str], None] | None = None) -> Policy:
    """The deterministic actor of run ``run`` (a folder name under ``results_dir/runs/``), from its latest checkpoint.

    The run's group checkpoint holds the batched state of every run of the
    group; only its ``agent`` part is read, and the run's slot kept. The
    checkpoint directory is opened read-only: a damaged newest checkpoint is
    reported through ``warn`` (default: :func:`warnings.warn`) and the older
    one used, and nothing is deleted. ``Policy.chunk`` says how far the run
    had trained.

    Raises:
      ValueError: ``run`` is not a run of ``results_dir`` (the message names
        some that are), the run has no checkpoint (the sweep ran with
        ``checkpoint_every=0``, or stopped before its first), or none of its
        checkpoints restores.
    """
    results_dir = Path(results_dir)
    config = run_config(results_dir, run)
    group, group_config, slot, num_runs = _group_of(results_dir, run)
    directory = (results_dir / "checkpoints" / group).absolute()
    manager = checkpoint.open_manager(directory, read_only=True) if directory.is_dir() else None
    try:
        if manager is None or not manager.all_steps():
            raise ValueError(
                f"run {run!r} has no checkpoint: {str(directory)!r} holds none (the sweep ran with checkpoint_every=0, "
                "or stopped before its first checkpoint); rerun it with checkpoints to get its policy."
            )
        # The runs axis may hold padding runs for the device count it was trained on: take its length from disk.
        template = state_template(make_train(group_config), checkpoint.stored_runs(manager) or num_runs)
        say = warn or (lambda message: warnings.warn(message, stacklevel=3))
        chunk, state, _ = checkpoint.restore(
            manager, template, template, None, group, say, parts=("agent",), delete_damaged=False
        )
    finally:
        if manager is not None:
            manager.close()
    return make_policy(config, state, run=slot)._replace(run_id=run, chunk=chunk)


class _ActorOnly(NamedTuple):
    """The part of an agent state that evaluation reads."""

    actor: Any


def evaluate_policy(policy: Policy, episodes: int = 10, seed: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of ``policy``'s deterministic return over ``episodes`` episodes.

    Scored as training scores its evaluations (:attr:`agents.execution.train.Trainer.evaluate`):
    each episode runs to its first ``done`` (at most ``episode_length`` env
    steps), from initial states drawn from ``seed``.
    """
    episodes = check_int("episodes", episodes, minimum=1)
    seed = check_int("seed", seed)
    trainer = make_train(dataclasses.replace(policy.config, eval_episodes=episodes))
    # Evaluation reads only the agent's actor and the state's key.
    state = TrainState(
        agent=_ActorOnly(policy.params), buffer=None, env_state=None, key=jax.random.key(seed), env_steps=None
    )
    metrics = jax.jit(trainer.evaluate)(state)
    return float(metrics["eval_return"]), float(metrics["eval_return_std"])


def check_renderable(config: TrainConfig) -> None:
    """Raise ``ValueError`` unless ``config``'s env is a brax env, whose system brax's viewer draws.

    Probes have no physics; MuJoCo Playground's tasks have MuJoCo models that brax's viewer does not draw.
    """
    if config.env not in BRAX_ENV_NAMES:
        kind = "probe envs have none" if config.env in PROBE_ENVS else "brax's viewer cannot draw a Playground task"
        fail("env", config.env, f"a brax env with a physics system to render ({', '.join(BRAX_ENV_NAMES)}); {kind}")


def render_html(policy: Policy, steps: int | None = None, seed: int = 0, height: int = 480) -> str:
    """One deterministic rollout of ``policy`` as brax's HTML viewer (``brax.io.html.render``).

    The episode starts from an initial state drawn from ``seed`` and runs at
    most ``steps`` actions (default: a whole episode), stopping at its end.
    The page loads brax's viewer script from its CDN when opened.

    Raises:
      ValueError: not a brax env (a probe or a Playground task), or ``steps`` below 1.
    """
    from brax.io import html

    config = policy.config
    check_renderable(config)
    horizon = -(-config.episode_length // config.action_repeat)
    steps = horizon if steps is None else check_int("steps", steps, minimum=1)
    seed = check_int("seed", seed)
    env = _env(config, auto_reset=False)  # an episode ends at its first done

    def rollout(key: jax.Array):
        def body(carry, _):
            env_state, alive = carry
            nxt = env.step(env_state, policy.act(env_state.obs))
            return (nxt, alive * (1.0 - nxt.done)), (nxt.pipeline_state, alive)

        first = env.reset(key)
        _, (frames, alive) = jax.lax.scan(body, (first, jnp.ones(1)), None, length=steps)
        return first.pipeline_state, frames, alive

    first, frames, alive = jax.device_get(jax.jit(rollout)(jax.random.key(seed)))
    # A step is kept while its env was alive before it, so the frame that ends the episode is the last one.
    kept = int(np.sum(alive[:, 0] > 0))
    states = [jax.tree.map(lambda x: x[0], first)] + [jax.tree.map(lambda x, t=t: x[t, 0], frames) for t in range(kept)]
    base = env.unwrapped
    # One frame per action: the viewer plays it at the action's duration.
    system = base.sys.tree_replace({"opt.timestep": base.dt * config.action_repeat})
    return html.render(system, states, height=height)
