"""hjax against Stable-Baselines3 (TD3 + HerReplayBuffer) on the same task, in one process.

    python -m benchmarks.vs_sb3 [--sb3-budget-s 600] [--hjax-epochs 30] [--seed 0]
    python -m benchmarks.vs_sb3 --config-overrides hidden_sizes=64,64 num_envs=256 --name vs_sb3_small_nets
    python -m benchmarks.vs_sb3 --quick          # smoke test only: tiny networks and budget
    # planar push from the push preset, hjax run twice (the second from the warm compile cache):
    python -m benchmarks.vs_sb3 --env push --base preset --hjax-runs 2 --sb3-budget-s 7200

Needs the optional extra: `pip install -e ".[sb3]"`.

Both learners train on point_mass (or `--env`), SB3 through `envs.gymnasium.to_gymnasium`, with
the hyperparameters they share taken from one `hjax.Config`: network widths (ReLU MLPs, tanh
actor, twin critics), batch size, gamma, Adam learning rate, tau, Gaussian exploration noise,
policy delay, target-policy smoothing, replay capacity, HER `future` with k = 4, and the
update-to-data ratio. What cannot be the same is listed in the results' notes.

Measured for each: env steps/s and gradient steps/s while training, and the wall time until
evaluation success first reaches `--target` (0.9). Evaluation is the same for both: every
`env_steps_per_epoch` env steps, `num_eval_envs` fresh episodes with the deterministic policy,
success at the last step. hjax evaluates inside its fused epoch (`eval/success_rate`); its wall
time is measured from before `hjax.train` (compile included, and reported apart) to the host
report of each epoch (chunk_epochs=1, so every epoch is reported). SB3's policy is evaluated on a
batch of the same JAX env with `model.predict` (one batched call per step), between SB3
rollouts; that time is excluded from SB3's training wall time and reported apart. SB3 stops at
the target or when its training time passes `--sb3-budget-s`.

Host script; not jittable.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hjax import envs
import hjax
from hjax import stats
from benchmarks.common import markdown_table, write_results
from benchmarks.her_ablation import parse_overrides
from hjax.envs.goal_env import OBS_KEYS
from hjax import compile_cache

QUICK_OVERRIDES = dict(hidden_sizes=(32, 32), num_envs=4, grad_steps_per_epoch=24, batch_size=64,
                       buffer_episodes=200, num_eval_envs=10)


def shared_config(args: argparse.Namespace) -> hjax.Config:
    """The hjax config; SB3 copies every shared hyperparameter from it (less `--sb3-overrides`).
    It starts from Config's defaults or, with `--base preset`, from the env's preset. Exploration
    is Gaussian noise only (random_action_prob=0), because SB3's TD3 has no epsilon-random
    actions, unless `--keep-random-actions` leaves hjax's as configured (a listed difference)."""
    overrides: dict[str, Any] = dict(chunk_epochs=1)
    from_cli = parse_overrides(args.config_overrides, fixed=("env", "her_strategy", "chunk_epochs", "seed"))
    if args.hjax_epochs is not None and "num_epochs" in from_cli:
        # Two flags for one field: which one wins would be a guess, so neither does.
        raise ValueError(f"--hjax-epochs={args.hjax_epochs} and --config-overrides num_epochs="
                         f"{from_cli['num_epochs']} both set hjax's run length; allowed: one of them")
    if not args.keep_random_actions:
        overrides["random_action_prob"] = 0.0
    if args.quick:
        overrides.update(QUICK_OVERRIDES, num_epochs=3)
    elif args.hjax_epochs is not None:
        overrides["num_epochs"] = args.hjax_epochs
    elif args.base == "default":
        overrides["num_epochs"] = 30
    overrides.update(from_cli)
    overrides.update(her_strategy="future", seed=args.seed)
    cfg = (hjax.Config.preset(args.env, **overrides) if args.base == "preset"
           else hjax.Config(env=args.env, **overrides))
    return cfg


