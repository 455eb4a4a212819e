"""Run directories are never lost by accident (hjax.rundir): every way into a used directory
refuses (before anything compiles) or resumes, `overwrite` deletes the old run whole, and a
second writer is refused while the first holds the lock."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import hjax
from hjax import cli, loading, loop, rundir, runs

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(num_envs=4, num_epochs=4, chunk_epochs=2, grad_steps_per_epoch=2, hidden_sizes=(8,),
            batch_size=16, buffer_episodes=8, num_eval_envs=4)
TINY_ARGS = ["--num-envs", "4", "--grad-steps-per-epoch", "2", "--batch-size", "16", "--buffer-episodes", "8",
             "--num-eval-envs", "4", "--chunk-epochs", "2", "--no-progress"]


def tiny(**kw):
    return hjax.Config(**{**TINY, **kw})


def snapshot(run_dir: Path) -> dict[str, bytes]:
    """Every file of a run directory with its bytes (the lock file aside: it holds no data)."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.name != rundir.LOCK_FILE}


@pytest.fixture(scope="module")
def used(tmp_path_factory) -> Path:
    """A finished tiny run with checkpoints at epochs 2 and 4."""
    run = tmp_path_factory.mktemp("used") / "run"
    hjax.train(tiny(), run_dir=run, progress_bar=False, verbose=False)
    return run


@pytest.fixture
def no_compile(monkeypatch):
    """Building or compiling a program fails the test: a refusal must come before both."""
    def refuse(*args, **kwargs):
        raise AssertionError("a program was built although the run directory was refused")
    monkeypatch.setattr(loop, "make_trainer", refuse)
    monkeypatch.setattr(loop, "_compiled", refuse)


@pytest.mark.parametrize("change", [{}, {"hidden_sizes": (32,)}, {"num_epochs": 2}, {"seed": 5}],
                         ids=["same-config", "other-net", "shorter", "other-seed"])
def test_python_train_into_a_used_directory_refuses_and_changes_nothing(used, change, no_compile):
    before = snapshot(used)
    with pytest.raises(rundir.RunInUseError) as e:
        hjax.train(tiny(**change), run_dir=used, progress_bar=False, verbose=False)
    message = str(e.value)
    assert str(used) in message and "resume=" in message and "overwrite=True" in message
    assert "--resume" in message and "--overwrite" in message
    assert snapshot(used) == before


@pytest.mark.parametrize("leftover", ["config.json", "metrics.csv", "checkpoints", "curves.png"])
def test_a_crashed_runs_leftovers_are_a_run_too(tmp_path, leftover, no_compile):
    run = tmp_path / "crashed"
    run.mkdir()
    (run / rundir.LOCK_FILE).write_text("")  # a lock file left by a killed process holds no lock
    target = run / leftover
    target.mkdir() if leftover == "checkpoints" else target.write_text("x")
    with pytest.raises(rundir.RunInUseError, match="already holds a run"):
        hjax.train(tiny(), run_dir=run, progress_bar=False, verbose=False)
    assert target.exists()


