"""Learning-curve plots of a `Result` or a sweep (host side, matplotlib; no pyplot state is touched)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Mapping

import numpy as np
from matplotlib.figure import Figure as _MplFigure


class Figure(_MplFigure):
    """A matplotlib Figure that a notebook shows inline by itself (IPython calls `_repr_png_`), with
    no pyplot state and no `%matplotlib inline` needed."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=90)
        return buffer.getvalue()

from hjax import runs, stats
from hjax.diagnosis import Diagnosis, diagnose

PANELS = (
    ("success rate", ("eval/success_rate", "train/success_rate", "eval/success_any"), (0.0, 1.02)),
    ("distance to goal", ("eval/final_distance", "eval/mean_distance", "train/final_distance"), None),
    ("replay composition", ("replay/relabeled_fraction", "replay/positive_reward_fraction",
                            "replay/positive_reward_fraction_original"), (0.0, 1.02)),
    ("Q values", ("q/mean", "q/min", "q/max"), None),
)


def _band(values: np.ndarray):
    """Median and interquartile band over seeds (a single run has no band)."""
    if values.ndim == 1:
        return values, None, None
    q25, med, q75 = np.percentile(values, [25, 50, 75], axis=0)
    return med, q25, q75


def draw_band(ax, x: np.ndarray, values: np.ndarray, label: str) -> None:
    """One curve on `ax`: the values, or their median with an IQR band when there is a seed axis."""
    med, lo, hi = _band(np.asarray(values, np.float64))
    (line,) = ax.plot(x, med, label=label)
    if lo is not None:
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2)


def finish_axes(ax, title: str, ylim=None) -> None:
    ax.set_title(title)
    ax.set_xlabel("env steps")
    if ylim:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def env_steps_axis(metrics: Mapping[str, np.ndarray]) -> np.ndarray:
    steps = np.asarray(metrics["env_steps"], np.float64)
    return steps if steps.ndim == 1 else steps[0]


MARKS = (("first_success_env_steps", "first success"), ("per_1000_env_steps", "1/1,000"),
         ("per_100_env_steps", "1/100"), ("per_10_env_steps", "1/10"))


def milestone_marks(diagnosis: Diagnosis) -> list[tuple[int, str]]:
    """`(env steps, label)` of the first training success and each success milestone (1 per
    1,000, 100, 10 training episodes; `hjax.diagnosis`); marks at the same step share a label."""
    at: dict[int, list[str]] = {}
    for field, label in MARKS:
        steps = getattr(diagnosis.evidence, field)
        if steps is not None:
            at.setdefault(steps, []).append(label)
    return [(steps, ", ".join(labels)) for steps, labels in sorted(at.items())]


def draw_marks(axes, marks: list[tuple[int, str]]) -> None:
    """A dotted vertical line per mark on every axis, labelled on the first."""
    for ax in axes:
        for steps, _ in marks:
            ax.axvline(steps, color="black", ls=":", lw=0.9, alpha=0.7)
    for i, (steps, label) in enumerate(marks):  # alternate heights, so close marks stay readable
        axes[0].text(steps, 0.6 - 0.2 * (i % 2), label + " ", transform=axes[0].get_xaxis_transform(),
                     rotation=90, ha="right", va="center", fontsize=6.5)


