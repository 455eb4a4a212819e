"""The HER strategy ablation as one `hjax.sweep` against one `hjax.train` per strategy (issue 29).

    python -m benchmarks.sweep_speed --env point_mass --seeds 4 --num-epochs 20
    python -m benchmarks.sweep_speed --env push --seeds 4 --num-epochs 10

Every strategy of `hjax.HER_STRATEGIES` (five), `--seeds` seeds each, on the env's measured preset
(`hjax.PRESETS`) with `--num-epochs`. Each way runs in fresh processes with the persistent
compile caches off (`HJAX_COMPILE_CACHE=0`, so every process compiles what it runs, as a first
run does):

- `train x 5`: five processes, each `hjax.train(config.replace(her_strategy=s), num_seeds)`;
- `sweep`: one process, `hjax.sweep(config, {"her_strategy": [...]}, num_seeds)` with every point
  batched (`batch_points=True`, the default on a GPU or TPU); `sweep_exact`: the same with
  `batch_points=False` (the points one after another in the same program, each bit-identical to its
  lone train run; the default on a CPU).

Reported per way: compiles, compile seconds (`compile_seconds` of the results, summed over
processes), run seconds, and process wall seconds (Python start, imports, compile and run; summed),
and the final eval success per strategy (mean over seeds) so the ways can be seen to train the same
thing. Writes `benchmarks/results/<name>.md/.json` (default `sweep_speed_<env>`). Host script.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import hjax
from benchmarks.common import markdown_table, write_results

WORKER = r"""
import json, sys, time
import numpy as np
import hjax
spec = json.loads(sys.argv[1])
config = hjax.Config.preset(spec["env"], num_epochs=spec["num_epochs"], **spec.get("fields", {}))
if spec["mode"] == "train":
    r = hjax.train(config, num_seeds=spec["seeds"], progress_bar=False, verbose=False)
    success = {config.her_strategy: float(np.mean(r.metrics["eval/success_rate"][:, -1]))}
else:
    r = hjax.sweep(config, {"her_strategy": spec["strategies"]}, spec["seeds"], progress_bar=False, verbose=False,
                   batch_points=spec["mode"] == "sweep")
    success = {p["her_strategy"]: float(np.mean(r.metrics["eval/success_rate"][i, :, -1]))
               for i, p in enumerate(r.points)}
print("RESULT " + json.dumps({"compile_s": r.compile_seconds, "run_s": r.run_seconds, "success": success}))
"""


def run_worker(spec: dict) -> dict:
    """One fresh process running `spec`; its compile, run and wall seconds and final successes."""
    env = {**os.environ, "HJAX_COMPILE_CACHE": "0"}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WORKER, json.dumps(spec)], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(f"worker {spec} failed:\n{done.stderr[-3000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return {**json.loads(line[len("RESULT "):]), "wall_s": wall, "load_at_start": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="point_mass", choices=list(hjax.PRESETS))
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--num-epochs", type=int, default=20)
    parser.add_argument("--ways", nargs="+", default=["train", "sweep", "sweep_exact"],
                        choices=["train", "sweep", "sweep_exact"])
    parser.add_argument("--name", default=None)
    parser.add_argument("--note", default="", help="a sentence for the notes (what else ran on the machine)")
    args = parser.parse_args(argv)
    strategies = list(hjax.HER_STRATEGIES)
    spec = {"env": args.env, "num_epochs": args.num_epochs, "seeds": args.seeds}
    ways: dict[str, list[dict]] = {}
    for way in args.ways:
        if way == "train":
            ways[way] = [run_worker({**spec, "mode": "train", "fields": {"her_strategy": s}}) for s in strategies]
        else:
            ways[way] = [run_worker({**spec, "mode": "sweep" if way == "sweep" else "exact", "strategies": strategies})]
        print(way, ways[way], flush=True)
    labels = {"train": f"{len(strategies)} x hjax.train (a process each)", "sweep": "hjax.sweep (batched points)",
              "sweep_exact": "hjax.sweep, batch_points=False"}
    headers = ["way", "compiles", "compile s", "run s", "process wall s", "wall vs train x 5"] + \
        [f"final success {s}" for s in strategies]
    total = {way: sum(r["wall_s"] for r in records) for way, records in ways.items()}
    rows = []
    for way, records in ways.items():
        success = {k: v for r in records for k, v in r["success"].items()}
        rows.append([labels[way], len(records), round(sum(r["compile_s"] for r in records), 1),
                     round(sum(r["run_s"] for r in records), 1), round(total[way], 1),
                     f"{total['train'] / total[way]:.2f}x less" if "train" in total and way != "train" else "-"]
                    + [round(success[s], 3) for s in strategies])
    config = hjax.Config.preset(args.env, num_epochs=args.num_epochs)
    notes = ((args.note.strip().rstrip(".") + ". ") if args.note.strip() else "") + (
        f"{args.env} preset with num_epochs={args.num_epochs} ({config.total_env_steps:,} env steps per run), "
        f"{len(strategies)} HER strategies x {args.seeds} seeds; every way in fresh processes with "
        "HJAX_COMPILE_CACHE=0 (each process compiles what it runs). Compile s: the results' compile_seconds "
        "(trace, lower, compile, init), summed over processes; process wall s: each process from start to "
        "exit (Python, imports, compile, run), summed. Final success: eval success at the last epoch, mean "
        "over seeds.")
    write_results(args.name or f"sweep_speed_{args.env}", headers, rows,
                  extra={"config": config.to_dict(), "seeds": args.seeds, "strategies": strategies,
                         "records": ways}, notes=notes)
    print(markdown_table(headers, rows))


if __name__ == "__main__":
    main()
