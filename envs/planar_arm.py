"""The planar two-link arm shared by `reach` and `push`: its MJCF model and a Brax goal-env base.

Model. The arm lies in the horizontal plane: two capsule links of length `LINK_LENGTH` on
vertical, unlimited hinge joints (`shoulder` at the origin, `elbow` between the links), and a
fingertip: a sphere of radius `FINGERTIP_RADIUS` hanging from the end of the forearm down to
table height, so the links pass over a puck and only the fingertip can touch it. Every body has
unit mass and unit isotropic inertia, at the centre of its link: the arm behaves like a geared
robot arm whose reflected motor inertia dominates, and the maximal-coordinate pipelines
(`spring`, `positional`), which go unstable with light links at these step sizes, simulate the
same model as `generalized` and `mjx` (Brax normalises masses to 1 for them in its own envs).
Gravity is off: it acts along the hinge axes and would do no work on the planar motion.

Dynamics. Each joint is driven by a velocity-damped motor, a MuJoCo `general` actuator with an
affine bias so that every Brax pipeline applies it the same way (`spring` and `positional`
ignore MJCF joint damping and armature, but apply actuator biases):

    torque_i = MOTOR_GAIN[i] * clip(action_i, -1, 1) - MOTOR_DAMPING[i] * qdot_i

Top joint speed is `MOTOR_GAIN / MOTOR_DAMPING` = 6 rad/s (2.4 m/s at the fingertip); the
velocity time constant is ~0.14 s. The physics advances `n_frames` Euler substeps of
`dt / n_frames` per env step; MuJoCo's constraint solver (`mjx`, `generalized`) runs one Newton
iteration (up to 4 line-search steps), as accurate here as 4 iterations (one contact pair).
"""

from __future__ import annotations

import abc
import contextlib
import io
import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp

from hjax.envs.goal_env import GoalEnv, check_param, check_positive_int

with contextlib.redirect_stdout(io.StringIO()):
    from brax import math as brax_math
    from brax.envs.base import PipelineEnv, State
    from brax.io import mjcf

BACKENDS = ("generalized", "positional", "spring", "mjx")

LINK_LENGTH = 0.2  # m, each of the two links (shoulder-elbow, elbow-fingertip)
REACH = 2 * LINK_LENGTH  # m, the fingertip's largest distance from the shoulder
LINK_HEIGHT = 0.07  # m, height of the links above the table
FINGERTIP_RADIUS = 0.015  # m
FINGERTIP_HEIGHT = 0.03  # m, height of the fingertip's centre (= the puck's centre)
MOTOR_GAIN = (84.0, 42.0)  # N m at |action| = 1, shoulder and elbow
MOTOR_DAMPING = (14.0, 7.0)  # N m s / rad, shoulder and elbow

# Bodies in model order (Brax link index = position here).
UPPER_ARM, FOREARM = 0, 1
# The fingertip's centre in the forearm's frame.
FINGERTIP_OFFSET = (LINK_LENGTH, 0.0, FINGERTIP_HEIGHT - LINK_HEIGHT)

# Brax-only parameters: joint and limit springs for `spring` and `positional`; mass-matrix
# inverse iterations and line-search steps for `generalized`. `mjx` reads MuJoCo's own options.
_BRAX_CUSTOM = """
  <custom>
    <numeric data="2000" name="constraint_stiffness"/>
    <numeric data="2000" name="constraint_limit_stiffness"/>
    <numeric data="5" name="constraint_vel_damping"/>
    <numeric data="1" name="constraint_ang_damping"/>
    <numeric data="4" name="matrix_inv_iterations"/>
    <numeric data="4" name="solver_maxls"/>
  </custom>
"""


