"""Goal-env invariants, parametrised over every registered env (later envs get them for free).

Each env's batched reset and episode rollout are compiled once per session
(`tests/env_rollouts.py`) and shared by these tests: Brax envs take 5-15 s per compile here.
Brax envs run 256 envs per batch, pure-jnp envs 16 (and 4096 in `test_vmap_4096`).
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hjax import envs
from hjax.envs.goal_env import OBS_KEYS
from env_rollouts import NUM_ENVS, SHARED_EPISODE_SEED, compiled, random_episode

NAMES = envs.NAMES


def _random_episode(env, key, num_envs=NUM_ENVS, steps=None, scale=1.0):
    """Roll `num_envs` random-action episodes; returns every state (leading axes: time, env)."""
    return random_episode(env, key, num_envs, steps, scale)


@pytest.fixture(scope="module", params=NAMES)
def run(request):
    """The env with its compiled batched reset and rollout (shared across test modules)."""
    return compiled(request.param)


@pytest.fixture(scope="module")
def env(run):
    return run.env


def test_shapes_and_dtypes(env):
    # Shapes and dtypes by abstract evaluation: exactly what a run returns, without compiling.
    state = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    assert set(state.obs) == set(OBS_KEYS)
    sizes = env.observation_size
    for k in OBS_KEYS:
        assert state.obs[k].shape == sizes[k]
        assert state.obs[k].dtype == jnp.float32
    assert state.obs["achieved_goal"].shape == (env.goal_size,)
    assert state.obs["desired_goal"].shape == (env.goal_size,)
    nxt = jax.eval_shape(env.step, state, jnp.zeros(env.action_size))
    assert jax.tree.structure(nxt) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(nxt), jax.tree.leaves(state)):
        assert a.shape == b.shape and a.dtype == b.dtype
    assert nxt.reward.shape == () and nxt.reward.dtype == jnp.float32
    assert {"success", "distance"} <= set(nxt.metrics)


def test_reward_invariant_every_step(env, run):
    _, states = run.shared_episode
    ag, dg = states.obs["achieved_goal"], states.obs["desired_goal"]
    np.testing.assert_array_equal(states.reward, env.compute_reward(ag, dg))
    np.testing.assert_array_equal(states.metrics["success"], env.is_success(ag, dg))
    np.testing.assert_allclose(states.metrics["distance"], np.linalg.norm(ag - dg, axis=-1),
                               rtol=1e-5, atol=1e-6)
    # Sparse convention: 0 on success, else -1.
    np.testing.assert_array_equal(states.reward, states.metrics["success"] - 1.0)


def test_compute_reward_any_batch_shape(env):
    key_a, key_b = jax.random.split(jax.random.PRNGKey(2))
    ag = jax.random.normal(key_a, (3, 5, env.goal_size))
    dg = ag + 0.5 * env.distance_threshold * jax.random.normal(key_b, ag.shape) / np.sqrt(env.goal_size)
    r = env.compute_reward(ag, dg)
    assert r.shape == (3, 5)
    expected = np.where(np.linalg.norm(np.asarray(ag - dg), axis=-1) < env.distance_threshold, 0.0, -1.0)
    np.testing.assert_array_equal(r, expected)
    assert env.compute_reward(ag[0, 0], dg[0, 0]).shape == ()


def test_dense_reward_is_negative_distance():
    name = NAMES[0]
    env = envs.make(name, reward_type="dense")
    _, states = _random_episode(env, jax.random.PRNGKey(3))
    np.testing.assert_allclose(states.reward, -states.metrics["distance"], rtol=1e-6)
    assert env.reward_range[0] <= float(states.reward.min())


def test_truncation_only_at_episode_length(env, run):
    state0, states = run.shared_episode
    T = env.episode_length
    assert float(state0.done.max()) == 0.0
    trunc = np.asarray(states.info["truncation"])
    np.testing.assert_array_equal(trunc[:-1], 0.0)
    np.testing.assert_array_equal(trunc[-1], 1.0)
    np.testing.assert_array_equal(states.done, states.info["truncation"])
    np.testing.assert_array_equal(states.info["steps"][:, 0], np.arange(1, T + 1))


def test_same_key_same_episode_different_keys_differ(env, run):
    _, a = run.shared_episode  # PRNGKey(SHARED_EPISODE_SEED), computed once per session
    _, b = run.episode(jax.random.PRNGKey(SHARED_EPISODE_SEED))  # computed again here
    for x, y in zip(jax.tree.leaves(a.obs), jax.tree.leaves(b.obs)):
        np.testing.assert_array_equal(x, y)
    reset = jax.jit(env.reset)  # compiled: a Brax reset run eagerly, op by op, takes ~20 s
    s1 = reset(jax.random.PRNGKey(6))
    s2 = reset(jax.random.PRNGKey(7))
    assert not np.allclose(s1.obs["desired_goal"], s2.obs["desired_goal"])
    if not isinstance(env, envs.GripperReach):  # Fetch's reach always starts from one pose
        assert not np.allclose(s1.obs["observation"], s2.obs["observation"])


def test_reset_and_step_trace_once(env):
    @jax.jit
    @chex.assert_max_traces(n=1)
    def reset(key):
        return env.reset(key)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(state, action):
        return env.step(state, action)

    state = reset(jax.random.PRNGKey(0))
    for i in range(3):
        state = reset(jax.random.PRNGKey(i))
        # float32 actions, as every caller passes them: a weakly typed Python-float fill compiles a
        # second step program, while this one is the Gymnasium adapter's (the compile cache serves it).
        state = step(state, jnp.full(env.action_size, 0.3 * i, jnp.float32))
        state = step(state, jnp.full(env.action_size, -0.1, jnp.float32))
    chex.clear_trace_counter()


def test_vmap_4096(env, run):
    if env.backend == "jnp":
        n = 4096
        state = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(8), n))
        state = jax.jit(jax.vmap(env.step))(state, jnp.ones((n, env.action_size)))
    else:  # physics envs: vmap is the same code, kept cheap: the last state of the shared batch (256)
        n = run.num_envs
        state = jax.tree.map(lambda x: x[-1], run.shared_episode[1])
    assert state.obs["observation"].shape[0] == n
    assert state.reward.shape == (n,)
    assert np.isfinite(np.asarray(state.obs["observation"])).all()


def test_finite_over_long_random_rollouts(env, run):
    steps = 1000 if env.backend == "jnp" else 100  # physics: two episode-long chunks, ~10-30 s each here
    # Actions well outside [-1, 1] exercise the clipping too. The long rollout is episode-long
    # compiled chunks carried on from one another (no reset in between).
    key_reset, key_act = jax.random.split(jax.random.PRNGKey(9))
    state = run.reset(key_reset)
    for key_chunk in jax.random.split(key_act, -(-steps // env.episode_length)):
        state, states = run.rollout(state, key_chunk, run.zeros(), 3.0)
        for leaf in jax.tree.leaves((states.obs, states.reward, states.metrics)):
            assert np.isfinite(np.asarray(leaf)).all()


def test_make_errors():
    with pytest.raises(ValueError, match="invalid env='nope'; allowed: one of point_mass"):
        envs.make("nope")
    with pytest.raises(ValueError, match="unknown override 'thresh'.*distance_threshold"):
        envs.make("point_mass", thresh=0.1)
    with pytest.raises(ValueError, match="distance_threshold=-0.1"):
        envs.make("point_mass", distance_threshold=-0.1)
    with pytest.raises(ValueError, match="episode_length=0"):
        envs.make("point_mass", episode_length=0)
    with pytest.raises(ValueError, match="reward_type='shaped'"):
        envs.make("point_mass", reward_type="shaped")
    with pytest.raises(ValueError, match="distance_threshold=nan"):
        envs.make("point_mass", distance_threshold=float("nan"))
    assert "distance_threshold" in envs.override_names("point_mass")


# ---- point_mass specifics --------------------------------------------------------------------

def test_point_mass_random_policy_rarely_succeeds():
    env = envs.make("point_mass")
    _, states = jax.jit(lambda k: _random_episode(env, k, num_envs=2048))(jax.random.PRNGKey(10))
    final_success = float(states.metrics["success"][-1].mean())
    assert final_success < 0.10, final_success


def test_point_mass_dynamics_match_docstring():
    env = envs.make("point_mass")
    state = env.reset(jax.random.PRNGKey(11))
    pos, vel = np.asarray(state.pipeline_state.pos), np.zeros(2)
    rng = np.random.default_rng(0)
    for _ in range(200):
        action = rng.uniform(-2, 2, size=2).astype(np.float32)
        state = env.step(state, jnp.asarray(action))
        a = np.clip(action, -1, 1)
        vel = vel + env.dt * (env.max_force * a - env.damping * vel)
        pos = pos + env.dt * vel
        hit = np.abs(pos) > env.arena_half_size
        pos = np.clip(pos, -env.arena_half_size, env.arena_half_size)
        vel = np.where(hit, 0.0, vel)
        np.testing.assert_allclose(state.pipeline_state.pos, pos, atol=1e-4)
        np.testing.assert_allclose(state.obs["observation"], np.concatenate([pos, vel]), atol=1e-4)
    assert np.all(np.abs(np.asarray(state.pipeline_state.pos)) <= env.arena_half_size)


def test_point_mass_can_reach_and_stay():
    """A hand-written PD controller reaches the goal: the task is solvable in one episode."""
    env = envs.make("point_mass")
    keys = jax.random.split(jax.random.PRNGKey(12), 256)

    def episode(key):
        def body(state, _):
            err = state.obs["desired_goal"] - state.obs["achieved_goal"]
            action = 2.0 * err - 0.5 * state.obs["observation"][2:]
            state = env.step(state, action)
            return state, state.metrics["success"]

        _, success = jax.lax.scan(body, env.reset(key), None, env.episode_length)
        return success[-1]

    assert float(jax.jit(jax.vmap(episode))(keys).mean()) > 0.95
