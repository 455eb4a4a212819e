"""Run directories: resolved config, per-epoch CSV, TensorBoard, and orbax checkpoints.

Host side only; nothing here is jittable. A run directory looks like:

    RUN_DIR/config.json       the resolved Config, num_seeds and the hjax version
    RUN_DIR/metrics.csv       one row per epoch and seed
    RUN_DIR/checkpoints/E/    orbax checkpoint after epoch E (atomic: written aside, then renamed)
    RUN_DIR/tensorboard/      event files, when asked
    RUN_DIR/curves.png        learning curves, written at the end

A checkpoint holds the trainer state (params, target params, optimiser states, normalisers, the
key, the epoch and the step counters), the metrics history, and the replay buffer when asked.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np

from hjax import envs
from hjax.config import LEARNER_ONLY_FIELDS, Config
from hjax.trainer import COUNTER_NAMES, METRIC_NAMES, make_trainer, seed_keys
from hjax.version import __version__

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
CHECKPOINT_DIR = "checkpoints"
# Fields that may differ between a run and its resumption: the run can be made longer.
RESUMABLE_CHANGES = ("num_epochs", "chunk_epochs", "num_devices", "seed_devices")


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or does not match the config it is loaded into."""


def save_config(run_dir: Path, config: Config, num_seeds: int | None) -> None:
    payload = {"config": config.to_dict(), "num_seeds": num_seeds, "hjax_version": __version__}
    _atomic_write_text(run_dir / CONFIG_FILE, json.dumps(payload, indent=2))


