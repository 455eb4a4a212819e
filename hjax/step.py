"""The fused HER + learner training step: pure functions over a `TrainerState`, no host I/O.

`make_trainer(config)` closes over the static config and returns pure functions over a
`TrainerState`. One call of `epoch` is one fused step, traced once and compiled as a whole:

    rollout(num_envs episodes, vmap over envs, scan over T)
      -> update the normalisers -> insert the episodes into the buffer
      -> scan over grad_steps_per_epoch / policy_delay groups of
             (policy_delay x [HER sample -> critic step]) then (actor step + Polyak on the last batch)
         (the learner, `config.algorithm`, is TD3, DDPG or SAC; DDPG and SAC have policy_delay 1)
      -> deterministic evaluation rollout -> metrics of the epoch

`make_train(config)` returns `train(key)`, a scan of `epoch` over the whole run, so
`jax.jit(jax.vmap(make_train(config)))(keys)` trains many seeds at once. The host loop that runs
these epochs in compiled chunks (`hjax.train`) lives in `hjax/loop.py`.
"""

from __future__ import annotations

import copy
from typing import Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from hjax import buffer as buffer_lib
from hjax import her, hyper
from hjax import normalizer as norm_lib
from hjax.buffer import BufferState, Episodes
from hjax.config import Config
from hjax.counter import Counter
from hjax.ddpg import make_ddpg
from hjax.learner import ActorCriticState, Batch, Learner
from hjax.normalizer import NormalizerState
from hjax.sac import SACState, make_sac
from hjax.sharding import constrain_batch
from hjax.td3 import make_td3

# Metric names, in the order a non-finite value is reported (first match wins).
METRIC_NAMES = (
    "loss/critic", "loss/actor", "q/mean", "q/min", "q/max", "grad_norm/critic", "grad_norm/actor",
    "params/max_abs", "action/abs_mean", "action/saturation",
    "train/success_rate", "train/success_count", "train/final_distance",
    "train/met_at_reset_rate", "train/earned_success_count",
    "eval/success_rate", "eval/success_any", "eval/final_distance", "eval/mean_distance",
    "eval/met_at_reset_rate", "eval/earned_success_rate",
    "replay/relabeled_fraction", "replay/positive_reward_fraction",
    "replay/positive_reward_fraction_original", "replay/informative_positive_fraction",
)
"""`*/met_at_reset_rate`: the share of episodes whose goal is met at reset (the chance level of
success, read from the reset observations; no extra env calls). `train/earned_success_count` and
`eval/earned_success_rate`: episodes that end successful and whose goal was NOT met at reset
(success the policy earned). `replay/informative_positive_fraction`: see `hjax.her.Composition`."""
# What only SAC reports, after METRIC_NAMES: its temperature, its policy's entropy (-mean log pi
# of the batch's sampled actions) and the temperature loss.
SAC_METRIC_NAMES = ("policy/entropy", "policy/alpha", "loss/alpha")
COUNTER_NAMES = ("env_steps", "grad_steps")


def metric_names(config: Config) -> tuple[str, ...]:
    """Every metric name a run of `config` reports (besides the counters), in report order."""
    return METRIC_NAMES + (SAC_METRIC_NAMES if config.algorithm == "sac" else ())


@struct.dataclass
class TrainerState:
    """The scan carry of a run: one named field per concern."""

    learner: ActorCriticState | SACState  # TD3State / DDPGState (both ActorCriticState) or SACState
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
    learner: Learner
    init: Callable[[jax.Array], TrainerState]
    epoch: Callable[[TrainerState], tuple[TrainerState, dict]]
    run_epochs: Callable[[TrainerState, int], tuple[TrainerState, dict]]
    rollout: Callable[..., tuple[Episodes, dict]]
    collect: Callable[[TrainerState, jax.Array], tuple[TrainerState, dict]]
    update: Callable[[TrainerState, jax.Array], tuple[ActorCriticState | SACState, dict]]
    policy: Callable[[TrainerState, Mapping[str, jax.Array]], jax.Array]


