"""The gripper tasks (`envs.gripper`, MJX): physics checked against things the env did not write.

- zero action leaves everything still; random actions keep the object on the table, finite;
- scripted controllers (pick-and-place, push) solve >= 80% of 256 episodes, so the tasks are
  feasible with this physics, and a grasped cube stays in the fingers during a 1 s hold;
- MuJoCo's C engine (`mujoco.mj_step` on the same XML), replaying the scripted pick-and-place
  episodes' actions from the same start states, ends with the cube within 1 cm of MJX's result
  (the scripted pushes: tests/test_gripper_fidelity.py);
- the observation matches MuJoCo's own kinematics (positions, world-frame velocities);
- start and goal distributions as Fetch's.

Cost: the random rollouts reuse the session's compiled batch per env (`tests/env_rollouts.py`,
shared with test_envs.py); the scripted episodes compile and run once per controller and session
(`scripted_pushes` is shared with test_gripper_fidelity.py).
"""

import functools

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from hjax import envs
from benchmarks.gripper_fidelity import mujoco_replay
from hjax.envs import gripper as g
from env_rollouts import compiled

OBJECT_TASKS = ("gripper_push", "gripper_slide", "gripper_pick_and_place")
HOLD_STEPS = 25  # 1 s at 25 Hz
FIDELITY_EPISODES = 8


def _scripted(env, policy, num_envs, steps, key):
    """`steps` steps of `policy` on `num_envs` fresh episodes: (state0, states, actions)."""
    state0 = jax.vmap(env.reset)(jax.random.split(key, num_envs))

    def body(state, _):
        action = jax.vmap(policy)(state.obs)
        state = jax.vmap(env.step)(state, action)
        return state, (state, action)

    _, (states, actions) = jax.lax.scan(body, state0, None, steps)
    return state0, states, actions


@pytest.fixture(scope="module")
def pick_episodes():
    """256 scripted pick-and-place episodes, run on for a 1 s hold after the 50 steps."""
    env = envs.make("gripper_pick_and_place")
    run = jax.jit(lambda key: _scripted(env, g.pick_and_place_policy, 256, env.episode_length + HOLD_STEPS, key))
    return env, jax.device_get(run(jax.random.PRNGKey(100)))


@functools.lru_cache(maxsize=None)
def scripted_pushes():
    """256 scripted push episodes of a fixed key, run once per session: `(env, (state0, states,
    actions))` on the host. test_gripper_fidelity.py replays the first of them in MuJoCo's C engine."""
    env = envs.make("gripper_push")
    run = jax.jit(lambda key: _scripted(env, g.push_policy, 256, env.episode_length, key))
    return env, jax.device_get(run(jax.random.PRNGKey(101)))


@pytest.fixture(scope="module")
def push_episodes():
    return scripted_pushes()


def _lowest_corner(qpos):
    """Height of the cube's lowest corner for qpos (..., 12): < 0 is sinking into the table."""
    quat = qpos[..., g.OBJECT_QUAT]
    w, x, y, z = np.moveaxis(quat, -1, 0)
    # Third row of the rotation matrix: the z components of the cube's rotated axes.
    rz = np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)
    return qpos[..., 7] - g.OBJECT_HALF_SIZE * np.abs(rz).sum(-1)


# ---- still under zero action, sane under random actions ----------------------------------------

@pytest.mark.parametrize("name", ("gripper_reach",) + OBJECT_TASKS)
def test_zero_action_keeps_everything_still(name):
    run = compiled(name)
    s0 = run.reset(jax.random.PRNGKey(110))
    _, states = run.rollout(s0, jax.random.PRNGKey(111), run.zeros(), 0.0)
    q0, q = np.asarray(s0.pipeline_state.qpos), np.asarray(states.pipeline_state.qpos)
    grip_moved = np.linalg.norm(q[:, :, g.GRIP] - q0[None, :, g.GRIP], axis=-1)
    assert grip_moved.max() < 1e-3, grip_moved.max()
    if name != "gripper_reach":
        env = run.env
        moved = np.linalg.norm(q[:, :, g.OBJECT_POS] - q0[None, :, g.OBJECT_POS], axis=-1)
        assert moved.max() < 1e-3, moved.max()
        np.testing.assert_allclose(q[-1, :, 7], env.object_rest_height, atol=1e-3)


