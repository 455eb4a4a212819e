"""HER ablation: relabeling strategies (and learners) on one task, many seeds each, with honest statistics.

    python -m benchmarks.her_ablation --env point_mass --seeds 8
    python -m benchmarks.her_ablation --env reach --seeds 4 --config-overrides hidden_sizes=256,256 num_epochs=20
    python -m benchmarks.her_ablation --env push --seeds 4 --strategies future none \
        --config-overrides num_envs=64 hidden_sizes=256,256 num_epochs=200
    python -m benchmarks.her_ablation --env push --seeds 4 --strategies final episode random \
        --config-overrides num_envs=64 hidden_sizes=256,256 num_epochs=200 \
        --none-from benchmarks/results/her_ablation_push.json --name her_ablation_push_more
    python -m benchmarks.her_ablation --env point_mass --seeds 4 --algorithms td3 ddpg sac \
        --strategies future none --name her_ablation_point_mass_learners
    python -m benchmarks.her_ablation --env push --seeds 4 --algorithms td3 ddpg sac --strategies future none \
        --config-overrides num_envs=64 hidden_sizes=256,256 num_epochs=200 \
        --reuse benchmarks/results/her_ablation_push.json --name her_ablation_push_learners

For each learner in `--algorithms` (td3, ddpg, sac; default td3) it trains every strategy of
`hjax.HER_STRATEGIES` (future, final, episode, random, none) times `--seeds` seeds in one compiled
program (`hjax.sweep(config, {"her_strategy": [...]}, N)`), all else equal, and reports:

- curves of eval success rate and eval final distance to the goal against env steps: IQM and
  median over seeds, with 95% stratified-bootstrap confidence intervals of the IQM
  (`hjax.stats`, the method of rliable / Agarwal et al. 2021);
- replay composition over training (relabeled fraction, success-reward fraction after and
  before relabeling), median over seeds;
- a table: final eval success (IQM [95% CI] over seeds, on the last epoch's
  `num_eval_envs` deterministic episodes), env steps until the IQM curve first reaches 50% and
  90%, the wall time to 90% (compile plus that share of the run time, for all seeds together),
  the number of seeds that ever reach 90%, and whether the strategy's final-success CI is
  disjoint from the same learner's `none` (non-overlapping 95% CIs: a conservative test of a
  difference); with several learners, a second table of final success, learner x strategy.

`--reuse` takes runs of the same config (all fields but algorithm and her_strategy), seeds and
bootstrap resamples from earlier results files of this script instead of training them again.

Writes `benchmarks/results/<name>.md/.json` (default name `her_ablation_<env>`) and the PNGs
`<name>_curves.png` and `<name>_replay.png` beside them. Host script; not jittable.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from hjax import envs
import hjax
from hjax.config import ALGORITHMS
from hjax import stats
from benchmarks.common import RESULTS_DIR, markdown_table, write_results

REPLAY_KEYS = ("replay/relabeled_fraction", "replay/positive_reward_fraction",
               "replay/positive_reward_fraction_original")
FIXED_FIELDS = ("env", "her_strategy", "algorithm")  # set by the script's own arguments
RUN_FIELDS = ("algorithm", "her_strategy")  # what tells the runs of one ablation apart
LEARNER_KEYS = ("q/mean", "loss/critic", "action/saturation", "policy/entropy", "policy/alpha")


def parse_overrides(items: Sequence[str], fixed: Sequence[str] = FIXED_FIELDS) -> dict[str, Any]:
    """`KEY=VALUE` strings to Config field values. Values are Python literals (`num_epochs=50`,
    `gamma=0.98`, `clip_target=False`, `env_kwargs={'distance_threshold': 0.1}`); a comma list
    is a tuple (`hidden_sizes=64,64`, or `hidden_sizes=64,` for one layer); anything else stays
    a string. Unknown or fixed fields raise `ValueError` (the Config validates the values)."""
    fields = {f.name for f in dataclasses.fields(hjax.Config)}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"invalid override {item!r}; expected KEY=VALUE")
        if key not in fields:
            raise ValueError(f"unknown Config field {key!r}; allowed: {', '.join(sorted(fields))}")
        if key in fixed:
            raise ValueError(f"{key} is set by this script's arguments, not by --config-overrides")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        if key == "hidden_sizes" and isinstance(value, int):
            value = (value,)
        out[key] = value
    return out


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """A saved or current config as JSON values with every field present (files written before a
    field existed get its default), minus the fields that tell runs apart."""
    fields = dict(config)
    fields["hidden_sizes"] = tuple(fields["hidden_sizes"])
    full = json.loads(json.dumps(hjax.Config(**fields).to_dict()))
    return {k: v for k, v in full.items() if k not in RUN_FIELDS}


def saved_runs(path: str, base: hjax.Config, seeds: int, reps: int) -> dict[tuple[str, str], dict[str, Any]]:
    """{(algorithm, her_strategy): run record} from an earlier results JSON of this script, which
    must have the same config (but for algorithm and her_strategy), seeds and bootstrap resamples.
    Files from before `--algorithms` hold one learner's runs under 'strategies'."""
    try:
        data = json.loads(Path(path).read_text())
        config = _comparable(data["config"])
        if "runs" in data:
            runs = {(r["algorithm"], r["her_strategy"]): r for r in data["runs"]}
        else:
            algorithm = data["config"].get("algorithm", "td3")
            medians = {row[0]: row[2] for row in data.get("rows", [])}
            runs = {(algorithm, k): {**r, "final_success_text": medians.get(k)} for k, r in data["strategies"].items()}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a her_ablation results file ({e!r})") from None
    ours = _comparable(base.to_dict())
    if config != ours or data.get("seeds") != seeds or data.get("reps") != reps:
        diff = sorted(k for k in ours if config.get(k) != ours[k])
        raise ValueError(f"{path}: its run differs from this one (config fields {diff}, seeds "
                         f"{data.get('seeds')} vs {seeds}, reps {data.get('reps')} vs {reps})")
    # A run keeps the file it was first trained for when it has already been carried over once.
    return {key: {**r, "source": r["source"] if r.get("source", "this run") != "this run" else path}
            for key, r in runs.items()}


