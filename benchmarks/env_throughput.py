"""Env steps per second under `jit(vmap(step))` inside a `lax.scan`, compile time apart.

    python -m benchmarks.env_throughput [--envs point_mass] [--num-envs 1 64 1024 4096 16384]

Random actions; each measured call runs `--steps` env steps for every env. Reset is included
in the compiled function but is O(num_envs) against O(num_envs * steps) for stepping.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from hjax import envs
from benchmarks.common import block, markdown_table, time_call, write_results


def make_rollout(env, num_envs: int, steps: int):
    def rollout(key):
        key_reset, key_act = jax.random.split(key)
        state = jax.vmap(env.reset)(jax.random.split(key_reset, num_envs))

        def body(carry, key_t):
            state, total = carry
            action = jax.random.uniform(key_t, (num_envs, env.action_size), minval=-1, maxval=1)
            state = jax.vmap(env.step)(state, action)
            return (state, total + state.reward.sum()), None

        (state, total), _ = jax.lax.scan(body, (state, jnp.zeros(())), jax.random.split(key_act, steps))
        return total

    return jax.jit(rollout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["point_mass"], choices=envs.NAMES,
                        help="physics envs (reach, push) are measured per backend by benchmarks.backends")
    parser.add_argument("--num-envs", nargs="+", type=int, default=[1, 64, 1024, 4096, 16384])
    parser.add_argument("--steps", type=int, default=1000, help="env steps per env per measured call")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    headers = ["env", "backend", "num_envs", "steps/s", "compile_s", "run_s (median)"]
    rows = []
    for name in args.envs:
        env = envs.make(name)
        for n in args.num_envs:
            fn = make_rollout(env, n, args.steps)
            key = jax.random.PRNGKey(0)
            t0 = time.perf_counter()
            compiled = fn.lower(key).compile()
            compile_s = time.perf_counter() - t0
            block(compiled(key))  # warm-up
            run_s, _ = time_call(lambda: compiled(key), args.repeats)
            rows.append([name, env.backend, n, n * args.steps / run_s, compile_s, run_s])
            print(markdown_table(headers, rows[-1:]).splitlines()[-1], flush=True)
    path = write_results("env_throughput", headers, rows,
                         notes=f"Random actions, {args.steps} steps per env per call, median of {args.repeats}.")
    print()
    print(markdown_table(headers, rows))
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
