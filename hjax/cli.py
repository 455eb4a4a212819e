"""The `hjax` command line: train, sweep, eval, plot and diagnose. Host side only.

Every `hjax.Config` field is a `train` option (`hjax train --help` shows its docstring and
default). Bad arguments print a one-line error and a one-line hint and exit with status 2, never
a traceback or a usage block. Importing this module imports no JAX (`--help` answers at once);
a command imports it when it runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import sys
import typing
from pathlib import Path
from typing import Any, Sequence

from hjax import envs, rundir
from hjax.config import ALGORITHMS, HER_STRATEGIES, Config, field_docs
from hjax.presets import PRESETS

EXAMPLES = {
    None: [
        "hjax train --preset point_mass --run-dir runs/pm",
        "hjax train --env push --num-seeds 4 --her-strategy none --run-dir runs/push-none",
        "hjax train --resume runs/pm --num-epochs 60",
        "hjax eval runs/pm --episodes 200 --render episode.html",
        "hjax plot runs/pm runs/push-none --out compare.png",
        "hjax diagnose runs/pm runs/push-none",
    ],
    "train": [
        "hjax train --preset point_mass --run-dir runs/pm",
        "hjax train --env point_mass --num-seeds 4 --hidden-sizes 64 64 --run-dir runs/pm4",
        "hjax train --env gripper_push --env-kwargs distance_threshold=0.05 --algorithm sac",
        "hjax train --env mypkg.tasks:MyGoalEnv --num-epochs 20",
        "hjax train --preset point_mass --run-dir runs/pm --overwrite",
        "hjax train --resume runs/pm --num-epochs 60",
        "hjax train --resume runs/pm --resume-epoch 20",
    ],
    "sweep": [
        "hjax sweep --grid her_strategy=future,none --grid replay_k=2,4,8 --num-seeds 4 --run-dir runs/ablation",
        "hjax sweep --preset point_mass --grid actor_lr=0.001,0.0003 --grid tau=0.05,0.01 --run-dir runs/lr",
        "hjax sweep --resume runs/ablation --num-epochs 60",
    ],
    "eval": ["hjax eval runs/pm --episodes 200 --render episode.html",
             "hjax eval runs/pm4 --seed-index 2 --epoch 20",
             "hjax eval runs/push --fetch --episodes 200"],
    "plot": ["hjax plot runs/pm runs/push-none --out compare.png"],
    "diagnose": ["hjax diagnose runs/pm runs/push-none"],
}
"""Each command's help examples (tests parse every one of them)."""


def _epilog(command: str | None) -> str:
    return "examples:\n" + "\n".join("  " + line for line in EXAMPLES[command])


