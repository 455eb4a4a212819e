"""Statistics over seeds (`hjax/stats.py`): IQM, stratified bootstrap, confidence intervals."""

import numpy as np
import pytest
import scipy.stats

from hjax import stats


def test_iqm_of_known_data():
    assert stats.iqm(np.arange(1.0, 9.0)) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    # Outliers at both ends are dropped: the middle half is 1, 2, 3, 4.
    assert stats.iqm(np.array([-50.0, 0.0, 1.0, 2.0, 3.0, 4.0, 100.0, 100.0])) == pytest.approx(2.5)
    rng = np.random.default_rng(0)
    for n in range(1, 14):  # every remainder of n mod 4, against scipy's 25% trimmed mean
        x = rng.normal(size=n)
        assert stats.iqm(x) == pytest.approx(scipy.stats.trim_mean(x, 0.25))
    # Runs and tasks are pooled, as rliable's aggregate_iqm does; trailing axes are kept.
    x = rng.normal(size=(6, 3, 5))
    np.testing.assert_allclose(stats.iqm(x, (0, 1)),
                               [scipy.stats.trim_mean(x[:, :, i].ravel(), 0.25) for i in range(5)])


def test_bootstrap_ci_contains_true_mean_and_covers():
    rng = np.random.default_rng(1)
    x = rng.normal(0.3, 1.0, size=200)
    iv = stats.interval_estimates(x, "mean", reps=2000, seed=0)
    assert iv.low < 0.3 < iv.high
    assert iv.low < iv.point < iv.high
    # Coverage over many synthetic experiments: a 95% interval should hold the truth ~95% of the
    # time (the percentile bootstrap under-covers slightly at n = 30: ~0.93-0.94 for normal data).
    hits = 0
    for i in range(300):
        sample = rng.normal(1.0, 2.0, size=30)
        iv = stats.interval_estimates(sample, "mean", reps=1000, seed=i)
        hits += iv.low <= 1.0 <= iv.high
    assert 0.89 <= hits / 300 <= 0.98


def test_ci_shrinks_with_more_seeds_and_is_reproducible():
    rng = np.random.default_rng(2)
    population = rng.uniform(size=100_000)
    widths = []
    for n in (8, 32, 128):  # mean width over 20 experiments of n seeds each
        ivs = [stats.interval_estimates(rng.choice(population, n), "iqm", reps=500, seed=i) for i in range(20)]
        widths.append(np.mean([iv.high - iv.low for iv in ivs]))
    # ~ 1/sqrt(n): half as wide per 4x the seeds
    assert 1.6 < widths[0] / widths[1] < 2.6 and 1.6 < widths[1] / widths[2] < 2.6
    x = rng.uniform(size=10)
    a, b = stats.interval_estimates(x, seed=3), stats.interval_estimates(x, seed=3)
    assert a == b
    c = stats.interval_estimates(x, seed=4)
    assert (a.low, a.high) != (c.low, c.high)


def test_resampling_is_stratified_by_task():
    # Task 0 always scores 0, task 1 always 1: resampling runs within each task keeps one of
    # each per draw, so the mean never moves. An unstratified bootstrap over all 8 scores would.
    scores = np.stack([np.zeros(4), np.ones(4)], axis=1)  # (runs, tasks)
    boot = stats.stratified_bootstrap(scores, stats.mean, reps=500, seed=0)
    assert boot.shape == (500,)
    np.testing.assert_array_equal(boot, 0.5)


def test_curve_estimates_and_first_reaching():
    rng = np.random.default_rng(3)
    curves = np.clip(np.linspace(0, 1, 12)[None, :] + rng.normal(0, 0.1, size=(8, 12)), 0, 1)
    iv = stats.curve_estimates(curves, "iqm", reps=500)
    assert iv.point.shape == iv.low.shape == iv.high.shape == (12,)
    np.testing.assert_allclose(iv.point, [scipy.stats.trim_mean(curves[:, i], 0.25) for i in range(12)])
    assert np.all(iv.low <= iv.point) and np.all(iv.point <= iv.high)
    steps = np.arange(1, 13) * 100
    assert stats.first_reaching(steps, [0.1, 0.5, 0.4, 0.95], 0.5) == 200
    assert stats.first_reaching(steps, [0.1, 0.2], 0.5) is None
    a = stats.Interval(np.float64(0.5), np.float64(0.4), np.float64(0.6))
    assert a.overlaps(stats.Interval(np.float64(0.7), np.float64(0.6), np.float64(0.8)))
    assert not a.overlaps(stats.Interval(np.float64(0.8), np.float64(0.7), np.float64(0.9)))


def test_matches_rliable():
    rly = pytest.importorskip("rliable.library", exc_type=ImportError)
    from rliable import metrics

    rng = np.random.default_rng(4)
    scores = rng.beta(2, 5, size=(10, 3))  # (runs, tasks)
    np.random.seed(0)  # rliable resamples with NumPy's global generator
    point, ci = rly.get_interval_estimates({"x": scores}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps=4000)
    ours = stats.interval_estimates(scores, "iqm", reps=4000, seed=0)
    assert float(ours.point) == pytest.approx(point["x"][0])
    # Same method, different random draws: the endpoints agree to bootstrap noise.
    assert float(ours.low) == pytest.approx(ci["x"][0, 0], abs=0.015)
    assert float(ours.high) == pytest.approx(ci["x"][1, 0], abs=0.015)