def sb3_config(cfg: hjax.Config, args: argparse.Namespace) -> hjax.Config:
    """The config SB3's hyperparameters are read from: hjax's, with `--sb3-overrides` applied
    (e.g. the HER paper's 3x256 networks at its update-to-data ratio). Checked before anything runs."""
    sb = cfg.replace(**parse_overrides(args.sb3_overrides, fixed=(
        "env", "her_strategy", "chunk_epochs", "seed", "num_envs", "episode_length", "num_eval_envs")))
    _check_sb3_compatible(sb)
    return sb


def _check_sb3_compatible(cfg: hjax.Config) -> None:
    if cfg.actor_lr != cfg.critic_lr:
        raise ValueError(f"actor_lr={cfg.actor_lr} and critic_lr={cfg.critic_lr} differ; SB3's TD3 has one "
                         "learning_rate for both, so they must be equal here")
    if cfg.replay_k != int(cfg.replay_k):
        raise ValueError(f"replay_k={cfg.replay_k} must be an integer here (SB3's n_sampled_goal)")


# ---- hjax -----------------------------------------------------------------------------------------

def run_hjax(cfg: hjax.Config, target: float) -> dict[str, Any]:
    """Train with `hjax.train`, timing every epoch's host report from before the call."""
    times: list[float] = []
    t0 = time.perf_counter()
    result = hjax.train(cfg, progress=lambda epoch, m: times.append(time.perf_counter() - t0),
                        progress_bar=False, verbose=False)
    m = result.metrics
    steps = np.asarray(m["env_steps"], np.int64)
    success = np.asarray(m["eval/success_rate"], np.float64)
    wall = np.asarray(times)  # cumulative, compile included; one per epoch
    hit = stats.first_reaching(np.arange(len(success)), success, target)
    total_steps = int(steps[-1])
    return {
        "env_steps": steps.tolist(), "eval_success": success.tolist(), "wall_s": wall.tolist(),
        "eval_final_distance": np.asarray(m["eval/final_distance"]).tolist(),
        "compile_s": result.compile_seconds, "run_s": result.run_seconds,
        "env_steps_per_s": total_steps / result.run_seconds,
        "grad_steps_per_s": int(np.asarray(m["grad_steps"])[-1]) / result.run_seconds,
        "total_env_steps": total_steps,
        "steps_to_target": None if hit is None else int(steps[hit]),
        "time_to_target_s": None if hit is None else float(wall[hit]),
        "time_to_target_excl_compile_s": None if hit is None else float(wall[hit] - result.compile_seconds),
        "final_success": float(success[-1]),
    }


def _run_hjax_from_dict(fields: dict[str, Any], target: float) -> dict[str, Any]:
    """`run_hjax` in a spawned child: a Config holds read-only mappings, which do not pickle."""
    fields["hidden_sizes"] = tuple(fields["hidden_sizes"])
    return run_hjax(hjax.Config(**fields), target)


def run_hjax_fresh(cfg: hjax.Config, target: float, runs: int, cache_dir: str) -> list[dict[str, Any]]:
    """`run_hjax` `runs` times, each in a fresh Python process (spawned, same core affinity) with
    the persistent compile cache in `cache_dir`, as a user re-running a script or restarting a
    notebook would: run 1 compiles cold (the folder starts empty), the later runs load the
    compiled programs from the cache."""
    out = []
    ctx = multiprocessing.get_context("spawn")
    previous = os.environ.get(compile_cache.ENV_DIR)
    os.environ[compile_cache.ENV_DIR] = cache_dir  # the spawned child inherits it
    try:
        for i in range(runs):
            with ctx.Pool(1) as pool:
                out.append(pool.apply(_run_hjax_from_dict, (cfg.to_dict(), target)))
            print(f"hjax run {i + 1}: compile {out[-1]['compile_s']:.1f}s, to {target:.0%}: "
                  f"{_secs(out[-1]['time_to_target_s'])}", flush=True)
    finally:
        if previous is None:
            os.environ.pop(compile_cache.ENV_DIR)
        else:
            os.environ[compile_cache.ENV_DIR] = previous
    return out


