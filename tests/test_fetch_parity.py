"""The gripper tasks against Gymnasium-Robotics' own Fetch envs (MuJoCo's C engine), run unchanged
through `hjax.fetch` in their own virtual environment (created on first use; `bash dev.sh test`
keeps it in .venv-fetch). Small samples here; `python -m benchmarks.fetch_parity` runs the full
ones and writes the parity table with the tolerances of issue 24."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from hjax.envs import gripper as g

from benchmarks import fetch_parity as fp
from hjax import fetch


@pytest.mark.parametrize("task", list(fetch.TASKS))
def test_the_same_state_gives_the_same_observation(task):
    """The arm moved by random actions, the object set to random tilted poses and velocities:
    hjax's observation of each state equals Fetch's vector entry by entry (float32 rounding):
    frame, units, finger order, Euler convention, velocities per step."""
    diff, ours, theirs = fp.observation_difference(task, 6, seed=100)
    assert ours.shape == theirs.shape and diff < 2e-6, diff


def test_euler_angles_are_fetchs():
    """The issue's own example: a cube yawed 30 and tilted 20 degrees reads (17.5, 9.85, 28.48)
    degrees in Fetch (a roll-pitch-yaw reading would say (20, 0, 30)); hjax reads the same."""
    def quat(axis, deg):
        a = np.deg2rad(deg) / 2
        return np.array([np.cos(a), *(np.sin(a) * np.asarray(axis))])

    def mul(p, q):
        w1, v1, w2, v2 = p[0], p[1:], q[0], q[1:]
        return np.array([w1 * w2 - v1 @ v2, *(w1 * v2 + w2 * v1 + np.cross(v1, v2))])

    q = mul(quat([0, 0, 1], 30), quat([1, 0, 0], 20))
    with fetch.FetchReference("gripper_push", 1) as ref:
        ref.reset([0])
        row = ref.state()[0]
        obs = ref.set_object([[*row["object_qpos"][:3], *q]], np.zeros((1, 6)))
    ours = np.rad2deg(np.asarray(g.quat_to_euler(jnp.asarray(q, jnp.float32))))
    np.testing.assert_allclose(ours, np.rad2deg(obs["observation"][0, 11:14]), atol=1e-4)
    np.testing.assert_allclose(ours, [17.5, 9.85, 28.48], atol=0.01)


@pytest.mark.parametrize("task", list(fetch.TASKS))
def test_reset_distributions_match(task):
    """300 resets per side: goal and object start coordinates pass a two-sample KS test
    (p > 0.001 each), the goals met at reset agree within 4 standard errors, and the gripper
    starts where Fetch's does (push and slide: up to 7 mm higher, where hjax's fingertips stop
    1 mm above the table)."""
    n = 300
    rows, met, (ours, theirs) = fp.compare_resets(task, n, seed=5000)
    for name, statistic, p in rows:
        assert p > fp.KS_P_MIN, (task, name, statistic, p)
    se = np.sqrt(sum(m * (1 - m) / n for m in met))
    assert abs(met[0] - met[1]) <= 4 * max(se, 1 / n), (task, met)
    # (Fetch's arm settles by up to 0.04 mm between `initial_gripper_xpos` and the first observation)
    np.testing.assert_allclose(ours[:2], theirs[:2], atol=1e-4)
    assert -1e-4 <= ours[2] - theirs[2] <= fp.START_Z_MM / 1000, (ours, theirs)


def test_free_space_kinematics_follow_fetchs_arm():
    """FetchReach: 8 episodes of 20 uniform random actions from the same start. Each step's
    displacement of the grip point agrees with Fetch's arm within 5 mm at the 95th percentile
    (median about 1.5 mm: Fetch's arm adds its own inertia and joint limits to the mocap weld
    that hjax's drive copies)."""
    err = fp.step_differences("gripper_reach", episodes=8, steps=20, seed=300)
    assert np.percentile(err, 95) < fp.STEP_MM / 1000 and np.median(err) < 0.003, (np.median(err), np.percentile(err, 95))


@pytest.mark.parametrize("policy", ["zero", "random"])
def test_zero_action_and_random_success_match_on_push(policy):
    """FetchPush, 100 episodes per side: zero action and uniform random actions succeed at rates
    within 4 standard errors of Fetch's (both near the goals met at reset, about 7%)."""
    n = 100
    ours, theirs = fp.baseline_success("gripper_push", policy, n, seed=7000)
    se = np.sqrt((ours * (1 - ours) + theirs * (1 - theirs)) / n)
    assert abs(ours - theirs) <= 4 * max(se, 1 / n), (policy, ours, theirs)


def test_hjax_eval_fetch_plays_a_trained_run_on_fetchs_env(tmp_path, capsys):
    """`hjax eval RUN_DIR --fetch`: a (tiny) gripper_push run's policy, with its normaliser, is
    played on FetchPush-v4 and both figures are printed; the Fetch figure is `play_run`'s, and
    the actions sent are the policy's on Fetch's own observations."""
    import hjax
    from hjax import cli, loading

    run_dir = tmp_path / "push"
    cfg = hjax.Config(env="gripper_push", num_envs=8, num_epochs=1, chunk_epochs=1, grad_steps_per_epoch=2,
                      batch_size=32, buffer_episodes=16, num_eval_envs=8, hidden_sizes=(16,))
    hjax.train(cfg, run_dir=run_dir, progress_bar=False, verbose=False)
    assert cli.main(["eval", str(run_dir), "--fetch", "--episodes", "10"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith(f"{run_dir} (epoch 1), 10 deterministic episodes: success rate ")
    f = fetch.play_run(run_dir, episodes=10, seed=12345)
    assert out[1].startswith("FetchPush-v4 (Gymnasium-Robotics 1.4.2, MuJoCo 3.3.7), the same policy, 10 episodes: "
                             f"success rate {f['success_rate']:.3f} (")
    assert f["per_episode"]["success"].shape == (10,) and f["task"] == "gripper_push" and f["epoch"] == 1
    per = f["per_episode"]  # the goals each episode ends with, as its final distance says
    np.testing.assert_allclose(np.linalg.norm(per["final_achieved_goal"] - per["desired_goal"], axis=-1),
                               per["final_distance"], atol=1e-9)
    policy = loading.load_policy(run_dir)
    with fetch.FetchReference("gripper_push", 2) as ref:
        obs = ref.reset([12345, 12346])
    actions = np.asarray(policy({k: jnp.asarray(v, jnp.float32) for k, v in obs.items()}))
    assert actions.shape == (2, 4) and np.isfinite(actions).all() and np.abs(actions).max() <= 1.0


def test_cross_play_refuses_what_fetch_cannot_play(tmp_path):
    import hjax

    run_dir = tmp_path / "pm"
    hjax.train(hjax.Config(env="point_mass", num_envs=4, num_epochs=1, grad_steps_per_epoch=2, batch_size=16,
                           buffer_episodes=8, num_eval_envs=4, hidden_sizes=(8,)),
               run_dir=run_dir, progress_bar=False, verbose=False)
    with pytest.raises(ValueError, match="invalid env='point_mass' for Fetch cross-play; allowed: gripper_reach"):
        fetch.play_run(run_dir)
    with pytest.raises(ValueError, match="invalid task='push'"):
        fetch.FetchReference("push")


@pytest.mark.parametrize("task", list(fp.SCRIPTED))
def test_hjaxs_scripted_controllers_succeed_on_fetch(task):
    """The scripted push and pick-and-place controllers of `envs.gripper` (written and tuned on
    hjax's tasks; tests/test_gripper.py holds them to >= 80% there) succeed on Fetch's own envs
    too, 40 episodes: the tasks ask the same of a controller (measured at 200 episodes: push
    0.95, pick-and-place 1.00 on Fetch)."""
    import jax

    r = fetch.play(fetch.numpy_policy(jax.vmap(fp.SCRIPTED[task])), task, episodes=40, seed=900, num_envs=40)
    assert r["success_rate"] >= 0.8, r["success_rate"]


@pytest.mark.parametrize("task", ["gripper_push", "gripper_pick_and_place"])
def test_controllers_tuned_on_fetch_succeed_unchanged_on_hjax(task):
    """Issue 24's scripted check: controllers written and tuned on Fetch's envs only
    (`benchmarks.fetch_scripted`) succeed on Fetch and, unchanged, as often on hjax's task
    (40 episodes a side; measured at 200: push 0.990 on Fetch / 0.975 here, pick-and-place 1.000 /
    1.000). Slide's is not held here: it reaches 0.175 on Fetch and 0.490 on hjax (the puck's
    creep on Fetch; see docs/environments.md)."""
    from benchmarks.fetch_scripted import POLICIES

    ours, theirs = fp.scripted_success(task, 40, seed=910, policies=POLICIES)
    assert theirs >= 0.8 and abs(ours - theirs) <= 0.15, (ours, theirs)


def test_a_scripted_push_moves_the_cube_as_on_fetch():
    """Issue 24's object response: the push controller tuned on Fetch, from the same 20 starts
    on both sides, leaves the cube within 1 cm of where Fetch's ends (median; measured on 60:
    3.8 mm median, 4.3 cm at the 90th percentile)."""
    ours, theirs = fp.scripted_push_response(20, seed=61_000)
    err = np.linalg.norm(ours - theirs, axis=1)
    assert np.median(err) < 0.01, np.sort(err)


@pytest.mark.parametrize("task", list(fetch.TASKS))
def test_table_and_object_are_fetchs(task):
    """Table centre, half-size and top, the object's shape and size (slide: Fetch's cylinder) and
    its friction, as read from the reference's own MuJoCo model."""
    ours, theirs = fp.table_and_object(task)
    np.testing.assert_allclose(ours["table"], theirs["table"], atol=1e-6)
    assert ours.keys() == theirs.keys()
    if "object" in ours:
        assert ours["object"][0] == theirs["object"][0], (ours, theirs)
        np.testing.assert_allclose(ours["object"][1], theirs["object"][1], atol=1e-4)
        assert ours["object_friction"] == theirs["object_friction"]


@pytest.mark.parametrize("task", ["gripper_push", "gripper_slide"])
def test_an_object_leaving_the_table_falls_off_it(task):
    """The object set 1 cm inside an edge of Fetch's table, moving outward at 0.5 m/s: after 1 s
    it lies on the floor on both sides (Fetch: it tips over and falls; hjax: `fall_off`), out of
    reach of every goal on the table."""
    ours, theirs = fp.fall_off_edge(task, 6, seed=7)
    assert (theirs < 0.1).all(), theirs  # the reference itself: on the floor (z = 0 m)
    np.testing.assert_allclose(ours, theirs, atol=0.01)


@pytest.mark.parametrize("task", ["gripper_push", "gripper_slide"])
def test_the_gripper_stops_where_fetchs_arm_does(task):
    """Driven toward targets over and beyond the table (a coarse grid of the region the task
    uses), the grip point ends where Fetch's does: the targets Fetch's arm reaches are reached
    on both sides, and where it stops short (slide: far goals must be reached by sliding),
    hjax's reach ball stops the gripper within a few cm of it (the ball is a fit, see
    benchmarks/results/fetch_workspace.md)."""
    targets = fp.reach_targets(task, spacing=0.2)
    theirs = fp.drive_to_targets(task, targets, steps=40, on_fetch=True)
    ours = fp.drive_to_targets(task, targets, steps=40, on_fetch=False)
    reached = np.linalg.norm(theirs - targets, axis=1) < 0.005
    assert 0 < reached.mean() < 1, reached.mean()  # the grid covers both kinds of target
    err = np.linalg.norm(ours - theirs, axis=1)
    assert np.median(err[reached]) < 0.005, np.median(err[reached])
    assert np.median(err) < fp.REACH_MEDIAN_M and np.percentile(err, 90) < fp.REACH_P90_M, np.percentile(err, [50, 90])
    table_height = targets[:, 2] < g.TABLE_TOP + 0.03  # how far ahead the gripper gets at the puck's height
    assert abs(ours[table_height, 0].max() - theirs[table_height, 0].max()) < 0.02


def test_fingers_move_as_fetchs():
    """benchmarks.fetch_fingers: the arm held still, 6 steps of +1 then 10 of -1 on the finger
    command, from the same resets. On both sides the fingers start closed, end the opening fully
    open (Fetch's 5 cm travel) and the closing closed, and at every step in between each finger
    is within 6 mm of Fetch's (env version 4's slower drive: 22 mm after the first step). Under
    the same random finger commands each step's displacement agrees within the parity table's
    5 mm (95th percentile; version 4: 22 mm)."""
    from benchmarks import fetch_fingers as ff

    theirs, ours = ff.finger_paths(ff.open_close_commands(2), seed=510)
    for side in (theirs, ours):
        assert np.abs(side[0]).max() < 1e-3, side[0]
        np.testing.assert_allclose(side[ff.OPEN_STEPS], g.FINGER_TRAVEL, atol=1e-3)
        assert np.abs(side[-1]).max() < 2e-3, side[-1]
    assert np.abs(ours - theirs).max() < 0.006, np.abs(ours - theirs).max(axis=(1, 2))
    err = ff.random_differences(4, seed=511)
    assert np.percentile(err, 95) < fp.STEP_MM / 1000, np.percentile(err, 95)


def test_pressed_fingers_close_as_fetchs():
    """benchmarks.fetch_fingers' grasp on the table: fingers opened, the gripper lowered onto the
    table away from the cube, then 10 steps of -1 on the fingers. Pressing down (z -1), Fetch's
    fingertips drag on its table and stay over 40 mm open; hjax's follow within 3 mm at every
    step (env version 5, whose fingertips never met the table, closed them in 3 steps), the grip
    point pressed within 4 mm of Fetch's height. Resting there (z 0) both close fully and each
    step is within 7 mm of Fetch's (6.3 mm at most, on the third closing step)."""
    from benchmarks import fetch_fingers as ff

    start = ff.PRESS_OPEN_STEPS + ff.PRESS_DOWN_STEPS
    theirs, ours = ff.pressed_paths(2, seed=512, z=-1.0)
    assert theirs[-1, :, 1:].min() > 0.040, theirs[-1, :, 1:]
    assert np.abs(ours[start:, :, 1:] - theirs[start:, :, 1:]).max() < 0.003
    assert np.abs(ours[start:, :, 0] - theirs[start:, :, 0]).max() < 0.004
    assert ours[start:, :, 0].max() < g.TABLE_TOP - g.FINGER_BOTTOM  # the fingertips are in the table
    theirs, ours = ff.pressed_paths(2, seed=512, z=0.0)
    for side in (theirs, ours):
        assert np.abs(side[-1, :, 1:]).max() < 0.002, side[-1, :, 1:]
    assert np.abs(ours[start:, :, 1:] - theirs[start:, :, 1:]).max() < 0.007
