"""`hjax.sweep` (issue 29): a grid of hyperparameters x seeds in one compiled program.

Each grid point is checked against the same config trained alone with `hjax.train` (the
reference): bit for bit with `batch_points=False`, to float32 rounding with the default batched
layout. The program is traced once for the whole grid; fields that change a shape or the program
are refused before anything compiles; the table's statistics are checked against NumPy/scipy; the
run directory, the command line, resume and the memory plan cover the grid axis.

Every sweep here shares one base config and one grid shape, so the two programs (one per layout)
are compiled once for the module."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
import scipy.stats

import hjax
from hjax import cli, memory, rundir, sweeping
from hjax.config import Config

TINY = dict(num_envs=4, num_epochs=2, chunk_epochs=1, grad_steps_per_epoch=2, hidden_sizes=(8,), batch_size=16,
            buffer_episodes=8, num_eval_envs=2)
GRID = {"her_strategy": ["future", "final", "none"], "replay_k": [2.0, 8.0], "actor_lr": [1e-3, 3e-3]}
SEEDS = 2
# Points checked against hjax.train: between them every value of every swept field.
REFERENCE_POINTS = (4, 11)  # (final, 2.0, 1e-3) and (none, 8.0, 3e-3); future is point 0 of the same program
# The batched layout agrees with a lone run to float32 rounding of XLA's batched reductions:
# measured at most 3.2e-7 of a leaf's largest magnitude after 1-4 epochs of this config.
BATCHED_TOLERANCE = 8 * np.finfo(np.float32).eps


def base() -> Config:
    return hjax.Config(**TINY)


def run(batch_points: bool, **kwargs) -> sweeping.SweepResult:
    return hjax.sweep(base(), GRID, SEEDS, progress_bar=False, verbose=False, batch_points=batch_points, **kwargs)


@pytest.fixture(scope="module")
def exact():
    """The grid with batch_points=False, counting every make_trainer call (a trace of the program
    builds one; so does the memory plan)."""
    calls = []
    real = sweeping.make_trainer

    def counting(config, mesh=None, traced=None):
        calls.append(None if traced is None else tuple(sorted(traced)))
        return real(config, mesh, traced)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sweeping, "make_trainer", counting)
        mp.setattr(sweeping, "_PROGRAMS", {})  # traced here, whatever ran before
        result = run(batch_points=False)
    return result, calls


@pytest.fixture(scope="module")
def batched():
    return run(batch_points=True)


@pytest.fixture(scope="module")
def references():
    """The reference runs: each checked point's config trained alone."""
    configs = sweeping.make_grid(base(), GRID).configs
    return {i: hjax.train(configs[i], num_seeds=SEEDS, progress_bar=False, verbose=False) for i in REFERENCE_POINTS}


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_every_point_is_a_row_of_the_grid_with_its_config(exact):
    result, _ = exact
    assert len(result.points) == 12
    assert result.points[4] == {"her_strategy": "final", "replay_k": 2.0, "actor_lr": 1e-3}
    assert result.points[11] == {"her_strategy": "none", "replay_k": 8.0, "actor_lr": 3e-3}
    for point, config in zip(result.points, result.grid.configs):
        assert all(getattr(config, k) == v for k, v in point.items())
        assert config.replace(**{k: getattr(base(), k) for k in point}).to_dict() == result.config.to_dict()
    assert result.metrics["eval/success_rate"].shape == (12, SEEDS, TINY["num_epochs"])
    assert result.metrics["env_steps"][-1, -1, -1] == TINY["num_epochs"] * result.config.env_steps_per_epoch


def test_each_point_equals_its_lone_train_run_bit_for_bit(exact, references):
    result, _ = exact
    for i, reference in references.items():
        point = result.point(i)
        assert point.config.replace(num_devices=None) == reference.config
        for name, values in reference.metrics.items():
            np.testing.assert_array_equal(point.metrics[name], values, err_msg=f"point {i}: {name}")
        for a, b in zip(_leaves(point.state), _leaves(reference.state)):
            np.testing.assert_array_equal(a, b)
    # The comparison is of runs that differ: the swept values change what is learned.
    assert not np.array_equal(result.metrics["loss/critic"][4], result.metrics["loss/critic"][11])
    relabeled = result.metrics["replay/relabeled_fraction"][:, :, -1].mean(axis=1)
    assert np.all(relabeled[8:] == 0) and np.all(relabeled[:8] > 0.5)  # none relabels nothing


