"""Reliability: invalid configs, memory planning, long-run counters, NaN with checkpoints,
corrupt or mismatched checkpoints, and kills at random moments."""

import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hjax import envs
import hjax
from hjax.envs.point_mass import PointMass
from hjax import loading, memory, runs
from hjax.counter import Counter
from hjax.result import metrics_to_host

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(num_envs=4, num_epochs=4, chunk_epochs=2, grad_steps_per_epoch=4, hidden_sizes=(16, 16),
            batch_size=32, buffer_episodes=16, num_eval_envs=4)


def tiny(**kw):
    return hjax.Config(**{**TINY, **kw})


# ---- config fuzzing --------------------------------------------------------------------------

junk = st.one_of(st.text(max_size=5), st.none(), st.lists(st.integers(), max_size=2), st.just(object()))
non_positive_int = st.one_of(st.integers(max_value=0), st.floats(allow_nan=True), st.booleans(), junk)
bad_float = st.one_of(st.just(math.nan), st.just(math.inf), st.just(-math.inf), st.text(max_size=3),
                      st.booleans(), st.lists(st.floats(), max_size=1))

INVALID = {
    "num_envs": non_positive_int, "num_epochs": non_positive_int, "grad_steps_per_epoch": non_positive_int,
    "batch_size": non_positive_int, "buffer_episodes": non_positive_int, "num_eval_envs": non_positive_int,
    "policy_delay": non_positive_int,
    "seed": st.one_of(st.integers(max_value=-1), st.floats(), junk),
    "gamma": st.one_of(st.floats().filter(lambda g: not 0 < g < 1), bad_float),
    "tau": st.one_of(st.floats().filter(lambda t: not 0 <= t <= 1), bad_float),
    "random_action_prob": st.one_of(st.floats().filter(lambda t: not 0 <= t <= 1), bad_float),
    "actor_lr": st.one_of(st.floats(max_value=0), bad_float),
    "critic_lr": st.one_of(st.floats(max_value=0), bad_float),
    "obs_clip": st.one_of(st.floats(max_value=0), bad_float),
    "target_noise": st.one_of(st.floats(max_value=-1e-9), bad_float),
    "target_noise_clip": st.one_of(st.floats(max_value=-1e-9), bad_float),
    "action_l2": st.one_of(st.floats(max_value=-1e-9), bad_float),
    "exploration_noise": st.one_of(st.floats(max_value=-1e-9), bad_float),
    "replay_k": st.one_of(st.floats(max_value=-1e-9), bad_float),
    "algorithm": st.one_of(st.text().filter(lambda s: s not in hjax.ALGORITHMS), st.integers(), st.none()),
    "init_alpha": st.one_of(st.floats(max_value=0), bad_float),
    "alpha_lr": st.one_of(st.floats(max_value=0), bad_float),
    "target_entropy": bad_float,
    "her_strategy": st.one_of(st.text().filter(lambda s: s not in hjax.HER_STRATEGIES), st.integers(), st.none()),
    "env": st.one_of(st.text().filter(lambda s: s not in envs.NAMES), st.integers(), st.none()),
    "env_kwargs": st.one_of(st.integers(), st.text(min_size=1), st.lists(st.integers(), min_size=1),
                            st.dictionaries(st.text(min_size=1).filter(lambda k: k not in envs.override_names("point_mass")),
                                            st.integers(), min_size=1),
                            st.fixed_dictionaries({"distance_threshold": st.one_of(st.floats(max_value=0), bad_float)}),
                            st.fixed_dictionaries({"episode_length": non_positive_int})),
    "hidden_sizes": st.one_of(st.just(()), st.lists(st.integers(max_value=0), min_size=1, max_size=3),
                              st.text(), st.integers(), st.none(), st.lists(st.floats(), min_size=1, max_size=2)),
    "clip_target": st.one_of(st.integers(), st.text(), st.none()),
    "critic_layer_norm": st.one_of(st.integers(), st.text(), st.none()),
    "n_step": st.one_of(st.integers(max_value=0), st.integers(min_value=10**4), st.floats(), st.text(), st.booleans()),
    "num_devices": st.one_of(st.integers(max_value=0), st.floats(), st.text(), st.booleans()),
    "seed_devices": non_positive_int,
    "data_shards": st.one_of(st.integers(max_value=0), st.integers(min_value=3, max_value=10**6).filter(lambda d: 4 % d),
                             st.floats(), st.text(), st.booleans()),
    "chunk_epochs": st.one_of(st.integers(min_value=3, max_value=10**6).filter(lambda c: 4 % c), st.integers(max_value=0),
                              st.text(), st.floats()),
}


