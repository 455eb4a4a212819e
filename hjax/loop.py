"""`train`: the host loop that runs the pure fused step of `hjax.step` in compiled chunks.

Not jittable. It claims the run directory first (`hjax.rundir`: a used one is refused before
anything compiles), builds `make_trainer(config)` once and hands it to everything that needs it,
then between chunks moves the metrics to the host (the only sync of a chunk), checks them for
NaN/inf, writes the run directory (`hjax.runs`), reports progress (`hjax.progress`) and turns
SIGINT/SIGTERM into a clean stop at a chunk boundary. Compiled programs are cached per process,
keyed by everything but the seed and the run length (`compile_program` hands them out).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from hjax import distributed, program_cache, rundir, runs, sharding
from hjax.config import Config
from hjax.diagnosis import diagnose_metrics
from hjax.loading import default_episode_path, write_episode
from hjax.memory import check_fits
from hjax.plotting import plot
from hjax.progress import Progress, resolve_mode
from hjax.result import NonFiniteError, Result, check_finite, metrics_to_host
from hjax.step import Trainer, metric_names, make_trainer, seed_keys


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT (Ctrl-C) or SIGTERM at a chunk boundary, after checkpointing."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


class StopRequests:
    """While training, SIGINT/SIGTERM ask to stop at the end of the current chunk (so no
    checkpoint or CSV write is ever cut in half); a second SIGINT aborts at once. Host side;
    only installed in the main thread, where Python delivers signals."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            self._restore()
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\n{signal.Signals(signum).name}: stopping at the end of the current chunk "
              "(Ctrl-C again to abort at once)", flush=True)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def __exit__(self, *exc) -> None:
        self._restore()


ProgressFn = Callable[[int, dict[str, float]], None]


def train(config: Config, num_seeds: int | None = None, progress: ProgressFn | None = None, *,
          run_dir: str | Path | None = None, resume: str | Path | None = None,
          checkpoint_every: int | None = None, save_buffer: bool = False, tensorboard: bool = False,
          save_episode: bool = False, progress_bar: bool | str = True, verbose: bool = True,
          overwrite: bool = False, resume_epoch: int | None = None) -> Result:
    """Train `config` and return a `Result`. Not jittable: this is the host loop.

    Args:
      config: the run.
      num_seeds: train seeds `config.seed + i`, i < num_seeds, at once under `vmap`; every result
        then has a leading seed axis. None trains `config.seed` alone.
      progress: `progress(epoch, metrics)`, called after each compiled chunk with the last epoch's
        metrics (averaged over seeds).
      run_dir: write config.json, metrics.csv, checkpoints, curves.png and diagnosis.json (the
        run's verdict, `hjax.diagnose`) there. A directory that holds a run already is refused
        (`RunInUseError`, before anything compiles) unless `overwrite` or `resume` says what to do
        with it; a directory another process is training into is refused too (`hjax.rundir`).
      resume: a run directory to continue from its newest readable checkpoint (and keep writing
        to); a damaged newer checkpoint is named and skipped. The config must match the saved one
        except num_epochs/chunk_epochs (a run can be lengthened). With the buffer checkpointed,
        the resumed run ends exactly as an uninterrupted one.
      resume_epoch: with `resume`, continue from this checkpoint epoch instead; later checkpoints
        are moved to RUN_DIR/checkpoints_set_aside/ (never deleted).
      overwrite: delete the run already in `run_dir` (config, metrics, checkpoints: every file a
        run writes) before training into it.
      checkpoint_every: epochs between checkpoints (rounded up to whole chunks); default: every
        chunk. A final checkpoint is always written.
      save_buffer: include the replay buffer in checkpoints (needed for exact resumption).
      tensorboard: also write TensorBoard event files under run_dir/tensorboard.
      save_episode: at the end, write one deterministic evaluation episode of the final policy
        (seed index 0) to run_dir/episode.html (physics envs) or episode.png.
      progress_bar: report env steps, steps/s and eval success after each chunk: True/"auto" (a
        tqdm bar on a terminal or in a notebook, one plain line per report otherwise), "bar",
        "lines" or False; the HJAX_PROGRESS environment variable overrides "auto" (see
        `hjax.progress`). Either form also prints the first training success and each success
        milestone as it happens, and one line if the run stays silent (`hjax.diagnosis`).
      verbose: print the memory estimate at the start.

    Raises `NonFiniteError` naming the epoch and metric if anything goes NaN/inf (checked at the
    end of every chunk; the last checkpoint is left intact; with run_dir, diagnosis.json says
    `unstable`). Ctrl-C stops after writing nothing half-done; the newest checkpoint stays
    resumable.
    """
    if not isinstance(config, Config):
        raise TypeError(f"train(config): expected hjax.Config, got {type(config).__name__}")
    if num_seeds is not None and (not isinstance(num_seeds, int) or isinstance(num_seeds, bool) or num_seeds < 1):
        raise ValueError(f"invalid num_seeds={num_seeds!r}; allowed: None or an integer >= 1")
    if checkpoint_every is not None and (not isinstance(checkpoint_every, int) or checkpoint_every < 1):
        raise ValueError(f"invalid checkpoint_every={checkpoint_every!r}; allowed: None or an integer >= 1")
    if resume_epoch is not None and (resume is None or isinstance(resume_epoch, bool)
                                     or not isinstance(resume_epoch, int) or resume_epoch < 1):
        raise ValueError(f"invalid resume_epoch={resume_epoch!r}; allowed: None, or with resume an epoch >= 1 "
                         "that has a checkpoint")
    if not isinstance(overwrite, bool):
        raise ValueError(f"invalid overwrite={overwrite!r}; allowed: True or False")
    progress_mode = resolve_mode(progress_bar)
    if resume is not None:
        if run_dir is not None and Path(run_dir) != Path(resume):
            raise ValueError(f"resume={resume!r} and run_dir={run_dir!r} differ; a resumed run continues in its own directory")
        run_dir = resume
    if (save_buffer or tensorboard or checkpoint_every or save_episode) and run_dir is None:
        raise ValueError("save_buffer, tensorboard, checkpoint_every and save_episode need run_dir (or resume)")
    if overwrite and run_dir is None:
        raise ValueError("invalid overwrite=True without run_dir; allowed: overwrite with a run_dir")
    writer = jax.process_index() == 0  # multi-host: one writer; checkpoints involve every process
    claim = None
    if run_dir is not None:  # before anything compiles; nothing of an old run changes unless asked
        claim = rundir.claim(run_dir, resume=resume is not None, overwrite=overwrite, lock=writer)
    try:
        return _train(config, num_seeds, progress, run_dir, resume, checkpoint_every, save_buffer, tensorboard,
                      save_episode, progress_mode, verbose, overwrite, resume_epoch, writer)
    finally:
        if claim is not None:
            claim.release()


