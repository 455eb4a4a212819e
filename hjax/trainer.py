"""The fused HER + TD3 training step: pure functions over a `TrainerState`, no host I/O.

`make_trainer(config)` closes over the static config and returns pure functions over a
`TrainerState`. One call of `epoch` is one fused step, traced once and compiled as a whole:

    rollout(num_envs episodes, vmap over envs, scan over T)
      -> update the normalisers -> insert the episodes into the buffer
      -> scan over grad_steps_per_epoch / policy_delay groups of
             (policy_delay x [HER sample -> critic step]) then (actor step + Polyak on the last batch)
      -> deterministic evaluation rollout -> metrics of the epoch

`make_train(config)` returns `train(key)`, a scan of `epoch` over the whole run, so
`jax.jit(jax.vmap(make_train(config)))(keys)` trains many seeds at once. The host loop that runs
these epochs in compiled chunks (`hjax.train`) lives in `hjax/train.py`.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from hjax import buffer as buffer_lib
from hjax import her
from hjax import normalizer as norm_lib
from hjax.buffer import BufferState, Episodes
from hjax.config import Config
from hjax.counter import Counter
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
