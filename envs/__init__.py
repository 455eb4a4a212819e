"""hjax environments: pure-JAX goal-conditioned tasks behind Brax's `Env` interface.

    from hjax import envs
    env = envs.make("point_mass", distance_threshold=0.1)
    state = env.reset(jax.random.PRNGKey(0))
    state = env.step(state, jnp.zeros(env.action_size))
    state.obs["achieved_goal"], state.obs["desired_goal"], state.reward

`envs.NAMES` lists the registered tasks: `point_mass` (pure jnp), `reach` and `push` (a planar
two-link arm on Brax physics), and Fetch's four tasks with a floating two-finger gripper on MJX:
`gripper_reach`, `gripper_push`, `gripper_slide`, `gripper_pick_and_place` (`envs.gripper`).
`envs.render(env, states, path)` writes a watchable trajectory.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from hjax.envs.goal_env import OBS_KEYS, REWARD_TYPES, GoalEnv
from hjax.envs.gripper import GripperPickAndPlace, GripperPush, GripperReach, GripperSlide
from hjax.envs.point_mass import PointMass
from hjax.envs.push import Push
from hjax.envs.reach import Reach
from hjax.envs.render import render

_REGISTRY: dict[str, Callable[..., GoalEnv]] = {
    "point_mass": PointMass,
    "reach": Reach,
    "push": Push,
    "gripper_reach": GripperReach,
    "gripper_push": GripperPush,
    "gripper_slide": GripperSlide,
    "gripper_pick_and_place": GripperPickAndPlace,
}


def register(name: str, factory: Callable[..., GoalEnv]) -> None:
    """Add a task to the registry (its keyword-only arguments become its overrides)."""
    global NAMES
    if name in _REGISTRY:
        raise ValueError(f"env name {name!r} is already registered")
    _REGISTRY[name] = factory
    NAMES = tuple(_REGISTRY)


NAMES: tuple[str, ...] = tuple(_REGISTRY)


def override_names(name: str) -> tuple[str, ...]:
    """The overrides that `make(name, ...)` accepts."""
    _check_name(name)
    params = inspect.signature(_REGISTRY[name]).parameters.values()
    return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def make(name: str, **overrides: Any) -> GoalEnv:
    """Build the registered task `name`; `overrides` replace its documented defaults.

    Raises `ValueError` for an unknown name (listing `NAMES`), an unknown override (listing the
    allowed ones) or an invalid value (naming the field, its value and what is allowed).
    """
    _check_name(name)
    allowed = override_names(name)
    for key in overrides:
        if key not in allowed:
            raise ValueError(f"env {name!r}: unknown override {key!r}; allowed: {', '.join(allowed)}")
    return _REGISTRY[name](**overrides)


def _check_name(name: str) -> None:
    if name not in _REGISTRY:
        raise ValueError(f"unknown env {name!r}; registered envs: {', '.join(NAMES)}")


__all__ = ["NAMES", "OBS_KEYS", "REWARD_TYPES", "GoalEnv", "GripperPickAndPlace", "GripperPush",
           "GripperReach", "GripperSlide", "PointMass", "Push", "Reach", "make",
           "override_names", "register", "render"]