def test_every_field_is_fuzzed():
    assert set(INVALID) == set(hjax.Config.__dataclass_fields__)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(INVALID)).flatmap(lambda f: st.tuples(st.just(f), INVALID[f])))
def test_invalid_config_raises_value_error_naming_the_field(field_value):
    field, value = field_value
    with pytest.raises(ValueError) as info:
        hjax.Config(**{**TINY, field: value})
    assert field in str(info.value)


def test_batch_larger_than_the_buffer_can_supply():
    with pytest.raises(ValueError, match="invalid batch_size=801; allowed: <= buffer_episodes \\* episode_length = 800"):
        hjax.Config(**{**TINY, "batch_size": 801})


@settings(max_examples=60, deadline=None)
@given(num_envs=st.integers(1, 64), delay=st.integers(1, 4), groups=st.integers(1, 50),
       k=st.floats(0, 16), strategy=st.sampled_from(hjax.HER_STRATEGIES), gamma=st.one_of(st.none(), st.floats(0.01, 0.999)))
def test_valid_configs_construct(num_envs, delay, groups, k, strategy, gamma):
    cfg = hjax.Config(num_envs=num_envs, policy_delay=delay, grad_steps_per_epoch=delay * groups,
                      replay_k=k, her_strategy=strategy, gamma=gamma, buffer_episodes=max(num_envs, 16))
    assert 0 < cfg.discount < 1 and cfg.num_epochs % cfg.epochs_per_chunk == 0


# ---- memory planning -------------------------------------------------------------------------

def test_memory_plan_is_exact_for_the_state_and_errors_before_allocating():
    cfg = hjax.Config()
    p = memory.plan(cfg, num_seeds=2)
    state = jax.eval_shape(hjax.make_trainer(cfg).init, jax.random.PRNGKey(0))
    T, capacity = cfg.episode_length, cfg.buffer_episodes
    # observation (4) and achieved goal (2) for T+1 steps, desired goal (2) and action (2) for T,
    # plus the two int32 cursors; two seeds.
    assert p.buffer_bytes == 2 * (capacity * 4 * ((T + 1) * (4 + 2) + T * (2 + 2)) + 2 * 4)
    assert p.learner_bytes == 2 * (memory._nbytes(state) - memory._nbytes(state.buffer))
    t0 = time.perf_counter()
    with pytest.raises(memory.MemoryPlanError, match=r"does not fit: .* Reduce buffer_episodes \(now 100000000\)"):
        hjax.train(cfg.replace(buffer_episodes=10**8))
    assert time.perf_counter() - t0 < 5  # refused before anything was allocated or compiled


# ---- long runs -------------------------------------------------------------------------------

def test_step_counters_past_int32_and_uint32():
    cfg = tiny()
    trainer = hjax.make_trainer(cfg)
    run = jax.jit(lambda s: trainer.run_epochs(s, 3))
    state0 = trainer.init(jax.random.PRNGKey(0))
    per_epoch = cfg.num_envs * cfg.episode_length
    for start in (2**31 - 500, 2**32 - 500, 2**40):
        state = state0.replace(env_steps=Counter.create(start), grad_steps=Counter.create(start + 1))
        _, metrics = run(state)
        m = metrics_to_host(metrics)
        np.testing.assert_array_equal(m["env_steps"], [start + i * per_epoch for i in (1, 2, 3)])
        np.testing.assert_array_equal(m["grad_steps"], [start + 1 + i * cfg.grad_steps_per_epoch for i in (1, 2, 3)])