@pytest.mark.parametrize("name", OBJECT_TASKS)
def test_random_actions_keep_the_object_on_the_table(name):
    """256 envs x 50 random steps: all finite; the object neither sinks into the table deeper
    than Fetch's does nor flies off. The gripper's drive is a constraint, as Fetch's mocap weld,
    so fingers pressing on the object's top edge drive it into the soft table contact: on
    FetchPush-v4 under random actions (256 episodes, `hjax.fetch`) the cube's lowest corner went
    2.7 cm below the table at worst, and below 0.8 mm in 1% of the steps (measured). Pick-and-place's
    gripper presses its fingertips into the table too (env version 6), so it drives the cube deeper:
    3.7 cm here at worst; FetchPickAndPlace-v4, 256 random episodes from seed 2000, counting only
    cubes whose centre is still above the table's height: 5.2 cm at worst, 1% below 2.2 mm."""
    run = compiled(name)
    s0 = run.reset(jax.random.PRNGKey(112))
    _, states = run.rollout(s0, jax.random.PRNGKey(113), run.zeros(), 1.0)
    for leaf in jax.tree.leaves((states.obs, states.reward, states.pipeline_state.qpos)):
        assert np.isfinite(np.asarray(leaf)).all()
    q = np.asarray(states.pipeline_state.qpos)
    z = q[..., 7]
    if name == "gripper_slide":
        # The gripper starts at the puck's height (Fetch's low start), so random actions press
        # the fingers onto the puck's top edge, the constraint drive as hard as it takes, and the
        # soft contact lets it sink. Fetch's own puck rests 6.5 mm into its table (hjax.fetch,
        # FetchSlide-v4 height_offset).
        assert z.min() > g.PUCK_HALF_HEIGHT - 0.015 and z.max() < 0.3
    else:
        low = _lowest_corner(q)
        assert low.min() > (-0.05 if name == "gripper_pick_and_place" else -0.03) and np.percentile(low, 1) > -0.003, (low.min(), np.percentile(low, 1))
        assert z.max() < 0.3
    moved = np.linalg.norm(q[-1, :, g.OBJECT_POS] - np.asarray(s0.pipeline_state.qpos)[:, g.OBJECT_POS], axis=-1)
    assert (moved > 0.01).any()  # random actions do hit the object sometimes
    grip_z = q[..., 2]
    if name == "gripper_pick_and_place":
        # Its fingertips meet the table and are pressed into it (FetchPickAndPlace-v4's too, the same
        # 256 random episodes: grip point below 0.4167 m, 1.8 mm in, in 1% of the steps), the table's
        # soft contact holding them within 1.2 cm (1 cm at worst here).
        assert grip_z.min() > -g.FINGER_BOTTOM - 0.012 and (grip_z < g.Z_MIN - 1e-3).any(), grip_z.min()
    else:
        assert grip_z.min() >= g.Z_MIN - 1e-3  # the fingertips never reach the table


@pytest.mark.parametrize("name", ("gripper_push", "gripper_pick_and_place"))
def test_random_policy_rarely_succeeds(name):
    run = compiled(name)
    rates = []
    for k in (114, 115):
        s0, states = run.episode(jax.random.PRNGKey(k))
        # Fetch's goals can fall within the threshold of the object's start (~7% on push): only
        # episodes that do not start solved count.
        unsolved = np.asarray(s0.metrics["success"]) == 0
        rates.append(np.asarray(states.metrics["success"][-1])[unsolved])
    rate = float(np.concatenate(rates).mean())
    assert rate < 0.05, rate


# ---- scripted controllers: the tasks are feasible ---------------------------------------------

def test_scripted_pick_and_place_succeeds_and_holds(pick_episodes):
    env, (s0, states, _) = pick_episodes
    T = env.episode_length
    success = np.asarray(states.metrics["success"][T - 1])
    goal_z = np.asarray(s0.obs["desired_goal"][:, 2])
    air = goal_z > env.origin[2] + env.object_rest_height + 0.05  # goals are in Fetch's frame
    assert success.mean() >= 0.8, success.mean()
    assert air.sum() > 50 and success[air].mean() >= 0.8, success[air].mean()
    # The 1 s hold after the episode: the cube, in the air at the goal, stays in the fingers.
    held = success.astype(bool) & air
    q = np.asarray(states.pipeline_state.qpos[T - 1:, held])  # (1 + HOLD_STEPS, envs, nq)
    offset = q[:, :, g.OBJECT_POS] - q[:, :, g.GRIP]
    slip = np.linalg.norm(offset - offset[:1], axis=-1).max(axis=0)
    assert slip.max() < 0.01, np.sort(slip)[-5:]
    assert (q[-1, :, 7] > env.object_rest_height + 0.04).all()  # still up in the air


