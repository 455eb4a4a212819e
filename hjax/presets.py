"""Per-env presets: the config that reached 90% eval success (slide: 70%) in the least measured
wall time.

`hjax.Config.preset("push")` (or `hjax train --preset push`) starts from these values; any field
given beside them overrides the preset. Each entry says where it was measured and how long it
took, compile included. How they were chosen:

- point_mass, reach, push, gripper_reach (env version 4): on a 2-core x86 CPU (benchmarks/README.md), by
  `python -m benchmarks.presets` (each candidate in a fresh process with the compile cache off,
  one seed; `benchmarks/results/presets.md`); the fastest candidate to 90% is the preset.
- gripper_push (env version 4): on one core of the same CPU by `python -m benchmarks.levers`
  (3 vmapped seeds; `benchmarks/results/levers_gripper_push*.md`, issue 25): of the learner levers
  whose every seed reached 90%, the least wall time to 90% (estimated from each run's compile
  time and mean epoch time; `tests/test_presets.py` checks the choice against the files).
- gripper_pick_and_place (env version 6): the same way (`levers_gripper_pick_and_place*.md`): the
  only lever whose every seed reached 90% starts half the training episodes with the cube grasped.
- gripper_slide (env version 4): the same way, to issue 25's slide target of 70% (no lever has
  brought every seed to 90%): the push preset's SAC configuration (`levers_gripper_slide_sac.md`).

Data only: this module imports nothing from hjax (the Config reads it).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping


def _frozen(**fields: Any) -> Mapping[str, Any]:
    return MappingProxyType(fields)


PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "point_mass": _frozen(num_envs=64, grad_steps_per_epoch=64, batch_size=256, hidden_sizes=(64, 64),
                          num_epochs=50),
    "reach": _frozen(num_envs=128, grad_steps_per_epoch=64, batch_size=512, hidden_sizes=(128, 128),
                     num_epochs=25),
    "push": _frozen(num_envs=64, grad_steps_per_epoch=200, batch_size=256, hidden_sizes=(256, 256),
                    num_epochs=250),
    "gripper_reach": _frozen(num_envs=32, grad_steps_per_epoch=200, batch_size=256, hidden_sizes=(256, 256),
                             num_epochs=10),
    "gripper_push": _frozen(num_envs=256, grad_steps_per_epoch=200, batch_size=2048, buffer_episodes=8192,
                            hidden_sizes=(256, 256, 256), algorithm="sac", num_epochs=40),
    "gripper_pick_and_place": _frozen(num_envs=256, grad_steps_per_epoch=200, batch_size=2048, buffer_episodes=8192,
                                      hidden_sizes=(256, 256, 256), algorithm="sac",
                                      env_kwargs=MappingProxyType({"grasped_start_prob": 0.5}), num_epochs=100),
    "gripper_slide": _frozen(num_envs=256, grad_steps_per_epoch=200, batch_size=2048, buffer_episodes=8192,
                             hidden_sizes=(256, 256, 256), algorithm="sac", num_epochs=80),
})
"""env name -> the Config fields its preset sets (everything else keeps Config's defaults)."""

MEASURED: Mapping[str, str] = MappingProxyType({
    "point_mass": "2-core CPU, first run (no compile cache), seed 0: 90% eval success at epoch 31 "
                  "(99,200 env steps), 17.1 s from process start, ~16 s of it compile",
    "reach": "2-core CPU, first run, seed 0: 90% at epoch 15 (96,000 env steps), 39.3 s from process start, "
             "~36 s of it compile (the three candidates were within 1 s of each other)",
    "push": "2-core CPU, first run, seed 0: 90% at epoch 173 (553,600 env steps), 281 s from process start, "
            "~58 s of it compile",
    "gripper_reach": "2-core CPU, first run, seed 0, env version 4 (the Fetch-faithful task): 90% at epoch 3 "
                     "(4,800 env steps), 36.8 s from process start, ~34 s of it compile",
    "gripper_push": "one core of a 2-core CPU, 3 vmapped seeds (seed 11), env version 4 (the Fetch-faithful "
                    "task): SAC; the median seed first reached 90% at epoch 32 (409,600 env steps; the three at "
                    "31, 32 and 33), final 0.980 [0.970, 1.000] at epoch 40; 1,887 s for the 40 epochs, 54 s of it "
                    "compile, so about 1,520 s to 90% (benchmarks/results/levers_gripper_push.md, the sac row). "
                    "The fastest to 90% of the levers measured there: SAC with twice the updates gets there "
                    "in fewer env steps (epochs 19-27) but at 86 s per epoch against 47, and TD3 with n_step=3 "
                    "or twice the updates does not bring every seed to 90% in 40 epochs. A CPU configuration: "
                    "not measured on a GPU",
    "gripper_pick_and_place": "one core of a 2-core CPU, 3 vmapped seeds (seed 11), env version 6 (the "
                              "Fetch-faithful task with Fetch's finger drive, fingertips on the table): SAC with half "
                              "the training episodes started with the cube grasped (env_kwargs grasped_start_prob=0.5; "
                              "evaluation starts as Fetch); the median seed first reached 90% at epoch 64 (819,200 "
                              "env steps; the three at 60, 64 and 69), final 0.983 [0.970, 1.000] at epoch 100; "
                              "5,782 s for the 100 epochs, 54 s of it compile, so about 3,720 s to 90% "
                              "(benchmarks/results/levers_gripper_pick_and_place_sac.md, the grasped_start=0.5 row). "
                              "SAC from Fetch's starts alone, with or without 3-step targets, stopped at 0.537 at env "
                              "version 4 (it never lifted the cube). A CPU configuration: not measured on a GPU",
    "gripper_slide": "one core of a 2-core CPU, 3 vmapped seeds (seed 11), env version 4 (the Fetch-faithful "
                     "task: Fetch's cylinder puck, table and reach): SAC, the push preset's configuration; the "
                     "median seed first reached 70% at epoch 43 (550,400 env steps; the three at 40, 43 and 49), "
                     "final 0.820 [0.780, 0.870] at epoch 80; 5,767 s for the 80 epochs, 90 s of it compile, so "
                     "about 3,140 s to 70% (benchmarks/results/levers_gripper_slide_sac.md, the base row). No "
                     "seed holds 90% (one touched it once). A CPU configuration: not measured on a GPU",
})
"""env name -> what its preset was measured to do, and where."""

EPOCHS_TO_90: Mapping[str, int | None] = MappingProxyType({
    "point_mass": 31, "reach": 15, "push": 173, "gripper_reach": 3, "gripper_push": 32,
    "gripper_pick_and_place": 64, "gripper_slide": None,
})
"""env name -> the epoch at which its preset first reached 90% eval success when measured (the
`MEASURED` line says where); None: not measured. `hjax.diagnose` reads it to tell a preset run
stopped before that epoch to train longer rather than to explore more."""
