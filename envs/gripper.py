"""A floating two-finger gripper over a table, on MJX: Fetch's four tasks.

`gripper_reach`, `gripper_push`, `gripper_slide` and `gripper_pick_and_place` follow the task
definitions of the Fetch environments (Plappert et al. 2018, "Multi-Goal Reinforcement Learning";
openai/gym `gym/envs/robotics/fetch_env.py` and `assets/fetch/*.xml`, now Gymnasium-Robotics):
25 Hz control, 50 steps, success within 0.05 m, a 4-D action (Cartesian displacement of the
gripper of up to 5 cm per step and axis, plus a finger command), Fetch's observation layout and
Fetch's start and goal distributions. Every constant below names its source.

How the gripper is driven. Fetch moves its 7-DoF arm through a mocap body welded to the gripper:
each step it sets the mocap target to the gripper's current position plus `0.05 * action[:3]`
and lets the weld (a soft constraint, solref 0.02 1) pull the gripper there. Here the arm is
gone: the gripper body hangs from the world on three slide joints (x, y, z) with gravity
compensation (MuJoCo's `gravcomp`), and a mocap body set the same way each step (current
position + 0.05 * action) pulls it through a `connect` equality with the weld's solref and
solimp (three rows: the gripper cannot turn, so the weld's three rotation rows have nothing to
hold). A constraint, unlike a spring, drives the gripper whatever it pushes or carries: a 2 kg
object in contact does not slow it (hjax 0.4 drove the joints with position actuators tuned for
the gripper's own mass; a hit sent slide's puck about half as far as Fetch's, and a held cube
sagged more). Joint damping (`GRIP_DAMPING`, fitted to Fetch's free-space paths) stands in for the
arm's. Two box fingers of Fetch's size and
travel slide along the gripper's y axis, driven by position actuators and coupled by an equality
constraint (a parallel gripper: a shoved cube cannot push one finger open); the object has a
free joint.

Contacts: only the pairs the tasks need (fingers-object and object-table, and in pick-and-place
fingertips-table). In reach, push and slide the gripper cannot reach the table: its z joint is
limited so the fingertips stay 1 mm above it. In pick-and-place, as in Fetch, the gripper can
press its fingertips into the table, whose friction then slows closing fingers (a grasp made
there closes about 0.5 mm a step in both; `benchmarks/fetch_fingers.py`). Fingers never touch
each other (Fetch excludes that pair too).

Fetch's world frame. Observations and goals are in the frame and units of Gymnasium-Robotics'
Fetch envs (table top at z = 0.4 m, the gripper starting where Fetch's does, finger order (r, l),
Fetch's Euler convention), so that the same state gives the same observation vector in both and
a policy trained here plays Fetch's envs unchanged (`hjax.fetch`, `hjax eval RUN_DIR --fetch`).
The physics runs in a local frame: the table top at z = 0 and the gripper's start above the
origin; `GripperEnv.origin` is where that origin lies in Fetch's frame. The gripper starts at
Fetch's measured start per task: high (13.5 cm above the table) for reach and pick-and-place,
low for push and slide (Fetch's `gripper_extra_height` 0 and -0.02: grip point 1.4 and 1.3 cm
above the table there, 1.95 cm here, where the fingertips stop 1 mm above the table).

Fetch's table and arm. The table has Fetch's size and place per task (`FETCH_TABLES`): an
object whose centre passes the table's edge falls off it, as in Fetch, and is out of play (it is
reported on the floor below the point where it left the table; see `GripperEnv.physics_step`).
The gripper's target is kept inside the region Fetch's arm reaches (`REACH_CENTER`,
`REACH_RADIUS`, measured by driving Gymnasium-Robotics' mocap to a grid of targets:
`benchmarks/fetch_workspace.py`), so, as in FetchSlide, far slide goals are reached only by
sliding the puck. Slide's puck is Fetch's cylinder, and its fingers are capsules (MJX collides
cylinders with capsules, not with boxes).

Not in the model: the robot's arm and body (the gripper floats, held inside the arm's reach),
the fall itself (an object leaving the table is put on the floor at once, not in ~0.3 s).
"""

from __future__ import annotations

import contextlib
import io
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hjax.envs.goal_env import GoalEnv, _is_real, check_param, check_positive_int

with contextlib.redirect_stdout(io.StringIO()):
    import mujoco
    from mujoco import mjx

# ---- the scene's constants and their sources -------------------------------------------------
# Fetch = openai/gym gym/envs/robotics (fetch_env.py, fetch/*.py, assets/fetch/*.xml).

CONTROL_DT = 0.04  # s per env step: Fetch's 20 substeps of 0.002 s (25 Hz)
EPISODE_LENGTH = 50  # Fetch's max_episode_steps
DISTANCE_THRESHOLD = 0.05  # m, Fetch's distance_threshold
MAX_DISPLACEMENT = 0.05  # m per step per axis at |action| = 1 (Fetch: pos_ctrl *= 0.05)

OBJECT_HALF_SIZE = 0.025  # m, the cube (Fetch push.xml / pick_and_place.xml object0 box)
OBJECT_MASS = 2.0  # kg, cube and puck (Fetch object0 mass="2")
# The puck: Fetch's cylinder of radius 0.025 m and half-height 0.02 m (slide.xml object0).
PUCK_RADIUS, PUCK_HALF_HEIGHT = 0.025, 0.02  # m
OBJECT_DAMPING = 0.01  # the object's free joint damping (Fetch object0:joint damping="0.01")
FRICTION = 1.0  # cube-table sliding friction (MuJoCo's and Fetch's default 1)
FINGER_FRICTION = 1.0  # finger pads (Fetch robot.xml: 1; it holds the cube at 4 Newton iterations)
SLIDE_FRICTION = 0.1  # table and puck in slide (Fetch slide.xml friction="0.1 0.005 0.0001")

