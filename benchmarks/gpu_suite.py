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

Optionally (`--gripper ENV... --gripper-s SECONDS`, off by default and outside the 8-minute budget), a
fourth section trains the 3D gripper tasks with HER the same way (3 vmapped seeds, stop at the
target or when the task's share of SECONDS is spent) and records each task's eval-success curve.

Results: `gpu_suite.json` and `gpu_suite.md` under `--out` (default benchmarks/results/gpu/; the
smoke run defaults to benchmarks/results/gpu/smoke/), with the machine and the command. Both files
are rewritten after every item, so a run cut short still leaves what it measured.

On a machine without network access whose Python already has a CUDA-enabled JAX (0.11.x), flax,
optax, chex, orbax and tqdm, bring the rest as wheels downloaded beforehand on a machine with
network access, for that machine's Python (here 3.12). These are the versions hjax is tested
with on the CPU (`pip show brax mujoco mujoco-mjx` lists what each needs):

    pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl brax==0.14.2 mujoco==4.0.0 mujoco-core==4.0.0 mujoco-studio==4.0.0 mujoco-mjx==3.17.0 \
        glfw==2.11.0 pyopengl==3.1.10 jaxopt==0.8.5 ml-collections==1.1.0 trimesh==5.2.0 \
        flask==3.1.3 flask-cors==6.0.5 itsdangerous==2.2.0 blinker==1.9.0 tensorboardX==2.6.5 filelock \
        flatbuffers
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
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from hjax import envs
import hjax
from benchmarks.common import RESULTS_DIR, block, machine, markdown_table, time_call
from benchmarks.env_throughput import make_rollout
from hjax.stats import format_interval, interval_estimates
from hjax import runs

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
    # The gripper section (only with --gripper): large batches at UTD 1/64, as in the fused section.
    gripper={
        "gripper_reach": (0.90, dict(num_envs=512, grad_steps_per_epoch=200, batch_size=1024,
                                     hidden_sizes=(256, 256), num_epochs=100)),
        "gripper_push": (0.90, dict(num_envs=1024, grad_steps_per_epoch=800, batch_size=4096,
                                    hidden_sizes=(256, 256, 256), num_epochs=300)),
        "gripper_pick_and_place": (0.50, dict(num_envs=1024, grad_steps_per_epoch=800, batch_size=4096,
                                              hidden_sizes=(256, 256, 256), num_epochs=300)),
        "gripper_slide": (0.50, dict(num_envs=1024, grad_steps_per_epoch=800, batch_size=4096,
                                     hidden_sizes=(256, 256, 256), num_epochs=300)),
    },
    seeds=3, budget_s=480.0,
)
SMOKE = dict(
    env_names=["point_mass"], env_num_envs=[64], env_steps=10,
    fused=[("point_mass", 16, 32)], fused_epochs=2, hidden=(16, 16),
    targets=[("point_mass", 0.95, dict(num_envs=16, grad_steps_per_epoch=8, batch_size=64,
                                       hidden_sizes=(32, 32), num_epochs=3, num_eval_envs=16,
                                       buffer_episodes=64))],
    gripper={"gripper_reach": (0.90, dict(num_envs=4, grad_steps_per_epoch=2, batch_size=16, hidden_sizes=(16, 16),
                                          num_epochs=2, num_eval_envs=4, buffer_episodes=16))},
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


def env_throughput(p: dict, budget: Budget, rows: list, flush: Callable[[], None]) -> list[dict[str, Any]]:
    # Sizes in the outer loop: every env is measured at the smallest size before any at a larger one.
    for n in p["env_num_envs"]:
        for name in p["env_names"] or envs.NAMES:
            env = envs.make(name)
            row: dict[str, Any] = {"env": name, "num_envs": n}
            if not budget.allows("env"):
                rows.append({**row, "skipped": "budget"})
                flush()
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
            flush()
    return rows


def fused_throughput(p: dict, budget: Budget, rows: list, flush: Callable[[], None]) -> list[dict[str, Any]]:
    for name, num_envs, batch in p["fused"]:
        row: dict[str, Any] = {"env": name, "num_envs": num_envs, "batch_size": batch}
        if not budget.allows("fused"):
            rows.append({**row, "skipped": "budget"})
            flush()
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
        flush()
    return rows


def learning_run(name: str, target: float, overrides: dict, seeds: int, limit_s: float) -> dict[str, Any]:
    """Train `seeds` vmapped seeds until the seed-mean eval success reaches `target` or `limit_s`
    (compile included) is spent; the compile is measured apart by a one-epoch warm-up of the same
    program. Returns a row with the outcome, the curve [epoch, env steps per seed, seconds after
    compile, seed-mean eval success], and each seed's eval success at the last epoch with their
    median and IQM [95% CI] (read back from the run's metrics.csv in a temporary run directory)."""
    row: dict[str, Any] = {"env": name, "target": target, "seeds": seeds, **{
        k: (list(v) if isinstance(v, tuple) else v) for k, v in overrides.items()}}
    config = hjax.Config(env=name, chunk_epochs=1, **overrides)
    t0 = time.perf_counter()
    warm = hjax.train(config.replace(num_epochs=1), num_seeds=seeds, progress_bar=False, verbose=False)
    compile_s = warm.compile_seconds  # the same program again below: compiled once per process
    seen: dict[str, Any] = {"best": 0.0, "curve": []}
    t_start = time.perf_counter()
    limit = limit_s - (t_start - t0)

    def progress(epoch: int, last: dict[str, float]) -> None:
        elapsed = time.perf_counter() - t_start
        success = float(last["eval/success_rate"])
        seen.update(epoch=epoch, env_steps=int(last["env_steps"]), seconds=elapsed, best=max(seen["best"], success))
        seen["curve"].append([epoch, int(last["env_steps"]), round(elapsed, 3), round(success, 4)])
        if success >= target:
            raise _Reached
        if elapsed > limit:
            raise TimeoutError

    outcome = "not reached"
    with tempfile.TemporaryDirectory() as run_dir:
        try:
            hjax.train(config, num_seeds=seeds, progress=progress, progress_bar=False, verbose=False,
                       run_dir=run_dir, checkpoint_every=10**9)
        except _Reached:
            outcome = "reached"
        except TimeoutError:
            outcome = "budget"
        per_seed = runs.read_metrics(run_dir)["eval/success_rate"][:, -1].astype(float)
    row.update(final_per_seed=[round(v, 4) for v in per_seed.tolist()],
               final_median=float(np.median(per_seed)),
               final_iqm_ci=format_interval(interval_estimates(per_seed, "iqm")))
    row.update(outcome=outcome, epochs=seen.get("epoch"), env_steps_per_seed=seen.get("env_steps"),
               seconds_after_compile=seen.get("seconds"), compile_s=compile_s, best_eval_success=seen["best"],
               final_eval_success=seen["curve"][-1][3] if seen["curve"] else None,
               wall_s=time.perf_counter() - t0, curve=seen["curve"])
    print(f"target {name:>22} {target:.2f}: {outcome} at epoch {seen.get('epoch')} "
          f"({seen.get('seconds', 0):.1f}s after a {compile_s:.1f}s compile; best {seen['best']:.3f})", flush=True)
    return row


def time_to_target(p: dict, budget: Budget, rows: list, flush: Callable[[], None]) -> list[dict[str, Any]]:
    for name, target, overrides in p["targets"]:
        if not budget.allows("targets"):
            rows.append({"env": name, "target": target, "skipped": "budget"})
            flush()
            continue
        t0 = time.perf_counter()
        limit = SHARES["targets"] * budget.total - budget.used["targets"]
        rows.append(learning_run(name, target, overrides, p["seeds"], limit))
        budget.spend("targets", time.perf_counter() - t0)
        flush()
    return rows


def parse_gripper_item(item: str, known: dict) -> tuple[str, str, int | None]:
    """`ENV[:STRATEGY[:EPOCHS]]`, e.g. `gripper_push`, `gripper_push:none:25`."""
    parts = item.split(":")
    if len(parts) > 3 or parts[0] not in known:
        raise ValueError(f"invalid --gripper {item!r}; allowed: ENV[:STRATEGY[:EPOCHS]] with ENV one of "
                         f"{', '.join(known)}")
    strategy = parts[1] if len(parts) > 1 else "future"
    if strategy not in hjax.HER_STRATEGIES:
        raise ValueError(f"invalid --gripper {item!r}: strategy {strategy!r}; allowed: {', '.join(hjax.HER_STRATEGIES)}")
    if len(parts) > 2 and not (parts[2].isdigit() and int(parts[2]) > 0):
        raise ValueError(f"invalid --gripper {item!r}: epochs {parts[2]!r}; allowed: an integer > 0")
    return parts[0], strategy, int(parts[2]) if len(parts) > 2 else None


def gripper_learning(p: dict, items: list[str], seconds: float, rows: list,
                     flush: Callable[[], None]) -> list[dict[str, Any]]:
    """Each item gets an equal share of what is left of `seconds` when it starts."""
    t0 = time.perf_counter()
    for i, item in enumerate(items):
        name, strategy, epochs = parse_gripper_item(item, p["gripper"])
        left = seconds - (time.perf_counter() - t0)
        if left <= 0:
            rows.append({"env": name, "her_strategy": strategy, "skipped": "budget"})
            flush()
            continue
        target, overrides = p["gripper"][name]
        overrides = {**overrides, "her_strategy": strategy, **({"num_epochs": epochs} if epochs else {})}
        rows.append(learning_run(name, target, overrides, p["seeds"], left / (len(items) - i)))
        flush()
    return rows


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    return markdown_table(columns, [[r.get(c, "") for c in columns] for r in rows])


def _markdown(payload: dict[str, Any], p: dict) -> str:
    info = payload["machine"]
    md = [f"# GPU suite{' (smoke)' if payload['smoke'] else ''}", "",
          "## Env throughput (random actions)", "",
          _table(payload["env_throughput"], ["env", "num_envs", "steps_per_s", "compile_s", "skipped"]), "",
          "## Fused training throughput (UTD 1/64)", "",
          _table(payload["fused_throughput"], ["env", "num_envs", "batch_size", "grad_steps_per_epoch",
                                               "env_steps_per_s", "grad_steps_per_s", "compile_s", "skipped"]), "",
          f"## Time to target ({p['seeds']} vmapped seeds, seed-mean eval success)", "",
          _table(payload["time_to_target"], LEARNING_COLUMNS), ""]
    if payload["gripper_learning"]:
        md += [f"## Gripper tasks ({p['seeds']} vmapped seeds, {payload['gripper_s']:.0f} s in all)", "",
               _table(payload["gripper_learning"], LEARNING_COLUMNS + ["her_strategy", "num_envs", "batch_size",
                                                                       "grad_steps_per_epoch"]), "",
               "Curves (epoch, env steps per seed, seconds after compile, seed-mean eval success) are in the JSON.", ""]
    md += [f"Suite wall time {payload.get('suite_seconds', payload['seconds']):.0f} s of a {p['budget_s']:.0f} s budget"
           + (f" (+ {payload['gripper_s']:.0f} s for the gripper tasks)" if payload["gripper_learning"] else "")
           + ("" if payload.get("finished") else "; NOT FINISHED: cut short, rows so far") + ".", "",
           "Measured on: " + ", ".join(f"{k}={v}" for k, v in info.items() if k != "command"), "",
           f"Command: `{info['command']}`", ""]
    return "\n".join(md)


LEARNING_COLUMNS = ["env", "target", "outcome", "epochs", "env_steps_per_seed", "seconds_after_compile",
                    "compile_s", "best_eval_success", "final_eval_success", "final_median", "final_iqm_ci", "skipped"]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on any device, under a minute on a CPU")
    parser.add_argument("--out", type=Path, default=None, help="folder for gpu_suite.json/.md")
    parser.add_argument("--budget-s", type=float, default=None, help="wall-clock budget of the whole suite")
    parser.add_argument("--gripper", nargs="*", default=[], metavar="ENV[:STRATEGY[:EPOCHS]]",
                        help=f"also train these gripper tasks (any of {', '.join(FULL['gripper'])}; HER "
                             "strategy `future` unless named; EPOCHS caps the run, e.g. gripper_push:none:25)")
    parser.add_argument("--gripper-only", action="store_true", help="skip the three suite sections")
    parser.add_argument("--gripper-s", type=float, default=300.0,
                        help="wall-clock seconds for the --gripper tasks together, compile included")
    args = parser.parse_args(argv)
    p = dict(SMOKE if args.smoke else FULL)
    if args.budget_s is not None:
        if args.budget_s <= 0:
            parser.error(f"invalid --budget-s={args.budget_s}; allowed: a number of seconds > 0")
        p["budget_s"] = args.budget_s
    if args.gripper_s <= 0:
        parser.error(f"invalid --gripper-s={args.gripper_s}; allowed: a number of seconds > 0")
    for item in args.gripper:
        try:
            parse_gripper_item(item, p["gripper"])
        except ValueError as e:
            parser.error(str(e))
    if args.gripper_only and not args.gripper:
        parser.error("--gripper-only needs --gripper ENV...")
    out = args.out or (RESULTS_DIR / "gpu" / ("smoke" if args.smoke else ""))
    if not args.smoke and jax.default_backend() == "cpu":
        print("warning: no accelerator found; the full suite on a CPU takes far longer than its budget "
              "(use --smoke to check the script)", flush=True)
    budget = Budget(p["budget_s"])
    t0 = time.perf_counter()
    payload: dict[str, Any] = {"machine": machine(), "smoke": args.smoke, "budget_s": p["budget_s"],
                               "gripper_s": args.gripper_s if args.gripper else 0.0, "seconds": 0.0,
                               "finished": False, "env_throughput": [], "fused_throughput": [],
                               "time_to_target": [], "gripper_learning": []}
    out.mkdir(parents=True, exist_ok=True)

    def flush() -> None:
        payload["seconds"] = time.perf_counter() - t0
        (out / "gpu_suite.json").write_text(json.dumps(payload, indent=2, default=str))
        (out / "gpu_suite.md").write_text(_markdown(payload, p))

    if not args.gripper_only:
        env_throughput(p, budget, payload["env_throughput"], flush)
        fused_throughput(p, budget, payload["fused_throughput"], flush)
        time_to_target(p, budget, payload["time_to_target"], flush)
    payload["suite_seconds"] = time.perf_counter() - t0
    if args.gripper:
        gripper_learning(p, args.gripper, args.gripper_s, payload["gripper_learning"], flush)
    payload["finished"] = True
    flush()
    print(_markdown(payload, p))
    print(f"written: {out / 'gpu_suite.md'}")
    return payload


if __name__ == "__main__":
    main()
