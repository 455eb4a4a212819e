"""Throughput against the number of (simulated) devices, and the bytes all-reduced per update.

    python -m benchmarks.scaling [--devices 1 2 4] [--epochs 4]

Each device count runs in its own process with
XLA_FLAGS=--xla_force_host_platform_device_count=N (JAX reads it at start-up). Every run uses
the same data layout (data_shards = the largest device count), so all do the same math; only
the placement differs. On a CPU the simulated devices share the same cores, so this measures
the partitioning overhead, not a speed-up: see the README for how the numbers transfer to GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

WORKER = r"""
import json, sys, time
import jax, numpy as np
import hjax
devices, shards, epochs, hidden = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), tuple(map(int, sys.argv[4].split(",")))
cfg = hjax.Config(num_envs=64, num_eval_envs=64, grad_steps_per_epoch=100, batch_size=1024, buffer_episodes=4096,
                  hidden_sizes=hidden, num_devices=devices, data_shards=shards, num_epochs=epochs, chunk_epochs=epochs)
t0 = time.perf_counter()
program = hjax.compile_program(cfg)  # what hjax.train(cfg) runs: init and one compiled chunk
cfg, run = program.config, program.run_chunk
state = program.init(program.keys)
jax.block_until_ready(state)
compile_s = time.perf_counter() - t0
state, _ = run(state); jax.block_until_ready(state)
times = []
for _ in range(3):
    t0 = time.perf_counter(); state, m = run(state); jax.block_until_ready(m); times.append(time.perf_counter() - t0)
t = sorted(times)[1]
grad_params = sum(x.size for x in jax.tree.leaves((state.learner.actor_params, state.learner.critic_params)))
print(json.dumps({"devices": devices, "compile_s": compile_s, "env_steps_per_s": epochs * cfg.env_steps_per_epoch / t,
                  "grad_steps_per_s": epochs * cfg.grad_steps_per_epoch / t, "grad_bytes": 4 * int(grad_params)}))
"""


def main() -> None:
    from benchmarks.common import markdown_table, write_results

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--hidden", default="256,256,256")
    args = parser.parse_args()
    shards = max(args.devices)
    headers = ["devices", "data_shards", "env steps/s", "grad steps/s", "compile_s", "bytes all-reduced per update"]
    rows = []
    for d in args.devices:
        env = {**os.environ, "JAX_PLATFORMS": "cpu",
               "XLA_FLAGS": f"--xla_force_host_platform_device_count={d}"}
        out = subprocess.run([sys.executable, "-c", WORKER, str(d), str(shards), str(args.epochs), args.hidden],
                             env=env, capture_output=True, text=True, check=False)
        if out.returncode:
            raise SystemExit(f"worker with {d} devices failed:\n{out.stderr[-3000:]}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append([d, shards, round(r["env_steps_per_s"]), round(r["grad_steps_per_s"], 1),
                     round(r["compile_s"], 1), r["grad_bytes"] if d > 1 else 0])
        print(markdown_table(headers, rows[-1:]).splitlines()[-1], flush=True)
    path = write_results("scaling", headers, rows, notes=(
        "Simulated CPU devices share this machine's 2 cores: this shows the sharded program runs and what "
        "partitioning costs, not a speed-up. Config: 64 envs, batch 1024, 100 updates per epoch, "
        f"hidden {args.hidden}. Gradients all-reduced per update = 4 bytes x (actor + twin critic params)."))
    print("\n" + markdown_table(headers, rows) + f"\nwritten: {path}")


if __name__ == "__main__":
    main()
