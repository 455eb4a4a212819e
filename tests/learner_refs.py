"""What the learner tests share: random batches, and NumPy forward passes of `hjax.networks`
from their flax parameter dicts (the independent reference the losses are compared against)."""

import jax
import jax.numpy as jnp
import numpy as np

from hjax.learner import Batch


def random_batch(key, size: int, input_size: int, action_size: int) -> Batch:
    """Random normalised inputs, uniform actions, and sparse rewards (-1 for 70% of rows)."""
    k = jax.random.split(key, 4)
    return Batch(inputs=jax.random.normal(k[0], (size, input_size)),
                 next_inputs=jax.random.normal(k[1], (size, input_size)),
                 action=jax.random.uniform(k[2], (size, action_size), minval=-1, maxval=1),
                 reward=-(jax.random.uniform(k[3], (size,)) < 0.7).astype(jnp.float32))


def np_mlp(params, x):
    """NumPy forward of hjax.networks.MLP from its flax parameter dict (with its LayerNorm_i after
    hidden layer i when it has them: (x - mean) / sqrt(var + 1e-6) * scale + bias)."""
    layers = sorted((n for n in params if n.startswith("Dense_")), key=lambda n: int(n.split("_")[1]))
    for i, name in enumerate(layers):
        x = x @ np.asarray(params[name]["kernel"], np.float64) + np.asarray(params[name]["bias"], np.float64)
        if i < len(layers) - 1:
            if f"LayerNorm_{i}" in params:
                ln = params[f"LayerNorm_{i}"]
                x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-6)
                x = x * np.asarray(ln["scale"], np.float64) + np.asarray(ln["bias"], np.float64)
            x = np.maximum(x, 0.0)
    return x


def np_actor(params, x):
    """`Actor`: tanh of the MLP."""
    return np.tanh(np_mlp(params["params"]["MLP_0"], x))


def np_gaussian_actor(params, x):
    """`GaussianActor`: (mean, log std clipped to [-20, 2]) of the pre-tanh Gaussian."""
    out = np_mlp(params["params"]["MLP_0"], x)
    half = out.shape[-1] // 2
    return out[:, :half], np.clip(out[:, half:], -20.0, 2.0)


def np_critic(params, x, a):
    """`Critic`: one Q value per row."""
    return np_mlp(params["params"]["q"], np.concatenate([x, a], axis=-1))[:, 0]


def np_twin_critic(params, x, a):
    """`TwinCritic`: (Q1, Q2) per row."""
    xa = np.concatenate([x, a], axis=-1)
    return np_mlp(params["params"]["q1"], xa)[:, 0], np_mlp(params["params"]["q2"], xa)[:, 0]
