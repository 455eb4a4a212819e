"""The goal-env API shared by every hjax environment.

A goal env is a Brax `Env` (`reset(key) -> State`, `step(state, action) -> State`) that is
unbatched (batch it with `jax.vmap`) and whose `state.obs` is a mapping with exactly the keys
`observation`, `achieved_goal` and `desired_goal` (the Gymnasium-Robotics `GoalEnv` convention).

Invariant, on every step: `state.reward == env.compute_reward(achieved_goal, desired_goal)`
where both goals are read from `state.obs` after the step.

Episodes have a fixed length and end by truncation only: reaching the goal does not end an
episode (a continuing task, as in Fetch). `state.info["truncation"]` is 1.0 on the step that hits
`episode_length` and `state.done` equals it, as Brax's `EpisodeWrapper` does, so a learner can
tell a time limit from a terminal (a goal env has no terminals: learners bootstrap through it).

A subclass provides the members in `REQUIRED_MEMBERS` (GoalEnv's abstract members, its own and
Brax `Env`'s); building one that leaves any unimplemented raises `MissingMemberError`, which
names them (`missing_members(cls)` lists them without building anything).
"""

from __future__ import annotations

import abc
import math
from typing import Any, Mapping

import contextlib
import io

import jax
import jax.numpy as jnp

# MuJoCo's optional Warp backend prints "Failed to import warp" when brax imports it; hjax never
# uses Warp, so that line only alarms users. Anything else brax prints still shows.
with contextlib.redirect_stdout(io.StringIO()):
    from brax.envs.base import Env, State

OBS_KEYS = ("observation", "achieved_goal", "desired_goal")
REWARD_TYPES = ("sparse", "dense")


def check_param(env: str, field: str, value: Any, ok: bool, allowed: str) -> None:
    """Raise a `ValueError` naming the env, the field, its value and what is allowed."""
    if not ok:
        raise ValueError(f"{env}: invalid {field}={value!r}; allowed: {allowed}")


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_positive(env: str, field: str, value: Any) -> None:
    check_param(env, field, value, _is_real(value) and value > 0, "a finite number > 0")


def check_positive_int(env: str, field: str, value: Any) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    check_param(env, field, value, ok, "an integer > 0")


REQUIRED_MEMBERS: Mapping[str, str] = {
    "_reset_goal_env": "a method _reset_goal_env(key) returning (physics_state, observation, "
                       "achieved_goal, desired_goal) for a new episode",
    "_step_goal_env": "a method _step_goal_env(physics_state, action) returning (physics_state, "
                      "observation, achieved_goal) one step later",
    "goal_size": "a property goal_size, the length of the goal vectors",
    "max_goal_distance": "a property max_goal_distance, an upper bound on ||achieved - desired|| "
                         "(it bounds the dense reward)",
    "action_size": "a property action_size, the length of the action vector (actions lie in [-1, 1])",
    "backend": 'a property backend, a name for what simulates the env ("jnp" for plain jax.numpy)',
}
"""What every `GoalEnv` subclass must implement: member name -> what it is. These are exactly
`GoalEnv`'s abstract members; everything else (reward, metrics, truncation, `reset`, `step`,
`observation_size`) the base class provides."""


def missing_members(cls: type) -> tuple[str, ...]:
    """The abstract members of `GoalEnv` that the class `cls` leaves unimplemented, sorted;
    empty when `cls` can be built. Builds nothing."""
    return tuple(sorted(getattr(cls, "__abstractmethods__", ())))


class MissingMemberError(TypeError, ValueError):
    """A `GoalEnv` subclass was built without every member it needs.

    The message names the class (and its import path) and each missing member with what it is;
    `env_class` and `missing_members` hold them. A `TypeError`, as Python raises for any abstract
    class, and a `ValueError`, as `hjax.envs.make` raises for everything else it rejects.
    """

    def __init__(self, env_class: type, missing: tuple[str, ...]):
        self.env_class = env_class
        self.missing_members = tuple(missing)
        names = " and ".join(", ".join(missing).rsplit(", ", 1))
        what = "; ".join(REQUIRED_MEMBERS.get(m) or f"{m}, abstract in {_declared_by(env_class, m)}"
                         for m in missing)
        # Members an intermediate base class (say PlanarArmEnv) adds are not every GoalEnv's.
        needs = "every GoalEnv needs" if all(m in REQUIRED_MEMBERS for m in missing) else "its base classes need"
        super().__init__(f"{env_class.__name__} ({env_class.__module__}:{env_class.__qualname__}) "
                         f"does not implement {names}, which {needs} ({what})")


def _declared_by(cls: type, name: str) -> str:
    """The base class of `cls` that declares `name` abstract, by import path."""
    for base in cls.__mro__:
        if getattr(base.__dict__.get(name), "__isabstractmethod__", False):
            return f"{base.__module__}:{base.__qualname__}"
    return "a base class"


class _NamesMissingMembers:
    """Where `GoalEnv`'s `__new__` lives: building a class that misses a required member raises
    `MissingMemberError` (Python's own check would refuse it too, without saying what the members
    are for). A base after `GoalEnv` in the MRO, not `GoalEnv` itself, so that
    `inspect.signature(EnvClass)`, which `hjax.envs.override_names` reads, still finds the nearest
    `__init__` first (a `__new__` on `GoalEnv` would hide `GoalEnv.__init__`'s keyword-only
    arguments from a subclass without its own `__init__`)."""

    def __new__(cls, *args: Any, **kwargs: Any):
        missing = missing_members(cls)
        if missing:
            raise MissingMemberError(cls, missing)
        return super().__new__(cls)