class Parser(argparse.ArgumentParser):
    """argparse with whole option names only (`allow_abbrev=False`) and errors as one line plus
    a hint, exit status 2 (no usage block)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    command: str | None = None
    """The command being parsed (set by `main`), so the hint names its own --help."""

    def error(self, message: str) -> typing.NoReturn:
        prog = self.prog if self.prog != "hjax" or Parser.command is None else f"hjax {Parser.command}"
        print(f"hjax: error: {message}\nhint: `{prog} --help` lists every option", file=sys.stderr)
        raise SystemExit(2)


def _optional(parse):
    def convert(text: str):
        return None if text.lower() == "none" else parse(text)
    convert.__name__ = parse.__name__
    return convert


def _key_value(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def value_type(hint: Any):
    """The converter of a command-line value for a Config field of type `hint` (None for a
    field without a plain scalar type)."""
    if hint in (int, float, str):
        return hint
    if hint in (float | None, int | None, typing.Optional[float], typing.Optional[int]):
        return _optional(float if float in typing.get_args(hint) else int)
    return None


def _grid_item(text: str) -> tuple[str, list[Any]]:
    """`FIELD=V1,V2,...` (the field as in Python or as an option, her-strategy) to its values,
    each read with the field's type; the sweep itself says whether the field can be swept."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE,VALUE,..., got {text!r}")
    field, values = text.split("=", 1)
    field = field.strip().removeprefix("--").replace("-", "_")
    hints = typing.get_type_hints(Config)
    convert = value_type(hints.get(field))
    if convert is None:  # not a field, or not a scalar: hjax.sweep names it and the sweepable ones
        return field, [v for v in values.split(",")]
    try:
        return field, [convert(v.strip()) for v in values.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid --grid {text!r}: {field} takes {getattr(convert, '__name__', convert)} "
                                         "values") from None


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One `--field-name` option per Config field, with its docstring and default as help."""
    docs = field_docs()
    hints = typing.get_type_hints(Config)
    group = parser.add_argument_group("config (every hjax.Config field)")
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        help_text = f"{docs.get(f.name, '')} (default: {default!r})".replace("%", "%%")
        hint = hints[f.name]
        kw: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        if f.name == "env":
            kw.update(metavar="{" + ",".join(envs.NAMES) + "}|MODULE:CLASS",
                      help=f"{docs.get(f.name, '')} (default: {default!r})".replace("%", "%%"))
        elif f.name == "her_strategy":
            kw.update(choices=HER_STRATEGIES)
        elif f.name == "algorithm":
            kw.update(choices=ALGORITHMS)
        elif f.name == "env_kwargs":
            kw.update(type=_key_value, nargs="+", metavar="KEY=VALUE")
        elif f.name == "hidden_sizes":
            kw.update(type=int, nargs="+", metavar="WIDTH")
        elif hint is bool:
            kw.update(action=argparse.BooleanOptionalAction)
        elif hint in (int, float):
            kw.update(type=hint)
        elif value_type(hint) is not None and hint is not str:
            base = value_type(hint).__name__
            kw.update(type=value_type(hint), metavar=f"{base.upper()}|none")
        group.add_argument(flag, **kw)


def config_from_args(args: argparse.Namespace, base: Config | None = None) -> Config:
    names = {f.name for f in dataclasses.fields(Config)}
    changes = {k: v for k, v in vars(args).items() if k in names}
    if "env_kwargs" in changes:  # on top of the base's (a preset's or a resumed run's), not instead
        changes["env_kwargs"] = {**(base.env_kwargs if base else {}), **dict(changes["env_kwargs"])}
    if "hidden_sizes" in changes:
        changes["hidden_sizes"] = tuple(changes["hidden_sizes"])
    return (base or Config()).replace(**changes) if base else Config(**changes)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="hjax", description="Hindsight Experience Replay with TD3, DDPG or SAC in pure JAX.",
                    epilog=_epilog(None))
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p_train = sub.add_parser("train", help="train a config (every Config field is an option)",
                             description="Train a config; every hjax.Config field is an option below.",
                             epilog=_epilog("train"))
    p_train.add_argument("--num-seeds", type=int, default=None, help="train N seeds at once under vmap")
    p_train.add_argument("--preset", default=None, choices=list(PRESETS),
                         help="start from this env's measured preset (hjax.PRESETS; docs: Configuration, Presets); "
                              "other options override its fields")
    p_train.add_argument("--run-dir", type=Path, default=None,
                         help="where config, metrics.csv, checkpoints and curves go (default: runs/ENV-HER-TIME)")
    p_train.add_argument("--resume", type=Path, default=None,
                         help="continue the run in this directory from its newest readable checkpoint; options "
                              "given here override its saved config (only --num-epochs/--chunk-epochs may change)")
    p_train.add_argument("--resume-epoch", type=int, default=None, metavar="EPOCH",
                         help="with --resume: continue from this checkpoint epoch; later checkpoints are moved to "
                              "RUN_DIR/checkpoints_set_aside/")
    p_train.add_argument("--overwrite", action="store_true",
                         help="delete the run already in --run-dir (checkpoints included) and train into it; "
                              "without it a used run directory is refused")
    p_train.add_argument("--checkpoint-every", type=int, default=None, help="epochs between checkpoints")
    p_train.add_argument("--save-buffer", action="store_true", help="checkpoint the replay buffer (exact resume)")
    p_train.add_argument("--tensorboard", action="store_true", help="write TensorBoard event files")
    p_train.add_argument("--save-episode", action="store_true",
                         help="write one evaluation episode of the final policy to the run directory "
                              "(episode.html for physics envs, episode.png for point_mass)")
    p_train.add_argument("--no-progress", action="store_true", help="no progress bar (for scripts and logs)")
    p_train.add_argument("--distributed", action="store_true",
                         help="call jax.distributed.initialize() first (multi-host: SLURM, TPU pod slices); "
                              "every process runs the same command, process 0 writes metrics")
    p_train.add_argument("--distributed-timeout", type=float, default=None, metavar="SECONDS",
                         help="with --distributed: how long processes wait for each other to join, and after how "
                              "long without heartbeats a dead process ends all others with an error "
                              "(default: $HJAX_DISTRIBUTED_TIMEOUT, else 100)")
    add_config_arguments(p_train)

    p_sweep = sub.add_parser("sweep", help="train every point of a grid of hyperparameters x every seed in one "
                                          "compiled program", epilog=_epilog("sweep"),
                             description="Train every combination of the --grid values, times --num-seeds seeds, "
                                         "in one compiled program (hjax.sweep); every other hjax.Config field is an "
                                         "option below and holds for every point.")
    p_sweep.add_argument("--grid", type=_grid_item, action="append", default=[], metavar="FIELD=V1,V2,...",
                         help="a swept field and its values (repeat for more fields; their product is the grid). "
                              "Sweepable: actor_lr, critic_lr, alpha_lr, tau, gamma, exploration_noise, "
                              "random_action_prob, action_l2, target_noise, target_noise_clip, init_alpha, "
                              "target_entropy, replay_k, her_strategy")
    p_sweep.add_argument("--num-seeds", type=int, default=None, help="seeds per grid point (default 1)")
    p_sweep.add_argument("--preset", default=None, choices=list(PRESETS),
                         help="start from this env's measured preset; other options override its fields")
    p_sweep.add_argument("--run-dir", type=Path, default=None,
                         help="where sweep.json, points/NNN/ (config, metrics.csv, diagnosis.json), checkpoints, "
                              "table.json and sweep.png go (default: runs/sweep-ENV-TIME)")
    p_sweep.add_argument("--resume", type=Path, default=None,
                         help="continue the sweep in this directory from its newest readable checkpoint, with its "
                              "saved config and grid (only --num-epochs/--chunk-epochs may change)")
    p_sweep.add_argument("--overwrite", action="store_true",
                         help="delete the run already in --run-dir and sweep into it")
    p_sweep.add_argument("--checkpoint-every", type=int, default=None, help="epochs between checkpoints")
    p_sweep.add_argument("--save-buffer", action="store_true", help="checkpoint the replay buffers (exact resume)")
    p_sweep.add_argument("--batch-points", action=argparse.BooleanOptionalAction, default=None,
                         help="vmap over the grid points (each point equals its lone run to float32 rounding); "
                              "--no-batch-points runs them one after another in the same program, each bit-identical "
                              "to its lone `hjax train` (default: batched on a GPU or TPU, one after another on a CPU)")
    p_sweep.add_argument("--no-progress", action="store_true", help="no progress lines")
    add_config_arguments(p_sweep)

    p_eval = sub.add_parser("eval", help="evaluate a saved policy deterministically", epilog=_epilog("eval"))
    p_eval.add_argument("run_dir", type=Path)
    p_eval.add_argument("--episodes", type=int, default=100)
    p_eval.add_argument("--seed", type=int, default=12345, help="seed of the evaluation episodes")
    p_eval.add_argument("--seed-index", type=int, default=0, help="which seed of a multi-seed run")
    p_eval.add_argument("--epoch", type=int, default=None, help="checkpoint epoch (default: newest)")
    p_eval.add_argument("--fetch", action="store_true",
                        help="also play the policy on Gymnasium-Robotics' own Fetch env of the task (gripper "
                             "tasks; creates the reference environment on first use, see hjax.fetch)")
    p_eval.add_argument("--render", type=Path, default=None,
                        help="write one evaluation episode a person can watch (HTML for physics envs, PNG otherwise)")

    p_plot = sub.add_parser("plot", help="plot the curves of one or more runs side by side", epilog=_epilog("plot"))
    p_plot.add_argument("run_dirs", type=Path, nargs="+")
    p_plot.add_argument("--out", type=Path, default=None, help="PNG path (default: RUN_DIR/compare.png of the first)")

    p_diag = sub.add_parser("diagnose", help="say what saved runs are doing: silent, hindsight_only, learning, "
                                             "solved, unstable or collapsed, with the evidence and advice",
                            epilog=_epilog("diagnose"))
    p_diag.add_argument("run_dirs", type=Path, nargs="+")
    return parser


def _fail(message: str, status: int = 2) -> int:
    print(f"hjax: error: {message}", file=sys.stderr)
    return status


def _run_dir_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with --run-dir/--resume/--overwrite/--preset, checked before any config, env or
    JAX (and before --resume's directory is read)."""
    if args.preset is not None and args.resume is not None:
        return (f"invalid --preset={args.preset!r} with --resume; allowed: no --preset (a resumed run "
                "keeps its saved config)")
    if args.overwrite and args.resume is not None:
        return ("invalid --overwrite with --resume; allowed: one of them (--resume continues the run, "
                "--overwrite deletes it)")
    if args.run_dir is not None and args.resume is None:
        try:
            rundir.check_free(args.run_dir, resume=False, overwrite=args.overwrite, cli=True, command=args.command)
        except ValueError as e:
            return str(e)
    return None


