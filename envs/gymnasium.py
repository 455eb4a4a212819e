"""Any hjax goal env as a single-env Gymnasium `GoalEnv`, for Stable-Baselines3 and other NumPy code.

    from hjax.envs.gymnasium import to_gymnasium
    env = to_gymnasium("point_mass", distance_threshold=0.1)
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    env.compute_reward(obs["achieved_goal"], obs["desired_goal"], info)   # batched too

The adapter follows the Gymnasium-Robotics `GoalEnv` contract (Gymnasium 1.x core has no
`GoalEnv` class, so it is implemented here on `gymnasium.Env`): a `Dict` observation of
`observation`, `achieved_goal` and `desired_goal`; a vectorised
`compute_reward(achieved_goal, desired_goal, info)` with `reward == compute_reward(...)` on every
step, which SB3's `HerReplayBuffer` calls on whole relabeled batches; `compute_terminated` and
`compute_truncated`. Episodes never terminate (success does not end them, as in hjax and Fetch)
and are truncated after `episode_length` steps.

It is a thin host-side bridge: reset, step and compute_reward are the hjax env's own functions
under `jax.jit` (compiled once per wrapper, and once per batch shape for `compute_reward`), with
NumPy in and out. Each call is one small jitted dispatch, so this is for libraries that step one
env at a time on the host; hjax itself never goes through it.

Gymnasium is an optional dependency (`pip install -e ".[sb3]"`): `import hjax.envs` never imports it;
importing this module does.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

try:
    import gymnasium
    from gymnasium import spaces
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "hjax.envs.gymnasium needs Gymnasium, an optional dependency of hjax. Install it with "
        '`pip install -e ".[sb3]"` (Gymnasium, Stable-Baselines3, CPU torch and rliable).') from e

from hjax.envs import make
from hjax.envs.goal_env import OBS_KEYS, GoalEnv


def _jax_key(seed: int) -> jax.Array:
    """A JAX key for any non-negative integer seed (Gymnasium allows arbitrarily large ones).

    The seed is hashed to 32 bits with NumPy's `SeedSequence`, because `PRNGKey` silently
    truncates seeds past 32 bits without x64 and rejects those past 63."""
    return jax.random.PRNGKey(int(np.random.SeedSequence(seed).generate_state(1)[0]))


class GymnasiumGoalEnv(gymnasium.Env):
    """One hjax goal env behind the Gymnasium API; see the module docstring.

    Attributes:
        hjax_env: the wrapped `envs.GoalEnv`.
        episode_length: steps after which `step` returns `truncated=True`.
        distance_threshold: the success radius of the wrapped env.
    """

    metadata = {"render_modes": []}

    def __init__(self, env: GoalEnv):
        if not isinstance(env, GoalEnv):
            raise TypeError(f"GymnasiumGoalEnv(env): expected a hjax.envs.GoalEnv, got {type(env).__name__}")
        self.hjax_env = env
        self.episode_length = env.episode_length
        self.distance_threshold = env.distance_threshold
        self.render_mode = None
        sizes = env.observation_size
        self.observation_space = spaces.Dict({
            k: spaces.Box(-np.inf, np.inf, shape=sizes[k], dtype=np.float32) for k in OBS_KEYS})
        self.action_space = spaces.Box(-1.0, 1.0, shape=(env.action_size,), dtype=np.float32)
        self._reset_fn = jax.jit(env.reset)
        self._step_fn = jax.jit(env.step)
        self._reward_fn = jax.jit(env.compute_reward)  # retraces per batch shape only
        self._key: jax.Array | None = None  # advanced by every reset; set from the reset seed
        self._state = None

    # ---- Gymnasium API -------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode. `reset(seed=s)` restarts the key sequence from a key derived from
        `s`, so it and every reset after it reproduce; the first reset without a seed draws one
        from `self.np_random` (which Gymnasium seeds from OS entropy). `options` is unused."""
        super().reset(seed=seed)
        if seed is not None or self._key is None:
            self._key = _jax_key(seed if seed is not None else int(self.np_random.integers(2**63)))
        self._key, key_reset = jax.random.split(self._key)
        self._state = self._reset_fn(key_reset)
        obs, success, distance = jax.device_get(
            (self._state.obs, self._state.metrics["success"], self._state.metrics["distance"]))
        return self._numpy_obs(obs), {"is_success": float(success), "distance": float(distance)}

    def step(self, action):
        """Advance one step. `terminated` is always False (no terminal states); `truncated` is
        True on the `episode_length`-th step. `info["is_success"]` is 1.0 within the threshold."""
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        action = jnp.asarray(np.asarray(action, dtype=np.float32).reshape(self.action_space.shape))
        self._state = self._step_fn(self._state, action)
        obs, reward, truncation, success, distance = jax.device_get(
            (self._state.obs, self._state.reward, self._state.info["truncation"],
             self._state.metrics["success"], self._state.metrics["distance"]))
        info = {"is_success": float(success), "distance": float(distance)}
        return self._numpy_obs(obs), float(reward), False, bool(truncation), info

    def render(self):
        """No rendering through this adapter; use `envs.render` on hjax states."""
        return None

    # ---- GoalEnv contract ------------------------------------------------------------------------

    def compute_reward(self, achieved_goal, desired_goal, info=None) -> np.ndarray:
        """The wrapped env's reward for goals with any leading batch shape (float32 NumPy).

        `info` is accepted for the GoalEnv signature and ignored: the reward depends only on
        the goals. Equal to the step reward for the same goals (the same jitted function)."""
        achieved = np.asarray(achieved_goal, dtype=np.float32)
        desired = np.asarray(desired_goal, dtype=np.float32)
        return np.asarray(self._reward_fn(achieved, desired), dtype=np.float32)

    def compute_terminated(self, achieved_goal, desired_goal, info=None) -> np.ndarray:
        """Always False (batch-shaped): reaching the goal does not end a hjax episode."""
        return np.zeros(np.shape(achieved_goal)[:-1], dtype=bool)

    def compute_truncated(self, achieved_goal, desired_goal, info=None) -> np.ndarray:
        """Always False (batch-shaped): truncation depends on time, not on goals; `step` reports it."""
        return np.zeros(np.shape(achieved_goal)[:-1], dtype=bool)

    # ---- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _numpy_obs(obs) -> dict[str, np.ndarray]:
        # Writable float32 copies: device_get may return read-only views of JAX buffers.
        return {k: np.array(obs[k], dtype=np.float32) for k in OBS_KEYS}

    def __repr__(self) -> str:
        return f"GymnasiumGoalEnv({type(self.hjax_env).__name__}, episode_length={self.episode_length})"


def to_gymnasium(name_or_env: str | GoalEnv, **make_overrides: Any) -> GymnasiumGoalEnv:
    """Wrap a registered env name (built with `envs.make(name, **make_overrides)`) or an
    `envs.GoalEnv` instance (then no overrides) as a Gymnasium goal env."""
    if isinstance(name_or_env, GoalEnv):
        if make_overrides:
            raise ValueError("to_gymnasium(env, **overrides): overrides apply only to a registered env name; "
                             f"got an env instance and {sorted(make_overrides)}")
        return GymnasiumGoalEnv(name_or_env)
    if not isinstance(name_or_env, str):
        raise TypeError(f"to_gymnasium: expected a registered env name or a hjax.envs.GoalEnv, "
                        f"got {type(name_or_env).__name__}")
    return GymnasiumGoalEnv(make(name_or_env, **make_overrides))


__all__ = ["GymnasiumGoalEnv", "to_gymnasium"]
