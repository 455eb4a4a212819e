"""The command line (hjax.cli) and the one-answer API (issue 27, items 4 and 5): whole option
names only, choices for every enumerated field, help examples that parse, errors as one line plus
a hint, a user's env by import path or entry point, env steps per seed, `--help` without JAX,
and `plot`/`summary`/`diagnose`/`load_policy`/`evaluate` taking a Result or a run directory."""

import dataclasses
import pydoc
import shlex
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import hjax
from hjax import cli, envs, loading, runs
from hjax.config import ALGORITHMS, HER_STRATEGIES, field_docs

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "run_format1"
TINY_ARGS = ["--num-envs", "4", "--grad-steps-per-epoch", "2", "--hidden-sizes", "8", "--batch-size", "16",
             "--buffer-episodes", "8", "--num-eval-envs", "4", "--chunk-epochs", "2", "--no-progress"]


def run_cli(argv):
    try:
        return cli.main(argv)
    except SystemExit as e:
        return e.code


# ---- parsing ------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", list(cli.EXAMPLES))
def test_every_help_example_parses(command):
    parser = cli.build_parser()
    for line in cli.EXAMPLES[command]:
        argv = shlex.split(line)
        assert argv[0] == "hjax"
        args = parser.parse_args(argv[1:])
        if args.command == "train":
            names = {f.name for f in dataclasses.fields(hjax.Config)}
            assert set(vars(args)) & names or args.resume or args.preset, line
    help_text = parser.format_help() if command is None else \
        parser._subparsers._group_actions[0].choices[command].format_help()
    for line in cli.EXAMPLES[command]:
        assert line in help_text  # the examples shown are the examples tested


def test_env_kwargs_help_example_parses():
    """The --env-kwargs help shows a command-line example; it must be accepted as shown."""
    doc = field_docs()["env_kwargs"]
    example = doc[doc.index("--env-kwargs"):].split("`")[0]
    args = cli.build_parser().parse_args(["train", *shlex.split(example)])
    config = cli.config_from_args(args)
    assert dict(config.env_kwargs) == {"distance_threshold": 0.1, "episode_length": 100}


def test_abbreviations_are_refused(capsys):
    assert run_cli(["train", "--num-epoch", "5"]) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --num-epoch 5" in err