def test_an_empty_or_unrelated_directory_is_free(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    assert rundir.run_files(tmp_path) == []
    rundir.check_free(tmp_path, resume=False, overwrite=False)  # no error
    rundir.check_free(tmp_path / "missing", resume=False, overwrite=False)


def test_crashed_run_without_checkpoint_resumes_from_scratch(tmp_path):
    run = tmp_path / "run"
    cfg = tiny(num_epochs=2)
    runs.save_config(run if run.mkdir() is None else run, hjax.loop.resolve(cfg, None), None)  # crashed after config.json
    result = hjax.train(cfg, resume=run, progress_bar=False, verbose=False)
    assert int(result.metrics["env_steps"][-1]) == 2 * cfg.env_steps_per_epoch
    assert loading.load_run(run).epoch == 2


def test_overwrite_deletes_the_old_run_whole(tmp_path):
    run = tmp_path / "run"
    hjax.train(tiny(), run_dir=run, progress_bar=False, verbose=False)
    (run / "notes.txt").write_text("not a run file")
    assert runs.Checkpointer(run).epochs() == [2, 4]
    new = tiny(num_epochs=2, hidden_sizes=(32,))
    hjax.train(new, run_dir=run, overwrite=True, progress_bar=False, verbose=False)
    assert runs.Checkpointer(run).epochs() == [2]  # the old run's checkpoint 4 is gone
    assert runs.load_config(run)[0].hidden_sizes == (32,)
    assert len(runs.read_metrics(run)["env_steps"]) == 2
    assert loading.load_run(run).epoch == 2  # eval of the directory now loads the new run
    assert (run / "notes.txt").read_text() == "not a run file"  # files a run does not write stay


def test_overwrite_with_resume_or_without_run_dir_is_an_error(used, no_compile):
    with pytest.raises(ValueError, match="overwrite"):
        hjax.train(tiny(), resume=used, overwrite=True, progress_bar=False)
    with pytest.raises(ValueError, match="overwrite=True without run_dir"):
        hjax.train(tiny(), overwrite=True, progress_bar=False)
    with pytest.raises(ValueError, match="invalid overwrite='yes'"):
        hjax.train(tiny(), run_dir=used, overwrite="yes", progress_bar=False)


HOLD = """
import sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1]); lock.acquire(timeout=0)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path, used, no_compile):
    run = tmp_path / "busy"
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run / rundir.LOCK_FILE), "60"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(rundir.RunInUseError, match="another process is writing to"):
            hjax.train(tiny(), run_dir=run, progress_bar=False, verbose=False)
        (run / "config.json").write_text((used / "config.json").read_text())
        with pytest.raises(rundir.RunInUseError, match="another process is writing to"):
            hjax.train(tiny(), resume=run, progress_bar=False, verbose=False)  # resuming too
    finally:
        holder.kill()
        holder.wait()
    assert rundir.claim(run, resume=True).release() is None  # free again once the holder is gone


def test_the_lock_is_released_after_a_run_and_after_an_error(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(hjax.CheckpointError):
        hjax.train(tiny(), resume=run, progress_bar=False)  # no run there: refused, lock released
    assert not run.exists()  # and no empty directory left behind
    hjax.train(tiny(num_epochs=2), run_dir=run, progress_bar=False, verbose=False)
    claim = rundir.claim(run, resume=True)  # would time out if the run still held it
    claim.release()


def test_cli_refuses_a_used_directory_without_importing_jax(used):
    code = ("import sys\nfrom hjax import cli\n"
            f"status = cli.main(['train', '--num-epochs', '2', '--run-dir', {str(used)!r}])\n"
            "assert 'jax' not in sys.modules, 'imported JAX before refusing'\n"
            "sys.exit(status)")
    before = snapshot(used)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hjax: error:"), out.stderr
    assert "--resume" in lines[0] and "--overwrite" in lines[0] and str(used) in lines[0]
    assert snapshot(used) == before


def test_cli_overwrite_and_resume(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", *TINY_ARGS, "--hidden-sizes", "8", "--num-epochs", "2", "--run-dir", str(run)]) == 0
    assert cli.main(["train", *TINY_ARGS, "--hidden-sizes", "16", "--num-epochs", "2", "--run-dir", str(run)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert cli.main(["train", *TINY_ARGS, "--hidden-sizes", "16", "--num-epochs", "2", "--run-dir", str(run),
                     "--overwrite"]) == 0
    assert json.loads((run / "config.json").read_text())["config"]["hidden_sizes"] == [16]
    assert cli.main(["eval", str(run), "--episodes", "4"]) == 0  # the new run's checkpoint loads
    assert cli.main(["train", "--resume", str(run), "--overwrite"]) == 2
    assert "--overwrite with --resume" in capsys.readouterr().err
    assert cli.main(["train", "--resume", str(run), "--num-epochs", "4", "--no-progress"]) == 0
    assert runs.Checkpointer(run).epochs() == [2, 4]