def test_the_batched_layout_agrees_with_the_lone_runs_to_float32_rounding(batched, references):
    for i, reference in references.items():
        point = batched.point(i)
        np.testing.assert_array_equal(point.metrics["env_steps"], reference.metrics["env_steps"])
        for a, b in zip(_leaves(point.state.learner), _leaves(reference.state.learner)):
            scale = max(float(np.max(np.abs(b))), 1e-30)
            assert float(np.max(np.abs(a - b))) <= BATCHED_TOLERANCE * scale
        for name in ("loss/critic", "q/mean", "eval/final_distance"):
            np.testing.assert_allclose(point.metrics[name], reference.metrics[name], rtol=1e-4, atol=1e-6)


def test_the_grid_is_traced_once(exact):
    result, calls = exact
    # The memory plan's make_trainer (no traced values), then one trace each of the init and the
    # chunk program, each with the traced scalars of the grid: three, for twelve points.
    traced = tuple(sorted(sweeping.make_grid(base(), GRID).traced))
    assert calls == [None, traced, traced]
    assert traced == ("actor_lr", "her_strategy", "relabel_probability")
    assert len(result.metrics["env_steps"][0, 0]) == 2  # two chunks ran on the one compiled program


@pytest.mark.parametrize("field,values,named", [
    ("hidden_sizes", [(8,), (16,)], r"hidden_sizes=\[\(8,\), \(16,\)\]: hidden_sizes cannot be swept"),
    ("num_envs", [4, 8], r"num_envs=\[4, 8\]: num_envs cannot be swept"),
    ("batch_size", [16, 32], r"batch_size=\[16, 32\]"),
    ("algorithm", ["td3", "sac"], r"algorithm=\['td3', 'sac'\]"),
    ("env_kwargs", [{"distance_threshold": 0.1}], "env_kwargs=.*an env is built once per Config"),
    ("seed", [0, 1], "seed=.*use num_seeds"),
    ("lr", [1e-3], "lr=.*lr is not a Config field"),
])
def test_a_field_that_cannot_be_swept_is_refused_before_compiling(monkeypatch, field, values, named):
    monkeypatch.setattr(sweeping, "make_trainer", lambda *a, **k: pytest.fail("built a trainer"))
    with pytest.raises(ValueError, match=rf"invalid grid field {named}.*allowed \(the sweepable fields\): "
                                         r"actor_lr, critic_lr, .*replay_k, her_strategy"):
        hjax.sweep(base(), {"actor_lr": [1e-3], field: values})


@pytest.mark.parametrize("grid,message", [
    ({"actor_lr": [1e-3, -1.0]}, r"invalid grid value actor_lr=-1.0: invalid actor_lr=-1.0; allowed: a number > 0"),
    ({"her_strategy": ["future", "later"]}, r"invalid grid value her_strategy='later': .*allowed: one of future"),
    ({"init_alpha": [0.1, 0.5]}, r"invalid grid value init_alpha=0.5: invalid init_alpha=0.5 with algorithm='td3'"),
    ({"replay_k": []}, r"invalid grid field replay_k=\[\]; allowed: a non-empty list"),
    ({"replay_k": "248"}, r"invalid grid field replay_k='248'; allowed: a non-empty list"),
    ({"tau": [0.05, 0.05]}, r"invalid grid field tau=\[0.05, 0.05\]: a value repeats"),
    ({}, r"invalid grid=\{\}; allowed: a non-empty mapping"),
])
def test_bad_values_are_refused_naming_field_and_value(monkeypatch, grid, message):
    monkeypatch.setattr(sweeping, "make_trainer", lambda *a, **k: pytest.fail("built a trainer"))
    with pytest.raises(ValueError, match=message):
        hjax.sweep(base(), grid)


def test_a_sweep_that_does_not_fit_names_the_largest_grid_that_does(monkeypatch):
    config = base().replace(num_devices=1, data_shards=1)
    per_point = memory.plan(config, SEEDS).total_bytes
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: int(5.5 * per_point / 0.9))
    monkeypatch.setattr(sweeping, "compile_sweep", lambda *a: pytest.fail("compiled"))
    with pytest.raises(memory.MemoryPlanError, match=r"this sweep does not fit: 12 grid points x 2 seeds.*"
                                                     r"The largest grid that fits has 5 points of 2 seeds"):
        hjax.sweep(base(), GRID, SEEDS, verbose=False)


