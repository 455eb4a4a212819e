"""Aggregate statistics over seeds with stratified-bootstrap confidence intervals (NumPy, host side).

Few-seed RL results need robust aggregates with honest uncertainty (Agarwal et al. 2021, "Deep
RL at the Edge of the Statistical Precipice"). This module implements that paper's
recommendations as its `rliable` library does, in plain NumPy so hjax (`hjax.sweep`'s table and
plots) and the benchmarks do not depend on the optional extra (`tests/test_stats.py` checks it against `rliable` when that is installed):

- `iqm`: interquartile mean, the mean of the middle 50% of runs: `scipy.stats.trim_mean(x,
  0.25)` over the pooled runs (and tasks), which drops `floor(n / 4)` runs at each end.
- `stratified_bootstrap`: resample runs with replacement *within each task* (the strata), the
  same number as observed, `reps` times, and recompute the statistic. With one task this is the
  ordinary bootstrap over seeds.
- `interval_estimates`: point estimate on the data and a percentile confidence interval, the
  `(1 - confidence) / 2` and `(1 + confidence) / 2` quantiles of the bootstrap distribution
  (rliable's default `method="percentile"`).

Every resampling draws from `numpy.random.default_rng(seed)`, so the same call gives the same
interval. Scores have shape `(num_runs, num_tasks, *rest)`; `*rest` (e.g. epochs of a learning
curve) is carried along, and every epoch of a curve uses the same resampled runs.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

Statistic = Callable[[np.ndarray, tuple[int, ...]], np.ndarray]
"""`statistic(scores, axis)` reduces the run and task axes `axis` of `scores`."""


def _pooled(scores: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
    """Move `axis` to the end and merge them into one: (..., pooled runs)."""
    scores = np.asarray(scores, np.float64)
    axis = tuple(a % scores.ndim for a in axis)
    moved = np.moveaxis(scores, axis, range(scores.ndim - len(axis), scores.ndim))
    return moved.reshape(*moved.shape[:moved.ndim - len(axis)], -1)


def iqm(scores: np.ndarray, axis: int | tuple[int, ...] = 0) -> np.ndarray:
    """Interquartile mean over `axis`: sort, drop floor(n/4) values at each end, average the rest."""
    axis = (axis,) if isinstance(axis, int) else tuple(axis)
    x = np.sort(_pooled(scores, axis), axis=-1)
    n = x.shape[-1]
    cut = n // 4
    return x[..., cut:n - cut].mean(axis=-1)


def median(scores: np.ndarray, axis: int | tuple[int, ...] = 0) -> np.ndarray:
    axis = (axis,) if isinstance(axis, int) else tuple(axis)
    return np.median(_pooled(scores, axis), axis=-1)


def mean(scores: np.ndarray, axis: int | tuple[int, ...] = 0) -> np.ndarray:
    axis = (axis,) if isinstance(axis, int) else tuple(axis)
    return _pooled(scores, axis).mean(axis=-1)


STATISTICS: dict[str, Statistic] = {"iqm": iqm, "median": median, "mean": mean}


class Interval(NamedTuple):
    """A point estimate and its confidence interval, each of the statistic's shape."""

    point: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def overlaps(self, other: "Interval") -> np.ndarray:
        """Whether the two intervals share any value (elementwise)."""
        return (self.low <= other.high) & (other.low <= self.high)


def _as_runs_tasks(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]  # one task
    if scores.ndim < 2 or scores.shape[0] < 1:
        raise ValueError(f"scores must have shape (num_runs, num_tasks, ...) with num_runs >= 1, got {scores.shape}")
    return scores


def stratified_bootstrap(scores: np.ndarray, statistic: Statistic, reps: int = 2000,
                         seed: int = 0) -> np.ndarray:
    """`reps` values of `statistic` on resampled scores, shape `(reps, *rest)`.

    `scores`: `(num_runs, num_tasks, *rest)`, or `(num_runs,)` for one task. For each task the
    runs are drawn with replacement independently (stratified by task)."""
    scores = _as_runs_tasks(scores)
    runs, tasks = scores.shape[:2]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, runs, size=(reps, runs, tasks))  # run index per (rep, draw, task)
    task_idx = np.arange(tasks)[None, None, :]
    resampled = scores[idx, task_idx]  # (reps, runs, tasks, *rest)
    return np.asarray(statistic(resampled, (1, 2)))


def interval_estimates(scores: np.ndarray, statistic: Statistic | str = "iqm", reps: int = 2000,
                       confidence: float = 0.95, seed: int = 0) -> Interval:
    """Point estimate of `statistic` over runs and tasks with a percentile stratified-bootstrap CI.

    `scores`: `(num_runs, num_tasks, *rest)` or `(num_runs,)`; results have shape `rest`."""
    if not 0 < confidence < 1:
        raise ValueError(f"invalid confidence={confidence!r}; allowed: a number in (0, 1)")
    stat = STATISTICS[statistic] if isinstance(statistic, str) else statistic
    scores = _as_runs_tasks(scores)
    point = np.asarray(stat(scores, (0, 1)))
    boot = stratified_bootstrap(scores, stat, reps, seed)
    low, high = np.percentile(boot, [50 * (1 - confidence), 50 * (1 + confidence)], axis=0)
    return Interval(point, low, high)


def curve_estimates(curves: np.ndarray, statistic: Statistic | str = "iqm", reps: int = 2000,
                    confidence: float = 0.95, seed: int = 0) -> Interval:
    """Per-point estimates of a learning curve: `curves` is `(num_seeds, num_points)` of one task."""
    curves = np.asarray(curves, np.float64)
    if curves.ndim != 2:
        raise ValueError(f"curves must have shape (num_seeds, num_points), got {curves.shape}")
    return interval_estimates(curves[:, None, :], statistic, reps, confidence, seed)


def first_reaching(x: np.ndarray, values: np.ndarray, level: float):
    """The first `x` at which `values >= level`, or None if it never does."""
    hits = np.flatnonzero(np.asarray(values) >= level)
    return None if hits.size == 0 else np.asarray(x)[hits[0]].item()


def first_reaching_each(x: np.ndarray, curves: np.ndarray, level: float) -> np.ndarray:
    """Per row of `curves` (`(num_seeds, num_points)`): the first `x` at which the row is `>= level`,
    `inf` for a row that never reaches it (an IQM over seeds is then `inf` when more than a quarter
    of them never do)."""
    curves = np.asarray(curves)
    reached = curves >= level
    first = np.asarray(x, np.float64)[np.argmax(reached, axis=-1)]
    return np.where(reached.any(axis=-1), first, np.inf)


def format_interval(iv: Interval, digits: int = 3) -> str:
    """`point [low, high]` for a scalar interval."""
    return f"{float(iv.point):.{digits}f} [{float(iv.low):.{digits}f}, {float(iv.high):.{digits}f}]"


__all__ = ["Interval", "STATISTICS", "curve_estimates", "first_reaching", "first_reaching_each", "format_interval",
           "interval_estimates", "iqm", "mean", "median", "stratified_bootstrap"]
