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

A user's own env needs no registration: `make("mypkg.tasks:MyGoalEnv")` (and so
`Config(env="mypkg.tasks:MyGoalEnv")` and `hjax train --env mypkg.tasks:MyGoalEnv`) imports the
class by its import path; an installed package can also name its envs in the entry point group
`hjax.envs` (`[project.entry-points."hjax.envs"] my_task = "mypkg.tasks:MyGoalEnv"`), after which
`make("my_task")` finds them. `register(name, factory)` adds one for this process.

Importing this package imports neither JAX nor any env: the registry holds import paths, and a
module is imported when its env is first made (so `hjax --help` stays fast).
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any, Callable

# name -> "module:attribute" (imported on first use) or a factory registered in this process
_REGISTRY: dict[str, str | Callable[..., Any]] = {
    "point_mass": "hjax.envs.point_mass:PointMass",
    "reach": "hjax.envs.reach:Reach",
    "push": "hjax.envs.push:Push",
    "gripper_reach": "hjax.envs.gripper:GripperReach",
    "gripper_push": "hjax.envs.gripper:GripperPush",
    "gripper_slide": "hjax.envs.gripper:GripperSlide",
    "gripper_pick_and_place": "hjax.envs.gripper:GripperPickAndPlace",
}
ENTRY_POINT_GROUP = "hjax.envs"
IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
"""`package.module:Attribute`: an env given by import path instead of a registered name."""

NAMES: tuple[str, ...] = tuple(_REGISTRY)

# What `from hjax.envs import X` (or `envs.X`) loads lazily, by module.
_LAZY = {
    "OBS_KEYS": "goal_env", "REWARD_TYPES": "goal_env", "GoalEnv": "goal_env",
    "MissingMemberError": "goal_env", "REQUIRED_MEMBERS": "goal_env", "missing_members": "goal_env",
    "GripperPickAndPlace": "gripper", "GripperPush": "gripper", "GripperReach": "gripper",
    "GripperSlide": "gripper", "PointMass": "point_mass", "Push": "push", "Reach": "reach",
    "render": "render",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"hjax.envs.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hjax.envs' has no attribute {name!r}")


def register(name: str, factory: Callable[..., Any]) -> None:
    """Add a task to this process's registry (its keyword-only arguments become its overrides)."""
    global NAMES
    if name in _REGISTRY:
        raise ValueError(f"env name {name!r} is already registered")
    _REGISTRY[name] = factory
    NAMES = tuple(_REGISTRY)


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def is_import_path(name: Any) -> bool:
    """Whether `name` has the form `package.module:Attribute`."""
    return isinstance(name, str) and bool(IMPORT_PATH.match(name))


def _import(path: str, what: str) -> Callable[..., Any]:
    module_name, _, attr = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except ImportError as e:
        raise ValueError(f"{what}: cannot import module {module_name!r} ({e})") from None
    except AttributeError:
        raise ValueError(f"{what}: module {module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise ValueError(f"{what}: {path} is a {type(obj).__name__}, not an env class or factory")
    return obj


def factory(name: str) -> Callable[..., Any]:
    """The class (or factory) behind a registered name, an entry point or an import path.

    Raises `ValueError` naming what was asked and what is allowed."""
    if not isinstance(name, str):
        raise ValueError(f"invalid env={name!r}; allowed: {_allowed()}")
    entry = _REGISTRY.get(name)
    if entry is None and is_import_path(name):
        return _import(name, f"invalid env={name!r}")
    if entry is None:
        points = _entry_points()
        if name not in points:
            raise ValueError(f"invalid env={name!r}; allowed: {_allowed(points)}")
        return _import(points[name].value, f"env {name!r} (entry point {points[name].value!r})")
    if isinstance(entry, str):
        entry = _import(entry, f"env {name!r}")
        _REGISTRY[name] = entry
    return entry


def _allowed(points: dict | None = None) -> str:
    names = list(NAMES) + sorted(set(points or ()) - set(NAMES))
    return "one of " + ", ".join(names) + ", or an import path package.module:EnvClass"


def override_names(name: str) -> tuple[str, ...]:
    """The overrides that `make(name, ...)` accepts."""
    params = inspect.signature(factory(name)).parameters.values()
    return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def make(name: str, **overrides: Any):
    """Build the task `name` (registered, an entry point, or `package.module:EnvClass`);
    `overrides` replace its documented defaults.

    Raises `ValueError` for an unknown name (listing `NAMES`), an unknown override (listing the
    allowed ones) or an invalid value (naming the field, its value and what is allowed).
    """
    build = factory(name)
    allowed = override_names(name)
    for key in overrides:
        if key not in allowed:
            raise ValueError(f"env {name!r}: unknown override {key!r}; allowed: {', '.join(allowed) or 'none'}")
    env = build(**overrides)
    goal_env = __getattr__("GoalEnv")
    if not isinstance(env, goal_env):
        raise ValueError(f"env {name!r} built a {type(env).__name__}, not a hjax.envs.GoalEnv")
    return env


__all__ = ["ENTRY_POINT_GROUP", "NAMES", "OBS_KEYS", "REQUIRED_MEMBERS", "REWARD_TYPES", "GoalEnv",
           "MissingMemberError", "missing_members", "GripperPickAndPlace",
           "GripperPush", "GripperReach", "GripperSlide", "PointMass", "Push", "Reach", "factory",
           "is_import_path", "make", "override_names", "register", "render"]