def test_enumerated_fields_list_their_choices(capsys):
    assert run_cli(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "{" + ",".join(ALGORITHMS) + "}" in out and "{" + ",".join(HER_STRATEGIES) + "}" in out
    assert "{" + ",".join(envs.NAMES) + "}|MODULE:CLASS" in out
    assert run_cli(["train", "--algorithm", "ppo"]) == 2
    assert "invalid choice: 'ppo' (choose from td3, ddpg, sac)" in capsys.readouterr().err.replace("'td3'", "td3") \
        .replace("'ddpg'", "ddpg").replace("'sac'", "sac")


@pytest.mark.parametrize("argv", [["train", "--num-epoch", "5"], ["train", "--algorithm", "ppo"],
                                  ["train", "--num-envs", "x"], ["frobnicate"], ["eval"]])
def test_argument_errors_are_one_line_and_a_hint(argv, capsys):
    assert run_cli(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("hjax: error: ") and lines[1].startswith("hint: `hjax")
    assert "usage:" not in "\n".join(lines)
    if argv[0] in ("train", "eval"):
        assert f"hjax {argv[0]} --help" in lines[1]


def test_help_does_not_import_jax():
    code = ("import sys\nfrom hjax import cli\n"
            "try:\n    cli.main(['train', '--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
            "assert 'jax' not in sys.modules and 'brax' not in sys.modules, 'help imported JAX'\n"
            "import hjax\nhjax.Config\nassert 'jax' not in sys.modules, 'hjax.Config imported JAX'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr


def test_config_docstring_lists_every_field():
    text = pydoc.render_doc(hjax.Config, renderer=pydoc.plaintext)
    docs = field_docs()
    assert set(docs) == {f.name for f in dataclasses.fields(hjax.Config)}
    for name, doc in docs.items():
        assert f"{name}: " in text
        assert " ".join(doc.split()[:6]) in " ".join(text.split()), name


# ---- a user's env -------------------------------------------------------------------------------

USER_ENV = '''
from hjax.envs.point_mass import PointMass


class MyGoalEnv(PointMass):
    """A user's task: point_mass with a wider goal threshold by default."""

    def __init__(self, *, distance_threshold: float = 0.3, episode_length: int = 20):
        super().__init__(distance_threshold=distance_threshold, episode_length=episode_length)
'''


@pytest.fixture
def user_package(tmp_path, monkeypatch):
    (tmp_path / "mytasks.py").write_text(USER_ENV)
    dist = tmp_path / "mytasks-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mytasks\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[hjax.envs]\nmy_task = mytasks:MyGoalEnv\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("mytasks", None)


def test_a_users_env_by_import_path_and_entry_point(user_package):
    by_path = hjax.Config(env="mytasks:MyGoalEnv", env_kwargs={"episode_length": 10})
    assert type(by_path.make_env()).__name__ == "MyGoalEnv" and by_path.episode_length == 10
    by_entry = hjax.Config(env="my_task")
    assert type(by_entry.make_env()).__name__ == "MyGoalEnv"
    with pytest.raises(ValueError, match=r"invalid env='mytasks:Nope': module 'mytasks' has no attribute 'Nope'"):
        hjax.Config(env="mytasks:Nope")
    with pytest.raises(ValueError, match=r"invalid env='nosuchpkg.tasks:X': cannot import module 'nosuchpkg.tasks'"):
        hjax.Config(env="nosuchpkg.tasks:X")
    with pytest.raises(ValueError, match=r"invalid env='not_an_env'; allowed: one of point_mass.*my_task.*import path"):
        hjax.Config(env="not_an_env")


def test_cli_trains_evaluates_and_resumes_a_users_env(user_package, tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", "--env", "mytasks:MyGoalEnv", "--env-kwargs", "episode_length=10",
                     "--num-epochs", "2", *TINY_ARGS, "--run-dir", str(run)]) == 0
    assert runs.load_config(run)[0].env == "mytasks:MyGoalEnv"
    assert cli.main(["eval", str(run), "--episodes", "4"]) == 0
    assert cli.main(["train", "--resume", str(run), "--num-epochs", "4", "--no-progress"]) == 0
    assert int(runs.read_metrics(run)["env_steps"][-1]) == 4 * 4 * 10


# ---- env steps per seed ---------------------------------------------------------------------------

def test_env_steps_are_per_seed_in_metrics_progress_and_summary(capsys):
    cfg = hjax.Config(num_envs=4, num_epochs=2, chunk_epochs=2, grad_steps_per_epoch=2, hidden_sizes=(8,),
                      batch_size=16, buffer_episodes=8, num_eval_envs=4)
    result = hjax.train(cfg, num_seeds=3, progress_bar="lines", verbose=False)
    per_seed = 2 * cfg.env_steps_per_epoch
    assert result.metrics["env_steps"][:, -1].tolist() == [per_seed] * 3
    out = capsys.readouterr().out
    assert f"env steps {per_seed}/{per_seed} per seed (3 seeds)" in out
    assert f"after {per_seed} env steps per seed (3 seeds)" in hjax.summary(result)


# ---- one API, one answer ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("api") / "run"
    cfg = hjax.Config(num_envs=4, num_epochs=2, chunk_epochs=2, grad_steps_per_epoch=2, hidden_sizes=(8,),
                      batch_size=16, buffer_episodes=8, num_eval_envs=4)
    return hjax.train(cfg, num_seeds=2, run_dir=run, progress_bar=False, verbose=False)


def test_plot_summary_diagnose_take_a_result_or_its_run_dir(finished, tmp_path):
    run_dir = finished.run_dir
    assert hjax.summary(str(run_dir)) in hjax.summary(finished)  # the directory keeps no timings
    assert hjax.diagnose(run_dir).verdict == hjax.diagnose(finished).verdict
    a, b = hjax.plot(finished, tmp_path / "a.png"), hjax.plot(str(run_dir), tmp_path / "b.png")
    assert (tmp_path / "a.png").stat().st_size > 0 and (tmp_path / "b.png").stat().st_size > 0
    assert a._suptitle.get_text() == b._suptitle.get_text()
    for fn in (hjax.summary, hjax.plot, hjax.diagnose, hjax.load_policy, hjax.evaluate):
        with pytest.raises(TypeError, match="expected a hjax.Result"):
            fn(42)


def test_load_policy_and_evaluate_take_a_result_or_its_run_dir(finished):
    env = finished.config.make_env()
    obs = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(3), 5)).obs
    for seed_index in (0, 1):
        from_result = np.asarray(hjax.load_policy(finished, seed_index=seed_index)(obs))
        from_dir = np.asarray(hjax.load_policy(finished.run_dir, seed_index=seed_index)(obs))
        np.testing.assert_allclose(from_result, from_dir, rtol=1e-6, atol=1e-6)
    e_result = hjax.evaluate(finished, episodes=8, seed_index=1)
    e_dir = hjax.evaluate(finished.run_dir, episodes=8, seed_index=1)
    assert {k: v for k, v in e_result.items() if k != "epoch"} == {k: v for k, v in e_dir.items() if k != "epoch"}
    assert e_dir["epoch"] == 2 and e_result["epoch"] is None
    with pytest.raises(ValueError, match=r"invalid seed_index=2; allowed: an integer with 0 <= seed_index < 2"):
        hjax.evaluate(finished, seed_index=2)
    with pytest.raises(ValueError, match="invalid episodes=0"):
        hjax.evaluate(finished, episodes=0)


def test_reprs_are_one_short_line(finished):
    loaded = loading.load_run(finished.run_dir)
    record = runs.read_run(finished.run_dir)
    for obj in (finished, loaded, record):
        text = repr(obj)
        assert "\n" not in text and len(text) < 300, text
        assert "env='point_mass'" in text and "algorithm='td3'" in text and "seeds=2" in text
        assert "epochs=2/2" in text and "eval_success=" in text and str(finished.run_dir) in text
    assert "checkpoint_epoch=2" in repr(loaded)


def test_result_docstring_lists_its_fields():
    doc = hjax.Result.__doc__
    for f in dataclasses.fields(hjax.Result):
        if f.name != "trainer":
            assert f"  {f.name}: " in doc, f.name