def test_scripted_push_succeeds(push_episodes):
    env, (_, states, _) = push_episodes
    success = np.asarray(states.metrics["success"][-1])
    assert success.mean() >= 0.8, success.mean()


def test_mjx_matches_mujoco_c_engine(pick_episodes, record_property):
    """The scripted pick-and-place episodes replayed by `mujoco.mj_step` (float64, MuJoCo's own
    collision code) with the same actions: the cube ends within 1 cm of MJX's result. (The
    scripted pushes: tests/test_gripper_fidelity.py.)"""
    env, (s0, states, actions) = pick_episodes
    T = env.episode_length
    errors = []
    for i in range(FIDELITY_EPISODES):
        ref = mujoco_replay(env, np.asarray(s0.pipeline_state.qpos[i], np.float64), actions[:T, i])
        errors.append(np.linalg.norm(ref[-1] - np.asarray(states.pipeline_state.qpos[T - 1, i, g.OBJECT_POS])))
    errors = np.asarray(errors)
    record_property("final_cube_error_m", errors.tolist())
    assert errors.max() < 0.01, errors


# ---- observation, starts and goals -------------------------------------------------------------

def test_observation_matches_mujoco_kinematics():
    """Fetch's layout, checked against MuJoCo's own positions and world-frame velocities."""
    run = compiled("gripper_pick_and_place")
    env = run.env
    _, states = run.episode(jax.random.PRNGKey(116))
    model, data = env.mj_model, mujoco.MjData(env.mj_model)
    obj_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "object")
    grip_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "gripper")
    checked = 0
    for t, i in [(10, 0), (25, 3), (40, 7), (49, 11)]:
        data.qpos[:] = states.pipeline_state.qpos[t, i]
        data.qvel[:] = states.pipeline_state.qvel[t, i]
        mujoco.mj_forward(model, data)
        o = np.asarray(states.obs["observation"][t, i])
        vel = np.zeros(6)
        mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_BODY, obj_id, vel, 0)  # [ang, lin]
        grip_vel = np.zeros(6)
        mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_BODY, grip_id, grip_vel, 0)
        m = data.xmat[obj_id].reshape(3, 3)
        # Fetch's rotations.mat2euler of MuJoCo's rotation matrix (regular case)
        cy = np.hypot(m[2, 2], m[1, 2])
        euler = [-np.arctan2(m[1, 2], m[2, 2]), -np.arctan2(-m[0, 2], cy), -np.arctan2(m[0, 1], m[0, 0])]
        dt, origin = env.dt, env.origin  # observations are in Fetch's frame: physics + origin
        np.testing.assert_allclose(o[0:3], data.xpos[grip_id] + origin, atol=1e-5)
        np.testing.assert_allclose(o[3:6], data.xpos[obj_id] + origin, atol=1e-5)
        np.testing.assert_allclose(o[6:9], data.xpos[obj_id] - data.xpos[grip_id], atol=1e-5)
        np.testing.assert_allclose(o[9:11], data.qpos[[4, 3]], atol=1e-6)  # Fetch's finger order (r, l)
        np.testing.assert_allclose(o[11:14], euler, atol=1e-4)
        np.testing.assert_allclose(o[14:17], (vel[3:] - grip_vel[3:]) * dt, atol=1e-5)
        np.testing.assert_allclose(o[17:20], vel[:3] * dt, atol=1e-5)
        np.testing.assert_allclose(o[20:23], grip_vel[3:] * dt, atol=1e-5)
        np.testing.assert_allclose(o[23:25], data.qvel[[4, 3]] * dt, atol=1e-6)
        np.testing.assert_allclose(states.obs["achieved_goal"][t, i], data.xpos[obj_id] + origin, atol=1e-5)
        checked += 1
    assert checked == 4
    reach = compiled("gripper_reach")
    _, states = reach.episode(jax.random.PRNGKey(117))
    o, q, v = (np.asarray(x[20, 0]) for x in (states.obs["observation"], states.pipeline_state.qpos,
                                               states.pipeline_state.qvel))
    origin = reach.env.origin
    np.testing.assert_allclose(o, np.concatenate([q[:3] + origin, q[[4, 3]], v[:3] * 0.04, v[[4, 3]] * 0.04]), atol=1e-6)
    np.testing.assert_allclose(states.obs["achieved_goal"][20, 0], q[:3] + origin, atol=1e-7)


