"""Memory planning: estimate a run's device memory before allocating anything. Host side.

The trainer state (buffer, networks, target networks, optimiser moments, normalisers) is sized
exactly from `jax.eval_shape` of `init`, which allocates nothing. The transient working set of
one fused step (the rollout's recorded trajectories and the batch activations of an update) is
estimated on top, with a safety factor for XLA temporaries.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np

from hjax.config import Config
from hjax.step import Trainer, make_trainer

WORKSPACE_SAFETY = 3.0  # XLA keeps a few copies of the transient arrays alive at once


class MemoryPlanError(ValueError):
    """The run cannot fit in device memory; the message says by how much and which knob to turn."""


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    buffer_bytes: int
    learner_bytes: int
    """Actor, critics, their targets, Adam moments and normalisers."""
    workspace_bytes: int
    """Transient: rollout trajectories and update activations (estimated, with a safety factor)."""
    available_bytes: int | None
    device: str

    @property
    def total_bytes(self) -> int:
        return self.buffer_bytes + self.learner_bytes + self.workspace_bytes

    def describe(self) -> str:
        avail = f" of {_gib(self.available_bytes)} available" if self.available_bytes else ""
        return (f"memory estimate {_gib(self.total_bytes)}{avail} on {self.device}: replay buffer "
                f"{_gib(self.buffer_bytes)}, networks and optimiser {_gib(self.learner_bytes)}, "
                f"working set {_gib(self.workspace_bytes)}")


def _gib(n: int | None) -> str:
    if n is None:
        return "unknown"
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _nbytes(tree) -> int:
    return int(sum(np.prod(x.shape, dtype=np.int64) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree)))


def available_bytes(device=None) -> int | None:
    """Memory the device can give: the accelerator's limit, or the host's available RAM on CPU."""
    device = device or jax.devices()[0]
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # backends without memory stats
        stats = None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def plan(config: Config, num_seeds: int | None = None, trainer: Trainer | None = None,
         points: int = 1) -> MemoryPlan:
    """Estimate the memory of training `config` (with `num_seeds` seeds, for each of `points` grid
    points of a sweep) without allocating; `trainer` is `make_trainer(config)` when the caller has
    built it already."""
    trainer = trainer or make_trainer(config)
    state = jax.eval_shape(trainer.init, jax.random.PRNGKey(0))
    seeds = (num_seeds or 1) * points
    buffer_bytes = _nbytes(state.buffer) * seeds
    learner_bytes = (_nbytes(state) - _nbytes(state.buffer)) * seeds
    env = config.make_env()
    obs, goal, act = env.observation_size["observation"][0], env.goal_size, env.action_size
    T = env.episode_length
    floats = 4
    rollout = (config.num_envs * (T + 1) * (obs + 2 * goal + act + 2)
               + config.num_eval_envs * T * 2) * floats
    widths = (obs + goal + act,) + config.hidden_sizes
    # Per update: ~ 3 nets (online twin + target twin + actor) x (forward + backward) activations.
    update = config.batch_size * sum(widths) * floats * 3 * 2 * 2
    workspace = int(WORKSPACE_SAFETY * (rollout + update)) * seeds
    device = jax.devices()[0]
    return MemoryPlan(buffer_bytes=buffer_bytes, learner_bytes=learner_bytes, workspace_bytes=workspace,
                      available_bytes=available_bytes(device),
                      device=f"{device.platform}:{getattr(device, 'device_kind', '')}")


def check_fits(config: Config, num_seeds: int | None = None, headroom: float = 0.9,
               trainer: Trainer | None = None, points: int | None = None) -> MemoryPlan:
    """Raise `MemoryPlanError` when the plan exceeds `headroom` x the available memory. With
    `points` (a sweep's grid points), the message names the largest grid that fits."""
    p = plan(config, num_seeds, trainer, points or 1)
    if points is not None and p.available_bytes is not None and p.total_bytes > headroom * p.available_bytes:
        fits = int(headroom * p.available_bytes // (p.total_bytes // points))
        seeds = num_seeds or 1
        raise MemoryPlanError(
            f"this sweep does not fit: {points} grid points x {seeds} seeds, {p.describe()}. The largest grid that "
            f"fits has {fits} points of {seeds} seeds" + (" (not even one point fits: reduce buffer_episodes, "
                                                          "hidden_sizes or num_envs)" if fits < 1 else
                                                          "; sweep fewer values, or fewer seeds") + ".")
    if p.available_bytes is not None and p.total_bytes > headroom * p.available_bytes:
        biggest = "buffer_episodes" if p.buffer_bytes >= max(p.learner_bytes, p.workspace_bytes) else (
            "hidden_sizes" if p.learner_bytes >= p.workspace_bytes else "batch_size or num_envs")
        seeds = f" or num_seeds={num_seeds}" if num_seeds and num_seeds > 1 else ""
        raise MemoryPlanError(
            f"this run does not fit: {p.describe()}. Reduce {biggest}"
            f"{' (now ' + str(config.buffer_episodes) + ')' if biggest == 'buffer_episodes' else ''}{seeds}.")
    return p
