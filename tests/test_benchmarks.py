"""Host-side helpers of the benchmark scripts: config overrides and the `--none-from` reference."""

import json

import numpy as np
import pytest

import hjax
from benchmarks.her_ablation import load_reference, note_sentence, parse_overrides


def test_parse_overrides():
    assert parse_overrides(["num_epochs=50", "hidden_sizes=64,64", "clip_target=False", "hidden_sizes=32"]) == {
        "num_epochs": 50, "hidden_sizes": (32,), "clip_target": False}
    with pytest.raises(ValueError, match="unknown Config field 'epochs'"):
        parse_overrides(["epochs=3"])
    with pytest.raises(ValueError, match="her_strategy is set by this script"):
        parse_overrides(["her_strategy=none"])
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_overrides(["num_epochs"])


def _results(tmp_path, cfg, seeds=4, reps=5000):
    path = tmp_path / "ablation.json"
    path.write_text(json.dumps({"config": cfg.replace(her_strategy="none").to_dict(), "seeds": seeds, "reps": reps,
                                "strategies": {"none": {"final_success": {"point": 0.0, "low": 0.0, "high": 0.01}}}}))
    return str(path)


def test_load_reference_same_run(tmp_path):
    cfg = hjax.Config(env="push", num_epochs=200, hidden_sizes=(256, 256))
    ref = load_reference(_results(tmp_path, cfg), cfg.replace(her_strategy="final"), 4, 5000)
    np.testing.assert_allclose([ref["final_success"].low, ref["final_success"].high], [0.0, 0.01])
    # It is compared like any interval: disjoint from a strategy that learned.
    from hjax import stats
    assert not stats.Interval(np.float64(0.9), np.float64(0.85), np.float64(0.95)).overlaps(ref["final_success"])


def test_load_reference_refuses_another_run(tmp_path):
    cfg = hjax.Config(env="push", num_epochs=200)
    path = _results(tmp_path, cfg)
    with pytest.raises(ValueError, match=r"config fields \['num_epochs'\]"):
        load_reference(path, cfg.replace(num_epochs=100), 4, 5000)
    with pytest.raises(ValueError, match="seeds 4 vs 3"):
        load_reference(path, cfg, 3, 5000)
    with pytest.raises(ValueError, match="not a her_ablation results file"):
        load_reference(str(tmp_path / "missing.json"), cfg, 4, 5000)


def test_saved_runs_of_old_and_new_files(tmp_path):
    """A file from before --algorithms counts as td3; a file's own runs keep the file they were
    first carried over from; another learner's runs of the same config are accepted."""
    from benchmarks.her_ablation import saved_runs

    cfg = hjax.Config(env="push", num_epochs=200, hidden_sizes=(256, 256))
    old = tmp_path / "old.json"
    old_config = cfg.to_dict()
    for field in ("algorithm", "init_alpha", "alpha_lr", "target_entropy"):  # fields added since
        del old_config[field]
    old.write_text(json.dumps({"config": old_config, "seeds": 4, "reps": 5000, "rows": [["none", "x", "0.000 [0.000, 0.010]"]],
                               "strategies": {"none": {"final_success": {"point": 0.0, "low": 0.0, "high": 0.01}}}}))
    runs = saved_runs(str(old), cfg.replace(algorithm="sac"), 4, 5000)
    assert set(runs) == {("td3", "none")} and runs["td3", "none"]["source"] == str(old)
    assert runs["td3", "none"]["final_success_text"] == "0.000 [0.000, 0.010]"
    new = tmp_path / "new.json"
    new.write_text(json.dumps({"config": cfg.replace(algorithm="ddpg").to_dict(), "seeds": 4, "reps": 5000, "runs": [
        {"algorithm": "ddpg", "her_strategy": "future", "source": "this run"},
        {"algorithm": "td3", "her_strategy": "none", "source": str(old)}]}))
    runs = saved_runs(str(new), cfg, 4, 5000)
    assert runs["ddpg", "future"]["source"] == str(new) and runs["td3", "none"]["source"] == str(old)
    with pytest.raises(ValueError, match=r"config fields \['tau'\]"):
        saved_runs(str(new), cfg.replace(tau=0.1), 4, 5000)


def _vs_sb3_args(*argv):
    """vs_sb3's own command line, on planar push from its preset unless told otherwise."""
    from benchmarks.vs_sb3 import make_parser

    return make_parser().parse_args(["--env", "push", "--base", "preset", "--sb3-train-episodes", "2", *argv])


