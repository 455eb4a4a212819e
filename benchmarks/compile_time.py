"""Where the first run's compile time goes: each piece of the fused step compiled alone, cold.

    python -m benchmarks.compile_time [--cases point_mass push push_readme] [--pieces ...]
                                      [--xla-flags "..."] [--name compile_time]

Every (case, piece) is measured in a fresh Python process with the persistent compile cache off
(`HJAX_COMPILE_CACHE=0`), so nothing is shared with an earlier measurement, as on a first run:
`lower` is `jax.jit(piece).trace(...).lower()` (Python tracing + lowering to StableHLO) and
`compile` is `.compile()` (XLA). The pieces (see `hjax.step`):

    init        the initial TrainerState (network init, optimiser states, empty buffer)
    rollout     `collect`: num_envs exploratory episodes, normaliser update, buffer insert
    update      `update`: grad_steps_per_epoch HER samples and learner steps (one scan)
    evaluation  num_eval_envs deterministic episodes
    epoch       one fused epoch: the three above plus the epoch's metrics
    chunk       what `hjax.train` compiles: `run_epochs` (a scan of epochs), vmapped over seeds
                when the case has seeds
    train       `hjax.train` itself for one chunk: its printed `compile_seconds` (chunk + init,
                traced, lowered, compiled, init run) and the run time per epoch

Metrics cost no separate program; they are `epoch` minus the sum of its parts (approximate:
separately compiled programs do not add exactly). Host side, not jittable.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CASES = {
    "point_mass": ({"env": "point_mass"}, None),
    "push": ({"env": "push"}, None),
    # The README's push run: `hjax train --env push --num-seeds 4 --num-envs 64 --hidden-sizes 256 256`.
    "push_readme": ({"env": "push", "num_envs": 64, "hidden_sizes": [256, 256]}, 4),
}
PIECES = ("init", "rollout", "update", "evaluation", "epoch", "chunk", "train")


def measure(case: str, piece: str) -> dict:
    """In this process: trace + lower and compile one piece of `case` (the cache must be off)."""
    import jax

    import hjax
    from hjax import compile_cache
    from hjax.loop import resolve
    from hjax.step import make_trainer, seed_keys

    assert compile_cache.current_dir() is None, "run with HJAX_COMPILE_CACHE=0 (a cold compile)"
    fields, num_seeds = CASES[case]
    config = resolve(hjax.Config(**fields), num_seeds)
    chunk = config.epochs_per_chunk
    if piece == "train":
        one_chunk = config.replace(num_epochs=chunk, chunk_epochs=chunk)
        result = hjax.train(one_chunk, num_seeds=num_seeds, progress_bar=False, verbose=False)
        return {"compile_s": result.compile_seconds, "run_s_per_epoch": result.run_seconds / chunk}
    # CPU seconds of this process beside wall seconds: other jobs sharing the core inflate wall only.
    clock = lambda: (time.perf_counter(), time.process_time())  # noqa: E731
    trainer = make_trainer(config)
    keys = seed_keys(config, num_seeds)
    seeded = (lambda f: jax.vmap(f)) if num_seeds is not None else (lambda f: f)
    init = seeded(trainer.init)
    state = jax.eval_shape(init, keys)
    key = keys  # one key per seed, as the state's
    fn, args = {
        "init": (init, (keys,)),
        "rollout": (seeded(trainer.collect), (state, key)),
        "update": (seeded(trainer.update), (state, key)),
        "evaluation": (seeded(lambda s, k: trainer.rollout(s, k, config.num_eval_envs, explore=False)), (state, key)),
        "epoch": (seeded(trainer.epoch), (state,)),
        "chunk": (seeded(lambda s: trainer.run_epochs(s, chunk)), (state,)),
    }[piece]
    t0 = clock()
    lowered = jax.jit(fn).trace(*args).lower()
    t1 = clock()
    lowered.compile()
    t2 = clock()
    return {"lower_s": t1[0] - t0[0], "lower_cpu_s": t1[1] - t0[1],
            "compile_s": t2[0] - t1[0], "compile_cpu_s": t2[1] - t1[1]}


def run_piece(case: str, piece: str, xla_flags: str) -> dict:
    """`measure` in a fresh process with the cache off (and `xla_flags` appended to XLA_FLAGS)."""
    env = dict(os.environ, HJAX_COMPILE_CACHE="0", JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    if xla_flags:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + xla_flags).strip()
    out = subprocess.run([sys.executable, "-m", "benchmarks.compile_time", "--measure", case, piece],
                         env=env, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"{case}/{piece} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--pieces", nargs="+", default=list(PIECES), choices=PIECES)
    parser.add_argument("--xla-flags", default="", help="appended to XLA_FLAGS in every measured process")
    parser.add_argument("--name", default="compile_time", help="results file name under benchmarks/results")
    parser.add_argument("--note", default="", help="a sentence for the results notes (e.g. concurrent jobs)")
    parser.add_argument("--measure", nargs=2, metavar=("CASE", "PIECE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return

    from benchmarks.common import markdown_table, write_results

    headers = ["case", "piece", "lower s", "lower cpu s", "compile s", "compile cpu s", "run s / epoch"]
    notes = ("Each row is a fresh process with the persistent compile cache off (a first run). "
             "`lower`: Python tracing + lowering to StableHLO; `compile`: XLA; wall seconds, and the "
             "process's CPU seconds (which other jobs on the same core do not inflate). `train` is what "
             "`hjax.train` prints as compile time for one chunk (chunk and init programs, init run), "
             "with the run time per epoch of that chunk. `epoch` minus rollout + update + evaluation is "
             "the metrics' share (approximate).")
    if args.xla_flags:
        notes += f" XLA_FLAGS: `{args.xla_flags}`."
    if args.note:
        notes += " " + args.note
    cases = {c: {"config": CASES[c][0], "num_seeds": CASES[c][1]} for c in args.cases}
    rows = []
    for case in args.cases:
        for piece in args.pieces:
            r = run_piece(case, piece, args.xla_flags)
            rows.append([case, piece, r.get("lower_s", "-"), r.get("lower_cpu_s", "-"), r["compile_s"],
                         r.get("compile_cpu_s", "-"), r.get("run_s_per_epoch", "-")])
            print(markdown_table(headers, rows[-1:]).splitlines()[-1], flush=True)
            # Written after every row, so a long run leaves what it measured so far.
            path = write_results(args.name, headers, rows, extra={"cases": cases, "xla_flags": args.xla_flags},
                                 notes=notes)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
