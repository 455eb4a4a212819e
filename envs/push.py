"""`push`: a planar two-link arm on Brax physics must push a puck to a goal on the table."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from hjax.envs.goal_env import check_param, check_positive
from hjax.envs.planar_arm import (FINGERTIP_HEIGHT, FINGERTIP_RADIUS, LINK_LENGTH, REACH, PlanarArmEnv,
                             arm_xml, fingertip_xy, sample_annulus)

PUCK_RADIUS = 0.03  # m; the puck's centre is at the fingertip's height
TABLE_HALF_SIZE = 0.45  # m; a rim keeps the puck's centre within TABLE_HALF_SIZE - PUCK_RADIUS
PUCK = 2  # Brax link index of the puck
START_CANDIDATES = 32  # rejection-sampling candidates for the (puck start, goal) pair
ARM_STARTS = ("near_puck", "uniform")
NEAR_PUCK_SPREAD = 0.05  # m; near_puck: fingertip starts 0-5 cm beyond contact clearance


def push_xml(puck_damping: float) -> str:
    """The arm's model plus the puck on its slide joints and the puck's viscous friction."""
    rim = TABLE_HALF_SIZE - PUCK_RADIUS
    puck = f"""
    <body name="puck" pos="0 0 {FINGERTIP_HEIGHT}">
      <joint name="puck_x" type="slide" axis="1 0 0" limited="true" range="{-rim} {rim}"/>
      <joint name="puck_y" type="slide" axis="0 1 0" limited="true" range="{-rim} {rim}"/>
      <inertial pos="0 0 0" mass="1" diaginertia="1 1 1"/>
      <geom name="puck" type="sphere" size="{PUCK_RADIUS}" contype="1"
            conaffinity="1" rgba="0.2 0.4 0.8 1"/>
    </body>"""
    # The table's sliding friction on the puck: viscous, as two passive actuators (gain 0,
    # velocity bias) so every pipeline applies it the same way.
    friction = "\n".join(
        f'<general name="friction_{a}" joint="puck_{a}" gainprm="0" biastype="affine" '
        f'biasprm="0 0 {-puck_damping}" ctrllimited="true" ctrlrange="-1 1"/>' for a in "xy")
    return arm_xml("hjax_push", extra_bodies=puck, extra_actuators=friction,
                   table_half_size=TABLE_HALF_SIZE)


class Push(PlanarArmEnv):
    """Push a puck across a table to a goal with the fingertip of a planar two-link arm.

    Model: the arm of `envs.planar_arm` (two 0.2 m links, unlimited hinges, unit masses) over a
    square table of half-size 0.45 m, and a puck: a sphere of radius 3 cm and mass 1 kg that
    slides on the table (two slide joints, x and y: it stays on the plane and cannot tip, lift or
    spin), stopped by a rim at the table's edge (joint limits: its centre stays within 0.42 m).
    The only contact pair is fingertip-puck (frictionless, condim 1): the links pass over the puck.
    Dynamics, per env step of `dt` seconds (`n_frames` Brax physics substeps):

        arm torque    = MOTOR_GAIN * clip(action, -1, 1) - MOTOR_DAMPING * qdot   # per joint
        puck force    = -puck_damping * puck_velocity + contact force
        (actions outside [-1, 1] are clipped; the table's friction on the puck is viscous)

    Observation (14,): `[cos q, sin q, qdot, fingertip_xy, puck_xy, puck_velocity_xy,
    puck_xy - fingertip_xy]`. `achieved_goal` (2,): the puck's (x, y) in metres (its z is fixed).
    `desired_goal` (2,): a point of the annulus `0.1 <= |g| <= 0.3` m around the shoulder, where
    the fingertip can get behind the puck from any side, at a distance in
    [`min_start_distance`, `max_start_distance`] (default 0.15-0.25 m; FetchPush's goals lie
    0.16 m from the object on average) from the puck's start, uniform by area in that ring around
    the puck. The puck starts uniform in the same annulus, clear of the fingertip (rejection
    sampling over 32 candidate pairs; if all fail, probability < 1e-6 at the default distances,
    the pair farthest from violating is used). The arm starts at rest with its fingertip 0-5 cm
    beyond contact clearance from the puck in a random direction (`arm_start="near_puck"`, as Fetch starts its gripper near the
    object; random elbow side), or at joint angles uniform in [-pi, pi)^2 (`arm_start="uniform"`,
    where exploration rarely touches the puck and HER's future goals are almost all the puck's
    start: see docs: Environments, and benchmarks/results/her_ablation_push.md). The reward is sparse
    (0 when the puck is within `distance_threshold` of the goal, else -1) or dense
    (`-||puck - goal||`); success does not end the episode.

    Parameters:
        distance_threshold: success radius in metres (default 0.05, as in Fetch).
        episode_length: steps per episode, ended by truncation only (default 50: 2 s).
        reward_type: "sparse" (default) or "dense".
        backend: Brax pipeline, "generalized", "positional", "spring" or "mjx" (default "mjx",
            chosen by `python -m benchmarks.backends`; see `benchmarks/results/backends.md`).
        n_frames: physics substeps per env step (default: the backend's entry in
            `DEFAULT_N_FRAMES`, 4 for "mjx"); the physics timestep is `dt / n_frames`.
        dt: seconds per env step (default 0.04, 25 Hz control as in Fetch), in (0, 0.1].
        min_start_distance: least start distance from puck to goal, metres (default 0.15, three
            default thresholds), in [0, 0.3].
        max_start_distance: greatest start distance from puck to goal, metres (default 0.25), in
            (min_start_distance, 0.6]; 0.6 allows any two points of the annulus.
        arm_start: "near_puck" (default) or "uniform", the arm's start (see above).
        puck_damping: viscous friction of the table on the 1 kg puck, N s / m (default 10.0: a
            pushed puck loses its speed with time constant 0.1 s), > 0.
    """

    DEFAULT_BACKEND = "mjx"
    # Substeps per backend, by measurement: benchmarks/results/backends.md.
    DEFAULT_N_FRAMES = {"generalized": 4, "positional": 4, "spring": 2, "mjx": 4}
    GOAL_MIN_RADIUS = 0.1
    GOAL_MAX_RADIUS = 0.3

    def __init__(
        self,
        *,
        distance_threshold: float = 0.05,
        episode_length: int = 50,
        reward_type: str = "sparse",
        backend: str = DEFAULT_BACKEND,
        n_frames: int | None = None,
        dt: float = 0.04,
        min_start_distance: float = 0.15,
        max_start_distance: float = 0.25,
        puck_damping: float = 10.0,
        arm_start: str = "near_puck",
    ):
        ok = (isinstance(min_start_distance, (int, float)) and not isinstance(min_start_distance, bool)
              and math.isfinite(min_start_distance) and 0 <= min_start_distance <= 0.3)
        check_param("Push", "min_start_distance", min_start_distance, ok, "a number in [0, 0.3]")
        ok = (isinstance(max_start_distance, (int, float)) and not isinstance(max_start_distance, bool)
              and math.isfinite(max_start_distance) and min_start_distance < max_start_distance <= 0.6)
        check_param("Push", "max_start_distance", max_start_distance, ok,
                    f"a number in (min_start_distance={min_start_distance}, 0.6]")
        check_positive("Push", "puck_damping", puck_damping)
        check_param("Push", "arm_start", arm_start, arm_start in ARM_STARTS, " or ".join(map(repr, ARM_STARTS)))
        self.arm_start = arm_start
        self.min_start_distance = float(min_start_distance)
        self.max_start_distance = float(max_start_distance)
        self.puck_damping = float(puck_damping)
        super().__init__(xml=push_xml(self.puck_damping), distance_threshold=distance_threshold,
                         episode_length=episode_length, reward_type=reward_type,
                         backend=backend, n_frames=n_frames, dt=dt)

    def _sample_start(self, key):
        if self.arm_start == "uniform":
            return self._sample_start_uniform(key)
        key_pair, key_dir, key_dist, key_elbow = jax.random.split(key, 4)
        puck, goal = self._sample_puck_goal(key_pair)
        # Fingertip just clear of the puck, in a random direction (pointed back inward when the
        # point would be out of reach), then two-link inverse kinematics with a random elbow.
        theta = jax.random.uniform(key_dir, (), jnp.float32, -jnp.pi, jnp.pi)
        direction = jnp.stack([jnp.cos(theta), jnp.sin(theta)])
        clearance = PUCK_RADIUS + FINGERTIP_RADIUS + 0.01
        d = clearance + jax.random.uniform(key_dist, (), jnp.float32, 0.0, NEAR_PUCK_SPREAD)
        target = puck + d * direction
        target = jnp.where(jnp.linalg.norm(target) > REACH - 0.005, puck - d * direction, target)
        r = jnp.clip(jnp.linalg.norm(target), 1e-3, REACH - 1e-4)
        elbow = jnp.where(jax.random.bernoulli(key_elbow), 1.0, -1.0)
        q2 = 2.0 * elbow * jnp.arccos(r / (2.0 * LINK_LENGTH))  # fingertip = 2L cos(q2/2) at angle q1 + q2/2
        q1 = jnp.arctan2(target[1], target[0]) - q2 / 2.0
        q_arm = jnp.stack([q1, q2]).astype(jnp.float32)
        return jnp.concatenate([q_arm, puck]), goal

    def _sample_start_uniform(self, key):
        key_arm, key_pair = jax.random.split(key)
        q_arm = jax.random.uniform(key_arm, (2,), jnp.float32, -jnp.pi, jnp.pi)
        clearance = PUCK_RADIUS + FINGERTIP_RADIUS + 0.01
        puck, goal = self._sample_puck_goal(key_pair, avoid=fingertip_xy(q_arm), clearance=clearance)
        return jnp.concatenate([q_arm, puck]), goal

    def _sample_puck_goal(self, key, avoid=None, clearance=0.0):
        """The puck's start and the goal, both in the annulus, the goal at a distance in
        [min_start_distance, max_start_distance] from the puck (uniform by area in that ring
        around it), and the puck at least `clearance` from `avoid`. Rejection sampling over
        START_CANDIDATES pairs; if none passes (probability < 1e-6 at the defaults), the pair
        farthest from violating a constraint is used."""
        key_puck, key_r, key_theta = jax.random.split(key, 3)
        pucks = sample_annulus(key_puck, self.GOAL_MIN_RADIUS, self.GOAL_MAX_RADIUS, (START_CANDIDATES,))
        lo, hi = self.min_start_distance, self.max_start_distance
        r = jnp.sqrt(jax.random.uniform(key_r, (START_CANDIDATES,), jnp.float32, lo ** 2, hi ** 2))
        theta = jax.random.uniform(key_theta, (START_CANDIDATES,), jnp.float32, -jnp.pi, jnp.pi)
        goals = pucks + r[:, None] * jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=-1)
        goal_r = jnp.linalg.norm(goals, axis=-1)
        margin = jnp.minimum(goal_r - self.GOAL_MIN_RADIUS, self.GOAL_MAX_RADIUS - goal_r)
        if avoid is not None:
            margin = jnp.minimum(margin, jnp.linalg.norm(pucks - avoid, axis=-1) - clearance)
        valid = margin >= 0
        pick = jnp.where(valid.any(), jnp.argmax(valid), jnp.argmax(margin))
        return pucks[pick], goals[pick]

    def _observe(self, physics) -> jax.Array:
        arm = self._arm_observation(physics)
        puck = self._achieved(physics)
        return jnp.concatenate([arm, puck, physics.qd[2:4], puck - arm[-2:]]).astype(jnp.float32)

    def _achieved(self, physics) -> jax.Array:
        return physics.x.pos[PUCK, :2].astype(jnp.float32)

    @property
    def goal_size(self) -> int:
        return 2

    @property
    def max_goal_distance(self) -> float:
        return self.GOAL_MAX_RADIUS + math.sqrt(2.0) * (TABLE_HALF_SIZE - PUCK_RADIUS)

