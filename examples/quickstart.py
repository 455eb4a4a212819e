"""Quickstart: the demo's run (the point_mass preset) into a run directory, then the policy back.

    python examples/quickstart.py [--epochs N] [--out runs/quickstart]

Trains `hjax.Config.preset("point_mass")` (what `bash dev.sh demo` trains) with HER on the CPU;
the run directory gets config.json, metrics.csv, checkpoints and one plot, curves.png. Then it
loads the policy back from the checkpoint and plays it in fresh envs.
"""

import argparse

import jax
import numpy as np

import hjax
from hjax import envs

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=None, help="default: the preset's")
parser.add_argument("--out", default="runs/quickstart")
args = parser.parse_args()

# 1. Train. overwrite=True: running the example again replaces its previous run (without it, a
#    used run directory is refused, so a run is never lost by accident).
config = hjax.Config.preset("point_mass")
if args.epochs is not None:
    config = config.replace(num_epochs=args.epochs)
result = hjax.train(config, run_dir=args.out, overwrite=True)
print(hjax.summary(result))
print(f"curves: {result.run_dir}/curves.png")  # success, distance, replay composition, Q and its bound

# 2. Load the policy back from the run directory's checkpoint and roll it out in fresh envs.
policy = hjax.load_policy(args.out)
env = envs.make(config.env)


def episode(key):
    def step(state, _):
        state = env.step(state, policy(state.obs))
        return state, state.metrics["success"]

    _, success = jax.lax.scan(step, env.reset(key), None, env.episode_length)
    return success[-1]


success = jax.jit(jax.vmap(episode))(jax.random.split(jax.random.PRNGKey(1), 200))
print(f"loaded policy: success rate {float(np.mean(success)):.3f} over 200 new episodes")
# The same in one call (also `hjax eval RUN_DIR` on the command line):
print(f"hjax.evaluate: success rate {hjax.evaluate(args.out, episodes=200)['success_rate']:.3f}")
