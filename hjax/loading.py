"""Loading runs back: checkpoints into states, policies, evaluation and watchable episodes.

    run = hjax.load_run("runs/pm")                  # config, num_seeds, epoch, state, metrics
    policy = hjax.load_policy("runs/pm")            # or hjax.load_policy(result)
    hjax.evaluate("runs/pm", episodes=200)          # or hjax.evaluate(result); `hjax eval` prints it
    write_episode(config, state, key, "ep.html")    # one deterministic episode, rendered

Everything takes a `Result` or a run directory (a `LoadedRun` too). Host side; the rollouts are
jitted, nothing here is jittable itself.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import numpy as np

from hjax import envs, runs
from hjax.config import Config
from hjax.result import select_seed
from hjax.runs import run_repr
from hjax.step import Trainer, make_trainer, seed_keys


@dataclasses.dataclass(frozen=True, repr=False)
class LoadedRun:
    """A run directory's config and the trainer state of one of its checkpoints.

    Fields: config, num_seeds, epoch (of the checkpoint), state (the TrainerState, with a leading
    seed axis when num_seeds is set), metrics (the history up to that epoch, as in
    `Result.metrics`), run_dir."""

    config: Config
    num_seeds: int | None
    epoch: int
    state: Any
    metrics: dict[str, np.ndarray]
    run_dir: Path

    @property
    def history(self) -> dict[str, np.ndarray]:
        """The same as `metrics` (its name before hjax 0.2)."""
        return self.metrics

    @property
    def q_bounds(self) -> tuple[float, float]:
        return self.config.q_target_bounds()

    def __repr__(self) -> str:
        return run_repr("LoadedRun", self.config, self.num_seeds, self.metrics, self.run_dir, epoch=self.epoch)


def load_run(run_dir: str | Path, epoch: int | None = None) -> LoadedRun:
    """Load the newest readable (or the given) checkpoint of `run_dir`, checked against its
    config. A newest checkpoint that cannot be read is skipped with a warning naming it.

    `run_dir` may be a point of a sweep directory (SWEEP_DIR/points/NNN): its state and history
    are then that point's part of the sweep's checkpoint."""
    run_dir = Path(run_dir)
    config, num_seeds = runs.load_config(run_dir)
    runs.check_env_version(run_dir, config)
    trainer = make_trainer(config)
    template = state_template(trainer, config, num_seeds)
    point = runs.sweep_point(run_dir)
    if point is not None:  # the sweep's checkpoint holds every point's state, stacked on a leading axis
        sweep_dir, index = point
        num_points = len(json.loads((sweep_dir / runs.SWEEP_FILE).read_text())["points"])
        template = jax.tree.map(lambda x: np.zeros((num_points, *x.shape), x.dtype), template)
    checkpointer = runs.Checkpointer(run_dir if point is None else sweep_dir)
    try:
        epoch, (state, history, _) = checkpointer.restore_readable(template, epoch)
    finally:
        checkpointer.close()
    if point is not None:
        state = jax.tree.map(lambda x: x[index], state)
        history = {k: v[index] for k, v in history.items()}
    return LoadedRun(config=config, num_seeds=num_seeds, epoch=epoch, state=state, metrics=history, run_dir=run_dir)


def state_template(trainer: Trainer, config: Config, num_seeds: int | None) -> Any:
    """Zeros shaped like the run's TrainerState (the target orbax restores into)."""
    init_fn = jax.vmap(trainer.init) if num_seeds is not None else trainer.init
    shapes = jax.eval_shape(init_fn, seed_keys(config, num_seeds))
    return jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)


def _run_and_state(result_or_run_dir: Any, seed_index: int, epoch: int | None, caller: str):
    """(config, the chosen seed's state, the trainer, what was loaded) of a Result, a LoadedRun or
    a run directory."""
    if isinstance(result_or_run_dir, (str, os.PathLike)):
        run = load_run(result_or_run_dir, epoch)
    elif hasattr(result_or_run_dir, "state") and hasattr(result_or_run_dir, "config"):
        run = result_or_run_dir
        if epoch is not None:
            raise ValueError(f"{caller}: invalid epoch={epoch!r} with a {type(run).__name__}; allowed: None "
                             "(an epoch picks a checkpoint of a run directory)")
    else:
        raise TypeError(f"{caller}: expected a hjax.Result or a run directory path, got "
                        f"{type(result_or_run_dir).__name__}")
    state = select_seed(run.state, run.num_seeds, seed_index)
    trainer = getattr(run, "trainer", None) or make_trainer(run.config)
    return run.config, jax.device_put(state), trainer, run


def load_policy(result_or_run_dir: Any, seed_index: int = 0,
                epoch: int | None = None) -> Callable[[Mapping[str, jax.Array]], jax.Array]:
    """A jitted deterministic `policy(obs) -> action`, normalisers applied, from a `Result` or a
    run directory's checkpoint (the newest readable one, or `epoch`).

    `obs` is an env observation mapping (`observation`, `desired_goal`, ...) with any leading
    batch shape; for a multi-seed run, `seed_index` picks the seed."""
    _, state, trainer, _ = _run_and_state(result_or_run_dir, seed_index, epoch, "load_policy")
    return jax.jit(lambda obs: trainer.policy(state, obs))


def evaluate(result_or_run_dir: Any, episodes: int = 100, seed: int = 12345, seed_index: int = 0,
             epoch: int | None = None) -> dict[str, Any]:
    """Play `episodes` deterministic evaluation episodes of a run's policy (a `Result` or a run
    directory) and return `success_rate` (at the last step), `success_any_step`,
    `final_distance`, `mean_distance`, `episodes`, `epoch` (the checkpoint's; None for a
    Result) and `seed_index`. `hjax eval RUN_DIR` prints this."""
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"invalid episodes={episodes!r}; allowed: an integer >= 1")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"invalid seed={seed!r}; allowed: an integer >= 0")
    _, state, trainer, run = _run_and_state(result_or_run_dir, seed_index, epoch, "evaluate")
    rollout = jax.jit(lambda s, k: trainer.rollout(s, k, episodes, False))
    _, m = rollout(state, jax.random.PRNGKey(seed))
    m = jax.device_get(m)
    return {"success_rate": float(m["success"][-1].mean()),
            "success_any_step": float(m["success"].max(axis=0).mean()),
            "final_distance": float(m["distance"][-1].mean()), "mean_distance": float(m["distance"].mean()),
            "episodes": episodes, "epoch": getattr(run, "epoch", None), "seed_index": seed_index}


def write_episode(config: Config, state, key: jax.Array, path: str | Path, trainer: Trainer | None = None) -> Path:
    """Roll out one deterministic episode of `state`'s policy (one seed's state) and write it with
    `hjax.envs.render` (`.html`: Brax's viewer for physics envs; `.png`: a top-down trace, any
    env). Host side."""
    trainer = trainer or make_trainer(config)
    env = config.make_env()

    def episode(state, key):
        def step(env_state, _):
            nxt = env.step(env_state, trainer.policy(state, env_state.obs))
            return nxt, nxt

        first = env.reset(key)
        _, states = jax.lax.scan(step, first, None, env.episode_length)
        return jax.tree.map(lambda a, b: jax.numpy.concatenate([a[None], b]), first, states)

    states = jax.jit(episode)(state, key)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return Path(envs.render(env, states, path))


def default_episode_path(config: Config, run_dir: Path) -> Path:
    """`episode.html` for Brax physics envs (watchable in a browser), `episode.png` otherwise."""
    return Path(run_dir) / ("episode.png" if config.make_env().backend == "jnp" else "episode.html")
