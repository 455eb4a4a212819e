"""The chance level and earned success the fused step reports (issue 26, items 1 and 2):
`*/met_at_reset_rate` is the share of episodes whose goal is met at reset, and earned success
counts only episodes that end successful and were not met at reset. Checked against NumPy: the
probability that two uniform points of point_mass's arena lie within the threshold."""

import numpy as np
import pytest

import hjax

TINY = dict(num_epochs=3, chunk_epochs=3, grad_steps_per_epoch=2, hidden_sizes=(8,), batch_size=64,
            buffer_episodes=512, num_envs=512, num_eval_envs=512)


def chance(threshold: float, half: float = 1.0, n: int = 400_000) -> float:
    """P(||start - goal|| < threshold), start and goal uniform in [-half, half]^2 (Monte Carlo)."""
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-half, half, (2, n, 2))
    return float(np.mean(np.linalg.norm(a - b, axis=-1) < threshold))


@pytest.mark.parametrize("threshold", [0.3, 0.6])
def test_met_at_reset_rate_is_the_chance_level(threshold):
    cfg = hjax.Config(env="point_mass", env_kwargs={"distance_threshold": threshold}, **TINY)
    m = hjax.train(cfg, progress_bar=False, verbose=False).metrics
    expected = chance(threshold)
    episodes = cfg.num_envs * cfg.num_epochs
    tolerance = 5 * np.sqrt(expected * (1 - expected) / episodes)
    for name in ("train/met_at_reset_rate", "eval/met_at_reset_rate"):
        assert abs(float(np.mean(m[name])) - expected) < tolerance, (name, np.mean(m[name]), expected)


def test_earned_success_excludes_goals_met_at_reset():
    # Every goal met at reset: success is all chance, none of it earned.
    everywhere = hjax.Config(env="point_mass", env_kwargs={"distance_threshold": 5.0}, **TINY)
    m = hjax.train(everywhere, progress_bar=False, verbose=False).metrics
    np.testing.assert_array_equal(m["train/met_at_reset_rate"], 1.0)
    np.testing.assert_array_equal(m["train/success_rate"], 1.0)
    np.testing.assert_array_equal(m["train/earned_success_count"], 0.0)
    np.testing.assert_array_equal(m["eval/earned_success_rate"], 0.0)
    # In general: earned <= all successes, and all successes <= earned + met at reset.
    cfg = hjax.Config(env="point_mass", env_kwargs={"distance_threshold": 0.5}, **TINY)
    m = hjax.train(cfg, progress_bar=False, verbose=False).metrics
    earned = m["train/earned_success_count"] / cfg.num_envs
    assert np.all(earned <= m["train/success_rate"] + 1e-6)
    assert np.all(m["train/success_rate"] <= earned + m["train/met_at_reset_rate"] + 1e-6)
    assert np.all(m["eval/earned_success_rate"] <= m["eval/success_rate"] + 1e-6)


def test_training_episodes_start_from_train_reset_and_evaluation_from_reset(monkeypatch):
    """The trainer's exploring rollouts call the env's `train_reset`, its evaluation `reset`
    (pick-and-place's grasped starts must never reach the success it reports). A point_mass whose
    `train_reset` puts the goal on the start: every training goal is met at reset, evaluation's
    only by chance."""
    from hjax import envs
    from hjax.envs.point_mass import PointMass

    class GoalOnStart(PointMass):
        def train_reset(self, rng):
            state = self.reset(rng)
            return state.replace(obs={**state.obs, "desired_goal": state.obs["achieved_goal"]})

    monkeypatch.setattr(envs, "_REGISTRY", dict(envs._REGISTRY))
    monkeypatch.setattr(envs, "NAMES", envs.NAMES)
    envs.register("goal_on_start_point_mass", GoalOnStart)
    cfg = hjax.Config(env="goal_on_start_point_mass", env_kwargs={"distance_threshold": 0.3}, **TINY)
    m = hjax.train(cfg, progress_bar=False, verbose=False).metrics
    np.testing.assert_array_equal(m["train/met_at_reset_rate"], 1.0)
    expected = chance(0.3)
    tolerance = 5 * np.sqrt(expected * (1 - expected) / (cfg.num_eval_envs * cfg.num_epochs))
    assert abs(float(np.mean(m["eval/met_at_reset_rate"])) - expected) < tolerance, np.mean(m["eval/met_at_reset_rate"])