def _config(args: argparse.Namespace, saved: Config | None) -> Config:
    """The run's Config: the saved one when resuming, else the preset or the defaults, with the
    options given on top; `ValueError` for a bad value or an --env that contradicts --preset."""
    if saved is not None:  # (--preset with --resume is refused earlier, by _run_dir_problem)
        return config_from_args(args, base=saved)
    if args.preset is not None:
        if "env" in vars(args) and args.env != args.preset:
            raise ValueError(f"invalid --env={args.env!r} with --preset={args.preset!r}; allowed: no --env "
                             f"or --env {args.preset} (a preset is for one env)")
        return config_from_args(args, base=Config.preset(args.preset))
    return config_from_args(args)


def _stopped(run: typing.Callable[[], Any]) -> tuple[Any, int | None]:
    """`(run(), None)`, or `(None, status)` for how it stopped: a signal at a chunk boundary (128 +
    its number), Ctrl-C (130), a NaN/inf (1, the message printed) or a bad value (2)."""
    import hjax

    try:
        return run(), None
    except hjax.TrainingInterrupted as e:
        print(f"hjax: {e}", file=sys.stderr)
        return None, 128 + e.signum
    except KeyboardInterrupt:
        return None, 130
    except hjax.NonFiniteError as e:
        return None, _fail(str(e), status=1)
    except ValueError as e:
        return None, _fail(str(e))


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume_epoch is not None and args.resume is None:
        return _fail(f"invalid --resume-epoch={args.resume_epoch} without --resume; allowed: --resume-epoch with "
                     "--resume RUN_DIR")
    problem = _run_dir_problem(args)
    if problem is not None:
        return _fail(problem)

    import hjax
    from hjax import distributed, runs

    if args.distributed_timeout is not None and not args.distributed:
        return _fail("--distributed-timeout needs --distributed")
    if args.distributed:
        try:  # reads SLURM / TPU / JAX_COORDINATOR_ADDRESS settings
            distributed.initialize(distributed.resolve_timeout(args.distributed_timeout, "--distributed-timeout"))
        except ValueError as e:
            return _fail(str(e))

    try:
        saved, saved_seeds = runs.load_config(args.resume) if args.resume is not None else (None, None)
        config = _config(args, saved)
        num_seeds = saved_seeds if args.num_seeds is None else args.num_seeds
    except (ValueError, TypeError) as e:
        return _fail(str(e))
    run_dir = args.resume or args.run_dir
    if run_dir is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = Path("runs") / f"{config.env}-{config.her_strategy}-{stamp}"
    result, status = _stopped(lambda: hjax.train(
        config, num_seeds=num_seeds, run_dir=run_dir, resume=args.resume, checkpoint_every=args.checkpoint_every,
        save_buffer=args.save_buffer, tensorboard=args.tensorboard, save_episode=args.save_episode,
        progress_bar=not args.no_progress, overwrite=args.overwrite, resume_epoch=args.resume_epoch))
    if status is not None:
        return status
    print(hjax.summary(result))
    print(hjax.diagnose(result))
    print(f"run directory: {run_dir}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """`hjax sweep`: the grid from --grid (or the resumed sweep's), the config from the options."""
    problem = _run_dir_problem(args)
    if problem is not None:
        return _fail(problem)
    if not args.grid and args.resume is None:
        return _fail("no --grid given; allowed: one or more --grid FIELD=V1,V2,... (or --resume RUN_DIR)")
    if len(dict(args.grid)) != len(args.grid):
        return _fail("invalid --grid: a field is given twice; allowed: each field once, its values comma-separated")
    import hjax
    from hjax import sweeping

    try:
        saved, saved_grid, saved_seeds = sweeping.load_sweep(args.resume) if args.resume else (None, None, None)
        config = _config(args, saved)
        grid = dict(args.grid) if args.grid else saved_grid
        num_seeds = args.num_seeds or saved_seeds or 1
    except (ValueError, TypeError) as e:
        return _fail(str(e))
    run_dir = args.resume or args.run_dir
    if run_dir is None:
        run_dir = Path("runs") / f"sweep-{config.env}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    result, status = _stopped(lambda: hjax.sweep(
        config, grid, num_seeds, run_dir=run_dir, resume=args.resume, overwrite=args.overwrite,
        checkpoint_every=args.checkpoint_every, save_buffer=args.save_buffer, progress_bar=not args.no_progress,
        batch_points=args.batch_points))
    if status is not None:
        return status
    print(result.table())
    print(f"sweep directory: {run_dir} (each point's run directory: {run_dir}/{sweeping.POINTS_DIR}/NNN)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from hjax import loading, runs

    if args.episodes < 1:
        return _fail(f"invalid --episodes={args.episodes}; allowed: an integer >= 1")
    try:
        run = loading.load_run(args.run_dir, args.epoch)
        m = loading.evaluate(run, episodes=args.episodes, seed=args.seed, seed_index=args.seed_index)
    except (runs.CheckpointError, ValueError) as e:
        return _fail(str(e).replace("invalid seed_index=", "invalid --seed-index=").replace("invalid seed=", "invalid --seed="))
    print(f"{args.run_dir} (epoch {run.epoch}), {args.episodes} deterministic episodes: "
          f"success rate {m['success_rate']:.3f}, reached at any step {m['success_any_step']:.3f}, "
          f"final distance {m['final_distance']:.4f}, mean distance {m['mean_distance']:.4f}")
    if args.fetch:
        from hjax import fetch

        try:
            f = fetch.play_run(run, episodes=args.episodes, seed=args.seed, seed_index=args.seed_index)
        except (ValueError, fetch.FetchReferenceError) as e:
            return _fail(str(e))
        ratio = f["success_rate"] / m["success_rate"] if m["success_rate"] > 0 else float("nan")
        print(f"{f['env_id']} (Gymnasium-Robotics {f['versions']['gymnasium_robotics']}, MuJoCo "
              f"{f['versions']['mujoco']}), the same policy, {args.episodes} episodes: success rate "
              f"{f['success_rate']:.3f} ({ratio:.2f} of hjax's), goals met at reset {f['met_at_reset_rate']:.3f}, "
              f"final distance {f['final_distance']:.4f}")
    if args.render is not None:
        import jax

        from hjax.result import select_seed

        state = jax.device_put(select_seed(run.state, run.num_seeds, args.seed_index))
        path = loading.write_episode(run.config, state, jax.random.PRNGKey(args.seed), args.render)
        print(f"episode written: {path}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from hjax import runs
    from hjax.plotting import plot_runs

    curves = {}
    for run_dir in args.run_dirs:
        try:
            curves[str(run_dir)] = runs.read_metrics(run_dir)
        except (runs.CheckpointError, OSError) as e:
            return _fail(f"cannot read {run_dir}: {e}")
    out = args.out or Path(args.run_dirs[0]) / "compare.png"
    plot_runs(curves, out)
    print(f"plot written: {out}")
    return 0


def cmd_diagnose(args: argparse.Namespace) -> int:
    """Each run's report (recomputed from config.json and metrics.csv, so runs written before
    diagnosis.json existed work too); status 2 if any directory is missing or not a run."""
    from hjax.diagnosis import diagnose

    status = 0
    for i, run_dir in enumerate(args.run_dirs):
        try:
            report = str(diagnose(run_dir))
        except (ValueError, OSError) as e:  # runs.CheckpointError, or a config this version refuses
            status = _fail(f"cannot diagnose {run_dir}: {e}")
            continue
        print(("\n" if i else "") + f"{run_dir}:\n{report}", flush=True)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    commands = {"train": cmd_train, "sweep": cmd_sweep, "eval": cmd_eval, "plot": cmd_plot, "diagnose": cmd_diagnose}
    Parser.command = argv[0] if argv and argv[0] in commands else None
    args = parser.parse_args(argv)
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
