"""Host-side helpers of the benchmark scripts: config overrides and the `--none-from` reference."""

import json

import numpy as np
import pytest

import hjax
from benchmarks.her_ablation import load_reference, parse_overrides


def test_parse_overrides():
    assert parse_overrides(["num_epochs=50", "hidden_sizes=64,64", "clip_target=False", "hidden_sizes=32"]) == {
        "num_epochs": 50, "hidden_sizes": (32,), "clip_target": False}
    with pytest.raises(ValueError, match="unknown Config field 'epochs'"):
        parse_overrides(["epochs=3"])
    with pytest.raises(ValueError, match="her_strategy is set by this script"):
        parse_overrides(["her_strategy=none"])
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_overrides(["num_epochs"])


def _results(tmp_path, cfg, seeds=4, reps=5000):
    path = tmp_path / "ablation.json"
    path.write_text(json.dumps({"config": cfg.replace(her_strategy="none").to_dict(), "seeds": seeds, "reps": reps,
                                "strategies": {"none": {"final_success": {"point": 0.0, "low": 0.0, "high": 0.01}}}}))
    return str(path)


def test_load_reference_same_run(tmp_path):
    cfg = hjax.Config(env="push", num_epochs=200, hidden_sizes=(256, 256))
    ref = load_reference(_results(tmp_path, cfg), cfg.replace(her_strategy="final"), 4, 5000)
    np.testing.assert_allclose([ref["final_success"].low, ref["final_success"].high], [0.0, 0.01])
    # It is compared like any interval: disjoint from a strategy that learned.
    from benchmarks import stats
    assert not stats.Interval(np.float64(0.9), np.float64(0.85), np.float64(0.95)).overlaps(ref["final_success"])


def test_load_reference_refuses_another_run(tmp_path):
    cfg = hjax.Config(env="push", num_epochs=200)
    path = _results(tmp_path, cfg)
    with pytest.raises(ValueError, match=r"config fields \['num_epochs'\]"):
        load_reference(path, cfg.replace(num_epochs=100), 4, 5000)
    with pytest.raises(ValueError, match="seeds 4 vs 3"):
        load_reference(path, cfg, 3, 5000)
    with pytest.raises(ValueError, match="not a her_ablation results file"):
        load_reference(str(tmp_path / "missing.json"), cfg, 4, 5000)
