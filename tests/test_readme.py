"""The README stays short and its figures come from results files (issue 28): the headline table
and docs/results.md are generated from benchmarks/results/*.json and must match them."""

import json
from pathlib import Path

from benchmarks import make_docs_results as docs_results

ROOT = Path(__file__).resolve().parents[1]


def test_readme_is_short_and_has_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) <= 12 * 1024
    assert "bash dev.sh demo" in text and "bash dev.sh test" in text
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("exec bash dev.sh test")


def test_readme_and_results_page_match_the_results_files(capsys):
    assert docs_results.main(["--check"]) == 0, capsys.readouterr().err


def test_a_changed_results_file_makes_the_check_fail(monkeypatch):
    real = docs_results.load

    def changed(name):
        data = real(name)
        if name == "her_ablation_push":
            data = json.loads(json.dumps(data))
            data["rows"][0][1] = "0.123 [0.100, 0.150]"  # a new measurement of push with HER
        return data

    monkeypatch.setattr(docs_results, "load", changed)
    assert docs_results.main(["--check"]) == 1
    assert "| push | 0.123 |" in docs_results.headline()


def test_every_headline_number_is_in_its_results_file():
    """Independent of the generator: each row's with/without-HER success appears in the file."""
    table = docs_results.headline().splitlines()[2:2 + len(docs_results.CPU_SOURCES)]
    for line, (task, (her_file, none_file)) in zip(table, docs_results.CPU_SOURCES.items()):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == task
        her_rows = json.loads((ROOT / "benchmarks" / "results" / f"{her_file}.json").read_text())["rows"]
        none_rows = json.loads((ROOT / "benchmarks" / "results" / f"{none_file}.json").read_text())["rows"]
        assert any(r[0] == "future" and str(r[1]).startswith(cells[1]) for r in her_rows), line
        assert any(r[0] == "none" and str(r[1]).startswith(cells[2]) for r in none_rows), line


def test_gripper_rows_come_from_the_learning_file_of_the_current_env_version(tmp_path, monkeypatch):
    """A gripper row shows a `gripper_learning_TASK.json` measured at the current env version,
    and no figure from a missing or older file."""
    version = docs_results.env_version("gripper_push")
    assert docs_results.env_version("gripper_slide") == version
    summary = [{"her_strategy": "future", "final_success_iqm": 0.987, "seeds": 3, "seeds_reaching_90": 3,
                "steps_to_90_iqm": 345600.0, "wall_s_to_90": 1234.5},
               {"her_strategy": "none", "final_success_iqm": 0.071, "seeds": 3, "seeds_reaching_90": 0,
                "steps_to_90_iqm": float("inf"), "wall_s_to_90": float("inf")}]
    monkeypatch.setattr(docs_results, "RESULTS", tmp_path)
    (tmp_path / "gripper_learning_gripper_push.json").write_text(json.dumps({"env_version": version,
                                                                             "summary": summary}))
    (tmp_path / "gripper_learning_gripper_slide.json").write_text(json.dumps({"env_version": version - 1,
                                                                              "summary": summary}))
    assert docs_results.gripper_row("gripper_push") == \
        "| gripper_push | 0.987 | 0.071 | 345,600 | 1,234 (sweep, 6 runs) | not rerun |"
    for task in ("gripper_slide", "gripper_reach"):  # an older version; no file
        row = docs_results.gripper_row(task)
        assert f"not rerun at env version {version}" in row and "0.987" not in row
    # Each task has its own version: pick-and-place's moved past the others' (its fingers).
    pick = docs_results.env_version("gripper_pick_and_place")
    assert pick == version + 2
    for saved, shown in ((version, False), (pick, True)):
        (tmp_path / "gripper_learning_gripper_pick_and_place.json").write_text(
            json.dumps({"env_version": saved, "summary": summary}))
        row = docs_results.gripper_row("gripper_pick_and_place")
        assert ("0.987" in row) == shown and (f"not rerun at env version {pick}" in row) != shown
    summary[0].update(seeds_reaching_90=2)  # a seed short of 90%: no time to 90% is claimed
    (tmp_path / "gripper_learning_gripper_push.json").write_text(json.dumps({"env_version": version,
                                                                             "summary": summary}))
    assert "| never (2/3 seeds) | never |" in docs_results.gripper_row("gripper_push")


