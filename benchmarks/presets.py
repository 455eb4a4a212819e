"""Choose each env's preset by measurement: the config that reaches 90% eval success in the least
wall time on this machine, compile included.

    python -m benchmarks.presets                          # every env in CANDIDATES
    python -m benchmarks.presets --envs point_mass reach  # some of them
    python -m benchmarks.presets --limit-s 600            # give up on a candidate after 10 min

Every candidate runs in a fresh Python process with the persistent compile cache switched off
(`HJAX_COMPILE_CACHE=0`), so its time is a first run's: import, compile and training up to the
first epoch whose eval success (100 deterministic episodes, `num_eval_envs`) reaches `--target`.
One seed (0) per candidate; `chunk_epochs=1`, so success is seen after every epoch. The compile
time is estimated as (time of the first epoch report) - (the second epoch's duration). A candidate
that has not reached the target after `--limit-s` (or its epoch cap) is recorded as not reached.

The winner per env is written to `benchmarks/results/presets.{json,md}`; `hjax/presets.py` holds
the same values (tests/test_presets.py checks that they agree with this file). Host script.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import RESULTS_DIR, machine, markdown_table

TARGET = 0.9
# Candidates per env: Config overrides (num_epochs is the cap; the run stops at the target).
# The first of each is the configuration the README's benchmarks already used.
CANDIDATES: dict[str, list[dict[str, Any]]] = {
    "point_mass": [
        dict(num_envs=32, grad_steps_per_epoch=200, batch_size=256, hidden_sizes=(256, 256, 256), num_epochs=30),
        dict(num_envs=256, grad_steps_per_epoch=32, batch_size=512, hidden_sizes=(128, 128, 128), num_epochs=60),
        dict(num_envs=64, grad_steps_per_epoch=64, batch_size=256, hidden_sizes=(64, 64), num_epochs=60),
    ],
    "reach": [
        dict(num_envs=32, grad_steps_per_epoch=200, batch_size=256, hidden_sizes=(256, 256), num_epochs=60),
        dict(num_envs=128, grad_steps_per_epoch=64, batch_size=512, hidden_sizes=(128, 128), num_epochs=60),
        dict(num_envs=64, grad_steps_per_epoch=100, batch_size=256, hidden_sizes=(64, 64), num_epochs=60),
    ],
    "push": [
        dict(num_envs=64, grad_steps_per_epoch=200, batch_size=256, hidden_sizes=(256, 256), num_epochs=300),
        dict(num_envs=128, grad_steps_per_epoch=200, batch_size=512, hidden_sizes=(256, 256), num_epochs=300),
        dict(num_envs=64, grad_steps_per_epoch=100, batch_size=512, hidden_sizes=(128, 128), num_epochs=300),
    ],
    "gripper_reach": [
        dict(num_envs=32, grad_steps_per_epoch=200, batch_size=256, hidden_sizes=(256, 256), num_epochs=30),
        dict(num_envs=16, grad_steps_per_epoch=64, batch_size=256, hidden_sizes=(64, 64), num_epochs=60),
    ],
}


class _Reached(Exception):
    pass


def run_candidate(env: str, overrides: dict[str, Any], target: float, limit_s: float, t_start: float) -> dict:
    """In this process: train to `target` or `limit_s`; times are `time.time()` seconds since `t_start`
    (the parent's clock just before it started this process)."""
    import hjax

    config = hjax.Config(env=env, chunk_epochs=1, **overrides)
    reports: list[tuple[int, int, float, float]] = []  # epoch, env steps, seconds since t_start, success

    def progress(epoch: int, last: dict[str, float]) -> None:
        reports.append((epoch, int(last["env_steps"]), time.time() - t_start, float(last["eval/success_rate"])))
        if reports[-1][3] >= target:
            raise _Reached
        if reports[-1][2] > limit_s:
            raise TimeoutError

    outcome = "not reached"
    try:
        hjax.train(config, progress=progress, progress_bar=False, verbose=False)
    except _Reached:
        outcome = "reached"
    except TimeoutError:
        outcome = "limit"
    first = reports[0][2]
    epoch_s = reports[1][2] - reports[0][2] if len(reports) > 1 else 0.0
    last = reports[-1]
    return {"env": env, **{k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
            "outcome": outcome, "seconds": last[2], "epochs": last[0], "env_steps": last[1],
            "final_eval_success": last[3], "compile_s_estimate": first - epoch_s, "epoch_s": epoch_s,
            "curve": [list(r) for r in reports]}


def _child(env: str, index: int, target: float, limit_s: float, t_start: float) -> None:
    row = run_candidate(env, CANDIDATES[env][index], target, limit_s, t_start)
    print("RESULT " + json.dumps(row), flush=True)


def _spawn(env: str, index: int, target: float, limit_s: float) -> dict:
    t0 = time.perf_counter()
    environ = {**os.environ, "HJAX_COMPILE_CACHE": "0"}
    cmd = [sys.executable, "-m", "benchmarks.presets", "--child", env, str(index), "--target", str(target),
           "--limit-s", str(limit_s), "--t0", repr(time.time())]
    proc = subprocess.run(cmd, env=environ, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"candidate {env}#{index} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    row = json.loads(lines[-1][len("RESULT "):])
    row["process_wall_s"] = time.perf_counter() - t0
    row["candidate"] = index
    return row


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--target", type=float, default=TARGET)
    parser.add_argument("--limit-s", type=float, default=900.0, help="give up on a candidate after this long")
    parser.add_argument("--child", nargs=2, metavar=("ENV", "INDEX"), help=argparse.SUPPRESS)
    parser.add_argument("--t0", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--name", default="presets")
    args = parser.parse_args(argv)
    if not 0 < args.target <= 1:
        parser.error(f"invalid --target={args.target}; allowed: a number in (0, 1]")
    if args.limit_s <= 0:
        parser.error(f"invalid --limit-s={args.limit_s}; allowed: a number of seconds > 0")
    if args.child:
        _child(args.child[0], int(args.child[1]), args.target, args.limit_s, args.t0)
        return {}

    path = RESULTS_DIR / f"{args.name}.json"
    payload: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"rows": []}
    payload["rows"] = [r for r in payload["rows"] if r["env"] not in args.envs]  # re-measured below
    for env in args.envs:
        for i in range(len(CANDIDATES[env])):
            row = _spawn(env, i, args.target, args.limit_s)
            info = machine()
            row.update(command=info["command"], date=info["date"])  # rows of other envs keep their own
            payload["rows"].append(row)
            print(f"{env:>14} #{i}: {row['outcome']} at epoch {row['epochs']} ({row['env_steps']} env steps) "
                  f"in {row['seconds']:.1f}s (compile ~{row['compile_s_estimate']:.1f}s)", flush=True)
            _write(payload, args)
    return payload


def chosen(rows: list[dict]) -> dict[str, dict]:
    """The fastest candidate that reached the target, per env."""
    best: dict[str, dict] = {}
    for r in rows:
        if r["outcome"] == "reached" and (r["env"] not in best or r["seconds"] < best[r["env"]]["seconds"]):
            best[r["env"]] = r
    return best


def _write(payload: dict, args: argparse.Namespace) -> None:
    payload["machine"] = machine()
    payload["target"] = args.target
    payload["chosen"] = {env: r["candidate"] for env, r in chosen(payload["rows"]).items()}
    cols = ["env", "candidate", "num_envs", "grad_steps_per_epoch", "batch_size", "hidden_sizes", "outcome",
            "seconds", "compile_s_estimate", "epochs", "env_steps", "final_eval_success"]
    rows = [[("**" + str(r[c]) + "**" if c == "candidate" and payload["chosen"].get(r["env"]) == r["candidate"]
              else r.get(c, "")) for c in cols] for r in payload["rows"]]
    info = payload["machine"]
    md = [f"# Presets: time to {payload['target']:.0%} eval success, first run (compile cache off)", "",
          markdown_table(cols, rows), "",
          "Bold: the chosen candidate (the fastest that reached the target), which `hjax/presets.py` holds. "
          "`seconds`: from the process start (imports, compile and training) to the first epoch report at "
          "or above the target; one seed (0); compile estimated as first report minus one epoch.", "",
          "Measured on: " + ", ".join(f"{k}={v}" for k, v in info.items() if k != "command"), "",
          f"Command: `{info['command']}`", ""]
    earlier = sorted({(r["date"], r["command"], r["env"]) for r in payload["rows"]
                      if r.get("command") and r["command"] != info["command"]})
    if earlier:
        md += ["Rows of other envs were measured earlier: " + "; ".join(
            f"{env} on {date} by `{command}`" for date, command, env in earlier) + ".", ""]
    (RESULTS_DIR / f"{args.name}.json").write_text(json.dumps(payload, indent=2, default=str))
    (RESULTS_DIR / f"{args.name}.md").write_text("\n".join(md))


if __name__ == "__main__":
    main()
