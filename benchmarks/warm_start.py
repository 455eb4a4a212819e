"""Compile time of a first and a second process, with and without hjax's traced-program cache.

    python -m benchmarks.warm_start [--envs point_mass push gripper_push] [--name warm_start]

For each env, four fresh processes train the same config for one epoch: two with everything on
(`HJAX_PROGRAM_CACHE=1`: the first traces, lowers, compiles and keeps both the program and the
executable; the second loads them), then two with the program cache off (`HJAX_PROGRAM_CACHE=0`,
XLA's persistent cache still on: the second traces and lowers again, then loads the executable),
each pair over a compile-cache folder that starts empty. The time is `hjax.train`'s
`compile_seconds` (what the CLI and the demo print); the process's CPU seconds up to the end of
compile are recorded too, since other jobs on the machine inflate wall time but not CPU time.
point_mass runs its preset (the demo's config); the other envs a small config (`SMALL`): tracing
and lowering do not depend on batch sizes, and a preset's first epoch would take minutes here.
Host script.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from hjax import envs
from benchmarks.common import markdown_table, write_results

SMALL = dict(num_envs=16, grad_steps_per_epoch=8, batch_size=256, num_eval_envs=16, buffer_episodes=64,
             num_epochs=1, chunk_epochs=1)
CHILD = """
import json, resource, sys, time
import hjax
name, small = sys.argv[1], json.loads(sys.argv[2])
config = hjax.Config.preset(name).replace(num_epochs=1, chunk_epochs=1) if not small else \\
    hjax.Config(env=name, **small)
result = hjax.train(config, progress_bar=False, verbose=False)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"compile_s": result.compile_seconds, "run_s": result.run_seconds,
                  "cpu_s": usage.ru_utime + usage.ru_stime}))
"""


def run_child(env_name: str, cache_home: str, program_cache: bool) -> dict:
    """One fresh process; its printed compile seconds, run seconds and CPU seconds in all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HJAX_", "JAX_COMPILATION_CACHE"))}
    env.update(XDG_CACHE_HOME=cache_home, HJAX_PROGRAM_CACHE="1" if program_cache else "0")
    small = {} if env_name == "point_mass" else SMALL
    done = subprocess.run([sys.executable, "-c", CHILD, env_name, json.dumps(small)], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{env_name}: the child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["point_mass", "push", "gripper_push"], choices=envs.NAMES)
    parser.add_argument("--name", default="warm_start", help="results file name under benchmarks/results")
    parser.add_argument("--note", default="", help="a sentence for the results notes (e.g. concurrent jobs)")
    args = parser.parse_args(argv)
    rows, records = [], []
    for name in args.envs:
        for program_cache in (True, False):
            with tempfile.TemporaryDirectory(prefix="hjax_warm_start_") as tmp:
                first = run_child(name, tmp, program_cache)
                load = os.getloadavg()[0]
                second = run_child(name, tmp, program_cache)
            record = {"env": name, "program_cache": program_cache, "first": first, "second": second,
                      "load_average": load, "config": "preset" if name == "point_mass" else SMALL}
            records.append(record)
            rows.append([name, "on" if program_cache else "off", round(first["compile_s"], 2),
                         round(second["compile_s"], 2), round(first["cpu_s"], 1), round(second["cpu_s"], 1),
                         round(load, 2)])
            print(f"{name} program cache {'on' if program_cache else 'off'}: compile {first['compile_s']:.2f}s, "
                  f"then {second['compile_s']:.2f}s", flush=True)
    headers = ["env", "program cache", "compile s, first process", "compile s, second process",
               "CPU s (whole process), first", "CPU s, second", "load average"]
    notes = ("Each pair of processes shares a compile-cache folder that starts empty; XLA's persistent cache "
             "is on in all of them. 'program cache off' is HJAX_PROGRAM_CACHE=0: the second process traces and "
             "lowers again before XLA's cache serves the executable. CPU seconds cover the whole process "
             "(imports, compile, the one-epoch run). Load average: the 1-minute value before the second process. "
             f"point_mass: its preset; the others: {SMALL}." + (f" {args.note}" if args.note else ""))
    write_results(args.name, headers, rows, extra={"runs": records}, notes=notes)
    print("\n" + markdown_table(headers, rows) + "\n\n" + notes)
    return records


if __name__ == "__main__":
    main()
