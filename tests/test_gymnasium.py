"""The Gymnasium adapter (`envs.gymnasium`): the GoalEnv contract SB3's HER relies on.

Skipped when the optional `sb3` extra (Gymnasium) is not installed.
"""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

from hjax import envs  # noqa: E402
from hjax.envs.gymnasium import GymnasiumGoalEnv, to_gymnasium  # noqa: E402


@pytest.fixture(scope="module")
def point_mass():
    # A large threshold so random episodes contain both rewards (0 and -1); short episodes.
    return to_gymnasium("point_mass", distance_threshold=0.5, episode_length=12)


@pytest.mark.parametrize("name", ["point_mass", "reach", "gripper_reach", "gripper_push", "gripper_slide",
                                  "gripper_pick_and_place"])
def test_check_env(name):
    from gymnasium.utils.env_checker import check_env

    env = to_gymnasium(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    # The only complaint allowed: unbounded observation Boxes (as in Gymnasium-Robotics Fetch).
    others = [str(w.message) for w in caught if "infinity" not in str(w.message)]
    assert others == []
    assert set(env.observation_space.spaces) == {"observation", "achieved_goal", "desired_goal"}
    for space in env.observation_space.spaces.values():
        assert space.dtype == np.float32
    assert env.action_space.dtype == np.float32
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)


def test_step_reward_equals_compute_reward_and_truncates(point_mass):
    env = point_mass
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    env.action_space.seed(0)
    rewards = []
    for t in range(1, env.episode_length + 1):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        assert isinstance(reward, float) and terminated is False
        assert truncated is (t == env.episode_length)
        expected = env.compute_reward(obs["achieved_goal"], obs["desired_goal"], info)
        assert reward == float(expected)
        assert info["is_success"] == float(reward == 0.0)
        distance = np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"])
        np.testing.assert_allclose(info["distance"], distance, rtol=1e-5, atol=1e-6)
        rewards.append(reward)
    assert set(rewards) <= {0.0, -1.0}


def test_batched_goal_contract(point_mass):
    env = point_mass
    rng = np.random.default_rng(0)
    achieved = rng.uniform(-1, 1, size=(3, 5, 2)).astype(np.float32)
    desired = rng.uniform(-1, 1, size=(3, 5, 2)).astype(np.float32)
    infos = np.array([[{} for _ in range(5)] for _ in range(3)])
    reward = env.compute_reward(achieved, desired, infos)
    assert reward.shape == (3, 5) and reward.dtype == np.float32
    distance = np.linalg.norm(achieved - desired, axis=-1)
    clear = np.abs(distance - env.distance_threshold) > 1e-4  # away from the float boundary
    np.testing.assert_array_equal(reward[clear], np.where(distance < env.distance_threshold, 0.0, -1.0)[clear])
    assert 0.0 in reward and -1.0 in reward
    # Row by row equals the batch (SB3 calls it on whole relabeled batches).
    flat = env.compute_reward(achieved.reshape(-1, 2), desired.reshape(-1, 2), None)
    np.testing.assert_array_equal(flat.reshape(3, 5), reward)
    np.testing.assert_array_equal([env.compute_reward(a, d, {}) for a, d in zip(achieved[0], desired[0])], reward[0])
    for fn in (env.compute_terminated, env.compute_truncated):
        out = fn(achieved, desired, infos)
        assert out.shape == (3, 5) and out.dtype == bool and not out.any()


def test_seeded_reset_reproduces(point_mass):
    def episode_starts(env, seed):
        first, _ = env.reset(seed=seed)
        second, _ = env.reset()
        stepped, *_ = env.step(np.array([0.5, -0.5], np.float32))
        return first, second, stepped

    a = episode_starts(point_mass, 7)
    b = episode_starts(to_gymnasium("point_mass", distance_threshold=0.5, episode_length=12), 7)
    for x, y in zip(a, b):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    # The next reset is a new episode, another seed another start.
    assert not np.array_equal(a[0]["desired_goal"], a[1]["desired_goal"])
    c, _ = point_mass.reset(seed=8)
    assert not np.array_equal(a[0]["desired_goal"], c["desired_goal"])
    big, _ = point_mass.reset(seed=2**70)  # Gymnasium allows any non-negative int
    assert point_mass.observation_space.contains(big)


def test_wrapping_an_instance_and_bad_arguments():
    env = envs.make("point_mass", episode_length=5)
    wrapped = to_gymnasium(env)
    assert isinstance(wrapped, GymnasiumGoalEnv) and wrapped.hjax_env is env and wrapped.episode_length == 5
    with pytest.raises(ValueError, match="overrides"):
        to_gymnasium(env, episode_length=3)
    with pytest.raises(ValueError, match="invalid env=.no_such_env.; allowed"):
        to_gymnasium("no_such_env")
    with pytest.raises(RuntimeError, match="reset"):
        to_gymnasium("point_mass").step(np.zeros(2, np.float32))


def test_envs_does_not_import_gymnasium_and_missing_extra_message():
    code = (
        "import sys, hjax.envs\n"
        "assert 'gymnasium' not in sys.modules, 'import hjax.envs pulled in gymnasium'\n"
        "sys.modules['gymnasium'] = None  # as if it were not installed\n"
        "try:\n"
        "    import hjax.envs.gymnasium\n"
        "except ImportError as e:\n"
        "    assert 'pip install -e \".[sb3]\"' in str(e), str(e)\n"
        "    print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


def test_sb3_her_replay_buffer_relabels_with_compute_reward():
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.vec_env import DummyVecEnv

    env = DummyVecEnv([lambda: to_gymnasium("point_mass", distance_threshold=0.5, episode_length=12)])
    model = sb3.TD3("MultiInputPolicy", env, buffer_size=1000, replay_buffer_class=sb3.HerReplayBuffer,
                    replay_buffer_kwargs=dict(n_sampled_goal=4, goal_selection_strategy="future"),
                    learning_starts=48, batch_size=64, policy_kwargs=dict(net_arch=[16, 16]),
                    seed=0, device="cpu")
    model.learn(60)
    batch = model.replay_buffer.sample(512)
    # HER's virtual transitions carry compute_reward(next achieved goal, new desired goal); the
    # stored ones carry the step reward, which equals it: every row satisfies the invariant.
    expected = env.envs[0].compute_reward(batch.next_observations["achieved_goal"].numpy(),
                                          batch.observations["desired_goal"].numpy(), None)
    np.testing.assert_array_equal(batch.rewards.numpy().ravel(), expected)
    assert 0.0 in expected and -1.0 in expected
