"""`Result` (what `hjax.train` returns), `summary`, and the finite checks between chunks.

Host side; nothing here is jittable. A run directory stands in for a `Result` wherever only the
config and the metrics are needed (`summary`, `hjax.plot`, `hjax.diagnose`): see `as_run`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import numpy as np

from hjax import runs
from hjax.runs import run_repr
from hjax.config import Config
from hjax.counter import Counter, to_int
from hjax.step import METRIC_NAMES, SAC_METRIC_NAMES, Trainer, TrainerState, make_trainer


class NonFiniteError(FloatingPointError):
    """A loss, Q value, parameter or metric went NaN/inf; `.metrics` holds the history so far."""

    def __init__(self, message: str, metrics: dict[str, np.ndarray]):
        super().__init__(message)
        self.metrics = metrics


@dataclasses.dataclass(frozen=True, repr=False)
class Result:
    """What `hjax.train` returns. With `num_seeds`, every array has a leading seed axis.

    Fields:
      config: the resolved `Config` that was trained (`data_shards` filled in).
      state: the final `TrainerState` (learner, normalisers, buffer, key, counters).
      metrics: per-epoch metrics, name -> (num_epochs,) or (num_seeds, num_epochs); the counters
        `env_steps` and `grad_steps` are uint64 and count per seed.
      num_seeds: the number of seeds trained at once under vmap, or None for one seed.
      compile_seconds: wall seconds to build, compile and initialise before the first chunk.
      run_seconds: wall seconds spent in the compiled chunks (host transfers included).
      q_bounds: the interval Q targets are clipped to; Q values far outside it signal trouble.
      run_dir: where config, metrics and checkpoints were written, or None.

    Also: `params` (the final parameters), `seed_state(i)`, `policy(seed_index)`, and
    `hjax.summary(result)`, `hjax.plot(result)`, `hjax.diagnose(result)`,
    `hjax.evaluate(result)`, all of which take the run directory as well.
    """

    config: Config
    state: TrainerState
    metrics: dict[str, np.ndarray]
    num_seeds: int | None
    compile_seconds: float
    run_seconds: float
    q_bounds: tuple[float, float]
    run_dir: Path | None = None
    trainer: Trainer | None = dataclasses.field(default=None, compare=False)
    """The `make_trainer(config)` the run used (built once per `train` call), reused by `policy`."""

    def __repr__(self) -> str:
        return run_repr("Result", self.config, self.num_seeds, self.metrics, self.run_dir)

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
        return select_seed(self.state, self.num_seeds, i)

    def policy(self, seed_index: int | None = None) -> Callable[[Mapping[str, jax.Array]], jax.Array]:
        """A jitted deterministic `policy(obs) -> action` with the normalisers applied."""
        state = select_seed(self.state, self.num_seeds, seed_index or 0)
        trainer = self.trainer or make_trainer(self.config)
        return jax.jit(lambda obs: trainer.policy(state, obs))


def select_seed(state: Any, num_seeds: int | None, seed_index: int = 0, field: str = "seed_index") -> Any:
    """Seed `seed_index` of a state with a leading seed axis (`num_seeds` set); the state itself
    for a single-seed run (where only 0 is allowed). Raises `ValueError` naming `field`."""
    limit = num_seeds or 1
    if isinstance(seed_index, bool) or not isinstance(seed_index, (int, np.integer)) or not 0 <= seed_index < limit:
        raise ValueError(f"invalid {field}={seed_index!r}; allowed: an integer with 0 <= {field} < {limit}"
                         + ("" if num_seeds else " (a single-seed run)"))
    if num_seeds is None:
        return state
    return jax.tree.map(lambda x: x[seed_index], state)


def as_run(result_or_run_dir: Any, caller: str) -> Any:
    """A `Result` as it is, or a run directory read into a `runs.RunRecord` (config, metrics,
    num_seeds, q_bounds, run_dir); `TypeError` naming `caller` for anything else."""
    if isinstance(result_or_run_dir, (str, os.PathLike)):
        return runs.read_run(result_or_run_dir)
    if all(hasattr(result_or_run_dir, name) for name in ("config", "metrics")):
        return result_or_run_dir
    raise TypeError(f"{caller}: expected a hjax.Result or a run directory path, got "
                    f"{type(result_or_run_dir).__name__}")


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


def summary(result_or_run_dir: Any) -> str:
    """A few lines describing a finished run: a `Result` or a run directory (host side).

    Env steps are per seed (each seed of a multi-seed run plays them all), as in the metrics and
    the progress line; the timings need a `Result` (a run directory keeps none)."""
    run = as_run(result_or_run_dir, "summary(result_or_run_dir)")
    m = run.metrics
    last = lambda k: float(np.mean(m[k][..., -1]))  # noqa: E731
    steps = int(np.max(m["env_steps"][..., -1]))
    seeds = run.num_seeds or 1
    text = (f"{run.config.env} her={run.config.her_strategy}: eval success {last('eval/success_rate'):.3f}, "
            f"final distance {last('eval/final_distance'):.3f}, train success {last('train/success_rate'):.3f} "
            f"after {steps} env steps" + (f" per seed ({seeds} seeds)" if run.num_seeds else ""))
    run_seconds = getattr(run, "run_seconds", None)
    if run_seconds is not None:
        rate = steps / max(run_seconds, 1e-9)
        text += (f"; compile {run.compile_seconds:.1f}s, run {run_seconds:.1f}s ({rate:.3g} env steps/s"
                 + (f" per seed, {rate * seeds:.3g} over all {seeds}" if run.num_seeds else "") + ")")
    return text
