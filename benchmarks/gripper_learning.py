"""Learning on the Fetch-faithful gripper tasks, with HER and without (issue 24, item 6).

    python -m benchmarks.gripper_learning --env gripper_reach --num-epochs 10 [--seeds 3]

One `hjax.sweep` over `her_strategy` in (future, none), `--seeds` vmapped seeds each, on the CPU
configuration the cross-play runs use (256 envs, 200 updates of batch 2048 per epoch, 3 x 256
networks, 8,192-episode buffer, seed 11): final eval success (IQM, 95% stratified-bootstrap CI),
env steps to 50% and 90% eval success (IQM over seeds; "never" when a seed does not get there),
and the sweep's wall time to each, compile included. Both points and all seeds run in the one
program, so a wall time is the whole sweep's (2 x seeds runs on one core), read at the end of the
compiled chunk in which the IQM's env-step count falls. Writes
`benchmarks/results/gripper_learning_ENV.{md,json}` (the JSON's `summary` holds the figures as
numbers) and `gripper_learning_ENV_curves.png` (`hjax.plotting.plot_sweep`), and keeps the
sweep's run directory (`--run-dir`). Host script; not jittable.
"""

from __future__ import annotations

import argparse
import math
import time

import hjax
from hjax.plotting import plot_sweep
from benchmarks.common import RESULTS_DIR, wall_at, write_results

TASKS = ["gripper_reach", "gripper_push", "gripper_pick_and_place", "gripper_slide"]
STRATEGIES = ["future", "none"]
TARGETS = (0.5, 0.9)


def config_for(env: str, num_epochs: int) -> hjax.Config:
    """The cross-play runs' CPU configuration (see the module docstring)."""
    return hjax.Config(env=env, seed=11, num_envs=256, grad_steps_per_epoch=200, batch_size=2048,
                       buffer_episodes=8192, hidden_sizes=(256, 256, 256), num_epochs=num_epochs, chunk_epochs=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, choices=TASKS)
    parser.add_argument("--num-epochs", type=int, required=True, help="a multiple of 5 (the chunk)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--run-dir", default=None, help="where the sweep is written (default: runs/learning_ENV)")
    args = parser.parse_args()
    config = config_for(args.env, args.num_epochs)
    start = time.perf_counter()
    chunk_ends: list[tuple[int, float]] = []  # (epochs done, seconds since start, compile included)
    sweep = hjax.sweep(config, {"her_strategy": STRATEGIES}, num_seeds=args.seeds,
                       progress=lambda epoch, _: chunk_ends.append((epoch, time.perf_counter() - start)),
                       run_dir=args.run_dir or f"runs/learning_{args.env}", overwrite=True)
    wall = time.perf_counter() - start
    steps_per_epoch = config.env_steps_per_epoch
    summary = []
    for i, strategy in enumerate(STRATEGIES):
        entry = {"her_strategy": strategy}
        for target in TARGETS:
            row = sweep.table(target)[i]
            entry.update(final_success_iqm=row["final_success_iqm"], final_success_low=row["final_success_low"],
                         final_success_high=row["final_success_high"], seeds=row["seeds"])
            key = f"{round(100 * target)}"
            entry[f"steps_to_{key}_iqm"] = row["steps_to_target_iqm"]
            entry[f"steps_to_{key}_low"] = row["steps_to_target_low"]
            entry[f"steps_to_{key}_high"] = row["steps_to_target_high"]
            entry[f"seeds_reaching_{key}"] = row["seeds_reaching_target"]
            entry[f"wall_s_to_{key}"] = wall_at(row["steps_to_target_iqm"] / steps_per_epoch, chunk_ends)
        summary.append(entry)
    headers = ["her_strategy", "final eval success IQM [95% CI]", "env steps to 50% IQM [95% CI]",
               "sweep wall s to 50%", "env steps to 90% IQM [95% CI]", "sweep wall s to 90%", "seeds reaching 90%"]
    rows = [[e["her_strategy"], _ci(e), _steps(e, "50"), _wall(e, "50"), _steps(e, "90"), _wall(e, "90"),
             f"{e['seeds_reaching_90']}/{e['seeds']}"] for e in summary]
    env_steps = steps_per_epoch * args.num_epochs
    plot_sweep(sweep, RESULTS_DIR / f"gripper_learning_{args.env}_curves.png",
                             title=f"{args.env} (env version {hjax.envs.make(args.env).VERSION}), HER and none")
    print("\n".join(f"{r}" for r in rows))
    write_results(f"gripper_learning_{args.env}", headers, rows,
                  extra={"wall_s": wall, "compile_s": sweep.compile_seconds, "run_s": sweep.run_seconds,
                         "chunk_ends": chunk_ends, "env_steps_per_seed": env_steps,
                         "env_version": hjax.envs.make(args.env).VERSION, "summary": summary,
                         "config": config.to_dict()},
                  notes=f"{args.seeds} seeds per row, {env_steps:,} env steps per seed. Both rows run in one "
                        f"program on one core, so a wall time is the whole sweep's ({2 * args.seeds} runs; compile "
                        f"{sweep.compile_seconds:.0f} s included), read at the end of the 5-epoch chunk holding the "
                        f"IQM; the sweep took {wall:.0f} s in all. Gripper env version "
                        f"{hjax.envs.make(args.env).VERSION}. Curves: gripper_learning_{args.env}_curves.png.")


def _ci(e: dict) -> str:
    return f"{e['final_success_iqm']:.3f} [{e['final_success_low']:.3f}, {e['final_success_high']:.3f}]"


def _steps(e: dict, key: str) -> str:
    if not math.isfinite(e[f"steps_to_{key}_iqm"]) or e[f"seeds_reaching_{key}"] < e["seeds"]:
        return f"never ({e[f'seeds_reaching_{key}']}/{e['seeds']} seeds)"
    return f"{e[f'steps_to_{key}_iqm']:,.0f} [{e[f'steps_to_{key}_low']:,.0f}, {e[f'steps_to_{key}_high']:,.0f}]"


def _wall(e: dict, key: str) -> str:
    if not math.isfinite(e[f"wall_s_to_{key}"]) or e[f"seeds_reaching_{key}"] < e["seeds"]:
        return "never"
    return f"{e[f'wall_s_to_{key}']:,.0f}"


if __name__ == "__main__":
    main()
