"""The README's main job: train point_mass with HER on the CPU, print progress, plot success.

The run is `hjax.Config.preset("point_mass")` (docs: Configuration, Presets); `--epochs`, `--seed` and
`--her-strategy` override it.

    python -m hjax.demo [--epochs N] [--seed S] [--out runs/demo]

Not jittable: a host script around `hjax.train`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import hjax
from hjax.plotting import plot


def main(argv: list[str] | None = None) -> hjax.Result:
    defaults = hjax.Config.preset("point_mass")  # the measured fastest config to 90% (hjax.PRESETS)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=defaults.num_epochs, help="training epochs")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--her-strategy", default=defaults.her_strategy, choices=hjax.HER_STRATEGIES)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="where the plot goes")
    args = parser.parse_args(argv)
    try:
        config = defaults.replace(num_epochs=args.epochs, seed=args.seed, her_strategy=args.her_strategy)
    except ValueError as e:
        parser.error(str(e))

    t_start = time.perf_counter()
    print(f"hjax demo: {config.env}, her_strategy={config.her_strategy}, {config.num_envs} envs, "
          f"{config.num_epochs} epochs x ({config.env_steps_per_epoch} env steps + "
          f"{config.grad_steps_per_epoch} gradient steps), seed {config.seed}")
    print("compiling the fused training step ...", flush=True)
    header = f"{'epoch':>5} {'env steps':>9} {'eval success':>12} {'train success':>13} " \
             f"{'eval dist':>9} {'relabeled':>9} {'Q mean':>8} {'time':>6}"
    state = {"printed": False}

    def progress(epoch: int, m: dict[str, float]) -> None:
        if not state["printed"]:
            print(header)
            state["printed"] = True
        print(f"{epoch:>5} {int(m['env_steps']):>9} {m['eval/success_rate']:>12.3f} "
              f"{m['train/success_rate']:>13.3f} {m['eval/final_distance']:>9.3f} "
              f"{m['replay/relabeled_fraction']:>9.2f} {m['q/mean']:>8.2f} "
              f"{time.perf_counter() - t_start:>5.0f}s", flush=True)

    result = hjax.train(config, progress=progress, progress_bar=False)
    wall = time.perf_counter() - t_start
    m = result.metrics
    first = np.flatnonzero(m["train/success_count"] > 0)
    first_success = f"{int(m['env_steps'][first[0]])} env steps" if first.size else "never"
    steps = int(m["env_steps"][-1])
    print()
    print(hjax.summary(result))
    print(f"first successful training episode within {first_success}; "
          f"training throughput {steps / result.run_seconds:,.0f} env steps/s and "
          f"{int(m['grad_steps'][-1]) / result.run_seconds:,.0f} gradient steps/s")
    print(f"total wall time {wall:.1f}s (compile {result.compile_seconds:.1f}s, run {result.run_seconds:.1f}s)")
    path = args.out / "curves.png"
    plot(result, path)
    print(f"plot written: {path}")
    return result


if __name__ == "__main__":
    main()
