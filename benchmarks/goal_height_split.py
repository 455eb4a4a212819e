"""Pick-and-place success split by where the goal is (issue 25): on the table or in the air.

    python -m benchmarks.goal_height_split RUN_DIR [--episodes 1000] [--seed-index 0] [--fetch] [--name NAME]

Fetch's pick-and-place (and hjax's gripper_pick_and_place) puts the goal in the air in half of
the episodes and on the table in the other half. A policy that pushes the cube along the table
and never lifts it therefore plateaus near 50%: this script tells that plateau from a policy that
is just slow. It plays `--episodes` deterministic episodes of a run directory's policy (the newest
checkpoint, normalisers applied) and reports, for table goals and air goals apart, the final
success and how often the cube ended lifted (its centre 2 cm or more above its resting height).
With `--fetch` the same policy plays Gymnasium-Robotics' own FetchPickAndPlace-v4 instead
(`hjax.fetch.play_run`; both put the table top and the goals at the same heights in Fetch's
frame), to tell which half of the goals a cross-play loss comes from. Host script; not jittable.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import jax
import numpy as np

import hjax
from hjax import loading
from benchmarks.common import write_results

LIFTED_M = 0.02  # the cube counts as lifted when its centre ends this far above its resting height
BATCH = 100  # episodes per compiled call
AIR_M = 1e-3  # a goal this far above the resting height is an air goal (table goals sit exactly at it)


def _pick_and_place(run: Any) -> tuple[Any, Any, float]:
    """`(loaded run, its env, the cube's resting height in Fetch's frame)` for a run directory or
    a loaded run (`hjax.loading.load_run`); ValueError for a run of another env."""
    if isinstance(run, (str, os.PathLike)):
        run = loading.load_run(run)
    if run.config.env != "gripper_pick_and_place":
        raise ValueError(f"invalid run of env={run.config.env!r}; allowed: a gripper_pick_and_place run")
    env = run.config.make_env()
    return run, env, float(env.origin[2]) + float(env.object_rest_height)


def play(run: Any, episodes: int, seed: int, seed_index: int = 0) -> dict[str, np.ndarray]:
    """Per-episode desired-goal height above the resting height, final object height above it and
    final success, all in metres / booleans, from `episodes` deterministic episodes of `run` (a
    run directory or a loaded one, `hjax.loading.load_run`)."""
    run, env, rest = _pick_and_place(run)
    policy = loading.load_policy(run, seed_index=seed_index)

    def episode(key):
        def step(state, _):
            return env.step(state, policy(state.obs)), None
        state = jax.lax.scan(step, env.reset(key), None, env.episode_length)[0]
        return (state.obs["desired_goal"][2] - rest, state.obs["achieved_goal"][2] - rest,
                state.metrics["success"])

    # In batches of at most 100 episodes (the trainer's eval width): one 1,000-wide program sat
    # idle in XLA's CPU runtime here for minutes.
    play_batch = jax.jit(jax.vmap(episode))
    keys = jax.random.split(jax.random.PRNGKey(seed), episodes)
    batches = [jax.device_get(play_batch(keys[i:i + BATCH])) for i in range(0, episodes, BATCH)]
    goal_z, object_z, success = (np.concatenate(parts) for parts in zip(*batches))
    return {"goal_z": goal_z, "object_z": object_z, "success": success > 0}


def play_fetch(run: Any, episodes: int, seed: int, seed_index: int = 0) -> dict[str, np.ndarray]:
    """What `play` returns, from `episodes` episodes of the run's policy on FetchPickAndPlace-v4
    (`hjax.fetch.play_run`, episode i reset with seed `seed + i`)."""
    from hjax import fetch

    run, _, rest = _pick_and_place(run)
    per = fetch.play_run(run, episodes=episodes, seed=seed, seed_index=seed_index)["per_episode"]
    return from_fetch(per, rest)


def from_fetch(per_episode: dict[str, np.ndarray], rest: float) -> dict[str, np.ndarray]:
    """`hjax.fetch.play`'s per-episode arrays as `play` returns its own: goal and final cube
    heights above the resting height `rest` (Fetch's frame, m), and final success."""
    return {"goal_z": per_episode["desired_goal"][:, 2] - rest,
            "object_z": per_episode["final_achieved_goal"][:, 2] - rest, "success": per_episode["success"] > 0}


def split_rows(out: dict[str, np.ndarray]) -> list[list[Any]]:
    """One row per goal kind (table, air, all): episodes, final success, cube lifted at the end."""
    air = out["goal_z"] > AIR_M
    lifted = out["object_z"] > LIFTED_M
    rows = []
    for name, mask in (("on the table", ~air), ("in the air", air), ("all", np.ones_like(air))):
        n = int(mask.sum())
        rows.append([name, n, f"{out['success'][mask].mean():.3f}" if n else "-",
                     f"{lifted[mask].mean():.3f}" if n else "-"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--seed-index", type=int, default=0)
    parser.add_argument("--fetch", action="store_true", help="play on FetchPickAndPlace-v4 (hjax.fetch) instead")
    parser.add_argument("--name", default="goal_height_split")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"invalid --episodes={args.episodes}; allowed: an integer >= 1")
    run = loading.load_run(args.run_dir)
    out = (play_fetch if args.fetch else play)(run, args.episodes, args.seed, args.seed_index)
    headers = ["goal", "episodes", "final success", "cube lifted >= 2 cm at the end"]
    rows = split_rows(out)
    defaults = hjax.Config(env=run.config.env).to_dict()
    trained = ", ".join(f"{k}={v}" for k, v in run.config.to_dict().items() if v != defaults[k] and k != "env")
    write_results(args.name, headers, rows,
                  notes=f"{args.run_dir} (gripper_pick_and_place, {trained or 'the default config'}; epoch {run.epoch}, "
                        f"seed index {args.seed_index}), {args.episodes} deterministic episodes "
                        + ("on FetchPickAndPlace-v4 (Gymnasium-Robotics, hjax.fetch) " if args.fetch else "")
                        + f"from seed {args.seed}. An air goal is one more than {AIR_M * 1000:.0f} mm above "
                        f"the cube's resting height; 'lifted': the cube's centre ends {LIFTED_M * 100:.0f} cm or more "
                        "above it.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
