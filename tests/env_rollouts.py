"""Batched random rollouts for the env tests, compiled once per env per session.

A Brax env takes 5-15 s to compile here (and far longer to run eagerly, op by op), so the env
test modules share one compiled batched `reset` and one compiled `rollout` per env instead of
compiling their own. Not a test module.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp

from hjax import envs

NUM_ENVS = 16  # batch for the pure-jnp envs
SHARED_EPISODE_SEED = 1  # the key of `Compiled.shared_episode`
PHYSICS_NUM_ENVS = 256  # batch for the Brax envs: one compile either way, and ~0.2 s per episode


def reset_batch(env, key: jax.Array, num_envs: int):
    """`num_envs` fresh episodes (leading axis: env)."""
    return jax.vmap(env.reset)(jax.random.split(key, num_envs))


def rollout(env, state0, key: jax.Array, steps: int, base_action=0.0, noise=1.0):
    """Step the batch `steps` times with actions `base_action + noise * U(-1, 1)`.

    Returns `(final_state, states)`, `states` with leading axes (time, env).
    """
    num_envs = state0.reward.shape[0]

    def body(state, key_t):
        u = jax.random.uniform(key_t, (num_envs, env.action_size), minval=-1, maxval=1)
        state = jax.vmap(env.step)(state, base_action + noise * u)
        return state, state

    return jax.lax.scan(body, state0, jax.random.split(key, steps))


def random_episode(env, key: jax.Array, num_envs: int = NUM_ENVS, steps: int | None = None,
                   scale: float = 1.0):
    """Roll `num_envs` random-action episodes; returns `(state0, states)` (states: time, env)."""
    steps = env.episode_length if steps is None else steps
    key_reset, key_act = jax.random.split(key)
    state0 = reset_batch(env, key_reset, num_envs)
    return state0, rollout(env, state0, key_act, steps, noise=scale)[1]


@dataclasses.dataclass(frozen=True)
class Compiled:
    """One env with its compiled batched reset and episode-long rollout."""

    env: envs.GoalEnv
    num_envs: int
    reset: Callable[[jax.Array], Any]  # key -> batched State
    rollout: Callable[..., Any]  # (state0, key, base_action (num_envs, a), noise) -> (final, states)

    def zeros(self) -> jax.Array:
        return jnp.zeros((self.num_envs, self.env.action_size), jnp.float32)

    def episode(self, key: jax.Array, scale: float = 1.0):
        """Same as `random_episode(env, key, num_envs, scale=scale)`, from the compiled pieces."""
        key_reset, key_act = jax.random.split(key)
        state0 = self.reset(key_reset)
        return state0, self.rollout(state0, key_act, self.zeros(), scale)[1]

    @functools.cached_property
    def shared_episode(self) -> tuple[Any, Any]:
        """`episode(PRNGKey(SHARED_EPISODE_SEED))`, run once per env and session (`compiled` keeps
        one object per env): the tests that only read a random episode share it (a batch of
        physics episodes costs 10-30 s on a 2-core CPU)."""
        return self.episode(jax.random.PRNGKey(SHARED_EPISODE_SEED))


@functools.lru_cache(maxsize=None)
def compiled(name: str) -> Compiled:
    """The registered env `name` (default settings) and its compiled rollout pieces."""
    env = envs.make(name)
    num_envs = NUM_ENVS if env.backend == "jnp" else PHYSICS_NUM_ENVS
    reset = jax.jit(lambda key: reset_batch(env, key, num_envs))
    run = jax.jit(lambda state0, key, base_action, noise:
                  rollout(env, state0, key, env.episode_length, base_action, noise))
    return Compiled(env=env, num_envs=num_envs, reset=reset, rollout=run)