def make_learner(config: Config, traced: Mapping[str, jax.Array] | None = None) -> Learner:
    """`config.algorithm`'s learner with the config's hyperparameters (see hjax/td3.py,
    hjax/ddpg.py, hjax/sac.py); `traced` replaces some of them (see `make_trainer`)."""
    s = hyper.scalars(config, traced)
    shared = dict(hidden_sizes=config.hidden_sizes, critic_layer_norm=config.critic_layer_norm,
                  action_size=config.make_env().action_size,
                  gamma=s["discount"], tau=s["tau"], actor_lr=s["actor_lr"], critic_lr=s["critic_lr"],
                  target_bounds=(s["q_low"], s["q_high"]), polyak_keep=s["polyak_keep"])
    if config.algorithm == "ddpg":
        return make_ddpg(**shared, action_l2=s["action_l2"], exploration_noise=s["exploration_noise"])
    if config.algorithm == "sac":
        return make_sac(**shared, alpha_lr=s["alpha_lr"], init_alpha=config.init_alpha,
                        log_init_alpha=s["log_init_alpha"], target_entropy=s["target_entropy"])
    return make_td3(**shared, policy_delay=config.policy_delay, target_noise=s["target_noise"],
                    target_noise_clip=s["target_noise_clip"], action_l2=s["action_l2"],
                    exploration_noise=s["exploration_noise"])


