"""Quickstart: train point_mass with HER on the CPU, plot the curves, load the policy back.

    python examples/quickstart.py [--epochs 30] [--out runs/quickstart]

With the default 30 epochs this is the README's demo run plus saving and loading the policy.
"""

import argparse

import jax
import numpy as np

from hjax import envs
import hjax

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--out", default="runs/quickstart")
args = parser.parse_args()

# 1. Train: a run directory gets the config, metrics.csv, checkpoints and curves.png.
config = hjax.Config(env="point_mass", num_epochs=args.epochs)
result = hjax.train(config, run_dir=args.out)
print(hjax.summary(result))

# 2. Plot: success (train and eval), distance to goal, replay composition, Q against its bound.
hjax.plot(result, f"{args.out}/quickstart.png")

# 3. Load the policy back from the checkpoint and roll it out in fresh envs.
policy = hjax.load_policy(args.out)
env = envs.make("point_mass")


def episode(key):
    def step(state, _):
        state = env.step(state, policy(state.obs))
        return state, state.metrics["success"]

    _, success = jax.lax.scan(step, env.reset(key), None, env.episode_length)
    return success[-1]


success = jax.jit(jax.vmap(episode))(jax.random.split(jax.random.PRNGKey(1), 200))
print(f"loaded policy: success rate {float(np.mean(success)):.3f} over 200 new episodes")
print(f"curves: {args.out}/quickstart.png")
