"""The HER relabeling kernel (Andrychowicz et al. 2017): O(batch) index arithmetic, no T x T masks.

Sampling is split in two pure steps so each can be checked on its own:

1. `sample_indices` draws, for every batch row, an episode, a time step t, whether to relabel
   (probability `1 - 1/(1+k)`, HER Sec. 4.5 / baselines `future_p`), and the (episode, t') whose
   achieved goal becomes the new goal, following the strategy (HER Sec. 3.3):

   - future:  t' uniform in {t+1, ..., T}: achieved after action t or later (baselines semantics,
              `t' = t + 1 + floor(u * (T - t))`);
   - final:   t' = T, the episode's last achieved goal;
   - episode: t' uniform in {0, ..., T} of the same episode;
   - random:  t' uniform in {0, ..., T} of an episode drawn uniformly from the stored ones;
   - none:    no row is relabeled (the no-HER baseline on the same code path).

2. `relabel` gathers the transitions and goals for those indices and recomputes the reward with
   the env's own `compute_reward(ag_{t+1}, goal)`, returning the batch and its composition:
   relabeled and success-reward fractions, and the informative positives (relabeled successes
   whose goal ag_t had not met yet: the achieved goal moved onto it during step t).

   With `n_step` n > 1 (`Config.n_step`) each row is an n-step transition under its (relabeled)
   goal g: m = min(n, T - t) steps, since an episode's last stored observation is o_T; reward
   `sum_{i<m} gamma^i compute_reward(ag_{t+i+1}, g)`, next observation o_{t+m}, and the bootstrap's
   discount gamma^m in `Transition.discount`. The composition metrics stay those of the first
   step's reward.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import struct

from hjax.buffer import BufferState

STRATEGIES = ("future", "final", "episode", "random", "none")


@struct.dataclass
class HerIndices:
    """Where each batch row comes from."""

    episode: jax.Array  # (B,) int32, stored episode of the transition
    t: jax.Array  # (B,) int32, time step of the transition, in [0, T)
    relabel: jax.Array  # (B,) bool, whether the goal is replaced
    goal_episode: jax.Array  # (B,) int32, episode whose achieved goal is the new goal
    goal_t: jax.Array  # (B,) int32, time of that achieved goal, in [0, T]


@struct.dataclass
class Transition:
    """A batch of goal-conditioned transitions (o_t, g, a_t, r_t, o_{t+1})."""

    observation: jax.Array  # (B, obs_dim)
    next_observation: jax.Array  # (B, obs_dim)
    goal: jax.Array  # (B, goal_dim), after relabeling
    action: jax.Array  # (B, action_dim)
    reward: jax.Array  # (B,) compute_reward(ag_{t+1}, goal); n-step: the discounted sum of m rewards
    discount: jax.Array | None = None  # (B,) n-step only: gamma^m, the bootstrap's discount


@struct.dataclass
class Composition:
    """What the batch is made of: the replay-composition metrics."""

    relabeled_fraction: jax.Array  # () fraction of rows whose goal was replaced
    positive_reward_fraction: jax.Array  # () fraction with a success reward after relabeling
    positive_reward_fraction_original: jax.Array  # () the same with the original goals
    informative_positive_fraction: jax.Array  # () rows relabeled to a success whose goal was not
    # already met at the transition's own step t: ag_t misses the goal, ag_{t+1} meets it (the
    # achieved goal moved onto it). An untouched object makes every relabeled goal its resting
    # place, met at t and t+1 alike: positives, but nothing to learn from (hjax.diagnosis).


def goal_time(strategy: str | jax.Array, t: jax.Array, u: jax.Array, episode_length: int) -> jax.Array:
    """t' for each row from a uniform `u` in [0, 1) (see the module docstring).

    `strategy` is a name, or (in a sweep, `hjax.sweep`) a traced int32 index into STRATEGIES,
    which picks the same arithmetic with `lax.switch`."""
    T = episode_length
    if not isinstance(strategy, str):
        branches = [lambda t, u, s=s: goal_time(s, t, u, T) for s in STRATEGIES]
        return jax.lax.switch(strategy, branches, t, u)
    if strategy == "future":
        goal_t = t + 1 + jnp.floor(u * (T - t)).astype(jnp.int32)
    elif strategy == "final":
        goal_t = jnp.full_like(t, T)
    elif strategy in ("episode", "random"):
        goal_t = jnp.floor(u * (T + 1)).astype(jnp.int32)
    elif strategy == "none":
        goal_t = t + 1
    else:
        raise ValueError(f"invalid her_strategy={strategy!r}; allowed: one of {', '.join(STRATEGIES)}")
    return jnp.minimum(goal_t, T)  # guards u rounding up to 1.0 in float32


def relabel_probability(strategy: str, replay_k: float) -> float:
    """`1 - 1/(1+k)` (HER Sec. 4.5, baselines `future_p`), 0 for 'none'."""
    return 0.0 if strategy == "none" else 1.0 - 1.0 / (1.0 + replay_k)


def sample_indices(key: jax.Array, num_stored: jax.Array, episode_length: int, batch_size: int,
                   strategy: str | jax.Array, replay_k: float | None,
                   relabel_p: jax.Array | None = None) -> HerIndices:
    """Draw `batch_size` transitions uniformly from `num_stored` episodes, and their HER goals.

    `relabel_p`, when given, is `relabel_probability(strategy, replay_k)` as the caller computed it
    (`hjax.hyper`: on the host in float64); in a sweep `strategy` is a traced index into STRATEGIES
    and `relabel_p` a traced float32, one grid point's."""
    if isinstance(strategy, str) and strategy not in STRATEGIES:
        raise ValueError(f"invalid her_strategy={strategy!r}; allowed: one of {', '.join(STRATEGIES)}")
    if not isinstance(strategy, str) and relabel_p is None:
        raise ValueError("a traced her_strategy index needs its relabel_p")
    key_ep, key_t, key_relabel, key_u, key_goal_ep = jax.random.split(key, 5)
    shape = (batch_size,)
    episode = jax.random.randint(key_ep, shape, 0, num_stored, dtype=jnp.int32)
    t = jax.random.randint(key_t, shape, 0, episode_length, dtype=jnp.int32)
    p = relabel_probability(strategy, replay_k) if relabel_p is None else relabel_p
    relabel = jax.random.uniform(key_relabel, shape) < p
    goal_t = goal_time(strategy, t, jax.random.uniform(key_u, shape), episode_length)
    if isinstance(strategy, str) and strategy != "random":
        goal_episode = episode
    else:
        random_episode = jax.random.randint(key_goal_ep, shape, 0, num_stored, dtype=jnp.int32)
        goal_episode = (random_episode if isinstance(strategy, str)
                        else jnp.where(strategy == STRATEGIES.index("random"), random_episode, episode))
    return HerIndices(episode=episode, t=t, relabel=relabel, goal_episode=goal_episode, goal_t=goal_t)


