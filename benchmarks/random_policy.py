"""How often a uniformly random policy succeeds: the premise of a sparse-reward task.

    python -m benchmarks.random_policy [--envs point_mass reach push] [--episodes 4096]

For each env (default kwargs), `--episodes` episodes from `reset` with actions uniform in
[-1, 1]^n at every step. Reports the success rate at the last step (what evaluation counts),
at any step, the mean start and final distance to the goal, and the fraction of episodes whose
achieved goal moved more than one `distance_threshold` from its start (for push: the puck was
pushed). Host script; the episodes run in one jitted `lax.scan` per chunk of 1024.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from hjax import envs
from benchmarks.common import markdown_table, write_results

CHUNK = 1024


def make_episodes(env: envs.GoalEnv, num_envs: int):
    def episodes(key):
        key_reset, key_act = jax.random.split(key)
        state0 = jax.vmap(env.reset)(jax.random.split(key_reset, num_envs))

        def body(state, key_t):
            action = jax.random.uniform(key_t, (num_envs, env.action_size), minval=-1, maxval=1)
            state = jax.vmap(env.step)(state, action)
            return state, state.metrics["success"]

        state, success = jax.lax.scan(body, state0, jax.random.split(key_act, env.episode_length))
        moved = jnp.linalg.norm(state.obs["achieved_goal"] - state0.obs["achieved_goal"], axis=-1)
        return {"success_last": success[-1], "success_any": success.max(axis=0),
                "start_distance": state0.metrics["distance"], "final_distance": state.metrics["distance"],
                "moved": moved > env.distance_threshold}

    return jax.jit(episodes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=list(envs.NAMES), choices=envs.NAMES)
    parser.add_argument("--episodes", type=int, default=4096, help=f"per env, a multiple of {CHUNK}")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.episodes <= 0 or args.episodes % CHUNK:
        parser.error(f"--episodes={args.episodes}: must be a positive multiple of {CHUNK}")
    headers = ["env", "episodes", "success at last step", "success at any step", "mean start distance",
               "mean final distance", "achieved goal moved > threshold"]
    rows = []
    for name in args.envs:
        env = envs.make(name)
        run = make_episodes(env, CHUNK)
        keys = jax.random.split(jax.random.PRNGKey(args.seed), args.episodes // CHUNK)
        out = [jax.device_get(run(k)) for k in keys]
        cat = {k: np.concatenate([o[k] for o in out]) for k in out[0]}
        last, ever = int(cat["success_last"].sum()), int(cat["success_any"].sum())
        rows.append([name, args.episodes, f"{last} ({last / args.episodes:.2%})", f"{ever} ({ever / args.episodes:.2%})",
                     round(float(cat["start_distance"].mean()), 3), round(float(cat["final_distance"].mean()), 3),
                     f"{cat['moved'].mean():.1%}"])
        print(markdown_table(headers, rows[-1:]).splitlines()[-1], flush=True)
    path = write_results("random_policy", headers, rows,
                         notes="Uniform random actions in [-1, 1]^n every step; default env kwargs; distances in the "
                               "env's units (m for reach and push).")
    print("\n" + markdown_table(headers, rows) + f"\nwritten: {path}")


if __name__ == "__main__":
    main()
