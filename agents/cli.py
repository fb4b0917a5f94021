"""The ``sparse-rl`` command line: ``sweep``, ``train``, ``report``, and ``eval`` and ``render`` of a trained run.

Bad input ends with a one-line ``sparse-rl: error: ...`` naming the value and
what is allowed, exit code 2, and nothing written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import tyro

from agents import results
from agents.algorithms.config import TrainConfig
from agents.experiments.grid import AXES as GRID_AXES
from agents.results import migrate
from envs.registry import BRAX_ENV_NAMES, PLAYGROUND_ENV_NAMES, PROBE_ENV_NAMES
from sparse_jax.validation import fail

# --envs lists every name it takes, from the registry, so the help cannot fall behind it.
_ENVS_HELP = (
    f"Override the preset's environments. brax: {', '.join(BRAX_ENV_NAMES)}. "
    f"DeepMind Control (MuJoCo Playground): {', '.join(PLAYGROUND_ENV_NAMES)}. "
    f"Probes: {', '.join(PROBE_ENV_NAMES)}."
)


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Options shared by ``sweep`` and ``train``."""

    progress: bool = True
    """Show the live progress bar."""
    devices: int | None = None
    """Shard the runs over this many devices (default: all; several hosts join with jax.distributed)."""
    compile_cache: str = "auto"
    """XLA's persistent compilation cache, so a rerun of the same configuration skips compiling: a directory,
    `auto` ($JAX_COMPILATION_CACHE_DIR if set, else $XDG_CACHE_HOME/sparse-rl/jax or ~/.cache/sparse-rl/jax) or
    `off`."""
    log: tuple[str, ...] = ()
    """Track every run (one per cell, method and seed, with its resolved config) in `tensorboard`
    (<out>/tensorboard) and/or `wandb` (pip install 'sparse-rl[wandb]'; WANDB_MODE=offline works without network)."""


