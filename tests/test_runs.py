"""Run directories, checkpoints, resume, policy export, the CLI and the quickstart example."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import hjax
from hjax import cli, loading, runs
from hjax.config import field_docs

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(num_envs=4, num_epochs=6, chunk_epochs=2, grad_steps_per_epoch=4, hidden_sizes=(16, 16),
            batch_size=32, buffer_episodes=16, num_eval_envs=4)
TINY_ARGS = ["--num-envs", "4", "--grad-steps-per-epoch", "4", "--hidden-sizes", "16", "16",
             "--batch-size", "32", "--buffer-episodes", "16", "--num-eval-envs", "4", "--chunk-epochs", "2"]


def tiny(**kw):
    return hjax.Config(**{**TINY, **kw})


def test_run_dir_contents(tmp_path):
    cfg = tiny()
    result = hjax.train(cfg, num_seeds=2, run_dir=tmp_path, tensorboard=True, progress_bar=False)
    saved = json.loads((tmp_path / "config.json").read_text())
    resolved = cfg.replace(data_shards=1)  # the buffer layout is fixed for the run (one device here)
    assert saved["config"] == resolved.to_dict() and saved["num_seeds"] == 2
    assert runs.load_config(tmp_path) == (resolved, 2)
    assert result.config == resolved
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header[:4] == ["epoch", "seed", "env_steps", "grad_steps"]
    assert set(hjax.METRIC_NAMES) <= set(header)
    assert len(rows) == 1 + cfg.num_epochs * 2  # one row per epoch and seed
    back = runs.read_metrics(tmp_path)
    for name in ("eval/success_rate", "loss/critic", "env_steps"):
        np.testing.assert_allclose(back[name], result.metrics[name], rtol=1e-6)
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()) == [2, 4, 6]
    assert any((tmp_path / "tensorboard").iterdir())
    assert (tmp_path / "curves.png").stat().st_size > 10_000


@pytest.mark.parametrize("algorithm,num_seeds", [("td3", None), ("td3", 2), ("ddpg", 2), ("sac", None)])
def test_resume_equals_uninterrupted_run(tmp_path, capsys, algorithm, num_seeds):
    cfg = tiny(algorithm=algorithm)
    straight = hjax.train(cfg, num_seeds=num_seeds, progress_bar=False)
    hjax.train(cfg.replace(num_epochs=2), num_seeds=num_seeds, run_dir=tmp_path, save_buffer=True,
               progress_bar=False)
    resumed = hjax.train(cfg, num_seeds=num_seeds, resume=tmp_path, save_buffer=True, progress_bar=False)
    assert "has no replay buffer" not in capsys.readouterr().err
    for name in straight.metrics:
        np.testing.assert_array_equal(resumed.metrics[name], straight.metrics[name], err_msg=name)
    jax.tree.map(np.testing.assert_array_equal, resumed.state.learner, straight.state.learner)
    jax.tree.map(np.testing.assert_array_equal, resumed.state.buffer, straight.state.buffer)
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 6 * (num_seeds or 1)
    assert ("policy/entropy" in rows[0].split(",")) == (algorithm == "sac")  # SAC's own metrics are written


def test_resume_without_buffer_continues_from_checkpoint(tmp_path, capsys):
    hjax.train(tiny(num_epochs=2), run_dir=tmp_path, progress_bar=False)
    capsys.readouterr()
    resumed = hjax.train(tiny(), resume=tmp_path, progress_bar=False)
    err = capsys.readouterr().err  # said at resume time: this will not match an uninterrupted run
    assert f"resuming {tmp_path} from epoch 2, whose checkpoint has no replay buffer" in err and "--save-buffer" in err
    np.testing.assert_array_equal(resumed.metrics["env_steps"], np.arange(1, 7) * 4 * 50)
    assert int(resumed.state.epoch) == 6
    assert np.asarray(resumed.state.buffer.size).tolist() == [16]  # refilled from empty after the resume


def test_checkpoint_from_before_the_learner_rename_still_loads(tmp_path):
    """Checkpoints saved when TrainerState's learner field was called `td3` restore into today's
    state: the old layout is written here by orbax from a current run's state."""
    import orbax.checkpoint as ocp
    from flax import serialization

    cfg = tiny(num_epochs=2)
    hjax.train(cfg, run_dir=tmp_path / "new", progress_bar=False)
    current = loading.load_run(tmp_path / "new")
    old_dir = tmp_path / "old"
    old_dir.mkdir()
    for name in ("config.json", "metrics.csv"):
        (old_dir / name).write_text((tmp_path / "new" / name).read_text())
    tree = serialization.to_state_dict(jax.device_get(current.state.replace(buffer=None)))
    tree = {("td3" if k == "learner" else k): v for k, v in tree.items()}
    meta = {"epoch": 2, "has_buffer": False, "history": {k: np.asarray(v).tolist() for k, v in current.history.items()}}
    with ocp.CheckpointManager((old_dir / runs.CHECKPOINT_DIR).absolute()) as manager:
        manager.save(2, args=ocp.args.Composite(state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta)))
        manager.wait_until_finished()
    loaded = loading.load_run(old_dir)
    assert loaded.epoch == 2
    for a, b in zip(jax.tree.leaves(loaded.state.replace(buffer=None)), jax.tree.leaves(current.state.replace(buffer=None))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # and training resumes from it (a longer run continues where the old checkpoint stopped)
    result = hjax.train(cfg.replace(num_epochs=4), resume=old_dir, progress_bar=False)
    assert int(result.metrics["env_steps"][-1]) == 4 * cfg.env_steps_per_epoch


def test_resume_accepts_ddpg_with_policy_delay_one(tmp_path):
    """policy_delay is unread by ddpg and saved configs drop it; the resume check ignores it too."""
    cfg = tiny(algorithm="ddpg", policy_delay=1)
    hjax.train(cfg.replace(num_epochs=2), run_dir=tmp_path, progress_bar=False)
    resumed = hjax.train(cfg.replace(num_epochs=4), resume=tmp_path, progress_bar=False)
    assert int(resumed.metrics["env_steps"][-1]) == 4 * cfg.env_steps_per_epoch
    with pytest.raises(runs.CheckpointError, match=r"hidden_sizes: \[16, 16\] -> \[32\]"):
        hjax.train(cfg.replace(hidden_sizes=(32,)), resume=tmp_path)


def test_resume_rejects_a_different_config(tmp_path):
    hjax.train(tiny(num_epochs=2), run_dir=tmp_path, progress_bar=False)
    with pytest.raises(runs.CheckpointError, match=r"hidden_sizes: \[16, 16\] -> \[32\]"):
        hjax.train(tiny(hidden_sizes=(32,)), resume=tmp_path)
    with pytest.raises(runs.CheckpointError, match="num_seeds=None, not 2"):
        hjax.train(tiny(), num_seeds=2, resume=tmp_path)


def test_load_policy_matches_result_policy(tmp_path):
    result = hjax.train(tiny(), num_seeds=2, run_dir=tmp_path, progress_bar=False)
    env = result.config.make_env()
    obs = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 3)).obs
    for i in (0, 1):
        np.testing.assert_allclose(hjax.load_policy(tmp_path, seed_index=i)(obs), result.policy(i)(obs), rtol=1e-6)
    with pytest.raises(ValueError, match="seed_index=2"):
        hjax.load_policy(tmp_path, seed_index=2)
    with pytest.raises(runs.CheckpointError, match="no checkpoint at epoch 3"):
        hjax.load_policy(tmp_path, epoch=3)


