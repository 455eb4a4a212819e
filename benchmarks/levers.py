"""Learner levers, one at a time (issue 25): each lever is a set of Config changes from one base
configuration, and each trains `--seeds` seeds with HER beside the base, all else equal.

    python -m benchmarks.levers --env gripper_pick_and_place --seeds 3 --num-epochs 60 \
        --config-overrides num_envs=256 grad_steps_per_epoch=200 batch_size=2048 hidden_sizes=256,256,256 \
        --levers critic_layer_norm replay_k=8 sac updates_x2
    python -m benchmarks.levers --env gripper_slide --target 0.7 ...   # slide's target is 70%

The levers are `LEVERS` (names on the command line); `base` is always trained first. Each runs as
`hjax.train(config, num_seeds=SEEDS)` in a program of its own (a lever that changes shapes, such
as the batch or the networks, cannot share one), so its wall time includes its compile. The
table: final eval success (IQM over seeds, 95% stratified-bootstrap CI, `hjax.stats`), env steps
until each seed's eval success first reaches `--target` (IQM [CI]; "never" when a seed does not),
the run's wall time, and the lever against the base: "better" / "worse" when the two
final-success CIs are disjoint (a conservative test), else "no clear difference", and the env
version it was trained at (marked "not rerun" once the env's version has moved on). Writes
`benchmarks/results/<name>.{md,json}` (default `levers_<env>`) and `<name>_curves.png`, rewritten
after every lever, so a stopped run keeps the levers it finished.

One table from several processes or sessions: with `--add`, a lever already in the table that
was trained from the same configuration, seeds and env version is kept rather than trained again,
and each finished lever is merged into the file under a lock (the file is re-read first), so two
processes on two cores can each train some levers of one table; `--no-base` leaves the base to
another process (rows wait for it: "base not yet in the table"). Host script; not jittable.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from typing import Any, Mapping

import numpy as np
from filelock import FileLock
from matplotlib.figure import Figure

import hjax
from hjax import envs, runs, stats
from benchmarks.common import RESULTS_DIR, machine, wall_at, write_results
from benchmarks.her_ablation import parse_overrides

# name -> the Config changes the lever makes, given the base config (so that "updates_x2" doubles
# whatever the base does). Only levers issue 25 lists; each stays a plain Config change.
LEVERS: Mapping[str, Any] = {
    "base": lambda c: {},
    "critic_layer_norm": lambda c: {"critic_layer_norm": True},
    "replay_k=2": lambda c: {"replay_k": 2.0},
    "replay_k=8": lambda c: {"replay_k": 8.0},
    "n_step=3": lambda c: {"n_step": 3},
    "updates_x2": lambda c: {"grad_steps_per_epoch": 2 * c.grad_steps_per_epoch},
    "updates_x4": lambda c: {"grad_steps_per_epoch": 4 * c.grad_steps_per_epoch},
    "batch_x2": lambda c: {"batch_size": 2 * c.batch_size},
    "envs_x4": lambda c: {"num_envs": 4 * c.num_envs, "buffer_episodes": 4 * c.buffer_episodes},
    "wider_512": lambda c: {"hidden_sizes": tuple(512 for _ in c.hidden_sizes)},
    "exploration_noise=0.1": lambda c: {"exploration_noise": 0.1},
    "random_action_prob=0.1": lambda c: {"random_action_prob": 0.1},
    "target_noise_clip=0.2": lambda c: {"target_noise_clip": 0.2},
    "sac": lambda c: {"algorithm": "sac"},
    # the central experiment's control: the same run without relabeling (issue 25's chance level).
    "without HER": lambda c: {"her_strategy": "none"},
    # pick-and-place only: half the training episodes start with the cube grasped (HER's trick).
    "grasped_start=0.5": lambda c: {"env_kwargs": {**c.env_kwargs, "grasped_start_prob": 0.5}},
    # ... and without HER: what the grasped starts alone give (the central experiment's control).
    "grasped_start=0.5 without HER": lambda c: {"env_kwargs": {**c.env_kwargs, "grasped_start_prob": 0.5},
                                                "her_strategy": "none"},
}


ONLY_FOR: Mapping[str, tuple[str, ...]] = {
    "grasped_start=0.5": ("gripper_pick_and_place",),
    "grasped_start=0.5 without HER": ("gripper_pick_and_place",),
}
"""Levers that exist for some envs only (an env override): lever -> those envs."""


def levers_for(env: str) -> list[str]:
    """Every lever but the base that applies to `env` (the default of --levers)."""
    return [k for k in LEVERS if k != "base" and env in ONLY_FOR.get(k, (env,))]


def lever_config(base: hjax.Config, lever: str) -> hjax.Config:
    """`base` with `lever`'s changes (ValueError naming the lever when it is unknown, or when it is
    for other envs than the base's)."""
    if lever not in LEVERS:
        raise ValueError(f"invalid lever {lever!r}; allowed: {', '.join(LEVERS)}")
    if base.env not in ONLY_FOR.get(lever, (base.env,)):
        raise ValueError(f"invalid lever {lever!r} for env={base.env!r}; allowed: for env "
                         f"{' or '.join(ONLY_FOR[lever])} only")
    return base.replace(**LEVERS[lever](base))