@pytest.mark.parametrize("name", ("gripper_reach",) + OBJECT_TASKS)
def test_start_and_goal_distributions(name):
    run = compiled(name)
    env = run.env
    s0 = jax.device_get(run.reset(jax.random.PRNGKey(118)))
    start = env.gripper_start
    q = np.asarray(s0.pipeline_state.qpos)
    np.testing.assert_allclose(q[:, g.GRIP], np.broadcast_to(start, q[:, g.GRIP].shape), atol=1e-6)
    np.testing.assert_array_equal(q[:, g.FINGERS], 0.0)
    goal = np.asarray(s0.obs["desired_goal"]) - env.origin - start  # from Fetch's frame to the start
    if name == "gripper_reach":
        assert np.abs(goal).max() <= g.TARGET_RANGE + 1e-6
        assert (goal.min(0) < -0.1).all() and (goal.max(0) > 0.1).all()  # spread over the cube
        return
    obj = q[:, g.OBJECT_POS]
    r = np.linalg.norm(obj[:, :2] - start[:2], axis=-1)
    rng = g.SLIDE_OBJECT_RANGE if name == "gripper_slide" else g.OBJECT_RANGE
    assert r.min() >= 0.1 - 1e-6 and np.abs(obj[:, :2] - start[:2]).max() <= rng + 1e-6
    np.testing.assert_allclose(obj[:, 2], env.object_rest_height)
    if name == "gripper_slide":
        assert np.abs(goal[:, 0] - 0.4).max() <= 0.3 + 1e-6 and np.abs(goal[:, 1]).max() <= 0.3 + 1e-6
        assert goal[:, 0].min() < 0.2 and goal[:, 0].max() > 0.6
    else:
        assert np.abs(goal[:, :2]).max() <= g.TARGET_RANGE + 1e-6
    lift = goal[:, 2] + start[2] - env.object_rest_height  # goal height above the object's rest
    if name == "gripper_pick_and_place":
        air = lift > 1e-6
        assert 0.35 < air.mean() < 0.65 and lift.max() <= 0.45 + 1e-6 and lift.max() > 0.3
    else:
        np.testing.assert_allclose(lift, 0.0, atol=1e-6)


def test_blocked_fingers_ignore_the_finger_command():
    env = envs.make("gripper_push")
    q = np.asarray(env.start_qpos(jnp.array([0.1, 0.0])))
    for cmd in (-1.0, 0.0, 1.0):
        ctrl = np.asarray(env.ctrl(q, np.array([1.0, -0.5, 2.0, cmd])))
        np.testing.assert_allclose(ctrl, [0.05, -0.025, min(env.gripper_start[2] + 0.05, g.Z_MAX), 0, 0], atol=1e-7)
    # Pick-and-place: Fetch's ctrl = qpos + action within its ctrlrange 0-0.2 (pick_and_place.xml),
    # so +1 drives the closed fingers toward 0.2 m, beyond their 5 cm travel.
    pick = envs.make("gripper_pick_and_place")
    q = np.asarray(pick.start_qpos(jnp.array([0.1, 0.0])))
    np.testing.assert_allclose(np.asarray(pick.ctrl(q, np.array([0, 0, -9.0, 1.0])))[2:],
                               [pick.gripper_start[2] - 0.05, 0.2, 0.2], atol=1e-7)
    q = q.copy()
    q[3:5] = 0.03
    np.testing.assert_allclose(np.asarray(pick.ctrl(q, np.array([0, 0, 0, -0.01])))[3:], [0.02, 0.02], atol=1e-7)


def test_validation_errors():
    with pytest.raises(ValueError, match="GripperPush: invalid n_frames=0"):
        envs.make("gripper_push", n_frames=0)
    with pytest.raises(ValueError, match="iterations=1.5"):
        envs.make("gripper_slide", iterations=1.5)
    with pytest.raises(ValueError, match="distance_threshold=-1"):
        envs.make("gripper_reach", distance_threshold=-1)
    with pytest.raises(ValueError, match="unknown override 'backend'"):
        envs.make("gripper_pick_and_place", backend="spring")


# ---- pick-and-place's grasped training starts (grasped_start_prob) -----------------------------