def test_vs_sb3_configs_from_the_preset_and_sb3_overrides():
    from benchmarks.vs_sb3 import sb3_config, shared_config

    args = _vs_sb3_args("--sb3-overrides", "hidden_sizes=256,256,256", "grad_steps_per_epoch=1280")
    cfg = shared_config(args)
    want = hjax.Config.preset("push", random_action_prob=0.0, chunk_epochs=1, her_strategy="future", seed=0)
    assert cfg == want  # the preset (its 250 epochs), Gaussian noise only
    sb = sb3_config(cfg, args)
    assert sb == want.replace(hidden_sizes=(256, 256, 256), grad_steps_per_epoch=1280)
    assert shared_config(_vs_sb3_args("--keep-random-actions")).random_action_prob == hjax.Config().random_action_prob
    with pytest.raises(ValueError, match="num_envs is set by this script"):
        sb3_config(cfg, _vs_sb3_args("--sb3-overrides", "num_envs=8"))
    with pytest.raises(ValueError, match="actor_lr=0.0003 and critic_lr=0.001 differ"):
        sb3_config(cfg, _vs_sb3_args("--sb3-overrides", "actor_lr=3e-4"))


def test_vs_sb3_run_length_from_one_flag_only():
    from benchmarks.vs_sb3 import shared_config

    assert shared_config(_vs_sb3_args("--hjax-epochs", "7")).num_epochs == 7
    assert shared_config(_vs_sb3_args("--config-overrides", "num_epochs=9")).num_epochs == 9
    # Both at once was silently the override's (a 1-epoch warm-up ran 100 epochs): now an error.
    with pytest.raises(ValueError, match=r"--hjax-epochs=1 and --config-overrides num_epochs=100 both set"):
        shared_config(_vs_sb3_args("--hjax-epochs", "1", "--config-overrides", "num_epochs=100"))


def test_vs_sb3_reuses_only_a_matching_sb3_side(tmp_path):
    from benchmarks.vs_sb3 import _sb3_key, load_sb3_side, sb3_config, shared_config

    args = _vs_sb3_args("--sb3-overrides", "hidden_sizes=256,256,256")
    sb_cfg = sb3_config(shared_config(args), args)
    path = tmp_path / "side.json"
    path.write_text(json.dumps({**_sb3_key(sb_cfg, args), "budget_s": 60.0, "sb3": {"train_s": 60.0}}))
    assert load_sb3_side(str(path), sb_cfg, args)["sb3"] == {"train_s": 60.0}
    with pytest.raises(ValueError, match="was run with other sb3_config"):
        load_sb3_side(str(path), sb_cfg.replace(batch_size=512), args)
    with pytest.raises(ValueError, match="was run with other sb3_train_episodes"):
        load_sb3_side(str(path), sb_cfg, _vs_sb3_args("--sb3-overrides", "hidden_sizes=256,256,256",
                                                      "--sb3-train-episodes", "4"))
    path.write_text(json.dumps({"hjax": {}}))
    with pytest.raises(ValueError, match="is not a one-sided result of this script holding 'sb3'"):
        load_sb3_side(str(path), sb_cfg, args)
    with pytest.raises(ValueError, match="cannot read it"):
        load_sb3_side(str(tmp_path / "missing.json"), sb_cfg, args)


def test_vs_sb3_reuses_only_a_matching_hjax_side(tmp_path):
    from benchmarks.vs_sb3 import _hjax_key, load_hjax_side, shared_config

    args = _vs_sb3_args("--keep-random-actions")
    cfg = shared_config(args)
    path = tmp_path / "side.json"
    path.write_text(json.dumps({**_hjax_key(cfg, args), "hjax_runs": [{"compile_s": 9.0}]}))
    assert load_hjax_side(str(path), cfg, args)["hjax_runs"] == [{"compile_s": 9.0}]
    no_random = _vs_sb3_args()
    with pytest.raises(ValueError, match="--hjax-from=.* was run with other config"):
        load_hjax_side(str(path), shared_config(no_random), no_random)
    with pytest.raises(ValueError, match="was run with other target"):
        load_hjax_side(str(path), cfg, _vs_sb3_args("--keep-random-actions", "--target", "0.5"))


def test_her_ablation_note_is_a_sentence_of_its_own():
    assert note_sentence("") == note_sentence("  ") == ""
    assert note_sentence("one core (taskset -c 1)") == "one core (taskset -c 1). "
    assert note_sentence(" both cores free. ") == "both cores free. "