def record(result: hjax.Result, target: float, wall: float, reps: int = 2000) -> dict[str, Any]:
    """A lever's figures from its multi-seed Result."""
    success = np.asarray(result.metrics["eval/success_rate"], np.float64)  # (seeds, epochs)
    steps = np.asarray(result.metrics["env_steps"][0], np.float64)
    return {**figures(steps, success, target, reps), "wall_s": wall, "compile_s": result.compile_seconds,
            "success": success.tolist()}


def figures(steps: np.ndarray, success: np.ndarray, target: float, reps: int = 2000) -> dict[str, Any]:
    """Final success and env steps to `target` (IQM, 95% CI) from per-seed eval curves (seeds, epochs)."""
    steps, success = np.asarray(steps, np.float64), np.asarray(success, np.float64)
    final = stats.interval_estimates(success[:, -1], "iqm", reps=reps, seed=0)
    area = stats.interval_estimates(success.mean(axis=1), "iqm", reps=reps, seed=0)
    to_target = stats.first_reaching_each(steps, success, target)
    with np.errstate(invalid="ignore"):
        reach = stats.interval_estimates(to_target, "iqm", reps=reps, seed=0)
    return {"final_success": [float(final.point), float(final.low), float(final.high)],
            "mean_success": [float(area.point), float(area.low), float(area.high)],
            "steps_to_target": [float(v) for v in reach], "seeds_reaching": int(np.isfinite(to_target).sum()),
            "seeds": int(success.shape[0]), "steps": steps.tolist(), "iqm_curve": stats.iqm(success, axis=0).tolist()}