@dataclasses.dataclass(frozen=True)
class SweepArgs(RunOptions):
    """Run a grid of envs x algorithms x sparsities x methods x seeds and write tables and figures."""

    preset: str | None = None
    """Starting point: `quick` (the default: all seven methods, 3 seeds, inverted_pendulum; minutes on a laptop CPU),
    `evidence` (all seven methods, 8 seeds, inverted_double_pendulum; under an hour on 2 CPU cores) or `paper` (5
    MuJoCo tasks, SAC and TD3, sparsity 0.8/0.9/0.95, ERK and global, widths 256 and 1024, 1M steps, 5 seeds; for
    accelerators). All use a SNIP base score. With --resume the sweep's own config.json is the starting point."""
    out: Path | None = None
    """Results directory (default: results/<preset>)."""
    resume: bool = False
    """Continue an interrupted sweep in `out` from the last checkpoint of every run, with the config it was started
    with; options that would change it are refused (--progress and --compile-cache may change, and --devices when
    every batch's runs divide evenly over both device counts)."""
    overwrite: bool = False
    """Delete the earlier sweep in `out` first (only a directory that holds a sweep's config.json)."""
    max_runs_per_batch: int | None = None
    """At most this many runs per vmapped batch (default: as many as fit in 80% of the devices' free memory; every
    mask-only run of one env, algo and width shares one compiled program, and so do the runs of each dynamic method).
    The plan is printed before anything compiles; --resume keeps the plan the sweep started with."""
    envs: Annotated[tuple[str, ...] | None, tyro.conf.arg(help=_ENVS_HELP)] = None
    algos: tuple[str, ...] | None = None
    """Override the preset's algorithms (sac, td3)."""
    sparsities: tuple[float, ...] | None = None
    """Override the preset's sparsities, each in [0, 1)."""
    methods: tuple[str, ...] | None = None
    """Override the preset's methods (dense, static, uniform_revival, tar, set, rigl, gmp; eaudesac, SAC only: its
    ensemble is --config.eaude.*, its ceiling the sparsity; small_dense: dense networks narrowed to the sparse
    networks' parameter count at each sparsity)."""
    scores: tuple[str, ...] | None = None
    """Grid axis: base pruning scores of static, uniform_revival, tar, set and rigl (random, magnitude, snip, synflow;
    gmp always prunes by magnitude)."""
    distributions: tuple[str, ...] | None = None
    """Grid axis: layer-wise sparsity distributions (uniform, erk, global)."""
    widths: tuple[int, ...] | None = None
    """Grid axis: hidden widths of actor and critics (each keeps the preset's number of hidden layers), e.g. 256
    1024."""
    rhos: tuple[float, ...] | None = None
    """Grid axis: revival reserve fractions of tar and uniform_revival, each in [0, 1]."""
    redos: tuple[int, ...] | None = None
    """Grid axis: ReDo periods (--config.redo.every; 0: without ReDo), e.g. 0 1000 runs every method with and
    without recycling dormant units."""
    actor_lrs: tuple[float, ...] | None = None
    """Grid axis: actor learning rates (--config.actor-lr), e.g. 1e-4 3e-4 1e-3. Like the critic's, the discount's
    and the Polyak rate's, SAC and TD3 take it per run: its values train in one compiled program."""
    critic_lrs: tuple[float, ...] | None = None
    """Grid axis: critic learning rates (--config.critic-lr)."""
    gammas: tuple[float, ...] | None = None
    """Grid axis: discounts (--config.gamma)."""
    taus: tuple[float, ...] | None = None
    """Grid axis: Polyak rates of the target networks (--config.tau)."""
    alpha_lrs: tuple[float, ...] | None = None
    """Grid axis: SAC's temperature learning rates (--config.sac.alpha-lr)."""
    init_alphas: tuple[float, ...] | None = None
    """Grid axis: SAC's initial temperatures (--config.sac.init-alpha)."""
    target_entropy_scales: tuple[float, ...] | None = None
    """Grid axis: SAC's target entropy, as multiples of minus the action size (--config.sac.target-entropy-scale)."""
    target_noises: tuple[float, ...] | None = None
    """Grid axis: TD3's target smoothing noise std (--config.td3.target-noise)."""
    noise_clips: tuple[float, ...] | None = None
    """Grid axis: TD3's smoothing noise clip (--config.td3.noise-clip)."""
    expl_noises: tuple[float, ...] | None = None
    """Grid axis: TD3's exploration noise std (--config.td3.expl-noise)."""
    redo_taus: tuple[float, ...] | None = None
    """Grid axis: ReDo's dormancy thresholds (--config.redo.tau; ReDo on in every cell)."""
    networks: tuple[str, ...] | None = None
    """Grid axis: the networks' bodies (--config.network): mlp, mlp_ln_critic, mlp_ln, simba."""
    phis: tuple[float, ...] | None = None
    """Grid axis: TAR's connectivity-floor fractions of its revival budget (--config.sparse.phi), each in [0, 1]:
    1 spends it all on the floor, 0 all by need."""
    seeds: int | None = None
    """Override the number of seeds (>= 1)."""
    seed_offset: int | None = None
    """The first seed (default 0): `--seed-offset 8 --seeds 4` runs seeds 8-11, to add seeds to a finished study in a
    new --out (then `sparse-rl report OLD --include NEW`)."""
    total_steps: int | None = None
    """Override env steps per run (warm-up included); shorthand for --config.total-steps."""
    checkpoint_every: int | None = None
    """Chunks between checkpoints (0: none)."""
    config: TrainConfig = TrainConfig()
    """Every field of the per-run training config; the defaults shown are the preset's (the quick preset's unless
    --preset is given; with --resume, the sweep's own)."""


@dataclasses.dataclass(frozen=True)
class TrainArgs(RunOptions):
    """Train one configuration over several seeds (a one-cell sweep) and write its results."""

    out: Path = Path("results/train")
    """Results directory."""
    seeds: int = 3
    """Number of seeds (>= 1)."""
    config: TrainConfig = TrainConfig()
    """The training configuration."""
    resume: bool = False
    """Continue an interrupted run in `out`; give the same options as when it started."""
    overwrite: bool = False
    """Delete the earlier results in `out` first (only a directory that holds a sweep's config.json)."""