class GoalEnv(Env, _NamesMissingMembers, abc.ABC):
    """Base class: sparse/dense goal reward, success and distance metrics, truncation.

    Subclasses implement `_reset_goal_env` and `_step_goal_env` over their own physics state and
    never compute rewards or time limits themselves: this class does, the same way for every env,
    so the invariants hold by construction and are tested once for all envs.
    """

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: the usual cause for these three is a subclass
        # whose __init__ never called GoalEnv.__init__.
        if name in ("distance_threshold", "episode_length", "reward_type"):
            raise AttributeError(
                f"{type(self).__name__} has no {name}: its __init__ must call super().__init__("
                "distance_threshold=..., episode_length=..., reward_type=...)")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __init__(
        self,
        *,
        distance_threshold: float,
        episode_length: int,
        reward_type: str,
    ):
        name = type(self).__name__
        check_positive(name, "distance_threshold", distance_threshold)
        check_positive_int(name, "episode_length", episode_length)
        check_param(name, "reward_type", reward_type, reward_type in REWARD_TYPES,
                    " or ".join(repr(r) for r in REWARD_TYPES))
        self.distance_threshold = float(distance_threshold)
        self.episode_length = int(episode_length)
        self.reward_type = reward_type

    # ---- what a subclass provides -------------------------------------------------------------

    @abc.abstractmethod
    def _reset_goal_env(self, key: jax.Array) -> tuple[Any, jax.Array, jax.Array, jax.Array]:
        """Return `(physics_state, observation, achieved_goal, desired_goal)` for a new episode."""

    @abc.abstractmethod
    def _step_goal_env(self, physics_state: Any, action: jax.Array) -> tuple[Any, jax.Array, jax.Array]:
        """Advance one env step; return `(physics_state, observation, achieved_goal)`."""

    @property
    @abc.abstractmethod
    def goal_size(self) -> int:
        """Length of the goal vectors."""

    @property
    @abc.abstractmethod
    def max_goal_distance(self) -> float:
        """An upper bound on `||achieved - desired||`, which bounds the dense reward."""

    # ---- the goal-env contract ----------------------------------------------------------------

    def goal_distance(self, achieved_goal: jax.Array, desired_goal: jax.Array) -> jax.Array:
        """Euclidean distance over the last axis; any leading batch shape."""
        return jnp.linalg.norm(achieved_goal - desired_goal, axis=-1)

    def is_success(self, achieved_goal: jax.Array, desired_goal: jax.Array) -> jax.Array:
        """1.0 where `||achieved - desired|| < distance_threshold`, else 0.0 (float32)."""
        d = self.goal_distance(achieved_goal, desired_goal)
        return (d < self.distance_threshold).astype(jnp.float32)

    def compute_reward(self, achieved_goal: jax.Array, desired_goal: jax.Array) -> jax.Array:
        """Pure, vectorised reward: sparse is `is_success - 1` (0 or -1), dense is `-distance`."""
        if self.reward_type == "sparse":
            return self.is_success(achieved_goal, desired_goal) - 1.0
        return -self.goal_distance(achieved_goal, desired_goal)

    @property
    def reward_range(self) -> tuple[float, float]:
        """`(min, max)` of one step's reward; learners use it to bound Q targets."""
        if self.reward_type == "sparse":
            return (-1.0, 0.0)
        return (-float(self.max_goal_distance), 0.0)

    # ---- Brax Env ----------------------------------------------------------------------------

    def reset(self, rng: jax.Array) -> State:
        physics, observation, achieved, desired = self._reset_goal_env(rng)
        zero = jnp.zeros((), jnp.float32)
        info = {"steps": jnp.zeros((), jnp.int32), "truncation": zero}
        return self._state(physics, observation, achieved, desired, zero, info)

    def train_reset(self, rng: jax.Array) -> State:
        """The start of a *training* episode: the trainer's exploring rollouts call this, its
        evaluation and every play/eval command call `reset`. The same as `reset` unless a task
        offers another training start distribution (pick-and-place's `grasped_start_prob`), so
        success is always measured on the task's own resets."""
        return self.reset(rng)

    def step(self, state: State, action: jax.Array) -> State:
        physics, observation, achieved = self._step_goal_env(state.pipeline_state, action)
        desired = state.obs["desired_goal"]
        steps = state.info["steps"] + 1
        truncation = (steps >= self.episode_length).astype(jnp.float32)
        info = {**state.info, "steps": steps, "truncation": truncation}
        return self._state(physics, observation, achieved, desired, truncation, info)

    def _state(self, physics, observation, achieved, desired, done, info) -> State:
        obs = {"observation": observation, "achieved_goal": achieved, "desired_goal": desired}
        metrics = {
            "success": self.is_success(achieved, desired),
            "distance": self.goal_distance(achieved, desired),
        }
        reward = self.compute_reward(achieved, desired)
        return State(pipeline_state=physics, obs=obs, reward=reward, done=done,
                     metrics=metrics, info=info)

    @property
    def observation_size(self) -> Mapping[str, tuple[int, ...]]:
        obs = jax.eval_shape(self.reset, jax.random.PRNGKey(0)).obs
        return {k: tuple(obs[k].shape) for k in OBS_KEYS}

    @property
    def unwrapped(self) -> "GoalEnv":
        return self
