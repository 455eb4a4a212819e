"""The fused trainer: config validation, trace-once, determinism, vmapped seeds, metrics, NaN."""

import chex
import jax
import numpy as np
import pytest

from hjax import envs
import hjax
from hjax.envs.point_mass import PointMass

TINY = dict(num_envs=4, num_epochs=4, grad_steps_per_epoch=4, hidden_sizes=(16, 16), batch_size=32,
            buffer_episodes=16, num_eval_envs=4)


def tiny(**overrides):
    return hjax.Config(**{**TINY, **overrides})


# ---- config ----------------------------------------------------------------------------------

@pytest.mark.parametrize("field,value,allowed", [
    ("num_envs", 0, "integer >= 1"),
    ("num_envs", 2.5, "integer >= 1"),
    ("batch_size", True, "integer >= 1"),
    ("gamma", 1.0, r"\(0, 1\)"),
    ("gamma", -0.1, r"\(0, 1\)"),
    ("tau", 1.5, r"\[0, 1\]"),
    ("actor_lr", float("nan"), "> 0"),
    ("critic_lr", 0.0, "> 0"),
    ("replay_k", -1, ">= 0"),
    ("her_strategy", "futur", "future, final, episode, random, none"),
    ("env", "reacher", "one of"),
    ("hidden_sizes", (64, 0), "integers >= 1"),
    ("hidden_sizes", (), "non-empty"),
    ("random_action_prob", 1.2, r"\[0, 1\]"),
    ("policy_delay", 0, "integer >= 1"),
    ("grad_steps_per_epoch", 5, "multiple of policy_delay"),
    ("buffer_episodes", 2, ">= num_envs"),
    ("batch_size", 10**6, "buffer_episodes \\* episode_length"),
    ("chunk_epochs", 3, "divisor of num_epochs"),
    ("clip_target", 1, "True or False"),
])
def test_config_rejects_invalid_values(field, value, allowed):
    with pytest.raises(ValueError, match=rf"invalid {field}=.*allowed: .*{allowed}"):
        tiny(**{field: value})


def test_config_env_kwargs_are_validated_and_frozen():
    with pytest.raises(ValueError, match="env_kwargs.*distance_threshold=-0.1"):
        tiny(env_kwargs={"distance_threshold": -0.1})
    with pytest.raises(ValueError, match="env_kwargs.*unknown override 'thresh'"):
        tiny(env_kwargs={"thresh": 0.1})
    cfg = tiny(env_kwargs={"episode_length": 20})
    assert cfg.episode_length == 20 and cfg.discount == pytest.approx(1 - 1 / 20)
    with pytest.raises(TypeError):
        cfg.env_kwargs["episode_length"] = 5  # read-only: a config never changes under a run


def test_config_defaults_follow_her_paper():
    cfg = hjax.Config()
    assert cfg.her_strategy == "future" and cfg.replay_k == 4
    assert cfg.relabel_probability == pytest.approx(0.8)
    assert cfg.discount == pytest.approx(0.98)
    assert cfg.action_l2 == 1.0 and cfg.obs_clip == 5.0 and cfg.tau == 0.05
    assert cfg.num_epochs % cfg.epochs_per_chunk == 0


# ---- the fused step --------------------------------------------------------------------------

def test_epoch_traces_once_and_scan_compiles_once():
    cfg = tiny()
    trainer = hjax.make_trainer(cfg)
    epoch = jax.jit(chex.assert_max_traces(trainer.epoch, n=1))
    state = trainer.init(jax.random.PRNGKey(0))
    for _ in range(3):
        state, _ = epoch(state)
    chex.clear_trace_counter()
    assert int(state.epoch) == 3


