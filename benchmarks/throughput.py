"""Throughput of the trainer's parts and of the fused step, against num_envs and batch size.

    python -m benchmarks.throughput [--envs point_mass reach push] [--num-envs 16 64 256]
                                    [--batch-sizes 64 256 1024] [--repeats 3]
    python -m benchmarks.throughput --quick     # smoke test only: tiny sizes

For each env and num_envs (default: point_mass 16/64/256/1024, reach and push 16/64/256), with
one `hjax.Config` otherwise at its defaults (override with --grad-steps, --hidden, --eval-envs),
the pieces of one epoch are compiled and timed alone on the same state, as
`benchmarks.train_point_mass.fusion` does:

- rollout: `trainer.rollout` of num_envs exploratory episodes (policy + env), env steps/s;
- collect: rollout + normaliser updates + buffer insert (what the epoch does before updating);
- update: `trainer.update`, grad_steps_per_epoch TD3 steps on HER batches, gradient steps/s;
- eval: the deterministic evaluation rollout of num_eval_envs episodes;
- fused: `trainer.run_epochs` (a scan of --fused-epochs epochs), per epoch: env and gradient
  steps/s, and its ratio to collect + update + eval (below 1: fusion saves time).

Compile times are reported apart (fused program, and all parts together). Then, at
--batch-num-envs envs, the update alone for each of --batch-sizes. How cost grows is fitted as
the slope of log(seconds) on log(size) (1 = linear, 0 = flat) over each sweep. Every time is the
median of --repeats calls after a warm-up call. Host script; not jittable.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable

import jax
import numpy as np

from hjax import envs
import hjax
from benchmarks.common import block, markdown_table, time_call, write_results
from hjax import buffer as buffer_lib
from hjax import normalizer as norm_lib
from hjax.loop import resolve

DEFAULT_NUM_ENVS = {"point_mass": [16, 64, 256, 1024], "reach": [16, 64, 256], "push": [16, 64, 256]}
QUICK = dict(envs=["point_mass"], num_envs=[4, 16], batch_sizes=[32, 64], batch_num_envs=4, grad_steps=8,
             hidden="32,32", eval_envs=8, buffer_episodes=64, repeats=2, fused_epochs=2)


def compile_timed(fn: Callable, *args) -> tuple[Any, float]:
    """`jax.jit(fn)` lowered and compiled for `args`, and the seconds that took."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def timed(compiled, *args, repeats: int, min_seconds: float = 0.5, max_repeats: int = 100) -> float:
    """Median seconds of `compiled(*args)` after a warm-up call: at least `repeats` calls, more
    for short calls (until about `min_seconds` measured, at most `max_repeats`)."""
    t0 = time.perf_counter()
    block(compiled(*args))  # warm-up
    first = time.perf_counter() - t0
    n = min(max_repeats, max(repeats, int(np.ceil(min_seconds / max(first, 1e-6)))))
    return time_call(lambda: compiled(*args), n)[0]