# ---- SB3 ------------------------------------------------------------------------------------------

class BatchedEval:
    """`num_episodes` fresh deterministic episodes of an SB3 model on the vmapped JAX env: success
    at the last step, as hjax's `eval/success_rate`. Host side."""

    def __init__(self, env: envs.GoalEnv, num_episodes: int, seed: int):
        self.env, self.num_episodes = env, num_episodes
        self.reset = jax.jit(jax.vmap(env.reset))
        self.step = jax.jit(jax.vmap(env.step))
        self.key = jax.random.PRNGKey(seed + 10_000)  # apart from the learners' keys
        self.calls = 0

    def __call__(self, model) -> tuple[float, float]:
        key = jax.random.fold_in(self.key, self.calls)
        self.calls += 1
        state = self.reset(jax.random.split(key, self.num_episodes))
        for _ in range(self.env.episode_length):
            obs = {k: np.asarray(state.obs[k]) for k in OBS_KEYS}
            action, _ = model.predict(obs, deterministic=True)
            state = self.step(state, jnp.asarray(action, jnp.float32))
        return float(np.mean(state.metrics["success"])), float(np.mean(state.metrics["distance"]))


def run_sb3(cfg: hjax.Config, args: argparse.Namespace, budget_s: float) -> dict[str, Any]:
    """Train SB3 TD3 + HerReplayBuffer with `cfg`'s shared hyperparameters until the target
    success or the training-time budget."""
    import torch
    from stable_baselines3 import TD3, HerReplayBuffer
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.noise import NormalActionNoise
    from stable_baselines3.common.vec_env import DummyVecEnv

    from hjax.envs.gymnasium import to_gymnasium

    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)  # torch would otherwise size its pool by all cores, not the affinity
    T = cfg.episode_length
    utd = cfg.grad_steps_per_epoch / cfg.env_steps_per_epoch
    train_freq = args.sb3_train_episodes
    gradient_steps = max(1, round(utd * train_freq * T))
    eval_every = cfg.env_steps_per_epoch
    act_dim = cfg.make_env().action_size

    t_setup = time.perf_counter()
    gym_env = to_gymnasium(cfg.env, **cfg.env_kwargs)
    gym_env.reset(seed=cfg.seed)
    gym_env.step(np.zeros(act_dim, np.float32))  # compile the adapter's jitted reset/step
    vec_env = DummyVecEnv([lambda: gym_env])
    model = TD3(
        "MultiInputPolicy", vec_env,
        learning_rate=cfg.actor_lr, buffer_size=cfg.buffer_episodes * T, learning_starts=cfg.env_steps_per_epoch,
        batch_size=cfg.batch_size, tau=cfg.tau, gamma=cfg.discount,
        train_freq=(train_freq, "episode"), gradient_steps=gradient_steps,
        action_noise=NormalActionNoise(np.zeros(act_dim), cfg.exploration_noise * np.ones(act_dim)),
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs=dict(n_sampled_goal=int(cfg.replay_k), goal_selection_strategy="future"),
        policy_kwargs=dict(net_arch=list(cfg.hidden_sizes)),
        policy_delay=cfg.policy_delay, target_policy_noise=cfg.target_noise, target_noise_clip=cfg.target_noise_clip,
        seed=cfg.seed, device="cpu", verbose=0)
    evaluate = BatchedEval(cfg.make_env(), cfg.num_eval_envs, cfg.seed)
    evaluate(model)  # compile the batched eval env outside the timed run
    setup_s = time.perf_counter() - t_setup

    class EvalAndBudget(BaseCallback):
        """Evaluate after SB3's gradient steps (at rollout start) every `eval_every` env steps;
        stop at the target or when training time (evaluation excluded) passes the budget."""

        def __init__(self):
            super().__init__()
            self.records: list[tuple[int, float, float, float]] = []  # steps, train_s, success, distance
            self.eval_s = 0.0
            self.next_eval = eval_every
            self.done = False

        def _on_training_start(self) -> None:
            self.t0 = time.perf_counter()

        def train_s(self) -> float:
            return time.perf_counter() - self.t0 - self.eval_s

        def _on_rollout_start(self) -> None:
            if self.num_timesteps < self.next_eval:
                return
            train_s = self.train_s()
            t = time.perf_counter()
            success, distance = evaluate(self.model)
            self.eval_s += time.perf_counter() - t
            self.records.append((self.num_timesteps, train_s, success, distance))
            self.next_eval += eval_every
            self.done = success >= args.target and not args.sb3_full_budget
            print(f"  sb3 {self.num_timesteps} env steps, {train_s:.1f}s: eval success {success:.2f}", flush=True)

        def _on_step(self) -> bool:
            return not self.done and self.train_s() < budget_s

    callback = EvalAndBudget()
    model.learn(total_timesteps=10**12, callback=callback)
    train_s = callback.train_s()
    steps = int(model.num_timesteps)
    records = np.asarray(callback.records, np.float64).reshape(-1, 4)
    hit = stats.first_reaching(np.arange(len(records)), records[:, 2], args.target)
    return {
        "env_steps": records[:, 0].astype(int).tolist(), "eval_success": records[:, 2].tolist(),
        "wall_s": records[:, 1].tolist(), "eval_final_distance": records[:, 3].tolist(),
        "setup_s": setup_s, "train_s": train_s, "eval_s": callback.eval_s,
        "env_steps_per_s": steps / train_s, "grad_steps_per_s": float(model._n_updates) / train_s,
        "total_env_steps": steps,
        "steps_to_target": None if hit is None else int(records[hit, 0]),
        "time_to_target_s": None if hit is None else float(records[hit, 1]),
        "final_success": float(records[-1, 2]) if len(records) else None,
        "train_freq_episodes": train_freq, "gradient_steps": gradient_steps,
        "utd": gradient_steps / (train_freq * T), "torch_threads": threads,
        "versions": {"stable_baselines3": __import__("stable_baselines3").__version__, "torch": torch.__version__,
                     "gymnasium": __import__("gymnasium").__version__},
    }


