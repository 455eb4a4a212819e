"""MJX against MuJoCo's own C engine on the scripted gripper episodes: the distribution of the gap.

    python -m benchmarks.gripper_fidelity [--episodes 32] [--speed-envs 256]

For each row: `--episodes` scripted episodes (a fixed key per task) run on MJX as the env runs
them (float32, `jit(vmap(step))`); then MuJoCo's C engine (`mujoco.mj_step`, float64, its own
collision code) replays each one from the same start state with the same actions, open loop.
Reported: the distance between the two cubes after the 50 steps (median, 90th percentile, max,
per episode), the per-step gap (median and max over episodes), the episodes' success on MJX and
the cube's largest tilt on MJX. Rows: pick-and-place and push at their defaults, and push at 2
Newton iterations (the setting push had before; it is what made pushes diverge).
`--speed-envs N` adds random-action env steps/s of gripper_push at 2 and 4 iterations (N envs).
Writes benchmarks/results/gripper_fidelity.{json,md}. Host script; not jittable.
"""

from __future__ import annotations

import argparse
import time

import jax
import mujoco
import numpy as np

from hjax import envs
from benchmarks.backends import throughput
from benchmarks.common import write_results
from hjax.envs import gripper as g

CONTROLLERS = {"gripper_pick_and_place": g.pick_and_place_policy, "gripper_push": g.push_policy}
KEYS = {"gripper_pick_and_place": 100, "gripper_push": 101}  # the keys tests/test_gripper*.py use
TOLERANCE = 0.01  # m: the fidelity requirement (the cube within 1 cm after 50 steps)


def scripted_rollout(env, policy, num_envs: int, key: jax.Array):
    """MJX episodes of `policy`: (start qpos (envs, nq), qpos (T, envs, nq), actions (T, envs, 4),
    final success (envs,)), on the host."""
    def run(key):
        state0 = jax.vmap(env.reset)(jax.random.split(key, num_envs))

        def body(state, _):
            action = jax.vmap(policy)(state.obs)
            state = jax.vmap(env.step)(state, action)
            return state, (state.pipeline_state.qpos, action)

        last, (qpos, actions) = jax.lax.scan(body, state0, None, env.episode_length)
        return state0.pipeline_state.qpos, qpos, actions, last.metrics["success"]

    return jax.device_get(jax.jit(run)(key))


def mujoco_replay(env, qpos0: np.ndarray, actions: np.ndarray, full: bool = False) -> np.ndarray:
    """The object's position (T, 3) after each step when MuJoCo's C engine, on the env's own XML
    in float64, starts at rest at `qpos0` and takes `actions` (T, 4) open loop; with `full`, every
    joint position (T, nq)."""
    model, data = env.mj_model, env.mujoco_data(qpos0)
    out = []
    for action in actions:
        env.set_mujoco_controls(data, action)
        mujoco.mj_step(model, data, nstep=env.n_frames)
        out.append(data.qpos.copy() if full else data.qpos[g.OBJECT_POS].copy())
    return np.stack(out)


def tilt_degrees(qpos: np.ndarray) -> np.ndarray:
    """Angle between the object's z axis and the world's, for qpos (..., nq)."""
    x, y = qpos[..., g.OBJECT_QUAT.start + 1], qpos[..., g.OBJECT_QUAT.start + 2]
    return np.degrees(np.arccos(np.clip(1 - 2 * (x * x + y * y), -1.0, 1.0)))


def measure(name: str, episodes: int, **overrides) -> dict:
    env = envs.make(name, **overrides)
    t0 = time.perf_counter()
    q0, q, actions, success = scripted_rollout(env, CONTROLLERS[name], episodes, jax.random.PRNGKey(KEYS[name]))
    mjx_s = time.perf_counter() - t0
    gaps = np.stack([np.linalg.norm(mujoco_replay(env, q0[i].astype(np.float64), actions[:, i])
                                    - q[:, i, g.OBJECT_POS], axis=-1) for i in range(episodes)], 1)  # (T, envs)
    final = gaps[-1]
    return {
        "task": name, "iterations": f"{env.iterations}/{env.ls_iterations}", "episodes": episodes,
        "key": KEYS[name], "success": float(np.mean(success)),
        "median_mm": float(np.median(final) * 1e3), "p90_mm": float(np.quantile(final, 0.9) * 1e3),
        "max_mm": float(final.max() * 1e3), "within_1cm": int((final < TOLERANCE).sum()),
        "max_tilt_deg": float(tilt_degrees(q).max()),
        "final_gap_mm": (final * 1e3).round(3).tolist(),
        "gap_by_step_median_mm": (np.median(gaps, 1) * 1e3).round(3).tolist(),
        "gap_by_step_max_mm": (gaps.max(1) * 1e3).round(3).tolist(),
        "mjx_seconds_compile_included": round(mjx_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--speed-envs", type=int, default=256, help="0 skips the speed rows")
    parser.add_argument("--note", default="", help="a sentence for the results notes (e.g. concurrent jobs)")
    args = parser.parse_args()
    if args.episodes < 1:
        raise ValueError(f"--episodes={args.episodes}: must be >= 1")
    if args.speed_envs < 0:
        raise ValueError(f"--speed-envs={args.speed_envs}: must be >= 0 (0 skips)")
    rows = [measure("gripper_pick_and_place", args.episodes), measure("gripper_push", args.episodes),
            measure("gripper_push", args.episodes, iterations=2)]
    headers = ["task", "iterations", "episodes", "success (MJX)", "final gap median mm", "p90 mm",
               "max mm", "within 1 cm", "max tilt deg"]
    table = [[r["task"], r["iterations"], r["episodes"], r["success"], r["median_mm"], r["p90_mm"],
              r["max_mm"], f"{r['within_1cm']}/{r['episodes']}", r["max_tilt_deg"]] for r in rows]
    for r in table:
        print(" | ".join(str(v) for v in r), flush=True)
    speed = []
    if args.speed_envs:
        for iterations in (2, 4):
            steps_s, compile_s = throughput(envs.make("gripper_push", iterations=iterations), args.speed_envs, 3)
            speed.append({"iterations": iterations, "num_envs": args.speed_envs, "steps_per_s": steps_s,
                          "compile_s": compile_s})
            print(f"gripper_push iterations {iterations}: {steps_s:.3g} env steps/s at {args.speed_envs} envs", flush=True)
    per_episode = "\n".join(f"- {r['task']} {r['iterations']}: " + ", ".join(f"{v:.1f}" for v in r["final_gap_mm"])
                            for r in rows)
    notes = ["Final gap: distance between MJX's cube and the C engine's after 50 steps (the scripted "
             "episodes' actions replayed open loop from the same start states). Episodes: the first "
             f"{args.episodes} of PRNGKey({KEYS['gripper_pick_and_place']}) (pick-and-place) and "
             f"PRNGKey({KEYS['gripper_push']}) (push), none left out.", "", "Per episode (mm):", per_episode]
    if speed:
        notes += ["", "Random-action env steps/s of gripper_push (reset included, median of 3 calls): "
                  + "; ".join(f"{s['iterations']} iterations {s['steps_per_s']:.3g} at {s['num_envs']} envs "
                              f"(compile {s['compile_s']:.0f} s)" for s in speed)]
    if args.note:
        notes += ["", args.note]
    path = write_results("gripper_fidelity", headers, table, extra={"details": rows, "speed": speed},
                         notes="\n".join(notes))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
