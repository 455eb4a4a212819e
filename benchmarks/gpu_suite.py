"""The GPU suite: what hjax does on one accelerator, in one script that fits about 8 minutes.

    python -m benchmarks.gpu_suite                # on a GPU machine; writes benchmarks/results/gpu/
    python -m benchmarks.gpu_suite --smoke        # the same code on the CPU with tiny sizes (< 1 min)

Three sections, each timed against a budget (`--budget-s`, split 15% / 30% / 55%; an item that
would start past its section's share is recorded as skipped, never silently dropped):

1. env throughput: `jit(vmap(step))` in a `lax.scan` of random actions, every registered env, at
   4096, 16384 and 65536 envs (`benchmarks.env_throughput.make_rollout`);
2. fused training throughput: `hjax.train` on point_mass and push at 1024-8192 envs and batch
   256-8192, update-to-data ratio 1/64 (grad steps per epoch = env steps per epoch / 64), env and
   gradient steps/s of the compiled epochs, compile apart;
3. time to target: point_mass (95%), reach and push (90%) with 3 vmapped seeds; the seed mean of
   eval success is checked after every epoch, and the run stops at the target. The program is
   compiled first (a one-epoch warm-up run of the same program), so the time after compile and
   the compile time are reported apart.

Results: `gpu_suite.json` and `gpu_suite.md` under `--out` (default benchmarks/results/gpu/; the
smoke run defaults to benchmarks/results/gpu/smoke/), with the machine and the command.

On a machine without network access whose Python already has a CUDA-enabled JAX (0.11.x), flax,
optax, chex, orbax and tqdm, bring the rest as wheels downloaded beforehand on a machine with
network access, for that machine's Python (here 3.12). These are the versions hjax is tested
with on the CPU (`pip show brax mujoco mujoco-mjx` lists what each needs):

    pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl brax==0.14.2 mujoco==4.0.0 mujoco-core==4.0.0 mujoco-studio==4.0.0 mujoco-mjx==3.17.0 \
        glfw==2.11.0 pyopengl==3.1.10 jaxopt==0.8.5 ml-collections==1.1.0 trimesh==5.2.0 \
        flask==3.1.3 flask-cors==6.0.5 itsdangerous==2.2.0 blinker==1.9.0 tensorboardX==2.6.5 filelock
    # on the GPU machine, from the repository root:
    python -m pip install --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:.
    python -m benchmarks.gpu_suite

Their own needs that a CUDA JAX image usually has already (absl-py, etils, scipy, jinja2,
protobuf, pillow) are left out; add any that `python -c "import hjax, envs"` reports missing.
(`--platform manylinux_2_N_x86_64` for another N when pip finds no match.) Host script; not jittable.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import jax

import envs
import hjax
from benchmarks.common import RESULTS_DIR, block, machine, markdown_table, time_call
from benchmarks.env_throughput import make_rollout

FULL = dict(
    env_names=None,  # every registered env
    env_num_envs=[4096, 16384, 65536], env_steps=100,
    fused=[("point_mass", 1024, 256), ("point_mass", 4096, 1024), ("point_mass", 8192, 8192),
           ("push", 1024, 256), ("push", 4096, 1024), ("push", 8192, 8192)],
    fused_epochs=3, hidden=(256, 256),
    targets=[("point_mass", 0.95, dict(num_envs=256, grad_steps_per_epoch=64, batch_size=1024,
                                       hidden_sizes=(256, 256), num_epochs=100)),
             ("reach", 0.90, dict(num_envs=512, grad_steps_per_epoch=128, batch_size=1024,
                                  hidden_sizes=(256, 256), num_epochs=200)),
             ("push", 0.90, dict(num_envs=1024, grad_steps_per_epoch=400, batch_size=2048,
                                 hidden_sizes=(256, 256), num_epochs=300))],
    seeds=3, budget_s=480.0,
)
SMOKE = dict(
    env_names=["point_mass"], env_num_envs=[64], env_steps=10,
    fused=[("point_mass", 16, 32)], fused_epochs=2, hidden=(16, 16),
    targets=[("point_mass", 0.95, dict(num_envs=16, grad_steps_per_epoch=8, batch_size=64,
                                       hidden_sizes=(32, 32), num_epochs=3, num_eval_envs=16,
                                       buffer_episodes=64))],
    seeds=2, budget_s=120.0,
)
SHARES = {"env": 0.15, "fused": 0.30, "targets": 0.55}


class _Reached(Exception):
    """Raised from the progress callback to end a time-to-target run at the target."""


class Budget:
    """Wall-clock shares of the suite; `allows(section)` is False once a section's share is spent."""

    def __init__(self, total_s: float):
        self.start = time.perf_counter()
        self.total = total_s
        self.used = {name: 0.0 for name in SHARES}

    def allows(self, section: str) -> bool:
        return self.used[section] < SHARES[section] * self.total

    def spend(self, section: str, seconds: float) -> None:
        self.used[section] += seconds