def arm_xml(model: str, extra_bodies: str = "", extra_actuators: str = "",
            table_half_size: float = 0.45, iterations: int = 1) -> str:
    """The MJCF text of the arm on a table, with `extra_bodies` (e.g. a puck) in the world and
    `extra_actuators` after the two motors (they take no part of the action; see
    `PlanarArmEnv._step_goal_env`)."""
    L, h, r = LINK_LENGTH, LINK_HEIGHT, FINGERTIP_RADIUS
    tip_z = FINGERTIP_HEIGHT - LINK_HEIGHT
    (g0, g1), (d0, d1) = MOTOR_GAIN, MOTOR_DAMPING
    return f"""
<mujoco model="{model}">
  <compiler angle="radian" inertiafromgeom="false"/>
  <option timestep="0.01" gravity="0 0 0" iterations="{iterations}" ls_iterations="4">
    <flag eulerdamp="disable"/>
  </option>
  <default>
    <geom contype="0" conaffinity="0" density="1000" condim="1" friction="0 0 0"
          rgba="0.4 0.33 0.26 1"/>
  </default>
  {_BRAX_CUSTOM}
  <worldbody>
    <light diffuse=".5 .5 .5" pos="0 0 3" dir="0 0 -1"/>
    <geom name="table" type="plane" pos="0 0 0" size="{table_half_size} {table_half_size} 0.01"
          rgba="0.9 0.9 0.9 1"/>
    <geom name="base" type="capsule" fromto="0 0 0 0 0 {h}" size="0.025" rgba="0.3 0.3 0.3 1"/>
    <body name="upper_arm" pos="0 0 {h}">
      <joint name="shoulder" type="hinge" axis="0 0 1"/>
      <inertial pos="{L / 2} 0 0" mass="1" diaginertia="1 1 1"/>
      <geom name="upper_arm" type="capsule" fromto="0 0 0 {L} 0 0" size="0.02"/>
      <body name="forearm" pos="{L} 0 0">
        <joint name="elbow" type="hinge" axis="0 0 1"/>
        <inertial pos="{L / 2} 0 0" mass="1" diaginertia="1 1 1"/>
        <geom name="forearm" type="capsule" fromto="0 0 0 {L} 0 0" size="0.02"/>
        <geom name="pin" type="capsule" fromto="{L} 0 0 {L} 0 {tip_z}" size="0.006"/>
        <geom name="fingertip" type="sphere" pos="{L} 0 {tip_z}" size="{r}" contype="1"
              conaffinity="1" rgba="0.8 0.2 0.2 1"/>
      </body>
    </body>
    {extra_bodies}
  </worldbody>
  <actuator>
    <general name="shoulder" joint="shoulder" gainprm="{g0}" biastype="affine"
             biasprm="0 0 {-d0}" ctrllimited="true" ctrlrange="-1 1"/>
    <general name="elbow" joint="elbow" gainprm="{g1}" biastype="affine"
             biasprm="0 0 {-d1}" ctrllimited="true" ctrlrange="-1 1"/>
    {extra_actuators}
  </actuator>
</mujoco>
"""