@dataclasses.dataclass(frozen=True)
class ReportArgs:
    """Rebuild summary.csv, summary.md and the figures of a results directory."""

    results: tyro.conf.Positional[Path]
    """The results directory of a sweep; the report is written there (a new directory: the report of
    --include alone)."""
    include: tuple[Path, ...] = ()
    """Results directories whose runs join the report too: more seeds of the same grid (run with
    --seed-offset), or sweeps of other grids that share no cell (a study's other tasks). A run id found
    twice, or one cell from two grids, is refused."""


@dataclasses.dataclass(frozen=True)
class EvalArgs:
    """Print the mean and std of one run's deterministic return, from its latest checkpoint, over fresh episodes."""

    results: tyro.conf.Positional[Path]
    """The results directory of a sweep."""
    run: str
    """The run id: its folder under runs/, e.g. inverted_pendulum-sac-s0.9-tar-seed0."""
    episodes: int = 10
    """Evaluation episodes (>= 1), each to its end."""
    seed: int = 0
    """Seed of the episodes' initial states."""
    compile_cache: str = "auto"
    """XLA's persistent compilation cache, as for `sweep`."""


@dataclasses.dataclass(frozen=True)
class RenderArgs:
    """Write one deterministic rollout of a run's policy (latest checkpoint) as brax's HTML viewer; brax envs only."""

    results: tyro.conf.Positional[Path]
    """The results directory of a sweep."""
    run: str
    """The run id: its folder under runs/, e.g. inverted_pendulum-sac-s0.9-tar-seed0."""
    out: Path | None = None
    """The HTML file to write (default: <run>.html in the working directory); it loads brax's viewer from its CDN."""
    steps: int | None = None
    """At most this many actions (default: a whole episode); the rollout stops where the episode ends."""
    seed: int = 0
    """Seed of the episode's initial state."""
    compile_cache: str = "auto"
    """XLA's persistent compilation cache, as for `sweep`."""


