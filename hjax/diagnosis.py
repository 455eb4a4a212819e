"""Reading a sparse-reward run: a verdict, the numbers behind it, and what to try. Host side.

A flat success curve is not stability: it may be *training silence*, a run that can never get a
single success reward. `diagnose(result_or_run_dir)` reads a run's per-epoch metrics and says
which of six things is happening. Nothing here is jittable; it works on NumPy histories shaped
like `Result.metrics` ((epochs,), or (seeds, epochs) with a leading seed axis).

Verdicts, in order of precedence (the first that applies wins):

Chance. On some tasks goals are met by chance: 7-9% of push and pick-and-place episodes start
with the object already on its goal. Every rule below therefore counts *earned* success:
episodes that end successful and whose goal was not met at reset (`train/earned_success_count`,
`eval/earned_success_rate`); the *chance level* is the share of episodes whose goal is met at
reset (`*/met_at_reset_rate`). A history written before those metrics existed falls back to all
successes, and `evidence.success_counted` says which was counted.

1. `unstable`: a metric is NaN/inf; or, sustained over `UNSTABLE_EPOCHS` consecutive epochs: the
   batch mean of Q (`q/mean`) outside its target bound by more than `Q_MARGIN` of the bound's
   width, or `loss/critic`, `grad_norm/critic` or `grad_norm/actor` above `BLOWUP_FACTOR` times
   its median over the first `ceil(epochs / 2)` epochs (`loss/actor` is -Q plus a penalty,
   covered by the Q check); or the late mean of `action/saturation` is at least
   `SATURATION_LEVEL`. A run that is also solved reads `solved`, its reasons naming the warning.
2. `collapsed`: eval success was at least `COLLAPSE_MIN_BEST` before the last
   `max(COLLAPSE_MIN_EPOCHS, ceil(COLLAPSE_SHARE * epochs))` epochs, and in every one of those
   epochs it is below `(1 - COLLAPSE_DROP)` times that best.
3. `solved`: the late mean of `eval/success_rate` is at least `SOLVED_LEVEL`, and so is the share
   of successes among the episodes whose goal was not met at reset (late earned eval success at
   least `SOLVED_LEVEL * (1 - eval chance level)`): a task whose goals are met by chance is not
   solved by keeping them.
4. `learning`: earned successes are becoming more frequent: for training episodes or for
   evaluation, the late window's earned success rate is above the early window's by a one-sided
   two-proportion z statistic of at least `LEARNING_Z` (the number of episodes in each window
   sets how large a rise counts).
5. `hindsight_only`: informative success rewards reach the learner: relabeled successes whose
   goal the achieved goal had not met before the step (`replay/informative_positive_fraction`,
   averaged over the run, at least `INFORMATIVE_FRACTION`), but earned successes are not
   becoming more frequent. Without that metric (an older history): either replay
   success-reward fraction at least `SILENT_REWARD_FRACTION`.
6. `silent`: no informative success reward reaches the replay: the critic sees a constant -1, or
   success rewards only where nothing moved (an untouched object lying on a relabeled goal), and
   nothing can be learned as configured.

The *early* and *late windows* are the first and the last `ceil(WINDOW_SHARE * epochs)` epochs
(at least one). Training success counts come from `train/success_count` (one count per epoch
of `num_envs` exploratory episodes).

Milestones (of earned successes). "Successes reached 1 per N training episodes" at the end of the first epoch whose
trailing window of `w = max(1, floor(MILESTONE_SUCCESSES * N / num_envs))` epochs (all epochs so
far, when fewer) holds at least `max(MILESTONE_SUCCESSES, ceil(w * num_envs / N))` successful
training episodes. In words: at least `MILESTONE_SUCCESSES` successes among the last
`MILESTONE_SUCCESSES * N` episodes, counted in whole epochs, so one lucky episode is not a rate;
when one epoch alone holds more episodes than that, its own success rate must reach 1/N. The
milestones are therefore ordered: first success <= 1/1,000 <= 1/100 <= 1/10. Env steps are the
run's counter at the end of that epoch (the episodes of an epoch run side by side).

`hjax.diagnose` is `diagnose` here; `diagnose_metrics(config, metrics)` reads a history directly.
Live reports (`hjax.progress.Tracker`) use the same milestones, and say once when the run has been silent
(no training success yet, or both replay fractions below `SILENT_REWARD_FRACTION`) for the first
`SILENCE_SHARE` of its epochs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hjax import runs
from hjax.config import Config

DIAGNOSIS_FILE = "diagnosis.json"
"""What `train(run_dir=...)` writes at the end of every run (`Diagnosis.to_json`)."""
VERDICTS = ("unstable", "collapsed", "solved", "learning", "hindsight_only", "silent")
"""Every verdict, in order of precedence."""
MILESTONES = (1000, 100, 10)
"""Milestone rates: 1 success per N training episodes."""

# ---- thresholds (the defaults of `Thresholds`) ------------------------------------------------
SOLVED_LEVEL = 0.9
"""Late eval success at or above this is `solved` (the level hjax's benchmarks report)."""
WINDOW_SHARE = 0.2
"""Early and late windows: the first and last 20% of the epochs (at least one)."""
LEARNING_Z = 3.0
"""`learning` needs the late earned success rate above the early one by a one-sided
two-proportion z of at least 3 (a rise that size comes by luck about once in 700 runs). With
thousands of episodes per window, 8% -> 10% counts; with 40, it takes about 0% -> 20%."""
UNSTABLE_EPOCHS = 3
"""A departure of Q or a blow-up of a loss is `unstable` only when it lasts this many consecutive
epochs (one batch's extreme Q, or one noisy epoch of loss after the first successes, is not)."""
INFORMATIVE_FRACTION = 1e-4
"""Informative hindsight at or above 1 per 10,000 replayed transitions is a signal to learn from
(`hindsight_only`), below it `silent`. Measured on gripper_push with HER (3 x 256 networks, 256
envs): about 4e-4 in the first tenth of a run that went on to solve it, 2e-2 once solved; an
untouched object gives exactly 0, and so does any run without HER."""
SILENT_REWARD_FRACTION = 0.01
"""Below 1 informative success reward per 100 replayed transitions the run is silent (older
histories: below 1 success reward per 100, with relabeled and with original goals).
point_mass without HER sits near 0.003."""
Q_MARGIN = 0.25
"""Q further outside its target bound than a quarter of the bound's width is `unstable`
(width 50 for the sparse reward with T = 50: Q above 12.5 or below -62.5)."""
BLOWUP_FACTOR = 10.0
"""A loss or gradient norm above 10x its median over the first half of the run, in a later epoch,
is a blow-up (healthy default point_mass runs, with and without HER, stay within 4x)."""
SATURATION_LEVEL = 0.5
"""A late mean `action/saturation` (share of |a| > 0.99) at or above this is `unstable`."""
COLLAPSE_MIN_BEST = 0.3
"""A collapse needs a best eval success of at least this before the collapse window."""
COLLAPSE_DROP = 0.5
"""Collapsed: eval success below (1 - 0.5) times its best ..."""
COLLAPSE_SHARE = 0.2
"""... in every epoch of the last 20% of the run ..."""
COLLAPSE_MIN_EPOCHS = 2
"""... and in at least 2 epochs."""
SILENCE_SHARE = 0.25
"""Live: a run silent for its first 25% of epochs gets one line saying so."""
MILESTONE_SUCCESSES = 3
"""A milestone rate 1/N needs this many successes within the last 3N training episodes."""


def _check_number(name: str, value: Any, ok: bool, allowed: str) -> None:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and ok):
        raise ValueError(f"invalid {name}={value!r}; allowed: {allowed}")


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Every threshold of the verdicts (defaults: the module constants of the same name)."""

    solved_level: float = SOLVED_LEVEL
    window_share: float = WINDOW_SHARE
    learning_z: float = LEARNING_Z
    unstable_epochs: int = UNSTABLE_EPOCHS
    silent_reward_fraction: float = SILENT_REWARD_FRACTION
    informative_fraction: float = INFORMATIVE_FRACTION
    q_margin: float = Q_MARGIN
    blowup_factor: float = BLOWUP_FACTOR
    saturation_level: float = SATURATION_LEVEL
    collapse_min_best: float = COLLAPSE_MIN_BEST
    collapse_drop: float = COLLAPSE_DROP
    collapse_share: float = COLLAPSE_SHARE
    collapse_min_epochs: int = COLLAPSE_MIN_EPOCHS
    silence_share: float = SILENCE_SHARE
    milestone_successes: int = MILESTONE_SUCCESSES

    def __post_init__(self) -> None:
        for name in ("solved_level", "silent_reward_fraction", "informative_fraction", "saturation_level",
                     "collapse_min_best"):
            _check_number(name, getattr(self, name), 0 < getattr(self, name) <= 1, "a number in (0, 1]")
        for name in ("window_share", "collapse_drop", "collapse_share", "silence_share"):
            _check_number(name, getattr(self, name), 0 < getattr(self, name) < 1, "a number in (0, 1)")
        _check_number("blowup_factor", self.blowup_factor, self.blowup_factor >= 1, "a number >= 1")
        _check_number("learning_z", self.learning_z, self.learning_z > 0, "a number > 0")
        _check_number("q_margin", self.q_margin, self.q_margin >= 0, "a number >= 0")
        for name in ("collapse_min_epochs", "milestone_successes", "unstable_epochs"):
            value = getattr(self, name)
            _check_number(name, value, isinstance(value, int) and value >= 1, "an integer >= 1")


# ---- the pieces, shared by `diagnose` and `hjax.progress.Tracker`--------------------------------------------

def window(num_epochs: int, share: float) -> int:
    """Length of the early/late window: ceil(share * num_epochs), at least 1, at most num_epochs."""
    return min(num_epochs, max(1, math.ceil(share * num_epochs - 1e-9)))


def milestone_epoch(counts: np.ndarray, num_envs: int, per: int,
                    successes: int = MILESTONE_SUCCESSES) -> int | None:
    """Index of the first epoch where successes reached 1 per `per` training episodes (see the
    module docstring), or None. `counts`: successful training episodes per epoch, shape (epochs,)."""
    counts = np.asarray(counts, np.int64)
    w = max(1, (successes * per) // num_envs)
    need = max(successes, math.ceil(w * num_envs / per))
    total = np.concatenate([[0], np.cumsum(counts)])
    ends = np.arange(1, len(counts) + 1)
    in_window = total[ends] - total[np.maximum(0, ends - w)]
    hits = np.flatnonzero(in_window >= need)
    return int(hits[0]) if hits.size else None


def first_success_epoch(counts: np.ndarray) -> int | None:
    """Index of the first epoch with a successful training episode, or None."""
    hits = np.flatnonzero(np.asarray(counts) > 0)
    return int(hits[0]) if hits.size else None


def success_counts(metrics: Mapping[str, np.ndarray], num_envs: int) -> np.ndarray | None:
    """Successful training episodes per epoch (any leading seed axis), as int64, or None if the
    history has neither `train/success_count` nor `train/success_rate`."""
    if "train/success_count" in metrics:
        return np.rint(np.asarray(metrics["train/success_count"], np.float64)).astype(np.int64)
    if "train/success_rate" in metrics:
        return np.rint(np.asarray(metrics["train/success_rate"], np.float64) * num_envs).astype(np.int64)
    return None


def earned_counts(metrics: Mapping[str, np.ndarray], num_envs: int) -> tuple[np.ndarray | None, str | None]:
    """Earned successful training episodes per epoch (goal not met at reset) and "earned"; for a
    history without `train/earned_success_count` for every epoch, all successes and "all";
    (None, None) without either."""
    earned = np.asarray(metrics.get("train/earned_success_count", np.nan), np.float64)
    if "train/earned_success_count" in metrics and np.isfinite(earned).all():
        return np.rint(earned).astype(np.int64), "earned"
    # Not reported, or not for every epoch (a run resumed from a checkpoint written before the
    # metric existed has NaN there): count all successes, for every epoch alike.
    counts = success_counts(metrics, num_envs)
    return counts, (None if counts is None else "all")


def z_rise(late_successes: float, late_n: float, early_successes: float, early_n: float) -> float:
    """One-sided two-proportion z statistic of the late rate over the early one (pooled
    variance); 0 when neither window holds a success, or both hold only successes."""
    if late_n <= 0 or early_n <= 0:
        return 0.0
    pooled = (late_successes + early_successes) / (late_n + early_n)
    if pooled <= 0.0 or pooled >= 1.0:
        return 0.0
    se = math.sqrt(pooled * (1 - pooled) * (1 / late_n + 1 / early_n))
    return (late_successes / late_n - early_successes / early_n) / se


def sustained(mask: np.ndarray, epochs: int) -> int | None:
    """Index of the epoch completing the first run of `epochs` consecutive True values (fewer
    epochs in all: a run over all of them), or None."""
    mask = np.asarray(mask, bool)
    need = min(epochs, len(mask))
    run = 0
    for i, flag in enumerate(mask):
        run = run + 1 if flag else 0
        if need and run >= need:
            return i
    return None


def env_steps(metrics: Mapping[str, np.ndarray], config: Config) -> np.ndarray:
    """The env-step counter at the end of each epoch ((epochs,) of the first seed)."""
    if "env_steps" in metrics:
        steps = np.asarray(metrics["env_steps"], np.int64)
        return steps if steps.ndim == 1 else steps[0]
    epochs = next(iter(metrics.values())).shape[-1]
    return np.arange(1, epochs + 1, dtype=np.int64) * config.env_steps_per_epoch


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, np.float64)
    return values[np.isfinite(values)]


def _mean(values) -> float | None:
    values = _finite(values)
    return float(values.mean()) if values.size else None


# ---- the verdict -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Evidence:
    """The numbers behind a verdict. None: not reached, or not computable (see `unavailable`).

    Rates are fractions of episodes; windows and milestones are defined in the module docstring."""

    epochs: int
    env_steps: int
    """The env-step counter at the end of the run."""
    train_episodes: int
    first_success_env_steps: int | None
    """Env steps at the end of the epoch holding the first successful training episode."""
    per_1000_env_steps: int | None
    """Env steps when successes reached 1 per 1,000 training episodes."""
    per_100_env_steps: int | None
    per_10_env_steps: int | None
    train_success_early: float | None
    train_success_late: float | None
    eval_success_early: float | None
    eval_success_late: float | None
    eval_success_best: float | None
    solved_env_steps: int | None
    """Env steps at the end of the first epoch with eval success >= the solved level."""
    replay_reward_original: float | None
    """Mean over the run of replay/positive_reward_fraction_original."""
    replay_reward_relabeled: float | None
    """Mean over the run of replay/positive_reward_fraction (after relabeling)."""
    distance_metric: str | None
    distance_start: float | None
    """Mean distance to the goal over the early window ..."""
    distance_end: float | None
    """... and over the late window."""
    distance_slope: float | None
    """Least-squares slope of the distance against env steps, per 1,000 env steps."""
    q_min: float | None
    q_max: float | None
    q_bound_low: float | None
    """The Q target bound (None: unbounded, clip_target=False)."""
    q_bound_high: float | None
    q_margin: float | None
    """How far outside the bound Q may go before the run is `unstable`."""
    action_saturation: float | None
    """Late mean of action/saturation."""
    chance_level: float | None = None
    """Mean over the run of train/met_at_reset_rate: the share of training episodes whose goal is
    met at reset, the success a policy gets by doing nothing."""
    eval_chance_level: float | None = None
    """The same for the evaluation episodes (eval/met_at_reset_rate)."""
    earned_success_early: float | None = None
    """Earned training success rate (goal not met at reset) in the early window ..."""
    earned_success_late: float | None = None
    """... and in the late window."""
    eval_earned_early: float | None = None
    eval_earned_late: float | None = None
    learning_z: float | None = None
    """z of the late earned training success rate over the early one (see LEARNING_Z) ..."""
    eval_learning_z: float | None = None
    """... and of the eval rate."""
    replay_informative: float | None = None
    """Mean over the run of replay/informative_positive_fraction."""
    success_counted: str | None = None
    """"earned" (milestones and rules count earned successes) or "all" (an older history)."""
    unavailable: tuple[str, ...] = ()
    """Evidence that could not be computed, and why (a run written before a metric existed)."""

    @property
    def milestones(self) -> dict[int, int | None]:
        """{1000: env steps, 100: ..., 10: ...} (None: not reached)."""
        return {1000: self.per_1000_env_steps, 100: self.per_100_env_steps, 10: self.per_10_env_steps}


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """What a run is doing (`verdict`), why (`reasons`, `evidence`) and what to try (`advice`).

    A seeded run has one Diagnosis per seed in `per_seed`; its own verdict is the most common one
    (ties go to the verdict earlier in `VERDICTS`) and its evidence holds each number's median over
    the seeds (milestones: the median seed's, a seed that never reached one counting as last)."""

    verdict: str
    reasons: tuple[str, ...]
    evidence: Evidence
    advice: tuple[str, ...]
    run: str = ""
    """One line naming the run (env, HER strategy, length)."""
    per_seed: tuple["Diagnosis", ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        """Seeds per verdict (a single run counts as one seed)."""
        verdicts = [d.verdict for d in self.per_seed] or [self.verdict]
        return {v: verdicts.count(v) for v in VERDICTS if v in verdicts}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (what `diagnosis.json` holds)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> "Diagnosis":
        evidence = dict(payload["evidence"])
        evidence["unavailable"] = tuple(evidence.get("unavailable", ()))
        return cls(verdict=payload["verdict"], reasons=tuple(payload["reasons"]),
                   evidence=Evidence(**evidence), advice=tuple(payload["advice"]), run=payload.get("run", ""),
                   per_seed=tuple(cls.from_dict(d) for d in payload.get("per_seed", ())))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def write(self, run_dir: str | Path) -> Path:
        """Write `run_dir/diagnosis.json`; returns its path."""
        path = Path(run_dir) / DIAGNOSIS_FILE
        path.write_text(self.to_json())
        return path

    @classmethod
    def read(cls, run_dir: str | Path) -> "Diagnosis":
        """The `diagnosis.json` a run wrote at its end (`diagnose(run_dir)` recomputes it instead)."""
        return cls.from_dict(json.loads((Path(run_dir) / DIAGNOSIS_FILE).read_text()))

    def __str__(self) -> str:
        return report(self)


def diagnose(result_or_run_dir, thresholds: Thresholds | None = None) -> Diagnosis:
    """The `Diagnosis` of a finished (or stopped) run: a `hjax.Result` or a run directory.

    A run directory is read from its config.json and metrics.csv, so runs written before this
    function existed are read too; evidence whose metric is missing is listed in
    `evidence.unavailable`. Raises `runs.CheckpointError` (a ValueError) naming the directory when
    it is not a readable run directory. Host side."""
    if isinstance(result_or_run_dir, (str, os.PathLike)):
        run = runs.read_run(result_or_run_dir)
        return diagnose_metrics(run.config, run.metrics, thresholds=thresholds)
    for name in ("config", "metrics"):
        if not hasattr(result_or_run_dir, name):
            raise TypeError(f"diagnose(result_or_run_dir): expected a hjax.Result or a run directory path, "
                            f"got {type(result_or_run_dir).__name__}")
    return diagnose_metrics(result_or_run_dir.config, result_or_run_dir.metrics,
                            q_bounds=getattr(result_or_run_dir, "q_bounds", None), thresholds=thresholds)


def diagnose_metrics(config: Config, metrics: Mapping[str, np.ndarray],
                     q_bounds: tuple[float, float] | None = None,
                     thresholds: Thresholds | None = None) -> Diagnosis:
    """The `Diagnosis` of a metric history (name -> (epochs,) or (seeds, epochs)) of `config`.

    `q_bounds` defaults to the trainer's Q target bound for `config`. Host side."""
    if not isinstance(config, Config):
        raise TypeError(f"diagnose_metrics(config): expected hjax.Config, got {type(config).__name__}")
    th = thresholds or Thresholds()
    if not isinstance(th, Thresholds):
        raise TypeError(f"thresholds: expected hjax.diagnosis.Thresholds, got {type(th).__name__}")
    metrics = {k: np.asarray(v) for k, v in metrics.items()}
    if not metrics:
        raise ValueError("invalid metrics={}; allowed: a mapping of metric names to per-epoch arrays")
    shapes = {v.shape for v in metrics.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) not in (1, 2) or next(iter(shapes))[-1] < 1:
        raise ValueError(f"invalid metrics shapes {sorted(shapes)}; allowed: one shape, (epochs,) or "
                         "(seeds, epochs), with at least one epoch")
    bounds = config.q_target_bounds() if q_bounds is None else tuple(q_bounds)
    shape = next(iter(shapes))
    if len(shape) == 1:
        return _diagnose_one(config, metrics, bounds, th)
    seeds = tuple(_diagnose_one(config, {k: v[i] for k, v in metrics.items()}, bounds, th)
                  for i in range(shape[0]))
    verdicts = [d.verdict for d in seeds]
    verdict = max(VERDICTS, key=lambda v: (verdicts.count(v), -VERDICTS.index(v)))
    evidence = _median_evidence([d.evidence for d in seeds])
    counts = ", ".join(f"{verdicts.count(v)} {v}" for v in VERDICTS if v in verdicts)
    reasons = (f"{verdicts.count(verdict)} of {len(seeds)} seeds are {verdict} ({counts})",)
    majority = next(d for d in seeds if d.verdict == verdict)
    return Diagnosis(verdict=verdict, reasons=reasons, evidence=evidence, advice=majority.advice,
                     run=_describe(config, evidence, len(seeds)), per_seed=seeds)


def _describe(config: Config, evidence: Evidence, num_seeds: int | None) -> str:
    seeds = f", {num_seeds} seeds" if num_seeds else ""
    per = " per seed" if num_seeds else ""
    return (f"{config.env}, her_strategy={config.her_strategy}{seeds}: {evidence.epochs} epochs, "
            f"{evidence.env_steps:,} env steps, {evidence.train_episodes:,} training episodes{per}")


def _diagnose_one(config: Config, m: Mapping[str, np.ndarray], bounds, th: Thresholds) -> Diagnosis:
    num_epochs = next(iter(m.values())).shape[-1]
    steps = env_steps(m, config)
    w = window(num_epochs, th.window_share)
    early, late = slice(0, w), slice(num_epochs - w, None)
    unavailable = []
    at = lambda e: None if e is None else int(steps[e])  # noqa: E731

    counts = success_counts(m, config.num_envs)
    earned, counted = earned_counts(m, config.num_envs)
    n_early, n_late = w * config.num_envs, w * config.num_envs
    earned_early = earned_late = z_train = None
    if counts is None:
        unavailable.append("training successes and milestones (no train/success_count or train/success_rate)")
        first = None
        milestone = {per: None for per in MILESTONES}
        train_early = train_late = None
    else:
        first = first_success_epoch(earned)
        milestone = {per: milestone_epoch(earned, config.num_envs, per, th.milestone_successes) for per in MILESTONES}
        train_early = float(counts[early].sum()) / n_early
        train_late = float(counts[late].sum()) / n_late
        earned_early, earned_late = float(earned[early].sum()) / n_early, float(earned[late].sum()) / n_late
        z_train = z_rise(float(earned[late].sum()), n_late, float(earned[early].sum()), n_early)
        if counted == "all":
            unavailable.append("earned success (no train/earned_success_count): all successes counted, "
                               "goals met at reset included")
    chance = _mean(m["train/met_at_reset_rate"]) if "train/met_at_reset_rate" in m else None
    eval_chance = _mean(m["eval/met_at_reset_rate"]) if "eval/met_at_reset_rate" in m else None
    if chance is None:
        unavailable.append("chance level (no train/met_at_reset_rate)")

    eval_success = m.get("eval/success_rate")
    if eval_success is None:
        unavailable.append("eval success (no eval/success_rate)")
        eval_early = eval_late = eval_best = None
        solved_at = None
    else:
        eval_early, eval_late = _mean(eval_success[early]), _mean(eval_success[late])
        eval_best = float(np.nanmax(eval_success)) if np.isfinite(eval_success).any() else None
        hits = np.flatnonzero(eval_success >= th.solved_level)
        solved_at = int(hits[0]) if hits.size else None
    eval_earned = m.get("eval/earned_success_rate", eval_success)
    eval_earned_early = eval_earned_late = z_eval = None
    if eval_earned is not None:
        eval_earned_early, eval_earned_late = _mean(eval_earned[early]), _mean(eval_earned[late])
        n_eval = w * config.num_eval_envs
        if eval_earned_early is not None and eval_earned_late is not None:
            z_eval = z_rise(eval_earned_late * n_eval, n_eval, eval_earned_early * n_eval, n_eval)

    replay = {}
    for key, name in (("original", "replay/positive_reward_fraction_original"),
                      ("relabeled", "replay/positive_reward_fraction")):
        replay[key] = _mean(m[name]) if name in m else None
        if name not in m:
            unavailable.append(f"replay success-reward fraction, {key} goals (no {name})")
    informative = _mean(m["replay/informative_positive_fraction"]) if "replay/informative_positive_fraction" in m else None
    if informative is None:
        unavailable.append("informative hindsight (no replay/informative_positive_fraction)")

    distance_name = next((n for n in ("eval/final_distance", "train/final_distance") if n in m), None)
    d_start = d_end = slope = None
    if distance_name is None:
        unavailable.append("distance trend (no eval/final_distance or train/final_distance)")
    else:
        d = np.asarray(m[distance_name], np.float64)
        d_start, d_end = _mean(d[early]), _mean(d[late])
        ok = np.isfinite(d)
        if ok.sum() >= 2:
            slope = float(np.polyfit(steps[ok] / 1000.0, d[ok], 1)[0])

    lo, hi = bounds
    bounded = math.isfinite(lo) and math.isfinite(hi)
    margin = th.q_margin * (hi - lo) if bounded else None
    q_min = float(np.nanmin(m["q/min"])) if "q/min" in m and np.isfinite(m["q/min"]).any() else None
    q_max = float(np.nanmax(m["q/max"])) if "q/max" in m and np.isfinite(m["q/max"]).any() else None
    if "q/min" not in m or "q/max" not in m:
        unavailable.append("Q against its bound (no q/min or q/max)")
    saturation = _mean(m["action/saturation"][late]) if "action/saturation" in m else None
    if "action/saturation" not in m:
        unavailable.append("action saturation (no action/saturation)")

    evidence = Evidence(
        epochs=num_epochs, env_steps=int(steps[-1]), train_episodes=num_epochs * config.num_envs,
        first_success_env_steps=at(first), per_1000_env_steps=at(milestone[1000]),
        per_100_env_steps=at(milestone[100]), per_10_env_steps=at(milestone[10]),
        train_success_early=train_early, train_success_late=train_late,
        eval_success_early=eval_early, eval_success_late=eval_late, eval_success_best=eval_best,
        solved_env_steps=at(solved_at), replay_reward_original=replay["original"],
        replay_reward_relabeled=replay["relabeled"], distance_metric=distance_name,
        distance_start=d_start, distance_end=d_end, distance_slope=slope, q_min=q_min, q_max=q_max,
        q_bound_low=lo if bounded else None, q_bound_high=hi if bounded else None, q_margin=margin,
        action_saturation=saturation, chance_level=chance, eval_chance_level=eval_chance,
        earned_success_early=earned_early, earned_success_late=earned_late, eval_earned_early=eval_earned_early,
        eval_earned_late=eval_earned_late, learning_z=z_train, eval_learning_z=z_eval,
        replay_informative=informative, success_counted=counted, unavailable=tuple(unavailable))

    verdict, reasons = _verdict(config, m, evidence, steps, th)
    return Diagnosis(verdict=verdict, reasons=tuple(reasons), evidence=evidence,
                     advice=tuple(_advice(verdict, reasons, config, evidence, th)),
                     run=_describe(config, evidence, None))


def _non_finite(m: Mapping[str, np.ndarray]) -> list[str]:
    reasons = []
    for name, values in m.items():
        if name in ("env_steps", "grad_steps"):
            continue
        bad = np.flatnonzero(~np.isfinite(np.asarray(values, np.float64)))
        if bad.size:
            reasons.append(f"non-finite {name} = {values[bad[0]]} at epoch {bad[0] + 1}")
    return reasons


def _warnings(m: Mapping[str, np.ndarray], ev: Evidence, steps: np.ndarray, th: Thresholds) -> list[str]:
    """Sustained departures (see the module docstring, verdict 1)."""
    reasons = []
    k = th.unstable_epochs
    if ev.q_margin is not None and "q/mean" in m:
        q = np.asarray(m["q/mean"], np.float64)
        for below, side, edge in ((True, "below the bound's low end", ev.q_bound_low),
                                  (False, "above the bound's high end", ev.q_bound_high)):
            outside = q < edge - ev.q_margin if below else q > edge + ev.q_margin
            e = sustained(outside, k)
            if e is not None:
                reasons.append(f"mean Q {side} {edge:.3g} by more than the margin {ev.q_margin:.3g} for "
                               f"{min(k, len(q))} epochs in a row (epoch {e + 1}: {q[e]:.3g})")
    num_epochs = len(steps)
    early = math.ceil(num_epochs / 2)
    for name in ("loss/critic", "grad_norm/critic", "grad_norm/actor"):
        if name not in m or num_epochs <= early:
            continue
        values = np.asarray(m[name], np.float64)
        reference = _finite(values[:early])
        if not reference.size:
            continue
        reference = float(np.median(reference))
        e = sustained(values[early:] > th.blowup_factor * reference, k)
        if e is not None:
            e += early
            reasons.append(f"{name} blew up: over {th.blowup_factor:g}x its median over the first half "
                           f"({reference:.3g}) for {min(k, num_epochs - early)} epochs in a row (epoch {e + 1}: "
                           f"{values[e]:.3g})")
    if ev.action_saturation is not None and ev.action_saturation >= th.saturation_level:
        reasons.append(f"actions saturate: {ev.action_saturation:.2f} of late actions have |a| > 0.99 "
                       f"(level {th.saturation_level:g})")
    return reasons


def _collapse_reason(m: Mapping[str, np.ndarray], th: Thresholds) -> str | None:
    if "eval/success_rate" not in m:
        return None
    values = np.asarray(m["eval/success_rate"], np.float64)
    n = len(values)
    persist = max(th.collapse_min_epochs, math.ceil(th.collapse_share * n - 1e-9))
    if n <= persist:
        return None
    best_epoch = int(np.argmax(values[:n - persist]))
    best = values[best_epoch]
    ceiling = (1 - th.collapse_drop) * best
    if best >= th.collapse_min_best and np.all(values[n - persist:] < ceiling):
        return (f"eval success fell from its best {best:.2f} (epoch {best_epoch + 1}) to below {ceiling:.2f} "
                f"in each of the last {persist} epochs (final {values[-1]:.2f})")
    return None


def _chance(ev: Evidence) -> str:
    return "" if ev.chance_level is None else f"; chance level {ev.chance_level:.3f} (goals met at reset)"


def _solved(ev: Evidence, th: Thresholds) -> str | None:
    if ev.eval_success_late is None or ev.eval_success_late < th.solved_level:
        return None
    if ev.eval_chance_level is not None and ev.eval_earned_late is not None:
        if ev.eval_earned_late < th.solved_level * (1.0 - ev.eval_chance_level) - 1e-12:
            return None  # not solved where it had to be earned: goals met at reset carried it
        return (f"late eval success {ev.eval_success_late:.3f} >= {th.solved_level:g}, "
                f"{ev.eval_earned_late:.3f} of it earned (chance level {ev.eval_chance_level:.3f})")
    return f"late eval success {ev.eval_success_late:.3f} >= {th.solved_level:g}"


def _verdict(config: Config, m, ev: Evidence, steps, th: Thresholds) -> tuple[str, list[str]]:
    non_finite = _non_finite(m)
    if non_finite:
        return "unstable", non_finite
    warnings_ = _warnings(m, ev, steps, th)
    solved = _solved(ev, th)
    if warnings_ and solved is None:
        return "unstable", warnings_
    collapse = _collapse_reason(m, th)
    if collapse and solved is None:
        return "collapsed", [collapse]
    if solved is not None:
        return "solved", [solved] + [f"warning: {w}" for w in warnings_]
    earned = "earned " if ev.success_counted == "earned" else ""
    rising = []
    if ev.learning_z is not None and ev.learning_z >= th.learning_z and ev.earned_success_late > 0:
        rising.append(f"{earned}training success rose from {ev.earned_success_early:.3f} (early) to "
                      f"{ev.earned_success_late:.3f} (late), z = {ev.learning_z:.1f} >= {th.learning_z:g}"
                      + _chance(ev))
    if ev.eval_learning_z is not None and ev.eval_learning_z >= th.learning_z and ev.eval_earned_late > 0:
        rising.append(f"{earned}eval success rose from {ev.eval_earned_early:.3f} (early) to "
                      f"{ev.eval_earned_late:.3f} (late), z = {ev.eval_learning_z:.1f} >= {th.learning_z:g}")
    if rising:
        return "learning", rising
    not_rising = (f"{earned}successes are not becoming more frequent (late training "
                  f"{_fmt(ev.earned_success_late, '.3f')}, eval {_fmt(ev.eval_earned_late, '.3f')}"
                  f"{_chance(ev)})")
    if ev.replay_informative is not None:
        if ev.replay_informative >= th.informative_fraction:
            return "hindsight_only", [f"informative success rewards reach the replay ({ev.replay_informative:.2g} "
                                      f"of sampled transitions, at least {th.informative_fraction:g}; "
                                      f"{_fractions(ev)})", not_rising]
        reached = [f for f in (ev.replay_reward_original, ev.replay_reward_relabeled) if f is not None]
        what = ("success rewards reach the replay only where the achieved goal did not move"
                if reached and max(reached) >= th.silent_reward_fraction else
                "almost no success reward reaches the replay")
        return "silent", [f"{what} (informative {ev.replay_informative:.2g}, below "
                          f"{th.informative_fraction:g}; {_fractions(ev)})", not_rising]
    fractions = [f for f in (ev.replay_reward_original, ev.replay_reward_relabeled) if f is not None]
    if fractions and max(fractions) >= th.silent_reward_fraction:
        return "hindsight_only", [f"success rewards reach the replay ({_fractions(ev)}, at least "
                                  f"{th.silent_reward_fraction:g})", not_rising]
    if not fractions:  # a run written before the replay metrics: decide from the config
        if config.relabel_probability > 0 and config.her_strategy != "random":
            return "hindsight_only", ["replay fractions unavailable; HER relabels with achieved goals", not_rising]
        return "silent", ["replay fractions unavailable; no relabeling", not_rising]
    return "silent", [f"almost no success reward reaches the replay ({_fractions(ev)}, both below "
                      f"{th.silent_reward_fraction:g})", not_rising]


def _fmt(value, spec: str, none: str = "n/a") -> str:
    return none if value is None else format(value, spec)


def _steps(value: int | None, none: str = "not reached", unit: str = " env steps") -> str:
    return none if value is None else f"{value:,}{unit}"


def _fractions(ev: Evidence) -> str:
    return (f"original goals {_fmt(ev.replay_reward_original, '.4f')}, "
            f"after relabeling {_fmt(ev.replay_reward_relabeled, '.4f')}")


def _explore_fields(config: Config) -> str:
    """The exploration knobs `config.algorithm` accepts (SAC explores by sampling its policy)."""
    if config.algorithm == "sac":
        return "random_action_prob, or a higher target_entropy / init_alpha"
    return "exploration_noise or random_action_prob"


_RUN_FIELDS = ("num_epochs", "seed", "chunk_epochs", "data_shards", "num_devices", "seed_devices")


def _short_preset_run(config: Config, ev: Evidence) -> str | None:
    """Advice for a run of `config.env`'s preset (every learning field as measured) stopped
    before the epoch at which that preset first reached 90%; None otherwise."""
    from hjax.presets import EPOCHS_TO_90, PRESETS

    if config.env not in PRESETS or EPOCHS_TO_90.get(config.env) is None:
        return None
    preset = Config.preset(config.env).to_dict()
    mine = config.to_dict()
    if any(mine[k] != v for k, v in preset.items() if k not in _RUN_FIELDS):
        return None
    needed = EPOCHS_TO_90[config.env]
    if ev.epochs >= needed:
        return None
    return (f"This run stopped at epoch {ev.epochs}, and the {config.env} preset first reached 90% at epoch "
            f"{needed} when measured (Config.preset_note({config.env!r})): train longer before changing "
            f"exploration (`hjax train --resume RUN_DIR --num-epochs {max(needed, config.num_epochs)}`; "
            "chunk_epochs must divide both lengths).")


def _advice(verdict: str, reasons: list[str], config: Config, ev: Evidence, th: Thresholds) -> list[str]:
    advice = []
    short = _short_preset_run(config, ev) if verdict in ("silent", "hindsight_only", "learning") else None
    if short is not None:
        return [short]
    falling = (ev.distance_start is not None and ev.distance_end is not None
               and ev.distance_end < 0.8 * ev.distance_start)
    if verdict == "silent":
        if config.her_strategy == "none":
            if (ev.replay_reward_original or 0.0) >= th.silent_reward_fraction and ev.chance_level:
                advice.append("Turn HER on (her_strategy='future'): with the original goals alone the only "
                              f"success rewards are goals met at reset (chance level {ev.chance_level:.3f}), "
                              "where nothing moved: nothing to learn from.")
            else:
                advice.append("Turn HER on (her_strategy='future'): with the original goals alone almost no "
                              "replayed transition carries a success reward.")
        elif config.her_strategy == "random":
            advice.append("Use her_strategy='future' (or 'final', 'episode'): goals achieved in other episodes "
                          "rarely lie next to this episode's states.")
        elif config.replay_k == 0:
            advice.append("Raise replay_k (HER paper: 4): with replay_k=0 no goal is relabeled.")
        else:
            advice.append("Even relabeled goals almost never count as reached: check the env's compute_reward "
                          "and is_success, or use a larger distance_threshold (env_kwargs).")
        advice.append("A larger success threshold (env_kwargs distance_threshold) makes the first success "
                      f"likelier; more exploration ({_explore_fields(config)}) helps once a success "
                      "reward reaches the replay.")
    elif verdict == "hindsight_only":
        if falling:
            advice.append(f"The distance to the goal falls ({ev.distance_start:.3g} -> {ev.distance_end:.3g}): "
                          "it is learning before its first real successes; train longer (num_epochs, or "
                          "`hjax train --resume RUN_DIR --num-epochs N`).")
        else:
            advice.append(f"The distance to the goal does not fall: explore more (raise {_explore_fields(config)}), "
                          "or start with a larger distance_threshold as a curriculum.")
        advice.append("More relabeling towards nearby goals (her_strategy='future', a larger replay_k) raises "
                      "the share of useful success rewards.")
    elif verdict == "learning":
        paces = ", ".join(f"1/{per:,} at {v:,}" for per, v in ev.milestones.items() if v is not None)
        advice.append("Train longer: successes are becoming more frequent"
                      + (f" (milestones: {paces} env steps)." if paces else ".")
                      + " Resume with `hjax train --resume RUN_DIR --num-epochs N`.")
    elif verdict == "solved":
        advice.append(f"Solved: eval success first reached {th.solved_level:g} at "
                      f"{_steps(ev.solved_env_steps)}; a run of about that length would do.")
        if any(r.startswith("warning:") for r in reasons):
            advice.append("It is solved, but a warning above says training was not healthy all along: check "
                          "the curves (hjax.plot) before reusing this configuration.")
    elif verdict == "collapsed":
        advice.append(f"Lower actor_lr/critic_lr (now {config.actor_lr:g}/{config.critic_lr:g}) or tau "
                      f"(now {config.tau:g}), or raise buffer_episodes; the policy near the best epoch may be "
                      "in an earlier checkpoint (`hjax eval RUN_DIR --epoch E`).")
    elif verdict == "unstable":
        text = " ".join(reasons)
        if "non-finite" in text or "blew up" in text:
            advice.append(f"Lower the learning rates (actor_lr={config.actor_lr:g}, critic_lr={config.critic_lr:g}), "
                          "check the env for NaN/inf, and keep inputs bounded (obs_clip).")
        if "mean Q" in text:
            advice.append("Q left its target bound: keep clip_target=True, lower critic_lr or tau, check the "
                          "env's reward_range.")
        if "saturate" in text:
            if config.algorithm == "sac":
                advice.append("Actions saturate: lower actor_lr, or a lower target_entropy (less entropy pushes "
                              "fewer samples to the bounds).")
            else:
                advice.append(f"Actions saturate: raise action_l2 (now {config.action_l2:g}) or lower actor_lr.")
    return advice


def _median_evidence(items: list[Evidence]) -> Evidence:
    """Each number's median over seeds; milestones the median seed's (unreached counts as last)."""
    values = {}
    for f in dataclasses.fields(Evidence):
        column = [getattr(e, f.name) for e in items]
        if f.name in ("unavailable", "distance_metric", "success_counted"):
            values[f.name] = column[0]
        elif f.name.endswith("env_steps") and f.name != "env_steps":
            ordered = sorted(column, key=lambda v: math.inf if v is None else v)
            values[f.name] = ordered[(len(ordered) - 1) // 2]
        else:
            present = [v for v in column if v is not None]
            if not present:
                values[f.name] = None
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    median = float(np.median(present))
                values[f.name] = int(median) if isinstance(present[0], int) else median
    return Evidence(**values)


def report(diagnosis: Diagnosis) -> str:
    """A short readable report (what `str(diagnosis)` returns)."""
    d, ev = diagnosis, diagnosis.evidence
    lines = [f"verdict: {d.verdict}" + (f"  ({d.run})" if d.run else "")]
    if d.per_seed:
        lines.append("  per seed: " + ", ".join(s.verdict for s in d.per_seed)
                     + "  (numbers below: medians over seeds)")
    lines += [f"  because: {r}" for r in d.reasons]
    counted = "earned " if ev.success_counted == "earned" else ""
    lines.append(f"  first {counted}successful training episode: {_steps(ev.first_success_env_steps)}")
    (a, b, c) = ev.milestones.values()
    lines.append(f"  1 success per 1,000 training episodes: {_steps(a)}; per 100: {_steps(b, 'not reached', '')}; "
                 f"per 10: {_steps(c, 'not reached', '')}")
    lines.append(f"  training success early {_fmt(ev.train_success_early, '.3f')} -> late "
                 f"{_fmt(ev.train_success_late, '.3f')}; eval success early {_fmt(ev.eval_success_early, '.3f')}"
                 f" -> late {_fmt(ev.eval_success_late, '.3f')} (best {_fmt(ev.eval_success_best, '.3f')})")
    if ev.chance_level is not None:
        lines.append(f"  chance level (goals met at reset): training {ev.chance_level:.3f}, eval "
                     f"{_fmt(ev.eval_chance_level, '.3f')}; earned success early "
                     f"{_fmt(ev.earned_success_early, '.3f')} -> late {_fmt(ev.earned_success_late, '.3f')}"
                     f" (z {_fmt(ev.learning_z, '.1f')}); eval {_fmt(ev.eval_earned_early, '.3f')} -> "
                     f"{_fmt(ev.eval_earned_late, '.3f')} (z {_fmt(ev.eval_learning_z, '.1f')})")
    lines.append(f"  replay success-reward fraction (mean over the run): {_fractions(ev)}"
                 + (f"; informative {ev.replay_informative:.2g}" if ev.replay_informative is not None else ""))
    if ev.distance_metric is not None:
        lines.append(f"  distance to goal ({ev.distance_metric}): early {_fmt(ev.distance_start, '.3g')} -> late "
                     f"{_fmt(ev.distance_end, '.3g')}, slope {_fmt(ev.distance_slope, '.3g')} per 1,000 env steps")
    if ev.q_min is not None and ev.q_max is not None:
        bound = ("no target bound (clip_target=False)" if ev.q_margin is None else
                 f"target bound [{ev.q_bound_low:.3g}, {ev.q_bound_high:.3g}], allowed margin {ev.q_margin:.3g}")
        lines.append(f"  Q over the run [{ev.q_min:.3g}, {ev.q_max:.3g}]; {bound}")
    if ev.action_saturation is not None:
        lines.append(f"  action saturation (late mean, share of |a| > 0.99): {ev.action_saturation:.3f}")
    if ev.unavailable:
        lines.append("  unavailable: " + "; ".join(ev.unavailable))
    lines += [f"advice: {a}" for a in d.advice]
    return "\n".join(lines)
