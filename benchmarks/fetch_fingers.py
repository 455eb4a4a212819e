"""The fingers under the same commands, on Gymnasium-Robotics' own FetchPickAndPlace-v4 and on
hjax's gripper_pick_and_place (issue 24: the same world).

    python -m benchmarks.fetch_fingers [--episodes 8]

The parity table compares the grip point's path under the same actions, not the fingers'. Here
both sides start from the same reset (the gripper in free space, at least 10 cm from the cube),
hold the arm still and command the fingers only: 6 steps of +1 (open), then 10 of -1 (close);
then uniform random finger commands for 20 steps. The table gives each side's finger opening
(Fetch's observation entries 9 and 10, m from closed, both fingers alike) per step of the open /
close sequence, and the per-step difference of finger displacement under the random commands.
A policy trained on one side that opens or closes in time for a grasp there meets fingers of
another speed on the other. Host script; not jittable.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks import fetch_parity as fp
from hjax import envs

TASK = "gripper_pick_and_place"
OPEN_STEPS, CLOSE_STEPS = 6, 10
RANDOM_STEPS = 20


def open_close_commands(episodes: int) -> np.ndarray:
    """Actions (OPEN_STEPS + CLOSE_STEPS, episodes, 4): the arm still, the fingers opened fully
    then closed."""
    actions = np.zeros((OPEN_STEPS + CLOSE_STEPS, episodes, 4))
    actions[:OPEN_STEPS, :, 3], actions[OPEN_STEPS:, :, 3] = 1.0, -1.0
    return actions


def random_commands(episodes: int, seed: int) -> np.ndarray:
    """Actions (RANDOM_STEPS, episodes, 4): the arm still, uniform random finger commands."""
    actions = np.zeros((RANDOM_STEPS, episodes, 4))
    actions[:, :, 3] = np.random.default_rng(seed).uniform(-1, 1, (RANDOM_STEPS, episodes))
    return actions


def finger_paths(actions: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Both fingers' positions (T + 1, n, 2), Fetch's observation order, under the same actions
    (T, n, 4) from the same resets (the fingers start closed on both sides whatever the reset):
    (Fetch, hjax)."""
    return fp.observation_paths(TASK, actions, seed, slice(9, 11))


def random_differences(episodes: int, seed: int) -> np.ndarray:
    """|hjax - Fetch| of each step's finger displacement (m; RANDOM_STEPS, episodes, 2) under the
    same uniform random finger commands from the same resets, the arm still."""
    theirs, ours = finger_paths(random_commands(episodes, seed), seed)
    return np.abs(np.diff(ours, axis=0) - np.diff(theirs, axis=0))


def main(argv: list[str] | None = None) -> int:
    from benchmarks.common import markdown_table, write_results

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--seed", type=int, default=500)
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"invalid --episodes={args.episodes}; allowed: an integer >= 1")
    theirs, ours = finger_paths(open_close_commands(args.episodes), args.seed)
    headers = ["step", "command", "Fetch finger opening (mm, mean)", "hjax finger opening (mm, mean)",
               "hjax - Fetch (mm)"]
    rows = []
    for t in range(1, OPEN_STEPS + CLOSE_STEPS + 1):
        f, h = theirs[t].mean() * 1000, ours[t].mean() * 1000
        rows.append([t, "+1 (open)" if t <= OPEN_STEPS else "-1 (close)", f"{f:.1f}", f"{h:.1f}", f"{h - f:+.1f}"])
    err = random_differences(args.episodes, args.seed) * 1000
    rows.append(["1-20", "uniform random", "", "", f"per-step displacement difference: median {np.median(err):.1f}, "
                 f"95th {np.percentile(err, 95):.1f}, max {err.max():.1f}"])
    print(markdown_table(headers, rows))
    write_results("fetch_fingers", headers, rows,
                  extra={"open_close": {"fetch": theirs.tolist(), "hjax": ours.tolist()},
                         "random_err_mm": [float(np.median(err)), float(np.percentile(err, 95)), float(err.max())]},
                  notes=f"{args.episodes} episodes per side from the same resets, the arm still (zero displacement). "
                        "The reference: Gymnasium-Robotics 1.4.2 FetchPickAndPlace-v4 on MuJoCo's C engine, in its "
                        "own virtual environment (hjax.fetch); hjax's gripper env version "
                        f"{envs.make(TASK).VERSION}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
