"""Running mean/std normaliser for observations and goals (HER paper, baselines `Normalizer`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

STD_EPS = 1e-2  # baselines HER: std = max(std, eps) with eps = 0.01


@struct.dataclass
class NormalizerState:
    """Exact running moments, merged per batch with Chan et al.'s parallel update."""

    count: jax.Array  # () float32, samples seen
    mean: jax.Array  # (dim,) float32
    m2: jax.Array  # (dim,) float32, sum of squared deviations from the mean

    @classmethod
    def create(cls, dim: int) -> "NormalizerState":
        return cls(count=jnp.zeros((), jnp.float32), mean=jnp.zeros(dim, jnp.float32),
                   m2=jnp.zeros(dim, jnp.float32))

    @property
    def std(self) -> jax.Array:
        """Population std (as `np.std`), floored at STD_EPS; 1.0 before any data."""
        var = jnp.where(self.count > 0, self.m2 / jnp.maximum(self.count, 1.0), 1.0)
        return jnp.maximum(jnp.sqrt(var), STD_EPS)


def update(state: NormalizerState, x: jax.Array) -> NormalizerState:
    """Fold the rows of `x` (any leading shape, last axis = dim) into the running moments."""
    x = x.reshape(-1, x.shape[-1]).astype(jnp.float32)
    n = jnp.asarray(x.shape[0], jnp.float32)
    batch_mean = x.mean(axis=0)
    batch_m2 = jnp.sum(jnp.square(x - batch_mean), axis=0)
    total = state.count + n
    delta = batch_mean - state.mean
    mean = state.mean + delta * (n / total)
    m2 = state.m2 + batch_m2 + jnp.square(delta) * (state.count * n / total)
    return NormalizerState(count=total, mean=mean, m2=m2)


def normalize(state: NormalizerState, x: jax.Array, clip: float) -> jax.Array:
    """`clip((x - mean) / std, -clip, clip)`."""
    return jnp.clip((x - state.mean) / state.std, -clip, clip)
