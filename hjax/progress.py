"""Progress reports of `hjax.train` between compiled chunks. Host side; nothing here is jittable.

Two forms, picked by where the output goes:

- `"bar"`: a tqdm bar over env steps, redrawn in place (notebook-aware), for a terminal or a
  notebook;
- `"lines"`: one plain line per report (epoch, env steps, eval success, steps/s, elapsed) on
  stdout, for output that is not a terminal (CI logs, `nohup`, a batch system's log file), where
  carriage-return redraws would pile up as one unreadable line.

`train(progress_bar=...)` takes `True`/`"auto"` (the default: the bar when stderr is a terminal or
the code runs in a notebook, lines otherwise), `"bar"`, `"lines"`, or `False` (no reports). The
environment variable `HJAX_PROGRESS` (`auto`, `bar`, `lines` or `off`) overrides what
`True`/`"auto"` means, e.g. `HJAX_PROGRESS=lines` in a batch script whose stderr is a terminal.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from tqdm.auto import tqdm

from hjax.config import Config
from hjax.diagnosis import Tracker

MODES = ("auto", "bar", "lines", "off")
ENV_VAR = "HJAX_PROGRESS"


def _in_notebook() -> bool:
    """True under a Jupyter kernel (IPython's ZMQ shell); IPython is never imported here."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def _isatty(stream: TextIO | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # a closed or a minimal stream
        return False


def resolve_mode(progress_bar: bool | str | None) -> str:
    """`"bar"`, `"lines"` or `"off"` for a `train(progress_bar=...)` value (see the module docstring).

    Raises ValueError on anything else, and on an invalid `HJAX_PROGRESS`."""
    if progress_bar is None or progress_bar is False:
        return "off"
    if progress_bar is True:
        progress_bar = "auto"
    if not isinstance(progress_bar, str) or progress_bar not in MODES:
        raise ValueError(f"invalid progress_bar={progress_bar!r}; allowed: True, False, "
                         + ", ".join(repr(m) for m in MODES))
    if progress_bar != "auto":
        return progress_bar
    env = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if env not in MODES:
        raise ValueError(f"invalid {ENV_VAR}={os.environ[ENV_VAR]!r}; allowed: " + ", ".join(MODES))
    if env != "auto":
        return env
    return "bar" if _in_notebook() or _isatty(sys.stderr) else "lines"


class Progress:
    """Reports env steps, eval success and steps/s after each chunk, as a bar or as lines.

    Given each chunk's metrics, it also prints one line per event of `hjax.diagnosis.Tracker`:
    the first successful training episode, each success milestone (1 per 1,000, 100, 10 training
    episodes) as it happens, and once, a run silent for its first quarter. `history`: a resumed
    run's metrics so far (their events are not repeated)."""

    def __init__(self, mode: str, config: Config, num_seeds: int | None, start_epoch: int,
                 compile_seconds: float, stream: TextIO | None = None, history: dict | None = None):
        if mode not in ("bar", "lines"):
            raise ValueError(f"invalid mode={mode!r}; allowed: 'bar', 'lines'")
        self.mode = mode
        self.config = config
        self.tracker = Tracker(config, num_seeds, history=history)
        self.per_epoch = config.env_steps_per_epoch * (num_seeds or 1)
        self.total = config.num_epochs * self.per_epoch
        self.done = self.start = start_epoch * self.per_epoch
        self.t0 = time.perf_counter()
        self.stream = stream
        self.bar = None
        if mode == "bar":
            self.bar = tqdm(total=self.total, initial=self.start, unit=" env steps", unit_scale=True,
                            dynamic_ncols=True, desc=config.env, file=stream,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} env steps "
                                       "[{elapsed}<{remaining}{postfix}]")
            self.bar.write(f"compiled in {compile_seconds:.1f}s", file=stream)
        else:
            self._print(f"{config.env}: compiled in {compile_seconds:.1f}s")

    def _print(self, line: str) -> None:
        print(line, file=self.stream or sys.stdout, flush=True)

    def say(self, line: str) -> None:
        """One line of its own (above the bar, which is redrawn below it)."""
        if self.bar is not None:
            self.bar.write(f"{self.config.env}: {line}", file=self.stream)
        else:
            self._print(f"{self.config.env}: {line}")

    def update(self, epoch: int, last: dict[str, float], run_seconds: float, metrics: dict | None = None) -> None:
        """`last`: the chunk's last-epoch metrics; `run_seconds`: time spent in chunks so far;
        `metrics`: the chunk's metrics (every epoch, any seed axis), for the milestone lines."""
        now = epoch * self.per_epoch
        rate = (now - self.start) / max(run_seconds, 1e-9)
        success = last["eval/success_rate"]
        if self.bar is not None:
            self.bar.update(now - self.done)
            self.bar.set_postfix({"epoch": epoch, "eval success": f"{success:.2f}", "steps/s": f"{rate:,.0f}"},
                                 refresh=True)
        else:
            self._print(f"{self.config.env}: epoch {epoch}/{self.config.num_epochs}  env steps {now}/{self.total}  "
                        f"eval success {success:.3f}  steps/s {rate:,.0f}  "
                        f"elapsed {time.perf_counter() - self.t0:.1f}s")
        self.done = now
        for line in self.tracker.update(metrics) if metrics is not None else ():
            self.say(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
