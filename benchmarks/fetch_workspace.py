"""Where Fetch's arm reaches, measured on Gymnasium-Robotics' own FetchReach-v4, and hjax's
gripper driven the same way (issue 24, item 3).

    python -m benchmarks.fetch_workspace [--spacing 0.1]

1. Fit: FetchReach-v4's mocap is driven toward a grid of targets (x 0.5-2.0 m, y 0.1-1.4 m,
   z 0.42-1.0 m in Fetch's frame) for 60 steps of the action clip((target - grip) / 0.05); where
   the grip point stops short of its target (by > 3 cm, ahead of the arm's base: x > 1.2 m),
   it lies on the boundary of the arm's reach. A ball is fitted to those points (linear least
   squares); `envs.gripper.REACH_CENTER` and `REACH_RADIUS` are its rounded centre and radius.
2. Check: hjax's gripper (which keeps its target inside that ball) and Fetch's arm are driven
   toward the same grid over and beyond each task's table (`fetch_parity.reach_targets`); the
   table gives where each stops, |hjax - Fetch|, and how far ahead each gets at table height.
   FetchSlide's arm stands 0.355 m further back (robot0:slide0 0.05 against 0.405), and hjax's
   slide ball is shifted by the same.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from benchmarks import fetch_parity as fp
from hjax.envs import gripper as g


def fit_ball(points: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """The least-squares ball through `points` (n, 3): (centre, radius, signed residuals)."""
    a = np.c_[2 * points, np.ones(len(points))]
    sol, *_ = np.linalg.lstsq(a, (points ** 2).sum(1), rcond=None)
    centre = sol[:3]
    radius = float(np.sqrt(sol[3] + centre @ centre))
    return centre, radius, np.linalg.norm(points - centre, axis=1) - radius


def main() -> None:
    from benchmarks.common import markdown_table, write_results

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spacing", type=float, default=0.1, help="grid spacing (m) of both grids")
    args = parser.parse_args()
    s = args.spacing
    grid = np.array(list(itertools.product(np.arange(0.5, 2.0 + 1e-9, s), np.arange(0.1, 1.4 + 1e-9, s),
                                           [0.42, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])))
    reached = fp.drive_to_targets("gripper_reach", grid, steps=60, on_fetch=True)
    short = np.linalg.norm(reached - grid, axis=1) > 0.03
    boundary = reached[short & (reached[:, 0] > 1.2)]
    centre, radius, residual = fit_ball(boundary)
    inside = np.linalg.norm(reached[~short] - np.asarray(g.REACH_CENTER), axis=1) - g.REACH_RADIUS
    headers = ["task", "what", "hjax", "Fetch (Gymnasium-Robotics)", "note"]
    rows = [["gripper_reach", f"ball fitted to {len(boundary)} stopping points of {len(grid)} targets",
             f"centre {np.round(g.REACH_CENTER, 3).tolist()}, radius {g.REACH_RADIUS}",
             f"centre {np.round(centre, 3).tolist()}, radius {radius:.3f}",
             f"abs(residual) median {np.median(np.abs(residual)) * 1000:.1f} mm, 95th "
             f"{np.percentile(np.abs(residual), 95) * 1000:.1f} mm; targets Fetch reaches that lie outside "
             f"hjax's ball by > 1 cm: {(inside > 0.01).sum()} of {(~short).sum()}"]]
    extra = {"fit": {"centre": centre.tolist(), "radius": radius, "boundary_points": len(boundary)}}
    for task in ("gripper_push", "gripper_slide"):
        targets = fp.reach_targets(task, spacing=s)
        theirs = fp.drive_to_targets(task, targets, steps=60, on_fetch=True)
        ours = fp.drive_to_targets(task, targets, steps=60, on_fetch=False)
        err = np.linalg.norm(ours - theirs, axis=1) * 1000
        low = targets[:, 2] < g.TABLE_TOP + 0.03
        rows.append([task, f"where the grip point stops, {len(targets)} targets over and beyond the table: "
                     "hjax-to-Fetch distance, median / 95th / max (mm)",
                     f"{np.median(err):.1f} / {np.percentile(err, 95):.1f} / {err.max():.1f}", "",
                     f"Fetch reaches {np.mean(np.linalg.norm(theirs - targets, axis=1) < 0.005):.2f} of the targets"])
        rows.append([task, "farthest x at table height (m)", f"{ours[low, 0].max():.3f}", f"{theirs[low, 0].max():.3f}",
                     "how far ahead of its base the gripper gets at the puck's height"])
        extra[task] = {"err_mm": [float(np.median(err)), float(np.percentile(err, 95)), float(err.max())],
                       "max_x": [float(ours[low, 0].max()), float(theirs[low, 0].max())]}
    print(markdown_table(headers, rows))
    write_results("fetch_workspace", headers, rows, extra=extra,
                  notes="The reference: Gymnasium-Robotics 1.4.2 Fetch*-v4 on MuJoCo's C engine, in its own virtual "
                        "environment (hjax.fetch). Targets Fetch's arm cannot reach are where the two differ most: "
                        "Fetch's arm slides along its limit in its own way, hjax's target is pulled back onto the ball.")


if __name__ == "__main__":
    main()