@contextlib.contextmanager
def _quiet_brax():
    """Mute the deprecation warnings Brax's mjx pipeline raises on every trace (harmless)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Accessing `.*` directly from `Data`",
                                category=DeprecationWarning)
        yield


def load_system(xml: str, timestep: float):
    """`brax.io.mjcf.loads(xml)` with the physics timestep set (Brax's maintenance warning muted)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Brax System", category=UserWarning)
        sys = mjcf.loads(xml)
    return sys.tree_replace({"opt.timestep": timestep})


def fingertip_position(x) -> jax.Array:
    """(3,) world position of the fingertip's centre, from the link transforms `x`."""
    offset = jnp.asarray(FINGERTIP_OFFSET, jnp.float32)
    return x.pos[FOREARM] + brax_math.rotate(offset, x.rot[FOREARM])


def fingertip_xy(q: jax.Array) -> jax.Array:
    """Forward kinematics of the rigid arm: fingertip (x, y) at joint angles `q[:2]`."""
    a, b = q[0], q[0] + q[1]
    return LINK_LENGTH * jnp.stack([jnp.cos(a) + jnp.cos(b), jnp.sin(a) + jnp.sin(b)])


def sample_annulus(key: jax.Array, r_min: float, r_max: float, shape: tuple[int, ...] = ()) -> jax.Array:
    """Points uniform by area in the annulus `r_min <= |p| <= r_max`; shape `shape + (2,)`."""
    key_r, key_theta = jax.random.split(key)
    r = jnp.sqrt(jax.random.uniform(key_r, shape, jnp.float32, r_min ** 2, r_max ** 2))
    theta = jax.random.uniform(key_theta, shape, jnp.float32, -jnp.pi, jnp.pi)
    return jnp.stack([r * jnp.cos(theta), r * jnp.sin(theta)], axis=-1)


class PlanarArmEnv(GoalEnv, PipelineEnv):
    """Base for the arm tasks: the GoalEnv contract over a Brax pipeline (GoalEnv first in the MRO,
    so its `reset`, `step` and `observation_size` win over `PipelineEnv`'s).

    `dt` is the duration of one env step; the physics advances `n_frames` substeps of
    `dt / n_frames` each. The action drives the first two actuators (the motors), clipped to
    [-1, 1]; any further actuators of the model are passive and get 0. Subclasses give the model
    (`xml`), the start distribution and the observation.
    """

    # Each backend's default substeps per env step (a task may override), chosen by
    # `python -m benchmarks.backends`.
    DEFAULT_N_FRAMES = {"generalized": 4, "positional": 4, "spring": 2, "mjx": 4}

    def __init__(self, *, xml: str, distance_threshold: float, episode_length: int,
                 reward_type: str, backend: str, n_frames: int | None, dt: float):
        GoalEnv.__init__(self, distance_threshold=distance_threshold,
                         episode_length=episode_length, reward_type=reward_type)
        name = type(self).__name__
        check_param(name, "backend", backend, backend in BACKENDS,
                    " or ".join(repr(b) for b in BACKENDS))
        if n_frames is None:
            n_frames = self.DEFAULT_N_FRAMES[backend]
        check_positive_int(name, "n_frames", n_frames)
        check_param(name, "dt", dt, isinstance(dt, (int, float)) and not isinstance(dt, bool)
                    and math.isfinite(dt) and 0 < dt <= 0.1,
                    "a number in (0, 0.1] seconds (the motors are integrated explicitly)")
        self.xml = xml
        self.control_dt = float(dt)
        self.n_frames = int(n_frames)
        sys = load_system(xml, self.control_dt / self.n_frames)
        PipelineEnv.__init__(self, sys=sys, backend=backend, n_frames=self.n_frames)

    # ---- what a task provides ------------------------------------------------------------------

    @abc.abstractmethod
    def _sample_start(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Return `(q, desired_goal)`: the joint positions (sys.q_size(),) to start at rest from."""

    @abc.abstractmethod
    def _observe(self, physics: Any) -> jax.Array:
        """The `observation` vector of a pipeline state."""

    @abc.abstractmethod
    def _achieved(self, physics: Any) -> jax.Array:
        """The `achieved_goal` of a pipeline state."""

    # ---- the GoalEnv hooks ---------------------------------------------------------------------

    def _reset_goal_env(self, key):
        q, goal = self._sample_start(key)
        physics = self._init_physics(q)
        return physics, self._observe(physics), self._achieved(physics), goal

    def _step_goal_env(self, physics, action):
        ctrl = jnp.clip(action.astype(jnp.float32), -1.0, 1.0)  # actions outside [-1, 1] clip
        passive = jnp.zeros(self.sys.act_size() - self.action_size, jnp.float32)
        with _quiet_brax():
            physics = self.pipeline_step(physics, jnp.concatenate([ctrl, passive]))
        return physics, self._observe(physics), self._achieved(physics)

    def _init_physics(self, q: jax.Array) -> Any:
        """The pipeline state at joint positions `q`, at rest."""
        with _quiet_brax():
            return self.pipeline_init(jnp.asarray(q, jnp.float32),
                                      jnp.zeros(self.sys.qd_size(), jnp.float32))

    def state_at(self, q: jax.Array, desired_goal: jax.Array) -> State:
        """A fresh episode's `State` at rest at joint positions `q` with `desired_goal`.

        For scripted scenarios (tests, benchmarks, demos); `reset` samples `q` and the goal.
        """
        physics = self._init_physics(q)
        zero = jnp.zeros((), jnp.float32)
        info = {"steps": jnp.zeros((), jnp.int32), "truncation": zero}
        return self._state(physics, self._observe(physics), self._achieved(physics),
                           jnp.asarray(desired_goal, jnp.float32), zero, info)

    @property
    def action_size(self) -> int:
        """2: shoulder and elbow motor commands in [-1, 1]."""
        return 2

    @staticmethod
    def _arm_observation(pipeline_state: Any) -> jax.Array:
        """[cos q_shoulder, cos q_elbow, sin q_shoulder, sin q_elbow, qd_shoulder, qd_elbow,
        fingertip x, fingertip y] (8,)."""
        q, qd = pipeline_state.q[:2], pipeline_state.qd[:2]
        tip = fingertip_position(pipeline_state.x)[:2]
        return jnp.concatenate([jnp.cos(q), jnp.sin(q), qd, tip]).astype(jnp.float32)
