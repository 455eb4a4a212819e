"""What the gripper tasks cost on MJX, and what each physics setting buys: speed against sanity.

    python -m benchmarks.gripper_speed [--tasks gripper_push ...] [--num-envs 256 1024 4096]
        [--variants n_frames=2 n_frames=10 iterations=1 iterations=4 ...] [--steps-per-call 50000]

Part 1, every task at its defaults: env steps/s of `jit(vmap(step))` in a `lax.scan` with random
actions (`benchmarks.backends.throughput`, reset included, ~`--steps-per-call` env steps
per timed call, median of `--repeats`) at each `--num-envs`, and the compile time.

Part 2, `gripper_pick_and_place` with one setting changed at a time (`--variants`, env
overrides): steps/s at `--variant-envs` envs, and the physics checks of tests/test_gripper.py on
256 envs: largest gripper and cube drift in 50 zero-action steps, the cube's lowest corner under
50 random steps (< 0 is sinking into the table), scripted pick-and-place success (final step),
and the largest cube slip in the fingers during a 1 s hold after it. `--variants` with no values
skips part 2.

Writes benchmarks/results/gripper_speed.{md,json}. Host script; not jittable.
"""

from __future__ import annotations

import argparse
import ast
import time

import jax
import jax.numpy as jnp
import numpy as np

from hjax import envs
from benchmarks.backends import throughput
from benchmarks.common import markdown_table, write_results
from hjax.envs import gripper as g

TASKS = ("gripper_reach", "gripper_push", "gripper_slide", "gripper_pick_and_place")
CHECK_ENVS = 256
HOLD_STEPS = 25


def physics_checks(env) -> dict[str, float]:
    """The checks of tests/test_gripper.py on `CHECK_ENVS` envs (pick-and-place)."""
    n, T = CHECK_ENVS, env.episode_length

    def run(key):
        key_reset, key_act = jax.random.split(key)
        s0 = jax.vmap(env.reset)(jax.random.split(key_reset, n))

        def rollout(policy, steps):
            def body(state, key_t):
                state = jax.vmap(env.step)(state, policy(state, key_t))
                return state, state.pipeline_state.qpos
            return jax.lax.scan(body, s0, jax.random.split(key_act, steps))

        _, q_zero = rollout(lambda s, k: jnp.zeros((n, 4)), T)
        _, q_rand = rollout(lambda s, k: jax.random.uniform(k, (n, 4), minval=-1, maxval=1), T)
        final, q_pick = rollout(lambda s, k: jax.vmap(g.pick_and_place_policy)(s.obs), T + HOLD_STEPS)
        return s0.pipeline_state.qpos, s0.obs["desired_goal"], q_zero, q_rand, q_pick

    q0, goal, q_zero, q_rand, q_pick = jax.device_get(jax.jit(run)(jax.random.PRNGKey(7)))
    drift = lambda sl: float(np.linalg.norm(q_zero[:, :, sl] - q0[None, :, sl], axis=-1).max())  # noqa: E731
    quat = q_rand[..., g.OBJECT_QUAT]
    w, x, y, z = np.moveaxis(quat, -1, 0)
    rz = np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)
    lowest = q_rand[..., 7] - g.OBJECT_HALF_SIZE * np.abs(rz).sum(-1)
    success = np.linalg.norm(q_pick[T - 1, :, g.OBJECT_POS] - goal, axis=-1) < env.distance_threshold
    air = goal[:, 2] > env.object_rest_height + 0.05
    held = success & air
    offset = q_pick[T - 1:, held][..., g.OBJECT_POS] - q_pick[T - 1:, held][..., g.GRIP]
    slip = np.linalg.norm(offset - offset[:1], axis=-1).max() if held.any() else float("nan")
    return {"zero_grip_drift_mm": 1e3 * drift(g.GRIP), "zero_cube_drift_mm": 1e3 * drift(g.OBJECT_POS),
            "random_lowest_corner_mm": 1e3 * float(lowest.min()),
            "random_finite": bool(np.isfinite(q_rand).all()),
            "scripted_success": float(success.mean()), "hold_slip_mm": 1e3 * float(slip)}


def parse_variant(text: str) -> dict:
    key, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"invalid variant {text!r}; expected KEY=VALUE, e.g. n_frames=10")
    return {key: ast.literal_eval(value)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="*", default=list(TASKS), choices=TASKS)
    parser.add_argument("--num-envs", nargs="+", type=int, default=[256, 1024, 4096])
    parser.add_argument("--variants", nargs="*", default=["n_frames=2", "n_frames=4", "n_frames=10",
                                                          "iterations=1", "iterations=4"])
    parser.add_argument("--variant-envs", type=int, default=1024)
    parser.add_argument("--steps-per-call", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--name", default="gripper_speed")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variants]
    t_start = time.perf_counter()

    headers1 = ["task", "n_frames", "iterations"] + [f"steps/s {n}" for n in args.num_envs] + ["compile_s (per size)"]
    rows1 = []
    for name in args.tasks:
        env = envs.make(name)
        measured = [throughput(env, n, args.repeats, args.steps_per_call) for n in args.num_envs]
        rows1.append([name, env.n_frames, f"{env.iterations}/{env.ls_iterations}"] + [m[0] for m in measured]
                     + [" / ".join(f"{m[1]:.0f}" for m in measured)])
        print(markdown_table(headers1, rows1[-1:]).splitlines()[-1], flush=True)

    headers2 = ["pick_and_place setting", f"steps/s {args.variant_envs}", "compile_s", "zero action: gripper / cube drift mm",
                "random: cube lowest corner mm", "finite", "scripted success", "1 s hold slip mm"]
    rows2, raw = [], {}
    for override in ([{}] + variants) if variants else []:  # `--variants` with none: part 1 only
        env = envs.make("gripper_pick_and_place", **override)
        speed, compile_s = throughput(env, args.variant_envs, args.repeats, args.steps_per_call)
        checks = physics_checks(env)
        label = ", ".join(f"{k}={v}" for k, v in override.items()) or \
            f"defaults (n_frames={env.n_frames}, iterations={env.iterations}/{env.ls_iterations})"
        rows2.append([label, speed, round(compile_s), f"{checks['zero_grip_drift_mm']:.2f} / {checks['zero_cube_drift_mm']:.2f}",
                      round(checks["random_lowest_corner_mm"], 1), "yes" if checks["random_finite"] else "NO",
                      checks["scripted_success"], round(checks["hold_slip_mm"], 1)])
        raw[label] = checks
        print(markdown_table(headers2, rows2[-1:]).splitlines()[-1], flush=True)

    total = time.perf_counter() - t_start
    table2 = markdown_table(headers2, rows2)
    notes = ((f"Part 2: one setting changed at a time on gripper_pick_and_place.\n\n{table2}\n\n" if rows2 else "")
             + f"Whole run: {total:.0f} s. " + NOTES)
    path = write_results(args.name, headers1, rows1, extra={"variants": rows2, "variant_headers": headers2,
                                                            "checks": raw}, notes=notes)
    print("\n" + markdown_table(headers1, rows1) + "\n\n" + table2 + f"\nwritten: {path}")


NOTES = """Steps/s: random actions, reset included, median of the timed calls.
Physics checks (256 envs, as in tests/test_gripper.py): drift under 50 zero-action steps; the
cube's lowest corner under 50 random steps (negative: below the table top; soft contacts give
a few mm under impacts); the scripted pick-and-place controller's final-step success and the
largest slip of the cube in the fingers during a 1 s hold at air goals after the episode."""


if __name__ == "__main__":
    main()