def _train(config: Config, num_seeds, progress, run_dir, resume, checkpoint_every, save_buffer, tensorboard,
           save_episode, progress_mode, verbose, overwrite, resume_epoch, writer) -> Result:
    """`train` once the run directory is claimed (see `train`)."""
    if resume is not None:
        saved, saved_seeds = runs.load_config(resume)
        runs.check_env_version(resume, saved)
        if config.data_shards is None:
            config = config.replace(data_shards=saved.data_shards)  # the checkpoint's buffer layout
    config = resolve(config, num_seeds)
    if resume is not None:
        diffs = runs.config_differences(saved, config)
        if diffs:
            raise runs.CheckpointError(f"cannot resume {resume}: the config differs from the saved one in "
                                       + "; ".join(diffs))
        if saved_seeds != num_seeds:
            raise runs.CheckpointError(f"cannot resume {resume}: it was trained with num_seeds={saved_seeds}, "
                                       f"not {num_seeds}")
    chunk = config.epochs_per_chunk
    checkpoint_every = max(checkpoint_every or chunk, chunk)
    lay = sharding.layout(config, num_seeds)
    trainer = make_trainer(config, lay.mesh)  # built once; everything below is handed this one
    memory = check_fits(config, num_seeds, trainer=trainer)  # before anything is allocated or compiled
    if verbose and jax.process_index() == 0:
        print(memory.describe(), flush=True)
    if overwrite and writer and run_dir is not None:
        removed = rundir.remove_run(run_dir)
        if removed and verbose:
            print(f"overwrite: deleted the previous run in {run_dir} ({', '.join(removed)})", flush=True)

    keys = seed_keys(config, num_seeds)
    t0 = time.perf_counter()
    program = _compiled(config, num_seeds, keys, trainer)
    place = program.place
    compiled = program.run_chunk
    state = program.init(keys)
    jax.block_until_ready(state)
    compile_seconds = time.perf_counter() - t0
    distributed.barrier("compiled")  # multi-host: meet before the first collective

    history: list[dict[str, np.ndarray]] = []
    axis = 0 if num_seeds is None else 1
    start = 0
    checkpointer = metrics_writer = tb_writer = None
    if run_dir is not None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        checkpointer = runs.Checkpointer(run_dir, create=True)
        if resume is not None and (checkpointer.epochs() or resume_epoch is not None):
            start, (state, restored, has_buffer) = checkpointer.restore_readable(state, resume_epoch)
            if not has_buffer:
                runs.warn_empty_buffer(resume, start)
            state = place(state)
            restored = runs.complete_history(restored, metric_names(config))  # metrics added since
            if writer:
                for path in checkpointer.set_aside_after(start):
                    print(f"hjax: resuming from epoch {start}: moved the later checkpoint to {path}", flush=True)
            if start % chunk or start > config.num_epochs:
                raise runs.CheckpointError(
                    f"cannot resume {resume} at epoch {start} with chunk_epochs={chunk} and num_epochs="
                    f"{config.num_epochs}: set chunk_epochs to a divisor of both")
            history.append(restored)
        if writer:
            runs.save_config(run_dir, config, num_seeds)
            metrics_writer = runs.MetricsWriter(run_dir, history[0] if history else None, metric_names(config))
            tb_writer = runs.TensorBoardWriter(run_dir) if tensorboard else None

    reporter = None
    if progress_mode != "off" and jax.process_index() == 0:
        reporter = Progress(progress_mode, config, num_seeds, start, compile_seconds,
                            history=history[0] if history else None)
    run_seconds = 0.0
    epoch_done = start
    stop = StopRequests()
    try:
        stop.__enter__()
        for first in range(start, config.num_epochs, chunk):
            t0 = time.perf_counter()
            state, metrics = compiled(state)
            metrics = metrics_to_host(metrics)  # the only host sync of the chunk
            run_seconds += time.perf_counter() - t0
            history.append(metrics)
            # Parameters are covered by the per-epoch params/max_abs metric: no extra transfer.
            message = check_finite(metrics, first, seeded=num_seeds is not None)
            if message is not None:
                if checkpointer is not None:
                    message += f" The last good checkpoint (epoch {checkpointer.latest_epoch()}) is intact."
                if run_dir is not None and jax.process_index() == 0:  # the verdict: unstable
                    diagnose_metrics(config, _concat(history, axis)).write(run_dir)
                raise NonFiniteError(message, _concat(history, axis))
            epoch_done = first + chunk
            if metrics_writer is not None:
                metrics_writer.append(metrics, first)
            if tb_writer is not None:
                tb_writer.append(metrics, first)
            stopping = stop.signum is not None and epoch_done < config.num_epochs
            if checkpointer is not None and (epoch_done % checkpoint_every == 0 or stopping
                                             or epoch_done == config.num_epochs):
                checkpointer.save(epoch_done, state, _concat(history, axis), save_buffer)
            last = {k: float(np.mean(v[..., -1])) for k, v in metrics.items()}
            if reporter is not None:
                reporter.update(epoch_done, last, run_seconds, metrics)
            if progress is not None:
                progress(epoch_done, last)
            if stopping:
                message = f"stopped after epoch {epoch_done} of {config.num_epochs}"
                if checkpointer is not None:
                    checkpointer.wait()
                    message += (f"; checkpoint written. Resume with hjax.train(config, resume={str(run_dir)!r}) "
                                f"or `hjax train --resume {run_dir}`")
                raise TrainingInterrupted(message, stop.signum)
    except KeyboardInterrupt as e:
        if checkpointer is not None and not isinstance(e, TrainingInterrupted):
            checkpointer.wait()
            print(f"\naborted after epoch {epoch_done}; newest complete checkpoint: epoch "
                  f"{checkpointer.latest_epoch()}. Resume with `hjax train --resume {run_dir}`.", flush=True)
        raise
    finally:
        stop.__exit__()
        if reporter is not None:
            reporter.close()
        if checkpointer is not None:
            checkpointer.close()
        if tb_writer is not None:
            tb_writer.close()

    result = Result(config=config, state=state, metrics=_concat(history, axis), num_seeds=num_seeds,
                    compile_seconds=compile_seconds, run_seconds=run_seconds, q_bounds=config.q_target_bounds(),
                    run_dir=run_dir, trainer=trainer)
    if run_dir is not None and jax.process_index() == 0:
        diagnosis = diagnose_metrics(config, result.metrics, q_bounds=result.q_bounds)
        diagnosis.write(run_dir)
        plot(result, run_dir / "curves.png", diagnosis=diagnosis)
        if save_episode:
            final = jax.device_get(result.state if num_seeds is None else result.seed_state(0))
            write_episode(config, final, jax.random.PRNGKey(config.seed), default_episode_path(config, run_dir),
                          trainer=trainer)
    return result