def load_reference(path: str, base: hjax.Config, seeds: int, reps: int) -> dict[str, Any]:
    """'none''s final-success interval (of base's learner) from an earlier results JSON of this
    script, which must have the same config (but for her_strategy), seeds and bootstrap resamples."""
    try:
        run = saved_runs(path, base, seeds, reps)[(base.algorithm, "none")]
    except KeyError:
        raise ValueError(f"--none-from {path}: not a her_ablation results file with a 'none' run of "
                         f"{base.algorithm}") from None
    except ValueError as e:
        raise ValueError(f"--none-from {e}") from None
    return {"final_success": _interval(run["final_success"]), "source": path}


def _interval(d: dict[str, float]) -> stats.Interval:
    return stats.Interval(*(np.asarray(d[k]) for k in ("point", "low", "high")))


def _curves(metrics: dict[str, np.ndarray], key: str, reps: int, seed: int) -> dict[str, list]:
    values = np.asarray(metrics[key], np.float64)  # (seeds, epochs)
    iv = stats.curve_estimates(values, "iqm", reps=reps, seed=seed)
    return {"iqm": iv.point.tolist(), "iqm_low": iv.low.tolist(), "iqm_high": iv.high.tolist(),
            "median": np.median(values, axis=0).tolist()}


def plot_curves(results: dict[str, dict], steps: np.ndarray, title: str, path: Path) -> None:
    """Success and distance: IQM line, 95% CI band, median dashed; one colour per strategy."""
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, (key, label) in zip(axes, (("eval/success_rate", "eval success rate"),
                                       ("eval/final_distance", "eval final distance to goal"))):
        for strategy, r in results.items():
            c = r["curves"][key]
            (line,) = ax.plot(steps, c["iqm"], label=f"{strategy} (IQM)")
            ax.fill_between(steps, c["iqm_low"], c["iqm_high"], color=line.get_color(), alpha=0.18)
            ax.plot(steps, c["median"], color=line.get_color(), ls="--", lw=0.9)
        ax.set_title(f"{label}: IQM, 95% CI; median dashed")
        ax.set_xlabel("env steps (per seed)")
        ax.grid(alpha=0.3)
        if key == "eval/success_rate":
            ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.savefig(path, dpi=110)


