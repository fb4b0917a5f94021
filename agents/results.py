"""The results directory of a sweep: its layout, and atomic writes into it.

Layout (``DIR`` is the results directory)::

    DIR/config.json                 resolved sweep config, package versions, git commit
    DIR/runs/<run_id>/run.json      one run: identity, final status, parameter counts, mask topology
    DIR/runs/<run_id>/curve.jsonl   one line per chunk: env_steps, eval_return, losses, ...
    DIR/summary.csv, summary.md     the table (``agents.report``)
    DIR/figures/*.png               learning curves, final returns, topology (``agents.report``)
    DIR/checkpoints/<batch>/        orbax checkpoints of each batch of runs (agents.plan)

``run_id`` is ``<env>-<algo>-s<sparsity>[-<axis tags>]-<method>-seed<seed>``, with the
sparsity written so that it reads back exactly (so two different sparsities
never share a folder; :func:`sparsity_label`).

Every file is written to a temporary name in the same folder and renamed into
place, so a killed process never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def sparsity_label(sparsity: float) -> str:
    """``sparsity`` as it appears in run and group names: injective on floats.

    The short ``:g`` form (as earlier versions wrote it) where it reads back
    as the same float, else the exact ``repr``; either way the label reads
    back as exactly one float, so two sparsities never share a name.

    >>> sparsity_label(0.9), sparsity_label(0.9000001), sparsity_label(0), sparsity_label(0.12345678)
    ('0.9', '0.9000001', '0', '0.12345678')
    """
    short = f"{float(sparsity):g}"
    return short if float(short) == float(sparsity) else repr(float(sparsity))


def run_id(env: str, algo: str, sparsity: float, method: str, seed: int, tags: tuple[str, ...] = ()) -> str:
    """The folder name of one run, e.g. ``inverted_pendulum-sac-s0.9-tar-seed0``.

    ``tags`` name the other grid axes of a sweep that sets them (width, base
    score, distribution, rho), e.g. ``hopper-sac-s0.9-w256-snip-global-r0.1-tar-seed0``.
    """
    return "-".join((env, algo, f"s{sparsity_label(sparsity)}", *tags, method, f"seed{seed}"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename).

    Raises:
      OSError: naming ``path`` (not the temporary file), e.g. on a full disk or a read-only folder.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:  # name the file asked for, not the temporary one
        raise OSError(e.errno, e.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600 files; give the usual permissions under the process umask.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror, str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


class DamagedFile(ValueError):
    """A results file that does not parse; ``path`` names it and ``reason`` says what is wrong."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{str(path)!r} is damaged ({reason}); delete it or restore it.")
        self.path, self.reason = str(path), reason


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a damaged one raises :class:`DamagedFile` (a ``ValueError``) naming it."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DamagedFile(path, f"not valid JSON: {e}") from None


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSON-lines file (one object per line); a damaged one raises :class:`DamagedFile` naming it."""
    try:
        return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DamagedFile(path, f"not valid JSON lines: {e}") from None
