"""The diagnosis of real runs, with and without HER, side by side (issue 26): verdict, chance
level, earned success, informative hindsight and the earned-success milestones, recomputed from
each run directory's config.json and metrics.csv with today's `hjax.diagnose`.

    python -m benchmarks.diagnosis_table RUN_DIR [RUN_DIR ...] [--name diagnosis_table]

Train the runs first (any way: `hjax train`, `hjax.train(..., run_dir=...)`); the command that
trained each is the caller's to record in `--note`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import hjax
from hjax import runs


def row(run_dir: Path) -> list:
    d = hjax.diagnose(run_dir)
    ev = d.evidence
    config, num_seeds = runs.load_config(run_dir)
    fmt = lambda v, spec=".3f": "n/a" if v is None else format(v, spec)  # noqa: E731
    steps = lambda v: "not reached" if v is None else f"{v:,}"  # noqa: E731
    seeds = "" if num_seeds is None else f" ({', '.join(s.verdict for s in d.per_seed)})"
    return [config.env, config.her_strategy, num_seeds or 1, ev.epochs, f"{ev.env_steps:,}",
            fmt(ev.chance_level), fmt(ev.eval_success_late), fmt(ev.eval_earned_late),
            f"{fmt(ev.earned_success_early)} -> {fmt(ev.earned_success_late)}", fmt(ev.learning_z, ".1f"),
            fmt(ev.replay_reward_original, ".4f"), fmt(ev.replay_informative, ".4f"),
            steps(ev.first_success_env_steps), steps(ev.per_100_env_steps), steps(ev.per_10_env_steps),
            d.verdict + seeds]


HEADERS = ["env", "her", "seeds", "epochs", "env steps per seed", "chance level", "late eval success",
           "late eval earned", "earned train success early -> late", "z", "replay reward, original goals",
           "informative replay", "first earned success", "1/100", "1/10", "verdict (per seed)"]


def main() -> None:
    from benchmarks.common import markdown_table, write_results

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--name", default="diagnosis_table")
    parser.add_argument("--note", default="", help="how the runs were trained (commands, machine load)")
    args = parser.parse_args()
    rows = [row(r) for r in args.run_dirs]
    print(markdown_table(HEADERS, rows))
    path = write_results(args.name, HEADERS, rows, extra={"run_dirs": [str(r) for r in args.run_dirs]},
                         notes=args.note)
    # every run's full report, as `hjax diagnose` prints it (the docs show them beside the table)
    reports = [f"$ hjax diagnose {r.name}\n{hjax.diagnose(r)}" for r in args.run_dirs]
    (path.parent / f"{args.name}_reports.txt").write_text("\n\n".join(reports) + "\n")


if __name__ == "__main__":
    main()