# ---- report -----------------------------------------------------------------------------------------

def _fmt(x, digits=1):
    return "not reached" if x is None else (round(x, digits) if isinstance(x, float) else x)


def _secs(x) -> str:
    return "not reached" if x is None else f"{x:.1f}s"


def _sb3_key(sb_cfg: hjax.Config, args: argparse.Namespace) -> dict[str, Any]:
    """What an SB3 result depends on besides its budget, JSON-normalised, to match a saved side."""
    return json.loads(json.dumps({"sb3_config": sb_cfg.to_dict(), "target": args.target,
                                  "sb3_train_episodes": args.sb3_train_episodes,
                                  "sb3_full_budget": args.sb3_full_budget}, default=str))


def _sb3_only(sb_cfg: hjax.Config, args: argparse.Namespace, budget: float) -> None:
    """`--skip-hjax`: train SB3 alone and save its side, for a later `--sb3-from` run that trains
    hjax and writes the comparison (so SB3's hours can start while hjax's core is busy)."""
    print(f"sb3 only: budget {budget:.0f}s of training", flush=True)
    sb = run_sb3(sb_cfg, args, budget)
    level = f"{args.target:.0%}"
    headers = ["learner", "env steps/s", "grad steps/s", "setup s", f"env steps to {level}",
               f"training s to {level}", "env steps run", "final eval success"]
    rows = [["SB3 TD3+HER", round(sb["env_steps_per_s"]), round(sb["grad_steps_per_s"], 1), round(sb["setup_s"], 1),
             _fmt(sb["steps_to_target"]), _fmt(sb["time_to_target_s"]), sb["total_env_steps"],
             "-" if sb["final_success"] is None else round(sb["final_success"], 3)]]
    notes = (f"SB3's side of a comparison alone (`--skip-hjax`); `--sb3-from` this file combines it with an hjax "
             f"run of the same configs. Task {sb_cfg.env}, seed {sb_cfg.seed}, budget {budget:.0f} s of training; "
             f"{sb['gradient_steps']} gradient steps every {sb['train_freq_episodes']} episodes (UTD "
             f"{sb['utd']:.4g}); config in the JSON.")
    extra = {**_sb3_key(sb_cfg, args), "budget_s": budget, "sb3": sb}
    path = write_results(args.name or "vs_sb3_sb3_only", headers, rows, extra=extra, notes=notes)
    print("\n" + markdown_table(headers, rows) + f"\n\n{notes}\nwritten: {path}")