def verdict(lever: dict[str, Any], base: dict[str, Any]) -> str:
    """'better' / 'worse' when the final-success CIs are disjoint, else 'no clear difference'."""
    (_, low, high), (_, base_low, base_high) = lever["final_success"], base["final_success"]
    if low > base_high:
        return "better"
    if high < base_low:
        return "worse"
    return "no clear difference"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, choices=envs.NAMES)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--num-epochs", type=int, required=True)
    parser.add_argument("--target", type=float, default=0.9, help="eval success to time (slide: 0.7)")
    parser.add_argument("--levers", nargs="+", default=None, metavar="LEVER",
                        help=f"any of: {', '.join(k for k in LEVERS if k != 'base')} (default: every one "
                             "that applies to --env)")
    parser.add_argument("--config-overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="the base configuration (as benchmarks.her_ablation's; algorithm and her_strategy too, "
                             "e.g. algorithm=sac for a table of levers on SAC)")
    parser.add_argument("--name", default=None)
    parser.add_argument("--add", action="store_true",
                        help="add to the table NAME already holds: levers it has from the same configuration, "
                             "seeds and env version are kept, not trained again")
    parser.add_argument("--no-base", action="store_true", help="do not train the base (another process does)")
    parser.add_argument("--progress", action="store_true",
                        help="print each lever's env steps, steps/s and eval success after every compiled chunk "
                             "(for long runs watched through a log; chunk_epochs in --config-overrides sets how often)")
    args = parser.parse_args(argv)
    if not 0 < args.target <= 1:
        parser.error(f"invalid --target={args.target}; allowed: a success rate in (0, 1]")
    if args.seeds < 1:
        parser.error(f"invalid --seeds={args.seeds}; allowed: an integer >= 1")
    base = hjax.Config(env=args.env, num_epochs=args.num_epochs,
                       **parse_overrides(args.config_overrides, fixed=("env", "num_epochs")))
    chosen = levers_for(args.env) if args.levers is None else args.levers
    order = ([] if args.no_base else ["base"]) + [lever for lever in chosen if lever != "base"]
    configs = {lever: lever_config(base, lever) for lever in order}  # all checked before anything trains
    name = args.name or f"levers_{args.env}"
    version = runs.env_version(args.env)
    if not args.add:
        with _lock(name):
            (RESULTS_DIR / f"{name}.json").unlink(missing_ok=True)
    trained = False
    for lever, config in configs.items():
        identity = {"config": config.to_dict(), "seeds": args.seeds, "env_version": version}
        if args.add and _same(_load(name).get(lever), identity):
            print(f"{lever}: already in {name}.json, kept", flush=True)
            continue
        start = time.perf_counter()
        chunk_ends: list[tuple[int, float]] = []  # (epochs done, seconds since start, compile included)
        if args.progress:
            print(f"{lever}: training {args.seeds} seeds", flush=True)
        result = hjax.train(config, num_seeds=args.seeds, progress_bar="lines" if args.progress else False,
                            verbose=False,
                            progress=lambda epoch, _: chunk_ends.append((epoch, time.perf_counter() - start)))
        entry = {**identity, **record(result, args.target, time.perf_counter() - start), "chunk_ends": chunk_ends,
                 "measured": machine()}
        print(f"{lever}: final eval success IQM {entry['final_success'][0]:.3f}, {entry['wall_s']:.0f} s", flush=True)
        with _lock(name):
            table = _load(name)
            table[lever] = entry
            _write(name, args, base, table)
        trained = True
    if args.add and not trained:  # every lever kept: the table again, from this code and --target
        with _lock(name):
            _write(name, args, base, _load(name))
    return 0


def _same(entry: dict[str, Any] | None, identity: dict[str, Any]) -> bool:
    """Whether a lever already in the table was trained as `identity` says (config, seeds, env
    version). A Config field the entry's config lacks was added to hjax since, and counts as its
    default: a new field's default keeps the program it had before the field existed."""
    if entry is None:
        return False
    defaults = {f.name: f.default for f in dataclasses.fields(hjax.Config)
                if f.default is not dataclasses.MISSING}
    saved = {**entry, "config": {**defaults, **entry.get("config", {})}}
    return all(saved.get(k) == v for k, v in identity.items())


def _lock(name: str) -> FileLock:
    """The lock that one table's writers (and its reset without --add) hold."""
    return FileLock(str(RESULTS_DIR / f"{name}.json") + ".lock")


def _load(name: str) -> dict[str, dict[str, Any]]:
    """The levers the table `name` holds ({} when there is none yet)."""
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text())["levers"] if path.exists() else {}


def _every_seed_reached(r: dict[str, Any]) -> bool:
    """Whether every seed of a lever's figures reached the target (its IQM env steps then finite)."""
    return r["seeds_reaching"] == r["seeds"] and math.isfinite(r["steps_to_target"][0])