def env_throughput(p: dict, budget: Budget) -> list[dict[str, Any]]:
    rows = []
    for name in p["env_names"] or envs.NAMES:
        env = envs.make(name)
        for n in p["env_num_envs"]:
            row: dict[str, Any] = {"env": name, "num_envs": n}
            if not budget.allows("env"):
                rows.append({**row, "skipped": "budget"})
                continue
            t0 = time.perf_counter()
            fn = make_rollout(env, n, p["env_steps"])
            key = jax.random.PRNGKey(0)
            compiled = fn.lower(key).compile()
            compile_s = time.perf_counter() - t0
            block(compiled(key))
            run_s, _ = time_call(lambda: compiled(key), 3)
            budget.spend("env", time.perf_counter() - t0)
            rows.append({**row, "steps_per_s": n * p["env_steps"] / run_s, "compile_s": compile_s})
            print(f"env {name:>22} {n:>6} envs: {rows[-1]['steps_per_s']:.3g} steps/s "
                  f"(compile {compile_s:.1f}s)", flush=True)
    return rows


def fused_throughput(p: dict, budget: Budget) -> list[dict[str, Any]]:
    rows = []
    for name, num_envs, batch in p["fused"]:
        row: dict[str, Any] = {"env": name, "num_envs": num_envs, "batch_size": batch}
        if not budget.allows("fused"):
            rows.append({**row, "skipped": "budget"})
            continue
        episode_length = envs.make(name).episode_length
        grad_steps = max(2, num_envs * episode_length // 64 // 2 * 2)  # UTD 1/64, a multiple of policy_delay
        config = hjax.Config(env=name, num_envs=num_envs, batch_size=batch, grad_steps_per_epoch=grad_steps,
                             hidden_sizes=p["hidden"], num_epochs=p["fused_epochs"], chunk_epochs=1,
                             buffer_episodes=max(2 * num_envs, 1024), num_eval_envs=100)
        t0 = time.perf_counter()
        result = hjax.train(config, progress_bar=False, verbose=False)
        budget.spend("fused", time.perf_counter() - t0)
        env_steps = config.total_env_steps
        rows.append({**row, "grad_steps_per_epoch": grad_steps,
                     "env_steps_per_s": env_steps / result.run_seconds,
                     "grad_steps_per_s": grad_steps * config.num_epochs / result.run_seconds,
                     "compile_s": result.compile_seconds})
        print(f"fused {name:>10} {num_envs:>5} envs batch {batch:>5}: {rows[-1]['env_steps_per_s']:.3g} env steps/s, "
              f"{rows[-1]['grad_steps_per_s']:.3g} grad steps/s (compile {result.compile_seconds:.1f}s)", flush=True)
    return rows


def time_to_target(p: dict, budget: Budget) -> list[dict[str, Any]]:
    rows = []
    for name, target, overrides in p["targets"]:
        row: dict[str, Any] = {"env": name, "target": target, "seeds": p["seeds"], **{
            k: (list(v) if isinstance(v, tuple) else v) for k, v in overrides.items()}}
        if not budget.allows("targets"):
            rows.append({**row, "skipped": "budget"})
            continue
        config = hjax.Config(env=name, chunk_epochs=1, **overrides)
        t0 = time.perf_counter()
        warm = hjax.train(config.replace(num_epochs=1), num_seeds=p["seeds"], progress_bar=False, verbose=False)
        compile_s = warm.compile_seconds  # the same program again below: compiled once per process
        seen: dict[str, Any] = {"best": 0.0}
        t_start = time.perf_counter()
        limit = SHARES["targets"] * budget.total - budget.used["targets"] - (t_start - t0)

        def progress(epoch: int, last: dict[str, float]) -> None:
            elapsed = time.perf_counter() - t_start
            seen.update(epoch=epoch, env_steps=int(last["env_steps"]), seconds=elapsed,
                        best=max(seen["best"], last["eval/success_rate"]))
            if last["eval/success_rate"] >= target:
                raise _Reached
            if elapsed > limit:
                raise TimeoutError

        outcome = "not reached"
        try:
            hjax.train(config, num_seeds=p["seeds"], progress=progress, progress_bar=False, verbose=False)
        except _Reached:
            outcome = "reached"
        except TimeoutError:
            outcome = "budget"
        budget.spend("targets", time.perf_counter() - t0)
        rows.append({**row, "outcome": outcome, "epochs": seen.get("epoch"), "env_steps_per_seed": seen.get("env_steps"),
                     "seconds_after_compile": seen.get("seconds"), "compile_s": compile_s,
                     "best_eval_success": seen["best"]})
        print(f"target {name:>10} {target:.2f}: {outcome} at epoch {seen.get('epoch')} "
              f"({seen.get('seconds', 0):.1f}s after a {compile_s:.1f}s compile)", flush=True)
    return rows


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    return markdown_table(columns, [[r.get(c, "") for c in columns] for r in rows])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on any device, under a minute on a CPU")
    parser.add_argument("--out", type=Path, default=None, help="folder for gpu_suite.json/.md")
    parser.add_argument("--budget-s", type=float, default=None, help="wall-clock budget of the whole suite")
    args = parser.parse_args(argv)
    p = dict(SMOKE if args.smoke else FULL)
    if args.budget_s is not None:
        if args.budget_s <= 0:
            parser.error(f"invalid --budget-s={args.budget_s}; allowed: a number of seconds > 0")
        p["budget_s"] = args.budget_s
    out = args.out or (RESULTS_DIR / "gpu" / ("smoke" if args.smoke else ""))
    if not args.smoke and jax.default_backend() == "cpu":
        print("warning: no accelerator found; the full suite on a CPU takes far longer than its budget "
              "(use --smoke to check the script)", flush=True)
    budget = Budget(p["budget_s"])
    t0 = time.perf_counter()
    sections = {"env_throughput": env_throughput(p, budget), "fused_throughput": fused_throughput(p, budget),
                "time_to_target": time_to_target(p, budget)}
    info = machine()
    payload = {"machine": info, "smoke": args.smoke, "budget_s": p["budget_s"], "seconds": time.perf_counter() - t0,
               **sections}
    md = [f"# GPU suite{' (smoke)' if args.smoke else ''}", "",
          "## Env throughput (random actions)", "",
          _table(sections["env_throughput"], ["env", "num_envs", "steps_per_s", "compile_s", "skipped"]), "",
          "## Fused training throughput (UTD 1/64)", "",
          _table(sections["fused_throughput"], ["env", "num_envs", "batch_size", "grad_steps_per_epoch",
                                                "env_steps_per_s", "grad_steps_per_s", "compile_s", "skipped"]), "",
          f"## Time to target ({p['seeds']} vmapped seeds, seed-mean eval success)", "",
          _table(sections["time_to_target"], ["env", "target", "outcome", "epochs", "env_steps_per_seed",
                                              "seconds_after_compile", "compile_s", "best_eval_success", "skipped"]), "",
          f"Suite wall time {payload['seconds']:.0f} s of a {p['budget_s']:.0f} s budget.", "",
          "Measured on: " + ", ".join(f"{k}={v}" for k, v in info.items() if k != "command"), "",
          f"Command: `{info['command']}`", ""]
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_suite.json").write_text(json.dumps(payload, indent=2, default=str))
    (out / "gpu_suite.md").write_text("\n".join(md))
    print("\n".join(md))
    print(f"written: {out / 'gpu_suite.md'}")
    return payload


if __name__ == "__main__":
    main()