def test_metrics_names_shapes_and_counters():
    cfg = tiny()
    result = hjax.train(cfg)
    m = result.metrics
    for name in hjax.METRIC_NAMES + ("env_steps", "grad_steps"):
        assert m[name].shape == (cfg.num_epochs,), name
        assert np.isfinite(m[name].astype(np.float64)).all(), name
    epochs = np.arange(1, cfg.num_epochs + 1)
    np.testing.assert_array_equal(m["env_steps"], epochs * cfg.num_envs * cfg.episode_length)
    np.testing.assert_array_equal(m["grad_steps"], epochs * cfg.grad_steps_per_epoch)
    assert m["env_steps"].dtype == np.uint64
    for name in ("train/success_rate", "eval/success_rate", "eval/success_any", "action/saturation",
                 "replay/relabeled_fraction", "replay/positive_reward_fraction"):
        assert ((m[name] >= 0) & (m[name] <= 1)).all(), name
    assert (m["eval/success_any"] >= m["eval/success_rate"]).all()
    assert (m["q/min"] <= m["q/mean"]).all() and (m["q/mean"] <= m["q/max"]).all()
    assert (m["train/success_count"] == m["train/success_rate"] * cfg.num_envs).all()
    assert result.q_bounds == (pytest.approx(-1 / (1 - cfg.discount)), 0.0)


def test_replay_composition_reflects_strategy():
    her_m = hjax.train(tiny(num_epochs=2)).metrics
    none_m = hjax.train(tiny(num_epochs=2, her_strategy="none")).metrics
    assert np.all(none_m["replay/relabeled_fraction"] == 0)
    np.testing.assert_array_equal(none_m["replay/positive_reward_fraction"],
                                  none_m["replay/positive_reward_fraction_original"])
    assert abs(her_m["replay/relabeled_fraction"].mean() - 0.8) < 0.1
    # Future goals include t' = t + 1, which always succeeds: HER batches carry success rewards.
    assert (her_m["replay/positive_reward_fraction"] > her_m["replay/positive_reward_fraction_original"]).all()


def test_same_seed_identical_different_seeds_differ():
    a = hjax.train(tiny(seed=3)).metrics
    b = hjax.train(tiny(seed=3)).metrics
    c = hjax.train(tiny(seed=4)).metrics
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert not np.array_equal(a["loss/critic"], c["loss/critic"])
    assert not np.array_equal(a["eval/final_distance"], c["eval/final_distance"])


def test_vmapped_seeds_equal_seeds_run_alone():
    cfg = tiny(num_epochs=2, seed=5)
    multi = hjax.train(cfg, num_seeds=3)
    assert multi.metrics["loss/critic"].shape == (3, 2)
    assert multi.state.epoch.shape == (3,)
    losses = multi.metrics["loss/critic"]
    assert not np.allclose(losses[0], losses[1])  # seeds are distinct: keys are never shared
    for i in (0, 2):
        alone = hjax.train(cfg.replace(seed=5 + i))
        for name in ("loss/critic", "q/mean", "eval/final_distance", "train/final_distance"):
            np.testing.assert_allclose(multi.metrics[name][i], alone.metrics[name], rtol=1e-4, atol=1e-5,
                                       err_msg=name)
        jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5),
                     multi.seed_state(i).learner.actor_params, alone.state.learner.actor_params)


def test_make_train_is_pure_and_vmaps():
    cfg = tiny(num_epochs=2)
    train = hjax.make_train(cfg)
    keys = jax.numpy.stack([jax.random.PRNGKey(cfg.seed), jax.random.PRNGKey(cfg.seed + 1)])
    state, metrics = jax.jit(jax.vmap(train))(keys)
    assert metrics["loss/critic"].shape == (2, 2)
    single = hjax.train(cfg)  # the chunked host loop runs the same epochs
    np.testing.assert_allclose(metrics["loss/critic"][0], single.metrics["loss/critic"], rtol=1e-4, atol=1e-5)


def test_policy_is_deterministic_and_bounded():
    result = hjax.train(tiny(num_epochs=1))
    policy = result.policy()
    env = result.config.make_env()
    obs = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 5)).obs
    a1, a2 = policy(obs), policy(obs)
    np.testing.assert_array_equal(a1, a2)
    assert a1.shape == (5, env.action_size) and np.all(np.abs(a1) <= 1)


