"""Your own task (issue 28, item 4): examples/custom_env.py and the errors a user's env meets.

The example env, `Rover`, must (a) keep the goal-env contract, checked against a plain NumPy
re-implementation of its dynamics and reward, (b) train with HER to at least 90% evaluation
success when the example runs as a script, within a CI budget, and be reachable by registered
name, import path and the command line; (c) a subclass that leaves out a member `GoalEnv` needs
fails to build with an error naming that member, from `envs.make` and `Config`, without blaming
env_kwargs.
"""

from __future__ import annotations

import abc
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hjax
from hjax import envs
from hjax.envs.goal_env import OBS_KEYS, REQUIRED_MEMBERS, GoalEnv, MissingMemberError, missing_members

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "custom_env.py"
IMPORT_PATH = "examples.custom_env:Rover"  # importable with the repository root on sys.path


@pytest.fixture(scope="module")
def example():
    """The example module, imported as a user's module would be (importing it trains nothing)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(ROOT))
        import examples.custom_env as module

        yield module
        sys.modules.pop("examples.custom_env", None)


@pytest.fixture
def registry(monkeypatch):
    """`envs.register` for one test: the registry is restored afterwards."""
    monkeypatch.setattr(envs, "_REGISTRY", dict(envs._REGISTRY))
    monkeypatch.setattr(envs, "NAMES", envs.NAMES)
    return envs.register


# ---- (a) the contract, against an independent reference ------------------------------------------

def reference_step(env, pos, heading, action):
    """The docstring's dynamics in float64 NumPy, one env at a time."""
    a = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
    heading = heading + env.dt * env.max_turn_rate * a[1]
    heading = (heading + np.pi) % (2 * np.pi) - np.pi
    pos = pos + env.dt * env.max_speed * a[0] * np.array([np.cos(heading), np.sin(heading)])
    h = env.arena_half_size
    return np.clip(pos, -h, h), heading


def reference_reward(env, achieved, desired):
    distance = float(np.linalg.norm(np.asarray(achieved, np.float64) - np.asarray(desired, np.float64)))
    if env.reward_type == "dense":
        return -distance
    return 0.0 if distance < env.distance_threshold else -1.0


@pytest.mark.parametrize("kwargs", [
    dict(episode_length=20, distance_threshold=0.5),  # wide threshold: both sparse rewards occur
    dict(episode_length=15, reward_type="dense", arena_half_size=0.5, max_speed=3.0, max_turn_rate=1.0),
])
def test_rover_keeps_the_contract_and_matches_a_numpy_reference(example, kwargs):
    env = envs.make(IMPORT_PATH, **kwargs)
    assert isinstance(env, example.Rover) and isinstance(env, GoalEnv) and missing_members(example.Rover) == ()
    assert env.observation_size == {"observation": (4,), "achieved_goal": (2,), "desired_goal": (2,)}
    assert (env.goal_size, env.action_size, env.backend) == (2, 2, "jnp")
    num_envs, h = 8, env.arena_half_size
    state = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(3), num_envs))
    step = jax.jit(jax.vmap(env.step))
    host = jax.device_get(state)
    assert set(host.obs) == set(OBS_KEYS) and all(v.dtype == np.float32 for v in host.obs.values())
    pos, goal = np.asarray(host.obs["achieved_goal"], np.float64), np.asarray(host.obs["desired_goal"])
    heading = np.arctan2(host.obs["observation"][:, 3], host.obs["observation"][:, 2]).astype(np.float64)
    assert np.all(np.abs(pos) <= h) and np.all(np.abs(goal) <= h) and len(np.unique(goal[:, 0])) == num_envs
    np.testing.assert_allclose(host.obs["observation"][:, :2], pos)
    np.testing.assert_array_equal(host.done, 0.0)
    # Actions up to 1.5 (clipped); forward at half speed or more, so that rovers drive into the walls.
    actions = np.random.default_rng(0).uniform([0.5, -1.5], 1.5, (env.episode_length, num_envs, 2)).astype(np.float32)
    sparse_seen, at_wall = set(), 0
    for t in range(env.episode_length):
        state = step(state, jnp.asarray(actions[t]))
        host = jax.device_get(state)
        for i in range(num_envs):
            pos[i], heading[i] = reference_step(env, pos[i], heading[i], actions[t, i])
        obs = host.obs
        np.testing.assert_allclose(obs["achieved_goal"], pos, atol=1e-4, err_msg=f"step {t + 1}")
        np.testing.assert_allclose(obs["observation"], np.column_stack([pos, np.cos(heading), np.sin(heading)]),
                                   atol=1e-4, err_msg=f"step {t + 1}")
        np.testing.assert_array_equal(obs["desired_goal"], goal)  # the goal never moves
        # the invariant, exactly: the step's reward is compute_reward of the step's goals
        np.testing.assert_array_equal(host.reward, env.compute_reward(obs["achieved_goal"], obs["desired_goal"]))
        distance = np.linalg.norm(pos - goal, axis=-1)
        np.testing.assert_allclose(host.metrics["distance"], distance, atol=1e-4)
        clear = np.abs(distance - env.distance_threshold) > 1e-3  # away from the threshold's edge
        np.testing.assert_array_equal(host.metrics["success"][clear], (distance < env.distance_threshold)[clear])
        expected = np.array([reference_reward(env, pos[i], goal[i]) for i in range(num_envs)])
        np.testing.assert_allclose(host.reward[clear], expected[clear], atol=1e-4)
        sparse_seen.update(host.reward.tolist())
        at_wall += int(np.sum(np.abs(pos) == h))
        last = float(t + 1 == env.episode_length)  # truncation only, at episode_length
        np.testing.assert_array_equal(host.info["truncation"], last)
        np.testing.assert_array_equal(host.done, last)
    assert at_wall > 0  # the walls were exercised
    if env.reward_type == "sparse":
        assert sparse_seen == {0.0, -1.0}