# ---- CLI -------------------------------------------------------------------------------------

def test_cli_help_lists_every_config_field_with_its_doc(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    docs = field_docs()
    for name in ("num_envs", "her_strategy", "replay_k", "gamma", "hidden_sizes", "env_kwargs"):
        assert "--" + name.replace("_", "-") in out
        assert docs[name][:30] in out, name
    assert len(docs) == len(hjax.Config.__dataclass_fields__)


@pytest.mark.parametrize("argv,message", [
    (["train", "--gamma", "2"], "invalid gamma=2.0"),
    (["train", "--her-strategy", "later"], "invalid choice: 'later'"),
    (["train", "--num-envs", "x"], "invalid int value: 'x'"),
    (["train", "--env-kwargs", "distance_threshold=-1"], "distance_threshold=-1"),
    (["train", "--env-kwargs", "oops"], "expected KEY=VALUE"),
    (["eval", "/nonexistent/run"], "not a hjax run directory"),
    (["eval", "/nonexistent/run", "--episodes", "0"], "--episodes=0"),
    (["plot", "/nonexistent/run"], "cannot read /nonexistent/run"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_cli_errors_are_messages_not_tracebacks(argv, message, capsys):
    try:
        status = cli.main(argv)
    except SystemExit as e:  # argparse's own errors
        status = e.code
    err = capsys.readouterr().err
    assert status == 2
    assert message in err and "Traceback" not in err


def test_cli_train_eval_plot(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", *TINY_ARGS, "--num-epochs", "2", "--run-dir", str(run), "--no-progress"]) == 0
    assert cli.main(["eval", str(run), "--episodes", "10"]) == 0
    assert "10 deterministic episodes: success rate" in capsys.readouterr().out
    assert cli.main(["train", "--resume", str(run), "--num-epochs", "4", "--no-progress"]) == 0
    assert len(runs.read_metrics(run)["env_steps"]) == 4
    assert cli.main(["plot", str(run), str(run), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 10_000
    assert cli.main(["eval", str(run), "--episodes", "2", "--render", str(tmp_path / "ep.png")]) == 0
    assert (tmp_path / "ep.png").stat().st_size > 5_000


def test_train_saves_a_watchable_episode(tmp_path):
    hjax.train(tiny(num_epochs=2), run_dir=tmp_path, save_episode=True, progress_bar=False)
    assert (tmp_path / "episode.png").stat().st_size > 5_000


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_at_chunk_end_then_resume(tmp_path, signum):
    """SIGINT (Ctrl-C) or SIGTERM mid-run: the run stops at the end of the chunk with a fresh
    checkpoint (exit 128 + signal, no traceback); --resume finishes the run."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "hjax.cli", "train", *TINY_ARGS, "--num-epochs", "100000",
           "--run-dir", str(run), "--no-progress", "--checkpoint-every", "1000000"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not (run / "metrics.csv").exists():
        time.sleep(0.1)
    time.sleep(1.0)  # well into training
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, out
    assert "checkpoint written" in out and "Traceback" not in out
    epoch = loading.load_run(run).epoch  # the stop checkpoint, although checkpoint_every is huge
    assert epoch >= 2 and epoch % 2 == 0
    assert len(runs.read_metrics(run)["env_steps"]) == epoch
    assert cli.main(["train", "--resume", str(run), "--num-epochs", str(epoch + 2), "--no-progress"]) == 0
    assert loading.load_run(run).epoch == epoch + 2


def test_quickstart_example_runs(tmp_path):
    out = subprocess.run([sys.executable, "examples/quickstart.py", "--epochs", "1", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "loaded policy: success rate" in out.stdout and "hjax.evaluate: success rate" in out.stdout
    assert "compiled" in out.stdout or "compiled" in out.stderr
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["curves.png"]  # one plot
    config = json.loads((tmp_path / "config.json").read_text())["config"]
    assert config == {**hjax.Config.preset("point_mass", num_epochs=1).to_dict(), "data_shards": 1}  # the demo's preset


def test_load_config_of_older_versions(tmp_path):
    """A config.json from before `algorithm` existed loads as td3; a field the saved learner does
    not read (saved at that version's default, which may since have changed) does not block it."""
    current = tiny().to_dict()
    before_learners = {k: v for k, v in current.items()
                       if k not in ("algorithm", "init_alpha", "alpha_lr", "target_entropy")}
    (tmp_path / "config.json").write_text(json.dumps({"config": before_learners, "num_seeds": None}))
    assert runs.load_config(tmp_path) == (tiny(), None)
    stale_default = {**current, "init_alpha": current["init_alpha"] * 10}  # unread by td3
    (tmp_path / "config.json").write_text(json.dumps({"config": stale_default, "num_seeds": 3}))
    assert runs.load_config(tmp_path) == (tiny(), 3)
    sac = {**current, "algorithm": "sac", "policy_delay": 1, "init_alpha": 0.5}  # policy_delay: td3 only
    (tmp_path / "config.json").write_text(json.dumps({"config": sac, "num_seeds": None}))
    assert runs.load_config(tmp_path) == (tiny(algorithm="sac", init_alpha=0.5), None)
