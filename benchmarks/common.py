"""Shared helpers for benchmark scripts: machine description, timing, and result files.

Not jittable: everything here runs on the host between compiled calls.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    dev = jax.devices()[0]
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "device": f"{dev.platform}:{getattr(dev, 'device_kind', dev.platform)}",
        "num_devices": jax.device_count(),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": _command(),
    }


def _command() -> str:
    """The command as typed from the repository root (`python -m benchmarks.x ...`)."""
    script = Path(sys.argv[0]).resolve()
    args = " ".join(shlex.quote(a) for a in sys.argv[1:])
    if script.parent == RESULTS_DIR.parent:
        return f"python -m benchmarks.{script.stem} {args}".strip()
    return f"python {shlex.quote(sys.argv[0])} {args}".strip()


def block(tree: Any) -> Any:
    return jax.block_until_ready(tree)


def time_call(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, list[float]]:
    """Median wall seconds of `fn()` over `repeats` calls (each blocked until ready)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        block(fn())
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2], times


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3e}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name: str, headers: Sequence[str], rows: Sequence[Sequence[Any]],
                  extra: dict[str, Any] | None = None, notes: str = "") -> Path:
    """Write `results/NAME.md` and `results/NAME.json` with the machine and the command."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    info = machine()
    table = markdown_table(headers, rows)
    md = [f"# {name}", "", table, ""]
    if notes:
        md += [notes, ""]
    md += ["Measured on: " + ", ".join(f"{k}={v}" for k, v in info.items() if k != "command"),
           "", f"Command: `{info['command']}`", ""]
    (RESULTS_DIR / f"{name}.md").write_text("\n".join(md))
    payload = {"machine": info, "headers": list(headers), "rows": [list(r) for r in rows],
               **(extra or {})}
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str))
    return RESULTS_DIR / f"{name}.md"


def wall_at(epochs: float, chunk_ends: list[tuple[int, float]]) -> float:
    """Seconds from a run's (or sweep's) start to the end of the chunk in which `epochs` falls (inf when
    never: `epochs` is inf or past the last chunk)."""
    if not math.isfinite(epochs):
        return math.inf
    ends = np.array([e for e, _ in chunk_ends], np.float64)
    i = int(np.searchsorted(ends, epochs - 1e-9))
    return chunk_ends[i][1] if i < len(chunk_ends) else math.inf
