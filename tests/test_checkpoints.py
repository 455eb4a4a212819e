"""Checkpoint formats and damaged checkpoints (hjax.runs): every checkpoint and config.json names
its format; the previous format (a fixture written by hjax at commit bb67416) keeps loading and
resuming; an unknown format is refused naming both versions; a damaged checkpoint is named in one
line and `resume` falls back to the newest readable one, or to the epoch a user names."""

import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

import hjax
from hjax import cli, envs, loading, runs

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "run_format1"  # point_mass, 4 epochs, checkpoints 2 and 4


@pytest.fixture
def old_run(tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    return run


def data_files(run: Path, epoch: int) -> list[Path]:
    state = run / "checkpoints" / str(epoch) / "state"
    return [p for p in state.rglob("*") if p.is_file() and p.parent.name == "d"]


def truncate(run, epoch):
    for p in data_files(run, epoch):
        p.write_bytes(p.read_bytes()[:10])


def delete(run, epoch):
    for p in data_files(run, epoch):
        p.unlink()


def garbage(run, epoch):
    rng = np.random.default_rng(0)
    for p in data_files(run, epoch) + [run / "checkpoints" / str(epoch) / "state" / "manifest.ocdbt"]:
        p.write_bytes(rng.bytes(max(p.stat().st_size, 64)))


def bad_meta(run, epoch):
    (run / "checkpoints" / str(epoch) / "meta" / "metadata").write_text("{not json")


DAMAGE = {"truncated": truncate, "deleted": delete, "garbage": garbage, "meta": bad_meta}


def test_the_previous_format_loads_and_acts_as_it_did():
    """The fixture's policy gives the actions hjax gave when it wrote it (expected_actions.json)."""
    expected = json.loads((FIXTURE / "expected_actions.json").read_text())
    run = loading.load_run(FIXTURE)
    assert run.epoch == 4 and run.config.env == "point_mass"
    env = envs.make("point_mass")
    obs = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(expected["reset_key"]), expected["num_obs"])).obs
    actions = np.asarray(hjax.load_policy(FIXTURE)(obs))
    np.testing.assert_allclose(actions, np.array(expected["actions"]), rtol=1e-6, atol=1e-6)


def test_the_previous_format_resumes_and_is_written_in_the_current_one(old_run):
    assert "checkpoint_format" not in json.loads((old_run / "config.json").read_text())  # format 1
    config, _ = runs.load_config(old_run)
    result = hjax.train(config.replace(num_epochs=6), resume=old_run, progress_bar=False, verbose=False)
    assert int(result.metrics["env_steps"][-1]) == 6 * config.env_steps_per_epoch
    np.testing.assert_array_equal(result.metrics["env_steps"][:4], runs.read_metrics(FIXTURE)["env_steps"])
    assert json.loads((old_run / "config.json").read_text())["checkpoint_format"] == runs.CHECKPOINT_FORMAT
    meta = json.loads((old_run / "checkpoints" / "6" / "meta" / "metadata").read_text())
    assert meta["format"] == runs.CHECKPOINT_FORMAT and meta["hjax_version"] == hjax.__version__