def test_each_lever_changes_only_its_own_fields():
    from benchmarks import levers

    base = hjax.Config(env="point_mass", num_envs=8, batch_size=64, grad_steps_per_epoch=10, buffer_episodes=100,
                       hidden_sizes=(32, 32))
    expected = {"critic_layer_norm": {"critic_layer_norm": True}, "replay_k=8": {"replay_k": 8.0}, "n_step=3": {"n_step": 3},
                "updates_x2": {"grad_steps_per_epoch": 20}, "updates_x4": {"grad_steps_per_epoch": 40},
                "batch_x2": {"batch_size": 128},
                "envs_x4": {"num_envs": 32, "buffer_episodes": 400}, "wider_512": {"hidden_sizes": [512, 512]},
                "sac": {"algorithm": "sac"}, "base": {}}
    for lever, changes in expected.items():
        before, after = base.to_dict(), levers.lever_config(base, lever).to_dict()
        assert {k: v for k, v in after.items() if before[k] != v} == changes, lever
    for lever in levers.levers_for("point_mass"):  # every lever for the env makes a valid Config from the base
        levers.lever_config(base, lever)
    # pick-and-place's own: an env override on top of the base's, refused for another env by name
    pick = hjax.Config(env="gripper_pick_and_place", env_kwargs={"distance_threshold": 0.06}, num_envs=8)
    for lever, extra in (("grasped_start=0.5", {}), ("grasped_start=0.5 without HER", {"her_strategy": "none"})):
        before, after = pick.to_dict(), levers.lever_config(pick, lever).to_dict()
        assert {k: v for k, v in after.items() if before[k] != v} == {
            "env_kwargs": {"distance_threshold": 0.06, "grasped_start_prob": 0.5}, **extra}, lever
        assert lever in levers.levers_for("gripper_pick_and_place") and lever not in levers.levers_for("point_mass")
        with pytest.raises(ValueError, match=rf"invalid lever '{lever}' for env='point_mass'; allowed: for env "
                                             "gripper_pick_and_place only"):
            levers.lever_config(base, lever)
    with pytest.raises(ValueError, match=r"invalid lever 'lr_x10'; allowed: base, critic_layer_norm"):
        levers.lever_config(base, "lr_x10")
    assert levers.verdict({"final_success": [0.9, 0.8, 0.95]}, {"final_success": [0.5, 0.4, 0.7]}) == "better"
    assert levers.verdict({"final_success": [0.3, 0.2, 0.35]}, {"final_success": [0.5, 0.4, 0.7]}) == "worse"
    assert levers.verdict({"final_success": [0.6, 0.5, 0.75]}, {"final_success": [0.5, 0.4, 0.7]}) == \
        "no clear difference"


def test_levers_table_from_a_tiny_run(tmp_path, monkeypatch, capsys):
    """benchmarks.levers end to end on a tiny point_mass config: one row per lever, the final
    success IQM that of the seeds' last eval (scipy's 25%-trimmed mean), files written; with
    --progress a line per lever and per compiled chunk."""
    import scipy.stats

    from benchmarks import common, levers

    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(levers, "RESULTS_DIR", tmp_path)
    captured = {}
    real = levers.record

    def keep(result, target, wall, reps=2000):
        captured[len(captured)] = np.asarray(result.metrics["eval/success_rate"])  # (seeds, epochs)
        return real(result, target, wall, reps)

    monkeypatch.setattr(levers, "record", keep)
    assert levers.main(["--env", "point_mass", "--seeds", "4", "--num-epochs", "2", "--levers", "replay_k=8",
                        "--config-overrides", "num_envs=4", "grad_steps_per_epoch=2", "hidden_sizes=8,",
                        "batch_size=16", "buffer_episodes=8", "num_eval_envs=4", "--name", "levers_tiny",
                        "--progress"]) == 0
    out = capsys.readouterr().out
    assert out.count(": training 4 seeds") == 2 and out.count("point_mass: epoch ") == 2 * 2, out  # 2 levers x 2 chunks
    saved = json.loads((tmp_path / "levers_tiny.json").read_text())
    assert [r[0] for r in saved["rows"]] == ["base", "replay_k=8"] and saved["rows"][1][1] == "replay_k=8.0"
    for i, lever in enumerate(("base", "replay_k=8")):
        want = scipy.stats.trim_mean(captured[i][:, -1], 0.25)
        assert saved["levers"][lever]["final_success"][0] == pytest.approx(want)
        area = scipy.stats.trim_mean(captured[i].mean(axis=1), 0.25)  # each seed's curve averaged, then the IQM
        assert saved["levers"][lever]["mean_success"][0] == pytest.approx(area)
        assert saved["rows"][i][3].startswith(f"{area:.3f} [")
        assert saved["levers"][lever]["config"]["replay_k"] == (8.0 if i else 4.0)
        ends = saved["levers"][lever]["chunk_ends"]  # one per compiled chunk, in order, within the run
        assert [e for e, _ in ends] == list(range(1, 3)) and 0 < ends[0][1] <= ends[1][1] <= saved["levers"][lever]["wall_s"]
    assert (tmp_path / "levers_tiny_curves.png").stat().st_size > 0