def relabel(buffer: BufferState, idx: HerIndices,
            compute_reward: Callable[[jax.Array, jax.Array], jax.Array],
            is_success: Callable[[jax.Array, jax.Array], jax.Array],
            n_step: int = 1, discount: float | jax.Array | None = None) -> tuple[Transition, Composition]:
    """Gather the batch for `idx`, swap in HER goals and recompute rewards (a pure gather).

    `n_step` > 1 needs `discount` (gamma; a traced scalar in a sweep): see the module docstring."""
    d = buffer.data
    ep, t = idx.episode, idx.t
    achieved_now = d.achieved_goal[ep, t]  # ag_t: before action t
    achieved_next = d.achieved_goal[ep, t + 1]  # ag_{t+1}: what action t achieved
    original_goal = d.desired_goal[ep, t]
    her_goal = d.achieved_goal[idx.goal_episode, idx.goal_t]
    goal = jnp.where(idx.relabel[:, None], her_goal, original_goal)
    if n_step == 1:
        batch = Transition(observation=d.observation[ep, t], next_observation=d.observation[ep, t + 1],
                           goal=goal, action=d.action[ep, t], reward=compute_reward(achieved_next, goal))
    else:
        batch = _n_step_transition(d, ep, t, goal, compute_reward, n_step, discount)
    positive = is_success(achieved_next, goal)
    composition = Composition(
        relabeled_fraction=idx.relabel.mean(dtype=jnp.float32),
        positive_reward_fraction=positive.mean(),
        positive_reward_fraction_original=is_success(achieved_next, original_goal).mean(),
        informative_positive_fraction=(idx.relabel & (positive > 0)
                                       & (is_success(achieved_now, goal) == 0)).mean(dtype=jnp.float32),
    )
    return batch, composition


def _n_step_transition(d, ep: jax.Array, t: jax.Array, goal: jax.Array, compute_reward, n_step: int,
                       discount) -> Transition:
    """The n-step rows for episodes `ep`, steps `t` and goals `goal` (module docstring)."""
    if discount is None:
        raise ValueError(f"n_step={n_step} needs the discount (gamma) of its rewards")
    B, T = t.shape[0], d.episode_length
    i = jnp.arange(n_step, dtype=jnp.int32)  # (n,)
    m = jnp.minimum(n_step, T - t)  # (B,) steps before the episode's last observation o_T
    times = jnp.minimum(t[:, None] + 1 + i, T)  # (B, n): ag_{t+i+1}, clipped (weight 0 past m)
    achieved = d.achieved_goal[ep[:, None], times]  # (B, n, goal_dim)
    rewards = compute_reward(achieved.reshape(B * n_step, -1), jnp.repeat(goal, n_step, axis=0)).reshape(B, n_step)
    gamma = jnp.asarray(discount, jnp.float32)
    weights = jnp.where(i < m[:, None], gamma ** i.astype(jnp.float32), 0.0)  # gamma^i for i < m, else 0
    return Transition(observation=d.observation[ep, t], next_observation=d.observation[ep, t + m], goal=goal,
                      action=d.action[ep, t], reward=jnp.sum(weights * rewards, axis=1),
                      discount=gamma ** m.astype(jnp.float32))


def sample(key: jax.Array, buffer: BufferState, batch_size: int, strategy: str | jax.Array, replay_k: float | None,
           compute_reward, is_success, relabel_p: jax.Array | None = None, n_step: int = 1,
           discount: float | jax.Array | None = None) -> tuple[Transition, Composition]:
    """`sample_indices` then `relabel`: one HER batch from the buffer's stored episodes."""
    idx = sample_indices(key, buffer.size, buffer.data.episode_length, batch_size, strategy, replay_k, relabel_p)
    return relabel(buffer, idx, compute_reward, is_success, n_step, discount)
