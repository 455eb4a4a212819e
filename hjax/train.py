"""The fused HER + TD3 training step and the `train` entry point.

`make_trainer(config)` closes over the static config and returns pure functions over a
`TrainerState`. One call of `epoch` is one fused step, traced once and compiled as a whole:

    rollout(num_envs episodes, vmap over envs, scan over T)
      -> update the normalisers -> insert the episodes into the buffer
      -> scan over grad_steps_per_epoch / policy_delay groups of
             (policy_delay x [HER sample -> critic step]) then (actor step + Polyak on the last batch)
      -> deterministic evaluation rollout -> metrics of the epoch

`make_train(config)` returns `train(key)`, a scan of `epoch` over the whole run, so
`jax.jit(jax.vmap(make_train(config)))(keys)` trains many seeds at once. `train(config)` runs the
same epochs in compiled chunks, reporting and checking for non-finite values on the host between
chunks only.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from hjax import buffer as buffer_lib
from hjax import her
from hjax import normalizer as norm_lib
from hjax.buffer import BufferState, Episodes
from hjax.config import Config
from hjax.counter import Counter, to_int
from hjax.normalizer import NormalizerState
from hjax.sharding import constrain_batch
from hjax.td3 import TD3, Batch, TD3State, make_td3

# Metric names, in the order a non-finite value is reported (first match wins).
METRIC_NAMES = (
    "loss/critic", "loss/actor", "q/mean", "q/min", "q/max", "grad_norm/critic", "grad_norm/actor",
    "params/max_abs", "action/abs_mean", "action/saturation",
    "train/success_rate", "train/success_count", "train/final_distance",
    "eval/success_rate", "eval/success_any", "eval/final_distance", "eval/mean_distance",
    "replay/relabeled_fraction", "replay/positive_reward_fraction",
    "replay/positive_reward_fraction_original",
)
COUNTER_NAMES = ("env_steps", "grad_steps")


@struct.dataclass
class TrainerState:
    """The scan carry of a run: one named field per concern."""

    td3: TD3State
    obs_norm: NormalizerState
    goal_norm: NormalizerState
    buffer: BufferState
    key: jax.Array  # (2,) uint32, split once per epoch
    epoch: jax.Array  # () int32, epochs completed
    env_steps: Counter
    grad_steps: Counter


class Trainer(NamedTuple):
    """The pure functions of a run (see the module docstring)."""

    config: Config
    td3: TD3
    init: Callable[[jax.Array], TrainerState]
    epoch: Callable[[TrainerState], tuple[TrainerState, dict]]
    run_epochs: Callable[[TrainerState, int], tuple[TrainerState, dict]]
    rollout: Callable[..., tuple[Episodes, dict]]
    collect: Callable[[TrainerState, jax.Array], tuple[TrainerState, dict]]
    update: Callable[[TrainerState, jax.Array], tuple[TD3State, dict]]
    policy: Callable[[TrainerState, Mapping[str, jax.Array]], jax.Array]


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


def q_target_bounds(config: Config) -> tuple[float, float]:
    """Q targets are clipped to the discounted return's range, [r_min, r_max] / (1 - gamma)
    (HER paper / baselines clip_return: [-1/(1-gamma), 0] for the sparse reward)."""
    if not config.clip_target:
        return (-math.inf, math.inf)
    r_min, r_max = config.make_env().reward_range
    return (r_min / (1 - config.discount), r_max / (1 - config.discount))


def make_trainer(config: Config, mesh=None) -> Trainer:
    """Close over the static `config`; return the pure functions of the run.

    The replay buffer is `config.data_shards` (None: 1) stacked per-shard buffers; each shard
    holds its own envs' episodes and samples batch_size / data_shards transitions per update.
    With a `mesh` (see `hjax.sharding`), the env batch and the shards are placed along its 'data'
    axis; without one nothing is annotated (the single-device fast path)."""
    env = config.make_env()
    shards = config.data_shards or 1
    T = env.episode_length
    sizes = env.observation_size
    obs_dim, goal_dim = sizes["observation"][0], env.goal_size
    act_dim = env.action_size
    gamma = config.discount
    bounds = q_target_bounds(config)
    td3 = make_td3(hidden_sizes=config.hidden_sizes, action_size=act_dim, gamma=gamma,
                   tau=config.tau, actor_lr=config.actor_lr, critic_lr=config.critic_lr,
                   target_noise=config.target_noise, target_noise_clip=config.target_noise_clip,
                   action_l2=config.action_l2, target_bounds=bounds)
    delay = config.policy_delay
    num_groups = config.grad_steps_per_epoch // delay

    def inputs(obs_norm, goal_norm, observation, goal):
        return jnp.concatenate([norm_lib.normalize(obs_norm, observation, config.obs_clip),
                                norm_lib.normalize(goal_norm, goal, config.obs_clip)], axis=-1)

    def policy(state: TrainerState, obs: Mapping[str, jax.Array]) -> jax.Array:
        """Deterministic action for observation mapping(s) with any leading batch shape."""
        x = inputs(state.obs_norm, state.goal_norm, obs["observation"], obs["desired_goal"])
        return td3.policy(state.td3.actor_params, x)

    def init(key: jax.Array) -> TrainerState:
        key_params, key_run = jax.random.split(key)
        return TrainerState(
            td3=td3.init(key_params, obs_dim + goal_dim, act_dim),
            obs_norm=NormalizerState.create(obs_dim), goal_norm=NormalizerState.create(goal_dim),
            buffer=jax.tree.map(lambda x: jnp.stack([x] * shards), buffer_lib.init(
                config.buffer_episodes // shards, T, obs_dim, goal_dim, act_dim)),
            key=key_run, epoch=jnp.zeros((), jnp.int32),
            env_steps=Counter.create(0), grad_steps=Counter.create(0))

    def rollout(state: TrainerState, key: jax.Array, num_envs: int, explore: bool):
        """Play `num_envs` full episodes; exploration noise only when `explore`."""
        key_reset, key_steps = jax.random.split(key)
        env_state = constrain_batch(jax.vmap(env.reset)(jax.random.split(key_reset, num_envs)), mesh)

        def step(env_state, key_t):
            obs = env_state.obs
            action = policy(state, obs)
            if explore:
                key_noise, key_random, key_choose = jax.random.split(key_t, 3)
                noise = config.exploration_noise * jax.random.normal(key_noise, action.shape)
                action = jnp.clip(action + noise, -1.0, 1.0)
                random_action = jax.random.uniform(key_random, action.shape, minval=-1.0, maxval=1.0)
                take_random = jax.random.uniform(key_choose, (num_envs, 1)) < config.random_action_prob
                action = jnp.where(take_random, random_action, action)
            next_state = jax.vmap(env.step)(env_state, action)
            record = {"success": next_state.metrics["success"], "distance": next_state.metrics["distance"]}
            if explore:  # evaluation keeps no trajectories
                record.update(observation=obs["observation"], achieved_goal=obs["achieved_goal"],
                              desired_goal=obs["desired_goal"], action=action)
            return next_state, record

        final, rec = jax.lax.scan(step, env_state, jax.random.split(key_steps, T))
        metrics = {"success": rec["success"], "distance": rec["distance"]}  # (T, num_envs)
        if not explore:
            return None, metrics
        batch_major = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731  (T, N, ...) -> (N, T, ...)
        with_last = lambda x, last: batch_major(jnp.concatenate([x, last[None]], axis=0))  # noqa: E731
        episodes = Episodes(
            observation=with_last(rec["observation"], final.obs["observation"]),
            achieved_goal=with_last(rec["achieved_goal"], final.obs["achieved_goal"]),
            desired_goal=batch_major(rec["desired_goal"]), action=batch_major(rec["action"]))
        return episodes, metrics

    def sample_batch(state: TrainerState, key: jax.Array) -> tuple[Batch, her.Composition]:
        """Each shard samples batch_size / shards transitions from its own episodes."""
        def sample_shard(key_shard, shard_buffer):
            return her.sample(key_shard, shard_buffer, config.batch_size // shards, config.her_strategy,
                              config.replay_k, env.compute_reward, env.is_success)

        tr, composition = jax.vmap(sample_shard)(jax.random.split(key, shards), state.buffer)
        tr = jax.tree.map(lambda x: x.reshape(config.batch_size, *x.shape[2:]), constrain_batch(tr, mesh))
        composition = jax.tree.map(jnp.mean, composition)
        batch = Batch(inputs=inputs(state.obs_norm, state.goal_norm, tr.observation, tr.goal),
                      next_inputs=inputs(state.obs_norm, state.goal_norm, tr.next_observation, tr.goal),
                      action=tr.action, reward=tr.reward)
        return batch, composition

    def update(state: TrainerState, key: jax.Array) -> tuple[TD3State, dict]:
        """grad_steps_per_epoch critic steps and grad_steps_per_epoch / policy_delay actor steps.

        The schedule is static (reshape + scan, TD3's delay without a `cond` on a counter):
        each group runs policy_delay - 1 critic-only steps, then a critic step followed by the
        actor and target update on that same batch."""

        def critic_only(td3_state, key_step):
            key_sample, key_noise = jax.random.split(key_step)
            batch, composition = sample_batch(state, key_sample)
            td3_state, m = td3.critic_step(td3_state, batch, key_noise)
            return td3_state, (m, composition)

        def group(td3_state, key_group):
            keys = jax.random.split(key_group, delay + 1)
            td3_state, (m_head, c_head) = jax.lax.scan(critic_only, td3_state, keys[:delay - 1])
            batch, c_last = sample_batch(state, keys[delay - 1])
            td3_state, m_last = td3.critic_step(td3_state, batch, keys[delay])
            td3_state, m_actor = td3.actor_step(td3_state, batch)
            join = lambda a, b: jnp.concatenate([a, b[None]])  # noqa: E731
            return td3_state, (jax.tree.map(join, m_head, m_last), jax.tree.map(join, c_head, c_last), m_actor)

        td3_state, (m_critic, comp, m_actor) = jax.lax.scan(group, state.td3, jax.random.split(key, num_groups))
        metrics = {k: v.mean() for k, v in {**m_critic, **m_actor}.items()}
        metrics["q/min"] = m_critic["q/min"].min()
        metrics["q/max"] = m_critic["q/max"].max()
        metrics["replay/relabeled_fraction"] = comp.relabeled_fraction.mean()
        metrics["replay/positive_reward_fraction"] = comp.positive_reward_fraction.mean()
        metrics["replay/positive_reward_fraction_original"] = comp.positive_reward_fraction_original.mean()
        return td3_state, metrics

    def collect(state: TrainerState, key: jax.Array) -> tuple[TrainerState, dict]:
        """Play num_envs exploratory episodes, fold them into the normalisers and the buffer."""
        episodes, train_m = rollout(state, key, config.num_envs, explore=True)
        state = state.replace(
            obs_norm=norm_lib.update(state.obs_norm, episodes.observation),
            goal_norm=norm_lib.update(norm_lib.update(state.goal_norm, episodes.desired_goal),
                                      episodes.achieved_goal),
            buffer=jax.vmap(buffer_lib.add)(state.buffer, jax.tree.map(  # env block i -> shard i
                lambda x: x.reshape(shards, config.num_envs // shards, *x.shape[1:]), episodes)))
        return state, train_m

    def epoch(state: TrainerState) -> tuple[TrainerState, dict]:
        """One fused training step (see the module docstring)."""
        key, key_rollout, key_update, key_eval = jax.random.split(state.key, 4)
        state, train_m = collect(state, key_rollout)
        td3_state, update_m = update(state, key_update)
        state = state.replace(td3=td3_state)
        _, eval_m = rollout(state, key_eval, config.num_eval_envs, explore=False)
        state = state.replace(key=key, epoch=state.epoch + 1,
                              env_steps=state.env_steps.add(config.env_steps_per_epoch),
                              grad_steps=state.grad_steps.add(config.grad_steps_per_epoch))
        params = jax.tree.leaves((td3_state.actor_params, td3_state.critic_params))
        metrics = {
            **update_m,
            "params/max_abs": jnp.max(jnp.stack([jnp.max(jnp.abs(p)) for p in params])),
            "train/success_rate": train_m["success"][-1].mean(),
            "train/success_count": train_m["success"][-1].sum(),
            "train/final_distance": train_m["distance"][-1].mean(),
            "eval/success_rate": eval_m["success"][-1].mean(),
            "eval/success_any": eval_m["success"].max(axis=0).mean(),
            "eval/final_distance": eval_m["distance"][-1].mean(),
            "eval/mean_distance": eval_m["distance"].mean(),
            "env_steps": state.env_steps,
            "grad_steps": state.grad_steps,
        }
        return state, metrics

    def run_epochs(state: TrainerState, num_epochs: int) -> tuple[TrainerState, dict]:
        """`num_epochs` (static) epochs in one `lax.scan`; metrics stacked over epochs."""
        return jax.lax.scan(lambda s, _: epoch(s), state, None, length=num_epochs)

    return Trainer(config=config, td3=td3, init=init, epoch=epoch, run_epochs=run_epochs,
                   rollout=rollout, collect=collect, update=update, policy=policy)


def make_train(config: Config) -> Callable[[jax.Array], tuple[TrainerState, dict]]:
    """A pure `train(key) -> (final_state, metrics)` for the whole run, for `jit(vmap(...))`."""
    trainer = make_trainer(config)

    def train(key: jax.Array) -> tuple[TrainerState, dict]:
        return trainer.run_epochs(trainer.init(key), config.num_epochs)

    return train


def seed_keys(config: Config, num_seeds: int | None) -> jax.Array:
    """PRNG keys of the run: `PRNGKey(seed)`, or `PRNGKey(seed + i)` stacked for i < num_seeds."""
    if num_seeds is None:
        return jax.random.PRNGKey(config.seed)
    return jnp.stack([jax.random.PRNGKey(config.seed + i) for i in range(num_seeds)])


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
        """Actor and critic parameters (and their targets) of the final state."""
        td3 = self.state.td3
        return {"actor": td3.actor_params, "critic": td3.critic_params,
                "target_actor": td3.target_actor_params, "target_critic": td3.target_critic_params}

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
    names = [n for n in METRIC_NAMES if n in metrics]
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
          save_episode: bool = False, progress_bar: bool = True, verbose: bool = True) -> Result:
    """Train `config` and return a `Result`. Not jittable: this is the host loop.

    Args:
      config: the run.
      num_seeds: train seeds `config.seed + i`, i < num_seeds, at once under `vmap`; every result
        then has a leading seed axis. None trains `config.seed` alone.
      progress: `progress(epoch, metrics)`, called after each compiled chunk with the last epoch's
        metrics (averaged over seeds).
      run_dir: write config.json, metrics.csv, checkpoints and curves.png there.
      resume: a run directory to continue from its newest checkpoint (and keep writing to). The
        config must match the saved one except num_epochs/chunk_epochs (a run can be lengthened).
        With the buffer checkpointed, the resumed run ends exactly as an uninterrupted one.
      checkpoint_every: epochs between checkpoints (rounded up to whole chunks); default: every
        chunk. A final checkpoint is always written.
      save_buffer: include the replay buffer in checkpoints (needed for exact resumption).
      tensorboard: also write TensorBoard event files under run_dir/tensorboard.
      save_episode: at the end, write one deterministic evaluation episode of the final policy
        (seed index 0) to run_dir/episode.html (physics envs) or episode.png.
      progress_bar: show a tqdm bar (notebook-aware) with env steps, steps/s and eval success.
      verbose: print the memory estimate at the start.

    Raises `NonFiniteError` naming the epoch and metric if anything goes NaN/inf (checked at the
    end of every chunk; the last checkpoint is left intact). Ctrl-C stops after writing nothing
    half-done; the newest checkpoint stays resumable.
    """
    from hjax import runs

    if not isinstance(config, Config):
        raise TypeError(f"train(config): expected hjax.Config, got {type(config).__name__}")
    if num_seeds is not None and (not isinstance(num_seeds, int) or isinstance(num_seeds, bool) or num_seeds < 1):
        raise ValueError(f"invalid num_seeds={num_seeds!r}; allowed: None or an integer >= 1")
    if checkpoint_every is not None and (not isinstance(checkpoint_every, int) or checkpoint_every < 1):
        raise ValueError(f"invalid checkpoint_every={checkpoint_every!r}; allowed: None or an integer >= 1")
    if resume is not None and config.data_shards is None:
        from hjax import runs as _runs

        saved_shards = _runs.load_config(resume)[0].data_shards
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
    from hjax.memory import check_fits

    memory = check_fits(config, num_seeds)  # before anything is allocated or compiled
    if verbose and jax.process_index() == 0:
        print(memory.describe(), flush=True)

    keys = seed_keys(config, num_seeds)
    t0 = time.perf_counter()
    init_fn, compiled, place = _compiled(config, num_seeds, keys)
    state = init_fn(keys)
    jax.block_until_ready(state)
    compile_seconds = time.perf_counter() - t0

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
            metrics_writer = runs.MetricsWriter(run_dir, history[0] if history else None)
            tb_writer = runs.TensorBoardWriter(run_dir) if tensorboard else None

    bar = _ProgressBar(config, num_seeds, start, compile_seconds) if progress_bar and jax.process_index() == 0 else None
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
            if bar is not None:
                bar.update(epoch_done, last, run_seconds)
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
        if bar is not None:
            bar.close()
        if checkpointer is not None:
            checkpointer.close()
        if tb_writer is not None:
            tb_writer.close()

    result = Result(config=config, state=state, metrics=_concat(history, axis), num_seeds=num_seeds,
                    compile_seconds=compile_seconds, run_seconds=run_seconds, q_bounds=q_target_bounds(config),
                    run_dir=run_dir)
    if run_dir is not None and jax.process_index() == 0:
        from hjax.plot import plot

        plot(result, run_dir / "curves.png")
        if save_episode:
            final = jax.device_get(result.state if num_seeds is None else result.seed_state(0))
            runs.write_episode(config, final, jax.random.PRNGKey(config.seed), runs.default_episode_path(config, run_dir))
    return result


class _ProgressBar:
    """tqdm bar over env steps (notebook-aware), updated between chunks. Host side."""

    def __init__(self, config: Config, num_seeds: int | None, start_epoch: int, compile_seconds: float):
        from tqdm.auto import tqdm

        self.per_epoch = config.env_steps_per_epoch * (num_seeds or 1)
        self.bar = tqdm(total=config.num_epochs * self.per_epoch, initial=start_epoch * self.per_epoch,
                        unit=" env steps", unit_scale=True, dynamic_ncols=True, desc=config.env,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} env steps "
                                   "[{elapsed}<{remaining}{postfix}]")
        self.bar.write(f"compiled in {compile_seconds:.1f}s")
        self.done = start_epoch * self.per_epoch
        self.start = self.done

    def update(self, epoch: int, last: dict[str, float], run_seconds: float) -> None:
        now = epoch * self.per_epoch
        self.bar.update(now - self.done)
        self.done = now
        self.bar.set_postfix({"epoch": epoch, "eval success": f"{last['eval/success_rate']:.2f}",
                              "steps/s": f"{(now - self.start) / max(run_seconds, 1e-9):,.0f}"}, refresh=True)

    def close(self) -> None:
        self.bar.close()


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


def _compiled(config: Config, num_seeds: int | None, keys: jax.Array) -> tuple[Callable, Any, Callable]:
    """Jitted init, the compiled chunk, and a function placing a host state on the devices,
    for this program; compiled once per process (host side).

    Seeds and the number of chunks are inputs, not part of the program, so re-running a config
    with another seed or length (a notebook loop over seeds) reuses the compiled executable.
    `config.data_shards` must be resolved (see `resolve`)."""
    from hjax import sharding

    key = _program_key(config, num_seeds)
    if key not in _COMPILED:
        lay = sharding.layout(config, num_seeds)
        trainer = make_trainer(config, lay.mesh)
        chunk = config.epochs_per_chunk
        init_fn = trainer.init
        chunk_fn = lambda s: trainer.run_epochs(s, chunk)  # noqa: E731
        if num_seeds is not None:
            axis_name = "seeds" if lay.seed_devices > 1 else None
            init_fn = jax.vmap(init_fn, spmd_axis_name=axis_name)
            chunk_fn = jax.vmap(chunk_fn, spmd_axis_name=axis_name)
        state_shape = jax.eval_shape(init_fn, keys)
        if lay.mesh is None:
            shardings = None
            init_jit = jax.jit(init_fn)
            chunk_jit = jax.jit(chunk_fn, donate_argnums=0)
            place = lambda tree: tree  # noqa: E731
        else:
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
    from hjax import sharding

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