def _flag(argv: list[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in ``argv`` (the last one wins)."""
    value = None
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            value = argv[i + 1]
        elif a.startswith(name + "="):
            value = a.split("=", 1)[1]
    return value


def command_type(argv: list[str]) -> Any:
    """The command-line type, with ``sweep``'s ``--config.*`` defaults taken from the sweep it starts from.

    That is the preset named by ``--preset`` (default ``quick``), or with
    ``--resume`` and no ``--preset``, the sweep in ``--out`` (when its
    ``config.json`` reads); so ``--help`` shows the values a run would use.
    """
    from agents.experiments import sweep

    train = sweep.PRESETS["quick"].train
    preset = _flag(argv, "--preset")
    if preset in sweep.PRESETS:
        train = sweep.PRESETS[preset].train
    elif preset is None and "--resume" in argv:
        out = _flag(argv, "--out")
        try:
            train = sweep.stored_config(Path(out if out is not None else "results/quick")).train
        except (OSError, ValueError, TypeError):
            pass  # the sweep command reports what is wrong with it
    return (
        Annotated[SweepArgs, tyro.conf.subcommand("sweep", default=SweepArgs(config=train))]
        | Annotated[TrainArgs, tyro.conf.subcommand("train")]
        | Annotated[ReportArgs, tyro.conf.subcommand("report")]
        | Annotated[EvalArgs, tyro.conf.subcommand("eval")]
        | Annotated[RenderArgs, tyro.conf.subcommand("render")]
    )


# The sweep's list options: envs, algos, methods and the grid axes.
AXES = ("envs", "algos", "methods", *(axis.name for axis in GRID_AXES))


def resolve_sweep(args: SweepArgs, base=None):
    """The ``SweepConfig`` of the preset (or of ``base``, when resuming without one) with the overrides applied.

    ``args.config`` is the whole train config; :func:`main` parses it with the
    preset's (or ``base``'s) as defaults.
    """
    from agents.experiments.sweep import PRESETS

    if args.preset is not None and args.preset not in PRESETS:
        fail("preset", args.preset, ", ".join(PRESETS))
    cfg = PRESETS[args.preset or "quick"] if args.preset is not None or base is None else base
    overrides = {
        k: getattr(args, k) for k in (*AXES, "seeds", "seed_offset", "checkpoint_every") if getattr(args, k) is not None
    }
    train = args.config
    # Each cell sets these from the grid, so a --config value for them would be ignored: refuse it.
    for field, flag, ours, base_value in (
        ("env", "--envs", train.env, cfg.train.env),
        ("algo", "--algos", train.algo, cfg.train.algo),
        ("sparse.method", "--methods", train.sparse.method, cfg.train.sparse.method),
        ("sparse.sparsity", "--sparsities", train.sparse.sparsity, cfg.train.sparse.sparsity),
    ):
        if ours != base_value:
            raise ValueError(f"--config.{field.replace('_', '-')} is set per cell by the grid; use {flag} instead.")
    if args.widths is not None and train.hidden != cfg.train.hidden and len(set(train.hidden)) > 1:
        raise ValueError("--widths sets every hidden layer to one width; --config.hidden can only set the depth then.")
    if args.total_steps is not None:
        train = dataclasses.replace(train, total_steps=args.total_steps)
    return dataclasses.replace(cfg, **overrides, train=train)


def execute(command: SweepArgs | TrainArgs | ReportArgs) -> None:
    """Carry out a parsed command (raises ``ValueError`` on bad input before writing anything)."""
    # Long: one branch per command, each a few checks and one call; kept together as the CLI's one dispatcher.
    if isinstance(command, EvalArgs | RenderArgs):
        from agents.experiments import policy
        from sparse_jax.validation import check_int

        # Every check before anything loads or compiles.
        config = policy.run_config(command.results, command.run)
        if isinstance(command, EvalArgs):
            check_int("episodes", command.episodes, minimum=1)
        else:
            policy.check_renderable(config)
            if command.steps is not None:
                check_int("steps", command.steps, minimum=1)
            target = command.out if command.out is not None else Path(f"{command.run}.html")
            if target.is_dir() or (target.parent.exists() and not target.parent.is_dir()):
                fail("out", str(target), "an HTML file path whose folder exists or can be made")
        use_compile_cache(command.compile_cache)
        loaded = policy.load_policy(command.results, command.run)
        trained = f"checkpoint after chunk {loaded.chunk + 1} of {config.num_chunks}"
        if isinstance(command, EvalArgs):
            mean, std = policy.evaluate_policy(loaded, command.episodes, command.seed)
            print(f"{command.run}: deterministic return {mean:.3f} +/- {std:.3f} (std) over {command.episodes} "
                  f"episodes, seed {command.seed} ({trained})")  # fmt: skip
            return
        out = command.out if command.out is not None else Path(f"{command.run}.html")
        html = policy.render_html(loaded, command.steps, command.seed)
        try:
            results.atomic_write_text(out, html)
        except OSError as e:  # bad --out: a plain error, not main's resume hint for an interrupted sweep
            raise ValueError(f"cannot write {str(out)!r}: {e.strerror or e}.") from None
        print(f"{command.run}: one deterministic episode ({trained}) written to {out}")
        return
    from agents.experiments import report, sweep

    if isinstance(command, ReportArgs):
        rows = report.write_report(command.results, include=command.include)
        print((command.results / "summary.md").read_text() if rows else "no runs")
        return
    use_compile_cache(command.compile_cache)
    if isinstance(command, SweepArgs):
        out = command.out if command.out is not None else Path("results") / (command.preset or "quick")
        base = None
        if command.resume:
            sweep.check_output_dir(out, resume=True, overwrite=command.overwrite)
            base = sweep.stored_config(out)
        cfg = resolve_sweep(command, base)
    else:
        c = command.config
        cfg = sweep.SweepConfig(
            envs=(c.env,),
            algos=(c.algo,),
            sparsities=(c.sparse.sparsity,),
            methods=(c.sparse.method,),
            seeds=command.seeds,
            train=c,
        )
        out = command.out
    print(devices_line(), flush=True)
    sweep.run_sweep(
        cfg,
        out,
        resume=command.resume,
        overwrite=command.overwrite,
        show_progress=command.progress,
        num_devices=command.devices,
        log=command.log,
        max_runs_per_batch=getattr(command, "max_runs_per_batch", None),
    )
    import jax

    if jax.process_index() == 0:
        print((Path(out) / "summary.md").read_text())
        print(f"results: {out}")
    else:
        print(f"sparse-rl: process {jax.process_index()} done; process 0 writes the results to {out}")


def devices_line() -> str:
    """The first line of a sweep's output: the JAX backend and its devices (as ``config.json`` records them)."""
    import jax

    devices = jax.devices()
    kinds = sorted({d.device_kind for d in devices})
    return (
        f"sparse-rl: jax {jax.__version__} on {jax.default_backend()} ({', '.join(kinds)}): "
        f"{len(devices)} device(s) {[str(d) for d in devices]}, {jax.process_count()} process(es)"
    )


def compile_cache_dir(value: str, environ: dict[str, str]) -> Path | None:
    """The directory ``--compile-cache value`` means (``None``: no persistent cache).

    >>> compile_cache_dir("off", {}) is None
    True
    >>> compile_cache_dir("auto", {"JAX_COMPILATION_CACHE_DIR": "/c"})
    PosixPath('/c')
    >>> compile_cache_dir("auto", {"XDG_CACHE_HOME": "/x"})
    PosixPath('/x/sparse-rl/jax')
    >>> compile_cache_dir("my/cache", {})
    PosixPath('my/cache')
    """
    if value == "off":
        return None
    if value != "auto":
        if not value.strip():
            fail("compile_cache", value, "a directory, 'auto' or 'off'")
        return Path(value)
    if environ.get("JAX_COMPILATION_CACHE_DIR"):
        return Path(environ["JAX_COMPILATION_CACHE_DIR"])
    base = Path(environ["XDG_CACHE_HOME"]) if environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "sparse-rl" / "jax"


def use_compile_cache(value: str) -> None:
    """Point JAX's persistent compilation cache at ``compile_cache_dir(value)`` (or turn it off)."""
    import jax

    path = compile_cache_dir(value, dict(os.environ))
    jax.config.update("jax_enable_compilation_cache", path is not None)
    if path is not None:
        jax.config.update("jax_compilation_cache_dir", str(path))


class JoinError(RuntimeError):
    """This process could not join its multi-host job."""


def distributed_settings(environ: dict[str, str]) -> dict[str, Any] | None:
    """The ``jax.distributed.initialize`` arguments a launcher's variables ask for; ``None`` for one process.

    ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0), ``JAX_NUM_PROCESSES``
    and ``JAX_PROCESS_ID`` name the job explicitly; under SLURM (more than one
    task) or on a TPU pod slice JAX finds them itself. ``SPARSE_RL_INIT_TIMEOUT``
    bounds the wait for the other processes (seconds, default 300).

    >>> distributed_settings({}) is None
    True
    >>> distributed_settings({"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "2",
    ...                       "JAX_PROCESS_ID": "1", "SPARSE_RL_INIT_TIMEOUT": "30"})
    {'coordinator_address': '10.0.0.1:1234', 'num_processes': 2, 'process_id': 1, 'initialization_timeout': 30}
    """
    tasks = environ.get("SLURM_NTASKS", "1")
    if not tasks.isdigit():
        fail("SLURM_NTASKS", tasks, "an integer >= 1")
    multi = (
        "JAX_COORDINATOR_ADDRESS" in environ
        or int(tasks) > 1
        or len(environ.get("TPU_WORKER_HOSTNAMES", "").split(",")) > 1
    )
    if not multi:
        return None
    settings: dict[str, Any] = {}
    if environ.get("JAX_COORDINATOR_ADDRESS"):
        settings["coordinator_address"] = environ["JAX_COORDINATOR_ADDRESS"]
    for key, name, minimum in (
        ("num_processes", "JAX_NUM_PROCESSES", 1),
        ("process_id", "JAX_PROCESS_ID", 0),
        ("initialization_timeout", "SPARSE_RL_INIT_TIMEOUT", 1),
    ):
        if name in environ:
            try:
                value = int(environ[name])
            except ValueError:
                value = None
            if value is None or value < minimum:
                fail(name, environ[name], f"an integer >= {minimum}")
            settings[key] = value
    if "num_processes" in settings and settings.get("process_id", 0) >= settings["num_processes"]:
        fail("JAX_PROCESS_ID", settings["process_id"], f"0..{settings['num_processes'] - 1} (JAX_NUM_PROCESSES)")
    return settings


def _wait_for_coordinator(address: str, timeout: float, process_id: int) -> None:
    """Return once ``address`` (``host:port``) accepts a TCP connection; :class:`JoinError` after ``timeout`` s."""
    import socket
    import time

    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                return
        except (OSError, ValueError) as e:
            if time.monotonic() >= deadline:
                raise JoinError(
                    f"process {process_id} could not reach the coordinator at {address} within {timeout:g} s "
                    f"({e.__class__.__name__}: {e}); check that process 0 runs, that every process has the same "
                    "JAX_COORDINATOR_ADDRESS, and that the port is open."
                ) from None
            time.sleep(0.5)


def maybe_initialize_distributed(environ: dict[str, str] | None = None) -> None:
    """Join a multi-host job when its launcher set the usual variables (see :func:`distributed_settings`).

    On CPU the processes talk through gloo. A coordinator that does not answer
    within the timeout ends the command with :class:`JoinError` (one line,
    exit code 1) instead of a hang.
    """
    import jax

    settings = distributed_settings(dict(os.environ) if environ is None else environ)
    if settings is None:
        return
    # CPU devices of different processes need a collectives backend; accelerators use their own.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    timeout = settings.setdefault("initialization_timeout", 300)
    if settings.get("process_id", 0) > 0 and "coordinator_address" in settings:
        # XLA ends the process with a stack trace when the coordinator does not answer in time: find out first.
        _wait_for_coordinator(settings["coordinator_address"], timeout, settings["process_id"])
    try:
        jax.distributed.initialize(**settings)
        # gloo sets up its channel between the processes on their first collective and gives the other side
        # only 30 s to join it; do that now, while the processes are in step, rather than at the first
        # checkpoint, when one may still be compiling what the other found in the compilation cache.
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("sparse-rl: every process joined")
    except Exception as e:  # XLA raises several kinds (deadline exceeded, connection refused, ...)
        where = settings.get("coordinator_address", "the address the cluster environment gives")
        who = f"process {settings['process_id']}" if "process_id" in settings else "this process"
        reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise JoinError(
            f"{who} could not join the multi-host job at {where} (timeout {timeout} s): {reason}; check that every "
            "process was started with the same JAX_COORDINATOR_ADDRESS and JAX_NUM_PROCESSES, and that process 0 "
            "is reachable there."
        ) from None


def _recovery_hint(argv: list[str] | None) -> str:
    """What to run once a failed write's cause is fixed: a command that works for that directory.

    A sweep or train run whose ``config.json`` exists continues with
    ``--resume``; one that failed before writing it is started again (from an
    emptied directory, if the failure left anything there); ``report``,
    ``eval`` and ``render`` are run again as they were.
    """
    import shlex

    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args and args[0] in ("sweep", "train", "report", "eval", "render") else "sweep"
    if command not in ("sweep", "train"):
        return f"run again: {shlex.join(['sparse-rl', *args])}"
    default = "results/train" if command == "train" else f"results/{_flag(args, '--preset') or 'quick'}"
    out = _flag(args, "--out") or default
    if not (Path(out) / results.CONFIG_FILE).is_file():
        from agents.experiments.sweep import _entries

        fresh = [a for a in args if a not in ("--resume", "--overwrite")]
        start = shlex.join(["sparse-rl", *fresh])
        return f"remove {shlex.quote(out)} and run again: {start}" if _entries(Path(out)) else f"run again: {start}"
    if command == "train":  # train resumes with the same options
        rest = [a for a in args[1:] if a not in ("--resume", "--overwrite")]
        return "continue with: " + shlex.join(["sparse-rl", "train", *rest, "--resume"])
    return "continue with: " + shlex.join(["sparse-rl", "sweep", "--resume", "--out", out])


def _flag_of(argument: Any) -> str:
    """The command-line flag of a tyro argument (``--config.batch-size``), ``"a value"`` when it has none."""
    flags = getattr(getattr(argument, "lowered", None), "name_or_flags", None) or ()
    return "/".join(flags) or getattr(getattr(argument, "lowered", None), "metavar", None) or "a value"


@contextlib.contextmanager
def _one_line_value_errors() -> Iterator[None]:
    """Turn tyro's boxed errors for a bad value into our one-line ``ValueError``, naming the flag.

    A value of the wrong type (``--config.batch-size abc``), a value outside
    a choice, and a config that refuses its values (``__post_init__``; tyro's
    box would name it ``__tyro-dummy-inner__.config``) all become one line.
    Unknown or missing options keep tyro's own message, which suggests
    close matches. tyro's hook module is marked unstable: without it, its
    boxes are what the user sees.
    """
    try:
        from tyro._errors import BadValue, InstantiationFailure, InvalidChoice, on_parse_error
    except ImportError:
        yield
        return

    def hook(event: Any) -> None:
        if isinstance(event, InstantiationFailure):
            message = " ".join(event.message.split())
            if event.argument is None:  # a config's own check: its message names the field and what is allowed
                raise ValueError(message)
            message = message.split(" Got errors:")[0].rstrip(".")  # tyro's list of every type it tried
            metavar = getattr(getattr(event.argument, "lowered", None), "metavar", None)
            allowed = f"; allowed: {metavar}" if isinstance(metavar, str) else ""
            raise ValueError(f"{_flag_of(event.argument)}: {message}{allowed}.")
        if isinstance(event, InvalidChoice):
            allowed = ", ".join(event.choices)
            raise ValueError(f"{_flag_of(event.argument)} {event.value!r} is not allowed; allowed: {allowed}.")
        if isinstance(event, BadValue):
            got = "no value" if event.offending_value is None else repr(event.offending_value)
            raise ValueError(f"{_flag_of(event.argument)} does not take {got}.")

    with on_parse_error(hook):
        yield


def _renamed_flags(args: list[str]) -> list[str]:
    """``args`` with earlier versions' flags in their new spelling, each with a one-line warning."""
    out = []
    for arg in args:
        new = migrate.renamed_flag(arg)
        if new is not None:
            old, now = arg.partition("=")[0], new.partition("=")[0]
            print(f"sparse-rl: warning: {old} is now {now} (the old spelling will be removed).", file=sys.stderr)
        out.append(arg if new is None else new)
    return out


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``sparse-rl`` console script.

    Exit codes: 2 for bad input (one line naming the value, nothing written),
    1 when writing the results fails midway (one line naming the path; what
    was written stays, and ``--resume`` continues once the cause is fixed),
    128 + the signal number on SIGTERM or Ctrl-C (after any checkpoint being
    written is complete, with the ``--resume`` command).
    """
    from agents.experiments.sweep import SweepInterrupted

    try:
        maybe_initialize_distributed()
        # Config dataclasses validate in __post_init__, so bad values can surface while parsing.
        args = _renamed_flags(list(sys.argv[1:] if argv is None else argv))
        with _one_line_value_errors():
            command = tyro.cli(command_type(args), args=args, prog="sparse-rl")
        execute(command)
    except ValueError as e:
        print(f"sparse-rl: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except JoinError as e:
        print(f"sparse-rl: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        print(
            f"sparse-rl: error: {e.strerror or e}{where}; what was written is kept; once that is fixed, "
            f"{_recovery_hint(argv)}",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    except SweepInterrupted as e:
        print(f"sparse-rl: stopped by {e}; every checkpoint is complete, {_recovery_hint(argv)}", file=sys.stderr)
        raise SystemExit(128 + e.signum) from None


def console_main() -> None:
    """The ``sparse-rl`` console script: :func:`main`, with a prompt exit after a signal stopped a sweep.

    When SIGTERM or Ctrl-C stops a sweep, every checkpoint and results file
    is complete, but the device may still hold queued work of the batch
    being prepared or trained (JAX dispatches it asynchronously), and a
    normal interpreter exit waits for all of it (300 s measured for a batch
    of 6000 runs stopped during preparation). The process then ends at once
    instead, after flushing its output.
    """
    try:
        main()
    except SystemExit as e:
        if isinstance(e.code, int) and e.code > 128:  # 128 + the signal number: stopped at a safe point
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(e.code)
        raise


if __name__ == "__main__":
    console_main()
