"""A step counter that cannot overflow: 64 bits kept as two uint32 words (JAX runs without x64)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class Counter:
    """`value = hi * 2**32 + lo`, exact up to 2**64."""

    hi: jax.Array  # () uint32
    lo: jax.Array  # () uint32

    @classmethod
    def create(cls, value: int = 0) -> "Counter":
        if not 0 <= value < 2**64:
            raise ValueError(f"invalid counter value={value!r}; allowed: 0 <= value < 2**64")
        return cls(hi=jnp.asarray(value >> 32, jnp.uint32), lo=jnp.asarray(value & 0xFFFFFFFF, jnp.uint32))

    def add(self, n: int) -> "Counter":
        """Add a static Python int `0 <= n < 2**32` (jittable; carries into the high word)."""
        if not 0 <= n < 2**32:
            raise ValueError(f"invalid increment n={n!r}; allowed: 0 <= n < 2**32")
        lo = self.lo + jnp.uint32(n)
        return Counter(hi=self.hi + (lo < self.lo).astype(jnp.uint32), lo=lo)


def to_int(counter: Counter) -> np.ndarray:
    """Host side, not jittable: the counter's value(s) as uint64 (any leading batch shape)."""
    hi = np.asarray(counter.hi, np.uint64)
    lo = np.asarray(counter.lo, np.uint64)
    return (hi << np.uint64(32)) | lo