def make_trainer(config: Config, mesh=None, traced: Mapping[str, jax.Array] | None = None) -> Trainer:
    """Close over the static `config`; return the pure functions of the run.

    The replay buffer is `config.data_shards` (None: 1) stacked per-shard buffers; each shard
    holds its own envs' episodes and samples batch_size / data_shards transitions per update.
    With a `mesh` (see `hjax.sharding`), the env batch and the shards are placed along its 'data'
    axis; without one nothing is annotated (the single-device fast path).

    `traced` (`hjax.sweep`: called inside the traced program, one grid point's values) replaces
    some resolved hyperparameters of `hjax.hyper.scalars` with arrays; without it every one is
    the config's Python constant, as in `hjax.train`."""
    env = config.make_env()
    s = hyper.scalars(config, traced)
    if traced and "distance_threshold" in traced:  # a sweep's success radius: this point's, on a copy
        env = copy.copy(env)
        env.distance_threshold = s["distance_threshold"]
    shards = config.data_shards or 1
    T = env.episode_length
    sizes = env.observation_size
    obs_dim, goal_dim = sizes["observation"][0], env.goal_size
    act_dim = env.action_size
    learner = make_learner(config, traced)
    delay = learner.policy_delay
    num_groups = config.grad_steps_per_epoch // delay

    def per_shard(fn):
        """`vmap(fn)` over the leading shard axis of its arguments. With one shard, `fn` on that
        shard with the axis put back: the same numbers, without batching every op of `fn` at
        trace time (that batching is a visible part of the compile time on one device)."""
        if shards > 1:
            return jax.vmap(fn)
        return lambda *args: jax.tree.map(lambda x: x[None], fn(*jax.tree.map(lambda x: x[0], args)))

    def inputs(obs_norm, goal_norm, observation, goal):
        return jnp.concatenate([norm_lib.normalize(obs_norm, observation, config.obs_clip),
                                norm_lib.normalize(goal_norm, goal, config.obs_clip)], axis=-1)

    def policy_inputs(state: TrainerState, obs: Mapping[str, jax.Array]) -> jax.Array:
        return inputs(state.obs_norm, state.goal_norm, obs["observation"], obs["desired_goal"])

    def policy(state: TrainerState, obs: Mapping[str, jax.Array]) -> jax.Array:
        """Deterministic action for observation mapping(s) with any leading batch shape (SAC: the
        mean action)."""
        return learner.policy(state.learner.actor_params, policy_inputs(state, obs))

    def init(key: jax.Array) -> TrainerState:
        key_params, key_run = jax.random.split(key)
        return TrainerState(
            learner=learner.init(key_params, obs_dim + goal_dim, act_dim),
            obs_norm=NormalizerState.create(obs_dim), goal_norm=NormalizerState.create(goal_dim),
            buffer=jax.tree.map(lambda x: jnp.stack([x] * shards), buffer_lib.init(
                config.buffer_episodes // shards, T, obs_dim, goal_dim, act_dim)),
            key=key_run, epoch=jnp.zeros((), jnp.int32),
            env_steps=Counter.create(0), grad_steps=Counter.create(0))

    def rollout(state: TrainerState, key: jax.Array, num_envs: int, explore: bool):
        """Play `num_envs` full episodes. With `explore`, the learner's training action (TD3/DDPG:
        Gaussian noise on the policy; SAC: a policy sample), replaced with a uniform random action
        with probability random_action_prob, from the env's `train_reset`; without, the
        deterministic policy from `reset`."""
        key_reset, key_steps = jax.random.split(key)
        reset = env.train_reset if explore else env.reset  # a task's training starts (see GoalEnv)
        env_state = constrain_batch(jax.vmap(reset)(jax.random.split(key_reset, num_envs)), mesh)

        def step(env_state, key_t):
            obs = env_state.obs
            if explore:
                key_explore, key_random, key_choose = jax.random.split(key_t, 3)
                action = learner.explore(state.learner.actor_params, policy_inputs(state, obs), key_explore)
                random_action = jax.random.uniform(key_random, action.shape, minval=-1.0, maxval=1.0)
                take_random = jax.random.uniform(key_choose, (num_envs, 1)) < s["random_action_prob"]
                action = jnp.where(take_random, random_action, action)
            else:
                action = policy(state, obs)
            next_state = jax.vmap(env.step)(env_state, action)
            record = {"success": next_state.metrics["success"], "distance": next_state.metrics["distance"]}
            if explore:  # evaluation keeps no trajectories
                record.update(observation=obs["observation"], achieved_goal=obs["achieved_goal"],
                              desired_goal=obs["desired_goal"], action=action)
            return next_state, record

        met_at_reset = env.is_success(env_state.obs["achieved_goal"], env_state.obs["desired_goal"])
        final, rec = jax.lax.scan(step, env_state, jax.random.split(key_steps, T))
        metrics = {"success": rec["success"], "distance": rec["distance"],  # (T, num_envs)
                   "met_at_reset": met_at_reset.astype(jnp.float32)}  # (num_envs,)
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
            return her.sample(key_shard, shard_buffer, config.batch_size // shards, s["her_strategy"],
                              config.replay_k, env.compute_reward, env.is_success,
                              relabel_p=s["relabel_probability"], n_step=config.n_step, discount=s["discount"])

        tr, composition = per_shard(sample_shard)(jax.random.split(key, shards), state.buffer)
        tr = jax.tree.map(lambda x: x.reshape(config.batch_size, *x.shape[2:]), constrain_batch(tr, mesh))
        composition = jax.tree.map(jnp.mean, composition)
        batch = Batch(inputs=inputs(state.obs_norm, state.goal_norm, tr.observation, tr.goal),
                      next_inputs=inputs(state.obs_norm, state.goal_norm, tr.next_observation, tr.goal),
                      action=tr.action, reward=tr.reward, discount=tr.discount)
        return batch, composition

    def update(state: TrainerState, key: jax.Array) -> tuple[ActorCriticState | SACState, dict]:
        """grad_steps_per_epoch critic steps and grad_steps_per_epoch / policy_delay actor steps.

        The schedule is static (reshape + scan, TD3's delay without a `cond` on a counter):
        each group runs policy_delay - 1 critic-only steps, then a critic step followed by the
        actor and target update on that same batch (DDPG and SAC: groups of one)."""

        def critic(learner_state, keys_step):
            key_sample, key_critic = keys_step
            batch, composition = sample_batch(state, key_sample)
            learner_state, m = learner.critic_step(learner_state, batch, key_critic)
            return learner_state, (m, composition, batch)

        def group(learner_state, key_group):
            # split(k, n)[:m] == split(k, m): the key of the actor step comes last. Critic step
            # i < delay - 1 samples and steps with split(keys[i]); the last one samples with
            # keys[delay - 1] and steps with keys[delay]. One scan over all `delay` critic steps
            # traces (and compiles) the critic step once; the actor takes the last step's batch.
            keys = jax.random.split(key_group, delay + 2)
            step_keys = jnp.concatenate([jax.vmap(jax.random.split)(keys[:delay - 1]),
                                         keys[None, delay - 1:delay + 1]])  # (delay, 2, key)
            learner_state, (m_critic, comp, batches) = jax.lax.scan(critic, learner_state, step_keys)
            last_batch = jax.tree.map(lambda x: x[-1], batches)
            learner_state, m_actor = learner.actor_step(learner_state, last_batch, keys[delay + 1])
            return learner_state, (m_critic, comp, m_actor)

        learner_state, (m_critic, comp, m_actor) = jax.lax.scan(group, state.learner,
                                                                jax.random.split(key, num_groups))
        metrics = {k: v.mean() for k, v in {**m_critic, **m_actor}.items()}
        metrics["q/min"] = m_critic["q/min"].min()
        metrics["q/max"] = m_critic["q/max"].max()
        metrics["replay/relabeled_fraction"] = comp.relabeled_fraction.mean()
        metrics["replay/positive_reward_fraction"] = comp.positive_reward_fraction.mean()
        metrics["replay/positive_reward_fraction_original"] = comp.positive_reward_fraction_original.mean()
        metrics["replay/informative_positive_fraction"] = comp.informative_positive_fraction.mean()
        return learner_state, metrics

    def collect(state: TrainerState, key: jax.Array) -> tuple[TrainerState, dict]:
        """Play num_envs exploratory episodes, fold them into the normalisers and the buffer."""
        episodes, train_m = rollout(state, key, config.num_envs, explore=True)
        state = state.replace(
            obs_norm=norm_lib.update(state.obs_norm, episodes.observation),
            goal_norm=norm_lib.update(norm_lib.update(state.goal_norm, episodes.desired_goal),
                                      episodes.achieved_goal),
            buffer=per_shard(buffer_lib.add)(state.buffer, jax.tree.map(  # env block i -> shard i
                lambda x: x.reshape(shards, config.num_envs // shards, *x.shape[1:]), episodes)))
        return state, train_m

    def epoch(state: TrainerState) -> tuple[TrainerState, dict]:
        """One fused training step (see the module docstring)."""
        key, key_rollout, key_update, key_eval = jax.random.split(state.key, 4)
        state, train_m = collect(state, key_rollout)
        learner_state, update_m = update(state, key_update)
        state = state.replace(learner=learner_state)
        _, eval_m = rollout(state, key_eval, config.num_eval_envs, explore=False)
        state = state.replace(key=key, epoch=state.epoch + 1,
                              env_steps=state.env_steps.add(config.env_steps_per_epoch),
                              grad_steps=state.grad_steps.add(config.grad_steps_per_epoch))
        params = jax.tree.leaves((learner_state.actor_params, learner_state.critic_params))
        metrics = {
            **update_m,
            "params/max_abs": jnp.max(jnp.stack([jnp.max(jnp.abs(p)) for p in params])),
            "train/success_rate": train_m["success"][-1].mean(),
            "train/success_count": train_m["success"][-1].sum(),
            "train/final_distance": train_m["distance"][-1].mean(),
            "train/met_at_reset_rate": train_m["met_at_reset"].mean(),
            "train/earned_success_count": (train_m["success"][-1] * (1.0 - train_m["met_at_reset"])).sum(),
            "eval/success_rate": eval_m["success"][-1].mean(),
            "eval/success_any": eval_m["success"].max(axis=0).mean(),
            "eval/final_distance": eval_m["distance"][-1].mean(),
            "eval/mean_distance": eval_m["distance"].mean(),
            "eval/met_at_reset_rate": eval_m["met_at_reset"].mean(),
            "eval/earned_success_rate": (eval_m["success"][-1] * (1.0 - eval_m["met_at_reset"])).mean(),
            "env_steps": state.env_steps,
            "grad_steps": state.grad_steps,
        }
        return state, metrics

    def run_epochs(state: TrainerState, num_epochs: int) -> tuple[TrainerState, dict]:
        """`num_epochs` (static) epochs in one `lax.scan`; metrics stacked over epochs."""
        return jax.lax.scan(lambda s, _: epoch(s), state, None, length=num_epochs)

    return Trainer(config=config, learner=learner, init=init, epoch=epoch, run_epochs=run_epochs,
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
