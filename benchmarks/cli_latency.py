"""How long the command line takes to answer without training: `hjax --help`, `hjax train
--help`, and the refusal of a second `hjax train` into a used run directory (issue 27: under
1.5 s for `--help`, under 2 s for the refusal). Each is a fresh process, timed from start to exit.

    python -m benchmarks.cli_latency [--repeats 7]

The used run directory is a copy of tests/fixtures/run_format1 (a finished point_mass run).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HJAX = [sys.executable, "-m", "hjax.cli"]


def timed(argv: list[str], expect: int) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if out.returncode != expect:
        raise SystemExit(f"{' '.join(argv)} exited {out.returncode}, expected {expect}: {out.stderr[-2000:]}")
    return seconds


def main() -> None:
    from benchmarks.common import write_results

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        used = Path(tmp) / "run"
        shutil.copytree(ROOT / "tests" / "fixtures" / "run_format1", used)
        cases = [("hjax --help", HJAX + ["--help"], 0, 1.5),
                 ("hjax train --help", HJAX + ["train", "--help"], 0, 1.5),
                 ("hjax train --preset point_mass --run-dir USED (refused)",
                  HJAX + ["train", "--preset", "point_mass", "--run-dir", str(used)], 2, 2.0)]
        rows = []
        for name, argv, expect, target in cases:
            timed(argv, expect)  # warm the file cache
            times = [timed(argv, expect) for _ in range(args.repeats)]
            median = statistics.median(times)
            rows.append([name, f"{median:.3f}", f"{min(times):.3f}", f"{max(times):.3f}", f"{target:.1f}",
                         "yes" if median < target else "NO"])
            print(rows[-1], flush=True)
    write_results("cli_latency", ["command", "median s", "min s", "max s", "target s", "met"], rows,
                  notes=f"{args.repeats} fresh processes each (`python -m hjax.cli`, the `hjax` script's module), "
                        "after one warm-up run.")


if __name__ == "__main__":
    main()
