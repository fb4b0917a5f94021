"""The pure trainer: warm-up, masks, then a loop over steps in chunks, all traceable.

``make_train(config)`` returns a :class:`Trainer` of pure functions. The whole
run is ``trainer.train(key)``, so ``jax.jit(jax.vmap(trainer.train))(keys)``
trains many seeds at once. :mod:`agents.execution.runner` drives the same pieces from
the host (chunk by chunk, with progress and per-chunk metrics), vmapped over
seeds and over the initial masks of methods that differ only by their mask
(dense, static, uniform_revival, tar), which then share one compiled function.

The update index that drives the SET/RigL schedule and TD3's policy delay is
computed from the loop's iteration counter, which is never batched, so the
``lax.cond`` on it stays a real branch under ``vmap``. For SET and RigL the
chunk runs the iterations between mask updates with ``rewire=False`` (no
rewiring branch in their program) and lets the schedule decide only in the
iterations that hold a mask update.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

import sparse_jax as sj
from agents.algorithms import get_algorithm
from agents.algorithms.config import TrainConfig
from agents.algorithms.replay import ReplayBuffer, Transition, buffer_add, buffer_init, buffer_sample
from agents.algorithms.types import Algorithm, Hyper, Metrics, adam_lr_arg
from envs import make_env


@struct.dataclass
class TrainState:
    """Everything one run carries from step to step.

    Attributes:
      agent: the algorithm's state: networks, targets and optimizer states.
      buffer: the replay buffer.
      env_state: the parallel envs' Brax state.
      key: PRNG key.
      env_steps: env steps taken so far (summed over parallel envs).
    """

    agent: Any
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
      apply_masks: ``(TrainState, actor_init, critic_init, hyper=None) -> TrainState`` with
        masked networks and targets and fresh sparse optimizers (and the run's traced initial
        values, such as SAC's temperature, where ``hyper`` is given).
      chunk: ``(TrainState, chunk_index, hyper=None) -> (TrainState, metrics)``: one chunk of
        ``chunk_steps`` env steps with learning, then a deterministic evaluation. ``hyper`` holds the
        run's traced hyperparameters (:func:`agents.algorithms.config.hyper_values`; ``None``: the
        config's values, constants of the program).
      evaluate: ``TrainState -> metrics`` (mean return over ``eval_episodes``).
      train: ``key -> (TrainState, metrics)``: the whole run, metrics stacked per chunk.
      traces: how many times each function was traced (Python side effect, for tests).
      algo: the algorithm's pure functions (its ``update`` is one gradient step).
      hidden: the hidden widths its networks have (:func:`trained_hidden`: ``config.hidden``, or
        narrower for a method that matches the sparse parameter count).
      reference_sizes: for such a method, each network's parameter count when dense at
        ``config.hidden`` (what its size is reported against); ``None`` for the others.
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
    hidden: tuple[int, ...]
    reference_sizes: dict[str, int] | None = None


def _outside_mask(params: Any, masks: Any) -> jax.Array:
    """Number of non-zero entries of ``params`` where ``masks`` is False (0 when exactly as sparse)."""
    pairs = zip(jax.tree.leaves(params), jax.tree.leaves(masks, is_leaf=sj.is_none))
    return sum(jnp.count_nonzero(jnp.where(m, 0.0, p)) for p, m in pairs if m is not None)


def _mask_density(masks: Any) -> jax.Array:
    leaves = jax.tree.leaves(masks)
    return sum(jnp.sum(m) for m in leaves) / sum(m.size for m in leaves)


def next_rewire_iteration(
    schedules: dict[str, tuple[sj.DSTSchedule, int]], updates_per_step: int, it: jax.Array, end: jax.Array
) -> jax.Array:
    """The first iteration ``>= it`` whose updates include a SET/RigL mask update of any network.

    ``schedules`` is :attr:`Algorithm.schedules` (``{network: (schedule, stride)}``).
    Iteration ``i`` runs updates ``i * updates_per_step ...``; returns ``end``
    when no mask update falls in ``[it, end)``.
    """
    first_update = it * updates_per_step
    nxt = end
    for schedule, d in schedules.values():
        # Optimizer step t (1-based) is update u = (t - 1) * d, which is >= first_update from
        # t = ceil(first_update / d) + 1 on.
        t = schedule.next_update_step(-(-first_update // d) + 1)
        nxt = jnp.where(t < schedule.t_end, jnp.minimum(nxt, (t - 1) * d // updates_per_step), nxt)
    return nxt


def next_redo_iteration(every: int, updates_per_step: int, it: jax.Array, end: jax.Array) -> jax.Array:
    """The first iteration ``>= it`` whose updates include a ReDo step (after every ``every``-th update).

    Iteration ``i`` runs updates ``i * updates_per_step ...``, and update
    ``u`` is followed by a ReDo step when ``(u + 1) % every == 0``; returns
    ``end`` when none falls in ``[it, end)``.
    """
    first = it * updates_per_step
    nxt = -(-(first + 1) // every) * every - 1  # the first update u >= first with (u + 1) % every == 0
    return jnp.minimum(nxt // updates_per_step, end)


def inner_optimizer(config: TrainConfig, network: str) -> optax.GradientTransformationExtraArgs:
    """The optimizer inside ``network``'s sparse transform: Adam at its learning rate, AdamW when
    ``config.weight_decay > 0`` (decoupled decay of every param it sees; the transform masks it).

    Its ``update`` takes ``learning_rate=`` (a run's traced rate; the config's
    when not given), with ``optax.adam``'s state and bits
    (:func:`agents.algorithms.types.adam_lr_arg`).
    """
    lr = {"actor": config.actor_lr, "critic": config.critic_lr}[network]
    return adam_lr_arg(lr, config.weight_decay)


def make_algorithm(
    config: TrainConfig, obs_size: int, action_size: int, share_with: Sequence[TrainConfig] = ()
) -> Algorithm:
    """``config.algo``'s :class:`Algorithm` (its ensemble variant for an ensemble method), with each network's
    sparse Adam built once.

    ``share_with``: other configs of the same program
    (:func:`agents.algorithms.config.program_key`) whose runs this algorithm's update
    must also serve when vmapped in one program; it widens the static top-k
    bounds of the method's mask rule to cover theirs and changes nothing else.
    """
    sparse = config.sparse
    rule = sj.METHODS[sparse.method].rule
    others = [c.sparse for c in share_with]

    def layer_counts(sp, network: str, shapes: Any) -> sj.masks.Counts:
        scores = sj.scores.magnitude(jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes))
        k = sj.target_active(sum(x.size for x in jax.tree.leaves(scores)), sp.network_sparsity(network))
        return sj.layer_counts(sp.distribution, scores, k)

    def max_active(network: str, shapes: Any) -> sj.masks.Counts | None:
        # Static per-layer active counts size the top-k of a rule whose counts never change (SET, RigL),
        # since masks are traced inside jit. ERK/uniform counts depend on shapes only; "global" falls
        # back to the layer sizes.
        bounded = rule is not None and rule.bounded_by_active
        if not bounded or any(sp.distribution == "global" for sp in (sparse, *others)):
            return None
        trees = [layer_counts(sp, network, shapes) for sp in (sparse, *others)]
        return jax.tree.map(lambda *c: None if c[0] is None else max(c), *trees, is_leaf=sj.is_none)

    def make_tx(network: str, shapes: Any, schedule: sj.DSTSchedule) -> optax.GradientTransformationExtraArgs:
        bound_schedules = ()
        if rule is not None and rule.uses_targets:  # a table per sparsity in the state (GMP)
            bound_schedules = tuple(
                dataclasses.replace(schedule, sparsity=sp.network_sparsity(network)) for sp in others
            )
        return sj.sparse_optimizer(
            sparse.method,
            inner_optimizer(config, network),
            schedule=schedule,
            max_active=max_active(network, shapes),
            distribution=sparse.distribution,
            bound_schedules=bound_schedules,
        )

    built = dataclasses.replace(config, hidden=trained_hidden(config, obs_size, action_size))
    return get_algorithm(config.algo, sj.METHODS[sparse.method].ensemble)(built, obs_size, action_size, make_tx)


def network_sizes(config: TrainConfig, obs_size: int, action_size: int) -> dict[str, tuple[int, int]]:
    """``{"actor": (total, prunable), "critic": ...}``: the parameters of ``config``'s dense networks at
    ``config.hidden`` (shapes only, nothing is computed), and those the masks cover (kernels)."""
    dense = dataclasses.replace(config, sparse=dataclasses.replace(config.sparse, method="dense"))
    nets = jax.eval_shape(make_algorithm(dense, obs_size, action_size).init_params, jax.random.key(0))
    out = {}
    for name, params in zip(("actor", "critic"), nets, strict=True):
        leaves = jax.tree.leaves_with_path(params)
        prunable = sum(x.size for path, x in leaves if sj.default_filter(sj.path_name(path), x))
        out[name] = (sum(x.size for _, x in leaves), prunable)
    return out


@functools.lru_cache(maxsize=64)  # a pure function of hashable values that every trainer of a run asks
def trained_hidden(config: TrainConfig, obs_size: int, action_size: int) -> tuple[int, ...]:
    """The hidden widths ``config``'s networks are built with.

    ``config.hidden``, except for a method that matches the sparse parameter
    count (:attr:`sparse_jax.SparseMethod.matches_active`: ``small_dense``).
    Its networks are dense and narrowed: every hidden width is scaled by one
    factor, the widest becoming ``k``, with ``k`` chosen by
    :func:`sparse_jax.matching_width` so that the parameters of actor and
    critics together are nearest those the sparse networks at
    ``config.hidden`` train: their biases and LayerNorms plus the active
    kernel weights at each network's sparsity (:func:`sparse_jax.target_active`).
    """
    if not sj.get_method(config.sparse.method).matches_active:
        return config.hidden
    widest = max(config.hidden)
    scaled = lambda k: tuple(max(1, round(w * k / widest)) for w in config.hidden)

    def size(k: int) -> int:
        narrow = dataclasses.replace(config, hidden=scaled(k))
        return sum(total for total, _ in network_sizes(narrow, obs_size, action_size).values())

    target = sum(
        total - prunable + sj.target_active(prunable, config.sparse.network_sparsity(net))
        for net, (total, prunable) in network_sizes(config, obs_size, action_size).items()
    )
    return scaled(sj.matching_width(size, target, widest))


def _make_envs(config: TrainConfig) -> tuple[Any, Any]:
    """The training envs (auto-reset) and the evaluation envs (each episode scored to its first done)."""
    common = dict(backend=config.backend, episode_length=config.episode_length, action_repeat=config.action_repeat)
    env = make_env(config.env, num_envs=config.num_envs, **common)
    eval_env = make_env(config.env, num_envs=config.eval_episodes, auto_reset=False, **common)
    return env, eval_env


def _env_step_fn(config: TrainConfig, env: Any) -> Callable[[TrainState, jax.Array], TrainState]:
    """``(state, action) -> state``: step the parallel envs with ``action`` and store the transitions."""

    def env_step(state: TrainState, action: jax.Array) -> TrainState:
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

    return env_step


def _evaluate_fn(config: TrainConfig, algo: Algorithm, eval_env: Any) -> Callable[[TrainState], Metrics]:
    """``state -> metrics``: deterministic return over ``eval_episodes`` episodes."""

    def evaluate(state: TrainState) -> Metrics:
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

    return evaluate


def _changed(new: Any, old: Any) -> jax.Array:
    """Mask entries that differ between ``new`` and ``old`` (a connection dropped or grown counts once)."""
    return sum(jnp.count_nonzero(a != b) for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(old)))


def _mask_metrics(algo: Algorithm, agent: Any, start: Any) -> Metrics:
    """Mask densities, turnover since ``start`` (the chunk's first state), and non-zeros outside the masks.

    ``*_changed`` counts the connections SET, RigL or GMP changed in the chunk;
    ``outside_mask`` is 0 when every network is exactly sparse.
    """
    return {
        "actor_density": _mask_density(agent.actor_masks),
        "critic_density": _mask_density(agent.critic_masks),
        "actor_changed": _changed(agent.actor_masks, start.actor_masks),
        "critic_changed": _changed(agent.critic_masks, start.critic_masks),
        "outside_mask": sum(_outside_mask(params, masks) for params, masks in algo.sparse_params(agent)),
    }


def _with_hyper(fn: Callable, *args: Any, hyper: Hyper | None) -> Any:
    """``fn(*args, hyper=hyper)``, or ``fn(*args)`` where nothing is traced: an algorithm that traces no field
    need not take ``hyper`` (:attr:`agents.algorithms.AlgorithmSpec.traced`)."""
    return fn(*args) if hyper is None else fn(*args, hyper=hyper)


def _recycle_fn(config: TrainConfig, algo: Algorithm) -> Callable[..., tuple[Any, Metrics]]:
    """``(agent, batch, key, hyper=None) -> (agent, recycled)``: one ReDo step on the online actor and critic.

    The dormant units on ``batch`` (:mod:`sparse_jax.redo`) take fresh incoming
    weights and biases from a new initialisation drawn from ``key``; their
    outgoing weights and the optimizer moments of all of these are zeroed; the
    masks and the target networks are left as they are. ``recycled`` is the
    fraction of each network's hidden units recycled. The threshold is the
    run's traced ``redo.tau`` where ``hyper`` holds it, else the config's.
    """
    if algo.unit_scores is None:
        raise ValueError(f"redo.every={config.redo.every} needs per-unit scores, which algorithm {config.algo!r} "
                         "does not give (its Algorithm.unit_scores is None); set redo.every=0.")  # fmt: skip

    def recycle(agent: Any, batch: Any, key: jax.Array, hyper: Hyper | None = None) -> tuple[Any, Metrics]:
        scores = algo.unit_scores(agent, batch)
        tau = config.redo.tau if hyper is None or "redo.tau" not in hyper else hyper["redo.tau"]
        fresh = dict(zip(("actor", "critic"), algo.init_params(key), strict=True))
        recycled = {}
        for net in ("actor", "critic"):
            opt = getattr(agent, f"{net}_opt")
            dormant = sj.dormant_units(scores[net], tau)
            params, changed = sj.recycle(getattr(agent, net), fresh[net], sj.get_masks(opt), dormant)
            agent = agent.replace(**{net: params, f"{net}_opt": sj.reset_moments(opt, changed)})
            units = sum(d.size for d in dormant.values())
            recycled[f"{net}_recycled"] = sum(jnp.sum(d) for d in dormant.values()) / units
        return agent, recycled

    return recycle


def _chunk_fn(
    config: TrainConfig,
    algo: Algorithm,
    env_step: Callable,
    evaluate: Callable,
) -> Callable[[TrainState, jax.Array], tuple[TrainState, Metrics]]:
    """``(state, chunk_index) -> (state, metrics)``: ``chunk_iters`` iterations, then an evaluation."""
    # Long: the training loop's closures (act, update, rewire, evaluate) over one config and algorithm.
    # A mask rule on a schedule (SET, RigL, GMP); an ensemble method selects inside its own update.
    dynamic = sj.METHODS[config.sparse.method].rule is not None
    recycle = _recycle_fn(config, algo) if config.redo.enabled else None

    # A run's traced hyperparameters reach the algorithm's update and act when the chunk is given them.
    update = lambda agent, batch, key, step, rewire, hyper: _with_hyper(
        algo.update, agent, batch, key, step, rewire, hyper=hyper
    )
    act = lambda actor, obs, key, hyper: _with_hyper(algo.act, actor, obs, key, False, hyper=hyper)

    def iteration(
        state: TrainState, it: jax.Array, rewire: bool | None, redo: bool = False, hyper: Hyper | None = None
    ) -> tuple[TrainState, Metrics]:
        # ACT: one step of every parallel env with the stochastic policy.
        key, k_act, k_update = jax.random.split(state.key, 3)
        action = act(state.agent.actor, state.env_state.obs, k_act, hyper)
        state = env_step(state.replace(key=key), action)

        # UPDATE: updates_per_step gradient updates on fresh replay batches.
        def one_update(agent, j):
            k_sample, k_loss = jax.random.split(jax.random.fold_in(k_update, j))
            batch = buffer_sample(state.buffer, k_sample, config.batch_size)
            step = it * config.updates_per_step + j
            agent, metrics = update(agent, batch, k_loss, step, rewire, hyper)
            if recycle is None:
                return agent, metrics
            # ReDo after every redo.every-th update, on that update's batch. The step is never batched,
            # so the cond stays a branch under vmap; the recycled fractions are NaN between ReDo steps
            # (the chunk's metric is their mean over the ReDo steps it holds). Iterations without a ReDo
            # step (redo=False) leave the branch out of the program, as for the mask updates: on a GPU the
            # cond on every update cost a third of the chunk's time.
            skip = lambda a: (a, {f"{n}_recycled": jnp.float32(jnp.nan) for n in ("actor", "critic")})
            if not redo:
                agent, recycled = skip(agent)
            else:
                recycle_now = lambda a: recycle(a, batch, jax.random.fold_in(k_loss, 1), hyper)
                agent, recycled = jax.lax.cond((step + 1) % config.redo.every == 0, recycle_now, skip, agent)
            return agent, {**metrics, **recycled}

        agent, metrics = jax.lax.scan(one_update, state.agent, jnp.arange(config.updates_per_step))
        return state.replace(agent=agent), jax.tree.map(jnp.nanmean, metrics)

    # Per-iteration metrics are averaged as they come (NaN-skipping sums and counts), since the
    # iterations run in loops of traced length.
    def iterations(carry, lo, hi, rewire, redo=False, hyper=None):
        def body(it, carry):
            state, sums, seen = carry
            state, metrics = iteration(state, it, rewire, redo, hyper)
            sums = jax.tree.map(lambda s, v: s + jnp.where(jnp.isnan(v), 0.0, v), sums, metrics)
            seen = jax.tree.map(lambda c, v: c + ~jnp.isnan(v), seen, metrics)
            return state, sums, seen

        return jax.lax.fori_loop(lo, hi, body, carry)

    def chunk(state: TrainState, chunk_index: jax.Array, hyper: Hyper | None = None) -> tuple[TrainState, Metrics]:
        first = chunk_index * config.chunk_iters
        end = first + config.chunk_iters
        shapes = jax.eval_shape(lambda s, it: iteration(s, it, False, False, hyper)[1], state, first)
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, jnp.float32), shapes)
        carry, start_agent = (state, zeros, zeros), state.agent
        if not dynamic and recycle is None:
            carry = iterations(carry, first, end, False, False, hyper)
        else:
            # SET/RigL, ReDo: the iterations between mask updates and ReDo steps leave those branches out
            # of the program (rewire=False, redo=False); only an iteration holding one of them lets the
            # schedule decide per update (rewire=None) and holds the ReDo branch.
            def next_event(it):
                k = end
                if dynamic:
                    k = next_rewire_iteration(algo.schedules, config.updates_per_step, it, k)
                if recycle is not None:
                    k = jnp.minimum(k, next_redo_iteration(config.redo.every, config.updates_per_step, it, end))
                return k

            def segment(c):
                it, carry = c
                k = next_event(it)
                carry = iterations(carry, it, k, False, False, hyper)
                after = jnp.minimum(k + 1, end)
                return after, iterations(carry, k, after, None if dynamic else False, recycle is not None, hyper)

            carry = jax.lax.while_loop(lambda c: c[0] < end, segment, (first, carry))[1]
        state, sums, seen = carry
        out = {name: sums[name] / seen[name] for name in sums}  # NaN where every iteration had NaN
        out.update(evaluate(state))
        out["env_steps"] = state.env_steps
        out.update(_mask_metrics(algo, state.agent, start_agent))
        # The probe's batch comes from a key folded off the state's, which training never reads.
        probe = buffer_sample(state.buffer, jax.random.fold_in(state.key, 3), config.batch_size)
        out.update({f"{net}_dormant": v for net, v in algo.dormant(state.agent, probe, config.dormant_tau).items()})
        return state, out

    return chunk


def make_train(config: TrainConfig, share_with: Sequence[TrainConfig] = ()) -> Trainer:
    """Build the pure training functions for ``config`` (nothing is compiled yet).

    ``share_with``: configs of other runs the chunk will be vmapped with (see
    :func:`make_algorithm`; :func:`agents.execution.runner.prepare_runs` passes them).
    """
    # Long: a factory of closures; init, warm-up, masking and chunks share the envs and algorithm it builds.
    env, eval_env = _make_envs(config)
    obs_size, action_size = env.observation_size, env.action_size
    sparse = config.sparse
    algo = make_algorithm(config, obs_size, action_size, share_with)
    env_step = _env_step_fn(config, env)
    traces = {"init": 0, "warmup": 0, "chunk": 0, "evaluate": 0}

    def traced(name: str, fn: Callable) -> Callable:
        def counted(*args):
            traces[name] += 1
            return fn(*args)

        return counted

    def dense_init(params):
        masks = sj.dense_masks(params)
        return sj.SparseInit(params, masks, masks)

    def init(key: jax.Array) -> TrainState:
        k_params, k_env, k_opt, k_run = jax.random.split(key, 4)
        actor, critic = algo.init_params(k_params)
        return TrainState(
            agent=algo.init_state(dense_init(actor), dense_init(critic), k_opt),
            buffer=buffer_init(config.capacity, obs_size, action_size),
            env_state=env.reset(k_env),
            key=k_run,
            env_steps=jnp.zeros((), jnp.int32),
        )

    def warmup(state: TrainState) -> TrainState:
        def body(state, _):
            key, k_act = jax.random.split(state.key)
            action = jax.random.uniform(k_act, (config.num_envs, action_size), minval=-1.0, maxval=1.0)
            return env_step(state.replace(key=key), action), None

        return jax.lax.scan(body, state, None, length=config.warmup_iters)[0]

    def make_masks(state: TrainState, method: str) -> tuple[sj.SparseInit, sj.SparseInit]:
        k_batch, k_loss, k_actor, k_critic = jax.random.split(jax.random.fold_in(state.key, 1), 4)
        batch = buffer_sample(state.buffer, k_batch, config.batch_size)
        losses = dict(zip(("actor", "critic"), algo.snip_losses(state.agent, batch, k_loss)))
        common = dict(
            method=method,
            score=sparse.score,
            distribution=sparse.distribution,
            revival=sparse.revival,
            synflow_iterations=sparse.synflow_iterations,
        )
        return tuple(
            sj.sparse_init(k, params, sparse.network_sparsity(net), loss_fn=losses[net], batch=batch, **common)
            for net, k, params in (("actor", k_actor, state.agent.actor), ("critic", k_critic, state.agent.critic))
        )

    def apply_masks(
        state: TrainState, actor_init: sj.SparseInit, critic_init: sj.SparseInit, hyper: Hyper | None = None
    ) -> TrainState:
        key, k_opt = jax.random.split(state.key)
        return state.replace(agent=_with_hyper(algo.init_state, actor_init, critic_init, k_opt, hyper=hyper), key=key)

    evaluate = traced("evaluate", _evaluate_fn(config, algo, eval_env))
    chunk = traced("chunk", _chunk_fn(config, algo, env_step, evaluate))

    def train(key: jax.Array) -> tuple[TrainState, Metrics]:
        state = warmup(init(key))
        state = apply_masks(state, *make_masks(state, sparse.method))
        return jax.lax.scan(chunk, state, jnp.arange(config.num_chunks))

    init, warmup = traced("init", init), traced("warmup", warmup)
    hidden = trained_hidden(config, obs_size, action_size)
    reference = None
    if sj.get_method(sparse.method).matches_active:
        reference = {net: total for net, (total, _) in network_sizes(config, obs_size, action_size).items()}
    return Trainer(
        config, init, warmup, make_masks, apply_masks, chunk, evaluate, train, traces, algo, hidden, reference
    )