def load_config(run_dir: str | Path) -> tuple[Config, int | None]:
    """The `Config` and `num_seeds` a run directory was created with."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not a hjax run directory: {CONFIG_FILE} is missing")
    try:
        payload = json.loads(path.read_text())
        fields = payload["config"]
        fields["hidden_sizes"] = tuple(fields["hidden_sizes"])
        # A field the saved learner does not read was saved at that version's default, which
        # may since have changed; it did nothing in that run, so today's default stands in.
        algorithm = fields.get("algorithm", "td3")
        for name, algorithms in LEARNER_ONLY_FIELDS:
            if algorithm not in algorithms:
                fields.pop(name, None)
        return Config(**fields), payload["num_seeds"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path} is corrupt or not a hjax config: {e}") from None


def config_differences(saved: Config, current: Config, ignore=RESUMABLE_CHANGES) -> list[str]:
    """`field: saved -> current` for every field that differs (except `ignore`, and a field that
    neither run's learner reads, such as ddpg's accepted `policy_delay=1`)."""
    a, b = saved.to_dict(), current.to_dict()
    unread = {name for name, algorithms in LEARNER_ONLY_FIELDS
              if saved.algorithm not in algorithms and current.algorithm not in algorithms}
    return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if k not in ignore and k not in unread and a[k] != b[k]]


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ---- metrics ---------------------------------------------------------------------------------

def _rows(metrics: dict[str, np.ndarray], first_epoch: int, names: list[str]):
    seeded = metrics[names[0]].ndim == 2
    num_epochs = metrics[names[0]].shape[-1]
    num_seeds = metrics[names[0]].shape[0] if seeded else 1
    for e in range(num_epochs):
        for s in range(num_seeds):
            values = [metrics[n][s, e] if seeded else metrics[n][e] for n in names]
            yield [first_epoch + e + 1, s] + [int(v) if n in ("env_steps", "grad_steps") else float(v)
                                              for n, v in zip(names, values)]


class MetricsWriter:
    """`metrics.csv`: columns epoch (1-based, epochs completed), seed, then the metric names."""

    def __init__(self, run_dir: Path, history: dict[str, np.ndarray] | None,
                 metric_names: tuple[str, ...] = METRIC_NAMES):
        self.names = list(COUNTER_NAMES + metric_names)
        self.path = run_dir / METRICS_FILE
        # Rewrite from the (checkpointed) history, so rows of epochs after the checkpoint vanish.
        with open(self.path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["epoch", "seed"] + self.names)
            if history:
                writer.writerows(_rows(history, 0, self.names))

    def append(self, metrics: dict[str, np.ndarray], first_epoch: int) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerows(_rows(metrics, first_epoch, self.names))
            f.flush()
            os.fsync(f.fileno())


def read_metrics(run_dir: str | Path) -> dict[str, np.ndarray]:
    """`metrics.csv` back as arrays shaped like `Result.metrics` ((seeds, epochs) when seeded)."""
    path = Path(run_dir) / METRICS_FILE
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise CheckpointError(f"{path} has no rows yet")
    seeds = sorted({int(r["seed"]) for r in rows})
    epochs = sorted({int(r["epoch"]) for r in rows})
    _, num_seeds = load_config(run_dir)
    out = {}
    for name in rows[0]:
        if name in ("epoch", "seed"):
            continue
        dtype = np.uint64 if name in ("env_steps", "grad_steps") else np.float32
        arr = np.zeros((len(seeds), len(epochs)), dtype)
        for r in rows:
            value = int(r[name]) if dtype is np.uint64 else float(r[name])
            arr[seeds.index(int(r["seed"])), epochs.index(int(r["epoch"]))] = value
        out[name] = arr if num_seeds is not None else arr[0]
    return out


class TensorBoardWriter:
    """Scalars per epoch (mean over seeds), through tensorboardX."""

    def __init__(self, run_dir: Path):
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def append(self, metrics: dict[str, np.ndarray], first_epoch: int) -> None:
        steps = metrics["env_steps"]
        for e in range(steps.shape[-1]):
            step = int(np.max(steps[..., e]))
            for name, values in metrics.items():
                if name not in ("env_steps", "grad_steps"):
                    self.writer.add_scalar(name, float(np.mean(values[..., e])), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


# ---- checkpoints -----------------------------------------------------------------------------

class Checkpointer:
    """Orbax checkpoints of a run (keeps the newest `max_to_keep`). Host side.

    Orbax writes each checkpoint into a temporary directory and renames it when complete, so an
    interrupted save never leaves a half checkpoint that `latest_epoch` would pick."""

    def __init__(self, run_dir: Path, max_to_keep: int = 3):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.directory = (run_dir / CHECKPOINT_DIR).absolute()
        self.manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

    def latest_epoch(self) -> int | None:
        return self.manager.latest_step()

    def save(self, epoch: int, state, history: dict[str, np.ndarray], save_buffer: bool) -> None:
        """Save `state` (moved to host first, so donated device buffers are never read later)."""
        ocp = self._ocp
        state = state if save_buffer else state.replace(buffer=None)
        if jax.process_count() == 1:
            host_state = jax.device_get(state)
        else:  # multi-host: every process saves its own shards of the global arrays through orbax
            host_state = state
        meta = {"epoch": epoch, "has_buffer": save_buffer,
                "history": {k: np.asarray(v).tolist() for k, v in history.items()}}
        self.manager.save(epoch, args=ocp.args.Composite(state=ocp.args.StandardSave(host_state),
                                                         meta=ocp.args.JsonSave(meta)))
        if jax.process_count() > 1:
            self.manager.wait_until_finished()  # the next chunk donates these device buffers

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def restore(self, epoch: int, template) -> tuple[Any, dict[str, np.ndarray], bool]:
        """`(state, history, has_buffer)`; without a saved buffer the template's (empty) one stays."""
        ocp = self._ocp
        try:
            meta = self.manager.restore(epoch, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
            has_buffer = bool(meta["has_buffer"])
            target = jax.tree.map(_restore_target, template if has_buffer else template.replace(buffer=None))
            restored = self.manager.restore(epoch, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
            state = restored["state"]
        except Exception as e:  # orbax/tensorstore raise many types; name the checkpoint
            state = self._restore_renamed(epoch, target)
            if state is None:
                raise CheckpointError(f"checkpoint {self.directory / str(epoch)} cannot be restored into this "
                                      f"config: {type(e).__name__}: {e}") from None
        _check_shapes(target, state, self.directory / str(epoch))
        if not has_buffer:
            state = state.replace(buffer=template.buffer)
        history = {k: np.asarray(v, np.uint64 if k in ("env_steps", "grad_steps") else np.float32)
                   for k, v in meta["history"].items()}
        return state, history, has_buffer

    def _restore_renamed(self, epoch: int, target):
        """A checkpoint written before `TrainerState.td3` was renamed `learner` (hjax 0.1.0 before
        the learners were added): restore it under the old field name; None if that fails too."""
        from flax import serialization

        tree = serialization.to_state_dict(target)
        if "learner" not in tree:
            return None
        old = {("td3" if k == "learner" else k): v for k, v in tree.items()}
        try:
            restored = self.manager.restore(epoch, args=self._ocp.args.Composite(
                state=self._ocp.args.StandardRestore(old)))["state"]
        except Exception:  # not the old layout either: the caller reports the original error
            return None
        restored = {("learner" if k == "td3" else k): v for k, v in restored.items()}
        return serialization.from_state_dict(target, restored)

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def _restore_target(leaf):
    """What orbax restores a template leaf into: a NumPy array, or, for an array spanning several
    processes (multi-host), its shape, dtype and sharding, so each process reads only its shards."""
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
        return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=leaf.sharding)
    return np.asarray(jax.device_get(leaf))


def _check_shapes(target, restored, where) -> None:
    t_leaves, t_def = jax.tree.flatten_with_path(target)
    r_leaves = jax.tree.leaves(restored)
    if len(t_leaves) != len(r_leaves):
        raise CheckpointError(f"checkpoint {where} has a different structure than this config expects")
    for (path, t), r in zip(t_leaves, r_leaves):
        t_dtype, r_dtype = (np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype for x in (t, r))
        if np.shape(t) != np.shape(r) or t_dtype != r_dtype:
            raise CheckpointError(f"checkpoint {where}: {jax.tree_util.keystr(path)} is "
                                  f"{r_dtype}{list(np.shape(r))}, this config expects "
                                  f"{t_dtype}{list(np.shape(t))}")



# ---- loading a run -----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class LoadedRun:
    """A run directory's config and the trainer state of one of its checkpoints."""

    config: Config
    num_seeds: int | None
    epoch: int
    state: Any
    """The TrainerState (with a leading seed axis when num_seeds is set)."""
    history: dict[str, np.ndarray]


def load_run(run_dir: str | Path, epoch: int | None = None) -> LoadedRun:
    """Load the newest (or the given) checkpoint of `run_dir`, checked against its config."""
    run_dir = Path(run_dir)
    config, num_seeds = load_config(run_dir)
    checkpointer = Checkpointer(run_dir)
    try:
        available = checkpointer.manager.all_steps()
        if not available:
            raise CheckpointError(f"{run_dir} has no complete checkpoint under {CHECKPOINT_DIR}/")
        epoch = max(available) if epoch is None else epoch
        if epoch not in available:
            raise CheckpointError(f"{run_dir} has no checkpoint at epoch {epoch}; available: {sorted(available)}")
        trainer = make_trainer(config)
        init_fn = jax.vmap(trainer.init) if num_seeds is not None else trainer.init
        template = jax.eval_shape(init_fn, seed_keys(config, num_seeds))
        template = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), template)
        state, history, _ = checkpointer.restore(epoch, template)
    finally:
        checkpointer.close()
    return LoadedRun(config=config, num_seeds=num_seeds, epoch=epoch, state=state, history=history)


def load_policy(run_dir: str | Path, seed_index: int = 0, epoch: int | None = None):
    """A jitted deterministic `policy(obs) -> action` from a run's checkpoint, normalisers applied.

    `obs` is an env observation mapping (`observation`, `desired_goal`, ...) with any leading
    batch shape; for a multi-seed run, `seed_index` picks the seed."""
    run = load_run(run_dir, epoch)
    state = run.state
    if run.num_seeds is not None:
        if not 0 <= seed_index < run.num_seeds:
            raise ValueError(f"invalid seed_index={seed_index!r}; allowed: 0 <= seed_index < {run.num_seeds}")
        state = jax.tree.map(lambda x: x[seed_index], state)
    trainer = make_trainer(run.config)
    state = jax.device_put(state)
    return jax.jit(lambda obs: trainer.policy(state, obs))


def write_episode(config: Config, state, key: jax.Array, path: str | Path) -> Path:
    """Roll out one deterministic episode of `state`'s policy and write it with `envs.render`
    (`.html`: Brax's viewer for physics envs; `.png`: a top-down trace, any env). Host side."""
    trainer = make_trainer(config)
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
    return run_dir / ("episode.png" if config.make_env().backend == "jnp" else "episode.html")
