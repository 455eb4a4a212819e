"""hjax: Hindsight Experience Replay with TD3 in pure JAX."""

__version__ = "0.1.0"