def test_wall_at_is_the_end_of_the_chunk_holding_the_epoch():
    """benchmarks.common.wall_at against a plain scan of the chunk ends."""
    import math

    from benchmarks.common import wall_at

    ends = [(5, 10.0), (10, 21.5), (15, 30.0)]

    def plain(epochs):
        for done, seconds in ends:
            if done >= epochs:
                return seconds
        return math.inf

    for epochs in (0.5, 3, 5, 5.2, 9.99, 10, 12, 15, 15.01, 16, math.inf):
        assert wall_at(epochs, ends) == plain(epochs), epochs


def test_levers_wall_to_target_column():
    """The levers table's time to the target: the chunk end past the IQM's epochs; "never" unless
    every seed got there; "not recorded" for a lever saved before chunk ends were kept."""
    from benchmarks import levers

    r = {"seeds": 3, "seeds_reaching": 3, "steps_to_target": [2500.0, 2000.0, 3000.0],
         "steps": [1000.0, 2000.0, 3000.0, 4000.0], "chunk_ends": [(2, 5.0), (4, 9.0)]}
    assert levers._wall_to_target(r) == "9"
    assert levers._wall_to_target({**r, "steps_to_target": [2000.0, 2000.0, 2000.0]}) == "5"
    assert levers._wall_to_target({**r, "seeds_reaching": 2}) == "never"
    assert levers._wall_to_target({k: v for k, v in r.items() if k != "chunk_ends"}) == "not recorded"


def test_levers_version_column_names_a_lever_of_an_older_env():
    """A lever trained at another env version than the env's current one is marked as such."""
    from benchmarks import levers

    assert levers._version_cell({"env_version": 5}, 5) == "5"
    assert levers._version_cell({"env_version": 4}, 5) == "4 (now 5: not rerun)"
    assert levers._version_cell({}, 1) == "1"  # a lever saved before versions were kept: version 1


def test_levers_table_is_built_by_two_processes_without_training_a_lever_twice(tmp_path, monkeypatch):
    """`--no-base` then `--add`: the second call trains only the base, keeps the first call's
    lever (same config, seeds and env version), and the merged table holds both, base first,
    with the verdict the disjoint-CI rule gives; a changed base config trains the lever again."""
    from benchmarks import common, levers

    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(levers, "RESULTS_DIR", tmp_path)
    trained = []
    real = levers.hjax.train

    def counting(config, **kwargs):
        trained.append(config.replay_k)
        return real(config, **kwargs)

    monkeypatch.setattr(levers.hjax, "train", counting)
    tiny = ["--env", "point_mass", "--seeds", "2", "--num-epochs", "2", "--name", "levers_two", "--config-overrides",
            "num_envs=4", "grad_steps_per_epoch=2", "hidden_sizes=8,", "batch_size=16", "buffer_episodes=8",
            "num_eval_envs=4"]
    assert levers.main([*tiny, "--no-base", "--levers", "replay_k=8"]) == 0
    first = json.loads((tmp_path / "levers_two.json").read_text())
    assert trained == [8.0] and [r[0] for r in first["rows"]] == ["replay_k=8"]
    assert first["rows"][0][-2:] == ["base not yet in the table", "1"]  # point_mass: env version 1
    assert levers.main([*tiny, "--add", "--levers", "replay_k=8"]) == 0
    merged = json.loads((tmp_path / "levers_two.json").read_text())
    assert trained == [8.0, 4.0]  # only the base was trained the second time
    assert [r[0] for r in merged["rows"]] == ["base", "replay_k=8"]
    assert merged["levers"]["replay_k=8"]["success"] == first["levers"]["replay_k=8"]["success"]
    want = levers.verdict(merged["levers"]["replay_k=8"], merged["levers"]["base"])
    assert merged["rows"][1][-2] == want
    trained_before = list(trained)
    assert levers.main([*tiny, "--add", "--target", "0.7", "--levers", "replay_k=8"]) == 0  # all kept: rewritten
    assert trained == trained_before
    again = json.loads((tmp_path / "levers_two.json").read_text())
    assert "env steps to 70%" in " ".join(again["headers"]) and again["levers"]["base"]["success"] == \
        merged["levers"]["base"]["success"]
    assert levers.main([*tiny[:-1], "num_eval_envs=2", "--add", "--levers", "replay_k=8"]) == 0
    assert trained == [8.0, 4.0, 4.0, 8.0]  # another base config: nothing kept
    assert levers.main([*tiny, "--levers", "replay_k=8"]) == 0  # without --add the table starts again
    assert trained[-2:] == [4.0, 8.0]