def _hjax_key(cfg: hjax.Config, args: argparse.Namespace) -> dict[str, Any]:
    """What an hjax side depends on, JSON-normalised, to match a saved side."""
    return json.loads(json.dumps({"config": cfg.to_dict(), "target": args.target}, default=str))


def load_side(path: str, want: dict[str, Any], side: str, flag: str) -> dict[str, Any]:
    """A saved one-sided result (`--skip-hjax` or `--skip-sb3`), checked to be for the same
    configs and target as this run (`want`: the fields that must match)."""
    try:
        saved = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{flag}={path!r}: cannot read it ({e})") from None
    if side not in saved:
        raise ValueError(f"{flag}={path!r} is not a one-sided result of this script holding {side!r}")
    diffs = [k for k in want if saved.get(k) != want[k]]
    if diffs:
        raise ValueError(f"{flag}={path!r} was run with other {', '.join(diffs)}; allowed: a result of the "
                         "same config, target and train schedule")
    return saved


def load_sb3_side(path: str, sb_cfg: hjax.Config, args: argparse.Namespace) -> dict[str, Any]:
    """A saved `--skip-hjax` result for this SB3 config, target and schedule."""
    return load_side(path, _sb3_key(sb_cfg, args), "sb3", "--sb3-from")


def load_hjax_side(path: str, cfg: hjax.Config, args: argparse.Namespace) -> dict[str, Any]:
    """A saved `--skip-sb3` result for this hjax config and target."""
    return load_side(path, _hjax_key(cfg, args), "hjax_runs", "--hjax-from")


def _hjax_only(cfg: hjax.Config, args: argparse.Namespace, hj_runs: list[dict[str, Any]]) -> None:
    """`--skip-sb3`: save hjax's side alone, for a later `--hjax-from` run."""
    level = f"{args.target:.0%}"
    headers = ["learner", "env steps/s", "grad steps/s", "compile s", f"env steps to {level}",
               f"wall s to {level} (compile incl.)", "env steps run", "final eval success"]
    rows = [[f"hjax run {i + 1}", round(r["env_steps_per_s"]), round(r["grad_steps_per_s"], 1),
             round(r["compile_s"], 1), _fmt(r["steps_to_target"]), _fmt(r["time_to_target_s"]),
             r["total_env_steps"], round(r["final_success"], 3)] for i, r in enumerate(hj_runs)]
    notes = (f"hjax's side of a comparison alone (`--skip-sb3`); `--hjax-from` this file combines it with an SB3 "
             f"run. Task {cfg.env}, seed {cfg.seed}. {_hjax_runs_note(hj_runs)}Config in the JSON.")
    extra = {**_hjax_key(cfg, args), "hjax_runs": hj_runs}
    path = write_results(args.name or "vs_sb3_hjax_only", headers, rows, extra=extra, notes=notes)
    print("\n" + markdown_table(headers, rows) + f"\n\n{notes}\nwritten: {path}")


def _apart_note(args: argparse.Namespace) -> str:
    sides = [f"{name} trained alone in its own process ({path})"
             for name, path in (("hjax", args.hjax_from), ("SB3", args.sb3_from)) if path]
    return "; ".join(sides) + ", one core each"


