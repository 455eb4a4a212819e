"""Write a trajectory a person can watch: Brax's HTML viewer for the physics tasks, a PNG trace for all.

    states = [state0, state1, ...]            # goal-env States, or one State stacked over time
    envs.render(env, states, "push.html")     # arm and gripper tasks: 3-D viewer, goal as a sphere
    envs.render(env, states, "run.png")       # any env with 2-D goals: top-down trace

Not jittable: runs on the host after a rollout.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path
from typing import Any, Sequence

import jax
import numpy as np

from hjax.envs.goal_env import GoalEnv
from hjax.envs.gripper import GripperEnv
from hjax.envs.planar_arm import FINGERTIP_HEIGHT, REACH, PlanarArmEnv, load_system

with contextlib.redirect_stdout(io.StringIO()):
    from brax.base import Transform
    from brax.io import html

SUFFIXES = (".html", ".png")


def render(env: GoalEnv, states: Any, path: str | Path, *, index: int = 0) -> Path:
    """Write `states` (one episode of `env`) to `path`; returns the path.

    `states`: a goal-env `State` with a leading time axis (as `lax.scan` returns it), or a list of
    States; if they also carry a batch axis (time, envs, ...), env `index` is drawn.
    `path` ending in `.html`: Brax's viewer (the arm and gripper tasks): the bodies and the goal
    (a translucent green sphere whose radius is the success threshold), played at the env's
    real time step; open it in a browser (the viewer's JavaScript loads from a CDN).
    `path` ending in `.png`: a top-down trace of the achieved goal (and, for the arm and gripper
    tasks, the fingertip or gripper) over the episode, with the goal and its success circle;
    works for every env.
    """
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise ValueError(f"render: invalid path={str(path)!r}; allowed: a path ending in "
                         f"{' or '.join(SUFFIXES)}")
    frames = _frames(states, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".html":
        if not isinstance(env, (PlanarArmEnv, GripperEnv)):
            raise ValueError(f"render: invalid path={str(path)!r} for {type(env).__name__}, which "
                             "has no Brax system; allowed: a .png path (a top-down trace)")
        path.write_text(_html(env, frames))
    else:
        _png(env, frames, path)
    return path


def _frames(states: Any, index: int) -> list[Any]:
    """Host copies of one env's States, one per time step."""
    if isinstance(states, (list, tuple)):
        states = jax.tree.map(lambda *xs: np.stack(xs), *states)
    states = jax.device_get(states)
    if np.ndim(states.reward) == 2:  # (time, envs)
        states = jax.tree.map(lambda x: x[:, index], states)
    elif np.ndim(states.reward) != 1:
        raise ValueError(f"render: invalid states with reward shape {np.shape(states.reward)}; "
                         "allowed: a leading time axis, optionally then an env axis")
    steps = len(states.reward)
    return [jax.tree.map(lambda x: x[t], states) for t in range(steps)]


def _html(env: PlanarArmEnv | GripperEnv, frames: Sequence[Any]) -> str:
    """Brax's viewer over the env's model plus a goal marker link, one frame per env step."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sys = load_system(_with_goal_marker(_without_mocap(env.xml), env.distance_threshold), env.control_dt)
    views = []
    if isinstance(env, GripperEnv):  # MJX data: body 0 is the world; the mocap target is not drawn
        drawn = np.array([i for i in range(1, env.mj_model.nbody) if env.mj_model.body_mocapid[i] < 0])
    for frame in frames:
        if isinstance(env, GripperEnv):
            pos, rot = frame.pipeline_state.xpos[drawn], frame.pipeline_state.xquat[drawn]
            goal = np.asarray(env.to_physics(frame.obs["desired_goal"]), np.float32)  # goals are in Fetch's frame
        else:
            pos, rot = frame.pipeline_state.x.pos, frame.pipeline_state.x.rot
            goal = np.asarray([*frame.obs["desired_goal"][:2], FINGERTIP_HEIGHT], np.float32)
        views.append(_View(Transform(pos=np.concatenate([pos, goal[None]]),
                                     rot=np.concatenate([rot, np.asarray([[1.0, 0.0, 0.0, 0.0]], np.float32)]))))
    return html.render(sys, views)


class _View:
    """What Brax's viewer reads from a pipeline state: the link transforms `x`."""

    def __init__(self, x: Transform):
        self.x = x


def _without_mocap(xml: str) -> str:
    """The scene without the gripper's mocap target and its `connect` constraint (Brax's model
    loader takes neither; the viewer only draws geometry)."""
    xml = re.sub(r'\s*<body name="[^"]*" mocap="true"[^>]*/>', "", xml)
    return re.sub(r"\s*<connect [^>]*/>", "", xml)


def _with_goal_marker(xml: str, radius: float) -> str:
    body = f"""
    <body name="goal" pos="0 0 0">
      <inertial pos="0 0 0" mass="1" diaginertia="1 1 1"/>
      <joint name="goal_x" type="slide" axis="1 0 0"/>
      <joint name="goal_y" type="slide" axis="0 1 0"/>
      <geom name="goal" type="sphere" size="{radius}" rgba="0.1 0.8 0.2 0.35"/>
    </body>
  </worldbody>"""
    return xml.replace("</worldbody>", body, 1)


def _png(env: GoalEnv, frames: Sequence[Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    achieved = np.stack([f.obs["achieved_goal"][:2] for f in frames])
    goal = np.asarray(frames[0].obs["desired_goal"][:2])
    success = np.asarray([float(f.metrics["success"]) for f in frames])
    fig, ax = plt.subplots(figsize=(5, 5))
    if isinstance(env, PlanarArmEnv):
        tip = np.stack([f.obs["observation"][6:8] for f in frames])
        ax.plot(tip[:, 0], tip[:, 1], "-", color="tab:red", alpha=0.5, label="fingertip")
        ax.add_patch(plt.Circle((0, 0), REACH, fill=False, ls=":", color="gray"))
    if isinstance(env, GripperEnv) and env.HAS_OBJECT:
        grip = np.stack([f.obs["observation"][0:2] for f in frames])
        ax.plot(grip[:, 0], grip[:, 1], "-", color="tab:red", alpha=0.5, label="gripper")
    if hasattr(env, "arena_half_size"):
        h = env.arena_half_size
        ax.add_patch(plt.Rectangle((-h, -h), 2 * h, 2 * h, fill=False, color="gray"))
    ax.plot(achieved[:, 0], achieved[:, 1], ".-", color="tab:blue", label="achieved goal")
    ax.plot(*achieved[0], "o", color="tab:blue", mfc="white", label="start")
    ax.add_patch(plt.Circle(goal, env.distance_threshold, color="tab:green", alpha=0.3))
    ax.plot(*goal, "*", color="tab:green", ms=12, label="desired goal")
    ax.set_aspect("equal")
    ax.set_title(f"{type(env).__name__}: {len(frames)} steps, final success {success[-1]:.0f}")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
