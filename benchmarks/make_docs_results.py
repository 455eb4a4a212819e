"""Build the README's headline results table and docs/results.md from benchmarks/results/*.json.

    python -m benchmarks.make_docs_results           # rewrite both
    python -m benchmarks.make_docs_results --check   # exit 1 if either is out of date (CI runs this)

No figure in either is typed by hand: every number comes from a results file, which records the
machine and the command that measured it. The README holds the table between the markers
`<!-- results:start -->` and `<!-- results:end -->`; docs/results.md is written whole.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from hjax.runs import env_version

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
DOCS_PAGE = ROOT / "docs" / "results.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"

# task -> (file of the HER run, file of the run without HER): HER ablations on the CPU, 3-8 seeds.
CPU_SOURCES = {
    "point_mass": ("her_ablation_point_mass", "her_ablation_point_mass"),
    "reach": ("her_ablation_reach", "her_ablation_reach"),
    "push": ("her_ablation_push", "her_ablation_push"),
}
# The Fetch-faithful gripper tasks: `benchmarks/gripper_learning.py` sweeps (HER and none, 3 seeds,
# one file per task); a task without a file at the current env version is listed as not rerun.
GRIPPER_TASKS = ("gripper_reach", "gripper_push", "gripper_pick_and_place", "gripper_slide")
# GPU time-to-target files; their gripper records were measured on the hjax 0.2 tasks and are not shown.
GPU_FILES = ("gpu/gpu_suite.json",)
# The per-benchmark tables shown on the results page, in order, with a heading each.
PAGE_TABLES = (
    ("HER strategies on point_mass (8 seeds)", "her_ablation_point_mass"),
    ("HER strategies on reach", "her_ablation_reach"),
    ("push with and without HER", "her_ablation_push"),
    *((f"{task} with and without HER (Fetch-faithful task)", f"gripper_learning_{task}") for task in GRIPPER_TASKS),
    ("Learners on point_mass", "her_ablation_point_mass_learners"),
    ("Learners on push", "her_ablation_push_learners"),
    ("Learner levers on gripper_push, one at a time from TD3 (issue 25)", "levers_gripper_push"),
    ("Levers on SAC, gripper_push (issue 25)", "levers_gripper_push_sac"),
    ("Levers on SAC, gripper_pick_and_place (issue 25)", "levers_gripper_pick_and_place_sac"),
    ("SAC on gripper_slide, to 70% (issue 25)", "levers_gripper_slide_sac"),
    ("gripper_pick_and_place success by goal height (SAC, one seed, 768k env steps, env version 4)",
     "goal_height_split_pnp_sac"),
    ("gripper_pick_and_place success by goal height (SAC + grasped starts, one seed, 1.28M env steps, env version 6)",
     "goal_height_split_pnp_sac_grasped"),
    ("The same policy on FetchPickAndPlace-v4, by goal height", "goal_height_split_pnp_sac_grasped_fetch"),
    ("Cross-play of that policy on FetchPickAndPlace-v4", "fetch_crossplay_pick_and_place_grasped"),
    ("The fingers under the same commands, hjax and FetchPickAndPlace-v4", "fetch_fingers"),
    ("Cross-play of a gripper_slide policy (SAC, one seed, 704k env steps) on FetchSlide-v4", "fetch_crossplay_slide"),
    ("Fused training throughput", "throughput"),
    ("Env throughput", "env_throughput"),
    ("Against Stable-Baselines3's HER", "vs_sb3"),
    ("Command-line latency", "cli_latency"),
)


def load(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / f"{name}.json").read_text())


def row(data: dict, strategy: str) -> dict[str, Any] | None:
    """The row of `strategy` in a HER ablation file, as header -> value."""
    for values in data["rows"]:
        if values[0] == strategy:
            return dict(zip(data["headers"], values))
    return None


def pick(record: dict, prefix: str) -> Any:
    """The value of the first header starting with `prefix` (headers carry the seed count)."""
    for key, value in record.items():
        if key.startswith(prefix):
            return value
    return None


def success(record: dict | None) -> str:
    return "not run" if record is None else str(record["final eval success IQM [95% CI]"]).split(" ")[0]


def steps(value: Any) -> str:
    return f"{int(value):,}" if isinstance(value, (int, float)) else str(value)


def gpu_runs() -> dict[str, dict]:
    """env -> the GPU time-to-target record with HER (her_strategy future or unset)."""
    found: dict[str, dict] = {}
    for name in GPU_FILES:
        path = RESULTS / name
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        for rec in data.get("time_to_target", []) + data.get("gripper_learning", []):
            if (rec.get("her_strategy") in (None, "future") and rec.get("outcome") == "reached"
                    and not rec["env"].startswith("gripper")):
                found.setdefault(rec["env"], {**rec, "device": data["machine"]["device"], "file": name})
    return found


def preset_seconds() -> dict[str, float]:
    """env -> wall seconds (compile included) of its chosen preset to 90% eval success, one seed
    (`benchmarks/results/presets.json`)."""
    data = load("presets")
    return {r["env"]: r["seconds"] for r in data["rows"]
            if data["chosen"].get(r["env"]) == r["candidate"] and r["outcome"] == "reached"}


def headline() -> str:
    gpu = gpu_runs()
    presets = preset_seconds()
    lines = ["| task | eval success with HER | without HER | env steps to 90% (HER) | CPU wall s to 90% | "
             "GPU wall s to target |",
             "|---|---|---|---|---|---|"]
    for task, (her_file, none_file) in CPU_SOURCES.items():
        her, none = row(load(her_file), "future"), row(load(none_file), "none")
        wall = pick(her, "wall s to 90%") if her else None
        wall_text = steps(wall) if wall is not None else (
            f"{presets[task]:.0f} (preset, 1 seed)" if task in presets else "not measured")
        g = gpu.get(task)
        gpu_text = "not run" if g is None else (f"{g['wall_s']:.0f} s to {g['target']:.0%} "
                                               f"({g['env_steps_per_seed']:,} steps)")
        lines.append(f"| {task} | {success(her)} | {success(none)} | "
                     f"{steps(her['env steps to 90% (IQM curve)']) if her else 'not run'} | "
                     f"{wall_text} | {gpu_text} |")
    lines += [gripper_row(task) for task in GRIPPER_TASKS]
    devices = sorted({g["device"] for g in gpu.values()})
    lines += ["", "Final eval success is the IQM over seeds (3-8 per task) at the end of each run's budget; "
              "CPU wall time (compile included) is from the same files, or from the measured preset "
              "(`benchmarks/results/presets.json`) where the ablation did not time it; the GPU column is time to the "
              "target named (" + ", ".join(devices) + "; `benchmarks/results/gpu/`, compile included). The gripper rows "
              "are the Fetch-faithful tasks at their current env versions ("
              + ", ".join(f"{t.removeprefix('gripper_')} {env_version(t)}" for t in GRIPPER_TASKS)
              + "): its preset's run where one was measured (`benchmarks/levers.py`, SAC, 3 vmapped seeds on one "
              "core; without HER: the same configuration without relabeling, where run), else the TD3 sweep "
              "(`benchmarks/gripper_learning.py`, HER and none in one program: 6 runs); a task not yet rerun at "
              "this version shows no figures, and no GPU figure is from this version yet. "
              "Generated by `python -m benchmarks.make_docs_results`."]
    return "\n".join(lines)


TARGETS = {"gripper_slide": 0.7}
"""Issue 25's success target per gripper task where it is not 90% (slide: 70%)."""