def test_rover_compute_reward_is_vectorised_and_validated(example):
    env = example.Rover(distance_threshold=0.3)
    achieved = jax.random.uniform(jax.random.PRNGKey(0), (3, 5, 2), minval=-1, maxval=1)
    desired = jax.random.uniform(jax.random.PRNGKey(1), (3, 5, 2), minval=-1, maxval=1)
    batched = np.asarray(env.compute_reward(achieved, desired))
    assert batched.shape == (3, 5)
    expected = [[reference_reward(env, achieved[i, j], desired[i, j]) for j in range(5)] for i in range(3)]
    np.testing.assert_array_equal(batched, expected)
    assert env.reward_range == (-1.0, 0.0)
    assert example.Rover(reward_type="dense").reward_range == pytest.approx((-2 * np.sqrt(2), 0.0))
    assert set(envs.override_names(IMPORT_PATH)) == {"distance_threshold", "episode_length", "reward_type",
                                                     "arena_half_size", "dt", "max_speed", "max_turn_rate"}
    with pytest.raises(ValueError, match=r"Rover: invalid max_speed=0; allowed: a finite number > 0"):
        envs.make(IMPORT_PATH, max_speed=0)


# ---- (b) registered, by import path, on the command line, and trained ------------------------------

def test_registered_name_and_import_path_build_the_same_env(example, registry):
    registry("my_rover", example.Rover)
    by_name = hjax.Config(env="my_rover", env_kwargs={"max_speed": 2.0})
    by_path = hjax.Config(env=IMPORT_PATH, env_kwargs={"max_speed": 2.0})
    for config in (by_name, by_path):
        assert type(config.make_env()) is example.Rover and config.make_env().max_speed == 2.0
    with pytest.raises(ValueError, match="already registered"):
        registry("my_rover", example.Rover)


def hjax_command() -> list[str]:
    script = Path(sys.executable).with_name("hjax")
    return [str(script)] if script.is_file() else [sys.executable, "-c", "import sys; from hjax.cli import main; sys.exit(main())"]


