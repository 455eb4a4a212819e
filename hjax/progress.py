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

import math
import os
import sys
import time
import warnings
from typing import Mapping, TextIO

import numpy as np
from tqdm.auto import tqdm

from hjax.config import Config
from hjax.diagnosis import MILESTONES, Thresholds, earned_counts, env_steps, first_success_epoch, milestone_epoch

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

    Env steps and steps/s count per seed (each seed of a multi-seed run plays them all), as
    `metrics["env_steps"]` and `hjax.summary` do.

    Given each chunk's metrics, it also prints one line per event of `Tracker`:
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
        self.num_seeds = num_seeds
        self.per_epoch = config.env_steps_per_epoch  # per seed, as in metrics and summaries
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
        rate_name = "steps/s" if self.num_seeds is None else "steps/s per seed"
        if self.bar is not None:
            self.bar.update(now - self.done)
            self.bar.set_postfix({"epoch": epoch, "eval success": f"{success:.2f}", rate_name: f"{rate:,.0f}"},
                                 refresh=True)
        else:
            seeds = "" if self.num_seeds is None else f" per seed ({self.num_seeds} seeds)"
            self._print(f"{self.config.env}: epoch {epoch}/{self.config.num_epochs}  env steps {now}/{self.total}"
                        f"{seeds}  eval success {success:.3f}  {rate_name} {rate:,.0f}  "
                        f"elapsed {time.perf_counter() - self.t0:.1f}s")
        self.done = now
        for line in self.tracker.update(metrics) if metrics is not None else ():
            self.say(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---- live milestones --------------------------------------------------------------------------------------

class Tracker:
    """Live milestones between compiled chunks (host side, not jittable).

    `update(chunk_metrics)` takes one chunk's metrics ((epochs,) or (seeds, epochs)) and returns
    the lines to show: the first successful training episode and each milestone (1 per 1,000,
    100, 10 training episodes; see the module docstring), once each, when the first seed reaches
    it; and, once, at the first report at or after `silence_share` of the run's epochs, a line
    if the run has been silent so far: no successful training episode in any seed, or both replay
    success-reward fractions (averaged over the epochs so far) below `silent_reward_fraction` in
    every seed. `history` (a resumed run's metrics so far) is taken in without reporting it."""

    def __init__(self, config: Config, num_seeds: int | None = None, thresholds: Thresholds | None = None,
                 history: Mapping[str, np.ndarray] | None = None):
        self.config = config
        self.num_seeds = num_seeds
        self.thresholds = thresholds or Thresholds()
        self.counts = np.zeros((num_seeds or 1, 0), np.int64)
        self.steps = np.zeros((0,), np.int64)
        self.replay = {name: np.zeros((num_seeds or 1, 0)) for name in _REPLAY_NAMES}
        self.reported: set = set()
        self.silence_checked = False
        self.counted: str | None = None  # "earned" or "all": what the success counts are
        if history:
            self._extend(history)
            self.reported = {key for key, _, _ in self._reached()}
            self.silence_checked = self._epochs >= self._silence_epoch

    @property
    def _epochs(self) -> int:
        return len(self.steps)

    @property
    def _silence_epoch(self) -> int:
        return max(1, math.ceil(self.thresholds.silence_share * self.config.num_epochs - 1e-9))

    def _extend(self, metrics: Mapping[str, np.ndarray]) -> None:
        as_2d = lambda x: np.asarray(x).reshape(self.counts.shape[0], -1)  # noqa: E731
        counts, counted = earned_counts(metrics, self.config.num_envs)  # earned: goals met at reset do not count
        self.counted = counted or self.counted
        epochs = next(iter(metrics.values())).shape[-1]
        counts = np.zeros((self.counts.shape[0], epochs), np.int64) if counts is None else as_2d(counts)
        self.counts = np.concatenate([self.counts, counts], axis=1)
        self.steps = np.concatenate([self.steps, env_steps(metrics, self.config)])
        for name in _REPLAY_NAMES:
            values = as_2d(metrics[name]) if name in metrics else np.full((self.counts.shape[0], epochs), np.nan)
            self.replay[name] = np.concatenate([self.replay[name], values], axis=1)

    def _reached(self):
        """(key, epoch index, seeds that reached it by then) for every milestone reached so far."""
        found = []
        for key in ("first",) + MILESTONES:
            epochs = [first_success_epoch(c) if key == "first" else
                      milestone_epoch(c, self.config.num_envs, key, self.thresholds.milestone_successes)
                      for c in self.counts]
            reached = [e for e in epochs if e is not None]
            if reached:
                e = min(reached)
                found.append((key, e, sum(x == e for x in reached)))
        return found

    def update(self, metrics: Mapping[str, np.ndarray]) -> list[str]:
        """Take one chunk's metrics; return the new lines (often none)."""
        self._extend(metrics)
        lines = []
        seeds = self.counts.shape[0]
        for key, e, n in self._reached():
            if key in self.reported:
                continue
            self.reported.add(key)
            where = f"epoch {e + 1}" + (f"; {n} of {seeds} seeds" if self.num_seeds is not None else "")
            what = ("first successful training episode" if key == "first"
                    else f"successes reached 1 per {key:,} training episodes")
            lines.append(f"{what} at {int(self.steps[e]):,} env steps ({where})")
        if not self.silence_checked and self._epochs >= self._silence_epoch:
            self.silence_checked = True
            line = self._silence_line()
            if line:
                lines.append(line)
        return lines

    def _silence_line(self) -> str | None:
        th = self.thresholds
        no_success = not self.counts.any()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            means = {name: np.nanmean(v, axis=1) for name, v in self.replay.items()}  # per seed
        informative = means.pop(_INFORMATIVE)
        if np.isfinite(informative).all():  # the run reports it: only informative rewards count
            no_reward = bool(np.all(informative < th.informative_fraction))
        else:
            known = all(np.isfinite(v).all() for v in means.values())
            no_reward = known and all(np.all(v < th.silent_reward_fraction) for v in means.values())
        if not (no_success or no_reward):
            return None
        why = []
        if no_success:
            why.append("no earned successful training episode yet" if self.counted == "earned"
                       else "no successful training episode yet")
        if no_reward:
            why.append(f"informative replay success rewards below {th.informative_fraction:g}"
                       if np.isfinite(informative).all() else
                       f"replay success rewards below {th.silent_reward_fraction:g}")
        original, relabeled = (_fmt4(float(np.mean(means[n])) if np.isfinite(means[n]).all() else None)
                               for n in _REPLAY_NAMES[:2])
        return (f"silent for {self._epochs} of {self.config.num_epochs} epochs "
                f"({int(self.steps[-1]):,} env steps): " + " and ".join(why)
                + f"; replay success-reward fraction {original} with original goals, {relabeled} after relabeling")


_INFORMATIVE = "replay/informative_positive_fraction"
_REPLAY_NAMES = ("replay/positive_reward_fraction_original", "replay/positive_reward_fraction", _INFORMATIVE)


def _fmt4(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