def test_progress_callback_between_chunks():
    seen = []
    hjax.train(tiny(num_epochs=4, chunk_epochs=2), progress=lambda e, m: seen.append((e, m)))
    assert [e for e, _ in seen] == [2, 4]
    assert "eval/success_rate" in seen[0][1] and isinstance(seen[0][1]["eval/success_rate"], float)


def test_train_rejects_bad_arguments():
    with pytest.raises(TypeError, match="expected hjax.Config"):
        hjax.train({"env": "point_mass"})
    with pytest.raises(ValueError, match="num_seeds=0"):
        hjax.train(tiny(), num_seeds=0)


# ---- NaN never passes silently ----------------------------------------------------------------

class _NanAfter(PointMass):
    """point_mass whose observations turn NaN from step 3 on (a broken env)."""

    def _step_goal_env(self, physics, action):
        physics, obs, ag = super()._step_goal_env(physics, action)
        return physics, obs * jax.numpy.where(physics.pos[0] > -10.0, jax.numpy.nan, 1.0), ag


def test_nan_stops_training_naming_epoch_and_metric(monkeypatch):
    monkeypatch.setitem(envs._REGISTRY, "nan_env", _NanAfter)
    monkeypatch.setattr(envs, "NAMES", envs.NAMES + ("nan_env",))
    seen = []
    with pytest.raises(hjax.NonFiniteError, match=r"non-finite loss/critic = nan at epoch 0") as info:
        hjax.train(tiny(env="nan_env", chunk_epochs=2), progress=lambda e, m: seen.append(e))
    assert seen == []  # stopped at the end of the first chunk, before reporting it
    assert info.value.metrics["loss/critic"].shape == (2,)


def test_exploding_learning_rate_is_caught():
    with pytest.raises(hjax.NonFiniteError, match="non-finite .* at epoch"):
        hjax.train(tiny(num_epochs=4, chunk_epochs=1, critic_lr=1e30, actor_lr=1e30,
                        clip_target=False))


# ---- learning --------------------------------------------------------------------------------

def test_point_mass_learns_with_her_not_without():
    """A small learning check: eval success rises from ~0 to high within a tiny budget, and the
    same budget without HER stays near 0 (the sparse-reward problem HER solves)."""
    cfg = hjax.Config(num_envs=16, num_epochs=20, grad_steps_per_epoch=200, hidden_sizes=(64, 64),
                      batch_size=256, buffer_episodes=1000, num_eval_envs=64, seed=0)
    her = hjax.train(cfg).metrics["eval/success_rate"]
    none = hjax.train(cfg.replace(her_strategy="none")).metrics["eval/success_rate"]
    assert her[:2].max() < 0.2, her
    assert her[-3:].mean() > 0.8, her
    assert none[-3:].mean() < 0.3, none


def test_plot_writes_png_for_single_and_multi_seed(tmp_path):
    from hjax.plotting import plot
    single = hjax.train(tiny(num_epochs=2))
    multi = hjax.train(tiny(num_epochs=2), num_seeds=2)
    for name, result in (("single", single), ("multi", multi)):
        fig = plot(result, tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
        assert len(fig.axes) == 4


def test_demo_main_job_runs_with_a_tiny_budget(tmp_path, capsys):
    from hjax import demo
    result = demo.main(["--epochs", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "eval success" in out and "total wall time" in out
    assert (tmp_path / "curves.png").exists()
    assert result.metrics["eval/success_rate"].shape == (1,)
    # benchmarks/demo_compile.py reads the printed compile time from this output
    from benchmarks.demo_compile import parse_demo_output
    wall, compile_s, run_s = parse_demo_output(out)
    assert abs(compile_s - result.compile_seconds) <= 0.05 + 1e-9 and abs(run_s - result.run_seconds) <= 0.05 + 1e-9
    assert wall >= compile_s + run_s - 0.1
    with pytest.raises(ValueError, match="no 'total wall time"):
        parse_demo_output("eval success 1.0")
