"""The hyperparameters a sweep can trace: Config fields that change no array shape and no program
structure, and the resolved scalars the fused step reads from them. Pure; imports no JAX.

The fused step (`hjax.step.make_trainer`) reads every such scalar from one mapping,
`scalars(config, traced)`: the Python constants of `config` (what `hjax.train` traces, unchanged),
with the names in `traced` replaced by arrays (`hjax.sweep`, one value per grid point). The traced
values are computed on the host exactly as the constants are, in float64 (`1 - tau`,
`log(init_alpha)`, `1 - 1/(1+k)`, the Q bounds `r/(1 - gamma)`), then cast to float32, which is the
value a Python constant takes in a float32 op; so a swept point runs the same float32 arithmetic
as the run trained alone (`tests/test_sweep.py` checks the bits).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from hjax.config import HER_STRATEGIES, Config

SWEEPABLE: Mapping[str, tuple[str, ...]] = {
    "actor_lr": ("actor_lr",),
    "critic_lr": ("critic_lr",),
    "alpha_lr": ("alpha_lr",),
    "tau": ("tau", "polyak_keep"),
    "gamma": ("discount", "q_low", "q_high"),
    "exploration_noise": ("exploration_noise",),
    "random_action_prob": ("random_action_prob",),
    "action_l2": ("action_l2",),
    "target_noise": ("target_noise",),
    "target_noise_clip": ("target_noise_clip",),
    "init_alpha": ("log_init_alpha",),
    "target_entropy": ("target_entropy",),
    "replay_k": ("relabel_probability",),
    "her_strategy": ("her_strategy", "relabel_probability"),
    "distance_threshold": ("distance_threshold",),
}
"""Sweepable field -> the resolved scalars (`scalars`) it changes. Every key is a Config field but
those in `ENV_FIELDS`, which are env parameters (set through `env_kwargs`)."""

ENV_FIELDS = ("distance_threshold",)
"""Sweepable env parameters: the success radius enters only as a value (`GoalEnv.is_success` reads
`env.distance_threshold` when called), so a sweep sets it per grid point on a copy of the env.
A point's Config carries it in `env_kwargs`, as `hjax.train` would be given it."""

NOT_SWEEPABLE_WHY = {
    "env_kwargs": "an env is built once per Config and folds most of its parameters (episode_length, "
                  "n_frames, ...) into its own methods and shapes, so they are constants of the program; "
                  "sweep distance_threshold by name (grid={'distance_threshold': [...]}) and the others "
                  "with one hjax.sweep per value",
    "seed": "seeds are the sweep's own axis: use num_seeds",
}
"""Why some fields that look like values are not sweepable (said in the error)."""


_ORDER = ("actor_lr", "critic_lr", "alpha_lr", "tau", "polyak_keep", "discount", "q_low", "q_high",
          "exploration_noise", "random_action_prob", "action_l2", "target_noise", "target_noise_clip",
          "log_init_alpha", "target_entropy", "relabel_probability", "her_strategy", "distance_threshold")
"""Every resolved scalar, in the order `constants` returns them."""


def constants(config: Config) -> dict[str, Any]:
    """Every resolved scalar of `config` as the Python value the fused step uses."""
    low, high = config.q_target_bounds()
    action_size = config.make_env().action_size
    return {
        "actor_lr": config.actor_lr, "critic_lr": config.critic_lr, "alpha_lr": config.alpha_lr,
        "tau": config.tau, "polyak_keep": 1.0 - config.tau,
        "discount": config.discount, "q_low": low, "q_high": high,
        "exploration_noise": config.exploration_noise, "random_action_prob": config.random_action_prob,
        "action_l2": config.action_l2, "target_noise": config.target_noise,
        "target_noise_clip": config.target_noise_clip,
        "log_init_alpha": math.log(config.init_alpha),
        "target_entropy": -float(action_size) if config.target_entropy is None else float(config.target_entropy),
        "relabel_probability": config.relabel_probability, "her_strategy": config.her_strategy,
        "distance_threshold": config.make_env().distance_threshold,
    }


def traced_names(fields: tuple[str, ...]) -> tuple[str, ...]:
    """The resolved scalars that the swept `fields` change, in `constants` order."""
    changed = {name for field in fields for name in SWEEPABLE[field]}
    return tuple(name for name in _ORDER if name in changed)


def point_values(configs: list[Config], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """`{name: (points,) array}` of the resolved scalars `names` of each config: float32 values
    rounded from the float64 constants, and her_strategy as an int32 index into HER_STRATEGIES."""
    out = {}
    for name in names:
        values = [constants(c)[name] for c in configs]
        if name == "her_strategy":
            out[name] = np.asarray([HER_STRATEGIES.index(v) for v in values], np.int32)
        else:
            out[name] = np.asarray(values, np.float64).astype(np.float32)
    return out


def scalars(config: Config, traced: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`constants(config)` with the entries of `traced` (arrays, one grid point's) in their place."""
    values = constants(config)
    for name, value in (traced or {}).items():
        if name not in values:
            raise ValueError(f"invalid traced hyperparameter {name!r}; allowed: one of {', '.join(_ORDER)}")
        values[name] = value
    return values
