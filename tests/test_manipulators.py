"""The arm tasks `reach` and `push` (Brax physics): start states, physical sanity, solvability,
rendering and validation. The generic goal-env invariants run on them in test_envs.py.

Rollouts reuse the session's compiled batch of 256 envs per task (`tests/env_rollouts.py`).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hjax import envs
from hjax.envs.planar_arm import FOREARM, LINK_LENGTH, REACH, UPPER_ARM, fingertip_xy
from hjax.envs.push import PUCK, PUCK_RADIUS, TABLE_HALF_SIZE
from env_rollouts import compiled

ARMS = ("reach", "push")
RIM = TABLE_HALF_SIZE - PUCK_RADIUS  # largest |x|, |y| of the puck's centre


def _chunks(run, state, key, chunks, base_action=None, noise=1.0):
    """`chunks` compiled episode-long rollouts carried on from `state`; stacked states (time, env)."""
    base_action = run.zeros() if base_action is None else base_action
    out = []
    for key_chunk in jax.random.split(key, chunks):
        state, states = run.rollout(state, key_chunk, base_action, noise)
        out.append(states)
    return jax.tree.map(lambda *xs: np.concatenate(xs), *out)


@pytest.fixture(scope="module")
def push_states_at():
    """Compiled batched `Push.state_at(q, goal)` for scripted start states."""
    return jax.jit(jax.vmap(compiled("push").env.state_at))


# ---- start states ------------------------------------------------------------------------------

def test_reach_start_states():
    run = compiled("reach")
    env, s0 = run.env, run.reset(jax.random.PRNGKey(20))
    goal_r = np.linalg.norm(s0.obs["desired_goal"], axis=-1)
    assert goal_r.min() >= env.goal_min_radius - 1e-6 and goal_r.max() <= env.goal_max_radius + 1e-6
    assert goal_r.max() < REACH  # every goal is reachable
    # The achieved goal is the fingertip: the forward kinematics of the start angles.
    q = np.asarray(s0.pipeline_state.q)
    tip = np.asarray(jax.vmap(fingertip_xy)(jnp.asarray(q)))
    np.testing.assert_allclose(s0.obs["achieved_goal"], tip, atol=1e-5)
    np.testing.assert_allclose(s0.obs["observation"][:, 6:8], tip, atol=1e-5)
    np.testing.assert_array_equal(s0.pipeline_state.qd, 0.0)


def test_push_start_states():
    run = compiled("push")
    env, s0 = run.env, run.reset(jax.random.PRNGKey(21))
    goal, puck = np.asarray(s0.obs["desired_goal"]), np.asarray(s0.obs["achieved_goal"])
    for p in (goal, puck):  # both on the table, in the annulus the fingertip can work around
        r = np.linalg.norm(p, axis=-1)
        assert r.min() >= env.GOAL_MIN_RADIUS - 1e-6 and r.max() <= env.GOAL_MAX_RADIUS + 1e-6
    # The puck starts away from the goal (>= 3 thresholds, <= max_start_distance) and clear of
    # the fingertip.
    assert env.min_start_distance >= 3 * env.distance_threshold - 1e-9
    gap = np.linalg.norm(puck - goal, axis=-1)
    assert gap.min() >= env.min_start_distance - 1e-6 and gap.max() <= env.max_start_distance + 1e-6
    tip = np.asarray(s0.obs["observation"][:, 6:8])
    assert np.linalg.norm(puck - tip, axis=-1).min() > PUCK_RADIUS + 0.015
    np.testing.assert_array_equal(s0.metrics["success"], 0.0)
    np.testing.assert_allclose(s0.obs["observation"][:, 8:10], puck)
    np.testing.assert_allclose(s0.obs["observation"][:, 12:14], puck - tip, atol=1e-6)


# ---- physical sanity ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ARMS)
def test_random_actions_stay_physical(name):
    """100 random steps (actions up to 3x the clip): finite, planar, rigid joints, puck on table."""
    run = compiled(name)
    s0 = run.reset(jax.random.PRNGKey(22))
    states = _chunks(run, s0, jax.random.PRNGKey(23), 2, noise=3.0)
    x = np.asarray(states.pipeline_state.x.pos)  # (time, env, link, 3)
    assert np.isfinite(x).all() and np.isfinite(np.asarray(states.obs["observation"])).all()
    np.testing.assert_allclose(x[..., 2], np.broadcast_to(np.asarray(s0.pipeline_state.x.pos)[..., 2],
                                                          x[..., 2].shape), atol=1e-5)
    elbow = np.linalg.norm(x[:, :, FOREARM] - x[:, :, UPPER_ARM], axis=-1)
    np.testing.assert_allclose(elbow, LINK_LENGTH, atol=1e-4)
    assert np.linalg.norm(states.obs["observation"][..., 6:8], axis=-1).max() <= REACH + 1e-4
    if name == "push":
        puck = np.asarray(states.obs["achieved_goal"])
        np.testing.assert_array_equal(puck, x[:, :, PUCK, :2])
        assert np.abs(puck).max() <= RIM + 2e-3  # the rim holds it (soft limit: mm give)
        moved = np.linalg.norm(puck[-1] - s0.obs["achieved_goal"], axis=-1)
        assert (moved > 0.01).any()  # random flailing does hit the puck sometimes


def test_push_puck_still_unless_touched(push_states_at):
    """Out of the fingertip's reach, the puck never moves however the arm flails (links pass over
    it); at rest under zero actions nothing moves at all."""
    run = compiled("push")
    n = run.num_envs
    corners = (RIM - 0.01) * np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], np.float32)
    q_arm = jax.random.uniform(jax.random.PRNGKey(24), (n, 2), minval=-np.pi, maxval=np.pi)
    q = jnp.concatenate([q_arm, jnp.tile(corners, (n // 4, 1))], axis=1)
    s0 = push_states_at(q, jnp.zeros((n, 2)))
    states = _chunks(run, s0, jax.random.PRNGKey(25), 2)
    assert np.abs(np.asarray(states.obs["observation"][..., 4:6])).max() > 1.0  # the arm moved
    np.testing.assert_allclose(states.obs["achieved_goal"],
                               np.broadcast_to(s0.obs["achieved_goal"], states.obs["achieved_goal"].shape),
                               atol=1e-6)

    s0 = run.reset(jax.random.PRNGKey(26))
    _, states = run.rollout(s0, jax.random.PRNGKey(27), run.zeros(), 0.0)
    np.testing.assert_allclose(states.pipeline_state.q, np.broadcast_to(s0.pipeline_state.q,
                                                                        states.pipeline_state.q.shape),
                               atol=1e-6)


def test_push_fingertip_pushes_puck(push_states_at):
    """A scripted sweep of the arm through the puck moves it (the contact works); every env of
    the batch does the same (deterministic physics)."""
    run = compiled("push")
    n = run.num_envs
    elbow = 2 * np.arccos(0.3 / REACH)  # fingertip 0.3 m out, 0.6 rad behind a puck on the x axis
    q = jnp.tile(jnp.array([[-0.6 - elbow / 2, elbow, 0.3, 0.0]]), (n, 1))
    s0 = push_states_at(q, jnp.zeros((n, 2)))
    sweep = jnp.tile(jnp.array([[0.5, 0.0]]), (n, 1))
    states = _chunks(run, s0, jax.random.PRNGKey(28), 1, base_action=sweep, noise=0.0)
    puck = np.asarray(states.obs["achieved_goal"])
    assert np.linalg.norm(puck[-1] - [0.3, 0.0], axis=-1).min() > 0.02
    np.testing.assert_array_equal(puck, np.broadcast_to(puck[:, :1], puck.shape))


def test_push_random_policy_rarely_succeeds():
    run = compiled("push")
    final = [np.asarray(run.episode(jax.random.PRNGKey(k))[1].metrics["success"][-1]) for k in (30, 31)]
    rate = float(np.mean(final))
    assert rate < 0.05, rate


def test_reach_is_solvable():
    """Inverse kinematics plus a PD law reaches the goal and stays: the task can be done."""
    env = compiled("reach").env

    def controller(obs):
        cos, sin, qd = obs["observation"][:2], obs["observation"][2:4], obs["observation"][4:6]
        q, goal = jnp.arctan2(sin, cos), obs["desired_goal"]
        r = jnp.linalg.norm(goal)
        elbow = jnp.arccos(jnp.clip((r ** 2 - 2 * LINK_LENGTH ** 2) / (2 * LINK_LENGTH ** 2), -1, 1))
        elbow = jnp.where(q[1] >= 0, elbow, -elbow)  # keep the current elbow side
        target = jnp.stack([jnp.arctan2(goal[1], goal[0]) - elbow / 2, elbow])
        error = (target - q + jnp.pi) % (2 * jnp.pi) - jnp.pi
        return 2.0 * error - 0.1 * qd

    def episode(key):
        def body(state, _):
            state = env.step(state, controller(state.obs))
            return state, state.metrics["success"]

        return jax.lax.scan(body, env.reset(key), None, env.episode_length)[1][-1]

    keys = jax.random.split(jax.random.PRNGKey(32), 64)
    assert float(jax.jit(jax.vmap(episode))(keys).mean()) > 0.95


# ---- rendering ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ARMS)
def test_render_arm(tmp_path, name):
    run = compiled(name)
    _, states = run.episode(jax.random.PRNGKey(33))
    page = envs.render(run.env, states, tmp_path / f"{name}.html", index=3)
    text = page.read_text()
    assert page.stat().st_size > 1000 and "<html" in text.lower()
    frames = [jax.tree.map(lambda x: x[t, 3], states) for t in range(5)]  # a list of States
    png = envs.render(run.env, frames, tmp_path / f"{name}.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_render_point_mass_png_and_errors(tmp_path):
    run = compiled("point_mass")
    _, states = run.episode(jax.random.PRNGKey(34))
    png = envs.render(run.env, states, tmp_path / "pm.png")
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="no Brax system.*png"):
        envs.render(run.env, states, tmp_path / "pm.html")
    with pytest.raises(ValueError, match="path=.*pm.gif.*allowed.*html.*png"):
        envs.render(run.env, states, tmp_path / "pm.gif")


# ---- construction ------------------------------------------------------------------------------

def test_validation_errors():
    with pytest.raises(ValueError, match="Push: invalid backend='bullet'; allowed: 'generalized'"):
        envs.make("push", backend="bullet")
    with pytest.raises(ValueError, match="n_frames=0"):
        envs.make("reach", n_frames=0)
    with pytest.raises(ValueError, match=r"dt=0.5; allowed: a number in \(0, 0.1\]"):
        envs.make("reach", dt=0.5)
    with pytest.raises(ValueError, match="goal_max_radius=0.5"):
        envs.make("reach", goal_max_radius=0.5)
    with pytest.raises(ValueError, match="goal_min_radius=-0.1"):
        envs.make("reach", goal_min_radius=-0.1)
    with pytest.raises(ValueError, match="min_start_distance=0.5"):
        envs.make("push", min_start_distance=0.5)
    with pytest.raises(ValueError, match="max_start_distance=0.1"):
        envs.make("push", max_start_distance=0.1)  # below min_start_distance
    with pytest.raises(ValueError, match="puck_damping=0"):
        envs.make("push", puck_damping=0)
    with pytest.raises(ValueError, match="distance_threshold=-1"):
        envs.make("push", distance_threshold=-1)


def test_backends_selectable_and_defaults():
    for name in ARMS:
        env = envs.make(name)
        assert env.backend == type(env).DEFAULT_BACKEND and env.episode_length == 50
        assert {"backend", "n_frames", "dt"} <= set(envs.override_names(name))
        for backend in ("generalized", "positional", "spring", "mjx"):
            other = envs.make(name, backend=backend)
            assert other.backend == backend and other.n_frames == type(env).DEFAULT_N_FRAMES[backend]
            np.testing.assert_allclose(float(other.dt), 0.04, rtol=1e-6)  # n_frames substeps
    env = envs.make("push", n_frames=8, dt=0.02)
    np.testing.assert_allclose(float(env.sys.opt.timestep), 0.0025, rtol=1e-6)
