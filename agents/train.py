"""The jitted training loop: warm-up, masks, then a loop over steps in chunks.

``make_train(config)`` returns a :class:`Trainer` of pure functions. The whole
run is ``trainer.train(key)``, so ``jax.jit(jax.vmap(trainer.train))(keys)``
trains many seeds at once. :func:`run` drives the same pieces from the host
(chunk by chunk, with progress and per-chunk metrics), vmapped over seeds and
over the initial masks of methods that differ only by their mask (dense,
static, uniform_revival, tar), which then share one compiled function.

The update index that drives the SET/RigL schedule and TD3's policy delay is
computed from the loop's iteration counter, which is never batched, so the
``lax.cond`` on it stays a real branch under ``vmap``. For SET and RigL the
chunk runs the iterations between mask updates with ``rewire=False`` (no
rewiring branch in their program) and lets the schedule decide only in the
iterations that hold a mask update.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import sparse_jax as sj
from agents.config import MASK_ONLY_METHODS, TrainConfig
from agents.replay import ReplayBuffer, Transition, buffer_add, buffer_init, buffer_sample
from agents.sac import make_sac
from agents.td3 import make_td3
from agents.types import AgentState, Algorithm, Metrics
from envs import make_env


@struct.dataclass
class TrainState:
    """Everything one run carries from step to step.

    Attributes:
      agent: networks, targets and optimizer states.
      buffer: the replay buffer.
      env_state: the parallel envs' Brax state.
      key: PRNG key.
      env_steps: env steps taken so far (summed over parallel envs).
    """

    agent: AgentState
    buffer: ReplayBuffer
    env_state: Any
    key: jax.Array
    env_steps: jax.Array


class Trainer(NamedTuple):
    """Pure functions of one training configuration (see module docs).

    Attributes:
      config: the configuration.
      init: ``key -> TrainState`` with dense networks and an empty buffer.
      warmup: ``TrainState -> TrainState`` after ``warmup_steps`` random-action steps.
      make_masks: ``(TrainState, method) -> (actor SparseInit, critic SparseInit)``;
        SNIP scores use a replay batch, so call it after ``warmup``.
      apply_masks: ``(TrainState, actor_init, critic_init) -> TrainState`` with
        masked networks and targets and fresh sparse optimizers.
      chunk: ``(TrainState, chunk_index) -> (TrainState, metrics)``: one chunk of
        ``chunk_steps`` env steps with learning, then a deterministic evaluation.
      evaluate: ``TrainState -> metrics`` (mean return over ``eval_episodes``).
      train: ``key -> (TrainState, metrics)``: the whole run, metrics stacked per chunk.
      traces: how many times each function was traced (Python side effect, for tests).
      algo: the algorithm's pure functions (its ``update`` is one gradient step).
    """

    config: TrainConfig
    init: Callable
    warmup: Callable
    make_masks: Callable
    apply_masks: Callable
    chunk: Callable
    evaluate: Callable
    train: Callable
    traces: dict
    algo: Algorithm


def _outside_mask(params: Any, masks: Any) -> jax.Array:
    """Number of non-zero entries of ``params`` where ``masks`` is False (0 when exactly as sparse)."""
    pairs = zip(jax.tree.leaves(params), jax.tree.leaves(masks, is_leaf=sj.masks.is_none))
    return sum(jnp.count_nonzero(jnp.where(m, 0.0, p)) for p, m in pairs if m is not None)


def _mask_density(masks: Any) -> jax.Array:
    leaves = jax.tree.leaves(masks)
    return sum(jnp.sum(m) for m in leaves) / sum(m.size for m in leaves)


def network_schedules(config: TrainConfig) -> dict[str, tuple[sj.DSTSchedule, int]]:
    """Each network's SET/RigL schedule and stride: ``{"actor": (schedule, d), "critic": (schedule, 1)}``.

    Update ``u`` (0-based, over the whole run) reaches a network's optimizer
    as step ``u // d``, on the updates with ``u % d == 0``. TD3 updates its
    actor every ``policy_delay``-th update (``d = policy_delay``), so the
    actor's schedule counts fewer steps; otherwise ``d = 1``.
    """
    strides = {"actor": config.policy_delay if config.algo == "td3" else 1, "critic": 1}
    return {network: (config.sparse.schedule(config.total_updates // d), d) for network, d in strides.items()}


def next_rewire_iteration(config: TrainConfig, it: jax.Array, end: jax.Array) -> jax.Array:
    """The first iteration ``>= it`` whose updates include a SET/RigL mask update of either network.

    Iteration ``i`` runs updates ``i * updates_per_step ...``; returns ``end``
    when no mask update falls in ``[it, end)``.
    """
    ups = config.updates_per_step
    first_update = it * ups
    nxt = end
    for schedule, d in network_schedules(config).values():
        # Optimizer step t (1-based) is update u = (t - 1) * d, which is >= first_update from
        # t = ceil(first_update / d) + 1 on.
        t = schedule.next_update_step(-(-first_update // d) + 1)
        nxt = jnp.where(t < schedule.t_end, jnp.minimum(nxt, (t - 1) * d // ups), nxt)
    return nxt


def make_train(config: TrainConfig) -> Trainer:
    """Build the pure training functions for ``config`` (nothing is compiled yet)."""
    env = make_env(
        config.env,
        backend=config.backend,
        episode_length=config.episode_length,
        action_repeat=config.action_repeat,
        num_envs=config.num_envs,
    )
    eval_env = make_env(
        config.env,
        backend=config.backend,
        episode_length=config.episode_length,
        action_repeat=config.action_repeat,
        num_envs=config.eval_episodes,
        auto_reset=False,  # each episode is scored up to its first done only
    )
    obs_size, action_size = env.observation_size, env.action_size
    sparse = config.sparse
    traces = {"init": 0, "warmup": 0, "chunk": 0, "evaluate": 0}

    lrs = {"actor": config.actor_lr, "critic": config.critic_lr}
    counts: dict[str, Any] = {}  # filled right after the networks are known, before any tracing

    schedules = {network: schedule for network, (schedule, _) in network_schedules(config).items()}

    def make_tx(network: str, masks: Any, key: jax.Array | None = None) -> optax.GradientTransformation:
        """The sparse Adam of ``network``; the update only reads masks from its state."""
        return sj.sparse_optimizer(
            sparse.dst_method,
            optax.adam(lrs[network]),
            masks,
            key=jax.random.key(0) if key is None else key,
            schedule=schedules[network],
            max_active=counts.get(network),
        )

    algo: Algorithm = (make_sac if config.algo == "sac" else make_td3)(config, obs_size, action_size, make_tx)
    alpha_tx = optax.adam(config.alpha_lr)

    # Static per-layer active counts size the SET/RigL top-k, since masks are traced inside jit.
    # ERK/uniform counts depend on shapes only; "global" falls back to the layer sizes.
    def static_counts(shapes, network):
        if sparse.distribution == "global" or sparse.dst_method == "static":
            return None
        scores = sj.magnitude(jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes))
        k = sj.target_active(sum(x.size for x in jax.tree.leaves(scores)), sparse.network_sparsity(network))
        return sj.layer_counts(sparse.distribution, scores, k)

    for network, shapes in zip(("actor", "critic"), jax.eval_shape(algo.init_params, jax.random.key(0))):
        counts[network] = static_counts(shapes, network)

    def build_agent(actor_init: sj.SparseInit, critic_init: sj.SparseInit, key: jax.Array) -> AgentState:
        k_actor, k_critic = jax.random.split(key)
        actor, critic = actor_init.params, critic_init.params
        log_alpha = jnp.asarray(algo.init_alpha, jnp.float32)
        return AgentState(
            actor=actor,
            critic=critic,
            target_actor=actor if config.algo == "td3" else None,
            target_critic=critic,
            actor_opt=make_tx("actor", actor_init.masks, k_actor).init(actor),
            critic_opt=make_tx("critic", critic_init.masks, k_critic).init(critic),
            log_alpha=log_alpha,
            alpha_opt=alpha_tx.init(log_alpha),
        )

    def dense_init(params):
        masks = sj.dense_masks(params)
        return sj.SparseInit(params, masks, masks)

    def init(key: jax.Array) -> TrainState:
        traces["init"] += 1
        k_params, k_env, k_opt, k_run = jax.random.split(key, 4)
        actor, critic = algo.init_params(k_params)
        return TrainState(
            agent=build_agent(dense_init(actor), dense_init(critic), k_opt),
            buffer=buffer_init(config.capacity, obs_size, action_size),
            env_state=env.reset(k_env),
            key=k_run,
            env_steps=jnp.zeros((), jnp.int32),
        )

    def env_step(state: TrainState, action: jax.Array) -> TrainState:
        """Step the parallel envs with ``action`` and store the transitions."""
        prev = state.env_state
        nxt = env.step(prev, action)
        truncation = nxt.info["truncation"]
        transition = Transition(
            obs=prev.obs,
            action=action,
            reward=nxt.reward,
            discount=1.0 - nxt.done * (1.0 - truncation),
            mask=1.0 - truncation,
            next_obs=nxt.obs,
        )
        return state.replace(
            env_state=nxt, buffer=buffer_add(state.buffer, transition), env_steps=state.env_steps + config.num_envs
        )

    def warmup(state: TrainState) -> TrainState:
        traces["warmup"] += 1

        def body(state, _):
            key, k_act = jax.random.split(state.key)
            action = jax.random.uniform(k_act, (config.num_envs, action_size), minval=-1.0, maxval=1.0)
            return env_step(state.replace(key=key), action), None

        return jax.lax.scan(body, state, None, length=config.warmup_iters)[0]

    def make_masks(state: TrainState, method: str) -> tuple[sj.SparseInit, sj.SparseInit]:
        k_batch, k_loss, k_actor, k_critic = jax.random.split(jax.random.fold_in(state.key, 1), 4)
        batch = buffer_sample(state.buffer, k_batch, config.batch_size)
        actor_loss, critic_loss = algo.snip_losses(state.agent, batch, k_loss)
        common = dict(method=method, score=sparse.score, distribution=sparse.distribution, revival=sparse.revival)
        actor_init = sj.sparse_init(
            k_actor, state.agent.actor, sparse.network_sparsity("actor"), loss_fn=actor_loss, batch=batch, **common
        )
        critic_init = sj.sparse_init(
            k_critic, state.agent.critic, sparse.network_sparsity("critic"), loss_fn=critic_loss, batch=batch, **common
        )
        return actor_init, critic_init

    def apply_masks(state: TrainState, actor_init: sj.SparseInit, critic_init: sj.SparseInit) -> TrainState:
        key, k_opt = jax.random.split(state.key)
        return state.replace(agent=build_agent(actor_init, critic_init, k_opt), key=key)

    def evaluate(state: TrainState) -> Metrics:
        traces["evaluate"] += 1
        actor = state.agent.actor

        def body(carry, _):
            env_state, ret, alive = carry
            action = algo.act(actor, env_state.obs, None, True)
            env_state = eval_env.step(env_state, action)
            # where, not a product: an env stepped past its end may give a non-finite reward.
            ret = ret + jnp.where(alive > 0, env_state.reward, 0.0)
            return (env_state, ret, alive * (1.0 - env_state.done)), None

        env_state = eval_env.reset(jax.random.fold_in(state.key, 2))
        ones = jnp.ones(config.eval_episodes)
        horizon = -(-config.episode_length // config.action_repeat)
        (_, ret, _), _ = jax.lax.scan(body, (env_state, 0.0 * ones, ones), None, length=horizon)
        return {"eval_return": jnp.mean(ret), "eval_return_std": jnp.std(ret)}

    def chunk(state: TrainState, chunk_index: jax.Array) -> tuple[TrainState, Metrics]:
        traces["chunk"] += 1
        first = chunk_index * config.chunk_iters
        end = first + config.chunk_iters

        def iteration(state: TrainState, it: jax.Array, rewire: bool | None) -> tuple[TrainState, Metrics]:
            # ACT
            key, k_act, k_update = jax.random.split(state.key, 3)
            action = algo.act(state.agent.actor, state.env_state.obs, k_act, False)
            state = env_step(state.replace(key=key), action)

            # UPDATE
            def one_update(agent, j):
                k_sample, k_loss = jax.random.split(jax.random.fold_in(k_update, j))
                batch = buffer_sample(state.buffer, k_sample, config.batch_size)
                return algo.update(agent, batch, k_loss, it * config.updates_per_step + j, rewire)

            agent, metrics = jax.lax.scan(one_update, state.agent, jnp.arange(config.updates_per_step))
            return state.replace(agent=agent), jax.tree.map(jnp.nanmean, metrics)

        # Per-iteration metrics are averaged as they come (NaN-skipping sums and counts), since the
        # iterations run in loops of traced length.
        def run(carry, lo, hi, rewire):
            def body(it, carry):
                state, sums, counts = carry
                state, metrics = iteration(state, it, rewire)
                sums = jax.tree.map(lambda s, v: s + jnp.where(jnp.isnan(v), 0.0, v), sums, metrics)
                counts = jax.tree.map(lambda c, v: c + ~jnp.isnan(v), counts, metrics)
                return state, sums, counts

            return jax.lax.fori_loop(lo, hi, body, carry)

        shapes = jax.eval_shape(lambda s, it: iteration(s, it, False)[1], state, first)
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, jnp.float32), shapes)
        carry = (state, zeros, zeros)
        if sparse.dst_method == "static":
            carry = run(carry, first, end, False)
        else:
            # SET/RigL: the iterations between mask updates leave the rewiring branch out of the program
            # (rewire=False); only an iteration holding a mask update lets the schedule decide per update.
            def segment(c):
                it, carry = c
                k = next_rewire_iteration(config, it, end)
                carry = run(carry, it, k, False)
                return jnp.minimum(k + 1, end), run(carry, k, jnp.minimum(k + 1, end), None)

            carry = jax.lax.while_loop(lambda c: c[0] < end, segment, (first, carry))[1]
        state, sums, counts = carry
        agent = state.agent
        out = {name: sums[name] / counts[name] for name in sums}  # NaN where every iteration had NaN
        out.update(evaluate(state))
        out["env_steps"] = state.env_steps
        out["actor_density"] = _mask_density(agent.actor_masks)
        out["critic_density"] = _mask_density(agent.critic_masks)
        # Non-zero weights outside the masks, online and target: 0 when everything is exactly sparse.
        out["outside_mask"] = (
            _outside_mask(agent.actor, agent.actor_masks)
            + _outside_mask(agent.critic, agent.critic_masks)
            + _outside_mask(agent.target_critic, agent.critic_masks)
        )
        if agent.target_actor is not None:
            out["outside_mask"] += _outside_mask(agent.target_actor, agent.actor_masks)
        return state, out

    def train(key: jax.Array) -> tuple[TrainState, Metrics]:
        state = warmup(init(key))
        state = apply_masks(state, *make_masks(state, sparse.mask_method))
        return jax.lax.scan(chunk, state, jnp.arange(config.num_chunks))

    return Trainer(config, init, warmup, make_masks, apply_masks, chunk, evaluate, train, traces, algo)


@dataclasses.dataclass
class RunResult:
    """What :func:`run` returns.

    Attributes:
      labels: ``(method, seed)`` per run, in the order of the runs axis.
      history: one dict of per-run metrics (numpy arrays of shape ``(runs,)``) per chunk,
        plus ``wall_s`` and ``steps_per_s`` (host-measured, shared by the vmapped runs).
      state: the final batched ``TrainState``.
      masks: the initial ``(actor SparseInit, critic SparseInit)``, batched over runs.
      traces: how many times each trainer function was traced.
    """

    labels: list[tuple[str, int]]
    history: list[dict[str, np.ndarray]]
    state: TrainState
    masks: tuple[sj.SparseInit, sj.SparseInit]
    traces: dict[str, int]


def _stack_runs(trees: Sequence[Any]) -> Any:
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *trees)


class Prepared(NamedTuple):
    """Runs ready to train (see :func:`prepare`).

    Attributes:
      trainer: the pure functions of the group's configuration.
      state: the batched ``TrainState`` after warm-up and masking.
      masks: the initial ``(actor SparseInit, critic SparseInit)``, batched over runs.
      labels: ``(method, seed)`` per run, in the order of the runs axis.
      mesh: the device mesh the runs axis is sharded over (``None`` on one device).
        ``state`` then has padding runs at the end, up to a multiple of the
        mesh size; ``labels`` and ``masks`` cover the real runs only.
      chunk: the vmapped chunk, compiled for ``state`` (see :func:`compile_chunk`).
    """

    trainer: Trainer
    state: TrainState
    masks: tuple[sj.SparseInit, sj.SparseInit]
    labels: list[tuple[str, int]]
    mesh: Mesh | None = None
    chunk: Callable | None = None


def runs_mesh(num_devices: int | None = None) -> Mesh | None:
    """A 1-D mesh (axis ``"runs"``) over the first ``num_devices`` devices; ``None`` for one device.

    Default: every device (of every process, after ``jax.distributed.initialize()``).
    """
    devices = jax.devices()
    n = len(devices) if num_devices is None else num_devices
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(devices):
        raise ValueError(
            f"devices={num_devices!r} is not allowed; this host sees {len(devices)} (use 1..{len(devices)})."
        )
    return None if n == 1 else Mesh(np.asarray(devices[:n]), ("runs",))


def _pad_runs(tree: Any, num_runs: int, multiple: int) -> Any:
    """Repeat the last run until the runs axis is a multiple of ``multiple`` (padding is dropped later)."""
    pad = -num_runs % multiple
    if pad == 0:
        return tree
    return jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]), tree)


def shard_runs(tree: Any, mesh: Mesh | None) -> Any:
    """Lay the leading (runs) axis of every leaf out across ``mesh``.

    Every process holds the whole batch (it is computed identically
    everywhere), so each one fills the shards it can address; this also works
    across hosts.
    """
    if mesh is None:
        return tree
    sharding = NamedSharding(mesh, PartitionSpec("runs"))

    def put(x):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(put(jax.random.key_data(x)))
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])

    return jax.tree.map(put, tree)


def gather_runs(tree: Any) -> Any:
    """Fetch a (possibly sharded, possibly multi-host) batch to numpy on every process."""
    if jax.process_count() > 1:
        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def check_group(config: TrainConfig, methods: Sequence[str] | None) -> tuple[TrainConfig, tuple[str, ...]]:
    """Validate that ``methods`` can share one compiled function; return the group's config."""
    methods = tuple(methods or (config.sparse.method,))
    for m in methods:  # validates every name before anything compiles
        dataclasses.replace(config.sparse, method=m)
    if len(methods) > 1 and not all(m in MASK_ONLY_METHODS for m in methods):
        raise ValueError(
            f"methods {methods} cannot share one compiled function; only {', '.join(MASK_ONLY_METHODS)} can."
        )
    return dataclasses.replace(config, sparse=dataclasses.replace(config.sparse, method=methods[0])), methods