def plot(result, path: str | Path | None = None, title: str | None = None,
         diagnosis: Diagnosis | None = None) -> Figure:
    """Success, distance, replay composition and Q statistics against env steps.

    `result` is a `hjax.Result`, a run directory (read from its config.json and metrics.csv) or a
    metrics mapping; a `hjax.sweep` result is drawn by `plot_sweep`. With a seed axis, lines are medians
    and bands the interquartile range over seeds. Dotted vertical lines mark the first successful
    training episode and the success milestones of `diagnosis` (default: `hjax.diagnose(result)`
    for a Result; with seeds, the median seed's), and the title gives its verdict. Saves a PNG
    when `path` is given; returns the figure, which a notebook shows inline.
    """
    if isinstance(result, (str, os.PathLike)):
        result = runs.read_run(result)
    if hasattr(result, "grid"):
        return plot_sweep(result, path, title)
    if not hasattr(result, "metrics") and not isinstance(result, Mapping):
        raise TypeError(f"plot(result): expected a hjax.Result, a run directory path or a metrics mapping, "
                        f"got {type(result).__name__}")
    metrics: Mapping[str, np.ndarray] = getattr(result, "metrics", result)
    if diagnosis is None and hasattr(result, "config"):
        diagnosis = diagnose(result)
    q_bounds = getattr(result, "q_bounds", None)
    x = env_steps_axis(metrics)
    fig = Figure(figsize=(13, 3.4), layout="constrained")
    axes = fig.subplots(1, len(PANELS))
    for ax, (name, keys, ylim) in zip(axes, PANELS):
        for key in keys:
            if key in metrics:
                draw_band(ax, x, metrics[key], key)
        if name == "Q values" and q_bounds is not None and np.isfinite(q_bounds[0]):
            ax.axhline(q_bounds[0], color="grey", ls="--", lw=0.8, label="target bound")
            ax.axhline(q_bounds[1], color="grey", ls="--", lw=0.8)
        finish_axes(ax, name, ylim)
    if diagnosis is not None:
        draw_marks(axes, milestone_marks(diagnosis))
    if title is None and hasattr(result, "config"):
        cfg = result.config
        seeds = f", {result.num_seeds} seeds (median, IQR)" if result.num_seeds else ""
        verdict = f"; verdict: {diagnosis.verdict}" if diagnosis is not None else ""
        title = f"{cfg.env}, her_strategy={cfg.her_strategy}{seeds}{verdict}"
    if title:
        fig.suptitle(title)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    return fig


COMPARE_PANELS = (
    ("eval success rate", "eval/success_rate", (0.0, 1.02)),
    ("eval final distance", "eval/final_distance", None),
    ("replay: success-reward fraction", "replay/positive_reward_fraction", (0.0, 1.02)),
    ("Q mean", "q/mean", None),
)


def plot_runs(runs: Mapping[str, Mapping[str, np.ndarray]], path: str | Path | None = None) -> Figure:
    """Several runs' curves side by side, one colour per run (median and IQR over seeds)."""
    fig = Figure(figsize=(13, 3.4), layout="constrained")
    axes = fig.subplots(1, len(COMPARE_PANELS))
    for ax, (title, key, ylim) in zip(axes, COMPARE_PANELS):
        for label, metrics in runs.items():
            draw_band(ax, env_steps_axis(metrics), metrics[key], label)
        finish_axes(ax, title, ylim)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    return fig


def plot_sweep(sweep, path: str | Path | None = None, title: str | None = None, reps: int = 2000) -> Figure:
    """A `hjax.sweep` result: eval success against env steps per grid point (median over seeds, IQR
    band), and a summary panel of each point's final eval success, IQM over seeds with its 95%
    stratified-bootstrap CI (`hjax.stats`). Saves a PNG when `path` is given."""
    success = np.asarray(sweep.metrics["eval/success_rate"], np.float64)  # (points, seeds, epochs)
    x = np.asarray(sweep.metrics["env_steps"], np.float64)[0, 0]
    labels = [sweep.grid.label(i) for i in range(len(sweep.points))]
    fig = Figure(figsize=(13, max(3.6, 0.3 * len(labels) + 1.2)), layout="constrained")
    curves, summary = fig.subplots(1, 2, width_ratios=(3, 2))
    for i, label in enumerate(labels):
        draw_band(curves, x, success[i], label)
    finish_axes(curves, f"eval success rate (median, IQR over {sweep.num_seeds} seeds)", (0.0, 1.02))
    final = [stats.interval_estimates(success[i, :, -1], "iqm", reps=reps) for i in range(len(labels))]
    y = np.arange(len(labels))[::-1]
    point = np.array([float(iv.point) for iv in final])
    errors = np.array([[point[i] - float(iv.low), float(iv.high) - point[i]] for i, iv in enumerate(final)]).T
    colors = [line.get_color() for line in curves.get_lines()]
    for i in range(len(labels)):
        summary.errorbar(point[i], y[i], xerr=errors[:, i:i + 1], fmt="o", color=colors[i], capsize=3)
    summary.set_yticks(y, labels, fontsize=7)
    summary.set_xlim(-0.02, 1.02)
    summary.set_xlabel("final eval success")
    summary.set_title("final eval success: IQM, 95% CI")
    summary.grid(alpha=0.3)
    cfg = sweep.config
    fig.suptitle(title or f"{cfg.env}, {cfg.algorithm}: sweep of {len(labels)} points x {sweep.num_seeds} seeds")
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    return fig