def _wall_to_target(r: dict[str, Any]) -> str:
    """Seconds from the lever's start to the end of the compiled chunk in which its IQM env steps
    to the target fall: "never" unless every seed got there, "not recorded" for a lever trained
    before the chunk ends were recorded."""
    if not _every_seed_reached(r):
        return "never"
    if "chunk_ends" not in r:
        return "not recorded"
    return f"{wall_at(r['steps_to_target'][0] / r['steps'][0], r['chunk_ends']):,.0f}"


def _version_cell(r: dict[str, Any], current: int) -> str:
    """A lever's env version, saying so when the env has changed since (its figures are then of
    another task: `--add` trains it again)."""
    saved = r.get("env_version", 1)
    return str(saved) if saved == current else f"{saved} (now {current}: not rerun)"


def _write(name: str, args: argparse.Namespace, base: hjax.Config, table: dict[str, dict[str, Any]]) -> None:
    """The table from every lever it holds, base first; figures recomputed for `args.target`."""
    version = runs.env_version(args.env)
    pct = f"{round(100 * args.target)}%"
    headers = ["lever", "changes", "final eval success IQM [95% CI]", "eval success averaged over the run IQM [95% CI]",
               f"env steps to {pct} IQM [95% CI]",
               f"seeds reaching {pct}", f"wall s to {pct} (compile incl.)", "wall s (compile incl.)", "against base",
               "env version"]
    order = sorted(table, key=lambda k: (k != "base", list(LEVERS).index(k) if k in LEVERS else len(LEVERS)))
    results = {k: {**table[k], **figures(table[k]["steps"], table[k]["success"], args.target)} for k in order}
    rows = []
    for lever, r in results.items():
        changes = ", ".join(f"{k}={v}" for k, v in LEVERS[lever](base).items()) or "-"
        point, low, high = r["final_success"]
        s_point, s_low, s_high = r["steps_to_target"]
        to_target = (f"{s_point:,.0f} [{s_low:,.0f}, {s_high:,.0f}]" if _every_seed_reached(r)
                     else f"never ({r['seeds_reaching']}/{r['seeds']} seeds)")
        against = ("-" if lever == "base" else verdict(r, results["base"]) if "base" in results
                   else "base not yet in the table")
        area = "{:.3f} [{:.3f}, {:.3f}]".format(*r["mean_success"])
        rows.append([lever, changes, f"{point:.3f} [{low:.3f}, {high:.3f}]", area, to_target,
                     f"{r['seeds_reaching']}/{r['seeds']}", _wall_to_target(r), f"{r['wall_s']:,.0f}", against,
                     _version_cell(r, version)])
    fig = Figure(figsize=(8, 4.2), layout="constrained")
    ax = fig.subplots()
    for lever, r in results.items():
        ax.plot(r["steps"], r["iqm_curve"], label=lever)
    ax.set(xlabel="env steps per seed", ylabel="eval success (IQM over seeds)", ylim=(-0.02, 1.02),
           title=f"{args.env}: one lever at a time from {base.algorithm}, {args.seeds} seeds each")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.savefig(RESULTS_DIR / f"{name}_curves.png", dpi=110)
    write_results(name, headers, rows, extra={"base_config": base.to_dict(), "target": args.target,
                                              "levers": results},
                  notes=f"{args.seeds} seeds per lever, HER (`{base.her_strategy}`), {base.total_env_steps:,} env "
                        f"steps per seed for the base. Each lever is its own program, so its wall time includes its "
                        f"compile. The run's average eval success is the area under its curve over the epochs (early "
                        f"learning counts). Wall time to the target: from the lever's start to the end of the compiled "
                        f"chunk ({base.epochs_per_chunk} epochs) in which its IQM env steps to the target fall. "
                        f"'against base': better / worse when the final-success CIs are disjoint. "
                        f"Each lever's "
                        f"machine, date and command: `levers.<lever>.measured` in {name}.json. Curves: "
                        f"{name}_curves.png.")


if __name__ == "__main__":
    raise SystemExit(main())
