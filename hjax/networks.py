"""Actor and critic MLPs (flax.linen) over normalised (observation, goal) inputs."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class MLP(nn.Module):
    """ReLU MLP; with `layer_norm`, each hidden layer is Dense -> LayerNorm -> ReLU (as the
    critics of BRO, SimbaV2 and CrossQ normalise theirs)."""

    hidden_sizes: Sequence[int]
    out_size: int
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden_sizes:
            x = nn.Dense(width)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = nn.relu(x)
        return nn.Dense(self.out_size)(x)


class Actor(nn.Module):
    """Deterministic policy `a = tanh(MLP(o, g))` in [-1, 1]^action_size."""

    hidden_sizes: Sequence[int]
    action_size: int

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        return jnp.tanh(MLP(self.hidden_sizes, self.action_size)(inputs))


LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class GaussianActor(nn.Module):
    """SAC's policy head: mean and log std of a diagonal Gaussian over the pre-tanh action `u`;
    the action is `tanh(u)` (Haarnoja et al. 2018, Appendix C). The log std is clipped to
    [LOG_STD_MIN, LOG_STD_MAX] (the SAC authors' code and Stable-Baselines3: -20, 2)."""

    hidden_sizes: Sequence[int]
    action_size: int

    @nn.compact
    def __call__(self, inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = MLP(self.hidden_sizes, 2 * self.action_size)(inputs)
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)


class Critic(nn.Module):
    """One Q network `Q(o, g, a)` (DDPG); `layer_norm` as in `MLP`."""

    hidden_sizes: Sequence[int]
    layer_norm: bool = False

    @nn.compact
    def __call__(self, inputs: jax.Array, action: jax.Array) -> jax.Array:
        x = jnp.concatenate([inputs, action], axis=-1)
        return MLP(self.hidden_sizes, 1, self.layer_norm, name="q")(x)[..., 0]


class TwinCritic(nn.Module):
    """Two independent Q networks `Q_i(o, g, a)` (TD3's clipped double Q; SAC); `layer_norm` as
    in `MLP`."""

    hidden_sizes: Sequence[int]
    layer_norm: bool = False

    @nn.compact
    def __call__(self, inputs: jax.Array, action: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = jnp.concatenate([inputs, action], axis=-1)
        q1 = MLP(self.hidden_sizes, 1, self.layer_norm, name="q1")(x)[..., 0]
        q2 = MLP(self.hidden_sizes, 1, self.layer_norm, name="q2")(x)[..., 0]
        return q1, q2