def synthetic(success: np.ndarray, steps_per_epoch: int = 100) -> sweeping.SweepResult:
    points, seeds, epochs = success.shape
    grid = sweeping.make_grid(base(), {"replay_k": [float(k) for k in range(points)]})
    env_steps = np.broadcast_to(np.arange(1, epochs + 1, dtype=np.uint64) * steps_per_epoch, success.shape)
    return sweeping.SweepResult(config=base(), grid=grid, num_seeds=seeds,
                                metrics={"eval/success_rate": success, "env_steps": env_steps}, state=None,
                                compile_seconds=0.0, run_seconds=0.0)


def test_table_statistics_against_numpy_and_scipy():
    rng = np.random.default_rng(0)
    success = rng.uniform(0, 1, size=(3, 8, 6)).astype(np.float32)
    success[2, :5] = 0.0  # five of eight seeds of point 2 never reach the target
    table = synthetic(success).table(target=0.8, reps=500)
    assert [row["replay_k"] for row in table] == [0.0, 1.0, 2.0]
    for i, row in enumerate(table):
        final = success[i, :, -1].astype(np.float64)
        assert row["final_success_iqm"] == pytest.approx(scipy.stats.trim_mean(final, 0.25))
        assert final.min() <= row["final_success_low"] <= row["final_success_iqm"] <= row["final_success_high"] <= final.max()
        first = []  # the env steps at which each seed first reaches 0.8, by a plain loop
        for s in range(8):
            hits = [100 * (e + 1) for e in range(6) if success[i, s, e] >= 0.8]
            first.append(hits[0] if hits else np.inf)
        assert row["seeds_reaching_target"] == int(np.isfinite(first).sum())
        assert row["steps_to_target_iqm"] == pytest.approx(scipy.stats.trim_mean(np.sort(first), 0.25))
    assert table[2]["steps_to_target_iqm"] == np.inf  # more than a quarter never reach it
    text = str(table)
    assert "never" in text and "final success IQM [95% CI]" in text and len(text.splitlines()) == 4
    assert table._repr_html_().count("<tr>") == 4
    with pytest.raises(ValueError, match="invalid target=1.5"):
        synthetic(success).table(target=1.5)


def test_plot_draws_a_curve_per_point_and_a_summary_panel(batched, tmp_path):
    figure = hjax.plot(batched, tmp_path / "sweep.png")
    curves, summary = figure.axes
    assert len(curves.get_lines()) == 12
    assert [t.get_text() for t in summary.get_yticklabels()] == [batched.grid.label(i) for i in range(12)]
    assert (tmp_path / "sweep.png").stat().st_size > 10_000
    assert "points=12, seeds=2" in repr(batched)


