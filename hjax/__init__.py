"""hjax: Hindsight Experience Replay with TD3, DDPG or SAC in pure JAX.

    import hjax
    result = hjax.train(hjax.Config(env="point_mass"))
    result.metrics["eval/success_rate"]          # per epoch
    hjax.train(hjax.Config.preset("push"))       # a measured preset per env (hjax.PRESETS)
    train = hjax.make_train(config)              # pure train(key), for jax.jit(jax.vmap(train))(keys)
    print(hjax.diagnose(result))                 # silent, hindsight_only, learning, solved, unstable, collapsed
"""

from hjax import compile_cache
from hjax.config import ALGORITHMS, HER_STRATEGIES, Config
from hjax.diagnosis import Diagnosis, diagnose
from hjax.plot import plot
from hjax.presets import PRESETS
from hjax.runs import CheckpointError, load_policy, load_run
from hjax.train import NonFiniteError, Result, TrainingInterrupted, summary, train
from hjax.trainer import METRIC_NAMES, Trainer, TrainerState, make_train, make_trainer
from hjax.version import __version__

compile_cache.enable_default()  # a persistent XLA cache in ~/.cache/hjax/xla; HJAX_COMPILE_CACHE=0 turns it off

__all__ = ["ALGORITHMS", "CheckpointError", "load_policy", "load_run", "Config", "Diagnosis", "diagnose", "HER_STRATEGIES", "METRIC_NAMES", "NonFiniteError", "PRESETS", "Result", "Trainer", "TrainingInterrupted",
           "TrainerState", "make_train", "make_trainer", "plot", "summary", "train"]