# Fingers (Fetch robot.xml r/l_gripper_finger_link box "0.0385 0.007 0.0135", travel 0-0.05 m,
# grip site 0.02 m from the finger centres toward the tips): boxes of Fetch's size, pointing down.
FINGER_RADIUS = 0.007  # m, Fetch's half-thickness (along y, the closing direction)
FINGER_HALF_WIDTH = 0.0135  # m, Fetch's finger half-width (along x)
FINGER_BOTTOM = -0.0185  # m, fingertip below the grip point (0.02 - 0.0385)
FINGER_TOP = 0.0585  # m, finger top above the grip point (0.02 + 0.0385)
FINGER_TRAVEL = 0.05  # m, each finger's joint range [0, 0.05] (Fetch)
# Finger actuators: Fetch's kp 30000 squeezes a 5 cm cube with ~700 N, which pushed the fingers
# ~1 cm into it at these substeps (measured with MuJoCo); kp 2500 squeezes ~60 N.
FINGER_KP = 2500.0  # N/m (Fetch: 30000)
# Pick-and-place's fingers move as Fetch's: its drive (pick_and_place.xml position actuators,
# kp 30000, ctrlrange 0-0.2; robot.xml fingers of 4 kg on joints of armature 100, damping 1000)
# with inertia and damping scaled by the same 1/12 as the stiffness: the same motion, a twelfth
# of the squeeze. Its targets run to 0.2 m, beyond the 5 cm travel (Fetch's ctrl = qpos + action),
# so +1 opens at full force (benchmarks/results/fetch_fingers.md).
FINGER_SCALE = 30000.0 / FINGER_KP
FINGER_DAMPING = 1000.0 / FINGER_SCALE  # N s/m
FINGER_INERTIA = (100.0 + 4.0) / FINGER_SCALE  # kg, armature + finger mass
FINGER_CTRL_MAX = 0.2  # m, Fetch's ctrlrange
FINGER_SOLREFLIMIT, FINGER_SOLIMPLIMIT = "0.01 1", "0.99 0.999 0.01"  # Fetch's finger joint limits
# Reach, push and slide hold their fingers closed (Fetch's have no finger actuators there): they
# keep env version 4's slower drive (targets within the travel), under which they never move.
# Pick-and-place's fingertips meet the table (Fetch's do: its gripper can press them into it and
# their friction there slows a closing grasp). Reach, push and slide keep version 4's stop.
# One sphere per fingertip (below) with a stiffer impedance than MuJoCo's default contact (solimp
# 0.9 0.95) stands in for the four contact points of Fetch's box face: with the default it sank
# twice as deep and dragged the closing fingers too little (benchmarks/results/fetch_fingers.md).
FINGER_TABLE_FRICTION = 1.0  # Fetch: finger 1, table 1
FINGER_TABLE_SOLREF = "0.02 1"  # MuJoCo's default, as Fetch's
FINGER_TABLE_SOLIMP = "0.98 0.99 0.001"
HELD_FINGER_DAMPING = 160.0  # N s/m
HELD_FINGER_ARMATURE = 2.5  # kg
FINGER_MASS = 0.1  # kg (Fetch's 4 kg fingers ride on a 7-DoF arm; here they ride on the gripper)

# The gripper body and its drive (see the module docstring).
GRIPPER_MASS = 1.5175  # kg, Fetch's gripper_link inertial mass
GRIP_SOLREF = "0.02 1"  # Fetch's mocap weld (shared.xml): time constant 0.02 s, critically damped
GRIP_SOLIMP = "0.9 0.95 0.001"  # Fetch's mocap weld (shared.xml)
# N s/m on each of the gripper's slide joints, standing in for the arm's inertia and damping that
# Fetch's weld also drags: the per-step grip displacement under random actions differs from
# FetchReach's by 1.4 mm median (2.4 mm 95th) at 100, 3.6 mm (6.0) with none, 1.8 mm (3.2) for
# hjax 0.4's position actuators (64 episodes x 20 steps; benchmarks/fetch_parity.py).
GRIP_DAMPING = 100.0
Z_MIN = -FINGER_BOTTOM + 0.001  # the grip point's lowest height: fingertips 1 mm above the table
# With fingertip-table contacts (pick-and-place), the table stops the gripper; its joint stops
# only a gripper pressed 1 cm into it, and its target may lie up to a step below that.
Z_MIN_CONTACT = -FINGER_BOTTOM - 0.01
TABLE_CONTACT_TASKS = ("pick_and_place",)  # the tasks whose fingertips meet the table
Z_MAX = 0.6  # m, above every goal (Fetch's air goals reach 0.45 m above the object's rest)
# The region Fetch's arm reaches with the gripper pointing down: a ball, fitted to where
# Gymnasium-Robotics' FetchReach-v4 grip point stops when its mocap is driven toward 1,568
# targets beyond it (benchmarks/results/fetch_workspace.md), in Fetch's frame, for the arm's
# base at Fetch's usual place (robot0:slide0 = 0.405; FetchSlide's base stands 0.355 m nearer
# the table's far end: slide0 = 0.05, `FETCH_BASE_X`).
REACH_CENTER = (0.735, 0.745, 0.738)  # m, Fetch's frame, base at x = 0.405
REACH_RADIUS = 1.06  # m
FETCH_BASE_X = {"reach": 0.405, "push": 0.405, "pick_and_place": 0.405, "slide": 0.05}

# Fetch's world frame (Gymnasium-Robotics 1.4.2, Fetch*-v4, measured after reset by
# `hjax.fetch`: `initial_gripper_xpos`, the grip site's position at the episode start).
TABLE_TOP = 0.4  # m: the table top's z in Fetch's frame (table0 at z 0.2, half-height 0.2)
# Fetch's table0 per task, (centre xy, half-size xy) in Fetch's frame (push.xml etc.; slide.xml's
# is longer); the floor (floor0) is at z = 0.
_TABLE = ((1.3, 0.75), (0.25, 0.35))
FETCH_TABLES = {"reach": _TABLE, "push": _TABLE, "pick_and_place": _TABLE,
                "slide": ((1.32441906, 0.75018422), (0.625, 0.45))}
PARK_SHIFT = 20.0  # m along x: where (in the physics frame) an object that fell off the table rests
FETCH_GRIPPER_START = {
    "reach": (1.34183502, 0.74910104, 0.53472395),
    "pick_and_place": (1.34193502, 0.74910105, 0.53472396),
    "push": (1.34554063, 0.74902434, 0.41361671),
    "slide": (0.99273044, 0.74904078, 0.41266144),
}

# Start and goal distributions (Fetch fetch_env.py `_reset_sim`, `_sample_goal`).
OBJECT_RANGE = 0.15  # m: object xy = gripper start + U(-0.15, 0.15)^2 (push, pick_and_place)
SLIDE_OBJECT_RANGE = 0.1  # m (FetchSlide obj_range=0.1)
MIN_OBJECT_GRIPPER_DISTANCE = 0.1  # m: rejected while closer than 0.1 m (xy) to the gripper
TARGET_RANGE = 0.15  # m: goal = gripper start + U(-0.15, 0.15)^3 (reach, push, pick_and_place)
SLIDE_TARGET_RANGE = 0.3  # m (FetchSlide target_range=0.3)
SLIDE_TARGET_OFFSET = 0.4  # m along x (FetchSlide target_x_shift / target_offset=0.4)
AIR_GOAL_PROBABILITY = 0.5  # pick_and_place: half the goals in the air (target_in_the_air)
AIR_GOAL_MAX_HEIGHT = 0.45  # m above the object's rest height, uniform
START_CANDIDATES = 16  # rejection-sampling candidates for the object's start

# Solver settings, the cheapest that passed the physics checks (tests/test_gripper.py); speed
# and the checks per setting: benchmarks/results/gripper_speed.md.
DEFAULT_N_FRAMES = 5  # physics substeps per env step: 8 ms
DEFAULT_ITERATIONS = 2  # Newton iterations (push, slide: 4; see GripperPush, GripperSlide)
DEFAULT_LS_ITERATIONS = 4  # line-search iterations (slide: 8)