def prepare(
    config: TrainConfig, seeds: Sequence[int], methods: Sequence[str] | None = None, num_devices: int | None = None
) -> Prepared:
    """Init, warm up and mask ``methods x seeds`` runs as one batch (runs axis method-major).

    Each seed's dense init and warm-up data are shared by every method, so
    methods differ only by their masks. Several methods share one compiled
    function only if they are all mask-only (dense, static, uniform_revival,
    tar); ``set`` and ``rigl`` run alone. With several devices the runs axis
    is sharded across them (see :func:`runs_mesh`, :func:`shard_runs`).

    The chunk function is compiled on a second thread meanwhile: XLA compiles
    without holding the GIL, so its compilation overlaps warm-up and masking.
    """
    config, methods = check_group(config, methods)
    mesh = runs_mesh(num_devices)
    trainer = make_train(config)
    labels = [(m, s) for m in methods for s in seeds]
    num_slots = len(labels) + (0 if mesh is None else -len(labels) % mesh.size)
    with ThreadPoolExecutor(max_workers=1) as pool:
        chunk = pool.submit(compile_chunk, trainer, num_slots, mesh)
        state, masks = _init_and_mask(trainer, seeds, methods)
        chunk = chunk.result()
    if mesh is not None:
        state = shard_runs(_pad_runs(state, len(labels), mesh.size), mesh)
    return Prepared(trainer, state, masks, labels, mesh, chunk)


