"""Trainer benchmark on point_mass: learning with and without HER, throughput, fusion efficiency.

    python -m benchmarks.train_point_mass [--seeds 3] [--skip-learning] [--skip-throughput]

1. Learning: the default `hjax.Config()` (the README's main job) with her_strategy="future" and
   the same budget with "none": wall time (compile apart), eval success per epoch, the first
   epoch at >= 95% eval success; seed 0 alone, then `--seeds` seeds in one vmap.
2. Throughput: env steps/s and gradient steps/s of the fused step at the default ratio and at
   one gradient step per env step (SB3's default), for a few network sizes, with the FLOPs XLA
   counts for the update and the GFLOP/s that implies.
3. Fusion efficiency: the fused epoch against the sum of its parts timed alone
   (collect = rollout + normalisers + buffer insert, updates, evaluation rollout).

Host script; not jittable.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import hjax
from benchmarks.common import block, markdown_table, time_call, write_results


def first_epoch_at(values: np.ndarray, level: float) -> int | None:
    hits = np.flatnonzero(values >= level)
    return int(hits[0]) + 1 if hits.size else None


def learning(seeds: int) -> tuple[list, list]:
    headers = ["her_strategy", "seeds", "final eval success (median [min, max])", "first epoch >= 0.95",
               "env steps to 0.95", "compile_s", "run_s", "env steps/s", "grad steps/s"]
    rows, curves = [], []
    base = hjax.Config()
    for num_seeds in (None, seeds):
        for strategy in ("future", "none"):
            cfg = base.replace(her_strategy=strategy)
            r = hjax.train(cfg, num_seeds=num_seeds, progress_bar=False)
            ev = np.atleast_2d(r.metrics["eval/success_rate"])
            final = ev[:, -1]
            med_curve = np.median(ev, axis=0)
            first = first_epoch_at(med_curve, 0.95)
            n = num_seeds or 1
            steps = int(np.atleast_2d(r.metrics["env_steps"])[0, -1])
            grads = int(np.atleast_2d(r.metrics["grad_steps"])[0, -1])
            rows.append([strategy, n, f"{np.median(final):.3f} [{final.min():.3f}, {final.max():.3f}]",
                         first or "never", first * cfg.env_steps_per_epoch if first else "-",
                         round(r.compile_seconds, 1), round(r.run_seconds, 1),
                         round(n * steps / r.run_seconds), round(n * grads / r.run_seconds)])
            curves.append({"her_strategy": strategy, "seeds": n,
                           "eval_success_median": med_curve.round(3).tolist()})
            print(markdown_table(headers, rows[-1:]).splitlines()[-1], flush=True)
    return [headers, rows], curves


def update_flops(cfg: hjax.Config, trainer) -> float:
    """FLOPs of one gradient step (a critic step plus 1/policy_delay of an actor step), from XLA's
    cost analysis of the unscanned steps (a scan's body would be counted once, not per step)."""
    from hjax.learner import Batch

    env = cfg.make_env()
    width = env.observation_size["observation"][0] + env.goal_size
    b = cfg.batch_size
    batch = Batch(inputs=np.zeros((b, width), np.float32), next_inputs=np.zeros((b, width), np.float32),
                  action=np.zeros((b, env.action_size), np.float32), reward=np.zeros((b,), np.float32))
    td3_state = trainer.learner.init(jax.random.PRNGKey(0), width, env.action_size)

    def flops_of(fn, *args):
        return (jax.jit(fn).lower(*args).compile().cost_analysis() or {}).get("flops", float("nan"))

    critic = flops_of(trainer.learner.critic_step, td3_state, batch, jax.random.PRNGKey(0))
    actor = flops_of(trainer.learner.actor_step, td3_state, batch, jax.random.PRNGKey(0))
    return critic + actor / cfg.policy_delay


def throughput() -> list:
    headers = ["config", "num_envs", "grad steps/epoch", "UTD", "hidden", "batch", "env steps/s",
               "grad steps/s", "update GFLOP/step", "GFLOP/s", "compile_s"]
    rows = []
    base = hjax.Config()
    variants = [
        ("default", base),
        ("UTD=1, 3x256", base.replace(num_envs=4, grad_steps_per_epoch=200)),
        ("UTD=1, 2x64", base.replace(num_envs=4, grad_steps_per_epoch=200, hidden_sizes=(64, 64))),
        ("UTD=1/8, 2x64", base.replace(hidden_sizes=(64, 64))),
        ("UTD=1/64, 2x64, 256 envs", base.replace(num_envs=256, hidden_sizes=(64, 64), num_eval_envs=100)),
    ]
    for name, cfg in variants:
        trainer = hjax.make_trainer(cfg)
        state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
        epochs = 4
        t0 = time.perf_counter()
        run = jax.jit(lambda s: trainer.run_epochs(s, epochs)).lower(state).compile()
        compile_s = time.perf_counter() - t0
        block(run(state))
        run_s, _ = time_call(lambda: run(state), 3)
        flops = update_flops(cfg, trainer)
        env_rate = epochs * cfg.env_steps_per_epoch / run_s
        grad_rate = epochs * cfg.grad_steps_per_epoch / run_s
        rows.append([name, cfg.num_envs, cfg.grad_steps_per_epoch,
                     round(cfg.grad_steps_per_epoch / cfg.env_steps_per_epoch, 4),
                     "x".join(map(str, cfg.hidden_sizes)), cfg.batch_size, round(env_rate), round(grad_rate),
                     round(flops / 1e9, 4), round(flops * grad_rate / 1e9, 1), round(compile_s, 1)])
        print(markdown_table(headers, rows[-1:]).splitlines()[-1], flush=True)
    return [headers, rows]


def fusion() -> list:
    headers = ["part", "seconds per epoch (median of 5)"]
    cfg = hjax.Config()
    trainer = hjax.make_trainer(cfg)
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    state, _ = jax.jit(lambda s: trainer.run_epochs(s, 2))(state)  # a non-empty buffer

    key = jax.random.PRNGKey(1)
    parts = {
        "collect (rollout + normalisers + insert)": jax.jit(trainer.collect).lower(state, key).compile(),
        "updates": jax.jit(trainer.update).lower(state, key).compile(),
        "evaluation rollout": jax.jit(lambda s, k: trainer.rollout(s, k, cfg.num_eval_envs, False)[1]).lower(state, key).compile(),
    }
    n = 5
    fused = jax.jit(lambda s: trainer.run_epochs(s, n)).lower(state).compile()
    rows = []
    total = 0.0
    for name, fn in parts.items():
        block(fn(state, key))
        t, _ = time_call(lambda: fn(state, key), 5)
        rows.append([name, round(t, 4)])
        total += t
    block(fused(state))
    t_fused, _ = time_call(lambda: fused(state), 5)
    t_fused /= n
    rows.append(["sum of parts", round(total, 4)])
    rows.append(["fused epoch (scan of 5, per epoch)", round(t_fused, 4)])
    rows.append(["fused / sum of parts", round(t_fused / total, 3)])
    for r in rows:
        print(f"| {r[0]} | {r[1]} |", flush=True)
    return [headers, rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--skip-learning", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()

    def write(name, table, extra=None):
        headers, rows = table
        path = write_results(f"train_point_mass_{name}", headers, rows, extra=extra)
        print(f"\n## {name}\n" + markdown_table(headers, rows) + f"\nwritten: {path}", flush=True)

    if not args.skip_learning:
        table, curves = learning(args.seeds)
        write("learning", table, {"curves": curves})
    if not args.skip_throughput:
        write("throughput", throughput())
        write("fusion", fusion())


if __name__ == "__main__":
    main()
