"""The reference side of the Fetch harness (`hjax.fetch`): Gymnasium-Robotics' own Fetch envs,
driven over a pipe.

This file runs in a virtual environment of its own (Gymnasium-Robotics 1.4.2 with mujoco < 3.4,
which `hjax.fetch.setup_reference` creates), never in hjax's: it imports neither hjax nor JAX.
The envs are created with `gymnasium.make` and used as they are; the harness only reads their
observations and MuJoCo state, and (for the observation checks) sets the object's joint state
through Gymnasium-Robotics' own `set_joint_qpos` / `set_joint_qvel`.

Protocol: each message either way is a 4-byte big-endian length and a pickle of plain Python
values (dicts, lists, floats, ints, strings; no NumPy objects, so the two sides' NumPy versions
never meet). A request is `{"cmd": NAME, ...}`; a reply is a dict, `{"error": TEXT}` on failure.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
import traceback

PROTOCOL = 1  # bumped whenever a command or a reply changes


def read_message(stream):
    """The next message on `stream`, or None at its end."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    (size,) = struct.unpack(">I", head)
    return pickle.loads(stream.read(size))


def write_message(stream, message) -> None:
    blob = pickle.dumps(message, protocol=4)
    stream.write(struct.pack(">I", len(blob)) + blob)
    stream.flush()


class Server:
    def __init__(self):
        import gymnasium as gym
        import gymnasium_robotics
        import mujoco
        import numpy as np

        gym.register_envs(gymnasium_robotics)
        self.gym, self.np, self.mujoco = gym, np, mujoco
        self.envs = []
        self.versions = {"gymnasium": gym.__version__, "gymnasium_robotics": gymnasium_robotics.__version__,
                         "mujoco": mujoco.__version__, "numpy": np.__version__,
                         "python": sys.version.split()[0]}

    # ---- commands ------------------------------------------------------------------------------

    def hello(self):
        return {"protocol": PROTOCOL, "versions": self.versions}

    def make(self, env_id: str, num: int):
        for env in self.envs:
            env.close()
        self.envs = [self.gym.make(env_id) for _ in range(num)]
        u = self.envs[0].unwrapped
        m = u.model
        geoms = {}
        for name in ("table0", "object0"):
            body = self.mujoco.mj_name2id(m, self.mujoco.mjtObj.mjOBJ_BODY, name)
            if body < 0:
                continue
            i = [g for g in range(m.ngeom) if m.geom_bodyid[g] == body][0]
            geoms[name] = {"type": int(m.geom_type[i]), "size": m.geom_size[i].tolist(),
                           "pos": u.data.geom_xpos[i].tolist(), "friction": m.geom_friction[i].tolist()}
        return {"env_id": env_id, "num": num, "dt": float(u.dt),
                "max_episode_steps": int(self.envs[0].spec.max_episode_steps),
                "initial_gripper_xpos": u.initial_gripper_xpos.tolist(),
                "height_offset": float(getattr(u, "height_offset", float("nan"))),
                "has_object": bool(u.has_object), "geoms": geoms, "versions": self.versions}

    def _obs(self, obs_list):
        return {k: [o[k].tolist() for o in obs_list] for k in ("observation", "achieved_goal", "desired_goal")}

    def reset(self, seeds):
        return {"obs": self._obs([env.reset(seed=int(s))[0] for env, s in zip(self.envs, seeds)])}

    def step(self, actions):
        out, reward, success, truncated = [], [], [], []
        for env, a in zip(self.envs, actions):
            obs, r, _, trunc, info = env.step(self.np.asarray(a, self.np.float32))
            out.append(obs)
            reward.append(float(r))
            success.append(float(info["is_success"]))
            truncated.append(bool(trunc))
        return {"obs": self._obs(out), "reward": reward, "success": success, "truncated": truncated}

    def state(self):
        """The physical state behind each env's observation, for the observation checks."""
        rows = []
        for env in self.envs:
            u = env.unwrapped
            m, d, utils = u.model, u.data, u._utils
            row = {"grip_pos": utils.get_site_xpos(m, d, "robot0:grip").tolist(),
                   "grip_velp": utils.get_site_xvelp(m, d, "robot0:grip").tolist(),
                   "fingers_qpos": [float(utils.get_joint_qpos(m, d, f"robot0:{s}_gripper_finger_joint")[0])
                                    for s in ("r", "l")],
                   "fingers_qvel": [float(utils.get_joint_qvel(m, d, f"robot0:{s}_gripper_finger_joint")[0])
                                    for s in ("r", "l")],
                   "goal": u.goal.tolist()}
            if u.has_object:
                row["object_qpos"] = utils.get_joint_qpos(m, d, "object0:joint").tolist()
                row["object_qvel"] = utils.get_joint_qvel(m, d, "object0:joint").tolist()
                row["object_site_pos"] = utils.get_site_xpos(m, d, "object0").tolist()
            rows.append(row)
        return {"state": rows}

    def set_object(self, qpos, qvel):
        """Set each env's object joint state (7 positions, 6 velocities) and recompute the
        observation, with the envs' own utilities (`mj_forward`, then `_get_obs`)."""
        out = []
        for env, q, v in zip(self.envs, qpos, qvel):
            u = env.unwrapped
            u._utils.set_joint_qpos(u.model, u.data, "object0:joint", self.np.asarray(q, float))
            u._utils.set_joint_qvel(u.model, u.data, "object0:joint", self.np.asarray(v, float))
            self.mujoco.mj_forward(u.model, u.data)
            out.append(u._get_obs())
        return {"obs": self._obs(out)}

    def close(self):
        for env in self.envs:
            env.close()
        self.envs = []
        return {}


def main() -> None:
    # The protocol owns the real stdout; anything a library prints goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    try:
        server = Server()
    except Exception:  # noqa: BLE001 - reported to the client, which raises it
        write_message(out, {"error": traceback.format_exc()})
        return
    write_message(out, server.hello())
    while True:
        request = read_message(inp)
        if request is None or request.get("cmd") == "exit":
            return
        cmd = request.pop("cmd")
        try:
            reply = getattr(server, cmd)(**request)
        except Exception:  # noqa: BLE001 - reported to the client, which raises it
            reply = {"error": traceback.format_exc()}
        write_message(out, reply)


if __name__ == "__main__":
    main()