def preset_record(task: str, her_strategy: str | None = None) -> dict | None:
    """The record of the first `benchmarks/levers.py` run, in any of the task's `levers_TASK*.json`,
    that trained `task`'s preset configuration (with `her_strategy` in place of the preset's where
    given) at the task's current env version (issue 25), or None."""
    import hjax

    preset = hjax.Config.preset(task).to_dict()
    if her_strategy is not None:
        preset["her_strategy"] = her_strategy
    defaults = hjax.Config(env=task).to_dict()
    for path in sorted(RESULTS.glob(f"levers_{task}*.json")):
        for entry in json.loads(path.read_text())["levers"].values():
            same = all(value == entry["config"].get(f, defaults[f]) for f, value in preset.items()
                       if f not in ("seed", "chunk_epochs", "num_epochs"))
            if same and entry["env_version"] == env_version(task):
                return entry
    return None


def gripper_row(task: str) -> str:
    """The headline row of a gripper task: its preset's levers run (SAC, issue 25) when one was
    measured at the current env version, with the same configuration without HER beside it where
    that was run too (in any of the task's levers files: the two are often added to different
    tables); else its `gripper_learning_TASK.json` (TD3, HER and none); else a row saying
    it was not rerun. Env steps and wall time are to issue 25's target (90%, slide 70%); the wall
    time is the preset's estimate (compile plus the median seed's epochs at the run's mean epoch
    time, as `hjax.presets` states it)."""
    from benchmarks.levers import figures

    entry = preset_record(task)
    if entry is not None:
        target = TARGETS.get(task, 0.9)
        to = "" if target == 0.9 else f" (to {target:.0%})"
        her = figures(entry["steps"], entry["success"], target)
        none = preset_record(task, her_strategy="none")  # the same configuration, in any of its files
        none_text = f"{none['final_success'][0]:.3f}" if none is not None else "not run"
        if her["seeds_reaching"] < her["seeds"]:
            to_target = wall = f"never ({her['seeds_reaching']}/{her['seeds']} seeds)"
        else:
            epochs = sorted(next(i + 1 for i, x in enumerate(c) if x >= target) for c in entry["success"])
            median = epochs[len(epochs) // 2]
            seconds = entry["compile_s"] + (entry["wall_s"] - entry["compile_s"]) * median / len(entry["steps"])
            to_target = f"{her['steps_to_target'][0]:,.0f}{to}"
            wall = f"{round(seconds, -1):,.0f}{to} (preset, {her['seeds']} seeds)"
        return f"| {task} | {entry['final_success'][0]:.3f} | {none_text} | {to_target} | {wall} | not rerun |"
    path = RESULTS / f"gripper_learning_{task}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    version = env_version(task)
    if data.get("env_version") != version:
        return f"| {task} | not rerun at env version {version} | - | - | - | - |"
    her, none = ({e["her_strategy"]: e for e in data["summary"]}[k] for k in ("future", "none"))
    reached = her["seeds_reaching_90"] == her["seeds"]
    to_90 = f"{her['steps_to_90_iqm']:,.0f}" if reached else f"never ({her['seeds_reaching_90']}/{her['seeds']} seeds)"
    wall = f"{her['wall_s_to_90']:,.0f} (sweep, 6 runs)" if reached else "never"
    return (f"| {task} | {her['final_success_iqm']:.3f} | {none['final_success_iqm']:.3f} | {to_90} | {wall} | "
            "not rerun |")


def table(data: dict) -> str:
    headers = data["headers"]
    out = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
    for values in data["rows"]:
        cells = [steps(v) if isinstance(v, int) and not isinstance(v, bool) else str(v) for v in values]
        out.append("| " + " | ".join(cells) + " |")
    machine = data.get("machine", {})
    where = ", ".join(f"{k}={machine[k]}" for k in ("device", "cpu", "jax", "date") if k in machine)
    command = machine.get("command")
    return "\n".join(out) + f"\n\nMeasured on {where}." + (f" Command: `{command}`." if command else "")


def page() -> str:
    parts = ["# Results", "",
             "Every table on this page is generated from `benchmarks/results/*.json` by "
             "`python -m benchmarks.make_docs_results`; each file also records the machine and the "
             "exact command, and `benchmarks/README.md` says how each was run.", "",
             "## Headline", "", headline(), ""]
    for title, name in PAGE_TABLES:
        if (RESULTS / f"{name}.json").exists():
            parts += [f"## {title}", "", f"From `benchmarks/results/{name}.json`.", "", table(load(name)), ""]
    return "\n".join(parts)


def readme_with_table(text: str) -> str:
    if START not in text or END not in text:
        raise SystemExit(f"{README} has no {START} ... {END} markers")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    return before + START + "\n" + headline() + "\n" + END + after


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md or docs/results.md is stale")
    args = parser.parse_args(argv)
    wanted = {README: readme_with_table(README.read_text()), DOCS_PAGE: page()}
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
    if args.check:
        for p in stale:
            print(f"{p.relative_to(ROOT)} is out of date: run python -m benchmarks.make_docs_results", file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(wanted[p])
        print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
