"""The README's main job run again and again: the compile time `hjax.demo` prints, first and later.

    python -m benchmarks.demo_compile [--runs 11] [--name demo_compile]

Each run is a fresh `python -m hjax.demo` process, as `bash dev.sh demo` starts it, with the
persistent compile cache in a folder that starts empty: run 1 compiles cold, runs 2.. load the
compiled programs from the cache (#13: a second demo should compile in <= 2 s). The compile time
is the one the demo prints (`hjax.train`'s `compile_seconds`: tracing, lowering, compiling or
loading the init and chunk programs, and running init). The load average when each run starts
is recorded: other jobs on the machine inflate every figure. Host script.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

from benchmarks.common import markdown_table, write_results

PRINTED = re.compile(r"total wall time ([\d.]+)s \(compile ([\d.]+)s, run ([\d.]+)s\)")


def parse_demo_output(text: str) -> tuple[float, float, float]:
    """(wall, compile, run) seconds from the demo's closing line; ValueError when it is missing."""
    match = PRINTED.search(text)
    if match is None:
        raise ValueError("the demo's output has no 'total wall time ... (compile ..., run ...)' line:\n" + text[-2000:])
    wall, compile_s, run_s = (float(g) for g in match.groups())
    return wall, compile_s, run_s


def run_demo(cache_home: str, out_dir: str) -> tuple[float, float, float]:
    env = {**os.environ, "XDG_CACHE_HOME": cache_home}
    env.pop("HJAX_COMPILE_CACHE_DIR", None)
    env.pop("HJAX_COMPILE_CACHE", None)
    done = subprocess.run([sys.executable, "-m", "hjax.demo", "--out", out_dir], env=env,
                          capture_output=True, text=True, check=True)
    return parse_demo_output(done.stdout)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=11, help="demo runs in a row (the first one cold)")
    parser.add_argument("--limit-s", type=float, default=2.0, help="the compile time to count runs against")
    parser.add_argument("--name", default="demo_compile")
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error(f"--runs={args.runs}; allowed: an integer >= 2 (one cold run, then warm ones)")
    rows, records = [], []
    with tempfile.TemporaryDirectory(prefix="hjax_demo_compile_") as tmp:
        for i in range(args.runs):
            load = os.getloadavg()[0]
            wall, compile_s, run_s = run_demo(os.path.join(tmp, "cache"), os.path.join(tmp, "out"))
            kind = "cold" if i == 0 else "warm"
            records.append({"run": i + 1, "cache": kind, "compile_s": compile_s, "run_s": run_s, "wall_s": wall,
                            "load_average": load})
            rows.append([i + 1, kind, compile_s, run_s, wall, round(load, 2)])
            print(f"run {i + 1} ({kind}): compile {compile_s:.1f}s, run {run_s:.1f}s, load {load:.2f}", flush=True)
    warm = [r["compile_s"] for r in records[1:]]
    within = sum(c <= args.limit_s for c in warm)
    summary = {"warm_median_s": statistics.median(warm), "warm_min_s": min(warm), "warm_max_s": max(warm),
               "warm_within_limit": within, "warm_runs": len(warm), "limit_s": args.limit_s}
    notes = (f"Warm runs (the compile cache filled by run 1): compile median {summary['warm_median_s']:.1f} s, "
             f"min {summary['warm_min_s']:.1f} s, max {summary['warm_max_s']:.1f} s; {within} of {len(warm)} "
             f"within {args.limit_s:g} s. The demo prints its figures to 0.1 s. Load average: the 1-minute "
             f"value when each run started.")
    headers = ["run", "compile cache", "compile s (printed)", "run s", "total wall s", "load average"]
    write_results(args.name, headers, rows, extra={"runs": records, "summary": summary}, notes=notes)
    print("\n" + markdown_table(headers, rows) + "\n\n" + notes)
    return summary


if __name__ == "__main__":
    main()
