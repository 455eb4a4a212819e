"""`sweep`: every point of a hyperparameter grid times every seed, trained in one compiled program.

(This module is `hjax.sweeping`, as `train` lives in `hjax.loop` and `plot` in `hjax.plotting`, so
that `hjax.sweep` is always the function.)

    grid = {"her_strategy": ["future", "none"], "replay_k": [2, 4, 8]}
    sweep = hjax.sweep(hjax.Config(env="point_mass"), grid, num_seeds=4)
    sweep.metrics["eval/success_rate"]     # (points, seeds, epochs); sweep.points[i] is point i's values
    sweep.table()                          # per point: IQM and 95% CI of final success, env steps to a target
    hjax.plot(sweep)                       # curves per point with seed bands, and a summary panel
    sweep.point(0)                         # point 0 as a hjax.Result (summary, diagnose, plot, policy)

Only fields that change no array shape and no program structure can be swept
(`hjax.hyper.SWEEPABLE`); any other is refused before anything compiles, as is a value its Config
refuses. The swept values enter the fused step as traced arrays (`hjax.hyper`), one per point,
computed on the host as the Python constants of a lone run are. Seed i of every point starts from
`PRNGKey(config.seed + i)`, as `hjax.train(config_p, num_seeds=N)` does. The program is traced and
compiled once for the whole grid, in one of two layouts (`batch_points`; None, the default,
picks the batched one on a GPU or TPU and the other on a CPU):

- `batch_points=True`: `jit(vmap(vmap(chunk, seeds), points))`, every run of the grid at once,
  for an accelerator that one run leaves mostly idle. On a CPU, where one run already keeps a core
  busy, it ran slower than one point after another (benchmarks/results/sweep_speed_point_mass.md).
  XLA reduces a batched array (a bias gradient over the batch, a norm) in an order that depends on
  the whole batch's shape, so a point agrees with its lone run to float32 rounding, not bit for
  bit (tests/test_sweep.py: within 8 float32 eps of each learner array's largest magnitude after
  two tiny epochs). The same holds between `hjax.train(config, num_seeds=2)` and `num_seeds=6`
  for the same seed; along a long run such differences grow as any rounding difference does in
  RL, so curves agree statistically.
- `batch_points=False`: `jit(lax.map(vmap(chunk, seeds), points))`, the points one after another
  inside the one program, each batched over its seeds exactly as `hjax.train` batches them: every
  point computes the same bits as `hjax.train(config_p, num_seeds=N)` (tested).

A sweep runs on one device (num_devices 1 or None, seed_devices 1).

Host side; not jittable. With `run_dir`, the directory holds:

    RUN_DIR/sweep.json          the base config, the grid, its points, num_seeds, hjax version
    RUN_DIR/checkpoints/E/      the whole grid's state and metric history after epoch E (orbax)
    RUN_DIR/points/NNN/         point NNN as a run directory: config.json, metrics.csv, diagnosis.json
                                (`hjax diagnose`, `hjax plot` and `hjax.summary` read it)
    RUN_DIR/table.json          `sweep.table()`; RUN_DIR/sweep.png: `hjax.plot(sweep)`

claimed and locked as `hjax.train`'s (`hjax.rundir`); `resume=RUN_DIR` continues from the newest
readable checkpoint with the same config (num_epochs and chunk_epochs may grow) and grid.
"""

from __future__ import annotations

import dataclasses
import html
import itertools
import json
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from hjax import hyper, rundir, runs, stats
from hjax.config import Config
from hjax.diagnosis import diagnose_metrics
from hjax.loop import StopRequests, TrainingInterrupted, program_identity, resolve
from hjax.memory import check_fits
from hjax.plotting import plot
from hjax.result import NonFiniteError, Result, check_finite, metrics_to_host
from hjax.step import TrainerState, make_trainer, metric_names, seed_keys
from hjax.version import __version__

SWEEP_FILE, POINTS_DIR = runs.SWEEP_FILE, runs.POINTS_DIR
TABLE_FILE = "table.json"