@dataclasses.dataclass(frozen=True)
class Program:
    """A run's compiled programs (what `train` runs; `compile_program` hands them out).

    `init(keys) -> state`, `run_chunk(state) -> (state, metrics)` (one chunk of
    `config.epochs_per_chunk` epochs, donating its input state), `place(host_state)` (a state on
    the program's devices), `config` (resolved: data_shards filled in) and `keys` (the seed keys).
    """

    config: Config
    num_seeds: int | None
    keys: jax.Array
    init: Callable
    run_chunk: Callable
    place: Callable


def compile_program(config: Config, num_seeds: int | None = None) -> Program:
    """The compiled init and chunk programs `train(config, num_seeds)` would run, for benchmarks
    and tools that drive the chunks themselves. Host side; cached per process as `train`'s are."""
    config = resolve(config, num_seeds)
    keys = seed_keys(config, num_seeds)
    trainer = make_trainer(config, sharding.layout(config, num_seeds).mesh)
    return _compiled(config, num_seeds, keys, trainer)


_COMPILED: dict[tuple, Program] = {}
_COMPILED_MAX = 8


def program_identity(config: Config, num_seeds: int | None) -> tuple:
    """What determines the compiled program: everything but the seed and the run length."""
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    fields["env_kwargs"] = tuple(sorted(config.env_kwargs.items()))
    for name in ("seed", "num_epochs", "chunk_epochs"):
        fields.pop(name)
    env_class = type(config.make_env())  # a re-registered env name is another program
    return tuple(sorted(fields.items())) + (("chunk", config.epochs_per_chunk), ("num_seeds", num_seeds),
                                            ("env_class", env_class))


