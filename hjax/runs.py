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

import contextlib
import csv
import dataclasses
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import jax
import numpy as np

from hjax.config import LEARNER_ONLY_FIELDS, Config
from hjax.step import COUNTER_NAMES, METRIC_NAMES
from hjax.version import __version__

CHECKPOINT_FORMAT = 2
"""The checkpoint format this hjax writes, recorded in every checkpoint (`meta["format"]`) and
in config.json (`checkpoint_format`). Format 1: checkpoints from before formats were recorded
(hjax 0.1.0), whose learner state is named `learner` or, older still, `td3`; read by migration.
Bump it whenever TrainerState or the checkpoint layout changes, and add a migration."""
READABLE_FORMATS = (1, 2)
SET_ASIDE_DIR = "checkpoints_set_aside"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
CHECKPOINT_DIR = "checkpoints"
# A sweep directory (`hjax.sweep`): SWEEP_FILE, the whole grid's checkpoints under CHECKPOINT_DIR,
# and each point as a run directory without checkpoints of its own, POINTS_DIR/NNN.
SWEEP_FILE = "sweep.json"
POINTS_DIR = "points"
# Fields that may differ between a run and its resumption: the run can be made longer.
RESUMABLE_CHANGES = ("num_epochs", "chunk_epochs", "num_devices", "seed_devices")


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or does not match the config it is loaded into."""


class UnreadableCheckpoint(CheckpointError):
    """A checkpoint's files are damaged (truncated, deleted, garbage): `--resume` falls back to an
    older one."""


def _explain(error: Exception, where: Path, part: str) -> UnreadableCheckpoint:
    """One line for an orbax/tensorstore failure (whose text runs to kilobytes): the checkpoint,
    the file that failed (tensorstore names it as `local file "..."`; else the part: meta or
    state) and why."""
    text = (str(error) or type(error).__name__).strip()
    files = re.findall(r'local file "([^"]+)"', text)
    files = [f for f in files if not f.endswith("/")] or files
    file = max(files, key=len) if files else str(where / part)
    core = text.split(" [tensorstore_spec")[0]
    status = re.match(r"([A-Z_]{4,}): ", core)
    reason = core.rsplit('": ', 1)[-1] if files else core
    reason = " ".join(re.sub(r' (?:of|at) local file "[^"]*"', "", reason).split())
    if status and not reason.startswith(status.group(1)):
        reason = f"{status.group(1)}: {reason}"
    if len(reason) > 200:
        reason = reason[:197] + "..."
    return UnreadableCheckpoint(f"checkpoint {where} cannot be read: {file}: {reason} ({type(error).__name__})")


def save_config(run_dir: Path, config: Config, num_seeds: int | None) -> None:
    payload = {"config": config.to_dict(), "num_seeds": num_seeds, "hjax_version": __version__,
               "checkpoint_format": CHECKPOINT_FORMAT, "env_version": env_version(config.env)}
    _atomic_write_text(run_dir / CONFIG_FILE, json.dumps(payload, indent=2))


def env_version(env: str) -> int:
    """The version of an env's observations and dynamics: its class's `VERSION` (1 without one).
    A policy trained on one version sees other observations under another."""
    from hjax import envs

    try:
        cls = envs.factory(env)
    except ValueError:
        return 1
    version = getattr(cls, "VERSION", 1)
    return version if isinstance(version, int) else 1


# What changed at each env version, for the message that refuses an older run's checkpoints.
ENV_CHANGES = {("gripper", 2): "hjax 0.3 moved the gripper tasks' observations and goals into Fetch's world "
                               "frame (finger order and Euler angles too) and starts push and slide low, as Fetch does",
               ("gripper", 3): "hjax 0.4 gave the gripper tasks Fetch's table edges, the arm's reach, slide's "
                               "cylinder puck and Fetch's finger friction",
               ("gripper", 4): "hjax 0.5 drives the gripper through a mocap constraint as Fetch does, not position "
                               "actuators (the same actions move it differently in contact)",
               ("gripper_pick_and_place", 5): "hjax 0.6 drives pick-and-place's fingers as Fetch's (targets up to "
                                              "0.2 m, Fetch's inertia and damping scaled with the stiffness: they "
                                              "open and close about twice as fast)",
               ("gripper_pick_and_place", 6): "hjax 0.7 lets pick-and-place's fingertips meet the table (a "
                                              "gripper pressed on it drags its closing fingers, as Fetch's)"}


def check_env_version(run_dir: str | Path, config: Config) -> None:
    """Refuse a run whose env version differs from this hjax's: its policy and normaliser were
    fitted to other observations, so evaluating, loading or resuming it would mislead."""
    path = Path(run_dir) / CONFIG_FILE
    try:
        payload = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return  # load_config reports these
    saved, current = payload.get("env_version", 1), env_version(config.env)
    if saved == current:
        return
    low, high = sorted((saved, current))
    why = "; ".join(text for (prefix, v), text in sorted(ENV_CHANGES.items())
                    if config.env.startswith(prefix) and low < v <= high) or "its observations or dynamics changed"
    raise CheckpointError(
        f"{run_dir} was trained on {config.env} version {saved} (hjax {payload.get('hjax_version', '?')}); this hjax "
        f"({__version__}) has version {current}: {why}. Its policy would see other observations: train it again, "
        f"or load it with hjax {payload.get('hjax_version', '?')}")


def warn_empty_buffer(run_dir: str | Path, epoch: int) -> None:
    """Say on stderr that a resume from a checkpoint saved without its replay buffer starts from an
    empty one (so it will not match an uninterrupted run)."""
    print(f"hjax: resuming {run_dir} from epoch {epoch}, whose checkpoint has no replay buffer (saved without "
          "save_buffer): training goes on from an empty buffer and will not match an uninterrupted run; "
          "save with save_buffer=True (--save-buffer) for an exact resume", file=sys.stderr, flush=True)


def sweep_point(run_dir: str | Path) -> tuple[Path, int] | None:
    """`(sweep directory, point index)` when `run_dir` is a point of a sweep directory
    (SWEEP_DIR/points/NNN, its state in the sweep's checkpoints), else None."""
    run_dir = Path(run_dir)
    sweep_dir = run_dir.parent.parent
    if (run_dir.parent.name != POINTS_DIR or not run_dir.name.isdigit() or (run_dir / CHECKPOINT_DIR).exists()
            or not (sweep_dir / SWEEP_FILE).is_file()):
        return None
    return sweep_dir, int(run_dir.name)


def load_config(run_dir: str | Path) -> tuple[Config, int | None]:
    """The `Config` and `num_seeds` a run directory was created with."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not a hjax run directory: {CONFIG_FILE} is missing")
    try:
        payload = json.loads(path.read_text())
        check_format(payload.get("checkpoint_format", 1), path)
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


def complete_history(history: dict[str, np.ndarray], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """`history` with every metric of `names` it lacks (a checkpoint written before hjax reported
    that metric) filled with NaN for its epochs, so the resumed run's history and metrics.csv
    have every column."""
    shape = np.shape(next(iter(history.values())))
    return {**history, **{n: np.full(shape, np.nan, np.float32) for n in names if n not in history}}


def check_format(version: Any, where: Path) -> None:
    """Refuse a checkpoint format this hjax cannot read, naming both versions."""
    if version not in READABLE_FORMATS:
        newer = isinstance(version, int) and version > CHECKPOINT_FORMAT
        raise CheckpointError(f"{where} has checkpoint format {version!r}; this hjax ({__version__}) writes format "
                              f"{CHECKPOINT_FORMAT} and reads formats {', '.join(map(str, READABLE_FORMATS))}"
                              + ("; upgrade hjax to read it" if newer else ""))


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


@dataclasses.dataclass(frozen=True, repr=False)
class RunRecord:
    """A run directory read back without its checkpoints: what `summary`, `plot` and `diagnose`
    need from a `Result` (config, metrics, num_seeds, q_bounds, run_dir)."""

    config: Config
    num_seeds: int | None
    metrics: dict[str, np.ndarray]
    run_dir: Path

    @property
    def q_bounds(self) -> tuple[float, float]:
        return self.config.q_target_bounds()

    def __repr__(self) -> str:
        return run_repr("RunRecord", self.config, self.num_seeds, self.metrics, self.run_dir)


def run_repr(kind: str, config: Config, num_seeds: int | None, metrics: Mapping[str, np.ndarray] | None,
             run_dir: str | Path | None, epoch: int | None = None) -> str:
    """A one-line repr: env, algorithm, HER, seeds, epochs, final eval success, run directory."""
    parts = [f"env={config.env!r}", f"algorithm={config.algorithm!r}", f"her_strategy={config.her_strategy!r}",
             f"seed={config.seed}" if num_seeds is None else f"seeds={num_seeds}"]
    if metrics and "env_steps" in metrics:
        epochs = np.shape(metrics["env_steps"])[-1]
        parts.append(f"epochs={epochs}/{config.num_epochs}")
        if "eval/success_rate" in metrics and epochs:
            parts.append(f"eval_success={float(np.mean(np.asarray(metrics['eval/success_rate'])[..., -1])):.3f}")
    if epoch is not None:
        parts.append(f"checkpoint_epoch={epoch}")
    parts.append(f"run_dir={str(run_dir)!r}" if run_dir is not None else "run_dir=None")
    return f"{kind}(" + ", ".join(parts) + ")"


def read_run(run_dir: str | Path) -> RunRecord:
    """config.json and metrics.csv of `run_dir`; `CheckpointError` (a ValueError) naming the
    directory when it is not a readable run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is not a hjax run directory: no such directory")
    config, num_seeds = load_config(run_dir)
    if not (run_dir / METRICS_FILE).is_file():
        raise CheckpointError(f"{run_dir} has no {METRICS_FILE}: the run wrote no epoch yet")
    try:
        metrics = read_metrics(run_dir)
    except (KeyError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{run_dir / METRICS_FILE} is corrupt: {e}") from None
    return RunRecord(config=config, num_seeds=num_seeds, metrics=metrics, run_dir=run_dir)


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

    def __init__(self, run_dir: Path, max_to_keep: int = 3, create: bool = False):
        """`create`: make RUN_DIR/checkpoints/ (a run writing); otherwise it must exist (reading:
        looking never creates a folder, which would make the directory look used)."""
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.directory = (Path(run_dir) / CHECKPOINT_DIR).absolute()
        if not create and not self.directory.is_dir():
            raise CheckpointError(f"{run_dir} has no complete checkpoint: {CHECKPOINT_DIR}/ is missing")
        self.manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create))

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
        meta = {"format": CHECKPOINT_FORMAT, "hjax_version": __version__, "epoch": epoch, "has_buffer": save_buffer,
                "history": {k: np.asarray(v).tolist() for k, v in history.items()}}
        self.manager.save(epoch, args=ocp.args.Composite(state=ocp.args.StandardSave(host_state),
                                                         meta=ocp.args.JsonSave(meta)))
        if jax.process_count() > 1:
            self.manager.wait_until_finished()  # the next chunk donates these device buffers

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def epochs(self) -> list[int]:
        """Epochs of the complete checkpoints (committed), oldest first."""
        return sorted(self.manager.all_steps())

    def restore(self, epoch: int, template) -> tuple[Any, dict[str, np.ndarray], bool]:
        """`(state, history, has_buffer)`; without a saved buffer the template's (empty) one stays.

        Raises `UnreadableCheckpoint` (one line: which checkpoint, which file, why) when its files
        are damaged, and `CheckpointError` when it is intact but does not fit `template`'s config."""
        ocp = self._ocp
        where = self.directory / str(epoch)
        meta = self._read_meta(epoch)
        version = meta.get("format", 1)
        check_format(version, where)
        has_buffer = bool(meta["has_buffer"])
        target = jax.tree.map(_restore_target, template if has_buffer else template.replace(buffer=None))
        try:
            with _tensorstore_noise_filtered():
                restored = self.manager.restore(epoch, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
            state = restored["state"]
        except Exception as e:  # orbax/tensorstore raise many types, with kilobytes of text
            with _tensorstore_noise_filtered():
                state = self._restore_renamed(epoch, target) if version == 1 else None
            if state is None:
                self._raise_mismatch(epoch, target, where)  # intact but another config's
                raise _explain(e, where, "state") from None
        _check_shapes(target, state, where)
        if not has_buffer:
            state = state.replace(buffer=template.buffer)
        history = {k: np.asarray(v, np.uint64 if k in ("env_steps", "grad_steps") else np.float32)
                   for k, v in meta["history"].items()}
        return state, history, has_buffer

    def _raise_mismatch(self, epoch: int, target, where: Path) -> None:
        """When checkpoint `epoch` reads without a target (its files are intact), raise the
        `CheckpointError` naming the first leaf whose shape, dtype or presence differs from
        `target`'s; return when it cannot be read at all (the caller reports it as damaged)."""
        from flax import serialization

        try:
            with _tensorstore_noise_filtered():
                saved = self.manager.restore(epoch, args=self._ocp.args.Composite(
                    state=self._ocp.args.StandardRestore()))["state"]
        except Exception:
            return
        flat = lambda tree: {jax.tree_util.keystr(path): leaf  # noqa: E731
                             for path, leaf in jax.tree.flatten_with_path(tree)[0]}
        want, have = flat(serialization.to_state_dict(target)), flat(saved)
        for key in sorted(set(want) | set(have)):
            if key not in have or key not in want:
                side = "is missing from the checkpoint" if key not in have else "is in the checkpoint only"
                raise CheckpointError(f"checkpoint {where} does not fit this config: {key} {side}")
            _check_leaf(want[key], have[key], key, where)
        raise CheckpointError(f"checkpoint {where} reads, but not into this config's state")

    def _read_meta(self, epoch: int) -> dict:
        where = self.directory / str(epoch)
        try:
            meta = self.manager.restore(epoch, args=self._ocp.args.Composite(meta=self._ocp.args.JsonRestore()))["meta"]
            if not isinstance(meta, dict) or "has_buffer" not in meta or "history" not in meta:
                raise ValueError("it is not a hjax checkpoint's metadata")
            return meta
        except Exception as e:
            raise _explain(e, where, "meta") from None

    def restore_readable(self, template, epoch: int | None = None, report=None):
        """`(epoch, (state, history, has_buffer))` of checkpoint `epoch`, or of the newest one that
        can be read, each unreadable newer one named through `report(line)` (default: print to
        stderr). A checkpoint that does not fit the config stops the search (no older one would)."""
        available = self.epochs()
        run_dir = self.directory.parent
        if not available:
            raise CheckpointError(f"{run_dir} has no complete checkpoint under {CHECKPOINT_DIR}/")
        if epoch is not None:
            if epoch not in available:
                raise CheckpointError(f"{run_dir} has no checkpoint at epoch {epoch}; available: {available}")
            return epoch, self.restore(epoch, template)
        report = report or (lambda line: print(f"hjax: {line}", file=sys.stderr, flush=True))
        failures = []
        for candidate in reversed(available):
            try:
                restored = self.restore(candidate, template)
            except UnreadableCheckpoint as e:
                failures.append(str(e))
                report(f"{e}; trying an older checkpoint")
                continue
            if failures:
                report(f"using checkpoint {self.directory / str(candidate)} (epoch {candidate}), the newest readable one")
            return candidate, restored
        raise UnreadableCheckpoint(f"no checkpoint of {run_dir} can be read: " + " | ".join(failures))

    def set_aside_after(self, epoch: int) -> list[Path]:
        """Move every checkpoint after `epoch` out of the way (to RUN_DIR/checkpoints_set_aside/E),
        so a run resumed from an older checkpoint writes its own; nothing is deleted."""
        moved = []
        self.manager.wait_until_finished()
        for later in [e for e in self.epochs() if e > epoch]:
            target = self.directory.parent / SET_ASIDE_DIR / str(later)
            n = 1
            while target.exists():
                target = self.directory.parent / SET_ASIDE_DIR / f"{later}.{n}"
                n += 1
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.directory / str(later), target)
            moved.append(target)
        if moved:
            self.manager.reload()
        return moved

    def _restore_renamed(self, epoch: int, target):
        """Migrate format 1's oldest layout: a checkpoint written before `TrainerState.td3` was
        renamed `learner` (hjax 0.1.0 before the learners were added) is restored under the old
        field name; None if that fails too."""
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


