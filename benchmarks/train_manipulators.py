"""Learning on the manipulators, with HER and without it at the same budget, over seeds in a vmap.

    python -m benchmarks.train_manipulators --env reach --seeds 3
    python -m benchmarks.train_manipulators --env push --seeds 3 [--epochs 300] [--strategies future]
    python -m benchmarks.train_manipulators --env gripper_reach --seeds 3 --strategies future

Writes benchmarks/results/train_ENV.{md,json,png}: final eval success (median over seeds, min,
max) and the epoch/env steps where the median first reaches 50%/90%/95%, wall time (compile
apart), the learning curves (success, distance to goal, replay composition; median and IQR over
seeds), and the exact config. Host script; not jittable.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from matplotlib.figure import Figure

import hjax
from benchmarks.common import RESULTS_DIR, markdown_table, write_results
from hjax.plotting import draw_band, env_steps_axis, finish_axes

# Per-task configs (everything else: hjax.Config defaults). Chosen for this 2-core CPU, where
# updates dominate the cost: 2 x 256 networks and more envs per update than baselines use.
CONFIGS = {
    "reach": dict(env="reach", num_envs=32, num_epochs=40, grad_steps_per_epoch=200, hidden_sizes=(256, 256)),
    "push": dict(env="push", num_envs=64, num_epochs=200, grad_steps_per_epoch=200, hidden_sizes=(256, 256)),
    # The gripper tasks (Fetch's definitions, envs/gripper.py): the same learner settings.
    "gripper_reach": dict(env="gripper_reach", num_envs=32, num_epochs=30, grad_steps_per_epoch=200,
                          hidden_sizes=(256, 256)),
    "gripper_push": dict(env="gripper_push", num_envs=64, num_epochs=150, grad_steps_per_epoch=200,
                         hidden_sizes=(256, 256)),
    "gripper_pick_and_place": dict(env="gripper_pick_and_place", num_envs=64, num_epochs=150,
                                   grad_steps_per_epoch=200, hidden_sizes=(256, 256)),
    "gripper_slide": dict(env="gripper_slide", num_envs=64, num_epochs=150, grad_steps_per_epoch=200,
                          hidden_sizes=(256, 256)),
}


def first_at(curve: np.ndarray, level: float) -> int | None:
    hits = np.flatnonzero(curve >= level)
    return int(hits[0]) + 1 if hits.size else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", choices=sorted(CONFIGS), required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="override the task's num_epochs")
    parser.add_argument("--strategies", nargs="+", default=["future", "none"], choices=hjax.HER_STRATEGIES)
    parser.add_argument("--name", default=None, help="results name (default train_ENV, or train_ENV_STRATEGY "
                                                     "when one strategy runs alone)")
    args = parser.parse_args()
    kw = dict(CONFIGS[args.env])
    if args.epochs is not None:
        kw["num_epochs"] = args.epochs
    base = hjax.Config(**kw)

    headers = ["her_strategy", "seeds", "final eval success median [min, max]", "final eval distance (median)",
               "median reaches 0.5 at (epoch / env steps)", "0.9 at", "0.95 at", "compile_s", "run_s",
               "env steps/s (all seeds)"]
    rows, curves = [], {}
    for strategy in args.strategies:
        cfg = base.replace(her_strategy=strategy)
        r = hjax.train(cfg, num_seeds=args.seeds, progress_bar=True)
        m = r.metrics
        ev = m["eval/success_rate"]
        med = np.median(ev, axis=0)
        at = lambda lvl: (f"{first_at(med, lvl)} / {first_at(med, lvl) * cfg.env_steps_per_epoch}"  # noqa: E731
                          if first_at(med, lvl) else "never")
        steps = int(m["env_steps"][0, -1])
        rows.append([strategy, args.seeds, f"{np.median(ev[:, -1]):.3f} [{ev[:, -1].min():.3f}, {ev[:, -1].max():.3f}]",
                     round(float(np.median(m["eval/final_distance"][:, -1])), 4), at(0.5), at(0.9), at(0.95),
                     round(r.compile_seconds, 1), round(r.run_seconds, 1),
                     round(args.seeds * steps / r.run_seconds)])
        curves[strategy] = m
        print(markdown_table(headers, rows[-1:]).splitlines()[-1], flush=True)

    fig = Figure(figsize=(13, 3.6), layout="constrained")
    axes = fig.subplots(1, 4)
    panels = [("eval success rate", ["eval/success_rate"]), ("eval final distance (m)", ["eval/final_distance"]),
              ("train success rate", ["train/success_rate"]),
              ("replay: success-reward fraction", ["replay/positive_reward_fraction",
                                                   "replay/positive_reward_fraction_original"])]
    for ax, (title, keys) in zip(axes, panels):
        for strategy, m in curves.items():
            for key in keys:
                label = strategy if len(keys) == 1 else f"{strategy}: {key.split('/')[1]}"
                draw_band(ax, env_steps_axis(m), m[key], label)
        finish_axes(ax, title)
    fig.suptitle(f"{args.env}: median and IQR over {args.seeds} seeds")
    name = args.name or (f"train_{args.env}" if len(args.strategies) > 1
                         else f"train_{args.env}_{args.strategies[0]}")
    png = RESULTS_DIR / f"{name}.png"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    config = {k: v for k, v in base.to_dict().items()}
    path = write_results(
        name, headers, rows,
        extra={"config": config, "curves": {s: {k: np.asarray(v).tolist() for k, v in m.items()
                                                 if k in ("env_steps", "eval/success_rate", "eval/final_distance",
                                                          "replay/positive_reward_fraction",
                                                          "replay/positive_reward_fraction_original")}
                                             for s, m in curves.items()}},
        notes=f"Config (all other fields hjax defaults): `{json.dumps({k: config[k] for k in kw} | {'her_strategy': 'as listed'})}`. "
              f"Curves: `{png.name}`.")
    print("\n" + markdown_table(headers, rows) + f"\nwritten: {path}, {png}")


if __name__ == "__main__":
    main()