def _init_and_mask(
    trainer: Trainer, seeds: Sequence[int], methods: Sequence[str]
) -> tuple[TrainState, tuple[sj.SparseInit, sj.SparseInit]]:
    """The batched state of ``methods x seeds`` after init, warm-up and masking (see :func:`prepare`)."""
    config = trainer.config
    keys = jnp.stack([jax.random.key(s) for s in seeds])
    state = jax.jit(jax.vmap(trainer.warmup))(jax.jit(jax.vmap(trainer.init))(keys))
    # "global" with revival needs concrete masks: make those run by run, eagerly.
    eager = config.sparse.distribution == "global"
    inits = []
    for m in methods:
        mask_method = dataclasses.replace(config.sparse, method=m).mask_method
        if eager:
            per_run = [
                trainer.make_masks(jax.tree.map(lambda x, i=i: x[i], state), mask_method) for i in range(len(seeds))
            ]
            inits.append(jax.tree.map(lambda *xs: jnp.stack(xs), *per_run))
        else:
            inits.append(jax.jit(jax.vmap(lambda s, m=mask_method: trainer.make_masks(s, m)))(state))
    masks = _stack_runs(inits)
    state = jax.jit(jax.vmap(trainer.apply_masks))(_stack_runs([state] * len(methods)), *masks)
    return state, masks


