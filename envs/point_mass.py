"""`point_mass`: a 2-D point mass pushed to a goal in a walled arena, in pure `jnp`."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct

from hjax.envs.goal_env import GoalEnv, check_param, check_positive


@struct.dataclass
class PointMassState:
    """Physics state of one point mass."""

    pos: jax.Array  # (2,) position, inside [-arena_half_size, arena_half_size]^2
    vel: jax.Array  # (2,) velocity


class PointMass(GoalEnv):
    """A unit-mass point in the square arena `[-h, h]^2` that must come to rest on a goal.

    Dynamics, per env step (semi-implicit Euler, unit mass):

        a     = clip(action, -1, 1)                       # actions outside [-1, 1] are clipped
        v'    = v + dt * (max_force * a - damping * v)
        p'    = p + dt * v'
        walls: where a coordinate of p' leaves [-h, h] it is clamped to the wall and that
               coordinate of v' is set to 0 (the wall stops the mass; no bounce)

    Observation: `observation = [p, v]` (4,), `achieved_goal = p` (2,), `desired_goal` (2,).
    Start and goal are sampled independently and uniformly in `[-h, h]^2`. The reward is
    sparse (0 within `distance_threshold` of the goal, else -1) or dense (`-||p - g||`).
    Success does not end the episode: to score at the last step the mass must stay on the goal.

    Parameters:
        distance_threshold: success radius (default 0.05).
        episode_length: steps per episode, ended by truncation only (default 50).
        reward_type: "sparse" (default) or "dense".
        arena_half_size: h, half the side of the square arena (default 1.0).
        dt: seconds per env step (default 0.1).
        max_force: force at |action| = 1 (default 5.0); top speed is max_force / damping.
        damping: linear velocity damping per second (default 2.0).
    """

    def __init__(
        self,
        *,
        distance_threshold: float = 0.05,
        episode_length: int = 50,
        reward_type: str = "sparse",
        arena_half_size: float = 1.0,
        dt: float = 0.1,
        max_force: float = 5.0,
        damping: float = 2.0,
    ):
        super().__init__(distance_threshold=distance_threshold, episode_length=episode_length,
                         reward_type=reward_type)
        for field, value in (("arena_half_size", arena_half_size), ("dt", dt),
                             ("max_force", max_force)):
            check_positive("PointMass", field, value)
        check_param("PointMass", "damping", damping,
                    isinstance(damping, (int, float)) and not isinstance(damping, bool)
                    and math.isfinite(damping) and 0 <= damping * dt < 1,
                    "a finite number >= 0 with damping * dt < 1 (stable integration)")
        self.arena_half_size = float(arena_half_size)
        self.dt = float(dt)
        self.max_force = float(max_force)
        self.damping = float(damping)

    def _reset_goal_env(self, key):
        key_start, key_goal = jax.random.split(key)
        h = self.arena_half_size
        pos = jax.random.uniform(key_start, (2,), jnp.float32, -h, h)
        goal = jax.random.uniform(key_goal, (2,), jnp.float32, -h, h)
        physics = PointMassState(pos=pos, vel=jnp.zeros(2, jnp.float32))
        return physics, self._observe(physics), pos, goal

    def _step_goal_env(self, physics: PointMassState, action):
        h = self.arena_half_size
        a = jnp.clip(action.astype(jnp.float32), -1.0, 1.0)
        vel = physics.vel + self.dt * (self.max_force * a - self.damping * physics.vel)
        pos = physics.pos + self.dt * vel
        hit_wall = jnp.abs(pos) > h
        physics = PointMassState(pos=jnp.clip(pos, -h, h), vel=jnp.where(hit_wall, 0.0, vel))
        return physics, self._observe(physics), physics.pos

    @staticmethod
    def _observe(physics: PointMassState) -> jax.Array:
        return jnp.concatenate([physics.pos, physics.vel])

    @property
    def goal_size(self) -> int:
        return 2

    @property
    def max_goal_distance(self) -> float:
        return 2.0 * math.sqrt(2.0) * self.arena_half_size

    @property
    def action_size(self) -> int:
        return 2

    @property
    def backend(self) -> str:
        return "jnp"