@contextlib.contextmanager
def _gc_paused():
    """Pause Python's cyclic garbage collector while a program is traced, lowered and compiled (host
    side). Tracing allocates hundreds of thousands of small objects, and the collections they set
    off cost about a fifth of a compile served by the persistent cache (benchmarks/compile_time.py);
    reference counting still frees everything outside cycles, and the collector resumes after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _compiled(config: Config, num_seeds: int | None, keys: jax.Array, trainer: Trainer) -> Program:
    """The `Program` of `config` (resolved, see `resolve`), compiled once per process (host side);
    `trainer` is `make_trainer(config, mesh)` of this run, traced only when the program is not
    cached (in this process or on disk, `hjax.program_cache`).

    Seeds and the number of chunks are inputs, not part of the program, so re-running a config
    with another seed or length (a notebook loop over seeds) reuses the compiled executable."""
    key = program_identity(config, num_seeds)
    if key not in _COMPILED:
        with _gc_paused():
            lay = sharding.layout(config, num_seeds)
            chunk = config.epochs_per_chunk

            def build(mesh=None) -> tuple[Callable, Callable]:
                init_fn = trainer.init
                chunk_fn = lambda s: trainer.run_epochs(s, chunk)  # noqa: E731
                if num_seeds is not None:
                    axis_name = "seeds" if lay.seed_devices > 1 else None
                    init_fn = jax.vmap(init_fn, spmd_axis_name=axis_name)
                    chunk_fn = jax.vmap(chunk_fn, spmd_axis_name=axis_name)
                return init_fn, chunk_fn

            if lay.mesh is None:
                # Exported once (trace + lower), then kept on disk with the compile cache so a
                # later process skips tracing; every run compiles the exported module.
                programs, _ = program_cache.programs_for(key, dict(key)["env_class"], build, keys)
                init_jit, compiled = programs.compile()
                place = lambda tree: tree  # noqa: E731
            else:
                init_fn, chunk_fn = build(lay.mesh)
                state_shape = jax.eval_shape(init_fn, keys)
                shardings = sharding.state_shardings(state_shape, lay, seeded=num_seeds is not None)
                init_jit = jax.jit(init_fn, out_shardings=shardings)
                chunk_jit = jax.jit(chunk_fn, in_shardings=(shardings,), out_shardings=(shardings, None),
                                    donate_argnums=0)
                place = lambda tree: jax.device_put(tree, shardings)  # noqa: E731
                compiled = chunk_jit.lower(state_shape).compile()
            if len(_COMPILED) >= _COMPILED_MAX:
                _COMPILED.pop(next(iter(_COMPILED)))
            _COMPILED[key] = (init_jit, compiled, place)
    init_jit, compiled, place = _COMPILED[key]
    return Program(config=config, num_seeds=num_seeds, keys=keys, init=init_jit, run_chunk=compiled, place=place)


def resolve(config: Config, num_seeds: int | None) -> Config:
    """`config` with `data_shards` fixed for this runtime (one per data device when None), so
    the buffer layout, and with it every result, no longer depends on the device count."""
    if config.data_shards is not None:
        sharding.layout(config, num_seeds)  # validates the devices
        return config
    return config.replace(data_shards=sharding.layout(config, num_seeds).data_shards)


def _concat(history: list[dict[str, np.ndarray]], axis: int) -> dict[str, np.ndarray]:
    return {k: np.concatenate([h[k] for h in history], axis=axis) for k in history[0]}