def state_template(trainer: Trainer, num_runs: int) -> TrainState:
    """Shapes and dtypes of a batched ``TrainState`` of ``num_runs`` runs, without computing it.

    Masking does not change the structure, so this is the template to restore
    a checkpoint of :func:`prepare`'s state into.
    """
    keys = jnp.stack([jax.random.key(0)] * num_runs)
    return jax.eval_shape(jax.vmap(trainer.init), keys)


def _chunk_jit(trainer: Trainer, mesh: Mesh | None) -> Callable:
    """The chunk, vmapped over runs (chunk index unbatched) and jitted; sharded output with a ``mesh``."""
    vmapped = jax.vmap(trainer.chunk, in_axes=(0, None))
    if mesh is None:
        return jax.jit(vmapped)
    sharding = NamedSharding(mesh, PartitionSpec("runs"))
    return jax.jit(vmapped, out_shardings=(sharding, sharding))


def compile_chunk(trainer: Trainer, num_slots: int, mesh: Mesh | None = None) -> Callable:
    """The vmapped chunk compiled ahead of time for a batch of ``num_slots`` runs (padding included).

    Needs only shapes (:func:`state_template`), so it can run before the
    state exists. Returns ``(state, chunk_index) -> (state, metrics)``.
    """
    template = state_template(trainer, num_slots)
    if mesh is not None:
        sharding = NamedSharding(mesh, PartitionSpec("runs"))
        template = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), template)
    return _chunk_jit(trainer, mesh).lower(template, jnp.int32(0)).compile()