def test_an_unknown_format_is_refused_naming_both_versions(old_run):
    meta_path = old_run / "checkpoints" / "4" / "meta" / "metadata"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(runs.CheckpointError) as e:
        loading.load_run(old_run, epoch=4)
    assert "format 99" in str(e.value) and f"writes format {runs.CHECKPOINT_FORMAT}" in str(e.value)
    assert "upgrade hjax" in str(e.value)
    payload = json.loads((old_run / "config.json").read_text())
    (old_run / "config.json").write_text(json.dumps({**payload, "checkpoint_format": 7}))
    with pytest.raises(runs.CheckpointError, match=r"checkpoint format 7; this hjax .* reads formats 1, 2"):
        runs.load_config(old_run)


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_checkpoint_is_named_in_one_line(old_run, damage, capsys):
    DAMAGE[damage](old_run, 4)
    with pytest.raises(runs.UnreadableCheckpoint) as e:
        loading.load_run(old_run, epoch=4)  # the epoch named: no fallback
    message = str(e.value)
    assert "\n" not in message and len(message.replace(str(old_run), "RUN")) < 300, message
    assert message.startswith(f"checkpoint {old_run / 'checkpoints' / '4'} cannot be read: ")
    assert str(old_run / "checkpoints" / "4" / ("meta" if damage == "meta" else "state")) in message
    # the newest readable one otherwise, saying which and why
    run = loading.load_run(old_run)
    assert run.epoch == 2
    err = capsys.readouterr().err
    assert "Event loop is closed" not in err and "Traceback" not in err
    assert err.count("cannot be read") == 1 and "using checkpoint" in err and "epoch 2" in err


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_resume_falls_back_past_a_damaged_newest_checkpoint(old_run, damage, capsys):
    DAMAGE[damage](old_run, 4)
    damaged_bytes = {p.name: p.read_bytes() for p in data_files(old_run, 4)}
    config, _ = runs.load_config(old_run)
    result = hjax.train(config.replace(num_epochs=6), resume=old_run, progress_bar=False, verbose=False)
    out = capsys.readouterr()
    assert "cannot be read" in out.err and "epoch 2" in out.err
    assert "moved the later checkpoint" in out.out
    assert int(result.metrics["env_steps"][-1]) == 6 * config.env_steps_per_epoch
    assert runs.Checkpointer(old_run).epochs() == [2, 4, 6]  # 4 written anew by the resumed run
    set_aside = old_run / runs.SET_ASIDE_DIR / "4"
    assert {p.name: p.read_bytes() for p in set_aside.rglob("*") if p.parent.name == "d"} == damaged_bytes
    assert len(runs.read_metrics(old_run)["env_steps"]) == 6


def test_resume_epoch_continues_from_an_older_intact_checkpoint(old_run):
    config, _ = runs.load_config(old_run)
    result = hjax.train(config, resume=old_run, resume_epoch=2, progress_bar=False, verbose=False)
    # from epoch 2 to the end again: the same numbers as the original run (the fixture's seed)
    assert len(result.metrics["env_steps"]) == 4
    np.testing.assert_array_equal(result.metrics["env_steps"], runs.read_metrics(FIXTURE)["env_steps"])
    assert (old_run / runs.SET_ASIDE_DIR / "4" / "meta").is_dir()  # the later checkpoint kept, aside
    with pytest.raises(runs.CheckpointError, match=r"no checkpoint at epoch 3; available: \[2, 4\]"):
        hjax.train(config, resume=old_run, resume_epoch=3, progress_bar=False, verbose=False)
    with pytest.raises(ValueError, match="invalid resume_epoch=2"):
        hjax.train(config, resume_epoch=2, progress_bar=False)


