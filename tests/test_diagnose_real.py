"""The diagnosis on real runs of a task whose goals are met by chance (issue 26, item 5):
gripper_push, where about 8% of the episodes start with the cube on its goal.

A short, small run without HER is trained here; the long runs (1.28M env steps per seed, with
HER and without) are kept as recorded metrics in tests/fixtures/ (config.json and metrics.csv as
`hjax.train` wrote them; how they were trained: tests/fixtures/README.md)."""

from pathlib import Path

import numpy as np
import pytest

import hjax

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_a_short_gripper_push_run_without_her_is_not_learning_and_names_the_chance_level():
    cfg = hjax.Config(env="gripper_push", her_strategy="none", num_envs=64, num_epochs=3, chunk_epochs=3,
                      grad_steps_per_epoch=4, batch_size=64, buffer_episodes=192, num_eval_envs=64,
                      hidden_sizes=(16,))
    result = hjax.train(cfg, progress_bar=False, verbose=False)
    chance = float(np.mean(result.metrics["train/met_at_reset_rate"]))
    assert 0.02 < chance < 0.2  # goals met at reset: gripper_push's chance level (Fetch: 0.075)
    d = hjax.diagnose(result)
    assert d.verdict in ("silent", "hindsight_only") and d.verdict != "learning"
    assert d.evidence.chance_level == pytest.approx(chance)
    assert any("chance level" in r for r in d.reasons)
    assert d.evidence.first_success_env_steps is None or d.evidence.success_counted == "earned"
    # the successes that happen are the goals met at reset: none of them is earned
    total = result.metrics["train/success_count"].sum()
    earned = result.metrics["train/earned_success_count"].sum()
    assert earned <= total


@pytest.mark.parametrize("her,verdicts", [("future", ("learning", "solved")), ("none", ("silent",))])
def test_the_recorded_long_gripper_push_runs(her, verdicts):
    run = FIXTURES / f"gripper_push_{her}"
    assert (run / "metrics.csv").is_file() and (run / "config.json").is_file()
    d = hjax.diagnose(run)
    assert d.verdict in verdicts, str(d)
    assert d.evidence.chance_level is not None and 0.02 < d.evidence.chance_level < 0.2
    assert d.evidence.success_counted == "earned"
    if her == "none":  # the milestones no longer fire in the first epoch on goals met at reset
        assert d.evidence.per_10_env_steps is None
        assert any("chance level" in r for r in d.reasons)
    else:
        assert d.evidence.replay_informative > hjax.diagnosis.INFORMATIVE_FRACTION