def test_train_reset_without_grasped_starts_is_reset_bit_for_bit():
    env = envs.make("gripper_pick_and_place")
    keys = jax.random.split(jax.random.PRNGKey(7), 4)
    both = jax.jit(lambda k: (jax.vmap(env.reset)(k), jax.vmap(env.train_reset)(k)))(keys)
    jax.tree.map(np.testing.assert_array_equal, *jax.device_get(both))


def test_grasped_starts_share_and_samples():
    """At probability 0.5 about half the training starts hold the cube between the fingers
    (grip point within 1 cm of the cube's centre; Fetch's starts are >= 10 cm apart); object
    and goal are those `reset` samples from the same key's first half."""
    env = envs.make("gripper_pick_and_place", grasped_start_prob=0.5)
    n = 512
    keys = jax.random.split(jax.random.PRNGKey(8), n)
    grasped, plain = jax.device_get(jax.jit(lambda k: (
        jax.vmap(env.train_reset)(k), jax.vmap(env.reset)(jax.vmap(lambda kk: jax.random.split(kk)[0])(k))))(keys))
    o = grasped.obs["observation"]
    near = np.linalg.norm(o[:, 0:3] - o[:, 3:6], axis=-1) < 0.01
    assert abs(near.mean() - 0.5) < 4 * np.sqrt(0.25 / n), near.mean()
    np.testing.assert_array_equal(grasped.obs["desired_goal"], plain.obs["desired_goal"])
    np.testing.assert_array_equal(grasped.obs["achieved_goal"], plain.obs["achieved_goal"])  # the cube
    np.testing.assert_array_equal(o[~near], plain.obs["observation"][~near])
    np.testing.assert_allclose(o[near, 9:11], g.GripperPickAndPlace.GRASP_FINGER, atol=1e-6)


def test_a_grasped_start_holds_the_cube_in_mujocos_c_engine():
    """From a grasped start, 15 steps up with the fingers closing then 10 still: in MuJoCo's C
    engine (its own collision and solver code, float64) on the env's XML, as in MJX, the cube
    rises with the gripper more than 20 cm and slips less than 1 cm in the fingers; MJX's cube
    ends within 1 cm of the C engine's."""
    env = envs.make("gripper_pick_and_place", grasped_start_prob=1.0)
    state = jax.jit(env.train_reset)(jax.random.PRNGKey(9))
    actions = np.array([[0.0, 0.0, 0.5, -1.0]] * 15 + [[0.0, 0.0, 0.0, -1.0]] * 10, np.float32)
    qpos0 = np.asarray(state.pipeline_state.qpos, np.float64)
    ref = mujoco_replay(env, qpos0, actions, full=True)
    _, mjx_q = jax.lax.scan(lambda s, a: (lambda n: (n, n.pipeline_state.qpos))(env.step(s, a)), state, actions)
    mjx_q = np.asarray(mjx_q)
    for q in (ref, mjx_q):
        assert q[-1, 7] > qpos0[7] + 0.2, q[-1, 7]
        offset = q[:, g.OBJECT_POS] - q[:, g.GRIP]
        assert np.linalg.norm(offset - offset[0], axis=-1).max() < 0.01  # slips < 1 cm (it creeps)
    assert np.linalg.norm(ref[-1, g.OBJECT_POS] - mjx_q[-1, g.OBJECT_POS]) < 0.01


def test_grasped_start_prob_is_validated_before_anything_compiles():
    import hjax

    for bad in (-0.1, 1.5, "half", True):
        with pytest.raises(ValueError, match=rf"GripperPickAndPlace: invalid grasped_start_prob={bad!r}.*\[0, 1\]"):
            envs.make("gripper_pick_and_place", grasped_start_prob=bad)
    with pytest.raises(ValueError, match="grasped_start_prob=2"):
        hjax.Config(env="gripper_pick_and_place", env_kwargs={"grasped_start_prob": 2})
    with pytest.raises(ValueError, match="grasped_start_prob"):  # another task has no such start
        envs.make("gripper_push", grasped_start_prob=0.5)


def test_render_gripper(tmp_path, pick_episodes):
    env, (_, states, _) = pick_episodes
    episode = jax.tree.map(lambda x: x[:env.episode_length], states)
    page = envs.render(env, episode, tmp_path / "pick.html", index=1)
    assert page.stat().st_size > 1000 and "<html" in page.read_text().lower()
    png = envs.render(env, episode, tmp_path / "pick.png", index=1)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
