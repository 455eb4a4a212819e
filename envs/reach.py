"""`reach`: a planar two-link arm on Brax physics must bring its fingertip to a goal."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from hjax.envs.goal_env import check_param
from hjax.envs.planar_arm import REACH, PlanarArmEnv, arm_xml, fingertip_position, sample_annulus

REACH_XML = arm_xml("hjax_reach")


class Reach(PlanarArmEnv):
    """Move the fingertip of a planar two-link arm to a goal on the table, and keep it there.

    Model (see `envs.planar_arm`): two 0.2 m links on vertical hinges, unlimited, unit masses,
    no contacts.
    Dynamics, per env step of `dt` seconds (`n_frames` Brax physics substeps):

        torque = MOTOR_GAIN * clip(action, -1, 1) - MOTOR_DAMPING * qdot   # per joint
        (actions outside [-1, 1] are clipped)

    Observation (8,): `[cos q, sin q, qdot, fingertip_xy]` for q = (shoulder, elbow).
    `achieved_goal` (2,): the fingertip's (x, y) in metres; the motion is planar, so z is constant
    and left out. `desired_goal` (2,): sampled uniformly by area in the annulus
    `goal_min_radius <= |g| <= goal_max_radius` around the shoulder, inside the arm's reach
    (0.4 m). The arm starts at rest at joint angles uniform in [-pi, pi)^2.
    The reward is sparse (0 within `distance_threshold` of the goal, else -1) or dense
    (`-||fingertip - goal||`); success does not end the episode.

    Parameters:
        distance_threshold: success radius in metres (default 0.05, as in Fetch).
        episode_length: steps per episode, ended by truncation only (default 50: 2 s).
        reward_type: "sparse" (default) or "dense".
        backend: Brax pipeline, "generalized", "positional", "spring" or "mjx" (default "mjx",
            chosen by `python -m benchmarks.backends`; see `benchmarks/results/backends.md`).
        n_frames: physics substeps per env step (default: the backend's entry in
            `DEFAULT_N_FRAMES`, 2 for "mjx"); the physics timestep is `dt / n_frames`.
        dt: seconds per env step (default 0.04, 25 Hz control as in Fetch), in (0, 0.1].
        goal_min_radius: inner radius of the goal annulus, metres (default 0.1), >= 0.
        goal_max_radius: outer radius of the goal annulus, metres (default 0.35), in
            (goal_min_radius, 0.4).
    """

    DEFAULT_BACKEND = "mjx"
    # Substeps per backend, by measurement: benchmarks/results/backends.md.
    DEFAULT_N_FRAMES = {"generalized": 4, "positional": 4, "spring": 2, "mjx": 2}

    def __init__(
        self,
        *,
        distance_threshold: float = 0.05,
        episode_length: int = 50,
        reward_type: str = "sparse",
        backend: str = DEFAULT_BACKEND,
        n_frames: int | None = None,
        dt: float = 0.04,
        goal_min_radius: float = 0.1,
        goal_max_radius: float = 0.35,
    ):
        real = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        check_param("Reach", "goal_min_radius", goal_min_radius,
                    real(goal_min_radius) and goal_min_radius >= 0, "a finite number >= 0")
        check_param("Reach", "goal_max_radius", goal_max_radius,
                    real(goal_max_radius) and real(goal_min_radius)
                    and goal_min_radius < goal_max_radius < REACH,
                    f"a number in (goal_min_radius, {REACH}) (the arm's reach)")
        self.goal_min_radius = float(goal_min_radius)
        self.goal_max_radius = float(goal_max_radius)
        super().__init__(xml=REACH_XML, distance_threshold=distance_threshold,
                         episode_length=episode_length, reward_type=reward_type,
                         backend=backend, n_frames=n_frames, dt=dt)

    def _sample_start(self, key):
        key_arm, key_goal = jax.random.split(key)
        q = jax.random.uniform(key_arm, (2,), jnp.float32, -jnp.pi, jnp.pi)
        goal = sample_annulus(key_goal, self.goal_min_radius, self.goal_max_radius)
        return q, goal

    def _observe(self, physics) -> jax.Array:
        return self._arm_observation(physics)

    def _achieved(self, physics) -> jax.Array:
        return fingertip_position(physics.x)[:2].astype(jnp.float32)

    @property
    def goal_size(self) -> int:
        return 2

    @property
    def max_goal_distance(self) -> float:
        return self.goal_max_radius + REACH
