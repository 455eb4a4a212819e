"""`train`: the host loop that runs the fused step of `hjax.trainer` in compiled chunks.

Not jittable. Between chunks it moves the metrics to the host (the only sync of a chunk), checks
them for NaN/inf, writes the run directory (`hjax.runs`), reports progress (`hjax.progress`) and
turns SIGINT/SIGTERM into a clean stop at a chunk boundary. Compiled programs are cached per
process, keyed by everything but the seed and the run length.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import numpy as np

from hjax import distributed, program_cache, runs, sharding
from hjax.config import Config
from hjax.counter import Counter, to_int
from hjax.diagnosis import diagnose_metrics
from hjax.memory import check_fits
from hjax.plot import plot
from hjax.progress import Progress, resolve_mode
from hjax.trainer import (METRIC_NAMES, SAC_METRIC_NAMES, TrainerState, metric_names, make_trainer,
                          q_target_bounds, seed_keys)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT (Ctrl-C) or SIGTERM at a chunk boundary, after checkpointing."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


class _StopRequests:
    """While training, SIGINT/SIGTERM ask to stop at the end of the current chunk (so no
    checkpoint or CSV write is ever cut in half); a second SIGINT aborts at once. Host side;
    only installed in the main thread, where Python delivers signals."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopRequests":
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


class NonFiniteError(FloatingPointError):
    """A loss, Q value, parameter or metric went NaN/inf; `.metrics` holds the history so far."""

    def __init__(self, message: str, metrics: dict[str, np.ndarray]):
        super().__init__(message)
        self.metrics = metrics



@dataclasses.dataclass(frozen=True)
class Result:
    """What `train` returns. With `num_seeds`, every array has a leading seed axis."""

    config: Config
    state: TrainerState
    metrics: dict[str, np.ndarray]
    """Per-epoch metrics, shape (num_epochs,) or (num_seeds, num_epochs); counters are uint64."""
    num_seeds: int | None
    compile_seconds: float
    run_seconds: float
    q_bounds: tuple[float, float]
    """The interval Q targets are clipped to; Q values far outside it signal trouble."""
    run_dir: Path | None = None
    """Where config, metrics and checkpoints were written, if anywhere."""

    @property
    def params(self) -> dict:
        """The learner's parameters in the final state: 'actor', 'critic', 'target_actor' and
        'target_critic' (SAC has no target actor)."""
        learner = self.state.learner
        return {f.name.removesuffix("_params"): getattr(learner, f.name)
                for f in dataclasses.fields(learner) if f.name.endswith("_params")}

    def seed_state(self, i: int) -> TrainerState:
        """The final state of seed index `i` of a multi-seed run."""
        if self.num_seeds is None:
            raise ValueError("seed_state(i) needs a run with num_seeds; this one has a single seed")
        return jax.tree.map(lambda x: x[i], self.state)

    def policy(self, seed_index: int | None = None) -> Callable[[Mapping[str, jax.Array]], jax.Array]:
        """A jitted deterministic `policy(obs) -> action` with the normalisers applied."""
        state = self.state if self.num_seeds is None else self.seed_state(seed_index or 0)
        trainer = make_trainer(self.config)
        return jax.jit(lambda obs: trainer.policy(state, obs))


def metrics_to_host(metrics: dict) -> dict[str, np.ndarray]:
    """Host side, not jittable: device arrays to NumPy; counters to exact uint64."""
    host = jax.device_get(metrics)
    return {k: (to_int(v) if isinstance(v, Counter) else np.asarray(v)) for k, v in host.items()}


def check_finite(metrics: dict[str, np.ndarray], first_epoch: int, seeded: bool) -> str | None:
    """Host side: a message naming the first epoch and metric that is NaN/inf, or None."""
    names = [n for n in METRIC_NAMES + SAC_METRIC_NAMES if n in metrics]
    bad = {n: ~np.isfinite(metrics[n]) for n in names}
    num_epochs = metrics[names[0]].shape[-1]
    for e in range(num_epochs):
        for n in names:
            column = bad[n][..., e]
            if column.any():
                where = ""
                if seeded:
                    where = f" (seed index {int(np.argmax(column))})"
                value = metrics[n][..., e].reshape(-1)[int(np.argmax(column.reshape(-1)))]
                return (f"non-finite {n} = {value} at epoch {first_epoch + e}{where}; training stopped at "
                        f"the end of the chunk. Lower the learning rates, check the env for NaN/inf, or "
                        f"set env_kwargs/obs_clip to keep inputs bounded.")
    return None


ProgressFn = Callable[[int, dict[str, float]], None]


