"""Learning on the Fetch-faithful gripper tasks, with HER and without (issue 24, item 6).

    python -m benchmarks.gripper_learning --env gripper_reach --num-epochs 10 [--seeds 3]

One `hjax.sweep` over `her_strategy` in (future, none), `--seeds` vmapped seeds each, on the CPU
configuration the cross-play runs use (256 envs, 200 updates of batch 2048 per epoch, 3 x 256
networks, 8,192-episode buffer, seed 11): final eval success (IQM, 95% stratified-bootstrap CI),
env steps to 50% and 90% eval success (IQM over seeds; "never" when a seed does not get there),
and the sweep's wall time, compile included (both points run in the one program, so it is the
time for both). Writes `benchmarks/results/gripper_learning_ENV.{md,json}` and keeps the sweep's
run directory (`--run-dir`). Host script; not jittable.
"""

from __future__ import annotations

import argparse
import math
import time

import hjax
from benchmarks.common import write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, choices=["gripper_reach", "gripper_push", "gripper_pick_and_place",
                                                         "gripper_slide"])
    parser.add_argument("--num-epochs", type=int, required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--run-dir", default=None, help="where the sweep is written (default: runs/learning_ENV)")
    args = parser.parse_args()
    config = hjax.Config(env=args.env, seed=11, num_envs=256, grad_steps_per_epoch=200, batch_size=2048,
                         buffer_episodes=8192, hidden_sizes=(256, 256, 256), num_epochs=args.num_epochs,
                         chunk_epochs=5)
    start = time.perf_counter()
    sweep = hjax.sweep(config, {"her_strategy": ["future", "none"]}, num_seeds=args.seeds,
                       run_dir=args.run_dir or f"runs/learning_{args.env}", overwrite=True)
    wall = time.perf_counter() - start
    tables = {target: sweep.table(target) for target in (0.5, 0.9)}
    headers = ["her_strategy", "final eval success IQM [95% CI]", "env steps to 50% IQM [95% CI]",
               "env steps to 90% IQM [95% CI]", "seeds reaching 90%"]
    rows = []
    for i, strategy in enumerate(["future", "none"]):
        half, most = tables[0.5][i], tables[0.9][i]
        rows.append([strategy, _ci(most, "final_success"), _steps(half), _steps(most),
                     f"{most['seeds_reaching_target']}/{most['seeds']}"])
    env_steps = config.num_envs * hjax.envs.make(args.env).episode_length * args.num_epochs
    print("\n".join(f"{r}" for r in rows))
    write_results(f"gripper_learning_{args.env}", headers, rows, extra={"wall_s": wall, "config": config.to_dict()},
                  notes=f"{args.seeds} seeds per row, {env_steps:,} env steps per seed; wall time of the whole sweep "
                        f"(both rows, compile included): {wall:.0f} s on one core. Gripper env version "
                        f"{hjax.envs.make(args.env).VERSION}.")


def _ci(row: dict, key: str) -> str:
    return f"{row[key + '_iqm']:.3f} [{row[key + '_low']:.3f}, {row[key + '_high']:.3f}]"


def _steps(row: dict) -> str:
    if not math.isfinite(row["steps_to_target_iqm"]) or row["seeds_reaching_target"] < row["seeds"]:
        return f"never ({row['seeds_reaching_target']}/{row['seeds']} seeds)"
    return (f"{row['steps_to_target_iqm']:,.0f} [{row['steps_to_target_low']:,.0f}, "
            f"{row['steps_to_target_high']:,.0f}]")


if __name__ == "__main__":
    main()