def plot_replay(results: dict[str, dict], steps: np.ndarray, title: str, path: Path) -> None:
    """Replay composition per strategy: median over seeds of each REPLAY_KEYS fraction."""
    fig = Figure(figsize=(13, 3.6), layout="constrained")
    axes = fig.subplots(1, len(REPLAY_KEYS))
    for ax, key in zip(axes, REPLAY_KEYS):
        for strategy, r in results.items():
            ax.plot(steps, r["replay_median"][key], label=strategy)
        ax.set_title(key.removeprefix("replay/"), fontsize=10)
        ax.set_xlabel("env steps (per seed)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="point_mass", choices=envs.NAMES)
    parser.add_argument("--seeds", type=int, default=8, help="seeds per strategy, trained in one sweep per learner")
    parser.add_argument("--strategies", nargs="+", default=list(hjax.HER_STRATEGIES), choices=hjax.HER_STRATEGIES)
    parser.add_argument("--algorithms", nargs="+", default=["td3"], choices=ALGORITHMS,
                        help="learners, each trained with every strategy (default: td3)")
    parser.add_argument("--config-overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="Config fields, e.g. num_epochs=50 hidden_sizes=64,64 (per-env budgets)")
    parser.add_argument("--reps", type=int, default=5000, help="bootstrap resamples per interval")
    parser.add_argument("--name", default=None, help="results file name (default her_ablation_<env>)")
    parser.add_argument("--none-from", default=None, metavar="RESULTS_JSON",
                        help="when 'none' is not among --strategies: take its final-success CI from this earlier "
                             "results file of the same config and seeds (e.g. benchmarks/results/her_ablation_push.json)")
    parser.add_argument("--reuse", nargs="+", default=[], metavar="RESULTS_JSON",
                        help="take (learner, strategy) runs of the same config, seeds and resamples from these "
                             "earlier results files instead of training them again")
    parser.add_argument("--note", default="", help="a sentence for the results notes, e.g. what else ran on the machine")
    parser.add_argument("--progress", action="store_true",
                        help="print each run's env steps, steps/s and eval success after every compiled chunk "
                             "(for long runs watched through a log; chunk_epochs in --config-overrides sets how often)")
    args = parser.parse_args()
    if args.seeds < 2:
        parser.error("--seeds must be >= 2 for a confidence interval")
    try:
        base = hjax.Config(env=args.env, **parse_overrides(args.config_overrides))
    except ValueError as e:
        parser.error(str(e))
    name = args.name or f"her_ablation_{args.env}"
    try:
        none_from = load_reference(args.none_from, base, args.seeds, args.reps) if args.none_from else None
        reusable: dict[tuple[str, str], dict] = {}
        for path in args.reuse:
            reusable.update(saved_runs(path, base, args.seeds, args.reps))
    except ValueError as e:
        parser.error(str(e))

    results: dict[tuple[str, str], dict] = {}
    steps = np.arange(1, base.num_epochs + 1, dtype=np.float64) * base.env_steps_per_epoch
    for algorithm in args.algorithms:
        todo = [s for s in args.strategies if (algorithm, s) not in reusable]
        trained = _sweep(base.replace(algorithm=algorithm), todo, args.seeds, args.reps, steps,
                         progress=args.progress) if todo else {}
        for strategy in args.strategies:
            results[algorithm, strategy] = r = trained.get(strategy) or _reused(reusable[algorithm, strategy])
            print(f"{algorithm} {strategy}: final eval success IQM {stats.format_interval(r['final_success'])}, "
                  f"compile {r['compile_s']:.1f}s, run {r['run_s']:.1f}s ({r['source']})", flush=True)
            r["wall_to_90"] = None if r["steps_to"][0.9] is None else (
                r["compile_s"] + r["run_s"] * r["steps_to"][0.9] / steps[-1])
        # Results are rewritten after every learner's sweep, so a long ablation leaves what it has finished.
        _write(args, base, name, results, steps, none_from)


def _write(args: argparse.Namespace, base: hjax.Config, name: str, results: dict[tuple[str, str], dict],
           steps: np.ndarray, none_from: dict[str, Any] | None) -> None:
    """The tables, plots and results files of the runs done so far."""
    order = {(a, s): (i, j) for i, a in enumerate(args.algorithms) for j, s in enumerate(args.strategies)}
    results = dict(sorted(results.items(), key=lambda item: order[item[0]]))
    several = len(args.algorithms) > 1
    label = lambda a, s: f"{a} {s}" if several else s  # noqa: E731
    reference = {a: results.get((a, "none"), none_from if a == base.algorithm else None) for a in args.algorithms}
    headers = (["learner"] if several else []) + [
        "her_strategy", "final eval success IQM [95% CI]", "median [min, max]", "final distance IQM [95% CI]",
        "env steps to 50% (IQM curve)", "env steps to 90% (IQM curve)", f"wall s to 90% ({args.seeds} seeds)",
        f"seeds reaching 90% (of {args.seeds})", "CI disjoint from none", "final relabeled fraction",
        "final success-reward fraction", "compile_s", "run_s"] + (["from"] if args.reuse else [])
    rows = []
    fmt_steps = lambda s: "never" if s is None else int(s)  # noqa: E731
    for (algorithm, strategy), r in results.items():
        ref = reference[algorithm]
        disjoint = "-" if ref is None or strategy == "none" else (
            "yes" if not bool(r["final_success"].overlaps(ref["final_success"])) else "no")
        rows.append(([algorithm] if several else []) + [
            strategy, stats.format_interval(r["final_success"]), r["final_success_text"],
            stats.format_interval(r["final_distance"]), fmt_steps(r["steps_to"][0.5]), fmt_steps(r["steps_to"][0.9]),
            "never" if r["wall_to_90"] is None else round(r["wall_to_90"]), r["seeds_reaching_90"], disjoint,
            round(r["replay_median"]["replay/relabeled_fraction"][-1], 3),
            round(r["replay_median"]["replay/positive_reward_fraction"][-1], 3),
            round(r["compile_s"], 1), round(r["run_s"], 1)] + ([r["source"]] if args.reuse else []))

    title = f"{args.env}: HER strategies" + (" x learners" if several else "") + f", {args.seeds} seeds each"
    curves_png, replay_png = RESULTS_DIR / f"{name}_curves.png", RESULTS_DIR / f"{name}_replay.png"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    by_label = {label(a, s): r for (a, s), r in results.items()}
    plot_curves(by_label, steps, title, curves_png)
    plot_replay(by_label, steps, title + " (replay composition, median over seeds)", replay_png)

    significance = ""
    for algorithm in args.algorithms:
        ref = reference[algorithm]
        if (algorithm, "future") in results and ref is not None:
            f, n = results[algorithm, "future"]["final_success"], ref["final_success"]
            verdict = "do not overlap: the difference is significant at this level" if not bool(f.overlaps(n)) else \
                "overlap: no significant difference shown at this level"
            significance += (f"{algorithm + ' ' if several else ''}future vs none, final eval success IQM: "
                             f"{stats.format_interval(f)} vs {stats.format_interval(n)}; the 95% CIs {verdict}. ")
    if none_from is not None and (base.algorithm, "none") not in results:
        significance += (f"'CI disjoint from none' compares with none's final eval success IQM "
                         f"{stats.format_interval(none_from['final_success'])} from {none_from['source']} "
                         "(same config, seeds and resamples). ")
    if args.reuse:
        significance += ("Rows whose 'from' is a file were trained earlier with the same config, seeds and "
                         "resamples and are taken from that file (not re-run). ")
    pivot = ""
    if several:
        pivot = "\n\nFinal eval success IQM [95% CI], learner x strategy:\n\n" + markdown_table(
            ["learner"] + args.strategies,
            [[a] + [stats.format_interval(results[a, s]["final_success"]) if (a, s) in results else "not run yet"
                    for s in args.strategies] for a in args.algorithms]) + "\n"
    notes = (
        note_sentence(args.note) + significance
        + f"Each run: {args.seeds} seeds (seeds {base.seed}..{base.seed + args.seeds - 1}); a learner's strategies "
        "and seeds trained in one hjax.sweep (one compiled program: compile_s and run_s are that sweep's, shared by "
        "its rows); "
        f"config: {_config_text(base)}. Final = last epoch ({base.num_epochs}), each seed's eval success over "
        f"{base.num_eval_envs} deterministic episodes. IQM = interquartile mean over seeds; CI = 95% percentile "
        f"stratified bootstrap over seeds, {args.reps} resamples, seeded (hjax/stats.py). Env steps to 50%/90%: "
        f"first epoch whose IQM curve reaches the level, in env steps per seed; wall s to 90%: compile_s + run_s x "
        f"(that epoch / {base.num_epochs}), for all {args.seeds} seeds at once. Replay fractions: median over seeds "
        f"at the last epoch. Plots: {curves_png.name}, {replay_png.name}." + pivot)
    extra = {
        "config": base.to_dict(), "seeds": args.seeds, "reps": args.reps, "env_steps": steps.tolist(),
        "runs": [{"algorithm": a, "her_strategy": s, "final_success": _iv_dict(r["final_success"]),
                  "final_success_text": r["final_success_text"], "final_distance": _iv_dict(r["final_distance"]),
                  "steps_to_50": r["steps_to"][0.5], "steps_to_90": r["steps_to"][0.9], "wall_to_90": r["wall_to_90"],
                  "seeds_reaching_90": r["seeds_reaching_90"], "curves": r["curves"],
                  "replay_median": r["replay_median"], "learner_median": r["learner_median"],
                  "compile_s": r["compile_s"], "run_s": r["run_s"], "source": r["source"]}
                 for (a, s), r in results.items()],
        "plots": [curves_png.name, replay_png.name],
    }
    path = write_results(name, headers, rows, extra=extra, notes=notes)
    print("\n" + markdown_table(headers, rows) + f"\n\n{notes}\nwritten: {path}, {curves_png}, {replay_png}")


def note_sentence(note: str) -> str:
    """`--note` as a sentence of its own, ending in a stop and a space, so it does not run into
    the notes that follow it; "" for no note."""
    note = note.strip()
    if not note:
        return ""
    return note + ("" if note.endswith((".", "!", "?")) else ".") + " "


def _sweep(cfg: hjax.Config, strategies: list[str], seeds: int, reps: int, steps: np.ndarray,
           progress: bool = False) -> dict[str, dict[str, Any]]:
    """Train `strategies` x `seeds` seeds of `cfg` in one `hjax.sweep`; each strategy's record for the
    tables and the JSON. `progress`: a line per compiled chunk."""
    t0 = time.perf_counter()
    sweep = hjax.sweep(cfg, {"her_strategy": strategies}, seeds, progress_bar=progress, verbose=False)
    wall = time.perf_counter() - t0
    return {point["her_strategy"]: _record(sweep.point(i), reps, steps, wall) for i, point in enumerate(sweep.points)}


def _record(r: hjax.Result, reps: int, steps: np.ndarray, wall: float) -> dict[str, Any]:
    """One strategy's record from its `Result` (timings: the whole sweep's)."""
    m = r.metrics
    assert np.array_equal(np.asarray(m["env_steps"][0], np.float64), steps)
    final = stats.interval_estimates(m["eval/success_rate"][:, -1], "iqm", reps=reps, seed=0)
    curves = {k: _curves(m, k, reps, seed=0) for k in ("eval/success_rate", "eval/final_distance")}
    per_seed = np.asarray(m["eval/success_rate"])
    return {
        "final_success": final,
        "final_success_text": "{:.3f} [{:.3f}, {:.3f}]".format(
            np.median(per_seed[:, -1]), per_seed[:, -1].min(), per_seed[:, -1].max()),
        "final_distance": stats.interval_estimates(m["eval/final_distance"][:, -1], "iqm", reps=reps, seed=0),
        "steps_to": {lvl: stats.first_reaching(steps, curves["eval/success_rate"]["iqm"], lvl) for lvl in (0.5, 0.9)},
        "seeds_reaching_90": int(np.sum(per_seed.max(axis=1) >= 0.9)),
        "curves": curves,
        "replay_median": {k: np.median(np.asarray(m[k], np.float64), axis=0).tolist() for k in REPLAY_KEYS},
        "learner_median": {k: np.median(np.asarray(m[k], np.float64), axis=0).tolist()
                           for k in LEARNER_KEYS if k in m},
        "compile_s": r.compile_seconds, "run_s": r.run_seconds, "wall_s": wall, "source": "this run",
    }


def _reused(saved: dict[str, Any]) -> dict[str, Any]:
    """A run record read back from an earlier results file (see `saved_runs`)."""
    return {**saved, "final_success": _interval(saved["final_success"]),
            "final_distance": _interval(saved["final_distance"]),
            "final_success_text": saved.get("final_success_text") or "-",
            "steps_to": {0.5: saved["steps_to_50"], 0.9: saved["steps_to_90"]},
            "learner_median": saved.get("learner_median", {})}


def _config_text(cfg: hjax.Config) -> str:
    default = hjax.Config(env=cfg.env)
    changed = {k: v for k, v in cfg.to_dict().items() if v != default.to_dict()[k] and k != "her_strategy"}
    return (f"env={cfg.env}, defaults except {changed}" if changed else f"env={cfg.env}, hjax.Config defaults") + \
        f" ({cfg.num_epochs} epochs x {cfg.env_steps_per_epoch} env steps, {cfg.grad_steps_per_epoch} grad steps per epoch)"


def _iv_dict(iv: stats.Interval) -> dict[str, float]:
    return {"point": float(iv.point), "low": float(iv.low), "high": float(iv.high)}


if __name__ == "__main__":
    main()