def test_bit_identical_metrics_across_processes(tmp_path):
    """Same config and seed: a separate process writes exactly the metrics of this one."""
    cfg = tiny(seed=7)
    args = ["--num-envs", "4", "--grad-steps-per-epoch", "4", "--hidden-sizes", "16", "16", "--batch-size", "32",
            "--buffer-episodes", "16", "--num-eval-envs", "4", "--chunk-epochs", "2", "--num-epochs", "4",
            "--seed", "7", "--no-progress", "--run-dir", str(tmp_path)]
    out = subprocess.run([sys.executable, "-m", "hjax.cli", "train", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=600, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0, out.stderr[-2000:]
    here = hjax.train(cfg, progress_bar=False).metrics
    there = runs.read_metrics(tmp_path)
    for name in here:
        np.testing.assert_array_equal(there[name], here[name].astype(there[name].dtype), err_msg=name)


# ---- non-finite values with a run directory ---------------------------------------------------

class _NanEnv(PointMass):
    def _step_goal_env(self, physics, action):
        physics, obs, ag = super()._step_goal_env(physics, action)
        return physics, obs * jax.numpy.nan, ag


def test_nan_keeps_the_last_good_checkpoint_loadable(tmp_path, monkeypatch):
    monkeypatch.setitem(envs._REGISTRY, "flaky", PointMass)
    monkeypatch.setattr(envs, "NAMES", envs.NAMES + ("flaky",))
    cfg = tiny(env="flaky")
    hjax.train(cfg.replace(num_epochs=2), run_dir=tmp_path, progress_bar=False)
    monkeypatch.setitem(envs._REGISTRY, "flaky", _NanEnv)  # the env breaks from now on
    with pytest.raises(hjax.NonFiniteError, match="at epoch 2.*last good checkpoint \\(epoch 2\\) is intact"):
        hjax.train(tiny(env="flaky"), resume=tmp_path, progress_bar=False)  # a config of the broken env
    run = loading.load_run(tmp_path)
    assert run.epoch == 2
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(run.state.learner))


# ---- corrupt or mismatched checkpoints --------------------------------------------------------

def _checkpoint_files(run_dir):
    return [p for p in (run_dir / "checkpoints").rglob("*") if p.is_file() and p.stat().st_size > 0]


def test_corrupt_checkpoint_gives_a_clear_error(tmp_path):
    hjax.train(tiny(num_epochs=2), run_dir=tmp_path, progress_bar=False)
    for path in _checkpoint_files(tmp_path):
        if path.parent.name != "meta":
            path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # truncate every data file
    with pytest.raises(runs.CheckpointError, match="checkpoint .*checkpoints/2 cannot be read"):
        loading.load_run(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(runs.CheckpointError, match="config.json is corrupt"):
        loading.load_run(tmp_path)


def test_checkpoint_from_another_config_is_refused(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    hjax.train(tiny(num_epochs=2), run_dir=a, progress_bar=False)
    hjax.train(tiny(num_epochs=2, hidden_sizes=(8,)), run_dir=b, progress_bar=False)
    shutil.rmtree(b / "checkpoints")
    shutil.copytree(a / "checkpoints", b / "checkpoints")  # a's weights under b's config
    with pytest.raises(runs.CheckpointError, match=r"(does not fit this config|this config expects)"):
        loading.load_run(b)
    with pytest.raises(runs.CheckpointError, match="hidden_sizes"):
        hjax.train(tiny(num_epochs=4), resume=b)  # and resuming names the differing field


# ---- kills at random moments -----------------------------------------------------------------

def _newest_checkpoint(run) -> int:
    """The newest checkpoint epoch while another process writes them (0 if none yet). Listing
    races with the writer deleting its oldest checkpoint (max_to_keep): then look again."""
    try:
        return runs.Checkpointer(run).latest_epoch() or 0
    except (FileNotFoundError, runs.CheckpointError):  # no checkpoints/ yet
        return 0


def test_sigkill_at_random_moments_never_leaves_an_unreadable_checkpoint(tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "hjax.cli", "train", "--num-envs", "4", "--grad-steps-per-epoch", "4",
            "--hidden-sizes", "16", "16", "--batch-size", "32", "--buffer-episodes", "16",
            "--num-eval-envs", "4", "--chunk-epochs", "2", "--num-epochs", "1000000", "--no-progress",
            "--save-buffer"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    rng = np.random.default_rng(0)
    last = 0
    for attempt in range(3):
        cmd = args + (["--resume", str(run)] if attempt else ["--run-dir", str(run)])
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 240
        while time.time() < deadline and _newest_checkpoint(run) <= last:
            time.sleep(0.05)
        time.sleep(float(rng.uniform(0.0, 1.5)))  # somewhere in the middle of saving and training
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        loaded = loading.load_run(run)  # the newest complete checkpoint always loads
        assert loaded.epoch > last and loaded.epoch % 2 == 0
        assert int(loaded.state.epoch) == loaded.epoch
        last = loaded.epoch