def train(config: Config, num_seeds: int | None = None, progress: ProgressFn | None = None, *,
          run_dir: str | Path | None = None, resume: str | Path | None = None,
          checkpoint_every: int | None = None, save_buffer: bool = False, tensorboard: bool = False,
          save_episode: bool = False, progress_bar: bool | str = True, verbose: bool = True) -> Result:
    """Train `config` and return a `Result`. Not jittable: this is the host loop.

    Args:
      config: the run.
      num_seeds: train seeds `config.seed + i`, i < num_seeds, at once under `vmap`; every result
        then has a leading seed axis. None trains `config.seed` alone.
      progress: `progress(epoch, metrics)`, called after each compiled chunk with the last epoch's
        metrics (averaged over seeds).
      run_dir: write config.json, metrics.csv, checkpoints, curves.png and diagnosis.json (the
        run's verdict, `hjax.diagnose`) there.
      resume: a run directory to continue from its newest checkpoint (and keep writing to). The
        config must match the saved one except num_epochs/chunk_epochs (a run can be lengthened).
        With the buffer checkpointed, the resumed run ends exactly as an uninterrupted one.
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
    progress_mode = resolve_mode(progress_bar)
    if resume is not None and config.data_shards is None:
        saved_shards = runs.load_config(resume)[0].data_shards
        config = config.replace(data_shards=saved_shards)  # the checkpoint's buffer layout
    config = resolve(config, num_seeds)
    if resume is not None:
        if run_dir is not None and Path(run_dir) != Path(resume):
            raise ValueError(f"resume={resume!r} and run_dir={run_dir!r} differ; a resumed run continues in its own directory")
        run_dir = resume
        saved, saved_seeds = runs.load_config(resume)
        diffs = runs.config_differences(saved, config)
        if diffs:
            raise runs.CheckpointError(f"cannot resume {resume}: the config differs from the saved one in "
                                       + "; ".join(diffs))
        if saved_seeds != num_seeds:
            raise runs.CheckpointError(f"cannot resume {resume}: it was trained with num_seeds={saved_seeds}, "
                                       f"not {num_seeds}")
    if (save_buffer or tensorboard or checkpoint_every or save_episode) and run_dir is None and resume is None:
        raise ValueError("save_buffer, tensorboard, checkpoint_every and save_episode need run_dir (or resume)")
    chunk = config.epochs_per_chunk
    checkpoint_every = max(checkpoint_every or chunk, chunk)
    memory = check_fits(config, num_seeds)  # before anything is allocated or compiled
    if verbose and jax.process_index() == 0:
        print(memory.describe(), flush=True)

    keys = seed_keys(config, num_seeds)
    t0 = time.perf_counter()
    init_fn, compiled, place = _compiled(config, num_seeds, keys)
    state = init_fn(keys)
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
        checkpointer = runs.Checkpointer(run_dir)
        if resume is not None and checkpointer.latest_epoch() is not None:
            start = checkpointer.latest_epoch()
            state, restored, _ = checkpointer.restore(start, state)
            state = place(state)
            if start % chunk or start > config.num_epochs:
                raise runs.CheckpointError(
                    f"cannot resume {resume} at epoch {start} with chunk_epochs={chunk} and num_epochs="
                    f"{config.num_epochs}: set chunk_epochs to a divisor of both")
            history.append(restored)
        if jax.process_index() == 0:  # multi-host: one writer; checkpoints involve every process
            runs.save_config(run_dir, config, num_seeds)
            metrics_writer = runs.MetricsWriter(run_dir, history[0] if history else None, metric_names(config))
            tb_writer = runs.TensorBoardWriter(run_dir) if tensorboard else None

    reporter = None
    if progress_mode != "off" and jax.process_index() == 0:
        reporter = Progress(progress_mode, config, num_seeds, start, compile_seconds,
                            history=history[0] if history else None)
    run_seconds = 0.0
    epoch_done = start
    stop = _StopRequests()
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
                    compile_seconds=compile_seconds, run_seconds=run_seconds, q_bounds=q_target_bounds(config),
                    run_dir=run_dir)
    if run_dir is not None and jax.process_index() == 0:
        diagnosis = diagnose_metrics(config, result.metrics, q_bounds=result.q_bounds)
        diagnosis.write(run_dir)
        plot(result, run_dir / "curves.png", diagnosis=diagnosis)
        if save_episode:
            final = jax.device_get(result.state if num_seeds is None else result.seed_state(0))
            runs.write_episode(config, final, jax.random.PRNGKey(config.seed), runs.default_episode_path(config, run_dir))
    return result


_COMPILED: dict[tuple, tuple[Callable, Any]] = {}
_COMPILED_MAX = 8


def _program_key(config: Config, num_seeds: int | None) -> tuple:
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


def _compiled(config: Config, num_seeds: int | None, keys: jax.Array) -> tuple[Callable, Any, Callable]:
    """Jitted init, the compiled chunk, and a function placing a host state on the devices,
    for this program; compiled once per process (host side).

    Seeds and the number of chunks are inputs, not part of the program, so re-running a config
    with another seed or length (a notebook loop over seeds) reuses the compiled executable.
    `config.data_shards` must be resolved (see `resolve`)."""
    key = _program_key(config, num_seeds)
    if key not in _COMPILED:
        with _gc_paused():
            lay = sharding.layout(config, num_seeds)
            chunk = config.epochs_per_chunk

            def build(mesh=None) -> tuple[Callable, Callable]:
                trainer = make_trainer(config, mesh)
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
    return _COMPILED[key]


def resolve(config: Config, num_seeds: int | None) -> Config:
    """`config` with `data_shards` fixed for this runtime (one per data device when None), so
    the buffer layout, and with it every result, no longer depends on the device count."""
    if config.data_shards is not None:
        sharding.layout(config, num_seeds)  # validates the devices
        return config
    return config.replace(data_shards=sharding.layout(config, num_seeds).data_shards)


def _concat(history: list[dict[str, np.ndarray]], axis: int) -> dict[str, np.ndarray]:
    return {k: np.concatenate([h[k] for h in history], axis=axis) for k in history[0]}


def summary(result: Result) -> str:
    """A few lines describing a finished run (host side)."""
    m = result.metrics
    last = lambda k: float(np.mean(m[k][..., -1]))  # noqa: E731
    steps = int(np.max(m["env_steps"][..., -1]))
    return (f"{result.config.env} her={result.config.her_strategy}: eval success {last('eval/success_rate'):.3f}, "
            f"final distance {last('eval/final_distance'):.3f}, train success {last('train/success_rate'):.3f} "
            f"after {steps} env steps; compile {result.compile_seconds:.1f}s, run {result.run_seconds:.1f}s "
            f"({steps * (result.num_seeds or 1) / max(result.run_seconds, 1e-9):.3g} env steps/s)")
