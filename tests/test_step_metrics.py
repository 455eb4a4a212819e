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