@contextlib.contextmanager
def _tensorstore_noise_filtered(settle: float = 0.5):
    """When a restore fails part-way, tensorstore's reads still in flight call back into orbax's
    closed event loop, and each raises an unraisable `RuntimeError('Event loop is closed')` that
    Python prints as a traceback: over a hundred for one damaged checkpoint. While restoring (and
    for `settle` seconds after a failure, for the stragglers) `sys.unraisablehook` drops exactly
    those; every other unraisable exception goes on to the hook that was there."""
    previous = sys.unraisablehook

    def hook(unraisable):
        value = unraisable.exc_value
        if isinstance(value, RuntimeError) and str(value) == "Event loop is closed":
            return
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    except BaseException:
        time.sleep(settle)
        raise
    finally:
        sys.unraisablehook = previous


def _restore_target(leaf):
    """What orbax restores a template leaf into: a NumPy array, or, for an array spanning several
    processes (multi-host), its shape, dtype and sharding, so each process reads only its shards."""
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
        return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=leaf.sharding)
    return np.asarray(jax.device_get(leaf))


def _check_shapes(target, restored, where) -> None:
    t_leaves, _ = jax.tree.flatten_with_path(target)
    r_leaves = jax.tree.leaves(restored)
    if len(t_leaves) != len(r_leaves):
        raise CheckpointError(f"checkpoint {where} has a different structure than this config expects")
    for (path, t), r in zip(t_leaves, r_leaves):
        _check_leaf(t, r, jax.tree_util.keystr(path), where)


def _check_leaf(target, restored, key: str, where) -> None:
    """`CheckpointError` naming `key` when the restored leaf's shape or dtype is not the target's."""
    t_dtype, r_dtype = (np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype for x in (target, restored))
    if np.shape(target) != np.shape(restored) or t_dtype != r_dtype:
        raise CheckpointError(f"checkpoint {where}: {key} is {r_dtype}{list(np.shape(restored))}, this config "
                              f"expects {t_dtype}{list(np.shape(target))}")
