"""Actor and twin critic MLPs (flax.linen) over normalised (observation, goal) inputs."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class MLP(nn.Module):
    hidden_sizes: Sequence[int]
    out_size: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden_sizes:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.out_size)(x)


class Actor(nn.Module):
    """Deterministic policy `a = tanh(MLP(o, g))` in [-1, 1]^action_size."""

    hidden_sizes: Sequence[int]
    action_size: int

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        return jnp.tanh(MLP(self.hidden_sizes, self.action_size)(inputs))


class TwinCritic(nn.Module):
    """Two independent Q networks `Q_i(o, g, a)` (TD3's clipped double Q)."""

    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, inputs: jax.Array, action: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = jnp.concatenate([inputs, action], axis=-1)
        q1 = MLP(self.hidden_sizes, 1, name="q1")(x)[..., 0]
        q2 = MLP(self.hidden_sizes, 1, name="q2")(x)[..., 0]
        return q1, q2