def test_a_kept_lever_missing_a_newer_config_field_counts_it_at_its_default():
    from benchmarks import levers

    config = hjax.Config(env="point_mass", num_envs=8, batch_size=64, grad_steps_per_epoch=10, buffer_episodes=100)
    identity = {"config": config.to_dict(), "seeds": 3, "env_version": 1}
    older = {**identity, "config": {k: v for k, v in config.to_dict().items() if k != "n_step"}}
    assert levers._same(older, identity)
    assert not levers._same(older, {**identity, "config": config.replace(n_step=3).to_dict()})
    assert not levers._same({**identity, "seeds": 2}, identity) and not levers._same(None, identity)


def test_levers_on_another_learner_take_the_algorithm_from_the_overrides(tmp_path, monkeypatch):
    from benchmarks import common, levers

    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(levers, "RESULTS_DIR", tmp_path)
    assert levers.main(["--env", "point_mass", "--seeds", "2", "--num-epochs", "1", "--levers", "updates_x2",
                        "--name", "levers_sac", "--config-overrides", "algorithm=sac", "num_envs=4",
                        "grad_steps_per_epoch=2", "hidden_sizes=8,", "batch_size=16", "buffer_episodes=8",
                        "num_eval_envs=4"]) == 0
    saved = json.loads((tmp_path / "levers_sac.json").read_text())["levers"]
    assert saved["base"]["config"]["algorithm"] == saved["updates_x2"]["config"]["algorithm"] == "sac"
    assert saved["updates_x2"]["config"]["grad_steps_per_epoch"] == 4
    with pytest.raises(ValueError, match="num_epochs is set by this script's arguments"):
        levers.main(["--env", "point_mass", "--num-epochs", "1", "--config-overrides", "num_epochs=3"])


def test_goal_height_split_rows_against_a_plain_count():
    """benchmarks.goal_height_split: per goal kind, the episodes, success and lifted fractions a
    plain loop counts."""
    from benchmarks import goal_height_split as ghs

    rng = np.random.default_rng(0)
    n = 200
    out = {"goal_z": np.where(rng.random(n) < 0.5, 0.0, rng.uniform(0.01, 0.45, n)),
           "object_z": rng.uniform(-0.001, 0.3, n), "success": rng.random(n) < 0.4}
    rows = ghs.split_rows(out)
    for row, want_air in zip(rows, (False, True, None)):
        picked = [i for i in range(n) if want_air is None or (out["goal_z"][i] > ghs.AIR_M) == want_air]
        assert row[1] == len(picked)
        assert row[2] == f"{sum(out['success'][i] for i in picked) / len(picked):.3f}"
        assert row[3] == f"{sum(out['object_z'][i] > ghs.LIFTED_M for i in picked) / len(picked):.3f}"


def test_goal_height_split_refuses_a_run_of_another_env(tmp_path):
    import hjax
    from benchmarks import goal_height_split as ghs

    run_dir = tmp_path / "pm"
    hjax.train(hjax.Config(env="point_mass", num_envs=4, num_epochs=1, grad_steps_per_epoch=2, batch_size=16,
                           buffer_episodes=8, num_eval_envs=4, hidden_sizes=(8,)),
               run_dir=run_dir, progress_bar=False, verbose=False)
    for play in (ghs.play, ghs.play_fetch):
        with pytest.raises(ValueError, match="env='point_mass'; allowed: a gripper_pick_and_place run"):
            play(str(run_dir), 4, 0)


def test_goal_height_split_reads_fetchs_episodes_as_its_own():
    """`--fetch`: Fetch's per-episode goals and final cube positions (hjax.fetch.play) become
    heights above the cube's rest, as a plain subtraction gives them."""
    from benchmarks import goal_height_split as ghs

    rng = np.random.default_rng(1)
    n, rest = 50, 0.425
    per = {"desired_goal": rng.uniform(0.3, 0.9, (n, 3)), "final_achieved_goal": rng.uniform(0.3, 0.9, (n, 3)),
           "success": (rng.random(n) < 0.5).astype(float)}
    out = ghs.from_fetch(per, rest)
    for i in range(n):
        assert out["goal_z"][i] == per["desired_goal"][i][2] - rest
        assert out["object_z"][i] == per["final_achieved_goal"][i][2] - rest
        assert out["success"][i] == (per["success"][i] == 1.0)
