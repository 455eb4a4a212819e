"""hjax: Hindsight Experience Replay with TD3, DDPG or SAC in pure JAX.

    import hjax
    result = hjax.train(hjax.Config(env="point_mass"))
    result.metrics["eval/success_rate"]          # per epoch
    hjax.train(hjax.Config.preset("push"))       # a measured preset per env (hjax.PRESETS)
    train = hjax.make_train(config)              # pure train(key), for jax.jit(jax.vmap(train))(keys)
    print(hjax.diagnose(result))                 # silent, hindsight_only, learning, solved, unstable, collapsed
    sweep = hjax.sweep(config, {"her_strategy": ["future", "none"], "replay_k": [2, 4]}, num_seeds=4)
    sweep.table()                                # one compiled program for the grid x seeds

`plot`, `summary`, `diagnose`, `evaluate` and `load_policy` take a `Result` or a run directory.

The package's rooms: `config` (Config), `step` (the pure fused training step, `make_trainer`),
`loop` (the host loop, `train`), `result` (Result, summary, finite checks), `runs` (run
directories: config.json, metrics.csv, checkpoints, the lock), `loading` (load_run, load_policy,
evaluate, write_episode), `diagnosis` (the pure analysis), `progress` (live reports), `plot`,
`hyper` (the sweepable hyperparameters), `sweeping` (`sweep`: a grid of them in one program), `stats`.

Attributes load lazily: `import hjax` imports neither JAX nor any env, so the command line
answers `--help` at once; the first attribute that needs JAX also turns on the persistent
compile cache (`hjax.compile_cache`; HJAX_COMPILE_CACHE=0 turns it off).
"""

from __future__ import annotations

import importlib
from typing import Any

from hjax.version import __version__

# public name -> the module that defines it
_LAZY = {
    "ALGORITHMS": "config", "HER_STRATEGIES": "config", "Config": "config",
    "PRESETS": "presets",
    "Diagnosis": "diagnosis", "diagnose": "diagnosis",
    "plot": "plotting", "plot_runs": "plotting",
    "CheckpointError": "runs", "RunInUseError": "runs",
    "LoadedRun": "loading", "evaluate": "loading", "load_policy": "loading", "load_run": "loading",
    "NonFiniteError": "result", "Result": "result", "summary": "result",
    "TrainingInterrupted": "loop", "Program": "loop", "compile_program": "loop", "train": "loop",
    "METRIC_NAMES": "step", "Trainer": "step", "TrainerState": "step", "make_train": "step",
    "make_trainer": "step",
    "SweepResult": "sweeping", "sweep": "sweeping",
}
# Names whose modules import no JAX (the rest turn on the compile cache first).
_LIGHT = {"config", "presets"}
_cache_enabled = False


def __getattr__(name: str) -> Any:
    global _cache_enabled
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hjax' has no attribute {name!r}")
    if module not in _LIGHT and not _cache_enabled:
        _cache_enabled = True
        from hjax import compile_cache

        compile_cache.enable_default()  # ~/.cache/hjax/xla unless the user chose a folder
    value = getattr(importlib.import_module(f"hjax.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = sorted(_LAZY) + ["__version__"]