def train_chunks(
    trainer: Trainer,
    state: TrainState,
    first_chunk: int = 0,
    on_chunk: Callable[[int, dict[str, np.ndarray], TrainState], None] | None = None,
    num_runs: int | None = None,
    mesh: Mesh | None = None,
    chunk_fn: Callable | None = None,
) -> tuple[TrainState, list[dict[str, np.ndarray]]]:
    """Run chunks ``first_chunk .. num_chunks - 1`` of a prepared batch from the host.

    One compiled, vmapped chunk function; the chunk index is passed unbatched.
    After each chunk the metrics of the first ``num_runs`` runs (numpy, one
    value per run, plus host-measured ``wall_s`` and ``steps_per_s``) go to
    ``on_chunk(chunk, metrics, state)``. With a ``mesh`` the state stays
    sharded over the runs axis from chunk to chunk. ``chunk_fn`` is a
    compiled chunk (:attr:`Prepared.chunk`); by default it is jitted here.
    """
    config = trainer.config
    total_runs = jax.tree.leaves(state.env_steps)[0].shape[0]
    num_runs = total_runs if num_runs is None else num_runs
    chunk = _chunk_jit(trainer, mesh) if chunk_fn is None else chunk_fn
    history = []
    for c in range(first_chunk, config.num_chunks):
        start = time.perf_counter()
        state, metrics = chunk(state, jnp.int32(c))
        metrics = {k: np.asarray(v)[:num_runs] for k, v in gather_runs(metrics).items()}
        wall = time.perf_counter() - start
        metrics["wall_s"] = np.float64(wall)
        metrics["steps_per_s"] = np.float64(config.chunk_steps * num_runs / wall)
        history.append(metrics)
        if on_chunk is not None:
            on_chunk(c, metrics, state)
    return state, history


def run(
    config: TrainConfig,
    seeds: Sequence[int],
    methods: Sequence[str] | None = None,
    on_chunk: Callable[[int, dict[str, np.ndarray], TrainState], None] | None = None,
    num_devices: int | None = None,
) -> RunResult:
    """Train ``methods x seeds`` as one vmapped batch, chunk by chunk, from the host.

    Args:
      config: the configuration; its ``sparse.method`` is the default method.
      seeds: integer seeds (see :func:`prepare`).
      methods: the methods of the batch (see :func:`prepare`).
      on_chunk: called after each chunk with ``(chunk_index, metrics, state)``,
        e.g. to report or checkpoint.
      num_devices: devices to shard the runs over (default: all).

    Returns:
      A :class:`RunResult` (its ``state`` keeps any padding runs at the end).
    """
    prepared = prepare(config, seeds, methods, num_devices)
    state, history = train_chunks(
        prepared.trainer, prepared.state, 0, on_chunk, len(prepared.labels), prepared.mesh, prepared.chunk
    )
    return RunResult(prepared.labels, history, state, prepared.masks, dict(prepared.trainer.traces))
