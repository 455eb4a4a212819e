"""`Config`: every knob of a hjax run, typed, documented and validated on construction.

Imports no JAX at module level (the command line reads it for `--help`); building a Config
builds its env, which does."""

from __future__ import annotations

import ast
import dataclasses
import math
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from hjax import envs
from hjax.presets import MEASURED, PRESETS

HER_STRATEGIES = ("future", "final", "episode", "random", "none")
ALGORITHMS = ("td3", "ddpg", "sac")
# Fields only some learners read. With any other learner they must keep their default (a
# non-default value there would silently do nothing, so it is an error naming both fields).
LEARNER_ONLY_FIELDS = (
    ("policy_delay", ("td3",)), ("target_noise", ("td3",)), ("target_noise_clip", ("td3",)),
    ("action_l2", ("td3", "ddpg")), ("exploration_noise", ("td3", "ddpg")),
    ("init_alpha", ("sac",)), ("alpha_lr", ("sac",)), ("target_entropy", ("sac",)),
)
# What a learner that does not read a field does anyway; naming it is accepted (DDPG and SAC
# update the actor after every critic step, i.e. policy_delay=1).
LEARNER_IMPLIED_VALUES = {("policy_delay", "ddpg"): 1, ("policy_delay", "sac"): 1}


@dataclasses.dataclass(frozen=True)
class Config:
    """A hjax training run. Invalid values raise `ValueError` before anything compiles.

    One *epoch* is one iteration of the fused training step: every training env plays one full
    episode, the episodes go into the replay buffer, `grad_steps_per_epoch` learner updates run on
    HER-relabeled batches, and `num_eval_envs` deterministic evaluation episodes are played.
    Defaults follow the HER paper and OpenAI baselines' HER (Andrychowicz et al. 2017, Plappert
    et al. 2018), TD3 (Fujimoto et al. 2018) and SAC (Haarnoja et al. 2018) where those apply;
    the sources are given per field. Fields marked "(td3 only)" etc. must keep their default
    with another `algorithm`.
    """

    # ---- task -------------------------------------------------------------------------------
    env: str = "point_mass"
    """A registered env name (`hjax.envs.NAMES`), an installed entry point of the group
    `hjax.envs`, or a user's env class by import path, `package.module:MyGoalEnv`."""
    env_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Overrides passed to the env, `hjax.envs.make(env, **env_kwargs)`: in Python
    `env_kwargs={"distance_threshold": 0.1}`, on the command line `--env-kwargs
    distance_threshold=0.1 episode_length=100` (each VALUE read as JSON when it parses)."""

    # ---- scale and length -------------------------------------------------------------------
    num_envs: int = 32
    """Parallel training envs; each plays one episode per epoch."""
    num_epochs: int = 30
    """Training length in epochs; total env steps = num_epochs * num_envs * episode_length."""
    grad_steps_per_epoch: int = 200
    """Critic updates per epoch (with td3, a multiple of policy_delay). Update-to-data ratio =
    grad_steps_per_epoch / (num_envs * episode_length)."""
    batch_size: int = 256
    """Transitions per gradient step (baselines HER: 256)."""
    buffer_episodes: int = 20_000
    """Replay capacity in whole episodes (baselines HER: 1e6 transitions = 20k episodes of 50)."""
    num_eval_envs: int = 100
    """Deterministic evaluation episodes per epoch (baselines HER: n_test_rollouts=10 per worker)."""
    seed: int = 0
    """Seed of the run; with `train(config, num_seeds=N)` the seeds are seed, seed+1, ..."""

    # ---- learner ----------------------------------------------------------------------------
    algorithm: str = "td3"
    """Learner: td3 (Fujimoto et al. 2018), ddpg (the HER paper's; Lillicrap et al. 2016) or sac
    (Haarnoja et al. 2018); the docs' Learners page compares them with HER."""
    gamma: float | None = None
    """Discount; None means 1 - 1/episode_length (HER paper: 0.98 for T=50)."""
    tau: float = 0.05
    """Polyak rate of the target networks (baselines HER: polyak 0.95, i.e. tau = 0.05)."""
    actor_lr: float = 1e-3
    """Actor Adam learning rate (baselines HER: 1e-3)."""
    critic_lr: float = 1e-3
    """Critic Adam learning rate (baselines HER: 1e-3)."""
    policy_delay: int = 2
    """Critic updates per actor and target update (TD3: 2). td3 only: ddpg and sac update every step."""
    target_noise: float = 0.2
    """Std of the target-policy smoothing noise (TD3: 0.2). td3 only."""
    target_noise_clip: float = 0.5
    """Clip of the target-policy smoothing noise (TD3: 0.5). td3 only."""
    clip_target: bool = True
    """Clip Q targets to [r_min/(1-gamma), r_max/(1-gamma)], i.e. [-1/(1-gamma), 0] for the
    sparse reward (HER paper / baselines clip_return)."""
    action_l2: float = 1.0
    """Weight of the mean squared action in the actor loss (baselines HER: 1.0). td3 and ddpg only."""
    hidden_sizes: tuple[int, ...] = (256, 256, 256)
    """Hidden layer widths of actor and each critic (HER paper: 3 x 256)."""
    critic_layer_norm: bool = False
    """LayerNorm after each hidden layer of the critics, before the ReLU (as BRO, SimbaV2 and
    CrossQ normalise theirs); the actor is unchanged. False: the plain MLP of the HER paper."""
    init_alpha: float = 0.1
    """SAC's initial temperature alpha. sac only. Stable-Baselines3's 1.0 assumes one gradient step
    per env step; at hjax's default 1/8 alpha would take ~10 epochs to fall from 1.0."""
    alpha_lr: float = 1e-3
    """Adam learning rate of SAC's log alpha (baselines HER's 1e-3, as the networks). sac only."""
    target_entropy: float | None = None
    """SAC's target policy entropy; None means -action_dim (Haarnoja et al. 2018, Sec. 6). sac only."""

    # ---- exploration and inputs -------------------------------------------------------------
    exploration_noise: float = 0.2
    """Std of Gaussian noise added to training actions (baselines HER: noise_eps 0.2). td3 and ddpg
    only: sac explores by sampling its own stochastic policy."""
    random_action_prob: float = 0.3
    """Probability of a uniform random training action (baselines HER: random_eps 0.3); every learner."""
    obs_clip: float = 5.0
    """Normalised observations and goals are clipped to +-obs_clip (baselines HER: 5)."""

    # ---- HER --------------------------------------------------------------------------------
    her_strategy: str = "future"
    """Relabeling strategy: future, final, episode, random, or none (no HER, same code path)."""
    replay_k: float = 4.0
    """Relabel ratio k: a sampled goal is replaced with probability 1 - 1/(1+k) (HER: k=4, 80%)."""
    n_step: int = 1
    """Rewards summed into each critic target: 1, the one-step target of the HER paper; n > 1,
    `sum_{i<m} gamma^i r(ag_{t+i+1}, g) + gamma^m Q'(o_{t+m}, g)` with m = min(n, T - t), the
    rewards recomputed for the row's (relabeled) goal g. Uncorrected for the behaviour policy (the
    bias n-step HER accepts, as in Yang et al. 2021's MHER); sac adds its entropy term at the
    bootstrap only. Not sweepable (it changes the program); at most episode_length."""

    # ---- devices ----------------------------------------------------------------------------
    num_devices: int | None = None
    """Devices on the data axis (None: all devices, divided by seed_devices). With 1, the
    single-device fast path: no sharding annotations at all."""
    seed_devices: int = 1
    """Devices on the seed axis: `train(config, num_seeds=N)` spreads the N seeds over them."""
    data_shards: int | None = None
    """Equal shards of the env batch, replay buffer and HER batch (None: one per data device).
    Each shard stores its own envs' episodes and samples batch_size / data_shards transitions
    from them; gradients are averaged over shards. The same value gives the same results on any
    number of devices that divides it."""

    # ---- host loop --------------------------------------------------------------------------
    chunk_epochs: int | None = None
    """Epochs per compiled chunk between host reports; must divide num_epochs. None picks the
    largest divisor of num_epochs that gives at least 10 reports."""

    def __post_init__(self) -> None:
        if not isinstance(self.env_kwargs, Mapping) or not all(isinstance(k, str) for k in self.env_kwargs):
            raise ValueError(f"invalid env_kwargs={self.env_kwargs!r}; allowed: a mapping of override names "
                             "to values, e.g. {'distance_threshold': 0.1}")
        object.__setattr__(self, "env_kwargs", MappingProxyType(dict(self.env_kwargs)))
        object.__setattr__(self, "hidden_sizes", _as_int_tuple(self.hidden_sizes))
        self._validate()

    # ---- derived ----------------------------------------------------------------------------

    def make_env(self) -> envs.GoalEnv:
        """The env this config trains on (built once, during validation)."""
        return self.__dict__["_env"]

    @property
    def episode_length(self) -> int:
        return self.make_env().episode_length

    @property
    def discount(self) -> float:
        """gamma, or 1 - 1/episode_length when gamma is None."""
        return 1.0 - 1.0 / self.episode_length if self.gamma is None else float(self.gamma)

    @property
    def relabel_probability(self) -> float:
        """Probability that a sampled transition gets a HER goal: 1 - 1/(1+k), 0 for 'none'."""
        return 0.0 if self.her_strategy == "none" else 1.0 - 1.0 / (1.0 + self.replay_k)

    @property
    def env_steps_per_epoch(self) -> int:
        return self.num_envs * self.episode_length

    @property
    def total_env_steps(self) -> int:
        return self.num_epochs * self.env_steps_per_epoch

    @property
    def epochs_per_chunk(self) -> int:
        """chunk_epochs, or the largest divisor of num_epochs giving at least 10 reports."""
        if self.chunk_epochs is not None:
            return self.chunk_epochs
        divisors = [d for d in range(1, self.num_epochs + 1) if self.num_epochs % d == 0]
        return max(d for d in divisors if self.num_epochs // d >= min(10, self.num_epochs))

    def q_target_bounds(self) -> tuple[float, float]:
        """The interval Q targets are clipped to: the discounted return's range,
        [r_min, r_max] / (1 - gamma) (HER paper / baselines clip_return: [-1/(1-gamma), 0] for the
        sparse reward); unbounded when `clip_target` is False."""
        if not self.clip_target:
            return (-math.inf, math.inf)
        r_min, r_max = self.make_env().reward_range
        return (r_min / (1 - self.discount), r_max / (1 - self.discount))

    def check_data_shards(self, shards: int, field: str = "data_shards") -> None:
        """Every sharded size must split evenly into `shards`."""
        for name in ("num_envs", "batch_size", "buffer_episodes"):
            if getattr(self, name) % shards:
                raise ValueError(f"invalid {field}={shards!r}; allowed: a divisor of {name}={getattr(self, name)} "
                                 "(num_envs, batch_size and buffer_episodes are split evenly over data shards)")

    @classmethod
    def preset(cls, name: str, /, **overrides: Any) -> "Config":
        """The measured preset for the env `name` (`hjax.PRESETS`), with `overrides` applied on top.

        `Config.preset("push", seed=3)`; a preset fixes its env, so `env` may not be overridden.
        `env_kwargs` given here are added to the preset's own (a preset's env overrides, such as
        pick-and-place's grasped starts, stay unless named).
        What each preset was measured to do: `Config.preset_note(name)` and the docs' Configuration page."""
        if name not in PRESETS:
            raise ValueError(f"invalid preset={name!r}; allowed: one of {', '.join(PRESETS)}")
        if "env" in overrides and overrides["env"] != name:
            raise ValueError(f"invalid env={overrides['env']!r} with preset={name!r}; allowed: no env override "
                             f"(the preset is for {name!r}; use Config(env=...) for another env)")
        fields = {"env": name, **PRESETS[name], **overrides}
        if "env_kwargs" in overrides:
            fields["env_kwargs"] = {**PRESETS[name].get("env_kwargs", {}), **overrides["env_kwargs"]}
        return cls(**fields)

    @staticmethod
    def preset_note(name: str) -> str:
        """Where and how the preset for the env `name` was measured."""
        if name not in MEASURED:
            raise ValueError(f"invalid preset={name!r}; allowed: one of {', '.join(PRESETS)}")
        return MEASURED[name]

    def replace(self, **changes: Any) -> "Config":
        """A copy with `changes` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values of every field."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["env_kwargs"] = dict(self.env_kwargs)
        d["hidden_sizes"] = list(self.hidden_sizes)
        return d

    # ---- validation -------------------------------------------------------------------------

    def _validate(self) -> None:
        envs.factory(self.env)  # ValueError naming env=, its value and what is allowed
        try:
            env = envs.make(self.env, **self.env_kwargs)
            object.__setattr__(self, "_env", env)
        except (ValueError, TypeError) as e:  # the env names what is wrong; we name the field to blame
            # An env class missing a member (envs.goal_env.MissingMemberError) is broken whatever the
            # overrides, and with no overrides there is nothing but the env to blame.
            if getattr(e, "missing_members", None) or not self.env_kwargs:
                raise ValueError(f"invalid env={self.env!r}: {e}") from None
            raise ValueError(f"invalid env_kwargs={dict(self.env_kwargs)!r}: {e}") from None
        for name in ("num_envs", "num_epochs", "grad_steps_per_epoch", "batch_size",
                     "buffer_episodes", "num_eval_envs", "policy_delay"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("seed", self.seed, minimum=0)
        if self.gamma is not None:
            _check_real("gamma", self.gamma, 0.0 < _num(self.gamma) < 1.0, "None or a number in (0, 1)")
        for name in ("tau",):
            _check_real(name, getattr(self, name), 0.0 <= _num(getattr(self, name)) <= 1.0, "a number in [0, 1]")
        _check_real("random_action_prob", self.random_action_prob,
                    0.0 <= _num(self.random_action_prob) <= 1.0, "a number in [0, 1]")
        _check("algorithm", self.algorithm, self.algorithm in ALGORITHMS, "one of " + ", ".join(ALGORITHMS))
        for name in ("actor_lr", "critic_lr", "obs_clip", "init_alpha", "alpha_lr"):
            _check_real(name, getattr(self, name), _num(getattr(self, name)) > 0, "a number > 0")
        for name in ("target_noise", "target_noise_clip", "action_l2", "exploration_noise"):
            _check_real(name, getattr(self, name), _num(getattr(self, name)) >= 0, "a number >= 0")
        _check("clip_target", self.clip_target, isinstance(self.clip_target, bool), "True or False")
        _check("critic_layer_norm", self.critic_layer_norm, isinstance(self.critic_layer_norm, bool), "True or False")
        _check("hidden_sizes", self.hidden_sizes,
               isinstance(self.hidden_sizes, tuple) and len(self.hidden_sizes) >= 1
               and all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in self.hidden_sizes),
               "a non-empty sequence of integers >= 1")
        _check("her_strategy", self.her_strategy, self.her_strategy in HER_STRATEGIES,
               "one of " + ", ".join(HER_STRATEGIES))
        _check_real("replay_k", self.replay_k, _num(self.replay_k) >= 0, "a number >= 0")
        _check("n_step", self.n_step, isinstance(self.n_step, int) and not isinstance(self.n_step, bool)
               and 1 <= self.n_step <= env.episode_length, f"an integer in [1, episode_length={env.episode_length}]")
        if self.target_entropy is not None:
            _check_real("target_entropy", self.target_entropy, True, "None (-action_dim) or a finite number")
        for name, algorithms in LEARNER_ONLY_FIELDS:
            default = _DEFAULTS[name]
            implied = LEARNER_IMPLIED_VALUES.get((name, self.algorithm))
            if self.algorithm not in algorithms and getattr(self, name) not in (default, implied):
                also = "" if implied is None else f" or {implied!r}, what {self.algorithm} does anyway"
                raise ValueError(
                    f"invalid {name}={getattr(self, name)!r} with algorithm={self.algorithm!r}; allowed: the "
                    f"default {default!r}{also} ({name} is read by {' and '.join(algorithms)} only, so another "
                    f"value would do nothing with {self.algorithm})")
        if self.algorithm == "td3" and self.grad_steps_per_epoch % self.policy_delay:
            raise ValueError(
                f"invalid grad_steps_per_epoch={self.grad_steps_per_epoch!r}; allowed: a multiple of "
                f"policy_delay={self.policy_delay} (the actor update schedule is static)")
        if self.buffer_episodes < self.num_envs:
            raise ValueError(
                f"invalid buffer_episodes={self.buffer_episodes!r}; allowed: >= num_envs={self.num_envs} "
                "(one epoch's episodes must fit)")
        if self.batch_size > self.buffer_episodes * env.episode_length:
            raise ValueError(
                f"invalid batch_size={self.batch_size!r}; allowed: <= buffer_episodes * episode_length "
                f"= {self.buffer_episodes * env.episode_length} transitions the buffer can hold")
        if self.num_devices is not None:
            _check_int("num_devices", self.num_devices, minimum=1)
        _check_int("seed_devices", self.seed_devices, minimum=1)
        if self.data_shards is not None:
            _check_int("data_shards", self.data_shards, minimum=1)
            self.check_data_shards(self.data_shards)
        if self.chunk_epochs is not None:
            _check_int("chunk_epochs", self.chunk_epochs, minimum=1)
            if self.num_epochs % self.chunk_epochs:
                divisors = [d for d in range(1, self.num_epochs + 1) if self.num_epochs % d == 0]
                raise ValueError(f"invalid chunk_epochs={self.chunk_epochs!r}; allowed: None or a divisor "
                                 f"of num_epochs={self.num_epochs}: {divisors}")


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Config)}


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _check(field: str, value: Any, ok: bool, allowed: str) -> None:
    if not ok:
        raise ValueError(f"invalid {field}={value!r}; allowed: {allowed}")


def _check_real(field: str, value: Any, ok: bool, allowed: str) -> None:
    _check(field, value, math.isfinite(_num(value)) and ok, allowed)


def _check_int(field: str, value: Any, minimum: int) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    _check(field, value, ok, f"an integer >= {minimum}")


def _as_int_tuple(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return value


def field_docs() -> dict[str, str]:
    """Each Config field's docstring (the string literal under the field), read from this
    module's source; empty when the source is not shipped."""
    try:
        tree = ast.parse(Path(__file__).read_text())
    except OSError:
        return {}
    body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Config").body
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _fields_section() -> str:
    """The `Fields:` section appended to Config's docstring, so `help(hjax.Config)` shows them."""
    docs = field_docs()
    lines = ["", "Fields (name: type = default; what it does):", ""]
    for f in dataclasses.fields(Config):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        lines.append(f"    {f.name}: {f.type} = {default!r}")
        text = docs.get(f.name, "")
        while text:  # wrapped at ~96 columns
            cut = len(text) if len(text) <= 88 else text.rfind(" ", 0, 88)
            cut = cut if cut > 0 else len(text)
            lines.append("        " + text[:cut])
            text = text[cut:].lstrip()
    return "\n".join(lines) + "\n"


Config.__doc__ = (Config.__doc__ or "").rstrip() + "\n" + _fields_section()