def test_cli_resume_epoch_and_a_damaged_checkpoint(old_run, capsys):
    truncate(old_run, 4)
    assert cli.main(["eval", str(old_run), "--episodes", "4", "--epoch", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checkpoints/4 cannot be read" in err
    assert cli.main(["eval", str(old_run), "--episodes", "4"]) == 0  # falls back to 2
    assert "(epoch 2)" in capsys.readouterr().out
    assert cli.main(["train", "--resume-epoch", "2"]) == 2
    assert "--resume-epoch=2 without --resume" in capsys.readouterr().err
    assert cli.main(["train", "--resume", str(old_run), "--resume-epoch", "2", "--no-progress"]) == 0
    assert runs.Checkpointer(old_run).epochs() == [2, 4]


def test_a_config_that_does_not_fit_is_not_mistaken_for_damage(old_run):
    """A shape mismatch says what differs and does not fall back to older checkpoints."""
    payload = json.loads((old_run / "config.json").read_text())
    payload["config"]["hidden_sizes"] = [5]
    (old_run / "config.json").write_text(json.dumps(payload))
    with pytest.raises(runs.CheckpointError) as e:
        loading.load_run(old_run)
    assert not isinstance(e.value, runs.UnreadableCheckpoint)
    assert "this config expects" in str(e.value)


def test_a_run_of_another_env_version_is_refused_before_anything_is_built(tmp_path, capsys):
    """config.json records the env's VERSION; a gripper run from before the Fetch frame (version
    1, or no field: hjax < 0.3) is refused by load_run, evaluate, `hjax eval` and resume with a
    message naming both versions and every change between them (a hjax 0.4 run: only 0.5's);
    point_mass (no VERSION) reads as version 1 and loads."""
    run = tmp_path / "push"
    run.mkdir()
    cfg = hjax.Config(env="gripper_push", num_envs=8, hidden_sizes=(16,))
    runs.save_config(run, cfg, None)
    payload = json.loads((run / "config.json").read_text())
    assert payload["env_version"] == envs.gripper.GripperPush.VERSION == 4
    assert runs.env_version("point_mass") == 1 and runs.env_version("no_such_env") == 1
    payload.pop("env_version")  # as hjax 0.2 wrote it
    payload["hjax_version"] = "0.2.0"
    (run / "config.json").write_text(json.dumps(payload))
    message = (r"was trained on gripper_push version 1 \(hjax 0\.2\.0\); this hjax \(.*\) has version 4: "
               r"hjax 0\.3 moved the gripper tasks' observations and goals into Fetch's world frame.*; "
               r"hjax 0\.4 gave the gripper tasks Fetch's table edges.*; hjax 0\.5 drives the gripper")
    with pytest.raises(runs.CheckpointError, match=message):
        loading.load_run(run)
    with pytest.raises(runs.CheckpointError, match=message):
        hjax.evaluate(run)
    with pytest.raises(runs.CheckpointError, match=message):
        hjax.train(cfg, resume=run, progress_bar=False, verbose=False)
    assert cli.main(["eval", str(run)]) == 2
    assert "version 1" in capsys.readouterr().err
    payload.update(env_version=3, hjax_version="0.4.0")  # a run of hjax 0.4: only the 0.5 change applies
    (run / "config.json").write_text(json.dumps(payload))
    with pytest.raises(runs.CheckpointError, match=r"version 3 \(hjax 0\.4\.0\).* has version 4: hjax 0\.5 drives") as info:
        loading.load_run(run)
    assert "0.3 moved" not in str(info.value) and "0.4 gave" not in str(info.value)


def test_a_pick_and_place_run_from_before_fetchs_finger_drive_is_refused(tmp_path):
    """Pick-and-place alone moved to version 5 (hjax 0.6, Fetch's finger drive) and 6 (hjax 0.7,
    fingertips on the table): its version-4 runs are refused naming both changes, its version-5
    runs naming the last only; push's version-4 runs still load their config."""
    assert runs.env_version("gripper_pick_and_place") == 6 and runs.env_version("gripper_push") == 4
    run = tmp_path / "pick"
    run.mkdir()
    cfg = hjax.Config(env="gripper_pick_and_place", num_envs=8, hidden_sizes=(16,))
    runs.save_config(run, cfg, None)
    payload = json.loads((run / "config.json").read_text())
    payload.update(env_version=4, hjax_version="0.5.0")
    (run / "config.json").write_text(json.dumps(payload))
    with pytest.raises(runs.CheckpointError, match=r"version 4 \(hjax 0\.5\.0\).* has version 6: hjax 0\.6 drives "
                                                   r"pick-and-place's fingers as Fetch's") as info:
        loading.load_run(run)
    assert "0.5 drives the gripper" not in str(info.value) and "0.7 lets" in str(info.value)
    payload.update(env_version=5, hjax_version="0.6.0")
    (run / "config.json").write_text(json.dumps(payload))
    with pytest.raises(runs.CheckpointError, match=r"version 5 \(hjax 0\.6\.0\).* has version 6: hjax 0\.7 lets "
                                                   r"pick-and-place's fingertips meet the table") as info:
        loading.load_run(run)
    assert "0.6 drives" not in str(info.value)
    payload.update(env_version=4, hjax_version="0.5.0")
    (run / "config.json").write_text(json.dumps(payload))
    push = hjax.Config(env="gripper_push", num_envs=8, hidden_sizes=(16,))
    runs.check_env_version(run, push)  # the same saved version 4 is push's current one: no error