def make_collect(trainer: hjax.Trainer) -> Callable:
    """Rollout, normalisers and buffer insert, exactly as in the fused epoch (sharded buffer)."""
    cfg = trainer.config
    shards = cfg.data_shards

    def collect(state, key):
        episodes, _ = trainer.rollout(state, key, cfg.num_envs, True)
        obs_norm = norm_lib.update(state.obs_norm, episodes.observation)
        goal_norm = norm_lib.update(norm_lib.update(state.goal_norm, episodes.desired_goal), episodes.achieved_goal)
        buffer = jax.vmap(buffer_lib.add)(state.buffer, jax.tree.map(
            lambda x: x.reshape(shards, cfg.num_envs // shards, *x.shape[1:]), episodes))
        return obs_norm, goal_norm, buffer

    return collect


def slope(sizes, seconds) -> float:
    """Least-squares slope of log(seconds) on log(size)."""
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def measure_env(name: str, base: hjax.Config, num_envs: list[int], args) -> tuple[list, list, dict]:
    """The num_envs sweep, then the batch-size sweep, of one env."""
    rows, raw = [], []
    batch_state = None
    key = jax.random.PRNGKey(1)
    cache: dict[tuple, tuple[Any, float]] = {}  # update and eval programs do not depend on num_envs
    for n in num_envs:
        cfg = resolve(base.replace(env=name, num_envs=n, buffer_episodes=max(base.buffer_episodes, n)), None)
        trainer = hjax.make_trainer(cfg)
        state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
        k = args.fused_epochs
        fused, fused_compile = compile_timed(lambda s: trainer.run_epochs(s, k), state)
        state, _ = fused(state)  # warm-up; fills the buffer with k * n episodes
        block(state)
        rollout, c_roll = compile_timed(lambda s, kk: trainer.rollout(s, kk, n, True)[0], state, key)
        collect, c_coll = compile_timed(make_collect(trainer), state, key)
        prog_key = (cfg.buffer_episodes,)
        if prog_key not in cache:
            upd = compile_timed(trainer.update, state, key)
            ev = compile_timed(lambda s, kk: trainer.rollout(s, kk, cfg.num_eval_envs, False)[1], state, key)
            cache[prog_key] = (upd, ev)
        (update, c_upd), (evaluate, c_eval) = cache[prog_key]
        t_roll = timed(rollout, state, key, repeats=args.repeats)
        t_coll = timed(collect, state, key, repeats=args.repeats)
        t_upd = timed(update, state, key, repeats=args.repeats)
        t_eval = timed(evaluate, state, key, repeats=args.repeats)
        t_fused = timed(fused, state, repeats=args.repeats) / k
        parts = t_coll + t_upd + t_eval
        steps, grads = cfg.env_steps_per_epoch, cfg.grad_steps_per_epoch
        rows.append([name, n, round(steps / t_roll), round(t_coll, 4), round(grads / t_upd, 1), round(t_eval, 4),
                     round(steps / t_fused), round(grads / t_fused, 1), round(t_fused, 4), round(parts, 4),
                     round(t_fused / parts, 3), round(fused_compile, 1), round(c_roll + c_coll + c_upd + c_eval, 1)])
        raw.append({"env": name, "num_envs": n, "rollout_s": t_roll, "collect_s": t_coll, "update_s": t_upd,
                    "eval_s": t_eval, "fused_epoch_s": t_fused, "fused_compile_s": fused_compile,
                    "env_steps_per_epoch": steps, "grad_steps_per_epoch": grads})
        print(markdown_table(HEADERS, rows[-1:]).splitlines()[-1], flush=True)
        if n == args.batch_num_envs or batch_state is None:
            batch_state = state

    batch_rows = []
    for b in args.batch_sizes:
        cfg = resolve(base.replace(env=name, num_envs=args.batch_num_envs, batch_size=b,
                                   buffer_episodes=max(base.buffer_episodes, args.batch_num_envs)), None)
        trainer = hjax.make_trainer(cfg)
        update, c_upd = compile_timed(trainer.update, batch_state, key)
        t_upd = timed(update, batch_state, key, repeats=args.repeats)
        batch_rows.append({"env": name, "batch_size": b, "update_s": t_upd,
                           "grad_steps_per_s": cfg.grad_steps_per_epoch / t_upd, "compile_s": c_upd})
        print(f"| {name} | batch {b} | {cfg.grad_steps_per_epoch / t_upd:.1f} grad steps/s | compile {c_upd:.1f}s |",
              flush=True)
    growth = {"env": name}
    if len(raw) > 1:
        ns = [r["num_envs"] for r in raw]
        growth.update({f"{part} vs num_envs": slope(ns, [r[f"{part}_s"] for r in raw])
                       for part in ("rollout", "collect", "fused_epoch")})
    if len(batch_rows) > 1:
        growth["update vs batch_size"] = slope([r["batch_size"] for r in batch_rows], [r["update_s"] for r in batch_rows])
    return rows, raw, {"batch": batch_rows, "growth": growth}


HEADERS = ["env", "num_envs", "rollout env steps/s", "collect s", "update grad steps/s", "eval s",
           "fused env steps/s", "fused grad steps/s", "fused s/epoch", "sum of parts s", "fused / parts",
           "fused compile s", "parts compile s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["point_mass", "reach", "push"], choices=envs.NAMES)
    parser.add_argument("--num-envs", nargs="+", type=int, default=None,
                        help="for every env (default: point_mass 16 64 256 1024, reach and push 16 64 256)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 256, 1024])
    parser.add_argument("--batch-num-envs", type=int, default=64,
                        help="the batch-size sweep times updates on the num_envs sweep's state at this num_envs "
                             "(or at its first num_envs if absent)")
    parser.add_argument("--grad-steps", type=int, default=hjax.Config.grad_steps_per_epoch)
    parser.add_argument("--hidden", default=",".join(map(str, hjax.Config.hidden_sizes)))
    parser.add_argument("--eval-envs", type=int, default=hjax.Config.num_eval_envs)
    parser.add_argument("--buffer-episodes", type=int, default=hjax.Config.buffer_episodes)
    parser.add_argument("--fused-epochs", type=int, default=3, help="epochs per timed fused call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smoke test with tiny sizes; writes throughput_quick")
    args = parser.parse_args()
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    hidden = tuple(int(h) for h in args.hidden.split(",") if h)
    try:
        base = hjax.Config(grad_steps_per_epoch=args.grad_steps, hidden_sizes=hidden, num_eval_envs=args.eval_envs,
                           buffer_episodes=args.buffer_episodes, num_epochs=args.fused_epochs)
    except ValueError as e:
        parser.error(str(e))

    print(markdown_table(HEADERS, []), flush=True)
    rows, raw, batch, growth = [], [], [], []
    for name in args.envs:
        num_envs = args.num_envs or DEFAULT_NUM_ENVS.get(name, [16, 64, 256])
        r, w, extra = measure_env(name, base, num_envs, args)
        rows += r
        raw += w
        batch += extra["batch"]
        growth.append(extra["growth"])

    batch_table = markdown_table(["env", "batch size", "update s (grad steps/epoch)", "grad steps/s", "compile s"],
                                 [[b["env"], b["batch_size"], round(b["update_s"], 4), round(b["grad_steps_per_s"], 1),
                                   round(b["compile_s"], 1)] for b in batch])
    growth_keys = ["rollout vs num_envs", "collect vs num_envs", "fused_epoch vs num_envs", "update vs batch_size"]
    growth_table = markdown_table(["env"] + [f"slope {k}" for k in growth_keys],
                                  [[g["env"]] + [round(g[k], 2) if k in g else "-" for k in growth_keys] for g in growth])
    notes = (
        f"{'QUICK SMOKE RUN (tiny sizes): not a result. ' if args.quick else ''}"
        f"Config: hjax.Config defaults except grad_steps_per_epoch={args.grad_steps}, hidden_sizes={list(hidden)}, "
        f"num_eval_envs={args.eval_envs}, buffer_episodes={args.buffer_episodes}, batch_size={base.batch_size} in the "
        f"num_envs sweep. An epoch = num_envs episodes of episode_length steps (50 for every default env) + "
        f"{args.grad_steps} gradient steps + {args.eval_envs} evaluation episodes. rollout: exploratory "
        f"episodes only; collect: rollout + normalisers + buffer insert; fused: `run_epochs` scan of "
        f"{args.fused_epochs} epochs, per epoch; fused / parts = fused epoch over collect + update + eval. "
        f"Median of >= {args.repeats} calls (more for short calls, up to ~0.5 s measured) after a warm-up, "
        f"state after {args.fused_epochs} warm-up epochs.\n\n"
        f"## update against batch size ({args.batch_num_envs} envs' state, {args.grad_steps} grad steps per call)\n\n"
        f"{batch_table}\n\n## how cost grows: slope of log(seconds) on log(size) (1 = linear, 0 = flat)\n\n"
        f"{growth_table}")
    path = write_results("throughput_quick" if args.quick else "throughput", HEADERS, rows,
                         extra={"measurements": raw, "batch_sweep": batch, "growth": growth,
                                "config": base.to_dict()}, notes=notes)
    print("\n" + markdown_table(HEADERS, rows) + "\n\n" + notes + f"\n\nwritten: {path}")


if __name__ == "__main__":
    main()