def scene_xml(task: str, timestep: float, iterations: int = DEFAULT_ITERATIONS,
              ls_iterations: int = DEFAULT_LS_ITERATIONS) -> str:
    """The MJCF text of the scene for `task` ("reach", "push", "slide" or "pick_and_place").

    Friction cones are pyramidal (MuJoCo's default, the cheaper Newton step), elliptic for
    slide, whose low-friction resting puck pyramidal cones let tip (see `GripperSlide`)."""
    slide = task == "slide"
    table_friction = SLIDE_FRICTION if slide else FRICTION
    r = FINGER_RADIUS
    table_contact = task in TABLE_CONTACT_TASKS
    z_min = Z_MIN_CONTACT if table_contact else Z_MIN
    contacts = ""
    if task == "pick_and_place":  # Fetch's finger drive, scaled (see FINGER_SCALE)
        damping, armature, ctrl_max = FINGER_DAMPING, FINGER_INERTIA - FINGER_MASS, FINGER_CTRL_MAX
        limit = f' solreflimit="{FINGER_SOLREFLIMIT}" solimplimit="{FINGER_SOLIMPLIMIT}"'
        f = FINGER_TABLE_FRICTION
        contacts = "<contact>" + "".join(
            f'<pair geom1="fingertip_{side}" geom2="table" condim="3" friction="{f} {f} 0.005 0.0001 0.0001" '
            f'solref="{FINGER_TABLE_SOLREF}" solimp="{FINGER_TABLE_SOLIMP}"/>' for side in "lr") + "</contact>"
    else:  # held closed: env version 4's drive
        damping, armature, ctrl_max = HELD_FINGER_DAMPING, HELD_FINGER_ARMATURE, FINGER_TRAVEL
        limit = ""
    if task == "reach":
        obj = ""
    else:
        if slide:
            shape = f'type="cylinder" size="{PUCK_RADIUS} {PUCK_HALF_HEIGHT}"'
            rest = PUCK_HALF_HEIGHT
        else:
            h = OBJECT_HALF_SIZE
            shape = f'type="box" size="{h} {h} {h}"'
            rest = h
        obj = f"""
    <body name="object" pos="0 0 {rest}">
      <joint name="object" type="free" damping="{OBJECT_DAMPING}"/>
      <geom name="object" {shape} mass="{OBJECT_MASS}" contype="0" conaffinity="6"
            friction="{table_friction} 0.005 0.0001" rgba="0.9 0.3 0.2 1"/>
    </body>"""
    finger_geom = (f'contype="4" conaffinity="0" friction="{FINGER_FRICTION} 0.005 0.0001" '
                   'rgba="0.35 0.36 0.38 1"')
    if slide:  # two upright capsules per finger spanning its width (MJX has no box-cylinder pair)
        x = FINGER_HALF_WIDTH - r
        finger_geoms = lambda side: "\n".join(  # noqa: E731
            f'<geom name="finger_{side}{i}" type="capsule" size="{r}" fromto="{sx * x} 0 {FINGER_BOTTOM + r} '
            f'{sx * x} 0 {FINGER_TOP - r}" {finger_geom}/>' for i, sx in enumerate((-1, 1)))
    else:
        finger_geoms = lambda side: (  # noqa: E731
            f'<geom name="finger_{side}" type="box" pos="0 0 {(FINGER_BOTTOM + FINGER_TOP) / 2}" '
            f'size="{FINGER_HALF_WIDTH} {r} {(FINGER_TOP - FINGER_BOTTOM) / 2}" {finger_geom}/>')
    # One sphere at each fingertip meets the table (pick-and-place): the gripper cannot turn, so
    # one contact point per finger carries the same normal and friction forces as a box face's
    # four, at a quarter of the contacts (benchmarks/results/gripper_speed_pick_and_place.md).
    fingertip = lambda side: (  # noqa: E731
        f'\n        <geom name="fingertip_{side}" type="sphere" size="{r}" pos="0 0 {FINGER_BOTTOM + r}" '
        'group="3"/>' if table_contact else "")
    fingers = "\n".join(f"""
      <body name="finger_{side}" pos="0 {sign * r} 0" gravcomp="1">
        <joint name="finger_{side}" type="slide" axis="0 {sign} 0" range="0 {FINGER_TRAVEL}"
               damping="{damping:.6g}" armature="{armature:.6g}"{limit}/>
        <inertial pos="0 0 0" mass="{FINGER_MASS}" diaginertia="1e-4 1e-4 1e-4"/>
        {finger_geoms(side)}{fingertip(side)}
      </body>""" for side, sign in (("l", -1), ("r", 1)))
    grip_joints = "\n".join(
        f'<joint name="grip_{a}" type="slide" axis="{axis}" damping="{GRIP_DAMPING:.6g}"'
        + (f' range="{z_min} {Z_MAX}"' if a == "z" else "") + "/>"
        for a, axis in (("x", "1 0 0"), ("y", "0 1 0"), ("z", "0 0 1")))
    finger_actuators = "\n".join(
        f'<position name="finger_{s}" joint="finger_{s}" kp="{FINGER_KP}" ctrlrange="0 {ctrl_max}"/>'
        for s in "lr")
    return f"""
<mujoco model="hjax_gripper_{task}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{timestep:.6g}" iterations="{iterations}" ls_iterations="{ls_iterations}"
          solver="Newton" cone="{"elliptic" if slide else "pyramidal"}"/>
  <default>
    <geom contype="0" conaffinity="0" condim="3"/>
  </default>
  <worldbody>
    <light diffuse=".6 .6 .6" pos="0 0 3" dir="0 0 -1"/>
    <geom name="table" type="plane" size="0.8 0.8 0.01" contype="2" conaffinity="0"
          friction="{table_friction} 0.005 0.0001" rgba="0.75 0.6 0.45 1"/>
    <body name="target" mocap="true" pos="0 0 0"/>
    <body name="gripper" pos="0 0 0" gravcomp="1">
      {grip_joints}
      <inertial pos="0 0 0" mass="{GRIPPER_MASS}" diaginertia="0.0024 0.0019 0.0013"/>
      <geom name="palm" type="box" pos="0 0 {FINGER_TOP + 0.01}" size="0.0135 0.065 0.01"
            rgba="0.35 0.36 0.38 1"/>
      {fingers}
    </body>{obj}
  </worldbody>
  <equality>
    <connect body1="target" body2="gripper" anchor="0 0 0" solref="{GRIP_SOLREF}" solimp="{GRIP_SOLIMP}"/>
    <joint joint1="finger_r" joint2="finger_l" polycoef="0 1 0 0 0"/>
  </equality>
  <actuator>
    {finger_actuators}
  </actuator>
  {contacts}
</mujoco>
"""


# ---- the goal envs -----------------------------------------------------------------------------