def test_a_gripper_row_is_its_presets_levers_run_when_there_is_one(tmp_path, monkeypatch):
    """A levers run of the preset's configuration at the current env version is the task's row:
    final IQM, the same configuration without HER beside it, env steps to 90% (the seeds' mean:
    the IQM of three) and the preset's wall estimate (compile plus the median seed's epochs at the
    mean epoch time); a lever of another configuration or an older version is not."""
    import hjax

    version = docs_results.env_version("gripper_push")
    config = hjax.Config.preset("gripper_push").to_dict()
    steps = [12800.0 * e for e in range(1, 6)]
    success = [[0.1, 0.9, 0.9, 0.95, 1.0], [0.1, 0.5, 0.92, 0.9, 0.96], [0.0, 0.2, 0.5, 0.91, 0.98]]
    entry = {"config": config, "env_version": version, "final_success": [0.96, 0.95, 1.0], "steps": steps,
             "success": success, "wall_s": 110.0, "compile_s": 10.0}
    none = {**entry, "config": {**config, "her_strategy": "none"}, "final_success": [0.07, 0.0, 0.1],
            "success": [[0.0] * 5] * 3}
    other = {**entry, "config": {**config, "batch_size": 4096}, "final_success": [0.5, 0.4, 0.6]}
    monkeypatch.setattr(docs_results, "RESULTS", tmp_path)
    levers = {"base": other, "sac": entry}
    (tmp_path / "levers_gripper_push.json").write_text(json.dumps({"levers": levers}))
    assert "| gripper_push | 0.960 | not run |" in docs_results.gripper_row("gripper_push")
    # the run without HER in another of the task's tables, under any name, is found by its configuration
    (tmp_path / "levers_gripper_push_sac.json").write_text(json.dumps({"levers": {"no relabeling": none}}))
    # first reached 0.9 at epochs 2, 3, 4: 38,400 env steps; wall 10 + 100 x 3 / 5 = 70 s
    assert docs_results.gripper_row("gripper_push") == \
        "| gripper_push | 0.960 | 0.070 | 38,400 | 70 (preset, 3 seeds) | not rerun |"
    (tmp_path / "levers_gripper_push_sac.json").write_text(json.dumps(
        {"levers": {"no relabeling": {**none, "env_version": version - 1}}}))
    assert "| gripper_push | 0.960 | not run |" in docs_results.gripper_row("gripper_push")
    levers["sac"] = {**entry, "env_version": version - 1}
    (tmp_path / "levers_gripper_push.json").write_text(json.dumps({"levers": levers}))
    assert "not rerun at env version" in docs_results.gripper_row("gripper_push")


def test_the_readme_own_task_snippet_runs(monkeypatch):
    """The README's "Your own task" code, as printed, trains (one epoch here). The registry is
    restored afterwards, so later tests in this process see only the built-in tasks."""
    from hjax import envs

    monkeypatch.setattr(envs, "_REGISTRY", dict(envs._REGISTRY))
    monkeypatch.setattr(envs, "NAMES", envs.NAMES)
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Your own task"):]
    code = section[section.index("```python") + len("```python"):section.index("```\n", section.index("```python") + 9)]
    assert 'hjax.envs.register("line", Line)' in code and "num_epochs=10" in code
    code = code.replace("num_epochs=10", "num_epochs=1, num_envs=4, grad_steps_per_epoch=2, hidden_sizes=(8,), "
                                          "batch_size=16, buffer_episodes=8, num_eval_envs=4")
    code = code.replace('hjax.envs.register("line", Line)', 'hjax.envs.register("readme_line", Line)')
    code = code.replace('Config(env="line"', 'Config(env="readme_line"')
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    result = scope["result"]
    assert int(result.metrics["env_steps"][-1]) == 4 * 20
    assert result.config.make_env().goal_size == 1


def test_the_readme_diagnosis_example_quotes_the_recorded_reports():
    """Every number in the README's side-by-side diagnosis is in the recorded reports it quotes."""
    import re

    text = (ROOT / "README.md").read_text()
    block = text.split("$ hjax diagnose runs/push-future", 1)[1].split("```", 1)[0]
    reports = (ROOT / "benchmarks" / "results" / "diagnosis_table_reports.txt").read_text()
    numbers = re.findall(r"\d[\d,]*\.?\d*", block)
    assert len(numbers) >= 12
    for number in numbers:
        assert number.rstrip(".,") in reports, number


