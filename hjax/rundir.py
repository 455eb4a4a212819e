"""Claiming a run directory: one run per directory, never lost by accident. Imports no JAX.

`hjax.train(config, run_dir=D)` (and `hjax train --run-dir D`) first calls `claim(D, ...)`,
before anything compiles:

- `D` holding a run already (any of its files: config.json, metrics.csv, checkpoints/, ...,
  including a crashed run's leftovers) is refused with `RunInUseError`, naming the two ways on:
  `resume=D` / `--resume D` continues it; `overwrite=True` / `--overwrite` deletes that run as a
  whole (every file listed in `RUN_FILES`, checkpoints included; files of other names stay).
- A second process writing to `D` at the same time is refused too: the claim holds an exclusive
  lock on `D/.hjax.lock` (an OS file lock, released when the process ends, even by a crash, so
  a crashed run never blocks its own resumption).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_FILE = ".hjax.lock"
# Every name a run or a sweep writes into its directory (hjax.runs, hjax.loop, hjax.cli, hjax.sweeping).
RUN_FILES = ("config.json", "config.json.tmp", "metrics.csv", "checkpoints", "tensorboard", "curves.png",
             "diagnosis.json", "diagnosis.json.tmp", "episode.html", "episode.png", "compare.png",
             "checkpoints_set_aside", "sweep.json", "sweep.json.tmp", "points", "sweep.png", "table.json")


class RunInUseError(ValueError):
    """The run directory holds another run, or another process is writing to it."""


def run_files(run_dir: str | Path) -> list[str]:
    """The names of `RUN_FILES` present in `run_dir` (empty when it is no run, or missing)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    return [name for name in RUN_FILES if (run_dir / name).exists()]


class Claim:
    """The lock on a run directory for the length of one `train` call (a context manager)."""

    def __init__(self, run_dir: Path, lock: FileLock | None):
        self.run_dir = run_dir
        self._lock = lock

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def check_free(run_dir: str | Path, *, resume: bool, overwrite: bool, cli: bool = False,
               command: str = "train") -> None:
    """Raise `RunInUseError` when `run_dir` holds a run and neither `resume` nor `overwrite` was
    asked (the message names the directory, what it holds, and both ways on, for `command`:
    train or sweep)."""
    if resume and overwrite:
        raise ValueError("invalid overwrite=True with resume; allowed: one of them (resume continues the run, "
                         "overwrite deletes it)" if not cli else
                         "invalid --overwrite with --resume; allowed: one of them (--resume continues the run, "
                         "--overwrite deletes it)")
    present = run_files(run_dir)
    if present and not resume and not overwrite:
        args = "config" if command == "train" else "config, grid"
        ways = (f"continue it with `hjax {command} --resume {run_dir}`, or delete it and start again with "
                f"--overwrite" if cli else
                f"continue it with hjax.{command}({args}, resume={str(run_dir)!r}) (`hjax {command} --resume "
                f"{run_dir}`), or delete it and start again with overwrite=True (--overwrite)")
        raise RunInUseError(f"{run_dir} already holds a run ({', '.join(present)}); nothing was changed. "
                            f"Choose another run directory, {ways}.")


def claim(run_dir: str | Path, *, resume: bool = False, overwrite: bool = False, lock: bool = True,
          command: str = "train") -> Claim:
    """Check `run_dir` is free (see `check_free`), create it and lock it for this process.

    `lock=False` (every process but the first of a multi-host run) checks without locking.
    Nothing is deleted here: `overwrite` only lets a used directory through; the caller deletes
    the old run with `remove_run` once the new one is known to fit (before anything compiles)."""
    run_dir = Path(run_dir)
    check_free(run_dir, resume=resume, overwrite=overwrite, command=command)
    if not lock or (resume and not run_dir.is_dir()):  # nothing to resume: the caller says so
        return Claim(run_dir, None)
    run_dir.mkdir(parents=True, exist_ok=True)
    file_lock = FileLock(str(run_dir / LOCK_FILE))
    try:
        file_lock.acquire(timeout=0)
    except Timeout:
        raise RunInUseError(f"another process is writing to {run_dir} (it holds {run_dir / LOCK_FILE}); wait for it "
                            "to finish or choose another run directory") from None
    return Claim(run_dir, file_lock)


def remove_run(run_dir: str | Path) -> list[str]:
    """Delete the run in `run_dir` (every name in `RUN_FILES`); returns what was deleted."""
    run_dir = Path(run_dir)
    removed = run_files(run_dir)
    for name in removed:
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return removed
