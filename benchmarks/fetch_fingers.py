"""The fingers under the same commands, on Gymnasium-Robotics' own FetchPickAndPlace-v4 and on
hjax's gripper_pick_and_place (issue 24: the same world).

    python -m benchmarks.fetch_fingers [--episodes 8]

The parity table compares the grip point's path under the same actions, not the fingers'. Here
both sides start from the same reset (the gripper in free space, at least 10 cm from the cube),
hold the arm still and command the fingers only: 6 steps of +1 (open), then 10 of -1 (close);
then uniform random finger commands for 20 steps. The table gives each side's finger opening
(Fetch's observation entries 9 and 10, m from closed, both fingers alike) per step of the open /
close sequence, and the per-step difference of finger displacement under the random commands.
Then the grasp on the table: fingers opened, the gripper lowered onto the table (at least 10 cm
from the cube, so it meets only the table), then 10 steps of -1 on the fingers while it keeps
pressing down (z -1) or rests (z 0): pressed, the table's friction on the fingertips holds them
nearly open on Fetch (env version 5, without fingertip-table contacts, closed them in 3 steps).
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
PRESS_OPEN_STEPS, PRESS_DOWN_STEPS, PRESS_CLOSE_STEPS = 3, 7, 10


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


def pressed_commands(episodes: int, z: float) -> np.ndarray:
    """Actions (PRESS_OPEN_STEPS + PRESS_DOWN_STEPS + PRESS_CLOSE_STEPS, episodes, 4): open the
    fingers, lower the gripper onto the table (z -1, fingers open), then close them while the z
    command is `z` (-1: pressing on the table; 0: resting there)."""
    down, close = PRESS_OPEN_STEPS + PRESS_DOWN_STEPS, PRESS_CLOSE_STEPS
    actions = np.zeros((down + close, episodes, 4))
    actions[:down, :, 3], actions[PRESS_OPEN_STEPS:down, :, 2] = 1.0, -1.0
    actions[down:, :, 2], actions[down:, :, 3] = z, -1.0
    return actions


def pressed_paths(episodes: int, seed: int, z: float) -> tuple[np.ndarray, np.ndarray]:
    """The grip point's height and both fingers (T + 1, n, 3: Fetch's observation entries 2, 9,
    10) under `pressed_commands(episodes, z)` from the same resets: (Fetch, hjax)."""
    theirs, ours = fp.observation_paths(TASK, pressed_commands(episodes, z), seed, slice(0, 11))
    return theirs[..., [2, 9, 10]], ours[..., [2, 9, 10]]


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
    pressed = {}
    for z, what in ((-1.0, "pressing on the table (z -1)"), (0.0, "resting on the table (z 0)")):
        theirs_p, ours_p = pressed_paths(args.episodes, args.seed, z)
        pressed[z] = {"fetch": theirs_p.mean(axis=1).tolist(), "hjax": ours_p.mean(axis=1).tolist()}
        start = PRESS_OPEN_STEPS + PRESS_DOWN_STEPS
        for t in (start, start + 1, start + 2, start + 3, start + PRESS_CLOSE_STEPS):
            f, h = theirs_p[t, :, 1:].mean() * 1000, ours_p[t, :, 1:].mean() * 1000
            rows.append([f"{t}", f"-1 (close) {what}; grip z Fetch {theirs_p[t, :, 0].mean():.4f}, hjax "
                         f"{ours_p[t, :, 0].mean():.4f} m" if t > start else f"gripper lowered, fingers open; {what}",
                         f"{f:.1f}", f"{h:.1f}", f"{h - f:+.1f}"])
    print(markdown_table(headers, rows))
    write_results("fetch_fingers", headers, rows,
                  extra={"open_close": {"fetch": theirs.tolist(), "hjax": ours.tolist()},
                         "pressed_mean_over_episodes": {"z=-1": pressed[-1.0], "z=0": pressed[0.0]},
                         "random_err_mm": [float(np.median(err)), float(np.percentile(err, 95)), float(err.max())]},
                  notes=f"{args.episodes} episodes per side from the same resets, the arm still (zero displacement) but "
                        "in the grasp on the table (the last rows: the gripper lowered onto the table, mean over "
                        "episodes and fingers). "
                        "The reference: Gymnasium-Robotics 1.4.2 FetchPickAndPlace-v4 on MuJoCo's C engine, in its "
                        "own virtual environment (hjax.fetch); hjax's gripper env version "
                        f"{envs.make(TASK).VERSION}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