# Joint layout (MJCF order): qpos = [grip x, y, z, finger l, finger r, object x, y, z, quat (4)];
# qvel = [grip (3), fingers (2), object linear (3, world frame), object angular (3, body frame)].
GRIP, FINGERS, OBJECT_POS, OBJECT_QUAT = slice(0, 3), slice(3, 5), slice(5, 8), slice(8, 12)
OBJECT_VEL, OBJECT_ANGVEL = slice(5, 8), slice(8, 11)
WORKSPACE_XY = 0.8  # m: the gripper's x and y joints are limited to +-0.8 m (the table drawn)
MAX_GOAL_DISTANCE = 3.0  # m: bounds ||achieved - desired|| (workspace, a slid puck's run-out)


def quat_to_euler(quat: jax.Array) -> jax.Array:
    """Fetch's Euler angles of a unit quaternion (w, x, y, z): Gymnasium-Robotics'
    `rotations.mat2euler` of its rotation matrix M, which reads
    (-atan2(M12, M22), -atan2(-M02, cy), -atan2(M01, M00)) with cy = sqrt(M22^2 + M12^2), and
    (0, -atan2(-M02, cy), -atan2(-M10, M11)) where cy <= 4 eps (gimbal lock). For a rotation
    about z alone the last angle is the yaw; a tilted cube reads other angles than a roll-pitch-
    yaw decomposition would (checked against the reference in tests/test_fetch_parity.py)."""
    w, x, y, z = quat[0], quat[1], quat[2], quat[3]
    m00, m01, m02 = 1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)
    m10, m11, m12 = 2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)
    m22 = 1 - 2 * (x * x + y * y)
    cy = jnp.sqrt(m22 * m22 + m12 * m12)
    regular = cy > 4 * np.finfo(np.float64).eps  # Fetch's _EPS4
    first = jnp.where(regular, -jnp.arctan2(m12, m22), 0.0)
    second = -jnp.arctan2(-m02, cy)
    third = jnp.where(regular, -jnp.arctan2(m01, m00), -jnp.arctan2(-m10, m11))
    return jnp.stack([first, second, third])


def quat_rotate(quat: jax.Array, v: jax.Array) -> jax.Array:
    """Rotate the 3-vector `v` by the unit quaternion (w, x, y, z)."""
    w, u = quat[0], quat[1:]
    return v + 2.0 * jnp.cross(u, jnp.cross(u, v) + w * v)


