"""benchmarks/gpu_suite.py in smoke mode: the same code the GPU run uses, on the CPU, tiny."""

import json

import pytest

from benchmarks import gpu_suite


def test_smoke_run_writes_every_section(tmp_path):
    payload = gpu_suite.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "gpu_suite.json").read_text())
    md = (tmp_path / "gpu_suite.md").read_text()
    assert saved["smoke"] is True and saved["machine"]["command"]
    env_rows, fused_rows, target_rows = (saved[k] for k in ("env_throughput", "fused_throughput", "time_to_target"))
    assert [r["env"] for r in env_rows] == ["point_mass"] and env_rows[0]["steps_per_s"] > 0
    fused = fused_rows[0]
    # UTD 1/64: 16 envs x 50 steps = 800 env steps per epoch -> 12 grad steps (a multiple of 2)
    assert fused["grad_steps_per_epoch"] == 12 and fused["env_steps_per_s"] > 0 and fused["compile_s"] > 0
    target = target_rows[0]
    assert target["outcome"] in ("reached", "not reached", "budget")
    assert 1 <= target["epochs"] <= 3 and target["env_steps_per_seed"] == target["epochs"] * 16 * 50
    # each seed's last eval success, read back from the run's metrics.csv: their mean is the curve's last point
    per_seed = target["final_per_seed"]
    assert len(per_seed) == 2 and abs(sum(per_seed) / 2 - target["curve"][-1][3]) < 1e-3
    assert target["final_median"] == pytest.approx(sum(per_seed) / 2)  # the median of two is their mean
    assert saved["finished"] is True and saved["gripper_learning"] == []
    for heading in ("Env throughput", "Fused training throughput", "Time to target", "Command:"):
        assert heading in md
    assert payload["budget_s"] == saved["budget_s"]


def test_budget_shares_and_skips():
    budget = gpu_suite.Budget(100.0)
    assert all(budget.allows(s) for s in gpu_suite.SHARES)
    budget.spend("env", 14.9)
    assert budget.allows("env")
    budget.spend("env", 0.2)  # 15.1 s > 15% of 100 s
    assert not budget.allows("env") and budget.allows("fused")
    assert abs(sum(gpu_suite.SHARES.values()) - 1.0) < 1e-9


def test_rejects_a_bad_budget():
    with pytest.raises(SystemExit) as e:
        gpu_suite.main(["--smoke", "--budget-s", "0"])
    assert e.value.code == 2


@pytest.mark.parametrize("item, expected", [
    ("gripper_push", ("gripper_push", "future", None)),
    ("gripper_push:none", ("gripper_push", "none", None)),
    ("gripper_slide:final:25", ("gripper_slide", "final", 25)),
])
def test_gripper_items(item, expected):
    assert gpu_suite.parse_gripper_item(item, gpu_suite.FULL["gripper"]) == expected


@pytest.mark.parametrize("item, named", [
    ("gripper_lift", "ENV one of"), ("gripper_reach:hindsight", "strategy 'hindsight'"),
    ("gripper_reach:none:0", "epochs '0'"), ("gripper_reach:none:x", "epochs 'x'"), ("gripper_push:a:1:2", "ENV"),
])
def test_gripper_items_rejected_before_anything_runs(item, named, capsys):
    with pytest.raises(SystemExit) as e:
        gpu_suite.main(["--smoke", "--gripper", item])
    assert e.value.code == 2 and named in capsys.readouterr().err


def test_gripper_only_needs_gripper_items(capsys):
    with pytest.raises(SystemExit):
        gpu_suite.main(["--smoke", "--gripper-only"])
    assert "--gripper-only needs" in capsys.readouterr().err