def _sb3_differs(cfg: hjax.Config, sb_cfg: hjax.Config) -> str:
    """The shared fields SB3 read with other values (`--sb3-overrides`), for the notes."""
    a, b = cfg.to_dict(), sb_cfg.to_dict()
    changed = [f"{k}={b[k]!r} (hjax {a[k]!r})" for k in sorted(a) if a[k] != b[k]]
    return f"SB3 read these fields at its own values: {', '.join(changed)}. " if changed else ""


def _hjax_runs_note(hj_runs: list[dict[str, Any]]) -> str:
    if len(hj_runs) == 1:
        return ""
    compiles = ", ".join(f"{r['compile_s']:.1f}" for r in hj_runs)
    return (f"hjax trained {len(hj_runs)} times, each in a fresh process sharing a compile cache that started "
            f"empty (compile {compiles} s); the ratios use the last run. ")


def make_parser() -> argparse.ArgumentParser:
    """The command line (also what the tests parse, so they read the real flags and defaults)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="point_mass", choices=envs.NAMES)
    parser.add_argument("--sb3-budget-s", type=float, default=600.0, help="SB3 training wall-time budget")
    parser.add_argument("--base", choices=("default", "preset"), default="default",
                        help="start the shared config from Config's defaults or from the env's preset")
    parser.add_argument("--hjax-epochs", type=int, default=None,
                        help="hjax run length (epochs; default 30, or the preset's with --base preset)")
    parser.add_argument("--hjax-runs", type=int, default=1,
                        help="with N > 1, train hjax N times, each in a fresh process sharing a new compile "
                             "cache (run 1 cold, the rest warm); the table reports the last")
    parser.add_argument("--skip-hjax", action="store_true",
                        help="train SB3 only and save its side (for a later --sb3-from)")
    parser.add_argument("--skip-sb3", action="store_true",
                        help="train hjax only and save its side (for a later --hjax-from)")
    parser.add_argument("--hjax-from", default=None, metavar="JSON",
                        help="take hjax's side from a --skip-sb3 result of the same config instead of training")
    parser.add_argument("--sb3-from", default=None, metavar="JSON",
                        help="take SB3's side from a --skip-hjax result of the same SB3 config instead of training")
    parser.add_argument("--keep-random-actions", action="store_true",
                        help="leave hjax's random_action_prob as configured (SB3 has no random actions)")
    parser.add_argument("--sb3-overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="Config fields SB3 reads differently from hjax (e.g. hidden_sizes=256,256,256 "
                             "grad_steps_per_epoch=...): each learner at its own config")
    parser.add_argument("--target", type=float, default=0.9, help="eval success level to time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sb3-train-episodes", type=int, default=4,
                        help="SB3 train_freq in episodes; gradient_steps follows from hjax's update-to-data ratio")
    parser.add_argument("--sb3-full-budget", action="store_true", help="keep SB3 training after the target")
    parser.add_argument("--config-overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="shared Config fields, e.g. hidden_sizes=64,64 batch_size=128")
    parser.add_argument("--name", default=None, help="results file name (default vs_sb3, or vs_sb3_quick)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: tiny nets, 3 hjax epochs, 15 s SB3 budget; writes vs_sb3_quick")
    return parser


def main() -> None:
    parser = make_parser()
    args = parser.parse_args()
    try:
        import gymnasium  # noqa: F401
        import stable_baselines3  # noqa: F401
    except ImportError as e:
        raise SystemExit(f'{e}: this benchmark needs the optional extra: pip install -e ".[sb3]"')
    try:
        if args.hjax_runs < 1:
            raise ValueError(f"--hjax-runs={args.hjax_runs}; allowed: an integer >= 1")
        if args.skip_hjax and args.skip_sb3:
            raise ValueError("--skip-hjax and --skip-sb3 together would run nothing; allowed: at most one")
        cfg = shared_config(args)
        sb_cfg = sb3_config(cfg, args)
    except ValueError as e:
        parser.error(str(e))
    budget = 15.0 if args.quick else args.sb3_budget_s
    saved_sb3 = None
    if args.sb3_from:
        try:
            saved_sb3 = load_sb3_side(args.sb3_from, sb_cfg, args)
        except ValueError as e:
            parser.error(str(e))
        budget = saved_sb3["budget_s"]
    if args.skip_hjax:
        return _sb3_only(sb_cfg, args, budget)

    if args.hjax_from:
        try:
            hj_runs = load_hjax_side(args.hjax_from, cfg, args)["hjax_runs"]
        except ValueError as e:
            parser.error(str(e))
        print(f"hjax: from {args.hjax_from}", flush=True)
    else:
        print(f"hjax: {cfg.num_epochs} epochs of {cfg.env_steps_per_epoch} env steps", flush=True)
        if args.hjax_runs == 1:
            hj_runs = [run_hjax(cfg, args.target)]
        else:
            with tempfile.TemporaryDirectory(prefix="hjax_vs_sb3_cache_") as cache_dir:
                hj_runs = run_hjax_fresh(cfg, args.target, args.hjax_runs, cache_dir)
    if args.skip_sb3:
        return _hjax_only(cfg, args, hj_runs)
    hj = hj_runs[-1]
    print(f"hjax: compile {hj['compile_s']:.1f}s, run {hj['run_s']:.1f}s, {hj['env_steps_per_s']:.0f} env steps/s, "
          f"to {args.target:.0%}: {_secs(hj['time_to_target_s'])}", flush=True)
    if saved_sb3 is not None:
        sb = saved_sb3["sb3"]
        print(f"sb3: from {args.sb3_from}", flush=True)
    else:
        print(f"sb3: budget {budget:.0f}s of training", flush=True)
        sb = run_sb3(sb_cfg, args, budget)
    print(f"sb3: {sb['env_steps_per_s']:.0f} env steps/s, to {args.target:.0%}: {_secs(sb['time_to_target_s'])}",
          flush=True)

    level = f"{args.target:.0%}"
    headers = ["learner", "env steps/s", "grad steps/s", "compile or setup s", f"env steps to {level}",
               f"wall s to {level} (compile incl.)", f"wall s to {level} (compile excl.)", "env steps run",
               "final eval success"]

    def hjax_row(name: str, hj: dict[str, Any]) -> list:
        return [name, round(hj["env_steps_per_s"]), round(hj["grad_steps_per_s"], 1), round(hj["compile_s"], 1),
                _fmt(hj["steps_to_target"]), _fmt(hj["time_to_target_s"]), _fmt(hj["time_to_target_excl_compile_s"]),
                hj["total_env_steps"], round(hj["final_success"], 3)]

    if len(hj_runs) == 1:
        rows = [hjax_row("hjax", hj)]
    else:
        rows = [hjax_row(f"hjax run {i + 1} ({'cold' if i == 0 else 'warm'} compile cache)", r)
                for i, r in enumerate(hj_runs)]
    rows += [
        ["SB3 TD3+HER", round(sb["env_steps_per_s"]), round(sb["grad_steps_per_s"], 1), round(sb["setup_s"], 1),
         _fmt(sb["steps_to_target"]), _fmt(sb["time_to_target_s"]), _fmt(sb["time_to_target_s"]),
         sb["total_env_steps"], "-" if sb["final_success"] is None else round(sb["final_success"], 3)],
    ]
    ratios = {"env_steps_per_s (hjax / SB3)": hj["env_steps_per_s"] / sb["env_steps_per_s"]}
    if hj["time_to_target_s"] is not None:
        sb_s, bound = ((sb["time_to_target_s"], "") if sb["time_to_target_s"] is not None
                       else (sb["train_s"], ", lower bound"))  # SB3 never got there: its budget bounds it
        ratios[f"wall time to {level} (SB3 / hjax, compile incl.){bound}"] = sb_s / hj["time_to_target_s"]
        # A compiled program is reused by later hjax.train calls in the process (other seeds, runs).
        ratios[f"wall time to {level} (SB3 / hjax, compile excl.){bound}"] = sb_s / hj["time_to_target_excl_compile_s"]
    for k, v in ratios.items():
        rows.append([f"ratio: {k}", round(v, 2)] + [""] * (len(headers) - 2))

    notes = (
        f"{'QUICK SMOKE RUN (tiny networks and budget): not a result. ' if args.quick else ''}"
        f"Task {cfg.env}, seed {cfg.seed}, one run each, "
        f"{'same process' if saved_sb3 is None and not args.hjax_from else _apart_note(args)}"
        f", same machine ({len(os.sched_getaffinity(0))} "
        f"usable cores; torch threads {sb['torch_threads']}; SB3 {sb['versions']['stable_baselines3']}, torch "
        f"{sb['versions']['torch']}, Gymnasium {sb['versions']['gymnasium']}). "
        f"Shared: hidden {list(cfg.hidden_sizes)} (ReLU, tanh actor, twin critics), batch {cfg.batch_size}, gamma "
        f"{cfg.discount:.4g}, Adam lr {cfg.actor_lr:g} (actor and critic), tau {cfg.tau}, Gaussian exploration noise "
        f"std {cfg.exploration_noise} (hjax random_action_prob={cfg.random_action_prob}; SB3 has no random actions), "
        f"policy delay {cfg.policy_delay}, "
        f"target noise {cfg.target_noise} clipped at {cfg.target_noise_clip}, replay {cfg.buffer_episodes * cfg.episode_length} "
        f"transitions, HER future k={int(cfg.replay_k)}, learning starts after {cfg.env_steps_per_epoch} env steps, "
        f"update-to-data ratio hjax {cfg.grad_steps_per_epoch}/{cfg.env_steps_per_epoch} = "
        f"{cfg.grad_steps_per_epoch / cfg.env_steps_per_epoch:.4g}, SB3 {sb['gradient_steps']} gradient steps every "
        f"{sb['train_freq_episodes']} episodes = {sb['utd']:.4g}. "
        f"{_sb3_differs(cfg, sb_cfg)}{_hjax_runs_note(hj_runs)}"
        f"Differences: hjax runs {cfg.num_envs} envs in parallel per epoch, SB3 one env (DummyVecEnv) through the "
        f"Gymnasium adapter; hjax normalises observations and goals (running mean/std, clip {cfg.obs_clip}), "
        f"adds an action L2 penalty ({cfg.action_l2}) to the actor loss and clips Q targets to "
        f"[-1/(1-gamma), 0] (baselines HER), SB3 does none of these (its defaults); hjax's actor step reuses the "
        f"last critic batch. Evaluation: {cfg.num_eval_envs} fresh deterministic episodes every "
        f"{cfg.env_steps_per_epoch} env steps for both, success at the last step. hjax wall time runs from before "
        f"hjax.train (compile {hj['compile_s']:.1f}s included) and includes its in-step evaluation; SB3's counts "
        f"training only (learn() from its first step; setup {sb['setup_s']:.1f}s and evaluation {sb['eval_s']:.1f}s "
        f"excluded). SB3 stopped at {sb['total_env_steps']} env steps after {sb['train_s']:.1f}s "
        f"({'target reached' if sb['time_to_target_s'] is not None and not args.sb3_full_budget else 'budget ' + str(budget) + 's'}).")
    extra = {"config": cfg.to_dict(), "sb3_config": sb_cfg.to_dict(), "target": args.target, "hjax": hj,
             "hjax_runs": hj_runs, "sb3": sb, "ratios": ratios, "base": args.base, "sb3_from": args.sb3_from,
             "hjax_from": args.hjax_from}
    path = write_results(args.name or ("vs_sb3_quick" if args.quick else "vs_sb3"), headers, rows, extra=extra, notes=notes)
    print("\n" + markdown_table(headers, rows) + f"\n\n{notes}\nwritten: {path}")


if __name__ == "__main__":
    main()