class GripperEnv(GoalEnv):
    """Base of the four gripper tasks: the scene on MJX, Fetch's action, observation and resets.

    Action (4,) in [-1, 1] (clipped): `action[:3] * 0.05` m is added to the gripper's current
    position to give its position target for this step (Fetch resets its mocap target to the
    gripper before adding the action the same way; the target's z is kept within the joint's
    limits); `action[3]` moves each finger's position target to `finger + action[3]` clipped to
    [0, 0.2] m, so +1 opens at full force and -1 closes (Fetch's `ctrl = qpos + action` within
    its ctrlrange, on fingers of the same 5 cm travel). Tasks with blocked fingers (reach, push, slide) ignore `action[3]` and
    hold the fingers closed, as Fetch does.

    Subclasses set `TASK` and implement `_sample_start`.
    """

    TASK: str = ""
    HAS_OBJECT = True
    BLOCK_FINGERS = True
    DEFAULT_ITERATIONS = DEFAULT_ITERATIONS
    DEFAULT_LS_ITERATIONS = DEFAULT_LS_ITERATIONS

    # 2: Fetch's world frame, finger order and Euler angles; per-task start (hjax 0.3).
    # 3: Fetch's table edges, the arm's reach, slide's cylinder puck, finger friction 1 (hjax 0.4).
    # 4: the gripper driven by a mocap constraint, as Fetch's, not position actuators (hjax 0.5).
    VERSION = 4

    def __init__(self, *, distance_threshold: float = DISTANCE_THRESHOLD,
                 episode_length: int = EPISODE_LENGTH, reward_type: str = "sparse",
                 n_frames: int = DEFAULT_N_FRAMES, iterations: int | None = None,
                 ls_iterations: int | None = None):
        super().__init__(distance_threshold=distance_threshold, episode_length=episode_length,
                         reward_type=reward_type)
        name = type(self).__name__
        iterations = self.DEFAULT_ITERATIONS if iterations is None else iterations
        ls_iterations = self.DEFAULT_LS_ITERATIONS if ls_iterations is None else ls_iterations
        check_positive_int(name, "n_frames", n_frames)
        check_positive_int(name, "iterations", iterations)
        check_positive_int(name, "ls_iterations", ls_iterations)
        self.n_frames, self.iterations, self.ls_iterations = n_frames, iterations, ls_iterations
        self.dt = self.control_dt = CONTROL_DT  # s per env step
        self.xml = scene_xml(self.TASK, CONTROL_DT / n_frames, iterations, ls_iterations)
        self.mj_model = mujoco.MjModel.from_xml_string(self.xml)
        self.mjx_model = mjx.put_model(self.mj_model, impl="jax")
        rest = PUCK_HALF_HEIGHT if self.TASK == "slide" else OBJECT_HALF_SIZE
        self.object_rest_height = rest  # m, the object's centre above the table top
        fetch_start = np.asarray(FETCH_GRIPPER_START[self.TASK], np.float64)
        # Where the physics frame's origin lies in Fetch's frame (observations and goals are
        # reported in Fetch's frame: physics position + origin).
        self.origin = np.array([fetch_start[0], fetch_start[1], TABLE_TOP], np.float32)
        start_height = max(float(fetch_start[2]) - TABLE_TOP, Z_MIN)  # Fetch's, fingertips above the table
        self.gripper_start = np.array([0.0, 0.0, start_height], np.float32)  # physics frame
        # Fetch's table and the arm's reach, in the physics frame.
        centre, half = FETCH_TABLES[self.TASK]
        self.table_center = np.asarray(centre, np.float32) - self.origin[:2]
        self.table_half_size = np.asarray(half, np.float32)
        reach = np.asarray(REACH_CENTER, np.float64) + [FETCH_BASE_X[self.TASK] - FETCH_BASE_X["reach"], 0, 0]
        self.reach_center = (reach - self.origin).astype(np.float32)
        self.floor_rest = np.float32(self.object_rest_height - TABLE_TOP)  # a fallen object's z

    # ---- what a task provides ------------------------------------------------------------------

    def _sample_start(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Return `(object_xy, desired_goal)`; object_xy is ignored without an object."""
        raise NotImplementedError

    # ---- physics -------------------------------------------------------------------------------

    def data_at(self, qpos: jax.Array) -> Any:
        """The MJX data at rest at joint positions `qpos` (nq,), with positions computed and the
        mocap target on the gripper."""
        qpos = jnp.asarray(qpos, jnp.float32)
        data = mjx.make_data(self.mjx_model)
        data = data.replace(qpos=qpos, mocap_pos=qpos[GRIP][None])
        return mjx.forward(self.mjx_model, data)

    def mujoco_data(self, qpos: np.ndarray) -> Any:
        """The same for MuJoCo's C engine: a `mujoco.MjData` of `mj_model` (float64) at rest at
        `qpos`, for the fidelity checks that replay hjax's scene there."""
        data = mujoco.MjData(self.mj_model)
        data.qpos[:] = np.asarray(qpos, np.float64)
        data.mocap_pos[0] = data.qpos[GRIP]
        mujoco.mj_forward(self.mj_model, data)
        return data

    def set_mujoco_controls(self, data: Any, action: np.ndarray) -> None:
        """Set a C-engine `MjData`'s mocap target and finger targets for `action`, in place
        (what `physics_step` does on MJX)."""
        c = np.asarray(self.ctrl(data.qpos, np.asarray(action)), np.float64)
        data.mocap_pos[0], data.ctrl[:] = c[:3], c[3:]

    def start_qpos(self, object_xy: jax.Array) -> jax.Array:
        """Joint positions of an episode start: gripper at its start, fingers closed, the object
        (if any) at rest at `object_xy`, unrotated."""
        parts = [jnp.asarray(self.gripper_start), jnp.zeros(2)]
        if self.HAS_OBJECT:
            parts += [object_xy, jnp.array([self.object_rest_height, 1.0, 0.0, 0.0, 0.0])]
        return jnp.concatenate(parts).astype(jnp.float32)

    def ctrl(self, qpos, action):
        """The targets (5,) for `action` at joint positions `qpos`: the gripper's (the mocap
        body's position, 3) and the fingers' actuator targets (2); works on NumPy too (the MuJoCo
        C fidelity check calls it), so it uses only jnp functions that accept both."""
        a = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        z_lo = Z_MIN_CONTACT - MAX_DISPLACEMENT if self.TASK in TABLE_CONTACT_TASKS else Z_MIN
        lo = jnp.array([-WORKSPACE_XY, -WORKSPACE_XY, z_lo], jnp.float32)
        hi = jnp.array([WORKSPACE_XY, WORKSPACE_XY, Z_MAX], jnp.float32)
        target = jnp.clip(qpos[GRIP] + MAX_DISPLACEMENT * a[:3], lo, hi)
        # Inside the arm's reach: pulled back toward the ball's centre onto its surface.
        offset = target - self.reach_center
        norm = jnp.linalg.norm(offset)
        target = self.reach_center + offset * jnp.minimum(1.0, REACH_RADIUS / jnp.maximum(norm, 1e-6))
        fingers = jnp.clip(qpos[FINGERS] + a[3], 0.0, FINGER_CTRL_MAX)
        if self.BLOCK_FINGERS:
            fingers = jnp.zeros(2, jnp.float32)
        return jnp.concatenate([target, fingers])

    def physics_step(self, data, action):
        """One env step: set the gripper's mocap target and the fingers' actuator targets from
        `action`, then `n_frames` MJX steps, then the table's edge: an object whose centre has
        left the table falls off (`fall_off`)."""
        c = self.ctrl(data.qpos, action)
        data = data.replace(mocap_pos=c[None, :3], ctrl=c[3:])

        def substep(d, _):
            return mjx.step(self.mjx_model, d), None

        data, _ = jax.lax.scan(substep, data, None, length=self.n_frames)
        if not self.HAS_OBJECT:
            return data
        qpos, qvel = self.fall_off(data.qpos, data.qvel)
        return data.replace(qpos=qpos, qvel=qvel)

    def fall_off(self, qpos, qvel):
        """An object whose centre is beyond the table's edge (Fetch's table0) leaves play: it is
        put at rest, upright, PARK_SHIFT m further along x on the plane (out of the gripper's
        reach, so nothing touches it again), and reported on the floor below the point where it
        left the table (`observe`, `_achieved`). In Fetch it tips over the edge and falls to the
        floor in about 0.3 s; either way it can no longer reach a goal on the table."""
        xy = qpos[OBJECT_POS][:2]
        parked = self.is_parked(qpos)
        off = jnp.any(jnp.abs(xy - self.table_center) > self.table_half_size) & ~parked
        moved = (qpos.at[OBJECT_POS.start].add(PARK_SHIFT).at[OBJECT_POS.start + 2].set(self.object_rest_height)
                 .at[OBJECT_QUAT].set(jnp.array([1.0, 0.0, 0.0, 0.0])))
        stopped = qvel.at[OBJECT_VEL.start:OBJECT_ANGVEL.stop].set(0.0)
        return jnp.where(off, moved, qpos), jnp.where(off, stopped, qvel)

    @staticmethod
    def is_parked(qpos) -> jax.Array:
        """Whether the object has fallen off the table (see `fall_off`)."""
        return qpos[OBJECT_POS.start] > PARK_SHIFT / 2

    def object_position(self, qpos) -> jax.Array:
        """The object's position in the physics frame as reported: on the floor once it fell."""
        pos = qpos[OBJECT_POS]
        floor = jnp.stack([pos[0] - PARK_SHIFT, pos[1], jnp.asarray(self.floor_rest, pos.dtype)])
        return jnp.where(self.is_parked(qpos), floor, pos)

    # ---- the GoalEnv hooks ---------------------------------------------------------------------

    def _reset_goal_env(self, key):
        object_xy, goal = self._sample_start(key)  # physics frame
        data = self.data_at(self.start_qpos(object_xy))
        return data, self._observe(data), self._achieved(data), (goal + jnp.asarray(self.origin)).astype(jnp.float32)

    def _step_goal_env(self, data, action):
        data = self.physics_step(data, action)
        return data, self._observe(data), self._achieved(data)

    def state_at(self, qpos: jax.Array, desired_goal: jax.Array):
        """A fresh episode's `State` at rest at `qpos` with `desired_goal` (scripted scenarios)."""
        data = self.data_at(qpos)
        zero = jnp.zeros((), jnp.float32)
        info = {"steps": jnp.zeros((), jnp.int32), "truncation": zero}
        return self._state(data, self._observe(data), self._achieved(data),
                           jnp.asarray(desired_goal, jnp.float32), zero, info)

    def _observe(self, data) -> jax.Array:
        return self.observe(data.qpos, data.qvel)

    def observe(self, q: jax.Array, v: jax.Array) -> jax.Array:
        """Fetch's observation (`fetch_env.py` `_get_obs`) at joint positions `q` and velocities
        `v`, in Fetch's world frame: positions + `origin`, fingers in Fetch's order (r, l),
        Fetch's Euler angles, velocities per env step (multiplied by dt)."""
        dt = self.dt
        origin = jnp.asarray(self.origin)
        grip, fingers = q[GRIP] + origin, q[FINGERS][::-1]
        grip_vel, finger_vel = v[GRIP] * dt, v[FINGERS][::-1] * dt
        if not self.HAS_OBJECT:
            return jnp.concatenate([grip, fingers, grip_vel, finger_vel]).astype(jnp.float32)
        obj, quat = self.object_position(q) + origin, q[OBJECT_QUAT]
        obj_vel = v[OBJECT_VEL] * dt - grip_vel  # relative to the gripper, as in Fetch
        obj_angvel = quat_rotate(quat, v[OBJECT_ANGVEL]) * dt  # world frame (Fetch's xvelr)
        return jnp.concatenate([grip, obj, obj - grip, fingers, quat_to_euler(quat), obj_vel,
                                obj_angvel, grip_vel, finger_vel]).astype(jnp.float32)

    def _achieved(self, data) -> jax.Array:
        pos = self.object_position(data.qpos) if self.HAS_OBJECT else data.qpos[GRIP]
        return (pos + jnp.asarray(self.origin)).astype(jnp.float32)

    def to_physics(self, position: jax.Array) -> jax.Array:
        """A position in Fetch's frame (an observation's or a goal's) in the physics frame."""
        return jnp.asarray(position) - jnp.asarray(self.origin)

    # ---- start and goal distributions (Fetch `_reset_sim`, `_sample_goal`) ---------------------

    def _sample_object_xy(self, key, object_range):
        """Uniform in the square of half-side `object_range` around the gripper's start, at least
        MIN_OBJECT_GRIPPER_DISTANCE from it (Fetch's rejection loop, here over START_CANDIDATES
        candidates; all fail with probability < 1e-7, and then the first is pushed out radially)."""
        xy = jax.random.uniform(key, (START_CANDIDATES, 2), jnp.float32, -object_range, object_range)
        r = jnp.linalg.norm(xy, axis=-1)
        ok = r >= MIN_OBJECT_GRIPPER_DISTANCE
        first = xy[jnp.argmax(ok)]
        pushed = xy[0] * MIN_OBJECT_GRIPPER_DISTANCE / jnp.maximum(r[0], 1e-6)
        return jnp.where(ok.any(), first, pushed) + self.gripper_start[:2]

    def _sample_table_goal(self, key, target_range, offset_x=0.0):
        xy = jax.random.uniform(key, (2,), jnp.float32, -target_range, target_range)
        xy = xy + self.gripper_start[:2] + jnp.array([offset_x, 0.0])
        return jnp.concatenate([xy, jnp.array([self.object_rest_height], jnp.float32)])

    @property
    def goal_size(self) -> int:
        return 3

    @property
    def observation_size(self) -> dict[str, tuple[int, ...]]:
        """The shapes `reset` gives, from `observe` on the model's joint vectors alone: tracing a
        whole reset (MJX's forward pass) to learn them takes seconds, and every trainer built
        asks (tests/test_envs.py compares them with a reset's)."""
        q = jax.ShapeDtypeStruct((self.mj_model.nq,), jnp.float32)
        v = jax.ShapeDtypeStruct((self.mj_model.nv,), jnp.float32)
        goal = (self.goal_size,)
        return {"observation": tuple(jax.eval_shape(self.observe, q, v).shape), "achieved_goal": goal,
                "desired_goal": goal}

    @property
    def max_goal_distance(self) -> float:
        return MAX_GOAL_DISTANCE

    @property
    def action_size(self) -> int:
        return 4

    @property
    def backend(self) -> str:
        return "mjx"


_PARAMETERS = """
    Parameters (defaults are Fetch's):
        distance_threshold: success radius in metres (default 0.05).
        episode_length: steps per episode, ended by truncation only (default 50: 2 s at 25 Hz).
        reward_type: "sparse" (default: 0 within the threshold, else -1) or "dense" (-distance).
        n_frames: MJX substeps per 0.04 s env step (default 5: 8 ms).
        iterations: Newton iterations of MuJoCo's constraint solver per substep (default 2; 4
            for push, slide and pick-and-place).
        ls_iterations: line-search iterations per Newton iteration (default 4; 8 for slide).
"""


class GripperReach(GripperEnv):
    """Move the gripper to a goal in the air (FetchReach).

    Observation (10,), in Fetch's world frame: gripper position (3), finger positions (2, Fetch's
    order r, l), gripper velocity (3, m per step), finger velocities (2, m per step).
    `achieved_goal`: the gripper's position (3,).
    `desired_goal`: the gripper's start + U(-0.15, 0.15)^3 m (Fetch target_range=0.15; the
    lowest goals lie 1.5 cm below the table top, within the threshold of reachable points, as
    in Fetch). The fingers are held closed; `action[3]` is ignored.
    """ + _PARAMETERS

    TASK = "reach"
    HAS_OBJECT = False

    def _sample_start(self, key):
        offset = jax.random.uniform(key, (3,), jnp.float32, -TARGET_RANGE, TARGET_RANGE)
        return jnp.zeros(2, jnp.float32), jnp.asarray(self.gripper_start) + offset


_OBJECT_OBS = """
    Observation (25,), Fetch's order, frame and units: gripper position (3), object position (3),
    object minus gripper position (3), finger positions (2, r then l), object rotation as Fetch's
    Euler angles (3, `quat_to_euler`), object linear velocity relative to the gripper (3), object
    angular velocity (3), gripper linear velocity (3), finger velocities (2); velocities per env
    step (multiplied by dt = 0.04 s). `achieved_goal`: the object's position (3,).
    The object starts at rest, uniform in a square around the gripper's start (half-side
    `{range}` m), at least 0.1 m (xy) from it (Fetch obj_range={range}).
"""


class GripperPush(GripperEnv):
    """Push a 5 cm, 2 kg cube on the table to a goal on the table with the closed fingers
    (FetchPush). Goal: the gripper's start + U(-0.15, 0.15)^2 m on the table (Fetch
    target_range=0.15; the goal may fall within the threshold of the cube's start, as in Fetch).
    The fingers are held closed; `action[3]` is ignored.
    """ + _OBJECT_OBS.format(range=OBJECT_RANGE) + _PARAMETERS

    TASK = "push"
    # A pushed cube needs a better converged contact solve than the other tasks: in MuJoCo's C
    # engine a face-on push at action 0.6 flipped the cube over at 2 Newton iterations and tilted
    # it 3 degrees at 3, 4 or 50 (tests/test_gripper_fidelity.py). At 2 iterations MJX and the C
    # engine ended 256 scripted pushes 5 cm apart (median; 5 within 1 cm), at 4 1.1 mm (255
    # within 1 cm, max 13 mm); 9-19% fewer steps/s (benchmarks/results/gripper_fidelity.md).
    DEFAULT_ITERATIONS = 4

    def _sample_start(self, key):
        key_obj, key_goal = jax.random.split(key)
        return self._sample_object_xy(key_obj, OBJECT_RANGE), self._sample_table_goal(key_goal, TARGET_RANGE)


class GripperSlide(GripperEnv):
    """Hit a puck (a cylinder of radius 2.5 cm, 4 cm high, 2 kg) so that it slides to a goal on a
    low-friction table (friction 0.1, Fetch slide.xml), out of the gripper's comfortable reach
    (FetchSlide). Goal: the gripper's start + (0.4, 0) + U(-0.3, 0.3)^2 m on the table (Fetch
    target_offset 0.4, target_range=0.3). The fingers are held closed; `action[3]` is ignored.
    """ + _OBJECT_OBS.format(range=SLIDE_OBJECT_RANGE) + _PARAMETERS

    TASK = "slide"
    # On the 0.1-friction table with pyramidal friction cones, MJX left the resting puck's
    # contact forces unconverged: under zero action it tipped and jumped in ~5% of 256 episodes
    # at 2 Newton iterations and still in some at 4 or 8. Elliptic cones (used for slide only,
    # see `scene_xml`) with 4 iterations and 8 line-search steps kept every puck within 0.4 mm
    # over 3 x 256 episodes (measured).
    DEFAULT_ITERATIONS = 4
    DEFAULT_LS_ITERATIONS = 8

    def _sample_start(self, key):
        key_obj, key_goal = jax.random.split(key)
        return (self._sample_object_xy(key_obj, SLIDE_OBJECT_RANGE),
                self._sample_table_goal(key_goal, SLIDE_TARGET_RANGE, SLIDE_TARGET_OFFSET))


class GripperPickAndPlace(GripperEnv):
    """Grasp a 5 cm, 2 kg cube and bring it to a goal, half of the time in the air
    (FetchPickAndPlace). Goal: the gripper's start + U(-0.15, 0.15)^2 m at the cube's rest
    height, raised by U(0, 0.45) m with probability 0.5 (Fetch target_in_the_air).
    `action[3]`: +1 opens the fingers, -1 closes them.
    """ + _OBJECT_OBS.format(range=OBJECT_RANGE) + _PARAMETERS + """        grasped_start_prob: the share
            of *training* episodes that start with the cube already between the fingers
            (`train_reset`; default 0: Fetch's starts). Evaluation always starts as Fetch.
"""

    TASK = "pick_and_place"
    BLOCK_FINGERS = False
    # 5: Fetch's finger drive (targets to 0.2 m, its inertia and damping scaled with the stiffness;
    # hjax 0.6); the other tasks hold their fingers closed and stay at 4.
    # 6: fingertip-table contacts, so a gripper pressed on the table drags its closing fingers as
    # Fetch's does (hjax 0.7).
    VERSION = 6
    # A grasped start (`grasped_start_prob`): where the scripted controller's grasp settles
    # (`pick_and_place_policy` from reset, then held): the grip point 7 mm above the cube's
    # centre, each finger 24.5 mm out (the cube's half-size less 0.5 mm of soft contact).
    GRASP_HEIGHT = 0.007  # m
    GRASP_FINGER = 0.0245  # m
    # With Fetch's finger friction 1 at 2 Newton iterations the unconverged grasp let cubes slip
    # (the scripted pick-and-place succeeded in 9% of 64 episodes); at 4 in all of them, the cube
    # sagging ~5.5 mm/s in the fingers (8.4 mm/s with friction 2 at 2 iterations; Fetch's
    # ~0.8 mm/s, 25 scripted episodes on FetchPickAndPlace-v4).
    DEFAULT_ITERATIONS = 4

    def __init__(self, *, distance_threshold: float = DISTANCE_THRESHOLD,
                 episode_length: int = EPISODE_LENGTH, reward_type: str = "sparse",
                 n_frames: int = DEFAULT_N_FRAMES, iterations: int | None = None,
                 ls_iterations: int | None = None, grasped_start_prob: float = 0.0):
        super().__init__(distance_threshold=distance_threshold, episode_length=episode_length,
                         reward_type=reward_type, n_frames=n_frames, iterations=iterations,
                         ls_iterations=ls_iterations)
        check_param(type(self).__name__, "grasped_start_prob", grasped_start_prob,
                    _is_real(grasped_start_prob) and 0.0 <= grasped_start_prob <= 1.0, "a number in [0, 1]")
        self.grasped_start_prob = float(grasped_start_prob)

    def grasped_qpos(self, object_xy: jax.Array) -> jax.Array:
        """Joint positions with the cube at rest at `object_xy`, unrotated, held between the
        fingers (`GRASP_HEIGHT`, `GRASP_FINGER`); the fingers' targets start closed, so they
        squeeze until an action opens them."""
        qpos = self.start_qpos(object_xy)
        grip = jnp.concatenate([object_xy, jnp.array([self.object_rest_height + self.GRASP_HEIGHT])])
        return qpos.at[GRIP].set(grip).at[FINGERS].set(self.GRASP_FINGER).astype(jnp.float32)

    def train_reset(self, rng: jax.Array):
        """Training starts: with probability `grasped_start_prob` the episode starts with the
        cube already grasped (`grasped_qpos`) at the object position and goal `reset` samples;
        otherwise `reset` itself (bit for bit when the probability is 0). HER's pick-and-place
        experiments (Andrychowicz et al. 2017) started half of their training episodes from a
        recorded grasped state to make exploration easier; evaluation never does."""
        if self.grasped_start_prob == 0.0:
            return self.reset(rng)
        key_start, key_grasp = jax.random.split(rng)
        object_xy, goal = self._sample_start(key_start)
        grasped = jax.random.bernoulli(key_grasp, self.grasped_start_prob)
        qpos = jnp.where(grasped, self.grasped_qpos(object_xy), self.start_qpos(object_xy))
        return self.state_at(qpos, goal + jnp.asarray(self.origin))

    def _sample_start(self, key):
        key_obj, key_goal, key_air, key_height = jax.random.split(key, 4)
        goal = self._sample_table_goal(key_goal, TARGET_RANGE)
        air = jax.random.bernoulli(key_air, AIR_GOAL_PROBABILITY)
        lift = jnp.where(air, jax.random.uniform(key_height, (), jnp.float32, 0.0, AIR_GOAL_MAX_HEIGHT), 0.0)
        return self._sample_object_xy(key_obj, OBJECT_RANGE), goal.at[2].add(lift)


# ---- scripted controllers: the tasks are feasible with this physics ----------------------------
# Stateless feedback laws on Fetch's observation, in Fetch's frame (one env; batch with vmap). Tests and
# benchmarks use them to prove the tasks can be solved, and `envs.render` to show an episode.

SAFE_HEIGHT = 0.06  # m above the object's centre: open fingers pass over the cube
ALIGNED = 0.01  # m: xy (or height) error under which a phase counts as done
CARRY_SPEED = 0.4  # largest action while carrying the cube (faster moves shake it loose)
CARRY_HEIGHT = 0.05  # m: the cube is lifted this far off the table before it travels
HOLD_TOLERANCE = 0.03  # m: the cube counts as held within this of the grip point (it creeps
# down in the fingers by ~7 mm/s: MuJoCo's soft friction)
# Closed fingers: a 2.7 x 2.8 cm block (Fetch's finger width, two thicknesses) at most 2 cm
# from the grip point; a cube's corner is 3.5 cm from its centre.
PUSH_CONTACT = OBJECT_HALF_SIZE + FINGER_RADIUS + 0.005  # m: grip point behind the cube's face
PUSH_CLEARANCE = OBJECT_HALF_SIZE * math.sqrt(2) + 0.02 + 0.01  # m: descend this far behind
PUSH_STEP = 0.03  # m: how far ahead of the contact point the fingers are aimed
PUSH_SPEED = 0.6  # largest action while pushing
BACK_OFF_SPEED = 0.5  # largest action while backing away from the cube before rising
PUSH_SLOW = 0.1  # m: the push slows over the last PUSH_SLOW of an axis
PUSH_DONE = 0.015  # m: stop pushing within this of the goal (a pushed cube slides on a little)


def _toward(grip, target, gain=1.0):
    """The displacement action that moves the gripper to `target` (clipped to [-1, 1])."""
    return jnp.clip(gain * (target - grip) / MAX_DISPLACEMENT, -1.0, 1.0)


def pick_and_place_policy(obs) -> jax.Array:
    """Approach over the cube with open fingers, descend, close, lift, then carry it to the goal."""
    o, goal = obs["observation"], obs["desired_goal"]
    grip, obj, fingers, finger_vel = o[0:3], o[3:6], o[9:11], o[23:25]
    aligned = jnp.linalg.norm(obj[:2] - grip[:2]) < ALIGNED
    at_height = jnp.abs(obj[2] - grip[2]) < ALIGNED
    # Both fingers stopped on the cube's faces with the cube between them (they close to 0 on
    # nothing): the cube is held.
    gap = fingers.sum()
    gripping = ((gap < 2 * OBJECT_HALF_SIZE + 0.005) & (gap > OBJECT_HALF_SIZE)
                & (jnp.linalg.norm(obj - grip) < HOLD_TOLERANCE))
    settled = (jnp.abs(finger_vel).max() < 2e-4) | (obj[2] > TABLE_TOP + OBJECT_HALF_SIZE + ALIGNED)
    holding = gripping & settled  # carry once the fingers have stopped on the cube
    # Carry: lift off the table first, travel above the goal's height, then lower onto it.
    far = jnp.linalg.norm(goal[:2] - obj[:2]) > 2 * ALIGNED
    lifted = obj[2] > TABLE_TOP + OBJECT_HALF_SIZE + CARRY_HEIGHT - ALIGNED
    carry_z = jnp.where(far, jnp.maximum(goal[2], TABLE_TOP + OBJECT_HALF_SIZE + CARRY_HEIGHT), goal[2])
    carry_xy = jnp.where(lifted | ~far, goal[:2], obj[:2])
    carry = jnp.concatenate([carry_xy, carry_z[None]]) - (obj - grip)
    approach = jnp.concatenate([obj[:2], obj[2:] + SAFE_HEIGHT])
    target = jnp.where(holding, carry,
                       jnp.where(aligned & at_height, grip,  # close the fingers in place
                                 jnp.where(aligned, obj, approach)))  # descend, or go over it
    speed = jnp.where(holding, CARRY_SPEED, 1.0)
    finger = jnp.where(gripping | (aligned & at_height), -1.0, 1.0)
    return jnp.concatenate([jnp.clip(_toward(grip, target), -speed, speed), finger[None]])


def make_push_policy(*, contact: float = PUSH_CONTACT, clearance: float = PUSH_CLEARANCE,
                     step: float = PUSH_STEP, speed: float = PUSH_SPEED, slow: float = PUSH_SLOW,
                     done_within: float = PUSH_DONE, back_off_speed: float = BACK_OFF_SPEED,
                     safe_height: float = SAFE_HEIGHT):
    """A face-on pusher (`push_policy`) with its distances (m) and speeds (fractions of the 5 cm
    step) given: `benchmarks.fetch_scripted` builds one with constants tuned on Fetch's env."""

    def policy(obs) -> jax.Array:
        """Push the cube to the goal face-on, along one of its face normals at a time: go over
        to the face away from the goal, descend behind it, push until that axis is within
        ALIGNED of the goal, then do the same along the other axis.

        Two habits of a simpler pusher (push straight toward the goal, rise where it stands)
        made its episodes diverge between simulators (benchmarks/results/gripper_fidelity.md):
        a diagonal push meets the cube corner-on-corner, where box-box contact normals flip
        between faces, and a closed finger rising along the cube's face drags it up by friction
        and tips it over. Here a low gripper that is not in place to push backs away from the
        cube before it rises."""
        o, goal = obs["observation"], obs["desired_goal"]
        grip, obj, yaw = o[0:3], o[3:6], o[13]
        to_goal = goal[:2] - obj[:2]
        dist = jnp.linalg.norm(to_goal)
        rel = grip[:2] - obj[:2]
        r = jnp.linalg.norm(rel)
        low, high = obj[2], obj[2] + safe_height
        is_low = grip[2] < low + ALIGNED
        # The cube's two face normals in the table plane, each signed toward the goal; the
        # fingers are in place to push along one when low, behind the cube and within ALIGNED of
        # its line.
        normals = jnp.array([[jnp.cos(yaw), jnp.sin(yaw)], [-jnp.sin(yaw), jnp.cos(yaw)]])
        to_go = normals @ to_goal  # (2,) signed distance to the goal along each normal
        axes = normals * jnp.sign(to_go)[:, None]
        along, lateral = axes @ rel, jnp.abs(axes[:, 0] * rel[1] - axes[:, 1] * rel[0])
        in_place = (is_low & (along < -contact + ALIGNED) & (along > -clearance - ALIGNED)
                    & (lateral < ALIGNED))
        # Keep pushing along an axis the fingers are in place for while it has more than
        # ALIGNED to go; otherwise take the axis with more to go.
        busy = in_place & (jnp.abs(to_go) > ALIGNED)
        k = jnp.where(busy[0], 0, jnp.where(busy[1], 1, jnp.argmax(jnp.abs(to_go))))
        u, remaining = axes[k], jnp.abs(to_go[k])
        done = dist < done_within  # stop: a pushed cube slides on for a while
        pushing = in_place[k] & (remaining > ALIGNED) & ~done
        push = jnp.concatenate([obj[:2] - u * contact + u * jnp.minimum(remaining, step), low[None]])
        # Otherwise: back away from the cube, rise clear of it, travel above it to the point
        # behind it, descend there.
        behind = obj[:2] - u * clearance
        at_behind = jnp.linalg.norm(grip[:2] - behind) < ALIGNED
        close = is_low & (r < clearance) & ~at_behind  # may touch the cube
        away = obj[:2] + rel / jnp.maximum(r, 1e-6) * (clearance + ALIGNED)
        near_cube = r < clearance + 2 * ALIGNED
        target = jnp.where(pushing, push,
                           jnp.where(done, grip,
                                     jnp.where(at_behind, jnp.concatenate([behind, low[None]]),
                                               jnp.where(close, jnp.concatenate([away, grip[2:]]),
                                                         jnp.where(is_low & near_cube,
                                                                   jnp.concatenate([grip[:2], high[None]]),
                                                                   jnp.concatenate([behind, high[None]]))))))
        # Slow down as the axis nears the goal.
        limit = jnp.where(pushing, jnp.clip(remaining / slow, 0.1, speed),
                          jnp.where(close, back_off_speed, 1.0))
        return jnp.concatenate([jnp.clip(_toward(grip, target), -limit, limit), jnp.array([-1.0])])

    return policy


push_policy = make_push_policy()
"""hjax's face-on pusher (its constants tuned on hjax's push; see `make_push_policy`)."""
