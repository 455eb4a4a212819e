"""The on-device episode buffer: a ring of whole fixed-length episodes (pure init/add functions).

Episodes are stored as they happened; HER relabels at sampling time (`hjax.her`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Episodes:
    """A batch of whole episodes, as collected by a rollout."""

    observation: jax.Array  # (num_episodes, T + 1, obs_dim), o_0 .. o_T
    achieved_goal: jax.Array  # (num_episodes, T + 1, goal_dim), ag_0 .. ag_T
    desired_goal: jax.Array  # (num_episodes, T, goal_dim), g_0 .. g_{T-1}
    action: jax.Array  # (num_episodes, T, action_dim), a_0 .. a_{T-1}

    @property
    def num_episodes(self) -> int:
        return self.action.shape[0]

    @property
    def episode_length(self) -> int:
        return self.action.shape[1]


@struct.dataclass
class BufferState:
    """Ring buffer of `capacity` episodes; `size` of them hold data, the next goes to `insert_pos`."""

    data: Episodes  # every field has leading axis `capacity`
    insert_pos: jax.Array  # () int32, slot of the next episode
    size: jax.Array  # () int32, number of stored episodes (<= capacity)

    @property
    def capacity(self) -> int:
        return self.data.action.shape[0]


def init(capacity: int, episode_length: int, obs_dim: int, goal_dim: int, action_dim: int) -> BufferState:
    """An empty buffer; every array is allocated up front (static shapes)."""
    if capacity < 1 or episode_length < 1:
        raise ValueError(f"invalid buffer capacity={capacity!r} or episode_length={episode_length!r}; "
                         "allowed: integers >= 1")
    T = episode_length
    zeros = lambda *shape: jnp.zeros((capacity, *shape), jnp.float32)  # noqa: E731
    data = Episodes(observation=zeros(T + 1, obs_dim), achieved_goal=zeros(T + 1, goal_dim),
                    desired_goal=zeros(T, goal_dim), action=zeros(T, action_dim))
    return BufferState(data=data, insert_pos=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def add(state: BufferState, episodes: Episodes) -> BufferState:
    """Insert a batch of episodes at the ring position, overwriting the oldest when full."""
    n, capacity = episodes.num_episodes, state.capacity
    if n > capacity:
        raise ValueError(f"cannot add {n} episodes to a buffer of capacity {capacity}")
    slots = (state.insert_pos + jnp.arange(n, dtype=jnp.int32)) % capacity
    data = jax.tree.map(lambda buf, new: buf.at[slots].set(new, unique_indices=True), state.data, episodes)
    return BufferState(data=data, insert_pos=(state.insert_pos + n) % capacity,
                       size=jnp.minimum(state.size + n, capacity))
