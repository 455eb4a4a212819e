"""Watchable episodes of the scripted gripper controllers (`envs.gripper`), written with `envs.render`.

    python -m benchmarks.gripper_episodes [--episodes 64] [--seed 0]

Runs `--episodes` scripted episodes of gripper_pick_and_place (approach, descend, close, lift,
carry) and of gripper_push, prints their final-step success, and writes the first successful
episode with an air goal (pick-and-place) and the first successful push as Brax-viewer HTML and
top-down PNG traces: benchmarks/results/gripper_{pick_and_place,push}_scripted.{html,png}.
Host script; not jittable.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

from hjax import envs
from benchmarks.common import RESULTS_DIR
from hjax.envs import gripper as g

CONTROLLERS = {"gripper_pick_and_place": g.pick_and_place_policy, "gripper_push": g.push_policy}


def scripted_episodes(env, policy, num_envs: int, key: jax.Array):
    """States (time, env) of `num_envs` episodes of `policy`, the reset state first."""
    def run(key):
        state0 = jax.vmap(env.reset)(jax.random.split(key, num_envs))

        def body(state, _):
            state = jax.vmap(env.step)(state, jax.vmap(policy)(state.obs))
            return state, state

        _, states = jax.lax.scan(body, state0, None, env.episode_length)
        return jax.tree.map(lambda a, b: jax.numpy.concatenate([a[None], b]), state0, states)

    return jax.device_get(jax.jit(run)(key))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name, policy in CONTROLLERS.items():
        env = envs.make(name)
        states = scripted_episodes(env, policy, args.episodes, jax.random.PRNGKey(args.seed))
        success = np.asarray(states.metrics["success"][-1])
        pick = success.astype(bool)
        if name == "gripper_pick_and_place":
            pick &= np.asarray(states.obs["desired_goal"][0, :, 2]) > env.object_rest_height + 0.1
        index = int(np.argmax(pick))
        stem = RESULTS_DIR / f"{name}_scripted"
        paths = [envs.render(env, states, stem.with_suffix(s), index=index) for s in (".html", ".png")]
        print(f"{name}: scripted final-step success {success.mean():.3f} over {args.episodes} episodes; "
              f"episode {index} written to {', '.join(map(str, paths))}")


if __name__ == "__main__":
    main()