def test_cli_sweep_writes_each_point_as_a_run_directory_and_resumes(tmp_path, capsys):
    """`hjax sweep` (the batched program of the fixture, served from the process's cache), then
    `--resume` one epoch longer, which ends exactly as an uninterrupted 3-epoch sweep."""
    tiny_args = ["--num-envs", "4", "--grad-steps-per-epoch", "2", "--hidden-sizes", "8", "--batch-size", "16",
                 "--buffer-episodes", "8", "--num-eval-envs", "2", "--chunk-epochs", "1", "--no-progress"]
    grid_args = ["--grid", "her_strategy=future,final,none", "--grid", "replay-k=2,8", "--grid", "actor_lr=0.001,0.003"]
    out = tmp_path / "ablation"
    assert cli.main(["sweep", *grid_args, "--num-seeds", "2", "--num-epochs", "2", "--save-buffer", *tiny_args,
                     "--run-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "final success IQM" in printed and str(out) in printed
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["grid"] == GRID and saved["num_seeds"] == 2 and len(saved["points"]) == 12
    for name in ("table.json", "sweep.png", "checkpoints"):
        assert (out / name).exists(), name
    record = hjax.runs.read_run(out / "points" / "011")
    assert record.config.her_strategy == "none" and record.config.replay_k == 8.0
    assert record.metrics["eval/success_rate"].shape == (2, 2)
    assert cli.main(["diagnose", str(out / "points" / "011")]) == 0
    assert "verdict:" in capsys.readouterr().out

    # A used directory is refused, naming both ways on, before anything runs.
    assert cli.main(["sweep", *grid_args, *tiny_args, "--run-dir", str(out)]) == 2
    assert f"hjax sweep --resume {out}" in capsys.readouterr().err
    with pytest.raises(rundir.RunInUseError):
        with rundir.claim(out, resume=True, command="sweep"):  # a second writer while one holds it
            hjax.sweep(base(), GRID, SEEDS, resume=out, verbose=False)

    assert cli.main(["sweep", "--resume", str(out), "--num-epochs", "3", "--no-progress"]) == 0
    resumed = hjax.runs.read_run(out / "points" / "004")
    uninterrupted = hjax.sweep(base().replace(num_epochs=3), GRID, SEEDS, progress_bar=False, verbose=False)
    for name, values in uninterrupted.point(4).metrics.items():
        np.testing.assert_array_equal(resumed.metrics[name], np.asarray(values, resumed.metrics[name].dtype),
                                      err_msg=name)
    with pytest.raises(hjax.runs.CheckpointError, match=r"grid: .*replay_k"):
        hjax.sweep(base().replace(num_epochs=3), {**GRID, "replay_k": [4.0]}, SEEDS, resume=out, verbose=False)


def test_a_point_directory_loads_its_part_of_the_sweep_checkpoint(batched, tmp_path, capsys):
    """`load_run`, `evaluate` and `hjax eval` on SWEEP_DIR/points/NNN (no checkpoint of its own)
    give that point's state and history, as the in-memory SweepResult holds them."""
    from hjax import loading

    out = tmp_path / "grid"
    result = hjax.sweep(base(), GRID, SEEDS, progress_bar=False, verbose=False, batch_points=True, run_dir=out)
    for i in REFERENCE_POINTS:
        path = out / "points" / f"{i:03d}"
        assert hjax.runs.sweep_point(path) == (out, i)
        loaded = loading.load_run(path)
        assert loaded.epoch == TINY["num_epochs"] and loaded.num_seeds == SEEDS
        assert loaded.config == result.point(i).config
        # Everything but the replay buffer, which a checkpoint holds only with save_buffer.
        for got, want in zip(_leaves(loaded.state.replace(buffer=None)),
                             _leaves(result.point(i).state.replace(buffer=None)), strict=True):
            np.testing.assert_array_equal(got, want)
        for name, values in result.point(i).metrics.items():
            np.testing.assert_array_equal(loaded.metrics[name], np.asarray(values, loaded.metrics[name].dtype))
        assert loading.evaluate(path, episodes=4, seed_index=1) == {
            **loading.evaluate(result.point(i), episodes=4, seed_index=1), "epoch": TINY["num_epochs"]}
    assert hjax.runs.sweep_point(out) is None and hjax.runs.sweep_point(tmp_path) is None
    assert cli.main(["eval", str(out / "points" / "004"), "--episodes", "4"]) == 0
    assert "success" in capsys.readouterr().out


def test_the_success_radius_sweeps_as_an_env_parameter():
    """`distance_threshold` is swept by name (an env parameter, not a Config field): each point's
    Config carries it in env_kwargs, and the point equals `hjax.train` of that Config bit for bit
    (success, rewards and HER's relabeled rewards all read the radius)."""
    config = base().replace(num_epochs=1)
    result = hjax.sweep(config, {"distance_threshold": [0.05, 0.3]}, 1, progress_bar=False, verbose=False,
                        batch_points=False)
    assert [dict(c.env_kwargs) for c in result.grid.configs] == [{"distance_threshold": 0.05},
                                                                  {"distance_threshold": 0.3}]
    alone = hjax.train(result.grid.configs[1], num_seeds=1, progress_bar=False, verbose=False)
    for name, values in alone.metrics.items():
        np.testing.assert_array_equal(result.metrics[name][1], values, err_msg=name)
    # the radius matters: a 6x larger one counts other successes
    assert not np.array_equal(result.metrics["replay/positive_reward_fraction"][0],
                              result.metrics["replay/positive_reward_fraction"][1])