@dataclasses.dataclass(frozen=True)
class Grid:
    """A validated grid: the swept fields with their values, and every point (the product, the last
    field varying fastest) as its field values and its Config."""

    fields: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]
    points: tuple[dict[str, Any], ...]
    configs: tuple[Config, ...]

    @property
    def traced(self) -> tuple[str, ...]:
        """The resolved scalars the grid traces (`hjax.hyper.traced_names`)."""
        return hyper.traced_names(self.fields)

    def point_values(self) -> dict[str, np.ndarray]:
        """`{scalar: (points,) array}`: what the program takes for the traced scalars."""
        return hyper.point_values(list(self.configs), self.traced)

    def label(self, i: int) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.points[i].items())

    def to_dict(self) -> dict[str, list]:
        return {field: list(values) for field, values in zip(self.fields, self.values)}


def make_grid(config: Config, grid: Mapping[str, Sequence[Any]]) -> Grid:
    """Validate `grid` against `config` (nothing is built but the Configs): every field sweepable,
    every value list non-empty without repeats, every point a valid Config. `ValueError` naming the
    field, its value and what is allowed."""
    allowed = ", ".join(hyper.SWEEPABLE)
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(f"invalid grid={grid!r}; allowed: a non-empty mapping of sweepable Config fields to lists "
                         f"of values, e.g. {{'her_strategy': ['future', 'none']}}; sweepable: {allowed}")
    names = {f.name for f in dataclasses.fields(Config)}
    fields, values = [], []
    for field, vals in grid.items():
        if field not in hyper.SWEEPABLE:
            what = "is not a Config field" if field not in names else "cannot be swept: " + hyper.NOT_SWEEPABLE_WHY.get(
                field, "it changes an array shape or the structure of the compiled program")
            raise ValueError(f"invalid grid field {field}={vals!r}: {field} {what}; allowed (the sweepable fields): "
                             f"{allowed}")
        if isinstance(vals, (str, bytes)) or not isinstance(vals, Sequence) or not len(vals):
            raise ValueError(f"invalid grid field {field}={vals!r}; allowed: a non-empty list of values")
        if len({repr(v) for v in vals}) != len(vals):
            raise ValueError(f"invalid grid field {field}={list(vals)!r}: a value repeats; allowed: distinct values")
        for v in vals:
            try:
                _with(config, field, v)
            except ValueError as e:
                raise ValueError(f"invalid grid value {field}={v!r}: {e}") from None
        fields.append(field)
        values.append(tuple(vals))
    points = tuple(dict(zip(fields, combo)) for combo in itertools.product(*values))
    configs = []
    for point in points:
        try:
            point_config = config
            for field, v in point.items():
                point_config = _with(point_config, field, v)
            configs.append(point_config)
        except ValueError as e:
            raise ValueError(f"invalid grid point {point!r}: {e}") from None
    return Grid(fields=tuple(fields), values=tuple(values), points=points, configs=tuple(configs))


def _with(config: Config, field: str, value: Any) -> Config:
    """`config` with the sweepable `field` set to `value` (env parameters through env_kwargs)."""
    if field in hyper.ENV_FIELDS:
        return config.replace(env_kwargs={**config.env_kwargs, field: value})
    return config.replace(**{field: value})