def test_the_command_line_finds_the_example_by_import_path(tmp_path):
    """What docs/custom_env.md runs from the repository root (`PYTHONPATH=. hjax train --env ...`).
    A bad override exits before anything compiles, after the class was imported and built."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([*hjax_command(), "train", "--env", IMPORT_PATH, "--env-kwargs", "max_speed=-1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "invalid env_kwargs={'max_speed': -1}: Rover: invalid max_speed=-1" in done.stderr


def test_the_example_script_trains_the_rover_to_90_percent_with_her(example, tmp_path):
    """`python examples/custom_env.py` as a user runs it: registers, trains TD3 + HER with the file's
    TRAINING budget (100 epochs x 32 envs x 50 steps, 256 updates per epoch), prints the summary and
    exits 0. About 40 s on one CPU core, half of it compiling; seeds 0-5 ended at 0.97-1.00,
    each past 90% by epoch 54 of 100."""
    run_dir = tmp_path / "run"
    done = subprocess.run([sys.executable, str(EXAMPLE), "--out", str(run_dir)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "my_rover her=future: eval success" in done.stdout  # hjax.summary
    success = float(re.search(r"final eval success: ([\d.]+)", done.stdout).group(1))
    assert success >= 0.9, done.stdout[-3000:]
    config = json.loads((run_dir / "config.json").read_text())
    config = config.get("config", config)
    assert config["env"] == "my_rover" and config["num_epochs"] == example.TRAINING["num_epochs"]
    assert config["her_strategy"] == "future"


# ---- (c) a missing member is named ------------------------------------------------------------------

def without(example, *names: str) -> type:
    """A copy of Rover, as a direct GoalEnv subclass, that leaves out `names`."""
    members = {k: v for k, v in vars(example.Rover).items() if k not in names}
    return type("Incomplete", (GoalEnv,), members)


def test_required_members_are_goal_envs_abstract_members(example):
    assert set(REQUIRED_MEMBERS) == set(GoalEnv.__abstractmethods__)
    assert set(REQUIRED_MEMBERS) >= {"_reset_goal_env", "_step_goal_env", "goal_size", "max_goal_distance"}
    assert missing_members(without(example, "goal_size", "backend")) == ("backend", "goal_size")


@pytest.mark.parametrize("member", sorted(REQUIRED_MEMBERS))
def test_a_missing_member_is_named_by_make_and_config(example, registry, member):
    incomplete = without(example, member)
    registry("incomplete", incomplete)
    named = rf"Incomplete \(examples\.custom_env:Incomplete\) does not implement {member}, which every GoalEnv needs"
    with pytest.raises(MissingMemberError, match=named) as raised:
        envs.make("incomplete")
    assert raised.value.missing_members == (member,) and isinstance(raised.value, (TypeError, ValueError))
    with pytest.raises(TypeError, match=named):
        incomplete()  # building the class directly says the same
    for env_kwargs in ({}, {"episode_length": 10}):  # a valid override is not blamed either
        with pytest.raises(ValueError, match=rf"^invalid env='incomplete': {named}") as raised:
            hjax.Config(env="incomplete", env_kwargs=env_kwargs)
        assert "env_kwargs" not in str(raised.value)


def test_a_users_own_abstract_base_names_its_members(example):
    class SampledGoals(example.Rover):  # a user's intermediate base with its own abstract member
        @abc.abstractmethod
        def _sample_goal(self, key):
            """Draw the goal of a new episode."""

    class Leaf(SampledGoals):
        pass

    with pytest.raises(MissingMemberError, match=r"Leaf \(.*\) does not implement _sample_goal, which its base classes "
                                                 r"need \(_sample_goal, abstract in .*SampledGoals\)"):
        Leaf()


def test_a_users_module_missing_members_by_import_path(tmp_path, monkeypatch):
    (tmp_path / "forgetful_tasks.py").write_text(
        "import jax.numpy as jnp\n"
        "from hjax.envs.goal_env import GoalEnv\n\n\n"
        "class Forgetful(GoalEnv):  # no goal_size, no max_goal_distance\n"
        "    def __init__(self, *, episode_length: int = 10):\n"
        "        super().__init__(distance_threshold=0.1, episode_length=episode_length, reward_type='sparse')\n\n"
        "    def _reset_goal_env(self, key):\n"
        "        return jnp.zeros(2), jnp.zeros(2), jnp.zeros(2), jnp.ones(2)\n\n"
        "    def _step_goal_env(self, physics, action):\n"
        "        return physics, physics, physics\n\n"
        "    action_size = 2\n"
        "    backend = 'jnp'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        message = (r"^invalid env='forgetful_tasks:Forgetful': Forgetful \(forgetful_tasks:Forgetful\) does not "
                   r"implement goal_size and max_goal_distance, which every GoalEnv needs \(a property goal_size")
        with pytest.raises(ValueError, match=message):
            hjax.Config(env="forgetful_tasks:Forgetful", env_kwargs={"episode_length": 20})
    finally:
        sys.modules.pop("forgetful_tasks", None)


def test_bad_overrides_still_blame_env_kwargs(example):
    with pytest.raises(ValueError, match=r"^invalid env_kwargs=\{'max_speed': -1\}: Rover: invalid max_speed=-1"):
        hjax.Config(env=IMPORT_PATH, env_kwargs={"max_speed": -1})
    with pytest.raises(ValueError, match=r"^invalid env_kwargs=\{'speed': 2\}: .*unknown override 'speed'"):
        hjax.Config(env=IMPORT_PATH, env_kwargs={"speed": 2})


def test_an_init_that_skips_goal_env_init_is_named(example, registry):
    class NoSuperInit(example.Rover):
        def __init__(self, *, max_speed: float = 1.0):
            self.max_speed = max_speed  # forgot super().__init__(...)

    registry("no_super_init", NoSuperInit)
    with pytest.raises(AttributeError, match=r"NoSuperInit has no \w+: its __init__ must call super\(\).__init__"):
        hjax.Config(env="no_super_init")


def test_the_member_check_keeps_override_names(example, registry):
    """GoalEnv's member check (a `__new__`) must not hide `__init__`'s keyword-only arguments, which
    `envs.override_names` reads, from a subclass that inherits GoalEnv's `__init__`."""
    members = {k: v for k, v in vars(example.Rover).items() if k != "__init__"}
    registry("inherits_init", type("InheritsInit", (GoalEnv,), members))
    assert envs.override_names("inherits_init") == ("distance_threshold", "episode_length", "reward_type")
    assert envs.make("inherits_init", distance_threshold=0.1, episode_length=5, reward_type="dense").episode_length == 5
