"""Your own task: a goal env written as a user writes one, registered by name, trained with HER.

    python examples/custom_env.py [--epochs N] [--out runs/custom_env]

The task, `Rover`: a two-wheeled rover in a walled square must park on a goal. It drives forward
or backward along its heading and turns, so unlike point_mass (where a force pushes the mass in
any direction) it cannot move sideways: its action is in its own, rotating frame, and to reach a
goal beside it, it must turn first. docs/custom_env.md walks through this file.

Importing this file defines `Rover` and trains nothing; running it registers `Rover` under the
name "my_rover", trains it, prints `hjax.summary` and the final evaluation success, and exits 0.
"""

import argparse
import math

import jax
import jax.numpy as jnp
from flax import struct

import hjax
from hjax import envs
from hjax.envs.goal_env import GoalEnv, check_positive


@struct.dataclass
class RoverState:
    """Physics state of one rover: whatever `_step_goal_env` needs to take the next step."""

    pos: jax.Array  # (2,) position, inside [-arena_half_size, arena_half_size]^2
    heading: jax.Array  # () direction it faces, radians in [-pi, pi)


class Rover(GoalEnv):
    """A rover in the square `[-h, h]^2` that must stop on a goal.

    Dynamics, per env step (kinematic: the action sets the speeds, there is no momentum):

        a        = clip(action, -1, 1)               # (2,): forward speed, turn rate
        heading' = heading + dt * max_turn_rate * a[1]           (wrapped to [-pi, pi))
        pos'     = pos + dt * max_speed * a[0] * (cos heading', sin heading')
        walls:     pos' is clamped to [-h, h]^2 (the rover slides along a wall)

    Observation: `observation = [pos, cos heading, sin heading]` (4,), `achieved_goal = pos` (2,),
    `desired_goal` (2,). Start, heading and goal are uniform. The reward (sparse or dense), the
    success and distance metrics and the time limit come from `GoalEnv`.

    Parameters (keyword-only: they are what `hjax.envs.make(..., **overrides)` and
    `Config(env_kwargs=...)` accept):
        distance_threshold: success radius (default 0.05).
        episode_length: steps per episode, ended by truncation only (default 50).
        reward_type: "sparse" (default) or "dense".
        arena_half_size: h, half the side of the square (default 1.0).
        dt: seconds per env step (default 0.1).
        max_speed: speed at |a[0]| = 1, arena units per second (default 1.0).
        max_turn_rate: turn rate at |a[1]| = 1, radians per second (default 3.0).
    """

    def __init__(
        self,
        *,
        distance_threshold: float = 0.05,
        episode_length: int = 50,
        reward_type: str = "sparse",
        arena_half_size: float = 1.0,
        dt: float = 0.1,
        max_speed: float = 1.0,
        max_turn_rate: float = 3.0,
    ):
        super().__init__(distance_threshold=distance_threshold, episode_length=episode_length,
                         reward_type=reward_type)
        for field, value in (("arena_half_size", arena_half_size), ("dt", dt), ("max_speed", max_speed),
                             ("max_turn_rate", max_turn_rate)):
            check_positive("Rover", field, value)  # ValueError naming the field and what is allowed
        self.arena_half_size = float(arena_half_size)
        self.dt = float(dt)
        self.max_speed = float(max_speed)
        self.max_turn_rate = float(max_turn_rate)

    # ---- the members every GoalEnv provides ----------------------------------------------------

    def _reset_goal_env(self, key):
        key_pos, key_heading, key_goal = jax.random.split(key, 3)
        h = self.arena_half_size
        pos = jax.random.uniform(key_pos, (2,), jnp.float32, -h, h)
        heading = jax.random.uniform(key_heading, (), jnp.float32, -math.pi, math.pi)
        goal = jax.random.uniform(key_goal, (2,), jnp.float32, -h, h)
        physics = RoverState(pos=pos, heading=heading)
        return physics, self._observe(physics), physics.pos, goal

    def _step_goal_env(self, physics: RoverState, action):
        a = jnp.clip(action.astype(jnp.float32), -1.0, 1.0)
        turned = physics.heading + self.dt * self.max_turn_rate * a[1]
        heading = jnp.mod(turned + math.pi, 2 * math.pi) - math.pi
        direction = jnp.stack([jnp.cos(heading), jnp.sin(heading)])
        pos = physics.pos + self.dt * self.max_speed * a[0] * direction
        h = self.arena_half_size
        physics = RoverState(pos=jnp.clip(pos, -h, h), heading=heading)
        return physics, self._observe(physics), physics.pos

    @property
    def goal_size(self) -> int:
        return 2

    @property
    def max_goal_distance(self) -> float:
        return 2.0 * math.sqrt(2.0) * self.arena_half_size  # the square's diagonal

    @property
    def action_size(self) -> int:
        return 2

    @property
    def backend(self) -> str:
        return "jnp"

    # ---- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _observe(physics: RoverState) -> jax.Array:
        return jnp.concatenate([physics.pos, jnp.cos(physics.heading)[None], jnp.sin(physics.heading)[None]])


TRAINING = dict(num_envs=32, num_epochs=100, grad_steps_per_epoch=256, batch_size=256,
                hidden_sizes=(64, 64), num_eval_envs=100)
"""The run this file trains (and tests/test_custom_env.py checks): TD3 + HER's `future` strategy,
Config's defaults, with sizes chosen to reach 90% evaluation success in about a minute on one
CPU core."""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=TRAINING["num_epochs"])
    parser.add_argument("--out", default="runs/custom_env", help="run directory (replaced if it exists)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    # 1. Register the class under a name, for this process. Its keyword-only arguments become the
    #    overrides Config(env_kwargs=...) accepts.
    envs.register("my_rover", Rover)
    # Without registering, an import path names it as well, from any process that can import this
    # file as a module: from the repository root, Config(env="examples.custom_env:Rover").

    # 2. Train it like any built-in task. overwrite=True: running again replaces the previous run.
    config = hjax.Config(env="my_rover", **{**TRAINING, "num_epochs": args.epochs}, seed=args.seed)
    result = hjax.train(config, run_dir=args.out, overwrite=True)
    print(hjax.summary(result))
    success = float(result.metrics["eval/success_rate"][-1])
    print(f"final eval success: {success:.2f} over {config.num_eval_envs} episodes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