@dataclasses.dataclass(frozen=True, repr=False)
class SweepResult:
    """What `hjax.sweep` returns. Every metric is `(points, seeds, epochs)`; the state has leading
    `(points, seeds)` axes.

    Fields:
      config: the base Config (resolved); `grid.configs[i]` is point i's.
      grid: the validated `Grid` (`points`: each point's field values).
      num_seeds: seeds per point.
      metrics: per-epoch metrics, name -> (points, seeds, epochs).
      state: the final `TrainerState` of every run.
      compile_seconds, run_seconds: building and compiling the one program; running its chunks.
      run_dir: where the sweep was written, or None.
    """

    config: Config
    grid: Grid
    num_seeds: int
    metrics: dict[str, np.ndarray]
    state: TrainerState | None
    compile_seconds: float
    run_seconds: float
    run_dir: Path | None = None

    @property
    def points(self) -> tuple[dict[str, Any], ...]:
        return self.grid.points

    def point(self, i: int) -> Result:
        """Point `i` as a `hjax.Result` of `num_seeds` seeds (for `summary`, `diagnose`, `plot`,
        `policy`); its timings are the whole sweep's."""
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < len(self.points):
            raise ValueError(f"invalid point={i!r}; allowed: an integer with 0 <= point < {len(self.points)}")
        config = self.grid.configs[i]
        state = None if self.state is None else jax.tree.map(lambda x: x[i], self.state)
        return Result(config=config, state=state, metrics={k: v[i] for k, v in self.metrics.items()},
                      num_seeds=self.num_seeds, compile_seconds=self.compile_seconds, run_seconds=self.run_seconds,
                      q_bounds=config.q_target_bounds(), run_dir=None if self.run_dir is None else point_dir(
                          self.run_dir, i))

    def table(self, target: float = 0.9, reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> "Table":
        """One row per point: its field values, then the IQM over seeds and the 95% stratified-bootstrap
        CI (`hjax.stats`, rliable's protocol) of the final eval success and of the env steps until a
        seed's eval success first reaches `target` (inf: more than a quarter of the seeds never do),
        and how many seeds reach it."""
        if not 0 < target <= 1:
            raise ValueError(f"invalid target={target!r}; allowed: a success rate in (0, 1]")
        success = np.asarray(self.metrics["eval/success_rate"], np.float64)  # (points, seeds, epochs)
        steps = np.asarray(self.metrics["env_steps"], np.float64)[0, 0]
        rows = []
        for i, point in enumerate(self.points):
            final = stats.interval_estimates(success[i, :, -1], "iqm", reps, confidence, seed)
            to_target = stats.first_reaching_each(steps, success[i], target)
            with np.errstate(invalid="ignore"):  # quantiles between two infs are NaN: read as inf below
                reach = stats.interval_estimates(to_target, "iqm", reps, confidence, seed)
            reach = stats.Interval(*(np.where(np.isnan(v), np.inf, v) for v in reach))  # inf - inf in a quantile
            rows.append({"point": i, **point,
                         "final_success_iqm": float(final.point), "final_success_low": float(final.low),
                         "final_success_high": float(final.high),
                         "steps_to_target_iqm": float(reach.point), "steps_to_target_low": float(reach.low),
                         "steps_to_target_high": float(reach.high),
                         "seeds_reaching_target": int(np.isfinite(to_target).sum()), "seeds": self.num_seeds})
        return Table(rows, target=target, confidence=confidence)

    def __repr__(self) -> str:
        epochs = np.shape(self.metrics["env_steps"])[-1] if self.metrics else 0
        return (f"SweepResult(env={self.config.env!r}, algorithm={self.config.algorithm!r}, grid={self.grid.to_dict()!r}, "
                f"points={len(self.points)}, seeds={self.num_seeds}, epochs={epochs}/{self.config.num_epochs}, "
                f"run_dir={None if self.run_dir is None else str(self.run_dir)!r})")


class Table(list):
    """`SweepResult.table()`: a list of dicts (one per point), shown as a table by `print` and, in
    a notebook, as HTML (`pandas.DataFrame(table)` takes it as it is)."""

    def __init__(self, rows: list[dict[str, Any]], target: float, confidence: float):
        super().__init__(rows)
        self.target = target
        self.confidence = confidence

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        fields = [k for k in self[0] if k not in _TABLE_COLUMNS] if self else []
        level = f"{round(100 * self.confidence)}%"
        headers = ["point", *fields, f"final success IQM [{level} CI]",
                   f"env steps to {self.target:g} IQM [{level} CI]", "seeds reaching"]
        steps = lambda v: "never" if not np.isfinite(v) else f"{v:,.0f}"  # noqa: E731
        rows = [[str(r["point"]), *(str(r[f]) for f in fields),
                 f"{r['final_success_iqm']:.3f} [{r['final_success_low']:.3f}, {r['final_success_high']:.3f}]",
                 f"{steps(r['steps_to_target_iqm'])} [{steps(r['steps_to_target_low'])}, "
                 f"{steps(r['steps_to_target_high'])}]",
                 f"{r['seeds_reaching_target']}/{r['seeds']}"] for r in self]
        return headers, rows

    def __str__(self) -> str:
        headers, rows = self._cells()
        widths = [max(len(c) for c in column) for column in zip(headers, *rows)]
        line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
        return "\n".join([line(headers)] + [line(r) for r in rows])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        headers, rows = self._cells()
        cells = lambda tag, row: "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in row)  # noqa: E731
        return ("<table><thead><tr>" + cells("th", headers) + "</tr></thead><tbody>"
                + "".join(f"<tr>{cells('td', r)}</tr>" for r in rows) + "</tbody></table>")


_TABLE_COLUMNS = ("point", "final_success_iqm", "final_success_low", "final_success_high", "steps_to_target_iqm",
                  "steps_to_target_low", "steps_to_target_high", "seeds_reaching_target", "seeds")


def point_dir(run_dir: str | Path, i: int) -> Path:
    """Point `i`'s run directory inside a sweep's."""
    return Path(run_dir) / POINTS_DIR / f"{i:03d}"


def sweep(config: Config, grid: Mapping[str, Sequence[Any]], num_seeds: int = 1,
          progress: Callable[[int, dict[str, np.ndarray]], None] | None = None, *,
          run_dir: str | Path | None = None, resume: str | Path | None = None, overwrite: bool = False,
          checkpoint_every: int | None = None, save_buffer: bool = False, progress_bar: bool = True,
          verbose: bool = True, batch_points: bool | None = None) -> SweepResult:
    """Train every point of `grid` (a mapping of sweepable Config fields to lists of values, their
    product) times `num_seeds` seeds in one compiled program; return a `SweepResult`. Not jittable.

    Args:
      config: the base run; each point is `config.replace(**point)`.
      grid: e.g. `{"her_strategy": ["future", "none"], "replay_k": [2, 4, 8]}` (6 points). The
        sweepable fields are `hjax.hyper.SWEEPABLE`; others are refused before compiling.
      num_seeds: seeds per point, `config.seed + i` for i < num_seeds (as `hjax.train`'s).
      progress: `progress(epoch, metrics)` after each compiled chunk, with each metric's last epoch
        averaged over seeds, shaped `(points,)`.
      run_dir: write the sweep there (see the module docstring); a used directory is refused unless
        `overwrite` (delete that run) or `resume`.
      resume: a sweep directory to continue from its newest readable checkpoint; the config must
        match the saved one but for num_epochs/chunk_epochs, and the grid and num_seeds must too.
      checkpoint_every: epochs between checkpoints (rounded up to whole chunks); default every chunk.
      save_buffer: include the replay buffers in checkpoints (for an exact resume).
      progress_bar: print one line per chunk (env steps, steps/s, eval success per point).
      verbose: print the memory estimate at the start.
      batch_points: True: vmap over the grid points (each point equals its lone `hjax.train` run
        to float32 rounding); False: run them one after another inside the one program (each point
        bit-identical to its lone run); None: True on a GPU or TPU, False on a CPU. See the module
        docstring.

    Raises `ValueError` for a bad grid or argument, `hjax.memory.MemoryPlanError` when the grid does
    not fit (naming the largest grid that does), both before anything compiles; `NonFiniteError`
    naming the point, seed and epoch when a metric goes NaN/inf.
    """
    if not isinstance(config, Config):
        raise TypeError(f"sweep(config, grid): expected hjax.Config, got {type(config).__name__}")
    if isinstance(num_seeds, bool) or not isinstance(num_seeds, int) or num_seeds < 1:
        raise ValueError(f"invalid num_seeds={num_seeds!r}; allowed: an integer >= 1")
    if checkpoint_every is not None and (isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int)
                                         or checkpoint_every < 1):
        raise ValueError(f"invalid checkpoint_every={checkpoint_every!r}; allowed: None or an integer >= 1")
    if batch_points is not None and not isinstance(batch_points, bool):
        raise ValueError(f"invalid batch_points={batch_points!r}; allowed: None (batched on a GPU or TPU), True or "
                         "False")
    if batch_points is None:
        batch_points = jax.default_backend() != "cpu"
    if config.seed_devices != 1 or config.num_devices not in (None, 1):
        raise ValueError(f"invalid num_devices={config.num_devices!r}, seed_devices={config.seed_devices!r} for a sweep; "
                         "allowed: num_devices None or 1 and seed_devices 1 (a sweep runs on one device for now)")
    if resume is not None:
        if run_dir is not None and Path(run_dir) != Path(resume):
            raise ValueError(f"resume={resume!r} and run_dir={run_dir!r} differ; a resumed sweep continues in its own "
                             "directory")
        run_dir = resume
    if (save_buffer or checkpoint_every) and run_dir is None:
        raise ValueError("save_buffer and checkpoint_every need run_dir (or resume)")
    if overwrite and run_dir is None:
        raise ValueError("invalid overwrite=True without run_dir; allowed: overwrite with a run_dir")
    config = resolve(config.replace(num_devices=1), num_seeds)
    checked = make_grid(config, grid)  # before the directory is claimed or anything compiles
    if resume is not None:
        check_resumable(resume, config, checked, num_seeds)
    claim = None if run_dir is None else rundir.claim(run_dir, resume=resume is not None, overwrite=overwrite,
                                                       command="sweep")
    try:
        return _sweep(config, checked, num_seeds, progress, None if run_dir is None else Path(run_dir),
                      resume is not None, overwrite, checkpoint_every, save_buffer, progress_bar, verbose,
                      batch_points)
    finally:
        if claim is not None:
            claim.release()


