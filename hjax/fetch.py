"""Gymnasium-Robotics' own Fetch envs as a reference for the gripper tasks: a harness that drives
FetchReach/Push/Slide/PickAndPlace-v4 (MuJoCo's C engine) with any policy `obs -> action` and
reports episodes in the format of `hjax.evaluate`.

The reference runs in a virtual environment of its own, because Gymnasium-Robotics 1.4.2 needs
`mujoco < 3.4` (under mujoco 4 its `set_joint_qpos` asserts on the joint-type enum) while hjax's
MJX needs a newer one. `setup_reference()` creates it when missing (about 15 s from PyPI):

    python -m hjax.fetch setup          # creates $HJAX_FETCH_VENV (default ~/.cache/hjax/fetch-reference)

The envs run there unchanged, in a child process (`hjax/fetch_server.py`) that this module talks
to over a pipe; hjax's side needs no MuJoCo C bindings of that version. The gripper tasks observe
in Fetch's world frame and units (`hjax.envs.gripper`), so a policy trained in hjax, with its
normaliser, plays the matching Fetch env unchanged: `hjax eval RUN_DIR --fetch`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hjax import fetch_server  # the pipe's framing (that module imports nothing from hjax or JAX)

GYMNASIUM_ROBOTICS = "gymnasium-robotics==1.4.2"
MUJOCO = "mujoco<3.4"
TASKS = {"gripper_reach": "FetchReach-v4", "gripper_push": "FetchPush-v4",
         "gripper_slide": "FetchSlide-v4", "gripper_pick_and_place": "FetchPickAndPlace-v4"}
SERVER = Path(__file__).with_name("fetch_server.py")


class FetchReferenceError(RuntimeError):
    """The reference environment could not be created, started, or answered with an error."""


def reference_venv() -> Path:
    """Where the reference's virtual environment lives: $HJAX_FETCH_VENV, or
    ~/.cache/hjax/fetch-reference ($XDG_CACHE_HOME respected)."""
    if os.environ.get("HJAX_FETCH_VENV"):
        return Path(os.environ["HJAX_FETCH_VENV"]).expanduser().absolute()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "hjax" / "fetch-reference"


def _python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def setup_reference(venv: Path | None = None, quiet: bool = True) -> Path:
    """Create the reference's virtual environment at `venv` (default `reference_venv()`) if it
    lacks Gymnasium-Robotics, and return its Python. Needs PyPI (or a local index pip knows)."""
    from filelock import FileLock

    venv = reference_venv() if venv is None else Path(venv)
    python = _python(venv)
    stamp = venv / ".hjax-fetch-installed"
    if python.exists() and stamp.exists():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(venv) + ".lock"):  # one creator at a time (test workers, parallel jobs)
        if python.exists() and stamp.exists():
            return python
        _create(venv, python, stamp, quiet)
    return python


def _create(venv: Path, python: Path, stamp: Path, quiet: bool) -> None:
    q = ["--quiet"] if quiet else []
    print(f"hjax.fetch: creating the Fetch reference environment in {venv} "
          f"({GYMNASIUM_ROBOTICS}, {MUJOCO})", file=sys.stderr)
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", *q, "--disable-pip-version-check",
                        GYMNASIUM_ROBOTICS, MUJOCO], check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise FetchReferenceError(
            f"could not create the Fetch reference environment in {venv}: {e}; create it by hand with "
            f"`python3 -m venv {venv} && {python} -m pip install {GYMNASIUM_ROBOTICS} '{MUJOCO}'`, or point "
            "HJAX_FETCH_VENV at one") from e
    stamp.write_text(f"{GYMNASIUM_ROBOTICS} {MUJOCO}\n")


class FetchReference:
    """`num_envs` copies of the Fetch env matching an hjax gripper task, in the reference's
    process. Use as a context manager (the process ends on `close`).

    Observations come back as NumPy float64 arrays shaped (num_envs, size) under Fetch's keys
    (`observation`, `achieved_goal`, `desired_goal`)."""

    def __init__(self, task: str, num_envs: int = 1, python: str | Path | None = None):
        if task not in TASKS:
            raise ValueError(f"invalid task={task!r}; allowed: {', '.join(TASKS)} (each played on "
                             f"{', '.join(TASKS.values())})")
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"invalid num_envs={num_envs!r}; allowed: an integer >= 1")
        self.task, self.env_id, self.num_envs = task, TASKS[task], num_envs
        python = setup_reference() if python is None else Path(python)
        self._proc = subprocess.Popen([str(python), str(SERVER)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        hello = self._receive()
        if hello.get("protocol") != fetch_server.PROTOCOL:
            self.close()
            raise FetchReferenceError(f"{SERVER} speaks protocol {hello.get('protocol')}, this hjax "
                                      f"{fetch_server.PROTOCOL}")
        self.versions = hello["versions"]
        self.info = self._call("make", env_id=self.env_id, num=num_envs)

    # ---- the pipe ------------------------------------------------------------------------------

    def _receive(self) -> dict:
        reply = fetch_server.read_message(self._proc.stdout)
        if reply is None:
            err = self._proc.stderr.read().decode(errors="replace")[-3000:]
            raise FetchReferenceError(f"the Fetch reference process ended: {err}")
        if "error" in reply:
            raise FetchReferenceError(f"the Fetch reference failed:\n{reply['error']}")
        return reply

    def _call(self, cmd: str, **kwargs) -> dict:
        fetch_server.write_message(self._proc.stdin, {"cmd": cmd, **kwargs})
        return self._receive()

    @staticmethod
    def _arrays(obs: Mapping[str, list]) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, np.float64) for k, v in obs.items()}

    # ---- the envs ------------------------------------------------------------------------------

    def reset(self, seeds) -> dict[str, np.ndarray]:
        """Reset env i with `seeds[i]` (Gymnasium's `reset(seed=...)`); returns the observations."""
        seeds = [int(s) for s in seeds]
        if len(seeds) != self.num_envs:
            raise ValueError(f"reset got {len(seeds)} seeds for {self.num_envs} envs")
        return self._arrays(self._call("reset", seeds=seeds)["obs"])

    def step(self, actions) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
        """Step every env; returns (observations, rewards, is_success, truncated)."""
        actions = np.asarray(actions, np.float64).reshape(self.num_envs, 4)
        r = self._call("step", actions=actions.tolist())
        return (self._arrays(r["obs"]), np.asarray(r["reward"]), np.asarray(r["success"]),
                np.asarray(r["truncated"]))

    def state(self) -> list[dict[str, np.ndarray]]:
        """The MuJoCo state behind each env's observation: grip site position and velocity,
        finger joints (r, l), object joint qpos (7) and qvel (6), the goal."""
        return [{k: np.asarray(v) for k, v in row.items()} for row in self._call("state")["state"]]

    def set_object(self, qpos, qvel) -> dict[str, np.ndarray]:
        """Set each env's object joint (qpos (n, 7), qvel (n, 6)); returns the new observations."""
        return self._arrays(self._call("set_object", qpos=np.asarray(qpos, float).tolist(),
                                       qvel=np.asarray(qvel, float).tolist())["obs"])

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                fetch_server.write_message(self._proc.stdin, {"cmd": "exit"})
                self._proc.stdin.close()
                self._proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
        for stream in (self._proc.stdout, self._proc.stderr):
            stream.close()

    def __enter__(self) -> FetchReference:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def play(policy: Callable[[dict[str, np.ndarray]], Any], task: str, episodes: int = 200, seed: int = 1000,
         num_envs: int = 20, python: str | Path | None = None) -> dict[str, Any]:
    """Play `episodes` episodes of `policy` on the Fetch env matching `task`; episode i resets
    with seed `seed + i`. `policy` maps a batch of observations (NumPy arrays with a leading
    axis of `num_envs`) to actions (num_envs, 4).

    Returns what `hjax.evaluate` returns (`success_rate` at the last step, `success_any_step`,
    `final_distance`, `mean_distance`, `episodes`) plus `met_at_reset_rate` (goals met before
    the first step: the chance level), `env_id`, `versions` and `per_episode` (arrays of
    `success`, `success_any_step`, `final_distance`, `met_at_reset`, one entry per episode, and
    `desired_goal` and `final_achieved_goal`, (episodes, 3) each, in Fetch's frame)."""
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"invalid episodes={episodes!r}; allowed: an integer >= 1")
    num_envs = min(num_envs, episodes)
    success, any_step, final, mean, at_reset, goals, achieved = [], [], [], [], [], [], []
    with FetchReference(task, num_envs, python) as ref:
        steps = ref.info["max_episode_steps"]
        for start in range(0, episodes, num_envs):
            seeds = [seed + start + i for i in range(num_envs)]
            obs = ref.reset(seeds)
            d0 = np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"], axis=-1)
            dist, succ = [], []
            for _ in range(steps):
                obs, _, s, _ = ref.step(np.asarray(policy(obs), np.float64))
                succ.append(s)
                dist.append(np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"], axis=-1))
            succ, dist = np.stack(succ), np.stack(dist)
            keep = min(num_envs, episodes - start)
            success += list(succ[-1][:keep])
            any_step += list(succ.max(0)[:keep])
            final += list(dist[-1][:keep])
            mean += list(dist.mean(0)[:keep])
            at_reset += list((d0 < 0.05)[:keep].astype(float))
            goals += list(obs["desired_goal"][:keep])
            achieved += list(obs["achieved_goal"][:keep])
        info, versions = ref.info, ref.versions
    per = {"success": np.asarray(success), "success_any_step": np.asarray(any_step),
           "final_distance": np.asarray(final), "met_at_reset": np.asarray(at_reset),
           "desired_goal": np.asarray(goals).reshape(-1, 3), "final_achieved_goal": np.asarray(achieved).reshape(-1, 3)}
    return {"success_rate": float(per["success"].mean()), "success_any_step": float(per["success_any_step"].mean()),
            "final_distance": float(per["final_distance"].mean()), "mean_distance": float(np.mean(mean)),
            "met_at_reset_rate": float(per["met_at_reset"].mean()), "episodes": episodes,
            "env_id": info["env_id"], "versions": versions, "per_episode": per}


def numpy_policy(policy: Callable[[Mapping[str, Any]], Any]) -> Callable[[Mapping[str, np.ndarray]], np.ndarray]:
    """`policy` (a JAX function of a batch of observations, e.g. `hjax.load_policy(...)` or a
    vmapped scripted controller) as `play` calls it: NumPy float64 in, NumPy actions out."""
    import jax
    import jax.numpy as jnp

    jitted = jax.jit(policy)
    return lambda obs: np.asarray(jax.device_get(jitted({k: jnp.asarray(v, jnp.float32) for k, v in obs.items()})))


def play_run(result_or_run_dir: Any, episodes: int = 200, seed: int = 1000, seed_index: int = 0,
             epoch: int | None = None, num_envs: int = 20, python: str | Path | None = None) -> dict[str, Any]:
    """Cross-play: a gripper run's deterministic policy (a `Result` or a run directory; with its
    normaliser, unchanged) on the matching Fetch env, `episodes` episodes; returns `play`'s dict
    plus `task` and `epoch`. `hjax eval RUN_DIR --fetch` prints it beside hjax's own figure."""
    from hjax import loading

    config, state, trainer, run = loading._run_and_state(result_or_run_dir, seed_index, epoch, "play_run")
    if config.env not in TASKS:
        raise ValueError(f"invalid env={config.env!r} for Fetch cross-play; allowed: {', '.join(TASKS)}")
    changed = sorted(set(config.env_kwargs) & {"distance_threshold", "episode_length", "reward_type"})
    if changed:
        raise ValueError(f"the run changed the task with env_kwargs {', '.join(changed)}; Fetch's envs keep "
                         "their own (distance_threshold 0.05, 50 steps, sparse reward)")
    out = play(numpy_policy(lambda obs: trainer.policy(state, obs)), config.env, episodes=episodes, seed=seed,
               num_envs=num_envs, python=python)
    out.update(task=config.env, epoch=getattr(run, "epoch", None))
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m hjax.fetch", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("setup", help="create the reference's virtual environment if it is missing")
    p.add_argument("--venv", type=Path, default=None, help="where (default $HJAX_FETCH_VENV or ~/.cache/hjax/fetch-reference)")
    args = parser.parse_args(argv)
    python = setup_reference(args.venv, quiet=False)
    with FetchReference("gripper_push", 1, python) as ref:
        print(f"Fetch reference ready: {python} ({', '.join(f'{k} {v}' for k, v in ref.versions.items())})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