def test_the_readme_sweep_figures_are_those_of_the_results_file():
    """The Sweeps section's seconds and ratio are the sweep_speed results file's (no figure typed by hand
    can drift from its measurement unnoticed)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Sweeps"):text.index("## Your own task")]
    data = json.loads((ROOT / "benchmarks" / "results" / "sweep_speed_point_mass.json").read_text())
    rows = {r[0]: dict(zip(data["headers"], r)) for r in data["rows"]}
    trains = rows["5 x hjax.train (a process each)"]
    sweep = rows["hjax.sweep, batch_points=False"]
    assert trains["compiles"] == 5 and sweep["compiles"] == 1
    assert f"took {sweep['process wall s']:.0f} s as one sweep against {trains['process wall s']:.0f} s" in section
    assert f"{sweep['wall vs train x 5'].split('x')[0]}x less wall time" in section


def test_the_readme_levers_sentence_quotes_the_levers_file():
    """"from 0.44 to 0.93-0.98": the base's final IQM and the range of the three winning levers'."""
    import json
    import re

    text = " ".join((ROOT / "README.md").read_text().split())
    low, high, top = map(float, re.search(r"from (\d\.\d+) to (\d\.\d+)-(\d\.\d+)", text).groups())
    levers = json.loads((ROOT / "benchmarks" / "results" / "levers_gripper_push.json").read_text())["levers"]
    finals = {k: v["final_success"][0] for k, v in levers.items()}
    assert round(finals["base"], 2) == low
    winners = [finals[k] for k in ("sac", "n_step=3", "updates_x2")]
    assert (round(min(winners), 2), round(max(winners), 2)) == (high, top)


def test_the_readme_pick_and_place_sentence_quotes_its_files():
    """"stops at 0.563 ... on the table (0.949) ... in the air (0.045": the SAC levers table's base
    final at the current env version, and the goal-height split's two success rates."""
    import json
    import re

    text = " ".join((ROOT / "README.md").read_text().split())
    final, table, air = re.search(r"stops at (\d\.\d+) after 1\.28M env steps per seed: .*? on the table "
                                  r"\((\d\.\d+)\) .*? in the air \((\d\.\d+);", text).groups()
    results = ROOT / "benchmarks" / "results"
    levers = json.loads((results / "levers_gripper_pick_and_place_sac.json").read_text())["levers"]
    assert f"{levers['base']['final_success'][0]:.3f}" == final
    assert levers["base"]["steps"][-1] == 1_280_000
    assert levers["base"]["env_version"] == docs_results.env_version("gripper_pick_and_place")
    rows = {r[0]: r for r in json.loads((results / "goal_height_split_pnp_sac.json").read_text())["rows"]}
    assert (rows["on the table"][2], rows["in the air"][2]) == (table, air)
    # ... and the grasped starts that solve it: final, env steps to 90%, air goals, Fetch.
    final, steps, air, no_her, fetch = re.search(
        r"solves it: (\d\.\d+) after 1\.28M env steps per seed, every seed past 90% \(IQM at ([\d,]+) env steps\), "
        r"air goals (\d\.\d+) \(without HER: (\d\.\d+)\)\. .*? FetchPickAndPlace-v4 the HER policy succeeds in "
        r"(\d\.\d+) ", text).groups()
    without = levers["grasped_start=0.5 without HER"]
    assert without["config"]["her_strategy"] == "none" and without["config"]["env_kwargs"] == {"grasped_start_prob": 0.5}
    assert f"{without['final_success'][0]:.3f}" == no_her
    grasped = levers["grasped_start=0.5"]
    assert grasped["config"]["env_kwargs"] == {"grasped_start_prob": 0.5}
    assert f"{grasped['final_success'][0]:.3f}" == final
    every = [next(i for i, x in enumerate(c) if x >= 0.9) for c in grasped["success"]]  # raises if a seed never did
    assert len(every) == 3 and f"{grasped['steps_to_target'][0]:,.0f}" == steps  # the table's target is 0.9
    rows = {r[0]: r for r in json.loads((results / "goal_height_split_pnp_sac_grasped.json").read_text())["rows"]}
    assert rows["in the air"][2] == air
    (row,) = json.loads((results / "fetch_crossplay_pick_and_place_grasped.json").read_text())["rows"]
    assert row[3] == fetch


def test_the_readme_slide_sentence_quotes_its_file():
    """"Slide with the same SAC: 0.820 after 1.02M env steps per seed, every seed past 70%": the
    slide levers table's base row (final IQM, budget, every seed at its 70% target)."""
    import json
    import re

    text = " ".join((ROOT / "README.md").read_text().split())
    final, budget = re.search(r"Slide with the same SAC: (\d\.\d+) after (\d\.\d+)M env steps per seed, every seed "
                              r"past 70%", text).groups()
    data = json.loads((ROOT / "benchmarks" / "results" / "levers_gripper_slide_sac.json").read_text())
    base = data["levers"]["base"]
    assert data["target"] == 0.7 and base["config"]["algorithm"] == "sac"
    assert f"{base['final_success'][0]:.3f}" == final
    assert f"{base['steps'][-1] / 1e6:.2f}" == budget
    assert base["seeds_reaching"] == base["seeds"] == 3