def save_sweep(run_dir: Path, config: Config, grid: Grid, num_seeds: int) -> None:
    """RUN_DIR/sweep.json: the base config, the grid and its points, num_seeds and the versions."""
    payload = {"config": config.to_dict(), "grid": grid.to_dict(), "points": list(grid.points), "num_seeds": num_seeds,
               "hjax_version": __version__, "checkpoint_format": runs.CHECKPOINT_FORMAT,
               "env_version": runs.env_version(config.env)}
    tmp = run_dir / (SWEEP_FILE + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(run_dir / SWEEP_FILE)


def load_sweep(run_dir: str | Path) -> tuple[Config, dict[str, list], int]:
    """`(base config, grid, num_seeds)` a sweep directory was created with."""
    path = Path(run_dir) / SWEEP_FILE
    if not path.is_file():
        raise runs.CheckpointError(f"{run_dir} is not a hjax sweep directory: {SWEEP_FILE} is missing")
    try:
        payload = json.loads(path.read_text())
        runs.check_format(payload.get("checkpoint_format", 1), path)
        fields = payload["config"]
        fields["hidden_sizes"] = tuple(fields["hidden_sizes"])
        return Config(**fields), payload["grid"], payload["num_seeds"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise runs.CheckpointError(f"{path} is corrupt or not a hjax sweep: {e}") from None


def check_resumable(run_dir: str | Path, config: Config, grid: Grid, num_seeds: int) -> None:
    """`CheckpointError` unless the sweep in `run_dir` has this config (but for its length), grid
    and num_seeds."""
    saved, saved_grid, saved_seeds = load_sweep(run_dir)
    runs.check_env_version(run_dir, saved)
    diffs = runs.config_differences(saved, config)
    if saved_grid != json.loads(json.dumps(grid.to_dict())):
        diffs.append(f"grid: {saved_grid!r} -> {grid.to_dict()!r}")
    if saved_seeds != num_seeds:
        diffs.append(f"num_seeds: {saved_seeds!r} -> {num_seeds!r}")
    if diffs:
        raise runs.CheckpointError(f"cannot resume {run_dir}: the sweep differs from the saved one in " + "; ".join(diffs))


@dataclasses.dataclass(frozen=True)
class SweepProgram:
    """The compiled programs of a sweep: `init(keys, values) -> state` and `run_chunk(state, values)
    -> (state, metrics)` (one chunk of `config.epochs_per_chunk` epochs, donating its input state), over
    keys `(points, seeds, 2)` and the traced values `{scalar: (points,)}`."""

    init: Callable
    run_chunk: Callable


_PROGRAMS: dict[tuple, SweepProgram] = {}
_PROGRAMS_MAX = 4


def compile_sweep(config: Config, grid: Grid, num_seeds: int, batch_points: bool = True) -> SweepProgram:
    """Trace and compile the grid's program once (cached per process by everything but the values,
    the seed and the run length). Host side."""
    key = program_identity(config, num_seeds) + (("traced", grid.traced), ("points", len(grid.points)),
                                                 ("batch_points", batch_points))
    if key not in _PROGRAMS:
        chunk = config.epochs_per_chunk

        def init_point(key: jax.Array, values: dict) -> TrainerState:
            return make_trainer(config, traced=values).init(key)

        def chunk_point(state: TrainerState, values: dict):
            return make_trainer(config, traced=values).run_epochs(state, chunk)

        def over_grid(fn: Callable) -> Callable:
            """`fn(x, values)` over `(points, seeds)` of x and `(points,)` of the values."""
            over_seeds = jax.vmap(fn, in_axes=(0, None))
            if batch_points:
                return jax.vmap(over_seeds)
            return lambda x, values: jax.lax.map(lambda args: over_seeds(*args), (x, values))

        init = jax.jit(over_grid(init_point))
        keys, values = _inputs(config, grid, num_seeds)
        state_shape = jax.eval_shape(init, keys, values)
        run_chunk = jax.jit(over_grid(chunk_point), donate_argnums=0).lower(state_shape, values).compile()
        if len(_PROGRAMS) >= _PROGRAMS_MAX:
            _PROGRAMS.pop(next(iter(_PROGRAMS)))
        _PROGRAMS[key] = SweepProgram(init=init, run_chunk=run_chunk)
    return _PROGRAMS[key]


def _inputs(config: Config, grid: Grid, num_seeds: int) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The program's inputs: every point's seed keys (those of `hjax.train(config, num_seeds)`) and
    the traced values."""
    keys = jnp.broadcast_to(seed_keys(config, num_seeds), (len(grid.points), num_seeds, 2))
    return keys, {name: jnp.asarray(v) for name, v in grid.point_values().items()}


def _sweep(config: Config, grid: Grid, num_seeds: int, progress, run_dir: Path | None, resuming: bool,
           overwrite: bool, checkpoint_every: int | None, save_buffer: bool, progress_bar: bool,
           verbose: bool, batch_points: bool) -> SweepResult:
    """`sweep` once the arguments are checked and the directory claimed."""
    num_points = len(grid.points)
    chunk = config.epochs_per_chunk
    checkpoint_every = max(checkpoint_every or chunk, chunk)
    memory = check_fits(config, num_seeds, trainer=make_trainer(config), points=num_points)
    if verbose:
        print(f"sweep of {num_points} points x {num_seeds} seeds: {memory.describe()}", flush=True)
    if overwrite and run_dir is not None:
        rundir.remove_run(run_dir)

    t0 = time.perf_counter()
    program = compile_sweep(config, grid, num_seeds, batch_points)
    keys, values = _inputs(config, grid, num_seeds)
    state = jax.block_until_ready(program.init(keys, values))
    compile_seconds = time.perf_counter() - t0

    history: list[dict[str, np.ndarray]] = []
    start = 0
    checkpointer, writers = None, []
    if run_dir is not None:
        checkpointer = runs.Checkpointer(run_dir, create=True)
        if resuming and checkpointer.epochs():
            start, (state, restored, has_buffer) = checkpointer.restore_readable(state)
            if not has_buffer:
                runs.warn_empty_buffer(run_dir, start)
            restored = runs.complete_history(restored, metric_names(config))
            checkpointer.set_aside_after(start)
            if start % chunk or start > config.num_epochs:
                raise runs.CheckpointError(f"cannot resume {run_dir} at epoch {start} with chunk_epochs={chunk} and "
                                           f"num_epochs={config.num_epochs}: set chunk_epochs to a divisor of both")
            history.append(restored)
        save_sweep(run_dir, config, grid, num_seeds)
        for i, point_config in enumerate(grid.configs):
            path = point_dir(run_dir, i)
            path.mkdir(parents=True, exist_ok=True)
            runs.save_config(path, point_config, num_seeds)
            writers.append(runs.MetricsWriter(path, {k: v[i] for k, v in restored.items()} if history else None,
                                              metric_names(config)))

    run_seconds = 0.0
    stop = StopRequests()
    try:
        stop.__enter__()
        for first in range(start, config.num_epochs, chunk):
            t0 = time.perf_counter()
            state, metrics = program.run_chunk(state, values)
            metrics = metrics_to_host(metrics)  # the only host sync of the chunk
            run_seconds += time.perf_counter() - t0
            history.append(metrics)
            _check_finite(grid, metrics, first)
            done = first + chunk
            for i, writer in enumerate(writers):
                writer.append({k: v[i] for k, v in metrics.items()}, first)
            stopping = stop.signum is not None and done < config.num_epochs
            if checkpointer is not None and (done % checkpoint_every == 0 or stopping or done == config.num_epochs):
                checkpointer.save(done, state, _concat(history), save_buffer)
            last = {k: np.mean(v[..., -1], axis=1) for k, v in metrics.items()}
            if progress_bar:
                success = " ".join(f"{s:.2f}" for s in last["eval/success_rate"])
                print(f"sweep: epoch {done}/{config.num_epochs}, {int(np.max(metrics['env_steps'])):,} env steps per "
                      f"run, {num_points * num_seeds * config.env_steps_per_epoch * chunk / (time.perf_counter() - t0):.3g}"
                      f" env steps/s over {num_points * num_seeds} runs; eval success by point: {success}", flush=True)
            if progress is not None:
                progress(done, last)
            if stopping:
                if checkpointer is not None:
                    checkpointer.wait()
                raise TrainingInterrupted(f"stopped after epoch {done} of {config.num_epochs}; checkpoint written. "
                                          f"Resume with `hjax sweep --resume {run_dir}`", stop.signum)
    finally:
        stop.__exit__()
        if checkpointer is not None:
            checkpointer.close()

    result = SweepResult(config=config, grid=grid, num_seeds=num_seeds, metrics=_concat(history), state=state,
                         compile_seconds=compile_seconds, run_seconds=run_seconds, run_dir=run_dir)
    if run_dir is not None:
        for i in range(num_points):
            point = result.point(i)
            diagnose_metrics(point.config, point.metrics, q_bounds=point.q_bounds).write(point_dir(run_dir, i))
        table = result.table()
        (run_dir / TABLE_FILE).write_text(json.dumps({"target": table.target, "rows": list(table)}, indent=2))
        plot(result, run_dir / "sweep.png")
    return result


def _check_finite(grid: Grid, metrics: dict[str, np.ndarray], first: int) -> None:
    """`NonFiniteError` naming the first point (and its values) with a NaN/inf metric."""
    for i in range(len(grid.points)):
        message = check_finite({k: v[i] for k, v in metrics.items()}, first, seeded=True)
        if message is not None:
            raise NonFiniteError(f"grid point {i} ({grid.label(i)}): {message}", metrics)


def _concat(history: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([h[k] for h in history], axis=-1) for k in history[0]}
